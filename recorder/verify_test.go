package recorder

import (
	"crypto/ed25519"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

const dayBefore = "2026/11/21"

// threeRecordings records three calls with a real Recorder, two on t0's day and one the day before, and
// returns the recorder and its directory.
func threeRecordings(t *testing.T, modify func(*Config)) (*Recorder, string) {
	t.Helper()
	r := testRecorder(t, modify)
	record(t, r, "rec-1", t0)
	record(t, r, "rec-2", t0.Add(time.Minute))
	record(t, r, "rec-3", t0.Add(-24*time.Hour))
	return r, r.cfg.Dir
}

func verify(t *testing.T, dir string, pub ed25519.PublicKey) *VerifyReport {
	t.Helper()
	rep, err := Verify(dir, pub)
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

func TestVerify(t *testing.T) {
	tests := []struct {
		name   string
		tamper func(t *testing.T, r *Recorder, dir string)
		want   VerifyReport // Checked is not compared when 0
	}{
		{"untouched", func(*testing.T, *Recorder, string) {}, VerifyReport{Checked: 6}},
		{"one byte of a WAV flipped", func(t *testing.T, _ *Recorder, dir string) {
			p := filepath.Join(dir, t0Dir, "rec-2.wav")
			b, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			b[len(b)/2] ^= 1
			writeFile(t, p, b)
		}, VerifyReport{Checked: 6, Altered: []string{t0Dir + "/rec-2.wav"}}},
		{"a WAV cut short", func(t *testing.T, _ *Recorder, dir string) {
			if err := os.Truncate(filepath.Join(dir, dayBefore, "rec-3.wav"), 1000); err != nil {
				t.Fatal(err)
			}
		}, VerifyReport{Altered: []string{dayBefore + "/rec-3.wav"}}},
		{"a document deleted", func(t *testing.T, _ *Recorder, dir string) {
			remove(t, filepath.Join(dir, t0Dir, "rec-1.json"))
		}, VerifyReport{Checked: 5, Missing: []string{t0Dir + "/rec-1.json"}}},
		{"a document edited", func(t *testing.T, _ *Recorder, dir string) {
			p := filepath.Join(dir, t0Dir, "rec-1.json")
			b, _ := os.ReadFile(p)
			writeFile(t, p, []byte(strings.Replace(string(b), `"siprec"`, `"audiohook"`, 1)))
		}, VerifyReport{Altered: []string{t0Dir + "/rec-1.json"}}},
		{"an extra WAV", func(t *testing.T, _ *Recorder, dir string) {
			writeFile(t, filepath.Join(dir, t0Dir, "planted.wav"), wavBytes(10, 20))
		}, VerifyReport{Checked: 6, Extra: []string{t0Dir + "/planted.wav"}}},
		{"an extra final document", func(t *testing.T, _ *Recorder, dir string) {
			writeFile(t, filepath.Join(dir, dayBefore, "planted.json"), []byte(`{"recording_id":"planted","state":"completed"}`))
		}, VerifyReport{Extra: []string{dayBefore + "/planted.json"}}},
		{"a manifest line edited", func(t *testing.T, _ *Recorder, dir string) {
			p := filepath.Join(dir, t0Dir, ManifestName)
			b, _ := os.ReadFile(p)
			lines := strings.SplitAfter(string(b), "\n")
			lines[0] = strings.Replace(lines[0], `"time":"2026-`, `"time":"2025-`, 1)
			writeFile(t, p, []byte(strings.Join(lines, "")))
		}, VerifyReport{Checked: 6, ChainErrors: []string{t0Dir + "/" + ManifestName + ":1: hash does not match the content"}}},
		{"a manifest line deleted", func(t *testing.T, _ *Recorder, dir string) {
			p := filepath.Join(dir, t0Dir, ManifestName)
			b, _ := os.ReadFile(p)
			lines := strings.SplitAfter(string(b), "\n")
			writeFile(t, p, []byte(strings.Join(lines[1:], "")))
		}, VerifyReport{Checked: 4, Extra: []string{t0Dir + "/rec-1.json", t0Dir + "/rec-1.wav"},
			ChainErrors: []string{t0Dir + "/" + ManifestName + ":1: seq 2 after 0; prev does not match the line before"}}},
		{"a manifest entry pointing outside the directory", func(t *testing.T, _ *Recorder, dir string) {
			// The line is rejected, and nothing it names is read.
			p := filepath.Join(dir, t0Dir, ManifestName)
			b, _ := os.ReadFile(p)
			writeFile(t, p, []byte(strings.Replace(string(b), t0Dir+"/rec-1.wav", "../../../etc/passwd", 1)))
		}, VerifyReport{Checked: 2 + 2, Extra: []string{t0Dir + "/rec-1.json", t0Dir + "/rec-1.wav"}, ChainErrors: []string{
			t0Dir + "/" + ManifestName + `:1: file "../../../etc/passwd": invalid path`,
			t0Dir + "/" + ManifestName + ":2: seq 2 after 0; prev does not match the line before",
		}}},
		{"files removed after delivery", func(t *testing.T, r *Recorder, dir string) {
			paths := []string{t0Dir + "/rec-1.wav", t0Dir + "/rec-1.json"}
			for _, p := range paths {
				remove(t, filepath.Join(dir, filepath.FromSlash(p)))
			}
			if err := r.MarkRemoved(t0Dir+"/rec-1.json", paths, "delivered"); err != nil {
				t.Fatal(err)
			}
		}, VerifyReport{Checked: 4}},
		{"a removed file back on disk", func(t *testing.T, r *Recorder, dir string) {
			if err := r.MarkRemoved(t0Dir+"/rec-1.json", []string{t0Dir + "/rec-1.wav"}, "delivered"); err != nil {
				t.Fatal(err)
			}
		}, VerifyReport{Checked: 5, Extra: []string{t0Dir + "/rec-1.wav"}}},
		{"a recording in progress", func(t *testing.T, r *Recorder, dir string) {
			rec := start(t, r, Spec{ID: "live", Channels: 1, Start: t0})
			rec.Channel(0).WriteSamples(0, tone(toneA, 0, rate))
			if err := rec.Flush(); err != nil {
				t.Fatal(err)
			}
		}, VerifyReport{Checked: 6}},
		{"dot directories and files outside day directories", func(t *testing.T, _ *Recorder, dir string) {
			writeFile(t, filepath.Join(dir, ".queue", t0Dir, "x.wav"), []byte("x"))
			writeFile(t, filepath.Join(dir, ".index", "journal.json"), []byte("{}"))
			writeFile(t, filepath.Join(dir, "notes.json"), []byte("{}"))
			writeFile(t, filepath.Join(dir, t0Dir, ".rec-9.json.tmp"), []byte("{"))
		}, VerifyReport{Checked: 6}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, dir := threeRecordings(t, nil)
			tt.tamper(t, r, dir)
			got := verify(t, dir, nil)
			if tt.want.Checked != 0 && got.Checked != tt.want.Checked {
				t.Errorf("Checked = %d, want %d", got.Checked, tt.want.Checked)
			}
			for _, c := range []struct {
				name      string
				got, want []string
			}{
				{"Altered", got.Altered, tt.want.Altered},
				{"Missing", got.Missing, tt.want.Missing},
				{"Extra", got.Extra, tt.want.Extra},
			} {
				if !slices.Equal(c.got, c.want) {
					t.Errorf("%s = %q, want %q", c.name, c.got, c.want)
				}
			}
			if len(got.ChainErrors) != len(tt.want.ChainErrors) {
				t.Errorf("ChainErrors = %q, want %q", got.ChainErrors, tt.want.ChainErrors)
			}
			for i := range min(len(got.ChainErrors), len(tt.want.ChainErrors)) {
				if !strings.HasPrefix(got.ChainErrors[i], tt.want.ChainErrors[i]) {
					t.Errorf("ChainErrors[%d] = %q, want %q", i, got.ChainErrors[i], tt.want.ChainErrors[i])
				}
			}
			wantOK := len(tt.want.Altered)+len(tt.want.Missing)+len(tt.want.Extra)+len(tt.want.ChainErrors) == 0
			if got.OK() != wantOK {
				t.Errorf("OK() = %v, want %v", got.OK(), wantOK)
			}
		})
	}
}

func TestVerifySigned(t *testing.T) {
	keys := t.TempDir() // not the recordings directory: whoever can change recordings must not reach the key
	privFile, pubFile := filepath.Join(keys, "manifest.key"), filepath.Join(keys, "manifest.pub")
	if err := GenerateKey(privFile, pubFile); err != nil {
		t.Fatal(err)
	}
	pub, err := PublicKeyFromFile(pubFile)
	if err != nil {
		t.Fatal(err)
	}
	other, _, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	_, dir := threeRecordings(t, func(c *Config) { c.Manifest.SigningKeyFile = privFile })

	if rep := verify(t, dir, pub); !rep.OK() || rep.Checked != 6 {
		t.Errorf("with the right key: %+v", rep)
	}
	if rep := verify(t, dir, nil); !rep.OK() {
		t.Errorf("without a key: %+v", rep)
	}
	rep := verify(t, dir, other)
	if len(rep.ChainErrors) != 3 || rep.OK() {
		t.Fatalf("with another key: %+v, want each of the 3 lines rejected", rep)
	}
	for _, e := range rep.ChainErrors {
		if !strings.HasSuffix(e, "signature does not verify") {
			t.Errorf("chain error %q", e)
		}
	}

	// A forger without the key rewrites a line and its hash consistently: only the signature catches it.
	p := filepath.Join(dir, dayBefore, ManifestName)
	entries, _ := manifestLines(t, p)
	e := entries[0]
	e.RecordingID = "forged"
	sum, err := e.computeHash()
	if err != nil {
		t.Fatal(err)
	}
	e.Hash = hex.EncodeToString(sum)
	line, err := json.Marshal(e)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, p, append(line, '\n'))
	if rep := verify(t, dir, nil); len(rep.ChainErrors) != 0 {
		t.Errorf("unsigned check of a consistent forgery: %q (the chain alone cannot tell)", rep.ChainErrors)
	}
	if rep := verify(t, dir, pub); len(rep.ChainErrors) != 1 || !strings.HasSuffix(rep.ChainErrors[0], "signature does not verify") {
		t.Errorf("signed check of a forgery: %q", rep.ChainErrors)
	}
}

