package audiohook

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"

	"github.com/siphook/siphook/internal/callinfo"
	"github.com/siphook/siphook/internal/g711"
	"github.com/siphook/siphook/matcher"
	"github.com/siphook/siphook/recorder"
)

type state int

const (
	stateOpening       state = iota // upgraded, waiting for `open`
	stateActive                     // `opened` sent: audio and control messages flow
	stateDisconnecting              // we sent `disconnect`: waiting for the client's `close`
	stateClosed                     // `closed` sent: the client closes the WebSocket
)

// ErrSessionEnded is returned by Activate and Pause on a session that has ended.
var ErrSessionEnded = errors.New("audiohook: session has ended")

// Session is one AudioHook WebSocket connection. The read loop (run) owns the protocol state; Activate and
// Pause may be called from any goroutine (the matcher) and only send `resume`/`pause`.
type Session struct {
	srv       *Server
	conn      *websocket.Conn
	log       *slog.Logger
	tenant    tenant
	id        string // Audiohook-Session-Id: the id of every message
	orgHeader string

	state atomic.Int32 // a state; written by the read loop, and by disconnect from any goroutine

	// Owned by the read loop.
	probe       bool
	open        OpenParameters
	media       MediaParameter
	toWAV       []int // negotiated channel i → WAV channel
	pos         int64 // stream position in samples: audio received plus time discarded or paused
	closeReason string
	endOutcome  string
	pcm         [][]int16 // decode scratch, one per channel
	readBuf     []byte    // the last message read; reused

	clientSeq atomic.Int64 // last client seq received (echoed as clientseq)

	writeMu   sync.Mutex
	serverSeq int64 // last seq we sent; under writeMu

	opened chan struct{} // closed once `opened` is sent
	done   chan struct{} // closed when the connection has ended

	mu           sync.Mutex
	rec          *recording
	recBase      int64 // WAV position = stream position - recBase
	recFresh     bool  // the recording has no audio yet: the next resume moves recBase to where audio starts
	serverPaused bool  // we asked for a pause (or opened with startPaused)
}

func newSession(srv *Server, conn *websocket.Conn, tn tenant, id, orgHeader string, log *slog.Logger) *Session {
	return &Session{
		srv: srv, conn: conn, tenant: tn, id: id, orgHeader: orgHeader, log: log,
		opened: make(chan struct{}), done: make(chan struct{}),
	}
}

// ID is the AudioHook session id (matcher.MediaSession).
func (s *Session) ID() string { return s.id }

// Keys are the conversation id (matcher.MediaSession).
func (s *Session) Keys() []matcher.Key {
	select {
	case <-s.opened:
		return []matcher.Key{{Kind: matcher.KeyConversationID, Value: s.open.ConversationID}}
	default:
		return nil
	}
}

var _ matcher.MediaSession = (*Session)(nil)

// Source names the kind of media session, for the live view (matcher.Reporter).
func (s *Session) Source() string { return "audiohook" }

// MediaState is the session's media state in the live view's terms (matcher.Reporter).
func (s *Session) MediaState() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.rec == nil || s.rec.wav.Load() == nil:
		return matcher.SessionWaiting
	case s.serverPaused:
		return matcher.SessionPaused
	}
	return matcher.SessionActive
}

// Annotate keeps the matcher's findings in the recording's document (matcher.MediaSession).
func (s *Session) Annotate(a matcher.Annotation) {
	s.mu.Lock()
	rec := s.rec
	s.mu.Unlock()
	if rec != nil {
		rec.mu.Lock()
		rec.annotation = &a
		rec.mu.Unlock()
	}
}

// Activate records the session: the recording is opened on first use and a server pause is lifted with
// `resume`.
func (s *Session) Activate(ctx context.Context) error {
	if err := s.waitOpened(ctx); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.probe || s.rec == nil {
		return nil
	}
	if s.rec.wav.Load() == nil {
		if err := s.rec.startWAV(s.srv.now()); err != nil {
			return err
		}
		s.recFresh = true
		s.recBase = s.posSnapshot()
	}
	if !s.serverPaused {
		return nil
	}
	s.serverPaused = false
	s.rec.event(s.srv.now(), "resume_requested", "")
	return s.send("resume", struct{}{})
}

