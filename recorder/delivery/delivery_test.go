package delivery

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/siphook/siphook/recorder"
)

// checkDeliveredOnce checks that tgt holds every recording's WAV and JSON with their content, each Put
// exactly once, the WAV stored before the JSON.
func checkDeliveredOnce(t *testing.T, tgt *qTarget, recs []qRecording) {
	t.Helper()
	stored, order := tgt.storedCopy()
	for _, r := range recs {
		names := []string{r.docRel}
		if r.wav != nil {
			names = []string{r.doc.Audio.File, r.docRel}
			if string(stored[r.doc.Audio.File]) != string(r.wav) {
				t.Errorf("%s: WAV content differs", r.doc.RecordingID)
			}
			if slices.Index(order, r.doc.Audio.File) > slices.Index(order, r.docRel) {
				t.Errorf("%s: JSON stored before the WAV", r.doc.RecordingID)
			}
		}
		if string(stored[r.docRel]) != string(r.json) {
			t.Errorf("%s: JSON content differs", r.doc.RecordingID)
		}
		for _, n := range names {
			if c := tgt.putCount(n); c != 1 {
				t.Errorf("%s: put %d times, want once", n, c)
			}
		}
	}
}

// TestQueueDurableAcrossRestart: jobs enqueued are on disk when Enqueue returns; a new Delivery on the same
// directory delivers every one of them, each file exactly once.
func TestQueueDurableAcrossRestart(t *testing.T) {
	const n = 12
	for _, mode := range []string{"never run", "target down"} {
		t.Run(mode, func(t *testing.T) {
			dir := t.TempDir()
			var recs []qRecording
			for i := range n {
				recs = append(recs, writeQRecording(t, dir, fmt.Sprintf("rec-%02d", i), 1000+i*100, recorder.StateCompleted))
			}
			down := newQTarget("arch")
			down.setPut(failing)
			first := newQEnv(t, qConfig(), dir, []Target{down})
			for _, r := range recs {
				if err := first.Enqueue(r.docRel, r.doc); err != nil {
					t.Fatal(err)
				}
			}
			if got := len(queueFiles(t, dir)); got != n {
				t.Fatalf("%d job files after Enqueue, want %d", got, n)
			}
			if mode == "target down" {
				first.run()
				waitUntil(t, "every job failed at least once", func() bool { return down.putCount("") >= 2*n })
			}
			first.stop()
			if err := first.Close(); err != nil {
				t.Fatal(err)
			}
			if err := first.Enqueue(recs[0].docRel, recs[0].doc); !errors.Is(err, ErrClosed) {
				t.Errorf("Enqueue after Close: %v, want ErrClosed", err)
			}

			up := newQTarget("arch")
			second := newQEnv(t, qConfig(), dir, []Target{up})
			if p := second.Pending(); p != n {
				t.Fatalf("Pending after restart = %d, want %d", p, n)
			}
			second.run()
			waitUntil(t, "everything is delivered", func() bool { return second.Pending() == 0 })
			checkDeliveredOnce(t, up, recs)
			if files := queueFiles(t, dir); len(files) != 0 {
				t.Errorf("job files left: %v", files)
			}
			if got := second.metric(t, "siphook_delivery_delivered_total", "arch"); got != n {
				t.Errorf("delivered_total = %v, want %d", got, n)
			}
			// The local files stay (delete_local is off).
			if _, err := os.Stat(filepath.Join(dir, filepath.FromSlash(recs[0].doc.Audio.File))); err != nil {
				t.Errorf("local WAV: %v", err)
			}
		})
	}
}

