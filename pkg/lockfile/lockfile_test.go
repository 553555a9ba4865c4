package lockfile

import (
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite golden files")

const (
	d1 = "sha256:1111111111111111111111111111111111111111111111111111111111111111"
	d2 = "sha256:2222222222222222222222222222222222222222222222222222222222222222"
	d3 = "sha256:3333333333333333333333333333333333333333333333333333333333333333"
)

func sample() *File {
	return &File{Version: Version,
		Images: []Image{
			{Image: "registry.k8s.io/pause:3.10.1", Digest: d1, MediaType: "application/vnd.oci.image.index.v1+json",
				Platforms: []Platform{{Platform: "linux/arm64", Digest: d3}, {Platform: "linux/amd64", Digest: d2}}, Layers: []string{"base", "base"}},
			{Image: "docker.io/library/redis:7.2", Digest: d2, MediaType: "application/vnd.docker.distribution.manifest.v2+json", Layers: []string{"middleware"}},
		},
		Sources: []Source{{URL: "https://example.com/b.tgz", Checksum: d3, Layers: []string{"mesh"}}, {URL: "https://example.com/a.tgz", Checksum: d1}},
		Charts: []Chart{
			{Chart: "oci://registry.example.com/charts/rocketmq:0.0.1", Manifest: d1, Digest: d2, Layers: []string{"middleware"}},
			{Chart: "helm+https://dapr.github.io/helm-charts/dapr:1.16.19", URL: "https://github.com/dapr/helm-charts/raw/master/dapr-1.16.19.tgz", Digest: d3, Layers: []string{"mesh", "mesh"}},
		},
	}
}

func TestMarshalGoldenAndStable(t *testing.T) {
	b, err := sample().Marshal()
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join("testdata", "cnstack.lock.golden")
	if *update {
		os.MkdirAll("testdata", 0o755)
		os.WriteFile(p, b, 0o644)
	}
	want, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != string(want) {
		t.Errorf("lock file:\n%s\nwant:\n%s", b, want)
	}
	// Reading and writing again gives the same bytes.
	f, err := Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	b2, _ := f.Marshal()
	if string(b2) != string(b) {
		t.Errorf("round trip changed the file:\n%s", b2)
	}
	dir := t.TempDir()
	if Find(dir) != "" {
		t.Errorf("Find in an empty directory")
	}
	if err := Write(filepath.Join(dir, FileName), f); err != nil {
		t.Fatal(err)
	}
	if Find(dir) != filepath.Join(dir, FileName) {
		t.Errorf("Find did not find the written lock file")
	}
	if _, err := Read(Find(dir)); err != nil {
		t.Fatal(err)
	}
}

func TestParseRefuses(t *testing.T) {
	for name, text := range map[string]string{
		"unknown version":      "lockVersion: 2\nimages: []\n",
		"unknown key":          "lockVersion: 1\nimages: []\nextra: 1\n",
		"not normalized":       "lockVersion: 1\nimages:\n  - image: redis\n    digest: " + d1 + "\n    mediaType: x\n",
		"bad digest":           "lockVersion: 1\nimages:\n  - image: docker.io/library/redis:latest\n    digest: sha256:xyz\n    mediaType: x\n",
		"chart twice":          "lockVersion: 1\nimages: []\ncharts:\n  - {chart: 'oci://r/c:1.0.0', manifest: " + d1 + ", digest: " + d2 + "}\n  - {chart: 'oci://r/c:1.0.0', manifest: " + d1 + ", digest: " + d2 + "}\n",
		"chart without digest": "lockVersion: 1\nimages: []\ncharts:\n  - {chart: 'oci://r/c:1.0.0', manifest: " + d1 + "}\n",
		"chart without place":  "lockVersion: 1\nimages: []\ncharts:\n  - {chart: 'oci://r/c:1.0.0', digest: " + d1 + "}\n",
		"duplicate":            "lockVersion: 1\nimages:\n  - image: docker.io/library/redis:latest\n    digest: " + d1 + "\n    mediaType: x\n  - image: docker.io/library/redis:latest\n    digest: " + d1 + "\n    mediaType: x\n",
	} {
		if _, err := Parse([]byte(text)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestPin(t *testing.T) {
	f := sample()
	tests := []struct {
		ref, platform string
		want          string
		err           error
	}{
		{"registry.k8s.io/pause:3.10.1", "linux/amd64", d1 + " child " + d2, nil},
		{"registry.k8s.io/pause:3.10.1", "linux/arm64", d1 + " child " + d3, nil},
		{"registry.k8s.io/pause:3.10.1", "linux/s390x", "", ErrDrifted},
		{"docker.io/library/redis:7.2", "linux/s390x", d2 + " child ", nil}, // one manifest serves any platform
		{"docker.io/library/redis:7.3", "linux/amd64", "", ErrUnpinned},
	}
	for _, tt := range tests {
		p, err := f.Pin(tt.ref, tt.platform)
		if tt.err != nil {
			if !errors.Is(err, tt.err) || !strings.Contains(err.Error(), tt.ref) {
				t.Errorf("Pin(%s, %s) err = %v, want %v naming the image", tt.ref, tt.platform, err, tt.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("Pin(%s, %s): %v", tt.ref, tt.platform, err)
			continue
		}
		if got := p.Digest.String() + " child " + p.Child.String(); got != tt.want {
			t.Errorf("Pin(%s, %s) = %s, want %s", tt.ref, tt.platform, got, tt.want)
		}
	}
	if c, ok := f.LookupChart("oci://registry.example.com/charts/rocketmq:0.0.1"); !ok || c.Digest != d2 {
		t.Errorf("LookupChart = %+v, %v", c, ok)
	}
	if _, ok := f.LookupChart("oci://registry.example.com/charts/rocketmq:0.0.2"); ok {
		t.Error("LookupChart of another version found a pin")
	}
	// A reference that carries its own digest must agree with the lock.
	f.Images = append(f.Images, Image{Image: "docker.io/x/y:1@" + d1, Digest: d2, MediaType: "application/vnd.oci.image.manifest.v1+json"})
	if _, err := f.Pin("docker.io/x/y:1@"+d1, "linux/amd64"); !errors.Is(err, ErrDrifted) {
		t.Errorf("digest disagreeing with the lock: err = %v", err)
	}
}

// TestCompare pins what `cnstack lock --check` reports: missing, up to
// date, or out of date with one line per image added, re-pinned or
// removed.
func TestCompare(t *testing.T) {
	path := filepath.Join(t.TempDir(), FileName)
	cur := sample()
	if st, _, err := Compare(path, cur); err != nil || st != Missing {
		t.Fatalf("no file: %v, %v; want Missing", st, err)
	}
	if err := Write(path, cur); err != nil {
		t.Fatal(err)
	}
	if st, changes, err := Compare(path, cur); err != nil || st != UpToDate || changes != nil {
		t.Fatalf("same lock: %v %v %v; want UpToDate", st, changes, err)
	}
	next := sample()
	next.Images[0].Digest = d3                                                                      // re-pinned
	next.Images = append(next.Images[:1], Image{Image: "docker.io/library/nginx:1.27", Digest: d1}) // redis removed, nginx added
	_, changes, err := Compare(path, next)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"  ~ registry.k8s.io/pause:3.10.1 " + d1 + " -> " + d3,
		"  + docker.io/library/nginx:1.27 " + d1,
		"  - docker.io/library/redis:7.2",
	}
	if strings.Join(changes, "\n") != strings.Join(want, "\n") {
		t.Errorf("changes:\n%s\nwant:\n%s", strings.Join(changes, "\n"), strings.Join(want, "\n"))
	}
	sourcesOnly := sample()
	sourcesOnly.Sources = sourcesOnly.Sources[:1]
	if _, changes, _ := Compare(path, sourcesOnly); len(changes) != 1 || !strings.Contains(changes[0], "remote sources or layers changed") {
		t.Errorf("sources only: %q", changes)
	}
	if err := os.WriteFile(path, []byte("not: [a lock"), 0o644); err != nil {
		t.Fatal(err)
	}
	if st, changes, err := Compare(path, cur); err != nil || st != OutOfDate || len(changes) != 1 {
		t.Errorf("unparsable file: %v %q %v; want OutOfDate saying why", st, changes, err)
	}
	if n := cur.MultiArch(); n != 1 {
		t.Errorf("MultiArch = %d, want 1", n)
	}
}

// A lock written for more platforms covers the lock of one of them; any
// other difference is not covered.
func TestCovers(t *testing.T) {
	const idx = "application/vnd.oci.image.index.v1+json"
	both := &File{Version: 1, Images: []Image{
		{Image: "docker.io/library/redis:7.2", Digest: d1, MediaType: idx, Platforms: []Platform{{"linux/amd64", d2}, {"linux/arm64", d3}}},
	}, Sources: []Source{{URL: "https://example.com/a.tgz", Checksum: d1}}}
	amd64 := func(edit func(*File)) *File {
		f := &File{Version: 1, Images: []Image{
			{Image: "docker.io/library/redis:7.2", Digest: d1, MediaType: idx, Platforms: []Platform{{"linux/amd64", d2}}},
		}, Sources: []Source{{URL: "https://example.com/a.tgz", Checksum: d1}}}
		if edit != nil {
			edit(f)
		}
		return f
	}
	for _, tc := range []struct {
		name  string
		fresh *File
		want  bool
	}{
		{"one of its platforms", amd64(nil), true},
		{"itself", both, true},
		{"a platform it does not pin", amd64(func(f *File) { f.Images[0].Platforms[0].Platform = "linux/s390x" }), false},
		{"another child digest", amd64(func(f *File) { f.Images[0].Platforms[0].Digest = d3 }), false},
		{"another index", amd64(func(f *File) { f.Images[0].Digest = d2 }), false},
		{"an image it lacks", amd64(func(f *File) { f.Images = append(f.Images, Image{Image: "docker.io/library/nginx:1", Digest: d1}) }), false},
		{"another source checksum", amd64(func(f *File) { f.Sources[0].Checksum = d2 }), false},
		{"a chart it lacks", amd64(func(f *File) { f.Charts = []Chart{{Chart: "oci://r/c:1", Digest: d1}} }), false},
		{"another lock version", amd64(func(f *File) { f.Version = 2 }), false},
	} {
		if got := both.Covers(tc.fresh); got != tc.want {
			t.Errorf("%s: Covers = %v, want %v", tc.name, got, tc.want)
		}
	}
}
