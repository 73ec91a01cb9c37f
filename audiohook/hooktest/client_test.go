package hooktest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/siphook/siphook/audiohook"
	"github.com/siphook/siphook/internal/audiotest"
	"github.com/siphook/siphook/internal/g711"
)

// The client is tested against a minimal fake server: it answers open, ping and close, records everything
// the client sends (checked with the same decoder the real server uses), and lets a test send or write
// anything. Waits are bounded (wait) so a broken client fails rather than hangs; nothing asserts timing.

const (
	testKey = "SGVsbG8sIEkgYW0gdGhlIEFQSSBrZXkh"
	wait    = 5 * time.Second
)

var testSecret = []byte("MySuperSecretKeyTellNo-1!2@3#4$5")

type event struct {
	msg   *audiohook.Message // a text message, or nil for audio
	audio []byte
}

type fake struct {
	srv      *httptest.Server
	verifier audiohook.SignatureVerifier
	status   int                             // refuse the upgrade with this status
	onOpen   func(*fake, *audiohook.Message) // default: opened with the first offered media
	noClosed bool                            // never answer close
	noPong   bool                            // never answer ping

	handlers sync.WaitGroup
	events   chan event

	mu         sync.Mutex
	header     http.Header
	sigErr     error
	problems   []string // protocol errors by the client
	conn       *websocket.Conn
	seq        int64 // last server seq sent
	lastClient int64 // last client seq received

	wmu sync.Mutex
}

func newFake(t *testing.T, configure func(*fake)) *fake {
	t.Helper()
	checkGoroutines(t)
	f := &fake{
		events:   make(chan event, 4096),
		verifier: audiohook.SignatureVerifier{Keys: audiohook.StaticKeys{{APIKey: testKey, ClientSecret: testSecret}}},
	}
	if configure != nil {
		configure(f)
	}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(func() {
		f.srv.Close()
		f.handlers.Wait()
		f.mu.Lock()
		defer f.mu.Unlock()
		for _, p := range f.problems {
			t.Errorf("fake server: %s", p)
		}
	})
	return f
}

