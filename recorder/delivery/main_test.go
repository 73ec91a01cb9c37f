package delivery

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/siphook/siphook/internal/leaktest"
	"github.com/siphook/siphook/recorder"
)

func TestMain(m *testing.M) {
	// minio-go sleeps up to 200 ms (random) after a failed request even when it will not retry it (the
	// queue does the retrying): keep the fault tests quick.
	minio.DefaultRetryUnit = time.Millisecond
	baseline := runtime.NumGoroutine()
	code := m.Run()
	if fuzzing := flag.Lookup("test.fuzz").Value.String() != ""; code == 0 && !fuzzing { // the fuzzer has goroutines of its own
		// Every test has stopped its Delivery and closed its servers by now: nothing of theirs may still run.
		code = leaktest.Check(baseline, 10*time.Second)
	}
	os.Exit(code)
}

// qT0 is when the test recordings start.
var qT0 = time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC)

// qRecording is a recording written to a test recordings directory.
type qRecording struct {
	docRel string
	doc    recorder.Document
	wav    []byte
	json   []byte
}

// writeQRecording writes <dir>/2026/11/21/<id>.wav (wavSize random bytes; none when 0) and <id>.json with
// state, the way the recorder lays them out, with the WAV's SHA-256 in the document.
func writeQRecording(t testing.TB, dir, id string, wavSize int, state string) qRecording {
	t.Helper()
	rel := "2026/11/21/" + id
	doc := recorder.Document{RecordingID: id, Source: "siprec", State: state, Start: qT0}
	var wav []byte
	if wavSize > 0 {
		wav = make([]byte, wavSize)
		rand.Read(wav)
		sum := sha256.Sum256(wav)
		doc.Audio = &recorder.AudioInfo{File: rel + ".wav", Format: recorder.FormatWAVPCM16, SampleRate: 8000, Channels: 2,
			Samples: int64(wavSize / 4), SHA256: hex.EncodeToString(sum[:])}
	}
	data, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(dir, "2026", "11", "21"), 0o750); err != nil {
		t.Fatal(err)
	}
	if wav != nil {
		if err := os.WriteFile(filepath.Join(dir, filepath.FromSlash(rel+".wav")), wav, 0o640); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, filepath.FromSlash(rel+".json")), data, 0o640); err != nil {
		t.Fatal(err)
	}
	return qRecording{docRel: rel + ".json", doc: doc, wav: wav, json: data}
}

// qTarget is a Target in memory whose behaviour tests choose: put and verify, when set, run first and
// their error is the call's.
type qTarget struct {
	name   string
	put    func(ctx context.Context, name string) error
	verify func(name string) error

	mu     sync.Mutex
	puts   map[string]int    // Put calls by object name, failed ones included
	stored map[string][]byte // what succeeded
	order  []string          // names in the order they were stored
}

func newQTarget(name string) *qTarget {
	return &qTarget{name: name, puts: map[string]int{}, stored: map[string][]byte{}}
}

func (q *qTarget) Name() string { return q.name }

func (q *qTarget) Put(ctx context.Context, name string, body io.ReadSeeker, size int64, sum, contentType string) error {
	q.mu.Lock()
	q.puts[name]++
	put := q.put
	q.mu.Unlock()
	if put != nil {
		if err := put(ctx, name); err != nil {
			return err
		}
	}
	data, err := io.ReadAll(body)
	if err != nil {
		return err
	}
	if got := sha256.Sum256(data); int64(len(data)) != size || hex.EncodeToString(got[:]) != sum {
		return fmt.Errorf("qTarget: body of %s is not what Put was told", name)
	}
	q.mu.Lock()
	q.stored[name] = data
	q.order = append(q.order, name)
	q.mu.Unlock()
	return nil
}

func (q *qTarget) Verify(ctx context.Context, name string, size int64, sum string) error {
	q.mu.Lock()
	verify := q.verify
	data, ok := q.stored[name]
	q.mu.Unlock()
	if verify != nil {
		if err := verify(name); err != nil {
			return err
		}
	}
	got := sha256.Sum256(data)
	if !ok || int64(len(data)) != size || hex.EncodeToString(got[:]) != sum {
		return ErrMismatch
	}
	return nil
}

// setPut changes the put hook.
func (q *qTarget) setPut(f func(ctx context.Context, name string) error) {
	q.mu.Lock()
	q.put = f
	q.mu.Unlock()
}

// putCount is the number of Put calls for name ("" for all).
func (q *qTarget) putCount(name string) int {
	q.mu.Lock()
	defer q.mu.Unlock()
	if name != "" {
		return q.puts[name]
	}
	n := 0
	for _, c := range q.puts {
		n += c
	}
	return n
}

