package recorder

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

func TestGenerateKey(t *testing.T) {
	dir := t.TempDir()
	privFile, pubFile := filepath.Join(dir, "manifest.key"), filepath.Join(dir, "manifest.pub")
	if err := GenerateKey(privFile, pubFile); err != nil {
		t.Fatal(err)
	}
	for file, mode := range map[string]os.FileMode{privFile: 0o600, pubFile: 0o644} {
		st, err := os.Stat(file)
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != mode {
			t.Errorf("%s: mode %v, want %v", filepath.Base(file), st.Mode().Perm(), mode)
		}
	}
	priv, err := LoadSigningKey(privFile)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := PublicKeyFromFile(pubFile)
	if err != nil {
		t.Fatal(err)
	}
	if !pub.Equal(priv.Public()) {
		t.Error("the public key does not belong to the private key")
	}

	// Never overwrite a key: a lost signing key cannot be recovered.
	before, _ := os.ReadFile(privFile)
	if err := GenerateKey(privFile, filepath.Join(dir, "other.pub")); err == nil {
		t.Error("GenerateKey overwrote an existing private key")
	}
	if after, _ := os.ReadFile(privFile); !bytes.Equal(before, after) {
		t.Error("the existing private key changed")
	}
	if _, err := os.Stat(filepath.Join(dir, "other.pub")); !os.IsNotExist(err) {
		t.Error("a public key was written without its private key")
	}
	if err := GenerateKey(filepath.Join(dir, "new.key"), pubFile); err == nil {
		t.Error("GenerateKey overwrote an existing public key")
	}
	if _, err := os.Stat(filepath.Join(dir, "new.key")); !os.IsNotExist(err) {
		t.Error("a private key was left without its public key")
	}
}

func TestKeyFormats(t *testing.T) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	seed := base64.StdEncoding.EncodeToString(priv.Seed())
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ecDER, _ := x509.MarshalPKCS8PrivateKey(ec)
	ecPubDER, _ := x509.MarshalPKIXPublicKey(&ec.PublicKey)
	pubDER, _ := x509.MarshalPKIXPublicKey(pub)

	dir := t.TempDir()
	file := func(name, content string) string {
		p := filepath.Join(dir, name)
		writeFile(t, p, []byte(content))
		return p
	}
	pemOf := func(typ string, der []byte) string {
		return string(pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}))
	}

	t.Run("private", func(t *testing.T) {
		for _, tt := range []struct {
			name, content string
			ok            bool
		}{
			{"base64 seed", seed + "\n", true},
			{"base64 seed, spaces around", "  " + seed + "\r\n", true},
			{"PEM of another algorithm", pemOf("PRIVATE KEY", ecDER), false},
			{"PEM public key", pemOf("PUBLIC KEY", pubDER), false},
			{"PEM garbage", pemOf("PRIVATE KEY", []byte("not DER")), false},
			{"short seed", base64.StdEncoding.EncodeToString(priv.Seed()[:16]), false},
			{"whole private key as base64", base64.StdEncoding.EncodeToString(priv), false},
			{"empty", "", false},
			{"garbage", "hunter2-is-not-a-key", false},
		} {
			t.Run(tt.name, func(t *testing.T) {
				got, err := LoadSigningKey(file("k", tt.content))
				if !tt.ok {
					if err == nil {
						t.Fatal("LoadSigningKey succeeded")
					}
					// Errors name the file, never its content.
					if strings.Contains(err.Error(), "hunter2") || strings.Contains(err.Error(), seed[:16]) {
						t.Errorf("error quotes the key file: %v", err)
					}
					return
				}
				if err != nil {
					t.Fatal(err)
				}
				if !got.Equal(priv) {
					t.Error("wrong key")
				}
			})
		}
	})
	t.Run("public", func(t *testing.T) {
		for _, tt := range []struct {
			name, content string
			ok            bool
		}{
			{"PEM", pemOf("PUBLIC KEY", pubDER), true},
			{"base64 raw", base64.StdEncoding.EncodeToString(pub) + "\n", true},
			{"PEM of another algorithm", pemOf("PUBLIC KEY", ecPubDER), false},
			{"PEM private key", pemOf("PRIVATE KEY", ecDER), false},
			{"short", base64.StdEncoding.EncodeToString(pub[:31]), false},
			{"garbage", "x", false},
		} {
			t.Run(tt.name, func(t *testing.T) {
				got, err := PublicKeyFromFile(file("p", tt.content))
				if (err == nil) != tt.ok {
					t.Fatalf("PublicKeyFromFile = %v, want ok=%v", err, tt.ok)
				}
				if tt.ok && !got.Equal(pub) {
					t.Error("wrong key")
				}
			})
		}
	})
	if _, err := LoadSigningKey(filepath.Join(dir, "missing")); err == nil {
		t.Error("LoadSigningKey of a missing file succeeded")
	}
	if _, err := LoadSigningKey(file("big", strings.Repeat("A", maxKeyFile+1))); err == nil {
		t.Error("LoadSigningKey of a huge file succeeded")
	}
}

// The recorder logs the public key it signs with, so operators can check it, and never the private key.
func TestSigningKeyNeverLogged(t *testing.T) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(t.TempDir(), "seed")
	seed := base64.StdEncoding.EncodeToString(priv.Seed())
	writeFile(t, keyFile, []byte(seed))
	if err := os.Chmod(keyFile, 0o644); err != nil { // world-readable: warned about
		t.Fatal(err)
	}
	var buf lockedBuffer
	log := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	r := testRecorder(t, func(c *Config) { c.Manifest.SigningKeyFile = keyFile }, WithLogger(log))
	record(t, r, "rec-1", t0)
	if err := r.MarkRemoved(t0Dir+"/rec-1.json", []string{t0Dir + "/rec-1.wav"}, "delivered"); err != nil {
		t.Fatal(err)
	}
	logs := buf.String()
	pub := base64.StdEncoding.EncodeToString(priv.Public().(ed25519.PublicKey))
	if !strings.Contains(logs, pub) {
		t.Errorf("the public key is not logged:\n%s", logs)
	}
	if !strings.Contains(logs, "readable by every user") {
		t.Errorf("no warning about a world-readable key:\n%s", logs)
	}
	for _, secret := range []string{seed, base64.StdEncoding.EncodeToString(priv), string(priv.Seed())} {
		if strings.Contains(logs, secret) {
			t.Fatalf("the private key is in the log:\n%s", logs)
		}
	}
}

func TestNewRejectsBadSigningKey(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Dir = t.TempDir()
	cfg.Manifest.SigningKeyFile = filepath.Join(t.TempDir(), "missing.key")
	if _, err := New(cfg); err == nil || !strings.Contains(err.Error(), "recorder.manifest.signing_key_file") {
		t.Errorf("New = %v, want an error naming recorder.manifest.signing_key_file", err)
	}
}

// lockedBuffer is a log sink safe for the flusher goroutine and the test at once.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
