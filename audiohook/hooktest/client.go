// Package hooktest is a fake Genesys Cloud AudioHook client for tests, the demo and the load generator. It
// behaves like the reference client (purecloudlabs/audiohook-reference-implementation, client session and
// tone media source): a signed upgrade, the open transaction, pings, answers to pause/resume/disconnect, and
// the close transaction. It checks every server message as that client does and records the first
// violation in Err, so a test of the server can assert that a real client would have been satisfied.
package hooktest

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/gorilla/websocket"

	"github.com/siphook/siphook/audiohook"
	"github.com/siphook/siphook/internal/audiotest"
	"github.com/siphook/siphook/internal/g711"
)

// Defaults of the reference client.
const (
	DefaultPingInterval = 5 * time.Second
	InitialPingDelay    = time.Second // first ping after opened (or PingInterval, if shorter)
	DefaultOpenTimeout  = 5 * time.Second
	DefaultCloseTimeout = 10 * time.Second
	DefaultFrame        = 200 * time.Millisecond // audio per binary message
	UserAgent           = "GenesysCloud-AudioHook-Client"
)

const (
	writeTimeout     = 10 * time.Second
	handshakeTimeout = 10 * time.Second
	// closeLinger bounds the wait for the server's WebSocket close frame after closed.
	closeLinger   = 2 * time.Second
	messageBuffer = 1024
	toneAmplitude = 0.5
)

// Errors returned by Dial and the session methods.
var (
	ErrNotOpen      = errors.New("hooktest: session is not open")
	ErrNoMedia      = errors.New("hooktest: no media negotiated")
	ErrOpenTimeout  = errors.New("hooktest: timeout waiting for opened")
	ErrCloseTimeout = errors.New("hooktest: timeout waiting for closed")
	ErrAborted      = errors.New("hooktest: session aborted")
	// ErrConnectionLost: the connection ended without a completed close transaction.
	ErrConnectionLost = errors.New("hooktest: connection lost")
)

// HandshakeError is a refused upgrade: the server answered with StatusCode instead of 101.
type HandshakeError struct{ StatusCode int }

func (e *HandshakeError) Error() string {
	return fmt.Sprintf("hooktest: upgrade refused: HTTP %d", e.StatusCode)
}

// DisconnectError is a server disconnect during the open transaction (the session was rejected).
type DisconnectError struct {
	Params audiohook.DisconnectParameters
}

func (e *DisconnectError) Error() string {
	return fmt.Sprintf("hooktest: server disconnected: %s (%s)", e.Params.Reason, e.Params.Info)
}

// Config describes one client session. Zero values take the defaults noted.
type Config struct {
	URL            string // ws:// or wss:// URL of the server
	APIKey         string
	ClientSecret   []byte // decoded; empty → unsigned (X-API-KEY only)
	OrganizationID string // default: a random UUID
	ConversationID string // default: a random UUID; audiohook.NullUUID for a connection probe
	// Participant defaults to the reference client's caller, or to the null participant for a probe.
	Participant audiohook.Participant
	// Media is the offer. nil → DefaultMedia(); an empty non-nil slice offers no media.
	Media              []audiohook.MediaParameter
	SessionID          string // default: a random UUID; also Audiohook-Session-Id
	CorrelationID      string // default: a random UUID
	Language           string
	SupportedLanguages bool
	CustomConfig       json.RawMessage
	ContinuedSessions  []audiohook.ContinuedSession
	PingInterval       time.Duration // 0 → 5s, < 0 → no pings; the first ping comes min(1s, interval) after opened
	OpenTimeout        time.Duration // 0 → 5s: then the client sends error 408 and close
	CloseTimeout       time.Duration // 0 → 10s: wait for closed, then error 408 and drop
	// Headers are set on the upgrade request before signing (so the signature covers them) and again after
	// (so a test can also replace X-API-KEY, Signature or Signature-Input). A key with no values removes
	// the header.
	Headers   http.Header
	Now       func() time.Time // signing clock, default time.Now
	TLSConfig *tls.Config
}

// DefaultMedia is the reference client's offer: stereo external+internal, then external, then internal,
// all PCMU 8 kHz.
func DefaultMedia() []audiohook.MediaParameter {
	var offer []audiohook.MediaParameter
	for _, ch := range [][]string{{"external", "internal"}, {"external"}, {"internal"}} {
		offer = append(offer, audiohook.MediaParameter{Type: "audio", Format: "PCMU", Channels: ch, Rate: 8000})
	}
	return offer
}

