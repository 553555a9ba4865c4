package vmimage

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/cnstack/cnstack/internal/filelock"
	"github.com/cnstack/cnstack/internal/tailbuf"
)

// Options tune Build. The zero value builds from the machine's apt mirror.
type Options struct {
	// Mirror is the Debian mirror URL; empty means $CNSTACK_DEBIAN_MIRROR, then
	// the machine's apt sources (MirrorFromAPT).
	Mirror string
	// Output, if set, receives the build tools' output as it happens (it is
	// always kept in the entry's build.log too).
	Output io.Writer
	// Logger receives progress; nil means slog.Default().
	Logger *slog.Logger
}

// BuildLogFile is kept in each cache entry: the output of every build step.
const BuildLogFile = "build.log"

// Build makes the image described by recipeDir, or returns the cached one.
//
// The result lives in cacheDir/<key>/ where key is CacheKey of the recipe, the
// packages, the mirror and BuilderVersion. A second call with the same inputs
// returns at once; concurrent callers (goroutines or processes) serialize on a
// file lock so the image is built once; the entry appears atomically (built in
// a temporary directory, then renamed). Building needs root, debootstrap,
// mke2fs (e2fsprogs >= 1.43) and qemu-img.
func Build(ctx context.Context, recipeDir, cacheDir string, opts Options) (*Image, error) {
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	r, mirror, key, err := resolve(recipeDir, opts)
	if err != nil {
		return nil, err
	}
	entry := filepath.Join(cacheDir, key)
	if img, err := Open(entry); err == nil {
		return img, nil
	}
	if err := os.MkdirAll(cacheDir, 0o755); err != nil {
		return nil, fmt.Errorf("build image %s: %w", r.Name, err)
	}
	lock, err := filelock.Acquire(ctx, filepath.Join(cacheDir, key+".lock"), true)
	if err != nil {
		return nil, fmt.Errorf("build image %s: %w", r.Name, err)
	}
	defer lock.Unlock()
	// Whoever held the lock before us may have built it.
	if img, err := Open(entry); err == nil {
		return img, nil
	}
	// Leftovers of a build of this key that died: nobody else can be building
	// it while we hold the lock.
	stale, _ := filepath.Glob(filepath.Join(cacheDir, ".build-"+key[:16]+"-*"))
	for _, d := range stale {
		if err := removeAllSafe(d); err != nil {
			return nil, fmt.Errorf("build image %s: clean stale build: %w", r.Name, err)
		}
	}

	b := &builder{recipe: r, recipeDir: recipeDir, mirror: mirror, key: key, log: log.With("image", r.Name, "key", key[:12])}
	tmp, err := os.MkdirTemp(cacheDir, ".build-"+key[:16]+"-")
	if err != nil {
		return nil, fmt.Errorf("build image %s: %w", r.Name, err)
	}
	defer func() {
		if err := removeAllSafe(tmp); err != nil {
			b.log.Warn("could not remove build directory", "dir", tmp, "err", err)
		}
	}()
	out := filepath.Join(tmp, "out")
	if err := os.Mkdir(out, 0o755); err != nil {
		return nil, err
	}
	logf, err := os.Create(filepath.Join(out, BuildLogFile))
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	b.output = logf
	if opts.Output != nil {
		b.output = io.MultiWriter(logf, opts.Output)
	}
	start := time.Now()
	if err := b.build(ctx, filepath.Join(tmp, "rootfs"), out); err != nil {
		if kept := keepFailureLog(cacheDir, key, logf.Name(), filepath.Join(tmp, "rootfs", "debootstrap", "debootstrap.log")); kept != "" {
			return nil, fmt.Errorf("build image %s (full log: %s): %w", r.Name, kept, err)
		}
		return nil, fmt.Errorf("build image %s: %w", r.Name, err)
	}
	if err := logf.Sync(); err != nil {
		return nil, err
	}
	if err := os.Rename(out, entry); err != nil {
		return nil, fmt.Errorf("build image %s: publish: %w", r.Name, err)
	}
	_ = os.Remove(filepath.Join(cacheDir, key+".failed.log"))
	b.log.Info("image built", "dir", entry, "took", time.Since(start).Round(time.Second))
	return Open(entry)
}

