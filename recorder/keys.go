package recorder

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"os"
)

// maxKeyFile bounds what is read as a key file: real ones are a few hundred bytes.
const maxKeyFile = 64 << 10

// LoadSigningKey reads the Ed25519 private key that signs manifest entries: a PEM "PRIVATE KEY" (PKCS #8, as
// GenerateKey and `openssl genpkey -algorithm ed25519` write) or the standard base64 of the 32-byte seed.
// Errors never quote the file's content.
func LoadSigningKey(path string) (ed25519.PrivateKey, error) {
	b, err := readKeyFile(path)
	if err != nil {
		return nil, err
	}
	defer clear(b)
	if block, _ := pem.Decode(b); block != nil {
		defer clear(block.Bytes)
		if block.Type != "PRIVATE KEY" {
			return nil, fmt.Errorf("recorder: signing key %s: PEM block %q, want \"PRIVATE KEY\" (PKCS #8)", path, block.Type)
		}
		k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("recorder: signing key %s: not a PKCS #8 private key", path)
		}
		priv, ok := k.(ed25519.PrivateKey)
		if !ok {
			return nil, fmt.Errorf("recorder: signing key %s: %T, want an Ed25519 key", path, k)
		}
		return priv, nil
	}
	seed, err := base64.StdEncoding.DecodeString(string(bytes.TrimSpace(b)))
	if err != nil || len(seed) != ed25519.SeedSize {
		clear(seed)
		return nil, fmt.Errorf("recorder: signing key %s: want PEM \"PRIVATE KEY\" or the base64 of a %d-byte Ed25519 seed", path, ed25519.SeedSize)
	}
	defer clear(seed)
	return ed25519.NewKeyFromSeed(seed), nil
}

// PublicKeyFromFile reads the Ed25519 public key that checks manifest signatures: a PEM "PUBLIC KEY" (PKIX)
// or the standard base64 of the raw 32 bytes.
func PublicKeyFromFile(path string) (ed25519.PublicKey, error) {
	b, err := readKeyFile(path)
	if err != nil {
		return nil, err
	}
	if block, _ := pem.Decode(b); block != nil {
		if block.Type != "PUBLIC KEY" {
			return nil, fmt.Errorf("recorder: public key %s: PEM block %q, want \"PUBLIC KEY\"", path, block.Type)
		}
		k, err := x509.ParsePKIXPublicKey(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("recorder: public key %s: %w", path, err)
		}
		pub, ok := k.(ed25519.PublicKey)
		if !ok {
			return nil, fmt.Errorf("recorder: public key %s: %T, want an Ed25519 key", path, k)
		}
		return pub, nil
	}
	raw, err := base64.StdEncoding.DecodeString(string(bytes.TrimSpace(b)))
	if err != nil || len(raw) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("recorder: public key %s: want PEM \"PUBLIC KEY\" or the base64 of %d raw bytes", path, ed25519.PublicKeySize)
	}
	return ed25519.PublicKey(raw), nil
}

func readKeyFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("recorder: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxKeyFile+1))
	if err != nil {
		return nil, fmt.Errorf("recorder: reading %s: %w", path, err)
	}
	if len(b) > maxKeyFile {
		return nil, fmt.Errorf("recorder: %s: larger than %d bytes, not a key", path, maxKeyFile)
	}
	return b, nil
}

// GenerateKey creates an Ed25519 key pair for signing manifests: the private key as PEM PKCS #8 at privPath
// (mode 0600) and the public key as PEM PKIX at pubPath (0644). It never overwrites an existing file. Keep
// the private key off the recordings disk, so whoever can change recordings cannot sign a new chain.
func GenerateKey(privPath, pubPath string) error {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return fmt.Errorf("recorder: %w", err)
	}
	privDER, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return fmt.Errorf("recorder: %w", err)
	}
	defer clear(privDER)
	defer clear(priv)
	pubDER, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return fmt.Errorf("recorder: %w", err)
	}
	if err := writeNewFile(privPath, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: privDER}), 0o600); err != nil {
		return err
	}
	if err := writeNewFile(pubPath, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER}), 0o644); err != nil {
		os.Remove(privPath)
		return err
	}
	return nil
}

// writeNewFile creates path with b and mode, failing if it exists.
func writeNewFile(path string, b []byte, mode os.FileMode) error {
	defer clear(b)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		return fmt.Errorf("recorder: %w", err)
	}
	_, err = f.Write(b)
	err = errors.Join(err, f.Chmod(mode), f.Sync(), f.Close()) // Chmod: the umask must not widen or narrow it
	if err != nil {
		os.Remove(path)
		return fmt.Errorf("recorder: writing %s: %w", path, err)
	}
	return nil
}
