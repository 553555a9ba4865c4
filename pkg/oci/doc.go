// Package oci holds the low-level OCI vocabulary every stage of cnstack
// shares: platforms (parse, print, match, and picking one image of an
// index), layers (OpenLayer decodes one by its media type; Walk merges a
// stack of them, applying whiteouts), platform images (FetchImage reads a
// manifest and its config, size-limited; History pairs steps and layers)
// and cosign's companion tags (ManifestDigests: what they are tagged for).
// It sits
// below every pipeline stage, so kubefile, build, install, verify and sign
// can all use it without importing one another.
package oci
