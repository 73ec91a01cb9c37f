package audiohook_test

import (
	"context"
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/siphook/siphook/audiohook"
	"github.com/siphook/siphook/audiohook/hooktest"
	"github.com/siphook/siphook/internal/audiotest"
	"github.com/siphook/siphook/internal/leaktest"
	"github.com/siphook/siphook/internal/testcert"
	"github.com/siphook/siphook/matcher"
	"github.com/siphook/siphook/recorder"
)

const (
	testOrg    = "d7934305-0972-4844-938e-9060eef73d05"
	testAPIKey = "SGVsbG8sIEkgYW0gdGhlIEFQSSBrZXkh"
)

var testSecret = []byte("MySuperSecretKeyTellNo-1!2@3#4$5")

type testServer struct {
	*audiohook.Server
	dir  string
	url  string
	rec  *recorder.Recorder
	once sync.Once
}

// stop shuts the server down (once); tests that count goroutines call it before counting.
func (ts *testServer) stop() {
	ts.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		ts.Shutdown(ctx)
		ts.rec.Close()
	})
}

func newTestServer(t testing.TB, activation audiohook.Activation, opts ...audiohook.Option) *testServer {
	t.Helper()
	return newTestServerWith(t, activation, nil, opts...)
}

// newTestServerWith is newTestServer with recorder options (a fake free-space source).
func newTestServerWith(t testing.TB, activation audiohook.Activation, recOpts []recorder.Option, opts ...audiohook.Option) *testServer {
	t.Helper()
	cfg := audiohook.DefaultConfig()
	cfg.Listen = "127.0.0.1:0"
	cfg.Activation = activation
	cfg.AuthFailureDelay = 50 * time.Millisecond
	cfg.OpenTimeout = 2 * time.Second
	cfg.CloseTimeout = 2 * time.Second
	cfg.Organizations = []audiohook.Organization{{ID: testOrg, APIKey: testAPIKey, ClientSecret: base64.StdEncoding.EncodeToString(testSecret)}}
	dir := t.TempDir()
	rcfg := recorder.DefaultConfig()
	rcfg.Dir = dir
	rec, err := recorder.New(rcfg, recOpts...)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := audiohook.NewServer(cfg, rec, opts...)
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	ts := &testServer{Server: srv, dir: dir, url: "ws://" + srv.Addr() + "/audiohook", rec: rec}
	t.Cleanup(ts.stop)
	return ts
}

func (ts *testServer) client(conversation string) hooktest.Config {
	return clientConfig(ts.url, conversation)
}

// clientConfig is a signed client of the test organisation.
func clientConfig(url, conversation string) hooktest.Config {
	return hooktest.Config{
		URL: url, APIKey: testAPIKey, ClientSecret: testSecret, OrganizationID: testOrg,
		ConversationID: conversation,
		Participant:    audiohook.Participant{ID: "a1b2c3d4-0000-4000-8000-000000000001", ANI: "+15551234567", ANIName: "Jane Doe", DNIS: "+18005550100"},
		PingInterval:   -1,
	}
}

const conv = "c0ffee00-1234-4abc-8def-000000000042"

func dial(t testing.TB, cfg hooktest.Config) *hooktest.Session {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := hooktest.Dial(ctx, cfg)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	return s
}

func closeSession(t *testing.T, s *hooktest.Session) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.Close(ctx, "end"); err != nil {
		t.Fatalf("close: %v", err)
	}
	if err := s.Err(); err != nil {
		t.Fatalf("the client saw a protocol violation: %v", err)
	}
}

