package genesystest

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"slices"
	"time"

	"github.com/gorilla/websocket"
)

// channel is a notification channel (research §2.1, §2.2).
type channel struct {
	id       string
	clientID string
	tok      *token
	expires  time.Time
	topics   []string // subscription order
	topicSet map[string]bool
	lastUsed uint64 // Server.useSeq at the last create, connect or subscription change
	gone     string // "", "expired" (ExpireChannel) or "evicted" (the 20-channel cap)
	sock     *socket
}

// Channel states reported by ChannelInfo.
const (
	ChannelActive  = "active"
	ChannelExpired = "expired" // lifetime over, or ExpireChannel
	ChannelEvicted = "evicted" // removed by the 20-channel cap
	ChannelClosed  = "closed"  // its token expired or was revoked
)

// stateLocked says whether the channel can still be used. A channel whose token is over is closed with
// it (research §2.2: "a channel may close ... if the auth token expires").
func (ch *channel) stateLocked(now time.Time) string {
	switch {
	case ch.gone != "":
		return ch.gone
	case !now.Before(ch.expires):
		return ChannelExpired
	case !ch.tok.valid(now):
		return ChannelClosed
	}
	return ChannelActive
}

func (s *Server) touchLocked(ch *channel) {
	s.useSeq++
	ch.lastUsed = s.useSeq
}

// createChannelLocked makes a channel for tok, evicting one first if the client is at the cap: the
// least recently used channel without a connection, or failing that the least recently used of all
// (research §2.1: "Channels without an active connection will be removed first").
func (s *Server) createChannelLocked(tok *token) *channel {
	now := time.Now()
	var live []*channel
	for _, ch := range s.chanList {
		if ch.clientID == tok.clientID && ch.stateLocked(now) == ChannelActive {
			live = append(live, ch)
		}
	}
	if len(live) >= MaxChannelsPerClient {
		victim := pickVictim(live)
		victim.gone = ChannelEvicted
		s.stats.ChannelsEvicted++
		if victim.sock != nil {
			victim.sock.closeGraceful(websocket.CloseNormalClosure, "channel removed")
		}
	}
	ch := &channel{
		id:       "streaming-0-" + s.randomNameLocked(26),
		clientID: tok.clientID,
		tok:      tok,
		expires:  now.Add(s.scale(s.opts.ChannelLifetime)),
		topicSet: map[string]bool{},
	}
	s.touchLocked(ch)
	s.channels[ch.id] = ch
	s.chanList = append(s.chanList, ch)
	s.stats.ChannelsCreated++
	return ch
}

func pickVictim(live []*channel) *channel {
	var idle, any *channel
	for _, ch := range live {
		if any == nil || ch.lastUsed < any.lastUsed {
			any = ch
		}
		if ch.sock == nil && (idle == nil || ch.lastUsed < idle.lastUsed) {
			idle = ch
		}
	}
	if idle != nil {
		return idle
	}
	return any
}

// randomNameLocked makes the lower-case base-36 suffix seen in real channel ids
// ("streaming-0-fmtdmf8cdis7jh14udg5p89t6z", research §1.2).
func (s *Server) randomNameLocked(n int) string {
	const alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
	b := make([]byte, n)
	for i := range b {
		b[i] = alphabet[s.rng.IntN(len(alphabet))]
	}
	return string(b)
}

// channelBody is the Channel model: {connectUri, id, expires}.
type channelBody struct {
	ConnectURI string `json:"connectUri"`
	ID         string `json:"id"`
	Expires    string `json:"expires"`
}

func (s *Server) channelBodyLocked(ch *channel) channelBody {
	return channelBody{ConnectURI: s.wsBase + "/channels/" + ch.id, ID: ch.id, Expires: ts(ch.expires)}
}

func (s *Server) handleCreateChannel(w http.ResponseWriter, _ *http.Request, tok *token) {
	s.mu.Lock()
	body := s.channelBodyLocked(s.createChannelLocked(tok))
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, body)
}

// handleListChannels is GET /api/v2/notifications/channels?includechannels=token|oauthclient.
func (s *Server) handleListChannels(w http.ResponseWriter, r *http.Request, tok *token) {
	include := r.URL.Query().Get("includechannels")
	if include != "" && include != "token" && include != "oauthclient" {
		writeError(w, http.StatusBadRequest, "bad.request", "includechannels must be token or oauthclient")
		return
	}
	now := time.Now()
	s.mu.Lock()
	entities := []channelBody{}
	for _, ch := range s.chanList {
		if ch.clientID != tok.clientID || ch.stateLocked(now) != ChannelActive {
			continue
		}
		if include != "oauthclient" && ch.tok != tok {
			continue
		}
		entities = append(entities, s.channelBodyLocked(ch))
	}
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]any{"entities": entities})
}

// channelForLocked finds a usable channel of the token's client; nil means 404.
func (s *Server) channelForLocked(id string, tok *token) *channel {
	ch := s.channels[id]
	if ch == nil || ch.clientID != tok.clientID || ch.stateLocked(time.Now()) != ChannelActive {
		return nil
	}
	return ch
}

func (s *Server) handleHeadChannel(w http.ResponseWriter, r *http.Request, tok *token) {
	s.mu.Lock()
	ch := s.channelForLocked(r.PathValue("id"), tok)
	s.mu.Unlock()
	if ch == nil {
		w.WriteHeader(http.StatusNotFound)
		return
	}
	w.WriteHeader(http.StatusOK)
}

// topicEntity is a ChannelTopic (research §2.1; state values from the Java SDK enum).
type topicEntity struct {
	ID                 string   `json:"id"`
	State              string   `json:"state,omitempty"` // "Permitted" | "Rejected"
	RejectionReason    string   `json:"rejectionReason,omitempty"`
	MissingPermissions []string `json:"missingPermissions,omitempty"`
}

