package buildcontext

import (
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/cnstack/cnstack/pkg/kubefile"
	"github.com/cnstack/cnstack/pkg/oci"
)

// Lint checks the Kubefile at path against its build context dir for each
// platform (oci.DefaultPlatform when none is given), reading both as a
// build does: the Kubefile with kubefile.ReadFile (a regular file, within
// the size limit), the context through os.Root (links out of it are
// findings). name is how findings name the file. The error is for a
// Kubefile or context that cannot be read at all.
func Lint(name, path, dir string, args map[string]string, platforms ...ocispec.Platform) (kubefile.Diagnostics, error) {
	src, err := kubefile.ReadFile(path)
	if err != nil {
		return nil, err
	}
	bc, err := Open(dir)
	if err != nil {
		return nil, err
	}
	defer bc.Close()
	if len(platforms) == 0 {
		platforms = []ocispec.Platform{oci.DefaultPlatform}
	}
	_, ds := kubefile.Lint(name, src, kubefile.EvalOptions{BuildArgs: args, Context: bc.FS()}, platforms...)
	return ds, nil
}