// Pause asks the client to pause (`pause`); the client answers `paused` and later reports how long it was
// paused, which the recording keeps as silence.
func (s *Session) Pause(ctx context.Context) error {
	if err := s.waitOpened(ctx); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.serverPaused || s.probe {
		return nil
	}
	s.serverPaused = true
	s.rec.event(s.srv.now(), "pause_requested", "")
	return s.send("pause", struct{}{})
}

func (s *Session) waitOpened(ctx context.Context) error {
	select {
	case <-s.opened:
	case <-s.done:
		return ErrSessionEnded
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case <-s.done:
		return ErrSessionEnded
	default:
		return nil
	}
}

// posSnapshot is the stream position as of the last message handled; the read loop publishes it.
func (s *Session) posSnapshot() int64 { return atomic.LoadInt64(&s.pos) }

// send writes one server message with the next seq. Safe from any goroutine.
func (s *Session) send(typ string, params any) error {
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	msg, err := NewMessage(typ, s.id, s.serverSeq+1, params)
	if err != nil {
		return err
	}
	cs := s.clientSeq.Load()
	msg.ClientSeq = &cs
	b, err := msg.MarshalJSON()
	if err != nil {
		return err
	}
	s.conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
	if err := s.conn.WriteMessage(websocket.TextMessage, b); err != nil {
		return err
	}
	s.serverSeq++
	return nil
}

// run is the read loop. It returns when the connection ends; everything is finalised on the way out.
func (s *Session) run() {
	defer s.finish()
	s.conn.SetReadDeadline(time.Now().Add(s.srv.cfg.OpenTimeout))
	for {
		typ, data, err := s.readMessage()
		if err != nil {
			s.readFailed(err)
			return
		}
		switch s.getState() {
		case stateActive:
			s.conn.SetReadDeadline(time.Now().Add(s.srv.cfg.IdleTimeout))
		case stateDisconnecting, stateClosed:
			s.conn.SetReadDeadline(time.Now().Add(s.srv.cfg.CloseTimeout))
		}
		if typ == websocket.BinaryMessage {
			err = s.onAudio(data)
		} else {
			err = s.onText(data)
		}
		if pe, ok := errors.AsType[*ProtocolError](err); ok {
			s.log.Warn("audiohook protocol violation", "error", pe.Reason)
			s.endOutcome = "protocol_error"
			s.disconnect("error", pe.Reason)
		} else if err != nil {
			s.log.Info("audiohook session write failed", "error", err)
			return
		}
	}
}

// readMessage reads the next message into a buffer reused for the whole session: an audio frame arrives
// every 20 ms or so for the length of a call, and must not cost an allocation.
func (s *Session) readMessage() (int, []byte, error) {
	typ, r, err := s.conn.NextReader()
	if err != nil {
		return 0, nil, err
	}
	buf := s.readBuf[:0]
	for {
		if len(buf) == cap(buf) {
			buf = slices.Grow(buf, max(4096, cap(buf)))
		}
		n, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			s.readBuf = buf
			return typ, buf, nil
		}
		if err != nil {
			return 0, nil, err // including the read limit
		}
	}
}

// readFailed classifies why the connection ended.
func (s *Session) readFailed(err error) {
	var ne net.Error
	timeout := errors.As(err, &ne) && ne.Timeout()
	switch {
	case s.getState() == stateOpening && timeout:
		s.endOutcome = "no_open"
		s.log.Warn("audiohook: no open message in time", "timeout", s.srv.cfg.OpenTimeout)
		s.disconnect("error", "open message not received in time")
	case s.getState() == stateClosed || websocket.IsCloseError(err, websocket.CloseNormalClosure, websocket.CloseNoStatusReceived) && s.closeReason != "":
		// The client closed after `closed`, as it should.
	case timeout:
		s.log.Warn("audiohook connection idle; treating it as dropped", "state", s.getState())
	default:
		s.log.Info("audiohook connection ended", "state", s.getState(), "error", err)
	}
}

// disconnect sends `disconnect` and waits for the client's `close` (the read loop handles it). After a read
// error the loop has ended; the message is then a courtesy.
func (s *Session) disconnect(reason, info string) {
	for {
		st := s.getState()
		if st == stateDisconnecting || st == stateClosed {
			return
		}
		if s.state.CompareAndSwap(int32(st), int32(stateDisconnecting)) {
			break
		}
	}
	if err := s.send("disconnect", DisconnectParameters{Reason: reason, Info: info}); err != nil {
		s.log.Debug("disconnect not sent", "error", err)
	}
	s.conn.SetReadDeadline(time.Now().Add(s.srv.cfg.CloseTimeout))
}