// checkGoroutines fails the test if it leaves goroutines behind (the fake's included, so it is registered
// first and runs last).
func checkGoroutines(t *testing.T) {
	before := runtime.NumGoroutine()
	t.Cleanup(func() {
		deadline := time.Now().Add(wait)
		for runtime.NumGoroutine() > before {
			if time.Now().After(deadline) {
				buf := make([]byte, 1<<20)
				t.Errorf("%d goroutines left, %d before:\n%s", runtime.NumGoroutine(), before, buf[:runtime.Stack(buf, true)])
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
	})
}

func (f *fake) config() Config {
	return Config{
		URL:          "ws" + strings.TrimPrefix(f.srv.URL, "http") + "/api/v1/audiohook/ws?x=1",
		APIKey:       testKey,
		ClientSecret: testSecret,
		PingInterval: -1, // tests that want pings ask for them
	}
}

func (f *fake) problem(args ...any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.problems = append(f.problems, fmt.Sprintln(args...))
}

var upgrader = websocket.Upgrader{}

func (f *fake) serve(w http.ResponseWriter, r *http.Request) {
	f.handlers.Add(1)
	defer f.handlers.Done()
	defer close(f.events) // one connection per fake
	_, sigErr := f.verifier.Verify(r)
	f.mu.Lock()
	f.header, f.sigErr = r.Header.Clone(), sigErr
	f.mu.Unlock()
	if f.status != 0 {
		http.Error(w, http.StatusText(f.status), f.status)
		return
	}
	conn, err := upgrader.Upgrade(w, r, nil)
	if err != nil {
		f.problem("upgrade", err)
		return
	}
	defer conn.Close()
	f.mu.Lock()
	f.conn = conn
	f.mu.Unlock()
	for {
		typ, b, err := conn.ReadMessage()
		if err != nil {
			return
		}
		if typ == websocket.BinaryMessage {
			f.events <- event{audio: b}
			continue
		}
		m, err := audiohook.DecodeClientMessage(b)
		if err != nil {
			f.problem("invalid client message", string(b), err.Error())
			continue
		}
		f.mu.Lock()
		if m.Seq != f.lastClient+1 || *m.ServerSeq > f.seq {
			f.problems = append(f.problems, fmt.Sprintln("bad sequence numbers", string(b), f.lastClient, f.seq))
		}
		f.lastClient = m.Seq
		f.mu.Unlock()
		f.events <- event{msg: m}
		switch m.Type {
		case audiohook.TypeOpen:
			if f.onOpen != nil {
				f.onOpen(f, m)
				break
			}
			var p audiohook.OpenParameters
			_ = m.Params(&p)
			f.send(audiohook.TypeOpened, audiohook.OpenedParameters{Media: p.Media[:1]})
		case audiohook.TypePing:
			if !f.noPong {
				f.send(audiohook.TypePong, nil)
			}
		case audiohook.TypeClose:
			if !f.noClosed {
				f.send(audiohook.TypeClosed, nil)
			}
		}
	}
}

// build makes the next server message (seq, clientseq), to be written with write (tests may spoil it first).
func (f *fake) build(typ string, params any) *audiohook.Message {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.seq++
	m, err := audiohook.NewMessage(typ, "", f.seq, params)
	if err != nil {
		panic(err)
	}
	cs := f.lastClient
	m.ClientSeq = &cs
	return m
}

func (f *fake) send(typ string, params any) {
	m := f.build(typ, params)
	m.ID = f.sessionID()
	b, _ := json.Marshal(m)
	f.write(websocket.TextMessage, b)
}

func (f *fake) sessionID() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.header.Get("Audiohook-Session-Id")
}

func (f *fake) write(typ int, b []byte) {
	f.mu.Lock()
	conn := f.conn
	f.mu.Unlock()
	f.wmu.Lock()
	defer f.wmu.Unlock()
	_ = conn.WriteMessage(typ, b)
}

// next returns the next client message of type typ and the audio bytes received before it (since the last
// call), skipping pings. Any other message in between fails the test.
func (f *fake) next(t *testing.T, typ string) (*audiohook.Message, []byte) {
	t.Helper()
	var audio []byte
	timeout := time.After(wait)
	for {
		select {
		case e, ok := <-f.events:
			if !ok {
				t.Fatalf("connection ended while waiting for %s", typ)
			}
			switch {
			case e.msg == nil:
				audio = append(audio, e.audio...)
			case e.msg.Type == typ:
				return e.msg, audio
			case e.msg.Type != audiohook.TypePing:
				t.Fatalf("got %s while waiting for %s", e.msg.Type, typ)
			}
		case <-timeout:
			t.Fatalf("no %s", typ)
		}
	}
}

func dial(t *testing.T, cfg Config) *Session {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	s, err := Dial(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Abort) // no-op after Close
	return s
}

func closeSession(t *testing.T, s *Session) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	if err := s.Close(ctx, audiohook.CloseEnd); err != nil {
		t.Fatal(err)
	}
}

func position(t *testing.T, m *audiohook.Message) time.Duration {
	t.Helper()
	if m.Position == nil {
		t.Fatalf("%s without position", m.Type)
	}
	return time.Duration(*m.Position)
}

func discarded(t *testing.T, m *audiohook.Message) (start, disc time.Duration) {
	t.Helper()
	var p audiohook.DiscardedParameters
	if err := m.Params(&p); err != nil {
		t.Fatal(err)
	}
	return time.Duration(p.Start), time.Duration(p.Discarded)
}