// With a public key, an unsigned line is an error.
func TestVerifyUnsignedWithKey(t *testing.T) {
	_, dir := threeRecordings(t, nil)
	pub, _, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	rep := verify(t, dir, pub)
	if len(rep.ChainErrors) != 3 || !strings.HasSuffix(rep.ChainErrors[0], "not signed") {
		t.Errorf("ChainErrors = %q, want 3 × not signed", rep.ChainErrors)
	}
}

func TestVerifyErrors(t *testing.T) {
	if _, err := Verify(filepath.Join(t.TempDir(), "nope"), nil); err == nil {
		t.Error("Verify of a missing directory succeeded")
	}
	// An empty directory is fine; a directory of recordings without manifests is all Extra.
	if rep := verify(t, t.TempDir(), nil); !rep.OK() {
		t.Errorf("empty directory: %+v", rep)
	}
	_, dir := threeRecordings(t, func(c *Config) { c.Manifest.Enabled = false })
	if rep := verify(t, dir, nil); len(rep.Extra) != 6 {
		t.Errorf("without manifests: Extra = %q, want all 6 files", rep.Extra)
	}
}

// A manifest line longer than any real one stops that manifest's check, reported, without reading it all
// into memory.
func TestVerifyLongLine(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, t0Dir, ManifestName), []byte(strings.Repeat("x", maxManifestLine+1)+"\n"))
	rep := verify(t, dir, nil)
	if len(rep.ChainErrors) != 1 || !strings.Contains(rep.ChainErrors[0], "longer than") {
		t.Errorf("ChainErrors = %q", rep.ChainErrors)
	}
}

func writeFile(t *testing.T, path string, b []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o640); err != nil {
		t.Fatal(err)
	}
}

func remove(t *testing.T, path string) {
	t.Helper()
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
}
