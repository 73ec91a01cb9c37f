package audiohook

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/siphook/siphook/matcher"
	"github.com/siphook/siphook/recorder"
)

// hardReadLimit is the WebSocket read limit. Messages between MaxMessageSize and this get a protocol
// `disconnect`; only beyond it does the WebSocket layer itself refuse (close 1009).
const hardReadLimit = 1 << 20

// Server accepts AudioHook WebSocket connections and runs one Session per connection.
type Server struct {
	cfg      Config
	log      *slog.Logger
	rec      *recorder.Recorder
	m        *metrics
	tenants  tenants
	verifier *SignatureVerifier
	upgrader websocket.Upgrader
	now      func() time.Time

	onSession func(matcher.MediaSession)
	binder    matcher.Binder

	httpSrv  *http.Server
	routes   []route // extra handlers on the listener (WithRoute)
	listener net.Listener

	mu       sync.Mutex
	sessions map[*Session]struct{}
	dropped  map[string]*parked // by AudioHook session id: recordings waiting for a continuing session
	draining bool
	wg       sync.WaitGroup // connections and grace timers
}

// Option configures a Server.
type Option func(*Server)

// WithLogger sets the logger.
func WithLogger(l *slog.Logger) Option { return func(s *Server) { s.log = l } }

// WithRegisterer registers the server's metrics there (default: a private registry).
func WithRegisterer(r prometheus.Registerer) Option { return func(s *Server) { s.m = newMetrics(r) } }

// WithClock replaces time.Now (signature checks, document times).
func WithClock(now func() time.Time) Option { return func(s *Server) { s.now = now } }

// WithOnSession is called, in its own goroutine, for every opened session that is not a connection probe:
// the matcher hooks in here and drives the session through matcher.MediaSession.
func WithOnSession(f func(matcher.MediaSession)) Option { return func(s *Server) { s.onSession = f } }

// WithBinder hands every opened session (not probes) to the matcher and takes it back when it ends.
func WithBinder(b matcher.Binder) Option { return func(s *Server) { s.binder = b } }

// WithRoute serves h at pattern on the AudioHook listener too: the server's one HTTP port also carries the
// operator endpoints (/metrics, /healthz, /readyz).
func WithRoute(pattern string, h http.Handler) Option {
	return func(s *Server) { s.routes = append(s.routes, route{pattern, h}) }
}

type route struct {
	pattern string
	handler http.Handler
}

// NewServer builds the server; Start listens, Handler serves on a listener of the caller's.
func NewServer(cfg Config, rec *recorder.Recorder, opts ...Option) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	s := &Server{
		cfg: cfg, rec: rec, log: slog.Default(), now: time.Now, tenants: newTenants(cfg),
		sessions: map[*Session]struct{}{}, dropped: map[string]*parked{},
		upgrader: websocket.Upgrader{
			HandshakeTimeout: 10 * time.Second,
			// Genesys sends no Origin; the signature, not the origin, authenticates the peer.
			CheckOrigin: func(*http.Request) bool { return true },
		},
	}
	for _, o := range opts {
		o(s)
	}
	if s.m == nil {
		s.m = newMetrics(prometheus.NewRegistry())
	}
	s.verifier = &SignatureVerifier{Keys: s.tenants, Now: s.now, Skew: cfg.SignatureSkew, MaxAge: cfg.SignatureMaxAge, Authority: cfg.Authority}
	return s, nil
}

// Handler is the HTTP handler of the AudioHook endpoint.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc(s.cfg.Path, s.serveWebSocket)
	for _, r := range s.routes {
		mux.Handle(r.pattern, r.handler)
	}
	return mux
}

// Start listens on cfg.Listen (TLS when configured) and serves until Shutdown.
func (s *Server) Start() error {
	l, err := net.Listen("tcp", s.cfg.Listen)
	if err != nil {
		return err
	}
	s.listener = l
	s.httpSrv = &http.Server{Handler: s.Handler(), ReadHeaderTimeout: 10 * time.Second, ErrorLog: slog.NewLogLogger(s.log.Handler(), slog.LevelWarn)}
	scheme := "ws"
	if s.cfg.TLSEnabled() {
		scheme = "wss"
	}
	if len(s.tenants) == 0 {
		s.log.Warn("audiohook: no organisation configured; every connection will be refused (set SIPHOOK_AUDIOHOOK_API_KEY and SIPHOOK_AUDIOHOOK_CLIENT_SECRET)")
	}
	s.log.Info("audiohook listening", "url", scheme+"://"+l.Addr().String()+s.cfg.Path, "activation", s.cfg.Activation, "organisations", len(s.tenants))
	go func() {
		var err error
		if s.cfg.TLSEnabled() {
			err = s.httpSrv.ServeTLS(l, s.cfg.TLS.CertFile, s.cfg.TLS.KeyFile)
		} else {
			err = s.httpSrv.Serve(l)
		}
		if err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("audiohook listener stopped", "error", err)
		}
	}()
	return nil
}

// Addr is the listener's address, or "" before Start.
func (s *Server) Addr() string {
	if s.listener == nil {
		return ""
	}
	return s.listener.Addr().String()
}

// Sessions is the number of connected sessions.
func (s *Server) Sessions() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.sessions)
}

// Shutdown stops accepting connections, asks every session to end (`disconnect` completed, then waits for
// the client's `close`), and finalises every recording, including those waiting for a reconnect.
// Drain refuses new connections while the open sessions go on: the first step of a lame-duck shutdown.
func (s *Server) Drain() {
	s.mu.Lock()
	s.draining = true
	s.mu.Unlock()
}