func TestDialOpenClose(t *testing.T) {
	f := newFake(t, nil)
	cfg := f.config()
	cfg.OrganizationID = "d7934305-0972-4844-938e-9060eef73d05"
	cfg.ConversationID = "dfe3ea12-8a4b-4c6d-a1e2-f3a4b5c6d7e8"
	cfg.SessionID = "30b0e395-84d3-4570-ac13-9a62d8f514c0"
	cfg.Language = "en-US"
	s := dial(t, cfg)

	open, _ := f.next(t, audiohook.TypeOpen)
	if open.ID != cfg.SessionID || open.Seq != 1 || *open.ServerSeq != 0 || position(t, open) != 0 {
		t.Fatalf("open %+v", open)
	}
	var p audiohook.OpenParameters
	if err := open.Params(&p); err != nil {
		t.Fatal(err)
	}
	if p.OrganizationID != cfg.OrganizationID || p.ConversationID != cfg.ConversationID || p.Language != "en-US" ||
		!audiohook.IsUUID(p.Participant.ID) || p.Participant.ANI == "" {
		t.Fatalf("open parameters %+v", p)
	}
	if !slices.EqualFunc(p.Media, DefaultMedia(), audiohook.MediaParameter.Equal) {
		t.Fatalf("offer %+v", p.Media)
	}

	f.mu.Lock()
	h, sigErr := f.header, f.sigErr
	f.mu.Unlock()
	if sigErr != nil {
		t.Fatalf("signature: %v", sigErr)
	}
	for name, want := range map[string]string{
		"User-Agent":                UserAgent,
		"Audiohook-Organization-Id": cfg.OrganizationID,
		"Audiohook-Session-Id":      cfg.SessionID,
		"X-Api-Key":                 testKey,
	} {
		if got := h.Get(name); got != want {
			t.Errorf("%s: %q, want %q", name, got, want)
		}
	}
	if !audiohook.IsUUID(h.Get("Audiohook-Correlation-Id")) || !strings.Contains(h.Get("Signature-Input"), `keyid="`+testKey+`"`) {
		t.Errorf("headers %v", h)
	}
	if got := s.Opened().Media; len(got) != 1 || !got[0].Equal(DefaultMedia()[0]) {
		t.Fatalf("opened media %+v", got)
	}

	closeSession(t, s)
	c, _ := f.next(t, audiohook.TypeClose)
	var cp audiohook.CloseParameters
	if err := c.Params(&cp); err != nil || cp.Reason != "end" || c.Seq != 2 || *c.ServerSeq != 1 {
		t.Fatalf("close %+v %+v", c, cp)
	}
	<-s.Done()
	if err := s.Err(); err != nil {
		t.Fatal(err)
	}
	var types []string
	for m := range s.Messages() {
		types = append(types, m.Type)
	}
	if !slices.Equal(types, []string{"opened", "closed"}) {
		t.Fatalf("messages %v", types)
	}
	if cs := s.ContinuedSession(); cs != (audiohook.ContinuedSession{ID: cfg.SessionID, ServerSeq: 2, ClientSeq: 2}) {
		t.Fatalf("continued session %+v", cs)
	}
	if err := s.Close(context.Background(), "end"); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

func TestUpgradeHeaders(t *testing.T) {
	tests := []struct {
		name    string
		cfg     func(*Config)
		sigOK   bool
		check   func(h http.Header) bool
		openOrg bool // open.organizationId still the configured one
	}{
		{"unsigned", func(c *Config) { c.ClientSecret = nil }, false,
			func(h http.Header) bool { return h.Get("X-Api-Key") == testKey && h.Get("Signature") == "" }, true},
		{"org header overridden, still signed", func(c *Config) {
			c.Headers = http.Header{"Audiohook-Organization-Id": {"c13afc37-2f5a-4e8b-9c1d-3e5f7a9b1c2d"}}
		}, true, func(h http.Header) bool {
			return h.Get("Audiohook-Organization-Id") == "c13afc37-2f5a-4e8b-9c1d-3e5f7a9b1c2d"
		}, true},
		{"signature replaced", func(c *Config) {
			c.Headers = http.Header{"Signature": {"sig1=:NZBwyBHRRyRoeLqy1IzOa9VYBuI8TgMFt2GRDkDuJh4=:"}}
		}, false, func(h http.Header) bool {
			return h.Get("Signature") == "sig1=:NZBwyBHRRyRoeLqy1IzOa9VYBuI8TgMFt2GRDkDuJh4=:"
		}, true},
		{"correlation id removed", func(c *Config) {
			c.Headers = http.Header{"Audiohook-Correlation-Id": nil}
			c.ClientSecret = nil
		}, false, func(h http.Header) bool { return h.Get("Audiohook-Correlation-Id") == "" }, true},
		{"old clock", func(c *Config) { c.Now = func() time.Time { return time.Unix(1641013200, 0) } }, false,
			func(h http.Header) bool { return strings.Contains(h.Get("Signature-Input"), "created=1641013200") }, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake(t, nil)
			cfg := f.config()
			cfg.OrganizationID = "d7934305-0972-4844-938e-9060eef73d05"
			tt.cfg(&cfg)
			s := dial(t, cfg)
			open, _ := f.next(t, audiohook.TypeOpen)
			var p audiohook.OpenParameters
			_ = open.Params(&p)
			f.mu.Lock()
			h, sigErr := f.header, f.sigErr
			f.mu.Unlock()
			if (sigErr == nil) != tt.sigOK && len(cfg.ClientSecret) > 0 {
				t.Errorf("signature verification: %v", sigErr)
			}
			if !tt.check(h) {
				t.Errorf("headers %v", h)
			}
			if p.OrganizationID != cfg.OrganizationID {
				t.Errorf("open organizationId %s", p.OrganizationID)
			}
			closeSession(t, s)
		})
	}
}

