package genesystest

import (
	"crypto/tls"
	"encoding/json"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/gorilla/websocket"
)

// Defaults of the real service (research §1.1, §2.2, §2.3, §6.2).
const (
	DefaultTokenLifetime     = 86400 * time.Second
	DefaultChannelLifetime   = 24 * time.Hour
	DefaultHeartbeatInterval = 30 * time.Second
	DefaultClosingGrace      = 60 * time.Second
	DefaultReorderIdle       = 100 * time.Millisecond

	// MaxChannelsPerClient is the channel cap per OAuth client (research §2.2).
	MaxChannelsPerClient = 20
	// MaxTopicsPerChannel is the subscription cap per channel (research §2.2).
	MaxTopicsPerChannel = 1000
	// DefaultOrganizationID is the organisation the fake pretends to be.
	DefaultOrganizationID = "6b2d1c5e-3f4a-4e8b-9c0d-1a2b3c4d5e6f"
)

const (
	writeTimeout = 10 * time.Second
	// closeLinger bounds the wait for the client's close frame after ours.
	closeLinger = time.Second
	// outQueue bounds the messages waiting for one socket; a client that falls this far behind is cut off.
	outQueue = 4096
	// readLimit bounds a client message (pings and subscribe requests are small).
	readLimit = 64 << 10
	// minTick keeps a tiny scaled interval from turning a ticker into a busy loop.
	minTick = time.Millisecond
)

// Options configures a Server. Zero values take the defaults noted.
type Options struct {
	// TimeScale multiplies every protocol duration below (0 means 1). 0.001 makes a 24 h channel last
	// 86.4 s and a 30 s heartbeat interval 30 ms.
	TimeScale         float64
	TokenLifetime     time.Duration // default 86400 s (research §1.1)
	ChannelLifetime   time.Duration // default 24 h (research §2.2)
	HeartbeatInterval time.Duration // default 30 s (research §2.3)
	ClosingGrace      time.Duration // socket_closing to close; default 60 s (research §2.2)
	EventDelay        time.Duration // from a state change to its delivery; default 0
	EventJitter       time.Duration // a random extra delay in [0, EventJitter) per message; default 0

	// ReorderIdle flushes a partly filled Reorder window after this much quiet (not scaled; default
	// 100 ms), so the last events of a scenario are not held back for ever.
	ReorderIdle time.Duration

	// TLS serves https and wss with httptest's certificate (see Client and TLSClientConfig).
	TLS bool
	// Seed seeds every random choice (ids, tokens, Duplicate, Reorder, jitter) so runs are reproducible.
	Seed uint64
	// OrganizationID appears in system messages; default DefaultOrganizationID.
	OrganizationID string
	// InBandReject answers an upgrade to an unknown or expired channel by accepting it, sending
	// {"result":"404",...} and closing, instead of HTTP 404 (both behaviours are described, research §6.1).
	InBandReject bool
}

// Server is a fake Genesys Cloud: OAuth, notifications (REST and WebSocket), users, conversations and
// analytics. Its methods are safe for concurrent use.
type Server struct {
	opts     Options
	srv      *httptest.Server
	mux      *http.ServeMux
	upgrader websocket.Upgrader
	wsBase   string
	done     chan struct{}
	wg       sync.WaitGroup // socket goroutines

	mu        sync.Mutex
	closed    bool
	rng       *rand.Rand // ids and tokens; per-socket generators serve the delivery knobs
	rngSrc    *rand.ChaCha8
	useSeq    uint64 // orders channels by last use
	socketSeq uint64
	clients   map[string]string // OAuth client id → secret
	tokens    map[string]*token
	users     []*User
	userByID  map[string]*User
	channels  map[string]*channel
	chanList  []*channel // creation order, for deterministic delivery
	sockets   map[*socket]struct{}
	convs     map[string]*conversation
	convList  []*conversation
	forbidden map[string]bool
	faults    []*fault
	latency   []latencyRule
	knobs     knobs
	stats     Stats
}

