package hostile

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/klauspost/compress/zstd"

	"github.com/cnstack/cnstack/pkg/bundle"
	"github.com/cnstack/cnstack/pkg/store"
)

var update = flag.Bool("update", false, "rewrite testdata/hostile/bundles from the generators")

const bundlesDir = "../../testdata/hostile/bundles"

// encode writes a case's file content: the tar, zstd-compressed for .zst.
func encode(w io.Writer, b Bundle, compress bool) error {
	if !compress {
		_, err := b.WriteTo(w)
		return err
	}
	zw, err := zstd.NewWriter(w, zstd.WithEncoderLevel(zstd.SpeedBestCompression), zstd.WithEncoderConcurrency(1), zstd.WithWindowSize(8<<20))
	if err != nil {
		return err
	}
	if _, err := b.WriteTo(zw); err != nil {
		return err
	}
	return zw.Close()
}

func fixtures() map[string]struct {
	b        Bundle
	compress bool
} {
	out := map[string]struct {
		b        Bundle
		compress bool
	}{"good.tar": {Good(NewImage("good"), GoodRef), false}}
	for _, c := range Cases() {
		out[c.File] = struct {
			b        Bundle
			compress bool
		}{c.Bundle, c.Zstd()}
	}
	return out
}

// The committed fixtures are what the generators write (after
// decompression: the compressor's bytes may differ across versions).
func TestFixturesMatchGenerators(t *testing.T) {
	if *update {
		os.MkdirAll(bundlesDir, 0o755)
		for name, f := range fixtures() {
			var buf bytes.Buffer
			if err := encode(&buf, f.b, f.compress); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(bundlesDir, name), buf.Bytes(), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	for name, f := range fixtures() {
		want := sha256.New()
		f.b.WriteTo(want)
		file, err := os.Open(filepath.Join(bundlesDir, name))
		if err != nil {
			t.Fatalf("%s: %v (regenerate with go test ./internal/hostile -update)", name, err)
		}
		var r io.Reader = file
		if f.compress {
			zr, err := zstd.NewReader(file)
			if err != nil {
				t.Fatal(err)
			}
			r = zr
			defer zr.Close()
		}
		got := sha256.New()
		io.Copy(got, r) // a truncated stream ends in an error: compare what it holds
		file.Close()
		if !bytes.Equal(got.Sum(nil), want.Sum(nil)) {
			t.Errorf("%s differs from its generator (regenerate with go test ./internal/hostile -update)", name)
		}
	}
}

// goodStore is a store holding the good image, loaded from good.tar.
func goodStore(t *testing.T) *store.Store {
	t.Helper()
	s, err := store.Open(filepath.Join(t.TempDir(), "store"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bundle.Load(context.Background(), s, bundle.LoadOptions{Input: filepath.Join(bundlesDir, "good.tar")}); err != nil {
		t.Fatalf("load good.tar: %v", err)
	}
	return s
}

// partialBytes is what interrupted or refused writes left in the store.
func partialBytes(t *testing.T, s *store.Store) int64 {
	var n int64
	for _, pat := range []string{"*.partial", "new-*.tmp"} {
		m, _ := filepath.Glob(filepath.Join(s.Root(), "ingest", pat))
		for _, p := range m {
			if fi, err := os.Stat(p); err == nil {
				n += fi.Size()
			}
		}
	}
	return n
}

// clear reports what makes an error message unfit for a terminal.
func clear(msg, want string) error {
	switch {
	case !strings.Contains(msg, want):
		return fmt.Errorf("does not say %q", want)
	case strings.ContainsAny(msg, "\x1b\r\x00\a"):
		return errors.New("carries raw control bytes")
	case len(msg) > 8<<10:
		return fmt.Errorf("is %d bytes long", len(msg))
	}
	return nil
}

func noPanic(t *testing.T, what string, fn func() error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			t.Errorf("%s panicked: %v", what, r)
			err = fmt.Errorf("panic: %v", r)
		}
	}()
	return fn()
}

// Every hostile bundle: check and load refuse it with a clear error, no
// panic, nothing tagged, nothing left in ingest/, and the good image in
// the same store is whole, and saves to a bundle check accepts, after
// prune.
func TestHostileBundles(t *testing.T) {
	ctx := context.Background()
	for _, c := range Cases() {
		t.Run(c.File, func(t *testing.T) {
			input := filepath.Join(bundlesDir, c.File)
			_, cerr := func() (*bundle.CheckReport, error) {
				var rep *bundle.CheckReport
				err := noPanic(t, "check", func() (err error) { rep, err = bundle.Check(ctx, bundle.CheckOptions{Input: input}); return err })
				return rep, err
			}()
			if cerr == nil {
				t.Errorf("check passed %s", c.File)
			} else if err := clear(cerr.Error(), c.WantCheck); err != nil {
				t.Errorf("check error %v: %.300q", err, cerr)
			}

			s := goodStore(t)
			before, _ := s.List(ctx)
			lerr := noPanic(t, "load", func() error {
				_, err := bundle.Load(ctx, s, bundle.LoadOptions{Input: input})
				return err
			})
			if lerr == nil {
				t.Errorf("load accepted %s", c.File)
			} else if err := clear(lerr.Error(), c.WantLoad); err != nil {
				t.Errorf("load error %v: %.300q", err, lerr)
			}
			after, _ := s.List(ctx)
			if len(after) != len(before) {
				t.Errorf("a refused load changed index.json: %d entries, then %d", len(before), len(after))
			}
			if n := partialBytes(t, s); n != 0 {
				t.Errorf("a refused load left %d bytes in ingest/", n)
			}
			if _, err := s.Prune(ctx); err != nil {
				t.Fatalf("prune: %v", err)
			}
			root, err := s.Resolve(ctx, GoodRef)
			if err != nil {
				t.Fatal(err)
			}
			if err := s.Complete(ctx, root); err != nil {
				t.Fatalf("after the hostile load and prune, the good image is damaged: %v", err)
			}
			out := filepath.Join(t.TempDir(), "good-again.tar")
			if _, err := bundle.Save(ctx, s, bundle.SaveOptions{Output: out, Refs: []string{GoodRef}}); err != nil {
				t.Fatalf("save the good image: %v", err)
			}
			if _, err := bundle.Check(ctx, bundle.CheckOptions{Input: out}); err != nil {
				t.Fatalf("check the good image: %v", err)
			}
			t.Logf("check: %.600s", firstLine(cerr))
			t.Logf("load: %.600s", firstLine(lerr))
		})
	}
}

func firstLine(err error) string {
	if err == nil {
		return "<nil>"
	}
	s, _, _ := strings.Cut(err.Error(), "\n")
	return s
}

// A truncated bundle loaded into an empty store: the blob cut in the
// middle is not kept (it could never complete), and the error says why.
func TestTruncatedIntoEmptyStore(t *testing.T) {
	s, _ := store.Open(t.TempDir())
	_, err := bundle.Load(context.Background(), s, bundle.LoadOptions{Input: filepath.Join(bundlesDir, "truncated.tar")})
	if err == nil || clear(err.Error(), "truncated") != nil {
		t.Fatalf("load: %v", err)
	}
	if n := partialBytes(t, s); n != 0 {
		t.Fatalf("%d bytes left in ingest/", n)
	}
	if l, _ := s.List(context.Background()); len(l) != 0 {
		t.Fatalf("tagged %v", l)
	}
}
