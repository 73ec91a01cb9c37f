package recorder

import (
	"bufio"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"path"
	"slices"
	"strings"
)

// maxVerifyDocument bounds how much of an unlisted document Verify reads to learn its state.
const maxVerifyDocument = 16 << 20

// VerifyReport is what Verify found. Paths are relative to the directory, slash-separated, sorted.
type VerifyReport struct {
	Checked     int      // listed files whose size and SHA-256 were recomputed
	Altered     []string // listed files whose size or SHA-256 differ from the manifest
	Missing     []string // listed files that are gone, and no later entry says they were removed
	Extra       []string // .wav/.json files in day directories that no manifest expects (recordings in progress excepted)
	ChainErrors []string // "YYYY/MM/DD/manifest.jsonl:N: …": bad lines, hashes, links, sequence numbers, signatures
}

// OK says nothing is wrong.
func (v *VerifyReport) OK() bool {
	return len(v.Altered) == 0 && len(v.Missing) == 0 && len(v.Extra) == 0 && len(v.ChainErrors) == 0
}

// Verify checks the recordings under dir against their day manifests (dir/YYYY/MM/DD/manifest.jsonl): every
// line's hash and its link to the line before, sequence numbers, and with pub the Ed25519 signature of every
// line (an unsigned line is then an error); then the size and SHA-256 of every listed file that no later
// entry marks removed. Files in day directories that no manifest expects are Extra, except a recording in
// progress (its document still says state "recording") and its audio. Directories whose names start with
// '.' are skipped. The error is for what stops the check itself, such as an unreadable file; problems with
// the recordings are in the report.
func Verify(dir string, pub ed25519.PublicKey) (*VerifyReport, error) {
	root, err := os.OpenRoot(dir) // nothing a manifest says can reach outside dir
	if err != nil {
		return nil, fmt.Errorf("recorder: verify: %w", err)
	}
	defer root.Close()
	fsys := root.FS()

	var manifests, files []string
	err = fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if p != "." && strings.HasPrefix(d.Name(), ".") {
				return fs.SkipDir
			}
			return nil
		}
		if !isDayDir(path.Dir(p)) || strings.HasPrefix(d.Name(), ".") {
			return nil
		}
		switch {
		case d.Name() == ManifestName && d.Type().IsRegular():
			manifests = append(manifests, p)
		case strings.HasSuffix(p, ".wav"), strings.HasSuffix(p, ".json"):
			files = append(files, p)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("recorder: verify: %w", err)
	}

	rep := &VerifyReport{}
	expected := make(map[string]ManifestFile) // listed and not removed since
	for _, m := range manifests {             // WalkDir's lexical order is the days' order
		if err := verifyChain(fsys, m, pub, expected, rep); err != nil {
			return nil, err
		}
	}

	for _, p := range slices.Sorted(maps.Keys(expected)) {
		want := expected[p]
		got, err := digestFS(fsys, p)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			rep.Missing = append(rep.Missing, p)
			continue
		case err != nil:
			return nil, fmt.Errorf("recorder: verify: %w", err)
		}
		rep.Checked++
		if got.Size != want.Size || got.SHA256 != want.SHA256 {
			rep.Altered = append(rep.Altered, p)
		}
	}

	// Unlisted files: a recording in progress has an unlisted document in state "recording" and its audio.
	inProgress := make(map[string]bool)
	for _, p := range files {
		if _, ok := expected[p]; ok || !strings.HasSuffix(p, ".json") {
			continue
		}
		state, audio, err := readState(fsys, p)
		if err != nil || state != StateRecording {
			continue
		}
		inProgress[p] = true
		inProgress[strings.TrimSuffix(p, ".json")+".wav"] = true
		if audio != "" {
			inProgress[audio] = true
		}
	}
	for _, p := range files {
		if _, ok := expected[p]; !ok && !inProgress[p] {
			rep.Extra = append(rep.Extra, p)
		}
	}
	return rep, nil
}

