package chartref

import (
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Ref
		file string
	}{
		{"helm+https://istio-release.storage.googleapis.com/charts/istiod:1.16.7",
			Ref{Repository, "https://istio-release.storage.googleapis.com/charts", "istiod", "1.16.7"}, "istiod.tgz"},
		{"helm+https://openkruise.github.io/charts/kruise:1.8.3",
			Ref{Repository, "https://openkruise.github.io/charts", "kruise", "1.8.3"}, "kruise.tgz"},
		{"helm+http://127.0.0.1:5000/kruise:1.9.0-alpha.3",
			Ref{Repository, "http://127.0.0.1:5000", "kruise", "1.9.0-alpha.3"}, "kruise.tgz"},
		{"helm+https://github.com/chaosblade-io/chaosblade-operator/releases/download/v1.8.0/chaosblade-operator-amd64-1.8.0.tgz",
			Ref{Archive, "https://github.com/chaosblade-io/chaosblade-operator/releases/download/v1.8.0/chaosblade-operator-amd64-1.8.0.tgz", "chaosblade-operator-amd64", "1.8.0"}, "chaosblade-operator-amd64.tgz"},
		{"helm+https://example.com/c/kruise-1.9.0-alpha.3.tgz",
			Ref{Archive, "https://example.com/c/kruise-1.9.0-alpha.3.tgz", "kruise", "1.9.0-alpha.3"}, "kruise.tgz"},
		{"oci://registry-1.docker.io/apache/skywalking-helm:4.9.0",
			Ref{OCI, "registry-1.docker.io/apache/skywalking-helm", "skywalking-helm", "4.9.0"}, "skywalking-helm.tgz"},
		{"oci://127.0.0.1:5000/charts/rocketmq:0.0.1+build.1",
			Ref{OCI, "127.0.0.1:5000/charts/rocketmq", "rocketmq", "0.0.1+build.1"}, "rocketmq.tgz"},
	} {
		got, err := Parse(tc.in)
		if err != nil {
			t.Errorf("Parse(%q): %v", tc.in, err)
			continue
		}
		if got != tc.want {
			t.Errorf("Parse(%q) = %+v, want %+v", tc.in, got, tc.want)
		}
		if got.String() != tc.in {
			t.Errorf("String() = %q, want %q", got.String(), tc.in)
		}
		if got.FileName() != tc.file {
			t.Errorf("FileName() = %q, want %q", got.FileName(), tc.file)
		}
		if !IsChart(tc.in) {
			t.Errorf("IsChart(%q) = false", tc.in)
		}
	}
	if r, _ := Parse("oci://127.0.0.1:5000/charts/rocketmq:0.0.1+build.1"); r.Tag() != "0.0.1_build.1" || r.Host() != "127.0.0.1:5000" {
		t.Errorf("Tag/Host = %q %q", r.Tag(), r.Host())
	}
}

func TestParseErrors(t *testing.T) {
	for in, want := range map[string]string{
		"https://example.com/charts/x:1.0.0":                "not a chart reference",
		"helm+https://example.com/charts/istiod":            "<repository URL>/<chart>:<version>",
		"helm+https://example.com/charts/istiod:":           "version is empty",
		"helm+https://example.com/charts/istiod:~1.16":      "not a SemVer version",
		"helm+https://example.com/charts/istiod:1.16.7#x":   "no query, fragment",
		"helm+https://example.com/charts/istiod:1.16.7?a=b": "no query, fragment",
		"helm+https://example.com/x/istiod.tgz":             "<chart>-<version>.tgz",
		"helm+https:///istiod:1.0.0":                        "not a valid URL",
		"helm+https://example.com/c/is tiod:1.0.0":          "has the character",
		"helm+https://example.com/c/is$tiod:1.0.0":          "has the character",
		"oci://registry-1.docker.io/apache/skywalking-helm": "version is missing",
		"oci://skywalking-helm:4.9.0":                       "oci://<registry>/<repository>/<chart>:<version>",
		"oci://r.io/a/chart@sha256:abcd":                    "name the chart by version",
		"oci://r.io/A/chart:1.0.0":                          "lower case",
	} {
		_, err := Parse(in)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Parse(%q) = %v, want an error containing %q", in, err, want)
		}
	}
}
