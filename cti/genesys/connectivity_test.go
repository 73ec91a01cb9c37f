package genesys_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/siphook/siphook/cti"
	"github.com/siphook/siphook/cti/genesys"
	"github.com/siphook/siphook/cti/genesys/genesystest"
)

// Connectivity and authentication edge cases (research/genesys-cti.md §6.3, 1–12), plus 26 and 27.

func ourChannels(h *harness) []genesystest.ChannelInfo {
	var out []genesystest.ChannelInfo
	for _, c := range h.Fake.Channels() {
		if c.ClientID == clientID && len(c.Topics) > 0 { // the fake's foreign channels carry no topics
			out = append(out, c)
		}
	}
	return out
}

func (h *harness) socketEnds(reason string) float64 {
	return h.Counter("siphook_cti_genesys_socket_ends_total", map[string]string{"reason": reason})
}

func (h *harness) channelsCreated() float64 {
	return h.Counter("siphook_cti_genesys_channels_created_total", nil)
}

// holdResumeEnd runs the second half of a call and checks that every state arrives once, in order.
func holdResumeEnd(h *harness, c *genesystest.Call) {
	h.t.Helper()
	c.Hold(agentA)
	h.WaitLast(c.ID(), cti.StateHeld)
	c.Resume(agentA).CustomerHangup()
	h.WaitStates(c.ID(), cti.StateActive, cti.StateHeld, cti.StateActive, cti.StateEnded)
	if err := c.Err(); err != nil {
		h.t.Fatal(err)
	}
}

func TestEdge01TokenExpiryMidStream(t *testing.T) {
	// Tokens live 2 s: the channel is replaced (make before break) before its token expires, so no event is
	// lost and none is doubled by the overlap.
	h := newHarness(t, harnessOpts{Fake: genesystest.Options{TokenLifetime: 2 * time.Second}})
	c := h.Fake.InboundCall().Answer(agentA)
	h.WaitLast(c.ID(), cti.StateActive)
	h.WaitFor("two token rollovers", func() bool { return h.Fake.Stats().TokensIssued >= 3 && h.channelsCreated() >= 3 })
	holdResumeEnd(h, c)
	if h.socketEnds("rollover") == 0 {
		t.Error("no rollover counted")
	}
}

func TestEdge02Token429(t *testing.T) {
	t.Run("Retry-After honoured", func(t *testing.T) {
		h := newHarness(t, harnessOpts{NoRun: true})
		h.Fake.Fail429("/oauth/token", 1, 3*time.Second)
		h.Start()
		if h.Fake.Stats().Served429 != 1 {
			t.Fatalf("served 429s = %d", h.Fake.Stats().Served429)
		}
		c := h.Fake.InboundCall().Answer(agentA)
		h.WaitLast(c.ID(), cti.StateActive)
	})
	t.Run("Retry-After beyond 180 s is an error", func(t *testing.T) {
		h := newHarness(t, harnessOpts{NoRun: true})
		h.Fake.Fail429("/oauth/token", 1, 600*time.Second)
		src, err := genesys.New(h.cfg, genesys.WithHTTPClient(h.Fake.Client()), genesys.WithSleep(scaledSleep))
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := src.Run(ctx, func(cti.Event) {}); !errors.Is(err, genesys.ErrRateLimited) {
			t.Fatalf("Run = %v, want ErrRateLimited", err)
		}
	})
}

func TestEdge03InvalidClient(t *testing.T) {
	t.Run("the only tenant stops with a clear error", func(t *testing.T) {
		h := newHarness(t, harnessOpts{NoRun: true, Config: func(c *genesys.Config) { c.ClientSecret = "wrong" }})
		src, err := genesys.New(h.cfg, genesys.WithHTTPClient(h.Fake.Client()), genesys.WithSleep(scaledSleep))
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := src.Run(ctx, func(cti.Event) {}); !errors.Is(err, genesys.ErrBadCredentials) {
			t.Fatalf("Run = %v, want ErrBadCredentials", err)
		}
		if n := h.Fake.Stats().TokensIssued; n != 0 {
			t.Errorf("tokens issued = %d", n)
		}
	})
	t.Run("the other tenants go on", func(t *testing.T) {
		h := newHarness(t, harnessOpts{Config: func(c *genesys.Config) {
			bad := c.Tenant
			bad.Name, bad.ClientSecret = "bad", "wrong"
			c.Tenants = []genesys.Tenant{bad}
		}})
		c := h.Fake.InboundCall().Answer(agentA)
		h.WaitLast(c.ID(), cti.StateActive)
	})
}

