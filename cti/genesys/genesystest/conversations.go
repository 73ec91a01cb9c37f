package genesystest

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"time"
)

// handleConversation is GET /api/v2/conversations/{id}: the current snapshot, the same body as the event.
func (s *Server) handleConversation(w http.ResponseWriter, r *http.Request, _ *token) {
	body := s.Snapshot(r.PathValue("id"))
	if body == nil {
		writeError(w, http.StatusNotFound, "not.found", "conversation not found: "+r.PathValue("id"))
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(body)
}

// callParticipant is the flattened CallMediaParticipant of GET /api/v2/conversations/calls/{id}
// (research §4.2): the call's fields sit on the participant, and uuiData is there too.
type callParticipant struct {
	ID                     string            `json:"id"`
	Name                   string            `json:"name,omitempty"`
	Address                string            `json:"address,omitempty"`
	ConnectedTime          string            `json:"connectedTime,omitempty"`
	EndTime                string            `json:"endTime,omitempty"`
	StartHoldTime          string            `json:"startHoldTime,omitempty"`
	Purpose                string            `json:"purpose"`
	State                  string            `json:"state"`
	Direction              string            `json:"direction"`
	DisconnectType         string            `json:"disconnectType,omitempty"`
	Held                   bool              `json:"held"`
	WrapupRequired         bool              `json:"wrapupRequired"`
	User                   *idRef            `json:"user,omitempty"`
	Queue                  *idRef            `json:"queue,omitempty"`
	Attributes             map[string]string `json:"attributes"`
	Provider               string            `json:"provider"`
	Peer                   string            `json:"peer,omitempty"`
	StartAcwTime           string            `json:"startAcwTime,omitempty"`
	EndAcwTime             string            `json:"endAcwTime,omitempty"`
	Muted                  bool              `json:"muted"`
	Confined               bool              `json:"confined"`
	Recording              bool              `json:"recording"`
	RecordingState         string            `json:"recordingState"`
	ANI                    string            `json:"ani,omitempty"`
	DNIS                   string            `json:"dnis,omitempty"`
	MonitoredParticipantID string            `json:"monitoredParticipantId,omitempty"`
	ConsultParticipantID   string            `json:"consultParticipantId,omitempty"`
	UUIData                string            `json:"uuiData,omitempty"`
	SecurePause            bool              `json:"securePause"`
}

type idRef struct {
	ID      string `json:"id"`
	SelfURI string `json:"selfUri"`
}

// handleCallConversation is GET /api/v2/conversations/calls/{id}.
func (s *Server) handleCallConversation(w http.ResponseWriter, r *http.Request, _ *token) {
	s.mu.Lock()
	cv := s.convs[r.PathValue("id")]
	if cv == nil {
		s.mu.Unlock()
		writeError(w, http.StatusNotFound, "not.found", "conversation not found: "+r.PathValue("id"))
		return
	}
	cv.recompute(time.Now())
	parts := make([]callParticipant, 0, len(cv.parts))
	for _, p := range cv.parts {
		c := p.call
		cp := callParticipant{
			ID: p.id, Name: p.name, Address: p.address,
			ConnectedTime: ts(p.connected), EndTime: ts(p.end), StartHoldTime: ts(c.startHold),
			Purpose: p.purpose, State: c.state, Direction: c.direction, DisconnectType: c.disconnectType,
			Held: c.held, WrapupRequired: p.wrapupRequired, Attributes: map[string]string{},
			Provider: "Edge", Peer: c.peerID, StartAcwTime: ts(p.startAcw), EndAcwTime: ts(p.endAcw),
			Confined: c.confined, RecordingState: "none", ANI: cv.ani, DNIS: cv.dnis,
			MonitoredParticipantID: p.monitoredParticipantID, ConsultParticipantID: p.consultParticipantID,
			UUIData: c.uui, SecurePause: c.securePause,
		}
		for k, v := range p.attributes {
			cp.Attributes[k] = v
		}
		if p.userID != "" {
			cp.User = &idRef{ID: p.userID, SelfURI: "/api/v2/users/" + p.userID}
		}
		if p.queueID != "" {
			cp.Queue = &idRef{ID: p.queueID, SelfURI: "/api/v2/routing/queues/" + p.queueID}
		}
		parts = append(parts, cp)
	}
	body := map[string]any{
		"id": cv.id, "startTime": ts(cv.start), "participants": parts, "recordingState": "none",
		"selfUri": "/api/v2/conversations/calls/" + cv.id,
	}
	if !cv.end.IsZero() {
		body["endTime"] = ts(cv.end)
	}
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, body)
}