// TestBackoff: the waits stay within [min, min·2^attempt] capped at max, spread within those bounds
// (jitter), and their upper bound grows with the attempt.
func TestBackoff(t *testing.T) {
	const lo, hi = 100 * time.Millisecond, 5 * time.Second
	r := rand.New(rand.NewPCG(1, 2))
	prevCeil := time.Duration(0)
	for attempt := 1; attempt <= 12; attempt++ {
		ceil := min(lo<<attempt, hi)
		if ceil < prevCeil {
			t.Fatalf("attempt %d: bound %v shrank", attempt, ceil)
		}
		prevCeil = ceil
		seen := map[time.Duration]bool{}
		for range 500 {
			w := backoff(attempt, lo, hi, r.Int64N)
			if w < lo || w > ceil {
				t.Fatalf("attempt %d: wait %v outside [%v, %v]", attempt, w, lo, ceil)
			}
			seen[w] = true
		}
		if len(seen) < 100 {
			t.Errorf("attempt %d: only %d distinct waits in 500: no jitter", attempt, len(seen))
		}
		if got := backoff(attempt, lo, hi, func(n int64) int64 { return n - 1 }); got != ceil {
			t.Errorf("attempt %d: largest wait %v, want %v", attempt, got, ceil)
		}
		if got := backoff(attempt, lo, hi, func(int64) int64 { return 0 }); got != lo {
			t.Errorf("attempt %d: smallest wait %v, want %v", attempt, got, lo)
		}
	}
	if got := backoff(3, hi, hi, r.Int64N); got != hi {
		t.Errorf("min == max: %v, want %v", got, hi)
	}
}

// TestFastAttemptsThenBuffer: a failing job is tried fast_attempts times with growing backoff, then waits
// in the retry buffer for a retry run, which tries it once more; when the target is back the next run
// delivers it.
func TestFastAttemptsThenBuffer(t *testing.T) {
	dir := t.TempDir()
	rec := writeQRecording(t, dir, "r1", 500, recorder.StateCompleted)
	tgt := newQTarget("arch")
	tgt.setPut(failing)
	cfg := qConfig()
	cfg.FastAttempts = 6
	cfg.MinBackoff, cfg.MaxBackoff = time.Millisecond, 8*time.Millisecond
	e := newQEnv(t, cfg, dir, []Target{tgt})
	var spans []int64
	e.rnd = func(n int64) int64 { spans = append(spans, n); return 0 } // called with mu held
	if err := e.Enqueue(rec.docRel, rec.doc); err != nil {
		t.Fatal(err)
	}
	e.run()
	waitUntil(t, "the job is in the retry buffer", func() bool { _, _, b, _, _ := e.states(); return b == 1 })
	if got := tgt.putCount(""); got != cfg.FastAttempts {
		t.Errorf("%d puts before the buffer, want fast_attempts = %d", got, cfg.FastAttempts)
	}
	e.mu.Lock()
	got := slices.Clone(spans)
	e.mu.Unlock()
	ms := int64(time.Millisecond)
	want := []int64{ms + 1, 3*ms + 1, 7*ms + 1, 7*ms + 1, 7*ms + 1} // [1,2], [1,4], [1,8] ms, then capped
	if !slices.Equal(got, want) {
		t.Errorf("backoff ranges %v, want %v", got, want)
	}
	if !e.quiet() {
		t.Fatal("a buffered job is being retried without a retry run")
	}
	if got := e.metric(t, "siphook_delivery_retry_buffer", "arch"); got != 1 {
		t.Errorf("retry_buffer = %v, want 1", got)
	}
	if len(e.logs.records(slog.LevelWarn, "in the retry buffer")) != 1 {
		t.Errorf("no warning when the job went to the buffer:\n%s", e.logs)
	}

	e.retryRun(t)
	waitUntil(t, "the retry run is over", func() bool { return tgt.putCount("") == cfg.FastAttempts+1 && e.quiet() })
	if _, _, b, _, _ := e.states(); b != 1 {
		t.Fatalf("after a failed retry run %d jobs buffered, want 1", b)
	}
	if got := e.metric(t, "siphook_delivery_failures_total", "arch"); got != float64(cfg.FastAttempts+1) {
		t.Errorf("failures_total = %v, want %d", got, cfg.FastAttempts+1)
	}

	tgt.setPut(nil)
	e.retryRun(t)
	waitUntil(t, "delivered", func() bool { return e.Pending() == 0 })
	if got := e.metric(t, "siphook_delivery_retry_buffer", "arch"); got != 0 {
		t.Errorf("retry_buffer = %v after delivery, want 0", got)
	}
	if got := e.metric(t, "siphook_delivery_delivered_total", "arch"); got != 1 {
		t.Errorf("delivered_total = %v, want 1", got)
	}
}