func TestProbe(t *testing.T) {
	f := newFake(t, func(f *fake) {
		f.onOpen = func(f *fake, _ *audiohook.Message) { f.send(audiohook.TypeOpened, audiohook.OpenedParameters{}) }
	})
	cfg := f.config()
	cfg.ConversationID = audiohook.NullUUID
	s := dial(t, cfg)
	open, _ := f.next(t, audiohook.TypeOpen)
	var p audiohook.OpenParameters
	_ = open.Params(&p)
	if p.ConversationID != audiohook.NullUUID || p.Participant != (audiohook.Participant{ID: audiohook.NullUUID}) {
		t.Fatalf("probe open %+v", p)
	}
	if err := s.SendTones(context.Background(), []float64{1000, 2000}, time.Second, 0, false); !errors.Is(err, ErrNoMedia) {
		t.Fatalf("tones without media: %v", err)
	}
	closeSession(t, s)
}

func TestHandshakeRefused(t *testing.T) {
	f := newFake(t, func(f *fake) { f.status = http.StatusUnauthorized })
	_, err := Dial(context.Background(), f.config())
	var he *HandshakeError
	if !errors.As(err, &he) || he.StatusCode != http.StatusUnauthorized {
		t.Fatalf("got %v", err)
	}
}

func TestPings(t *testing.T) {
	f := newFake(t, nil)
	cfg := f.config()
	cfg.PingInterval = 100 * time.Millisecond
	s := dial(t, cfg)
	f.next(t, audiohook.TypeOpen)

	var pings []*audiohook.Message
	timeout := time.After(wait)
	for len(pings) < 3 {
		select {
		case e := <-f.events:
			if e.msg != nil && e.msg.Type == audiohook.TypePing {
				pings = append(pings, e.msg)
			}
		case <-timeout:
			t.Fatalf("%d pings", len(pings))
		}
	}
	for i, p := range pings {
		var pp audiohook.PingParameters
		if err := p.Params(&pp); err != nil {
			t.Fatal(err)
		}
		// The first ping has no RTT yet; later ones report the previous round trip.
		if (pp.RTT == nil) != (i == 0) {
			t.Errorf("ping %d: rtt %v", i, pp.RTT)
		}
		// opened was server seq 1, then one pong per ping.
		if p.Seq != int64(i+2) || *p.ServerSeq != int64(i+1) {
			t.Errorf("ping %d: seq %d serverseq %d", i, p.Seq, *p.ServerSeq)
		}
	}
	closeSession(t, s)
	if s.Pongs() < 2 || s.LastRTT() <= 0 || s.Err() != nil {
		t.Fatalf("pongs %d, rtt %v, err %v", s.Pongs(), s.LastRTT(), s.Err())
	}
}

