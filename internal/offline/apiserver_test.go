package offline

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/cnstack/cnstack/internal/testutil/tooltest"
)

// TestComponentsOnAPIServer runs the edition's real binaries (the payload
// tools/install.sh built) against a real kube-apiserver v1.34.4 and etcd from
// the same payload, on loopback, with no kubelet: our manifests apply as
// sealer's APPCMDS apply them; kruise-manager, running with its own
// ServiceAccount's token (so our ClusterRole binding and the generated
// ClusterRole are what it has), generates its webhook certificates into the
// Secret, patches our webhook configurations, becomes ready, defaults and
// admits a CloneSet, creates its pods with the in-place readiness gate,
// scales it 2 -> 3 and updates the pods' image in place (same UIDs; no kubelet
// runs them). kube-state-metrics, with its own ServiceAccount, lists
// everything without a single "forbidden" and reports itself. What needs a
// kubelet (pods Ready, containers restarted in place, the Services' routing)
// is the checks' job in the VM.
func TestComponentsOnAPIServer(t *testing.T) {
	dir := payloadFor(t, "etcd", "kube-apiserver", "kubectl", "kruise-manager", "kube-state-metrics")
	work := t.TempDir()
	gen := generateCRDs(t, "kruise", work)

	c := startCluster(t, dir, work)
	base := filepath.Join(editionDir(t), "base")
	c.kubectl(t, "apply", "--server-side", "--force-conflicts", "-f", filepath.Join(gen, "kruise-crds.yaml"))
	c.kubectl(t, "apply", "-f", filepath.Join(gen, "kruise-manager-role.yaml"), "-f", filepath.Join(base, "apps", "kruise.yaml"))

	// kruise-manager as its ServiceAccount. The API server reaches the webhook
	// on loopback (WEBHOOK_HOST) instead of through the Service; the
	// certificates still go through the Secret, as in the cluster.
	mgrPorts := freePorts(t, 4)
	mgr := c.start(t, "kruise-manager", []string{
		"POD_NAMESPACE=kruise-system", "WEBHOOK_HOST=127.0.0.1", "WEBHOOK_CERT_WRITER=secret",
		fmt.Sprintf("WEBHOOK_PORT=%d", mgrPorts[0]), "WEBHOOK_CERT_DIR=" + filepath.Join(work, "kruise-certs"),
	}, "--kubeconfig="+c.saKubeconfig(t, "kruise-system", "kruise-manager"), "--enable-leader-election",
		fmt.Sprintf("--metrics-addr=127.0.0.1:%d", mgrPorts[1]), fmt.Sprintf("--health-probe-addr=127.0.0.1:%d", mgrPorts[2]),
		fmt.Sprintf("--pprof-addr=127.0.0.1:%d", mgrPorts[3]), "--logtostderr=true", "--v=2",
		"--protection-log-path="+t.TempDir()) // as the manifest does (its default, /log, is not writable in the pod)
	waitHTTP(t, fmt.Sprintf("http://127.0.0.1:%d/readyz", mgrPorts[2]), 3*time.Minute, mgr)
	if got := c.kubectl(t, "-n", "kruise-system", "get", "secret", "kruise-webhook-certs", "-o", "jsonpath={.data.ca-cert\\.pem}"); got == "" {
		t.Error("kruise-manager did not write its CA into Secret kruise-webhook-certs")
	}
	for _, kind := range []string{"mutatingwebhookconfiguration/kruise-mutating-webhook-configuration", "validatingwebhookconfiguration/kruise-validating-webhook-configuration"} {
		if got := c.kubectl(t, "get", kind, "-o", "jsonpath={.webhooks[0].clientConfig.caBundle}"); got == "" {
			t.Errorf("%s has no caBundle: the manager did not take it over", kind)
		}
	}

	ns := "cnstack-check-kruise"
	c.kubectl(t, "create", "namespace", ns)
	c.kubectl(t, "-n", ns, "create", "serviceaccount", "default") // no controller-manager here
	c.kubectl(t, "-n", ns, "apply", "-f", filepath.Join(base, "manifests", "kruise-check-v1.yaml"))
	if got := c.kubectl(t, "-n", ns, "get", "cloneset", "kruise-check", "-o", "jsonpath={.spec.updateStrategy.type}/{.spec.scaleStrategy}/{.spec.revisionHistoryLimit}"); !strings.HasPrefix(got, "InPlaceIfPossible/") || strings.HasSuffix(got, "/") {
		t.Errorf("the CloneSet was not defaulted by kruise's webhook: %q", got)
	}
	podsOf := func() string {
		return c.kubectl(t, "-n", ns, "get", "pods", "-l", "app=kruise-check", "-o",
			`jsonpath={range .items[*]}{.metadata.uid} {.spec.containers[0].image} {.spec.readinessGates[0].conditionType}{"\n"}{end}`)
	}
	waitFor(t, "2 pods", 2*time.Minute, mgr, func() bool { return strings.Count(podsOf(), "\n") == 2 })
	c.kubectl(t, "-n", ns, "patch", "cloneset", "kruise-check", "--type", "merge", "-p", `{"spec":{"replicas":3}}`)
	waitFor(t, "3 pods", 2*time.Minute, mgr, func() bool { return strings.Count(podsOf(), "\n") == 3 })
	before := podsOf()
	if strings.Count(before, " InPlaceUpdateReady\n") != 3 {
		t.Errorf("pods lack the InPlaceUpdateReady readiness gate:\n%s", before)
	}
	c.kubectl(t, "-n", ns, "apply", "-f", filepath.Join(base, "manifests", "kruise-check-v2.yaml"))
	waitFor(t, "the pods' image updated in place", 2*time.Minute, mgr, func() bool {
		return strings.Count(podsOf(), "busybox:1.35.0-inplace ") == 3
	})
	uids := func(s string) []string {
		var u []string
		for _, l := range strings.Split(strings.TrimSpace(s), "\n") {
			u = append(u, strings.Fields(l)[0])
		}
		return u
	}
	if b, a := strings.Join(uids(before), ","), strings.Join(uids(podsOf()), ","); b != a {
		t.Errorf("pods were recreated, not updated in place: UIDs %s, then %s", b, a)
	}
	if n := strings.Count(mgr.log(), "forbidden"); n > 0 {
		t.Errorf("kruise-manager was refused %d times: its RBAC lacks something\n%s", n, grepLines(mgr.log(), "forbidden", 5))
	}

	// kube-state-metrics as its ServiceAccount.
	c.kubectl(t, "apply", "-f", filepath.Join(editionDir(t), "observability", "apps", "node-exporter.yaml"),
		"-f", filepath.Join(editionDir(t), "observability", "apps", "kube-state-metrics.yaml"))
	ksmPorts := freePorts(t, 2)
	ksm := c.start(t, "kube-state-metrics", nil, "--kubeconfig="+c.saKubeconfig(t, "observability", "kube-state-metrics"),
		"--host=127.0.0.1", fmt.Sprintf("--port=%d", ksmPorts[0]), "--telemetry-host=127.0.0.1", fmt.Sprintf("--telemetry-port=%d", ksmPorts[1]))
	waitHTTP(t, fmt.Sprintf("http://127.0.0.1:%d/readyz", ksmPorts[1]), time.Minute, ksm)
	metrics := get(t, fmt.Sprintf("http://127.0.0.1:%d/metrics", ksmPorts[0]))
	for _, w := range []string{`kube_deployment_created{namespace="observability",deployment="kube-state-metrics"}`, `kube_daemonset_created{namespace="observability",daemonset="node-exporter"}`} {
		if !strings.Contains(metrics, w) {
			t.Errorf("kube-state-metrics does not report %s", w)
		}
	}
	time.Sleep(2 * time.Second) // every informer has listed once
	if n := strings.Count(ksm.log(), "forbidden"); n > 0 {
		t.Errorf("kube-state-metrics was refused %d times: its ClusterRole lacks something\n%s", n, grepLines(ksm.log(), "forbidden", 5))
	}
}

