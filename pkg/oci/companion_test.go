package oci

import (
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
)

func TestCompanionTags(t *testing.T) {
	d := digest.FromString("manifest")
	hex := d.Encoded()
	if got := SignatureTag(d); got != "sha256-"+hex+".sig" {
		t.Errorf("SignatureTag = %s", got)
	}
	if got := AttestationTag(d); got != "sha256-"+hex+".att" {
		t.Errorf("AttestationTag = %s", got)
	}
	if got := DigestTag(d); got != "sha256-"+hex {
		t.Errorf("DigestTag = %s", got)
	}
	// Every tag built is recognised; nothing else is.
	for _, s := range CompanionSuffixes {
		if tag := CompanionTag(d, s); !IsCompanionTag(tag) {
			t.Errorf("IsCompanionTag(%s) = false", tag)
		}
	}
	for _, tag := range []string{
		"v1", DigestTag(d), "sha256-" + hex + ".sig.old", "sha256-" + hex + ".txt",
		"sha256-" + strings.ToUpper(hex) + ".sig", "sha256-" + hex[:63] + ".sig", "sha512-" + hex + ".sig",
	} {
		if IsCompanionTag(tag) {
			t.Errorf("IsCompanionTag(%q) = true", tag)
		}
	}
}
