// Package install lays a cluster image onto the host it runs on the way
// `sealer run` does (sealer-format.md §4.3): the image root copied to
// <dataRoot>/<cluster>/rootfs, *.tmpl files rendered with the cluster env,
// sea.hub in /etc/hosts, and the image's own scripts/init-registry.sh
// starting the embedded registry over rootfs/registry. It is what `cnstack
// boot` runs inside its throw-away VMs; it refuses to pretend: steps it does
// not perform (the container runtime and Kubernetes) are reported as not run.
package install

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"time"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2"
	"oras.land/oras-go/v2/content"

	"github.com/cnstack/cnstack/pkg/clusterimage"
	"github.com/cnstack/cnstack/pkg/oci"
	"github.com/cnstack/cnstack/pkg/safearchive"
)

// Options configure an install.
type Options struct {
	Ref            string // image in the store
	ClusterName    string // default my-cluster (sealer's default)
	DataRoot       string // default /var/lib/sealer/data
	RegistryDomain string // default sea.hub
	RegistryPort   int    // default 5000
	RegistryIP     string // address sea.hub resolves to; default 127.0.0.1
	// RunRegistry starts the embedded registry on this host (sealer does so
	// on the masters).
	RunRegistry bool
	Env         map[string]string // Clusterfile env; wins over the image env
	HostsFile   string            // default /etc/hosts
	Log         io.Writer
}

func (o *Options) defaults() {
	if o.ClusterName == "" {
		o.ClusterName = "my-cluster"
	}
	if o.DataRoot == "" {
		o.DataRoot = "/var/lib/sealer/data"
	}
	if o.RegistryDomain == "" {
		o.RegistryDomain = "sea.hub"
	}
	if o.RegistryPort == 0 {
		o.RegistryPort = 5000
	}
	if o.RegistryIP == "" {
		o.RegistryIP = "127.0.0.1"
	}
	if o.HostsFile == "" {
		o.HostsFile = "/etc/hosts"
	}
	if o.Log == nil {
		o.Log = io.Discard
	}
}

// Step statuses.
const (
	Passed  = "passed"
	Failed  = "failed"
	NotRun  = "not-run"
	Skipped = "skipped"
)

// Step is one phase of the install.
type Step struct {
	Name     string        `json:"name"`
	Status   string        `json:"status"`
	Detail   string        `json:"detail,omitempty"`
	Start    time.Time     `json:"start"`
	Duration time.Duration `json:"duration"`
}

// Result is the install's account of itself.
type Result struct {
	Image    string            `json:"image"`
	Digest   string            `json:"digest"`
	Platform string            `json:"platform"`
	Rootfs   string            `json:"rootfs"`
	Env      map[string]string `json:"env"`
	Steps    []Step            `json:"steps"`
	OK       bool              `json:"ok"`
}

// imageInfo is what the install reads of the image.
type imageInfo struct {
	manifest ocispec.Manifest
	ext      *clusterimage.Extension
	config   ocispec.Image
}

