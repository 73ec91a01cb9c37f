package sip

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/siphook/siphook/matcher"
	"github.com/siphook/siphook/recorder"
	"github.com/siphook/siphook/rtp"
)

// What we tell peers we do, in OPTIONS answers, 2xx and refusals.
const (
	allowHeader     = "INVITE, ACK, CANCEL, BYE, OPTIONS, UPDATE"
	acceptHeader    = "application/sdp, application/rs-metadata+xml, application/rs-metadata, multipart/mixed"
	supportedHeader = "siprec, timer"
)

// supportedOptionTags are the Require tags we accept.
var supportedOptionTags = map[string]bool{"siprec": true, "timer": true}

// Server is the SIPREC recording server: it owns the sipgo stack, its listeners and the session table.
type Server struct {
	cfg   Config
	log   *slog.Logger
	media *rtp.Receiver
	rec   *recorder.Recorder
	m     *metrics
	gate  *admission

	ua     *sipgo.UserAgent
	sipSrv *sipgo.Server
	client *sipgo.Client
	dialog *sipgo.DialogUA

	onWaiting    func(*Session)
	binder       matcher.Binder                              // the matcher, when CTI drives activation
	beforeAnswer func(ctx context.Context, s *Session) error // test seam: runs after admission, before the 200
	jitter       func() time.Duration                        // 491 back-off

	mu        sync.Mutex
	sessions  map[string]*Session  // by dialog id
	invites   map[string]time.Time // initial INVITEs (inviteKey) of live sessions (zero) and of sessions ended within 64*T1 (when to forget)
	draining  bool
	listeners []func() error
	serve     []func()          // bound listeners waiting to be served
	addrs     map[string]string // transport → bound host:port
	wg        sync.WaitGroup    // session goroutines (delayed activation)
}

// Option configures a Server.
type Option func(*Server)

// WithLogger sets the logger.
func WithLogger(l *slog.Logger) Option { return func(s *Server) { s.log = l } }

// WithRegisterer registers the server's metrics there (default: a private registry).
func WithRegisterer(r prometheus.Registerer) Option {
	return func(s *Server) { s.m = newMetrics(r) }
}

// WithOnWaiting is called, in its own goroutine, when a session has been answered inactive and confirmed
// and waits to be activated (activation: on-match). The matcher hooks in here.
func WithOnWaiting(f func(*Session)) Option { return func(s *Server) { s.onWaiting = f } }

// WithBinder hands every established session to the matcher, tells it when metadata changes a session's
// keys, and takes the session back when it ends.
func WithBinder(b matcher.Binder) Option { return func(s *Server) { s.binder = b } }

// NewServer builds the server; Start binds and serves.
func NewServer(cfg Config, media *rtp.Receiver, rec *recorder.Recorder, opts ...Option) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	s := &Server{
		cfg: cfg, media: media, rec: rec, log: slog.Default(),
		sessions: map[string]*Session{}, addrs: map[string]string{}, invites: map[string]time.Time{},
		jitter: func() time.Duration { return rand.N(2 * time.Second) },
	}
	for _, o := range opts {
		o(s)
	}
	if s.m == nil {
		s.m = newMetrics(prometheus.NewRegistry())
	}
	s.gate = newAdmission(s.cfg.Admission)
	return s, nil
}

