package genesystest

import (
	"encoding/json"
	"math/rand/v2"
	"net/http"
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

// abortCode marks a socket cut without a close frame (what a client sees as 1006).
const abortCode = websocket.CloseAbnormalClosure

// Close codes the fake uses. The real service's codes are not documented; these are the plain ones.
const (
	closeNormal    = websocket.CloseNormalClosure // expiry, eviction, kick, token end
	closeGoingAway = websocket.CloseGoingAway     // after socket_closing
)

// socket is one notification WebSocket on a channel. The reader goroutine answers pings and subscribe
// requests; the writer goroutine is the only one that writes data frames, and owns heartbeats, event
// delays, the Reorder window and the channel/token/grace deadline.
type socket struct {
	s     *Server
	ch    *channel
	conn  *websocket.Conn
	out   chan outMsg
	pokeC chan struct{}
	done  chan struct{}
	once  sync.Once
	// closeCode and closeText are set once, before done is closed.
	closeCode int
	closeText string

	rng     *rand.Rand // guarded by s.mu: Duplicate, Reorder and jitter for this socket
	closeAt time.Time  // guarded by s.mu: end of the socket_closing grace
}

type msgKind int

const (
	kindEvent msgKind = iota
	kindHeartbeat
	kindPong
	kindSystem // system topics, channel.metadata messages, replies to subscribe
)

type outMsg struct {
	data      []byte
	kind      msgKind
	due       time.Time // events: not before
	closeCode int       // non-zero: close the socket gracefully once the messages sent before it are written
	closeText string
}

// handleStream is GET /channels/{id}: the notification WebSocket. The connectUri is a capability URL, so
// there is no Authorization header; the channel's own token must still be valid (research §2.4 step 5:
// "a 401/403 on the upgrade").
func (s *Server) handleStream(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	hdr := http.Header{}
	hdr.Set("ININ-Correlation-Id", w.Header().Get("ININ-Correlation-Id"))
	now := time.Now()
	s.mu.Lock()
	ch := s.channels[id]
	status := http.StatusOK
	switch {
	case ch == nil || ch.gone != "" || !now.Before(ch.expires):
		status = http.StatusNotFound
	case !ch.tok.valid(now):
		status = http.StatusUnauthorized
	}
	inBand := s.opts.InBandReject
	s.mu.Unlock()

	if status == http.StatusUnauthorized || (status == http.StatusNotFound && !inBand) {
		writeError(w, status, map[int]string{401: "bad.credentials", 404: "not.found"}[status],
			"channel "+id+" is not available")
		return
	}
	conn, err := s.upgrader.Upgrade(w, r, hdr)
	if err != nil {
		return // the upgrader has answered
	}
	conn.SetReadLimit(readLimit)
	if status == http.StatusNotFound {
		// The in-band refusal seen by the koodaamo client (research §2.3).
		_ = conn.SetWriteDeadline(time.Now().Add(writeTimeout))
		_ = conn.WriteMessage(websocket.TextMessage, mustJSON(map[string]string{
			"result": "404", "message": "channel " + id + " not found, expired or replaced",
		}))
		_ = conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(closeNormal, "channel not found"),
			time.Now().Add(writeTimeout))
		_ = conn.Close()
		return
	}

	s.mu.Lock()
	// The channel may have gone, or the server closed, while the upgrade ran.
	if s.closed || ch.stateLocked(time.Now()) != ChannelActive {
		s.mu.Unlock()
		_ = conn.Close()
		return
	}
	s.socketSeq++
	k := &socket{
		s: s, ch: ch, conn: conn,
		out:   make(chan outMsg, outQueue),
		pokeC: make(chan struct{}, 1),
		done:  make(chan struct{}),
		rng:   rand.New(rand.NewPCG(s.opts.Seed, s.socketSeq)),
	}
	// research §2.2: "If you connect a second WebSocket with the same channel ID, the first disconnects."
	if old := ch.sock; old != nil {
		s.stats.SocketsKicked++
		old.closeGraceful(closeNormal, "another connection to this channel")
	}
	ch.sock = k
	s.sockets[k] = struct{}{}
	s.touchLocked(ch)
	s.stats.Connects++
	s.wg.Add(2)
	s.mu.Unlock()

	conn.SetPingHandler(k.answerPingFrame)
	go k.readLoop()
	go k.writeLoop()
}