// detailsQuery is the ConversationQuery body (research §4.3).
type detailsQuery struct {
	Interval            string         `json:"interval"`
	Order               string         `json:"order"`
	OrderBy             string         `json:"orderBy"`
	Paging              *queryPaging   `json:"paging"`
	ConversationFilters []detailFilter `json:"conversationFilters"`
	SegmentFilters      []detailFilter `json:"segmentFilters"`
}

type queryPaging struct {
	PageSize   int `json:"pageSize"`
	PageNumber int `json:"pageNumber"`
}

// detailFilter is a query filter: its predicates and clauses combined by type ("and" or "or").
type detailFilter struct {
	Type       string            `json:"type"`
	Clauses    []detailFilter    `json:"clauses"`
	Predicates []detailPredicate `json:"predicates"`
}

type detailPredicate struct {
	Type      string `json:"type"`
	Dimension string `json:"dimension"`
	Operator  string `json:"operator"`
	Value     string `json:"value"`
}

// analyticsMaxPage is the details query's page size limit.
const analyticsMaxPage = 100

// handleDetailsQuery is POST /api/v2/analytics/conversations/details/query, enough for reconciliation:
// the interval (conversations with activity in it), conversation dimensions conversationEnd,
// conversationId, originatingDirection, segment dimensions userId, mediaType, purpose, queueId,
// direction, segmentType, participantId, paging and ordering by conversationStart.
func (s *Server) handleDetailsQuery(w http.ResponseWriter, r *http.Request, _ *token) {
	var q detailsQuery
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err == nil {
		err = json.Unmarshal(body, &q)
	}
	if err != nil {
		writeError(w, http.StatusBadRequest, "bad.request", "invalid query body: "+err.Error())
		return
	}
	from, to, err := parseInterval(q.Interval)
	if err == nil {
		err = checkFilters(q.ConversationFilters, conversationDimensions)
	}
	if err == nil {
		err = checkFilters(q.SegmentFilters, segmentDimensions)
	}
	if err == nil && q.OrderBy != "" && q.OrderBy != "conversationStart" {
		err = fmt.Errorf("orderBy %q is not supported by the fake", q.OrderBy)
	}
	size, number := analyticsMaxPage, 1
	if q.Paging != nil {
		size, number = positiveOr(q.Paging.PageSize, 25), positiveOr(q.Paging.PageNumber, 1)
	}
	if err == nil && size > analyticsMaxPage {
		err = fmt.Errorf("paging.pageSize must be at most %d", analyticsMaxPage)
	}
	if err != nil {
		writeError(w, http.StatusBadRequest, "bad.request", err.Error())
		return
	}

	s.mu.Lock()
	now := time.Now()
	var hits []*conversation
	for _, cv := range s.convList {
		cv.recompute(now)
		if !cv.start.Before(to) || (!cv.end.IsZero() && cv.end.Before(from)) {
			continue
		}
		if allFilters(q.ConversationFilters, func(p detailPredicate) bool { return conversationMatch(cv, p) }) &&
			segmentFiltersMatch(cv, q.SegmentFilters) {
			hits = append(hits, cv)
		}
	}
	slices.SortStableFunc(hits, func(a, b *conversation) int { return a.start.Compare(b.start) })
	if strings.EqualFold(q.Order, "desc") {
		slices.Reverse(hits)
	}
	total := len(hits)
	page := hits[min((number-1)*size, total):min(number*size, total)]
	out := map[string]any{"totalHits": total}
	if len(page) > 0 { // an empty result has no conversations array
		convs := make([]analyticsConversation, len(page))
		for i, cv := range page {
			convs[i] = analyticsOf(cv)
		}
		out["conversations"] = convs
	}
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, out)
}

