package api

import (
	"bufio"
	"cmp"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"maps"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/siphook/siphook/recorder"
)

// Where the index keeps its journal, under the recordings directory.
const (
	indexDirName   = ".index"
	journalName    = "recordings.jsonl"
	journalVersion = 1
	dirPerm        = 0o750 // as the recorder: the journal holds personal data (numbers, names)
	filePerm       = 0o640
)

// Page limits of Query.
const (
	DefaultLimit = 50
	MaxLimit     = 500
)

// ErrBadCursor is returned by Query for a cursor it did not issue.
var ErrBadCursor = errors.New("invalid cursor")

// Summary is one recording as the list endpoint returns it: the searchable facts of its metadata document.
type Summary struct {
	ID             string     `json:"id"`
	Source         string     `json:"source"`
	State          string     `json:"state"`
	Start          time.Time  `json:"start"`
	End            *time.Time `json:"end,omitempty"` // absent while recording
	DurationSec    float64    `json:"duration_seconds"`
	Tenant         string     `json:"tenant"`
	ConversationID string     `json:"conversation_id"`
	Direction      string     `json:"direction"`
	ANI            string     `json:"ani"`
	DNIS           string     `json:"dnis"`
	QueueID        string     `json:"queue_id"`
	Agents         []Agent    `json:"agents"`
	Matched        bool       `json:"matched"`
	MatchedBy      string     `json:"matched_by"`
	Unmatched      string     `json:"unmatched,omitempty"`    // why it was never matched, when known
	NotRecorded    string     `json:"not_recorded,omitempty"` // matched, but never asked to record: why
	Identifiers    []Key      `json:"identifiers"`
	Channels       int        `json:"channels"`
	SampleRate     int        `json:"sample_rate"`
	HasAudio       bool       `json:"has_audio"`
	Document       string     `json:"document"`            // relative to the recordings directory, slash-separated
	Audio          string     `json:"audio,omitempty"`     // the WAV, relative like Document; absent when there is no file
	Analytics      *Analytics `json:"analytics,omitempty"` // absent without audio
}

// Analytics is the summary of a recording's call analytics (recorder.Analytics).
type Analytics struct {
	SilenceRatio      float64 `json:"silence_ratio"`
	TalkOverRatio     float64 `json:"talk_over_ratio"`
	LongestSilenceSec float64 `json:"longest_silence_sec"`
	MOS               float64 `json:"mos,omitempty"` // absent when no stream carried RTP (AudioHook)
	MediaErrors       int     `json:"media_errors"`
}

// Key is an identifier of a recording or a live session, such as {ucid, 0007…}.
type Key struct {
	Kind  string `json:"kind"`
	Value string `json:"value"`
}

// Agent is an agent on a call.
type Agent struct {
	UserID string `json:"user_id"`
	Name   string `json:"name"`
}

// Page is one page of Query results.
type Page struct {
	Recordings []Summary `json:"recordings"`
	NextCursor string    `json:"next_cursor,omitempty"` // empty on the last page
	Total      int       `json:"total"`                 // matches on all pages
}

