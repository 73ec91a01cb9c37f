package recorder

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// manifestLines reads a manifest and parses each line, failing on any line that does not parse.
func manifestLines(t *testing.T, path string) ([]ManifestEntry, [][]byte) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	raw := bytes.Split(bytes.TrimSuffix(b, []byte("\n")), []byte("\n"))
	var out []ManifestEntry
	for i, line := range raw {
		e, err := parseManifestLine(line)
		if err != nil {
			t.Fatalf("line %d: %v\n%s", i+1, err, line)
		}
		out = append(out, e)
	}
	return out, raw
}

// record writes a one-second recording with a tone and closes it.
func record(t *testing.T, r *Recorder, id string, at time.Time) *Recording {
	t.Helper()
	rec := start(t, r, Spec{ID: id, Channels: 2, Start: at, Document: &Document{Source: "siprec"}})
	rec.Channel(0).WriteSamples(0, tone(toneA, 0, rate))
	rec.Channel(1).WriteSamples(0, tone(toneB, 0, rate))
	if err := rec.Close(nil); err != nil {
		t.Fatal(err)
	}
	return rec
}

func TestManifestEntries(t *testing.T) {
	r := testRecorder(t, nil)
	record(t, r, "rec-1", t0)
	record(t, r, "rec-2", t0.Add(time.Minute))
	if err := r.WriteDocument(&Document{RecordingID: "never-1", State: StateNeverActivated, Start: t0}); err != nil {
		t.Fatal(err)
	}

	entries, raw := manifestLines(t, filepath.Join(r.cfg.Dir, t0Dir, ManifestName))
	if len(entries) != 3 {
		t.Fatalf("%d entries, want 3 (the initial documents are not listed):\n%s", len(entries), bytes.Join(raw, []byte("\n")))
	}
	if !bytes.Contains(raw[0], []byte(`"prev":""`)) {
		t.Errorf("first line has no empty prev: %s", raw[0])
	}
	prev := ""
	for i, e := range entries {
		if e.Seq != uint64(i+1) || e.Prev != prev || !e.Time.Equal(t0) || e.Time.Location() != time.UTC || e.Sig != "" {
			t.Errorf("entry %d: seq %d prev %q time %v sig %q", i, e.Seq, e.Prev, e.Time, e.Sig)
		}
		sum, err := e.computeHash()
		if err != nil || hex.EncodeToString(sum) != e.Hash {
			t.Errorf("entry %d: hash %s does not match its content", i, e.Hash)
		}
		// hash = SHA-256(prev + "\n" + the line as written without hash and sig), as a third party may
		// compute it: the canonical JSON is the line itself, hash and sig being its last fields.
		cut := bytes.LastIndex(raw[i], []byte(`,"hash":"`))
		canonical := append(slices.Clip(raw[i][:cut]), '}')
		if sum := sha256.Sum256([]byte(e.Prev + "\n" + string(canonical))); hex.EncodeToString(sum[:]) != e.Hash {
			t.Errorf("entry %d: hash of the line as written %x, entry says %s", i, sum, e.Hash)
		}
		prev = e.Hash
	}

	wantFiles := [][]string{
		{t0Dir + "/rec-1.wav", t0Dir + "/rec-1.json"},
		{t0Dir + "/rec-2.wav", t0Dir + "/rec-2.json"},
		{t0Dir + "/never-1.json"},
	}
	for i, e := range entries {
		var got []string
		for _, f := range e.Files {
			got = append(got, f.Path)
			b, err := os.ReadFile(filepath.Join(r.cfg.Dir, filepath.FromSlash(f.Path)))
			if err != nil {
				t.Fatal(err)
			}
			if sum := sha256.Sum256(b); f.Size != int64(len(b)) || f.SHA256 != hex.EncodeToString(sum[:]) {
				t.Errorf("%s: manifest says %d bytes %s, the file has %d bytes %x", f.Path, f.Size, f.SHA256, len(b), sum)
			}
		}
		if !slices.Equal(got, wantFiles[i]) || e.RecordingID != strings.TrimSuffix(filepath.Base(wantFiles[i][0]), filepath.Ext(wantFiles[i][0])) {
			t.Errorf("entry %d: %s files %v, want %v", i, e.RecordingID, got, wantFiles[i])
		}
	}
	// The document names its WAV's checksum, and the manifest hashes the document: one chain covers both.
	if doc := readDoc(t, filepath.Join(r.cfg.Dir, t0Dir, "rec-1.json")); doc.Audio.SHA256 != entries[0].Files[0].SHA256 {
		t.Errorf("document sha256 %q, manifest %q", doc.Audio.SHA256, entries[0].Files[0].SHA256)
	}
}