// TestRetryBatch: a retry run tries at most retry_batch jobs, the least recently tried first, so runs go
// round the buffer; once a run delivers something the rest follows without waiting for the next interval.
func TestRetryBatch(t *testing.T) {
	const n, batchSize = 10, 3
	dir := t.TempDir()
	clock := newQClock(qT0)
	tgt := newQTarget("arch")
	tgt.setPut(failing)
	cfg := qConfig()
	cfg.FastAttempts, cfg.RetryBatch = 1, batchSize
	e := newQEnv(t, cfg, dir, []Target{tgt}, clock.option())
	var recs []qRecording
	for i := range n {
		r := writeQRecording(t, dir, fmt.Sprintf("rec-%02d", i), 0, recorder.StateNeverActivated)
		recs = append(recs, r)
		if err := e.Enqueue(r.docRel, r.doc); err != nil {
			t.Fatal(err)
		}
		clock.advance(time.Second)
	}
	e.run()
	waitUntil(t, "everything is buffered", func() bool { _, _, b, _, _ := e.states(); return b == n })

	tried := map[string]int{}
	snapshot := func() map[string]int {
		m := map[string]int{}
		for _, r := range recs {
			m[r.docRel] = tgt.putCount(r.docRel)
		}
		return m
	}
	before := snapshot()
	for run := 1; run <= 3; run++ {
		e.retryRun(t)
		want := n + run*batchSize
		waitUntil(t, "the retry run is over", func() bool { return tgt.putCount("") == want && e.quiet() })
		after := snapshot()
		var this []string
		for name, c := range after {
			if c != before[name] {
				this = append(this, name)
				tried[name]++
			}
		}
		if len(this) != batchSize {
			t.Fatalf("run %d tried %d jobs, want %d", run, len(this), batchSize)
		}
		before = after
	}
	if len(tried) != 3*batchSize {
		t.Errorf("three runs tried %d distinct jobs, want %d (least recently tried first)", len(tried), 3*batchSize)
	}
	if got := len(e.logs.records(slog.LevelWarn, "retry buffer run")); got != 3 {
		t.Errorf("%d retry-run log lines, want 3", got)
	}

	tgt.setPut(nil)
	e.retryRun(t)
	waitUntil(t, "the target is back: the whole buffer drains in one interval", func() bool { return e.Pending() == 0 })
	stored, _ := tgt.storedCopy()
	if len(stored) != n {
		t.Errorf("%d documents stored, want %d", len(stored), n)
	}
}

// TestPermanentToBuffer: a *Permanent error skips the fast attempts and is logged at error.
func TestPermanentToBuffer(t *testing.T) {
	dir := t.TempDir()
	rec := writeQRecording(t, dir, "r1", 100, recorder.StateCompleted)
	tgt := newQTarget("arch")
	tgt.setPut(func(context.Context, string) error { return &Permanent{Err: errors.New("object name rejected")} })
	e := newQEnv(t, qConfig(), dir, []Target{tgt})
	if err := e.Enqueue(rec.docRel, rec.doc); err != nil {
		t.Fatal(err)
	}
	e.run()
	waitUntil(t, "buffered", func() bool { _, _, b, _, _ := e.states(); return b == 1 })
	if got := tgt.putCount(""); got != 1 {
		t.Errorf("%d puts, want 1 (no fast retries of a permanent error)", got)
	}
	if recs := e.logs.records(slog.LevelError, "retrying soon cannot fix"); len(recs) != 1 ||
		!strings.Contains(fmt.Sprint(recs[0]["err"]), "object name rejected") {
		t.Errorf("want one error-level record with the cause:\n%s", e.logs)
	}
}

