package genesystest

import (
	"errors"
	"fmt"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

// fault is an injected error answer for requests whose path starts with prefix.
type fault struct {
	prefix     string
	remaining  int
	status     int
	retryAfter time.Duration
}

type latencyRule struct {
	prefix string
	delay  time.Duration
}

func (s *Server) takeFaultLocked(path string) *fault {
	for i, f := range s.faults {
		if strings.HasPrefix(path, f.prefix) {
			f.remaining--
			if f.remaining <= 0 {
				s.faults = slices.Delete(s.faults, i, i+1)
			}
			return f
		}
	}
	return nil
}

func (s *Server) latencyLocked(path string) time.Duration {
	var d time.Duration
	for _, l := range s.latency {
		if strings.HasPrefix(path, l.prefix) {
			d = max(d, l.delay)
		}
	}
	return d
}

// write answers with the fault: for 429 the Retry-After and inin-ratelimit-* headers of research §1.3.
func (f *fault) write(w http.ResponseWriter) {
	if f.status == http.StatusTooManyRequests {
		secs := strconv.Itoa(int(math.Ceil(f.retryAfter.Seconds())))
		w.Header().Set("Retry-After", secs)
		w.Header().Set("inin-ratelimit-count", "301")
		w.Header().Set("inin-ratelimit-allowed", "300")
		w.Header().Set("inin-ratelimit-reset", secs)
		writeError(w, f.status, "too.many.requests",
			"Rate limit exceeded the maximum. Retry the request in ["+secs+"] seconds")
		return
	}
	code := map[int]string{500: "internal.server.error", 502: "bad.gateway", 503: "service.unavailable", 504: "gateway.timeout"}[f.status]
	if code == "" {
		code = "server.error"
	}
	writeError(w, f.status, code, "The service is unavailable (injected fault).")
}

// Fail429 makes the next n requests whose path starts with pathPrefix ("/oauth/token",
// "/api/v2/notifications") answer 429 with Retry-After (whole seconds, rounded up; not scaled, because
// the client reads it as seconds) and the inin-ratelimit-* headers.
func (s *Server) Fail429(pathPrefix string, n int, retryAfter time.Duration) {
	s.addFault(&fault{prefix: pathPrefix, remaining: n, status: http.StatusTooManyRequests, retryAfter: retryAfter})
}

// Fail5xx makes the next n requests whose path starts with pathPrefix answer status (500, 502, 503, ...)
// with an ErrorBody.
func (s *Server) Fail5xx(pathPrefix string, n int, status int) {
	s.addFault(&fault{prefix: pathPrefix, remaining: n, status: status})
}

func (s *Server) addFault(f *fault) {
	if f.remaining <= 0 {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = append(s.faults, f)
}

// Latency delays every request whose path starts with pathPrefix by d (not scaled); 0 removes the rule.
func (s *Server) Latency(pathPrefix string, d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.latency = slices.DeleteFunc(s.latency, func(l latencyRule) bool { return l.prefix == pathPrefix })
	if d > 0 {
		s.latency = append(s.latency, latencyRule{prefix: pathPrefix, delay: d})
	}
}

// ClearFaults removes every pending injected fault and latency rule.
func (s *Server) ClearFaults() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults, s.latency = nil, nil
}

// RevokeTokens invalidates every issued token: REST answers 401, the channels close with their tokens
// (HEAD 404, upgrade 401) and their sockets are closed. With notify each socket first receives
// v2.system.token_revoked.{channelId} (reason user_tokens_revoked, research §2.3).
func (s *Server) RevokeTokens(notify bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, t := range s.tokens {
		t.revoked = true
	}
	for _, k := range s.liveSocketsLocked() {
		if notify {
			k.sendLocked(outMsg{kind: kindSystem, data: s.systemMessageLocked(k.ch, "v2.system.token_revoked."+k.ch.id, systemBody{
				SystemTopicType: "token_revoked", Reason: "user_tokens_revoked",
				Message: "The OAuth token used for this channel has been revoked.",
			})})
		}
		// The close goes behind the notice in the socket's queue.
		k.sendLocked(outMsg{closeCode: closeNormal, closeText: "token revoked"})
	}
}

// ExpireTokensNow makes every issued token expire now; sockets close as they would at expiry.
func (s *Server) ExpireTokensNow() {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now()
	for _, t := range s.tokens {
		if t.expires.After(now) {
			t.expires = now
		}
	}
	for _, k := range s.liveSocketsLocked() {
		k.poke()
	}
}

// DropSockets closes every notification socket: 1006 cuts the TCP connection without a close frame,
// any other code (1000, 1001, ...) sends a close frame with it. Channels stay usable.
func (s *Server) DropSockets(code int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, k := range s.liveSocketsLocked() {
		if code == abortCode {
			k.abort()
		} else {
			k.closeGraceful(code, "dropped")
		}
	}
}

// SendSocketClosing sends v2.system.socket_closing on every socket and closes each (1001) after
// ClosingGrace, scaled (research §2.3: clients have about a minute to reconnect).
func (s *Server) SendSocketClosing() {
	s.mu.Lock()
	defer s.mu.Unlock()
	at := time.Now().Add(s.scale(s.opts.ClosingGrace))
	for _, k := range s.liveSocketsLocked() {
		// The SDK enum of systemTopicType has no socket_closing value, so the body leaves it out.
		k.sendLocked(outMsg{kind: kindSystem, data: s.systemMessageLocked(k.ch, "v2.system.socket_closing", systemBody{
			Message: "The WebSocket will be closed for maintenance; reconnect to the channel.",
		})})
		k.closeAt = at
		k.poke()
	}
}

// SendChannelMetadata sends {"topicName":"channel.metadata","eventBody":{"message":message}} on every
// socket, e.g. the unverified "Close" variant (research §2.3). It closes nothing.
func (s *Server) SendChannelMetadata(message string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, k := range s.liveSocketsLocked() {
		k.sendLocked(outMsg{kind: kindSystem, data: channelMetadata(message)})
	}
}

// PauseDelivery makes every socket half-open while on: it stays connected but sends nothing, no events
// (they are lost), no heartbeats, no pongs.
func (s *Server) PauseDelivery(on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.knobs.paused = on
}

// StopHeartbeats stops (or restarts) heartbeats; events and pongs still flow.
func (s *Server) StopHeartbeats(on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.knobs.noHeartbeats = on
}

// ErrUnknownChannel is returned for a channel id the fake does not know.
var ErrUnknownChannel = errors.New("genesystest: unknown channel")

// ExpireChannel ends a channel now: its socket closes, HEAD answers 404 and a reconnect is refused.
func (s *Server) ExpireChannel(id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	ch := s.channels[id]
	if ch == nil {
		return fmt.Errorf("%w: %s", ErrUnknownChannel, id)
	}
	if ch.gone == "" {
		ch.gone = ChannelExpired
	}
	if ch.sock != nil {
		ch.sock.closeGraceful(closeNormal, "channel expired")
	}
	return nil
}

// NoLongerSubscribed removes topic from the channel and, if a socket is connected, sends it
// v2.system.no_longer_subscribed.{channelId} with reason another_channel_subscribed (research §2.3); the
// topic's events stop.
func (s *Server) NoLongerSubscribed(channelID, topic string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	ch := s.channels[channelID]
	if ch == nil {
		return fmt.Errorf("%w: %s", ErrUnknownChannel, channelID)
	}
	if !ch.topicSet[topic] {
		return fmt.Errorf("genesystest: channel %s is not subscribed to %s", channelID, topic)
	}
	s.setTopicsLocked(ch, slices.DeleteFunc(slices.Clone(ch.topics), func(t string) bool { return t == topic }))
	if ch.sock != nil {
		ch.sock.sendLocked(outMsg{kind: kindSystem, data: s.systemMessageLocked(ch, "v2.system.no_longer_subscribed."+ch.id, systemBody{
			SystemTopicType: "no_longer_subscribed", Reason: "another_channel_subscribed",
			Message: "No longer subscribed to " + topic,
			Data:    map[string]any{"topics": []string{topic}},
		})})
	}
	return nil
}

// Duplicate makes each event delivery repeat (same bytes, same CorrelationId) with probability p.
func (s *Server) Duplicate(p float64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.knobs.duplicate = p
}

// Reorder shuffles events within windows of n per socket (a partly filled window is released after
// Options.ReorderIdle of quiet); n <= 1 turns it off.
func (s *Server) Reorder(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.knobs.reorder = n
}

// Drop loses the next n publications (every channel misses them), without a disconnect.
func (s *Server) Drop(nextN int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.knobs.dropNext = nextN
}

// ForbidTopic makes subscriptions to topic fail a permission check (400, or a Rejected entity with
// ignoreErrors=true).
func (s *Server) ForbidTopic(topic string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.forbidden[topic] = true
}

// CreateForeignChannels creates n channels for the OAuth client as if another process using the same
// client did, with a token of their own; at the 20-channel cap each evicts an idle channel (research
// §6.3 item 8). It returns their ids.
func (s *Server) CreateForeignChannels(clientID string, n int) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	tok := s.issueTokenLocked(clientID)
	ids := make([]string, 0, n)
	for range n {
		ids = append(ids, s.createChannelLocked(tok).id)
	}
	return ids
}