func TestMissingPong(t *testing.T) {
	f := newFake(t, func(f *fake) { f.noPong = true })
	cfg := f.config()
	cfg.PingInterval = 50 * time.Millisecond
	s := dial(t, cfg)
	f.next(t, audiohook.TypeOpen)
	f.next(t, audiohook.TypePing)
	// At the next ping time the reference client gives up: error 408, then close.
	e, _ := f.next(t, audiohook.TypeError)
	var ep audiohook.ErrorParameters
	if _ = e.Params(&ep); ep.Code != 408 {
		t.Fatalf("error %+v", ep)
	}
	c, _ := f.next(t, audiohook.TypeClose)
	var cp audiohook.CloseParameters
	if _ = c.Params(&cp); cp.Reason != audiohook.CloseError {
		t.Fatalf("close reason %q", cp.Reason)
	}
	<-s.Done()
	if err := s.Err(); err == nil || !strings.Contains(err.Error(), "pong") {
		t.Fatalf("Err() = %v", err)
	}
}

// toneCoverage decodes one channel of stereo PCMU audio and returns the share of it carrying freq.
func toneCoverage(audio []byte, freq float64, channel int) float64 {
	pcm := make([]int16, len(audio)/2)
	for i := range pcm {
		var s [1]int16
		g711.DecodeULaw(s[:], audio[2*i+channel:2*i+channel+1])
		pcm[i] = s[0]
	}
	return audiotest.ToneCoverage(pcm, 8000, freq)
}

func TestServerPauseResume(t *testing.T) {
	f := newFake(t, nil)
	s := dial(t, f.config())
	ctx := context.Background()
	f.next(t, audiohook.TypeOpen)

	if err := s.SendTones(ctx, []float64{1000, 2000}, time.Second, 0, false); err != nil {
		t.Fatal(err)
	}
	f.send(audiohook.TypePause, nil)
	paused, audio := f.next(t, audiohook.TypePaused)
	if len(audio) != 16000 || position(t, paused) != time.Second {
		t.Fatalf("before pause: %d bytes, position %v", len(audio), position(t, paused))
	}
	for ch, freq := range []float64{1000, 2000} {
		if own, other := toneCoverage(audio, freq, ch), toneCoverage(audio, freq, 1-ch); own < 0.9 || other > 0.1 {
			t.Errorf("%v Hz: %.2f on channel %d, %.2f on the other", freq, own, ch, other)
		}
	}
	if !s.Paused() {
		t.Fatal("not paused")
	}

	// Stream time goes on while paused; nothing is sent.
	if err := s.SendTones(ctx, []float64{1000, 2000}, 500*time.Millisecond, 0, false); err != nil {
		t.Fatal(err)
	}
	f.send(audiohook.TypePause, nil) // pause interrogates: answered again
	f.next(t, audiohook.TypePaused)
	f.send(audiohook.TypeResume, nil)
	resumed, audio := f.next(t, audiohook.TypeResumed)
	if start, disc := discarded(t, resumed); len(audio) != 0 || start != time.Second || disc != 500*time.Millisecond ||
		position(t, resumed) != 1500*time.Millisecond {
		t.Fatalf("resumed start %v discarded %v position %v after %d bytes", start, disc, position(t, resumed), len(audio))
	}

	if err := s.SendTones(ctx, []float64{1000, 2000}, 200*time.Millisecond, 0, false); err != nil {
		t.Fatal(err)
	}
	closeSession(t, s)
	c, audio := f.next(t, audiohook.TypeClose)
	if len(audio) != 3200 || position(t, c) != 1700*time.Millisecond {
		t.Fatalf("close after %d bytes at %v", len(audio), position(t, c))
	}
	if err := s.SendAudio(make([]byte, 2)); !errors.Is(err, ErrNotOpen) {
		t.Fatalf("audio after close: %v", err)
	}
}