func (q *qTarget) storedCopy() (map[string][]byte, []string) {
	q.mu.Lock()
	defer q.mu.Unlock()
	m := make(map[string][]byte, len(q.stored))
	for k, v := range q.stored {
		m[k] = v
	}
	return m, append([]string(nil), q.order...)
}

// failing is a put hook that always fails, retryably.
func failing(context.Context, string) error { return fmt.Errorf("qTarget: down") }

// qConfig is DefaultConfig with waits short enough for tests and no retry-buffer run unless a test ticks.
func qConfig() Config {
	c := DefaultConfig()
	c.MinBackoff, c.MaxBackoff = time.Millisecond, 4*time.Millisecond
	c.RetryInterval = time.Hour
	return c
}

// qEnv is a Delivery under test with its log, metrics and retry-buffer ticks.
type qEnv struct {
	*Delivery
	logs *logSink
	reg  *prometheus.Registry
	tick chan time.Time
	stop func() // ends Run and waits for it; idempotent
}

// newQEnv opens a Delivery on dir (not running yet); it is closed at the end of the test.
func newQEnv(t *testing.T, cfg Config, dir string, targets []Target, opts ...Option) *qEnv {
	t.Helper()
	e := &qEnv{logs: &logSink{}, reg: prometheus.NewRegistry(), tick: make(chan time.Time)}
	opts = append([]Option{WithLogger(e.logs.logger()), WithRegisterer(e.reg)}, opts...)
	d, err := New(cfg, dir, targets, opts...)
	if err != nil {
		t.Fatal(err)
	}
	d.tick = e.tick
	e.Delivery = d
	e.stop = func() {}
	t.Cleanup(func() { e.stop(); d.Close() })
	return e
}

// run starts Run; e.stop ends it.
func (e *qEnv) run() {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { e.Run(ctx); close(done) }()
	var once sync.Once
	e.stop = func() { once.Do(func() { cancel(); <-done }) }
}

// retryRun makes Run start a retry-buffer run (as its ticker would).
func (e *qEnv) retryRun(t *testing.T) {
	t.Helper()
	select {
	case e.tick <- time.Now():
	case <-time.After(10 * time.Second):
		t.Fatal("Run does not take the retry tick")
	}
}

// states counts the jobs by state, and the jobs out in retry-buffer runs.
func (e *qEnv) states() (ready, running, buffered, done, batchOut int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, j := range e.jobs {
		switch j.state {
		case stateReady:
			ready++
		case stateRunning:
			running++
		case stateBuffered:
			buffered++
		case stateDone:
			done++
		}
	}
	for _, b := range e.batches {
		if b != nil {
			batchOut += b.out
		}
	}
	return
}

// quiet reports whether nothing is going on: no job ready or running and no retry-buffer run out.
func (e *qEnv) quiet() bool {
	ready, running, _, _, out := e.states()
	return ready == 0 && running == 0 && out == 0
}

// metric is the value of the series name{target=label}.
func (e *qEnv) metric(t *testing.T, name, label string) float64 {
	t.Helper()
	return gatherValue(t, e.reg, name, label)
}

func gatherValue(t *testing.T, g prometheus.Gatherer, name, label string) float64 {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if labelOf(m) == label {
				if c := m.GetCounter(); c != nil {
					return c.GetValue()
				}
				return m.GetGauge().GetValue()
			}
		}
	}
	t.Fatalf("no series %s{target=%q}", name, label)
	return 0
}

func labelOf(m *dto.Metric) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == "target" {
			return l.GetValue()
		}
	}
	return ""
}

// waitUntil polls cond until it holds; the 30 s limit only keeps a broken test from hanging.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// logSink keeps every log line (JSON, debug level and up).
type logSink struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (s *logSink) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.Write(p)
}

func (s *logSink) logger() *slog.Logger {
	return slog.New(slog.NewJSONHandler(s, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

func (s *logSink) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.String()
}

// records returns the log records at level whose message contains msg.
func (s *logSink) records(level slog.Level, msg string) []map[string]any {
	var out []map[string]any
	for line := range strings.SplitSeq(strings.TrimSpace(s.String()), "\n") {
		var rec map[string]any
		if json.Unmarshal([]byte(line), &rec) != nil {
			continue
		}
		if rec["level"] == level.String() && strings.Contains(fmt.Sprint(rec["msg"]), msg) {
			out = append(out, rec)
		}
	}
	return out
}

// qClock is a clock tests move by hand.
type qClock struct{ ns atomic.Int64 }

func newQClock(t time.Time) *qClock {
	c := &qClock{}
	c.ns.Store(t.UnixNano())
	return c
}

func (c *qClock) now() time.Time          { return time.Unix(0, c.ns.Load()).UTC() }
func (c *qClock) advance(d time.Duration) { c.ns.Add(int64(d)) }
func (c *qClock) option() Option          { return WithClock(c.now) }
func queueFiles(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join(dir, queueDir))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		out = append(out, e.Name())
	}
	return out
}