// ErrNotBuilt is returned by Lookup when the image is not in the cache.
var ErrNotBuilt = errors.New("image not built")

// Lookup returns the cached image for recipeDir without building it, or an
// error wrapping ErrNotBuilt.
func Lookup(recipeDir, cacheDir string, opts Options) (*Image, error) {
	r, _, key, err := resolve(recipeDir, opts)
	if err != nil {
		return nil, err
	}
	img, err := Open(filepath.Join(cacheDir, key))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("image %s (key %s): %w", r.Name, key[:12], ErrNotBuilt)
	}
	return img, err
}

// resolve loads the recipe and computes the mirror and the cache key.
func resolve(recipeDir string, opts Options) (*Recipe, string, string, error) {
	r, err := LoadRecipe(recipeDir)
	if err != nil {
		return nil, "", "", err
	}
	mirror := opts.Mirror
	if mirror == "" {
		mirror = os.Getenv(MirrorEnv)
	}
	if mirror == "" {
		if mirror, err = MirrorFromAPT("/", r.Suite); err != nil {
			return nil, "", "", fmt.Errorf("image %s: %w", r.Name, err)
		}
	}
	mirror = strings.TrimRight(mirror, "/")
	key, err := CacheKey(recipeDir, r, mirror)
	if err != nil {
		return nil, "", "", err
	}
	return r, mirror, key, nil
}

type builder struct {
	recipe    *Recipe
	recipeDir string
	mirror    string
	key       string
	log       *slog.Logger
	output    io.Writer
}

func (b *builder) build(ctx context.Context, rootfs, out string) error {
	r := b.recipe
	size, _ := ParseSize(r.DiskSize) // validated by ParseRecipe
	for _, tool := range []string{"debootstrap", "mke2fs", "qemu-img", "chroot"} {
		if _, err := exec.LookPath(tool); err != nil {
			return fmt.Errorf("%s not found (apt-get install debootstrap e2fsprogs qemu-utils): %w", tool, err)
		}
	}
	if os.Geteuid() != 0 {
		return errors.New("debootstrap needs root")
	}

	step := b.step("debootstrap")
	args := []string{
		"--variant=" + r.Variant, "--arch=" + r.Arch,
		"--components=" + strings.Join(r.Components, ","),
		"--include=" + strings.Join(r.Packages, ","),
		r.Suite, rootfs, b.mirror,
	}
	if err := b.run(ctx, "debootstrap", args...); err != nil {
		return err
	}
	step()

	if len(r.AptInstall) > 0 {
		step = b.step("apt-get install")
		if err := b.aptInstall(ctx, rootfs); err != nil {
			return err
		}
		step()
	}

	step = b.step("configure rootfs")
	if err := copyOverlay(filepath.Join(b.recipeDir, OverlayDir), rootfs); err != nil {
		return fmt.Errorf("apply overlay: %w", err)
	}
	// The guest's own systemctl, run in the chroot: it only edits symlinks
	// there, and its version matches the guest's units.
	if len(r.Enable) > 0 {
		if err := b.run(ctx, "chroot", append([]string{rootfs, "systemctl", "enable"}, r.Enable...)...); err != nil {
			return err
		}
	}
	if len(r.Mask) > 0 {
		if err := b.run(ctx, "chroot", append([]string{rootfs, "systemctl", "mask"}, r.Mask...)...); err != nil {
			return err
		}
	}
	for _, g := range r.Remove {
		matches, err := filepath.Glob(filepath.Join(rootfs, g))
		if err != nil {
			return err
		}
		for _, m := range matches {
			if err := os.RemoveAll(m); err != nil {
				return fmt.Errorf("remove %s: %w", g, err)
			}
		}
	}
	// systemd makes a machine-id on first boot when the file is empty, so no
	// two VMs share one.
	if err := os.WriteFile(filepath.Join(rootfs, "etc", "machine-id"), nil, 0o444); err != nil {
		return err
	}
	kver, err := b.extractBoot(rootfs, out)
	if err != nil {
		return err
	}
	step()

	step = b.step("mke2fs")
	raw := filepath.Join(filepath.Dir(out), "root.img")
	uuid := uuidFromKey(b.key)
	if err := b.run(ctx, "mke2fs", "-q", "-t", "ext4", "-L", "root", "-U", uuid,
		"-E", "root_owner=0:0,hash_seed="+uuid, "-d", rootfs, raw, fmt.Sprintf("%dM", size>>20)); err != nil {
		return err
	}
	step()

	step = b.step("qemu-img convert")
	if err := b.run(ctx, "qemu-img", "convert", "-c", "-o", "compression_type=zstd", "-f", "raw", "-O", "qcow2",
		raw, filepath.Join(out, DiskFile)); err != nil {
		return err
	}
	if err := os.Remove(raw); err != nil {
		return err
	}
	step()

	img := Image{
		Name:           r.Name,
		Key:            b.key,
		DiskFormat:     "qcow2",
		DiskSize:       size,
		Cmdline:        r.Cmdline,
		Seed:           r.Seed,
		User:           r.User,
		Suite:          r.Suite,
		Mirror:         b.mirror,
		Packages:       append(append([]string{}, r.Packages...), r.AptInstall...),
		KernelVersion:  kver,
		BuilderVersion: BuilderVersion,
	}
	data, err := json.MarshalIndent(img, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(out, ManifestFile), append(data, '\n'), 0o444); err != nil {
		return err
	}
	for _, f := range []string{KernelFile, InitrdFile, DiskFile} {
		if err := os.Chmod(filepath.Join(out, f), 0o444); err != nil {
			return err
		}
	}
	return nil
}