func (s *Session) getState() state   { return state(s.state.Load()) }
func (s *Session) setState(st state) { s.state.Store(int32(st)) }

func (s *Session) onText(b []byte) error {
	if len(b) > MaxMessageSize {
		return &ProtocolError{Reason: "message larger than " + strconv.Itoa(MaxMessageSize) + " bytes"}
	}
	msg, err := DecodeClientMessage(b)
	if err != nil {
		return err
	}
	if msg.ID != s.id {
		return &ProtocolError{Reason: "message id does not match Audiohook-Session-Id"}
	}
	if want := s.clientSeq.Load() + 1; msg.Seq != want {
		return &ProtocolError{Reason: fmt.Sprintf("invalid seq %d, expected %d", msg.Seq, want)}
	}
	s.clientSeq.Store(msg.Seq)
	s.writeMu.Lock()
	ours := s.serverSeq
	s.writeMu.Unlock()
	if msg.ServerSeq != nil && *msg.ServerSeq > ours {
		return &ProtocolError{Reason: fmt.Sprintf("serverseq %d is beyond the last server seq %d", *msg.ServerSeq, ours)}
	}
	if s.getState() == stateDisconnecting || s.getState() == stateClosed {
		if msg.Type == "close" {
			return s.onClose(msg)
		}
		return nil // the client may still be finishing what it was sending
	}
	if s.getState() == stateOpening && msg.Type != "open" {
		return &ProtocolError{Reason: msg.Type + " before open"}
	}
	switch msg.Type {
	case "open":
		if s.getState() != stateOpening {
			return &ProtocolError{Reason: "second open"}
		}
		return s.onOpen(msg)
	case "ping":
		return s.send("pong", struct{}{})
	case "close":
		return s.onClose(msg)
	case "paused":
		s.rec.event(s.srv.now(), "paused", "position="+durationOf(s.pos))
	case "resumed", "discarded":
		var p DiscardedParameters
		if err := msg.Params(&p); err != nil {
			return err
		}
		s.skip(p)
		s.rec.event(s.srv.now(), msg.Type, fmt.Sprintf("start=%s discarded=%s", p.Start, p.Discarded))
	case "update":
		var p UpdateParameters
		if err := msg.Params(&p); err != nil {
			return err
		}
		s.rec.setLanguage(p.Language)
		s.rec.event(s.srv.now(), "language", p.Language)
		return s.send("updated", struct{}{})
	case "error":
		var p ErrorParameters
		if err := msg.Params(&p); err != nil {
			return err
		}
		s.srv.m.errors.WithLabelValues(strconv.Itoa(p.Code)).Inc()
		s.log.Warn("audiohook client error", "code", p.Code, "message", p.Message)
		s.rec.event(s.srv.now(), "client_error", fmt.Sprintf("%d %s", p.Code, p.Message))
	default:
		// dtmf, playback_started, playback_completed: Audio Connector messages a Monitor server ignores.
	}
	return nil
}

// skip moves the stream position past audio the client did not send (paused or discarded). Audio not yet
// recorded moves the recording's origin instead: a recording starts where its audio starts.
func (s *Session) skip(p DiscardedParameters) {
	to := samplesOf(time.Duration(p.Start)+time.Duration(p.Discarded), s.media.Rate)
	if to <= s.pos {
		return
	}
	atomic.StoreInt64(&s.pos, to)
	s.mu.Lock()
	if s.recFresh {
		s.recBase = to
	}
	s.mu.Unlock()
}