// verifyChain checks one manifest and applies its entries to expected.
func verifyChain(fsys fs.FS, name string, pub ed25519.PublicKey, expected map[string]ManifestFile, rep *VerifyReport) error {
	f, err := fsys.Open(name)
	if err != nil {
		return fmt.Errorf("recorder: verify: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 64<<10), maxManifestLine)
	var prev string
	var seq uint64
	for n := 1; sc.Scan(); n++ {
		e, problems := checkLine(sc.Bytes(), prev, seq, pub)
		if e != nil {
			// A parsed line, even one whose hash no longer matches, is where the next one links to: one
			// edited line is one error, not every line after it.
			prev, seq = e.Hash, e.Seq
			for _, file := range e.Files {
				expected[file.Path] = file
			}
			for _, p := range e.Removed {
				delete(expected, p)
			}
		}
		if len(problems) > 0 {
			rep.ChainErrors = append(rep.ChainErrors, fmt.Sprintf("%s:%d: %s", name, n, strings.Join(problems, "; ")))
		}
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			rep.ChainErrors = append(rep.ChainErrors, fmt.Sprintf("%s: a line longer than %d bytes; the rest is not checked", name, maxManifestLine))
			return nil
		}
		return fmt.Errorf("recorder: verify: %s: %w", name, err)
	}
	return nil
}

// checkLine parses one manifest line and says what is wrong with it, given the hash and seq of the last
// parsed line. The entry is nil when the line cannot be parsed.
func checkLine(line []byte, prev string, seq uint64, pub ed25519.PublicKey) (*ManifestEntry, []string) {
	e, err := parseManifestLine(line)
	if err != nil {
		return nil, []string{err.Error()}
	}
	var problems []string
	if e.Seq != seq+1 {
		problems = append(problems, fmt.Sprintf("seq %d after %d", e.Seq, seq))
	}
	if e.Prev != prev {
		problems = append(problems, "prev does not match the line before")
	}
	sum, err := e.computeHash()
	if err != nil {
		return &e, append(problems, err.Error())
	}
	if hex.EncodeToString(sum) != e.Hash {
		return &e, append(problems, "hash does not match the content")
	}
	if pub != nil {
		sig, err := base64.StdEncoding.DecodeString(e.Sig)
		switch {
		case e.Sig == "":
			problems = append(problems, "not signed")
		case err != nil || !ed25519.Verify(pub, sum, sig):
			problems = append(problems, "signature does not verify")
		}
	}
	return &e, problems
}

// isDayDir says whether p looks like YYYY/MM/DD.
func isDayDir(p string) bool {
	parts := strings.Split(p, "/")
	if len(parts) != 3 {
		return false
	}
	for i, want := range []int{4, 2, 2} {
		if len(parts[i]) != want || strings.Trim(parts[i], "0123456789") != "" {
			return false
		}
	}
	return true
}

func digestFS(fsys fs.FS, name string) (ManifestFile, error) {
	f, err := fsys.Open(name)
	if err != nil {
		return ManifestFile{}, err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return ManifestFile{}, fmt.Errorf("%s: %w", name, err)
	}
	return ManifestFile{Path: name, Size: n, SHA256: hex.EncodeToString(h.Sum(nil))}, nil
}

// readState reads the state and audio file of a document.
func readState(fsys fs.FS, name string) (state, audio string, err error) {
	f, err := fsys.Open(name)
	if err != nil {
		return "", "", err
	}
	defer f.Close()
	var d struct {
		State string `json:"state"`
		Audio *struct {
			File string `json:"file"`
		} `json:"audio"`
	}
	if err := json.NewDecoder(io.LimitReader(f, maxVerifyDocument)).Decode(&d); err != nil {
		return "", "", err
	}
	if d.Audio != nil {
		audio = d.Audio.File
	}
	return d.State, audio, nil
}