func TestClientPauseResume(t *testing.T) {
	f := newFake(t, nil)
	s := dial(t, f.config())
	ctx := context.Background()
	f.next(t, audiohook.TypeOpen)

	if err := s.Pause(ctx); err != nil {
		t.Fatal(err)
	}
	if p, _ := f.next(t, audiohook.TypePaused); position(t, p) != 0 {
		t.Fatalf("paused at %v", position(t, p))
	}
	// A server resume does not end a secure pause: the client says it is still paused.
	f.send(audiohook.TypeResume, nil)
	f.next(t, audiohook.TypePaused)

	if err := s.Resume(ctx, 2*time.Second); err != nil {
		t.Fatal(err)
	}
	r, _ := f.next(t, audiohook.TypeResumed)
	if start, disc := discarded(t, r); start != 0 || disc != 2*time.Second || position(t, r) != 2*time.Second {
		t.Fatalf("resumed %v %v at %v", start, disc, position(t, r))
	}
	// Resume without a pause reports nothing discarded, as the reference client does.
	if err := s.Resume(ctx, time.Second); err != nil {
		t.Fatal(err)
	}
	r, _ = f.next(t, audiohook.TypeResumed)
	if start, disc := discarded(t, r); start != 2*time.Second || disc != 0 {
		t.Fatalf("second resumed %v %v", start, disc)
	}
	if err := s.SendTones(ctx, []float64{440, 880}, 100*time.Millisecond, 20*time.Millisecond, true); err != nil {
		t.Fatal(err)
	}
	closeSession(t, s)
	if _, audio := f.next(t, audiohook.TypeClose); len(audio) != 1600 {
		t.Fatalf("%d bytes of audio", len(audio))
	}
}

func TestStartPausedAndDiscardTo(t *testing.T) {
	f := newFake(t, func(f *fake) {
		f.onOpen = func(f *fake, m *audiohook.Message) {
			var p audiohook.OpenParameters
			_ = m.Params(&p)
			to := audiohook.Duration(time.Second)
			f.send(audiohook.TypeOpened, audiohook.OpenedParameters{Media: p.Media[1:2], StartPaused: true, DiscardTo: &to})
		}
	})
	s := dial(t, f.config())
	f.next(t, audiohook.TypeOpen)
	d, _ := f.next(t, audiohook.TypeDiscarded)
	if start, disc := discarded(t, d); start != 0 || disc != time.Second {
		t.Fatalf("discarded %v %v", start, disc)
	}
	if p, _ := f.next(t, audiohook.TypePaused); position(t, p) != time.Second {
		t.Fatalf("paused at %v", position(t, p))
	}
	// Mono now: one tone.
	if err := s.SendTones(context.Background(), []float64{1000}, 400*time.Millisecond, 0, false); err != nil {
		t.Fatal(err)
	}
	f.send(audiohook.TypeResume, nil)
	r, audio := f.next(t, audiohook.TypeResumed)
	if start, disc := discarded(t, r); len(audio) != 0 || start != time.Second || disc != 400*time.Millisecond {
		t.Fatalf("resumed %v %v after %d bytes", start, disc, len(audio))
	}
	closeSession(t, s)
}

func TestServerDisconnect(t *testing.T) {
	f := newFake(t, nil)
	s := dial(t, f.config())
	f.next(t, audiohook.TypeOpen)
	f.send(audiohook.TypeDisconnect, audiohook.DisconnectParameters{Reason: "completed", Info: "done"})
	c, _ := f.next(t, audiohook.TypeClose)
	var cp audiohook.CloseParameters
	if _ = c.Params(&cp); cp.Reason != audiohook.CloseDisconnect {
		t.Fatalf("close reason %q", cp.Reason)
	}
	select {
	case d := <-s.Disconnected():
		if d.Reason != "completed" || d.Info != "done" {
			t.Fatalf("disconnect %+v", d)
		}
	case <-time.After(wait):
		t.Fatal("no disconnect")
	}
	select {
	case <-s.Done():
	case <-time.After(wait):
		t.Fatal("session did not end")
	}
	if err := s.Close(context.Background(), "end"); err != nil || s.Err() != nil {
		t.Fatalf("close %v, err %v", err, s.Err())
	}
}

func TestDialRejected(t *testing.T) {
	f := newFake(t, func(f *fake) {
		f.onOpen = func(f *fake, _ *audiohook.Message) {
			f.send(audiohook.TypeDisconnect, audiohook.DisconnectParameters{Reason: "unauthorized"})
		}
	})
	_, err := Dial(context.Background(), f.config())
	var de *DisconnectError
	if !errors.As(err, &de) || de.Params.Reason != "unauthorized" {
		t.Fatalf("got %v", err)
	}
	f.next(t, audiohook.TypeOpen)
	c, _ := f.next(t, audiohook.TypeClose)
	var cp audiohook.CloseParameters
	if _ = c.Params(&cp); cp.Reason != audiohook.CloseDisconnect {
		t.Fatalf("close reason %q", cp.Reason)
	}
}

