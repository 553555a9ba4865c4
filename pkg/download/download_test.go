package download

import (
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/cnstack/cnstack/pkg/kubefile"
)

func TestFetch(t *testing.T) {
	var gets atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gets.Add(1)
		if r.URL.Path == "/missing" {
			http.NotFound(w, r)
			return
		}
		io.WriteString(w, "payload")
	}))
	defer srv.Close()
	dir := filepath.Join(t.TempDir(), "downloads")
	want := digest.FromString("payload")

	// Fetched once, kept under its checksum; the second call reads the cache.
	src := kubefile.Source{URL: srv.URL + "/p.bin", Checksum: want.String()}
	for range 2 {
		p, err := Fetch(t.Context(), srv.Client(), dir, src)
		if err != nil {
			t.Fatal(err)
		}
		if b, _ := os.ReadFile(p); string(b) != "payload" || p != Path(dir, want) {
			t.Fatalf("%s holds %q", p, b)
		}
	}
	if n := gets.Load(); n != 1 {
		t.Errorf("%d requests, want 1", n)
	}

	for _, tt := range []struct {
		name string
		src  kubefile.Source
		want string
	}{
		{"wrong pin", kubefile.Source{URL: srv.URL + "/q.bin", Checksum: digest.FromString("other").String()}, "checksum mismatch"},
		{"not pinned", kubefile.Source{URL: srv.URL + "/q.bin"}, "must be pinned with a sha256 checksum"},
		{"not found", kubefile.Source{URL: srv.URL + "/missing", Checksum: digest.FromString("x").String()}, "404"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Fetch(t.Context(), srv.Client(), dir, tt.src)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want %q", err, tt.want)
			}
			ents, _ := os.ReadDir(dir)
			if len(ents) != 1 {
				t.Errorf("the cache holds %d files, want only the good download", len(ents))
			}
		})
	}
}