// Each day directory has its own chain.
func TestManifestPerDay(t *testing.T) {
	r := testRecorder(t, nil)
	record(t, r, "today", t0)
	record(t, r, "yesterday", t0.Add(-24*time.Hour))
	for _, day := range []string{t0Dir, "2026/11/21"} {
		entries, _ := manifestLines(t, filepath.Join(r.cfg.Dir, day, ManifestName))
		if len(entries) != 1 || entries[0].Seq != 1 || entries[0].Prev != "" {
			t.Errorf("%s: %+v, want one entry starting a chain", day, entries)
		}
	}
}

// A new Recorder on the same directory (a restart) continues each chain where the file ends.
func TestManifestContinuesAcrossRestart(t *testing.T) {
	dir := t.TempDir()
	r1 := testRecorder(t, func(c *Config) { c.Dir = dir })
	record(t, r1, "before", t0)
	if err := r1.Close(); err != nil {
		t.Fatal(err)
	}
	r2 := testRecorder(t, func(c *Config) { c.Dir = dir })
	record(t, r2, "after", t0)

	entries, _ := manifestLines(t, filepath.Join(dir, t0Dir, ManifestName))
	if len(entries) != 2 || entries[1].Seq != 2 || entries[1].Prev != entries[0].Hash {
		t.Fatalf("entries %+v: want the second to follow the first", entries)
	}
	if rep, err := Verify(dir, nil); err != nil || !rep.OK() {
		t.Fatalf("Verify = %+v, %v", rep, err)
	}
}