// payloadFor is the linux/amd64 payload directory, or skips the test when it
// lacks one of bins (or cannot run it here).
func payloadFor(t *testing.T, bins ...string) string {
	t.Helper()
	if testing.Short() {
		t.Skip("starts etcd, kube-apiserver and the edition's components")
	}
	if runtime.GOOS != "linux" || runtime.GOARCH != "amd64" {
		t.Skip("runs the linux/amd64 payload")
	}
	dir, err := tooltest.PayloadDir("linux/amd64")
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range bins {
		if _, err := os.Stat(filepath.Join(dir, b)); err != nil {
			t.Skipf("payload binary %s is not built: run `tools/install.sh --platform linux/amd64 kubernetes etcd kruise kube-state-metrics node-exporter prometheus otelcol chaosblade`", b)
		}
	}
	return dir
}

// generateCRDs runs ci/crd-generate.sh COMPONENT into work/generated, as
// ci/offline-edition.sh does, or skips the test without controller-gen.
func generateCRDs(t *testing.T, component, work string) string {
	t.Helper()
	toolsBin := os.Getenv("CNSTACK_TOOLS_BIN")
	if toolsBin == "" {
		toolsBin = filepath.Join(repoRoot(t), ".cache", "tools", "bin")
	}
	if _, err := os.Stat(filepath.Join(toolsBin, "controller-gen")); err != nil {
		t.Skipf("controller-gen is not built: run `tools/install.sh controller-gen` (CNSTACK_TOOLS_BIN=%s)", toolsBin)
	}
	gen := filepath.Join(work, "generated")
	cmd := exec.Command("bash", filepath.Join(repoRoot(t), "ci", "crd-generate.sh"), component, gen)
	cmd.Env = append(os.Environ(), "CNSTACK_TOOLS_BIN="+toolsBin)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("ci/crd-generate.sh %s: %v\n%s", component, err, out)
	}
	return gen
}

