// Package webhook is a CTI source for everything that is not Genesys Cloud: other CTI systems and
// operators' own tooling POST normalised call events (cti.Event as JSON) to /api/v1/cti/events with a
// bearer token.
package webhook

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/siphook/siphook/cti"
	"github.com/siphook/siphook/matcher"
)

// Path is where events are posted.
const Path = "/api/v1/cti/events"

// maxBody bounds one request.
const maxBody = 1 << 20

// Config is the webhook listener.
type Config struct {
	Listen string `yaml:"listen"` // host:port; "" disables the webhook
	Token  string `yaml:"token"`  // bearer token callers present (SIPHOOK_WEBHOOK_TOKEN)
}

// Validate reports every problem at once.
func (c Config) Validate() error {
	if c.Listen == "" {
		return nil
	}
	var errs []error
	if _, _, err := net.SplitHostPort(c.Listen); err != nil {
		errs = append(errs, fmt.Errorf("webhook.listen %q: %w", c.Listen, err))
	}
	if len(c.Token) < 16 {
		errs = append(errs, errors.New("webhook.token: set a bearer token of at least 16 characters (SIPHOOK_WEBHOOK_TOKEN)"))
	}
	return errors.Join(errs...)
}

// Server receives events; it implements cti.Source.
type Server struct {
	cfg   Config
	log   *slog.Logger
	now   func() time.Time
	token [32]byte // sha256 of the token: compared in constant time whatever the length presented
}

// New checks the configuration.
func New(cfg Config, log *slog.Logger) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.Default()
	}
	return &Server{cfg: cfg, log: log, now: time.Now, token: sha256.Sum256([]byte(cfg.Token))}, nil
}

// Run listens on cfg.Listen and delivers posted events to h until ctx ends.
func (s *Server) Run(ctx context.Context, h cti.Handler) error {
	l, err := net.Listen("tcp", s.cfg.Listen)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: s.Handler(h), ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(sctx)
	}()
	s.log.Info("cti webhook listening", "url", "http://"+l.Addr().String()+Path)
	if err := srv.Serve(l); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// Handler serves Path, delivering events to h.
func (s *Server) Handler(h cti.Handler) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+Path, func(w http.ResponseWriter, r *http.Request) {
		presented := sha256.Sum256([]byte(strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")))
		if !strings.HasPrefix(r.Header.Get("Authorization"), "Bearer ") || subtle.ConstantTimeCompare(presented[:], s.token[:]) != 1 {
			s.log.Warn("cti webhook: refused a request without the right bearer token", "remote", r.RemoteAddr)
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		body, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
		if err != nil {
			http.Error(w, "cannot read body", http.StatusBadRequest)
			return
		}
		if len(body) > maxBody {
			http.Error(w, "body larger than 1 MiB", http.StatusRequestEntityTooLarge)
			return
		}
		events, err := Decode(body, s.now())
		if err != nil {
			s.log.Warn("cti webhook: bad request", "remote", r.RemoteAddr, "error", err)
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		for _, e := range events {
			s.log.Info("cti event", "source", "webhook", "conversation_id", e.ConversationID, "state", e.State)
			h(e)
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusAccepted)
		fmt.Fprintf(w, `{"accepted":%d}`+"\n", len(events))
	})
	return mux
}

// Decode parses one event or an array of events, checks them and fills what the caller may leave out:
// Source, Received, Tenant ("webhook"), Time (now) and the UCIDs of the UUI values.
func Decode(body []byte, now time.Time) ([]cti.Event, error) {
	body = bytes.TrimSpace(body)
	var events []cti.Event
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields() // a misspelt field is an error the caller should see, not a silent default
	var err error
	if len(body) > 0 && body[0] == '[' {
		err = dec.Decode(&events)
	} else {
		var e cti.Event
		err = dec.Decode(&e)
		events = []cti.Event{e}
	}
	if err != nil {
		return nil, fmt.Errorf("invalid JSON: %w", err)
	}
	if len(events) == 0 || len(events) > 1000 {
		return nil, errors.New("send between 1 and 1000 events")
	}
	for i := range events {
		e := &events[i]
		id, ok := matcher.ParseConversationID(e.ConversationID)
		if !ok {
			return nil, fmt.Errorf("event %d: conversation_id must be a UUID", i)
		}
		e.ConversationID = id
		switch e.State {
		case cti.StateActive, cti.StateHeld, cti.StateEnded:
		default:
			return nil, fmt.Errorf("event %d: state must be ACTIVE, HELD or ENDED", i)
		}
		e.Source, e.Received, e.Reconciled = "webhook", now, false
		if e.Tenant == "" {
			e.Tenant = "webhook"
		}
		if e.Time.IsZero() {
			e.Time = now
		}
		var ucids []string
		for _, raw := range append(append([]string(nil), e.UCIDs...), e.UUI...) {
			if u, ok := matcher.ParseUCID(raw); ok && !slices.Contains(ucids, u.String()) {
				ucids = append(ucids, u.String())
			}
		}
		e.UCIDs = ucids
	}
	return events, nil
}