// documents returns the metadata documents written under dir, waiting until n exist.
func documents(t *testing.T, dir string, n int) []*recorder.Document {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		var docs []*recorder.Document
		filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
			if err != nil || !strings.HasSuffix(p, ".json") {
				return nil
			}
			b, err := os.ReadFile(p)
			var doc recorder.Document
			if err == nil && json.Unmarshal(b, &doc) == nil && doc.State != recorder.StateRecording {
				docs = append(docs, &doc)
			}
			return nil
		})
		if len(docs) >= n {
			return docs
		}
		if time.Now().After(deadline) {
			t.Fatalf("want %d finished documents in %s, have %d", n, dir, len(docs))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func readWAV(t *testing.T, dir string, doc *recorder.Document) *recorder.WAV {
	t.Helper()
	if doc.Audio == nil {
		t.Fatalf("document has no audio: %+v", doc)
	}
	w, err := recorder.ReadWAV(filepath.Join(dir, doc.Audio.File))
	if err != nil {
		t.Fatal(err)
	}
	return w
}

// segmentHas reports whether samples [from, to) seconds carry freq over ≥ 99 % of the stretch.
func segmentHas(w *recorder.WAV, ch int, from, to float64, freq float64) bool {
	a, b := int(from*8000), int(to*8000)
	if b > len(w.Channels[ch]) {
		return false
	}
	return audiotest.TonePresentSamples(w.Channels[ch][a:b], 8000, freq) >= (b-a)*99/100
}

func segmentSilent(w *recorder.WAV, ch int, from, to float64) bool {
	a, b := int(from*8000), int(to*8000)
	return b <= len(w.Channels[ch]) && audiotest.RMS(w.Channels[ch][a:b]) < 1
}

func TestStereoSessionRecorded(t *testing.T) {
	for _, tc := range []struct {
		name     string
		channels []string
		tones    []float64 // per negotiated channel
	}{
		{"external then internal", []string{"external", "internal"}, []float64{440, 1000}},
		{"inverted offer", []string{"internal", "external"}, []float64{1000, 440}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ts := newTestServer(t, audiohook.ActivateImmediately)
			cfg := ts.client(conv)
			cfg.Media = []audiohook.MediaParameter{{Type: "audio", Format: "PCMU", Channels: tc.channels, Rate: 8000}}
			cfg.PingInterval = 200 * time.Millisecond
			s := dial(t, cfg)
			if got := s.Opened().Media; len(got) != 1 || strings.Join(got[0].Channels, ",") != strings.Join(tc.channels, ",") {
				t.Fatalf("opened media = %+v, want the offer unmodified", got)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			if err := s.SendTones(ctx, tc.tones, 10*time.Second, 200*time.Millisecond, false); err != nil {
				t.Fatal(err)
			}
			closeSession(t, s)

			doc := documents(t, ts.dir, 1)[0]
			w := readWAV(t, ts.dir, doc)
			if len(w.Channels) != 2 || len(w.Channels[0]) != 80000 {
				t.Fatalf("WAV: %d channels of %d samples, want 2 of 80000", len(w.Channels), len(w.Channels[0]))
			}
			if !segmentHas(w, 0, 0, 10, 440) || !segmentHas(w, 1, 0, 10, 1000) {
				t.Errorf("external channel must hold 440 Hz and internal 1 kHz over 99 %% of the samples")
			}
			if doc.Session["conversation_id"] != conv || doc.Session["organization_id"] != testOrg ||
				doc.Session["ani"] != "+15551234567" || doc.Session["dnis"] != "+18005550100" || doc.Session["close_reason"] != "end" {
				t.Errorf("document session facts = %+v", doc.Session)
			}
			if doc.Channels[0].Label != "external" || doc.Channels[1].Label != "internal" {
				t.Errorf("channels = %+v", doc.Channels)
			}
		})
	}
}

func TestOtherMedia(t *testing.T) {
	for _, tc := range []struct {
		name  string
		media audiohook.MediaParameter
		tones []float64
	}{
		{"L16 stereo", audiohook.MediaParameter{Type: "audio", Format: "L16", Channels: []string{"external", "internal"}, Rate: 8000}, []float64{440, 1000}},
		{"PCMU mono external", audiohook.MediaParameter{Type: "audio", Format: "PCMU", Channels: []string{"external"}, Rate: 8000}, []float64{440}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ts := newTestServer(t, audiohook.ActivateImmediately)
			cfg := ts.client(conv)
			cfg.Media = []audiohook.MediaParameter{tc.media}
			s := dial(t, cfg)
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			if err := s.SendTones(ctx, tc.tones, 2*time.Second, 200*time.Millisecond, false); err != nil {
				t.Fatal(err)
			}
			closeSession(t, s)
			w := readWAV(t, ts.dir, documents(t, ts.dir, 1)[0])
			if len(w.Channels) != len(tc.tones) {
				t.Fatalf("WAV has %d channels, want %d", len(w.Channels), len(tc.tones))
			}
			for ch, f := range tc.tones {
				if !segmentHas(w, ch, 0, 2, f) {
					t.Errorf("channel %d lacks %.0f Hz", ch, f)
				}
			}
		})
	}
}