func (c Config) withDefaults() Config {
	def := func(s *string) {
		if *s == "" {
			*s = uuid.NewString()
		}
	}
	def(&c.OrganizationID)
	def(&c.ConversationID)
	def(&c.SessionID)
	def(&c.CorrelationID)
	if c.Participant == (audiohook.Participant{}) {
		if c.ConversationID == audiohook.NullUUID {
			c.Participant = audiohook.Participant{ID: audiohook.NullUUID}
		} else {
			c.Participant = audiohook.Participant{ID: uuid.NewString(), ANI: "+1-555-555-1234", ANIName: "John Doe", DNIS: "+1-800-555-6789"}
		}
	}
	if c.Media == nil {
		c.Media = DefaultMedia()
	}
	if c.PingInterval == 0 {
		c.PingInterval = DefaultPingInterval
	}
	if c.OpenTimeout <= 0 {
		c.OpenTimeout = DefaultOpenTimeout
	}
	if c.CloseTimeout <= 0 {
		c.CloseTimeout = DefaultCloseTimeout
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

// upgradeHeader builds the headers of the upgrade request, signed when a secret is configured.
func (c Config) upgradeHeader() (http.Header, error) {
	h := http.Header{}
	h.Set("User-Agent", UserAgent)
	h.Set("Audiohook-Organization-Id", c.OrganizationID)
	h.Set("Audiohook-Session-Id", c.SessionID)
	h.Set("Audiohook-Correlation-Id", c.CorrelationID)
	if c.APIKey != "" {
		h.Set("X-API-KEY", c.APIKey)
	}
	override(h, c.Headers)
	if len(c.ClientSecret) == 0 {
		return h, nil
	}
	u, err := url.Parse(c.URL)
	if err != nil {
		return nil, fmt.Errorf("hooktest: %w", err)
	}
	// The request gorilla sends has this request-target and Host; sign a copy describing it.
	r := &http.Request{Method: http.MethodGet, URL: u, Host: u.Host, Header: h}
	if host := h.Get("Host"); host != "" {
		r.Host = host
	}
	nonce := make([]byte, 18) // as the reference client: 18 random bytes, 24 base64 characters
	rand.Read(nonce)
	if err := audiohook.SignRequest(r, c.APIKey, c.ClientSecret, c.Now(), base64.StdEncoding.EncodeToString(nonce)); err != nil {
		return nil, err
	}
	override(r.Header, c.Headers)
	return r.Header, nil
}

func override(h, with http.Header) {
	for k, vs := range with {
		if len(vs) == 0 {
			h.Del(k)
		} else {
			h[http.CanonicalHeaderKey(k)] = slices.Clone(vs)
		}
	}
}

type state int

const (
	stateOpening state = iota // open sent, waiting for opened
	stateOpen                 // streaming
	stateClosing              // close sent, waiting for closed
	stateClosed               // closed received: WebSocket closing, nothing more may be sent
	stateEnded                // the reader has exited and the connection is closed
)

// Session is one client session. Its methods are safe for concurrent use.
type Session struct {
	id           string
	offer        []audiohook.MediaParameter
	conn         *websocket.Conn
	pingInterval time.Duration
	closeTimeout time.Duration

	// wmu serializes writes (gorilla allows one writer) and makes seq order the wire order. It is taken
	// before mu, never after.
	wmu sync.Mutex

	mu           sync.Mutex
	state        state
	seq          int64 // last seq sent
	serverSeq    int64 // last server seq received
	echoed       int64 // last clientseq received
	opened       audiohook.OpenedParameters
	media        *audiohook.MediaParameter
	samples      int64 // stream position in samples at rate: sent, paused and discarded audio alike
	rate         int64
	serverPaused bool
	clientPaused bool
	pauseStart   int64 // samples at the start of the current pause
	pendingPing  int64 // seq of the ping awaiting its pong, 0 if none
	pingSent     time.Time
	initialPing  bool // the pending ping is the first one: its pong triggers an immediate second ping
	pongs        int
	rtt          time.Duration
	err          error // first server violation
	endErr       error // how the session ended; nil for a completed close transaction
	aborted      bool
	disconnect   *audiohook.DisconnectParameters

	msgs     chan *audiohook.Message
	discCh   chan audiohook.DisconnectParameters
	openedCh chan struct{}
	stop     chan struct{} // ends the ping loop
	done     chan struct{} // closed when the session has ended
	wg       sync.WaitGroup
}

// Dial connects, sends open (seq 1, serverseq 0, position PT0S) and waits for opened. A disconnect instead
// returns a *DisconnectError once the client has answered it with close and received closed; a refused
// upgrade returns a *HandshakeError.
func Dial(ctx context.Context, cfg Config) (*Session, error) {
	cfg = cfg.withDefaults()
	hdr, err := cfg.upgradeHeader()
	if err != nil {
		return nil, err
	}
	d := websocket.Dialer{TLSClientConfig: cfg.TLSConfig, HandshakeTimeout: handshakeTimeout} // no proxy
	conn, resp, err := d.DialContext(ctx, cfg.URL, hdr)
	if resp != nil && resp.Body != nil {
		resp.Body.Close()
	}
	if err != nil {
		if errors.Is(err, websocket.ErrBadHandshake) && resp != nil {
			return nil, &HandshakeError{StatusCode: resp.StatusCode}
		}
		return nil, fmt.Errorf("hooktest: dial %s: %w", cfg.URL, err)
	}
	conn.SetReadLimit(audiohook.MaxMessageSize)

	s := &Session{
		id:           cfg.SessionID,
		offer:        cfg.Media,
		conn:         conn,
		pingInterval: cfg.PingInterval,
		closeTimeout: cfg.CloseTimeout,
		rate:         8000, // until media is negotiated: position only moves by discards then
		msgs:         make(chan *audiohook.Message, messageBuffer),
		discCh:       make(chan audiohook.DisconnectParameters, 1),
		openedCh:     make(chan struct{}),
		stop:         make(chan struct{}),
		done:         make(chan struct{}),
	}
	s.wg.Add(1)
	go s.readLoop()

	open := audiohook.OpenParameters{
		OrganizationID:     cfg.OrganizationID,
		ConversationID:     cfg.ConversationID,
		Participant:        cfg.Participant,
		Media:              cfg.Media,
		Language:           cfg.Language,
		SupportedLanguages: cfg.SupportedLanguages,
		ContinuedSessions:  cfg.ContinuedSessions,
		CustomConfig:       cfg.CustomConfig,
	}
	if err := s.send(audiohook.TypeOpen, open, time.Time{}); err != nil {
		s.Abort()
		return nil, fmt.Errorf("hooktest: send open: %w", err)
	}

	timer := time.NewTimer(cfg.OpenTimeout)
	defer timer.Stop()
	select {
	case <-s.openedCh:
		return s, nil
	case <-s.done:
		s.wg.Wait()
		select {
		case <-s.openedCh: // opened, then ended at once: the caller sees the end on the session
			return s, nil
		default:
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.disconnect != nil {
			return nil, &DisconnectError{Params: *s.disconnect}
		}
		return nil, firstErr(s.err, s.endErr, ErrConnectionLost)
	case <-timer.C:
		s.fatal(408, "Open transaction timeout", ErrOpenTimeout)
		if s.wait(ctx); ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, ErrOpenTimeout
	case <-ctx.Done():
		s.Abort()
		return nil, ctx.Err()
	}
}

// firstErr returns the first non-nil error.
func firstErr(errs ...error) error {
	for _, e := range errs {
		if e != nil {
			return e
		}
	}
	return nil
}

// ID is the session id (the id of every message, and Audiohook-Session-Id).
func (s *Session) ID() string { return s.id }

// Opened returns the parameters of the server's opened.
func (s *Session) Opened() audiohook.OpenedParameters {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.opened
}

// Messages delivers every valid server message received, in order. It is closed when the session ends.
// When its buffer (1024) is full, further messages are dropped rather than stalling the session.
func (s *Session) Messages() <-chan *audiohook.Message { return s.msgs }

// Disconnected delivers the server's first disconnect. The session answers it by itself: close with
// reason "disconnect", then it waits for closed and closes the WebSocket.
func (s *Session) Disconnected() <-chan audiohook.DisconnectParameters { return s.discCh }

// Done is closed when the session has ended and its connection is closed.
func (s *Session) Done() <-chan struct{} { return s.done }

// Err returns the first protocol violation seen from the server: an invalid message, a wrong seq,
// clientseq or id, a missing pong, an unexpected message, anything after closed, or a connection dropped
// without a close transaction.
func (s *Session) Err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

// Pongs is the number of pongs received for the client's pings.
func (s *Session) Pongs() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.pongs
}

// LastRTT is the round trip of the last ping/pong (0 before the first pong). The next ping reports it.
func (s *Session) LastRTT() time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.rtt
}

// Position is the stream position: audio sent, plus audio produced while paused, plus discarded audio.
func (s *Session) Position() time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.positionLocked()
}

