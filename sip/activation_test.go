package sip

import (
	"context"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emiago/sipgo"
	sipgosip "github.com/emiago/sipgo/sip"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/siphook/siphook/internal/audiotest"
	"github.com/siphook/siphook/recorder"
	"github.com/siphook/siphook/sip/siptest"
)

// waitingCall sets up an on-match session and returns it with the SRC's side of the call.
func waitingCall(t *testing.T, transport string, src *siptest.SRC) (*testServer, *Session, *siptest.Call) {
	t.Helper()
	waiting := make(chan *Session, 1)
	ts := newTestServer(t, ActivateOnMatch, WithOnWaiting(func(s *Session) { waiting <- s }))
	ts.jitter = func() time.Duration { return 0 } // 491 back-off without waiting
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	call, err := src.Invite(ctx, siptest.Dial{Target: ts.Addr(transport), Template: loadTemplate(t, "oracle-sbc-2026-headers-template-INVITE.txt")})
	if err != nil {
		t.Fatal(err)
	}
	select {
	case sess := <-waiting:
		return ts, sess, call
	case <-ctx.Done():
		t.Fatal("session never waiting")
	}
	return nil, nil, nil
}

func TestActivationRetriesAfterGlare(t *testing.T) {
	src := newSRC(t, "tcp")
	var reinvites atomic.Int32
	src.OnReinvite = func(*siptest.Call, *sipgosip.Request) int {
		if reinvites.Add(1) == 1 {
			return 491 // the SRC's own re-INVITE crossed ours
		}
		return 200
	}
	ts, sess, call := waitingCall(t, "tcp", src)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := sess.Activate(ctx); err != nil {
		t.Fatalf("Activate after one 491: %v", err)
	}
	if got := reinvites.Load(); got != 2 {
		t.Errorf("re-INVITEs sent = %d, want 2 (one 491, one retry)", got)
	}
	if got := testutil.ToFloat64(ts.m.reinvites.WithLabelValues("recvonly", "glare")); got != 1 {
		t.Errorf("glare counter = %v, want 1", got)
	}
	if sess.State() != StateRecording || strings.Join(call.Directions(), ",") != "recvonly,recvonly" {
		t.Errorf("state %v, SRC sees %v", sess.State(), call.Directions())
	}
}

