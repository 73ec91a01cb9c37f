package recorder

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"log/slog"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/siphook/siphook/internal/audiotest"
)

const (
	rate  = 8000
	chunk = 160 // 20 ms
	toneA = 440.0
	toneB = 1000.0
)

// t0 is 23:30 on the 21st two hours west of UTC: the files must be filed under the UTC date, the 22nd.
var t0 = time.Date(2026, 11, 21, 23, 30, 0, 0, time.FixedZone("UTC-2", -2*3600))

const t0Dir = "2026/11/22"

func testRecorder(t *testing.T, modify func(*Config), opts ...Option) *Recorder {
	t.Helper()
	cfg := DefaultConfig()
	cfg.Dir = t.TempDir()
	cfg.FlushInterval = time.Hour // tests flush by hand; TestFlusher covers the ticker
	cfg.MinFreeBytes = 0          // the test machine's disk is not the subject; disk_test.go injects its own
	if modify != nil {
		modify(&cfg)
	}
	opts = append([]Option{WithClock(func() time.Time { return t0 }), WithLogger(slog.New(slog.DiscardHandler))}, opts...)
	r, err := New(cfg, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

func start(t *testing.T, r *Recorder, spec Spec) *Recording {
	t.Helper()
	if spec.Channels == 0 {
		spec.Channels = 2
	}
	rec, err := r.Start(spec)
	if err != nil {
		t.Fatal(err)
	}
	return rec
}

func readWAV(t *testing.T, path string) *WAV {
	t.Helper()
	w, err := ReadWAV(path)
	if err != nil {
		t.Fatal(err)
	}
	return w
}

// tone is what a test writes at pos: a sine whose phase follows the timeline, so a misplaced chunk shows.
func tone(freq float64, pos, n int) []int16 { return audiotest.Sine(freq, 0.5, rate, pos, n) }

type write struct {
	ch, pos, n int
	freq       float64
}

// model applies writes to plain slices: what the file must contain.
func model(channels int, writes []write) [][]int16 {
	end := 0
	for _, w := range writes {
		end = max(end, w.pos+w.n)
	}
	out := make([][]int16, channels)
	for c := range out {
		out[c] = make([]int16, end)
	}
	for _, w := range writes {
		copy(out[w.ch][w.pos:], tone(w.freq, w.pos, w.n))
	}
	return out
}

func chunks(ch, from, to int, freq float64) []write {
	var ws []write
	for p := from; p < to; p += chunk {
		ws = append(ws, write{ch, p, min(chunk, to-p), freq})
	}
	return ws
}

func equalChannels(t *testing.T, got *WAV, want [][]int16) {
	t.Helper()
	if len(got.Channels) != len(want) {
		t.Fatalf("%d channels, want %d", len(got.Channels), len(want))
	}
	for c := range want {
		if len(got.Channels[c]) != len(want[c]) {
			t.Fatalf("channel %d: %d samples, want %d", c, len(got.Channels[c]), len(want[c]))
		}
		if i := firstDiff(got.Channels[c], want[c]); i >= 0 {
			t.Fatalf("channel %d differs first at sample %d: %d, want %d", c, i, got.Channels[c][i], want[c][i])
		}
	}
}

func firstDiff(a, b []int16) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	if len(a) != len(b) {
		return min(len(a), len(b))
	}
	return -1
}

func TestTwoTonesShuffled(t *testing.T) {
	r := testRecorder(t, nil)
	rec := start(t, r, Spec{})
	const n = 3 * rate

	// Channel 1 runs 200 ms behind channel 0, and each stream's packets arrive shuffled within 100 ms:
	// everything stays within Lag (500 ms) of the newest sample, so nothing may be late.
	a, b := chunks(0, 0, n, toneA), chunks(1, 0, n, toneB)
	rng := rand.New(rand.NewPCG(1, 2))
	for _, s := range [][]write{a, b} {
		for i := 0; i < len(s); i += 5 {
			blk := s[i:min(i+5, len(s))]
			rng.Shuffle(len(blk), func(i, j int) { blk[i], blk[j] = blk[j], blk[i] })
		}
	}
	var order []write
	for i := range len(a) + 10 {
		if i < len(a) {
			order = append(order, a[i])
		}
		if i >= 10 {
			order = append(order, b[i-10])
		}
	}
	for i, w := range order {
		rec.Channel(w.ch).WriteSamples(int64(w.pos), tone(w.freq, w.pos, w.n))
		if i%25 == 0 {
			if err := rec.Flush(); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := rec.Close(nil); err != nil {
		t.Fatal(err)
	}

	w := readWAV(t, rec.WAVPath())
	equalChannels(t, w, model(2, order))
	for c, want := range []struct{ has, hasNot float64 }{{toneA, toneB}, {toneB, toneA}} {
		s := w.Channels[c]
		if got := audiotest.TonePresentSamples(s, rate, want.has); got < n*95/100 {
			t.Errorf("channel %d: %.0f Hz in %d samples, want >= 95%% of %d", c, want.has, got, n)
		}
		if got := audiotest.ToneCoverage(s, rate, want.hasNot); got != 0 {
			t.Errorf("channel %d: %.0f Hz found in %.0f%% of windows, want none", c, want.hasNot, 100*got)
		}
		if late := rec.Channel(c).Late(); late != 0 {
			t.Errorf("channel %d: %d late samples, want 0", c, late)
		}
	}
}

func TestTimeline(t *testing.T) {
	reversed := chunks(0, 0, 2400, toneA) // 300 ms, within Lag
	slices.Reverse(reversed)
	tests := []struct {
		name   string
		writes []write
	}{
		{"in order", append(chunks(0, 0, 8000, toneA), chunks(1, 0, 8000, toneB)...)},
		{"gap becomes silence", append(chunks(0, 0, 8000, toneA), chunks(0, 12000, 20000, toneA)...)},
		{"leading silence", chunks(0, 4000, 8000, toneA)},
		{"one channel silent", chunks(1, 0, 8000, toneB)},
		{"reordered", reversed},
		{"duplicate overwrites", []write{{0, 0, 160, toneA}, {0, 0, 160, toneB}, {1, 80, 160, toneA}}},
		{"slower stream", append(chunks(0, 0, 3200, toneA), chunks(1, 0, 3200, toneB)...)},
		{"odd sizes", []write{{0, 0, 7, toneA}, {1, 3, 1, toneB}, {0, 7, 1001, toneA}, {1, 1000, 13, toneB}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := testRecorder(t, nil)
			rec := start(t, r, Spec{})
			for _, w := range tt.writes {
				rec.Channel(w.ch).WriteSamples(int64(w.pos), tone(w.freq, w.pos, w.n))
			}
			if err := rec.Close(nil); err != nil {
				t.Fatal(err)
			}
			want := model(2, tt.writes)
			equalChannels(t, readWAV(t, rec.WAVPath()), want)
		})
	}

	t.Run("gap is silence of the right length", func(t *testing.T) {
		r := testRecorder(t, nil)
		rec := start(t, r, Spec{Channels: 1})
		for _, w := range append(chunks(0, 0, 8000, toneA), chunks(0, 12000, 20000, toneA)...) {
			rec.Channel(0).WriteSamples(int64(w.pos), tone(w.freq, w.pos, w.n))
			_ = rec.Flush()
		}
		if err := rec.Close(nil); err != nil {
			t.Fatal(err)
		}
		s := readWAV(t, rec.WAVPath()).Channels[0]
		if len(s) != 20000 {
			t.Fatalf("%d samples, want 20000", len(s))
		}
		if rms := audiotest.RMS(s[8000:12000]); rms != 0 {
			t.Errorf("gap RMS %f, want 0", rms)
		}
		for _, part := range [][]int16{s[:8000], s[12000:]} {
			if c := audiotest.ToneCoverage(part, rate, toneA); c != 1 {
				t.Errorf("tone coverage around the gap %.2f, want 1", c)
			}
		}
	})
}

func TestLateSamples(t *testing.T) {
	// After one second and a flush, the frontier is at 1 s - Lag = 4000 (Lag pinned at 500 ms here).
	tests := []struct {
		name     string
		pos      int64
		n        int
		wantLate int64
	}{
		{"well before the frontier", 0, 160, 160},
		{"straddling the frontier", 3920, 160, 80},
		{"at the frontier", 4000, 160, 0},
		{"before zero", -100, 50, 50},
		{"before zero and the frontier", -100, 160, 160},
		{"hugely negative", math.MinInt64, 160, 160},
		{"hugely negative, long", math.MinInt64 + 10, 400, 400},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := testRecorder(t, func(c *Config) { c.Lag = 500 * time.Millisecond })
			rec := start(t, r, Spec{Channels: 1})
			ch := rec.Channel(0)
			ch.WriteSamples(0, tone(toneA, 0, rate))
			if err := rec.Flush(); err != nil {
				t.Fatal(err)
			}
			ch.WriteSamples(tt.pos, make([]int16, tt.n)) // silence: visible if it lands
			if got := ch.Late(); got != tt.wantLate {
				t.Errorf("Late() = %d, want %d", got, tt.wantLate)
			}
			if err := rec.Close(nil); err != nil {
				t.Fatal(err)
			}
			s := readWAV(t, rec.WAVPath()).Channels[0]
			want := tone(toneA, 0, rate)
			if landed := int64(tt.n) - tt.wantLate; landed > 0 {
				p := tt.pos + tt.wantLate
				clear(want[p : p+landed])
			}
			if i := firstDiff(s, want); i >= 0 {
				t.Errorf("file differs from the expected audio at sample %d", i)
			}
		})
	}
}

func TestReadableAfterEveryFlush(t *testing.T) {
	r := testRecorder(t, nil)
	rec := start(t, r, Spec{})
	lag := int(frames(r.cfg.Lag, rate))

	check := func(wantFrames int) {
		t.Helper()
		b, err := os.ReadFile(rec.WAVPath())
		if err != nil {
			t.Fatal(err)
		}
		data := binary.LittleEndian.Uint32(b[40:])
		if riff := binary.LittleEndian.Uint32(b[4:]); riff != data+36 {
			t.Fatalf("RIFF size %d, want data size %d + 36", riff, data)
		}
		if int(data) != len(b)-wavHeaderLen {
			t.Fatalf("header says %d data bytes, file has %d", data, len(b)-wavHeaderLen)
		}
		w := readWAV(t, rec.WAVPath())
		equalChannels(t, w, model(2, append(chunks(0, 0, wantFrames, toneA), chunks(1, 0, wantFrames, toneB)...)))
	}

	check(0) // a fresh file is a valid empty WAV
	head := 0
	for head < 3*rate {
		for range 12 {
			rec.Channel(0).WriteSamples(int64(head), tone(toneA, head, chunk))
			rec.Channel(1).WriteSamples(int64(head), tone(toneB, head, chunk))
			head += chunk
		}
		if err := rec.Flush(); err != nil {
			t.Fatal(err)
		}
		check(max(head-lag, 0))
	}
	// A crash now (no Close) leaves everything but the last Lag readable: check did exactly that.
}

func TestCloseWritesDocument(t *testing.T) {
	end := t0 // the test clock
	initial := &Document{
		Source:       "siprec",
		Session:      map[string]string{"sip_call_id": "abc@sbc"},
		Identifiers:  []Identifier{{Kind: "ucid", Value: "00071252811778010124", Raw: "04FA08", Origin: "User-to-User"}},
		Participants: []Participant{{ID: "p1", Role: "caller"}},
	}
	tests := []struct {
		name      string
		doc       func() *Document
		wantState string
		wantSrc   string
		wantStart time.Time
		wantDur   float64
	}{
		{"nil means the initial document, completed", func() *Document { return nil }, StateCompleted, "siprec", t0.Add(-time.Minute), 60},
		{"empty state becomes completed", func() *Document { return &Document{Source: "audiohook"} }, StateCompleted, "audiohook", t0.Add(-time.Minute), 60},
		{"caller's state and times are kept", func() *Document {
			s := t0.Add(-2 * time.Minute)
			return &Document{RecordingID: "ignored", State: StateFailed, Start: s, End: &end, DurationSec: 1.5}
		}, StateFailed, "", t0.Add(-2 * time.Minute), 1.5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := testRecorder(t, nil)
			rec := start(t, r, Spec{ID: "rec-1", Start: t0.Add(-time.Minute), Document: initial})
			jsonPath := filepath.Join(r.cfg.Dir, t0Dir, "rec-1.json")
			if rec.WAVPath() != filepath.Join(r.cfg.Dir, t0Dir, "rec-1.wav") {
				t.Fatalf("WAVPath() = %s, want under %s", rec.WAVPath(), t0Dir)
			}

			// The initial document is on disk before any audio.
			first := readDoc(t, jsonPath)
			if first.State != StateRecording || first.RecordingID != "rec-1" || first.Audio == nil || first.Audio.Samples != 0 {
				t.Errorf("initial document: %+v", first)
			}
			if initial.State != "" || initial.RecordingID != "" {
				t.Errorf("Start modified the caller's document: %+v", initial)
			}

			rec.Channel(0).WriteSamples(0, tone(toneA, 0, rate))
			doc := tt.doc()
			if err := rec.Close(doc); err != nil {
				t.Fatal(err)
			}
			if err := rec.Close(doc); !errors.Is(err, ErrClosed) {
				t.Errorf("second Close: %v, want ErrClosed", err)
			}
			got := readDoc(t, jsonPath)
			wantAudio := AudioInfo{File: t0Dir + "/rec-1.wav", Format: "wav/pcm16", SampleRate: rate, Channels: 2, Samples: rate,
				SHA256: fileSHA256(t, rec.WAVPath())}
			if got.RecordingID != "rec-1" || got.State != tt.wantState || got.Source != tt.wantSrc ||
				!got.Start.Equal(tt.wantStart) || got.End == nil || !got.End.Equal(end) || got.DurationSec != tt.wantDur ||
				got.Audio == nil || *got.Audio != wantAudio {
				t.Errorf("document: %+v audio %+v", got, got.Audio)
			}
			if doc != nil && (doc.Audio == nil || doc.RecordingID != "rec-1") {
				t.Errorf("Close did not fill the caller's document: %+v", doc)
			}
			if tt.wantSrc == "siprec" && (got.Session["sip_call_id"] != "abc@sbc" || len(got.Identifiers) != 1 || len(got.Participants) != 1) {
				t.Errorf("initial document fields lost: %+v", got)
			}
			if r.Open() != 0 {
				t.Errorf("Open() = %d after Close, want 0", r.Open())
			}
			assertNoTempFiles(t, filepath.Dir(jsonPath))
		})
	}
}