// TestMissingLocalFile: a recording whose files are gone is a permanent failure, not a crash.
func TestMissingLocalFile(t *testing.T) {
	dir := t.TempDir()
	rec := writeQRecording(t, dir, "r1", 100, recorder.StateCompleted)
	os.Remove(filepath.Join(dir, filepath.FromSlash(rec.doc.Audio.File)))
	tgt := newQTarget("arch")
	e := newQEnv(t, qConfig(), dir, []Target{tgt})
	if err := e.Enqueue(rec.docRel, rec.doc); err != nil {
		t.Fatal(err)
	}
	e.run()
	waitUntil(t, "buffered", func() bool { _, _, b, _, _ := e.states(); return b == 1 })
	if tgt.putCount("") != 0 {
		t.Error("something was put")
	}
	if len(e.logs.records(slog.LevelError, "retrying soon cannot fix")) != 1 {
		t.Errorf("no error logged:\n%s", e.logs)
	}
}

// TestStuck: a job older than stuck_after is logged once at error and counted in the stuck gauge; the
// oldest gauge follows the clock.
func TestStuck(t *testing.T) {
	dir := t.TempDir()
	clock := newQClock(qT0)
	rec := writeQRecording(t, dir, "r1", 100, recorder.StateCompleted)
	tgt := newQTarget("arch")
	tgt.setPut(failing)
	cfg := qConfig()
	cfg.FastAttempts = 1
	e := newQEnv(t, cfg, dir, []Target{tgt}, clock.option())
	if err := e.Enqueue(rec.docRel, rec.doc); err != nil {
		t.Fatal(err)
	}
	e.run()
	waitUntil(t, "buffered", func() bool { _, _, b, _, _ := e.states(); return b == 1 })
	if got := e.metric(t, "siphook_delivery_stuck", "arch"); got != 0 {
		t.Errorf("stuck = %v at once, want 0", got)
	}
	clock.advance(30 * time.Minute)
	if got := e.metric(t, "siphook_delivery_oldest_seconds", "arch"); got != 1800 {
		t.Errorf("oldest_seconds = %v, want 1800", got)
	}
	e.retryRun(t)
	waitUntil(t, "the retry run is over", func() bool { return tgt.putCount("") == 2 && e.quiet() })
	if n := len(e.logs.records(slog.LevelError, "stuck")); n != 0 {
		t.Errorf("%d stuck records before stuck_after", n)
	}

	clock.advance(time.Hour)
	if got := e.metric(t, "siphook_delivery_stuck", "arch"); got != 1 {
		t.Errorf("stuck = %v after 90 min, want 1", got)
	}
	for run := 3; run <= 4; run++ {
		e.retryRun(t)
		waitUntil(t, "the retry run is over", func() bool { return tgt.putCount("") == run && e.quiet() })
	}
	recs := e.logs.records(slog.LevelError, "stuck")
	if len(recs) != 1 {
		t.Fatalf("%d stuck records, want exactly 1:\n%s", len(recs), e.logs)
	}
	if recs[0]["recording_id"] != "r1" || recs[0]["target"] != "arch" || !strings.Contains(fmt.Sprint(recs[0]["last_err"]), "down") {
		t.Errorf("stuck record %v lacks recording, target or cause", recs[0])
	}

	tgt.setPut(nil)
	e.retryRun(t)
	waitUntil(t, "delivered", func() bool { return e.Pending() == 0 })
	if got := e.metric(t, "siphook_delivery_stuck", "arch"); got != 0 {
		t.Errorf("stuck = %v after delivery, want 0", got)
	}
	if got := e.metric(t, "siphook_delivery_oldest_seconds", "arch"); got != 0 {
		t.Errorf("oldest_seconds = %v with nothing queued, want 0", got)
	}
}