func TestOpenTimeout(t *testing.T) {
	f := newFake(t, func(f *fake) { f.onOpen = func(*fake, *audiohook.Message) {} })
	cfg := f.config()
	cfg.OpenTimeout = 50 * time.Millisecond
	if _, err := Dial(context.Background(), cfg); !errors.Is(err, ErrOpenTimeout) {
		t.Fatalf("got %v", err)
	}
	f.next(t, audiohook.TypeOpen)
	e, _ := f.next(t, audiohook.TypeError)
	var ep audiohook.ErrorParameters
	if _ = e.Params(&ep); ep.Code != 408 {
		t.Fatalf("error %+v", ep)
	}
	c, _ := f.next(t, audiohook.TypeClose)
	var cp audiohook.CloseParameters
	if _ = c.Params(&cp); cp.Reason != audiohook.CloseError {
		t.Fatalf("close reason %q", cp.Reason)
	}
}

func TestCloseTimeout(t *testing.T) {
	f := newFake(t, func(f *fake) { f.noClosed = true })
	cfg := f.config()
	cfg.CloseTimeout = 50 * time.Millisecond
	s := dial(t, cfg)
	if err := s.Close(context.Background(), "end"); !errors.Is(err, ErrCloseTimeout) {
		t.Fatalf("got %v", err)
	}
	f.next(t, audiohook.TypeOpen)
	f.next(t, audiohook.TypeClose)
	if e, _ := f.next(t, audiohook.TypeError); e == nil || !errors.Is(s.Err(), ErrCloseTimeout) {
		t.Fatalf("err %v", s.Err())
	}
}

func TestMediaNotOffered(t *testing.T) {
	f := newFake(t, func(f *fake) {
		f.onOpen = func(f *fake, _ *audiohook.Message) {
			f.send(audiohook.TypeOpened, audiohook.OpenedParameters{Media: []audiohook.MediaParameter{
				{Type: "audio", Format: "PCMU", Channels: []string{"internal", "external"}, Rate: 8000}}})
		}
	})
	_, err := Dial(context.Background(), f.config())
	if err == nil || !strings.Contains(err.Error(), "not offered") {
		t.Fatalf("got %v", err)
	}
	f.next(t, audiohook.TypeOpen)
	f.next(t, audiohook.TypeError)
	f.next(t, audiohook.TypeClose)
}

