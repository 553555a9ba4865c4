package bundle

import (
	"crypto/rand"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/cnstack/cnstack/pkg/store"
)

// TestMain lets a test run this binary as a `save` that gets killed.
func TestMain(m *testing.M) {
	if root := os.Getenv("CNSTACK_TEST_SAVE_STORE"); root != "" {
		s, err := store.Open(root)
		if err != nil {
			os.Exit(2)
		}
		_, err = Save(ctx, s, SaveOptions{Output: os.Getenv("CNSTACK_TEST_SAVE_OUTPUT"), Refs: []string{"kill.test/big:v1"}, Split: 8 << 20})
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(3)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// Issue 8 defect 9: a save killed mid-way leaves hidden .tmp parts beside
// its output; the next cnstack command that opens the store removes them
// (before, only a later save to the very same file did).
func TestKilledSaveLeavesNothing(t *testing.T) {
	root := filepath.Join(t.TempDir(), "store")
	s, _ := store.Open(root)
	layer := make([]byte, 96<<20)
	rand.Read(layer)
	ld, _ := s.PushBytes(ctx, ocispec.MediaTypeImageLayerGzip, layer)
	cd, _ := s.PushBytes(ctx, ocispec.MediaTypeImageConfig, []byte(`{"architecture":"amd64","os":"linux"}`))
	md, _ := s.PushBytes(ctx, ocispec.MediaTypeImageManifest, []byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"`+
		cd.Digest.String()+`","size":`+strconv.FormatInt(cd.Size, 10)+`},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"`+ld.Digest.String()+`","size":`+strconv.FormatInt(ld.Size, 10)+`}]}`))
	if err := s.Tag(ctx, md, "kill.test/big:v1"); err != nil {
		t.Fatal(err)
	}
	outDir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "CNSTACK_TEST_SAVE_STORE="+root, "CNSTACK_TEST_SAVE_OUTPUT="+filepath.Join(outDir, "big.tar"))
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		parts, _ := filepath.Glob(filepath.Join(outDir, ".big.tar.*.tmp"))
		if len(parts) >= 2 { // one part written whole, the next under way
			break
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			t.Fatal("the save never wrote its parts")
		}
		time.Sleep(time.Millisecond)
	}
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
	left, _ := filepath.Glob(filepath.Join(outDir, ".*.tmp"))
	if len(left) == 0 {
		t.Fatal("the killed save left nothing: the test proves nothing")
	}
	if _, err := store.Open(root); err != nil {
		t.Fatal(err)
	}
	after, _ := filepath.Glob(filepath.Join(outDir, "*"))
	hidden, _ := filepath.Glob(filepath.Join(outDir, ".*"))
	if len(after)+len(hidden) != 0 {
		t.Fatalf("after the next open of the store, %v %v remain", after, hidden)
	}
	t.Logf("the killed save left %d temp parts; the next open of the store removed them", len(left))
}