// A line cut short by a crash is left on its own line; the chain continues from the last whole one, and
// Verify reports the cut line and nothing else.
func TestManifestAfterTornLine(t *testing.T) {
	dir := t.TempDir()
	r1 := testRecorder(t, func(c *Config) { c.Dir = dir })
	record(t, r1, "before", t0)
	r1.Close()
	mf := filepath.Join(dir, t0Dir, ManifestName)
	f, err := os.OpenFile(mf, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString(`{"seq":2,"time":"2026-11-22T01:30:00Z","recording_id":"lost","fi`)
	f.Close()

	r2 := testRecorder(t, func(c *Config) { c.Dir = dir })
	record(t, r2, "after", t0)
	b, _ := os.ReadFile(mf)
	lines := strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
	if len(lines) != 3 || !strings.HasSuffix(lines[1], `"fi`) {
		t.Fatalf("manifest:\n%s\nwant the cut line alone on line 2", b)
	}
	rep, err := Verify(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.ChainErrors) != 1 || !strings.Contains(rep.ChainErrors[0], ":2:") || len(rep.Altered)+len(rep.Missing)+len(rep.Extra) != 0 {
		t.Errorf("Verify = %+v, want one chain error, on line 2", rep)
	}
}

func TestManifestDisabled(t *testing.T) {
	r := testRecorder(t, func(c *Config) { c.Manifest.Enabled = false })
	rec := record(t, r, "rec-1", t0)
	if _, err := os.Stat(filepath.Join(r.cfg.Dir, t0Dir, ManifestName)); !os.IsNotExist(err) {
		t.Errorf("manifest written while disabled: %v", err)
	}
	if doc := readDoc(t, strings.TrimSuffix(rec.WAVPath(), ".wav")+".json"); doc.Audio.SHA256 == "" {
		t.Error("no checksum in the document: it does not depend on the manifest")
	}
	if err := r.MarkRemoved(t0Dir+"/rec-1.json", []string{t0Dir + "/rec-1.wav"}, "delivered"); err != nil {
		t.Errorf("MarkRemoved with the manifest disabled: %v", err)
	}
}

func TestMarkRemoved(t *testing.T) {
	r := testRecorder(t, nil)
	record(t, r, "rec-1", t0)
	paths := []string{t0Dir + "/rec-1.wav", t0Dir + "/rec-1.json"}
	if err := r.MarkRemoved(t0Dir+"/rec-1.json", paths, "delivered"); err != nil {
		t.Fatal(err)
	}
	entries, raw := manifestLines(t, filepath.Join(r.cfg.Dir, t0Dir, ManifestName))
	if len(entries) != 2 {
		t.Fatalf("%d entries, want 2", len(entries))
	}
	e := entries[1]
	if e.Seq != 2 || e.Prev != entries[0].Hash || e.RecordingID != "rec-1" || !slices.Equal(e.Removed, paths) ||
		e.Reason != "delivered" || len(e.Files) != 0 {
		t.Errorf("removal entry %s", raw[1])
	}

	for _, tt := range []struct {
		name   string
		docRel string
		paths  []string
	}{
		{"document outside the directory", "../2026/11/22/rec-1.json", paths},
		{"not a document", t0Dir + "/rec-1.wav", paths},
		{"absolute document", "/" + t0Dir + "/rec-1.json", paths},
		{"no paths", t0Dir + "/rec-1.json", nil},
		{"path outside the directory", t0Dir + "/rec-1.json", []string{"../../etc/passwd"}},
		{"absolute path", t0Dir + "/rec-1.json", []string{"/etc/passwd"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if err := r.MarkRemoved(tt.docRel, tt.paths, "delivered"); err == nil {
				t.Error("MarkRemoved succeeded")
			}
		})
	}
	if entries, _ := manifestLines(t, filepath.Join(r.cfg.Dir, t0Dir, ManifestName)); len(entries) != 2 {
		t.Errorf("rejected calls wrote %d entries", len(entries)-2)
	}
}

// A manifest whose last whole line is not an entry cannot be continued: the append fails loudly rather than
// start a chain nobody can tell from a forged one.
func TestManifestCorruptLastLine(t *testing.T) {
	r := testRecorder(t, nil)
	day := filepath.Join(r.cfg.Dir, t0Dir)
	if err := os.MkdirAll(day, 0o750); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(day, ManifestName), []byte("not json\n"), 0o640); err != nil {
		t.Fatal(err)
	}
	rec := start(t, r, Spec{ID: "rec-1", Channels: 1, Start: t0})
	if err := rec.Close(nil); err == nil || !strings.Contains(err.Error(), ManifestName) {
		t.Errorf("Close = %v, want a manifest error", err)
	}
	// The document is written all the same.
	if doc := readDoc(t, filepath.Join(day, "rec-1.json")); doc.State != StateCompleted {
		t.Errorf("document state %q", doc.State)
	}
}

