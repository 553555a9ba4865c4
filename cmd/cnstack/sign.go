package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/sigstore/cosign/v2/pkg/cosign"
	"github.com/urfave/cli/v3"

	"github.com/cnstack/cnstack/pkg/sign"
	"github.com/cnstack/cnstack/pkg/sign/provenance"
	"github.com/cnstack/cnstack/pkg/transfer"
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
				loc, img, err := locateSigned(ctx, c, raw, lookup(c, true))
				if err != nil {
					return err
				}
				err = func() error {
					defer loc.Close()
					results, err := sign.Sign(ctx, loc.Target, img, signer)
					for _, r := range results {
						fmt.Fprintf(c.Writer, "%s\n", r)
					}
					if err != nil || !c.Bool("attest") {
						return err
					}
					results, err = sign.Attest(ctx, loc.Target, img, signer, attestOptions())
					for _, r := range results {
						fmt.Fprintf(c.Writer, "%s\n", r)
					}
					return err
				}()
				if err != nil {
					return err
				}
				fmt.Fprintf(c.Writer, "signed %s@%s in %s\n", img.Name, img.Descriptor.Digest, loc.Where)
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
		loc, img, err := locateSigned(ctx, c, raw, lookup(c, true))
		if err != nil {
			return err
		}
		results, err := sign.AttestPredicate(ctx, loc.Target, img, signer, sign.PredicateType(typ), pred)
		loc.Close()
		for _, r := range results {
			fmt.Fprintf(c.Writer, "%s\n", r)
		}
		if err != nil {
			return err
		}
		fmt.Fprintf(c.Writer, "attested %s@%s in %s\n", img.Name, img.Descriptor.Digest, loc.Where)
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
				types = append(types, sign.PredicateType(t))
			}
			var failed []string
			for _, raw := range c.Args().Slice() {
				loc, img, err := locateSigned(ctx, c, raw, lookup(c, true))
				if err != nil {
					return err
				}
				rep, err := sign.Verify(ctx, loc.Target, img, sign.VerifyOptions{Key: key, Attestations: c.Bool("attestations"), PredicateTypes: types, RootOnly: c.Bool("root-only")})
				loc.Close()
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
				fmt.Fprintf(c.Writer, "verified %s@%s in %s\n", img.Name, img.Descriptor.Digest, loc.Where)
			}
			if len(failed) > 0 {
				return cli.Exit(strings.Join(failed, "\n"), 1)
			}
			return nil
		},
	}
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
			opts := sign.SBOMOptions{Platform: c.String("platform"), Compute: c.Bool("compute"), Attest: attestOptions()}
			if k := c.String("key"); k != "" {
				var err error
				if opts.Key, err = sign.LoadPublicKey(k); err != nil {
					return err
				}
			}
			loc, img, err := locateSigned(ctx, c, c.Args().First(), lookup(c, false))
			if err != nil {
				return err
			}
			defer loc.Close()
			res, err := sign.SBOM(ctx, loc.Target, img, opts)
			if err != nil {
				return err
			}
			switch {
			case res.Source == sign.SBOMUnverified:
				fmt.Fprintf(c.ErrWriter, "cnstack: SBOM of %s %s read from its attestation, not verified (pass --key to verify it)\n", img.Name, res.Subject)
			case res.Source == sign.SBOMComputed && !opts.Compute:
				fmt.Fprintf(c.ErrWriter, "cnstack: %s %s has no SBOM attestation; computing it from the layers\n", img.Name, res.Subject)
			}
			_, err = c.Writer.Write(res.Document)
			return err
		},
	}
}

// locateSigned finds REF for sign, verify and sbom, which need its name:
// signatures live in its repository.
func locateSigned(ctx context.Context, c *cli.Command, raw string, how transfer.Lookup) (*transfer.Located, sign.Image, error) {
	loc, err := locate(ctx, c, raw, how)
	if err != nil {
		return nil, sign.Image{}, err
	}
	if loc.Ref.Repository == "" {
		loc.Close()
		return nil, sign.Image{}, fmt.Errorf("%s: name the image (NAME:TAG or NAME@DIGEST): its signatures live in its repository", raw)
	}
	return loc, sign.Image{Name: loc.Ref.Name(), Tag: loc.Ref.Tag, Descriptor: loc.Descriptor, BareTags: loc.InRegistry}, nil
}
