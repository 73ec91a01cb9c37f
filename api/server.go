package api

import (
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/siphook/siphook/recorder"
)

//go:embed openapi.json
var openAPISpec []byte

// LiveSession is a media session in progress, as GET /api/v1/sessions shows it.
type LiveSession struct {
	ID             string    `json:"id"`
	Source         string    `json:"source"` // siprec | audiohook
	State          string    `json:"state"`  // waiting | active | paused
	Since          time.Time `json:"since"`  // when the session arrived
	Tenant         string    `json:"tenant"`
	Keys           []Key     `json:"keys"`
	ConversationID string    `json:"conversation_id,omitempty"` // absent while unmatched
	Agents         []Agent   `json:"agents,omitempty"`
	MatchedBy      string    `json:"matched_by,omitempty"`
	WaitingReason  string    `json:"waiting_reason,omitempty"` // present while waiting
}

// SessionLister reports the live media sessions.
type SessionLister interface {
	LiveSessions() []LiveSession
}

// Option configures a Server.
type Option func(*Server)

// WithLogger sets the logger (default slog.Default()).
func WithLogger(l *slog.Logger) Option {
	return func(s *Server) {
		if l != nil {
			s.log = l
		}
	}
}

// WithSessions sets where GET /api/v1/sessions gets the live sessions; without it the list is empty.
func WithSessions(l SessionLister) Option {
	return func(s *Server) { s.sessions = l }
}

// WithRegisterer sets where the metrics are registered (default: a private registry).
func WithRegisterer(r prometheus.Registerer) Option {
	return func(s *Server) {
		if r != nil {
			s.reg = r
		}
	}
}

// Server serves the API under /api/v1.
type Server struct {
	ix        *Index
	dir       string
	log       *slog.Logger
	sessions  SessionLister
	reg       prometheus.Registerer
	tokens    []credential
	metrics   *metrics
	mux       *http.ServeMux
	routes    []string
	waveforms waveformCache
}

// NewServer creates the API over the index ix of the recordings under dir.
func NewServer(cfg Config, ix *Index, dir string, opts ...Option) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if ix == nil {
		return nil, errors.New("api: no index")
	}
	s := &Server{ix: ix, dir: dir, log: slog.Default(), reg: prometheus.NewRegistry(), tokens: credentials(cfg.AllTokens()),
		mux: http.NewServeMux()}
	for _, o := range opts {
		o(s)
	}
	var err error
	if s.metrics, err = newMetrics(s.reg, ix); err != nil {
		return nil, err
	}
	for _, rt := range []struct {
		pattern string
		need    Role // "": public
		handler http.HandlerFunc
	}{
		{"GET /api/v1/recordings", RoleRead, s.listRecordings},
		{"GET /api/v1/recordings/{id}", RoleRead, s.getRecording},
		{"GET /api/v1/recordings/{id}/audio", RoleRead, s.getAudio},
		{"GET /api/v1/recordings/{id}/waveform", RoleRead, s.getWaveform},
		{"GET /api/v1/sessions", RoleRead, s.listSessions},
		{"POST /api/v1/index/rebuild", RoleAdmin, s.rebuildIndex},
		{"GET /api/v1/openapi.json", "", s.openAPI},
	} {
		s.mux.Handle(rt.pattern, s.authorize(rt.need, rt.handler))
		s.routes = append(s.routes, rt.pattern)
	}
	return s, nil
}

// Routes returns the patterns the server serves, such as "GET /api/v1/recordings/{id}".
func (s *Server) Routes() []string { return slices.Clone(s.routes) }

// Handler returns the handler of every route; it expects the full path, /api/v1/….
func (s *Server) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sw := &statusWriter{ResponseWriter: w}
		w.Header().Set("X-Content-Type-Options", "nosniff")
		s.mux.ServeHTTP(sw, r)
		route := r.Pattern // set by the mux on r
		if route == "" {
			route = "unmatched" // 404 and 405: one label, however many paths are probed
		}
		s.metrics.requests.WithLabelValues(route, strconv.Itoa(sw.status())).Inc()
	})
}

