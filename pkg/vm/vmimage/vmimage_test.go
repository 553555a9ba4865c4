package vmimage

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/cnstack/cnstack/internal/filelock"
)

const validRecipe = `name: t
suite: bookworm
packages: [linux-image-cloud-amd64, openssh-server]
diskSize: 2GiB
cmdline: root=/dev/vda rw
seed: cmdline
`

func TestParseRecipe(t *testing.T) {
	r, err := ParseRecipe([]byte(validRecipe))
	if err != nil {
		t.Fatal(err)
	}
	if r.Variant != "minbase" || r.Arch != "amd64" || r.User != "root" || strings.Join(r.Components, ",") != "main" {
		t.Errorf("defaults not applied: %+v", r)
	}
	for _, tc := range []struct {
		name, yaml, want string
	}{
		{"unknown field", validRecipe + "pakages: [x]\n", "unknown field"},
		{"bad package", strings.Replace(validRecipe, "openssh-server", "Open SSH", 1), `package "Open SSH"`},
		{"no packages", strings.Replace(validRecipe, "packages: [linux-image-cloud-amd64, openssh-server]", "packages: []", 1), "at least a kernel"},
		{"bad size", strings.Replace(validRecipe, "2GiB", "2TB", 1), "diskSize"},
		{"no root", strings.Replace(validRecipe, "root=/dev/vda rw", "quiet", 1), "root="},
		{"unknown seed", strings.Replace(validRecipe, "seed: cmdline", "seed: floppy", 1), `seed "floppy"`},
		{"arm", validRecipe + "arch: arm64\n", "only amd64"},
		{"bad unit", validRecipe + "enable: [ssh]\n", "not a systemd unit"},
		{"escaping remove", validRecipe + "remove: [../etc]\n", "relative path inside"},
		{"absolute remove", validRecipe + "remove: [/etc/x]\n", "relative path inside"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseRecipe([]byte(tc.yaml))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

func TestParseSize(t *testing.T) {
	for in, want := range map[string]int64{"8GiB": 8 << 30, "8G": 8 << 30, "512MiB": 512 << 20, "65536K": 64 << 20, "67108864": 64 << 20} {
		if got, err := ParseSize(in); err != nil || got != want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "8GB", "1.5G", "10M", "1000000K1", "2048G", "-1G", "1500K"} {
		if _, err := ParseSize(bad); err == nil {
			t.Errorf("ParseSize(%q) accepted", bad)
		}
	}
}

// TestTheRepositoryRecipes parses the recipes shipped in images/.
func TestTheRepositoryRecipes(t *testing.T) {
	r, err := LoadRecipe(filepath.Join("..", "..", "..", "images", "debian12"))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"linux-image-cloud-amd64", "openssh-server", "systemd-sysv", "iptables", "conntrack", "socat"} {
		found := false
		for _, q := range r.Packages {
			found = found || q == p
		}
		if !found {
			t.Errorf("debian12 recipe lacks %s", p)
		}
	}
	seed := filepath.Join("..", "..", "..", "images", "debian12", OverlayDir, "usr", "local", "sbin", "cnstack-seed")
	fi, err := os.Stat(seed)
	if err != nil || fi.Mode().Perm()&0o111 == 0 {
		t.Errorf("cnstack-seed missing or not executable: %v %v", fi, err)
	}
	if sh, err := exec.LookPath("sh"); err == nil {
		if out, err := exec.Command(sh, "-n", seed).CombinedOutput(); err != nil {
			t.Errorf("cnstack-seed has a syntax error: %v: %s", err, out)
		}
	}
}

func TestMirrorFromAPT(t *testing.T) {
	for _, tc := range []struct {
		name  string
		files map[string]string
		suite string
		want  string
	}{
		{"deb822, first matching paragraph", map[string]string{
			"sources.list.d/debian.sources": "Types: deb\n# a comment\nURIs: http://deb.example.org/debian/\nSuites: bookworm bookworm-updates\nComponents: main\n\n" +
				"Types: deb\nURIs: http://security.example.org/debian-security\nSuites: bookworm-security\nComponents: main\n",
		}, "bookworm", "http://deb.example.org/debian"},
		{"deb822 disabled and deb-src skipped", map[string]string{
			"sources.list.d/a.sources": "Enabled: no\nTypes: deb\nURIs: http://off.example.org/\nSuites: bookworm\n\n" +
				"Types: deb-src\nURIs: http://src.example.org/\nSuites: bookworm\n\nTypes: deb deb-src\nURIs: http://on.example.org/debian\nSuites: bookworm\n",
		}, "bookworm", "http://on.example.org/debian"},
		{"one-line with options", map[string]string{
			"sources.list": "# deb http://commented.example.org bookworm main\ndeb-src http://src.example.org bookworm main\n" +
				"deb [arch=amd64 signed-by=/k.gpg] http://opt.example.org/debian bookworm main contrib\n",
		}, "bookworm", "http://opt.example.org/debian"},
		{"disabled file ignored", map[string]string{
			"sources.list.d/x.list.disabled": "deb http://nope.example.org bookworm main\n",
			"sources.list.d/y.list":          "deb http://yes.example.org/debian bookworm main\n",
		}, "bookworm", "http://yes.example.org/debian"},
		{"suite not served", map[string]string{
			"sources.list": "deb http://deb.example.org/debian trixie main\n",
		}, "bookworm", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			for name, body := range tc.files {
				p := filepath.Join(root, "etc", "apt", name)
				if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			got, err := MirrorFromAPT(root, tc.suite)
			if tc.want == "" {
				if err == nil {
					t.Errorf("want an error, got %q", got)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Errorf("got %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}

func writeRecipe(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, body := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestCacheKey(t *testing.T) {
	base := map[string]string{RecipeFile: validRecipe, "rootfs/etc/hostname": "a\n"}
	key := func(files map[string]string, mirror string, mutate func(dir string)) string {
		dir := writeRecipe(t, files)
		if mutate != nil {
			mutate(dir)
		}
		r, err := LoadRecipe(dir)
		if err != nil {
			t.Fatal(err)
		}
		k, err := CacheKey(dir, r, mirror)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	with := func(k, v string) map[string]string {
		m := map[string]string{}
		for a, b := range base {
			m[a] = b
		}
		m[k] = v
		return m
	}
	k0 := key(base, "http://m/debian", nil)
	if k1 := key(base, "http://m/debian/", nil); k1 != k0 {
		t.Error("key depends on where the recipe lives or on a trailing slash")
	}
	if k := key(with(".swp", "junk"), "http://m/debian", nil); k != k0 {
		t.Error("a dot file changed the key")
	}
	if k := key(base, "http://m/debian", func(dir string) { _ = os.Chmod(filepath.Join(dir, "rootfs"), 0o775) }); k != k0 {
		t.Error("a directory's permissions (the checkout's umask) changed the key")
	}
	for name, k := range map[string]string{
		"mirror":        key(base, "http://other/debian", nil),
		"overlay bytes": key(with("rootfs/etc/hostname", "b\n"), "http://m/debian", nil),
		"new file":      key(with("rootfs/etc/motd", ""), "http://m/debian", nil),
		"renamed file":  key(map[string]string{RecipeFile: validRecipe, "rootfs/etc/hostnam": "a\n"}, "http://m/debian", nil),
		"package list":  key(with(RecipeFile, strings.Replace(validRecipe, "openssh-server", "openssh-server, socat", 1)), "http://m/debian", nil),
		"mode": key(base, "http://m/debian", func(dir string) {
			_ = os.Chmod(filepath.Join(dir, "rootfs/etc/hostname"), 0o755)
		}),
		"empty dir": key(base, "http://m/debian", func(dir string) {
			_ = os.Mkdir(filepath.Join(dir, "rootfs/opt"), 0o755)
		}),
		"symlink": key(base, "http://m/debian", func(dir string) {
			_ = os.Symlink("/dev/null", filepath.Join(dir, "rootfs/etc/link"))
		}),
	} {
		if k == k0 {
			t.Errorf("changing the %s did not change the key", name)
		}
	}
}

// TestRemoveAllSafeDetachesMounts mounts a tmpfs inside a directory, the way a
// dead debootstrap leaves /proc mounted in its chroot, and checks removal
// unmounts instead of descending into the mount.
func TestRemoveAllSafeDetachesMounts(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("mounting needs root")
	}
	dir := t.TempDir()
	mnt := filepath.Join(dir, "rootfs", "proc")
	if err := os.MkdirAll(mnt, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mount("tmpfs", mnt, "tmpfs", 0, "size=1m"); err != nil {
		t.Skipf("cannot mount tmpfs here: %v", err)
	}
	if err := os.WriteFile(filepath.Join(mnt, "precious"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := removeAllSafe(filepath.Join(dir, "rootfs")); err != nil {
		t.Fatal(err)
	}
	if ms, _ := mountsBelow(dir); len(ms) != 0 {
		t.Errorf("still mounted: %v", ms)
	}
	if _, err := os.Stat(filepath.Join(dir, "rootfs")); !os.IsNotExist(err) {
		t.Errorf("rootfs not removed: %v", err)
	}
}

func TestUnescapeMount(t *testing.T) {
	if got := unescapeMount(`/a\040b\011c\134d`); got != "/a b\tc\\d" {
		t.Errorf("unescapeMount = %q", got)
	}
	if got := unescapeMount(`/plain`); got != "/plain" {
		t.Errorf("unescapeMount = %q", got)
	}
}

func TestUUIDFromKey(t *testing.T) {
	u := uuidFromKey("abc")
	if u != uuidFromKey("abc") || u == uuidFromKey("abd") {
		t.Error("uuid not a function of the key")
	}
	if len(u) != 36 || u[14] != '4' {
		t.Errorf("not a version-4 shaped UUID: %s", u)
	}
}

func TestLookupNotBuilt(t *testing.T) {
	dir := writeRecipe(t, map[string]string{RecipeFile: validRecipe})
	_, err := Lookup(dir, t.TempDir(), Options{Mirror: "http://m/debian"})
	if !errors.Is(err, ErrNotBuilt) {
		t.Errorf("Lookup of an unbuilt image: %v, want ErrNotBuilt", err)
	}
}

func TestPrune(t *testing.T) {
	cache := t.TempDir()
	k := func(c byte) string { return strings.Repeat(string(c), 64) }
	for _, d := range []string{k('a'), k('b'), k('c'), "not-a-key"} {
		if err := os.MkdirAll(filepath.Join(cache, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	lock, err := filelock.Acquire(t.Context(), filepath.Join(cache, k('c')+".lock"), true)
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Unlock()
	removed, err := Prune(cache, k('a'))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(removed, ",") != k('b') {
		t.Errorf("removed %v, want only the unlocked, unkept key", removed)
	}
	for _, d := range []string{k('a'), k('c'), "not-a-key"} {
		if _, err := os.Stat(filepath.Join(cache, d)); err != nil {
			t.Errorf("%s was removed: %v", d, err)
		}
	}
}
