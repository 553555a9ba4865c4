package verify

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/opencontainers/go-digest"
	corev1 "k8s.io/api/core/v1"

	"github.com/cnstack/cnstack/pkg/reference"
)

// DefaultProbeImage is the toolbox the Kubernetes assertions run their pods
// from (DNS lookups, an HTTP server and client): busybox, which the cnstack
// Kubernetes base carries in its registry. An image without it gets those
// assertions as not-run, with the reason.
const DefaultProbeImage = "registry.cnstack.local/cnstack/busybox:1.35.0"

// Kubernetes waits, generous because software-emulated guests are slow.
const (
	nodesReadyTimeout = 10 * time.Minute
	podsReadyTimeout  = 10 * time.Minute
	probeTimeout      = 5 * time.Minute
	// pullFailureGrace ends the wait for pods early once an image pull has
	// failed for this long: the image is not coming from anywhere.
	pullFailureGrace = 90 * time.Second
	pollEvery        = 5 * time.Second
	probeNamespace   = "cnstack-boot"
	kubeconfig       = "/etc/kubernetes/admin.conf"
)

// kubectl runs kubectl on master0 with the cluster's admin kubeconfig.
type kubectl struct{ n *node }

func (k kubectl) run(ctx context.Context, args string) (string, error) {
	out, err := k.n.vm.Run(ctx, "kubectl --kubeconfig "+kubeconfig+" "+args)
	if err != nil {
		return string(out.Stdout), fmt.Errorf("kubectl %s: %w: %s", args, err, strings.TrimSpace(string(out.Stderr)))
	}
	return string(out.Stdout), nil
}

func (k kubectl) getJSON(ctx context.Context, args string, v any) error {
	out, err := k.run(ctx, args+" -o json")
	if err != nil {
		return err
	}
	return json.Unmarshal([]byte(out), v)
}

func (k kubectl) apply(ctx context.Context, manifest string) error {
	var stderr strings.Builder
	err := k.n.vm.Exec(ctx, "kubectl --kubeconfig "+kubeconfig+" apply -f -", strings.NewReader(manifest), nil, &stderr)
	if err != nil {
		return fmt.Errorf("kubectl apply: %w: %s", err, strings.TrimSpace(stderr.String()))
	}
	return nil
}

// assertKubernetes checks the cluster sealer installed: nodes, pods, image
// pulls and where the images came from, DNS, Service routing and (with
// several nodes) the pod network across nodes. Each assertion carries the
// evidence it saw.
func assertKubernetes(ctx context.Context, opts Options, nodes []*node, exp *expected, reg *registryProbe, r *Report) {
	k := kubectl{nodes[0]}
	t0 := time.Now()
	r.add(waitNodesReady(ctx, k, len(nodes)))
	r.Figures["kubernetes: nodes Ready after sealer run"] = time.Since(t0).Round(time.Second).String()

	t1 := time.Now()
	running, pulls, pods := waitPods(ctx, k)
	r.add(running)
	r.Figures["kubernetes: pods Running after nodes Ready"] = time.Since(t1).Round(time.Second).String()
	r.add(assertNoPullErrors(ctx, k, pulls))
	r.add(assertImagesFromRegistry(ctx, reg, pods))

	probe := opts.ProbeImage
	if probe == "" {
		probe = DefaultProbeImage
	}
	if !carries(exp, probe) {
		for _, name := range probeAssertionNames(len(nodes)) {
			r.add(Assertion{Name: name, Status: NotRun, Evidence: fmt.Sprintf("the image does not carry the probe image %s in its registry, so no test pod can run offline", probe)})
		}
		return
	}
	for _, a := range runProbes(ctx, k, nodes, probe) {
		r.add(a)
	}
}

func probeAssertionNames(nodes int) []string {
	names := []string{"kubernetes: kubernetes.default resolves from a pod", "kubernetes: a Service routes to its pod"}
	if nodes > 1 {
		names = append(names, "kubernetes: a pod on a worker reaches a pod on the master")
	}
	return names
}

