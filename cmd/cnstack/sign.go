package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"reflect"
	"strings"

	"github.com/sigstore/cosign/v2/pkg/cosign"
	"github.com/urfave/cli/v3"
	"oras.land/oras-go/v2"

	"github.com/cnstack/cnstack/pkg/reference"
	"github.com/cnstack/cnstack/pkg/sign"
	"github.com/cnstack/cnstack/pkg/sign/provenance"
	"github.com/cnstack/cnstack/pkg/sign/sbom"
)

func generateKeyPairCommand() *cli.Command {
	return &cli.Command{
		Name:  "generate-key-pair",
		Usage: "write a cosign key pair (PREFIX.key, encrypted, and PREFIX.pub)",
		Description: `Writes an ECDSA P-256 key pair exactly as "cosign generate-key-pair" does, so the real
cosign CLI reads it. The private key is encrypted with $COSIGN_PASSWORD (an empty value
is a valid, empty password); without it a terminal is asked.`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "output-key-prefix", Value: "cosign", Usage: "write `PREFIX`.key and PREFIX.pub"},
			&cli.BoolFlag{Name: "force", Usage: "replace existing key files"},
		},
		Action: func(ctx context.Context, c *cli.Command) error {
			if c.NArg() != 0 {
				return usageError(c, "takes no arguments, got %q", c.Args().Slice())
			}
			pass, err := keyPassword(true)
			if err != nil {
				return err
			}
			key, pub, err := sign.WriteKeyPair(c.String("output-key-prefix"), pass, c.Bool("force"))
			if err != nil {
				return err
			}
			fmt.Fprintln(c.Writer, "Private key written to", key)
			fmt.Fprintln(c.Writer, "Public key written to", pub)
			return nil
		},
	}
}

// keyPassword reads the key password the way cosign does: $COSIGN_PASSWORD,
// else a terminal prompt.
func keyPassword(confirm bool) ([]byte, error) {
	if pw, ok := os.LookupEnv(sign.PasswordEnv); ok {
		return []byte(pw), nil
	}
	if cosign.IsTerminal() {
		return cosign.GetPassFromTerm(confirm)
	}
	return nil, fmt.Errorf("set %s to the key password (an empty value means no password)", sign.PasswordEnv)
}

func signLocationFlags(usage string) []cli.Flag {
	return append([]cli.Flag{
		&cli.BoolFlag{Name: "remote", Usage: usage},
	}, registryFlags()...)
}

func signCommand() *cli.Command {
	return &cli.Command{
		Name:      "sign",
		Usage:     "sign an image (index and every platform manifest) with a cosign key, offline",
		ArgsUsage: "REF...",
		Description: `Signs REF's index and each platform manifest with cosign's key-based scheme and no
transparency log. REF is looked up in the local store first (signatures stay in the store
as <repo>:sha256-<hex>.sig tags, which push and save carry along), else in its registry
(or only there with --remote). Re-signing with the same key adds nothing.

With --attest it also attaches, to the index and each platform image, an SPDX 2.3 SBOM
(container images of the registry tree, bin/ files, Helm charts) and a SLSA v1 provenance,
as DSSE attestations (<repo>:sha256-<hex>.att) that "cosign verify-attestation --type
spdxjson / slsaprovenance1" accepts.`,
		Flags: append([]cli.Flag{
			&cli.StringFlag{Name: "key", Required: true, Usage: "cosign private key `FILE` (password in $COSIGN_PASSWORD)"},
			&cli.BoolFlag{Name: "attest", Usage: "also attach SBOM and provenance attestations"},
			&cli.StringFlag{Name: "predicate", Usage: "attach only this predicate JSON `FILE` (of --type) to the image's root, as an attestation about the whole image (a boot verdict)"},
			&cli.StringFlag{Name: "type", Usage: "with --predicate, its predicate type `URI`"},
		}, signLocationFlags("REF is a registry image (default: the local store, then the registry)")...),
		Action: func(ctx context.Context, c *cli.Command) error {
			if c.NArg() == 0 {
				return usageError(c, "name at least one image")
			}
			pass, err := keyPassword(false)
			if err != nil {
				return err
			}
			signer, err := sign.LoadPrivateKey(c.String("key"), pass)
			if err != nil {
				return err
			}
			if p := c.String("predicate"); p != "" {
				return attestPredicate(ctx, c, signer, p)
			}
			for _, raw := range c.Args().Slice() {
				loc, err := locateImage(ctx, c, raw, true)
				if err != nil {
					return err
				}
				err = func() error {
					defer loc.release()
					results, err := sign.Sign(ctx, loc.target, loc.image, signer)
					for _, r := range results {
						fmt.Fprintf(c.Writer, "%s\n", r)
					}
					if err != nil || !c.Bool("attest") {
						return err
					}
					results, err = sign.Attest(ctx, loc.target, loc.image, signer, attestOptions())
					for _, r := range results {
						fmt.Fprintf(c.Writer, "%s\n", r)
					}
					return err
				}()
				if err != nil {
					return err
				}
				fmt.Fprintf(c.Writer, "signed %s@%s in %s\n", loc.image.Name, loc.image.Descriptor.Digest, loc.where)
			}
			return nil
		},
	}
}