// summarize extracts the searchable facts of doc, whose file is relPath.
func summarize(relPath string, doc recorder.Document) Summary {
	s := Summary{
		ID:          doc.RecordingID,
		Source:      doc.Source,
		State:       doc.State,
		Start:       doc.Start.UTC(),
		DurationSec: doc.DurationSec,
		Agents:      []Agent{},
		Identifiers: make([]Key, 0, len(doc.Identifiers)),
		Unmatched:   doc.Unmatched,
		NotRecorded: doc.NotRecorded,
		Document:    relPath,
	}
	if doc.End != nil {
		end := doc.End.UTC()
		s.End = &end
	}
	for _, id := range doc.Identifiers {
		s.Identifiers = append(s.Identifiers, Key{Kind: id.Kind, Value: id.Value})
	}
	if c := doc.Call; c != nil {
		s.Matched = true
		s.Tenant, s.ConversationID, s.Direction, s.QueueID = c.Tenant, c.ConversationID, c.Direction, c.QueueID
		s.ANI, s.DNIS, s.MatchedBy = c.ANI, c.DNIS, c.MatchedBy
		for _, a := range c.Agents {
			s.Agents = append(s.Agents, Agent{UserID: a.UserID, Name: a.Name})
		}
	}
	// Unmatched recordings still have parties worth searching by: the SIP caller and callee.
	for _, p := range doc.Participants {
		switch {
		case p.Role == "caller" && s.ANI == "":
			s.ANI = p.AOR
		case p.Role == "callee" && s.DNIS == "":
			s.DNIS = p.AOR
		}
	}
	if a := doc.Analytics; a != nil {
		s.Analytics = &Analytics{SilenceRatio: a.SilenceRatio, TalkOverRatio: a.TalkOverRatio,
			LongestSilenceSec: a.LongestSilenceSec, MOS: a.MOS, MediaErrors: len(a.MediaErrors)}
	}
	if a := doc.Audio; a != nil {
		s.Channels, s.SampleRate, s.Audio = a.Channels, a.SampleRate, a.File
		s.HasAudio = a.Samples > 0
	}
	return s
}

// sortKey orders recordings: by start, then by id.
type sortKey struct {
	start int64 // unix nanoseconds
	id    string
}

func keyOf(s *Summary) sortKey { return sortKey{startNanos(s.Start), s.ID} }

// startNanos is t in Unix nanoseconds, clamped so that absurd dates still sort (UnixNano is undefined there).
func startNanos(t time.Time) int64 {
	switch {
	case t.Before(time.Unix(0, math.MinInt64)):
		return math.MinInt64
	case t.After(time.Unix(0, math.MaxInt64)):
		return math.MaxInt64
	}
	return t.UnixNano()
}

func compareKeys(a, b sortKey) int {
	return cmp.Or(cmp.Compare(a.start, b.start), strings.Compare(a.id, b.id))
}

// A cursor is the key of the last recording of a page: the next page starts after it, which stays right
// however many recordings arrive meanwhile. Layout: version byte, start (8 bytes big-endian), id.
const cursorVersion = 1

func encodeCursor(k sortKey) string {
	b := make([]byte, 9, 9+len(k.id))
	b[0] = cursorVersion
	binary.BigEndian.PutUint64(b[1:], uint64(k.start))
	return base64.RawURLEncoding.EncodeToString(append(b, k.id...))
}

func decodeCursor(s string) (sortKey, error) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || len(b) < 10 || b[0] != cursorVersion {
		return sortKey{}, ErrBadCursor
	}
	return sortKey{start: int64(binary.BigEndian.Uint64(b[1:9])), id: string(b[9:])}, nil
}

// row is a Summary with what the filters need precomputed.
type row struct {
	Summary
	key                   sortKey
	aniDigits, dnisDigits string
}

func newRow(s Summary) *row {
	return &row{Summary: s, key: keyOf(&s), aniDigits: digits(s.ANI), dnisDigits: digits(s.DNIS)}
}

// IndexOption configures an Index.
type IndexOption func(*Index)

// WithIndexLogger sets the index's logger (default slog.Default()).
func WithIndexLogger(l *slog.Logger) IndexOption {
	return func(ix *Index) {
		if l != nil {
			ix.log = l
		}
	}
}

// Index is the in-memory index of recordings, persisted as an append-only journal. The metadata documents
// on disk are the truth; the journal only saves walking them at every start. It is safe for concurrent use.
type Index struct {
	dir string
	log *slog.Logger

	rebuildMu sync.Mutex // one Rebuild at a time

	mu           sync.RWMutex
	byID         map[string]*row
	order        []*row // ascending by key: new recordings append at the end, cheaply
	journal      *os.File
	lines        int                 // entries in the journal, for compaction
	touched      map[string]struct{} // ids changed while a Rebuild walks the disk; nil otherwise
	writeFailing bool                // a journal write failed: logged once until one succeeds
	closed       bool
}

