package recorder

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// TestAnalyticsHistograms: a finished recording's analytics and its streams' quality are observed once; a
// document of a recording in progress is not.
func TestAnalyticsHistograms(t *testing.T) {
	reg := prometheus.NewRegistry()
	r, err := New(Config{Dir: t.TempDir(), FlushInterval: time.Hour, MaxAhead: time.Second}, WithRegisterer(reg))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	doc := Document{RecordingID: "a1", State: StateCompleted, Start: time.Date(2026, 11, 21, 9, 0, 0, 0, time.UTC),
		Analytics: &Analytics{SilenceRatio: 0.3, TalkOverRatio: 0.02, LongestSilenceSec: 4, MOS: 4.1},
		Channels:  []ChannelInfo{{Stats: StreamStats{Expected: 100, Lost: 2, JitterMs: 3}}, {Stats: StreamStats{Expected: 100, JitterMs: 1}}}}
	if err := r.WriteDocument(&doc); err != nil {
		t.Fatal(err)
	}
	progress := Document{RecordingID: "a2", State: StateRecording, Start: doc.Start, Analytics: doc.Analytics}
	if err := r.WriteDocument(&progress); err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]int{"siphook_recording_silence_ratio": 1, "siphook_recording_mos": 1,
		"siphook_recording_stream_jitter_seconds": 2, "siphook_recording_stream_loss_ratio": 2} {
		mfs, _ := reg.Gather()
		got := -1
		for _, mf := range mfs {
			if mf.GetName() == name {
				got = int(mf.GetMetric()[0].GetHistogram().GetSampleCount())
			}
		}
		if got != want {
			t.Errorf("%s: %d observations, want %d", name, got, want)
		}
	}
	if n, err := testutil.GatherAndCount(reg, "siphook_recording_talk_over_ratio"); err != nil || n != 1 {
		t.Errorf("talk-over histogram: %d series (%v)", n, err)
	}
}