func fileSHA256(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

func readDoc(t *testing.T, path string) Document {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var d Document
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatal(err)
	}
	return d
}

func assertNoTempFiles(t *testing.T, dir string) {
	t.Helper()
	leftovers, _ := filepath.Glob(filepath.Join(dir, ".*"))
	if len(leftovers) > 0 {
		t.Errorf("temporary files left: %v", leftovers)
	}
}

func TestWriteDocument(t *testing.T) {
	tests := []struct {
		name    string
		doc     *Document
		wantErr bool
	}{
		{"never activated", &Document{RecordingID: "s-1", Source: "siprec", State: StateNeverActivated}, false},
		{"generated id", &Document{State: StateNeverActivated, Start: t0.Add(-time.Hour)}, false},
		{"nil", nil, true},
		{"id escaping the directory", &Document{RecordingID: "../../etc/x"}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := testRecorder(t, nil)
			err := r.WriteDocument(tt.doc)
			if tt.wantErr {
				if err == nil {
					t.Fatal("WriteDocument succeeded, want an error")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tt.doc.RecordingID == "" {
				t.Fatal("RecordingID not filled")
			}
			dir := filepath.Join(r.cfg.Dir, tt.doc.Start.UTC().Format("2006/01/02"))
			got := readDoc(t, filepath.Join(dir, tt.doc.RecordingID+".json"))
			if got.RecordingID != tt.doc.RecordingID || got.State != StateNeverActivated || got.Audio != nil || got.End == nil {
				t.Errorf("document: %+v", got)
			}
			if wavs, _ := filepath.Glob(filepath.Join(dir, "*.wav")); len(wavs) > 0 {
				t.Errorf("WAV files written: %v", wavs)
			}
			assertNoTempFiles(t, dir)
		})
	}
}

func TestConcurrentWritesAndFlush(t *testing.T) {
	r := testRecorder(t, nil)
	rec := start(t, r, Spec{})
	const n = 5 * rate
	block := int(frames(r.cfg.Lag, rate)) // writers never drift apart by more than Lag

	// Two writers in lock step per block (a two-party barrier), a third goroutine flushing throughout.
	done := make(chan struct{})
	var flushes sync.WaitGroup
	flushes.Go(func() {
		for {
			select {
			case <-done:
				return
			default:
				if err := rec.Flush(); err != nil {
					t.Error(err)
					return
				}
				_ = r.Open()
			}
		}
	})
	var writers sync.WaitGroup
	ready := []chan struct{}{make(chan struct{}, 1), make(chan struct{}, 1)}
	for c, freq := range []float64{toneA, toneB} {
		writers.Go(func() {
			for from := 0; from < n; from += block {
				for _, w := range chunks(c, from, min(from+block, n), freq) {
					rec.Channel(c).WriteSamples(int64(w.pos), tone(freq, w.pos, w.n))
					_ = rec.Channel(c).Late()
				}
				ready[c] <- struct{}{}
				<-ready[1-c]
			}
		})
	}
	writers.Wait()
	close(done)
	flushes.Wait()
	if err := rec.Close(nil); err != nil {
		t.Fatal(err)
	}
	equalChannels(t, readWAV(t, rec.WAVPath()), model(2, append(chunks(0, 0, n, toneA), chunks(1, 0, n, toneB)...)))
	for c := range 2 {
		if late := rec.Channel(c).Late(); late != 0 {
			t.Errorf("channel %d: %d late samples", c, late)
		}
	}
}

func TestMaxAhead(t *testing.T) {
	tests := []struct {
		name     string
		writes   []write
		wantLate int64 // on channel 1
	}{
		{"steady stream, never flushed", chunks(0, 0, 30*rate, toneA), 0},
		{"jump ahead", append(chunks(0, 0, 4000, toneA), chunks(0, 60*rate, 60*rate+4000, toneA)...), 0},
		{"jump ahead with the other channel behind", append(append(chunks(0, 0, 4000, toneA), chunks(0, 60*rate, 60*rate+800, toneA)...), chunks(1, 0, 800, toneB)...), 800},
		{"one long write", []write{{0, 0, 20 * rate, toneA}}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := testRecorder(t, func(c *Config) { c.MaxAhead = 2 * time.Second })
			rec := start(t, r, Spec{})
			limit := int(frames(r.cfg.MaxAhead, rate)) * 2
			for _, w := range tt.writes {
				rec.Channel(w.ch).WriteSamples(int64(w.pos), tone(w.freq, w.pos, w.n))
				rec.mu.Lock()
				buffered := len(rec.pending)
				rec.mu.Unlock()
				if buffered > limit {
					t.Fatalf("after a write at %d: %d samples buffered, want <= %d", w.pos, buffered, limit)
				}
			}
			if err := rec.Close(nil); err != nil {
				t.Fatal(err)
			}
			// What landed is in place; what arrived after a forced flush passed it is counted late.
			late := rec.Channel(1).Late()
			if late != tt.wantLate {
				t.Errorf("channel 1: %d late, want %d", late, tt.wantLate)
			}
			want := model(2, tt.writes)
			if late > 0 {
				clear(want[1])
			}
			equalChannels(t, readWAV(t, rec.WAVPath()), want)
		})
	}

	t.Run("an hour-long jump costs no buffered audio", func(t *testing.T) {
		r := testRecorder(t, nil)
		rec := start(t, r, Spec{Channels: 1})
		rec.Channel(0).WriteSamples(0, tone(toneA, 0, chunk))
		hour := int64(3600 * rate)
		rec.Channel(0).WriteSamples(hour, tone(toneA, int(hour), chunk))
		if err := rec.Close(nil); err != nil {
			t.Fatal(err)
		}
		fi, err := os.Stat(rec.WAVPath())
		if err != nil {
			t.Fatal(err)
		}
		if want := wavHeaderLen + (hour+chunk)*2; fi.Size() != want {
			t.Errorf("file size %d, want %d", fi.Size(), want)
		}
	})
}

