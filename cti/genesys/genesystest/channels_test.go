package genesystest

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

func TestCreateChannel(t *testing.T) {
	h := newHarness(t, Options{})
	tok := h.token()
	before := time.Now()
	ch := h.channel(tok)
	if !strings.HasPrefix(ch.ID, "streaming-0-") || ch.ConnectURI != "ws"+strings.TrimPrefix(h.s.APIBase(), "http")+"/channels/"+ch.ID {
		t.Errorf("channel %+v", ch)
	}
	exp, err := time.Parse(time.RFC3339, ch.Expires)
	if err != nil || !exp.After(before.Add(23*time.Hour)) {
		t.Errorf("expires %q: %v", ch.Expires, err)
	}

	tests := []struct {
		name, method, path string
		status             int
	}{
		{"HEAD known", "HEAD", "/api/v2/notifications/channels/" + ch.ID, 200},
		{"HEAD unknown", "HEAD", "/api/v2/notifications/channels/streaming-0-nope", 404},
		{"GET list", "GET", "/api/v2/notifications/channels", 200},
		{"GET list bad include", "GET", "/api/v2/notifications/channels?includechannels=all", 400},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if resp, data := h.do(tt.method, tt.path, tok, nil); resp.StatusCode != tt.status {
				t.Errorf("%d %s, want %d", resp.StatusCode, data, tt.status)
			}
		})
	}
}

func TestListChannelsByTokenOrClient(t *testing.T) {
	h := newHarness(t, Options{})
	tok1, tok2 := h.token(), h.token()
	c1, c2 := h.channel(tok1), h.channel(tok2)
	tests := []struct {
		tok, query string
		want       []string
	}{
		{tok1, "", []string{c1.ID}},
		{tok1, "?includechannels=token", []string{c1.ID}},
		{tok1, "?includechannels=oauthclient", []string{c1.ID, c2.ID}},
		{tok2, "", []string{c2.ID}},
	}
	for _, tt := range tests {
		resp, data := h.do("GET", "/api/v2/notifications/channels"+tt.query, tt.tok, nil)
		list := decode[struct{ Entities []channelJSON }](t, data)
		var ids []string
		for _, e := range list.Entities {
			ids = append(ids, e.ID)
		}
		if resp.StatusCode != 200 || fmt.Sprint(ids) != fmt.Sprint(tt.want) {
			t.Errorf("list%s: %d %v, want %v", tt.query, resp.StatusCode, ids, tt.want)
		}
	}
}

func TestChannelCapEvictsOldestIdle(t *testing.T) {
	h := newHarness(t, Options{})
	tok := h.token()
	var chans []channelJSON
	for range MaxChannelsPerClient {
		chans = append(chans, h.channel(tok))
	}
	// The oldest channel has a connection, so the second oldest is the oldest idle one.
	h.mustDial(chans[0].ConnectURI)
	eventually(t, "socket attached", func() bool { return h.s.Stats().LiveSockets[chans[0].ID] == 1 })
	h.channel(tok)
	head := func(id string) int {
		resp, _ := h.do("HEAD", "/api/v2/notifications/channels/"+id, tok, nil)
		return resp.StatusCode
	}
	if got := head(chans[1].ID); got != 404 {
		t.Errorf("oldest idle channel: HEAD %d, want 404", got)
	}
	if got := head(chans[0].ID); got != 200 {
		t.Errorf("connected channel: HEAD %d, want 200", got)
	}
	if st := h.s.Stats(); st.ChannelsEvicted != 1 || st.ChannelsCreated != MaxChannelsPerClient+1 {
		t.Errorf("stats %+v", st)
	}
}

func TestForeignChannelsEvictOurIdleChannel(t *testing.T) {
	h := newHarness(t, Options{})
	tok := h.token()
	ours := h.channel(tok)
	h.subscribe(tok, ours.ID, userTopic(agentA))
	foreign := h.s.CreateForeignChannels(testClient, MaxChannelsPerClient)
	if len(foreign) != MaxChannelsPerClient {
		t.Fatalf("%d foreign channels", len(foreign))
	}
	if resp, _ := h.do("HEAD", "/api/v2/notifications/channels/"+ours.ID, tok, nil); resp.StatusCode != 404 {
		t.Errorf("our idle channel: HEAD %d, want 404", resp.StatusCode)
	}
	if c, err := h.dial(ours.ConnectURI); err == nil || c.status != 404 {
		t.Errorf("upgrade to the evicted channel: %v, HTTP %d", err, c.status)
	}
	infos := h.s.Channels()
	if infos[0].ID != ours.ID || infos[0].State != ChannelEvicted {
		t.Errorf("channel info %+v", infos[0])
	}
}

