package delivery

import (
	"container/heap"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/siphook/siphook/recorder"
)

// ErrClosed is returned by Enqueue after Close.
var ErrClosed = errors.New("delivery: closed")

// Option configures a Delivery.
type Option func(*Delivery)

// WithLogger sets the logger (default slog.Default()).
func WithLogger(l *slog.Logger) Option {
	return func(d *Delivery) {
		if l != nil {
			d.log = l
		}
	}
}

// WithRegisterer registers the delivery metrics there (see metrics.go).
func WithRegisterer(reg prometheus.Registerer) Option {
	return func(d *Delivery) { d.reg = reg }
}

// WithClock sets the clock of job ages: their creation time, stuck_after, the oldest-job gauge and the
// webhooks' timestamps. Backoff waits use the real clock.
func WithClock(now func() time.Time) Option {
	return func(d *Delivery) {
		if now != nil {
			d.now = now
		}
	}
}

// WithRemover sets what delete_local does once every target has a recording: by default it deletes the WAV
// (doc.Audio.File) and the JSON (docRel) under the recordings directory. A crash can make it run again
// for the same recording, so it must accept files that are already gone.
func WithRemover(f func(docRel string, doc recorder.Document) error) Option {
	return func(d *Delivery) {
		if f != nil {
			d.remove = f
		}
	}
}

// Delivery ships finalised recordings to the targets and events to the webhooks from a durable queue of
// job files under <recordings>/.queue/.
type Delivery struct {
	cfg     Config
	dir     string // recordings directory
	qdir    string // its .queue
	targets map[string]Target
	hooks   map[string]*webhook
	names   []string // targets, then webhooks, in configuration order: the label values
	log     *slog.Logger
	now     func() time.Time
	remove  func(docRel string, doc recorder.Document) error
	reg     prometheus.Registerer
	met     *metrics

	// Test hooks, set before Run.
	rnd  func(n int64) int64 // uniform in [0, n); called with mu held
	tick <-chan time.Time    // retry-buffer runs; nil: a ticker of cfg.RetryInterval

	fileMu sync.Mutex // held over job file writes and removals and the state change they go with

	mu       sync.Mutex
	jobs     map[string]*job // by file name; done jobs (delete_local) included
	ready    jobHeap         // jobs waiting for a worker, earliest first
	changed  chan struct{}   // closed (and replaced) when workers should look at ready again
	batches  map[string]*batch
	foreign  map[string]int // recording id → job files on disk for targets not configured now
	closed   bool
	running  bool
	cancel   context.CancelFunc
	runDone  chan struct{}
	lastTick time.Time
}

// job is a job file's state in memory.
type job struct {
	name  string
	rec   *jobFile
	state jobState
	gen   int       // bumped when Enqueue rewrites the job; a finishing attempt of an older gen does not count
	due   time.Time // when ready: the earliest next attempt (real clock)
	index int       // in the ready heap

	attempts   int  // failed attempts in the current fast phase
	fromBuffer bool // ready because a retry-buffer run released it
	lastTry    time.Time
	lastErr    error
	wavDone    bool // the WAV is on the target and verified; only the JSON is left
	integrity  bool // the WAV's hash mismatch was reported
	stuck      bool // logged as stuck
}

type jobState int

const (
	stateReady    jobState = iota // in the ready heap
	stateRunning                  // a worker has it
	stateBuffered                 // in the retry buffer
	stateDone                     // delete_local: delivered, waiting for the recording's other targets
)

// batch is a retry-buffer run for one target or webhook.
type batch struct {
	out       int // jobs of the run not finished yet
	tried     int
	delivered int
}