func TestSizeLimit(t *testing.T) {
	r := testRecorder(t, nil)
	rec := start(t, r, Spec{Channels: 1})
	rec.maxFrames = 1000 // stands in for the 4 GiB limit
	ch := rec.Channel(0)
	ch.WriteSamples(0, tone(toneA, 0, 900))
	ch.WriteSamples(900, tone(toneA, 900, 200))
	ch.WriteSamples(math.MaxInt64-10, tone(toneA, 0, 100))
	if err := rec.Close(nil); err != nil {
		t.Fatal(err)
	}
	if got := ch.Dropped(); got != 200 {
		t.Errorf("Dropped() = %d, want 200", got)
	}
	equalChannels(t, readWAV(t, rec.WAVPath()), [][]int16{tone(toneA, 0, 1000)})
}

func TestStartErrors(t *testing.T) {
	tests := []struct {
		name string
		spec Spec
	}{
		{"no channels", Spec{Channels: -1}},
		{"too many channels", Spec{Channels: MaxChannels + 1}},
		{"negative sample rate", Spec{Channels: 1, SampleRate: -8000}},
		{"sample rate too high", Spec{Channels: 1, SampleRate: MaxSampleRate + 1}},
		{"path in id", Spec{Channels: 1, ID: "../escape"}},
		{"hidden id", Spec{Channels: 1, ID: ".x"}},
		{"slash in id", Spec{Channels: 1, ID: "a/b"}},
		{"id too long", Spec{Channels: 1, ID: string(make([]byte, maxIDLen+1))}},
		{"duplicate id", Spec{Channels: 1, ID: "taken"}},
	}
	r := testRecorder(t, nil)
	start(t, r, Spec{ID: "taken"})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := r.Start(tt.spec); err == nil {
				t.Fatal("Start succeeded, want an error")
			}
			if r.Open() != 1 {
				t.Errorf("Open() = %d, want 1", r.Open())
			}
		})
	}
}

