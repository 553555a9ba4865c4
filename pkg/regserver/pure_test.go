package regserver

import (
	"bytes"
	"errors"
	"log/slog"
	"reflect"
	"strings"
	"testing"

	"github.com/sirupsen/logrus"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

func TestCheckListenAddr(t *testing.T) {
	tests := []struct {
		addr        string
		allowRemote bool
		wantErr     bool
		remote      bool // the error is ErrRemoteAddr
	}{
		{addr: "127.0.0.1:5000"},
		{addr: "127.0.0.1:0"},
		{addr: "127.8.9.10:5000"},
		{addr: "[::1]:5000"},
		{addr: "localhost:5000"},
		{addr: "LOCALHOST:5000"},
		{addr: "[::ffff:127.0.0.1]:5000"},
		{addr: ":5000", wantErr: true, remote: true},
		{addr: "0.0.0.0:5000", wantErr: true, remote: true},
		{addr: "[::]:5000", wantErr: true, remote: true},
		{addr: "10.0.0.5:5000", wantErr: true, remote: true},
		{addr: "registry.example:5000", wantErr: true, remote: true},
		{addr: "0.0.0.0:5000", allowRemote: true},
		{addr: ":5000", allowRemote: true},
		{addr: "127.0.0.1", wantErr: true},
		{addr: "127.0.0.1:", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.addr, func(t *testing.T) {
			err := checkListenAddr(tt.addr, tt.allowRemote)
			if (err != nil) != tt.wantErr {
				t.Fatalf("checkListenAddr(%q, %v) = %v, want error %v", tt.addr, tt.allowRemote, err, tt.wantErr)
			}
			if got := errors.Is(err, ErrRemoteAddr); got != tt.remote {
				t.Fatalf("errors.Is(%v, ErrRemoteAddr) = %v, want %v", err, got, tt.remote)
			}
		})
	}
}

func TestSplitReferrersPath(t *testing.T) {
	tests := []struct {
		path, name, ref string
		ok              bool
	}{
		{path: "/v2/app/referrers/sha256:abc", name: "app", ref: "sha256:abc", ok: true},
		{path: "/v2/a/b/c/referrers/sha256:abc", name: "a/b/c", ref: "sha256:abc", ok: true},
		{path: "/v2/a/referrers/b/referrers/sha256:abc", name: "a/referrers/b", ref: "sha256:abc", ok: true},
		{path: "/v2/referrers/referrers/x", name: "referrers", ref: "x", ok: true},
		{path: "/v2/a/referrers/", ok: false},
		{path: "/v2/referrers/sha256:abc", ok: false},
		{path: "/v2/a/referrers/manifests/latest", ok: false},
		{path: "/v2/a/manifests/latest", ok: false},
		{path: "/v3/a/referrers/sha256:abc", ok: false},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			name, ref, ok := splitReferrersPath(tt.path)
			if ok != tt.ok || name != tt.name || ref != tt.ref {
				t.Fatalf("splitReferrersPath(%q) = %q, %q, %v; want %q, %q, %v", tt.path, name, ref, ok, tt.name, tt.ref, tt.ok)
			}
		})
	}
}

func TestIsManifestPath(t *testing.T) {
	tests := map[string]bool{
		"/v2/app/manifests/v1":                  true,
		"/v2/a/b/manifests/sha256:abc":          true,
		"/v2/manifests/manifests/v1":            true,
		"/v2/manifests/blobs/uploads/123":       false,
		"/v2/app/manifests/x/blobs/uploads/abc": false,
		"/v2/app/blobs/sha256:abc":              false,
		"/v2/app/manifests/":                    true, // distribution rejects the empty reference
		"/v1/app/manifests/v1":                  false,
		"/v2/app/tags/list":                     false,
		"/v2/app/referrers/sha256:abc":          false,
	}
	for p, want := range tests {
		if got := isManifestPath(p); got != want {
			t.Errorf("isManifestPath(%q) = %v, want %v", p, got, want)
		}
	}
}

