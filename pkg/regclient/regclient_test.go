package regclient

import (
	"context"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/registry"
	"oras.land/oras-go/v2/errdef"

	"github.com/cnstack/cnstack/pkg/reference"
)

func quietRegistry() http.Handler { return registry.New(registry.Logger(log.New(io.Discard, "", 0))) }

func ping(t *testing.T, c *Client, host string) error {
	t.Helper()
	ref, err := reference.Parse(host + "/probe/x:1")
	if err != nil {
		t.Fatal(err)
	}
	repo, err := c.Repository(context.Background(), ref)
	if err != nil {
		return err
	}
	_, err = repo.Resolve(context.Background(), "1")
	if errors.Is(err, errdef.ErrNotFound) {
		return nil // reached the registry and authenticated; the tag just isn't there
	}
	return err
}

// A registry with a self-signed certificate: refused when TLS is verified,
// reached with --ca-file or --insecure-registry.
func TestCustomCAAndInsecure(t *testing.T) {
	srv := httptest.NewTLSServer(quietRegistry())
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "https://")
	cfg := filepath.Join(t.TempDir(), "config.json")
	strict, _ := New(Options{DockerConfig: cfg, VerifyLoopback: true})
	if err := ping(t, strict, host); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("an unknown CA was trusted: %v", err)
	}
	insecure, _ := New(Options{DockerConfig: cfg, VerifyLoopback: true, Insecure: []string{host}})
	if err := ping(t, insecure, host); err != nil {
		t.Fatalf("--insecure-registry %s: %v", host, err)
	}
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	pemBytes := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	os.WriteFile(caFile, pemBytes, 0o644)
	withCA, err := New(Options{DockerConfig: cfg, CAFile: caFile, VerifyLoopback: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := ping(t, withCA, host); err != nil {
		t.Fatalf("with the CA file: %v", err)
	}
	if _, err := New(Options{CAFile: filepath.Join(t.TempDir(), "missing.pem")}); err == nil {
		t.Fatal("a missing CA file was accepted")
	}
	os.WriteFile(caFile, []byte("not a certificate"), 0o644)
	if _, err := New(Options{CAFile: caFile}); err == nil || !strings.Contains(err.Error(), "no PEM certificate") {
		t.Fatalf("a bad CA file: %v", err)
	}
}

// basicAuth guards a registry with a user and password.
func basicAuth(user, pass string, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, p, ok := r.BasicAuth()
		if !ok || u != user || p != pass {
			w.Header().Set("WWW-Authenticate", `Basic realm="test"`)
			http.Error(w, `{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}`, http.StatusUnauthorized)
			return
		}
		h.ServeHTTP(w, r)
	})
}

func TestDockerConfigCredentials(t *testing.T) {
	const user, pass = "ci", "s3cret-passw0rd"
	srv := httptest.NewServer(basicAuth(user, pass, quietRegistry()))
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "http://")
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty.json")
	os.WriteFile(empty, []byte(`{}`), 0o600)
	anon, _ := New(Options{DockerConfig: empty})
	if err := ping(t, anon, host); err == nil || !strings.Contains(err.Error(), "credential not found") {
		t.Fatalf("without credentials: %v", err)
	}
	cfg := filepath.Join(dir, "config.json")
	auth := base64.StdEncoding.EncodeToString([]byte(user + ":" + pass))
	os.WriteFile(cfg, []byte(`{"auths":{"`+host+`":{"auth":"`+auth+`"}}}`), 0o600)
	c, err := New(Options{DockerConfig: cfg})
	if err != nil {
		t.Fatal(err)
	}
	if err := ping(t, c, host); err != nil {
		t.Fatalf("with docker config credentials: %v", err)
	}
	// A wrong password fails with the registry named and no secret in the message.
	os.WriteFile(cfg, []byte(`{"auths":{"`+host+`":{"auth":"`+base64.StdEncoding.EncodeToString([]byte(user+":wrong-"+pass))+`"}}}`), 0o600)
	c2, _ := New(Options{DockerConfig: cfg})
	err = ping(t, c2, host)
	if err == nil || !strings.Contains(err.Error(), host) || strings.Contains(err.Error(), pass) {
		t.Fatalf("wrong password: %v", err)
	}
}

func TestIsLoopbackAndMirrors(t *testing.T) {
	for host, want := range map[string]bool{"127.0.0.1:5000": true, "localhost": true, "[::1]:5000": true, "10.0.0.1:5000": false, "registry.example.com": false} {
		if IsLoopback(host) != want {
			t.Errorf("IsLoopback(%q) = %v", host, !want)
		}
	}
	c, _ := New(Options{DockerConfig: filepath.Join(t.TempDir(), "c.json"), Mirrors: map[string]string{"docker.io": "127.0.0.1:5000"}, Insecure: []string{"reg.internal:5000"}})
	if c.Endpoint("docker.io") != "127.0.0.1:5000" || c.Endpoint("quay.io") != "quay.io" {
		t.Error("mirrors")
	}
	if !c.IsInsecure("reg.internal:5000") || c.IsInsecure("reg.internal:5001") {
		t.Error("insecure list")
	}
}