func parseInterval(iv string) (from, to time.Time, err error) {
	a, b, ok := strings.Cut(iv, "/")
	if !ok {
		return from, to, fmt.Errorf("interval %q must be start/end in ISO-8601", iv)
	}
	if from, err = time.Parse(time.RFC3339Nano, a); err == nil {
		to, err = time.Parse(time.RFC3339Nano, b)
	}
	if err == nil && !from.Before(to) {
		err = errors.New("interval end must be after its start")
	}
	return from, to, err
}

var (
	conversationDimensions = []string{"conversationEnd", "conversationId", "originatingDirection", "conversationStart"}
	segmentDimensions      = []string{"userId", "mediaType", "purpose", "queueId", "direction", "segmentType", "participantId", "sessionId"}
)

// checkFilters rejects what the fake cannot evaluate, so a query it would answer wrongly fails loudly.
func checkFilters(filters []detailFilter, dims []string) error {
	for _, f := range filters {
		if t := strings.ToLower(f.Type); t != "and" && t != "or" {
			return fmt.Errorf("filter type %q must be and or or", f.Type)
		}
		if err := checkFilters(f.Clauses, dims); err != nil {
			return err
		}
		for _, p := range f.Predicates {
			if p.Type != "" && p.Type != "dimension" {
				return fmt.Errorf("predicate type %q is not supported by the fake", p.Type)
			}
			if !slices.Contains(dims, p.Dimension) {
				return fmt.Errorf("dimension %q is not supported here", p.Dimension)
			}
			switch p.Operator {
			case "", "matches", "exists", "notExists":
			default:
				return fmt.Errorf("operator %q is not supported", p.Operator)
			}
		}
	}
	return nil
}

// filterMatch evaluates one filter with a predicate evaluator.
func filterMatch(f detailFilter, pred func(detailPredicate) bool) bool {
	or := strings.EqualFold(f.Type, "or")
	n := 0
	for _, p := range f.Predicates {
		n++
		if pred(p) == or {
			return or
		}
	}
	for _, c := range f.Clauses {
		n++
		if filterMatch(c, pred) == or {
			return or
		}
	}
	return !or || n == 0
}

// allFilters: the filters of a list must all match.
func allFilters(filters []detailFilter, pred func(detailPredicate) bool) bool {
	for _, f := range filters {
		if !filterMatch(f, pred) {
			return false
		}
	}
	return true
}

// predicateOn evaluates a predicate against a value that may be absent.
func predicateOn(p detailPredicate, value string, present bool) bool {
	switch p.Operator {
	case "exists":
		return present
	case "notExists":
		return !present
	}
	return present && strings.EqualFold(value, p.Value)
}

func conversationMatch(cv *conversation, p detailPredicate) bool {
	switch p.Dimension {
	case "conversationEnd":
		return predicateOn(p, ts(cv.end), !cv.end.IsZero())
	case "conversationStart":
		return predicateOn(p, ts(cv.start), true)
	case "conversationId":
		return predicateOn(p, cv.id, true)
	case "originatingDirection":
		return predicateOn(p, cv.direction, true)
	}
	return false
}

// segmentFiltersMatch: each segment filter must be satisfied by some segment of the conversation.
func segmentFiltersMatch(cv *conversation, filters []detailFilter) bool {
	for _, f := range filters {
		found := false
		for _, p := range cv.parts {
			for _, sg := range p.call.segments {
				if filterMatch(f, func(d detailPredicate) bool { return segmentMatch(p, sg, d) }) {
					found = true
				}
			}
		}
		if !found {
			return false
		}
	}
	return true
}