func (s *Session) positionLocked() time.Duration { return s.durationOf(s.samples) }

// durationOf converts samples to stream time (exact at 8 kHz: 125 µs a sample). It needs mu: rate is set
// by opened.
func (s *Session) durationOf(n int64) time.Duration {
	return time.Duration(n/s.rate)*time.Second + time.Duration(n%s.rate)*time.Second/time.Duration(s.rate)
}

func (s *Session) samplesOf(d time.Duration) int64 {
	return int64(d/time.Second)*s.rate + int64(d%time.Second)*s.rate/int64(time.Second)
}

// Paused reports whether audio is held back by a server or a client pause.
func (s *Session) Paused() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.serverPaused || s.clientPaused
}

// ContinuedSession describes this session for the continuedSessions of a reconnecting session's open.
func (s *Session) ContinuedSession() audiohook.ContinuedSession {
	s.mu.Lock()
	defer s.mu.Unlock()
	return audiohook.ContinuedSession{ID: s.id, ServerSeq: s.serverSeq, ClientSeq: s.seq}
}

// SendAudio hands one frame of the negotiated format to the session, as the client's media source does:
// it is sent unless the session is paused, and the position advances either way (stream time goes on
// during a pause; resumed reports it as discarded). The frame must hold whole samples for every channel.
func (s *Session) SendAudio(frame []byte) error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	s.mu.Lock()
	if s.state != stateOpen {
		s.mu.Unlock()
		return ErrNotOpen
	}
	if s.media == nil {
		s.mu.Unlock()
		return ErrNoMedia
	}
	size := s.media.SampleSize()
	paused := s.serverPaused || s.clientPaused
	s.mu.Unlock()
	if size == 0 || len(frame)%size != 0 {
		return fmt.Errorf("hooktest: frame of %d bytes is not whole %d-byte samples", len(frame), size)
	}
	if !paused {
		s.conn.SetWriteDeadline(time.Now().Add(writeTimeout))
		if err := s.conn.WriteMessage(websocket.BinaryMessage, frame); err != nil {
			return fmt.Errorf("hooktest: send audio: %w", err)
		}
	}
	s.mu.Lock()
	s.samples += int64(len(frame) / size)
	s.mu.Unlock()
	return nil
}

