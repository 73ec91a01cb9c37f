package sip

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
	"github.com/google/uuid"

	"github.com/siphook/siphook/internal/callinfo"
	"github.com/siphook/siphook/internal/emodel"
	"github.com/siphook/siphook/matcher"
	"github.com/siphook/siphook/recorder"
	"github.com/siphook/siphook/rtp"
	"github.com/siphook/siphook/sip/sdes"
)

// State is where a recording session is in its life.
type State int32

const (
	StateOffered   State = iota // INVITE received, 2xx not yet ACKed
	StateWaiting                // answered inactive, waiting to be activated
	StateRecording              // streams recvonly, audio written
	StatePaused                 // re-INVITEd back to inactive
	StateEnded                  // BYE, CANCEL, no ACK, failure or shutdown; recording finalised
)

func (s State) String() string {
	return [...]string{"offered", "waiting", "recording", "paused", "ended"}[s]
}

// ErrSessionEnded is returned by Activate and Pause on a session that has ended.
var ErrSessionEnded = errors.New("sip: recording session has ended")

// Session is one recording session (RS): the SRC's dialog, its media streams and, once activated, its
// recording. Activate and Pause are safe to call from any goroutine.
type Session struct {
	srv       *Server
	dlg       *sipgo.DialogServerSession
	id        string // recording id (UUIDv7): names the files and ties logs to them
	callID    string
	log       *slog.Logger
	created   time.Time
	transport string
	source    string
	contact   sip.ContactHeader
	mediaIP   netip.Addr
	sdpID     uint64
	invite    *sip.Request

	// Streams, once opened, live as long as the session and keep their port and WAV channel; m-lines are
	// bound to them by bindLines.
	streams    []*rtp.Stream
	ports      []int          // stream index → our RTP port
	media      []*rtp.Media   // the streams' sockets, one per Open
	streamLine []mediaLine    // stream index → the m-line it carries (or last carried): label, codec
	ourKeys    []*sdes.Crypto // stream index → our a=crypto for it (SRTP lines)

	ctx       context.Context // cancelled when the session ends
	cancel    context.CancelFunc
	acked     chan struct{} // closed by the ACK of our 2xx to the INVITE
	ackOnce   sync.Once
	confirmed chan struct{} // closed when the session is established (after acked)
	done      chan struct{} // closed when the session has ended and its files are written
	endOnce   sync.Once
	opMu      sync.Mutex // one SRS-initiated re-INVITE at a time

	mu          sync.Mutex
	state       State
	lines       []mediaLine // the SRC's latest offer
	lineStream  []int       // m-line index of the latest offer → stream index, or -1
	sdpVersion  uint64
	localInvite bool // our re-INVITE is in flight: an SRC re-INVITE meanwhile gets 491 (RFC 3261 §14.2)
	// remoteAck is closed by the ACK of our 2xx to an SRC re-INVITE: until then that INVITE transaction is in
	// progress and ours must wait (RFC 3261 §14.1). nil: none pending.
	remoteAck    chan struct{}
	meta         *Metadata
	ids          []recorder.Identifier
	rec          *recorder.Recording
	channelOf    []int // stream index → WAV channel
	events       []recorder.Event
	endReason    string
	annotation   *matcher.Annotation // the matcher's view of the call, for the document
	bound        bool                // handed to the binder
	timer        *sessionTimer       // RFC 4028 session timer; nil: none
	timerFire    *time.Timer         // the next refresh (we refresh) or expiry (the SRC refreshes)
	departed     []Participant       // participants earlier snapshots had and the latest has not
	wantSnapshot bool                // partial metadata came with no complete view to merge into
	held         bool                // the SRC holds every stream (call on hold)
	pauses       []recorder.Pause    // silent stretches of the recording: hold or our pause
	recStart     time.Time           // sample 0 of the recording
}

// ID is the recording id.
func (s *Session) ID() string { return s.id }

// CallID is the SIP Call-ID of the recording dialog.
func (s *Session) CallID() string { return s.callID }

// Done is closed once the session has ended and its recording (or metadata record) is written.
func (s *Session) Done() <-chan struct{} { return s.done }

// State is the session's current state.
func (s *Session) State() State {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.state
}

// Source names the kind of media session, for the live view (matcher.Reporter).
func (s *Session) Source() string { return "siprec" }

// MediaState is the session's media state in the live view's terms (matcher.Reporter).
func (s *Session) MediaState() string {
	switch s.State() {
	case StateRecording:
		return matcher.SessionActive
	case StatePaused:
		return matcher.SessionPaused
	}
	return matcher.SessionWaiting
}

// Identifiers are the matching keys seen so far: UCIDs (20-digit form), conversation ids, raw UUI.
func (s *Session) Identifiers() []recorder.Identifier {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.ids)
}

// Annotate keeps the matcher's findings for the metadata document (matcher.MediaSession).
func (s *Session) Annotate(a matcher.Annotation) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.annotation = &a
}

// Keys are the matching keys seen so far: UCIDs and conversation ids (matcher.MediaSession).
func (s *Session) Keys() []matcher.Key {
	s.mu.Lock()
	defer s.mu.Unlock()
	var keys []matcher.Key
	for _, id := range s.ids {
		kind := matcher.KeyKind(id.Kind)
		if kind != matcher.KeyUCID && kind != matcher.KeyConversationID {
			continue
		}
		if k := (matcher.Key{Kind: kind, Value: id.Value}); !slices.Contains(keys, k) {
			keys = append(keys, k)
		}
	}
	return keys
}

var _ matcher.MediaSession = (*Session)(nil)

// RecordingPath is the WAV being written, or "" before the first activation.
func (s *Session) RecordingPath() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.rec == nil {
		return ""
	}
	return s.rec.WAVPath()
}

