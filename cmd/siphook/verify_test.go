package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestVerifyCommand: siphook verify passes on the demo's recordings, signed with a key from siphook keygen,
// and reports a flipped byte, a deleted file and an added file, failing.
func TestVerifyCommand(t *testing.T) {
	keys := t.TempDir()
	priv, pub := filepath.Join(keys, "m.key"), filepath.Join(keys, "m.pub")
	var out bytes.Buffer
	if err := run([]string{"keygen", "-private", priv, "-public", pub}, &out, &out); err != nil {
		t.Fatal(err)
	}
	d, _ := startTestDemo(t, func(c *Config) { c.Recorder.Manifest.SigningKeyFile = priv })
	d.stop()
	dir := d.cfg.Recorder.Dir
	out.Reset()
	if err := run([]string{"verify", "-public-key", pub, dir}, &out, &out); err != nil {
		t.Fatalf("verify on untouched recordings: %v\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), "0 altered, 0 missing, 0 extra, 0 chain errors") {
		t.Errorf("verify output:\n%s", out.String())
	}

	docs := readDocuments(dir)
	var wavs, jsons []string
	for _, doc := range docs {
		if doc.Audio != nil && doc.Audio.Samples > 0 {
			wavs = append(wavs, filepath.Join(dir, doc.Audio.File))
		}
	}
	filepath.WalkDir(dir, func(p string, e os.DirEntry, err error) error {
		if err == nil && strings.HasSuffix(p, ".json") && !strings.Contains(p, "/.") {
			jsons = append(jsons, p)
		}
		return nil
	})
	b, err := os.ReadFile(wavs[0])
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)/2] ^= 0x01
	if err := os.WriteFile(wavs[0], b, 0o640); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(jsons[len(jsons)-1]); err != nil {
		t.Fatal(err)
	}
	extra := filepath.Join(filepath.Dir(wavs[0]), "planted.wav")
	if err := os.WriteFile(extra, []byte("RIFF"), 0o640); err != nil {
		t.Fatal(err)
	}
	out.Reset()
	if err := run([]string{"verify", "-public-key", pub, dir}, &out, &out); err == nil {
		t.Fatalf("verify passed a tampered directory:\n%s", out.String())
	}
	rel := func(p string) string { r, _ := filepath.Rel(dir, p); return filepath.ToSlash(r) }
	for _, want := range []string{"altered  " + rel(wavs[0]), "missing  " + rel(jsons[len(jsons)-1]), "extra    " + rel(extra)} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("verify output lacks %q:\n%s", want, out.String())
		}
	}
}