// onOpen answers `open` with `opened`: media chosen, probe recognised, a continued recording found.
func (s *Session) onOpen(msg *Message) error {
	var p OpenParameters
	if err := msg.Params(&p); err != nil {
		return err
	}
	p.OrganizationID = strings.ToLower(p.OrganizationID)
	p.ConversationID = strings.ToLower(p.ConversationID)
	if p.OrganizationID != s.orgHeader {
		s.endOutcome = "unauthorized"
		s.log.Warn("audiohook: open.organizationId differs from Audiohook-Organization-Id")
		s.disconnect("unauthorized", "organizationId does not match Audiohook-Organization-Id")
		return nil
	}
	s.open = p
	s.probe = p.ConversationID == NullUUID
	s.log = s.log.With("conversation_id", p.ConversationID)
	media, toWAV, ok := chooseMedia(p.Media)
	if !ok {
		return &ProtocolError{Reason: "no supported media offered (want PCMU or L16 audio)"}
	}
	s.media, s.toWAV = media, toWAV
	s.pcm = make([][]int16, len(media.Channels))
	if msg.Position != nil {
		s.pos = samplesOf(time.Duration(*msg.Position), media.Rate)
	}

	opened := OpenedParameters{Media: []MediaParameter{media}}
	if !s.probe {
		s.attachRecording(&opened)
	}
	if err := s.send("opened", opened); err != nil {
		return err
	}
	s.state.CompareAndSwap(int32(stateOpening), int32(stateActive)) // a concurrent disconnect (shutdown) wins
	s.conn.SetReadDeadline(time.Now().Add(s.srv.cfg.IdleTimeout))
	close(s.opened)
	if s.probe {
		s.log.Info("audiohook connection probe answered")
		return nil
	}
	s.log.Info("audiohook session opened", "media", media.Format, "channels", media.Channels,
		"start_paused", opened.StartPaused, "continued", len(p.ContinuedSessions) > 0)
	if s.srv.onSession != nil {
		go s.srv.onSession(s)
	}
	if s.srv.binder != nil {
		s.srv.binder.AddSession(s, s.tenant.name)
	}
	return nil
}

// attachRecording continues the recording of a session this one continues, or starts a new one, and decides
// whether the session opens paused.
func (s *Session) attachRecording(opened *OpenedParameters) {
	now := s.srv.now()
	for _, c := range s.open.ContinuedSessions {
		rec := s.srv.takeDropped(strings.ToLower(c.ID))
		if rec == nil {
			continue
		}
		if rec.conversationID != s.open.ConversationID || rec.channels() != len(s.media.Channels) {
			rec.finalise()
			continue
		}
		s.rec = rec
		// Stream positions go on across the reconnect; audio we already have is skipped with discardTo.
		s.recBase = rec.base
		if rec.streamEnd > s.pos {
			d := Duration(durationFromSamples(rec.streamEnd, s.media.Rate))
			opened.DiscardTo = &d
		}
		s.serverPaused = rec.wav.Load() == nil && s.srv.cfg.Activation == ActivateOnMatch
		opened.StartPaused = s.serverPaused
		rec.addSession(s.id, now)
		s.log.Info("audiohook session continues a recording", "previous", c.ID, "recording", rec.id())
		return
	}
	s.rec = newRecording(s.srv, s.open, s.media, s.id, now)
	s.recBase = s.pos
	if s.srv.cfg.Activation == ActivateImmediately {
		if err := s.rec.startWAV(now); err != nil {
			s.log.Error("cannot start recording", "error", err)
		}
		s.recFresh = true
		return
	}
	s.serverPaused = true
	opened.StartPaused = true
}

func (s *Session) onClose(msg *Message) error {
	var p CloseParameters
	if err := msg.Params(&p); err != nil {
		return err
	}
	s.closeReason = p.Reason
	if err := s.send("closed", struct{}{}); err != nil {
		return err
	}
	s.setState(stateClosed)
	s.conn.SetReadDeadline(time.Now().Add(s.srv.cfg.CloseTimeout))
	return nil
}

