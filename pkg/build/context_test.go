package build

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/cnstack/cnstack/pkg/store"
)

// imageFiles lists "name=content" (regular files) and "name/" (dirs) over
// every layer of a single-platform image.
func imageFiles(t *testing.T, s *store.Store, d ocispec.Descriptor) []string {
	t.Helper()
	var m ocispec.Manifest
	if err := jsonUnmarshal(readJSON(t, s, d.Digest), &m); err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, l := range m.Layers {
		rc, err := s.Fetch(context.Background(), l)
		if err != nil {
			t.Fatal(err)
		}
		zr, err := gzip.NewReader(rc)
		if err != nil {
			t.Fatal(err)
		}
		tr := tar.NewReader(zr)
		for {
			h, err := tr.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			switch h.Typeflag {
			case tar.TypeDir:
				out = append(out, h.Name)
			case tar.TypeSymlink:
				out = append(out, h.Name+"->"+h.Linkname)
			default:
				b, _ := io.ReadAll(tr)
				out = append(out, h.Name+"="+string(b))
			}
		}
		rc.Close()
	}
	sort.Strings(out)
	return out
}

// Defect 1: `cnstack build -t X .` failed on every COPY: the context root was
// not made absolute before the containment check.
func TestBuildRelativeContext(t *testing.T) {
	dir := writeContext(t, map[string]string{
		"Kubefile":         "FROM scratch\nCOPY manifests manifests\nCOPY real/app.yaml apps/\n",
		"manifests/a.yaml": "a",
		"real/app.yaml":    "app",
	})
	os.MkdirAll(filepath.Join(dir, "sub"), 0o755)
	t.Chdir(dir)
	b := newBuilder(t)
	var first digest.Digest
	for _, ctxDir := range []string{".", "./", "sub/.."} {
		res, err := b.Build(context.Background(), Request{Context: ctxDir, Tags: []string{"rel:1"}, Mode: ModeLite})
		if err != nil {
			t.Fatalf("context %q: %v", ctxDir, err)
		}
		if first == "" {
			first = res.Descriptor.Digest
		} else if res.Descriptor.Digest != first {
			t.Errorf("context %q gave %s, want %s", ctxDir, res.Descriptor.Digest, first)
		}
	}
	// The same image as from the absolute path.
	res, err := newBuilder(t).Build(context.Background(), Request{Context: dir, Mode: ModeLite})
	if err != nil || res.Descriptor.Digest != first {
		t.Fatalf("absolute context: %v %v, want %s", res, err, first)
	}
}

// Defects 1 and 4: symlinks that stay inside the context are followed (the
// image holds real files; a linked directory is never copied empty).
func TestBuildInContextSymlinks(t *testing.T) {
	dir := writeContext(t, map[string]string{
		"Kubefile":              "FROM scratch\nCOPY charts charts\nCOPY conf etc/conf\nCOPY tree tree\n",
		"real/web/Chart.yaml":   "chart",
		"real/web/values.yaml":  "v",
		"config/kubeadm.yml":    "kubeadm",
		"tree/file":             "f",
		"other/inner/deep.yaml": "deep",
	})
	os.Symlink("real", filepath.Join(dir, "charts"))
	os.Symlink("config/kubeadm.yml", filepath.Join(dir, "conf"))
	os.Symlink("../other/inner", filepath.Join(dir, "tree", "linked"))
	b := newBuilder(t)
	res, err := b.Build(context.Background(), Request{Context: dir, Mode: ModeLite})
	if err != nil {
		t.Fatal(err)
	}
	got := strings.Join(imageFiles(t, b.Store, res.Descriptor), "\n")
	for _, want := range []string{"charts/web/Chart.yaml=chart", "charts/web/values.yaml=v", "etc/conf=kubeadm", "tree/file=f", "tree/linked/deep.yaml=deep"} {
		if !strings.Contains(got, want) {
			t.Errorf("image lacks %s:\n%s", want, got)
		}
	}
	if strings.Contains(got, "->") {
		t.Errorf("image holds symlinks:\n%s", got)
	}
}

