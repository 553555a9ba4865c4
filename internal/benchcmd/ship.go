package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/cnstack/cnstack/pkg/bundle"
	"github.com/cnstack/cnstack/pkg/reference"
	"github.com/cnstack/cnstack/pkg/regclient"
	"github.com/cnstack/cnstack/pkg/regserver"
	"github.com/cnstack/cnstack/pkg/store"
	"github.com/cnstack/cnstack/pkg/transfer"
)

const syntheticRef = "docker.io/bench/synthetic:v1"

func init() {
	extraSections = append(extraSections,
		struct {
			name string
			run  func(ctx context.Context, work string, s *store.Store)
		}{"push", benchPush},
		struct {
			name string
			run  func(ctx context.Context, work string, s *store.Store)
		}{"bundle", benchBundle},
		struct {
			name string
			run  func(ctx context.Context, work string, s *store.Store)
		}{"collect", benchCollect},
	)
}

func toolPath(name string) string {
	if d := os.Getenv("CNSTACK_TOOLS_BIN"); d != "" {
		return filepath.Join(d, name)
	}
	return filepath.Join(*repo, ".cache", "tools", "bin", name)
}

// blobsOf lists the store files of every blob of the synthetic image.
func blobsOf(ctx context.Context, s *store.Store) ([]string, int64) {
	root, err := s.Resolve(ctx, syntheticRef)
	check(err)
	children, err := s.Children(ctx, root)
	check(err)
	files := []string{s.BlobPath(root.Digest)}
	total := root.Size
	for _, c := range children {
		files = append(files, s.BlobPath(c.Digest))
		total += c.Size
	}
	return files, total
}

// benchPush pushes the synthetic image with cnstack and with crane to the
// same local registry (cnstack registry serve), into fresh repositories.
func benchPush(ctx context.Context, work string, s *store.Store) {
	srv, err := regserver.New(regserver.Options{Addr: "127.0.0.1:0", Root: filepath.Join(work, "registry")})
	check(err)
	check(srv.Start(ctx))
	defer srv.Close()
	addr := srv.Addr()
	_, total := blobsOf(ctx, s)

	rc, err := regclient.New(regclient.Options{DockerConfig: filepath.Join(work, "docker-config.json")})
	check(err)
	src, _ := reference.Parse(syntheticRef)
	dst, _ := reference.Parse(addr + "/bench/cnstack-push:v1")
	repo, err := rc.Repository(ctx, dst)
	check(err)
	t0 := time.Now()
	_, err = transfer.Copy(ctx, transfer.Store(s, src), transfer.Remote(repo, dst), transfer.Options{Concurrency: 8})
	check(err)
	dOurs := time.Since(t0)

	// crane pushes the same image from an OCI layout directory.
	layout := filepath.Join(work, "layout")
	tarFile := filepath.Join(work, "layout.tar")
	_, err = bundle.Save(ctx, s, bundle.SaveOptions{Output: tarFile, Refs: []string{syntheticRef}, Format: bundle.FormatSealer})
	check(err)
	check(os.MkdirAll(layout, 0o755))
	run("tar", "-C", layout, "-xf", tarFile)
	os.Remove(tarFile)
	crane := toolPath("crane")
	t0 = time.Now()
	run(crane, "push", "--insecure", layout, addr+"/bench/crane-push:v1")
	dCrane := time.Since(t0)
	os.RemoveAll(layout)

	mbps := func(d time.Duration) float64 { return float64(total) / d.Seconds() / 1e6 }
	report("push: image pushed", fmt.Sprintf("%.0f MiB", float64(total)/(1<<20)), "to cnstack registry serve on 127.0.0.1")
	report("push: cnstack push", fmt.Sprintf("%.1f MB/s", mbps(dOurs)), dOurs.Round(time.Millisecond).String())
	report("push: crane push", fmt.Sprintf("%.1f MB/s", mbps(dCrane)), dCrane.Round(time.Millisecond).String())
	report("push: ratio cnstack time / crane time", fmt.Sprintf("%.2fx", dOurs.Seconds()/dCrane.Seconds()), "goal <= 1.0x")

	t0 = time.Now()
	rep, err := transfer.Copy(ctx, transfer.Store(s, src), transfer.Remote(repo, dst), transfer.Options{Concurrency: 8})
	check(err)
	report("push: re-push of the unchanged image", time.Since(t0).Round(time.Millisecond).String(), fmt.Sprintf("%d blobs sent", rep.Copied))
}

// benchBundle saves the synthetic image and checks the bundle, beside the
// sum of its unique blobs and sha256sum of the same blobs.
func benchBundle(ctx context.Context, work string, s *store.Store) {
	files, total := blobsOf(ctx, s)
	out := filepath.Join(work, "bundle.tar")
	t0 := time.Now()
	rep, err := bundle.Save(ctx, s, bundle.SaveOptions{Output: out, Refs: []string{syntheticRef}})
	check(err)
	dSave := time.Since(t0)
	report("bundle: save (uncompressed)", fmt.Sprintf("%.1f MB/s", float64(rep.Bytes)/dSave.Seconds()/1e6), dSave.Round(time.Millisecond).String())
	report("bundle: size / sum of unique blobs", fmt.Sprintf("%.4fx", float64(rep.Bytes)/float64(total)),
		fmt.Sprintf("%d / %d bytes; goal <= 1.01x", rep.Bytes, total))

	// Warm both runs the same way: read the bundle and the blobs once.
	run("cat", out)
	run("cat", files...)
	t0 = time.Now()
	crep, err := bundle.Check(ctx, bundle.CheckOptions{Input: out})
	check(err)
	dCheck := time.Since(t0)
	t0 = time.Now()
	run("sha256sum", files...)
	dSum := time.Since(t0)
	mbps := func(d time.Duration) float64 { return float64(crep.Bytes) / d.Seconds() / 1e6 }
	report("check: cnstack check (blobs hashed)", fmt.Sprintf("%.1f MB/s", mbps(dCheck)), dCheck.Round(time.Millisecond).String())
	report("check: sha256sum of the same blobs", fmt.Sprintf("%.1f MB/s", mbps(dSum)), dSum.Round(time.Millisecond).String())
	report("check: ratio cnstack / sha256sum", fmt.Sprintf("%.2fx", mbps(dCheck)/mbps(dSum)), "goal >= 0.90x")
	os.Remove(out)
}

// benchCollect runs pkg/collect's benchmark: ~50 images (~1 GiB) collected
// from a registry process into a tree, beside crane copy of the same images.
func benchCollect(ctx context.Context, _ string, _ *store.Store) {
	cmd := exec.CommandContext(ctx, "go", "test", "-run", "^$", "-bench", "BenchmarkCollect", "-benchtime", "1x", "-timeout", "30m", "./pkg/collect")
	cmd.Dir = *repo
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	check(err)
	for _, line := range strings.Split(string(out), "\n") {
		if strings.HasPrefix(line, "  ") || strings.HasPrefix(line, "BenchmarkCollect:") {
			fmt.Println("collect: " + strings.TrimSpace(line))
		}
	}
}

func run(name string, args ...string) {
	cmd := exec.Command(name, args...)
	cmd.Stdout, cmd.Stderr = nil, os.Stderr
	check(cmd.Run())
}
