package sign

import (
	"crypto"
	"errors"
	"fmt"
	"io/fs"
	"os"

	"github.com/sigstore/cosign/v2/pkg/cosign"
	"github.com/sigstore/sigstore/pkg/cryptoutils"
	"github.com/sigstore/sigstore/pkg/signature"

	"github.com/cnstack/cnstack/internal/atomicfile"
)

// Signer signs payloads (a loaded private key).
type Signer = signature.SignerVerifier

// Verifier checks signatures (a loaded public key).
type Verifier = signature.Verifier

// PasswordEnv is the variable cosign (and cnstack) read a key's password
// from; an empty value is a valid, empty password.
const PasswordEnv = "COSIGN_PASSWORD"

// GenerateKeyPair returns a new ECDSA P-256 key pair exactly as
// `cosign generate-key-pair` makes it: the private key encrypted with
// password (scrypt + secretbox, PEM "ENCRYPTED SIGSTORE PRIVATE KEY") and
// the public key as a PKIX PEM.
func GenerateKeyPair(password []byte) (privatePEM, publicPEM []byte, err error) {
	keys, err := cosign.GenerateKeyPair(func(bool) ([]byte, error) { return password, nil })
	if err != nil {
		return nil, nil, fmt.Errorf("generate key pair: %w", err)
	}
	return keys.PrivateBytes, keys.PublicBytes, nil
}

// WriteKeyPair generates a key pair and writes prefix.key (mode 0600) and
// prefix.pub (0644), as cosign does. It refuses to replace existing files
// unless overwrite is set.
func WriteKeyPair(prefix string, password []byte, overwrite bool) (keyPath, pubPath string, err error) {
	keyPath, pubPath = prefix+".key", prefix+".pub"
	if !overwrite {
		for _, p := range []string{keyPath, pubPath} {
			if _, err := os.Stat(p); err == nil {
				return "", "", fmt.Errorf("%s already exists: remove it or choose another --output-key-prefix", p)
			} else if !errors.Is(err, fs.ErrNotExist) {
				return "", "", err
			}
		}
	}
	priv, pub, err := GenerateKeyPair(password)
	if err != nil {
		return "", "", err
	}
	if err := atomicfile.WriteFile(keyPath, priv, 0o600); err != nil {
		return "", "", fmt.Errorf("write %s: %w", keyPath, err)
	}
	if err := atomicfile.WriteFile(pubPath, pub, 0o644); err != nil {
		return "", "", fmt.Errorf("write %s: %w", pubPath, err)
	}
	return keyPath, pubPath, nil
}

// LoadPrivateKey reads a cosign private key file (as written by
// GenerateKeyPair or `cosign generate-key-pair`) and decrypts it.
func LoadPrivateKey(path string, password []byte) (signature.SignerVerifier, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read private key: %w", err)
	}
	sv, err := cosign.LoadPrivateKey(b, password, nil)
	if err != nil {
		return nil, fmt.Errorf("load private key %s (is %s right?): %w", path, PasswordEnv, err)
	}
	return sv, nil
}

// LoadPublicKey reads a PEM public key file (cosign.pub).
func LoadPublicKey(path string) (signature.Verifier, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read public key: %w", err)
	}
	v, err := ParsePublicKey(b)
	if err != nil {
		return nil, fmt.Errorf("public key %s: %w", path, err)
	}
	return v, nil
}

// ParsePublicKey parses a PEM public key into a verifier (SHA-256, as cosign).
func ParsePublicKey(pemBytes []byte) (signature.Verifier, error) {
	pub, err := cryptoutils.UnmarshalPEMToPublicKey(pemBytes)
	if err != nil {
		return nil, fmt.Errorf("parse PEM public key: %w", err)
	}
	v, err := signature.LoadVerifier(pub, crypto.SHA256)
	if err != nil {
		return nil, fmt.Errorf("load public key: %w", err)
	}
	return v, nil
}
