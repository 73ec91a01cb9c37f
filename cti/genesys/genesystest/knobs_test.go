package genesystest

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestFail429(t *testing.T) {
	h := newHarness(t, Options{})
	h.s.Fail429("/oauth/token", 2, 2500*time.Millisecond)
	for i := range 3 {
		resp, data := h.tokenRequest("grant_type=client_credentials")
		if i == 2 {
			if resp.StatusCode != 200 {
				t.Fatalf("after the faults: %d %s", resp.StatusCode, data)
			}
			break
		}
		if resp.StatusCode != 429 {
			t.Fatalf("request %d: %d, want 429", i, resp.StatusCode)
		}
		// Retry-After is whole seconds, rounded up.
		for header, want := range map[string]string{
			"Retry-After": "3", "inin-ratelimit-reset": "3", "inin-ratelimit-allowed": "300",
		} {
			if got := resp.Header.Get(header); got != want {
				t.Errorf("%s %q, want %q", header, got, want)
			}
		}
		if resp.Header.Get("inin-ratelimit-count") == "" || resp.Header.Get("ININ-Correlation-Id") == "" {
			t.Errorf("headers %v", resp.Header)
		}
		eb := decode[struct {
			Message string `json:"message"`
			Code    string `json:"code"`
			Status  int    `json:"status"`
		}](t, data)
		if eb.Status != 429 || eb.Code != "too.many.requests" || !strings.Contains(eb.Message, "[3]") {
			t.Errorf("ErrorBody %s", data)
		}
	}
	st := h.s.Stats()
	if st.Served429 != 2 || st.Requests["POST /oauth/token"] != 3 || st.TokensIssued != 1 {
		t.Errorf("stats 429 %d requests %v tokens %d", st.Served429, st.Requests, st.TokensIssued)
	}
}

func TestFail5xx(t *testing.T) {
	h := newHarness(t, Options{})
	tok := h.token()
	h.s.Fail5xx("/api/v2/conversations/", 1, 503)
	call := h.s.InboundCall()
	tests := []struct {
		path   string
		status int
	}{
		{"/api/v2/users", 200}, // another prefix is untouched
		{"/api/v2/conversations/" + call.ID(), 503},
		{"/api/v2/conversations/" + call.ID(), 200},
	}
	for _, tt := range tests {
		resp, data := h.do("GET", tt.path, tok, nil)
		if resp.StatusCode != tt.status {
			t.Errorf("%s: %d %s, want %d", tt.path, resp.StatusCode, data, tt.status)
		}
		if tt.status == 503 {
			if eb := decode[struct{ Status int }](t, data); eb.Status != 503 {
				t.Errorf("ErrorBody %s", data)
			}
		}
	}
	if h.s.Stats().Served5xx != 1 {
		t.Errorf("Served5xx %d", h.s.Stats().Served5xx)
	}
	h.s.Fail5xx("/api/v2/users", 5, 500)
	h.s.ClearFaults()
	if resp, _ := h.do("GET", "/api/v2/users", tok, nil); resp.StatusCode != 200 {
		t.Errorf("after ClearFaults: %d", resp.StatusCode)
	}
}

func TestRevokeTokens(t *testing.T) {
	for _, notify := range []bool{true, false} {
		t.Run(fmt.Sprint("notify=", notify), func(t *testing.T) {
			h := newHarness(t, Options{})
			tok, ch, c := h.connected(userTopic(agentA))
			h.s.RevokeTokens(notify)
			if notify {
				m := c.next()
				body := decode[struct {
					ChannelID       string `json:"channelId"`
					SystemTopicType string `json:"systemTopicType"`
					Reason          string `json:"reason"`
				}](t, m.EventBody)
				if m.TopicName != "v2.system.token_revoked."+ch.ID || body.ChannelID != ch.ID ||
					body.SystemTopicType != "token_revoked" || body.Reason != "user_tokens_revoked" {
					t.Errorf("token_revoked %s", m.raw)
				}
			}
			if code := c.closed(); code != 1000 {
				t.Errorf("close code %d", code)
			}
			if resp, _ := h.do("GET", "/api/v2/users", tok, nil); resp.StatusCode != 401 {
				t.Errorf("REST with the revoked token: %d", resp.StatusCode)
			}
			// A new token works, but the old channel went with its token.
			if resp, _ := h.do("HEAD", "/api/v2/notifications/channels/"+ch.ID, h.token(), nil); resp.StatusCode != 404 {
				t.Errorf("HEAD of the old channel: %d", resp.StatusCode)
			}
			if c, err := h.dial(ch.ConnectURI); err == nil || c.status != 401 {
				t.Errorf("upgrade: %v HTTP %d, want 401", err, c.status)
			}
		})
	}
}

