package chartrepo

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/cnstack/cnstack/pkg/chartref"
	"github.com/cnstack/cnstack/pkg/kubefile"
	"github.com/cnstack/cnstack/pkg/lockfile"
)

// Sources fetches a chart by the lock's pin (the index is not read), refuses
// an unpinned chart when Locked, resolves it otherwise, and fetches other
// remote sources by their checksum; Pinned lists what it fetched.
func TestSources(t *testing.T) {
	ctx := context.Background()
	archive := []byte("chart archive")
	var indexReads int
	mux := http.NewServeMux()
	mux.HandleFunc("/charts/index.yaml", func(w http.ResponseWriter, r *http.Request) {
		indexReads++
		w.Write([]byte("entries:\n  demo:\n  - version: 1.0.0\n    urls: [demo-1.0.0.tgz]\n"))
	})
	mux.HandleFunc("/charts/demo-1.0.0.tgz", func(w http.ResponseWriter, r *http.Request) { w.Write(archive) })
	mux.HandleFunc("/file.txt", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("file")) })
	srv := httptest.NewServer(mux)
	defer srv.Close()

	ref, err := chartref.Parse("helm+" + srv.URL + "/charts/demo:1.0.0")
	if err != nil {
		t.Fatal(err)
	}
	chart := kubefile.Source{URL: ref.String(), Chart: &ref}
	pin := lockfile.Chart{Chart: ref.String(), URL: srv.URL + "/charts/demo-1.0.0.tgz", Digest: digest.FromBytes(archive).String()}

	locked := &Sources{Charts: &Fetcher{CacheDir: t.TempDir()}, Lock: &lockfile.File{Charts: []lockfile.Chart{pin}}, Locked: true}
	p, err := locked.Fetch(ctx, chart)
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(p); string(b) != string(archive) || indexReads != 0 {
		t.Fatalf("fetched %q with %d index reads", b, indexReads)
	}
	if got := locked.Pinned(); len(got) != 1 || got[0].Digest != pin.Digest || got[0].URL != pin.URL {
		t.Fatalf("Pinned = %+v", got)
	}

	unpinned := &Sources{Charts: &Fetcher{CacheDir: t.TempDir()}, Lock: &lockfile.File{}, Locked: true}
	if _, err := unpinned.Fetch(ctx, chart); !errors.Is(err, lockfile.ErrUnpinned) || !strings.Contains(err.Error(), "--locked: chart "+ref.String()) {
		t.Fatalf("--locked, unpinned: %v", err)
	}

	fresh := &Sources{Charts: &Fetcher{CacheDir: t.TempDir()}}
	if _, err := fresh.Fetch(ctx, chart); err != nil || indexReads != 1 {
		t.Fatalf("resolve: %v (%d index reads)", err, indexReads)
	}
	if got := fresh.Pinned(); len(got) != 1 || got[0].Chart != ref.String() || got[0].URL != pin.URL || got[0].Digest != pin.Digest {
		t.Fatalf("Pinned = %+v", got)
	}
	file := kubefile.Source{URL: srv.URL + "/file.txt", Checksum: digest.FromString("file").String()}
	if p, err := fresh.Fetch(ctx, file); err != nil {
		t.Fatal(err)
	} else if b, _ := os.ReadFile(p); string(b) != "file" {
		t.Fatalf("file source holds %q", b)
	}
	if len(fresh.Pinned()) != 1 {
		t.Fatal("a file source was recorded as a chart")
	}
}
