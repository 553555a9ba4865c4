package regclient

import (
	"context"
	"encoding/json"
	"errors"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"oras.land/oras-go/v2/registry/remote/auth"
)

// TestOffline checks that an offline client refuses non-loopback hosts at
// once, naming the host and without retries, and still reaches loopback.
func TestOffline(t *testing.T) {
	srv := httptest.NewServer(quietRegistry())
	defer srv.Close()
	c, err := New(Options{Offline: true, DockerConfig: filepath.Join(t.TempDir(), "config.json")})
	if err != nil {
		t.Fatal(err)
	}
	if err := ping(t, c, strings.TrimPrefix(srv.URL, "http://")); err != nil {
		t.Fatalf("loopback registry while offline: %v", err)
	}
	for _, host := range []string{"registry.example.com", "10.0.0.5:5000", "docker.io"} {
		start := time.Now()
		err := ping(t, c, host)
		if !errors.Is(err, ErrOffline) {
			t.Errorf("%s: %v, want ErrOffline", host, err)
			continue
		}
		if d := time.Since(start); d > time.Second {
			t.Errorf("%s: offline refusal took %s (retried?)", host, d)
		}
		if !strings.Contains(err.Error(), "refusing to connect to") {
			t.Errorf("%s: message %q does not say what was refused", host, err)
		}
	}
	// The download client (remote ADD/APP sources) is the same guarded client.
	if _, err := c.HTTPClient().Get("http://downloads.example.com/x.tgz"); !errors.Is(err, ErrOffline) {
		t.Errorf("download while offline: %v", err)
	}
}

// TestLoginLogout logs in to a loopback registry (which accepts anyone)
// and checks the credential lands in the docker config, and goes on logout.
func TestLoginLogout(t *testing.T) {
	srv := httptest.NewServer(quietRegistry())
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "http://")
	cfg := filepath.Join(t.TempDir(), "config.json")
	c, err := New(Options{DockerConfig: cfg})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Login(context.Background(), host, auth.Credential{Username: "me", Password: "secret"}); err != nil {
		t.Fatal(err)
	}
	var file struct {
		Auths map[string]struct{ Auth string } `json:"auths"`
	}
	b, _ := os.ReadFile(cfg)
	if err := json.Unmarshal(b, &file); err != nil || file.Auths[host].Auth == "" {
		t.Fatalf("config after login: %v\n%s", err, b)
	}
	if err := c.Logout(context.Background(), host); err != nil {
		t.Fatal(err)
	}
	b, _ = os.ReadFile(cfg)
	if strings.Contains(string(b), host) {
		t.Fatalf("config after logout still names %s:\n%s", host, b)
	}
	if got := RegistryHost("docker.io"); got != "registry-1.docker.io" {
		t.Errorf("RegistryHost(docker.io) = %s", got)
	}
}
