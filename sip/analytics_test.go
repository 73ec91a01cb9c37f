package sip

import (
	"math"
	"testing"
	"time"
)

// TestVoiceActivityEndToEnd: a call whose shape is known (caller talks 1 s alone, the agent 1 s alone, both
// 0.6 s at once, then 1 s of silence on both) comes out of the server with talk, silence and talk-over in its
// analytics. The recorder's own tests hold the detector to 50 ms; over loopback RTP and the sweep reader this
// allows 100 ms.
func TestVoiceActivityEndToEnd(t *testing.T) {
	ts := newTestServer(t, ActivateImmediately)
	ctx, call, sess := recordingCall(t, ts)
	for _, step := range []struct {
		tones []float64
		d     time.Duration
	}{
		{[]float64{440, 0}, time.Second},
		{[]float64{0, 1000}, time.Second},
		{[]float64{440, 1000}, 600 * time.Millisecond},
		{[]float64{0, 0}, time.Second},
	} {
		if err := call.SendTones(ctx, step.tones, step.d); err != nil {
			t.Fatal(err)
		}
	}
	doc := hangUp(ctx, t, ts, call, sess)
	a := doc.Analytics
	if a == nil || len(a.Channels) != 2 {
		t.Fatalf("analytics %+v", a)
	}
	near := func(what string, got, want float64) {
		t.Helper()
		if math.Abs(got-want) > 0.1 {
			t.Errorf("%s %.3f s, want %.3f ± 0.1", what, got, want)
		}
	}
	near("caller talk", a.Channels[0].TalkSec, 1.6)
	near("agent talk", a.Channels[1].TalkSec, 1.6)
	near("talk-over", a.TalkOverSec, 0.6)
	// The trailing second of silence is the longest stretch nobody spoke (the recording may end a little
	// before the last packet, so it can be shorter, never longer).
	if a.LongestSilenceSec > 1.1 || a.LongestSilenceSec < 0.8 {
		t.Errorf("longest mutual silence %.3f s, want about 1", a.LongestSilenceSec)
	}
	if a.MOS < 4 {
		t.Errorf("MOS %.2f for a clean loopback call", a.MOS)
	}
}