func segmentMatch(p *participant, sg segment, d detailPredicate) bool {
	switch d.Dimension {
	case "userId":
		return predicateOn(d, p.userID, p.userID != "")
	case "mediaType":
		return predicateOn(d, "voice", true)
	case "purpose":
		return predicateOn(d, p.purpose, true)
	case "queueId":
		return predicateOn(d, sg.queueID, sg.queueID != "")
	case "direction":
		return predicateOn(d, p.call.direction, true)
	case "segmentType":
		return predicateOn(d, sg.typ, true)
	case "participantId":
		return predicateOn(d, p.id, true)
	case "sessionId":
		return predicateOn(d, p.call.id, true)
	}
	return false
}

// Analytics response shapes (AnalyticsConversation → participants → sessions → segments, research §4.3).
type analyticsConversation struct {
	ConversationID       string                 `json:"conversationId"`
	ConversationStart    string                 `json:"conversationStart"`
	ConversationEnd      string                 `json:"conversationEnd,omitempty"`
	OriginatingDirection string                 `json:"originatingDirection"`
	Participants         []analyticsParticipant `json:"participants"`
}

type analyticsParticipant struct {
	ParticipantID   string             `json:"participantId"`
	ParticipantName string             `json:"participantName,omitempty"`
	Purpose         string             `json:"purpose"`
	UserID          string             `json:"userId,omitempty"`
	Attributes      map[string]string  `json:"attributes,omitempty"`
	Sessions        []analyticsSession `json:"sessions"`
}

type analyticsSession struct {
	SessionID string             `json:"sessionId"`
	MediaType string             `json:"mediaType"`
	Direction string             `json:"direction"`
	ANI       string             `json:"ani,omitempty"`
	DNIS      string             `json:"dnis,omitempty"`
	PeerID    string             `json:"peerId,omitempty"`
	Segments  []analyticsSegment `json:"segments"`
}

type analyticsSegment struct {
	SegmentType    string `json:"segmentType"`
	SegmentStart   string `json:"segmentStart"`
	SegmentEnd     string `json:"segmentEnd,omitempty"`
	DisconnectType string `json:"disconnectType,omitempty"`
	QueueID        string `json:"queueId,omitempty"`
}

func analyticsOf(cv *conversation) analyticsConversation {
	a := analyticsConversation{
		ConversationID: cv.id, ConversationStart: ts(cv.start), ConversationEnd: ts(cv.end),
		OriginatingDirection: cv.direction,
	}
	for _, p := range cv.parts {
		c := p.call
		ap := analyticsParticipant{ParticipantID: p.id, ParticipantName: p.name, Purpose: p.purpose, UserID: p.userID}
		if len(p.attributes) > 0 {
			ap.Attributes = map[string]string{}
			for k, v := range p.attributes {
				ap.Attributes[k] = v
			}
		}
		sess := analyticsSession{
			SessionID: c.id, MediaType: "voice", Direction: c.direction,
			ANI: cv.ani, DNIS: cv.dnis, PeerID: c.peerID, Segments: []analyticsSegment{},
		}
		for i, sg := range c.segments {
			as := analyticsSegment{SegmentType: sg.typ, SegmentStart: ts(sg.start), SegmentEnd: ts(sg.end), QueueID: sg.queueID}
			// The disconnect is reported on the segment the call ended in.
			if c.disconnectType != "" && !sg.end.IsZero() && (i == len(c.segments)-1 || c.segments[i+1].typ == "wrapup") &&
				sg.typ != "wrapup" {
				as.DisconnectType = c.disconnectType
			}
			sess.Segments = append(sess.Segments, as)
		}
		ap.Sessions = []analyticsSession{sess}
		a.Participants = append(a.Participants, ap)
	}
	return a
}