// Start binds the configured listeners and serves them until Shutdown.
func (s *Server) Start() error {
	var tlsConf *tls.Config
	if s.cfg.TLSEnabled() {
		cert, err := tls.LoadX509KeyPair(s.cfg.TLS.CertFile, s.cfg.TLS.KeyFile)
		if err != nil {
			return fmt.Errorf("sip tls: %w", err)
		}
		tlsConf = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
		if f := s.cfg.TLS.ClientCAFile; f != "" {
			pem, err := os.ReadFile(f)
			if err != nil {
				return fmt.Errorf("sip tls client_ca_file: %w", err)
			}
			tlsConf.ClientCAs = x509.NewCertPool()
			if !tlsConf.ClientCAs.AppendCertsFromPEM(pem) {
				return fmt.Errorf("sip tls client_ca_file %s: no PEM certificates", f)
			}
			tlsConf.ClientAuth = tls.VerifyClientCertIfGiven
			if s.cfg.TLS.RequireClientCert {
				tlsConf.ClientAuth = tls.RequireAndVerifyClientCert
			}
		}
	}
	ua, err := sipgo.NewUA(sipgo.WithUserAgent(s.cfg.UserAgent))
	if err != nil {
		return err
	}
	s.ua = ua
	if s.sipSrv, err = sipgo.NewServer(ua, sipgo.WithServerLogger(s.log)); err != nil {
		return err
	}
	if s.client, err = sipgo.NewClient(ua, sipgo.WithClientLogger(s.log)); err != nil {
		return err
	}
	s.sipSrv.OnInvite(s.guard(s.onInvite))
	s.sipSrv.OnAck(s.guard(s.onAck))
	s.sipSrv.OnBye(s.guard(s.onBye))
	s.sipSrv.OnCancel(s.guard(s.onCancel))
	s.sipSrv.OnOptions(s.guard(s.onOptions))
	s.sipSrv.OnUpdate(s.guard(s.onUpdate))

	if err := s.listen(tlsConf); err != nil {
		s.closeListeners()
		ua.Close()
		return err
	}
	host, port := s.contactHostPort("")
	// RewriteContact sends our in-dialog requests to where the INVITE came from: over TCP/TLS that reuses the
	// SRC's connection (sipgo issue #361), over UDP it is the SBC's signalling address.
	s.dialog = &sipgo.DialogUA{Client: s.client, ContactHDR: s.contact(host, port, ""), RewriteContact: true}
	// Serve only now: a request arriving at once must find the dialog layer ready.
	for _, serve := range s.serve {
		go serve()
	}
	s.serve = nil
	s.log.Info("sip listening", "addresses", s.addrs, "activation", s.cfg.Activation)
	return nil
}

// listen binds UDP and TCP on the same port, and TLS. With port 0 the port UDP gets may be taken for TCP by
// someone else: then both are tried again on a new port.
func (s *Server) listen(tlsConf *tls.Config) error {
	_, port, _ := net.SplitHostPort(s.cfg.Listen)
	attempts := 1
	if port == "0" {
		attempts = 20
	}
	var err error
	for range attempts {
		if err = s.listenPlain(); err == nil || !errors.Is(err, syscall.EADDRINUSE) {
			break
		}
		s.closeListeners()
		clear(s.addrs)
		s.serve = nil
	}
	if err != nil {
		return err
	}
	if tlsConf != nil {
		l, err := tls.Listen("tcp", s.cfg.TLS.Listen, tlsConf)
		if err != nil {
			return fmt.Errorf("sip tls listen %s: %w", s.cfg.TLS.Listen, err)
		}
		s.addrs["tls"] = l.Addr().String()
		s.listeners = append(s.listeners, l.Close)
		s.serve = append(s.serve, func() { s.sipSrv.ServeTLS(l) })
	}
	return nil
}

// listenPlain binds the UDP and TCP listeners, the second on the port the first got.
func (s *Server) listenPlain() error {
	addr := s.cfg.Listen
	var pc net.PacketConn
	var l net.Listener
	for _, t := range s.cfg.Transports {
		switch t {
		case "udp":
			c, err := net.ListenPacket("udp", addr)
			if err != nil {
				return fmt.Errorf("sip udp listen %s: %w", addr, err)
			}
			pc, addr = c, c.LocalAddr().String()
			s.addrs["udp"] = addr
			s.listeners = append(s.listeners, c.Close)
		case "tcp":
			tl, err := net.Listen("tcp", addr)
			if err != nil {
				return fmt.Errorf("sip tcp listen %s: %w", addr, err)
			}
			l, addr = tl, tl.Addr().String()
			s.addrs["tcp"] = addr
			s.listeners = append(s.listeners, tl.Close)
		}
	}
	// Served once every transport is bound (Start), so a retry never leaves a serving goroutine behind.
	if pc != nil {
		s.serve = append(s.serve, func() { s.sipSrv.ServeUDP(pc) })
	}
	if l != nil {
		s.serve = append(s.serve, func() { s.sipSrv.ServeTCP(l) })
	}
	return nil
}

func (s *Server) closeListeners() {
	for _, c := range s.listeners {
		c()
	}
	s.listeners = nil
}

// Addr is the bound address of a transport ("udp", "tcp", "tls"), or "".
func (s *Server) Addr(transport string) string { return s.addrs[transport] }