// closeGraceful asks the writer to send a close frame and end the socket. It never blocks.
func (k *socket) closeGraceful(code int, text string) {
	k.once.Do(func() {
		k.closeCode, k.closeText = code, text
		close(k.done)
	})
}

// abort cuts the TCP connection without a close frame (the client sees 1006).
func (k *socket) abort() {
	k.once.Do(func() {
		k.closeCode = abortCode
		close(k.done)
	})
	_ = k.conn.NetConn().Close()
}

// poke makes the writer recompute its deadline.
func (k *socket) poke() {
	select {
	case k.pokeC <- struct{}{}:
	default:
	}
}

// send queues a message without blocking; a client too slow to take outQueue messages is cut off.
func (k *socket) send(m outMsg) {
	select {
	case k.out <- m:
	default:
		k.s.mu.Lock()
		k.s.stats.SlowConsumers++
		k.s.mu.Unlock()
		k.abort()
	}
}

// sendLocked is send for callers that hold s.mu.
func (k *socket) sendLocked(m outMsg) {
	select {
	case k.out <- m:
	default:
		k.s.stats.SlowConsumers++
		k.abort()
	}
}

// answerPingFrame answers RFC 6455 pings, except when delivery is paused (a half-open socket answers
// nothing).
func (k *socket) answerPingFrame(data string) error {
	k.s.mu.Lock()
	paused := k.s.knobs.paused
	k.s.mu.Unlock()
	if !paused {
		_ = k.conn.WriteControl(websocket.PongMessage, []byte(data), time.Now().Add(writeTimeout))
	}
	return nil
}

func (k *socket) readLoop() {
	s := k.s
	defer func() {
		k.once.Do(func() {
			k.closeCode = abortCode
			close(k.done)
		})
		_ = k.conn.Close()
		s.detach(k)
		s.wg.Done()
	}()
	for {
		_, data, err := k.conn.ReadMessage()
		if err != nil {
			return
		}
		var m struct {
			Message       string   `json:"message"`
			Topics        []string `json:"topics"`
			CorrelationID string   `json:"correlationId"`
		}
		if err := json.Unmarshal(data, &m); err != nil {
			k.send(outMsg{kind: kindSystem, data: mustJSON(map[string]string{
				"result": "400", "status": "error", "message": "invalid JSON: " + err.Error(),
			})})
			continue
		}
		switch m.Message {
		case "ping":
			k.send(outMsg{kind: kindPong, data: channelMetadata("pong")})
		case "subscribe":
			k.send(outMsg{kind: kindSystem, data: s.wsSubscribe(k, m.Topics, m.CorrelationID)})
		default:
			k.send(outMsg{kind: kindSystem, data: mustJSON(map[string]string{
				"result": "400", "status": "error", "message": "unknown message " + m.Message, "correlationId": m.CorrelationID,
			})})
		}
	}
}

// wsSubscribe handles {"message":"subscribe","topics":[...],"correlationId":...}: it adds the topics, as
// the koodaamo client uses it, and answers in the shapes that client matches (research §2.3).
func (s *Server) wsSubscribe(k *socket, topics []string, corr string) []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	ch := k.ch
	if ch.sock != k || ch.stateLocked(time.Now()) != ChannelActive {
		return mustJSON(map[string]string{"result": "404", "message": "channel not found", "correlationId": corr})
	}
	accepted, rejected := s.checkTopicsLocked(topics)
	if len(rejected) > 0 {
		return mustJSON(map[string]string{
			"result": "400", "status": "failure", "correlationId": corr,
			"message": "Invalid topic " + rejected[0].ID + ": " + rejected[0].RejectionReason,
		})
	}
	next := mergeTopics(ch.topics, accepted)
	if len(next) > MaxTopicsPerChannel {
		return mustJSON(map[string]string{
			"result": "400", "status": "failure", "correlationId": corr,
			"message": "subscription exceeds the limit of 1000 topics per channel",
		})
	}
	s.setTopicsLocked(ch, next)
	ch.expires = time.Now().Add(s.scale(s.opts.ChannelLifetime))
	k.poke()
	return mustJSON(map[string]any{"result": "200", "status": "subscribed", "correlationId": corr, "topics": accepted})
}

