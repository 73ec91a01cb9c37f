package recorder

import (
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
)

// Limits of Spec.
const (
	DefaultSampleRate = 8000
	MaxChannels       = 16
	MaxSampleRate     = 384000
	maxIDLen          = 128
)

// Recordings hold call audio and personal data: readable by owner and group only.
const (
	dirPerm  = 0o750
	filePerm = 0o640
)

// ErrClosed is returned when a Recorder or a Recording is used after Close.
var ErrClosed = errors.New("recorder: closed")

// Option configures a Recorder.
type Option func(*Recorder)

// WithClock sets the clock used for default start times and document end times.
func WithClock(now func() time.Time) Option {
	return func(r *Recorder) {
		if now != nil {
			r.now = now
		}
	}
}

// WithLogger sets the logger (default slog.Default()).
func WithLogger(l *slog.Logger) Option {
	return func(r *Recorder) {
		if l != nil {
			r.log = l
		}
	}
}

// WithDocumentHook calls f after each metadata document is written, with the document's path relative to
// Config.Dir (slash-separated) and a copy of it: how an index of recordings stays current without scanning.
// f runs on the writer's goroutine and must be quick.
func WithDocumentHook(f func(relPath string, doc Document)) Option {
	return func(r *Recorder) { r.onDocument = f }
}

// Recorder creates recordings under one directory. One flusher goroutine serves every open recording, so
// thousands of calls cost one ticker.
type Recorder struct {
	cfg        Config
	now        func() time.Time
	log        *slog.Logger
	onDocument func(relPath string, doc Document)
	met        *metrics  // nil: no registerer given
	bufs       sync.Pool // *[]byte for sample-to-byte conversion, shared so idle recordings hold none
	manifest   *manifest // nil: disabled
	create     func(path string) (wavFile, error)
	freeSpace  func(dir string) (uint64, error)

	noAnalytics bool // recordings skip voice activity analysis (Config.DisableAnalytics)

	diskMu sync.Mutex                // serialises free-space readings and the logging of their transitions
	disk   atomic.Pointer[diskState] // the latest reading; nil before the first

	mu     sync.Mutex
	open   map[*Recording]struct{}
	closed bool
	stop   chan struct{}
	done   chan struct{}
}

// New creates cfg.Dir and starts the flusher.
func New(cfg Config, opts ...Option) (*Recorder, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	r := &Recorder{
		cfg:         cfg,
		noAnalytics: cfg.DisableAnalytics,
		now:         time.Now,
		log:         slog.Default(),
		bufs:        sync.Pool{New: func() any { return new([]byte) }},
		create:      createWAV,
		freeSpace:   statFree,
		open:        make(map[*Recording]struct{}),
		stop:        make(chan struct{}),
		done:        make(chan struct{}),
	}
	for _, o := range opts {
		o(r)
	}
	if err := os.MkdirAll(cfg.Dir, dirPerm); err != nil {
		return nil, fmt.Errorf("recorder: %w", err)
	}
	if cfg.Manifest.Enabled {
		r.manifest = &manifest{dir: cfg.Dir, now: r.now, heads: make(map[string]chainHead)}
		if kf := cfg.Manifest.SigningKeyFile; kf != "" {
			key, err := LoadSigningKey(kf)
			if err != nil {
				return nil, fmt.Errorf("recorder.manifest.signing_key_file: %w", err)
			}
			r.manifest.key = key
			pub, _ := key.Public().(ed25519.PublicKey)
			r.log.Info("signing manifest entries", "public_key", base64.StdEncoding.EncodeToString(pub))
			if st, err := os.Stat(kf); err == nil && st.Mode().Perm()&0o004 != 0 {
				r.log.Warn("the manifest signing key is readable by every user; chmod 600 it", "file", kf)
			}
		}
	}
	go r.flusher(cfg.FlushInterval)
	return r, nil
}

// wavFile is what a recording writes its audio through: an *os.File, or in tests one that fails.
type wavFile interface {
	WriteAt(b []byte, off int64) (int, error)
	Truncate(size int64) error
	Sync() error
	Close() error
}