// TestServerViolations spoils one server message and checks that the client notices, and, where the
// reference client gives up, reports error{code} and closes.
func TestServerViolations(t *testing.T) {
	tests := []struct {
		name  string
		write func(f *fake) (int, []byte)
		code  int    // error code the client sends; 0: the client only records the violation
		want  string // in Err()
	}{
		{"seq gap", func(f *fake) (int, []byte) {
			m := f.build(audiohook.TypePause, nil)
			m.Seq++
			return text(f, m)
		}, 500, "seq"},
		{"no parameters", func(f *fake) (int, []byte) {
			_, b := text(f, f.build(audiohook.TypePause, nil))
			return websocket.TextMessage, []byte(strings.Replace(string(b), `,"parameters":{}`, "", 1))
		}, 400, "parameters"},
		{"binary", func(f *fake) (int, []byte) { return websocket.BinaryMessage, []byte{1, 2} }, 415, "binary"},
		{"second opened", func(f *fake) (int, []byte) {
			return text(f, f.build(audiohook.TypeOpened, audiohook.OpenedParameters{}))
		}, 409, "opened"},
		{"closed without close", func(f *fake) (int, []byte) { return text(f, f.build(audiohook.TypeClosed, nil)) }, 409, "closed"},
		{"pong without ping", func(f *fake) (int, []byte) { return text(f, f.build(audiohook.TypePong, nil)) }, 409, "pong"},
		{"clientseq ahead", func(f *fake) (int, []byte) {
			m := f.build(audiohook.TypeUpdated, nil)
			*m.ClientSeq = 99
			return text(f, m)
		}, 0, "clientseq"},
		{"wrong id", func(f *fake) (int, []byte) {
			m := f.build(audiohook.TypeUpdated, nil)
			m.ID = audiohook.NullUUID
			b, _ := json.Marshal(m)
			return websocket.TextMessage, b
		}, 0, "id"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake(t, nil)
			cfg := f.config()
			// After a rejected message the fake's seq is off by one, so the client refuses its closed too
			// (as the reference client does): don't wait long for it.
			cfg.CloseTimeout = 100 * time.Millisecond
			s := dial(t, cfg)
			f.next(t, audiohook.TypeOpen)
			f.write(tt.write(f))
			if tt.code != 0 {
				e, _ := f.next(t, audiohook.TypeError)
				var ep audiohook.ErrorParameters
				if _ = e.Params(&ep); ep.Code != tt.code {
					t.Errorf("error code %d, want %d", ep.Code, tt.code)
				}
			} else {
				f.send(audiohook.TypePause, nil) // a reply proves the client has handled the message
				f.next(t, audiohook.TypePaused)
			}
			if err := s.Err(); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Err() = %v, want it to mention %q", err, tt.want)
			}
			ctx, cancel := context.WithTimeout(context.Background(), wait)
			defer cancel()
			s.Close(ctx, "end")
		})
	}
}

// text marshals a built message with the fake's session id.
func text(f *fake, m *audiohook.Message) (int, []byte) {
	m.ID = f.sessionID()
	b, _ := json.Marshal(m)
	return websocket.TextMessage, b
}

func TestAbortAndServerDrop(t *testing.T) {
	t.Run("abort", func(t *testing.T) {
		f := newFake(t, nil)
		s := dial(t, f.config())
		f.next(t, audiohook.TypeOpen)
		s.Abort()
		if err := s.Close(context.Background(), "end"); !errors.Is(err, ErrAborted) {
			t.Fatalf("close after abort: %v", err)
		}
		if s.Err() != nil {
			t.Fatalf("abort counted as a server fault: %v", s.Err())
		}
	})
	t.Run("server drop", func(t *testing.T) {
		f := newFake(t, nil)
		s := dial(t, f.config())
		f.next(t, audiohook.TypeOpen)
		f.mu.Lock()
		f.conn.Close()
		f.mu.Unlock()
		<-s.Done()
		if err := s.Err(); err == nil || !strings.Contains(err.Error(), "without a close transaction") {
			t.Fatalf("Err() = %v", err)
		}
		if err := s.Close(context.Background(), "end"); !errors.Is(err, ErrConnectionLost) {
			t.Fatalf("close: %v", err)
		}
	})
}

func TestUpdateDiscardedSendAudio(t *testing.T) {
	f := newFake(t, nil)
	s := dial(t, f.config())
	f.next(t, audiohook.TypeOpen)
	if err := s.Update("fr-CA"); err != nil {
		t.Fatal(err)
	}
	u, _ := f.next(t, audiohook.TypeUpdate)
	var up audiohook.UpdateParameters
	if _ = u.Params(&up); up.Language != "fr-CA" {
		t.Fatalf("update %+v", up)
	}
	if err := s.Discarded(time.Second, 2*time.Second); err != nil {
		t.Fatal(err)
	}
	d, _ := f.next(t, audiohook.TypeDiscarded)
	if start, disc := discarded(t, d); start != time.Second || disc != 2*time.Second || position(t, d) != 3*time.Second {
		t.Fatalf("discarded %v %v at %v", start, disc, position(t, d))
	}
	if err := s.SendAudio(make([]byte, 3)); err == nil {
		t.Fatal("half a stereo sample accepted")
	}
	if err := s.SendAudio(make([]byte, 4)); err != nil || s.Position() != 3*time.Second+250*time.Microsecond {
		t.Fatalf("audio: %v, position %v", err, s.Position())
	}
	closeSession(t, s)
}