// SendTones sends d of audio with freqs[i] on channel i of the negotiated media (PCMU or L16), in frames
// of frame (0 → 200 ms, the reference client's), paced in real time or as fast as the connection takes
// them. Frames produced while paused are not sent (SendAudio). The tone's phase follows the position, so
// consecutive calls continue one tone.
func (s *Session) SendTones(ctx context.Context, freqs []float64, d, frame time.Duration, realtime bool) error {
	s.mu.Lock()
	media := s.media
	s.mu.Unlock()
	if media == nil {
		return ErrNoMedia
	}
	if len(freqs) < len(media.Channels) {
		return fmt.Errorf("hooktest: %d tones for %d channels", len(freqs), len(media.Channels))
	}
	if frame <= 0 {
		frame = DefaultFrame
	}
	total, per := s.samplesOf(d), max(s.samplesOf(frame), 1)

	var timer *time.Timer
	next := time.Now()
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for sent := int64(0); sent < total; {
		n := min(per, total-sent)
		s.mu.Lock()
		start := s.samples
		s.mu.Unlock()
		if err := s.SendAudio(toneFrame(media, freqs, int(start), int(n))); err != nil {
			return err
		}
		sent += n
		if err := ctx.Err(); err != nil {
			return err
		}
		if !realtime {
			continue
		}
		next = next.Add(time.Duration(n) * time.Second / time.Duration(media.Rate))
		if timer == nil {
			timer = time.NewTimer(time.Until(next))
		} else {
			timer.Reset(time.Until(next))
		}
		select {
		case <-timer.C:
		case <-ctx.Done():
			return ctx.Err()
		case <-s.done:
			return ErrNotOpen
		}
	}
	return nil
}

// toneFrame encodes n samples from sample offset start, channels interleaved.
func toneFrame(media *audiohook.MediaParameter, freqs []float64, start, n int) []byte {
	chans := len(media.Channels)
	out := make([]byte, 0, n*media.SampleSize())
	tones := make([][]int16, chans)
	for c := range tones {
		tones[c] = audiotest.Sine(freqs[c], toneAmplitude, media.Rate, start, n)
	}
	for i := range n {
		for c := range chans {
			if media.Format == audiohook.FormatL16 {
				out = binary.LittleEndian.AppendUint16(out, uint16(tones[c][i]))
			} else {
				out = append(out, g711.EncodeULaw(tones[c][i]))
			}
		}
	}
	return out
}

// Pause starts a client-initiated (secure) pause: an unsolicited paused, and no audio until Resume.
func (s *Session) Pause(ctx context.Context) error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	s.mu.Lock()
	if s.state != stateOpen {
		s.mu.Unlock()
		return ErrNotOpen
	}
	if !s.serverPaused && !s.clientPaused {
		s.pauseStart = s.samples
	}
	s.clientPaused = true
	s.mu.Unlock()
	return s.sendLocked(audiohook.TypePaused, nil, deadline(ctx))
}