// onAudio places one binary frame: samples interleaved per negotiated channel, counted on the stream timeline.
func (s *Session) onAudio(b []byte) error {
	switch s.getState() {
	case stateOpening:
		return &ProtocolError{Reason: "audio before opened"}
	case stateClosed:
		return nil // nothing may follow close
	}
	// Active, or disconnecting: audio the client sent before it read our disconnect is still the call's.
	if len(b) > MaxMessageSize {
		return &ProtocolError{Reason: "audio frame larger than " + strconv.Itoa(MaxMessageSize) + " bytes"}
	}
	s.srv.m.audio.Add(float64(len(b)))
	bps := 1
	if s.media.Format == "L16" {
		bps = 2
	}
	nch := len(s.media.Channels)
	if len(b)%(bps*nch) != 0 {
		return &ProtocolError{Reason: "audio frame is not whole samples for every channel"}
	}
	n := len(b) / (bps * nch)
	s.mu.Lock()
	rec, base := s.rec, s.recBase
	var wav *recorder.Recording
	if rec != nil {
		wav = rec.wav.Load()
	}
	if wav != nil {
		s.recFresh = false
	}
	s.mu.Unlock()
	if wav != nil {
		for c := range nch {
			s.pcm[c] = slices.Grow(s.pcm[c][:0], n)[:n]
			for i := range n {
				off := (i*nch + c) * bps
				if bps == 1 {
					s.pcm[c][i] = g711.ULaw(b[off])
				} else {
					s.pcm[c][i] = int16(binary.LittleEndian.Uint16(b[off:])) // L16 is little-endian on AudioHook
				}
			}
			wav.Channel(s.toWAV[c]).WriteSamples(s.pos-base, s.pcm[c])
		}
	}
	atomic.StoreInt64(&s.pos, s.pos+int64(n))
	rec.advance(s.pos, base)
	return nil
}

// finish closes the connection and hands the recording on: finalised after a proper close, parked for a
// continuing session after a drop or a reconnect close.
func (s *Session) finish() {
	s.conn.Close()
	close(s.done)
	outcome := s.endOutcome
	switch {
	case s.probe:
		outcome = "probe"
	case outcome == "" && s.getState() == stateClosed:
		outcome = "closed"
	case outcome == "":
		outcome = "dropped"
	}
	s.srv.m.sessions.WithLabelValues(outcome).Inc()
	if s.probe || s.rec == nil {
		return
	}
	s.mu.Lock()
	rec := s.rec
	s.mu.Unlock()
	if s.srv.binder != nil {
		s.srv.binder.RemoveSession(s) // may annotate why it was never matched, before the document is written
	}
	rec.sessionEnded(s.closeReason, outcome)
	if s.closeReason == "" || s.closeReason == "reconnect" {
		if outcome == "dropped" || s.closeReason == "reconnect" {
			s.srv.keepForReconnect(s.id, rec)
			return
		}
	}
	rec.finalise()
}

// chooseMedia picks one offered media entry, unmodified: PCMU before L16, stereo before mono, 8 kHz before
// other rates, offer order otherwise. The WAV always puts external (customer) first, internal (agent) second.
func chooseMedia(offer []MediaParameter) (MediaParameter, []int, bool) {
	best, bestScore := -1, -1
	for i, m := range offer {
		if m.Type != "audio" || (m.Format != "PCMU" && m.Format != "L16") || m.Rate <= 0 || len(m.Channels) == 0 {
			continue
		}
		score := len(m.Channels) * 4
		if m.Format == "PCMU" {
			score += 2
		}
		if m.Rate == 8000 {
			score++
		}
		if score > bestScore {
			best, bestScore = i, score
		}
	}
	if best < 0 {
		return MediaParameter{}, nil, false
	}
	m := offer[best]
	toWAV := make([]int, len(m.Channels))
	if len(m.Channels) == 2 && m.Channels[0] == "internal" {
		toWAV[0], toWAV[1] = 1, 0
	} else {
		for i := range toWAV {
			toWAV[i] = i
		}
	}
	return m, toWAV, true
}

func samplesOf(d time.Duration, rate int) int64 {
	return int64(d) * int64(rate) / int64(time.Second)
}

func durationFromSamples(n int64, rate int) time.Duration {
	return time.Duration(n * int64(time.Second) / int64(rate))
}

func durationOf(samples int64) string { return Duration(durationFromSamples(samples, 8000)).String() }

// recording is the audio and document of one monitored participant's stream. Sessions that continue a
// dropped session share it.
type recording struct {
	srv            *Server
	mu             sync.Mutex
	doc            recorder.Document
	wav            atomic.Pointer[recorder.Recording] // nil until activated; written by Activate, read by the read loop
	media          MediaParameter
	base           int64 // recBase of the last session that wrote
	streamEnd      int64 // stream position reached
	once           sync.Once
	conversationID string
	annotation     *matcher.Annotation // the matcher's view of the call, for the document
}