// createWAV creates a recording's file. O_EXCL: a repeated ID must not truncate an existing recording.
func createWAV(path string) (wavFile, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, filePerm)
	if err != nil {
		return nil, err
	}
	return f, nil
}

func (r *Recorder) flusher(every time.Duration) {
	defer close(r.done)
	t := time.NewTicker(every)
	defer t.Stop()
	disk := time.NewTicker(diskCheckInterval)
	defer disk.Stop()
	var recs []*Recording
	for {
		select {
		case <-r.stop:
			return
		case <-disk.C:
			r.refreshDisk()
			continue
		case <-t.C:
		}
		r.mu.Lock()
		for rec := range r.open {
			recs = append(recs, rec)
		}
		r.mu.Unlock()
		for _, rec := range recs {
			// A failing disk fails every tick: say so once per recording; Close reports it too.
			if err := rec.Flush(); err != nil && rec.errLogged.CompareAndSwap(false, true) {
				r.log.Error("writing recording", "recording", rec.id, "error", err)
			}
		}
		clear(recs) // don't keep closed recordings alive until the next tick
		recs = recs[:0]
	}
}

// Spec describes a recording to start.
type Spec struct {
	ID         string    // optional; default: a UUIDv7 (time-sortable); letters, digits, '.', '_', '-'
	Channels   int       // 1..MaxChannels
	SampleRate int       // default DefaultSampleRate
	Start      time.Time // timeline origin: sample 0 is this instant; default now
	Document   *Document // initial metadata document, written at once with State "recording" so a crash leaves a record
}

// Start creates the WAV file and the initial document of a new recording. Spec.Document is copied, not
// kept; without one a minimal document is written. Like Accepting, it refuses with a *DiskLowError while
// the disk is below Config.MinFreeBytes: callers should ask Accepting before they take the session.
func (r *Recorder) Start(spec Spec) (*Recording, error) {
	if spec.SampleRate == 0 {
		spec.SampleRate = DefaultSampleRate
	}
	if spec.Start.IsZero() {
		spec.Start = r.now()
	}
	if spec.ID == "" {
		id, err := newID()
		if err != nil {
			return nil, err
		}
		spec.ID = id
	}
	if err := spec.validate(); err != nil {
		return nil, err
	}
	if err := r.Accepting(); err != nil {
		return nil, err
	}

	rec := r.newRecording(spec)
	if err := os.MkdirAll(filepath.Dir(rec.wavPath), dirPerm); err != nil {
		return nil, fmt.Errorf("recorder: %w", err)
	}
	f, err := r.create(rec.wavPath)
	if err != nil {
		return nil, fmt.Errorf("recorder: %w", err)
	}
	rec.f = f
	if _, err := f.WriteAt(rec.hdr[:], 0); err != nil {
		return nil, rec.abandon(fmt.Errorf("recorder: %s: %w", rec.id, err))
	}
	rec.fileEnd = wavHeaderLen

	doc := rec.initial
	doc.State = StateRecording
	doc.Audio = rec.audioInfo(0)
	// Not synced: this document only marks a recording in progress, a machine crash may take it, and an
	// fsync here would sit between a CTI event and the activation re-INVITE (milliseconds under load).
	if err := r.saveDocument(rec.relJSON(), &doc, false, nil); err != nil {
		return nil, rec.abandon(err)
	}

	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return nil, rec.abandon(ErrClosed)
	}
	r.open[rec] = struct{}{}
	return rec, nil
}

func (s Spec) validate() error {
	var errs []error
	if !ValidID(s.ID) {
		errs = append(errs, fmt.Errorf("recorder: id %q: want 1-%d letters, digits, '.', '_' or '-', not starting with '.'", s.ID, maxIDLen))
	}
	if s.Channels < 1 || s.Channels > MaxChannels {
		errs = append(errs, fmt.Errorf("recorder: %d channels: want 1-%d", s.Channels, MaxChannels))
	}
	if s.SampleRate < 1 || s.SampleRate > MaxSampleRate {
		errs = append(errs, fmt.Errorf("recorder: sample rate %d: want 1-%d", s.SampleRate, MaxSampleRate))
	}
	return errors.Join(errs...)
}