// Resume ends a client pause. elapsed is stream time that passed during the pause beyond the frames
// SendAudio/SendTones already dropped (a caller that sent nothing while paused passes the pause's length).
// It sends resumed{start, discarded} unless a server pause still holds the audio; without a pause it sends
// resumed{position, PT0S}, as the reference client does.
func (s *Session) Resume(ctx context.Context, elapsed time.Duration) error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	s.mu.Lock()
	if s.state != stateOpen {
		s.mu.Unlock()
		return ErrNotOpen
	}
	wasPaused := s.serverPaused || s.clientPaused
	if wasPaused && elapsed > 0 {
		s.samples += s.samplesOf(elapsed)
	}
	s.clientPaused = false
	if s.serverPaused {
		s.mu.Unlock()
		return nil
	}
	p := s.resumedLocked(wasPaused)
	s.mu.Unlock()
	return s.sendLocked(audiohook.TypeResumed, p, deadline(ctx))
}

func (s *Session) resumedLocked(wasPaused bool) audiohook.DiscardedParameters {
	if !wasPaused {
		return audiohook.DiscardedParameters{Start: audiohook.Duration(s.positionLocked())}
	}
	return audiohook.DiscardedParameters{
		Start:     audiohook.Duration(s.durationOf(s.pauseStart)),
		Discarded: audiohook.Duration(s.durationOf(s.samples - s.pauseStart)),
	}
}

// Discarded reports that the audio from start for discarded was lost (throttling, a late connect) and
// moves the position to the end of it if that is ahead.
func (s *Session) Discarded(start, discarded time.Duration) error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	s.mu.Lock()
	if s.state != stateOpen {
		s.mu.Unlock()
		return ErrNotOpen
	}
	s.samples = max(s.samples, s.samplesOf(start+discarded))
	s.mu.Unlock()
	p := audiohook.DiscardedParameters{Start: audiohook.Duration(start), Discarded: audiohook.Duration(discarded)}
	return s.sendLocked(audiohook.TypeDiscarded, p, time.Time{})
}

// Update sends update{language}.
func (s *Session) Update(language string) error {
	return s.SendMessage(audiohook.TypeUpdate, audiohook.UpdateParameters{Language: language})
}

// SendMessage sends a message of any type with the next seq, for what the session does not model itself
// (error, dtmf, unknown types in fault tests). Use the dedicated methods for close, paused and resumed.
func (s *Session) SendMessage(typ string, params any) error {
	s.mu.Lock()
	st := s.state
	s.mu.Unlock()
	if st != stateOpen {
		return ErrNotOpen
	}
	return s.send(typ, params, time.Time{})
}

// WriteText writes a text message exactly as given, bypassing the protocol (fault injection). The session's
// seq does not move.
func (s *Session) WriteText(b []byte) error { return s.writeRaw(websocket.TextMessage, b) }

// WriteBinary writes a binary message exactly as given: no pause check, no position (fault injection).
func (s *Session) WriteBinary(b []byte) error { return s.writeRaw(websocket.BinaryMessage, b) }

func (s *Session) writeRaw(typ int, b []byte) error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	s.conn.SetWriteDeadline(time.Now().Add(writeTimeout))
	return s.conn.WriteMessage(typ, b)
}

// Close runs the close transaction: close{reason}, wait for closed (CloseTimeout, or ctx), then close the
// WebSocket. It returns nil when the session ended with a completed close transaction, also when that
// happened earlier (a server disconnect); otherwise how it ended. No goroutine of the session is left.
func (s *Session) Close(ctx context.Context, reason string) error {
	s.initiateClose(reason)
	return s.wait(ctx)
}

// wait waits for the end of the session (ctx cancelled: drops the connection) and returns how it ended.
func (s *Session) wait(ctx context.Context) error {
	select {
	case <-s.done:
	case <-ctx.Done():
		s.Abort()
		return ctx.Err()
	}
	s.wg.Wait()
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.endErr
}

// Abort drops the connection without a close transaction, as a network failure would, and waits for the
// session's goroutines to end.
func (s *Session) Abort() {
	s.mu.Lock()
	if s.state != stateEnded {
		s.aborted = true
	}
	s.mu.Unlock()
	s.conn.Close()
	<-s.done
	s.wg.Wait()
}

func deadline(ctx context.Context) time.Time {
	d := time.Now().Add(writeTimeout)
	if cd, ok := ctx.Deadline(); ok && cd.Before(d) {
		return cd
	}
	return d
}

