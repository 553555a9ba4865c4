package imagescan

import (
	"slices"
	"strings"
	"testing"
)

const testDigest = "sha256:4c0fdaa8b6341bfdeca5f18f7837462c80cff90527ee35ef185571e1c327beac"

func TestNormalizeFound(t *testing.T) {
	tests := []struct {
		in, want string
		wantErr  string
	}{
		{in: "nginx", want: "docker.io/library/nginx:latest"},
		{in: "nginx:1.25", want: "docker.io/library/nginx:1.25"},
		{in: "library/nginx", want: "docker.io/library/nginx:latest"},
		{in: "docker.io/nginx", want: "docker.io/library/nginx:latest"},
		{in: "index.docker.io/library/nginx:1", want: "docker.io/library/nginx:1"},
		{in: "bitnami/redis:7.2", want: "docker.io/bitnami/redis:7.2"},
		{in: "nginx@" + testDigest, want: "docker.io/library/nginx@" + testDigest},
		{in: "nginx:1.25@" + testDigest, want: "docker.io/library/nginx:1.25@" + testDigest},
		{in: "quay.io/prometheus/prometheus:v2.47.0", want: "quay.io/prometheus/prometheus:v2.47.0"},
		{in: "localhost:5000/a/b", want: "localhost:5000/a/b:latest"},
		{in: "sea.hub:5000/library/registry:2.8.3", want: "sea.hub:5000/library/registry:2.8.3"},
		{in: "registry.k8s.io/pause:3.9", want: "registry.k8s.io/pause:3.9"},
		{in: "[::1]:5000/a:1", want: "[::1]:5000/a:1"},
		{in: "", wantErr: "empty"},
		{in: " nginx", wantErr: "white space"},
		{in: "Nginx", wantErr: "invalid image reference"},
		{in: "a b", wantErr: "invalid image reference"},
		{in: "nginx:", wantErr: "invalid image reference"},
		{in: "nginx@sha256:abc", wantErr: "invalid image reference"},
		{in: "nginx@" + testDigest + "@" + testDigest, wantErr: "more than one"},
		{in: "<no value>/tools/curl:1", wantErr: "invalid image reference"},
		{in: "{{ .Values.image }}", wantErr: "invalid image reference"},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			got, err := normalizeFound(tc.in)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("normalizeFound(%q) = %q, %v; want error containing %q", tc.in, got, err, tc.wantErr)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("normalizeFound(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
			}
			// Normalizing twice changes nothing.
			if again, err := normalizeFound(got); err != nil || again != got {
				t.Errorf("normalizeFound(%q) = %q, %v; not idempotent", got, again, err)
			}
		})
	}
}

func TestParseImageList(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want []string
	}{
		{name: "empty", in: "", want: []string{}},
		{name: "plain lines, no final newline", in: "a:1\nb:2", want: []string{"a:1", "b:2"}},
		{name: "blank lines and comments", in: "\n# all\n  # indented\n\na:1\n\n", want: []string{"a:1"}},
		{name: "quotes", in: "\"a:1\"\n'b:2'\n  \" c:3 \"  \n", want: []string{"a:1", "b:2", "c:3"}},
		{name: "trailing comment", in: "a:1 # why\nb:2\t# tab\n\"c:3\" # quoted\n", want: []string{"a:1", "b:2", "c:3"}},
		{name: "hash inside a token is kept for Normalize to reject", in: "a#b:1\n", want: []string{"a#b:1"}},
		{name: "CRLF", in: "a:1\r\nb:2\r\n", want: []string{"a:1", "b:2"}},
		{name: "duplicates kept", in: "a:1\na:1\n", want: []string{"a:1", "a:1"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseImageList(strings.NewReader(tc.in))
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("ParseImageList(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}