// ValidID says whether id can name a recording: it becomes a file name, so only letters, digits, '.', '_'
// and '-', not starting with '.', and it must never reach outside Dir.
func ValidID(id string) bool {
	if id == "" || len(id) > maxIDLen || id[0] == '.' {
		return false
	}
	for _, c := range []byte(id) {
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '.', c == '_', c == '-':
		default:
			return false
		}
	}
	return true
}

func newID() (string, error) {
	id, err := uuid.NewV7()
	if err != nil {
		return "", fmt.Errorf("recorder: recording id: %w", err)
	}
	return id.String(), nil
}

// WriteDocument writes a metadata-only record, such as a session that never activated: no WAV. It fills an
// empty RecordingID (UUIDv7), Start and End (now) and DurationSec into doc. The write is atomic (temporary
// file and rename), and works after Close too, so sessions ending during shutdown still leave a record.
func (r *Recorder) WriteDocument(doc *Document) error {
	if doc == nil {
		return errors.New("recorder: nil document")
	}
	id := doc.RecordingID
	if id == "" {
		var err error
		if id, err = newID(); err != nil {
			return err
		}
	}
	if !ValidID(id) {
		return fmt.Errorf("recorder: recording id %q: not usable as a file name", id)
	}
	now := r.now()
	doc.fill(id, now, now)
	return r.saveDocument(relPath(doc.Start, id)+".json", doc, true, nil)
}

// saveDocument writes a document (rel is its path under Dir), adds a final one (any state but "recording")
// to its day's manifest with audio, the WAV as finished, if there is one, and tells the hook. The hook hears
// of a document on disk even if the manifest append failed; the error is returned all the same.
func (r *Recorder) saveDocument(rel string, doc *Document, sync bool, audio *ManifestFile) error {
	written, err := writeJSON(filepath.Join(r.cfg.Dir, filepath.FromSlash(rel)), doc, sync)
	if err != nil {
		r.countWriteError()
		return err
	}
	r.countDocument(doc)
	if doc.State != StateRecording {
		if err = r.recordFinal(rel, doc, written, audio); err != nil {
			r.countWriteError()
		}
	}
	if r.onDocument != nil {
		r.onDocument(rel, *doc)
	}
	return err
}

// Close stops the flusher and finishes every recording still open: all buffered audio is written and the
// files closed. Their documents are left to the callers' Recording.Close, which still works afterwards.
func (r *Recorder) Close() error {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil
	}
	r.closed = true
	recs := make([]*Recording, 0, len(r.open))
	for rec := range r.open {
		recs = append(recs, rec)
	}
	clear(r.open)
	r.mu.Unlock()

	close(r.stop)
	<-r.done
	var errs []error
	for _, rec := range recs {
		if err := rec.flush(flushFinal, 0); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Open returns the number of open recordings.
func (r *Recorder) Open() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.open)
}

func (r *Recorder) isClosed() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.closed
}

func (r *Recorder) forget(rec *Recording) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.open, rec)
}

// buf returns a pooled byte slice of length n.
func (r *Recorder) buf(n int) *[]byte {
	bp, ok := r.bufs.Get().(*[]byte)
	if !ok {
		bp = new([]byte)
	}
	if cap(*bp) < n {
		*bp = make([]byte, n)
	}
	*bp = (*bp)[:n]
	return bp
}

// relPath is where a recording's files go, relative to Dir and without extension: YYYY/MM/DD/id, UTC.
func relPath(start time.Time, id string) string {
	return path.Join(start.UTC().Format("2006/01/02"), id)
}

