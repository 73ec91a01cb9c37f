package recorder

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// ManifestName is the file in each day directory (Dir/YYYY/MM/DD/) that lists, one JSON line per finished
// recording, the files written there with their sizes and SHA-256, chained by hash.
const ManifestName = "manifest.jsonl"

// Manifest limits.
const (
	maxManifestLine = 1 << 20 // longest manifest line read back; ours are a few hundred bytes
	manifestTail    = 64 << 10
	maxManifestDays = 64 // chain heads remembered; older days are read back from disk when needed
)

// ManifestEntry is one line of a manifest: the files of a finished recording, or (Removed) files deleted on
// purpose, such as local copies after delivery. Hash is the hex SHA-256 of Prev + "\n" + the entry's
// canonical JSON (encoding/json, fields in this order, no spaces, Hash and Sig omitted); Prev is the Hash of
// the line before in the same file ("" for the first). Sig, when a signing key is configured, is the
// standard base64 Ed25519 signature of the 32 hash bytes.
type ManifestEntry struct {
	Seq         uint64         `json:"seq"` // 1 for the first line of a file, then +1
	Time        time.Time      `json:"time"`
	RecordingID string         `json:"recording_id"`
	Files       []ManifestFile `json:"files,omitempty"`
	Removed     []string       `json:"removed,omitempty"` // paths relative to Config.Dir, slash-separated
	Reason      string         `json:"reason,omitempty"`  // why Removed: "delivered"
	Prev        string         `json:"prev"`
	Hash        string         `json:"hash,omitempty"`
	Sig         string         `json:"sig,omitempty"`
}

// ManifestFile is a file as it was written.
type ManifestFile struct {
	Path   string `json:"path"` // relative to Config.Dir, slash-separated
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"` // hex
}

// computeHash returns the entry's chain hash (see ManifestEntry).
func (e ManifestEntry) computeHash() ([]byte, error) {
	e.Hash, e.Sig = "", ""
	b, err := json.Marshal(e)
	if err != nil {
		return nil, fmt.Errorf("recorder: manifest entry: %w", err)
	}
	h := sha256.New()
	io.WriteString(h, e.Prev)
	io.WriteString(h, "\n")
	h.Write(b)
	return h.Sum(nil), nil
}