func TestStartDefaults(t *testing.T) {
	r := testRecorder(t, nil)
	rec := start(t, r, Spec{Channels: 1})
	if id, err := uuid.Parse(rec.ID()); err != nil || id.Version() != 7 {
		t.Errorf("ID() = %q, want a UUIDv7", rec.ID())
	}
	if rec.rate != DefaultSampleRate || !rec.start.Equal(t0) {
		t.Errorf("rate %d start %v, want %d %v", rec.rate, rec.start, DefaultSampleRate, t0)
	}
	if dir := filepath.Dir(rec.WAVPath()); dir != filepath.Join(r.cfg.Dir, t0Dir) {
		t.Errorf("WAV in %s, want %s", dir, t0Dir)
	}
	if rec.Channel(1) != nil || rec.Channel(-1) != nil {
		t.Error("Channel out of range is not nil")
	}
}

func TestSamplePosition(t *testing.T) {
	tests := []struct {
		name string
		rate int
		at   time.Time
		want int64
	}{
		{"start", 8000, t0, 0},
		{"one packet in", 8000, t0.Add(20 * time.Millisecond), 160},
		{"before start", 8000, t0.Add(-time.Second), -8000},
		{"rounds to nearest", 8000, t0.Add(62500 * time.Nanosecond), 1},
		{"rounds down", 8000, t0.Add(62499 * time.Nanosecond), 0},
		{"an hour", 8000, t0.Add(time.Hour), 3600 * 8000},
		{"wideband", 16000, t0.Add(20 * time.Millisecond), 320},
		{"far future does not overflow", 48000, t0.Add(200 * 365 * 24 * time.Hour), 200 * 365 * 24 * 3600 * 48000},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := testRecorder(t, nil)
			rec := start(t, r, Spec{Channels: 1, SampleRate: tt.rate, Start: t0})
			if got := rec.Channel(0).SamplePosition(tt.at); got != tt.want {
				t.Errorf("SamplePosition = %d, want %d", got, tt.want)
			}
		})
	}
}