type cluster struct {
	dir, work, kubeconfig string
}

type proc struct {
	name, logPath string
	cmd           *exec.Cmd
}

func (p *proc) log() string { b, _ := os.ReadFile(p.logPath); return string(b) }

func (c *cluster) start(t *testing.T, bin string, env []string, args ...string) *proc {
	t.Helper()
	p := &proc{name: bin, logPath: filepath.Join(c.work, bin+".log")}
	f, err := os.Create(p.logPath)
	if err != nil {
		t.Fatal(err)
	}
	p.cmd = exec.Command(filepath.Join(c.dir, bin), args...)
	p.cmd.Env = append([]string{"PATH=/usr/bin:/bin", "HOME=" + c.work}, env...)
	p.cmd.Dir = c.work
	p.cmd.Stdout, p.cmd.Stderr = f, f
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		p.cmd.Process.Kill()
		p.cmd.Wait()
		f.Close()
	})
	return p
}

func (c *cluster) kubectl(t *testing.T, args ...string) string {
	t.Helper()
	cmd := exec.Command(filepath.Join(c.dir, "kubectl"), append([]string{"--kubeconfig", c.kubeconfig}, args...)...)
	out, err := cmd.Output()
	if err != nil {
		var stderr string
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = string(ee.Stderr)
		}
		t.Fatalf("kubectl %s: %v\n%s%s", strings.Join(args, " "), err, out, stderr)
	}
	return string(out)
}

func writeKubeconfig(t *testing.T, path, server, token string) {
	t.Helper()
	kc := fmt.Sprintf(`apiVersion: v1
kind: Config
clusters: [{name: t, cluster: {server: %q, insecure-skip-tls-verify: true}}]
users: [{name: u, user: {token: %q}}]
contexts: [{name: t, context: {cluster: t, user: u}}]
current-context: t
`, server, token)
	if err := os.WriteFile(path, []byte(kc), 0o600); err != nil {
		t.Fatal(err)
	}
}

// saKubeconfig writes a kubeconfig with a token of ServiceAccount ns/name.
func (c *cluster) saKubeconfig(t *testing.T, ns, name string) string {
	t.Helper()
	token := strings.TrimSpace(c.kubectl(t, "-n", ns, "create", "token", name, "--duration=1h"))
	path := filepath.Join(c.work, ns+"-"+name+".kubeconfig")
	writeKubeconfig(t, path, c.server(t), token)
	return path
}

