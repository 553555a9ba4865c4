package regclient

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"

	"oras.land/oras-go/v2/registry/remote"
	"oras.land/oras-go/v2/registry/remote/auth"
	"oras.land/oras-go/v2/registry/remote/credentials"

	"github.com/cnstack/cnstack/pkg/reference"
)

// RegistryHost is the host a registry name is reached at, as credentials
// are keyed: "docker.io" and "index.docker.io" are Docker Hub's
// registry-1.docker.io; other names are returned as given.
func RegistryHost(registry string) string {
	r := strings.TrimSuffix(strings.TrimPrefix(strings.TrimPrefix(registry, "https://"), "http://"), "/")
	switch r {
	case reference.DockerHub, "index.docker.io", "registry-1.docker.io":
		return "registry-1.docker.io"
	}
	return r
}

// Login checks the credential against registry and, if the registry
// accepts it, stores it in the Docker config file (or its credential
// helper) that every registry access reads.
func (c *Client) Login(ctx context.Context, registry string, cred auth.Credential) error {
	host := RegistryHost(registry)
	reg, err := remote.NewRegistry(host)
	if err != nil {
		return fmt.Errorf("registry %q: %w", registry, err)
	}
	reg.PlainHTTP = c.speaksPlainHTTP(ctx, host)
	reg.Client = &auth.Client{Client: c.http, Cache: auth.NewCache(), Header: http.Header{"User-Agent": {c.userAgent()}}}
	store, err := c.writableCredentials()
	if err != nil {
		return err
	}
	if err := credentials.Login(ctx, store, reg, cred); err != nil {
		return fmt.Errorf("log in to %s: %w", host, err)
	}
	return nil
}

// Logout removes the stored credential of registry. Removing a credential
// that is not there is not an error.
func (c *Client) Logout(ctx context.Context, registry string) error {
	store, err := c.writableCredentials()
	if err != nil {
		return err
	}
	if err := credentials.Logout(ctx, store, RegistryHost(registry)); err != nil {
		return fmt.Errorf("log out of %s: %w", registry, err)
	}
	return nil
}

// ConfigPath is the Docker config file credentials are read from and written to.
func (c *Client) ConfigPath() string { return c.dockerConfigPath() }

// writableCredentials opens the Docker config for writing: with a credential
// helper configured the secret goes there, else into the file, base64-encoded
// as docker login writes it.
func (c *Client) writableCredentials() (credentials.Store, error) {
	store, err := credentials.NewStore(c.dockerConfigPath(), credentials.StoreOptions{AllowPlaintextPut: true})
	if err != nil {
		return nil, fmt.Errorf("read docker config %s: %w", c.dockerConfigPath(), err)
	}
	return store, nil
}

// dockerConfigPath is Options.DockerConfig, else $DOCKER_CONFIG/config.json,
// else ~/.docker/config.json: where docker and oras look.
func (c *Client) dockerConfigPath() string {
	if c.opts.DockerConfig != "" {
		return c.opts.DockerConfig
	}
	dir := os.Getenv("DOCKER_CONFIG")
	if dir == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			home = "."
		}
		dir = filepath.Join(home, ".docker")
	}
	return filepath.Join(dir, "config.json")
}