func TestDescribeManifest(t *testing.T) {
	const (
		subj    = digest.Digest("sha256:1111111111111111111111111111111111111111111111111111111111111111")
		own     = digest.Digest("sha256:2222222222222222222222222222222222222222222222222222222222222222")
		cfgType = "application/vnd.example.config+json"
	)
	tests := []struct {
		name        string
		payload     string
		wantSubject digest.Digest
		wantDesc    ocispec.Descriptor
		wantErr     bool
	}{
		{
			name:        "artifact with artifactType and annotations",
			payload:     `{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","artifactType":"application/vnd.example.sbom","config":{"mediaType":"application/vnd.oci.empty.v1+json","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2},"layers":[],"subject":{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"` + string(subj) + `","size":10},"annotations":{"k":"v"}}`,
			wantSubject: subj,
			wantDesc:    ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, ArtifactType: "application/vnd.example.sbom", Annotations: map[string]string{"k": "v"}},
		},
		{
			name:        "image manifest without artifactType uses the config media type",
			payload:     `{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"` + cfgType + `","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2},"layers":[],"subject":{"digest":"` + string(subj) + `"}}`,
			wantSubject: subj,
			wantDesc:    ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, ArtifactType: cfgType},
		},
		{
			name:        "index without artifactType has none",
			payload:     `{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[],"subject":{"digest":"` + string(subj) + `"}}`,
			wantSubject: subj,
			wantDesc:    ocispec.Descriptor{MediaType: ocispec.MediaTypeImageIndex},
		},
		{
			name:        "index without mediaType is told by its manifests list",
			payload:     `{"schemaVersion":2,"manifests":[],"artifactType":"application/vnd.example.bundle"}`,
			wantDesc:    ocispec.Descriptor{MediaType: ocispec.MediaTypeImageIndex, ArtifactType: "application/vnd.example.bundle"},
			wantSubject: "",
		},
		{
			name:     "manifest without subject",
			payload:  `{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json","config":{"mediaType":"application/vnd.docker.container.image.v1+json"}}`,
			wantDesc: ocispec.Descriptor{MediaType: "application/vnd.docker.distribution.manifest.v2+json", ArtifactType: "application/vnd.docker.container.image.v1+json"},
		},
		{
			name:     "invalid subject digest is ignored",
			payload:  `{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"x/y"},"subject":{"digest":"nope"}}`,
			wantDesc: ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, ArtifactType: "x/y"},
		},
		{name: "not json", payload: `{`, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			info, err := describeManifest(own, []byte(tt.payload))
			if (err != nil) != tt.wantErr {
				t.Fatalf("describeManifest error = %v, want error %v", err, tt.wantErr)
			}
			if tt.wantErr {
				return
			}
			want := tt.wantDesc
			want.Digest = own
			want.Size = int64(len(tt.payload))
			if info.subject != tt.wantSubject {
				t.Errorf("subject = %q, want %q", info.subject, tt.wantSubject)
			}
			if !reflect.DeepEqual(info.descriptor, want) {
				t.Errorf("descriptor = %+v\nwant %+v", info.descriptor, want)
			}
		})
	}
}

func TestReferrersIndex(t *testing.T) {
	a := ocispec.Descriptor{Digest: "sha256:aa", ArtifactType: "type/a"}
	b := ocispec.Descriptor{Digest: "sha256:bb", ArtifactType: "type/b"}
	c := ocispec.Descriptor{Digest: "sha256:cc", ArtifactType: "type/a"}
	tests := []struct {
		name   string
		in     []ocispec.Descriptor
		filter []string
		want   []ocispec.Descriptor
	}{
		{name: "none", in: nil, want: []ocispec.Descriptor{}},
		{name: "all sorted by digest", in: []ocispec.Descriptor{c, b, a}, want: []ocispec.Descriptor{a, b, c}},
		{name: "filter one type", in: []ocispec.Descriptor{c, b, a}, filter: []string{"type/a"}, want: []ocispec.Descriptor{a, c}},
		{name: "filter two types", in: []ocispec.Descriptor{c, b, a}, filter: []string{"type/b", "type/a"}, want: []ocispec.Descriptor{a, b, c}},
		{name: "filter matches nothing", in: []ocispec.Descriptor{a}, filter: []string{"type/z"}, want: []ocispec.Descriptor{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			idx := referrersIndex(tt.in, tt.filter)
			if idx.SchemaVersion != 2 || idx.MediaType != ocispec.MediaTypeImageIndex {
				t.Fatalf("index header = %d %q", idx.SchemaVersion, idx.MediaType)
			}
			if idx.Manifests == nil {
				t.Fatal("manifests is nil; it must marshal as [] not null")
			}
			if !reflect.DeepEqual(idx.Manifests, tt.want) {
				t.Fatalf("manifests = %v, want %v", idx.Manifests, tt.want)
			}
		})
	}
}

