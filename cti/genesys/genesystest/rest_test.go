package genesystest

import (
	"fmt"
	"net/url"
	"testing"
	"time"
)

type listing struct {
	Entities []struct {
		ID    string `json:"id"`
		Name  string `json:"name"`
		Email string `json:"email"`
		State string `json:"state"`
		User  *struct {
			ID string `json:"id"`
		} `json:"user"`
	} `json:"entities"`
	PageSize   int    `json:"pageSize"`
	PageNumber int    `json:"pageNumber"`
	Total      int    `json:"total"`
	PageCount  int    `json:"pageCount"`
	NextURI    string `json:"nextUri"`
}

func TestUsersPaging(t *testing.T) {
	h := newHarness(t, Options{}) // 5 users
	for i := range 25 {
		h.s.AddUser(User{ID: fmt.Sprintf("u-%02d", i), Name: fmt.Sprint("User ", i), Email: fmt.Sprintf("u%d@example.com", i)})
	}
	h.s.AddUser(User{ID: "gone", Name: "Gone", State: UserDeleted})
	tok := h.token()
	tests := []struct {
		query                 string
		status                int
		n, total, pages, page int
		next                  bool
	}{
		{"", 200, 25, 30, 2, 1, true},
		{"?pageSize=25&pageNumber=2", 200, 5, 30, 2, 2, false},
		{"?pageSize=100", 200, 30, 30, 1, 1, false},
		{"?pageNumber=3", 200, 0, 30, 2, 3, false},
		{"?state=deleted", 200, 1, 1, 1, 1, false},
		{"?id=" + agentA + "&id=u-03", 200, 2, 2, 1, 1, false},
		{"?id=" + url.QueryEscape(agentA+",u-03,gone"), 200, 2, 2, 1, 1, false},
		{"?pageSize=0", 400, 0, 0, 0, 0, false},
		{"?pageSize=501", 400, 0, 0, 0, 0, false},
		{"?pageNumber=x", 400, 0, 0, 0, 0, false},
	}
	for _, tt := range tests {
		resp, data := h.do("GET", "/api/v2/users"+tt.query, tok, nil)
		if resp.StatusCode != tt.status {
			t.Errorf("%s: %d %s", tt.query, resp.StatusCode, data)
			continue
		}
		if tt.status != 200 {
			continue
		}
		l := decode[listing](t, data)
		if len(l.Entities) != tt.n || l.Total != tt.total || l.PageCount != tt.pages || l.PageNumber != tt.page ||
			(l.NextURI != "") != tt.next {
			t.Errorf("%s: %d entities, total %d, pageCount %d, pageNumber %d, nextUri %q", tt.query,
				len(l.Entities), l.Total, l.PageCount, l.PageNumber, l.NextURI)
		}
		if tt.next {
			// nextUri is relative and followable
			resp, data := h.do("GET", l.NextURI, tok, nil)
			if next := decode[listing](t, data); resp.StatusCode != 200 || next.PageNumber != tt.page+1 {
				t.Errorf("%s: nextUri %s gave %d page %d", tt.query, l.NextURI, resp.StatusCode, next.PageNumber)
			}
		}
	}
	_, data := h.do("GET", "/api/v2/users?id="+agentA, tok, nil)
	if e := decode[listing](t, data).Entities; len(e) != 1 || e[0].Email != "agenta@example.com" || e[0].State != "active" {
		t.Errorf("user entity %s", data)
	}
}

func TestGroupQueueMembersAndSearch(t *testing.T) {
	h := newHarness(t, Options{})
	h.s.AddUser(User{ID: "solo", Name: "Solo", Email: "solo@example.com", Groups: []string{"g2"}})
	tok := h.token()
	tests := []struct {
		path string
		want int
	}{
		{"/api/v2/groups/g1/members", 5},
		{"/api/v2/groups/g2/members", 1},
		{"/api/v2/groups/none/members", 0},
		{"/api/v2/routing/queues/" + queue1 + "/members?pageSize=2", 2},
	}
	for _, tt := range tests {
		resp, data := h.do("GET", tt.path, tok, nil)
		l := decode[listing](t, data)
		if resp.StatusCode != 200 || len(l.Entities) != tt.want {
			t.Errorf("%s: %d, %d entities, want %d", tt.path, resp.StatusCode, len(l.Entities), tt.want)
		}
	}
	_, data := h.do("GET", "/api/v2/routing/queues/"+queue1+"/members", tok, nil)
	if l := decode[listing](t, data); l.Entities[0].User == nil || l.Entities[0].User.ID != agentA {
		t.Errorf("queue member %s", data)
	}

	search := map[string]any{"pageSize": 25, "query": []map[string]any{
		{"type": "EXACT", "fields": []string{"email"}, "values": []string{"solo@example.com", "agentb@example.com"}},
	}}
	resp, data := h.do("POST", "/api/v2/users/search", tok, search)
	res := decode[struct {
		Total   int `json:"total"`
		Results []struct {
			ID string `json:"id"`
		} `json:"results"`
	}](t, data)
	if resp.StatusCode != 200 || res.Total != 2 || res.Results[0].ID != agentB || res.Results[1].ID != "solo" {
		t.Errorf("search %d %s", resp.StatusCode, data)
	}
}