func (s *Server) listRecordings(w http.ResponseWriter, r *http.Request) {
	f, limit, cursor, err := ParseFilter(r.URL.Query())
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	page, err := s.ix.Query(f, limit, cursor)
	if err != nil {
		writeError(w, http.StatusBadRequest, "parameter cursor: "+err.Error())
		return
	}
	writeJSON(w, http.StatusOK, page)
}

// recording finds the recording named in the path, or answers 404. Ids are only ever looked up in the
// index, never turned into paths.
func (s *Server) recording(w http.ResponseWriter, r *http.Request) (Summary, bool) {
	sum, ok := s.ix.Get(r.PathValue("id"))
	if !ok {
		writeError(w, http.StatusNotFound, "no such recording")
	}
	return sum, ok
}

// open opens a file named by the index, relative to the recordings directory.
func (s *Server) open(rel string) (*os.File, error) {
	local, err := filepath.Localize(rel) // refuses absolute paths and "..": the journal could be edited by hand
	if err != nil {
		return nil, fmt.Errorf("%q: %w", rel, fs.ErrNotExist)
	}
	return os.Open(filepath.Join(s.dir, local))
}

// gone handles a file of sum missing from the disk: when its document went too (retention deleted it), the
// recording leaves the index.
func (s *Server) gone(w http.ResponseWriter, sum Summary, what string) {
	if f, err := s.open(sum.Document); errors.Is(err, fs.ErrNotExist) {
		s.ix.forget(sum.ID)
		what = "no such recording"
	} else if err == nil {
		f.Close()
	}
	writeError(w, http.StatusNotFound, what)
}

func (s *Server) getRecording(w http.ResponseWriter, r *http.Request) {
	sum, ok := s.recording(w, r)
	if !ok {
		return
	}
	f, err := s.open(sum.Document)
	if errors.Is(err, fs.ErrNotExist) {
		s.gone(w, sum, "no such recording")
		return
	}
	if err != nil {
		s.internalError(w, r, err)
		return
	}
	defer f.Close()
	w.Header().Set("Content-Type", "application/json")
	if _, err := io.Copy(w, f); err != nil {
		s.log.Debug("sending a document", "recording", sum.ID, "error", err)
	}
}

// openAudio opens the WAV of the request's recording, or answers the request when it cannot.
func (s *Server) openAudio(w http.ResponseWriter, r *http.Request) (Summary, *os.File, fs.FileInfo, bool) {
	sum, ok := s.recording(w, r)
	if !ok {
		return sum, nil, nil, false
	}
	if sum.Audio == "" {
		writeError(w, http.StatusNotFound, "the recording has no audio")
		return sum, nil, nil, false
	}
	f, err := s.open(sum.Audio)
	if errors.Is(err, fs.ErrNotExist) {
		s.gone(w, sum, "the recording has no audio")
		return sum, nil, nil, false
	}
	if err != nil {
		s.internalError(w, r, err)
		return sum, nil, nil, false
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		s.internalError(w, r, err)
		return sum, nil, nil, false
	}
	return sum, f, st, true
}

func (s *Server) getAudio(w http.ResponseWriter, r *http.Request) {
	sum, f, st, ok := s.openAudio(w, r)
	if !ok {
		return
	}
	defer f.Close()
	h := w.Header()
	h.Set("Content-Type", "audio/wav")
	// The URL names the recording already; size and time tell a file still being written from its later self.
	h.Set("ETag", fmt.Sprintf(`"%s-%x-%x"`, etagSafe(sum.ID), st.Size(), st.ModTime().UnixNano()))
	h.Set("Cache-Control", "private, no-cache")
	http.ServeContent(w, r, "", st.ModTime(), f) // Range, If-Range, If-None-Match, HEAD
}