// carries reports whether the image's registry holds ref.
func carries(exp *expected, ref string) bool {
	want, err := reference.Parse(ref)
	if err != nil {
		return false
	}
	for _, ci := range exp.Images {
		if r, err := reference.Parse(ci.Image); err == nil && r.Repository == want.Repository && r.Tag == want.Tag {
			return true
		}
	}
	return false
}

// waitDefaultServiceAccount waits until namespace ns has its default
// ServiceAccount, without which the API server admits no pod there.
func waitDefaultServiceAccount(ctx context.Context, k kubectl, ns string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		_, err := k.run(ctx, "-n "+ns+" get serviceaccount default -o name")
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) || sleepCtx(ctx, pollEvery) != nil {
			return fmt.Errorf("namespace %s has no default ServiceAccount within %s, so no pod can be created there: %w", ns, timeout, err)
		}
	}
}

func waitNodesReady(ctx context.Context, k kubectl, want int) Assertion {
	t0 := time.Now()
	a := Assertion{Name: "kubernetes: every node Ready", Node: k.n.name}
	deadline := time.Now().Add(nodesReadyTimeout)
	var last string
	for {
		var list corev1.NodeList
		err := k.getJSON(ctx, "get nodes", &list)
		if err == nil {
			ready, lines := 0, []string{}
			for _, n := range list.Items {
				st, why := nodeReady(n)
				if st {
					ready++
				}
				lines = append(lines, fmt.Sprintf("%s %s kubelet %s, %s: %s", n.Name, readyWord(st), n.Status.NodeInfo.KubeletVersion, internalIP(n), why))
			}
			sort.Strings(lines)
			last = fmt.Sprintf("%d of %d nodes Ready (want %d)\n%s", ready, len(list.Items), want, strings.Join(lines, "\n"))
			if ready == want && len(list.Items) == want {
				a.Status, a.Evidence, a.Duration = Passed, last, time.Since(t0)
				return a
			}
		} else {
			last = err.Error()
		}
		if time.Now().After(deadline) || sleepCtx(ctx, pollEvery) != nil {
			a.Status, a.Evidence, a.Duration = Failed, fmt.Sprintf("not Ready within %s: %s", nodesReadyTimeout, last), time.Since(t0)
			return a
		}
	}
}

func nodeReady(n corev1.Node) (bool, string) {
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.Status == corev1.ConditionTrue, c.Reason + " " + c.Message
		}
	}
	return false, "no Ready condition yet"
}

func readyWord(ok bool) string {
	if ok {
		return "Ready"
	}
	return "NotReady"
}

func internalIP(n corev1.Node) string {
	for _, a := range n.Status.Addresses {
		if a.Type == corev1.NodeInternalIP {
			return a.Address
		}
	}
	return "no InternalIP"
}

// pullFailure is an image pull failure seen while waiting.
type pullFailure struct {
	Pod, Image, Reason, Message string
	Since                       time.Time
}

// waitPods waits until every pod is Running with its containers ready, or
// Succeeded. It watches for image pull failures on the way and stops early
// once one has lasted pullFailureGrace.
func waitPods(ctx context.Context, k kubectl) (Assertion, map[string]*pullFailure, []corev1.Pod) {
	t0 := time.Now()
	a := Assertion{Name: "kubernetes: every pod Running or Completed", Node: k.n.name}
	pulls := map[string]*pullFailure{}
	deadline := time.Now().Add(podsReadyTimeout)
	var last string
	var pods []corev1.Pod
	for {
		var list corev1.PodList
		err := k.getJSON(ctx, "get pods -A", &list)
		if err == nil {
			pods = list.Items
			var bad []string
			for _, p := range list.Items {
				name := p.Namespace + "/" + p.Name
				for _, cs := range append(append([]corev1.ContainerStatus{}, p.Status.InitContainerStatuses...), p.Status.ContainerStatuses...) {
					if w := cs.State.Waiting; w != nil && (w.Reason == "ImagePullBackOff" || w.Reason == "ErrImagePull" || w.Reason == "InvalidImageName") {
						key := name + " " + cs.Image
						if pulls[key] == nil {
							pulls[key] = &pullFailure{Pod: name, Image: cs.Image, Reason: w.Reason, Message: w.Message, Since: time.Now()}
						}
					}
				}
				if ok, why := podOK(p); !ok {
					bad = append(bad, name+": "+why)
				}
			}
			sort.Strings(bad)
			if len(bad) == 0 && len(list.Items) > 0 {
				a.Status, a.Duration = Passed, time.Since(t0)
				a.Evidence = fmt.Sprintf("all %d pods Running (containers ready) or Completed:\n%s", len(list.Items), podSummary(list.Items))
				return a, pulls, pods
			}
			last = fmt.Sprintf("%d of %d pods not Running/Completed:\n%s", len(bad), len(list.Items), strings.Join(bad, "\n"))
			for _, f := range pulls {
				if time.Since(f.Since) > pullFailureGrace {
					a.Status, a.Duration = Failed, time.Since(t0)
					a.Evidence = fmt.Sprintf("image %s of %s cannot be pulled (%s for %s, gave up waiting): %s\n%s", f.Image, f.Pod, f.Reason, pullFailureGrace, f.Message, last)
					return a, pulls, pods
				}
			}
		} else {
			last = err.Error()
		}
		if time.Now().After(deadline) || sleepCtx(ctx, pollEvery) != nil {
			a.Status, a.Evidence, a.Duration = Failed, fmt.Sprintf("not all pods Running within %s: %s", podsReadyTimeout, last), time.Since(t0)
			return a, pulls, pods
		}
	}
}