func TestParseManifestLine(t *testing.T) {
	h := strings.Repeat("ab", 32)
	file := `{"path":"2026/11/22/a.wav","size":44,"sha256":"` + h + `"}`
	tests := []struct {
		name, line string
		ok         bool
	}{
		{"entry", `{"seq":1,"time":"2026-11-22T01:30:00Z","recording_id":"a","files":[` + file + `],"prev":"","hash":"` + h + `"}`, true},
		{"removal", `{"seq":2,"time":"2026-11-22T01:30:00Z","recording_id":"a","removed":["2026/11/22/a.wav"],"reason":"delivered","prev":"` + h + `","hash":"` + h + `"}`, true},
		{"empty", ``, false},
		{"not an object", `[1,2]`, false},
		{"two objects", `{"seq":1} {"seq":2}`, false},
		{"unknown field", `{"seq":1,"time":"2026-11-22T01:30:00Z","recording_id":"a","files":[` + file + `],"prev":"","hash":"` + h + `","x":1}`, false},
		{"no seq", `{"time":"2026-11-22T01:30:00Z","recording_id":"a","files":[` + file + `],"prev":"","hash":"` + h + `"}`, false},
		{"bad id", `{"seq":1,"time":"2026-11-22T01:30:00Z","recording_id":"../a","files":[` + file + `],"prev":"","hash":"` + h + `"}`, false},
		{"neither files nor removed", `{"seq":1,"time":"2026-11-22T01:30:00Z","recording_id":"a","prev":"","hash":"` + h + `"}`, false},
		{"escaping path", `{"seq":1,"time":"2026-11-22T01:30:00Z","recording_id":"a","files":[{"path":"../../etc/passwd","size":1,"sha256":"` + h + `"}],"prev":"","hash":"` + h + `"}`, false},
		{"negative size", `{"seq":1,"time":"2026-11-22T01:30:00Z","recording_id":"a","files":[{"path":"a.wav","size":-1,"sha256":"` + h + `"}],"prev":"","hash":"` + h + `"}`, false},
		{"upper-case hash", `{"seq":1,"time":"2026-11-22T01:30:00Z","recording_id":"a","files":[` + file + `],"prev":"","hash":"` + strings.ToUpper(h) + `"}`, false},
		{"no hash", `{"seq":1,"time":"2026-11-22T01:30:00Z","recording_id":"a","files":[` + file + `],"prev":""}`, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parseManifestLine([]byte(tt.line))
			if (err == nil) != tt.ok {
				t.Errorf("parseManifestLine = %v, want ok=%v", err, tt.ok)
			}
		})
	}
}

// FuzzManifestLine: Verify reads manifests anyone with write access may have edited. Parsing must never
// panic, and what parses must hash the same after a round trip through JSON.
func FuzzManifestLine(f *testing.F) {
	h := strings.Repeat("0f", 32)
	f.Add([]byte(`{"seq":1,"time":"2026-11-22T01:30:00.123456789Z","recording_id":"a","files":[{"path":"2026/11/22/a.wav","size":44,"sha256":"` + h + `"}],"prev":"","hash":"` + h + `","sig":"AAAA"}`))
	f.Add([]byte(`{"seq":2,"time":"2026-11-22T01:30:00+02:00","recording_id":"a","removed":["2026/11/22/a.wav"],"reason":"delivered \u00e9","prev":"` + h + `","hash":"` + h + `"}`))
	f.Add([]byte(`{"seq":18446744073709551615,"time":"0000-01-01T00:00:00Z","recording_id":"a","removed":["a"],"prev":"","hash":"` + h + `"}`))
	f.Add([]byte(`{"seq":1,"files":[{"path":"\\..\\x"}]}`))
	f.Add([]byte(`{`))
	f.Add([]byte{0xff, 0xfe, '{', '}'})
	f.Fuzz(func(t *testing.T, line []byte) {
		e, err := parseManifestLine(line)
		if err != nil {
			return
		}
		sum, err := e.computeHash()
		if err != nil {
			return // a time encoding/json cannot write back; Verify reports it
		}
		b, err := json.Marshal(e)
		if err != nil {
			t.Fatalf("marshal of a parsed entry: %v", err)
		}
		e2, err := parseManifestLine(b)
		if err != nil {
			t.Fatalf("a parsed entry does not parse after a round trip: %v\n%s", err, b)
		}
		sum2, err := e2.computeHash()
		if err != nil || !bytes.Equal(sum, sum2) {
			t.Fatalf("hash changed in a round trip: %x, %x (%v)\n%s", sum, sum2, err, b)
		}
	})
}