// Recording is one multi-channel WAV file being written, and its document. It is safe for concurrent use:
// each RTP stream writes its own Channel from its own goroutine while the flusher writes to disk.
//
// Audio lives on a timeline of sample frames. Frames before the frontier are in the file; frames from the
// frontier to the head (the newest frame any channel wrote) wait in an interleaved buffer, where reordered
// packets land in place, duplicates overwrite and gaps stay zero, i.e. silence. A flush moves the frontier
// up to head-Lag: a slower stream or a late packet within Lag still lands.
type Recording struct {
	r         *Recorder
	id        string
	wavPath   string
	jsonPath  string
	relWAV    string
	rate      int
	nch       int
	start     time.Time
	lag       int64 // frames
	maxAhead  int64 // frames; lag+chunk
	chunk     int64 // most frames WriteSamples places at once, so one write always fits in maxAhead
	maxFrames int64 // frames that fit the 32-bit WAV sizes
	initial   Document
	channels  []Channel
	errLogged atomic.Bool
	closing   atomic.Bool // Close was called

	// File state, guarded by flushMu. flushMu is taken before mu, and disk I/O runs with only flushMu held,
	// so writers never wait for a slow disk.
	flushMu sync.Mutex
	f       wavFile // nil once finished
	hdr     [wavHeaderLen]byte
	fileEnd int64          // bytes in the file
	frames  int64          // frames the header declares
	err     error          // first write error
	voice   *voiceActivity // analytics of the frames written so far; nil when off

	// Timeline state, guarded by mu.
	mu       sync.Mutex
	frontier int64   // frames [0, frontier) have gone to the file
	head     int64   // one past the newest frame written; head >= frontier
	pending  []int16 // interleaved frames [frontier, head)
	closed   bool    // no more audio accepted
	full     bool    // the size limit was reached (logged once)
}

func (r *Recorder) newRecording(spec Spec) *Recording {
	rel := relPath(spec.Start, spec.ID)
	base := filepath.Join(r.cfg.Dir, filepath.FromSlash(rel))
	rec := &Recording{
		r:         r,
		id:        spec.ID,
		wavPath:   base + ".wav",
		jsonPath:  base + ".json",
		relWAV:    rel + ".wav",
		rate:      spec.SampleRate,
		nch:       spec.Channels,
		start:     spec.Start,
		lag:       frames(r.cfg.Lag, spec.SampleRate),
		maxFrames: maxDataBytes / int64(spec.Channels*bytesPerSample),
		hdr:       wavHeader(spec.SampleRate, spec.Channels, 0),
	}
	rec.chunk = max(frames(r.cfg.MaxAhead, spec.SampleRate)-rec.lag, 1)
	rec.maxAhead = rec.lag + rec.chunk
	if !r.noAnalytics {
		rec.voice = newVoiceActivity(spec.SampleRate, spec.Channels)
	}
	rec.channels = make([]Channel, spec.Channels)
	for i := range rec.channels {
		rec.channels[i].rec, rec.channels[i].index = rec, i
	}
	if spec.Document != nil {
		rec.initial = *spec.Document
	}
	rec.initial.RecordingID = spec.ID
	if rec.initial.Start.IsZero() {
		rec.initial.Start = spec.Start
	}
	return rec
}

// abandon undoes a Start that failed half-way.
func (rec *Recording) abandon(err error) error {
	if rec.f != nil {
		rec.f.Close()
		rec.f = nil
	}
	os.Remove(rec.wavPath)
	os.Remove(rec.jsonPath)
	return err
}

// Discard closes the recording and deletes its files: for a recording opened in anticipation (an activation
// the SRC then refused) that must not leave an empty WAV behind. It returns ErrClosed after Close or Discard.
func (rec *Recording) Discard() error {
	if !rec.closing.CompareAndSwap(false, true) {
		return ErrClosed
	}
	rec.mu.Lock()
	rec.closed = true // later writes are counted as dropped
	rec.mu.Unlock()
	rec.r.forget(rec)
	rec.flushMu.Lock()
	defer rec.flushMu.Unlock()
	return rec.abandon(nil)
}

// ID returns the recording ID.
func (rec *Recording) ID() string { return rec.id }

// WAVPath returns the path of the WAV file.
func (rec *Recording) WAVPath() string { return rec.wavPath }