// New opens the queue in recordingsDir/.queue (creating it) and loads its jobs. Job files that cannot be
// read are logged and renamed to *.bad; jobs of targets or webhooks no longer configured are left alone.
// cfg.Targets is not used here (NewTargets builds the targets from it); cfg.Webhooks are.
func New(cfg Config, recordingsDir string, targets []Target, opts ...Option) (*Delivery, error) {
	qc := cfg
	qc.Targets, qc.DeleteLocal = nil, false // validated by the caller's NewTargets; checked against targets below
	var errs []error
	if err := qc.Validate(); err != nil {
		errs = append(errs, err)
	}
	d := &Delivery{
		cfg:     cfg,
		dir:     recordingsDir,
		qdir:    filepath.Join(recordingsDir, queueDir),
		targets: map[string]Target{},
		hooks:   map[string]*webhook{},
		log:     slog.Default(),
		now:     time.Now,
		rnd:     rand.Int64N,
		jobs:    map[string]*job{},
		changed: make(chan struct{}),
		batches: map[string]*batch{},
		foreign: map[string]int{},
	}
	d.remove = d.removeLocal
	for _, o := range opts {
		o(d)
	}
	for _, t := range targets {
		n := t.Name()
		switch {
		case !validName(n):
			errs = append(errs, fmt.Errorf("delivery: target name %q: must be 1-64 letters, digits, '_' or '-'", n))
		case d.targets[n] != nil:
			errs = append(errs, fmt.Errorf("delivery: target name %q used twice", n))
		default:
			d.targets[n] = t
			d.names = append(d.names, n)
		}
	}
	for _, w := range cfg.Webhooks {
		if d.targets[w.Name] != nil {
			errs = append(errs, fmt.Errorf("delivery: webhook name %q is also a target's", w.Name))
			continue
		}
		d.hooks[w.Name] = newWebhook(w)
		d.names = append(d.names, w.Name)
	}
	if cfg.DeleteLocal && len(targets) == 0 {
		errs = append(errs, errors.New("delivery: delete_local needs at least one target"))
	}
	if recordingsDir == "" {
		errs = append(errs, errors.New("delivery: no recordings directory"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	d.met = newMetrics(d)
	if d.reg != nil {
		if err := d.met.register(d.reg); err != nil {
			return nil, fmt.Errorf("delivery: metrics: %w", err)
		}
	}
	if err := os.MkdirAll(d.qdir, queueDirPerm); err != nil {
		return nil, fmt.Errorf("delivery: %w", err)
	}
	if err := d.load(); err != nil {
		return nil, err
	}
	return d, nil
}

// load reads the queue directory.
func (d *Delivery) load() error {
	entries, err := os.ReadDir(d.qdir)
	if err != nil {
		return fmt.Errorf("delivery: %w", err)
	}
	now := time.Now()
	foreign := map[string]int{} // target → jobs kept on disk
	for _, e := range entries {
		name := e.Name()
		switch {
		case e.IsDir() || strings.HasSuffix(name, badExt):
			continue
		case isTempName(name):
			os.Remove(filepath.Join(d.qdir, name)) // a write a crash interrupted: the job it replaced (if any) is intact
			continue
		}
		path := filepath.Join(d.qdir, name)
		data, err := readJobFile(path)
		var rec *jobFile
		if err == nil {
			rec, err = decodeJob(name, data)
		}
		if err != nil {
			if !errors.Is(err, errBadJob) {
				return fmt.Errorf("delivery: reading %s: %w", path, err)
			}
			bad := path + badExt
			d.log.Error("delivery: unusable job file moved aside", "file", name, "moved_to", filepath.Base(bad), "err", err)
			if rerr := os.Rename(path, bad); rerr != nil {
				return fmt.Errorf("delivery: moving aside %s: %w", path, rerr)
			}
			continue
		}
		if (rec.Kind == kindTarget && d.targets[rec.Target] == nil) || (rec.Kind == kindWebhook && d.hooks[rec.Target] == nil) {
			foreign[rec.Target]++
			if rec.Kind == kindTarget {
				d.foreign[rec.RecordingID]++
			}
			continue
		}
		j := &job{name: name, rec: rec, due: now}
		if rec.Done {
			j.state = stateDone
		} else {
			j.state = stateReady
			heap.Push(&d.ready, j)
		}
		d.jobs[name] = j
	}
	for t, n := range foreign {
		d.log.Warn("delivery: jobs of a target or webhook that is not configured are kept in the queue, not sent",
			"target", t, "jobs", n)
	}
	if n := len(d.jobs); n > 0 {
		d.log.Info("delivery: queue loaded", "jobs", n, "pending", d.Pending())
	}
	return nil
}

// Enqueue queues a finalised recording: one job per target (the WAV, if doc.Audio names one, then the
// document at docRel, a path relative to the recordings directory), one per webhook that wants the event
// of doc.State. The job files are on disk (fsync'd) when it returns. Enqueuing a recording again rewrites
// its jobs: they are sent again, whole.
func (d *Delivery) Enqueue(docRel string, doc recorder.Document) error {
	if !recorder.ValidID(doc.RecordingID) {
		return fmt.Errorf("delivery: bad recording id %q", doc.RecordingID)
	}
	if !validObjectPath(docRel) {
		return fmt.Errorf("delivery: bad document path %q", docRel)
	}
	if doc.Audio != nil && doc.Audio.File != "" && !validObjectPath(doc.Audio.File) {
		return fmt.Errorf("delivery: bad audio path %q", doc.Audio.File)
	}
	created := d.now()
	var recs []*jobFile
	for _, n := range d.names {
		rec := &jobFile{Version: jobVersion, Target: n, RecordingID: doc.RecordingID, DocRel: docRel, Created: created, Document: doc}
		if d.targets[n] != nil {
			rec.Kind = kindTarget
		} else {
			ev, wire := eventFor(doc.State)
			if ev == "" || !d.hooks[n].wants(ev) {
				continue
			}
			rec.Kind, rec.Event = kindWebhook, wire
		}
		recs = append(recs, rec)
	}
	if len(recs) == 0 {
		return nil
	}
	d.fileMu.Lock()
	defer d.fileMu.Unlock()
	d.mu.Lock()
	closed := d.closed
	d.mu.Unlock()
	if closed {
		return ErrClosed
	}
	var errs []error
	written := recs[:0]
	for _, rec := range recs {
		data, err := json.Marshal(rec)
		if err == nil {
			err = writeFileSync(d.qdir, rec.fileName(), data)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("delivery: writing job %s: %w", rec.fileName(), err))
			continue
		}
		written = append(written, rec)
	}
	if err := syncDir(d.qdir); err != nil {
		errs = append(errs, fmt.Errorf("delivery: %w", err))
	}
	d.mu.Lock()
	for _, rec := range written {
		d.put(rec)
	}
	d.wakeLocked()
	d.mu.Unlock()
	return errors.Join(errs...)
}

// put makes rec a ready job, replacing the job of the same name. mu is held.
func (d *Delivery) put(rec *jobFile) {
	name := rec.fileName()
	j := d.jobs[name]
	if j == nil {
		j = &job{name: name, rec: rec, state: stateReady, due: time.Now()}
		d.jobs[name] = j
		heap.Push(&d.ready, j)
		return
	}
	d.leaveBatch(j, false, false)
	j.rec, j.gen = rec, j.gen+1
	j.attempts, j.lastErr, j.wavDone, j.integrity, j.stuck = 0, nil, false, false, false
	j.due = time.Now()
	switch j.state {
	case stateReady:
		heap.Fix(&d.ready, j.index)
	case stateRunning: // its worker sees the new gen when it finishes and puts it back
	default:
		j.state = stateReady
		heap.Push(&d.ready, j)
	}
}

// Pending is the number of jobs not delivered yet (done jobs waiting for a recording's other targets are
// not counted).
func (d *Delivery) Pending() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	n := 0
	for _, j := range d.jobs {
		if j.state != stateDone {
			n++
		}
	}
	return n
}

// Run sends jobs with cfg.Workers workers and runs the retry buffer every cfg.RetryInterval until ctx ends
// or Close is called; it returns when the workers have stopped. Attempts cut short are retried on the next
// Run (at-least-once). Run does nothing after Close, or while another Run is going.
func (d *Delivery) Run(ctx context.Context) {
	d.mu.Lock()
	if d.closed || d.running {
		d.mu.Unlock()
		return
	}
	ctx, cancel := context.WithCancel(ctx)
	d.running, d.cancel, d.runDone = true, cancel, make(chan struct{})
	done := d.runDone
	d.mu.Unlock()
	defer func() {
		cancel()
		d.mu.Lock()
		d.running, d.cancel = false, nil
		d.mu.Unlock()
		close(done)
	}()

	d.sweepDone()
	var wg sync.WaitGroup
	for range d.cfg.Workers {
		wg.Go(func() { d.worker(ctx) })
	}
	tick := d.tick
	if tick == nil {
		t := time.NewTicker(d.cfg.RetryInterval)
		defer t.Stop()
		tick = t.C
	}
	for {
		select {
		case <-ctx.Done():
			wg.Wait()
			return
		case <-tick:
			d.releaseBuffers()
			d.sweepDone()
			d.checkStuck()
		}
	}
}

// Close stops Run (waiting for it) and refuses further Enqueues. The queue stays on disk for the next New.
func (d *Delivery) Close() error {
	d.mu.Lock()
	d.closed = true
	cancel, done := d.cancel, d.runDone
	d.mu.Unlock()
	if cancel != nil {
		cancel()
		<-done
	}
	return nil
}

// wakeLocked tells waiting workers to look at the ready heap again. mu is held.
func (d *Delivery) wakeLocked() {
	close(d.changed)
	d.changed = make(chan struct{})
}

func (d *Delivery) worker(ctx context.Context) {
	for {
		j, t := d.take(ctx)
		if j == nil {
			return
		}
		res := d.attempt(ctx, j, t)
		d.finish(ctx, j, t, res)
	}
}

// task is what an attempt needs of its job, copied under mu.
type task struct {
	rec     *jobFile
	gen     int
	wavDone bool
}

// take waits for a due ready job and marks it running; nil when ctx ends.
func (d *Delivery) take(ctx context.Context) (*job, task) {
	for {
		d.mu.Lock()
		if ctx.Err() != nil {
			d.mu.Unlock()
			return nil, task{}
		}
		wait := time.Duration(-1)
		if len(d.ready) > 0 {
			j := d.ready[0]
			if wait = time.Until(j.due); wait <= 0 {
				heap.Pop(&d.ready)
				j.state = stateRunning
				t := task{rec: j.rec, gen: j.gen, wavDone: j.wavDone}
				d.mu.Unlock()
				return j, t
			}
		}
		changed := d.changed
		d.mu.Unlock()
		var timer *time.Timer
		var fire <-chan time.Time
		if wait > 0 {
			timer = time.NewTimer(wait)
			fire = timer.C
		}
		select {
		case <-ctx.Done():
		case <-changed:
		case <-fire:
		}
		if timer != nil {
			timer.Stop()
		}
	}
}

// result is what an attempt did.
type result struct {
	err     error
	bytes   int64
	wavDone bool
}

// attempt sends a job once.
func (d *Delivery) attempt(ctx context.Context, j *job, t task) result {
	if t.rec.Kind == kindWebhook {
		n, err := d.hooks[t.rec.Target].send(ctx, t.rec, d.now())
		return result{err: err, bytes: n}
	}
	tgt := d.targets[t.rec.Target]
	var res result
	if a := t.rec.Document.Audio; a != nil && a.File != "" && !t.wavDone {
		n, err := d.sendFile(ctx, tgt, a.File, "audio/wav", func(sum string) {
			if a.SHA256 != "" && !strings.EqualFold(sum, a.SHA256) {
				d.integrityError(j, t, sum)
			}
		})
		if err != nil {
			res.err = err
			return res
		}
		res.bytes += n
		res.wavDone = true
	}
	n, err := d.sendFile(ctx, tgt, t.rec.DocRel, "application/json", nil)
	res.bytes += n
	res.err = err
	return res
}

// sendFile hashes the local file rel, puts it to the target and verifies it there. hashed, if not nil, sees
// the local hash before the upload.
func (d *Delivery) sendFile(ctx context.Context, tgt Target, rel, contentType string, hashed func(sum string)) (int64, error) {
	f, err := os.Open(filepath.Join(d.dir, filepath.FromSlash(rel)))
	if errors.Is(err, os.ErrNotExist) {
		return 0, &Permanent{Err: fmt.Errorf("local file %s is missing", rel)}
	}
	if err != nil {
		return 0, fmt.Errorf("local file: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return 0, fmt.Errorf("local file: %w", err)
	}
	size := fi.Size()
	h := sha256.New()
	if n, err := io.Copy(h, io.NewSectionReader(f, 0, size)); err != nil || n != size {
		return 0, fmt.Errorf("local file %s: read %d of %d bytes: %v", rel, n, size, err)
	}
	sum := hex.EncodeToString(h.Sum(nil))
	if hashed != nil {
		hashed(sum)
	}
	if err := tgt.Put(ctx, rel, io.NewSectionReader(f, 0, size), size, sum, contentType); err != nil {
		return 0, fmt.Errorf("put %s: %w", rel, err)
	}
	if err := tgt.Verify(ctx, rel, size, sum); err != nil {
		return 0, fmt.Errorf("verify %s: %w", rel, err)
	}
	return size, nil
}

// integrityError reports (once per job) a WAV whose hash is not the one its document states.
func (d *Delivery) integrityError(j *job, t task, sum string) {
	d.mu.Lock()
	first := j.gen == t.gen && !j.integrity
	if first {
		j.integrity = true
	}
	d.mu.Unlock()
	if !first {
		return
	}
	d.met.integrity.WithLabelValues(t.rec.Target).Inc()
	d.log.Error("delivery: the WAV's SHA-256 is not the one its document states; sending it anyway",
		"recording_id", t.rec.RecordingID, "target", t.rec.Target, "file", t.rec.Document.Audio.File,
		"sha256", sum, "document_sha256", t.rec.Document.Audio.SHA256)
}

// finish records an attempt's outcome.
func (d *Delivery) finish(ctx context.Context, j *job, t task, res result) {
	d.fileMu.Lock()
	defer d.fileMu.Unlock()
	d.mu.Lock()
	label := t.rec.Target
	if j.gen != t.gen || (res.err != nil && ctx.Err() != nil) {
		// Rewritten by Enqueue meanwhile (send the new one), or cut short by shutdown (not a failure).
		d.leaveBatch(j, false, false)
		j.state, j.due = stateReady, time.Now()
		heap.Push(&d.ready, j)
		d.wakeLocked()
		d.mu.Unlock()
		return
	}
	if res.wavDone {
		j.wavDone = true
	}
	if res.bytes > 0 {
		d.met.bytes.WithLabelValues(label).Add(float64(res.bytes))
	}
	if res.err == nil {
		d.delivered(j)
		return // delivered unlocks
	}
	d.met.failures.WithLabelValues(label).Inc()
	j.lastErr, j.lastTry = res.err, time.Now()
	log := d.log.With("recording_id", t.rec.RecordingID, "target", label, "err", res.err)
	var perm *Permanent
	switch {
	case errors.As(res.err, &perm):
		d.leaveBatch(j, false, true)
		j.state = stateBuffered
		log.Error("delivery: failed in a way retrying soon cannot fix; in the retry buffer")
	case j.fromBuffer:
		d.leaveBatch(j, false, true)
		j.state = stateBuffered
		log.Debug("delivery: retry from the buffer failed")
	default:
		j.attempts++
		if j.attempts >= d.cfg.FastAttempts {
			j.state = stateBuffered
			log.Warn("delivery: failed; in the retry buffer", "attempts", j.attempts, "retry_interval", d.cfg.RetryInterval)
			break
		}
		wait := backoff(j.attempts, d.cfg.MinBackoff, d.cfg.MaxBackoff, d.rnd)
		j.state, j.due = stateReady, time.Now().Add(wait)
		heap.Push(&d.ready, j)
		d.wakeLocked()
		log.Info("delivery: failed; retrying", "attempt", j.attempts, "in", wait)
	}
	if j.state == stateBuffered {
		j.attempts = 0
	}
	d.noteStuckLocked(j, d.now())
	d.mu.Unlock()
}

// delivered ends a job that succeeded. mu and fileMu are held; it unlocks mu.
func (d *Delivery) delivered(j *job) {
	rec := j.rec
	label := rec.Target
	d.met.delivered.WithLabelValues(label).Inc()
	d.leaveBatch(j, true, false)
	log := d.log.With("recording_id", rec.RecordingID, "target", label)
	if j.lastErr != nil {
		log.Info("delivery: delivered after failures", "last_err", j.lastErr)
	} else {
		log.Debug("delivery: delivered")
	}
	if rec.Kind == kindTarget && d.cfg.DeleteLocal {
		j.state = stateDone
		rec.Done = true
		siblings, all := d.recordingJobsLocked(rec.RecordingID)
		d.mu.Unlock()
		if !all {
			// Keep a done marker until the other targets have it too: a restart must not lose this fact.
			if data, err := json.Marshal(rec); err != nil {
				log.Warn("delivery: could not keep the done marker", "err", err)
			} else if err := errors.Join(writeFileSync(d.qdir, j.name, data), syncDir(d.qdir)); err != nil {
				log.Warn("delivery: could not keep the done marker; the job runs again after a restart", "err", err)
			}
			return
		}
		d.removeRecording(rec, siblings)
		return
	}
	delete(d.jobs, j.name)
	d.mu.Unlock()
	if err := os.Remove(filepath.Join(d.qdir, j.name)); err != nil && !errors.Is(err, os.ErrNotExist) {
		log.Warn("delivery: could not remove the job file; it is sent again after a restart", "err", err)
	}
}

// recordingJobsLocked returns the target jobs of a recording and whether all of them are done (none kept
// for an unconfigured target). mu is held.
func (d *Delivery) recordingJobsLocked(id string) ([]*job, bool) {
	var out []*job
	all := d.foreign[id] == 0
	for _, n := range d.names {
		if d.targets[n] == nil {
			continue
		}
		if j := d.jobs[jobName(id, n)]; j != nil {
			out = append(out, j)
			all = all && j.state == stateDone
		}
	}
	return out, all
}

// removeRecording deletes a recording's local files once every target has them, then its done jobs.
// fileMu is held (so no Enqueue can revive the jobs meanwhile).
func (d *Delivery) removeRecording(rec *jobFile, jobs []*job) {
	log := d.log.With("recording_id", rec.RecordingID)
	if err := d.remove(rec.DocRel, rec.Document); err != nil {
		log.Error("delivery: every target has the recording but the local files could not be deleted; trying again at the next retry run", "err", err)
		for _, j := range jobs { // keep the done markers for the next try (and a restart)
			if data, err := json.Marshal(j.rec); err == nil {
				_ = writeFileSync(d.qdir, j.name, data)
			}
		}
		_ = syncDir(d.qdir)
		return
	}
	log.Debug("delivery: local files deleted; every target has them")
	d.mu.Lock()
	for _, j := range jobs {
		delete(d.jobs, j.name)
	}
	d.mu.Unlock()
	for _, j := range jobs {
		if err := os.Remove(filepath.Join(d.qdir, j.name)); err != nil && !errors.Is(err, os.ErrNotExist) {
			log.Warn("delivery: could not remove a done job file", "file", j.name, "err", err)
		}
	}
}

// sweepDone deletes the local files of recordings every target has but whose deletion did not happen (a
// crash between the last delivery and the deletion, or a remover error).
func (d *Delivery) sweepDone() {
	if !d.cfg.DeleteLocal {
		return
	}
	d.fileMu.Lock()
	defer d.fileMu.Unlock()
	type todo struct {
		rec  *jobFile
		jobs []*job
	}
	var list []todo
	seen := map[string]bool{}
	d.mu.Lock()
	for _, j := range d.jobs {
		id := j.rec.RecordingID
		if j.state != stateDone || seen[id] {
			continue
		}
		seen[id] = true
		if jobs, all := d.recordingJobsLocked(id); all {
			list = append(list, todo{j.rec, jobs})
		}
	}
	d.mu.Unlock()
	for _, t := range list {
		d.removeRecording(t.rec, t.jobs)
	}
}

// removeLocal is the default remover: the WAV, then the document.
func (d *Delivery) removeLocal(docRel string, doc recorder.Document) error {
	var errs []error
	rm := func(rel string) {
		if err := os.Remove(filepath.Join(d.dir, filepath.FromSlash(rel))); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	if doc.Audio != nil && doc.Audio.File != "" {
		rm(doc.Audio.File)
	}
	rm(docRel)
	return errors.Join(errs...)
}

// releaseBuffers starts a retry-buffer run for every target and webhook that has none going.
func (d *Delivery) releaseBuffers() {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, n := range d.names {
		d.releaseBufferLocked(n)
	}
}

// releaseBufferLocked makes up to RetryBatch buffered jobs of one target ready, the least recently tried
// first (oldest first among equals), so jobs that keep failing cannot starve the others. mu is held.
func (d *Delivery) releaseBufferLocked(label string) {
	if b := d.batches[label]; b != nil && b.out > 0 {
		return // the previous run is still going
	}
	var buf []*job
	for _, j := range d.jobs {
		if j.state == stateBuffered && j.rec.Target == label {
			buf = append(buf, j)
		}
	}
	if len(buf) == 0 {
		return
	}
	slices.SortFunc(buf, func(a, b *job) int {
		if c := a.lastTry.Compare(b.lastTry); c != 0 {
			return c
		}
		if c := a.rec.Created.Compare(b.rec.Created); c != 0 {
			return c
		}
		return strings.Compare(a.name, b.name)
	})
	buf = buf[:min(len(buf), d.cfg.RetryBatch)]
	d.batches[label] = &batch{out: len(buf), tried: len(buf)}
	now := time.Now()
	for _, j := range buf {
		j.state, j.due, j.fromBuffer = stateReady, now, true
		heap.Push(&d.ready, j)
	}
	d.wakeLocked()
}

// leaveBatch takes j out of its retry-buffer run, if it is in one; delivered and rebuffered say what becomes
// of it. When the run is over it is logged, and if anything of it was delivered (the target is back) the
// next run starts at once. mu is held.
func (d *Delivery) leaveBatch(j *job, delivered, rebuffered bool) {
	if !j.fromBuffer {
		return
	}
	j.fromBuffer = false
	label := j.rec.Target
	b := d.batches[label]
	if b == nil || b.out == 0 {
		return
	}
	b.out--
	if delivered {
		b.delivered++
	}
	if b.out > 0 {
		return
	}
	left := 0
	for _, o := range d.jobs {
		if o.state == stateBuffered && o.rec.Target == label && o != j {
			left++
		}
	}
	level := slog.LevelWarn
	if b.delivered == b.tried {
		level = slog.LevelInfo
	}
	if rebuffered {
		left++
	}
	d.log.Log(context.Background(), level, "delivery: retry buffer run", "target", label, "tried", b.tried,
		"delivered", b.delivered, "still_buffered", left)
	if b.delivered > 0 && left > 0 {
		delete(d.batches, label)
		d.releaseBufferLocked(label) // j itself, if it goes back, waits for the run after
	}
}

// checkStuck logs (once each) jobs older than StuckAfter.
func (d *Delivery) checkStuck() {
	d.mu.Lock()
	defer d.mu.Unlock()
	now := d.now()
	for _, j := range d.jobs {
		d.noteStuckLocked(j, now)
	}
}

func (d *Delivery) noteStuckLocked(j *job, now time.Time) {
	if j.stuck || j.state == stateDone || now.Sub(j.rec.Created) <= d.cfg.StuckAfter {
		return
	}
	j.stuck = true
	d.log.Error("delivery: stuck: a recording has not reached its target", "recording_id", j.rec.RecordingID,
		"target", j.rec.Target, "age", now.Sub(j.rec.Created).Round(time.Second), "last_err", j.lastErr)
}

// backoff is the wait after the attempt-th failure (attempt ≥ 1): drawn uniformly ("full jitter") from
// [min, min·2^attempt], the upper end capped at max.
func backoff(attempt int, lo, hi time.Duration, rnd func(int64) int64) time.Duration {
	ceil := lo
	for i := 0; i < attempt && ceil < hi; i++ {
		ceil *= 2
	}
	ceil = min(ceil, hi)
	if ceil <= lo {
		return lo
	}
	return lo + time.Duration(rnd(int64(ceil-lo)+1))
}

// jobHeap orders ready jobs by due time.
type jobHeap []*job

func (h jobHeap) Len() int           { return len(h) }
func (h jobHeap) Less(i, k int) bool { return h[i].due.Before(h[k].due) }
func (h jobHeap) Swap(i, k int) {
	h[i], h[k] = h[k], h[i]
	h[i].index, h[k].index = i, k
}
func (h *jobHeap) Push(x any) {
	j := x.(*job)
	j.index = len(*h)
	*h = append(*h, j)
}
func (h *jobHeap) Pop() any {
	old := *h
	j := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	j.index = -1
	return j
}