// TestPingUpdateAndTLS runs a session over wss with pings and a language update.
func TestPingUpdateAndTLS(t *testing.T) {
	certFile, keyFile, roots := testcert.Write(t)
	cfg := audiohook.DefaultConfig()
	cfg.Listen = "127.0.0.1:0"
	cfg.TLS.CertFile, cfg.TLS.KeyFile = certFile, keyFile
	cfg.Organizations = []audiohook.Organization{{ID: testOrg, APIKey: testAPIKey, ClientSecret: base64.StdEncoding.EncodeToString(testSecret)}}
	rcfg := recorder.DefaultConfig()
	rcfg.Dir = t.TempDir()
	rec, err := recorder.New(rcfg)
	if err != nil {
		t.Fatal(err)
	}
	defer rec.Close()
	srv, err := audiohook.NewServer(cfg, rec)
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	defer srv.Shutdown(context.Background())

	ccfg := clientConfig("wss://"+srv.Addr()+"/audiohook", conv)
	ccfg.TLSConfig = &tls.Config{RootCAs: roots}
	ccfg.PingInterval = 100 * time.Millisecond
	s := dial(t, ccfg)
	if err := s.Update("fr-CA"); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	s.SendTones(ctx, []float64{440, 1000}, time.Second, 100*time.Millisecond, true) // real time: pings happen meanwhile
	var updated bool
	for len(s.Messages()) > 0 {
		if m := <-s.Messages(); m.Type == "updated" {
			updated = true
		}
	}
	if !updated {
		t.Error("no updated in answer to update")
	}
	if s.Pongs() < 3 {
		t.Errorf("%d pongs for a second of 100 ms pings", s.Pongs())
	}
	closeSession(t, s)
	doc := documents(t, rcfg.Dir, 1)[0]
	if doc.Session["language"] != "fr-CA" {
		t.Errorf("language = %q, want the updated fr-CA", doc.Session["language"])
	}
}

// TestShutdownDisconnectsCompleted: stopping the server ends each session with disconnect completed, waits
// for the client's close, and finalises the recording with its audio.
func TestShutdownDisconnectsCompleted(t *testing.T) {
	ts := newTestServer(t, audiohook.ActivateImmediately)
	s := dial(t, ts.client(conv))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	s.SendTones(ctx, []float64{440, 1000}, time.Second, 200*time.Millisecond, false)
	ts.stop()
	select {
	case d := <-s.Disconnected():
		if d.Reason != "completed" {
			t.Errorf("disconnect reason %q, want completed", d.Reason)
		}
	case <-ctx.Done():
		t.Fatal("no disconnect on shutdown")
	}
	<-s.Done()
	if err := s.Err(); err != nil {
		t.Errorf("client saw a protocol violation: %v", err)
	}
	doc := documents(t, ts.dir, 1)[0]
	if doc.State != recorder.StateCompleted || doc.Audio == nil || doc.Audio.Samples != 8000 || doc.Session["close_reason"] != "disconnect" {
		t.Errorf("document after shutdown = %+v, audio %+v", doc, doc.Audio)
	}
}

func TestConnectionProbeAnsweredNotRecorded(t *testing.T) {
	var sessions []matcher.MediaSession
	ts := newTestServer(t, audiohook.ActivateImmediately, audiohook.WithOnSession(func(s matcher.MediaSession) { sessions = append(sessions, s) }))
	cfg := ts.client(audiohook.NullUUID)
	cfg.Participant = audiohook.Participant{ID: audiohook.NullUUID}
	s := dial(t, cfg)
	closeSession(t, s)
	time.Sleep(200 * time.Millisecond) // nothing must appear: a negative check needs a little time
	var files []string
	filepath.WalkDir(ts.dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			files = append(files, p)
		}
		return nil
	})
	if len(files) != 0 || len(sessions) != 0 {
		t.Errorf("a probe left files %v and reached the matcher %d times", files, len(sessions))
	}
}