func TestRecorderClose(t *testing.T) {
	r := testRecorder(t, nil)
	rec := start(t, r, Spec{ID: "open-at-shutdown"})
	ch := rec.Channel(0)
	ch.WriteSamples(0, tone(toneA, 0, rate))
	if r.Open() != 1 {
		t.Fatalf("Open() = %d, want 1", r.Open())
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if err := r.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if r.Open() != 0 {
		t.Errorf("Open() = %d after Close, want 0", r.Open())
	}
	// Everything buffered, including the last Lag, is in the file.
	equalChannels(t, readWAV(t, rec.WAVPath()), model(2, []write{{0, 0, rate, toneA}}))

	ch.WriteSamples(rate, tone(toneA, rate, chunk))
	if ch.Dropped() != chunk {
		t.Errorf("Dropped() = %d after close, want %d", ch.Dropped(), chunk)
	}
	if _, err := r.Start(Spec{Channels: 1}); !errors.Is(err, ErrClosed) {
		t.Errorf("Start after Close: %v, want ErrClosed", err)
	}
	// The caller's own Close still writes the document.
	if err := rec.Close(&Document{State: StateCompleted}); err != nil {
		t.Fatal(err)
	}
	doc := readDoc(t, filepath.Join(filepath.Dir(rec.WAVPath()), "open-at-shutdown.json"))
	if doc.State != StateCompleted || doc.Audio == nil || doc.Audio.Samples != rate {
		t.Errorf("document after shutdown: %+v", doc)
	}
}

func TestFlusher(t *testing.T) {
	r := testRecorder(t, func(c *Config) { c.FlushInterval = time.Millisecond })
	rec := start(t, r, Spec{Channels: 1})
	rec.Channel(0).WriteSamples(0, tone(toneA, 0, rate))
	// Wait for the ticker, however slow the machine; no timing is asserted.
	for {
		b, err := os.ReadFile(rec.WAVPath())
		if err != nil {
			t.Fatal(err)
		}
		if binary.LittleEndian.Uint32(b[40:]) > 0 {
			break
		}
		time.Sleep(time.Millisecond)
	}
	w := readWAV(t, rec.WAVPath())
	if want := rate - int(frames(r.cfg.Lag, rate)); len(w.Channels[0]) != want {
		t.Errorf("flusher wrote %d samples, want %d", len(w.Channels[0]), want)
	}
}

func TestWriteErrorIsReported(t *testing.T) {
	r := testRecorder(t, nil)
	rec := start(t, r, Spec{Channels: 1})
	rec.f.Close() // the disk goes away
	rec.Channel(0).WriteSamples(0, tone(toneA, 0, 2*rate))
	if err := rec.Flush(); err == nil {
		t.Error("Flush on a broken file succeeded")
	}
	rec.mu.Lock()
	buffered, frontier := len(rec.pending), rec.frontier
	rec.mu.Unlock()
	if frontier == 0 || buffered > int(frames(r.cfg.Lag, rate)) {
		t.Errorf("failed flush kept the audio: frontier %d, %d buffered", frontier, buffered)
	}
	if err := rec.Close(nil); err == nil {
		t.Error("Close of a recording that failed to write returned nil")
	}
}

// fullDisk is a WAV file on a disk that fills up after limit bytes: writes past it fail with ENOSPC.
type fullDisk struct {
	wavFile
	limit int64
}

func (f *fullDisk) WriteAt(b []byte, off int64) (int, error) {
	if off+int64(len(b)) <= f.limit {
		return f.wavFile.WriteAt(b, off)
	}
	n := 0
	if off < f.limit {
		n, _ = f.wavFile.WriteAt(b[:f.limit-off], off)
	}
	return n, syscall.ENOSPC
}

func (f *fullDisk) Truncate(size int64) error {
	if size > f.limit {
		return syscall.ENOSPC
	}
	return f.wavFile.Truncate(size)
}

// A recording whose audio could not all be written is never filed as a good one: the document says
// "failed" with the error, whatever state the caller asked for, and Close still returns the error.
func TestWriteFailureMarksDocumentFailed(t *testing.T) {
	reg := prometheus.NewRegistry()
	r := testRecorder(t, nil, WithRegisterer(reg))
	r.create = func(path string) (wavFile, error) {
		f, err := createWAV(path)
		if err != nil {
			return nil, err
		}
		return &fullDisk{wavFile: f, limit: wavHeaderLen + 1000}, nil
	}
	rec := start(t, r, Spec{ID: "enospc", Channels: 1, Start: t0})
	rec.Channel(0).WriteSamples(0, tone(toneA, 0, rate))
	if err := rec.Flush(); !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("Flush = %v, want ENOSPC", err)
	}
	err := rec.Close(&Document{Source: "siprec", State: StateCompleted})
	if !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("Close = %v, want ENOSPC", err)
	}

	doc := readDoc(t, filepath.Join(r.cfg.Dir, t0Dir, "enospc.json"))
	if doc.State != StateFailed {
		t.Errorf("state %q, want %q", doc.State, StateFailed)
	}
	if n := len(doc.Events); n == 0 || doc.Events[n-1].Type != "write_failed" ||
		!strings.Contains(doc.Events[n-1].Detail, syscall.ENOSPC.Error()) || !doc.Events[n-1].At.Equal(t0) {
		t.Errorf("events %+v, want a write_failed event naming the error", doc.Events)
	}
	// The damaged file is still accounted for: its checksum is in the document and the manifest.
	if doc.Audio == nil || doc.Audio.SHA256 != fileSHA256(t, rec.WAVPath()) {
		t.Errorf("audio %+v, want the file's SHA-256", doc.Audio)
	}
	if rep, err := Verify(r.cfg.Dir, nil); err != nil || !rep.OK() || rep.Checked != 2 {
		t.Errorf("Verify = %+v, %v; want both files listed and intact", rep, err)
	}
	if got := testutil.ToFloat64(r.met.documents.WithLabelValues(StateFailed)); got != 1 {
		t.Errorf("documents_total{state=failed} = %v, want 1", got)
	}
	if got := testutil.ToFloat64(r.met.writeErrors); got < 1 {
		t.Errorf("write_errors_total = %v, want at least 1", got)
	}
}