func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.draining = true
	sessions := make([]*Session, 0, len(s.sessions))
	for sess := range s.sessions {
		sessions = append(sessions, sess)
	}
	s.mu.Unlock()
	var err error
	if s.httpSrv != nil {
		err = s.httpSrv.Shutdown(ctx) // hijacked WebSocket connections are not waited for here
	}
	for _, sess := range sessions {
		sess.disconnect("completed", "server shutting down")
	}
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		for _, sess := range sessions {
			sess.conn.Close() // the read loop ends and finalises
		}
		<-done
	}
	s.finaliseDropped()
	return err
}

// serveWebSocket authenticates the upgrade request, upgrades and runs the session in this goroutine.
func (s *Server) serveWebSocket(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	log := s.log.With("audiohook_session", r.Header.Get("Audiohook-Session-Id"),
		"correlation_id", r.Header.Get("Audiohook-Correlation-Id"), "remote", r.RemoteAddr)
	tn, err := s.authenticate(r)
	if err != nil {
		// One fixed delay for every refusal: no timing difference between unknown keys, bad signatures and
		// stale requests, and a brute-forcer gets two tries a second per connection.
		time.Sleep(time.Until(start.Add(s.cfg.AuthFailureDelay)))
		s.m.refused.WithLabelValues("unauthorized").Inc()
		log.Warn("audiohook upgrade refused", "error", err)
		http.Error(w, "Unauthorized", http.StatusUnauthorized)
		return
	}
	sessionID, ok := normalUUID(r.Header.Get("Audiohook-Session-Id"))
	if !ok {
		s.m.refused.WithLabelValues("bad_request").Inc()
		log.Warn("audiohook upgrade refused", "error", "Audiohook-Session-Id is not a UUID")
		http.Error(w, "Audiohook-Session-Id must be a UUID", http.StatusBadRequest)
		return
	}
	if err := s.rec.Accepting(); err != nil {
		// Refused before any audio: a session we could not write must not look recorded to Genesys.
		s.m.refused.WithLabelValues("disk_low").Inc()
		log.Error("audiohook upgrade refused: recordings disk below its free-space floor", "error", err)
		w.Header().Set("Retry-After", "60")
		http.Error(w, "recordings disk full", http.StatusServiceUnavailable)
		return
	}
	if !s.reserve() {
		http.Error(w, "shutting down", http.StatusServiceUnavailable)
		return
	}
	defer s.wg.Done()
	conn, err := s.upgrader.Upgrade(w, r, nil)
	if err != nil {
		log.Warn("audiohook upgrade failed", "error", err) // the upgrader has answered the client
		return
	}
	conn.SetReadLimit(hardReadLimit)
	sess := newSession(s, conn, tn, sessionID, strings.ToLower(r.Header.Get("Audiohook-Organization-Id")), log)
	s.track(sess, true)
	defer s.track(sess, false)
	sess.run()
}

// reserve counts a connection in, unless the server is draining.
func (s *Server) reserve() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.draining {
		return false
	}
	s.wg.Add(1)
	return true
}

// authenticate verifies the API key and signature and ties the organisation header to the key's tenant.
func (s *Server) authenticate(r *http.Request) (tenant, error) {
	creds, err := s.verifier.Verify(r)
	if err != nil {
		return tenant{}, err
	}
	tn := s.tenants[creds.APIKey]
	org, ok := normalUUID(r.Header.Get("Audiohook-Organization-Id"))
	if !ok {
		return tenant{}, errors.New("Audiohook-Organization-Id is not a UUID")
	}
	if tn.orgID != "" && tn.orgID != org {
		return tenant{}, errors.New("Audiohook-Organization-Id does not belong to the API key")
	}
	return tn, nil
}

func (s *Server) track(sess *Session, add bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if add {
		s.sessions[sess] = struct{}{}
		s.m.active.Inc()
		return
	}
	delete(s.sessions, sess)
	s.m.active.Dec()
}

// parked is a recording waiting for a session that continues it.
type parked struct {
	rec   *recording
	timer *time.Timer
}

// keepForReconnect parks a recording whose session dropped, for ReconnectGrace; a continuing session takes it
// with takeDropped, otherwise it is finalised when the grace ends.
func (s *Server) keepForReconnect(sessionID string, rec *recording) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.draining || s.cfg.ReconnectGrace == 0 {
		rec.finalise()
		return
	}
	s.dropped[sessionID] = &parked{rec: rec, timer: time.AfterFunc(s.cfg.ReconnectGrace, func() {
		if r := s.takeDropped(sessionID); r != nil {
			r.finalise()
		}
	})}
}

// takeDropped returns and forgets the recording parked for a session id, or nil.
func (s *Server) takeDropped(sessionID string) *recording {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.dropped[sessionID]
	if p == nil {
		return nil
	}
	p.timer.Stop()
	delete(s.dropped, sessionID)
	return p.rec
}

// finaliseDropped ends the wait of every parked recording (shutdown).
func (s *Server) finaliseDropped() {
	s.mu.Lock()
	dropped := s.dropped
	s.dropped = map[string]*parked{}
	s.mu.Unlock()
	for _, p := range dropped {
		p.timer.Stop()
		p.rec.finalise()
	}
}

// normalUUID lower-cases a UUID header value and reports whether it is one.
func normalUUID(s string) (string, bool) {
	s = strings.ToLower(strings.TrimSpace(s))
	return s, IsUUID(s)
}