type analyticsResult struct {
	TotalHits     int `json:"totalHits"`
	Conversations []struct {
		ConversationID       string `json:"conversationId"`
		ConversationStart    string `json:"conversationStart"`
		ConversationEnd      string `json:"conversationEnd"`
		OriginatingDirection string `json:"originatingDirection"`
		Participants         []struct {
			ParticipantID string `json:"participantId"`
			Purpose       string `json:"purpose"`
			UserID        string `json:"userId"`
			Sessions      []struct {
				MediaType string `json:"mediaType"`
				Direction string `json:"direction"`
				ANI       string `json:"ani"`
				Segments  []struct {
					SegmentType    string `json:"segmentType"`
					SegmentStart   string `json:"segmentStart"`
					SegmentEnd     string `json:"segmentEnd"`
					DisconnectType string `json:"disconnectType"`
				} `json:"segments"`
			} `json:"sessions"`
		} `json:"participants"`
	} `json:"conversations"`
}

func TestAnalyticsDetailsQuery(t *testing.T) {
	h := newHarness(t, Options{})
	tok := h.token()
	activeA := h.s.InboundCall(ANI("+18125841533")).Answer(agentA).Hold(agentA)
	endedA := h.s.InboundCall().Answer(agentA).CustomerHangup()
	activeB := h.s.InboundCall().Answer(agentB)
	interval := time.Now().Add(-time.Hour).UTC().Format(tsLayout) + "/" + time.Now().Add(time.Hour).UTC().Format(tsLayout)
	notEnded := map[string]any{"type": "and", "predicates": []map[string]string{
		{"type": "dimension", "dimension": "conversationEnd", "operator": "notExists"}}}
	byUser := func(u string) map[string]any {
		return map[string]any{"type": "and", "predicates": []map[string]string{
			{"type": "dimension", "dimension": "mediaType", "value": "voice"},
			{"type": "dimension", "dimension": "userId", "value": u}}}
	}
	query := func(convFilters, segFilters []map[string]any, extra map[string]any) map[string]any {
		q := map[string]any{"interval": interval, "order": "asc", "orderBy": "conversationStart",
			"conversationFilters": convFilters, "segmentFilters": segFilters}
		for k, v := range extra {
			q[k] = v
		}
		return q
	}
	tests := []struct {
		name   string
		body   any
		status int
		want   []string
		total  int
	}{
		{"research §4.3 reconciliation query", query([]map[string]any{notEnded}, []map[string]any{byUser(agentA)}, nil),
			200, []string{activeA.ID()}, 1},
		{"all of A's", query(nil, []map[string]any{byUser(agentA)}, nil), 200, []string{activeA.ID(), endedA.ID()}, 2},
		{"all open", query([]map[string]any{notEnded}, nil, nil), 200, []string{activeA.ID(), activeB.ID()}, 2},
		{"desc, paged", query(nil, nil, map[string]any{"order": "desc", "paging": map[string]int{"pageSize": 1, "pageNumber": 2}}),
			200, []string{endedA.ID()}, 3},
		{"past interval", query(nil, nil, map[string]any{"interval": "2020-01-01T00:00:00.000Z/2020-01-02T00:00:00.000Z"}),
			200, nil, 0},
		{"no interval", map[string]any{}, 400, nil, 0},
		{"unknown dimension", query(nil, []map[string]any{{"type": "and", "predicates": []map[string]string{
			{"type": "dimension", "dimension": "wrapUpCode", "value": "x"}}}}, nil), 400, nil, 0},
		{"page too big", query(nil, nil, map[string]any{"paging": map[string]int{"pageSize": 101}}), 400, nil, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, data := h.do("POST", "/api/v2/analytics/conversations/details/query", tok, tt.body)
			if resp.StatusCode != tt.status {
				t.Fatalf("%d %s", resp.StatusCode, data)
			}
			if tt.status != 200 {
				return
			}
			res := decode[analyticsResult](t, data)
			var ids []string
			for _, c := range res.Conversations {
				ids = append(ids, c.ConversationID)
			}
			if fmt.Sprint(ids) != fmt.Sprint(tt.want) || res.TotalHits != tt.total {
				t.Errorf("hits %v (total %d), want %v (%d)", ids, res.TotalHits, tt.want, tt.total)
			}
		})
	}

	// The shape of one conversation: participants → sessions → segments, built from the model.
	_, data := h.do("POST", "/api/v2/analytics/conversations/details/query", tok,
		query([]map[string]any{{"type": "or", "predicates": []map[string]string{
			{"dimension": "conversationId", "value": activeA.ID()}}}}, nil, nil))
	res := decode[analyticsResult](t, data)
	if len(res.Conversations) != 1 {
		t.Fatalf("query by id: %s", data)
	}
	c := res.Conversations[0]
	if c.ConversationEnd != "" || c.OriginatingDirection != "inbound" || len(c.Participants) != 2 {
		t.Fatalf("conversation %s", data)
	}
	agent := c.Participants[1]
	if agent.Purpose != "agent" || agent.UserID != agentA || agent.Sessions[0].MediaType != "voice" ||
		agent.Sessions[0].ANI != "tel:+18125841533" {
		t.Errorf("agent participant %+v", agent)
	}
	var types []string
	for _, sg := range agent.Sessions[0].Segments {
		types = append(types, sg.SegmentType)
	}
	if fmt.Sprint(types) != "[alert interact hold]" {
		t.Errorf("agent segments %v", types)
	}
	if seg := agent.Sessions[0].Segments; seg[0].SegmentEnd == "" || seg[2].SegmentEnd != "" {
		t.Errorf("segment ends %+v", seg)
	}
}
