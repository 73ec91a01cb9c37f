package sip

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo"
	sipgosip "github.com/emiago/sipgo/sip"
	sipgotest "github.com/emiago/sipgo/siptest"

	"github.com/siphook/siphook/internal/audiotest"
	"github.com/siphook/siphook/internal/leaktest"
	"github.com/siphook/siphook/matcher"
	"github.com/siphook/siphook/recorder"
	"github.com/siphook/siphook/rtp"
	"github.com/siphook/siphook/sip/siptest"
)

const samples = "../testdata/siprec/"

func TestMain(m *testing.M) {
	// A shorter T1 makes the no-ACK case end after 64*T1 = 3.2 s instead of 32 s.
	sipgosip.SetTimers(50*time.Millisecond, 4*time.Second, 5*time.Second)
	baseline := runtime.NumGoroutine()
	code := m.Run()
	if fuzzing := flag.Lookup("test.fuzz").Value.String() != ""; code == 0 && !fuzzing { // the fuzzer adds goroutines of its own
		// Every test has stopped its servers and SRCs by now: nothing of theirs may still run.
		code = leaktest.Check(baseline, 10*time.Second)
	}
	os.Exit(code)
}

// testServer is a server on loopback with its own RTP range and recordings directory.
type testServer struct {
	*Server
	media *rtp.Receiver
	rec   *recorder.Recorder
	dir   string
}

func newTestServer(t *testing.T, activation Activation, opts ...Option) *testServer {
	t.Helper()
	return newTestServerWith(t, activation, nil, opts...)
}

// newTestServerWith is newTestServer with recorder options (a fake free-space source).
func newTestServerWith(t *testing.T, activation Activation, recOpts []recorder.Option, opts ...Option) *testServer {
	t.Helper()
	return newTestServerMedia(t, activation, rtp.Config{BindAddress: "127.0.0.1", PortMin: 40000, PortMax: 40999}, recOpts, opts...)
}

// newTestServerMedia is newTestServerWith with its own RTP config (another reader).
func newTestServerMedia(t *testing.T, activation Activation, mediaCfg rtp.Config, recOpts []recorder.Option, opts ...Option) *testServer {
	t.Helper()
	cfg := DefaultConfig()
	cfg.Listen = "127.0.0.1:0"
	cfg.Activation = activation
	cfg.ActivationDelay = 100 * time.Millisecond
	media, err := rtp.NewReceiver(mediaCfg)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	rcfg := recorder.DefaultConfig()
	rcfg.Dir = dir
	rec, err := recorder.New(rcfg, recOpts...)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := NewServer(cfg, media, rec, opts...) // options may adjust srv.cfg (TLS in tests)
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	ts := &testServer{Server: srv, media: media, rec: rec, dir: dir}
	t.Cleanup(ts.stop)
	return ts
}

func (ts *testServer) stop() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ts.Shutdown(ctx)
	ts.rec.Close()
	if free, size := ts.media.Ports().Free(), ts.media.Ports().Size(); free != size {
		panic(fmt.Sprintf("RTP ports leaked: %d of %d free after shutdown", free, size))
	}
}

func loadTemplate(t *testing.T, name string) *siptest.Template {
	t.Helper()
	tmpl, err := siptest.LoadTemplate(samples + name)
	if err != nil {
		t.Fatal(err)
	}
	return tmpl
}

func newSRC(t *testing.T, transport string) *siptest.SRC {
	t.Helper()
	src, err := siptest.NewSRC(transport)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(src.Close)
	return src
}

// waitFor polls cond until it holds or the deadline passes; condition-based, not a timing assertion.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// hangUp ends a call from the SRC's side and returns the finished session's document.
func hangUp(ctx context.Context, t *testing.T, ts *testServer, call *siptest.Call, sess *Session) *recorder.Document {
	t.Helper()
	if err := call.Bye(ctx); err != nil {
		t.Fatal(err)
	}
	<-sess.Done()
	return readDocument(t, ts.dir)
}

// eventTypes lists a document's event types, comma-separated.
func eventTypes(doc *recorder.Document) string {
	var types []string
	for _, e := range doc.Events {
		types = append(types, e.Type)
	}
	return strings.Join(types, ",")
}

func readDocument(t *testing.T, dir string) *recorder.Document {
	t.Helper()
	var docs []string
	filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err == nil && strings.HasSuffix(path, ".json") {
			docs = append(docs, path)
		}
		return nil
	})
	if len(docs) != 1 {
		t.Fatalf("want 1 metadata document in %s, found %v", dir, docs)
	}
	b, err := os.ReadFile(docs[0])
	if err != nil {
		t.Fatal(err)
	}
	var doc recorder.Document
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	return &doc
}