func TestDistributionConfig(t *testing.T) {
	for _, ro := range []bool{false, true} {
		cfg, err := distributionConfig("/srv/reg", ro)
		if err != nil {
			t.Fatal(err)
		}
		if got := cfg.Storage.Type(); got != "filesystem" {
			t.Fatalf("storage type = %q", got)
		}
		if got := cfg.Storage.Parameters()["rootdirectory"]; got != "/srv/reg" {
			t.Fatalf("rootdirectory = %v", got)
		}
		if got := cfg.Storage["delete"]["enabled"]; got != !ro {
			t.Fatalf("read-only %v: delete enabled = %v", ro, got)
		}
		m := cfg.Storage["maintenance"]
		if got := m["readonly"].(map[any]any)["enabled"]; got != ro {
			t.Fatalf("read-only %v: maintenance readonly = %v", ro, got)
		}
		if got := m["uploadpurging"].(map[any]any)["enabled"]; got != !ro {
			t.Fatalf("read-only %v: upload purging = %v", ro, got)
		}
		if cfg.Catalog.MaxEntries != 1000 || cfg.Tags.MaxTags != 1000 {
			t.Fatalf("list limits = %d, %d; want distribution's defaults", cfg.Catalog.MaxEntries, cfg.Tags.MaxTags)
		}
		if cfg.HTTP.Secret == "" || cfg.Proxy.RemoteURL != "" || len(cfg.Notifications.Endpoints) != 0 || cfg.Auth.Type() != "" {
			t.Fatalf("unexpected config: secret %q proxy %q endpoints %d auth %q",
				cfg.HTTP.Secret, cfg.Proxy.RemoteURL, len(cfg.Notifications.Endpoints), cfg.Auth.Type())
		}
	}
}

func TestDistributionLogsGoToSlog(t *testing.T) {
	var buf bytes.Buffer
	prev := slog.Default()
	slog.SetDefault(slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug})))
	defer slog.SetDefault(prev)
	next := &logrus.TextFormatter{DisableTimestamp: true}
	f := &slogFormatter{next: next}
	tests := []struct {
		name    string
		entry   *logrus.Entry
		toSlog  string // expected in the slog output
		passed  bool   // formatted by the next formatter instead
		dropped bool
	}{
		{name: "context logger", entry: &logrus.Entry{Message: "blob unknown", Data: logrus.Fields{"go.version": "go1", "err.code": "BLOB_UNKNOWN", "http.request.uri": "/v2/x?_state=secret"}}, toSlog: `msg="blob unknown" source=distribution err.code=BLOB_UNKNOWN`},
		{name: "purger", entry: &logrus.Entry{Message: "PurgeUploads starting: olderThan=x", Data: logrus.Fields{}}, toSlog: `msg="PurgeUploads starting: olderThan=x"`},
		{name: "request line", entry: &logrus.Entry{Message: "response completed", Data: logrus.Fields{"go.version": "go1"}}, dropped: true},
		{name: "someone else", entry: &logrus.Entry{Message: "not ours", Data: logrus.Fields{}}, passed: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			buf.Reset()
			tt.entry.Logger = logrus.New()
			out, err := f.Format(tt.entry)
			if err != nil {
				t.Fatal(err)
			}
			if tt.passed != (len(out) > 0) {
				t.Fatalf("formatted %q, want passed on = %v", out, tt.passed)
			}
			if tt.toSlog != "" && !strings.Contains(buf.String(), tt.toSlog) {
				t.Fatalf("slog got %q, want %q", buf.String(), tt.toSlog)
			}
			if (tt.dropped || tt.passed) && buf.Len() > 0 {
				t.Fatalf("slog got %q, want nothing", buf.String())
			}
			if strings.Contains(buf.String(), "secret") {
				t.Fatalf("request URI leaked into the log: %q", buf.String())
			}
		})
	}
}