// contactHostPort is what our Contact advertises for a transport: the address that transport is bound to
// (an SRC on TLS must send its ACK and BYE to the TLS port), with the advertised host if configured.
func (s *Server) contactHostPort(transport string) (string, int) {
	bound := s.addrs[transport]
	for _, t := range []string{"udp", "tcp", "tls"} {
		if bound == "" {
			bound = s.addrs[t]
		}
	}
	host, portStr, _ := net.SplitHostPort(bound)
	port, _ := strconv.Atoi(portStr)
	if s.cfg.AdvertiseAddress != "" {
		host = s.cfg.AdvertiseAddress
	} else if ip, err := netip.ParseAddr(host); err == nil && ip.IsUnspecified() {
		host = outboundIP().String()
	}
	return host, port
}

// contact is our Contact header: the +sip.srs feature tag says we are a recording server (RFC 7866).
func (s *Server) contact(host string, port int, transport string) sip.ContactHeader {
	uri := sip.Uri{Scheme: "sip", User: "siphook", Host: host, Port: port, UriParams: sip.NewParams(), Headers: sip.NewParams()}
	if transport != "" && transport != "udp" {
		uri.UriParams.Add("transport", transport)
	}
	params := sip.NewParams()
	params.Add("+sip.srs", "")
	return sip.ContactHeader{Address: uri, Params: params}
}

// mediaAddr is the IP we write in SDP.
func (s *Server) mediaAddr() netip.Addr {
	if s.cfg.MediaAddress != "" {
		return netip.MustParseAddr(s.cfg.MediaAddress)
	}
	if ip := s.media.BindAddress(); !ip.IsUnspecified() {
		return ip
	}
	return outboundIP()
}

// outboundIP is the address this host would use to reach others: the default for Contact and SDP when we
// listen on all interfaces and nothing is configured. No packet is sent.
func outboundIP() netip.Addr {
	c, err := net.Dial("udp4", "192.0.2.1:9")
	if err != nil {
		return netip.MustParseAddr("127.0.0.1")
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).AddrPort().Addr()
}

// Drain refuses new sessions (503, and 503 to OPTIONS so an SBC's recording group moves on) while the
// established ones go on: the first step of a lame-duck shutdown.
func (s *Server) Drain() {
	s.mu.Lock()
	s.draining = true
	s.mu.Unlock()
}

// Ready reports why the server should not be sent new sessions: not started, shutting down, or the
// recordings disk below its free-space floor.
func (s *Server) Ready() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.dialog == nil:
		return errors.New("sip: not listening")
	case s.draining:
		return errors.New("sip: shutting down")
	}
	return s.rec.Accepting() // the recordings disk is below its floor
}

// Sessions is the number of sessions in the table.
func (s *Server) Sessions() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.sessions)
}

// SessionByCallID finds a session by the SIP Call-ID of its recording dialog.
func (s *Server) SessionByCallID(callID string) *Session {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, sess := range s.sessions {
		if sess.callID == callID {
			return sess
		}
	}
	return nil
}

func (s *Server) lookup(req *sip.Request) *Session {
	id, err := sip.DialogIDFromRequestUAS(req)
	if err != nil {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sessions[id]
}

func (s *Server) add(sess *Session) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.draining {
		return &Error{Code: 503, Reason: "Service Unavailable", Warning: "shutting down", Headers: map[string]string{"Retry-After": "30"}}
	}
	if max := s.cfg.Admission.MaxSessions; max > 0 && len(s.sessions) >= max {
		return &Error{Code: 503, Reason: "Service Unavailable", Warning: "session limit reached", Headers: map[string]string{"Retry-After": "5"},
			Err: fmt.Errorf("%d sessions, max_sessions %d", len(s.sessions), max)}
	}
	s.sessions[sess.dlg.ID] = sess
	s.invites[inviteKey(sess.dlg.InviteRequest)] = time.Time{}
	s.m.active.Inc()
	return nil
}

func (s *Server) remove(sess *Session) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.sessions[sess.dlg.ID]; ok {
		delete(s.sessions, sess.dlg.ID)
		s.m.active.Dec()
	}
	now := time.Now()
	for k, forget := range s.invites {
		if !forget.IsZero() && now.After(forget) {
			delete(s.invites, k)
		}
	}
	// An INVITE is retransmitted for at most 64*T1 after it was first sent.
	s.invites[inviteKey(sess.dlg.InviteRequest)] = now.Add(64 * sip.T1)
}