// Channel returns channel i, or nil if i is out of range.
func (rec *Recording) Channel(i int) *Channel {
	if i < 0 || i >= len(rec.channels) {
		return nil
	}
	return &rec.channels[i]
}

// Flush writes every frame older than the newest minus Lag and rewrites the header. The flusher calls it
// every FlushInterval; calling it by hand is for tests and shutdown paths.
func (rec *Recording) Flush() error {
	return rec.flush(flushAged, 0)
}

// Close writes all buffered audio, the final header, then the document. It fills into doc what the
// recorder owns: RecordingID, Audio (with the finished file's SHA-256) and the voice activity fields of
// Analytics (see fillAnalytics) always; Start, End (now), DurationSec (End-Start) and State ("completed")
// when empty. A nil doc means the initial document, completed. If any write of the recording failed (a full
// disk), the document says so whatever the caller asked: State "failed" and a "write_failed" event with the
// error; and Close returns that error, so a damaged file is never mistaken for a good one.
func (rec *Recording) Close(doc *Document) error {
	if !rec.closing.CompareAndSwap(false, true) {
		return ErrClosed
	}
	_ = rec.flush(flushFinal, 0) // the error, if any, is in rec.err
	rec.r.forget(rec)

	rec.flushMu.Lock()
	err, n := rec.err, rec.frames
	rec.flushMu.Unlock()

	if doc == nil {
		d := rec.initial
		doc = &d
		doc.State = StateCompleted
	}
	if doc.State == "" {
		doc.State = StateCompleted
	}
	rec.fillAnalytics(doc)
	// Read the file back for its checksum: it was just written, so it comes from the page cache.
	audio, derr := digestFile(rec.wavPath)
	if derr != nil {
		derr = fmt.Errorf("recorder: %s: checksum: %w", rec.id, derr)
		err = errors.Join(err, derr)
	}

	doc.RecordingID = rec.id // the document must name the file it sits beside
	now := rec.r.now()
	doc.fill(rec.id, rec.start, now)
	doc.Audio = rec.audioInfo(n)
	var listed *ManifestFile
	if derr == nil {
		doc.Audio.SHA256 = audio.SHA256
		audio.Path = rec.relWAV
		listed = &audio
	}
	if err != nil {
		doc.State = StateFailed
		doc.Events = append(doc.Events, Event{At: now, Type: "write_failed", Detail: err.Error()})
	}
	return errors.Join(err, rec.r.saveDocument(rec.relJSON(), doc, true, listed))
}

// fillAnalytics sets the voice activity fields of doc.Analytics, creating it if need be; its other fields
// (MOS, media errors) are the caller's and are kept. It fills a copy, so an Analytics the caller shares (the
// one of Spec.Document, say) is not changed behind its back. A recording without samples gets none.
func (rec *Recording) fillAnalytics(doc *Document) {
	rec.flushMu.Lock()
	defer rec.flushMu.Unlock()
	if rec.voice == nil || rec.voice.samples == 0 {
		return
	}
	a := new(Analytics)
	if doc.Analytics != nil {
		*a = *doc.Analytics
	}
	rec.voice.finish(a)
	doc.Analytics = a
}

// relJSON is the document's path relative to Config.Dir.
func (rec *Recording) relJSON() string { return strings.TrimSuffix(rec.relWAV, ".wav") + ".json" }

func (rec *Recording) audioInfo(samples int64) *AudioInfo {
	return &AudioInfo{
		File:       rec.relWAV,
		Format:     FormatWAVPCM16,
		SampleRate: rec.rate,
		Channels:   rec.nch,
		Samples:    samples,
	}
}

type flushMode int

const (
	flushAged  flushMode = iota // up to head-lag: the periodic flush
	flushUpTo                   // up to a given frame, to make room (MaxAhead)
	flushFinal                  // everything; accept no more audio and close the file
)

