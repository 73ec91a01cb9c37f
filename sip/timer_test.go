package sip

import (
	"context"
	"strings"
	"testing"
	"time"

	sipgosip "github.com/emiago/sipgo/sip"

	"github.com/siphook/siphook/sip/siptest"
)

func TestParseSessionExpires(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want SessionExpires
		err  bool
	}{
		{in: "1800", want: SessionExpires{Delta: 1800}},
		{in: "1800;refresher=uac", want: SessionExpires{Delta: 1800, Refresher: "uac"}},
		{in: " 90 ; Refresher = UAS ", want: SessionExpires{Delta: 90, Refresher: "uas"}},
		{in: "2400;foo=bar;refresher=uac", want: SessionExpires{Delta: 2400, Refresher: "uac"}},
		{in: "0", err: true},
		{in: "-5", err: true},
		{in: "99999999999", err: true},
		{in: "abc", err: true},
		{in: "", err: true},
		{in: "1800;refresher=proxy", err: true},
	} {
		got, err := ParseSessionExpires(tc.in)
		if (err != nil) != tc.err || got != tc.want {
			t.Errorf("ParseSessionExpires(%q) = %+v, %v; want %+v, error %v", tc.in, got, err, tc.want, tc.err)
		}
		if err == nil {
			if again, err := ParseSessionExpires(got.String()); err != nil || again != got {
				t.Errorf("%q does not round-trip: %+v, %v", got.String(), again, err)
			}
		}
	}
	if m, err := ParseMinSE("90;x=y"); err != nil || m != 90 {
		t.Errorf("ParseMinSE = %d, %v", m, err)
	}
}

func TestSessionTimerRoles(t *testing.T) {
	we := &sessionTimer{interval: 90 * time.Second, weRefresh: true}
	they := &sessionTimer{interval: 90 * time.Second}
	// refresher names the role in the transaction carrying the header.
	if got := we.header(true); got != "90;refresher=uac" {
		t.Errorf("our re-INVITE as refresher: %q", got)
	}
	if got := we.header(false); got != "90;refresher=uas" {
		t.Errorf("our answer as refresher: %q", got)
	}
	if got := they.header(false); got != "90;refresher=uac" {
		t.Errorf("our answer, SRC refreshes: %q", got)
	}
	if we.wait() != 45*time.Second || they.wait() != 60*time.Second {
		t.Errorf("waits = %v, %v; want 45s (half) and 60s (90 - min(32, 30))", we.wait(), they.wait())
	}
	if long := (&sessionTimer{interval: 1800 * time.Second}).wait(); long != 1768*time.Second {
		t.Errorf("1800 s timer expires after %v, want 1768s", long)
	}
}

// shortTimers lets tests use session intervals of seconds (RFC 4028 allows no less than 90 s).
func shortTimers(s *Server) { s.cfg.MinSessionExpires = time.Second }

func TestSessionTimerTooSmall(t *testing.T) {
	ts := newTestServer(t, ActivateImmediately)
	src := newSRC(t, "tcp")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := src.Invite(ctx, siptest.Dial{Target: ts.Addr("tcp"), Template: loadTemplate(t, "oracle-sbc-2026-headers-template-INVITE.txt"),
		Headers: [][2]string{{"Session-Expires", "30;refresher=uac"}, {"Supported", "timer"}}})
	if code := siptest.ResponseCode(err); code != 422 {
		t.Fatalf("Session-Expires 30 answered %d (%v), want 422", code, err)
	}
	res := siptest.Response(err)
	if h := res.GetHeader("Min-SE"); h == nil || h.Value() != "90" {
		t.Errorf("422 without Min-SE: 90: %v", res)
	}
	waitFor(t, "no session", func() bool { return ts.Sessions() == 0 })
}

