package regserver

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"

	"github.com/distribution/distribution/v3/configuration"
)

// driverMaxThreads bounds concurrent filesystem calls inside distribution's
// storage driver (its default, kept explicit so the limit is visible here).
const driverMaxThreads = 100

// listLimit is the largest page of the catalog and tag list endpoints.
const listLimit = 1000

// distributionConfig is the whole distribution configuration, built in code:
// filesystem storage at root, no auth, no notifications, no proxy, no redis,
// no redirects. Read-only mode also turns off the upload purger so that
// serving someone else's tree never deletes anything from it.
func distributionConfig(root string, readOnly bool) (*configuration.Configuration, error) {
	secret := make([]byte, 32)
	if _, err := rand.Read(secret); err != nil {
		return nil, fmt.Errorf("generate upload-state secret: %w", err)
	}
	cfg := &configuration.Configuration{}
	// The secret signs the upload state handed to clients between chunks; a
	// restart invalidates only uploads in flight.
	cfg.HTTP.Secret = hex.EncodeToString(secret)
	// The defaults distribution's configuration parser would fill in.
	cfg.Catalog.MaxEntries = listLimit
	cfg.Tags.MaxTags = listLimit
	// Foreign layers (Windows base layers, non-distributable blobs) name
	// where they live; without an allow list distribution refuses every URL.
	cfg.Validation.Manifests.URLs.Allow = []string{`^https?://`}
	cfg.Storage = configuration.Storage{
		"filesystem": configuration.Parameters{
			"rootdirectory": root,
			"maxthreads":    driverMaxThreads,
		},
		"delete":   configuration.Parameters{"enabled": !readOnly},
		"redirect": configuration.Parameters{"disable": true},
		"cache":    configuration.Parameters{"blobdescriptor": "inmemory"},
		"maintenance": configuration.Parameters{
			"uploadpurging": map[any]any{
				"enabled":  !readOnly,
				"age":      "168h",
				"interval": "24h",
				"dryrun":   false,
			},
			"readonly": map[any]any{"enabled": readOnly},
		},
	}
	return cfg, nil
}
