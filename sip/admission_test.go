package sip

import (
	"context"
	"errors"
	"net/netip"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/siphook/siphook/internal/audiotest"
	"github.com/siphook/siphook/recorder"
	"github.com/siphook/siphook/sip/siptest"
)

func oracleDial(t *testing.T, ts *testServer, transport string) siptest.Dial {
	return siptest.Dial{Target: ts.Addr(transport), Template: loadTemplate(t, "oracle-sbc-2026-headers-template-INVITE.txt")}
}

// recordingCall places one Oracle-style call over TCP on a server recording at once; the context ends with
// the test (30 s at most).
func recordingCall(t *testing.T, ts *testServer) (context.Context, *siptest.Call, *Session) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	call := placeCalls(ctx, t, newSRC(t, "tcp"), ts, 1)[0]
	return ctx, call, ts.SessionByCallID(call.CallID)
}

// placeCalls sets up n Oracle-style calls over TCP.
func placeCalls(ctx context.Context, t *testing.T, src *siptest.SRC, ts *testServer, n int) []*siptest.Call {
	t.Helper()
	var calls []*siptest.Call
	for range n {
		call, err := src.Invite(ctx, oracleDial(t, ts, "tcp"))
		if err != nil {
			t.Fatal(err)
		}
		calls = append(calls, call)
	}
	return calls
}

func TestAdmissionAllowList(t *testing.T) {
	ts := newTestServer(t, ActivateImmediately, func(s *Server) { s.cfg.Admission.AllowSources = []string{"192.0.2.0/24", "::1"} })
	src := newSRC(t, "tcp")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := src.Invite(ctx, oracleDial(t, ts, "tcp"))
	if code := siptest.ResponseCode(err); code != 403 {
		t.Fatalf("INVITE from 127.0.0.1 answered %d (%v), want 403", code, err)
	}
	if w := siptest.Response(err).GetHeader("Warning"); w == nil || !strings.Contains(w.Value(), "allow_sources") {
		t.Errorf("403 does not say why: %v", w)
	}

	allowed := newTestServer(t, ActivateImmediately, func(s *Server) { s.cfg.Admission.AllowSources = []string{"127.0.0.0/8"} })
	call, err := src.Invite(ctx, oracleDial(t, allowed, "tcp"))
	if err != nil {
		t.Fatalf("INVITE from an allowed source: %v", err)
	}
	call.Bye(ctx)
}

func TestAdmissionMaxSessions(t *testing.T) {
	ts := newTestServer(t, ActivateImmediately, func(s *Server) { s.cfg.Admission.MaxSessions = 2 })
	src := newSRC(t, "tcp")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	calls := placeCalls(ctx, t, src, ts, 2)
	_, err := src.Invite(ctx, oracleDial(t, ts, "tcp"))
	if code := siptest.ResponseCode(err); code != 503 {
		t.Fatalf("third INVITE answered %d (%v), want 503", code, err)
	}
	if h := siptest.Response(err).GetHeader("Retry-After"); h == nil {
		t.Error("503 without Retry-After")
	}
	calls[0].Bye(ctx)
	waitFor(t, "a free slot", func() bool { return ts.Sessions() == 1 })
	call, err := src.Invite(ctx, oracleDial(t, ts, "tcp"))
	if err != nil {
		t.Fatalf("INVITE after a session ended: %v", err)
	}
	call.Bye(ctx)
	calls[1].Bye(ctx)
}

func TestAdmissionMaxStreams(t *testing.T) {
	ts := newTestServer(t, ActivateImmediately, func(s *Server) { s.cfg.Admission.MaxStreams = 1 })
	src := newSRC(t, "tcp")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := src.Invite(ctx, oracleDial(t, ts, "tcp")) // two audio m-lines
	if code := siptest.ResponseCode(err); code != 488 {
		t.Fatalf("two streams with max_streams 1 answered %d (%v), want 488", code, err)
	}
	if free, size := ts.media.Ports().Free(), ts.media.Ports().Size(); free != size {
		t.Errorf("%d of %d ports free after the refusal", free, size)
	}
}

