package main

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// rewriteBundle copies a bundle, letting edit change index.json, and keeps
// SHA256SUMS consistent so that only the signature check can notice.
func rewriteBundle(t *testing.T, src, dst string, edit func(*ocispec.Index)) {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(bytes.NewReader(b))
	type file struct {
		h    *tar.Header
		body []byte
	}
	var files []file
	var idxSum, newSum string
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(tr)
		if h.Name == "index.json" {
			old := sha256.Sum256(body)
			idxSum = hex.EncodeToString(old[:])
			var idx ocispec.Index
			json.Unmarshal(body, &idx)
			edit(&idx)
			body, _ = json.Marshal(idx)
			sum := sha256.Sum256(body)
			newSum = hex.EncodeToString(sum[:])
			h.Size = int64(len(body))
		}
		files = append(files, file{h, body})
	}
	var out bytes.Buffer
	tw := tar.NewWriter(&out)
	for _, f := range files {
		if f.h.Name == "SHA256SUMS" {
			f.body = []byte(strings.Replace(string(f.body), idxSum, newSum, 1))
			f.h.Size = int64(len(f.body))
		}
		tw.WriteHeader(f.h)
		tw.Write(f.body)
	}
	tw.Close()
	os.WriteFile(dst, out.Bytes(), 0o644)
}

// check refuses a bundle signed by another key, and one whose index.json
// was made to name another manifest.
func TestCheckRefusesForeignAndSwapped(t *testing.T) {
	home, work := t.TempDir(), t.TempDir()
	t.Setenv("COSIGN_PASSWORD", "")
	if _, errOut, err := runApp(t, home, "stack", "build", "--build-mode", "lite", sample); err != nil {
		t.Fatalf("%v\n%s", err, errOut)
	}
	const top = "registry.cnstack.local/cnstack/cnstack:v0.1.0"
	const base = "registry.cnstack.local/cnstack/base:v0.1.0"
	for _, prefix := range []string{"mine", "foreign"} {
		if _, _, err := runApp(t, home, "generate-key-pair", "--output-key-prefix", filepath.Join(work, prefix)); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, err := runApp(t, home, "sign", "--key", filepath.Join(work, "mine.key"), top); err != nil {
		t.Fatal(err)
	}
	good := filepath.Join(work, "good.tar")
	if _, _, err := runApp(t, home, "save", "-o", good, top, base); err != nil {
		t.Fatal(err)
	}
	if out, _, err := runApp(t, home, "check", "--key", filepath.Join(work, "mine.pub"), good); err == nil {
		// base is unsigned: check must say so.
		t.Fatalf("an unsigned image passed check:\n%s", out)
	}
	onlyTop := filepath.Join(work, "top.tar")
	runApp(t, home, "save", "-o", onlyTop, top)
	if out, _, err := runApp(t, home, "check", "--key", filepath.Join(work, "mine.pub"), onlyTop); err != nil {
		t.Fatalf("a signed bundle failed check: %v\n%s", err, out)
	}
	out, _, err := runApp(t, home, "check", "--key", filepath.Join(work, "foreign.pub"), onlyTop)
	if err == nil || !strings.Contains(out, "FAILED "+top) {
		t.Fatalf("a foreign key passed:\n%s", out)
	}
	// Swap: the top's tag now names the base's manifest (unsigned by mine).
	var baseDesc ocispec.Descriptor
	b, _ := os.ReadFile(good)
	tr := tar.NewReader(bytes.NewReader(b))
	for {
		h, err := tr.Next()
		if err != nil {
			break
		}
		if h.Name == "index.json" {
			var idx ocispec.Index
			json.NewDecoder(tr).Decode(&idx)
			for _, m := range idx.Manifests {
				if m.Annotations[ocispec.AnnotationRefName] == base {
					baseDesc = m
				}
			}
		}
	}
	swapped := filepath.Join(work, "swapped.tar")
	rewriteBundle(t, good, swapped, func(idx *ocispec.Index) {
		var keep []ocispec.Descriptor
		for _, m := range idx.Manifests {
			switch m.Annotations[ocispec.AnnotationRefName] {
			case base:
				continue
			case top:
				d := baseDesc
				d.Annotations = map[string]string{ocispec.AnnotationRefName: top}
				m = d
			}
			keep = append(keep, m)
		}
		idx.Manifests = keep
	})
	out, _, err = runApp(t, home, "check", "--key", filepath.Join(work, "mine.pub"), swapped)
	if err == nil || !strings.Contains(out, "FAILED "+top+"@"+baseDesc.Digest.String()) {
		t.Fatalf("a swapped manifest passed:\n%s", out)
	}
}