// TestSessionTimerExpiry: the SRC asks to refresh (refresher=uac) and never does; we hang up before the
// interval ends and finalise the recording.
func TestSessionTimerExpiry(t *testing.T) {
	ts := newTestServer(t, ActivateImmediately, shortTimers)
	src := newSRC(t, "tcp")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	call, err := src.Invite(ctx, siptest.Dial{Target: ts.Addr("tcp"), Template: loadTemplate(t, "oracle-sbc-2026-headers-template-INVITE.txt"),
		Headers: [][2]string{{"Session-Expires", "3;refresher=uac"}, {"Supported", "timer"}}})
	if err != nil {
		t.Fatal(err)
	}
	if h := call.Answer.GetHeader("Session-Expires"); h == nil || h.Value() != "3;refresher=uac" {
		t.Errorf("answer Session-Expires = %v, want 3;refresher=uac", h)
	}
	if h := call.Answer.GetHeader("Require"); h == nil || !strings.Contains(h.Value(), "timer") {
		t.Errorf("answer lacks Require: timer: %v", h)
	}
	sess := ts.SessionByCallID(call.CallID)
	if err := call.SendTones(ctx, []float64{440, 1000}, 500*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	select {
	case <-call.Ended():
	case <-ctx.Done():
		t.Fatal("no BYE after the session timer ran out")
	}
	<-sess.Done()
	doc := readDocument(t, ts.dir)
	if doc.State != "completed" || doc.Session["end_reason"] != "session_expired" {
		t.Errorf("document state %q, end_reason %q; want completed, session_expired", doc.State, doc.Session["end_reason"])
	}
}

// TestSessionTimerWeRefresh: asked to refresh (refresher=uas), we re-INVITE at half the interval and the
// SRC's 200s keep the session alive past it; an SRC refresh (re-INVITE) is answered with the timer too.
func TestSessionTimerWeRefresh(t *testing.T) {
	ts := newTestServer(t, ActivateImmediately, shortTimers)
	src := newSRC(t, "tcp")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	call, err := src.Invite(ctx, siptest.Dial{Target: ts.Addr("tcp"), Template: loadTemplate(t, "oracle-sbc-2026-headers-template-INVITE.txt"),
		Headers: [][2]string{{"Session-Expires", "2;refresher=uas"}, {"Supported", "timer"}}})
	if err != nil {
		t.Fatal(err)
	}
	sess := ts.SessionByCallID(call.CallID)
	var refreshes []*sipgosip.Request
	for len(refreshes) < 3 {
		req, err := call.WaitReinvite(ctx)
		if err != nil {
			t.Fatalf("after %d refreshes: %v", len(refreshes), err)
		}
		refreshes = append(refreshes, req)
	}
	for _, r := range refreshes {
		if h := r.GetHeader("Session-Expires"); h == nil || h.Value() != "2;refresher=uac" {
			t.Errorf("refresh re-INVITE Session-Expires = %v, want 2;refresher=uac (we send it, we refresh)", h)
		}
	}
	// Three refreshes at half of a 2 s interval span more than the interval: without them the session would
	// have expired (no wall-clock assertion needed).
	if sess.State() != StateRecording {
		t.Errorf("after three refreshes: state %v", sess.State())
	}
	if strings.Join(call.Directions(), ",") != "recvonly,recvonly" {
		t.Errorf("refresh changed the directions: %v", call.Directions())
	}
	if err := call.Bye(ctx); err != nil {
		t.Fatal(err)
	}
	<-sess.Done()
	if got := readDocument(t, ts.dir).Session["end_reason"]; got != "bye" {
		t.Errorf("end_reason = %q, want bye", got)
	}
}

func FuzzParseSessionExpires(f *testing.F) {
	for _, s := range []string{"1800", "1800;refresher=uac", "90;refresher=uas;x", "0", ";", "1;refresher", "4294967295"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		se, err := ParseSessionExpires(v)
		if err != nil {
			return
		}
		if se.Delta == 0 || (se.Refresher != "" && se.Refresher != "uac" && se.Refresher != "uas") {
			t.Fatalf("%q parsed to %+v", v, se)
		}
		if again, err := ParseSessionExpires(se.String()); err != nil || again != se {
			t.Fatalf("%q → %+v → %q → %+v, %v", v, se, se.String(), again, err)
		}
		_, _ = ParseMinSE(v)
	})
}
