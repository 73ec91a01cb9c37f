package api

import (
	"flag"
	"log/slog"
	"os"
	"runtime"
	"testing"
	"time"

	"github.com/siphook/siphook/internal/leaktest"
	"github.com/siphook/siphook/recorder"
)

func TestMain(m *testing.M) {
	baseline := runtime.NumGoroutine()
	code := m.Run()
	if fuzzing := flag.Lookup("test.fuzz").Value.String() != ""; code == 0 && !fuzzing { // the fuzzer has goroutines of its own
		code = leaktest.Check(baseline, 10*time.Second)
	}
	os.Exit(code)
}

var quiet = slog.New(slog.DiscardHandler)

// t0 is when the test recordings start.
var t0 = time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC)

// openIndex opens the index of dir, closed at the end of the test.
func openIndex(t *testing.T, dir string) *Index {
	t.Helper()
	ix, err := OpenIndex(dir, WithIndexLogger(quiet))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ix.Close() })
	return ix
}

// newRecorder writes into dir and tells ix about every document.
func newRecorder(t *testing.T, dir string, ix *Index) *recorder.Recorder {
	t.Helper()
	rec, err := recorder.New(recorder.Config{Dir: dir, FlushInterval: time.Hour, Lag: 0, MaxAhead: time.Second},
		recorder.WithDocumentHook(ix.Observe), recorder.WithLogger(quiet))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rec.Close() })
	return rec
}

// writeDoc writes a metadata-only document.
func writeDoc(t *testing.T, r *recorder.Recorder, doc recorder.Document) {
	t.Helper()
	if err := r.WriteDocument(&doc); err != nil {
		t.Fatal(err)
	}
}

// record writes a completed recording with one slice of samples per channel, and returns its id.
func record(t *testing.T, r *recorder.Recorder, id string, start time.Time, doc recorder.Document, pcm ...[]int16) string {
	t.Helper()
	rec, err := r.Start(recorder.Spec{ID: id, Channels: len(pcm), Start: start, Document: &doc})
	if err != nil {
		t.Fatal(err)
	}
	for c, p := range pcm {
		rec.Channel(c).WriteSamples(0, p)
	}
	doc.State = recorder.StateCompleted
	if err := rec.Close(&doc); err != nil {
		t.Fatal(err)
	}
	return rec.ID()
}

func ptr[T any](v T) *T { return &v }