// TestDeleteLocal: with delete_local the local files go once every target has the recording, not before;
// the fact that one target has it survives a restart.
func TestDeleteLocal(t *testing.T) {
	for _, remover := range []string{"default", "custom"} {
		t.Run(remover, func(t *testing.T) {
			dir := t.TempDir()
			rec := writeQRecording(t, dir, "r1", 300, recorder.StateCompleted)
			other := writeQRecording(t, dir, "r2", 300, recorder.StateCompleted)
			wav := filepath.Join(dir, filepath.FromSlash(rec.doc.Audio.File))
			doc := filepath.Join(dir, filepath.FromSlash(rec.docRel))
			var (
				mu      sync.Mutex
				removed []string
			)
			var opts []Option
			if remover == "custom" {
				opts = append(opts, WithRemover(func(docRel string, d recorder.Document) error {
					mu.Lock()
					defer mu.Unlock()
					if d.RecordingID+".json" != filepath.Base(docRel) {
						t.Errorf("remover got %s with the document of %s", docRel, d.RecordingID)
					}
					removed = append(removed, docRel)
					return nil
				}))
			}
			cfg := qConfig()
			cfg.DeleteLocal, cfg.FastAttempts = true, 1
			a, b := newQTarget("a"), newQTarget("b")
			b.setPut(failing)
			first := newQEnv(t, cfg, dir, []Target{a, b}, opts...)
			if err := first.Enqueue(rec.docRel, rec.doc); err != nil {
				t.Fatal(err)
			}
			first.run()
			waitUntil(t, "a has it, b's job is buffered", func() bool {
				_, _, buffered, done, _ := first.states()
				return buffered == 1 && done == 1
			})
			for _, f := range []string{wav, doc} {
				if _, err := os.Stat(f); err != nil {
					t.Fatalf("%s gone before every target has it: %v", f, err)
				}
			}
			if p := first.Pending(); p != 1 {
				t.Errorf("Pending = %d, want 1 (b)", p)
			}
			first.stop()
			first.Close()

			// A restart: a's done marker is on disk, so b alone is retried, and then the files go.
			b.setPut(nil)
			a2, b2 := newQTarget("a"), newQTarget("b")
			second := newQEnv(t, cfg, dir, []Target{a2, b2}, opts...)
			if p := second.Pending(); p != 1 {
				t.Fatalf("Pending after restart = %d, want 1", p)
			}
			if err := second.Enqueue(other.docRel, other.doc); err != nil {
				t.Fatal(err)
			}
			second.run()
			waitUntil(t, "delivered", func() bool { return second.Pending() == 0 && second.quiet() })
			if a2.putCount(rec.docRel) != 0 {
				t.Error("a got the recording again after the restart")
			}
			checkDeliveredOnce(t, b2, []qRecording{rec, other})
			waitUntil(t, "the done jobs are gone", func() bool { return len(queueFiles(t, dir)) == 0 })
			switch remover {
			case "default":
				for _, f := range []string{wav, doc} {
					if _, err := os.Stat(f); !errors.Is(err, os.ErrNotExist) {
						t.Errorf("%s not deleted: %v", f, err)
					}
				}
			case "custom":
				mu.Lock()
				slices.Sort(removed)
				if !slices.Equal(removed, []string{rec.docRel, other.docRel}) {
					t.Errorf("remover called for %v, want each recording once", removed)
				}
				mu.Unlock()
				if _, err := os.Stat(wav); err != nil {
					t.Errorf("the custom remover's job, not ours: %v", err)
				}
			}
		})
	}
}

