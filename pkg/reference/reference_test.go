package reference

import (
	"strings"
	"testing"
)

func TestNormalize(t *testing.T) {
	const d = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	tests := []struct{ in, want, err string }{
		{in: "nginx", want: "docker.io/library/nginx:latest"},
		{in: "nginx:1.25", want: "docker.io/library/nginx:1.25"},
		{in: "docker.io/nginx", want: "docker.io/library/nginx:latest"},
		{in: "index.docker.io/library/nginx:1", want: "docker.io/library/nginx:1"},
		{in: "sealerio/lvscare:v1.1.3-beta.8", want: "docker.io/sealerio/lvscare:v1.1.3-beta.8"},
		{in: "registry.k8s.io/coredns/coredns:v1.8.4", want: "registry.k8s.io/coredns/coredns:v1.8.4"},
		{in: "127.0.0.1:5000/a/b", want: "127.0.0.1:5000/a/b:latest"},
		{in: "localhost/x:1", want: "localhost/x:1"},
		{in: "nginx@" + d, want: "docker.io/library/nginx@" + d},
		{in: "nginx:1.25@" + d, want: "docker.io/library/nginx:1.25@" + d},
		{in: "127.0.0.1:5000/a@" + d, want: "127.0.0.1:5000/a@" + d},
		{in: "library/nginx", want: "docker.io/library/nginx:latest"},
		{in: "bitnami/redis:7.2", want: "docker.io/bitnami/redis:7.2"},
		{in: "quay.io/prometheus/prometheus:v2.47.0", want: "quay.io/prometheus/prometheus:v2.47.0"},
		{in: "sea.hub:5000/library/registry:2.8.3", want: "sea.hub:5000/library/registry:2.8.3"},
		{in: "[::1]:5000/a:1", want: "[::1]:5000/a:1"},
		// A typed reference is trimmed (imagescan refuses white space in
		// a reference found in a file before it asks here).
		{in: " nginx\t", want: "docker.io/library/nginx:latest"},
		{in: "", err: "empty image reference"},
		{in: "  ", err: "empty image reference"},
		{in: "a b", err: "invalid image reference"},
		{in: "nginx:", err: "invalid image reference"},
		{in: "nginx@" + d + "@" + d, err: "more than one '@'"},
		{in: "<no value>/tools/curl:1", err: "invalid image reference"},
		{in: "{{ .Values.image }}", err: "invalid image reference"},
		{in: "Upper/Case", err: "invalid image reference"},
		{in: "nginx@sha256:short", err: "invalid image reference"},
	}
	for _, tt := range tests {
		got, err := Normalize(tt.in)
		if tt.err != "" {
			if err == nil || !contains(err.Error(), tt.err) {
				t.Errorf("Normalize(%q) error = %v, want %q", tt.in, err, tt.err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("Normalize(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
		if again, err := Normalize(got); err != nil || again != got {
			t.Errorf("Normalize(%q) = %q, %v; not idempotent", got, again, err)
		}
	}
}

func TestRelocate(t *testing.T) {
	r, _ := Parse("docker.io/cnstack/base:v1")
	got, err := r.Relocate("127.0.0.1:5001/private/")
	if err != nil || got.String() != "127.0.0.1:5001/private/cnstack/base:v1" {
		t.Fatalf("Relocate = %v, %v", got, err)
	}
}

func contains(s, sub string) bool {
	return strings.Contains(s, sub)
}

// Issue 8 defect 7: a huge or control-laden name is refused, and the error
// neither echoes 200 KB nor raw escape bytes.
func TestParseRefusesHostileNames(t *testing.T) {
	for _, ref := range []string{
		"example.com/" + strings.Repeat("a", 200<<10) + ":v1",
		"example.com/x:\x1b[31mred",
		"example.com/x\r:v1",
	} {
		_, err := Parse(ref)
		if err == nil {
			t.Fatalf("accepted %.40q", ref)
		}
		if len(err.Error()) > 400 || strings.ContainsAny(err.Error(), "\x1b\r") {
			t.Errorf("error for %.40q is unsafe to print: %.200q (%d bytes)", ref, err, len(err.Error()))
		}
	}
}

func TestParseTag(t *testing.T) {
	const d = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	for in, ok := range map[string]bool{
		"x/app:v1":           true,
		"x/app":              true, // :latest, as docker tags
		"x/app@" + d:         false,
		"x/app:v1@" + d:      false,
		"X/App:v1":           false,
		"127.0.0.1:5000/a:b": true,
	} {
		_, err := ParseTag(in)
		if (err == nil) != ok {
			t.Errorf("ParseTag(%q): err = %v, want ok %v", in, err, ok)
		}
	}
}