// Run installs opts.Ref from src (the local store, or any other target
// that resolves it) onto this host.
func Run(ctx context.Context, src oras.ReadOnlyTarget, opts Options) (*Result, error) {
	opts.defaults()
	res := &Result{Image: opts.Ref, Platform: "linux/" + runtime.GOARCH, OK: true}
	res.Rootfs = filepath.Join(opts.DataRoot, opts.ClusterName, "rootfs")
	step := func(name string, fn func() (status, detail string, err error)) bool {
		st := Step{Name: name, Start: time.Now()}
		fmt.Fprintf(opts.Log, "== %s\n", name)
		status, detail, err := fn()
		st.Duration = time.Since(st.Start)
		st.Status, st.Detail = status, detail
		if err != nil {
			st.Status, st.Detail = Failed, err.Error()
			res.OK = false
		}
		fmt.Fprintf(opts.Log, "   %s %s %s\n", st.Status, st.Duration.Round(time.Millisecond), st.Detail)
		res.Steps = append(res.Steps, st)
		return err == nil
	}
	var img imageInfo
	if !step("resolve image", func() (string, string, error) {
		var err error
		img, res.Digest, err = resolve(ctx, src, opts.Ref)
		return Passed, res.Digest, err
	}) {
		return res, nil
	}
	env := map[string]string{}
	maps.Copy(env, img.ext.Env)
	maps.Copy(env, clusterEnv(opts))
	maps.Copy(env, opts.Env)
	res.Env = env
	if !step("lay out rootfs", func() (string, string, error) {
		n, err := layOut(ctx, src, img.manifest, res.Rootfs)
		return Passed, fmt.Sprintf("%d layers into %s", n, res.Rootfs), err
	}) {
		return res, nil
	}
	step("render templates", func() (string, string, error) {
		n, err := renderAll(res.Rootfs, img.ext, env)
		return Passed, fmt.Sprintf("%d *.tmpl files rendered", n), err
	})
	step("hosts", func() (string, string, error) {
		line := opts.RegistryIP + " " + opts.RegistryDomain
		return Passed, line, addHost(opts.HostsFile, opts.RegistryIP, opts.RegistryDomain)
	})
	if opts.RunRegistry {
		step("embedded registry (scripts/init-registry.sh)", func() (string, string, error) {
			return startRegistry(ctx, res.Rootfs, opts, env)
		})
	} else {
		step("embedded registry (scripts/init-registry.sh)", func() (string, string, error) {
			return Skipped, "runs on the first node only", nil
		})
	}
	kube := hasKubernetes(res.Rootfs)
	for _, name := range []string{"container runtime (scripts/<cri>.sh)", "kubernetes (init-kube.sh, kubeadm)", "applications (launch)"} {
		step(name, func() (string, string, error) {
			if !kube {
				return Skipped, "the image carries no Kubernetes (no bin/kubeadm)", nil
			}
			return NotRun, "cnstack's installer does not run Kubernetes yet; this image needs the real `sealer run`", nil
		})
	}
	return res, nil
}

func resolve(ctx context.Context, s oras.ReadOnlyTarget, ref string) (imageInfo, string, error) {
	var img imageInfo
	desc, err := s.Resolve(ctx, ref)
	if err != nil {
		return img, "", err
	}
	desc, err = oci.SelectPlatform(ctx, s, desc, ocispec.Platform{OS: "linux", Architecture: runtime.GOARCH})
	if err != nil {
		return img, "", err
	}
	mb, err := content.FetchAll(ctx, s, desc)
	if err != nil {
		return img, "", err
	}
	if err := json.Unmarshal(mb, &img.manifest); err != nil {
		return img, "", err
	}
	img.ext, err = clusterimage.ParseExtension(img.manifest.Annotations[clusterimage.AnnotationExtension])
	if err != nil {
		return img, "", fmt.Errorf("%s: %w", ref, err)
	}
	cb, err := content.FetchAll(ctx, s, img.manifest.Config)
	if err != nil {
		return img, "", err
	}
	if err := json.Unmarshal(cb, &img.config); err != nil {
		return img, "", err
	}
	return img, desc.Digest.String(), nil
}

// clusterEnv is the env sealer injects for templates and scripts.
func clusterEnv(o Options) map[string]string {
	url := o.RegistryDomain + ":" + strconv.Itoa(o.RegistryPort)
	return map[string]string{
		"LocalRegistryDomain": o.RegistryDomain, "LocalRegistryPort": strconv.Itoa(o.RegistryPort), "LocalRegistryURL": url,
		"RegistryDomain": o.RegistryDomain, "RegistryPort": strconv.Itoa(o.RegistryPort), "RegistryURL": url,
		"HostIP": o.RegistryIP,
	}
}