// TestDeleteLocalOff: without delete_local nothing local is touched.
func TestDeleteLocalOff(t *testing.T) {
	dir := t.TempDir()
	rec := writeQRecording(t, dir, "r1", 300, recorder.StateCompleted)
	tgt := newQTarget("a")
	e := newQEnv(t, qConfig(), dir, []Target{tgt})
	if err := e.Enqueue(rec.docRel, rec.doc); err != nil {
		t.Fatal(err)
	}
	e.run()
	waitUntil(t, "delivered", func() bool { return e.Pending() == 0 })
	if _, err := os.Stat(filepath.Join(dir, filepath.FromSlash(rec.doc.Audio.File))); err != nil {
		t.Error(err)
	}
}

// TestBadJobFiles: job files that cannot be used are logged and moved aside (*.bad), never loaded again;
// leftovers of interrupted writes are removed; jobs of targets no longer configured are kept as they are.
func TestBadJobFiles(t *testing.T) {
	dir := t.TempDir()
	qdir := filepath.Join(dir, queueDir)
	if err := os.MkdirAll(qdir, 0o750); err != nil {
		t.Fatal(err)
	}
	good := writeQRecording(t, dir, "good", 100, recorder.StateCompleted)
	job := func(id, target string, mod func(*jobFile)) []byte {
		j := &jobFile{Version: jobVersion, Kind: kindTarget, Target: target, RecordingID: id, DocRel: good.docRel,
			Created: qT0, Document: good.doc}
		j.Document.RecordingID = id
		if mod != nil {
			mod(j)
		}
		data, err := json.Marshal(j)
		if err != nil {
			t.Fatal(err)
		}
		return data
	}
	valid := job("good", "arch", nil)
	files := map[string][]byte{
		"good.arch.json":     valid,
		"garbage.arch.json":  []byte("\x00\x01not json at all"),
		"trunc.arch.json":    valid[:len(valid)/2],
		"v99.arch.json":      job("v99", "arch", func(j *jobFile) { j.Version = 99 }),
		"renamed.arch.json":  job("other", "arch", nil),
		"escape.arch.json":   job("escape", "arch", func(j *jobFile) { j.DocRel = "../../etc/passwd" }),
		"kind.arch.json":     job("kind", "arch", func(j *jobFile) { j.Kind = "ftp" }),
		"empty.arch.json":    nil,
		"old.arch.json.bad":  []byte("left alone"),
		".x.arch.json.1.tmp": []byte("half a write"),
		"gone.s3old.json":    job("gone", "s3old", nil),
	}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(qdir, name), data, 0o640); err != nil {
			t.Fatal(err)
		}
	}
	tgt := newQTarget("arch")
	e := newQEnv(t, qConfig(), dir, []Target{tgt})
	if p := e.Pending(); p != 1 {
		t.Errorf("Pending = %d, want 1 (the good job)", p)
	}
	bad := []string{"garbage.arch.json", "trunc.arch.json", "v99.arch.json", "renamed.arch.json", "escape.arch.json",
		"kind.arch.json", "empty.arch.json"}
	got := queueFiles(t, dir)
	want := []string{"gone.s3old.json", "good.arch.json", "old.arch.json.bad"}
	for _, b := range bad {
		want = append(want, b+badExt)
	}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("queue directory:\n got %v\nwant %v", got, want)
	}
	if n := len(e.logs.records(slog.LevelError, "moved aside")); n != len(bad) {
		t.Errorf("%d moved-aside records, want %d:\n%s", n, len(bad), e.logs)
	}
	if len(e.logs.records(slog.LevelWarn, "not configured")) != 1 {
		t.Errorf("no warning about the unconfigured target's job:\n%s", e.logs)
	}
	e.run()
	waitUntil(t, "the good job is delivered", func() bool { return e.Pending() == 0 })
	checkDeliveredOnce(t, tgt, []qRecording{good})
	if _, err := os.Stat(filepath.Join(qdir, "gone.s3old.json")); err != nil {
		t.Errorf("the unconfigured target's job: %v", err)
	}
}