// send sends one text message with the next seq.
func (s *Session) send(typ string, params any, dl time.Time) error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	return s.sendLocked(typ, params, dl)
}

// sendLocked is send with wmu held. A zero dl means the default write timeout.
func (s *Session) sendLocked(typ string, params any, dl time.Time) error {
	m, err := audiohook.NewMessage(typ, s.id, 0, params)
	if err != nil {
		return err
	}
	s.mu.Lock()
	if s.state >= stateClosed {
		s.mu.Unlock()
		return ErrNotOpen // nothing may follow closed
	}
	s.seq++
	m.Seq = s.seq
	serverSeq, pos := s.serverSeq, audiohook.Duration(s.positionLocked())
	m.ServerSeq, m.Position = &serverSeq, &pos
	s.mu.Unlock()
	b, err := json.Marshal(m)
	if err != nil {
		return err
	}
	if dl.IsZero() {
		dl = time.Now().Add(writeTimeout)
	}
	s.conn.SetWriteDeadline(dl)
	if err := s.conn.WriteMessage(websocket.TextMessage, b); err != nil {
		return fmt.Errorf("hooktest: send %s: %w", typ, err)
	}
	return nil
}

// initiateClose sends close{reason} unless a close transaction is already under way or over. The reader
// waits for closed until CloseTimeout through its read deadline, so no timer goroutine is needed.
func (s *Session) initiateClose(reason string) {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	s.mu.Lock()
	if s.state != stateOpening && s.state != stateOpen {
		s.mu.Unlock()
		return
	}
	s.state = stateClosing
	s.mu.Unlock()
	s.conn.SetReadDeadline(time.Now().Add(s.closeTimeout))
	if err := s.sendLocked(audiohook.TypeClose, audiohook.CloseParameters{Reason: reason}, time.Time{}); err != nil {
		s.conn.Close() // the reader ends on the read error
	}
}

// violate records err as the server's first violation.
func (s *Session) violate(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.violateLocked(err)
}

func (s *Session) violateLocked(err error) {
	if s.err == nil {
		s.err = fmt.Errorf("hooktest: server violated the protocol: %w", err)
	}
}

// fatal is the reference client's signalFatalError: record, send error{code, message}, close with
// reason "error".
func (s *Session) fatal(code int, message string, cause error) {
	s.violate(cause)
	s.mu.Lock()
	st := s.state
	s.mu.Unlock()
	if st >= stateClosed {
		return
	}
	_ = s.send(audiohook.TypeError, audiohook.ErrorParameters{Code: code, Message: message}, time.Time{})
	s.initiateClose(audiohook.CloseError)
}

func (s *Session) readLoop() {
	defer s.wg.Done()
	defer s.finish()
	for {
		typ, b, err := s.conn.ReadMessage()
		if err != nil {
			s.readEnded(err)
			return
		}
		s.handle(typ, b)
	}
}

// readEnded decides how the session ended from the state it was in when the connection went.
func (s *Session) readEnded(err error) {
	s.mu.Lock()
	var ne interface{ Timeout() bool }
	closeTimeout := false
	switch {
	case s.aborted:
		s.endErr = ErrAborted
	case s.state == stateClosed: // closed received: however the WebSocket then ends is fine
		s.endErr = nil
	case s.state == stateClosing && errors.As(err, &ne) && ne.Timeout():
		s.violateLocked(ErrCloseTimeout)
		s.endErr, closeTimeout = ErrCloseTimeout, true
	case errors.Is(err, websocket.ErrReadLimit):
		s.violateLocked(fmt.Errorf("message larger than %d bytes", audiohook.MaxMessageSize))
		s.endErr = ErrConnectionLost
	default:
		s.violateLocked(fmt.Errorf("connection closed without a close transaction: %w", err))
		s.endErr = ErrConnectionLost
	}
	s.mu.Unlock()
	if closeTimeout { // the reference client tells the server before it drops the connection
		_ = s.send(audiohook.TypeError, audiohook.ErrorParameters{Code: 408, Message: "Close transaction timeout"}, time.Now().Add(time.Second))
	}
}

// finish ends the session: the ping loop stops, the connection closes, the channels close.
func (s *Session) finish() {
	s.mu.Lock()
	s.state = stateEnded
	s.mu.Unlock()
	close(s.stop)
	s.conn.Close()
	close(s.msgs)
	close(s.done)
}