// OpenIndex opens the index of the recordings under dir (recorder.Config.Dir). It reads the journal in
// dir/.index; without a usable one it rebuilds the index from the documents.
func OpenIndex(dir string, opts ...IndexOption) (*Index, error) {
	ix := &Index{dir: dir, log: slog.Default(), byID: map[string]*row{}}
	for _, o := range opts {
		o(ix)
	}
	if err := os.MkdirAll(filepath.Join(dir, indexDirName), dirPerm); err != nil {
		return nil, fmt.Errorf("api: index: %w", err)
	}
	ix.mu.Lock()
	err := ix.load()
	ix.mu.Unlock()
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			ix.log.Info("no index journal: building the index from the recordings", "dir", dir)
		} else {
			ix.log.Warn("index journal unusable: rebuilding the index from the recordings", "dir", dir, "error", err)
		}
		n, err := ix.Rebuild()
		if err != nil {
			return nil, err
		}
		ix.log.Info("index rebuilt", "recordings", n)
		return ix, nil
	}
	ix.mu.Lock()
	defer ix.mu.Unlock()
	if ix.lines > 2*len(ix.order) {
		ix.log.Info("compacting the index journal", "lines", ix.lines, "recordings", len(ix.order))
		err = ix.rewrite()
	} else {
		err = ix.openJournal()
	}
	if err != nil {
		return nil, err
	}
	return ix, nil
}

func (ix *Index) journalPath() string { return filepath.Join(ix.dir, indexDirName, journalName) }

// journalLine is an entry of the journal: a Summary, or the removal of one.
type journalLine struct {
	Summary
	Removed bool `json:"removed,omitempty"`
}

type journalHeader struct {
	Version int `json:"siphook_index"`
}

// load reads the journal into the empty index; the last entry of an id wins. A torn last line, what a
// crash in the middle of an append leaves, is cut off. Called with mu held.
func (ix *Index) load() error {
	f, err := os.Open(ix.journalPath())
	if err != nil {
		return err
	}
	defer f.Close()
	br := bufio.NewReader(f)
	line, err := br.ReadBytes('\n')
	var h journalHeader
	if err != nil || json.Unmarshal(line, &h) != nil || h.Version != journalVersion {
		return fmt.Errorf("%s: not an index journal of version %d", ix.journalPath(), journalVersion)
	}
	good := int64(len(line)) // end of the last good line
	for {
		line, err := br.ReadBytes('\n')
		if err == io.EOF {
			if len(line) > 0 {
				ix.log.Info("index journal: ignoring a torn last line", "file", ix.journalPath())
			}
			break
		}
		if err != nil {
			return err
		}
		var e journalLine
		if json.Unmarshal(line, &e) != nil || e.ID == "" {
			if _, err := br.Peek(1); err == io.EOF {
				ix.log.Info("index journal: ignoring a torn last line", "file", ix.journalPath())
				break
			}
			return fmt.Errorf("%s: the entry after byte %d is not valid", ix.journalPath(), good)
		}
		good += int64(len(line))
		ix.lines++
		if e.Removed {
			ix.remove(e.ID)
		} else {
			ix.upsert(newRow(e.Summary))
		}
	}
	// Cut a torn tail off, so the next append starts a line of its own.
	if st, err := os.Stat(ix.journalPath()); err == nil && st.Size() > good {
		return os.Truncate(ix.journalPath(), good)
	}
	return nil
}

// openJournal opens the journal for appending. Called with mu held.
func (ix *Index) openJournal() error {
	f, err := os.OpenFile(ix.journalPath(), os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		return fmt.Errorf("api: index: %w", err)
	}
	if ix.journal != nil {
		ix.journal.Close()
	}
	ix.journal = f
	return nil
}

// rewrite replaces the journal with one entry per recording (temporary file and rename, so a crash leaves
// the old journal or the new one), then reopens it. Called with mu held.
func (ix *Index) rewrite() error {
	tmp, err := os.CreateTemp(filepath.Dir(ix.journalPath()), "."+journalName+".*.tmp")
	if err != nil {
		return fmt.Errorf("api: index: %w", err)
	}
	defer os.Remove(tmp.Name()) // fails harmlessly after the rename
	w := bufio.NewWriter(tmp)
	enc := json.NewEncoder(w)
	err = enc.Encode(journalHeader{Version: journalVersion})
	for _, r := range ix.order {
		err = errors.Join(err, enc.Encode(journalLine{Summary: r.Summary}))
	}
	err = errors.Join(err, w.Flush(), tmp.Chmod(filePerm), tmp.Sync(), tmp.Close())
	if err == nil {
		err = os.Rename(tmp.Name(), ix.journalPath())
	}
	if err != nil {
		return fmt.Errorf("api: index: writing the journal: %w", err)
	}
	ix.lines = len(ix.order)
	return ix.openJournal()
}