func TestEdge04AbruptDrop(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	c := h.Fake.InboundCall().Answer(agentA)
	h.WaitLast(c.ID(), cti.StateActive)
	h.Fake.DropSockets(1006)
	c.Hold(agentA) // published while we are reconnecting: recovered by the reconciliation after the gap
	h.WaitLast(c.ID(), cti.StateHeld)
	h.WaitFor("a reconnect", func() bool { return h.Fake.Stats().Connects >= 2 })
	if h.socketEnds("dropped") == 0 {
		t.Error("drop not counted")
	}
	if n := h.channelsCreated(); n != 1 {
		t.Errorf("channels created = %v: a drop must reconnect to the same channel", n)
	}
	c.Resume(agentA).CustomerHangup()
	h.WaitLast(c.ID(), cti.StateEnded)
}

func TestEdge05HalfOpenSocket(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	c := h.Fake.InboundCall().Answer(agentA)
	h.WaitLast(c.ID(), cti.StateActive)
	h.Fake.PauseDelivery(true) // no events, heartbeats or pongs: the socket is open but dead
	c.Hold(agentA)
	h.WaitFor("the watchdog to give up on the silent socket", func() bool { return h.socketEnds("stale") >= 1 })
	h.Fake.PauseDelivery(false)
	h.WaitLast(c.ID(), cti.StateHeld)
}

func TestEdge06SocketClosing(t *testing.T) {
	h := newHarness(t, harnessOpts{Fake: genesystest.Options{ClosingGrace: 5 * time.Second}})
	c := h.Fake.InboundCall().Answer(agentA)
	h.WaitLast(c.ID(), cti.StateActive)
	h.Fake.SendSocketClosing()
	h.WaitFor("a reconnect after socket_closing", func() bool { return h.socketEnds("socket_closing") >= 1 && h.liveSockets() == 1 })
	holdResumeEnd(h, c) // no duplicated state change despite the overlap
	if n := h.channelsCreated(); n != 1 {
		t.Errorf("channels created = %v: socket_closing reconnects to the same channel", n)
	}
}

func TestEdge07ChannelExpiry(t *testing.T) {
	t.Run("proactive rollover before expires", func(t *testing.T) {
		h := newHarness(t, harnessOpts{Fake: genesystest.Options{ChannelLifetime: 2 * time.Second}})
		c := h.Fake.InboundCall().Answer(agentA)
		h.WaitLast(c.ID(), cti.StateActive)
		h.WaitFor("two rollovers", func() bool { return h.socketEnds("rollover") >= 2 })
		holdResumeEnd(h, c)
		for _, ch := range ourChannels(h) {
			if ch.State == genesystest.ChannelExpired && ch.Connected {
				t.Errorf("channel %s expired while we were on it", ch.ID)
			}
		}
	})
	t.Run("reactive: HEAD 404 after an expiry", func(t *testing.T) {
		h := newHarness(t, harnessOpts{})
		c := h.Fake.InboundCall().Answer(agentA)
		h.WaitLast(c.ID(), cti.StateActive)
		if err := h.Fake.ExpireChannel(ourChannels(h)[0].ID); err != nil {
			t.Fatal(err)
		}
		h.WaitFor("a new channel", func() bool { return h.channelsCreated() == 2 && h.liveSockets() == 1 })
		holdResumeEnd(h, c)
		if n := h.Counter("siphook_cti_genesys_channel_takeovers_total", nil); n != 0 {
			t.Errorf("an expiry was reported as a takeover (%v)", n)
		}
	})
}