// inviteKey identifies an initial INVITE across retransmissions: Call-ID, From tag and CSeq.
func inviteKey(req *sip.Request) string {
	key := callID(req)
	if f := req.From(); f != nil {
		tag, _ := f.Params.Get("tag")
		key += "|" + tag
	}
	if c := req.CSeq(); c != nil {
		key += "|" + strconv.FormatUint(uint64(c.SeqNo), 10)
	}
	return key
}

// knownInvite reports whether req is the initial INVITE of a live session or of one ended within 64*T1.
func (s *Server) knownInvite(req *sip.Request) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	forget, ok := s.invites[inviteKey(req)]
	return ok && (forget.IsZero() || time.Now().Before(forget))
}

// Shutdown refuses new sessions, ends every session (BYE to the SRC, recording finalised) and stops the
// listeners. Recordings are finalised even when ctx expires first.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.draining = true
	sessions := make([]*Session, 0, len(s.sessions))
	for _, sess := range s.sessions {
		sessions = append(sessions, sess)
	}
	s.mu.Unlock()

	var wg sync.WaitGroup
	for _, sess := range sessions {
		wg.Go(func() { sess.terminate(ctx, "shutdown") })
	}
	wg.Wait()
	s.wg.Wait()
	s.closeListeners()
	if s.ua != nil {
		return s.ua.Close()
	}
	return nil
}

// guard turns a panic in a handler (a bug met by some input) into a 500 and a log line: one request fails,
// not the process and every recording in it.
func (s *Server) guard(h sipgo.RequestHandler) sipgo.RequestHandler {
	return func(req *sip.Request, tx sip.ServerTransaction) {
		defer func() {
			if p := recover(); p != nil {
				s.log.Error("sip handler panicked", "method", string(req.Method), "call_id", callID(req),
					"panic", p, "stack", string(debug.Stack()))
				if !req.IsAck() {
					_ = tx.Respond(sip.NewResponseFromRequest(req, 500, "Server Internal Error", nil))
				}
			}
		}()
		h(req, tx)
	}
}

func (s *Server) onOptions(req *sip.Request, tx sip.ServerTransaction) {
	if !s.gate.allowed(sourceAddr(req)) {
		s.respondError(req, tx, errSourceNotAllowed)
		return
	}
	s.mu.Lock()
	draining := s.draining
	s.mu.Unlock()
	res := sip.NewResponseFromRequest(req, 200, "OK", nil)
	if draining {
		// An SBC's session-recording-group moves to the next SRS when its OPTIONS ping fails.
		res = sip.NewResponseFromRequest(req, 503, "Service Unavailable", nil)
	}
	res.AppendHeader(sip.NewHeader("Allow", allowHeader))
	res.AppendHeader(sip.NewHeader("Accept", acceptHeader))
	res.AppendHeader(sip.NewHeader("Supported", supportedHeader))
	if err := tx.Respond(res); err != nil {
		s.log.Debug("options response failed", "error", err)
	}
}

func (s *Server) onInvite(req *sip.Request, tx sip.ServerTransaction) {
	if to := req.To(); to != nil && to.Params.Has("tag") {
		if sess := s.lookup(req); sess != nil {
			sess.onReinvite(req, tx)
		} else {
			s.respondError(req, tx, sipError(481, "Call/Transaction Does Not Exist", "no such recording session", nil))
		}
		return
	}
	if s.knownInvite(req) {
		// A retransmission of the INVITE of a session we have (sipgo ends its transaction with the dialog):
		// answering it would open a second recording of the same call.
		s.log.Debug("retransmitted INVITE of an existing session ignored", "call_id", callID(req))
		return
	}
	src := sourceAddr(req)
	if !s.gate.allowed(src) {
		s.m.sessions.WithLabelValues("rejected").Inc()
		s.respondError(req, tx, errSourceNotAllowed)
		return
	}
	if !s.gate.takeInvite(src, time.Now()) {
		s.m.sessions.WithLabelValues("rejected").Inc()
		e := sipError(503, "Service Unavailable", "INVITE rate limit for this source", fmt.Errorf("source %s over %g INVITE/s", src, s.cfg.Admission.InviteRate))
		e.Headers = map[string]string{"Retry-After": "1"}
		s.respondError(req, tx, e)
		return
	}
	// 100 Trying stops the retransmissions of a large UDP INVITE and lets a CANCEL find the transaction.
	if err := tx.Respond(sip.NewResponseFromRequest(req, 100, "Trying", nil)); err != nil {
		return
	}
	sess, err := s.admit(req, tx)
	if err != nil {
		s.m.sessions.WithLabelValues("rejected").Inc()
		s.respondError(req, tx, err)
		return
	}
	sess.answer()
}

