package report

import (
	"bytes"
	"context"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// chromium finds Debian's chromium, or skips saying how to get it.
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Skip("no chromium on PATH: apt-get install -y chromium (Debian) to run the headless-browser check of the report")
	return ""
}

// headless loads file in headless Chromium with no network (unshare -n
// when root) and returns its stderr log, the DOM it rendered and a
// screenshot.
func headless(t *testing.T, bin, file string) (log string, dom string, shot []byte) {
	t.Helper()
	dir := t.TempDir()
	shotPath := filepath.Join(dir, "shot.png")
	common := []string{"--headless", "--no-sandbox", "--disable-gpu", "--enable-logging=stderr", "--v=0",
		"--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--disable-default-apps", "--disable-extensions", "--dns-prefetch-disable", "--user-data-dir=" + filepath.Join(dir, "profile"),
		"--window-size=1280,2400"}
	run := func(extra ...string) (string, string) {
		ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
		defer cancel()
		args := append(append(append([]string{}, common...), extra...), "file://"+file)
		name := bin
		if os.Geteuid() == 0 {
			if u, err := exec.LookPath("unshare"); err == nil {
				args = append([]string{"-n", bin}, args...)
				name = u
			}
		}
		cmd := exec.CommandContext(ctx, name, args...)
		cmd.Env = append(os.Environ(), "HOME="+dir)
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		if err := cmd.Run(); err != nil {
			t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, errb.String())
		}
		return out.String(), errb.String()
	}
	dom, log1 := run("--dump-dom")
	_, log2 := run("--screenshot=" + shotPath)
	shot, err := os.ReadFile(shotPath)
	if err != nil {
		t.Fatalf("no screenshot: %v\n%s", err, log2)
	}
	return log1 + log2, dom, shot
}

// consoleErrors are the page's console messages and script errors in
// Chromium's stderr log.
var consoleErrors = regexp.MustCompile(`(?m)^.*(CONSOLE\(\d+\)|Uncaught|ERROR:CONSOLE|Refused to).*$`)

// nonBlank counts the pixels that are not the background and the
// distinct colours among them.
func nonBlank(t *testing.T, shot []byte) (pixels, colours int) {
	t.Helper()
	img, err := png.Decode(bytes.NewReader(shot))
	if err != nil {
		t.Fatalf("screenshot is not a PNG: %v", err)
	}
	seen := map[[3]uint32]bool{}
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y += 2 {
		for x := b.Min.X; x < b.Max.X; x += 2 {
			r, g, bl, _ := img.At(x, y).RGBA()
			if r>>8 > 250 && g>>8 > 250 && bl>>8 > 250 {
				continue
			}
			pixels++
			seen[[3]uint32{r >> 12, g >> 12, bl >> 12}] = true
		}
	}
	return pixels, len(seen)
}

// TestE2EBrowserReport renders the sample run's page and loads it in a
// real headless Chromium: no console error, the pictures in the DOM, a
// screenshot that shows something. A page that logs a console error must
// be caught the same way (the check can fail).
func TestE2EBrowserReport(t *testing.T) {
	if os.Getenv("CNSTACK_E2E") == "" && os.Getenv("CNSTACK_BROWSER_TEST") == "" {
		t.Skip("headless-browser check: set CNSTACK_E2E=1 (make e2e) or CNSTACK_BROWSER_TEST=1")
	}
	bin := chromium(t)
	p := samplePage(t)
	dir := t.TempDir()
	if err := p.Write(dir); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	log, dom, shot := headless(t, bin, filepath.Join(dir, "report.html"))
	t.Logf("chromium: page loaded and shot in %s", time.Since(start).Round(time.Millisecond))
	if m := consoleErrors.FindAllString(log, -1); len(m) > 0 {
		t.Errorf("console errors loading report.html:\n%s", strings.Join(m, "\n"))
	}
	for _, want := range []string{`class="dag"`, `class="sizes"`, `class="gantt"`, `class="trend"`, "mesh-0 CrashLoopBackOff"} {
		if !strings.Contains(dom, want) {
			t.Errorf("rendered DOM lacks %q", want)
		}
	}
	px, colours := nonBlank(t, shot)
	t.Logf("screenshot: %d bytes, %d non-background sample pixels, %d colours", len(shot), px, colours)
	if px < 2000 || colours < 6 {
		t.Errorf("screenshot looks blank: %d non-background pixels, %d colours", px, colours)
	}

	// The negative control: a console error is seen.
	bad := filepath.Join(dir, "bad.html")
	os.WriteFile(bad, []byte(`<!doctype html><html><body><p>x</p><script>console.error("planted error"); undefinedFn();</script></body></html>`), 0o644)
	log, _, _ = headless(t, bin, bad)
	if !consoleErrors.MatchString(log) {
		t.Errorf("a page with a console error and an uncaught exception passed the check; log:\n%s", log)
	}
}