// admit checks and parses a new INVITE and reserves what the session needs. Anything refused comes back as
// an error that classifies itself; nothing is held when it does.
func (srv *Server) admit(req *sip.Request, tx sip.ServerTransaction) (*Session, error) {
	body, err := ParseSIPRECBody(headerValue(req, "Content-Type"), req.Body())
	if err != nil {
		return nil, err
	}
	if !isSIPREC(req, body) {
		return nil, sipError(403, "Forbidden", "not a SIPREC recording session (RFC 7866): siphook only records SIPREC", errNotSIPREC)
	}
	if tags := unsupportedTags(req); len(tags) > 0 {
		e := sipError(420, "Bad Extension", "unsupported option tags", fmt.Errorf("require: %v", tags))
		e.Headers = map[string]string{"Unsupported": strings.Join(tags, ", ")}
		return nil, e
	}
	if body.SDP == nil {
		return nil, sipError(488, "Not Acceptable Here", "SIPREC INVITE without an SDP offer is not supported", nil)
	}
	timer, err := srv.cfg.negotiateTimer(req, nil)
	if err != nil {
		return nil, err
	}
	sd, err := ParseSDP(body.SDP)
	if err != nil {
		if errors.Is(err, ErrSDPTooLarge) {
			return nil, err
		}
		return nil, sipError(400, "Bad Request", "malformed SDP", err)
	}
	lines := analyseOffer(sd)
	var recordable int
	var refusals []string
	for _, ml := range lines {
		if ml.recorded {
			recordable++
		} else if ml.refusal != "" {
			refusals = append(refusals, ml.refusal)
		}
	}
	if recordable == 0 {
		return nil, sipError(488, "Not Acceptable Here", "no audio m-line we can record (PCMU, PCMA or G722 over RTP/AVP, or RTP/SAVP with SDES)",
			fmt.Errorf("%s", strings.Join(refusals, "; ")))
	}
	if max := srv.cfg.Admission.MaxStreams; recordable > max {
		return nil, sipError(488, "Not Acceptable Here", "too many audio streams", fmt.Errorf("%d recordable m-lines, max_streams %d", recordable, max))
	}
	if err := srv.rec.Accepting(); err != nil {
		// Below the free-space floor: the SBC's recording group tries another server; calls in progress
		// keep the space the floor leaves them.
		e := sipError(503, "Service Unavailable", "recordings disk below its free-space floor", err)
		e.Headers = map[string]string{"Retry-After": "60"}
		return nil, e
	}
	dlg, err := srv.dialog.ReadInvite(req, tx)
	if err != nil {
		return nil, sipError(400, "Bad Request", "cannot create dialog", err)
	}
	id, _ := uuid.NewV7()
	sess := &Session{
		srv: srv, dlg: dlg, id: id.String(), callID: callID(req), created: time.Now(),
		transport: req.Transport(), source: req.Source(), invite: req,
		mediaIP: srv.mediaAddr(), sdpID: uint64(time.Now().Unix()),
		timer: timer, held: allHeld(lines),
		acked: make(chan struct{}), confirmed: make(chan struct{}), done: make(chan struct{}),
	}
	sess.log = srv.log.With("call_id", sess.callID, "session", sess.id)
	if err := sess.bindLines(lines); err != nil {
		srv.m.portsFailed.Inc()
		e := sipError(503, "Service Unavailable", "no RTP ports free", err)
		e.Headers = map[string]string{"Retry-After": "5"}
		return nil, e
	}
	transport := sip.NetworkToLower(req.Transport())
	host, port := srv.contactHostPort(transport)
	sess.contact = srv.contact(host, port, transport)
	sess.ctx, sess.cancel = context.WithCancel(context.Background())
	sess.noteHeaders(req)
	if body.Metadata != nil {
		sess.noteMetadata(body.Metadata)
	}
	if err := srv.add(sess); err != nil {
		sess.closeMedia()
		sess.cancel()
		return nil, err
	}
	return sess, nil
}

// bindLines gives each recorded m-line of an offer a stream: the stream that m-line had, else a stream no
// line uses any more (an SBC replacing a stream keeps its WAV channel), else a new one. A new stream becomes a
// channel of its own if the recording has not started; once a WAV exists its channel count is fixed, and the
// line is answered with port 0. Lines keep their streams across offers, so a new port, codec, key or SSRC
// goes on in the same channel. It fails only when the first offer gets no ports at all.
func (s *Session) bindLines(lines []mediaLine) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	lineStream := make([]int, len(lines))
	inUse := make([]bool, len(s.streams))
	var unbound []int
	for i := range lines {
		lineStream[i] = -1
		switch {
		case !lines[i].recorded:
			if lines[i].refusal != "" {
				s.log.Info("m-line not recorded", "index", i, "label", lines[i].label, "reason", lines[i].refusal)
			}
		case i < len(s.lineStream) && s.lineStream[i] >= 0 && !inUse[s.lineStream[i]]:
			lineStream[i] = s.lineStream[i]
			inUse[lineStream[i]] = true
		default:
			unbound = append(unbound, i)
		}
	}
	var fresh []int
	for _, i := range unbound {
		switch idle := slices.Index(inUse, false); {
		case idle >= 0:
			lineStream[i], inUse[idle] = idle, true
		case s.rec != nil:
			s.log.Warn("m-line added mid-call is not recorded: the recording's channels are fixed and none is free", "index", i, "label", lines[i].label)
		case len(s.streams)+len(fresh) >= s.srv.cfg.Admission.MaxStreams:
			s.log.Warn("m-line added mid-call is not recorded: max_streams reached", "index", i, "label", lines[i].label)
		default:
			fresh = append(fresh, i)
		}
	}
	if len(fresh) > 0 {
		streams := make([]*rtp.Stream, len(fresh))
		for k := range streams {
			streams[k] = rtp.NewStream(nil)
		}
		m, err := s.srv.media.Open(streams)
		if err != nil && len(s.streams) == 0 {
			return err
		}
		if err != nil {
			s.log.Warn("m-line added mid-call is not recorded: no RTP ports free", "error", err)
		} else {
			s.media = append(s.media, m)
			s.ports = append(s.ports, m.Ports()...)
			for k, i := range fresh {
				lineStream[i] = len(s.streams)
				s.streams = append(s.streams, streams[k])
				s.streamLine = append(s.streamLine, mediaLine{})
				s.ourKeys = append(s.ourKeys, nil)
			}
		}
	}
	for i := range lines {
		if n := lineStream[i]; n < 0 || !s.bindLineLocked(&lines[i], n) {
			lineStream[i] = -1
			lines[i].recorded, lines[i].port, lines[i].answerKey = false, 0, nil
		}
	}
	s.lines, s.lineStream = lines, lineStream
	return nil
}