func TestSubscriptions(t *testing.T) {
	h := newHarness(t, Options{})
	tok := h.token()
	ch := h.channel(tok)
	path := "/api/v2/notifications/channels/" + ch.ID + "/subscriptions"
	h.s.ForbidTopic(userTopic(agentD))
	unknown := userTopic("00000000-0000-0000-0000-000000000000")
	topics := func(ts ...string) []map[string]string {
		out := make([]map[string]string, len(ts))
		for i, t := range ts {
			out[i] = map[string]string{"id": t}
		}
		return out
	}
	many := make([]string, MaxTopicsPerChannel+1)
	for i := range many {
		many[i] = fmt.Sprintf("v2.routing.queues.q%04d.conversations", i)
	}

	type entity struct {
		ID                 string   `json:"id"`
		State              string   `json:"state"`
		RejectionReason    string   `json:"rejectionReason"`
		MissingPermissions []string `json:"missingPermissions"`
	}
	// Steps run in order on one channel; each checks the status and the listing it returns.
	steps := []struct {
		name, method, query string
		body                any
		status              int
		want                []string // ids in the response entities
		rejected            string   // an entity expected with state Rejected
	}{
		{"put", "PUT", "", topics(userTopic(agentA), userTopic(agentB)), 200, []string{userTopic(agentA), userTopic(agentB)}, ""},
		{"get", "GET", "", nil, 200, []string{userTopic(agentA), userTopic(agentB)}, ""},
		{"post adds", "POST", "", topics(userTopic(agentB), userTopic(agentC)), 200,
			[]string{userTopic(agentA), userTopic(agentB), userTopic(agentC)}, ""},
		{"put replaces", "PUT", "", topics("v2.routing.queues." + queue1 + ".conversations"), 200,
			[]string{"v2.routing.queues." + queue1 + ".conversations"}, ""},
		{"unknown user", "PUT", "", topics(userTopic(agentA), unknown), 400, nil, ""},
		{"unknown user ignoreErrors", "PUT", "?ignoreErrors=true", topics(userTopic(agentA), unknown), 200,
			[]string{userTopic(agentA), unknown}, unknown},
		{"forbidden", "POST", "", topics(userTopic(agentD)), 400, nil, ""},
		{"forbidden ignoreErrors", "POST", "?ignoreErrors=true", topics(userTopic(agentD)), 200,
			[]string{userTopic(agentA), userTopic(agentD)}, userTopic(agentD)},
		{"unsupported topic", "POST", "", topics("v2.users." + agentA + ".conversations.calls"), 400, nil, ""},
		{"not JSON", "PUT", "", "garbage", 400, nil, ""},
		{"over 1000", "PUT", "", topics(many...), 400, nil, ""},
		{"exactly 1000", "PUT", "", topics(many[:MaxTopicsPerChannel]...), 200, many[:MaxTopicsPerChannel], ""},
		{"post over 1000", "POST", "", topics(userTopic(agentA)), 400, nil, ""},
		{"delete", "DELETE", "", nil, 200, nil, ""},
		{"get empty", "GET", "", nil, 200, []string{}, ""},
	}
	for _, st := range steps {
		resp, data := h.do(st.method, path+st.query, tok, st.body)
		if resp.StatusCode != st.status {
			t.Fatalf("%s: %d %s, want %d", st.name, resp.StatusCode, data, st.status)
		}
		if st.status != 200 {
			eb := decode[struct {
				Code   string `json:"code"`
				Status int    `json:"status"`
			}](t, data)
			if eb.Status != st.status || eb.Code == "" {
				t.Errorf("%s: ErrorBody %s", st.name, data)
			}
			continue
		}
		if st.want == nil {
			continue
		}
		list := decode[struct{ Entities []entity }](t, data)
		var ids []string
		for _, e := range list.Entities {
			ids = append(ids, e.ID)
			if e.ID == st.rejected && (e.State != "Rejected" || e.RejectionReason == "") {
				t.Errorf("%s: rejected entity %+v", st.name, e)
			}
		}
		if fmt.Sprint(ids) != fmt.Sprint(st.want) {
			t.Errorf("%s: entities %v, want %v", st.name, ids, st.want)
		}
	}
	if resp, _ := h.do("GET", "/api/v2/notifications/channels/streaming-0-nope/subscriptions", tok, nil); resp.StatusCode != 404 {
		t.Errorf("unknown channel: %d", resp.StatusCode)
	}
}

func TestSubscribingExtendsChannel(t *testing.T) {
	h := newHarness(t, Options{})
	tok := h.token()
	ch := h.channel(tok)
	first, _ := time.Parse(time.RFC3339, ch.Expires)
	time.Sleep(5 * time.Millisecond) // expires has millisecond resolution
	for _, method := range []string{"PUT", "POST"} {
		resp, _ := h.do(method, "/api/v2/notifications/channels/"+ch.ID+"/subscriptions", tok,
			[]map[string]string{{"id": userTopic(agentA)}})
		if resp.StatusCode != 200 {
			t.Fatalf("%s: %d", method, resp.StatusCode)
		}
		_, data := h.do("GET", "/api/v2/notifications/channels", tok, nil)
		list := decode[struct{ Entities []channelJSON }](t, data)
		later, _ := time.Parse(time.RFC3339, list.Entities[0].Expires)
		if !later.After(first) {
			t.Errorf("%s: expires %v not after %v", method, later, first)
		}
		first = later
		time.Sleep(5 * time.Millisecond)
	}
}

func TestTimeScaleExpiresChannel(t *testing.T) {
	// 24 h scaled to 200 ms: the channel, its socket and HEAD all end without waiting a day. The token
	// is made to outlive it, so HEAD can still be asked.
	h := newHarness(t, Options{
		TimeScale:     float64(200*time.Millisecond) / float64(24*time.Hour),
		TokenLifetime: 1000 * 24 * time.Hour,
	})
	tok := h.token()
	ch := h.channel(tok)
	c := h.mustDial(ch.ConnectURI)
	if code := c.closed(); code != 1000 {
		t.Errorf("close code %d, want 1000", code)
	}
	if resp, _ := h.do("HEAD", "/api/v2/notifications/channels/"+ch.ID, tok, nil); resp.StatusCode != 404 {
		t.Errorf("HEAD %d, want 404", resp.StatusCode)
	}
	if c, err := h.dial(ch.ConnectURI); err == nil || c.status != 404 {
		t.Errorf("reconnect: %v HTTP %d, want 404", err, c.status)
	}
	if info := h.s.Channels()[0]; info.State != ChannelExpired {
		t.Errorf("state %q", info.State)
	}
}