// append writes one journal entry: one write(2) on an O_APPEND file, not synced (the documents are the
// truth; a lost entry is restored by the next rebuild). Called with mu held.
func (ix *Index) append(e any) {
	if ix.journal == nil {
		return
	}
	b, err := json.Marshal(e)
	if err == nil {
		_, err = ix.journal.Write(append(b, '\n'))
	}
	switch {
	case err != nil && !ix.writeFailing:
		ix.writeFailing = true
		ix.log.Error("writing the index journal; the index is current in memory only", "error", err)
	case err == nil:
		ix.writeFailing = false
		ix.lines++
	}
}

// Observe records a metadata document written at relPath (relative to the recordings directory,
// slash-separated). It has the signature recorder.WithDocumentHook wants.
func (ix *Index) Observe(relPath string, doc recorder.Document) {
	if doc.RecordingID == "" {
		return
	}
	s := summarize(relPath, doc)
	ix.mu.Lock()
	defer ix.mu.Unlock()
	ix.upsert(newRow(s))
	ix.append(journalLine{Summary: s})
}

// forget drops a recording whose document has gone from the disk.
func (ix *Index) forget(id string) {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	if ix.remove(id) {
		ix.append(struct {
			ID      string `json:"id"`
			Removed bool   `json:"removed"`
		}{id, true})
	}
}

// upsert adds r or replaces the row with its id. Called with mu held.
func (ix *Index) upsert(r *row) {
	if ix.touched != nil {
		ix.touched[r.ID] = struct{}{}
	}
	if old, ok := ix.byID[r.ID]; ok {
		if old.key == r.key {
			i, _ := ix.search(old.key)
			ix.order[i] = r
			ix.byID[r.ID] = r
			return
		}
		ix.remove(r.ID)
	}
	ix.byID[r.ID] = r
	i, _ := ix.search(r.key)
	ix.order = slices.Insert(ix.order, i, r)
}

// remove drops id; it reports whether it was there. Called with mu held.
func (ix *Index) remove(id string) bool {
	if ix.touched != nil {
		ix.touched[id] = struct{}{}
	}
	r, ok := ix.byID[id]
	if !ok {
		return false
	}
	delete(ix.byID, id)
	if i, found := ix.search(r.key); found {
		ix.order = slices.Delete(ix.order, i, i+1)
	}
	return true
}

// search finds k in order: its position, or where it would go.
func (ix *Index) search(k sortKey) (int, bool) {
	return slices.BinarySearchFunc(ix.order, k, func(r *row, k sortKey) int { return compareKeys(r.key, k) })
}

// Rebuild replaces the index with what the metadata documents under the directory say, and rewrites the
// journal. It returns the number of recordings. Documents written while it walks the disk are kept.
func (ix *Index) Rebuild() (int, error) {
	ix.rebuildMu.Lock()
	defer ix.rebuildMu.Unlock()
	ix.mu.Lock()
	if ix.closed {
		ix.mu.Unlock()
		return 0, errors.New("api: index closed")
	}
	ix.touched = map[string]struct{}{}
	ix.mu.Unlock()

	found, err := ix.scan()

	ix.mu.Lock()
	defer ix.mu.Unlock()
	touched := ix.touched
	ix.touched = nil
	if err != nil {
		return 0, err
	}
	// What Observe or forget said during the walk is newer than what the walk may have read.
	for id := range touched {
		if r, ok := ix.byID[id]; ok {
			found[id] = r
		} else {
			delete(found, id)
		}
	}
	ix.byID = found
	ix.order = slices.SortedFunc(maps.Values(found), func(a, b *row) int { return compareKeys(a.key, b.key) })
	if ix.closed {
		return len(ix.order), nil
	}
	return len(ix.order), ix.rewrite()
}