func (s *Server) onAck(req *sip.Request, tx sip.ServerTransaction) {
	if sess := s.lookup(req); sess != nil {
		sess.onAck(req, tx)
	}
}

func (s *Server) onBye(req *sip.Request, tx sip.ServerTransaction) {
	sess := s.lookup(req)
	if sess == nil {
		s.respondError(req, tx, sipError(481, "Call/Transaction Does Not Exist", "no such recording session", nil))
		return
	}
	sess.onBye(req, tx)
}

// onCancel sees only CANCELs that matched no INVITE transaction: sipgo answers the others itself (200 to
// the CANCEL, 487 to the INVITE) and the session notices through its dialog context.
func (s *Server) onCancel(req *sip.Request, tx sip.ServerTransaction) {
	s.respondError(req, tx, sipError(481, "Call/Transaction Does Not Exist", "no matching INVITE", nil))
}

func (s *Server) onUpdate(req *sip.Request, tx sip.ServerTransaction) {
	sess := s.lookup(req)
	if sess == nil {
		s.respondError(req, tx, sipError(481, "Call/Transaction Does Not Exist", "no such recording session", nil))
		return
	}
	sess.onUpdate(req, tx)
}

// respondError sends the response an error deserves, with a Warning for the SRC's operators, and logs it.
func (s *Server) respondError(req *sip.Request, tx sip.ServerTransaction, err error) {
	e := classify(err)
	s.m.rejected.WithLabelValues(strconv.Itoa(e.Code)).Inc()
	level := slog.LevelWarn
	if e.Code >= 500 && e.Code != 503 {
		level = slog.LevelError
	}
	s.log.Log(context.Background(), level, "sip request refused", "method", string(req.Method),
		"call_id", callID(req), "source", req.Source(), "code", e.Code, "reason", e.Reason, "error", err)
	res := sip.NewResponseFromRequest(req, e.Code, e.Reason, nil)
	if e.Warning != "" {
		host, _ := s.contactHostPort("")
		res.AppendHeader(sip.NewHeader("Warning", fmt.Sprintf("399 %s %q", host, e.Warning)))
	}
	for k, v := range e.Headers {
		res.AppendHeader(sip.NewHeader(k, v))
	}
	if rerr := tx.Respond(res); rerr != nil {
		s.log.Debug("error response failed", "error", rerr)
	}
}

func callID(req *sip.Request) string {
	if c := req.CallID(); c != nil {
		return c.Value()
	}
	return ""
}

// isSIPREC recognises a recording session leniently (research/siprec.md §1.2): the siprec option tag in
// Require or Proxy-Require, +sip.src or src on the Contact (as a header or URI parameter), or a multipart
// body with a metadata part. Strict RFC 7866 would demand the first two together; real SRCs send either.
func isSIPREC(req *sip.Request, body SIPRECBody) bool {
	for _, name := range []string{"Require", "Proxy-Require"} {
		for _, h := range req.GetHeaders(name) {
			if hasToken(h.Value(), "siprec") {
				return true
			}
		}
	}
	if c := req.Contact(); c != nil {
		for _, p := range []sip.HeaderParams{c.Params, c.Address.UriParams} {
			if p.Has("+sip.src") || p.Has("src") {
				return true
			}
		}
	}
	return body.Metadata != nil
}

// hasToken reports whether a comma-separated header value holds tok (case-insensitive).
func hasToken(value, tok string) bool {
	for t := range strings.SplitSeq(value, ",") {
		if strings.EqualFold(strings.TrimSpace(t), tok) {
			return true
		}
	}
	return false
}

// unsupportedTags lists the Require option tags we do not support (RFC 3261 §8.2.2.3 → 420).
func unsupportedTags(req *sip.Request) []string {
	var out []string
	for _, h := range req.GetHeaders("Require") {
		for t := range strings.SplitSeq(h.Value(), ",") {
			if t = strings.ToLower(strings.TrimSpace(t)); t != "" && !supportedOptionTags[t] {
				out = append(out, t)
			}
		}
	}
	return out
}

var errSourceNotAllowed = sipError(403, "Forbidden", "source address not in sip.admission.allow_sources", nil)

var errNotSIPREC = errors.New("no siprec option tag, no +sip.src contact and no metadata part")