func TestExpireTokensNow(t *testing.T) {
	h := newHarness(t, Options{})
	tok, _, c := h.connected(userTopic(agentA))
	h.s.ExpireTokensNow()
	if code := c.closed(); code != 1000 {
		t.Errorf("close code %d", code)
	}
	if resp, _ := h.do("GET", "/api/v2/users", tok, nil); resp.StatusCode != 401 {
		t.Errorf("REST: %d", resp.StatusCode)
	}
	if resp, _ := h.do("GET", "/api/v2/users", h.token(), nil); resp.StatusCode != 200 {
		t.Errorf("REST with a new token: %d", resp.StatusCode)
	}
}

func TestDropSockets(t *testing.T) {
	for _, code := range []int{1006, 1000, 1001} {
		t.Run(fmt.Sprint(code), func(t *testing.T) {
			h := newHarness(t, Options{})
			tok, ch, c := h.connected(userTopic(agentA))
			h.s.DropSockets(code)
			if got := c.closed(); got != code {
				t.Errorf("close code %d, want %d", got, code)
			}
			// research §6.3 item 4: the channel survives; reconnect to the same connectUri.
			if resp, _ := h.do("HEAD", "/api/v2/notifications/channels/"+ch.ID, tok, nil); resp.StatusCode != 200 {
				t.Errorf("HEAD %d", resp.StatusCode)
			}
			c2 := h.mustDial(ch.ConnectURI)
			eventually(t, "reattached", func() bool { return h.s.Stats().LiveSockets[ch.ID] == 1 })
			h.s.InboundCall().Answer(agentA)
			if m := c2.next(); m.TopicName != userTopic(agentA) {
				t.Errorf("after reconnect %s", m.raw)
			}
		})
	}
}

func TestSocketClosing(t *testing.T) {
	// 60 s of grace at TimeScale 0.001 is 60 ms.
	h := newHarness(t, Options{TimeScale: 0.001, TokenLifetime: 1000 * time.Hour, ChannelLifetime: 1000 * time.Hour})
	_, ch, c := h.connected(userTopic(agentA))
	h.s.SendSocketClosing()
	m := c.next()
	body := decode[struct {
		ChannelID      string `json:"channelId"`
		OrganizationID string `json:"organizationId"`
		Message        string `json:"message"`
	}](t, m.EventBody)
	if m.TopicName != "v2.system.socket_closing" || m.Version != "2" || body.ChannelID != ch.ID || body.Message == "" ||
		body.OrganizationID != DefaultOrganizationID {
		t.Errorf("socket_closing %s", m.raw)
	}
	if code := c.closed(); code != 1001 {
		t.Errorf("close code %d, want 1001", code)
	}
	h.mustDial(ch.ConnectURI) // the same channel takes the reconnect (the SDKs' behaviour, research §2.3)
}

func TestSendChannelMetadata(t *testing.T) {
	h := newHarness(t, Options{})
	_, _, c := h.connected()
	h.s.SendChannelMetadata("Close")
	if m := c.next(); string(m.raw) != `{"topicName":"channel.metadata","eventBody":{"message":"Close"}}` {
		t.Errorf("message %s", m.raw)
	}
}

func TestPauseDelivery(t *testing.T) {
	h := newHarness(t, Options{}) // heartbeats every 30 s: none during the test
	_, _, c := h.connected(userTopic(agentA))
	h.s.PauseDelivery(true)
	c.send(map[string]string{"message": "ping"})
	h.s.InboundCall().Answer(agentA) // two snapshots
	eventually(t, "pong and events suppressed", func() bool { return h.s.Stats().Suppressed >= 3 })
	h.s.PauseDelivery(false)
	c.send(map[string]string{"message": "ping"})
	// Nothing that was due while paused arrives late: the next message is the new pong.
	if m := c.next(); string(m.EventBody) != `{"message":"pong"}` {
		t.Errorf("first message after the pause %s", m.raw)
	}
}

func TestStopHeartbeats(t *testing.T) {
	h := newHarness(t, Options{TimeScale: 0.001}) // 30 ms heartbeats
	_, _, c := h.connected()
	h.s.StopHeartbeats(true)
	before := h.s.Stats().Heartbeats
	for range 3 {
		time.Sleep(100 * time.Millisecond) // several heartbeat intervals
		c.send(map[string]string{"message": "ping"})
		if m := c.next(); string(m.EventBody) != `{"message":"pong"}` {
			t.Fatalf("got %s", m.raw)
		}
	}
	// One heartbeat may have been on its way when they stopped.
	if got := h.s.Stats().Heartbeats; got > before+1 {
		t.Errorf("%d heartbeats after stopping", got-before)
	}
	h.s.StopHeartbeats(false)
	eventually(t, "heartbeats again", func() bool { return h.s.Stats().Heartbeats > before+1 })
}