// Stats are counters for tests.
type Stats struct {
	TokensIssued     int
	ChannelsCreated  int
	ChannelsEvicted  int
	Connects         int            // WebSocket upgrades accepted
	SocketsKicked    int            // sockets closed because another connected to the same channel
	LiveSockets      map[string]int // channel id → sockets attached now (0 or 1)
	Subscriptions    map[string]int // channel id → subscribed topics, for active channels
	Requests         map[string]int // route pattern ("POST /api/v2/notifications/channels") → requests
	Served429        int
	Served5xx        int
	EventsPublished  int // publications (one per topic per change) that reached at least one socket
	EventsDelivered  int // event messages written to sockets
	EventsDuplicated int
	EventsDropped    int // publications lost to Drop
	Heartbeats       int
	Pongs            int
	Suppressed       int // messages not sent because delivery was paused
	SlowConsumers    int // sockets cut because their queue overflowed
}

func newStats() Stats {
	return Stats{Requests: map[string]int{}}
}

// Stats returns a copy of the counters.
func (s *Server) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.stats
	st.Requests = make(map[string]int, len(s.stats.Requests))
	for k, v := range s.stats.Requests {
		st.Requests[k] = v
	}
	st.LiveSockets, st.Subscriptions = map[string]int{}, map[string]int{}
	now := time.Now()
	for _, ch := range s.chanList {
		if ch.sock != nil {
			st.LiveSockets[ch.id] = 1
		}
		if ch.stateLocked(now) == ChannelActive {
			st.Subscriptions[ch.id] = len(ch.topics)
		}
	}
	return st
}

// ChannelInfo describes a channel.
type ChannelInfo struct {
	ID, ClientID, ConnectURI string
	Expires                  time.Time
	State                    string // ChannelActive, ChannelExpired, ChannelEvicted or ChannelClosed
	Connected                bool
	Topics                   []string
}

// Channels lists every channel ever created, oldest first.
func (s *Server) Channels() []ChannelInfo {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now()
	out := make([]ChannelInfo, 0, len(s.chanList))
	for _, ch := range s.chanList {
		out = append(out, ChannelInfo{
			ID: ch.id, ClientID: ch.clientID, ConnectURI: s.channelBodyLocked(ch).ConnectURI,
			Expires: ch.expires, State: ch.stateLocked(now), Connected: ch.sock != nil,
			Topics: slices.Clone(ch.topics),
		})
	}
	return out
}
