package genesystest

import (
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
)

// connected makes a token, a channel subscribed to topics and a socket on it.
func (h *harness) connected(topics ...string) (tok string, ch channelJSON, c *wsClient) {
	h.t.Helper()
	tok = h.token()
	ch = h.channel(tok)
	if len(topics) > 0 {
		h.subscribe(tok, ch.ID, topics...)
	}
	c = h.mustDial(ch.ConnectURI)
	eventually(h.t, "socket attached", func() bool { return h.s.Stats().LiveSockets[ch.ID] == 1 })
	return tok, ch, c
}

func TestHeartbeatAndPing(t *testing.T) {
	// 30 s heartbeats at TimeScale 0.001 come every 30 ms.
	h := newHarness(t, Options{TimeScale: 0.001})
	_, _, c := h.connected()
	var hb wsMsg
	select {
	case hb = <-c.msgs:
	case <-time.After(wait):
		t.Fatal("no heartbeat")
	}
	if string(hb.raw) != `{"topicName":"channel.metadata","eventBody":{"message":"WebSocket Heartbeat"}}` {
		t.Errorf("heartbeat %s", hb.raw)
	}
	c.send(map[string]string{"message": "ping"})
	if m := c.next(); string(m.raw) != `{"topicName":"channel.metadata","eventBody":{"message":"pong"}}` {
		t.Errorf("pong %s", m.raw)
	}
}

func TestUpgradeRefused(t *testing.T) {
	expire := func(h *harness, ch channelJSON) string { _ = h.s.ExpireChannel(ch.ID); return ch.ConnectURI }
	tests := []struct {
		name   string
		opts   Options
		spoil  func(h *harness, ch channelJSON) string // returns the URI to dial
		status int                                     // HTTP status of a refused upgrade
		inBand string                                  // or: accepted, then this result
	}{
		{"unknown channel", Options{}, func(h *harness, ch channelJSON) string {
			return strings.Replace(ch.ConnectURI, ch.ID, "streaming-0-unknown", 1)
		}, 404, ""},
		{"expired channel", Options{}, expire, 404, ""},
		{"revoked token", Options{}, func(h *harness, ch channelJSON) string { h.s.RevokeTokens(false); return ch.ConnectURI }, 401, ""},
		{"expired token", Options{}, func(h *harness, ch channelJSON) string { h.s.ExpireTokensNow(); return ch.ConnectURI }, 401, ""},
		{"expired channel in band", Options{InBandReject: true}, expire, 0, "404"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, tt.opts)
			c, err := h.dial(tt.spoil(h, h.channel(h.token())))
			if tt.inBand == "" {
				if err == nil || c.status != tt.status {
					t.Fatalf("dial: %v, HTTP %d, want %d", err, c.status, tt.status)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if m := c.next(); m.Result != tt.inBand || m.Message == "" {
				t.Errorf("in-band refusal %s", m.raw)
			}
			if code := c.closed(); code != 1000 {
				t.Errorf("close code %d", code)
			}
		})
	}
}

func TestSecondConnectionKicksFirst(t *testing.T) {
	h := newHarness(t, Options{})
	_, ch, first := h.connected(userTopic(agentA))
	second := h.mustDial(ch.ConnectURI)
	if code := first.closed(); code != 1000 {
		t.Errorf("first socket close code %d", code)
	}
	eventually(t, "second socket attached", func() bool { return h.s.Stats().Connects == 2 })
	if st := h.s.Stats(); st.SocketsKicked != 1 || st.LiveSockets[ch.ID] != 1 {
		t.Errorf("stats kicked %d live %v", st.SocketsKicked, st.LiveSockets)
	}
	call := h.s.InboundCall()
	call.Answer(agentA)
	if m := second.next(); m.TopicName != userTopic(agentA) {
		t.Errorf("second socket got %s", m.raw)
	}
}

func TestEventEnvelope(t *testing.T) {
	h := newHarness(t, Options{})
	_, _, c := h.connected(userTopic(agentA))
	call := h.s.InboundCall(UUI("FA080019001038F725B3"), Queue(queue1))
	call.Answer(agentA) // offer, then connect: two snapshots on agent A's topic
	for _, want := range []string{"alerting", "connected"} {
		m := c.next()
		if m.TopicName != userTopic(agentA) || m.Version != "2" {
			t.Fatalf("envelope %s", m.raw)
		}
		if _, err := uuid.Parse(m.Metadata.CorrelationID); err != nil {
			t.Errorf("metadata.CorrelationId %q: %v", m.Metadata.CorrelationID, err)
		}
		// the capitalised key is on the wire, not a tolerant decoder's guess
		if !strings.Contains(string(m.raw), `"metadata":{"CorrelationId":"`) {
			t.Errorf("metadata shape %s", m.raw)
		}
		cv := decode[tConversation](t, m.EventBody)
		if cv.ID != call.ID() {
			t.Errorf("eventBody.id %q, want %q", cv.ID, call.ID())
		}
		if got := cv.last(t, "agent", agentA).Calls[0].State; got != want {
			t.Errorf("agent state %q, want %q", got, want)
		}
		if cv.one(t, "customer", "").Calls[0].UUIData != "FA080019001038F725B3" {
			t.Errorf("uuiData missing: %s", m.EventBody)
		}
	}
}