func TestActivationRefusedLeavesSessionWaiting(t *testing.T) {
	src := newSRC(t, "tcp")
	src.OnReinvite = func(*siptest.Call, *sipgosip.Request) int { return 488 }
	ts, sess, call := waitingCall(t, "tcp", src)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := sess.Activate(ctx); err == nil || !strings.Contains(err.Error(), "488") {
		t.Fatalf("Activate against a 488 = %v, want an error naming 488", err)
	}
	if got := testutil.ToFloat64(ts.m.reinvites.WithLabelValues("recvonly", "failed")); got != 1 {
		t.Errorf("failure counter = %v, want 1", got)
	}
	if sess.State() != StateWaiting {
		t.Errorf("state after a refused activation = %v, want waiting", sess.State())
	}
	// Audio the SRC sends anyway is not recorded.
	if err := call.SendTones(ctx, []float64{440, 1000}, 200*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if err := call.Bye(ctx); err != nil {
		t.Fatal(err)
	}
	<-sess.Done()
	if doc := readDocument(t, ts.dir); doc.State != "never_activated" {
		t.Errorf("document state = %q, want never_activated", doc.State)
	}
}

func TestActivationEndsDeadDialog(t *testing.T) {
	src := newSRC(t, "tcp")
	src.OnReinvite = func(*siptest.Call, *sipgosip.Request) int { return 481 }
	ts, sess, _ := waitingCall(t, "tcp", src)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := sess.Activate(ctx); err == nil {
		t.Fatal("Activate against a 481 succeeded")
	}
	<-sess.Done()
	if got := readDocument(t, ts.dir).Session["end_reason"]; got != "reinvite_481" {
		t.Errorf("end_reason = %q, want reinvite_481", got)
	}
}

// TestPauseAndResume pauses a recording (re-INVITE inactive) and resumes it: the paused stretch is silence,
// both stretches around it carry their tones, and the events say what happened.
func TestPauseAndResume(t *testing.T) {
	src := newSRC(t, "tcp")
	ts, sess, call := waitingCall(t, "tcp", src)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	step := func(name string, f func(context.Context) error, want string) {
		t.Helper()
		if err := f(ctx); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if got := strings.Join(call.Directions(), ","); got != want+","+want {
			t.Fatalf("after %s the SRC sees %s", name, got)
		}
	}
	step("Activate", sess.Activate, "recvonly")
	call.SendTones(ctx, []float64{440, 1000}, time.Second)
	step("Pause", sess.Pause, "inactive")
	if sess.State() != StatePaused {
		t.Fatalf("state = %v, want paused", sess.State())
	}
	time.Sleep(time.Second) // a paused stretch with no audio
	step("Activate again", sess.Activate, "recvonly")
	call.SendTones(ctx, []float64{440, 1000}, time.Second)
	doc := hangUp(ctx, t, ts, call, sess)
	if types := eventTypes(doc); types != "activated,paused,resumed" {
		t.Errorf("events = %v", types)
	}
	if len(doc.Pauses) != 1 || doc.Pauses[0].By != "srs" || doc.Pauses[0].End == nil {
		t.Errorf("pauses = %+v, want one closed pause by the srs", doc.Pauses)
	}
	if doc.Audio == nil || doc.Audio.Samples < 2*8000 {
		t.Fatalf("audio = %+v, want at least the two recorded seconds", doc.Audio)
	}
}

func TestByeWithMetadataBody(t *testing.T) {
	src := newSRC(t, "tcp")
	ts, sess, call := waitingCall(t, "tcp", src)
	body, err := os.ReadFile(samples + "sonus-ribbon-2026-metadata-body-BYE-partial.txt")
	if err != nil {
		t.Fatal(err)
	}
	_, xml, _ := strings.Cut(string(body), "\n") // drop the "# source:" line
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := call.ByeWithBody(ctx, "application/rs-metadata+xml", []byte(xml)); err != nil {
		t.Fatalf("BYE with a body was not answered 200: %v", err)
	}
	<-sess.Done()
	if doc := readDocument(t, ts.dir); doc.Session["end_reason"] != "bye" {
		t.Errorf("end_reason = %q", doc.Session["end_reason"])
	}
}

func TestOptionsAdvertisesCapabilities(t *testing.T) {
	ts := newTestServer(t, ActivateOnMatch)
	ua, err := sipgo.NewUA()
	if err != nil {
		t.Fatal(err)
	}
	defer ua.Close()
	client, err := sipgo.NewClient(ua, sipgo.WithClientHostname("127.0.0.1"))
	if err != nil {
		t.Fatal(err)
	}
	host, port := ts.contactHostPort("udp")
	req := sipgosip.NewRequest(sipgosip.OPTIONS, sipgosip.Uri{Scheme: "sip", Host: host, Port: port})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	res, err := client.Do(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if res.StatusCode != 200 {
		t.Fatalf("OPTIONS answered %d", res.StatusCode)
	}
	for name, want := range map[string]string{"Allow": "INVITE", "Accept": "application/rs-metadata+xml", "Supported": "siprec"} {
		if h := res.GetHeader(name); h == nil || !strings.Contains(h.Value(), want) {
			t.Errorf("%s = %v, want it to hold %s", name, h, want)
		}
	}
}

func TestSIPRECRecognition(t *testing.T) {
	for _, tc := range []struct {
		name    string
		headers [][2]string
		body    SIPRECBody
		want    bool
	}{
		{"Require: siprec", [][2]string{{"Require", "timer, siprec"}}, SIPRECBody{}, true},
		{"Proxy-Require: SIPREC", [][2]string{{"Proxy-Require", "SIPREC"}}, SIPRECBody{}, true},
		{"+sip.src on Contact", [][2]string{{"Contact", "<sip:src@10.0.0.1>;+sip.src"}}, SIPRECBody{}, true},
		{"src on Contact (AudioCodes, BroadWorks)", [][2]string{{"Contact", "<sip:src@10.0.0.1>;src"}}, SIPRECBody{}, true},
		{"+sip.src inside the URI (Avaya SBCE)", [][2]string{{"Contact", "<sip:src@10.0.0.1;transport=tcp;+sip.src>"}}, SIPRECBody{}, true},
		{"metadata part only", nil, SIPRECBody{Metadata: []byte("<recording/>")}, true},
		{"plain call", [][2]string{{"Contact", "<sip:alice@10.0.0.1>"}, {"Require", "timer"}}, SIPRECBody{}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := sipgosip.NewRequest(sipgosip.INVITE, sipgosip.Uri{Scheme: "sip", Host: "127.0.0.1"})
			for _, h := range tc.headers {
				if h[0] == "Contact" {
					var c sipgosip.ContactHeader
					if _, err := sipgosip.ParseAddressValue(h[1], &c.Address, &c.Params); err != nil {
						t.Fatal(err)
					}
					req.AppendHeader(&c)
					continue
				}
				req.AppendHeader(sipgosip.NewHeader(h[0], h[1]))
			}
			if got := isSIPREC(req, tc.body); got != tc.want {
				t.Errorf("isSIPREC = %v, want %v", got, tc.want)
			}
		})
	}
}

// TestSRCHoldIsAPausedSegment: the SRC holds the call (re-INVITE with every stream inactive, c=0.0.0.0) and
// resumes it. The session goes on; the document records the hold as a pause by the SRC, and the audio on
// either side of it carries its tones with no gap.
func TestSRCHoldIsAPausedSegment(t *testing.T) {
	ts := newTestServer(t, ActivateImmediately)
	ctx, call, sess := recordingCall(t, ts)
	if err := call.SendTones(ctx, []float64{440, 1000}, time.Second); err != nil {
		t.Fatal(err)
	}
	if _, err := call.Hold(ctx, true); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(call.Directions(), ","); got != "inactive,inactive" || sess.State() != StateRecording {
		t.Fatalf("on hold: SRC sees %s, state %v; want inactive answers and the session still recording", got, sess.State())
	}
	time.Sleep(time.Second) // on hold: nothing is sent
	if _, err := call.Hold(ctx, false); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(call.Directions(), ","); got != "recvonly,recvonly" {
		t.Fatalf("resumed: SRC sees %s", got)
	}
	if err := call.SendTones(ctx, []float64{440, 1000}, time.Second); err != nil {
		t.Fatal(err)
	}
	doc := hangUp(ctx, t, ts, call, sess)
	if types := eventTypes(doc); types != "activated,held,unheld" {
		t.Errorf("events = %v", types)
	}
	if len(doc.Pauses) != 1 || doc.Pauses[0].By != "src" || doc.Pauses[0].End == nil || doc.Pauses[0].DurationSec <= 0 {
		t.Fatalf("pauses = %+v, want one closed hold by the src", doc.Pauses)
	}
	p := doc.Pauses[0]
	wav, err := recorder.ReadWAV(filepath.Join(ts.dir, doc.Audio.File))
	if err != nil {
		t.Fatal(err)
	}
	rate := wav.SampleRate
	pauseStart, pauseEnd := int(p.OffsetSec*float64(rate)), int((p.OffsetSec+p.DurationSec)*float64(rate))
	for ch, tone := range []float64{440, 1000} {
		samples := wav.Channels[doc.Channels[ch].Index]
		before, after := samples[:pauseStart], samples[min(pauseEnd, len(samples)):]
		// Each side holds one second of tone; packetisation and scheduling may shift the edges by a few
		// 20 ms packets, never more.
		for name, part := range map[string][]int16{"before": before, "after": after} {
			if got := audiotest.TonePresentSamples(part, rate, tone); got < rate*8/10 {
				t.Errorf("channel %d %s the hold: %d samples of %g Hz, want about %d", ch, name, got, tone, rate)
			}
		}
		if rms := audiotest.RMS(samples[min(pauseStart+rate/5, pauseEnd):max(pauseEnd-rate/5, pauseStart)]); rms > 50 {
			t.Errorf("channel %d not silent during the hold (RMS %.0f)", ch, rms)
		}
	}
}

// TestGlareBothWays: the SRC's re-INVITE crosses ours. We answer theirs 491 (ours is pending), they answer
// ours 491, and our retry, after the 0–2 s back-off of the UA that did not create the Call-ID (RFC 3261
// §14.1), goes through.
func TestGlareBothWays(t *testing.T) {
	src := newSRC(t, "tcp")
	var attempts atomic.Int32
	theirs := make(chan int, 1)
	src.OnReinvite = func(call *siptest.Call, _ *sipgosip.Request) int {
		if attempts.Add(1) > 1 {
			return 200
		}
		// Before answering ours, send our own re-INVITE, as an SBC whose call changed at that moment would.
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		res, err := call.ReinviteWithMetadata(ctx, "")
		if err != nil {
			theirs <- 0
		} else {
			theirs <- res.StatusCode
		}
		return 491
	}
	ts, sess, call := waitingCall(t, "tcp", src)
	var backoffs []time.Duration
	ts.jitter = func() time.Duration {
		d := rand.N(2 * time.Second)
		backoffs = append(backoffs, d)
		return d / 20 // the drawn value is checked below; the test need not sleep it
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := sess.Activate(ctx); err != nil {
		t.Fatalf("Activate through glare: %v", err)
	}
	if code := <-theirs; code != 491 {
		t.Errorf("the SRC's crossing re-INVITE was answered %d, want 491", code)
	}
	if attempts.Load() != 2 || len(backoffs) != 1 || backoffs[0] < 0 || backoffs[0] >= 2*time.Second {
		t.Errorf("attempts %d, back-offs %v: want one retry after 0–2 s", attempts.Load(), backoffs)
	}
	if sess.State() != StateRecording || strings.Join(call.Directions(), ",") != "recvonly,recvonly" {
		t.Errorf("after glare: state %v, SRC sees %v", sess.State(), call.Directions())
	}
	// The SRC's own retry (2.1–4 s later, as the Call-ID owner) now goes through and keeps us recording.
	res, err := call.ReinviteWithMetadata(ctx, "")
	if err != nil || res.StatusCode != 200 || strings.Join(call.Directions(), ",") != "recvonly,recvonly" {
		t.Errorf("SRC retry: %v, %v, SRC sees %v", res, err, call.Directions())
	}
}

// TestTCPInDialogRequestsReuseConnection: our re-INVITE and BYE reach an SRC on TCP over the connection
// it opened (sipgo issue #361), not over a new one to its Contact, which a NATed or firewalled SBC would
// never accept.
func TestTCPInDialogRequestsReuseConnection(t *testing.T) {
	src := newSRC(t, "tcp")
	ts, sess, call := waitingCall(t, "tcp", src)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	go sess.Activate(ctx)
	req, err := call.WaitReinvite(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// Our listening port is the local end of the connection the SRC opened; a new connection would come
	// from an ephemeral port.
	if got, want := req.Source(), ts.Addr("tcp"); got != want {
		t.Errorf("re-INVITE came from %s, want %s (the SRC's own connection)", got, want)
	}
	waitFor(t, "recording", func() bool { return sess.State() == StateRecording })
	if err := call.SendTones(ctx, []float64{440, 1000}, 500*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	sess.terminate(ctx, "test")
	select {
	case <-call.Ended():
	case <-ctx.Done():
		t.Fatal("our BYE never reached the SRC")
	}
	if got := call.ByeSource(); got != ts.Addr("tcp") {
		t.Errorf("BYE came from %s, want %s", got, ts.Addr("tcp"))
	}
}