// aptInstall installs the recipe's second-stage packages with the guest's
// apt in a chroot, from the same mirror (debootstrap wrote it to the guest's
// sources.list), with /proc mounted and services kept from starting.
func (b *builder) aptInstall(ctx context.Context, rootfs string) error {
	proc := filepath.Join(rootfs, "proc")
	if err := syscall.Mount("proc", proc, "proc", 0, ""); err != nil {
		return fmt.Errorf("mount /proc in the chroot: %w", err)
	}
	defer func() { _ = syscall.Unmount(proc, syscall.MNT_DETACH) }()
	policy := filepath.Join(rootfs, "usr", "sbin", "policy-rc.d")
	if err := os.WriteFile(policy, []byte("#!/bin/sh\nexit 101\n"), 0o755); err != nil {
		return err
	}
	defer os.Remove(policy)
	if err := b.run(ctx, "chroot", rootfs, "apt-get", "-q", "update"); err != nil {
		return err
	}
	args := append([]string{rootfs, "apt-get", "-q", "-y", "--no-install-recommends", "install"}, b.recipe.AptInstall...)
	if err := b.run(ctx, "chroot", args...); err != nil {
		return err
	}
	return b.run(ctx, "chroot", rootfs, "apt-get", "clean")
}

// extractBoot copies the one kernel and its initramfs out of /boot.
func (b *builder) extractBoot(rootfs, out string) (string, error) {
	kernels, _ := filepath.Glob(filepath.Join(rootfs, "boot", "vmlinuz-*"))
	if len(kernels) != 1 {
		return "", fmt.Errorf("want exactly one kernel in /boot, found %d (add a linux-image package)", len(kernels))
	}
	kver := strings.TrimPrefix(filepath.Base(kernels[0]), "vmlinuz-")
	initrd := filepath.Join(rootfs, "boot", "initrd.img-"+kver)
	if _, err := os.Stat(initrd); err != nil {
		return "", fmt.Errorf("no initramfs for kernel %s (add initramfs-tools): %w", kver, err)
	}
	if err := copyFile(kernels[0], filepath.Join(out, KernelFile)); err != nil {
		return "", err
	}
	if err := copyFile(initrd, filepath.Join(out, InitrdFile)); err != nil {
		return "", err
	}
	return kver, nil
}

func (b *builder) step(name string) func() {
	start := time.Now()
	b.log.Info("building image", "step", name)
	fmt.Fprintf(b.output, "==> %s\n", name)
	return func() {
		b.log.Info("step done", "step", name, "took", time.Since(start).Round(100*time.Millisecond))
	}
}