// knobs are the delivery faults of research §6.2 that apply to every socket.
type knobs struct {
	paused       bool    // half-open: nothing at all is sent, pings go unanswered
	noHeartbeats bool    // heartbeats stop, events and pongs continue
	duplicate    float64 // probability that an event is sent twice
	reorder      int     // events are shuffled within windows of this size
	dropNext     int     // the next n publications are lost
}

// NewServer starts a fake Genesys Cloud on a loopback httptest server. Close it when done.
func NewServer(opts Options) *Server {
	if opts.TimeScale <= 0 {
		opts.TimeScale = 1
	}
	opts.TokenLifetime = orDefault(opts.TokenLifetime, DefaultTokenLifetime)
	opts.ChannelLifetime = orDefault(opts.ChannelLifetime, DefaultChannelLifetime)
	opts.HeartbeatInterval = orDefault(opts.HeartbeatInterval, DefaultHeartbeatInterval)
	opts.ClosingGrace = orDefault(opts.ClosingGrace, DefaultClosingGrace)
	opts.ReorderIdle = orDefault(opts.ReorderIdle, DefaultReorderIdle)
	if opts.OrganizationID == "" {
		opts.OrganizationID = DefaultOrganizationID
	}
	src := rand.NewChaCha8(seedBytes(opts.Seed))
	s := &Server{
		opts:      opts,
		mux:       http.NewServeMux(),
		done:      make(chan struct{}),
		rng:       rand.New(src),
		rngSrc:    src,
		clients:   map[string]string{},
		tokens:    map[string]*token{},
		userByID:  map[string]*User{},
		channels:  map[string]*channel{},
		sockets:   map[*socket]struct{}{},
		convs:     map[string]*conversation{},
		forbidden: map[string]bool{},
		stats:     newStats(),
	}
	// The notification WebSocket is a capability URL: any origin may use it.
	s.upgrader = websocket.Upgrader{CheckOrigin: func(*http.Request) bool { return true }}
	s.routes()
	if opts.TLS {
		s.srv = httptest.NewTLSServer(http.HandlerFunc(s.serve))
		s.wsBase = "wss" + strings.TrimPrefix(s.srv.URL, "https")
	} else {
		s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
		s.wsBase = "ws" + strings.TrimPrefix(s.srv.URL, "http")
	}
	return s
}

func orDefault(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}

// seedBytes spreads Options.Seed over a ChaCha8 seed.
func seedBytes(seed uint64) [32]byte {
	var b [32]byte
	for i := range 4 {
		v := seed + uint64(i)*0x9e3779b97f4a7c15
		for j := range 8 {
			b[i*8+j] = byte(v >> (8 * j))
		}
	}
	return b
}

func (s *Server) routes() {
	m := s.mux
	m.HandleFunc("POST /oauth/token", s.handleToken)
	m.HandleFunc("POST /api/v2/notifications/channels", s.authed(s.handleCreateChannel))
	m.HandleFunc("GET /api/v2/notifications/channels", s.authed(s.handleListChannels))
	m.HandleFunc("HEAD /api/v2/notifications/channels/{id}", s.authed(s.handleHeadChannel))
	m.HandleFunc("GET /api/v2/notifications/channels/{id}/subscriptions", s.authed(s.handleGetSubscriptions))
	m.HandleFunc("POST /api/v2/notifications/channels/{id}/subscriptions", s.authed(s.handleAddSubscriptions))
	m.HandleFunc("PUT /api/v2/notifications/channels/{id}/subscriptions", s.authed(s.handleReplaceSubscriptions))
	m.HandleFunc("DELETE /api/v2/notifications/channels/{id}/subscriptions", s.authed(s.handleDeleteSubscriptions))
	m.HandleFunc("GET /api/v2/users", s.authed(s.handleUsers))
	m.HandleFunc("POST /api/v2/users/search", s.authed(s.handleUserSearch))
	m.HandleFunc("GET /api/v2/groups/{id}/members", s.authed(s.handleGroupMembers))
	m.HandleFunc("GET /api/v2/routing/queues/{id}/members", s.authed(s.handleQueueMembers))
	m.HandleFunc("GET /api/v2/conversations/{id}", s.authed(s.handleConversation))
	m.HandleFunc("GET /api/v2/conversations/calls/{id}", s.authed(s.handleCallConversation))
	m.HandleFunc("POST /api/v2/analytics/conversations/details/query", s.authed(s.handleDetailsQuery))
	m.HandleFunc("GET /channels/{id}", s.handleStream)
	m.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "not.found", "The requested resource was not found: "+r.Method+" "+r.URL.Path)
	})
}