// bindLineLocked points stream n at m-line ml: its payload types, its SRTP key, our port and key in the
// answer. s.mu must be held.
func (s *Session) bindLineLocked(ml *mediaLine, n int) bool {
	st := s.streams[n]
	st.SetPayloads(ml.payloads)
	var key *rtp.SRTPKey
	if ml.crypto != nil {
		k := ml.crypto.SRTPKey()
		key = &k
	}
	if err := st.SetSRTP(key); err != nil {
		s.log.Warn("m-line not recorded: SRTP key refused", "label", ml.label, "error", err)
		return false
	}
	if ml.crypto == nil {
		s.ourKeys[n] = nil
	} else if ours := s.ourKeys[n]; ours == nil || ours.Suite.Name != ml.crypto.Suite.Name || ours.Tag != ml.crypto.Tag {
		c, err := sdes.NewCrypto(*ml.crypto)
		if err != nil {
			s.log.Warn("m-line not recorded: no key of ours", "label", ml.label, "error", err)
			return false
		}
		s.ourKeys[n] = &c
	}
	ml.answerKey, ml.port = s.ourKeys[n], s.ports[n]
	line := *ml
	if line.label == "" {
		line.label = s.streamLine[n].label // a re-offer without labels keeps the channel's participant
	}
	s.streamLine[n] = line
	return true
}

func (s *Session) closeMedia() {
	for _, m := range s.media {
		m.Close()
	}
}

// answer sends the 2xx (inactive, or recvonly when activation is immediate) and waits for its ACK.
func (s *Session) answer() {
	srv := s.srv
	if srv.beforeAnswer != nil {
		if err := srv.beforeAnswer(s.dlg.Context(), s); err != nil {
			s.end(context.Background(), "cancelled", false)
			srv.m.sessions.WithLabelValues("cancelled").Inc()
			return
		}
	}
	direction := "inactive"
	if srv.cfg.Activation == ActivateImmediately {
		if _, err := s.startRecording(); err != nil {
			s.log.Error("cannot start recording", "error", err)
			_ = s.dlg.Respond(500, "Server Internal Error", nil)
			s.end(context.Background(), "recorder_failed", false)
			return
		}
		direction = "recvonly"
	}
	body, err := s.sdp(direction)
	if err == nil {
		err = s.dlg.WriteResponse(s.response200(body))
	}
	// Only our own ACK flag says whether the session was established: sipgo's WriteResponse returns nil when
	// its 64*T1 guard fires, and an error when a BYE right after the ACK ends the dialog before it wakes up.
	if s.isAcked() {
		err = nil
	} else if err == nil {
		err = errors.New("no ACK for 2xx")
	}
	if err != nil {
		reason := "no_ack"
		if errors.Is(err, sip.ErrTransactionCanceled) || errors.Is(context.Cause(s.dlg.Context()), sip.ErrTransactionCanceled) {
			reason = "cancelled"
		}
		s.log.Info("recording session not established", "reason", reason, "error", err)
		srv.m.sessions.WithLabelValues(reason).Inc()
		s.end(context.Background(), reason, reason == "no_ack")
		return
	}
	srv.m.sessions.WithLabelValues("answered").Inc()
	s.mu.Lock()
	ended := s.state == StateEnded // the SRC hung up right after its ACK
	if s.state == StateOffered {
		s.state = StateWaiting
		if direction == "recvonly" {
			s.state = StateRecording
		}
	}
	s.mu.Unlock()
	close(s.confirmed)
	if ended {
		return
	}
	s.armTimer()
	s.requestSnapshotIfNeeded()
	s.log.Info("recording session established", "source", s.source, "transport", s.transport,
		"streams", len(s.streams), "ports", s.ports, "direction", direction, "identifiers", s.Identifiers())

	switch srv.cfg.Activation {
	case ActivateDelayed:
		srv.wg.Go(func() {
			select {
			case <-time.After(srv.cfg.ActivationDelay):
				_ = s.Activate(s.ctx) // logged and counted inside
			case <-s.ctx.Done():
			}
		})
	case ActivateOnMatch:
		if srv.onWaiting != nil {
			go srv.onWaiting(s)
		}
	}
	if srv.binder != nil {
		s.mu.Lock()
		s.bound = true
		s.mu.Unlock()
		srv.binder.AddSession(s, srv.cfg.tenantOf(s.source))
	}
}

// keysMayHaveChanged tells the matcher after an in-dialog request carried metadata.
func (s *Session) keysMayHaveChanged(before []matcher.Key) {
	s.mu.Lock()
	bound := s.bound
	s.mu.Unlock()
	if bound && !slices.Equal(before, s.Keys()) {
		s.srv.binder.UpdateSession(s)
	}
}

func (s *Session) response200(body []byte) *sip.Response {
	return s.answerResponse(s.dlg.InviteRequest, body)
}

// answerResponse is our 2xx to an SRC request: the SDP answer if any, our capabilities and the session timer.
func (s *Session) answerResponse(req *sip.Request, body []byte) *sip.Response {
	var res *sip.Response
	if body != nil {
		res = sip.NewSDPResponseFromRequest(req, body)
	} else {
		res = sip.NewResponseFromRequest(req, 200, "OK", nil)
	}
	s.addCapabilities(res)
	s.mu.Lock()
	timer := s.timer
	s.mu.Unlock()
	if timer != nil {
		res.AppendHeader(sip.NewHeader("Session-Expires", timer.header(false)))
		if supportsTimer(req) {
			res.AppendHeader(sip.NewHeader("Require", "timer"))
		}
	}
	return res
}

type headerAppender interface{ AppendHeader(sip.Header) }

func (s *Session) addCapabilities(m headerAppender) {
	contact := s.contact
	m.AppendHeader(&contact)
	m.AppendHeader(sip.NewHeader("Supported", supportedHeader))
	m.AppendHeader(sip.NewHeader("Allow", allowHeader))
	m.AppendHeader(sip.NewHeader("Accept", acceptHeader))
}

// sdp is our SDP for the SRC's latest offer with the given direction on the recorded lines.
func (s *Session) sdp(direction string) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sdpVersion++
	return answerSDP(s.lines, s.mediaIP, s.sdpID, s.sdpVersion, direction)
}

// currentSDP answers an SRC offer with the direction we want now: recvonly while recording, else inactive.
func (s *Session) currentSDP() ([]byte, error) {
	direction := "inactive"
	if s.State() == StateRecording {
		direction = "recvonly"
	}
	return s.sdp(direction)
}

// Activate makes the streams recvonly with an in-dialog re-INVITE and records them. It waits for the
// initial ACK if need be; it is a no-op on a recording session.
func (s *Session) Activate(ctx context.Context) error { return s.setRecording(ctx, true) }