// handle checks one server message and acts on it as the reference client does.
func (s *Session) handle(typ int, b []byte) {
	if typ != websocket.TextMessage {
		s.fatal(415, "Unexpected binary message", errors.New("binary message from the server"))
		return
	}
	m, err := audiohook.DecodeServerMessage(b)
	if err != nil {
		s.fatal(400, "Message not an AudioHook server message", err)
		return
	}
	s.mu.Lock()
	st := s.state
	if st == stateClosed {
		s.violateLocked(fmt.Errorf("%s after closed", m.Type))
		s.mu.Unlock()
		return
	}
	if m.Seq != s.serverSeq+1 {
		err := fmt.Errorf("%s has seq %d, expected %d", m.Type, m.Seq, s.serverSeq+1)
		s.mu.Unlock()
		s.fatal(500, "Internal client error", err) // the reference client throws, then reports 500
		return
	}
	s.serverSeq = m.Seq
	switch cs := *m.ClientSeq; {
	case cs > s.seq:
		s.violateLocked(fmt.Errorf("%s has clientseq %d but the client sent only %d", m.Type, cs, s.seq))
	case cs < s.echoed:
		s.violateLocked(fmt.Errorf("%s has clientseq %d after %d", m.Type, cs, s.echoed))
	default:
		s.echoed = cs
	}
	if m.ID != s.id {
		s.violateLocked(fmt.Errorf("%s has id %s, not the session's", m.Type, m.ID))
	}
	s.mu.Unlock()

	select {
	case s.msgs <- m:
	default: // nobody reads: drop rather than stall the protocol
	}

	switch m.Type {
	case audiohook.TypeOpened:
		s.onOpened(m, st)
	case audiohook.TypePong:
		s.onPong(m)
	case audiohook.TypePause:
		s.onPause(st)
	case audiohook.TypeResume:
		s.onResume(st)
	case audiohook.TypeClosed:
		s.onClosed(st)
	case audiohook.TypeDisconnect:
		s.onDisconnect(m, st)
	}
	// event, updated, reconnect: delivered on Messages only (reconnect is experimental and off by default).
}

func (s *Session) unexpected(m string, st state) {
	s.fatal(409, fmt.Sprintf("Unexpected '%s' message", m), fmt.Errorf("unexpected %s in state %d", m, st))
}

func (s *Session) onOpened(m *audiohook.Message, st state) {
	if st != stateOpening {
		s.unexpected(m.Type, st)
		return
	}
	var p audiohook.OpenedParameters
	if err := m.Params(&p); err != nil { // validated already; kept for safety
		s.fatal(400, "Message not an AudioHook server message", err)
		return
	}
	if len(p.Media) > 1 {
		s.fatal(400, "More than one media selected", errors.New("opened selects more than one media"))
		return
	}
	var media *audiohook.MediaParameter
	if len(p.Media) == 1 {
		if !slices.ContainsFunc(s.offer, p.Media[0].Equal) {
			s.fatal(400, "Selected media not one of the offered", errors.New("opened selects media that was not offered"))
			return
		}
		media = &p.Media[0]
	}

	s.wmu.Lock()
	s.mu.Lock()
	if s.state != stateOpening { // the open timed out meanwhile
		s.mu.Unlock()
		s.wmu.Unlock()
		return
	}
	s.state, s.opened, s.media = stateOpen, p, media
	if media != nil {
		s.rate = int64(media.Rate)
	}
	// As the reference media source: discard first, then start paused.
	var discarded *audiohook.DiscardedParameters
	if p.DiscardTo != nil {
		if to := s.samplesOf(time.Duration(*p.DiscardTo)); to > s.samples {
			discarded = &audiohook.DiscardedParameters{
				Start:     audiohook.Duration(s.positionLocked()),
				Discarded: audiohook.Duration(s.durationOf(to - s.samples)),
			}
			s.samples = to
		}
	}
	if p.StartPaused {
		s.serverPaused, s.pauseStart = true, s.samples
	}
	s.mu.Unlock()
	if discarded != nil {
		_ = s.sendLocked(audiohook.TypeDiscarded, discarded, time.Time{})
	}
	if p.StartPaused {
		_ = s.sendLocked(audiohook.TypePaused, nil, time.Time{})
	}
	s.wmu.Unlock()

	close(s.openedCh)
	if s.pingInterval > 0 {
		s.wg.Add(1) // safe: the reader itself holds the group open
		go s.pingLoop()
	}
}

