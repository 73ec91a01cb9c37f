package main

import (
	"bytes"
	"context"
	"io"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/siphook/siphook/internal/audiotest"
	"github.com/siphook/siphook/recorder"
)

// startTestDemo runs the demo's story on a loopback port and leaves its server running for the test.
func startTestDemo(t *testing.T, configure ...func(*Config)) (*demo, string) {
	t.Helper()
	var out bytes.Buffer
	opts := demoOptions{HTTP: "127.0.0.1:0", Recordings: t.TempDir(), Out: &out, Log: testLog()}
	if len(configure) > 0 {
		opts.Configure = configure[0]
	}
	d, err := startDemo(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(d.stop)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := d.play(ctx); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	return d, out.String()
}

// TestDemo: the story leaves four recordings with the callers' and agents' tones on their own channels and
// nothing of what was said on hold or in the consult, plus two records of sessions not recorded, each
// saying why; the output ends with the recordings and the web UI's address.
func TestDemo(t *testing.T) {
	d, out := startTestDemo(t)
	docs := readDocuments(d.cfg.Recorder.Dir)
	var recorded, consultLegs, unmatched int
	for _, doc := range docs {
		switch {
		case doc.State == recorder.StateCompleted:
			recorded++
			wav, err := recorder.ReadWAV(filepath.Join(d.cfg.Recorder.Dir, doc.Audio.File))
			if err != nil {
				t.Fatal(err)
			}
			rate := wav.SampleRate
			for ch, tone := range []float64{demoToneCall, demoToneAgent} {
				// The shortest recorded stretch is 1.5 s; allow for the jitter of the first and last packets.
				if got := audiotest.TonePresentSamples(wav.Channels[ch], rate, tone); got < rate*13/10 {
					t.Errorf("%s %s channel %d: %.0f Hz in %d samples, want ≥ 1.3 s", doc.Source, doc.RecordingID, ch, tone, got)
				}
				if got := audiotest.TonePresentSamples(wav.Channels[ch], rate, 2000); got > 0 {
					t.Errorf("%s %s channel %d: the on-hold/consult tone was recorded (%d samples)", doc.Source, doc.RecordingID, ch, got)
				}
			}
			if doc.Call == nil || len(doc.Call.Agents) == 0 {
				t.Errorf("recording %s: not matched to a call with agents: %+v", doc.RecordingID, doc.Call)
			}
		case doc.State == recorder.StateNeverActivated && doc.Call != nil && strings.HasPrefix(doc.NotRecorded, "a consultation"):
			consultLegs++
		case doc.State == recorder.StateNeverActivated && strings.Contains(doc.Unmatched, "no CTI event with ucid"):
			unmatched++
		default:
			t.Errorf("unexpected document: state %s, call %+v, unmatched %q", doc.State, doc.Call, doc.Unmatched)
		}
	}
	if recorded != 4 || consultLegs != 1 || unmatched != 1 {
		t.Errorf("%d recorded, %d consult legs, %d unmatched; want 4, 1, 1", recorded, consultLegs, unmatched)
	}
	if !strings.Contains(out, "6 recordings in ") || !strings.Contains(out, d.url()+"#/recordings/") {
		t.Errorf("the story's output lacks the recordings list or the UI's address:\n%s", out)
	}
}

func testLog() io.Writer { return io.Discard }