func TestExpireChannel(t *testing.T) {
	h := newHarness(t, Options{})
	tok, ch, c := h.connected(userTopic(agentA))
	if err := h.s.ExpireChannel(ch.ID); err != nil {
		t.Fatal(err)
	}
	if err := h.s.ExpireChannel("streaming-0-nope"); err == nil {
		t.Error("unknown channel accepted")
	}
	if code := c.closed(); code != 1000 {
		t.Errorf("close code %d", code)
	}
	if resp, _ := h.do("HEAD", "/api/v2/notifications/channels/"+ch.ID, tok, nil); resp.StatusCode != 404 {
		t.Errorf("HEAD %d", resp.StatusCode)
	}
	if c, err := h.dial(ch.ConnectURI); err == nil || c.status != 404 {
		t.Errorf("reconnect %v HTTP %d", err, c.status)
	}
}

func TestNoLongerSubscribed(t *testing.T) {
	h := newHarness(t, Options{})
	tok, ch, c := h.connected(userTopic(agentA), userTopic(agentB))
	if err := h.s.NoLongerSubscribed(ch.ID, userTopic(agentA)); err != nil {
		t.Fatal(err)
	}
	m := c.next()
	body := decode[struct {
		SystemTopicType string `json:"systemTopicType"`
		Reason          string `json:"reason"`
		Data            struct {
			Topics []string `json:"topics"`
		} `json:"data"`
	}](t, m.EventBody)
	if m.TopicName != "v2.system.no_longer_subscribed."+ch.ID || body.SystemTopicType != "no_longer_subscribed" ||
		body.Reason != "another_channel_subscribed" || !slices.Equal(body.Data.Topics, []string{userTopic(agentA)}) {
		t.Errorf("no_longer_subscribed %s", m.raw)
	}
	_, data := h.do("GET", "/api/v2/notifications/channels/"+ch.ID+"/subscriptions", tok, nil)
	if list := decode[struct{ Entities []struct{ ID string } }](t, data); len(list.Entities) != 1 || list.Entities[0].ID != userTopic(agentB) {
		t.Errorf("subscriptions %s", data)
	}
	// A's events stop; B's still come.
	h.s.InboundCall().Answer(agentA).BlindTransfer(agentA, agentB)
	for range 2 {
		if m := c.next(); m.TopicName != userTopic(agentB) {
			t.Errorf("event on %s", m.TopicName)
		}
	}
}

func TestDuplicate(t *testing.T) {
	h := newHarness(t, Options{})
	_, _, c := h.connected(userTopic(agentA))
	h.s.Duplicate(1)
	call := h.s.InboundCall()
	call.Answer(agentA)
	var corr []string
	for range 4 {
		corr = append(corr, c.next().Metadata.CorrelationID)
	}
	if corr[0] != corr[1] || corr[2] != corr[3] || corr[0] == corr[2] {
		t.Errorf("correlation ids %v: want each publication twice", corr)
	}
	if st := h.s.Stats(); st.EventsDuplicated != 2 || st.EventsPublished != 2 {
		t.Errorf("stats %+v", st)
	}
}

func TestReorder(t *testing.T) {
	// A quiet flush an hour away: only a full window releases events, so the shuffle is reproducible.
	h := newHarness(t, Options{Seed: 7, ReorderIdle: time.Hour})
	_, _, c := h.connected(userTopic(agentA))
	call := h.s.InboundCall()
	call.Answer(agentA) // two snapshots, before the knob
	c.next()
	c.next()
	h.s.Reorder(4)
	for i := range 4 {
		call.SetAttribute("n", fmt.Sprint(i))
	}
	var got []string
	for range 4 {
		cv := decode[tConversation](t, c.next().EventBody)
		got = append(got, cv.one(t, "customer", "").Attributes["n"])
	}
	sorted := slices.Sorted(slices.Values(got))
	if !slices.Equal(sorted, []string{"0", "1", "2", "3"}) {
		t.Fatalf("events %v: not the four published", got)
	}
	if slices.Equal(got, sorted) {
		t.Errorf("events arrived in order %v despite Reorder(4) (seed 7)", got)
	}
}

func TestDrop(t *testing.T) {
	h := newHarness(t, Options{})
	_, _, c := h.connected(userTopic(agentA))
	h.s.Drop(2)
	call := h.s.InboundCall().Answer(agentA) // two publications, both lost
	call.Hold(agentA)
	cv := decode[tConversation](t, c.next().EventBody)
	if !cv.one(t, "agent", agentA).Calls[0].held() {
		t.Errorf("first delivered event is not the hold")
	}
	if st := h.s.Stats(); st.EventsDropped != 2 {
		t.Errorf("EventsDropped %d", st.EventsDropped)
	}
}

func TestEventDelayHoldsEventsNotControl(t *testing.T) {
	h := newHarness(t, Options{EventDelay: time.Hour})
	_, _, c := h.connected(userTopic(agentA))
	h.s.InboundCall().Answer(agentA)
	c.send(map[string]string{"message": "ping"})
	if m := c.next(); string(m.EventBody) != `{"message":"pong"}` {
		t.Errorf("first message %s: the delayed event overtook the pong", m.raw)
	}
}