// Pause makes the streams inactive with a re-INVITE; the recording goes on with silence until Activate.
func (s *Session) Pause(ctx context.Context) error { return s.setRecording(ctx, false) }

func (s *Session) setRecording(ctx context.Context, on bool) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer context.AfterFunc(s.ctx, cancel)()
	select {
	case <-s.confirmed:
	case <-ctx.Done():
		if s.ctx.Err() != nil {
			return ErrSessionEnded
		}
		return ctx.Err()
	}
	s.opMu.Lock()
	defer s.opMu.Unlock()
	switch state := s.State(); {
	case state == StateEnded:
		return ErrSessionEnded
	case on == (state == StateRecording):
		return nil
	}
	direction := "inactive"
	opened := false
	if on {
		// Streams accept audio before the re-INVITE leaves: the SRC may start sending before its 200 reaches us.
		var err error
		if opened, err = s.startRecording(); err != nil {
			return err
		}
		direction = "recvonly"
	} else {
		// A pause takes effect now: what the SRC sends while the re-INVITE is in flight (a customer on hold,
		// card details in a secure pause) is not recorded.
		s.setSinks(false)
	}
	err := s.reinvite(ctx, direction)
	if err != nil {
		s.setSinks(false)
	}
	if err != nil && opened {
		s.discardRecording() // the first activation failed: no empty WAV, the session never recorded
	}
	if err != nil {
		s.srv.m.reinvites.WithLabelValues(direction, "failed").Inc()
		s.log.Warn("re-INVITE failed", "direction", direction, "error", err)
		return err
	}
	s.srv.m.reinvites.WithLabelValues(direction, "ok").Inc()
	s.mu.Lock()
	event := "paused"
	if on {
		event = "resumed"
		if !slices.ContainsFunc(s.events, func(e recorder.Event) bool { return e.Type == "activated" }) {
			event = "activated"
		}
		s.state = StateRecording
	} else if s.state != StateEnded {
		s.state = StatePaused
	}
	now := time.Now()
	s.events = append(s.events, recorder.Event{At: now.UTC(), Type: event})
	s.updatePauseLocked(now)
	s.mu.Unlock()
	s.log.Info("recording "+event, "direction", direction)
	return nil
}

// startRecording points every stream at its channel, opening the recording on first use (opened).
func (s *Session) startRecording() (opened bool, err error) {
	s.mu.Lock()
	if s.state == StateEnded {
		s.mu.Unlock()
		return false, ErrSessionEnded
	}
	if s.rec == nil {
		opened = true
		s.channelOf = channelOrder(s.streamLine, s.meta)
		now := time.Now()
		doc := s.documentLocked(now)
		doc.State = "recording"
		rate := 0 // the widest codec's: narrowband streams are upsampled, nothing is lost
		for _, ml := range s.streamLine {
			rate = max(rate, ml.codec.SampleRate())
		}
		rec, err := s.srv.rec.Start(recorder.Spec{ID: s.id, Channels: len(s.streams), SampleRate: rate, Start: now, Document: doc})
		if err != nil {
			s.mu.Unlock()
			return false, fmt.Errorf("start recording: %w", err)
		}
		s.rec, s.recStart = rec, now
		if s.srv.cfg.Activation == ActivateImmediately {
			s.events = append(s.events, recorder.Event{At: now.UTC(), Type: "activated"})
		}
	}
	s.mu.Unlock()
	s.setSinks(true)
	return opened, nil
}

// discardRecording drops a recording that never got audio by agreement with the SRC.
func (s *Session) discardRecording() {
	s.mu.Lock()
	rec := s.rec
	s.rec, s.channelOf = nil, nil
	s.mu.Unlock()
	if rec != nil {
		if err := rec.Discard(); err != nil {
			s.log.Warn("discarding unused recording", "error", err)
		}
	}
}

func (s *Session) setSinks(on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, st := range s.streams {
		if on && s.rec != nil {
			st.SetSink(s.rec.Channel(s.channelOf[i]))
		} else {
			st.SetSink(nil)
		}
	}
}