// parseManifestLine decodes and checks the shape of one manifest line (without its newline). It checks
// neither the hash nor the chain. It must never panic: the file may have been edited by anyone.
func parseManifestLine(line []byte) (ManifestEntry, error) {
	var e ManifestEntry
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.DisallowUnknownFields() // a field nobody hashes would be an unprotected change
	if err := dec.Decode(&e); err != nil {
		return e, fmt.Errorf("not a manifest entry: %w", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return e, errors.New("not a manifest entry: data after the JSON object")
	}
	var errs []error
	if e.Seq == 0 {
		errs = append(errs, errors.New("seq missing"))
	}
	if !ValidID(e.RecordingID) {
		errs = append(errs, fmt.Errorf("recording_id %q invalid", e.RecordingID))
	}
	if (len(e.Files) == 0) == (len(e.Removed) == 0) {
		errs = append(errs, errors.New("want files or removed, exactly one"))
	}
	for _, f := range e.Files {
		if !validRelPath(f.Path) || f.Size < 0 || !isHexHash(f.SHA256) {
			errs = append(errs, fmt.Errorf("file %q: invalid path, size or sha256", f.Path))
		}
	}
	for _, p := range e.Removed {
		if !validRelPath(p) {
			errs = append(errs, fmt.Errorf("removed %q: invalid path", p))
		}
	}
	if e.Prev != "" && !isHexHash(e.Prev) {
		errs = append(errs, errors.New("prev is not a hex SHA-256"))
	}
	if !isHexHash(e.Hash) {
		errs = append(errs, errors.New("hash is not a hex SHA-256"))
	}
	return e, errors.Join(errs...)
}

// validRelPath accepts slash-separated paths that stay inside the directory they are relative to.
func validRelPath(p string) bool {
	return p != "" && !strings.Contains(p, `\`) && filepath.IsLocal(filepath.FromSlash(p)) && path.Clean(p) == p
}

func isHexHash(s string) bool {
	if len(s) != 2*sha256.Size {
		return false
	}
	for _, c := range []byte(s) {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// manifest appends entries to the day manifests under dir. Appends are serialised: each links to the one
// before, so two at once would fork the chain.
type manifest struct {
	dir string
	key ed25519.PrivateKey // nil: entries are not signed
	now func() time.Time

	mu    sync.Mutex
	heads map[string]chainHead // day (YYYY/MM/DD) → last entry written there
}

type chainHead struct {
	seq  uint64
	hash string
	torn bool // the file does not end with a newline: a write was cut short
}

// append completes e (Seq, Time, Prev, Hash, Sig) and appends it to the manifest of day, durably.
func (m *manifest) append(day string, e ManifestEntry) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	file := filepath.Join(m.dir, filepath.FromSlash(day), ManifestName)
	head, ok := m.heads[day]
	if !ok {
		var err error
		if head, err = readHead(file); err != nil {
			return fmt.Errorf("recorder: %s: %w", file, err)
		}
	}
	e.Seq, e.Prev, e.Time = head.seq+1, head.hash, m.now().UTC()
	sum, err := e.computeHash()
	if err != nil {
		return err
	}
	e.Hash = hex.EncodeToString(sum)
	if m.key != nil {
		e.Sig = base64.StdEncoding.EncodeToString(ed25519.Sign(m.key, sum))
	}
	line, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("recorder: manifest entry: %w", err)
	}
	if head.torn {
		line = append([]byte{'\n'}, line...) // leave the cut line on its own, for Verify to report
	}
	line = append(line, '\n')

	delete(m.heads, day) // until this append is known to have worked
	if err := os.MkdirAll(filepath.Dir(file), dirPerm); err != nil {
		return fmt.Errorf("recorder: %w", err)
	}
	f, err := os.OpenFile(file, os.O_WRONLY|os.O_APPEND|os.O_CREATE, filePerm)
	if err != nil {
		return fmt.Errorf("recorder: %w", err)
	}
	_, err = f.Write(line)
	err = errors.Join(err, f.Sync(), f.Close())
	if err != nil {
		return fmt.Errorf("recorder: appending to %s: %w", file, err)
	}
	if len(m.heads) >= maxManifestDays {
		clear(m.heads)
	}
	m.heads[day] = chainHead{seq: e.Seq, hash: e.Hash}
	return nil
}

// readHead finds the last complete line of a manifest, where the chain continues. A missing or empty file
// starts a new chain.
func readHead(file string) (chainHead, error) {
	f, err := os.Open(file)
	if errors.Is(err, os.ErrNotExist) {
		return chainHead{}, nil
	}
	if err != nil {
		return chainHead{}, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return chainHead{}, err
	}
	size := st.Size()
	if size == 0 {
		return chainHead{}, nil
	}
	for n := int64(manifestTail); ; n *= 2 {
		n = min(n, size)
		buf := make([]byte, n)
		if _, err := f.ReadAt(buf, size-n); err != nil {
			return chainHead{}, err
		}
		torn := buf[len(buf)-1] != '\n'
		end := bytes.LastIndexByte(buf, '\n')
		if end < 0 && n == size {
			return chainHead{torn: true}, nil // only a cut line: start again after it
		}
		if end >= 0 {
			begin := bytes.LastIndexByte(buf[:end], '\n') + 1
			if begin > 0 || n == size {
				e, err := parseManifestLine(buf[begin:end])
				if err != nil {
					return chainHead{}, fmt.Errorf("last line: %w; the chain cannot continue", err)
				}
				return chainHead{seq: e.Seq, hash: e.Hash, torn: torn}, nil
			}
		}
		if n == size || n >= maxManifestLine {
			return chainHead{}, errors.New("last line too long; the chain cannot continue")
		}
	}
}

// recordFinal appends the entry of a final document: the audio (if any) and the document as written.
func (r *Recorder) recordFinal(rel string, doc *Document, written []byte, audio *ManifestFile) error {
	if r.manifest == nil {
		return nil
	}
	var files []ManifestFile
	if audio != nil {
		files = append(files, *audio)
	}
	sum := sha256.Sum256(written)
	files = append(files, ManifestFile{Path: rel, Size: int64(len(written)), SHA256: hex.EncodeToString(sum[:])})
	return r.manifest.append(path.Dir(rel), ManifestEntry{RecordingID: doc.RecordingID, Files: files})
}

// MarkRemoved records in the manifest that paths (relative to Config.Dir, slash-separated) were deleted on
// purpose, so Verify does not report them missing: for example the local copies of a recording once
// delivery has stored them elsewhere. docRel is the recording's document path (YYYY/MM/DD/<id>.json): the
// entry goes to that day's manifest, under that recording ID. A no-op when the manifest is disabled.
func (r *Recorder) MarkRemoved(docRel string, paths []string, reason string) error {
	if r.manifest == nil {
		return nil
	}
	id, ok := strings.CutSuffix(path.Base(docRel), ".json")
	var errs []error
	if !ok || !validRelPath(docRel) || !ValidID(id) {
		errs = append(errs, fmt.Errorf("recorder: document path %q: want YYYY/MM/DD/<id>.json", docRel))
	}
	if len(paths) == 0 {
		errs = append(errs, errors.New("recorder: no paths to mark removed"))
	}
	for _, p := range paths {
		if !validRelPath(p) {
			errs = append(errs, fmt.Errorf("recorder: path %q: want a slash-separated path inside the recordings directory", p))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	err := r.manifest.append(path.Dir(docRel), ManifestEntry{RecordingID: id, Removed: paths, Reason: reason})
	if err != nil {
		r.countWriteError()
	}
	return err
}

// digestFile returns the size and hex SHA-256 of a file.
func digestFile(name string) (ManifestFile, error) {
	f, err := os.Open(name)
	if err != nil {
		return ManifestFile{}, err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return ManifestFile{}, err
	}
	return ManifestFile{Size: n, SHA256: hex.EncodeToString(h.Sum(nil))}, nil
}