func BenchmarkWriteSamples(b *testing.B) {
	cfg := DefaultConfig()
	cfg.Dir = b.TempDir()
	cfg.FlushInterval = time.Hour
	r, err := New(cfg, WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		b.Fatal(err)
	}
	defer r.Close()
	rec, err := r.Start(Spec{Channels: 2})
	if err != nil {
		b.Fatal(err)
	}
	a, c := tone(toneA, 0, chunk), tone(toneB, 0, chunk)
	ch0, ch1 := rec.Channel(0), rec.Channel(1)
	var pos int64
	b.ReportAllocs()
	b.SetBytes(2 * chunk * 2)
	for i := 0; b.Loop(); i++ {
		ch0.WriteSamples(pos, a)
		ch1.WriteSamples(pos, c)
		pos += chunk
		if i%25 == 24 { // every 500 ms of audio, as the flusher would
			if err := rec.Flush(); err != nil {
				b.Fatal(err)
			}
		}
	}
}

func TestDiscardRemovesFiles(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Dir = t.TempDir()
	r, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	rec, err := r.Start(Spec{Channels: 2, Document: &Document{Source: "siprec"}})
	if err != nil {
		t.Fatal(err)
	}
	rec.Channel(0).WriteSamples(0, make([]int16, 160))
	if err := rec.Discard(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(rec.WAVPath()); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("WAV still there after Discard: %v", err)
	}
	if _, err := os.Stat(strings.TrimSuffix(rec.WAVPath(), ".wav") + ".json"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("document still there after Discard: %v", err)
	}
	if r.Open() != 0 {
		t.Errorf("Open() = %d after Discard", r.Open())
	}
	if err := rec.Close(nil); !errors.Is(err, ErrClosed) {
		t.Errorf("Close after Discard = %v, want ErrClosed", err)
	}
	rec.Channel(1).WriteSamples(0, make([]int16, 160)) // must not panic or write
}