// reinvite sends one SRS-initiated re-INVITE with the given direction, retrying after 491 (glare) at a random
// 0–2 s as the UA that did not create the Call-ID (RFC 3261 §14.1).
func (s *Session) reinvite(ctx context.Context, direction string) error {
	// An SRC re-INVITE we answered is in progress until its ACK (RFC 3261 §14.1): wait for it, a little,
	// else the SRC may apply our offer before its own answer, or refuse it with 491.
	s.mu.Lock()
	pending := s.remoteAck
	s.mu.Unlock()
	if pending != nil {
		select {
		case <-pending:
		case <-time.After(2 * time.Second): // a lost ACK: go on; a 491 is retried below
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	for attempt := 1; ; attempt++ {
		res, err := s.sendReinvite(ctx, direction)
		switch {
		case err != nil && ctx.Err() == nil:
			// No final response within the timeout: the SRC is gone (as for 408).
			s.end(context.Background(), "reinvite_timeout", true)
			return fmt.Errorf("re-INVITE: %w", err)
		case err != nil:
			return err
		case res.IsSuccess():
			ack := sip.NewRequest(sip.ACK, s.remoteTarget())
			if err := s.dlg.WriteRequest(ack); err != nil {
				return err
			}
			s.armTimer() // any successful re-INVITE refreshes the session (RFC 4028 §10)
			return nil
		case res.StatusCode == 491 && attempt < s.srv.cfg.ReinviteAttempts:
			s.srv.m.reinvites.WithLabelValues(direction, "glare").Inc()
			select {
			case <-time.After(s.srv.jitter()):
			case <-ctx.Done():
				return ctx.Err()
			}
		case res.StatusCode == 408 || res.StatusCode == 481:
			// RFC 3261 §12.2.1.2: the dialog is dead.
			s.end(context.Background(), "reinvite_"+strconv.Itoa(res.StatusCode), res.StatusCode == 408)
			return fmt.Errorf("re-INVITE answered %d %s", res.StatusCode, res.Reason)
		default:
			return fmt.Errorf("re-INVITE answered %d %s", res.StatusCode, res.Reason)
		}
	}
}

func (s *Session) sendReinvite(ctx context.Context, direction string) (*sip.Response, error) {
	body, err := s.sdp(direction)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	s.localInvite = true
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.localInvite = false
		s.mu.Unlock()
	}()
	req := sip.NewRequest(sip.INVITE, s.remoteTarget())
	req.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
	s.addCapabilities(req)
	s.mu.Lock()
	if s.timer != nil {
		req.AppendHeader(sip.NewHeader("Session-Expires", s.timer.header(true)))
	}
	s.mu.Unlock()
	req.SetBody(body)
	tctx, cancel := context.WithTimeout(ctx, s.srv.cfg.ReinviteTimeout)
	defer cancel()
	return s.dlg.Do(tctx, req)
}

// remoteTarget is the SRC's Contact URI, refreshed by its re-INVITEs.
func (s *Session) remoteTarget() sip.Uri {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.invite.Contact().Address
}

// isAcked reports whether the ACK of our 2xx to the INVITE has come: the session is established.
func (s *Session) isAcked() bool {
	select {
	case <-s.acked:
		return true
	default:
		return false
	}
}

func (s *Session) onAck(req *sip.Request, tx sip.ServerTransaction) {
	if s.State() != StateOffered {
		// ACK to our answer of an SRC re-INVITE: a re-INVITE of ours may go now.
		s.mu.Lock()
		if s.remoteAck != nil {
			close(s.remoteAck)
			s.remoteAck = nil
		}
		s.mu.Unlock()
		return
	}
	if cseq := req.CSeq(); cseq == nil || cseq.SeqNo != s.dlg.InviteRequest.CSeq().SeqNo {
		s.log.Debug("ack ignored: not for our 2xx to the INVITE")
		return
	}
	// Recorded before sipgo learns of it: ReadAck wakes the 2xx sender, which then checks acked.
	s.ackOnce.Do(func() { close(s.acked) })
	if err := s.dlg.ReadAck(req, tx); err != nil {
		s.log.Debug("ack not taken by the dialog", "error", err)
	}
}

// onReinvite answers an SRC re-INVITE: new metadata is taken in, the offer re-read, and the answer carries the
// direction we want now (recvonly while recording, inactive otherwise), never a replay of our last SDP.
func (s *Session) onReinvite(req *sip.Request, tx sip.ServerTransaction) {
	if err := s.dlg.ReadRequest(req, tx); err != nil {
		e := sipError(500, "Server Internal Error", "CSeq out of order", err)
		e.Headers = map[string]string{"Retry-After": "1"}
		s.srv.respondError(req, tx, e)
		return
	}
	s.mu.Lock()
	glare := s.localInvite
	s.mu.Unlock()
	if glare {
		s.srv.respondError(req, tx, sipError(491, "Request Pending", "our re-INVITE is in progress", nil))
		return
	}
	if err := s.renegotiateTimer(req); err != nil {
		s.srv.respondError(req, tx, err)
		return
	}
	keys := s.Keys()
	body, err := s.readInDialogBody(req)
	if err != nil {
		s.srv.respondError(req, tx, err)
		return
	}
	s.noteHeaders(req) // x-inin-cnv may come on a re-INVITE too
	defer s.keysMayHaveChanged(keys)
	if body.SDP != nil {
		if err := s.takeOffer(body.SDP); err != nil {
			s.srv.respondError(req, tx, err)
			return
		}
	}
	if c := req.Contact(); c != nil {
		s.mu.Lock()
		s.invite = req // remote target refresh (RFC 3261 §12.2.2)
		s.mu.Unlock()
	}
	sdpBody, err := s.currentSDP()
	if err != nil {
		s.srv.respondError(req, tx, err)
		return
	}
	s.mu.Lock()
	s.remoteAck = make(chan struct{})
	s.mu.Unlock()
	if err := tx.Respond(s.answerResponse(req, sdpBody)); err != nil {
		s.log.Warn("re-INVITE answer failed", "error", err)
		return
	}
	s.armTimer()
	s.requestSnapshotIfNeeded()
}

// onUpdate takes in metadata (Avaya SBCE, BroadWorks send it by UPDATE) and answers an SDP offer if present.
func (s *Session) onUpdate(req *sip.Request, tx sip.ServerTransaction) {
	if err := s.renegotiateTimer(req); err != nil {
		s.srv.respondError(req, tx, err)
		return
	}
	keys := s.Keys()
	body, err := s.readInDialogBody(req)
	if err != nil {
		s.srv.respondError(req, tx, err)
		return
	}
	defer s.keysMayHaveChanged(keys)
	var sdpBody []byte
	if body.SDP != nil {
		if err := s.takeOffer(body.SDP); err != nil {
			s.srv.respondError(req, tx, err)
			return
		}
		if sdpBody, err = s.currentSDP(); err != nil {
			s.srv.respondError(req, tx, err)
			return
		}
	}
	if err := tx.Respond(s.answerResponse(req, sdpBody)); err != nil {
		s.log.Warn("UPDATE answer failed", "error", err)
		return
	}
	s.armTimer()
	s.requestSnapshotIfNeeded()
}

// onBye ends the session. A body (Ribbon sends partial metadata on BYE) is read for identifiers; a bad body
// never stops the BYE from being answered 200.
func (s *Session) onBye(req *sip.Request, tx sip.ServerTransaction) {
	// A UAC sends BYE only after ACKing our 2xx (RFC 3261 §15): when the two are handled out of order
	// (sipgo gives each request a goroutine), the BYE still tells us the session was established.
	s.ackOnce.Do(func() { close(s.acked) })
	if len(req.Body()) > 0 {
		if _, err := s.readInDialogBody(req); err != nil {
			s.log.Info("BYE body ignored", "error", err)
		}
	}
	if err := s.dlg.ReadBye(req, tx); err != nil {
		s.srv.respondError(req, tx, sipError(400, "Bad Request", "BYE does not fit the dialog", err))
		return
	}
	s.end(context.Background(), "bye", false)
}

// readInDialogBody parses the body of an in-dialog request and takes in any metadata.
func (s *Session) readInDialogBody(req *sip.Request) (SIPRECBody, error) {
	if len(req.Body()) == 0 {
		return SIPRECBody{}, nil
	}
	body, err := ParseSIPRECBody(headerValue(req, "Content-Type"), req.Body())
	if err != nil {
		return body, err
	}
	if body.Metadata != nil {
		s.noteMetadata(body.Metadata)
	}
	return body, nil
}

// takeOffer re-reads the SRC's offer. Recorded lines keep their streams and ports in order; a recorded line
// beyond the streams we bound is answered with port 0 (mid-call stream changes are not handled yet).
func (s *Session) takeOffer(raw []byte) error {
	sd, err := ParseSDP(raw)
	if err != nil {
		if errors.Is(err, ErrSDPTooLarge) {
			return err
		}
		return sipError(400, "Bad Request", "malformed SDP", err)
	}
	lines := analyseOffer(sd)
	if err := s.bindLines(lines); err != nil {
		return err // cannot happen: the session has streams
	}
	held := allHeld(lines)
	now := time.Now()
	s.mu.Lock()
	changed := held != s.held
	s.held = held
	if changed {
		s.events = append(s.events, recorder.Event{At: now.UTC(), Type: map[bool]string{true: "held", false: "unheld"}[held]})
		s.updatePauseLocked(now)
	}
	s.mu.Unlock()
	if changed {
		s.log.Info("recording session hold changed", "held", held)
		if !held {
			for _, st := range s.streams {
				st.Resync()
			}
		}
	}
	return nil
}

// updatePauseLocked opens a pause when the recording goes silent by agreement (hold, or our pause) and closes
// it when audio may flow again. s.mu must be held.
func (s *Session) updatePauseLocked(now time.Time) {
	silent := s.held || s.state == StatePaused
	n := len(s.pauses)
	open := n > 0 && s.pauses[n-1].End == nil
	switch {
	case silent && !open && s.rec != nil:
		by := "srs"
		if s.held {
			by = "src"
		}
		s.pauses = append(s.pauses, recorder.Pause{By: by, Start: now.UTC(), OffsetSec: now.Sub(s.recStart).Seconds()})
	case !silent && open:
		closePause(&s.pauses[n-1], now)
	}
}

func closePause(p *recorder.Pause, now time.Time) {
	end := now.UTC()
	p.End = &end
	p.DurationSec = end.Sub(p.Start).Seconds()
}

// renegotiateTimer takes a refreshing SRC request's session timer headers; 422 when the interval is too small.
func (s *Session) renegotiateTimer(req *sip.Request) error {
	s.mu.Lock()
	previous := s.timer
	s.mu.Unlock()
	t, err := s.srv.cfg.negotiateTimer(req, previous)
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.timer = t
	s.mu.Unlock()
	return nil
}

// armTimer (re)starts the session timer after a successful refresh: a refresh when we are the refresher, the
// end of the session when the SRC is.
func (s *Session) armTimer() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.timer == nil || s.state == StateEnded {
		return
	}
	if s.timerFire != nil {
		s.timerFire.Stop()
	}
	t := s.timer
	s.timerFire = time.AfterFunc(t.wait(), func() {
		if t.weRefresh {
			s.refresh()
			return
		}
		s.log.Warn("session timer expired: the SRC stopped refreshing the recording dialog", "interval", t.interval)
		s.end(context.Background(), "session_expired", true)
	})
}