func (s *Server) detach(k *socket) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if k.ch.sock == k {
		k.ch.sock = nil
	}
	delete(s.sockets, k)
}

// deadlineLocked is when the writer must close the socket, with the code and reason: the channel's end,
// its token's end (research §6.3 item 1: "The fake closes the socket when its token expires"), or the end
// of a socket_closing grace. Revocation, eviction and ExpireChannel close sockets themselves, in order
// with the messages they send first.
func (s *Server) deadlineLocked(k *socket) (at time.Time, code int, text string) {
	ch := k.ch
	at, code, text = ch.expires, closeNormal, "channel expired"
	if ch.tok.expires.Before(at) {
		at, text = ch.tok.expires, "token expired"
	}
	if !k.closeAt.IsZero() && k.closeAt.Before(at) {
		at, code, text = k.closeAt, closeGoingAway, "socket closing"
	}
	return at, code, text
}

func (k *socket) writeLoop() {
	s := k.s
	defer s.wg.Done()
	heartbeat := time.NewTicker(s.tick(s.opts.HeartbeatInterval))
	defer heartbeat.Stop()
	deadline := time.NewTimer(time.Hour)
	defer deadline.Stop()
	due := time.NewTimer(time.Hour)
	defer due.Stop()
	flush := time.NewTimer(time.Hour)
	flush.Stop()
	defer flush.Stop()

	// arm closes the socket if its deadline has passed, else sets the timer to it (deadlines move when
	// a subscription extends the channel or a knob changes; the timer firing early just re-arms).
	arm := func() {
		s.mu.Lock()
		at, code, text := s.deadlineLocked(k)
		s.mu.Unlock()
		if wait := time.Until(at); wait > 0 {
			deadline.Reset(wait)
			return
		}
		k.closeGraceful(code, text)
	}
	arm()

	var queue []outMsg  // events waiting for their due time
	var held []outMsg   // events held back by the Reorder window
	release := func() { // shuffle the held events into the queue
		s.mu.Lock()
		k.rng.Shuffle(len(held), func(i, j int) { held[i], held[j] = held[j], held[i] })
		s.mu.Unlock()
		queue = append(queue, held...)
		held = nil
	}
	for {
		var dueC <-chan time.Time
		if len(queue) > 0 {
			if wait := time.Until(queue[0].due); wait > 0 {
				due.Reset(wait)
				dueC = due.C
			} else {
				if !k.write(queue[0]) {
					return
				}
				queue = queue[1:]
				continue
			}
		}
		select {
		case <-k.done:
			k.finish()
			return
		case m := <-k.out:
			switch {
			case m.closeCode != 0:
				k.closeGraceful(m.closeCode, m.closeText)
			case m.kind != kindEvent:
				if !k.write(m) {
					return
				}
			default:
				s.mu.Lock()
				window := s.knobs.reorder
				s.mu.Unlock()
				if window <= 1 && len(held) == 0 {
					queue = append(queue, m)
					break
				}
				held = append(held, m)
				if len(held) >= window {
					flush.Stop()
					release()
				} else {
					flush.Reset(s.opts.ReorderIdle)
				}
			}
		case <-flush.C:
			release()
		case <-dueC:
		case <-heartbeat.C:
			s.mu.Lock()
			skip := s.knobs.noHeartbeats
			s.mu.Unlock()
			if !skip && !k.write(outMsg{kind: kindHeartbeat, data: channelMetadata("WebSocket Heartbeat")}) {
				return
			}
		case <-k.pokeC:
			arm()
		case <-deadline.C:
			arm() // closes if the deadline has really passed, re-arms if it moved
		}
	}
}

// finish sends the close frame chosen by closeGraceful and gives the client closeLinger to answer; the
// reader then sees the answer (or the deadline) and closes the connection.
func (k *socket) finish() {
	if k.closeCode == abortCode {
		_ = k.conn.NetConn().Close()
		return
	}
	_ = k.conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(k.closeCode, k.closeText),
		time.Now().Add(writeTimeout))
	_ = k.conn.SetReadDeadline(time.Now().Add(closeLinger))
}