func TestQueueTopicSeesCallBeforeAgent(t *testing.T) {
	h := newHarness(t, Options{})
	_, _, c := h.connected("v2.routing.queues." + queue1 + ".conversations")
	call := h.s.InboundCall(Queue(queue1))
	m := c.next()
	cv := decode[tConversation](t, m.EventBody)
	if m.TopicName != "v2.routing.queues."+queue1+".conversations" || cv.ID != call.ID() ||
		cv.one(t, "acd", "").QueueID != queue1 {
		t.Errorf("queue event %s", m.raw)
	}
}

func TestEveryUserEverInTheConversationGetsIt(t *testing.T) {
	h := newHarness(t, Options{})
	_, _, c := h.connected(userTopic(agentA))
	call := h.s.InboundCall(Queue(queue1))
	call.Answer(agentA).BlindTransfer(agentA, agentB).Hold(agentB)
	// A's topic keeps receiving the conversation after A left: offer, answer, transfer (B alerting),
	// B connected, B held.
	var last tConversation
	for range 5 {
		last = decode[tConversation](t, c.next().EventBody)
	}
	if !last.one(t, "agent", agentB).Calls[0].held() {
		t.Errorf("last snapshot on A's topic does not show B held")
	}
}

func TestWebSocketSubscribe(t *testing.T) {
	h := newHarness(t, Options{})
	_, ch, c := h.connected()
	tests := []struct {
		topics []string
		result string
	}{
		{[]string{userTopic(agentA)}, "200"},
		{[]string{userTopic("00000000-0000-0000-0000-000000000000")}, "400"},
	}
	for _, tt := range tests {
		c.send(map[string]any{"message": "subscribe", "topics": tt.topics, "correlationId": "corr-1"})
		m := c.next()
		if m.Result != tt.result || !strings.Contains(string(m.raw), `"correlationId":"corr-1"`) {
			t.Errorf("subscribe %v: %s", tt.topics, m.raw)
		}
	}
	if got := h.s.Channels()[0].Topics; len(got) != 1 || got[0] != userTopic(agentA) {
		t.Errorf("topics %v on %s", got, ch.ID)
	}
	h.s.InboundCall().Answer(agentA)
	if m := c.next(); m.TopicName != userTopic(agentA) {
		t.Errorf("event %s", m.raw)
	}
}

func TestTokenExpiryClosesSocket(t *testing.T) {
	// research §6.3 item 1: the token ends before the channel, and the socket goes with it.
	h := newHarness(t, Options{TimeScale: 0.001, TokenLifetime: 300 * time.Second})
	_, ch, c := h.connected(userTopic(agentA))
	if code := c.closed(); code != 1000 {
		t.Errorf("close code %d", code)
	}
	if c, err := h.dial(ch.ConnectURI); err == nil || c.status != 401 {
		t.Errorf("reconnect: %v, HTTP %d, want 401", err, c.status)
	}
}

func TestTLS(t *testing.T) {
	h := newHarness(t, Options{TLS: true, TimeScale: 0.001})
	_, ch, c := h.connected()
	if !strings.HasPrefix(ch.ConnectURI, "wss://") {
		t.Errorf("connectUri %s", ch.ConnectURI)
	}
	select {
	case m := <-c.msgs:
		if !m.heartbeat() {
			t.Errorf("first message %s", m.raw)
		}
	case <-time.After(wait):
		t.Fatal("no heartbeat over wss")
	}
}

func TestNoGoroutineLeakAfterClose(t *testing.T) {
	checkGoroutines(t)
	s := NewServer(Options{TimeScale: 0.001})
	s.AddClient(testClient, testSecret)
	s.AddUser(User{ID: agentA, Name: "A"})
	h := &harness{t: t, s: s, hc: s.Client()}
	_, _, c := h.connected(userTopic(agentA))
	s.SendSocketClosing()
	s.Latency("/api/v2/users", time.Hour) // a request stuck in injected latency must not hold Close up
	go func() { _, _ = h.hc.Get(s.APIBase() + "/api/v2/users") }()
	eventually(t, "stuck request", func() bool { return s.Stats().Requests["GET /api/v2/users"] == 1 })
	s.InboundCall().Answer(agentA)
	_ = c.next()
	s.Close()
	c.closed()
	h.hc.CloseIdleConnections()
	s.Close() // idempotent
}