func newRecording(srv *Server, open OpenParameters, media MediaParameter, sessionID string, now time.Time) *recording {
	r := &recording{srv: srv, media: media, conversationID: open.ConversationID}
	r.doc = recorder.Document{
		Source: "audiohook",
		Start:  now.UTC(),
		Session: map[string]string{
			"organization_id":       open.OrganizationID,
			"conversation_id":       open.ConversationID,
			"audiohook_session_ids": sessionID,
			"participant_id":        open.Participant.ID,
			"ani":                   open.Participant.ANI,
			"ani_name":              open.Participant.ANIName,
			"dnis":                  open.Participant.DNIS,
			"language":              open.Language,
			"media":                 media.Format + "/" + strconv.Itoa(media.Rate) + "/" + strings.Join(media.Channels, "+"),
		},
		Identifiers:  []recorder.Identifier{{Kind: string(matcher.KeyConversationID), Value: open.ConversationID, Origin: "audiohook open"}},
		Participants: []recorder.Participant{{ID: open.Participant.ID, Name: open.Participant.ANIName, AOR: open.Participant.ANI, Role: "customer"}},
	}
	names := wavChannelNames(media)
	for i, name := range names {
		ch := recorder.ChannelInfo{Index: i, Label: name, Codec: media.Format}
		if name == "external" {
			ch.ParticipantID = open.Participant.ID
		}
		r.doc.Channels = append(r.doc.Channels, ch)
	}
	return r
}

// wavChannelNames are the WAV channels in order: external first.
func wavChannelNames(m MediaParameter) []string {
	if len(m.Channels) == 2 {
		return []string{"external", "internal"}
	}
	return slices.Clone(m.Channels)
}

func (r *recording) channels() int { return len(r.doc.Channels) }

func (r *recording) id() string {
	if wav := r.wav.Load(); wav != nil {
		return wav.ID()
	}
	return ""
}

// startWAV opens the WAV on first activation.
func (r *recording) startWAV(now time.Time) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.wav.Load() != nil {
		return nil
	}
	doc := r.doc
	doc.State = recorder.StateRecording
	wav, err := r.srv.rec.Start(recorder.Spec{Channels: r.channels(), SampleRate: r.media.Rate, Start: now, Document: &doc})
	if err != nil {
		return fmt.Errorf("start recording: %w", err)
	}
	r.wav.Store(wav)
	r.doc.RecordingID = wav.ID()
	r.doc.Events = append(r.doc.Events, recorder.Event{At: now.UTC(), Type: "activated"})
	return nil
}

func (r *recording) event(at time.Time, typ, detail string) {
	if r == nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.doc.Events = append(r.doc.Events, recorder.Event{At: at.UTC(), Type: typ, Detail: detail})
}

func (r *recording) setLanguage(lang string) {
	if r == nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.doc.Session["language"] = lang
}

// advance notes how far the stream has got, for a continuing session's discardTo.
func (r *recording) advance(pos, base int64) {
	if r == nil {
		return
	}
	r.mu.Lock()
	r.streamEnd, r.base = pos, base
	r.mu.Unlock()
}

func (r *recording) addSession(id string, at time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.doc.Session["audiohook_session_ids"] += "," + id
	r.doc.Events = append(r.doc.Events, recorder.Event{At: at.UTC(), Type: "reconnected", Detail: id})
}

func (r *recording) sessionEnded(closeReason, outcome string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.doc.Session["close_reason"] = closeReason
	r.doc.Session["end"] = outcome
}

// finalise writes the WAV and document, or a document only when the session never recorded. Once.
func (r *recording) finalise() {
	r.once.Do(func() {
		r.mu.Lock()
		doc := r.doc
		doc.Session = maps.Clone(r.doc.Session)
		callinfo.Apply(&doc, r.annotation)
		wav := r.wav.Load()
		r.mu.Unlock()
		end := r.srv.now()
		doc.End = &end
		doc.DurationSec = end.Sub(doc.Start).Seconds()
		var err error
		if wav != nil {
			for i := range doc.Channels {
				doc.Channels[i].Stats.LateSamples = uint64(wav.Channel(i).Late())
			}
			doc.State = recorder.StateCompleted
			doc.NotRecorded = "" // recorded all the same (immediate activation)
			err = wav.Close(&doc)
		} else {
			doc.State = recorder.StateNeverActivated
			err = r.srv.rec.WriteDocument(&doc)
		}
		if err != nil {
			r.srv.log.Error("audiohook recording not finalised", "conversation_id", r.conversationID, "error", err)
		}
	})
}