func podOK(p corev1.Pod) (bool, string) {
	switch p.Status.Phase {
	case corev1.PodSucceeded:
		return true, "Completed"
	case corev1.PodRunning:
		for _, cs := range p.Status.ContainerStatuses {
			if !cs.Ready {
				return false, "container " + cs.Name + " not ready" + waitingWhy(cs)
			}
		}
		return true, "Running"
	}
	why := string(p.Status.Phase)
	for _, cs := range append(append([]corev1.ContainerStatus{}, p.Status.InitContainerStatuses...), p.Status.ContainerStatuses...) {
		why += waitingWhy(cs)
	}
	return false, why
}

func waitingWhy(cs corev1.ContainerStatus) string {
	if w := cs.State.Waiting; w != nil {
		return fmt.Sprintf(" (%s %s: %s)", cs.Name, w.Reason, firstLine(w.Message))
	}
	return ""
}

func podSummary(pods []corev1.Pod) string {
	var lines []string
	for _, p := range pods {
		ok, why := podOK(p)
		_ = ok
		lines = append(lines, fmt.Sprintf("%s/%s on %s: %s", p.Namespace, p.Name, p.Spec.NodeName, why))
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

// assertNoPullErrors: no pod ever failed to pull an image — neither seen
// while waiting nor recorded in the cluster's events.
func assertNoPullErrors(ctx context.Context, k kubectl, seen map[string]*pullFailure) Assertion {
	a := Assertion{Name: "kubernetes: no ImagePullBackOff or ErrImagePull, ever", Node: k.n.name}
	var lines []string
	for _, f := range seen {
		lines = append(lines, fmt.Sprintf("%s: %s %s: %s", f.Pod, f.Image, f.Reason, firstLine(f.Message)))
	}
	var events corev1.EventList
	if err := k.getJSON(ctx, "get events -A", &events); err != nil {
		a.Status, a.Evidence = Failed, "cannot read the cluster's events: "+err.Error()
		return a
	}
	pulled := 0
	for _, e := range events.Items {
		switch {
		case e.Reason == "Pulled":
			pulled++
		case e.Reason == "Failed" && (strings.Contains(e.Message, "ErrImagePull") || strings.Contains(e.Message, "Failed to pull image")),
			e.Reason == "BackOff" && strings.Contains(e.Message, "pulling image"),
			e.Reason == "InspectFailed":
			lines = append(lines, fmt.Sprintf("event %s/%s %s: %s", e.Namespace, e.InvolvedObject.Name, e.Reason, firstLine(e.Message)))
		}
	}
	sort.Strings(lines)
	if len(lines) > 0 {
		a.Status, a.Evidence = Failed, strings.Join(dedupe(lines), "\n")
		return a
	}
	a.Status = Passed
	a.Evidence = fmt.Sprintf("no pull failure among %d events (%d Pulled), none seen on any pod while waiting", len(events.Items), pulled)
	return a
}

// assertImagesFromRegistry checks that the image of every running
// container, by the digest containerd resolved, is one the embedded
// registry serves (the containerd configuration sends every registry there;
// the egress counters show nothing else was reached).
func assertImagesFromRegistry(ctx context.Context, reg *registryProbe, pods []corev1.Pod) Assertion {
	a := Assertion{Name: "kubernetes: every pod image was served by the in-VM registry"}
	if reg == nil {
		a.Status, a.Evidence = Failed, "the embedded registry could not be reached from the host"
		return a
	}
	seen := map[string]string{}
	for _, p := range pods {
		for _, cs := range append(append([]corev1.ContainerStatus{}, p.Status.InitContainerStatuses...), p.Status.ContainerStatuses...) {
			if cs.ImageID != "" {
				seen[cs.ImageID] = p.Namespace + "/" + p.Name
			}
		}
	}
	if len(seen) == 0 {
		a.Status, a.Evidence = Failed, "no container reports an image ID"
		return a
	}
	var lines []string
	failed := 0
	for _, id := range sortedKeys(seen) {
		repo, dgst, ok := strings.Cut(id, "@")
		if !ok {
			failed++
			lines = append(lines, fmt.Sprintf("FAIL %s (%s): not repository@digest", id, seen[id]))
			continue
		}
		r, err := reference.Parse(repo + ":x")
		if err != nil {
			failed++
			lines = append(lines, fmt.Sprintf("FAIL %s (%s): %v", id, seen[id], err))
			continue
		}
		if err := reg.hasManifest(ctx, r.Repository, dgst); err != nil {
			failed++
			lines = append(lines, fmt.Sprintf("FAIL %s (%s): %v", id, seen[id], err))
			continue
		}
		lines = append(lines, fmt.Sprintf("ok %s: sea.hub:5000/%s@%s (%s)", repo, r.Repository, shortDigest(digest.Digest(dgst)), seen[id]))
	}
	a.Evidence = fmt.Sprintf("%d of %d images served by the embedded registry at the digest containerd ran\n%s", len(seen)-failed, len(seen), strings.Join(lines, "\n"))
	a.Status = Passed
	if failed > 0 {
		a.Status = Failed
	}
	return a
}

// runProbes starts the test pods (an HTTP server behind a Service, DNS and
// HTTP clients, and with several nodes a client on a worker) and judges
// what they saw.
func runProbes(ctx context.Context, k kubectl, nodes []*node, image string) []Assertion {
	master := nodeName(ctx, k, nodes[0])
	server := fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata: {name: web, namespace: %[1]s, labels: {app: cnstack-web}}
spec:
  nodeName: %[2]s
  tolerations: [{operator: Exists}]
  containers:
    - name: web
      image: %[3]s
      command: ["/bin/sh", "-c", "mkdir -p /www && echo cnstack-web-$(hostname) > /www/index.html && exec httpd -f -p 8080 -h /www"]
      ports: [{containerPort: 8080}]
      readinessProbe: {tcpSocket: {port: 8080}, periodSeconds: 2}
---
apiVersion: v1
kind: Service
metadata: {name: web, namespace: %[1]s}
spec:
  selector: {app: cnstack-web}
  ports: [{port: 80, targetPort: 8080}]
`, probeNamespace, master, image)
	names := probeAssertionNames(len(nodes))
	fail := func(why string) []Assertion {
		var out []Assertion
		for _, n := range names {
			out = append(out, Assertion{Name: n, Node: nodes[0].name, Status: Failed, Evidence: why})
		}
		return out
	}
	if err := createProbeNamespace(ctx, k); err != nil {
		return fail("could not create the test namespace: " + err.Error())
	}
	if err := k.apply(ctx, server); err != nil {
		return fail("could not create the test pods: " + err.Error())
	}
	if _, err := k.run(ctx, fmt.Sprintf("wait -n %s --for=condition=Ready pod/web --timeout=%ds", probeNamespace, int(probeTimeout.Seconds()))); err != nil {
		desc, _ := k.run(ctx, "describe -n "+probeNamespace+" pod/web")
		return fail("the test web server did not become Ready: " + err.Error() + "\n" + tailString(desc, 15))
	}
	var web corev1.Pod
	if err := k.getJSON(ctx, "get -n "+probeNamespace+" pod/web", &web); err != nil {
		return fail(err.Error())
	}
	clusterIP, err := k.run(ctx, "get -n default service/kubernetes -o jsonpath={.spec.clusterIP}")
	if err != nil {
		return fail(err.Error())
	}
	clusterIP = strings.TrimSpace(clusterIP)
	var out []Assertion
	out = append(out, probePod(ctx, k, "kubernetes: kubernetes.default resolves from a pod", "dns", master, image,
		"nslookup kubernetes.default.svc.cluster.local", func(log string) error {
			if !strings.Contains(log, "Address: "+clusterIP) && !strings.Contains(log, "Address 1: "+clusterIP) {
				return fmt.Errorf("the answer does not name the kubernetes Service's ClusterIP %s", clusterIP)
			}
			return nil
		}))
	want := "cnstack-web-web"
	// busybox's own resolver (nslookup) finds the Service; its nc speaks HTTP
	// (Debian's static busybox wget crashes on the C library's lookups).
	get := func(host, port string) string {
		return "printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 10 " + host + " " + port
	}
	svcName := "web." + probeNamespace + ".svc.cluster.local"
	out = append(out, probePod(ctx, k, "kubernetes: a Service routes to its pod", "svc", master, image,
		"ip=$(nslookup "+svcName+" | awk '/^Address/ && !/:53$/ {a=$NF} END {print a}'); echo \""+svcName+" is $ip\"; "+get("$ip", "80"), func(log string) error {
			if !strings.Contains(log, want) {
				return fmt.Errorf("the answer is not the web pod's page %q", want)
			}
			return nil
		}))
	if len(nodes) > 1 {
		worker := nodeName(ctx, k, nodes[1])
		out = append(out, probePod(ctx, k, "kubernetes: a pod on a worker reaches a pod on the master", "podnet", worker, image,
			get(web.Status.PodIP, "8080"), func(log string) error {
				if !strings.Contains(log, want) {
					return fmt.Errorf("the answer is not the web pod's page %q", want)
				}
				return nil
			}))
		out[len(out)-1].Evidence = fmt.Sprintf("web on %s (%s), client on %s\n%s", master, web.Status.PodIP, worker, out[len(out)-1].Evidence)
	}
	return out
}

// createProbeNamespace creates the probes' namespace and waits for its
// default ServiceAccount: the API server refuses pods in a namespace whose
// ServiceAccount controller has not caught up yet ("serviceaccount default
// not found"), which happens on a busy node seconds after the namespace exists.
func createProbeNamespace(ctx context.Context, k kubectl) error {
	if err := k.apply(ctx, "apiVersion: v1\nkind: Namespace\nmetadata: {name: "+probeNamespace+"}\n"); err != nil {
		return err
	}
	deadline := time.Now().Add(probeTimeout)
	for {
		_, err := k.run(ctx, "get -n "+probeNamespace+" serviceaccount/default")
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("no default ServiceAccount in namespace %s after %s: %w", probeNamespace, probeTimeout, err)
		}
		if err := sleepCtx(ctx, 2*time.Second); err != nil {
			return err
		}
	}
}

// probePod runs one command in a pod on node and judges its output.
func probePod(ctx context.Context, k kubectl, name, pod, node, image, command string, judge func(string) error) (a Assertion) {
	t0 := time.Now()
	a = Assertion{Name: name, Node: node}
	defer func() { a.Duration = time.Since(t0) }()
	manifest := fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata: {name: %s, namespace: %s}
spec:
  nodeName: %s
  restartPolicy: Never
  tolerations: [{operator: Exists}]
  containers:
    - name: probe
      image: %s
      command: ["/bin/sh", "-c", %s]
`, pod, probeNamespace, node, image, strconv.Quote(command))
	if err := k.apply(ctx, manifest); err != nil {
		a.Status, a.Evidence = Failed, err.Error()
		return a
	}
	phase, werr := waitPodDone(ctx, k, pod)
	log, _ := k.run(ctx, "logs -n "+probeNamespace+" pod/"+pod)
	ev := fmt.Sprintf("pod %s on %s ran %q:\n%s", pod, node, command, strings.TrimSpace(log))
	if werr != nil || phase != corev1.PodSucceeded {
		desc, _ := k.run(ctx, "get -n "+probeNamespace+" pod/"+pod+" -o wide")
		a.Status, a.Evidence = Failed, fmt.Sprintf("%s\nthe pod did not succeed (%s %v)\n%s", ev, phase, werr, desc)
		return a
	}
	if err := judge(log); err != nil {
		a.Status, a.Evidence = Failed, ev+"\n"+err.Error()
		return a
	}
	a.Status, a.Evidence = Passed, ev
	return a
}

// waitPodDone waits until a probe pod has Succeeded or Failed.
func waitPodDone(ctx context.Context, k kubectl, pod string) (corev1.PodPhase, error) {
	deadline := time.Now().Add(probeTimeout)
	for {
		var p corev1.Pod
		err := k.getJSON(ctx, "get -n "+probeNamespace+" pod/"+pod, &p)
		if err == nil && (p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed) {
			return p.Status.Phase, nil
		}
		if time.Now().After(deadline) {
			if err == nil {
				err = fmt.Errorf("still %s after %s", p.Status.Phase, probeTimeout)
			}
			return p.Status.Phase, err
		}
		if err := sleepCtx(ctx, 2*time.Second); err != nil {
			return p.Status.Phase, err
		}
	}
}

// nodeName is the Kubernetes node name of a VM: the node whose InternalIP
// is the VM's address (sealer names nodes by hostname).
func nodeName(ctx context.Context, k kubectl, n *node) string {
	var list corev1.NodeList
	if err := k.getJSON(ctx, "get nodes", &list); err == nil {
		for _, kn := range list.Items {
			if internalIP(kn) == n.ip().String() {
				return kn.Name
			}
		}
	}
	return n.name
}

func dedupe(lines []string) []string {
	var out []string
	for i, l := range lines {
		if i == 0 || l != lines[i-1] {
			out = append(out, l)
		}
	}
	return out
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// registryProbe reaches the embedded registry from the host through the
// VM's forwarded port, trusting the CA sealer made for it (TLS name sea.hub).
type registryProbe struct {
	host   string
	client *http.Client
	plain  bool
}

// newRegistryProbe reads the registry's CA from master0 (where sealer put it
// for containerd) and pins the TLS name to the registry domain.
func newRegistryProbe(ctx context.Context, n *node, domain string) (*registryProbe, error) {
	port, ok := n.vm.HostPort(registryPort)
	if !ok {
		return nil, errors.New("the registry port is not forwarded")
	}
	out, err := n.vm.Run(ctx, fmt.Sprintf("cat /etc/containerd/certs.d/%s:%d/%s.crt", domain, registryPort, domain))
	if err != nil {
		return nil, fmt.Errorf("read the registry CA: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(out.Stdout) {
		return nil, errors.New("the registry CA on master0 is not a PEM certificate")
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{RootCAs: pool, ServerName: domain, MinVersion: tls.VersionTLS12}
	return &registryProbe{host: "127.0.0.1:" + strconv.Itoa(port), client: &http.Client{Transport: tr, Timeout: 30 * time.Second}}, nil
}

// plainRegistryProbe reaches a registry served over plain HTTP (cnstack's
// own installer runs it without TLS).
func plainRegistryProbe(n *node) (*registryProbe, error) {
	port, ok := n.vm.HostPort(registryPort)
	if !ok {
		return nil, errors.New("the registry port is not forwarded")
	}
	return &registryProbe{host: "127.0.0.1:" + strconv.Itoa(port), client: &http.Client{Timeout: 30 * time.Second}, plain: true}, nil
}

func (p *registryProbe) hasManifest(ctx context.Context, repo, dgst string) error {
	scheme := "https"
	if p.plain {
		scheme = "http"
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodHead, scheme+"://"+p.host+"/v2/"+repo+"/manifests/"+dgst, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.docker.distribution.manifest.v2+json")
	resp, err := p.client.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("the registry answers %s for %s@%s", resp.Status, repo, dgst)
	}
	return nil
}