// serve wraps every request: correlation id, request counting, injected latency and faults.
func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("ININ-Correlation-Id", uuid.NewString())
	_, pattern := s.mux.Handler(r)
	if pattern == "" || pattern == "/" {
		pattern = r.Method + " " + r.URL.Path
	}
	s.mu.Lock()
	s.stats.Requests[pattern]++
	f := s.takeFaultLocked(r.URL.Path)
	lat := s.latencyLocked(r.URL.Path)
	if f != nil {
		if f.status == http.StatusTooManyRequests {
			s.stats.Served429++
		} else {
			s.stats.Served5xx++
		}
	}
	s.mu.Unlock()
	if lat > 0 {
		t := time.NewTimer(lat)
		select {
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
			return
		case <-s.done:
			t.Stop()
			return
		}
	}
	if f != nil {
		f.write(w)
		return
	}
	s.mux.ServeHTTP(w, r)
}

// Close stops the server: every notification socket is cut, then the listener closes and Close waits
// for the socket goroutines.
func (s *Server) Close() {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true
	close(s.done)
	socks := make([]*socket, 0, len(s.sockets))
	for k := range s.sockets {
		socks = append(socks, k)
	}
	s.mu.Unlock()
	for _, k := range socks {
		k.abort()
	}
	s.srv.Close()
	s.wg.Wait()
}

// APIBase is the base URL of the REST API (it serves /api/v2/...).
func (s *Server) APIBase() string { return s.srv.URL }

// LoginBase is the base URL of the login service (it serves /oauth/token); the fake uses one host.
func (s *Server) LoginBase() string { return s.srv.URL }

// Client returns an HTTP client that trusts the server (needed with Options.TLS).
func (s *Server) Client() *http.Client { return s.srv.Client() }

// TLSClientConfig returns a TLS configuration that trusts the server, for WebSocket dialers; nil without
// Options.TLS.
func (s *Server) TLSClientConfig() *tls.Config {
	if s.srv.TLS == nil {
		return nil
	}
	if tr, ok := s.srv.Client().Transport.(*http.Transport); ok && tr.TLSClientConfig != nil {
		return tr.TLSClientConfig.Clone()
	}
	return nil
}

// scale applies Options.TimeScale to a protocol duration.
func (s *Server) scale(d time.Duration) time.Duration {
	return time.Duration(float64(d) * s.opts.TimeScale)
}

// tick is a scaled interval for a ticker, never below minTick.
func (s *Server) tick(d time.Duration) time.Duration {
	return max(s.scale(d), minTick)
}

// newIDLocked returns a random (seeded) lower-case UUID, the form Genesys uses for every id.
func (s *Server) newIDLocked() string {
	id, err := uuid.NewRandomFromReader(s.rngSrc)
	if err != nil { // ChaCha8 reads never fail
		panic(err)
	}
	return id.String()
}

// errorBody is Genesys' ErrorBody (research §1.3).
type errorBody struct {
	Message   string   `json:"message"`
	Code      string   `json:"code"`
	Status    int      `json:"status"`
	ContextID string   `json:"contextId,omitempty"`
	Details   []string `json:"details"`
	Errors    []string `json:"errors"`
}

func writeError(w http.ResponseWriter, status int, code, message string) {
	writeJSON(w, status, errorBody{
		Message: message, Code: code, Status: status,
		ContextID: w.Header().Get("ININ-Correlation-Id"),
		Details:   []string{}, Errors: []string{},
	})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// timestamps in bodies: UTC with milliseconds, as the SDKs format them ("%Y-%m-%dT%H:%M:%S.%fZ").
const tsLayout = "2006-01-02T15:04:05.000Z"

func ts(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(tsLayout)
}