// flush moves frames from the buffer to the file. The buffer is converted and shifted under mu; the disk
// writes happen after mu is released. The frontier moves even if a write fails, so a failing disk loses
// audio but never grows memory; a later successful write leaves a hole that reads as silence.
func (rec *Recording) flush(mode flushMode, to int64) error {
	rec.flushMu.Lock()
	defer rec.flushMu.Unlock()
	if rec.f == nil {
		return nil
	}

	rec.mu.Lock()
	switch mode {
	case flushAged:
		to = rec.head - rec.lag
	case flushFinal:
		to = rec.head
		rec.closed = true
	}
	from := rec.frontier
	var data *[]byte
	if to > from {
		data = rec.take(to)
	}
	rec.mu.Unlock()

	var err error
	if data != nil {
		if rec.voice != nil {
			// Outside mu, like the disk write: writers never wait for the analysis. Before the write, while take
			// has just left the bytes in cache (the write's copy into the page cache evicts them). What lies past
			// the data is a hole in the file, silence.
			rec.voice.write(*data)
			rec.voice.silence(to - from - int64(len(*data)/(rec.nch*bytesPerSample)))
		}
		err = rec.write(from, to, *data)
		rec.r.bufs.Put(data)
	}
	if mode == flushFinal {
		err = errors.Join(err, rec.f.Sync(), rec.f.Close())
		rec.f = nil
	}
	if err != nil {
		err = fmt.Errorf("recorder: %s: %w", rec.id, err)
		rec.r.countWriteError()
		if rec.err == nil {
			rec.err = err
		}
	}
	return err
}

// take moves frames [frontier, to) out of the buffer as little-endian bytes. Frames past head, a gap at the
// end nobody wrote into, are not in the buffer: they become a hole in the file. Called with mu held.
func (rec *Recording) take(to int64) *[]byte {
	n := int(min(to, rec.head)-rec.frontier) * rec.nch
	bp := rec.r.buf(n * bytesPerSample)
	encodePCM(*bp, rec.pending[:n])
	if rec.head > to {
		// Shift in place rather than reslice, so the buffer's capacity is reused forever.
		rec.pending = rec.pending[:copy(rec.pending, rec.pending[n:])]
	} else {
		rec.pending = rec.pending[:0]
		rec.head = to
	}
	rec.frontier = to
	return bp
}

// write appends frames [from, to) to the file, data holding the first of them, and then the header: data
// first, so the header never claims samples that are not there. Called with flushMu held.
func (rec *Recording) write(from, to int64, data []byte) error {
	align := int64(rec.nch * bytesPerSample)
	var errs []error
	if len(data) > 0 {
		off := wavHeaderLen + from*align
		n, err := rec.f.WriteAt(data, off)
		rec.fileEnd = max(rec.fileEnd, off+int64(n))
		errs = append(errs, err)
	}
	// A gap at the end: extend the file to the size the header will declare. The hole reads as zeros and
	// takes no disk space on most file systems, so even an hour-long jump costs nothing.
	if size := wavHeaderLen + to*align; rec.fileEnd < size {
		err := rec.f.Truncate(size)
		if err == nil {
			rec.fileEnd = size
		}
		errs = append(errs, err)
	}
	setWAVSizes(&rec.hdr, uint32(to*align)) // to <= maxFrames, so this fits
	_, err := rec.f.WriteAt(rec.hdr[:], 0)
	rec.frames = to
	return errors.Join(append(errs, err)...)
}

// Channel is one channel of a recording; it is what an RTP stream writes into.
type Channel struct {
	rec     *Recording
	index   int
	late    atomic.Int64
	dropped atomic.Int64
}

// SamplePosition returns the timeline position of wall-clock t: the sample index, rounded, counted from
// the recording's start (negative before it).
func (c *Channel) SamplePosition(t time.Time) int64 {
	return frames(t.Sub(c.rec.start), c.rec.rate)
}

// frames converts a duration to a number of sample frames without overflowing for any duration.
func frames(d time.Duration, rate int) int64 {
	sec, frac := int64(d/time.Second), d%time.Second
	return sec*int64(rate) + int64(math.Round(float64(frac)*float64(rate)/float64(time.Second)))
}

// SampleRate is the recording's sample rate.
func (c *Channel) SampleRate() int { return c.rec.rate }