// etagSafe keeps the characters of an id that may appear in an ETag.
func etagSafe(id string) string {
	b := []byte(id)
	for i, c := range b {
		if c <= ' ' || c >= 0x7f || c == '"' {
			b[i] = '_'
		}
	}
	return string(b)
}

func (s *Server) getWaveform(w http.ResponseWriter, r *http.Request) {
	points := defaultPoints
	if v := r.URL.Query().Get("points"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxPoints {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("parameter points: %q is not an integer from 1 to %d", v, maxPoints))
			return
		}
		points = n
	}
	sum, f, st, ok := s.openAudio(w, r)
	if !ok {
		return
	}
	defer f.Close()
	key := waveformKey{id: sum.ID, size: st.Size(), points: points}
	body, ok := s.waveforms.get(key)
	if !ok {
		wf, err := peaks(f, st.Size(), points)
		if err != nil {
			s.internalError(w, r, fmt.Errorf("%s: %w", sum.Audio, err))
			return
		}
		for i, label := range s.channelLabels(sum) {
			if i < len(wf.Channels) {
				wf.Channels[i].Label = label
			}
		}
		if body, err = json.Marshal(wf); err != nil {
			s.internalError(w, r, err)
			return
		}
		s.waveforms.put(key, body)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Write(body)
}

// channelLabels reads the channel labels from the recording's document; none if it cannot.
func (s *Server) channelLabels(sum Summary) []string {
	f, err := s.open(sum.Document)
	if err != nil {
		return nil
	}
	defer f.Close()
	var doc struct {
		Channels []struct {
			Index int    `json:"index"`
			Label string `json:"label"`
		} `json:"channels"`
	}
	if json.NewDecoder(f).Decode(&doc) != nil {
		return nil
	}
	var labels []string
	for _, c := range doc.Channels {
		if c.Index >= 0 && c.Index < recorder.MaxChannels {
			if c.Index >= len(labels) {
				labels = append(labels, make([]string, c.Index+1-len(labels))...)
			}
			labels[c.Index] = c.Label
		}
	}
	return labels
}

func (s *Server) listSessions(w http.ResponseWriter, r *http.Request) {
	list := []LiveSession{}
	if s.sessions != nil {
		list = append(list, s.sessions.LiveSessions()...)
	}
	for i := range list {
		if list[i].Keys == nil {
			list[i].Keys = []Key{}
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"sessions": list})
}

func (s *Server) rebuildIndex(w http.ResponseWriter, r *http.Request) {
	n, err := s.ix.Rebuild()
	if err != nil {
		s.internalError(w, r, err)
		return
	}
	s.log.Info("index rebuilt", "recordings", n)
	writeJSON(w, http.StatusOK, map[string]int{"recordings": n})
}

func (s *Server) openAPI(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Write(openAPISpec)
}

func (s *Server) internalError(w http.ResponseWriter, r *http.Request, err error) {
	s.log.Error("API request failed", "path", r.URL.Path, "error", err)
	writeError(w, http.StatusInternalServerError, "internal error")
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status, b = http.StatusInternalServerError, []byte(`{"error":"internal error"}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(append(b, '\n'))
}

func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]string{"error": msg})
}

// statusWriter remembers the status code, for the metrics.
type statusWriter struct {
	http.ResponseWriter
	code int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.code == 0 {
		w.code = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// ReadFrom keeps sendfile(2) for audio, which io.Copy uses when the underlying writer offers it.
func (w *statusWriter) ReadFrom(r io.Reader) (int64, error) {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	if rf, ok := w.ResponseWriter.(io.ReaderFrom); ok {
		return rf.ReadFrom(r)
	}
	return io.Copy(w.ResponseWriter, r)
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (w *statusWriter) status() int {
	if w.code == 0 {
		return http.StatusOK
	}
	return w.code
}