func (s *Server) subscriptionListing(ch *channel, rejected []topicEntity) map[string]any {
	entities := make([]topicEntity, 0, len(ch.topics)+len(rejected))
	for _, t := range ch.topics {
		entities = append(entities, topicEntity{ID: t})
	}
	return map[string]any{"entities": append(entities, rejected...)}
}

func (s *Server) handleGetSubscriptions(w http.ResponseWriter, r *http.Request, tok *token) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ch := s.channelForLocked(r.PathValue("id"), tok)
	if ch == nil {
		writeError(w, http.StatusNotFound, "not.found", "channel not found: "+r.PathValue("id"))
		return
	}
	writeJSON(w, http.StatusOK, s.subscriptionListing(ch, nil))
}

func (s *Server) handleAddSubscriptions(w http.ResponseWriter, r *http.Request, tok *token) {
	s.subscribe(w, r, tok, false)
}

func (s *Server) handleReplaceSubscriptions(w http.ResponseWriter, r *http.Request, tok *token) {
	s.subscribe(w, r, tok, true)
}

func (s *Server) handleDeleteSubscriptions(w http.ResponseWriter, r *http.Request, tok *token) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ch := s.channelForLocked(r.PathValue("id"), tok)
	if ch == nil {
		writeError(w, http.StatusNotFound, "not.found", "channel not found: "+r.PathValue("id"))
		return
	}
	ch.topics, ch.topicSet = nil, map[string]bool{}
	s.touchLocked(ch)
	w.WriteHeader(http.StatusOK)
}

// subscribe serves POST (add) and PUT (replace) of a channel's topics. Both extend the channel's life
// (research §2.2: "To maintain a channel for longer than 24 hours, resubscribe to topics").
func (s *Server) subscribe(w http.ResponseWriter, r *http.Request, tok *token, replace bool) {
	ignoreErrors := r.URL.Query().Get("ignoreErrors") == "true"
	var req []struct {
		ID string `json:"id"`
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, 4<<20))
	if err == nil {
		err = json.Unmarshal(body, &req)
	}
	if err != nil {
		writeError(w, http.StatusBadRequest, "bad.request", "The request body must be a JSON array of {\"id\": topic}: "+err.Error())
		return
	}
	topics := make([]string, 0, len(req))
	for _, t := range req {
		topics = append(topics, t.ID)
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	ch := s.channelForLocked(r.PathValue("id"), tok)
	if ch == nil {
		writeError(w, http.StatusNotFound, "not.found", "channel not found: "+r.PathValue("id"))
		return
	}
	accepted, rejected := s.checkTopicsLocked(topics)
	if len(rejected) > 0 && !ignoreErrors {
		writeError(w, http.StatusBadRequest, "bad.request",
			fmt.Sprintf("Invalid topic %s: %s", rejected[0].ID, rejected[0].RejectionReason))
		return
	}
	next := accepted
	if !replace {
		next = mergeTopics(ch.topics, accepted)
	}
	if len(next) > MaxTopicsPerChannel {
		writeError(w, http.StatusBadRequest, "bad.request",
			fmt.Sprintf("Subscription count %d exceeds the limit of %d topics per channel", len(next), MaxTopicsPerChannel))
		return
	}
	s.setTopicsLocked(ch, next)
	ch.expires = time.Now().Add(s.scale(s.opts.ChannelLifetime))
	if ch.sock != nil {
		ch.sock.poke() // its expiry deadline moved
	}
	writeJSON(w, http.StatusOK, s.subscriptionListing(ch, rejected))
}

func (s *Server) setTopicsLocked(ch *channel, topics []string) {
	ch.topics = topics
	ch.topicSet = make(map[string]bool, len(topics))
	for _, t := range topics {
		ch.topicSet[t] = true
	}
	s.touchLocked(ch)
}

func mergeTopics(have, add []string) []string {
	out := slices.Clone(have)
	for _, t := range add {
		if !slices.Contains(out, t) {
			out = append(out, t)
		}
	}
	return out
}

var (
	userTopicRE  = regexp.MustCompile(`^v2\.users\.([^.]+)\.conversations$`)
	queueTopicRE = regexp.MustCompile(`^v2\.routing\.queues\.([^.]+)\.conversations$`)
)

// checkTopicsLocked splits topics (deduplicated, in order) into accepted and rejected. The fake knows
// only the topics it publishes; anything else is rejected rather than silently never delivered, so a
// tracker that subscribes to, say, the .calls variant finds out at once.
func (s *Server) checkTopicsLocked(topics []string) (accepted []string, rejected []topicEntity) {
	seen := map[string]bool{}
	for _, t := range topics {
		if seen[t] {
			continue
		}
		seen[t] = true
		switch reason, missing := s.checkTopicLocked(t); {
		case reason == "":
			accepted = append(accepted, t)
		default:
			rejected = append(rejected, topicEntity{ID: t, State: "Rejected", RejectionReason: reason, MissingPermissions: missing})
		}
	}
	return accepted, rejected
}

func (s *Server) checkTopicLocked(topic string) (reason string, missing []string) {
	if s.forbidden[topic] {
		return "Missing permissions for topic", []string{"conversation:communication:view"}
	}
	if m := userTopicRE.FindStringSubmatch(topic); m != nil {
		if u := s.userByID[m[1]]; u == nil || u.State == UserDeleted {
			return "User " + m[1] + " does not exist", nil
		}
		return "", nil
	}
	if queueTopicRE.MatchString(topic) {
		return "", nil // the fake keeps no queue registry: any queue id is accepted
	}
	return "Unsupported topic (the fake serves v2.users.{id}.conversations and v2.routing.queues.{id}.conversations)", nil
}