// Late returns how many samples arrived for a part of the timeline already written (or before 0), and were
// dropped.
func (c *Channel) Late() int64 { return c.late.Load() }

// Dropped returns how many samples were dropped because they arrived after the recording was closed or lie
// beyond the largest WAV file.
func (c *Channel) Dropped() int64 { return c.dropped.Load() }

// WriteSamples places pcm at timeline position pos; pcm is copied. What lands before the written part of
// the timeline is dropped and counted as late.
func (c *Channel) WriteSamples(pos int64, pcm []int16) {
	rec := c.rec
	// Cut what lies before 0 or past the largest file here, while pos may still be anything, so that no sum
	// below can overflow.
	if n := int64(len(pcm)); pos < 0 {
		k := n
		if pos > -n {
			k = -pos
		}
		c.late.Add(k)
		pos, pcm = pos+k, pcm[k:]
	}
	if room := rec.maxFrames - pos; int64(len(pcm)) > room {
		k := int64(len(pcm)) - max(room, 0)
		c.dropped.Add(k)
		pcm = pcm[:int64(len(pcm))-k]
		rec.mu.Lock()
		if !rec.full {
			rec.full = true
			rec.r.log.Warn("recording reached the WAV size limit; dropping further audio", "recording", rec.id)
		}
		rec.mu.Unlock()
	}
	for len(pcm) > 0 {
		n := min(len(pcm), int(rec.chunk))
		c.place(pos, pcm[:n])
		pos += int64(n)
		pcm = pcm[n:]
	}
}

// place writes at most rec.chunk samples.
func (c *Channel) place(pos int64, pcm []int16) {
	rec := c.rec
	rec.mu.Lock()
	defer rec.mu.Unlock()
	for {
		if rec.closed {
			c.dropped.Add(int64(len(pcm)))
			return
		}
		if pos < rec.frontier {
			k := min(rec.frontier-pos, int64(len(pcm)))
			c.late.Add(k)
			pos, pcm = pos+k, pcm[k:]
			if len(pcm) == 0 {
				return
			}
		}
		if pos+int64(len(pcm))-rec.frontier <= rec.maxAhead {
			break
		}
		// Too far ahead (a timestamp jump, or a stalled flusher): write out up to pos-Lag. What lies
		// between the buffered audio and there becomes silence. flush takes flushMu, which comes before mu.
		rec.mu.Unlock()
		_ = rec.flush(flushUpTo, pos-rec.lag) // errors are kept in rec.err for Close
		rec.mu.Lock()
	}

	end := pos + int64(len(pcm))
	if end > rec.head {
		// Grow with zeros: slots no channel writes stay silent.
		old, need := len(rec.pending), int(end-rec.frontier)*rec.nch
		rec.pending = slices.Grow(rec.pending, need-old)[:need]
		clear(rec.pending[old:])
		rec.head = end
	}
	i := int(pos-rec.frontier)*rec.nch + c.index
	for _, s := range pcm {
		rec.pending[i] = s
		i += rec.nch
	}
}

// writeJSON writes v to path atomically: a crash leaves the old file or the new one, never half of one.
// sync makes it durable before it returns (a power cut cannot take it either). It returns the bytes written.
func writeJSON(path string, v any, sync bool) ([]byte, error) {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("recorder: %w", err)
	}
	b = append(b, '\n')
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, dirPerm); err != nil {
		return nil, fmt.Errorf("recorder: %w", err)
	}
	f, err := os.CreateTemp(dir, ".*.json.tmp")
	if err != nil {
		return nil, fmt.Errorf("recorder: %w", err)
	}
	_, err = f.Write(b)
	err = errors.Join(err, f.Chmod(filePerm))
	if sync {
		err = errors.Join(err, f.Sync())
	}
	err = errors.Join(err, f.Close())
	if err == nil {
		err = os.Rename(f.Name(), path)
	}
	if err != nil {
		os.Remove(f.Name())
		return nil, fmt.Errorf("recorder: writing %s: %w", path, err)
	}
	return b, nil
}