// scan reads every metadata document under the directory. Hidden files and directories (the journal's
// .index, the recorder's temporary files) are skipped, and so are JSON files that are not documents.
func (ix *Index) scan() (map[string]*row, error) {
	found := map[string]*row{}
	fsys := os.DirFS(ix.dir) // follows dir itself if it is a symlink, unlike filepath.WalkDir
	err := fs.WalkDir(fsys, ".", func(rel string, d fs.DirEntry, err error) error {
		switch {
		case err != nil && rel == ".":
			return err
		case err != nil:
			ix.log.Warn("index rebuild: skipping unreadable path", "path", rel, "error", err)
			return nil
		case rel == ".":
			return nil
		case strings.HasPrefix(d.Name(), ".") && d.IsDir():
			return fs.SkipDir
		case strings.HasPrefix(d.Name(), ".") || !d.Type().IsRegular() || !strings.HasSuffix(rel, ".json"):
			return nil
		}
		b, err := fs.ReadFile(fsys, rel)
		if err != nil {
			ix.log.Warn("index rebuild: skipping unreadable document", "path", rel, "error", err)
			return nil
		}
		var doc recorder.Document
		if json.Unmarshal(b, &doc) != nil || doc.RecordingID == "" {
			ix.log.Debug("index rebuild: not a recording document", "path", rel)
			return nil
		}
		found[doc.RecordingID] = newRow(summarize(rel, doc))
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("api: index rebuild: %w", err)
	}
	return found, nil
}

// Get returns the recording with the given id.
func (ix *Index) Get(id string) (Summary, bool) {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	r, ok := ix.byID[id]
	if !ok {
		return Summary{}, false
	}
	return r.Summary, true
}

// Len returns the number of recordings.
func (ix *Index) Len() int {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	return len(ix.order)
}

// Query returns the recordings matching f, newest start first (ties: id descending), at most limit of them
// (DefaultLimit for 0, at most MaxLimit) after cursor, which is "" or a previous page's NextCursor. It scans
// every recording in the time range: linear, which is fine up to about a million.
func (ix *Index) Query(f Filter, limit int, cursor string) (Page, error) {
	if limit <= 0 {
		limit = DefaultLimit
	}
	limit = min(limit, MaxLimit)
	var after *sortKey // results come strictly before this key
	if cursor != "" {
		k, err := decodeCursor(cursor)
		if err != nil {
			return Page{}, err
		}
		after = &k
	}
	m := f.compile()
	page := Page{Recordings: []Summary{}}
	more := false

	ix.mu.RLock()
	defer ix.mu.RUnlock()
	lo, hi := 0, len(ix.order)
	if !f.From.IsZero() {
		lo, _ = ix.search(sortKey{start: startNanos(f.From)})
	}
	if !f.To.IsZero() {
		hi, _ = ix.search(sortKey{start: startNanos(f.To)})
	}
	cut := hi
	if after != nil {
		cut, _ = ix.search(*after)
	}
	for i := hi - 1; i >= lo; i-- {
		r := ix.order[i]
		if !m.match(r) {
			continue
		}
		page.Total++
		switch {
		case i >= cut:
		case len(page.Recordings) < limit:
			page.Recordings = append(page.Recordings, r.Summary)
		default:
			more = true
		}
	}
	if more {
		page.NextCursor = encodeCursor(keyOf(&page.Recordings[len(page.Recordings)-1]))
	}
	return page, nil
}

// Close closes the journal. The index stays readable; later changes are kept in memory only.
func (ix *Index) Close() error {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	ix.closed = true
	if ix.journal == nil {
		return nil
	}
	err := ix.journal.Close()
	ix.journal = nil
	return err
}

// digits keeps the decimal digits of s.
func digits(s string) string {
	return strings.Map(func(r rune) rune {
		if '0' <= r && r <= '9' {
			return r
		}
		return -1
	}, s)
}