// refresh is our session refresh as the refresher: a re-INVITE keeping the current direction. A refresh that
// fails ends the session (RFC 4028 §10), except when the session is ending anyway.
func (s *Session) refresh() {
	s.opMu.Lock()
	defer s.opMu.Unlock()
	direction := "inactive"
	switch s.State() {
	case StateEnded:
		return
	case StateRecording:
		direction = "recvonly"
	}
	if err := s.reinvite(s.ctx, direction); err != nil {
		if s.ctx.Err() == nil {
			s.log.Warn("session refresh failed", "error", err)
			s.end(context.Background(), "session_refresh_failed", true)
		}
		return
	}
	s.srv.m.reinvites.WithLabelValues(direction, "refresh").Inc()
}

// terminate ends the session from our side (shutdown): BYE to the SRC, recording finalised.
func (s *Session) terminate(ctx context.Context, reason string) {
	s.end(ctx, reason, s.State() != StateOffered)
}

// end tears the session down once: optional BYE, sockets closed (so nothing more is written), recording or
// metadata record finalised, ports freed, session removed.
func (s *Session) end(ctx context.Context, reason string, bye bool) {
	s.endOnce.Do(func() {
		s.mu.Lock()
		s.state = StateEnded
		s.endReason = reason
		s.mu.Unlock()
		if bye {
			bctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			if err := s.dlg.Bye(bctx); err != nil {
				s.log.Info("BYE to SRC failed", "error", err)
			}
			cancel()
		}
		s.mu.Lock()
		if s.timerFire != nil {
			s.timerFire.Stop()
		}
		s.mu.Unlock()
		s.cancel()
		s.closeMedia()
		s.mu.Lock()
		bound := s.bound
		s.mu.Unlock()
		if bound {
			s.srv.binder.RemoveSession(s) // may annotate why it was never matched, before the document is written
		}
		if reason == "no_ack" || reason == "cancelled" {
			s.discardRecording() // immediate activation opened it, but a session never established records nothing
		}
		s.finalise()
		s.srv.remove(s)
		s.srv.m.ended.WithLabelValues(reason).Inc()
		close(s.done)
	})
}

// finalise writes the WAV and its document, or a metadata-only record when the session never recorded.
func (s *Session) finalise() {
	end := time.Now()
	s.mu.Lock()
	doc := s.documentLocked(end)
	rec := s.rec
	s.mu.Unlock()
	doc.End = &end
	doc.DurationSec = end.Sub(s.created).Seconds()
	if n := len(doc.Pauses); n > 0 && doc.Pauses[n-1].End == nil {
		closePause(&doc.Pauses[n-1], end) // still on hold when the session ended
	}
	var err error
	if rec != nil {
		doc.State = "completed"
		doc.NotRecorded = "" // recorded all the same (immediate activation)
		err = rec.Close(doc)
	} else {
		doc.State = "never_activated"
		err = s.srv.rec.WriteDocument(doc)
	}
	if err != nil {
		s.log.Error("recording not finalised", "error", err)
		return
	}
	s.log.Info("recording session ended", "reason", s.endReason, "state", doc.State, "duration", doc.DurationSec, "channels", doc.Channels)
}