// TestPausesAndDiscardsOnTheTimeline: client and server pauses and discarded audio become silence at the
// right positions; audio around them keeps its place.
func TestPausesAndDiscardsOnTheTimeline(t *testing.T) {
	var hooked = make(chan matcher.MediaSession, 1)
	ts := newTestServer(t, audiohook.ActivateImmediately, audiohook.WithOnSession(func(s matcher.MediaSession) { hooked <- s }))
	s := dial(t, ts.client(conv))
	server := <-hooked
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	tones := []float64{440, 1000}
	send := func(d time.Duration) {
		t.Helper()
		if err := s.SendTones(ctx, tones, d, 100*time.Millisecond, false); err != nil {
			t.Fatal(err)
		}
	}
	send(time.Second) // [0,1) audio
	// Client (secure) pause for 1 s of stream time: [1,2) silence.
	if err := s.Pause(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s.Resume(ctx, time.Second); err != nil {
		t.Fatal(err)
	}
	send(time.Second) // [2,3) audio
	// 0.5 s discarded by the client: [3,3.5) silence.
	if err := s.Discarded(3*time.Second, 500*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	send(time.Second) // [3.5,4.5) audio
	// Server pause: the client stops; SendTones while paused advances its position without sending.
	if err := server.Pause(ctx); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "client paused", s.Paused)
	send(time.Second) // dropped by the paused client: [4.5,5.5) silence
	if err := server.Activate(ctx); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "client resumed", func() bool { return !s.Paused() })
	send(time.Second) // [5.5,6.5) audio
	closeSession(t, s)

	doc := documents(t, ts.dir, 1)[0]
	w := readWAV(t, ts.dir, doc)
	for _, seg := range []struct {
		from, to float64
		audio    bool
	}{{0, 1, true}, {1, 2, false}, {2, 3, true}, {3, 3.5, false}, {3.5, 4.5, true}, {4.5, 5.5, false}, {5.5, 6.5, true}} {
		for ch, f := range tones {
			if seg.audio && !segmentHas(w, ch, seg.from, seg.to, f) {
				t.Errorf("channel %d [%.1f,%.1f) should carry %.0f Hz", ch, seg.from, seg.to, f)
			}
			if !seg.audio && !segmentSilent(w, ch, seg.from, seg.to) {
				t.Errorf("channel %d [%.1f,%.1f) should be silent", ch, seg.from, seg.to)
			}
		}
	}
	// What the client reported keeps its order; our own requests interleave with it as the server saw them
	// (the client's discarded may still be in flight when the test asks for the pause), but each request
	// comes before the client's answer to it.
	var client, all []string
	for _, e := range doc.Events {
		all = append(all, e.Type)
		if !strings.HasSuffix(e.Type, "_requested") {
			client = append(client, e.Type)
		}
	}
	if got, want := strings.Join(client, ","), "activated,paused,resumed,discarded,paused,resumed"; got != want {
		t.Errorf("client events = %s, want %s", got, want)
	}
	if i, j := slices.Index(all, "pause_requested"), slices.Index(all, "resume_requested"); i < 0 || j < i ||
		!slices.Contains(all[i:j], "paused") || !slices.Contains(all[j:], "resumed") {
		t.Errorf("events = %v: the server's pause and resume requests must precede the client's answers", all)
	}
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestOnMatchStartsPaused: without a match the session opens paused and leaves only a document; Activate
// resumes it and the WAV starts where audio starts.
func TestOnMatchStartsPaused(t *testing.T) {
	hooked := make(chan matcher.MediaSession, 1)
	ts := newTestServer(t, audiohook.ActivateOnMatch, audiohook.WithOnSession(func(s matcher.MediaSession) { hooked <- s }))
	s := dial(t, ts.client(conv))
	if !s.Opened().StartPaused {
		t.Fatal("opened without startPaused under on-match")
	}
	server := <-hooked
	if keys := server.Keys(); len(keys) != 1 || keys[0] != (matcher.Key{Kind: matcher.KeyConversationID, Value: conv}) {
		t.Fatalf("keys = %+v", keys)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s.SendTones(ctx, []float64{440, 1000}, 2*time.Second, 100*time.Millisecond, false) // dropped: paused
	if err := server.Activate(ctx); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "client resumed", func() bool { return !s.Paused() })
	s.SendTones(ctx, []float64{440, 1000}, time.Second, 100*time.Millisecond, false)
	closeSession(t, s)
	w := readWAV(t, ts.dir, documents(t, ts.dir, 1)[0])
	if len(w.Channels[0]) != 8000 || !segmentHas(w, 0, 0, 1, 440) {
		t.Errorf("WAV holds %d samples; want exactly the 8000 recorded after activation, with the tone", len(w.Channels[0]))
	}

	// A session nobody activates leaves a document saying so, and no WAV.
	ts2 := newTestServer(t, audiohook.ActivateOnMatch)
	closeSession(t, dial(t, ts2.client(conv)))
	if doc := documents(t, ts2.dir, 1)[0]; doc.State != recorder.StateNeverActivated || doc.Audio != nil {
		t.Errorf("unactivated session document = %+v", doc)
	}
}

// TestReconnectContinuesRecording drops a session and continues it (continuedSessions): one recording, the
// audio of both sessions in place, nothing recorded twice.
func TestReconnectContinuesRecording(t *testing.T) {
	ts := newTestServer(t, audiohook.ActivateImmediately)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	first := dial(t, ts.client(conv))
	first.SendTones(ctx, []float64{440, 1000}, 2*time.Second, 200*time.Millisecond, false)
	cont := first.ContinuedSession()
	first.Abort() // network failure: no close
	waitUntil(t, "the server to notice the drop", func() bool { return ts.Sessions() == 0 })

	cfg := ts.client(conv)
	cfg.ContinuedSessions = []audiohook.ContinuedSession{cont}
	second := dial(t, cfg)
	if d := second.Opened().DiscardTo; d == nil || time.Duration(*d) != 2*time.Second {
		t.Fatalf("opened.discardTo = %v, want PT2S (what the first session already delivered)", d)
	}
	second.SendTones(ctx, []float64{440, 1000}, 2*time.Second, 200*time.Millisecond, false)
	closeSession(t, second)

	docs := documents(t, ts.dir, 1)
	time.Sleep(100 * time.Millisecond)
	if docs = documents(t, ts.dir, 1); len(docs) != 1 {
		t.Fatalf("%d documents, want one recording for both sessions", len(docs))
	}
	w := readWAV(t, ts.dir, docs[0])
	if len(w.Channels[0]) != 32000 || !segmentHas(w, 0, 0, 4, 440) || !segmentHas(w, 1, 0, 4, 1000) {
		t.Errorf("continued recording: %d samples; want 32000 with both tones throughout", len(w.Channels[0]))
	}
	if ids := docs[0].Session["audiohook_session_ids"]; strings.Count(ids, ",") != 1 {
		t.Errorf("audiohook_session_ids = %q, want both sessions", ids)
	}
}

func TestConcurrentSessions(t *testing.T) {
	const n = 200
	ts := newTestServer(t, audiohook.ActivateImmediately)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Go(func() {
			cfg := ts.client(conv)
			cfg.Participant.ANI = fmt.Sprintf("+1555000%04d", i)
			s, err := hooktest.Dial(ctx, cfg)
			if err != nil {
				errs <- err
				return
			}
			if err := s.SendTones(ctx, []float64{440, 1000}, time.Second, 200*time.Millisecond, false); err != nil {
				errs <- err
				return
			}
			if err := s.Close(ctx, "end"); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	docs := documents(t, ts.dir, n)
	for _, doc := range docs {
		if doc.State != recorder.StateCompleted || doc.Audio == nil || doc.Audio.Samples != 8000 {
			t.Fatalf("document %+v", doc)
		}
	}
}

// TestRefusals: each bad connection is refused the way the protocol says, and leaves no goroutine behind.
func TestRefusals(t *testing.T) {
	for _, tc := range []struct {
		name       string
		cfg        func(*hooktest.Config)
		act        func(*testing.T, *hooktest.Session) // after a successful open
		wantStatus int                                 // HTTP refusal
		wantReason string                              // disconnect reason
	}{
		{name: "bad signature", cfg: func(c *hooktest.Config) { c.ClientSecret = []byte("not-the-secret-not-the-secret!!!") }, wantStatus: 401},
		{name: "expired created", cfg: func(c *hooktest.Config) { c.Now = func() time.Time { return time.Now().Add(-time.Minute) } }, wantStatus: 401},
		{name: "unknown API key", cfg: func(c *hooktest.Config) { c.APIKey = "bm90LWEta25vd24ta2V5" }, wantStatus: 401},
		{name: "organisation header not the key's", cfg: func(c *hooktest.Config) { c.OrganizationID = "11111111-2222-4333-8444-555555555555" }, wantStatus: 401},
		{name: "open.organizationId differs from the header", cfg: func(c *hooktest.Config) {
			c.Headers = http.Header{"Audiohook-Organization-Id": {testOrg}}
			c.OrganizationID = "11111111-2222-4333-8444-555555555555"
		}, wantReason: "unauthorized"},
		{name: "wrong seq", act: func(t *testing.T, s *hooktest.Session) {
			s.WriteText([]byte(`{"version":"2","type":"ping","id":"` + s.ID() + `","seq":7,"serverseq":1,"position":"PT0S","parameters":{}}`))
		}, wantReason: "error"},
		{name: "oversized message", act: func(t *testing.T, s *hooktest.Session) {
			s.WriteText([]byte(`{"pad":"` + strings.Repeat("x", 70000) + `"}`))
		}, wantReason: "error"},
		{name: "malformed JSON", act: func(t *testing.T, s *hooktest.Session) { s.WriteText([]byte(`{"version":`)) }, wantReason: "error"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			baseline := runtime.NumGoroutine()
			func() {
				ts := newTestServer(t, audiohook.ActivateImmediately)
				defer ts.stop()
				cfg := ts.client(conv)
				if tc.cfg != nil {
					tc.cfg(&cfg)
				}
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				s, err := hooktest.Dial(ctx, cfg)
				if tc.wantStatus != 0 {
					var he *hooktest.HandshakeError
					if !errors.As(err, &he) || he.StatusCode != tc.wantStatus {
						t.Fatalf("dial = %v, want HTTP %d", err, tc.wantStatus)
					}
					return
				}
				if tc.act == nil { // refused at open
					var de *hooktest.DisconnectError
					if !errors.As(err, &de) || de.Params.Reason != tc.wantReason {
						t.Fatalf("dial = %v, want disconnect %s", err, tc.wantReason)
					}
					return
				}
				if err != nil {
					t.Fatal(err)
				}
				tc.act(t, s)
				select {
				case d := <-s.Disconnected():
					if d.Reason != tc.wantReason {
						t.Errorf("disconnect reason %q, want %q", d.Reason, tc.wantReason)
					}
				case <-ctx.Done():
					t.Fatal("no disconnect")
				}
				<-s.Done()
			}()
			leaktest.Wait(t, baseline)
		})
	}
}

// rawConn upgrades a signed connection and sends nothing: for what a faithful client never does.
func rawConn(t *testing.T, ts *testServer) *websocket.Conn {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, "http"+strings.TrimPrefix(ts.url, "ws"), nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Audiohook-Organization-Id", testOrg)
	req.Header.Set("Audiohook-Session-Id", "e160e428-53e2-487c-977d-96989bf5c99d")
	req.Header.Set("Audiohook-Correlation-Id", "30b0e395-84d3-4570-ac13-9a62d8f514c0")
	if err := audiohook.SignRequest(req, testAPIKey, testSecret, time.Now(), "VGhpc0lzQVVuaXF1ZU5vbmNlMTIz"); err != nil {
		t.Fatal(err)
	}
	conn, _, err := websocket.DefaultDialer.Dial(ts.url, req.Header)
	if err != nil {
		t.Fatal(err)
	}
	return conn
}

// expectDisconnect reads until a disconnect arrives and checks its reason.
func expectDisconnect(t *testing.T, conn *websocket.Conn, reason string) {
	t.Helper()
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	for {
		typ, b, err := conn.ReadMessage()
		if err != nil {
			t.Fatalf("no disconnect before the connection ended: %v", err)
		}
		if typ != websocket.TextMessage {
			continue
		}
		m, err := audiohook.DecodeServerMessage(b)
		if err != nil {
			t.Fatalf("server message: %v (%s)", err, b)
		}
		if m.Type == "disconnect" {
			var p audiohook.DisconnectParameters
			m.Params(&p)
			if p.Reason != reason {
				t.Fatalf("disconnect %+v, want reason %s", p, reason)
			}
			return
		}
	}
}

func TestRawProtocolRefusals(t *testing.T) {
	for _, tc := range []struct {
		name string
		act  func(*websocket.Conn)
	}{
		{"audio before opened", func(c *websocket.Conn) { c.WriteMessage(websocket.BinaryMessage, make([]byte, 320)) }},
		{"no open within the deadline", func(*websocket.Conn) {}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			baseline := runtime.NumGoroutine()
			func() {
				ts := newTestServer(t, audiohook.ActivateImmediately)
				defer ts.stop()
				conn := rawConn(t, ts)
				defer conn.Close()
				tc.act(conn)
				expectDisconnect(t, conn, "error")
			}()
			leaktest.Wait(t, baseline)
		})
	}
}

// BenchmarkAudioFrame is one 20 ms stereo PCMU frame over a real WebSocket on loopback: the fake client's
// send, the server's read, decode and write into the recording. Allocation counts cover both ends.
func BenchmarkAudioFrame(b *testing.B) {
	ts := newTestServer(b, audiohook.ActivateImmediately)
	s := dial(b, ts.client(conv))
	defer s.Close(context.Background(), "end")
	frame := make([]byte, 2*160) // 20 ms, two channels, µ-law
	for i := range frame {
		frame[i] = 0xff
	}
	b.ReportAllocs()
	for b.Loop() {
		if err := s.SendAudio(frame); err != nil {
			b.Fatal(err)
		}
	}
}

// TestDiskFloor: below the recordings disk's free-space floor a new AudioHook connection is refused with
// 503 before any audio, while the session already recording goes on and is written whole.
func TestDiskFloor(t *testing.T) {
	var free atomic.Uint64
	free.Store(10 << 30)
	ts := newTestServerWith(t, audiohook.ActivateImmediately, []recorder.Option{recorder.WithFreeSpace(func(string) (uint64, error) { return free.Load(), nil })})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	s := dial(t, ts.client(conv))
	s.SendTones(ctx, []float64{440, 1000}, time.Second, 200*time.Millisecond, false)

	free.Store(100 << 20) // below the default 1 GiB floor
	deadline := time.Now().Add(10 * time.Second)
	for ts.rec.Accepting() == nil {
		if time.Now().After(deadline) {
			t.Fatal("the recorder never saw the disk low")
		}
		time.Sleep(20 * time.Millisecond)
	}
	_, err := hooktest.Dial(ctx, ts.client("c0ffee00-1234-4abc-8def-000000000043"))
	var he *hooktest.HandshakeError
	if !errors.As(err, &he) || he.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("dial with the disk low = %v, want HTTP 503", err)
	}
	s.SendTones(ctx, []float64{440, 1000}, time.Second, 200*time.Millisecond, false) // the open session goes on
	closeSession(t, s)
	docs := documents(t, ts.dir, 1)
	if len(docs) != 1 || docs[0].State != recorder.StateCompleted {
		t.Fatalf("documents %+v: want the one session, completed", docs)
	}
	wav := readWAV(t, ts.dir, docs[0])
	if got := audiotest.TonePresentSamples(wav.Channels[0], 8000, 440); got < 2*8000*95/100 {
		t.Errorf("440 Hz in %d samples, want the 2 s sent before and after the disk went low", got)
	}
}