func (s *Session) onPong(m *audiohook.Message) {
	s.mu.Lock()
	var again bool
	switch {
	case s.pendingPing == 0:
		s.violateLocked(errors.New("pong without an outstanding ping"))
		s.mu.Unlock()
		_ = s.send(audiohook.TypeError, audiohook.ErrorParameters{Code: 409, Message: "Unexpected 'pong' (no outstanding 'ping')"}, time.Time{})
		return
	case *m.ClientSeq != s.pendingPing:
		s.violateLocked(fmt.Errorf("pong has clientseq %d, the ping had seq %d", *m.ClientSeq, s.pendingPing))
		s.mu.Unlock()
		_ = s.send(audiohook.TypeError, audiohook.ErrorParameters{Code: 400, Message: `The "clientseq" of the 'pong' message must match "seq" of the 'ping' message.`}, time.Time{})
		return
	default:
		s.rtt = time.Since(s.pingSent)
		s.pongs++
		s.pendingPing = 0
		again, s.initialPing = s.initialPing && s.state == stateOpen, false
	}
	s.mu.Unlock()
	if again { // the reference client pings again at once, so that the server learns an RTT early
		s.ping(false)
	}
}

func (s *Session) onPause(st state) {
	switch st {
	case stateOpen:
	case stateClosing:
		return // the reference client ignores it
	default:
		s.unexpected(audiohook.TypePause, st)
		return
	}
	s.wmu.Lock()
	defer s.wmu.Unlock()
	s.mu.Lock()
	if !s.serverPaused && !s.clientPaused {
		s.pauseStart = s.samples
	}
	s.serverPaused = true
	s.mu.Unlock()
	_ = s.sendLocked(audiohook.TypePaused, nil, time.Time{}) // also when already paused: pause interrogates
}

func (s *Session) onResume(st state) {
	switch st {
	case stateOpen:
	case stateClosing:
		return
	default:
		s.unexpected(audiohook.TypeResume, st)
		return
	}
	s.wmu.Lock()
	defer s.wmu.Unlock()
	s.mu.Lock()
	wasPaused := s.serverPaused || s.clientPaused
	s.serverPaused = false
	if s.clientPaused { // a secure pause still holds the audio: say so
		s.mu.Unlock()
		_ = s.sendLocked(audiohook.TypePaused, nil, time.Time{})
		return
	}
	p := s.resumedLocked(wasPaused)
	s.mu.Unlock()
	_ = s.sendLocked(audiohook.TypeResumed, p, time.Time{})
}

func (s *Session) onClosed(st state) {
	if st != stateClosing {
		s.unexpected(audiohook.TypeClosed, st)
		return
	}
	s.mu.Lock()
	s.state = stateClosed
	s.mu.Unlock()
	// The client closes the WebSocket (the reference: an empty close frame, code 1005) and waits briefly
	// for the server's close frame; the reader then ends.
	s.conn.WriteControl(websocket.CloseMessage, nil, time.Now().Add(closeLinger))
	s.conn.SetReadDeadline(time.Now().Add(closeLinger))
}

func (s *Session) onDisconnect(m *audiohook.Message, st state) {
	if st != stateOpening && st != stateOpen {
		return // disconnect is always acceptable; while closing it changes nothing
	}
	var p audiohook.DisconnectParameters
	_ = m.Params(&p)
	s.mu.Lock()
	if s.disconnect == nil {
		s.disconnect = &p
		s.discCh <- p // buffered for exactly this one
	}
	s.mu.Unlock()
	s.initiateClose(audiohook.CloseDisconnect)
}

func (s *Session) pingLoop() {
	defer s.wg.Done()
	t := time.NewTimer(min(InitialPingDelay, s.pingInterval))
	defer t.Stop()
	for first := true; ; first = false {
		select {
		case <-s.stop:
			return
		case <-t.C:
		}
		s.ping(first)
		t.Reset(s.pingInterval)
	}
}

// ping sends a ping unless one is still unanswered, which the reference client treats as fatal (408).
// Pings are only sent while open, never during the open or close transaction.
func (s *Session) ping(initial bool) {
	s.wmu.Lock()
	s.mu.Lock()
	if s.state != stateOpen {
		s.mu.Unlock()
		s.wmu.Unlock()
		return
	}
	if s.pendingPing != 0 {
		seq := s.pendingPing
		s.mu.Unlock()
		s.wmu.Unlock()
		s.fatal(408, "Timeout waiting for pong", fmt.Errorf("no pong for ping %d before the next ping", seq))
		return
	}
	var p audiohook.PingParameters
	if s.pongs > 0 {
		rtt := audiohook.Duration(s.rtt)
		p.RTT = &rtt
	}
	// Mark the ping pending before it is written: its pong can arrive before WriteMessage returns.
	s.pendingPing, s.pingSent, s.initialPing = s.seq+1, time.Now(), initial
	s.mu.Unlock()
	_ = s.sendLocked(audiohook.TypePing, p, time.Time{})
	s.wmu.Unlock()
}