// run executes a build tool in its own process group (so cancelling kills its
// children too), with output to the build log; errors carry the output's tail.
func (b *builder) run(ctx context.Context, name string, args ...string) error {
	tail := tailbuf.New(4096)
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Stdout = io.MultiWriter(b.output, tail)
	cmd.Stderr = cmd.Stdout
	cmd.Env = append(os.Environ(), "LC_ALL=C", "DEBIAN_FRONTEND=noninteractive")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 10 * time.Second
	fmt.Fprintf(b.output, "+ %s %s\n", name, strings.Join(args, " "))
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("%s: %w", name, ctx.Err())
		}
		return fmt.Errorf("%s: %w\n%s", name, err, tail.String())
	}
	return nil
}

// keepFailureLog saves the build log, and debootstrap's own log when there is
// one, as cacheDir/<key>.failed.log (the build directory is deleted).
func keepFailureLog(cacheDir, key string, logs ...string) string {
	dst := filepath.Join(cacheDir, key+".failed.log")
	out, err := os.Create(dst)
	if err != nil {
		return ""
	}
	defer out.Close()
	for _, l := range logs {
		in, err := os.Open(l)
		if err != nil {
			continue
		}
		fmt.Fprintf(out, "==> %s\n", l)
		_, _ = io.Copy(out, in)
		in.Close()
	}
	return dst
}

// copyOverlay copies the recipe's rootfs/ tree over the root filesystem,
// owned by root, keeping permission bits and symlinks.
func copyOverlay(src, dst string) error {
	if _, err := os.Stat(src); os.IsNotExist(err) {
		return nil
	}
	return filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		target := filepath.Join(dst, rel)
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		switch {
		case fi.IsDir():
			if err := os.MkdirAll(target, 0o755); err != nil {
				return err
			}
			return nil
		case fi.Mode()&fs.ModeSymlink != 0:
			link, err := os.Readlink(p)
			if err != nil {
				return err
			}
			_ = os.Remove(target)
			return os.Symlink(link, target)
		case fi.Mode().IsRegular():
			// Replace, never write through: the target may be a symlink into
			// the host (debootstrap's resolv.conf handling, for one).
			_ = os.Remove(target)
			if err := copyFile(p, target); err != nil {
				return err
			}
			if err := os.Chmod(target, fi.Mode().Perm()); err != nil {
				return err
			}
			return os.Lchown(target, 0, 0)
		default:
			return fmt.Errorf("%s: unsupported file type", p)
		}
	})
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// uuidFromKey makes a stable filesystem UUID from the cache key, so the same
// inputs give the same ext4 superblock identity.
func uuidFromKey(key string) string {
	s := sha256.Sum256([]byte("fs-uuid:" + key))
	s[6] = s[6]&0x0f | 0x40 // version 4 layout
	s[8] = s[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", s[0:4], s[4:6], s[6:8], s[8:10], s[10:16])
}

// removeAllSafe removes dir after detaching anything mounted below it: a
// debootstrap that died mid-way can leave /proc or /sys of the host mounted
// inside the root filesystem, and RemoveAll must never descend into those.
func removeAllSafe(dir string) error {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	for attempt := 0; ; attempt++ {
		mounts, err := mountsBelow(abs)
		if err != nil {
			return err
		}
		if len(mounts) == 0 {
			break
		}
		if attempt == 3 {
			return fmt.Errorf("refusing to remove %s: still mounted: %s", abs, strings.Join(mounts, ", "))
		}
		for _, m := range mounts {
			_ = syscall.Unmount(m, syscall.MNT_DETACH)
		}
	}
	return os.RemoveAll(abs)
}

// mountsBelow lists mount points strictly below dir, deepest first.
func mountsBelow(dir string) ([]string, error) {
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	var out []string
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) < 5 {
			continue
		}
		mp := unescapeMount(f[4])
		if strings.HasPrefix(mp, dir+"/") {
			out = append(out, mp)
		}
	}
	sort.Slice(out, func(i, j int) bool { return len(out[i]) > len(out[j]) })
	return out, nil
}

// unescapeMount undoes the octal escapes (\040 for space...) of mountinfo.
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b bytes.Buffer
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			var v byte
			ok := true
			for _, c := range s[i+1 : i+4] {
				if c < '0' || c > '7' {
					ok = false
					break
				}
				v = v*8 + byte(c-'0')
			}
			if ok {
				b.WriteByte(v)
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