func TestAdmissionInviteRate(t *testing.T) {
	ts := newTestServer(t, ActivateImmediately, func(s *Server) {
		s.cfg.Admission.InviteRate, s.cfg.Admission.InviteBurst = 0.5, 2
	})
	src := newSRC(t, "tcp")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	calls := placeCalls(ctx, t, src, ts, 2)
	_, err := src.Invite(ctx, oracleDial(t, ts, "tcp"))
	if code := siptest.ResponseCode(err); code != 503 {
		t.Fatalf("INVITE beyond the burst answered %d (%v), want 503", code, err)
	}
	for _, c := range calls {
		c.Bye(ctx)
	}
}

func TestAdmissionLimiterForgetsIdleSources(t *testing.T) {
	a := newAdmission(Admission{InviteRate: 10, InviteBurst: 10})
	now := time.Unix(1000, 0)
	for i := range 1000 {
		a.takeInvite(netip.AddrFrom4([4]byte{10, 0, byte(i >> 8), byte(i)}), now)
	}
	if !a.takeInvite(netip.MustParseAddr("10.9.9.9"), now.Add(5*time.Second)) {
		t.Fatal("fresh source refused")
	}
	if n := len(a.limiters); n != 1 {
		t.Errorf("%d limiters kept after every other source went idle, want 1", n)
	}
}

// TestAdmissionDiskFloor: below the recordings disk's free-space floor a new INVITE gets 503 with
// Retry-After and the server is not ready, while the call already recording goes on and is written whole;
// above it again, INVITEs are taken.
func TestAdmissionDiskFloor(t *testing.T) {
	var free atomic.Uint64
	free.Store(10 << 30)
	ts := newTestServerWith(t, ActivateImmediately, []recorder.Option{recorder.WithFreeSpace(func(string) (uint64, error) { return free.Load(), nil })})
	ctx, call, sess := recordingCall(t, ts)
	call.SendTones(ctx, []float64{440, 1000}, 500*time.Millisecond)

	free.Store(100 << 20) // 100 MiB, below the default 1 GiB floor
	waitFor(t, "the recorder to see the disk low", func() bool { return ts.rec.Accepting() != nil })
	src := newSRC(t, "tcp")
	_, err := src.Invite(ctx, oracleDial(t, ts, "tcp"))
	if code := siptest.ResponseCode(err); code != 503 {
		t.Fatalf("INVITE with the disk low answered %d (%v), want 503", code, err)
	}
	if h := siptest.Response(err).GetHeader("Retry-After"); h == nil {
		t.Error("503 without Retry-After")
	}
	if err := ts.Ready(); !errors.Is(err, recorder.ErrDiskLow) {
		t.Errorf("Ready() = %v, want the disk low", err)
	}
	call.SendTones(ctx, []float64{440, 1000}, 500*time.Millisecond) // the call in progress keeps recording
	doc := hangUp(ctx, t, ts, call, sess)
	if doc.State != recorder.StateCompleted {
		t.Errorf("the call in progress ended %s", doc.State)
	}
	wav, err := recorder.ReadWAV(filepath.Join(ts.dir, doc.Audio.File))
	if err != nil {
		t.Fatal(err)
	}
	if got := audiotest.TonePresentSamples(wav.Channels[0], 8000, 440); got < 8000*9/10 {
		t.Errorf("440 Hz in %d samples, want the whole second sent before and after the disk went low", got)
	}

	free.Store(10 << 30)
	waitFor(t, "the recorder to see space again", func() bool { return ts.rec.Accepting() == nil })
	if _, err := src.Invite(ctx, oracleDial(t, ts, "tcp")); err != nil {
		t.Fatalf("INVITE with space again: %v", err)
	}
}
