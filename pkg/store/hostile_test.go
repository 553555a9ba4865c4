package store

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// writeRawIndex puts descriptors into index.json as a careless or hostile
// writer (an old load trusting a bundle) would have.
func writeRawIndex(t *testing.T, s *Store, ds ...ocispec.Descriptor) {
	t.Helper()
	idx, err := s.readIndex()
	if err != nil {
		t.Fatal(err)
	}
	idx.Manifests = append(ds, idx.Manifests...)
	b, _ := json.Marshal(idx)
	if err := os.WriteFile(filepath.Join(s.root, indexFile), b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// Defect 2: a descriptor naming a good image's manifest as a plain blob
// must not stop the reachability walk: after prune the good image is whole.
func TestPruneIgnoresMediaTypeClaims(t *testing.T) {
	ctx := t.Context()
	s, _ := Open(t.TempDir())
	good := image(t, s, "good")
	if err := s.Tag(ctx, good, "example.com/good:v1"); err != nil {
		t.Fatal(err)
	}
	other := image(t, s, "other") // its index wraps the manifest under a false claim
	idxJSON := fmt.Sprintf(`{"schemaVersion":2,"mediaType":%q,"manifests":[{"mediaType":"application/octet-stream","digest":%q,"size":%d}]}`,
		ocispec.MediaTypeImageIndex, other.Digest, other.Size)
	wrapped, _ := s.PushBytes(ctx, ocispec.MediaTypeImageIndex, []byte(idxJSON))
	writeRawIndex(t, s,
		ocispec.Descriptor{MediaType: "application/octet-stream", Digest: good.Digest, Size: good.Size},
		ocispec.Descriptor{MediaType: ocispec.MediaTypeImageIndex, Digest: wrapped.Digest, Size: wrapped.Size})
	res, err := s.Prune(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if res.Blobs != 0 {
		t.Errorf("prune removed %d blobs of live images", res.Blobs)
	}
	for _, d := range []ocispec.Descriptor{good, other} {
		if err := s.Walk(ctx, d, func(c ocispec.Descriptor, present, _ bool) error {
			if !present {
				return fmt.Errorf("%s lost", c.Digest)
			}
			return nil
		}); err != nil {
			t.Errorf("after prune: %v", err)
		}
	}
}

// Defect 2: nothing is tagged whose graph is not whole, and index.json
// never records a media type the content contradicts.
func TestTagChecksContent(t *testing.T) {
	ctx := t.Context()
	s, _ := Open(t.TempDir())
	good := image(t, s, "good")
	claim := good
	claim.MediaType = "application/octet-stream"
	if err := s.Tag(ctx, claim, "a/b:c"); err == nil || !strings.Contains(err.Error(), "is named as") {
		t.Fatalf("tag under a false media type: %v", err)
	}
	layer, _ := s.PushBytes(ctx, ocispec.MediaTypeImageLayerGzip, []byte("just a layer"))
	if err := s.Tag(ctx, ocispec.Descriptor{Digest: layer.Digest, Size: layer.Size}, "a/b:layer"); err == nil {
		t.Fatal("tagged a layer")
	}
	// A manifest whose layer is absent: not tagged, not kept.
	m := fmt.Sprintf(`{"schemaVersion":2,"config":{"mediaType":%q,"digest":%q,"size":%d},"layers":[{"mediaType":%q,"digest":"sha256:%s","size":10}]}`,
		ocispec.MediaTypeImageConfig, layer.Digest, layer.Size, ocispec.MediaTypeImageLayerGzip, strings.Repeat("a", 64))
	md, _ := s.PushBytes(ctx, "", []byte(m))
	if err := s.Tag(ctx, md, "a/b:partial"); err == nil || !strings.Contains(err.Error(), "missing") {
		t.Fatalf("tagged an incomplete image: %v", err)
	}
	if err := s.Keep(ctx, md); err == nil {
		t.Fatal("kept an incomplete image")
	}
	// Tag records the content's media type (the manifest omits the field).
	if err := s.Tag(ctx, ocispec.Descriptor{Digest: good.Digest}, "a/b:ok"); err != nil {
		t.Fatal(err)
	}
	d, _ := s.Resolve(ctx, "a/b:ok")
	if d.MediaType != ocispec.MediaTypeImageManifest || d.Size != good.Size {
		t.Fatalf("index.json holds %+v", d)
	}
	// Zero and negative sizes are refused in manifests.
	for _, size := range []string{"0", "-5"} {
		m := fmt.Sprintf(`{"schemaVersion":2,"config":{"mediaType":%q,"digest":%q,"size":%s},"layers":[]}`, ocispec.MediaTypeImageConfig, layer.Digest, size)
		md, _ := s.PushBytes(ctx, "", []byte(m))
		if err := s.Tag(ctx, md, "a/b:size"+size); err == nil || !strings.Contains(err.Error(), "size") {
			t.Errorf("size %s: %v", size, err)
		}
	}
}

// TestMain lets a test run this binary as a store writer that gets killed.
func TestMain(m *testing.M) {
	if dir := os.Getenv("CNSTACK_STORE_WRITER"); dir != "" {
		s, err := Open(dir)
		if err != nil {
			os.Exit(2)
		}
		w, err := s.Create()
		if err != nil {
			os.Exit(3)
		}
		r, err := s.TrackTemps()
		if err != nil {
			os.Exit(4)
		}
		outside := filepath.Join(os.Getenv("CNSTACK_OUTSIDE"), ".bundle.tar.123.tmp")
		r.Add(outside)
		os.WriteFile(outside, make([]byte, 1<<20), 0o644)
		w.Write(make([]byte, 4<<20))
		fmt.Println("ready")
		time.Sleep(time.Minute) // killed meanwhile
		runtime.KeepAlive(w)    // their finalizers would close the files (and drop the locks)
		runtime.KeepAlive(r)
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// Defect 9: a writer killed mid-blob leaves ingest/new-*.tmp and a bundle
// temp part beside its output; the next Open of the store removes both at
// once (not an hour later), while a live writer's temp files stay.
func TestKilledWritersTempsCleaned(t *testing.T) {
	root, outside := t.TempDir(), t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "CNSTACK_STORE_WRITER="+root, "CNSTACK_OUTSIDE="+outside)
	out, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 6)
	if _, err := out.Read(buf); err != nil || string(buf) != "ready\n" {
		t.Fatalf("writer: %q %v", buf, err)
	}
	// While it lives, nothing of it is removed.
	live, _ := Open(root)
	tmps, _ := filepath.Glob(filepath.Join(root, ingestDir, "new-*.tmp"))
	parts, _ := filepath.Glob(filepath.Join(outside, ".*.tmp"))
	if len(tmps) != 1 || len(parts) != 1 {
		ents, _ := os.ReadDir(outside)
		t.Fatalf("a live writer's temp files were removed: %v %v (outside holds %v)", tmps, parts, ents)
	}
	if res, _ := live.Prune(t.Context()); res.Partial != 0 {
		t.Fatalf("prune removed a live writer's files: %+v", res)
	}
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()

	if _, err := Open(root); err != nil {
		t.Fatal(err)
	}
	tmps, _ = filepath.Glob(filepath.Join(root, ingestDir, "new-*.tmp"))
	parts, _ = filepath.Glob(filepath.Join(outside, ".*.tmp"))
	records, _ := filepath.Glob(filepath.Join(root, ingestDir, outsidePrefix+"*"))
	if len(tmps)+len(parts)+len(records) != 0 {
		t.Fatalf("left after the killed writer: %v %v %v", tmps, parts, records)
	}
}

// A damaged or forged record never removes anything but hidden temp files.
func TestTempRecordRemovesOnlyTemps(t *testing.T) {
	root, outside := t.TempDir(), t.TempDir()
	s, _ := Open(root)
	keep := filepath.Join(outside, "important.tar")
	tmp := filepath.Join(outside, ".important.tar.1.tmp")
	os.WriteFile(keep, []byte("x"), 0o644)
	os.WriteFile(tmp, []byte("x"), 0o644)
	r, err := s.TrackTemps()
	if err != nil {
		t.Fatal(err)
	}
	r.Add(keep)
	r.Add(tmp)
	r.f.Close() // the writer dies: its lock goes
	Open(root)
	if _, err := os.Stat(keep); err != nil {
		t.Fatalf("removed a file that is not a temp file: %v", err)
	}
	if _, err := os.Stat(tmp); err == nil {
		t.Fatal("the dead writer's temp file is still there")
	}
}

// A temp file of a live Create writer survives another process's Open,
// and commits.
func TestLiveCreateSurvivesCleanup(t *testing.T) {
	root := t.TempDir()
	s, _ := Open(root)
	w, err := s.Create()
	if err != nil {
		t.Fatal(err)
	}
	w.Write([]byte("content"))
	Open(root)
	if _, err := w.CommitDescriptor(ocispec.MediaTypeImageLayerGzip); err != nil {
		t.Fatalf("commit after a cleanup: %v", err)
	}
}

// A writer killed in the middle of an Add leaves a torn last line: the
// files recorded before it are still removed.
func TestTempRecordSurvivesATornAdd(t *testing.T) {
	root, outside := t.TempDir(), t.TempDir()
	s, _ := Open(root)
	tmp := filepath.Join(outside, ".bundle.tar.0.tmp")
	os.WriteFile(tmp, []byte("x"), 0o644)
	r, err := s.TrackTemps()
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Add(tmp); err != nil {
		t.Fatal(err)
	}
	r.f.Write([]byte(`"` + filepath.Join(outside, ".bundle.tar.1")))
	r.f.Close()
	Open(root)
	if _, err := os.Stat(tmp); err == nil {
		t.Fatal("a torn last line lost the files recorded before it")
	}
}

func TestRecordedPaths(t *testing.T) {
	for in, want := range map[string]string{
		"\"/a/.x.tmp\"\n\"/a/.y.tmp\"\n": "/a/.x.tmp,/a/.y.tmp",
		"\"/a/.x.tmp\"\n\"/a/.y":         "/a/.x.tmp",
		`["/a/.x.tmp","/a/.y.tmp"]`:      "/a/.x.tmp,/a/.y.tmp", // as earlier versions wrote it
		"":                               "",
	} {
		if got := strings.Join(recordedPaths([]byte(in)), ","); got != want {
			t.Errorf("recordedPaths(%q) = %q, want %q", in, got, want)
		}
	}
}