// documentLocked builds the metadata document from what the session knows. s.mu must be held.
func (s *Session) documentLocked(now time.Time) *recorder.Document {
	doc := &recorder.Document{
		RecordingID: s.id,
		Source:      "siprec",
		Session: map[string]string{
			"sip_call_id": s.callID,
			"src_address": s.source,
			"transport":   s.transport,
			"request_uri": s.invite.Recipient.String(),
		},
		Identifiers: slices.Clone(s.ids),
		Events:      slices.Clone(s.events),
		Pauses:      slices.Clone(s.pauses),
		Start:       s.created.UTC(),
		DurationSec: now.Sub(s.created).Seconds(),
	}
	callinfo.Apply(doc, s.annotation)
	if f := s.invite.From(); f != nil {
		doc.Session["from"] = f.Address.String()
	}
	if s.endReason != "" {
		doc.Session["end_reason"] = s.endReason
	}
	if s.meta != nil {
		doc.Session["metadata_dialect"] = s.meta.Dialect
		if len(s.meta.SessionIDs) > 0 {
			doc.Session["metadata_session_id"] = s.meta.SessionIDs[0]
		}
		for i, p := range append(slices.Clone(s.meta.Participants), s.departed...) {
			role := ""
			if p.CallingParty != nil {
				role = map[bool]string{true: "caller", false: "callee"}[*p.CallingParty]
			}
			doc.Participants = append(doc.Participants, recorder.Participant{ID: p.ID, Name: p.Name, AOR: p.AOR, Role: role,
				Left: p.Left || i >= len(s.meta.Participants)})
		}
	}
	var errs []channelErrors
	for i, ml := range s.streamLine {
		ch := recorder.ChannelInfo{Index: i, Label: ml.label, Codec: ml.codec.Name()}
		if s.channelOf != nil {
			ch.Index = s.channelOf[i]
		}
		if s.meta != nil {
			if p := s.meta.SenderOf(ml.label); p != nil {
				ch.ParticipantID = p.ID
			}
		}
		st, q := s.streams[i].Stats(), s.streams[i].Quality()
		ch.Stats = recorder.StreamStats{Received: st.Received, Lost: st.Lost, Reordered: st.Reordered, Duplicates: st.Duplicates, Dropped: st.Dropped,
			Expected: q.Expected, LossBursts: q.LossBursts, JitterMs: math.Round(q.JitterMs*100) / 100}
		if st.Received > 0 {
			codec := ml.codec // what we answered; what the SRC actually sent wins
			if q.Codec != rtp.EncodingUnknown {
				codec = q.Codec
			}
			ch.Stats.MOS = streamMOS(codec, q)
		}
		if s.rec != nil {
			ch.Stats.LateSamples = uint64(s.rec.Channel(ch.Index).Late())
			errs = append(errs, channelErrors{channel: ch.Index, errs: s.streams[i].MediaErrors(), truncated: q.MediaErrors > rtp.MaxMediaErrors})
		}
		doc.Channels = append(doc.Channels, ch)
	}
	slices.SortFunc(doc.Channels, func(a, b recorder.ChannelInfo) int { return a.Index - b.Index })
	if s.rec != nil {
		mediaAnalytics(doc, errs)
	}
	return doc
}

// What the MOS estimate assumes where RTP alone cannot tell.
const (
	// mosNetworkDelay is the one-way network delay from the talker to us. Measuring it takes RTCP round trips
	// (we read no RTCP, and an SRC's reports describe its own legs anyway); 20 ms is a regional path and
	// costs 0.5 R, so it shifts every call alike and hides nothing beyond it.
	mosNetworkDelay = 20 * time.Millisecond
	// mosPacketTime is the packetisation delay: SIPREC SRCs send 20 ms packets.
	mosPacketTime = 20 * time.Millisecond
)

// streamMOS is the E-model MOS of a stream (internal/emodel): its codec, its loss and how bursty it was,
// and a mouth-to-ear delay of the assumed network delay plus a jitter buffer of twice the measured jitter.
// Rounded to 0.01: the model is no finer than that.
func streamMOS(codec rtp.Encoding, q rtp.Quality) float64 {
	loss := q.LossRatio()
	delay := emodel.MouthToEar(mosNetworkDelay, time.Duration(q.JitterMs*float64(time.Millisecond)), mosPacketTime)
	return math.Round(emodel.MOS(codec.Name(), loss, emodel.BurstR(loss, q.LossAfterLoss()), delay)*100) / 100
}

// channelErrors are the media errors of the stream on one WAV channel.
type channelErrors struct {
	channel   int
	errs      []rtp.MediaError
	truncated bool // the stream saw more than it kept
}

// mediaAnalytics fills the document's voice-quality analytics: the lowest MOS of the channels that received
// packets (a call is as good as its worst leg) and every stream's media errors, in time order, at most
// recorder.MaxMediaErrors. It leaves Analytics nil when there is nothing to say, and the voice-activity
// fields to the recorder.
func mediaAnalytics(doc *recorder.Document, chans []channelErrors) {
	mos := 0.0
	for _, ch := range doc.Channels {
		if ch.Stats.MOS > 0 && (mos == 0 || ch.Stats.MOS < mos) {
			mos = ch.Stats.MOS
		}
	}
	var errs []recorder.MediaError
	truncated := false
	for _, ch := range chans {
		for _, e := range ch.errs {
			errs = append(errs, recorder.MediaError{At: e.At.UTC(), Channel: ch.channel, Type: e.Type, Detail: e.Detail})
		}
		truncated = truncated || ch.truncated
	}
	if mos == 0 && len(errs) == 0 {
		return
	}
	slices.SortStableFunc(errs, func(a, b recorder.MediaError) int {
		if c := a.At.Compare(b.At); c != 0 {
			return c
		}
		return a.Channel - b.Channel
	})
	if len(errs) > recorder.MaxMediaErrors {
		errs, truncated = errs[:recorder.MaxMediaErrors], true
	}
	if doc.Analytics == nil {
		doc.Analytics = &recorder.Analytics{}
	}
	doc.Analytics.MOS = mos
	doc.Analytics.MediaErrors = errs
	doc.Analytics.MediaErrorsTruncated = truncated
}

// channelOrder decides which WAV channel each recorded line gets: the lines the caller sends first, then the
// other participants' lines, then lines no participant claims; m-line order within each group. The caller is
// the participant marked apkt:callingParty, or else the first participant of the metadata.
func channelOrder(lines []mediaLine, meta *Metadata) []int {
	rank := func(label string) int {
		if meta == nil {
			return 0
		}
		p := meta.SenderOf(label)
		if p == nil {
			return 2
		}
		if p.CallingParty != nil {
			if *p.CallingParty {
				return 0
			}
			return 1
		}
		if len(meta.Participants) > 0 && meta.Participants[0].ID == p.ID {
			return 0
		}
		return 1
	}
	idx := make([]int, len(lines))
	for i := range idx {
		idx[i] = i
	}
	slices.SortStableFunc(idx, func(a, b int) int { return rank(lines[a].label) - rank(lines[b].label) })
	channelOf := make([]int, len(lines))
	for ch, line := range idx {
		channelOf[line] = ch
	}
	return channelOf
}