// The hook sees every document write: the initial one, the final one and metadata-only ones.
func TestDocumentHook(t *testing.T) {
	var mu sync.Mutex
	var seen []string
	reg := prometheus.NewRegistry()
	r, err := New(Config{Dir: t.TempDir(), FlushInterval: time.Hour, Lag: 0, MaxAhead: time.Second}, WithRegisterer(reg),
		WithDocumentHook(func(rel string, doc Document) {
			mu.Lock()
			defer mu.Unlock()
			seen = append(seen, rel+" "+doc.State)
		}))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	t0 := time.Date(2026, 11, 21, 9, 0, 0, 0, time.UTC)
	rec, err := r.Start(Spec{ID: "rec-1", Channels: 1, Start: t0})
	if err != nil {
		t.Fatal(err)
	}
	if err := rec.Close(nil); err != nil {
		t.Fatal(err)
	}
	if err := r.WriteDocument(&Document{RecordingID: "doc-1", State: StateNeverActivated, Start: t0}); err != nil {
		t.Fatal(err)
	}
	want := []string{"2026/11/21/rec-1.json recording", "2026/11/21/rec-1.json completed", "2026/11/21/doc-1.json never_activated"}
	if !slices.Equal(seen, want) {
		t.Fatalf("hook saw %q, want %q", seen, want)
	}
	if err := testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP siphook_recorder_documents_total Metadata documents written, by the recording's state (recording, completed, never_activated, failed).
# TYPE siphook_recorder_documents_total counter
siphook_recorder_documents_total{state="completed"} 1
siphook_recorder_documents_total{state="failed"} 0
siphook_recorder_documents_total{state="never_activated"} 1
siphook_recorder_documents_total{state="recording"} 1
`), "siphook_recorder_documents_total"); err != nil {
		t.Error(err)
	}
}