// layOut lays the image's layers, merged (whiteouts applied), onto a fresh rootfs.
func layOut(ctx context.Context, f content.Fetcher, m ocispec.Manifest, rootfs string) (int, error) {
	if err := os.RemoveAll(rootfs); err != nil {
		return 0, err
	}
	if err := os.MkdirAll(rootfs, 0o755); err != nil {
		return 0, err
	}
	x, err := safearchive.NewExtractor(rootfs, safearchive.Limits{})
	if err != nil {
		return 0, err
	}
	if err := oci.Walk(ctx, f, m.Layers, x.Entry); err != nil {
		return 0, err
	}
	return len(m.Layers), nil
}

// renderAll renders every *.tmpl under etc/, charts/ and manifests/ with the
// cluster env, and under application/apps/<app>/ with the app env over it.
func renderAll(rootfs string, ext *clusterimage.Extension, env map[string]string) (int, error) {
	n := 0
	render := func(dir string, env map[string]string) error {
		return filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			if err != nil || d.IsDir() || !strings.HasSuffix(p, clusterimage.TemplateSuffix) {
				return err
			}
			text, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			out, err := clusterimage.RenderTemplate(filepath.Base(p), text, env)
			if err != nil {
				return fmt.Errorf("%s: %w", strings.TrimPrefix(p, rootfs+"/"), err)
			}
			n++
			return os.WriteFile(strings.TrimSuffix(p, clusterimage.TemplateSuffix), out, 0o644)
		})
	}
	for _, d := range []string{"etc", "charts", "manifests"} {
		if err := render(filepath.Join(rootfs, d), env); err != nil {
			return n, err
		}
	}
	for _, a := range ext.Applications {
		if err := render(filepath.Join(rootfs, clusterimage.AppRoot, a.Name), clusterimage.AppEnv(a.Env, env)); err != nil {
			return n, err
		}
	}
	return n, nil
}

// addHost maps domain to ip in the hosts file, once.
func addHost(path, ip, domain string) error {
	b, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	var keep []string
	for _, line := range strings.Split(strings.TrimRight(string(b), "\n"), "\n") {
		f := strings.Fields(line)
		if len(f) >= 2 && f[len(f)-1] == domain && len(f) == 2 {
			continue // an earlier install's entry
		}
		if line != "" {
			keep = append(keep, line)
		}
	}
	keep = append(keep, ip+" "+domain)
	return os.WriteFile(path, []byte(strings.Join(keep, "\n")+"\n"), 0o644)
}

// startRegistry runs the image's init-registry.sh as sealer does and waits
// for the registry to answer.
func startRegistry(ctx context.Context, rootfs string, o Options, env map[string]string) (string, string, error) {
	script := filepath.Join(rootfs, "scripts", "init-registry.sh")
	if _, err := os.Stat(script); err != nil {
		return "", "", fmt.Errorf("the image has no scripts/init-registry.sh, which sealer's run contract requires")
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", "init-registry.sh", strconv.Itoa(o.RegistryPort), filepath.Join(rootfs, "registry"), o.RegistryDomain)
	cmd.Dir = filepath.Dir(script)
	cmd.Env = os.Environ()
	keys := make([]string, 0, len(env))
	for k := range env {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		cmd.Env = append(cmd.Env, k+"="+env[k])
	}
	out, err := cmd.CombinedOutput()
	fmt.Fprintf(o.Log, "%s", out)
	if err != nil {
		return "", "", fmt.Errorf("init-registry.sh: %w: %s", err, lastLines(string(out), 5))
	}
	url := fmt.Sprintf("http://127.0.0.1:%d/v2/", o.RegistryPort)
	for {
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return Passed, "registry answers on " + o.RegistryDomain + ":" + strconv.Itoa(o.RegistryPort), nil
			}
		}
		select {
		case <-ctx.Done():
			return "", "", fmt.Errorf("the registry init-registry.sh started never answered on %s", url)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// hasKubernetes reports whether the image brings kubeadm: without it there
// is no cluster to install, whatever its kubeadm.yml says.
func hasKubernetes(rootfs string) bool {
	_, err := os.Stat(filepath.Join(rootfs, "bin", "kubeadm"))
	return err == nil
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, " | ")
}
