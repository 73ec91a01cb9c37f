package genesys

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
)

// channel is a Notification Service channel (research §2.1).
type channel struct {
	ID         string    `json:"id"`
	ConnectURI string    `json:"connectUri"`
	Expires    time.Time `json:"expires"`
	rolloverAt time.Time // make-before-break replacement time
}

// newChannel creates a channel and subscribes it to topics.
func (t *tenant) newChannel(ctx context.Context, topics []string) (*channel, error) {
	var ch channel
	if err := t.c.do(ctx, http.MethodPost, "/api/v2/notifications/channels", nil, &ch); err != nil {
		return nil, fmt.Errorf("creating a notification channel: %w", err)
	}
	if ch.ID == "" || ch.ConnectURI == "" {
		return nil, errors.New("notification channel without id or connectUri")
	}
	if err := t.subscribe(ctx, &ch, topics); err != nil {
		return nil, err
	}
	// Replace the channel at 90 % of its life, and no later than the token it belongs to is renewed: the
	// Notification Service closes a channel's socket when that token expires.
	now := t.src.now()
	life := ch.Expires.Sub(now)
	if life <= 0 {
		life = 24 * time.Hour
	}
	ch.rolloverAt = now.Add(life * 9 / 10)
	t.c.mu.Lock()
	if renew := t.c.renewAt; !renew.IsZero() && renew.Before(ch.rolloverAt) {
		ch.rolloverAt = renew
	}
	t.c.mu.Unlock()
	t.src.m.channels.WithLabelValues(t.name).Inc()
	t.log.Info("notification channel ready", "channel", ch.ID, "topics", len(topics), "expires", ch.Expires, "rollover_at", ch.rolloverAt)
	return &ch, nil
}

// subscribe replaces the channel's topics (PUT; it also extends the channel's life). Topics Genesys refuses
// (a deleted user, missing permission) are reported and the rest go on.
func (t *tenant) subscribe(ctx context.Context, ch *channel, topics []string) error {
	body := make([]map[string]string, len(topics))
	for i, tp := range topics {
		body[i] = map[string]string{"id": tp}
	}
	var res struct {
		Entities []struct {
			ID                 string   `json:"id"`
			State              string   `json:"state"`
			RejectionReason    string   `json:"rejectionReason"`
			MissingPermissions []string `json:"missingPermissions"`
		} `json:"entities"`
	}
	path := "/api/v2/notifications/channels/" + url.PathEscape(ch.ID) + "/subscriptions?ignoreErrors=true"
	if err := t.c.do(ctx, http.MethodPut, path, body, &res); err != nil {
		return fmt.Errorf("subscribing channel %s: %w", ch.ID, err)
	}
	for _, e := range res.Entities {
		if e.RejectionReason != "" || len(e.MissingPermissions) > 0 {
			t.src.m.rejected.WithLabelValues(t.name).Inc()
			t.log.Error("topic refused by Genesys", "topic", e.ID, "state", e.State, "reason", e.RejectionReason, "missing_permissions", e.MissingPermissions)
		}
	}
	return nil
}

// end says why a socket stopped.
type end int

const (
	endDropped    end = iota // the connection failed without a close frame
	endServer                // the server closed it: expired channel, or another socket took the channel
	endClosing               // socket_closing (maintenance): reconnect to the same channel now
	endStale                 // no heartbeat and no pong: half-open
	endRevoked               // token_revoked
	endDeliberate            // we closed it (rollover, shutdown)
)

var endNames = [...]string{"dropped", "server_closed", "socket_closing", "stale", "token_revoked", "deliberate"}

func (e end) String() string { return endNames[e] }

// socket is one WebSocket on a channel: a reader and a heartbeat watchdog.
type socket struct {
	t        *tenant
	ch       *channel
	topics   []string
	conn     *websocket.Conn
	done     chan end      // the reason, once, for the runner
	stopped  chan struct{} // closed with done, for the watchdog
	once     sync.Once
	lastSeen atomic.Int64 // unix nanos of the last message
	wg       sync.WaitGroup
}

// upgradeError is a refused WebSocket upgrade.
type upgradeError struct{ status int }

func (e *upgradeError) Error() string {
	return fmt.Sprintf("notification socket refused: HTTP %d", e.status)
}

