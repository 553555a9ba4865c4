package collect_test

import (
	"archive/tar"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	ggcrremote "github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/cnstack/cnstack/internal/testutil/regproc"
	"github.com/cnstack/cnstack/internal/testutil/tooltest"
	"github.com/cnstack/cnstack/pkg/collect"
	"github.com/cnstack/cnstack/pkg/collect/collector"
	"github.com/cnstack/cnstack/pkg/layer"
	"github.com/cnstack/cnstack/pkg/regclient"
	"github.com/cnstack/cnstack/pkg/store"
)

// fileLayer is an uncompressed tar layer kept in a file.
type fileLayer struct {
	path string
	hash v1.Hash
	size int64
}

func (l *fileLayer) Digest() (v1.Hash, error)             { return l.hash, nil }
func (l *fileLayer) DiffID() (v1.Hash, error)             { return l.hash, nil }
func (l *fileLayer) Size() (int64, error)                 { return l.size, nil }
func (l *fileLayer) MediaType() (types.MediaType, error)  { return types.OCIUncompressedLayer, nil }
func (l *fileLayer) Compressed() (io.ReadCloser, error)   { return os.Open(l.path) }
func (l *fileLayer) Uncompressed() (io.ReadCloser, error) { return os.Open(l.path) }

// genLayer writes a tar holding one file of size pseudo-random bytes.
func genLayer(dir string, seed uint64, size int64) (*fileLayer, error) {
	f, err := os.CreateTemp(dir, "layer-*.tar")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	h := sha256.New()
	w := io.MultiWriter(f, h)
	tw := tar.NewWriter(w)
	if err := tw.WriteHeader(&tar.Header{Name: fmt.Sprintf("data/%d.bin", seed), Mode: 0o644, Size: size, ModTime: time.Unix(0, 0), Typeflag: tar.TypeReg}); err != nil {
		return nil, err
	}
	var key [32]byte
	key[0], key[1] = byte(seed), byte(seed>>8)
	if _, err := io.CopyN(tw, rand.NewChaCha8(key), size); err != nil {
		return nil, err
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	return &fileLayer{path: f.Name(), hash: v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(h.Sum(nil))}, size: fi.Size()}, nil
}

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// memPeak samples the Go heap until stop is called.
func memPeak() (stop func() (heapInuse, sys uint64)) {
	var peakHeap, peakSys atomic.Uint64
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(20 * time.Millisecond)
		defer t.Stop()
		var ms runtime.MemStats
		for {
			runtime.ReadMemStats(&ms)
			if ms.HeapInuse > peakHeap.Load() {
				peakHeap.Store(ms.HeapInuse)
			}
			if ms.Sys > peakSys.Load() {
				peakSys.Store(ms.Sys)
			}
			select {
			case <-done:
				return
			case <-t.C:
			}
		}
	}()
	return func() (uint64, uint64) {
		close(done)
		wg.Wait()
		return peakHeap.Load(), peakSys.Load()
	}
}

func maxRSS() int64 {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return ru.Maxrss * 1024
}

func mib(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }

// BenchmarkCollect collects 50 generated images (~1 GiB of unique blobs:
// each has 20 MiB of its own plus a 4 MiB layer they share;
// CNSTACK_BENCH_IMAGES and CNSTACK_BENCH_MB change that) from a
// local registry process into a registry tree, then copies the same images
// into another registry process with `crane copy` (one process per image,
// run one at a time and 8 at a time), and prints times, their ratio and
// peak memory. Run it with `go test -run '^$' -bench BenchmarkCollect -benchtime 1x ./pkg/collect`.
func BenchmarkCollect(b *testing.B) {
	if testing.Short() {
		b.Skip("moves a gigabyte")
	}
	ctx := context.Background()
	nImages := envInt("CNSTACK_BENCH_IMAGES", 50)
	perImage := int64(envInt("CNSTACK_BENCH_MB", 20)) << 20
	crane := tooltest.Path(b, tooltest.Crane)
	src := regproc.Start(b, regproc.Options{})

	// Every image: a 4 MiB layer all share, and two of its own.
	gen := b.TempDir()
	t0 := time.Now()
	shared, err := genLayer(gen, 1, 4<<20)
	if err != nil {
		b.Fatal(err)
	}
	var refs []string
	var total int64 = shared.size
	var mu sync.Mutex
	var wg sync.WaitGroup
	sem := make(chan struct{}, 4)
	errs := make(chan error, nImages)
	for i := range nImages {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			own := perImage / 2
			l1, err := genLayer(gen, uint64(1000+2*i), own)
			if err == nil {
				var l2 *fileLayer
				l2, err = genLayer(gen, uint64(1001+2*i), own)
				if err == nil {
					img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
					img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
					img, err = mutate.AppendLayers(img, shared, l1, l2)
					if err == nil {
						repoTag := fmt.Sprintf("bench/img%02d:v1", i)
						ref, _ := name.ParseReference(src.Ref(repoTag), name.Insecure)
						err = ggcrremote.Write(ref, img, ggcrremote.WithContext(ctx), ggcrremote.WithJobs(2))
						mu.Lock()
						refs = append(refs, src.Ref(repoTag))
						total += l1.size + l2.size
						mu.Unlock()
						os.Remove(l1.path)
						os.Remove(l2.path)
					}
				}
			}
			if err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
	b.Logf("generated %d images, %s of unique blobs, in %s", nImages, mib(total), time.Since(t0).Round(time.Millisecond))

	for i := 0; i < b.N; i++ {
		work := b.TempDir()
		root := filepath.Join(work, "root")
		os.MkdirAll(filepath.Join(root, "manifests"), 0o755)
		os.WriteFile(filepath.Join(root, "manifests", "imageList"), []byte(strings.Join(refs, "\n")), 0o644)
		st, err := store.Open(filepath.Join(work, "store"))
		if err != nil {
			b.Fatal(err)
		}
		cfg := filepath.Join(work, "config.json")
		os.WriteFile(cfg, []byte(`{"auths":{}}`), 0o600)
		rc, err := regclient.New(regclient.Options{DockerConfig: cfg})
		if err != nil {
			b.Fatal(err)
		}
		col := &collect.Collector{Store: st, Remote: rc}
		req := collector.Request{Platform: ocispec.Platform{OS: "linux", Architecture: "amd64"}, Root: os.DirFS(root)}

		runtime.GC()
		rssBefore := maxRSS()
		stopMem := memPeak()
		b.ResetTimer()
		t1 := time.Now()
		res, err := col.Collect(ctx, req)
		if err != nil {
			b.Fatal(err)
		}
		tCollect := time.Since(t1)
		t2 := time.Now()
		if err := collect.WriteTree(ctx, filepath.Join(work, "tree"), res.Entries, st); err != nil {
			b.Fatal(err)
		}
		tTree := time.Since(t2)
		ours := time.Since(t1)
		b.StopTimer()
		heap, sys := stopMem()
		rss := maxRSS()

		t3 := time.Now()
		res2, err := col.Collect(ctx, req)
		if err != nil || len(res2.Entries) != len(res.Entries) {
			b.Fatalf("warm collect: %v", err)
		}
		tWarm := time.Since(t3)

		// The builder's own step: the registry tree as one gzip layer.
		t4 := time.Now()
		lres, err := layer.Write(ctx, io.Discard, res.Entries, layer.Options{ModTime: layer.Epoch})
		if err != nil {
			b.Fatal(err)
		}
		tLayer := time.Since(t4)

		craneRun := func(par int) (time.Duration, int64) {
			dst := regproc.Start(b, regproc.Options{})
			env := append(os.Environ(), "DOCKER_CONFIG="+work)
			var maxCraneRSS atomic.Int64
			t := time.Now()
			sem := make(chan struct{}, par)
			var wg sync.WaitGroup
			for _, r := range refs {
				wg.Add(1)
				go func() {
					defer wg.Done()
					sem <- struct{}{}
					defer func() { <-sem }()
					to := dst.Addr + strings.TrimPrefix(r, src.Addr)
					cmd := exec.CommandContext(ctx, crane, "copy", "--insecure", r, to)
					cmd.Env = env
					if out, err := cmd.CombinedOutput(); err != nil {
						b.Errorf("crane copy %s: %v\n%s", r, err, out)
						return
					}
					if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok && ru.Maxrss*1024 > maxCraneRSS.Load() {
						maxCraneRSS.Store(ru.Maxrss * 1024)
					}
				}()
			}
			wg.Wait()
			d := time.Since(t)
			dst.Stop()
			return d, maxCraneRSS.Load()
		}
		tCrane1, craneRSS1 := craneRun(1)
		tCrane8, craneRSS8 := craneRun(8)
		best := min(tCrane1, tCrane8)

		fmt.Printf("\nBenchmarkCollect: %d images, %s of unique blobs, %d tree files\n", nImages, mib(total), len(res.Entries))
		fmt.Printf("  cnstack collect (8 parallel, into the store)  %8s  %7.1f MiB/s\n", tCollect.Round(time.Millisecond), float64(total)/(1<<20)/tCollect.Seconds())
		fmt.Printf("  registry tree written (hard links)           %8s\n", tTree.Round(time.Millisecond))
		fmt.Printf("  cnstack total                                %8s\n", ours.Round(time.Millisecond))
		fmt.Printf("  crane copy, one image at a time              %8s  (peak RSS per crane %s)\n", tCrane1.Round(time.Millisecond), mib(craneRSS1))
		fmt.Printf("  crane copy, 8 images at a time               %8s  (peak RSS per crane %s)\n", tCrane8.Round(time.Millisecond), mib(craneRSS8))
		fmt.Printf("  ratio cnstack / best crane                   %8.2f× (goal ≤ 1.0×)\n", ours.Seconds()/best.Seconds())
		fmt.Printf("  warm re-collect (everything cached)          %8s\n", tWarm.Round(time.Millisecond))
		fmt.Printf("  builder's gzip layer of the tree (%s)  %8s  (not part of the ratio)\n", mib(lres.Size), tLayer.Round(time.Millisecond))
		fmt.Printf("  peak Go heap in use during collect           %8s  (runtime Sys %s)\n", mib(int64(heap)), mib(int64(sys)))
		fmt.Printf("  process max RSS before / after collect       %s / %s\n", mib(rssBefore), mib(rss))
		b.ReportMetric(ours.Seconds(), "s/collect")
		b.ReportMetric(best.Seconds(), "s/crane")
		b.ReportMetric(ours.Seconds()/best.Seconds(), "ratio")
		b.ReportMetric(float64(heap)/(1<<20), "MiB-heap")
	}
}