func wavFiles(dir string) []string {
	var out []string
	filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err == nil && strings.HasSuffix(path, ".wav") {
			out = append(out, path)
		}
		return nil
	})
	return out
}

func hasIdentifier(doc *recorder.Document, kind, value, origin string) bool {
	for _, id := range doc.Identifiers {
		if id.Kind == kind && id.Value == value && strings.Contains(id.Origin, origin) {
			return true
		}
	}
	return false
}

// TestOracleSessionActivatedAndRecorded is the first vertical slice: an Oracle-style SIPREC INVITE is answered
// inactive, activated by our re-INVITE, recorded as stereo with the caller on channel 0, and documented.
func TestOracleSessionActivatedAndRecorded(t *testing.T) {
	waiting := make(chan *Session, 1)
	ts := newTestServer(t, ActivateOnMatch, WithOnWaiting(func(s *Session) { waiting <- s }))
	src := newSRC(t, "tcp")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	call, err := src.Invite(ctx, siptest.Dial{Target: ts.Addr("tcp"), Template: loadTemplate(t, "oracle-sbc-2026-headers-template-INVITE.txt")})
	if err != nil {
		t.Fatal(err)
	}
	if got := call.Directions(); strings.Join(got, ",") != "inactive,inactive" {
		t.Fatalf("initial answer directions = %v, want inactive on both m-lines", got)
	}
	if c := call.Answer.Contact(); c == nil || !c.Params.Has("+sip.srs") {
		t.Fatalf("answer Contact %v lacks +sip.srs", call.Answer.Contact())
	}
	if !strings.Contains(string(call.Answer.Body()), "a=label:739440565") || !strings.Contains(string(call.Answer.Body()), "a=label:739440566") {
		t.Fatalf("answer does not keep the labels:\n%s", call.Answer.Body())
	}

	var sess *Session
	select {
	case sess = <-waiting:
	case <-ctx.Done():
		t.Fatal("session never reached waiting")
	}
	if sess.State() != StateWaiting {
		t.Fatalf("state = %v, want waiting", sess.State())
	}
	wantKeys := []matcher.Key{{Kind: matcher.KeyUCID, Value: "00071252811778010124"}, {Kind: matcher.KeyUCID, Value: "00071252771778010117"}}
	if keys := sess.Keys(); !slices.Equal(keys, wantKeys) {
		t.Errorf("keys = %v, want %v", keys, wantKeys)
	}
	activated := make(chan error, 1)
	go func() { activated <- sess.Activate(ctx) }()
	if _, err := call.WaitReinvite(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-activated; err != nil {
		t.Fatalf("Activate: %v", err)
	}
	if got := call.Directions(); strings.Join(got, ",") != "recvonly,recvonly" {
		t.Fatalf("re-INVITE directions = %v, want recvonly on both", got)
	}

	// Caller's stream (first m-line, label 739440565) carries 440 Hz, the callee's 1 kHz.
	if err := call.SendTones(ctx, []float64{440, 1000}, 3*time.Second); err != nil {
		t.Fatal(err)
	}
	if err := call.Bye(ctx); err != nil {
		t.Fatal(err)
	}
	<-sess.Done()

	wav, err := recorder.ReadWAV(sess.RecordingPath())
	if err != nil {
		t.Fatal(err)
	}
	if len(wav.Channels) != 2 || wav.SampleRate != 8000 {
		t.Fatalf("WAV has %d channels at %d Hz, want 2 at 8000", len(wav.Channels), wav.SampleRate)
	}
	const expected = 3 * 8000
	for ch, tone := range []float64{440, 1000} {
		if got := audiotest.TonePresentSamples(wav.Channels[ch], 8000, tone); got < expected*95/100 {
			t.Errorf("channel %d: %.0f Hz present in %d samples, want >= %d", ch, tone, got, expected*95/100)
		}
	}

	doc := readDocument(t, ts.dir)
	if doc.State != "completed" || doc.Source != "siprec" {
		t.Errorf("document state/source = %q/%q", doc.State, doc.Source)
	}
	// User-to-User 04FA08004762C169FA480C… and apkt:ucid 004762BD69FA4805 are different UCIDs (siprec.md §2.2).
	if !hasIdentifier(doc, "ucid", "00071252811778010124", "User-to-User") {
		t.Errorf("UCID from User-to-User missing: %+v", doc.Identifiers)
	}
	if !hasIdentifier(doc, "ucid", "00071252771778010117", "metadata") {
		t.Errorf("apkt:ucid missing: %+v", doc.Identifiers)
	}
	if len(doc.Participants) != 2 || doc.Participants[0].AOR != "sip:+19195184357@vzb.int" || doc.Participants[0].Role != "caller" {
		t.Errorf("participants = %+v", doc.Participants)
	}
	if len(doc.Channels) != 2 || doc.Channels[0].Label != "739440565" || doc.Channels[0].Stats.Received < 140 {
		t.Errorf("channels = %+v", doc.Channels)
	}
	if len(doc.Events) == 0 || doc.Events[0].Type != "activated" {
		t.Errorf("events = %+v", doc.Events)
	}
	if doc.Session["sip_call_id"] != call.CallID {
		t.Errorf("sip_call_id = %q, want %q", doc.Session["sip_call_id"], call.CallID)
	}
}

// TestChannelOrderFollowsMetadata puts the caller's stream on the second m-line: the caller still gets
// channel 0 because the metadata says which participant sends which label.
func TestChannelOrderFollowsMetadata(t *testing.T) {
	tr, fa := true, false
	meta := &Metadata{
		Participants: []Participant{
			{ID: "callee", Send: []string{"s1"}, CallingParty: &fa},
			{ID: "caller", Send: []string{"s2"}, CallingParty: &tr},
		},
		Streams: []MetadataStream{{ID: "s1", Label: "1"}, {ID: "s2", Label: "2"}},
	}
	lines := []mediaLine{{label: "1"}, {label: "2"}}
	for _, tc := range []struct {
		name string
		meta *Metadata
		want []int
	}{
		{"metadata association", meta, []int{1, 0}},
		{"no metadata: m-line order", nil, []int{0, 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := channelOrder(lines, tc.meta)
			if got[0] != tc.want[0] || got[1] != tc.want[1] {
				t.Fatalf("channelOrder = %v, want %v", got, tc.want)
			}
		})
	}
}

// TestRobustness drives each bad or unusual session and checks the answer, then that no port, session or
// goroutine is left behind.
func TestRobustness(t *testing.T) {
	for _, tc := range []struct {
		name      string
		template  string
		dial      siptest.Dial
		hold      bool // hold the answer until the INVITE is cancelled
		immediate bool // activation immediate instead of on-match
		wantCode  int
		check     func(t *testing.T, ts *testServer, call *siptest.Call)
	}{
		{name: "cancel before answer", template: "oracle-sbc-2026-headers-template-INVITE.txt", hold: true,
			dial: siptest.Dial{CancelAfter: 50 * time.Millisecond}, wantCode: 487,
			check: func(t *testing.T, ts *testServer, _ *siptest.Call) {
				waitFor(t, "metadata record", func() bool { return ts.Sessions() == 0 })
				if doc := readDocument(t, ts.dir); doc.State != "never_activated" || doc.Session["end_reason"] != "cancelled" {
					t.Errorf("document state %q end_reason %q", doc.State, doc.Session["end_reason"])
				}
			}},
		{name: "bye while inactive", template: "oracle-sbc-2026-headers-template-INVITE.txt", wantCode: 200,
			check: func(t *testing.T, ts *testServer, call *siptest.Call) {
				if err := call.Bye(context.Background()); err != nil {
					t.Fatal(err)
				}
				waitFor(t, "session end", func() bool { return ts.Sessions() == 0 })
				if w := wavFiles(ts.dir); len(w) != 0 {
					t.Errorf("a session that never recorded left WAV files %v", w)
				}
				doc := readDocument(t, ts.dir)
				if doc.State != "never_activated" || doc.Audio != nil || len(doc.Identifiers) == 0 {
					t.Errorf("document = %+v", doc)
				}
			}},
		{name: "no ACK", template: "oracle-sbc-2026-headers-template-INVITE.txt", dial: siptest.Dial{SkipAck: true}, wantCode: 200,
			check: func(t *testing.T, ts *testServer, _ *siptest.Call) {
				waitFor(t, "no-ACK teardown", func() bool { return ts.Sessions() == 0 })
			}},
		{name: "no ACK, immediate activation", template: "oracle-sbc-2026-headers-template-INVITE.txt", immediate: true,
			dial: siptest.Dial{SkipAck: true}, wantCode: 200,
			check: func(t *testing.T, ts *testServer, _ *siptest.Call) {
				waitFor(t, "no-ACK teardown", func() bool { return ts.Sessions() == 0 })
				// The recording opened for the answer is dropped: the session was never established.
				if doc := readDocument(t, ts.dir); doc.State != "never_activated" || doc.Audio != nil || len(wavFiles(ts.dir)) != 0 {
					t.Errorf("document state %q, audio %+v, WAVs %v", doc.State, doc.Audio, wavFiles(ts.dir))
				}
			}},
		{name: "non-SIPREC INVITE", template: "synthetic/syn-19-robust-INVITE-without-siprec-signals.txt", wantCode: 403},
		{name: "non-SIPREC call carrying UUI", template: "uui-plain-call-INVITE-non-siprec.txt", wantCode: 403},
		{name: "multipart without SDP", template: "oracle-sbc-metadata-only-multipart-INVITE.txt", wantCode: 488},
		{name: "extra video m-line", template: "synthetic/syn-16-robust-video-mlines.txt", wantCode: 200,
			check: func(t *testing.T, ts *testServer, call *siptest.Call) {
				body := string(call.Answer.Body())
				if !strings.Contains(body, "m=video 0 ") {
					t.Errorf("video m-line not refused with port 0:\n%s", body)
				}
				if err := call.Bye(context.Background()); err != nil {
					t.Fatal(err)
				}
				waitFor(t, "session end", func() bool { return ts.Sessions() == 0 })
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			baseline := runtime.NumGoroutine()
			func() {
				activation := ActivateOnMatch
				if tc.immediate {
					activation = ActivateImmediately
				}
				ts := newTestServer(t, activation)
				if tc.hold {
					ts.beforeAnswer = func(ctx context.Context, _ *Session) error { <-ctx.Done(); return ctx.Err() }
				}
				src := newSRC(t, "tcp")
				ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
				defer cancel()
				d := tc.dial
				d.Target, d.Template = ts.Addr("tcp"), loadTemplate(t, tc.template)
				call, err := src.Invite(ctx, d)
				code := 200
				if err != nil {
					if code = siptest.ResponseCode(err); code == 0 {
						t.Fatalf("invite: %v", err)
					}
				}
				if code != tc.wantCode {
					t.Fatalf("answer %d, want %d (err %v)", code, tc.wantCode, err)
				}
				if tc.check != nil {
					tc.check(t, ts, call)
				}
				waitFor(t, "sessions to end", func() bool { return ts.Sessions() == 0 })
				if free, size := ts.media.Ports().Free(), ts.media.Ports().Size(); free != size {
					t.Errorf("ports leaked: %d of %d free", free, size)
				}
				ts.stop()
				src.Close()
			}()
			leaktest.Wait(t, baseline)
		})
	}
}

func TestHandlerPanicAnswers500(t *testing.T) {
	srv, err := NewServer(DefaultConfig(), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	req := sipgosip.NewRequest(sipgosip.OPTIONS, sipgosip.Uri{Scheme: "sip", Host: "127.0.0.1"})
	for _, h := range [][2]string{{"Via", "SIP/2.0/UDP 127.0.0.1:5999;branch=z9hG4bKpanic"}, {"From", "<sip:a@127.0.0.1>;tag=1"},
		{"To", "<sip:b@127.0.0.1>"}, {"Call-ID", "panic-test"}, {"CSeq", "1 OPTIONS"}} {
		req.AppendHeader(sipgosip.NewHeader(h[0], h[1]))
	}
	tx := sipgotest.NewServerTxRecorder(req)
	srv.guard(func(*sipgosip.Request, sipgosip.ServerTransaction) { panic("bug") })(req, tx)
	res := tx.Result()
	if len(res) != 1 || res[0].StatusCode != 500 {
		t.Fatalf("responses after a panic = %v, want one 500", res)
	}
}

// TestRetransmittedInviteOfEndedSession: sipgo forgets an INVITE's transaction once the dialog ends, so a
// retransmission still in flight (UDP, every T1) would look like a new call. The server knows its live
// sessions' INVITEs, and ended ones' for 64*T1, and ignores them.
func TestRetransmittedInviteOfEndedSession(t *testing.T) {
	srv, err := NewServer(DefaultConfig(), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	invite := func(cseq uint32) *sipgosip.Request {
		req := sipgosip.NewRequest(sipgosip.INVITE, sipgosip.Uri{Scheme: "sip", Host: "127.0.0.1"})
		req.AppendHeader(sipgosip.NewHeader("Call-ID", "retransmitted@192.0.2.1"))
		req.AppendHeader(sipgosip.NewHeader("From", "<sip:src@192.0.2.1>;tag=abc"))
		req.AppendHeader(&sipgosip.CSeqHeader{SeqNo: cseq, MethodName: sipgosip.INVITE})
		return req
	}
	sess := &Session{dlg: &sipgo.DialogServerSession{Dialog: sipgo.Dialog{ID: "d1", InviteRequest: invite(1)}}}
	if err := srv.add(sess); err != nil {
		t.Fatal(err)
	}
	if !srv.knownInvite(invite(1)) {
		t.Error("the INVITE of a live session is not recognised")
	}
	srv.remove(sess)
	if !srv.knownInvite(invite(1)) {
		t.Error("the INVITE of a session that just ended is not recognised")
	}
	if srv.knownInvite(invite(2)) {
		t.Error("a new INVITE (another CSeq) is taken for a retransmission")
	}
}