// attestPredicate attaches the predicate in file, of --type, to each image's root.
func attestPredicate(ctx context.Context, c *cli.Command, signer sign.Signer, file string) error {
	typ := c.String("type")
	if typ == "" {
		return usageError(c, "--predicate needs --type (the predicate type URI)")
	}
	if c.Bool("attest") {
		return usageError(c, "--predicate attaches one predicate; --attest the SBOM and provenance: use one at a time")
	}
	pred, err := os.ReadFile(file)
	if err != nil {
		return fmt.Errorf("--predicate: %w", err)
	}
	for _, raw := range c.Args().Slice() {
		loc, err := locateImage(ctx, c, raw, true)
		if err != nil {
			return err
		}
		results, err := sign.AttestPredicate(ctx, loc.target, loc.image, signer, predicateURI(typ), pred)
		loc.release()
		for _, r := range results {
			fmt.Fprintf(c.Writer, "%s\n", r)
		}
		if err != nil {
			return err
		}
		fmt.Fprintf(c.Writer, "attested %s@%s in %s\n", loc.image.Name, loc.image.Descriptor.Digest, loc.where)
	}
	return nil
}

func attestOptions() sign.AttestOptions {
	return sign.AttestOptions{
		Builder: provenance.Builder{ID: provenance.BuilderID, Version: version()},
		Tool:    "cnstack-" + version(),
	}
}

func verifyCommand() *cli.Command {
	return &cli.Command{
		Name:      "verify",
		Usage:     "verify an image's cosign signatures (and attestations) with a public key, offline",
		ArgsUsage: "REF...",
		Description: `Checks that REF's index and every platform manifest carry a signature by the key, and
with --attestations an SPDX SBOM and a SLSA v1 provenance attestation by the key. No
transparency log, no network other than the registry when REF is a registry image.
Prints one line per check and fails naming the first manifest that did not verify.`,
		Flags: append([]cli.Flag{
			&cli.StringFlag{Name: "key", Required: true, Usage: "cosign public key `FILE`"},
			&cli.BoolFlag{Name: "attestations", Usage: "also require verified SBOM and provenance attestations"},
			&cli.StringSliceFlag{Name: "type", Usage: "with --attestations, the predicate `TYPE`s required: spdxjson, slsaprovenance1 or a URI (default both)"},
			&cli.BoolFlag{Name: "root-only", Usage: "check only the image's root manifest (for attestations about the whole image, made with sign --predicate)"},
		}, signLocationFlags("REF is a registry image (default: the local store, then the registry)")...),
		Action: func(ctx context.Context, c *cli.Command) error {
			if c.NArg() == 0 {
				return usageError(c, "name at least one image")
			}
			key, err := sign.LoadPublicKey(c.String("key"))
			if err != nil {
				return err
			}
			var types []string
			for _, t := range c.StringSlice("type") {
				types = append(types, predicateURI(t))
			}
			var failed []string
			for _, raw := range c.Args().Slice() {
				loc, err := locateImage(ctx, c, raw, true)
				if err != nil {
					return err
				}
				rep, err := sign.Verify(ctx, loc.target, loc.image, sign.VerifyOptions{Key: key, Attestations: c.Bool("attestations"), PredicateTypes: types, RootOnly: c.Bool("root-only")})
				loc.release()
				if rep != nil {
					for _, ch := range rep.Checks {
						fmt.Fprintln(c.Writer, ch)
					}
				}
				if err != nil {
					if !errors.Is(err, sign.ErrVerification) {
						return err
					}
					failed = append(failed, err.Error())
					continue
				}
				fmt.Fprintf(c.Writer, "verified %s@%s in %s\n", loc.image.Name, loc.image.Descriptor.Digest, loc.where)
			}
			if len(failed) > 0 {
				return cli.Exit(strings.Join(failed, "\n"), 1)
			}
			return nil
		},
	}
}

// predicateURI maps cosign's --type names to predicate URIs.
func predicateURI(t string) string {
	switch t {
	case "spdxjson", "spdx":
		return sign.PredicateSPDX
	case "slsaprovenance1":
		return sign.PredicateSLSA1
	}
	return t
}