// noteHeaders collects the matching keys an SRC copies into SIP headers.
func (s *Session) noteHeaders(req *sip.Request) {
	for _, name := range []string{"User-to-User", "X-User-To-User"} {
		for _, h := range req.GetHeaders(name) {
			u, err := ParseUserToUser(h.Value())
			if err != nil {
				s.log.Info("User-to-User header not understood", "value", h.Value(), "error", err)
				continue
			}
			if ucid, ok := u.UCID(); ok {
				s.addID(string(matcher.KeyUCID), ucid.String(), h.Value(), name)
			} else {
				s.addID("uui", u.Data, h.Value(), name)
			}
		}
	}
	for _, h := range req.GetHeaders("Cisco-Gucid") {
		if ucid, ok := matcher.ParseUCID(h.Value()); ok {
			s.addID(string(matcher.KeyUCID), ucid.String(), h.Value(), "Cisco-Gucid")
		}
	}
	for _, h := range req.GetHeaders("X-Inin-Cnv") {
		if cnv, ok := matcher.ParseConversationID(h.Value()); ok {
			s.addID(string(matcher.KeyConversationID), cnv, "", "x-inin-cnv header")
		}
	}
}

// noteMetadata parses rs-metadata and takes in its identifiers. A complete document replaces the session's
// view; a partial one is merged into it, and a partial one with no view to merge into makes us ask the SRC
// for a snapshot. Metadata that cannot be parsed never stops the call from being recorded.
func (s *Session) noteMetadata(raw []byte) {
	m, err := ParseMetadata(raw)
	if err != nil {
		s.log.Warn("rs-metadata not usable", "error", err)
		return
	}
	if m.Malformed {
		s.log.Info("rs-metadata is not well-formed XML; identifiers taken by the fallback scan")
	}
	for _, raw := range m.UCIDs {
		if ucid, ok := matcher.ParseUCID(raw); ok {
			s.addID(string(matcher.KeyUCID), ucid.String(), raw, "metadata ucid")
		}
	}
	for _, id := range m.SessionIDs {
		// Avaya SBCE puts its UUI (UCID inside) in session_id; RFC 7865 ids are base64 and never parse as one.
		if ucid, ok := matcher.ParseUCID(id); ok {
			s.addID(string(matcher.KeyUCID), ucid.String(), id, "metadata session_id")
		}
	}
	for _, cnv := range m.ConversationIDs() {
		s.addID(string(matcher.KeyConversationID), cnv, "", "metadata x-inin-cnv")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case m.DataMode != "partial":
		s.noteDepartedLocked(m)
		s.meta = m
	case s.meta != nil:
		s.meta = s.meta.Merge(m)
	default:
		s.meta = m
		s.wantSnapshot = true
	}
}

// noteDepartedLocked keeps the participants a complete snapshot drops, for the document: a conference member
// who left, or a transferred party, was still recorded. Only those tied to a stream count; a placeholder such
// as Avaya SBCE's dummy participant (no stream at all) is simply replaced. s.mu must be held.
func (s *Session) noteDepartedLocked(next *Metadata) {
	if s.meta == nil {
		return
	}
	present := func(p Participant) bool {
		return slices.ContainsFunc(next.Participants, func(q Participant) bool { return q.ID == p.ID || (p.AOR != "" && q.AOR == p.AOR) })
	}
	s.departed = slices.DeleteFunc(s.departed, present)
	for _, p := range s.meta.Participants {
		streamed := slices.ContainsFunc(slices.Concat(p.Send, p.Recv), func(id string) bool { return id != "" })
		if streamed && !present(p) && !slices.ContainsFunc(s.departed, func(q Participant) bool { return q.ID == p.ID }) {
			s.departed = append(s.departed, p)
		}
	}
}

// requestSnapshotIfNeeded asks the SRC for complete metadata (RFC 7866 §9.2: an UPDATE whose body is an
// application/rs-metadata-request) when a partial update came with nothing to merge into. It runs after
// the request carrying the partial update has been answered.
func (s *Session) requestSnapshotIfNeeded() {
	s.mu.Lock()
	want := s.wantSnapshot && s.state != StateOffered && s.state != StateEnded
	s.wantSnapshot = s.wantSnapshot && !want
	allowsUpdate := false
	for _, h := range s.dlg.InviteRequest.GetHeaders("Allow") {
		allowsUpdate = allowsUpdate || hasToken(h.Value(), "UPDATE")
	}
	s.mu.Unlock()
	if !want {
		return
	}
	if !allowsUpdate {
		s.log.Info("partial rs-metadata without a prior snapshot; the SRC does not allow UPDATE, so no snapshot is requested")
		return
	}
	s.srv.wg.Go(func() {
		req := sip.NewRequest(sip.UPDATE, s.remoteTarget())
		req.AppendHeader(sip.NewHeader("Content-Type", "application/rs-metadata-request"))
		req.AppendHeader(sip.NewHeader("Content-Disposition", "recording-session"))
		req.AppendHeader(sip.NewHeader("Require", "siprec"))
		s.addCapabilities(req)
		req.SetBody([]byte("SRS internal error\r\n"))
		ctx, cancel := context.WithTimeout(s.ctx, s.srv.cfg.ReinviteTimeout)
		defer cancel()
		res, err := s.dlg.Do(ctx, req)
		switch {
		case err != nil:
			s.log.Info("metadata snapshot request failed", "error", err)
		case !res.IsSuccess():
			s.log.Info("metadata snapshot request refused", "code", res.StatusCode, "reason", res.Reason)
		default:
			s.log.Info("metadata snapshot requested")
		}
	})
}

func (s *Session) addID(kind, value, raw, origin string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	id := recorder.Identifier{Kind: kind, Value: value, Raw: raw, Origin: origin}
	if raw == value {
		id.Raw = ""
	}
	if !slices.Contains(s.ids, id) {
		s.ids = append(s.ids, id)
	}
}

func headerValue(req *sip.Request, name string) string {
	if h := req.GetHeader(name); h != nil {
		return h.Value()
	}
	return ""
}