// TestIntegrityError: a WAV whose hash is not its document's is counted and logged once, and sent anyway.
func TestIntegrityError(t *testing.T) {
	dir := t.TempDir()
	bad := writeQRecording(t, dir, "bad", 400, recorder.StateCompleted)
	bad.doc.Audio.SHA256 = strings.Repeat("0", 64)
	ok := writeQRecording(t, dir, "ok", 400, recorder.StateCompleted)
	tgt := newQTarget("arch")
	calls := 0
	tgt.setPut(func(_ context.Context, name string) error {
		if name == bad.docRel {
			if calls++; calls < 3 { // the JSON fails twice: the WAV's check runs once per job still
				return errors.New("flaky")
			}
		}
		return nil
	})
	e := newQEnv(t, qConfig(), dir, []Target{tgt})
	for _, r := range []qRecording{bad, ok} {
		if err := e.Enqueue(r.docRel, r.doc); err != nil {
			t.Fatal(err)
		}
	}
	e.run()
	waitUntil(t, "delivered", func() bool { return e.Pending() == 0 })
	if got := e.metric(t, "siphook_delivery_integrity_errors_total", "arch"); got != 1 {
		t.Errorf("integrity_errors_total = %v, want 1", got)
	}
	if recs := e.logs.records(slog.LevelError, "SHA-256"); len(recs) != 1 || recs[0]["recording_id"] != "bad" {
		t.Errorf("want one error record for recording bad:\n%s", e.logs)
	}
	stored, _ := tgt.storedCopy()
	if string(stored[bad.doc.Audio.File]) != string(bad.wav) {
		t.Error("the WAV was not sent")
	}
	if tgt.putCount(bad.doc.Audio.File) != 1 {
		t.Errorf("WAV put %d times: a verified WAV is not sent again when only the JSON failed", tgt.putCount(bad.doc.Audio.File))
	}
}

// TestEnqueueAgain: enqueuing a recording again rewrites its job (one file), and an attempt of the old
// version that finishes meanwhile does not end the new one.
func TestEnqueueAgain(t *testing.T) {
	dir := t.TempDir()
	rec := writeQRecording(t, dir, "r1", 200, recorder.StateCompleted)
	tgt := newQTarget("arch")
	release := make(chan struct{})
	started := make(chan struct{}, 10)
	tgt.setPut(func(ctx context.Context, name string) error {
		if name == rec.docRel {
			started <- struct{}{}
			<-release
		}
		return nil
	})
	e := newQEnv(t, qConfig(), dir, []Target{tgt})
	if err := e.Enqueue(rec.docRel, rec.doc); err != nil {
		t.Fatal(err)
	}
	e.run()
	<-started
	rec.doc.NotRecorded = "changed"
	if err := e.Enqueue(rec.docRel, rec.doc); err != nil {
		t.Fatal(err)
	}
	if files := queueFiles(t, dir); len(files) != 1 {
		t.Errorf("job files %v, want one", files)
	}
	tgt.setPut(nil)
	close(release)
	waitUntil(t, "delivered", func() bool { return e.Pending() == 0 && e.quiet() })
	if got := tgt.putCount(rec.docRel); got != 2 {
		t.Errorf("document put %d times, want 2 (the rewritten job is sent again)", got)
	}
	if got := tgt.putCount(rec.doc.Audio.File); got != 2 {
		t.Errorf("WAV put %d times, want 2 (a rewritten job is sent whole)", got)
	}
}