func sbomCommand() *cli.Command {
	return &cli.Command{
		Name:      "sbom",
		Usage:     "print an image's SPDX 2.3 SBOM (from its attestation, else computed)",
		ArgsUsage: "REF",
		Description: `Prints the SPDX JSON document describing REF: the container images of its registry tree,
the files under bin/ and the Helm charts. It comes from REF's SBOM attestation when there
is one (checked against --key if given), else it is computed from the image's layers.
For a multi-platform image the document covers every platform; --platform selects one.
REF is read from the local store; with --remote from its registry instead.`,
		Flags: append([]cli.Flag{
			&cli.StringFlag{Name: "platform", Usage: "describe only this `OS/ARCH[/VARIANT]` of an index"},
			&cli.StringFlag{Name: "key", Usage: "accept only an attestation this public key `FILE` verifies"},
			&cli.BoolFlag{Name: "compute", Usage: "compute from the layers even if an attestation exists"},
		}, signLocationFlags("read REF from its registry instead of the local store")...),
		Action: func(ctx context.Context, c *cli.Command) error {
			if c.NArg() != 1 {
				return usageError(c, "takes one image reference, got %d arguments", c.NArg())
			}
			loc, err := locateImage(ctx, c, c.Args().First(), false)
			if err != nil {
				return err
			}
			defer loc.release()
			subjects, err := sign.Subjects(ctx, loc.target, loc.image)
			if err != nil {
				return err
			}
			subject := subjects[0]
			if p := c.String("platform"); p != "" {
				found := false
				for _, s := range subjects {
					if s.Platform == strings.TrimSuffix(p, "/") {
						subject, found = s, true
						break
					}
				}
				if !found {
					var have []string
					for _, s := range subjects {
						have = append(have, s.Platform)
					}
					return fmt.Errorf("%s has no platform %s (it has %s)", loc.image.Name, p, strings.Join(have, ", "))
				}
			}
			if !c.Bool("compute") {
				var key sign.Verifier
				if k := c.String("key"); k != "" {
					if key, err = sign.LoadPublicKey(k); err != nil {
						return err
					}
				}
				doc, err := sign.FindPredicate(ctx, loc.target, loc.image, subject.Descriptor.Digest, sign.PredicateSPDX, key)
				if err == nil {
					if key == nil {
						fmt.Fprintf(c.ErrWriter, "cnstack: SBOM of %s %s read from its attestation, not verified (pass --key to verify it)\n", loc.image.Name, subject)
					}
					_, err = c.Writer.Write(formatSPDX(doc))
					return err
				}
				if !errors.Is(err, sign.ErrNoAttestation) {
					return err
				}
				if key != nil {
					return fmt.Errorf("sbom: %w", err)
				}
				fmt.Fprintf(c.ErrWriter, "cnstack: %s %s has no SBOM attestation; computing it from the layers\n", loc.image.Name, subject)
			}
			descs, err := sign.Describe(ctx, loc.target, loc.image, sign.AttestOptions{
				Builder: attestOptions().Builder, Tool: attestOptions().Tool, Predicates: []string{sign.PredicateSPDX},
			})
			if err != nil {
				return err
			}
			for _, d := range descs {
				if d.Subject.Descriptor.Digest == subject.Descriptor.Digest {
					_, err = c.Writer.Write(d.Predicates[sign.PredicateSPDX])
					return err
				}
			}
			return fmt.Errorf("sbom: no document for %s", subject)
		},
	}
}

// located is an image found in the store or a registry.
type located struct {
	target  oras.Target
	image   sign.Image
	where   string
	release func()
}

// locateImage finds raw in the local store (unless --remote), else, with
// fallback, in its registry repository.
func locateImage(ctx context.Context, c *cli.Command, raw string, fallback bool) (*located, error) {
	ref, err := reference.Parse(raw)
	if err != nil {
		return nil, err
	}
	if !c.Bool("remote") {
		s, err := openStore(c)
		if err != nil {
			return nil, err
		}
		desc, err := s.Resolve(ctx, ref.String())
		switch {
		case err == nil:
			release, err := s.Use(ctx)
			if err != nil {
				return nil, err
			}
			return &located{target: s, where: "the local store", release: release,
				image: sign.Image{Name: ref.Name(), Tag: ref.Tag, Descriptor: desc}}, nil
		case !sign.IsNotFound(err):
			return nil, err
		case !fallback:
			return nil, fmt.Errorf("image %s is not in the local store (pull it, or pass --remote to read it from its registry)", ref)
		}
	}
	rc, err := remoteClient(c)
	if err != nil {
		return nil, err
	}
	repo, err := rc.Repository(ctx, ref)
	if err != nil {
		return nil, err
	}
	desc, err := repo.Resolve(ctx, ref.Identifier())
	if err != nil {
		if sign.IsNotFound(err) && !c.Bool("remote") {
			return nil, fmt.Errorf("%s is neither in the local store nor in its registry: %w", ref, err)
		}
		return nil, fmt.Errorf("resolve %s: %w", ref, err)
	}
	return &located{target: repo, where: rc.Endpoint(ref.Registry), release: func() {},
		image: sign.Image{Name: ref.Name(), Tag: ref.Tag, Descriptor: desc, BareTags: true}}, nil
}

// formatSPDX prints an attested document as cnstack writes a computed one
// (field order, indentation) when that loses nothing, else indented as is.
func formatSPDX(raw []byte) []byte {
	var doc sbom.Document
	if json.Unmarshal(raw, &doc) == nil {
		if b, err := doc.Marshal(); err == nil && sameJSON(b, raw) {
			return b
		}
	}
	var buf bytes.Buffer
	if json.Indent(&buf, raw, "", "  ") != nil {
		return append(raw, '\n')
	}
	return append(buf.Bytes(), '\n')
}

func sameJSON(a, b []byte) bool {
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return false
	}
	return reflect.DeepEqual(x, y)
}