// Defect 3: a file swapped for a symlink out of the context between hashing
// and reading never brings the outside file into a layer, and nothing is
// cached; a file whose content changes meanwhile fails the build (instead of
// caching a layer under a key that does not describe it).
func TestBuildSwapBetweenHashAndRead(t *testing.T) {
	outside := writeContext(t, map[string]string{"secret": "TOP SECRET"})
	tests := []struct {
		name string
		swap func(dir string)
		want string
	}{
		{"file to outside link", func(dir string) {
			os.Remove(filepath.Join(dir, "data", "f"))
			os.Symlink(filepath.Join(outside, "secret"), filepath.Join(dir, "data", "f"))
		}, "outside the build context"},
		{"dir to outside link", func(dir string) {
			os.RemoveAll(filepath.Join(dir, "data"))
			os.Symlink(outside, filepath.Join(dir, "data"))
		}, "outside the build context"},
		{"content changed", func(dir string) {
			os.WriteFile(filepath.Join(dir, "data", "f"), []byte("other text"), 0o644)
		}, "changed while the layer was being written"},
		{"file to in-context link", func(dir string) {
			os.Remove(filepath.Join(dir, "data", "f"))
			os.Symlink("../g", filepath.Join(dir, "data", "f"))
		}, "changed while the layer was being written"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := writeContext(t, map[string]string{"Kubefile": "FROM scratch\nCOPY data data\n", "data/f": "harmless!!", "g": "ggggggggggg"})
			b := newBuilder(t)
			testHookBeforeLayerWrite = func() { tt.swap(dir) }
			_, err := b.Build(context.Background(), Request{Context: dir, Mode: ModeLite})
			testHookBeforeLayerWrite = nil
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want it to mention %q", err, tt.want)
			}
			if ents, _ := os.ReadDir(filepath.Join(b.Cache.Dir(), "layers")); len(ents) != 0 {
				t.Fatalf("a layer was cached: %v", ents)
			}
			// Put the file back: the next build reads it afresh.
			os.RemoveAll(filepath.Join(dir, "data"))
			os.MkdirAll(filepath.Join(dir, "data"), 0o755)
			os.WriteFile(filepath.Join(dir, "data", "f"), []byte("harmless!!"), 0o644)
			res, err := b.Build(context.Background(), Request{Context: dir, Mode: ModeLite})
			if err != nil {
				t.Fatal(err)
			}
			if got := strings.Join(imageFiles(t, b.Store, res.Descriptor), " "); got != "data/ data/f=harmless!!" {
				t.Fatalf("image: %s", got)
			}
		})
	}
}

// Defect 3, as an attacker runs it: a goroutine flips a context file
// between a regular file and a link to a secret while builds run. No build
// may ever put the secret into an image or the cache.
func TestBuildSymlinkRace(t *testing.T) {
	outside := writeContext(t, map[string]string{"secret": "TOP SECRET"})
	dir := writeContext(t, map[string]string{"Kubefile": "FROM scratch\nCOPY data data\n", "data/f": "harmless!!"})
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		f, tmpLink, tmpFile := filepath.Join(dir, "data", "f"), filepath.Join(dir, "data", ".l"), filepath.Join(dir, "data", ".r")
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			time.Sleep(200 * time.Microsecond)
			if i%2 == 0 {
				os.Symlink(filepath.Join(outside, "secret"), tmpLink)
				os.Rename(tmpLink, f)
			} else {
				os.WriteFile(tmpFile, []byte("harmless!!"), 0o644)
				os.Rename(tmpFile, f)
			}
		}
	}()
	b := newBuilder(t)
	var ok, failed int
	var firstErr error
	deadline := time.Now().Add(3 * time.Second)
	for i := 0; i < 300 && time.Now().Before(deadline); i++ {
		res, err := b.Build(context.Background(), Request{Context: dir, Mode: ModeLite, NoCache: i%2 == 0})
		if err != nil {
			if firstErr == nil {
				firstErr = err
			}
			failed++
			continue
		}
		ok++
		for _, f := range imageFiles(t, b.Store, res.Descriptor) {
			if strings.Contains(f, "SECRET") {
				close(stop)
				<-done
				t.Fatalf("build %d put the secret into the image: %s", i, f)
			}
		}
	}
	close(stop)
	<-done
	t.Logf("%d builds succeeded, %d failed cleanly (first: %v)", ok, failed, firstErr)
}

// Defect 10: a Kubefile or a context file that is a FIFO is an error, not
// a build that hangs forever.
func TestBuildRefusesFIFOs(t *testing.T) {
	tests := []struct {
		name  string
		setup func(dir string)
		want  string
	}{
		{"Kubefile", func(dir string) {
			os.Remove(filepath.Join(dir, "Kubefile"))
			syscall.Mkfifo(filepath.Join(dir, "Kubefile"), 0o644)
		}, "not a regular file"},
		{"COPY source", func(dir string) { syscall.Mkfifo(filepath.Join(dir, "pipe"), 0o644) }, "FIFO"},
		{"inside a copied dir", func(dir string) { syscall.Mkfifo(filepath.Join(dir, "d", "pipe"), 0o644) }, "FIFO"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			kf := "FROM scratch\nCOPY d d\n"
			if tt.name == "COPY source" {
				kf = "FROM scratch\nCOPY pipe x\n"
			}
			dir := writeContext(t, map[string]string{"Kubefile": kf, "d/ok": "ok"})
			tt.setup(dir)
			errc := make(chan error, 1)
			go func() {
				_, err := newBuilder(t).Build(context.Background(), Request{Context: dir, Mode: ModeLite})
				errc <- err
			}()
			select {
			case err := <-errc:
				if err == nil || !strings.Contains(err.Error(), tt.want) {
					t.Fatalf("err = %v, want it to mention %q", err, tt.want)
				}
			case <-time.After(20 * time.Second):
				t.Fatal("the build hangs on a FIFO")
			}
		})
	}
}