// dial connects to the channel and starts reading.
func (t *tenant) dial(ctx context.Context, ch *channel, topics []string) (*socket, error) {
	d := websocket.Dialer{HandshakeTimeout: 15 * time.Second, Proxy: http.ProxyFromEnvironment}
	if tr, ok := t.src.hc.Transport.(*http.Transport); ok && tr.TLSClientConfig != nil {
		d.TLSClientConfig = tr.TLSClientConfig
	}
	conn, res, err := d.DialContext(ctx, ch.ConnectURI, nil)
	if err != nil {
		if res != nil {
			return nil, &upgradeError{status: res.StatusCode}
		}
		return nil, err
	}
	conn.SetReadLimit(8 << 20) // conversation snapshots can be tens of KB
	s := &socket{t: t, ch: ch, topics: topics, conn: conn, done: make(chan end, 1), stopped: make(chan struct{})}
	s.lastSeen.Store(t.src.now().UnixNano())
	s.wg.Add(2)
	go s.read(ctx)
	go s.watch(ctx)
	return s, nil
}

func (s *socket) finish(e end) {
	s.once.Do(func() {
		s.done <- e
		close(s.stopped)
		s.conn.Close()
	})
}

// close stops the socket on purpose and waits for its goroutines.
func (s *socket) close() {
	s.finish(endDeliberate)
	s.wg.Wait()
}

func (s *socket) read(ctx context.Context) {
	defer s.wg.Done()
	t := s.t
	for {
		_, b, err := s.conn.ReadMessage()
		if err != nil {
			if websocket.IsCloseError(err, websocket.CloseNormalClosure, websocket.CloseGoingAway, websocket.ClosePolicyViolation, websocket.CloseTryAgainLater) {
				s.finish(endServer)
			} else {
				s.finish(endDropped)
			}
			return
		}
		s.lastSeen.Store(t.src.now().UnixNano())
		env, err := ParseEnvelope(b)
		if err != nil || env.TopicName == "" {
			t.log.Debug("notification without topic", "message", truncate(b)) // e.g. {"result":"200","status":"subscribed"}
			continue
		}
		topic := env.TopicName
		switch {
		case topic == "channel.metadata":
			msg := metadataMessage(env)
			if msg != "WebSocket Heartbeat" && msg != "pong" {
				t.log.Info("channel metadata message", "message", msg)
				if strings.Contains(strings.ToLower(msg), "close") {
					s.finish(endClosing) // the unverified "Close" variant: handled like socket_closing
					return
				}
			}
		case topic == "v2.system.socket_closing":
			t.log.Info("genesys announced socket closing; reconnecting", "channel", s.ch.ID)
			s.finish(endClosing)
			return
		case strings.HasPrefix(topic, "v2.system.no_longer_subscribed"):
			t.log.Warn("genesys says the channel is no longer subscribed; subscribing again", "channel", s.ch.ID)
			t.src.m.reconnects.WithLabelValues(t.name, "no_longer_subscribed").Inc()
			if err := t.subscribe(ctx, s.ch, s.topics); err != nil {
				t.log.Error("resubscribing failed", "error", err)
			}
			t.reconcileSoon()
		case strings.HasPrefix(topic, "v2.system.token_revoked"):
			s.finish(endRevoked)
			return
		case strings.HasPrefix(topic, "v2.users.") && strings.HasSuffix(topic, ".conversations"):
			t.src.m.received.WithLabelValues(t.name).Inc()
			if !t.seen.firstTime(env.Metadata.CorrelationID) {
				continue // already applied from another channel
			}
			conv, err := ParseConversation(env.EventBody)
			if err != nil {
				t.log.Warn("conversation event unreadable", "topic", topic, "error", err)
				continue
			}
			t.apply(conv)
		default:
			t.log.Debug("notification ignored", "topic", topic)
		}
	}
}

