// Package oci holds the low-level OCI vocabulary every stage of cnstack
// shares: platforms (parse, print, match), media types, and reading what
// registries and stores hold. It depends on no other cnstack package, so
// kubefile, build, install and verify can all use it without importing one
// another.
package oci