func TestEdge08ChannelEviction(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	c := h.Fake.InboundCall().Answer(agentA)
	h.WaitLast(c.ID(), cti.StateActive)
	// The same OAuth client fills its 20 channels elsewhere; our socket drops and our reconnect is slowed
	// down, so the 21st channel evicts our channel, idle meanwhile.
	h.Fake.CreateForeignChannels(clientID, genesystest.MaxChannelsPerClient-1)
	h.Fake.Latency("/api/v2/notifications/channels/", time.Second)
	h.Fake.DropSockets(1006)
	h.WaitFor("the fake to see our socket gone", func() bool { return !ourChannels(h)[0].Connected })
	h.Fake.CreateForeignChannels(clientID, 1)
	h.WaitFor("our channel evicted and replaced", func() bool {
		return h.Fake.Stats().ChannelsEvicted >= 1 && h.channelsCreated() >= 2 && h.liveSockets() >= 1
	})
	h.Fake.ClearFaults()
	holdResumeEnd(h, c)
}

func TestEdge09SecondSocketOnOurChannel(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	ch := ourChannels(h)[0]
	intruder, _, err := websocket.DefaultDialer.Dial(ch.ConnectURI, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer intruder.Close()
	h.WaitFor("the takeover detected", func() bool { return h.Counter("siphook_cti_genesys_channel_takeovers_total", nil) == 1 })
	h.WaitFor("a new channel of our own", func() bool { return h.channelsCreated() == 2 })
	c := h.Fake.InboundCall().Answer(agentA)
	h.WaitLast(c.ID(), cti.StateActive)
	holdResumeEnd(h, c)
	if n := h.Fake.Stats().SocketsKicked; n != 1 {
		t.Errorf("sockets kicked = %d: we must not take the channel back and flap", n)
	}
}

func TestEdge10TopicLimits(t *testing.T) {
	const extra = 1001
	var ids []string
	h := newHarness(t, harnessOpts{NoRun: true, Config: func(c *genesys.Config) {
		c.Users = append(c.Users, agentE)
	}})
	for i := range extra {
		id := fmt.Sprintf("b0000000-0000-4000-8000-%012d", i)
		h.Fake.AddUser(genesystest.User{ID: id, Name: fmt.Sprintf("Bulk %d", i)})
		ids = append(ids, id)
	}
	h.cfg.Users = append(h.cfg.Users, ids...)
	h.Fake.ForbidTopic("v2.users." + agentE + ".conversations")
	h.Start()
	h.WaitFor("two channels", func() bool { return len(ourChannels(h)) == 2 && h.liveSockets() == 2 })
	total := 0
	for _, ch := range ourChannels(h) {
		if len(ch.Topics) > genesystest.MaxTopicsPerChannel {
			t.Errorf("channel %s has %d topics", ch.ID, len(ch.Topics))
		}
		total += len(ch.Topics)
	}
	if want := 4 + extra; total != want { // E's topic is refused
		t.Errorf("%d topics subscribed, want %d", total, want)
	}
	if n := h.Counter("siphook_cti_genesys_topics_rejected_total", nil); n != 1 {
		t.Errorf("rejected topics counted %v, want 1", n)
	}
	c := h.Fake.InboundCall().Answer(agentA)
	h.WaitLast(c.ID(), cti.StateActive)
}

func TestEdge11NoLongerSubscribed(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	ch := ourChannels(h)[0]
	topic := "v2.users." + agentA + ".conversations"
	if err := h.Fake.NoLongerSubscribed(ch.ID, topic); err != nil {
		t.Fatal(err)
	}
	h.WaitFor("resubscribed", func() bool {
		return h.socketEnds("no_longer_subscribed") >= 1 && slices.Contains(ourChannels(h)[0].Topics, topic)
	})
	c := h.Fake.InboundCall().Answer(agentA)
	h.WaitLast(c.ID(), cti.StateActive)
}

func TestEdge12RESTFaultsDuringReconciliation(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	c := h.Fake.InboundCall().Answer(agentA)
	h.WaitLast(c.ID(), cti.StateActive)
	h.Fake.Fail5xx("/api/v2/conversations/", 2, 503)
	h.Fake.Fail429("/api/v2/analytics/", 1, time.Second)
	h.Fake.DropSockets(1006)
	c.Hold(agentA)
	h.WaitLast(c.ID(), cti.StateHeld)
	if n := h.Counter("siphook_cti_genesys_api_retries_total", nil); n == 0 {
		t.Error("no retry counted")
	}
	c.Resume(agentA).CustomerHangup()
	h.WaitLast(c.ID(), cti.StateEnded)
}

func TestEdge26LookupOfAnUnseenConversation(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	h.Fake.PauseDelivery(true) // the answer's snapshot never arrives: an AudioHook open names the conversation first
	c := h.Fake.InboundCall().Answer(agentA)
	state, ok, err := h.Src.Lookup(ctx, c.ID())
	h.Fake.PauseDelivery(false)
	if err != nil || !ok || state != cti.StateActive {
		t.Fatalf("Lookup = %v %v %v, want ACTIVE", state, ok, err)
	}
	if ev := h.Last(c.ID()); ev.State != cti.StateActive || !ev.Reconciled {
		t.Errorf("the lookup's event = %+v, want a reconciled ACTIVE", ev)
	}
	c.CustomerHangup()
	h.WaitLast(c.ID(), cti.StateEnded)
	if state, ok, _ := h.Src.Lookup(ctx, c.ID()); !ok || state != cti.StateEnded {
		t.Errorf("Lookup after the end = %v %v, want ENDED", state, ok)
	}
	if _, ok, err := h.Src.Lookup(ctx, "00000000-1111-4222-8333-444444444444"); ok || err != nil {
		t.Errorf("Lookup of an unknown conversation = %v %v", ok, err)
	}
}

func TestEdge27RestartMidCall(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	c := h.Fake.InboundCall().Answer(agentA).Hold(agentA)
	h.WaitStates(c.ID(), cti.StateActive, cti.StateHeld)
	h.StopTracker()
	h.mu.Lock()
	h.events = nil
	h.mu.Unlock()
	h.Start() // a new process: it knows nothing; startup reconciliation finds the call, held
	h.WaitLast(c.ID(), cti.StateHeld)
	if ev := h.Last(c.ID()); !ev.Reconciled || len(ev.Agents) != 1 || ev.Agents[0].UserID != agentA {
		t.Errorf("after restart = %+v, want a reconciled HELD with agent A", ev)
	}
	c.Resume(agentA)
	h.WaitLast(c.ID(), cti.StateActive)
}

// TestTrackedAgentsRefresh: agents tracked by group membership are resolved again on the refresh timer; a
// new member's calls are followed without a restart.
func TestTrackedAgentsRefresh(t *testing.T) {
	const group = "6e0b2f1c-0000-4000-8000-0000000000a1"
	const newcomer = "a1b2c3d4-0000-4000-8000-000000000010"
	h := newHarness(t, harnessOpts{NoRun: true, Config: func(c *genesys.Config) {
		c.Users, c.Groups = nil, []string{group}
		c.UserRefresh = 200 * time.Millisecond
	}})
	h.Fake.AddUser(genesystest.User{ID: "a1b2c3d4-0000-4000-8000-000000000011", Name: "Member", Groups: []string{group}})
	h.Start()
	h.Fake.AddUser(genesystest.User{ID: newcomer, Name: "Newcomer", Email: "new@example.com", Groups: []string{group}})
	h.WaitFor("the newcomer subscribed", func() bool {
		for _, ch := range ourChannels(h) {
			if ch.Connected && slices.Contains(ch.Topics, "v2.users."+newcomer+".conversations") {
				return true
			}
		}
		return false
	})
	c := h.Fake.InboundCall().Answer(newcomer)
	h.WaitLast(c.ID(), cti.StateActive)
}