// watch pings after HeartbeatTimeout of silence and ends a socket that does not answer within PongTimeout
// (research §2.4: heartbeats every 30 s, so silence means a half-open connection).
func (s *socket) watch(ctx context.Context) {
	defer s.wg.Done()
	cfg := s.t.src.cfg
	tick := time.NewTicker(min(cfg.HeartbeatTimeout, cfg.PongTimeout) / 4)
	defer tick.Stop()
	var pingedAt time.Time
	for {
		select {
		case <-ctx.Done():
			s.finish(endDeliberate)
			return
		case <-s.stopped:
			return
		case <-tick.C:
		}
		now := s.t.src.now()
		last := time.Unix(0, s.lastSeen.Load())
		switch {
		case !pingedAt.IsZero() && last.After(pingedAt):
			pingedAt = time.Time{} // answered
		case !pingedAt.IsZero() && now.Sub(pingedAt) > cfg.PongTimeout:
			s.t.log.Warn("notification socket silent and not answering ping; reconnecting", "channel", s.ch.ID)
			s.finish(endStale)
			return
		case pingedAt.IsZero() && now.Sub(last) > cfg.HeartbeatTimeout:
			s.conn.SetWriteDeadline(now.Add(cfg.PongTimeout))
			if err := s.conn.WriteMessage(websocket.TextMessage, []byte(`{"message":"ping"}`)); err != nil {
				s.finish(endDropped)
				return
			}
			pingedAt = now
		}
	}
}

// runChannel keeps one channel's socket alive for a chunk of topics: reconnects, rollovers, replacements.
func (t *tenant) runChannel(ctx context.Context, topics []string) {
	var ch *channel
	var cur *socket
	failures := 0
	retry := func() {
		failures++
		d := min(time.Second<<min(failures-1, 5), 30*time.Second)
		t.src.sleep(ctx, d/2+rand.N(d/2+1))
	}
	for ctx.Err() == nil {
		if cur == nil {
			var err error
			if ch == nil {
				if ch, err = t.newChannel(ctx, topics); err != nil {
					if ctx.Err() == nil {
						t.log.Error("no notification channel", "error", err)
					}
					ch = nil
					retry()
					continue
				}
			}
			if cur, err = t.dial(ctx, ch, topics); err != nil {
				var ue *upgradeError
				if errors.As(err, &ue) {
					// The channel is gone or belongs to an expired token: start over with a new one.
					ch = nil
				}
				t.log.Warn("notification socket not connected", "error", err)
				retry()
				continue
			}
			failures = 0
			t.reconcileSoon() // whatever happened while we were not connected
		}
		rollover := time.NewTimer(time.Until(ch.rolloverAt))
		select {
		case <-ctx.Done():
			rollover.Stop()
			cur.close()
			return
		case e := <-cur.done:
			rollover.Stop()
			cur.wg.Wait()
			cur = nil
			t.src.m.reconnects.WithLabelValues(t.name, e.String()).Inc()
			switch e {
			case endServer:
				// Closed with a close frame and no maintenance warning: the channel expired, or another
				// socket connected to it and took it over. Reconnecting to it would take it back and flap.
				if ok, _ := t.c.exists(ctx, "/api/v2/notifications/channels/"+url.PathEscape(ch.ID)); ok {
					t.src.m.takeovers.WithLabelValues(t.name).Inc()
					t.log.Error("another connection took over our notification channel; moving to a new channel (is a second siphook running with the same OAuth client and channel?)", "channel", ch.ID)
				}
				ch = nil
			case endRevoked:
				t.c.invalidate(t.currentToken())
				ch = nil
			case endDropped, endStale:
				if ok, err := t.c.exists(ctx, "/api/v2/notifications/channels/"+url.PathEscape(ch.ID)); err == nil && !ok {
					ch = nil
				}
				retry()
			case endClosing:
				// Reconnect to the same connectUri at once (what Genesys's SDKs do).
			}
		case <-rollover.C:
			next, err := t.newChannel(ctx, topics)
			var nextSock *socket
			if err == nil {
				nextSock, err = t.dial(ctx, next, topics)
			}
			if err != nil {
				t.log.Warn("channel rollover failed; retrying", "error", err)
				ch.rolloverAt = t.src.now().Add(5 * time.Second)
				continue
			}
			old := cur
			cur, ch = nextSock, next
			old.close() // after the new socket is up: make before break
			t.src.m.reconnects.WithLabelValues(t.name, "rollover").Inc()
			t.reconcileSoon()
		}
	}
	if cur != nil {
		cur.close()
	}
}

func (t *tenant) currentToken() string {
	t.c.mu.Lock()
	defer t.c.mu.Unlock()
	return t.c.token
}

func metadataMessage(env *Envelope) string {
	var body struct {
		Message string `json:"message"`
	}
	json.Unmarshal(env.EventBody, &body)
	return body.Message
}

func truncate(b []byte) string {
	if len(b) > 200 {
		return string(b[:200]) + "…"
	}
	return string(b)
}