// write sends one message unless delivery is paused (then it is lost, as on a half-open connection).
func (k *socket) write(m outMsg) bool {
	s := k.s
	s.mu.Lock()
	paused := s.knobs.paused
	if paused {
		s.stats.Suppressed++
	} else {
		switch m.kind {
		case kindEvent:
			s.stats.EventsDelivered++
		case kindHeartbeat:
			s.stats.Heartbeats++
		case kindPong:
			s.stats.Pongs++
		}
	}
	s.mu.Unlock()
	if paused {
		return true
	}
	_ = k.conn.SetWriteDeadline(time.Now().Add(writeTimeout))
	if err := k.conn.WriteMessage(websocket.TextMessage, m.data); err != nil {
		k.abort()
		return false
	}
	return true
}

// envelope is the notification message (research §2.3): note metadata.CorrelationId's capitals.
type envelope struct {
	TopicName string        `json:"topicName"`
	Version   string        `json:"version,omitempty"`
	EventBody any           `json:"eventBody"`
	Metadata  *envelopeMeta `json:"metadata,omitempty"`
}

type envelopeMeta struct {
	CorrelationID string `json:"CorrelationId"`
}

// channelMetadata is a heartbeat, a pong or another channel.metadata message; these carry no version
// or metadata (research §2.3, verbatim shapes).
func channelMetadata(message string) []byte {
	return mustJSON(envelope{TopicName: "channel.metadata", EventBody: map[string]string{"message": message}})
}

// systemBody is SystemMessageSystemMessage (research §2.3).
type systemBody struct {
	ChannelID       string         `json:"channelId"`
	SystemTopicType string         `json:"systemTopicType,omitempty"`
	CorrelationID   string         `json:"correlationId"`
	OrganizationID  string         `json:"organizationId"`
	OauthClientID   string         `json:"oauthClientId"`
	Reason          string         `json:"reason,omitempty"`
	Message         string         `json:"message"`
	Data            map[string]any `json:"data,omitempty"`
}

func (s *Server) systemMessageLocked(ch *channel, topic string, body systemBody) []byte {
	corr := s.newIDLocked()
	body.ChannelID, body.CorrelationID = ch.id, corr
	body.OrganizationID, body.OauthClientID = s.opts.OrganizationID, ch.clientID
	return mustJSON(envelope{TopicName: topic, Version: "2", EventBody: body, Metadata: &envelopeMeta{CorrelationID: corr}})
}

// subscribersLocked lists the live sockets whose channel subscribes to topic, in channel creation order.
func (s *Server) subscribersLocked(topic string) []*socket {
	var out []*socket
	now := time.Now()
	for _, ch := range s.chanList {
		if ch.sock != nil && ch.topicSet[topic] && ch.stateLocked(now) == ChannelActive {
			out = append(out, ch.sock)
		}
	}
	return out
}

// deliverLocked sends one publication to every subscriber, applying Drop, EventDelay, EventJitter and
// Duplicate. The same bytes (and so the same CorrelationId) go to every channel, as in an overlap.
func (s *Server) deliverLocked(topic string, body json.RawMessage) {
	subs := s.subscribersLocked(topic)
	if len(subs) == 0 {
		return
	}
	if s.knobs.dropNext > 0 {
		s.knobs.dropNext--
		s.stats.EventsDropped++
		return
	}
	data := mustJSON(envelope{TopicName: topic, Version: "2", EventBody: body,
		Metadata: &envelopeMeta{CorrelationID: s.newIDLocked()}})
	s.stats.EventsPublished++
	for _, k := range subs {
		d := s.scale(s.opts.EventDelay)
		if j := s.scale(s.opts.EventJitter); j > 0 {
			d += time.Duration(k.rng.Int64N(int64(j)))
		}
		m := outMsg{kind: kindEvent, data: data, due: time.Now().Add(d)}
		k.sendLocked(m)
		if s.knobs.duplicate > 0 && k.rng.Float64() < s.knobs.duplicate {
			s.stats.EventsDuplicated++
			k.sendLocked(m)
		}
	}
}

// liveSocketsLocked lists the sockets currently attached to channels.
func (s *Server) liveSocketsLocked() []*socket {
	var out []*socket
	for _, ch := range s.chanList {
		if ch.sock != nil {
			out = append(out, ch.sock)
		}
	}
	return out
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil { // only our own types are marshalled
		panic(err)
	}
	return b
}