// TestEnqueueChecks: ids and paths that could leave the recordings directory are refused.
func TestEnqueueChecks(t *testing.T) {
	dir := t.TempDir()
	e := newQEnv(t, qConfig(), dir, []Target{newQTarget("arch")})
	doc := recorder.Document{RecordingID: "r1", State: recorder.StateCompleted}
	for _, c := range []struct {
		rel string
		doc recorder.Document
	}{
		{"../r1.json", doc},
		{"/abs/r1.json", doc},
		{"a//r1.json", doc},
		{"r1.json", recorder.Document{RecordingID: "../r1"}},
		{"r1.json", recorder.Document{RecordingID: ".hidden"}},
		{"r1.json", recorder.Document{RecordingID: "r1", Audio: &recorder.AudioInfo{File: "../../x.wav"}}},
	} {
		if err := e.Enqueue(c.rel, c.doc); err == nil {
			t.Errorf("Enqueue(%q, id %q) accepted", c.rel, c.doc.RecordingID)
		}
	}
	if files := queueFiles(t, dir); len(files) != 0 {
		t.Errorf("job files %v", files)
	}
}

// TestNewChecks: New refuses what cannot work.
func TestNewChecks(t *testing.T) {
	dir := t.TempDir()
	cfg := qConfig()
	cases := map[string]struct {
		cfg     Config
		targets []Target
	}{
		"duplicate target": {cfg, []Target{newQTarget("a"), newQTarget("a")}},
		"bad target name":  {cfg, []Target{newQTarget("a b")}},
		"webhook named as a target": {func() Config {
			c := cfg
			c.Webhooks = []WebhookConfig{{Name: "a", URL: "http://127.0.0.1/", Secret: "s"}}
			return c
		}(), []Target{newQTarget("a")}},
		"delete_local without targets": {func() Config { c := cfg; c.DeleteLocal = true; return c }(), nil},
		"bad queue settings":           {func() Config { c := cfg; c.Workers = 0; return c }(), nil},
	}
	for name, c := range cases {
		if d, err := New(c.cfg, dir, c.targets, WithLogger(slog.New(slog.DiscardHandler))); err == nil {
			d.Close()
			t.Errorf("%s: accepted", name)
		}
	}
}

// TestRunStops: Run returns when its context ends and when Close is called, leaving no goroutine; jobs in
// flight are cut short without counting as failures.
func TestRunStops(t *testing.T) {
	dir := t.TempDir()
	rec := writeQRecording(t, dir, "r1", 100, recorder.StateCompleted)
	tgt := newQTarget("arch")
	started := make(chan struct{}, 1)
	tgt.setPut(func(ctx context.Context, _ string) error {
		select {
		case started <- struct{}{}:
		default:
		}
		<-ctx.Done()
		return ctx.Err()
	})
	e := newQEnv(t, qConfig(), dir, []Target{tgt})
	if err := e.Enqueue(rec.docRel, rec.doc); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { e.Run(ctx); close(done) }()
	<-started
	cancel()
	<-done
	if got := e.metric(t, "siphook_delivery_failures_total", "arch"); got != 0 {
		t.Errorf("failures_total = %v after a shutdown, want 0", got)
	}
	if e.Pending() != 1 {
		t.Errorf("Pending = %d, want 1", e.Pending())
	}
	done = make(chan struct{})
	go func() { e.Run(context.Background()); close(done) }()
	<-started
	e.Close()
	<-done
	e.Run(context.Background()) // after Close: returns at once
}

// TestMetricsFromStart: every series exists, at zero, for every target and webhook before anything
// happens.
func TestMetricsFromStart(t *testing.T) {
	cfg := qConfig()
	cfg.Webhooks = []WebhookConfig{{Name: "hook", URL: "http://127.0.0.1:1/", Secret: "s"}}
	e := newQEnv(t, cfg, t.TempDir(), []Target{newQTarget("a"), newQTarget("b")})
	for _, name := range []string{"queued", "retry_buffer", "oldest_seconds", "stuck", "delivered_total", "failures_total",
		"bytes_total", "integrity_errors_total"} {
		for _, label := range []string{"a", "b", "hook"} {
			if v := e.metric(t, "siphook_delivery_"+name, label); v != 0 {
				t.Errorf("%s{target=%q} = %v, want 0", name, label, v)
			}
		}
	}
}