func (c *cluster) server(t *testing.T) string {
	return strings.TrimSpace(c.kubectl(t, "config", "view", "-o", "jsonpath={.clusters[0].cluster.server}"))
}

// startCluster runs etcd and kube-apiserver (RBAC on, a static admin token)
// on free loopback ports.
func startCluster(t *testing.T, dir, work string) *cluster {
	t.Helper()
	c := &cluster{dir: dir, work: work, kubeconfig: filepath.Join(work, "admin.kubeconfig")}
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(work, "sa.key"), string(pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)})), 0o600)
	writeFile(t, filepath.Join(work, "sa.pub"), string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub})), 0o600)
	writeFile(t, filepath.Join(work, "tokens.csv"), "admintoken,admin,admin,system:masters\n", 0o600)
	p := freePorts(t, 3)
	etcdURL, peerURL := fmt.Sprintf("http://127.0.0.1:%d", p[0]), fmt.Sprintf("http://127.0.0.1:%d", p[1])
	etcd := c.start(t, "etcd", nil, "--data-dir", filepath.Join(work, "etcd"), "--listen-client-urls", etcdURL, "--advertise-client-urls", etcdURL,
		"--listen-peer-urls", peerURL, "--initial-advertise-peer-urls", peerURL, "--initial-cluster", "default="+peerURL)
	waitHTTP(t, etcdURL+"/health", time.Minute, etcd)
	api := c.start(t, "kube-apiserver", nil, "--etcd-servers="+etcdURL, "--service-account-issuer=https://kubernetes.default.svc",
		"--service-account-key-file="+filepath.Join(work, "sa.pub"), "--service-account-signing-key-file="+filepath.Join(work, "sa.key"),
		"--token-auth-file="+filepath.Join(work, "tokens.csv"), "--authorization-mode=RBAC", "--bind-address=127.0.0.1",
		"--advertise-address=127.0.0.1", fmt.Sprintf("--secure-port=%d", p[2]), "--cert-dir="+filepath.Join(work, "apiserver-certs"),
		"--service-cluster-ip-range=10.96.0.0/16")
	writeKubeconfig(t, c.kubeconfig, fmt.Sprintf("https://127.0.0.1:%d", p[2]), "admintoken")
	waitFor(t, "kube-apiserver ready", 2*time.Minute, api, func() bool {
		out, err := exec.Command(filepath.Join(dir, "kubectl"), "--kubeconfig", c.kubeconfig, "get", "--raw", "/readyz").Output()
		return err == nil && strings.TrimSpace(string(out)) == "ok"
	})
	return c
}

func freePorts(t *testing.T, n int) []int {
	t.Helper()
	var ports []int
	var ls []net.Listener
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	for _, l := range ls {
		l.Close()
	}
	return ports
}

func waitFor(t *testing.T, what string, d time.Duration, p *proc, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s; %s log tail:\n%s", what, d, p.name, tail(p.log(), 25))
		}
		if p.cmd.ProcessState != nil {
			t.Fatalf("%s exited; log:\n%s", p.name, tail(p.log(), 25))
		}
		time.Sleep(time.Second)
	}
}

func waitHTTP(t *testing.T, url string, d time.Duration, p *proc) {
	t.Helper()
	waitFor(t, "GET "+url+" 200", d, p, func() bool {
		r, err := http.Get(url)
		if err != nil {
			return false
		}
		r.Body.Close()
		return r.StatusCode == http.StatusOK
	})
}

func get(t *testing.T, url string) string {
	t.Helper()
	r, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Body.Close()
	var b strings.Builder
	buf := make([]byte, 1<<16)
	for {
		n, err := r.Body.Read(buf)
		b.Write(buf[:n])
		if err != nil {
			break
		}
	}
	return b.String()
}

func tail(s string, n int) string {
	l := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(l) > n {
		l = l[len(l)-n:]
	}
	return strings.Join(l, "\n")
}

func grepLines(s, w string, n int) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, w) && len(out) < n {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
