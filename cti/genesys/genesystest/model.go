package genesystest

import (
	"encoding/json"
	"slices"
	"strings"
	"time"
)

// Participant purposes and call states: the lower-case enums of the conversation topics (research §2.6).
const (
	purposeCustomer = "customer"
	purposeExternal = "external"
	purposeAgent    = "agent"
	purposeUser     = "user"
	purposeACD      = "acd"
	purposeIVR      = "ivr"

	stateAlerting     = "alerting"
	stateDialing      = "dialing"
	stateContacting   = "contacting"
	stateConnected    = "connected"
	stateDisconnected = "disconnected"
	stateTerminated   = "terminated"
)

// historyCap bounds the snapshots kept per conversation for History.
const historyCap = 1000

// conversation is the fake's model of one voice conversation. It is guarded by Server.mu.
type conversation struct {
	id          string
	start, end  time.Time
	direction   string // originatingDirection: inbound | outbound
	ani, dnis   string // tel: URIs: who called, who was called
	parts       []*participant
	transfers   []*transfer
	securePause bool
	consult     *consult
	queueID     string   // the queue the call is, or was last, routed through
	history     [][]byte // published event bodies, oldest first
	err         error    // the first misuse of the builder
}

type participant struct {
	id, purpose, userID, name, queueID, address string
	attributes                                  map[string]string
	connected, end                              time.Time
	consultParticipantID                        string
	monitoredParticipantID                      string
	wrapupRequired                              bool
	wrapup                                      *wrapup
	startAcw, endAcw                            time.Time
	call                                        *call // one call per participant is all the fake needs
}

type call struct {
	id, state, initialState, direction string
	held, confined, securePause        bool
	disconnectType                     string
	startHold, connected, disconnected time.Time
	peerID, uui                        string
	self, other                        string // addresses (tel:/sip: URIs)
	segments                           []segment
}

// segment is an analytics segment (research §4.3), kept as the call changes.
type segment struct {
	typ        string
	start, end time.Time
	queueID    string
}

type transfer struct {
	id, state, kind       string // kind: attended | unattended
	issued                time.Time
	initiator             string // user id
	destUser, destAddress string
}

type consult struct {
	initiator, target, customer *participant
	transfer                    *transfer
}

type wrapup struct {
	code     string
	duration int
	end      time.Time
}

// liveState: the call is up or on its way up.
func liveState(state string) bool {
	switch state {
	case stateAlerting, stateDialing, stateContacting, "offering", stateConnected:
		return true
	}
	return false
}

func isCustomer(p *participant) bool {
	return p.purpose == purposeCustomer || p.purpose == purposeExternal
}

// isAgent: a Genesys user on the call in their own right, not a monitor (research §2.6 notes on purpose).
func isAgent(p *participant) bool {
	return (p.purpose == purposeAgent || p.purpose == purposeUser) && p.monitoredParticipantID == ""
}

func isRouting(p *participant) bool { return p.purpose == purposeACD || p.purpose == purposeIVR }

// find returns the newest participant of the user whose call is in one of states.
func (cv *conversation) find(userID string, states ...string) *participant {
	for _, p := range slices.Backward(cv.parts) {
		if p.userID == userID && isAgent(p) && slices.Contains(states, p.call.state) {
			return p
		}
	}
	return nil
}

// customer is the customer (or external) participant that is still up, else the first one.
func (cv *conversation) customer() *participant {
	var first *participant
	for _, p := range cv.parts {
		if !isCustomer(p) {
			continue
		}
		if liveState(p.call.state) {
			return p
		}
		if first == nil {
			first = p
		}
	}
	return first
}

// setState moves a call to a new state, stamping the times that go with it.
func setState(p *participant, state string, now time.Time) {
	c := p.call
	if c.initialState == "" {
		c.initialState = state
	}
	c.state = state
	if state == stateConnected && c.connected.IsZero() {
		c.connected = now
		p.connected = now
	}
}

// disconnect ends a call with a disconnectType; an agent who talked and owes wrap-up starts after-call work.
func disconnect(p *participant, disconnectType string, now time.Time) {
	c := p.call
	if !liveState(c.state) {
		return
	}
	c.state = stateDisconnected
	c.disconnectType = disconnectType
	c.disconnected = now
	c.held, c.confined, c.startHold = false, false, time.Time{}
	p.end = now
	if p.wrapupRequired && !c.connected.IsZero() {
		p.startAcw = now
	}
}

// recompute derives what follows from the parties' own actions before a snapshot is taken: who hears
// hold music (confined), the analytics segments, and the conversation's end.
func (cv *conversation) recompute(now time.Time) {
	var parties []*participant
	for _, p := range cv.parts {
		if (isCustomer(p) || isAgent(p)) && p.call.state == stateConnected {
			parties = append(parties, p)
		}
	}
	for _, p := range parties {
		// A party hears hold music when every other party has put the call on hold, or, for the
		// customer, while the agent consults someone else (research §2.6 (b), §6.3 item 18).
		confined := !p.call.held && len(parties) > 1
		for _, o := range parties {
			if o != p && !o.call.held {
				confined = false
			}
		}
		if cv.consult != nil && cv.consult.customer == p {
			confined = true
		}
		p.call.confined = confined
	}
	live := false
	for _, p := range cv.parts {
		p.refreshSegment(now)
		live = live || liveState(p.call.state)
	}
	if !live && cv.end.IsZero() {
		cv.end = now
	}
}

// refreshSegment closes the open analytics segment and opens another when the call's activity changed.
func (p *participant) refreshSegment(now time.Time) {
	want := p.segmentType()
	c := p.call
	if n := len(c.segments); n > 0 && c.segments[n-1].end.IsZero() {
		if c.segments[n-1].typ == want {
			return
		}
		c.segments[n-1].end = now
	}
	if want != "" {
		c.segments = append(c.segments, segment{typ: want, start: now, queueID: p.queueID})
	}
}

func (p *participant) segmentType() string {
	c := p.call
	switch c.state {
	case stateAlerting, "offering":
		return "alert"
	case stateDialing:
		return "dialing"
	case stateContacting:
		return "contacting"
	case stateConnected:
		switch {
		case c.held || c.confined:
			return "hold"
		case p.purpose == purposeIVR:
			return "ivr"
		}
		return "interact"
	}
	if p.wrapupRequired && p.wrapup == nil && !c.connected.IsZero() {
		return "wrapup"
	}
	return ""
}

// topics are the notification topics a change of the conversation is published on.
func (cv *conversation) topics() []string {
	var out []string
	seen := map[string]bool{}
	add := func(t string) {
		if !seen[t] {
			seen[t] = true
			out = append(out, t)
		}
	}
	for _, p := range cv.parts {
		if p.userID != "" {
			add("v2.users." + p.userID + ".conversations")
		}
	}
	for _, p := range cv.parts {
		if p.queueID != "" {
			add("v2.routing.queues." + p.queueID + ".conversations")
		}
	}
	return out
}

// emitLocked publishes the conversation's current snapshot on all its topics.
func (s *Server) emitLocked(cv *conversation) {
	cv.recompute(time.Now())
	body := mustJSON(s.snapshotLocked(cv, false))
	if len(cv.history) >= historyCap {
		cv.history = slices.Delete(cv.history, 0, 1)
	}
	cv.history = append(cv.history, body)
	for _, t := range cv.topics() {
		s.deliverLocked(t, body)
	}
}

// Wire shapes of the conversation topic body (ConversationEventTopicConversation, research §2.6). Booleans
// are always present; fields that are null until something happens (disconnectType, startHoldTime, the
// times) are omitted, as the SDK marshals nil pointers.
type wireConversation struct {
	ID              string            `json:"id"`
	StartTime       string            `json:"startTime,omitempty"` // REST only
	EndTime         string            `json:"endTime,omitempty"`   // REST only
	Participants    []wireParticipant `json:"participants"`
	RecentTransfers []wireTransfer    `json:"recentTransfers,omitempty"`
	RecordingState  string            `json:"recordingState"`
	SecurePause     bool              `json:"securePause"`
	SelfURI         string            `json:"selfUri,omitempty"` // REST only
}

type wireParticipant struct {
	ID                     string            `json:"id"`
	ConnectedTime          string            `json:"connectedTime,omitempty"`
	EndTime                string            `json:"endTime,omitempty"`
	UserID                 string            `json:"userId,omitempty"`
	Name                   string            `json:"name,omitempty"`
	QueueID                string            `json:"queueId,omitempty"`
	Purpose                string            `json:"purpose"`
	ConsultParticipantID   string            `json:"consultParticipantId,omitempty"`
	Address                string            `json:"address,omitempty"`
	WrapupRequired         bool              `json:"wrapupRequired"`
	Wrapup                 *wireWrapup       `json:"wrapup,omitempty"`
	StartAcwTime           string            `json:"startAcwTime,omitempty"`
	EndAcwTime             string            `json:"endAcwTime,omitempty"`
	MonitoredParticipantID string            `json:"monitoredParticipantId,omitempty"`
	Attributes             map[string]string `json:"attributes"`
	Calls                  []wireCall        `json:"calls"`
}

type wireCall struct {
	ID               string       `json:"id"`
	State            string       `json:"state"`
	InitialState     string       `json:"initialState,omitempty"`
	Recording        bool         `json:"recording"`
	RecordingState   string       `json:"recordingState"`
	Muted            bool         `json:"muted"`
	Confined         bool         `json:"confined"`
	Held             bool         `json:"held"`
	SecurePause      bool         `json:"securePause"`
	DisconnectType   string       `json:"disconnectType,omitempty"`
	StartHoldTime    string       `json:"startHoldTime,omitempty"`
	Direction        string       `json:"direction"`
	Self             *wireAddress `json:"self,omitempty"`
	Other            *wireAddress `json:"other,omitempty"`
	Provider         string       `json:"provider"`
	PeerID           string       `json:"peerId,omitempty"`
	ConnectedTime    string       `json:"connectedTime,omitempty"`
	DisconnectedTime string       `json:"disconnectedTime,omitempty"`
	UUIData          string       `json:"uuiData,omitempty"`
}

type wireAddress struct {
	AddressNormalized  string `json:"addressNormalized,omitempty"`
	AddressRaw         string `json:"addressRaw,omitempty"`
	AddressDisplayable string `json:"addressDisplayable,omitempty"`
}

type wireTransfer struct {
	ID           string           `json:"id"`
	State        string           `json:"state"`
	DateIssued   string           `json:"dateIssued"`
	Initiator    *wireUserRef     `json:"initiator,omitempty"`
	Destination  *wireDestination `json:"destination,omitempty"`
	TransferType string           `json:"transferType"`
}

type wireUserRef struct {
	UserID string `json:"userId,omitempty"`
}

type wireDestination struct {
	UserID  string `json:"userId,omitempty"`
	Address string `json:"address,omitempty"`
}

type wireWrapup struct {
	Code            string `json:"code"`
	DurationSeconds int    `json:"durationSeconds"`
	EndTime         string `json:"endTime,omitempty"`
}

func address(uri string) *wireAddress {
	if uri == "" {
		return nil
	}
	display := strings.TrimPrefix(strings.TrimPrefix(uri, "tel:"), "sip:")
	return &wireAddress{AddressNormalized: uri, AddressRaw: uri, AddressDisplayable: display}
}

// snapshotLocked builds the body of a conversation event; rest adds the fields of the REST Conversation.
func (s *Server) snapshotLocked(cv *conversation, rest bool) wireConversation {
	w := wireConversation{
		ID:             cv.id,
		Participants:   make([]wireParticipant, 0, len(cv.parts)),
		RecordingState: "none",
		SecurePause:    cv.securePause,
	}
	if rest {
		w.StartTime, w.EndTime = ts(cv.start), ts(cv.end)
		w.SelfURI = "/api/v2/conversations/" + cv.id
	}
	for _, p := range cv.parts {
		c := p.call
		wp := wireParticipant{
			ID: p.id, ConnectedTime: ts(p.connected), EndTime: ts(p.end),
			UserID: p.userID, Name: p.name, QueueID: p.queueID, Purpose: p.purpose,
			ConsultParticipantID: p.consultParticipantID, Address: p.address,
			WrapupRequired: p.wrapupRequired,
			StartAcwTime:   ts(p.startAcw), EndAcwTime: ts(p.endAcw),
			MonitoredParticipantID: p.monitoredParticipantID,
			Attributes:             map[string]string{},
		}
		for k, v := range p.attributes {
			wp.Attributes[k] = v
		}
		if p.wrapup != nil {
			wp.Wrapup = &wireWrapup{Code: p.wrapup.code, DurationSeconds: p.wrapup.duration, EndTime: ts(p.wrapup.end)}
		}
		wp.Calls = []wireCall{{
			ID: c.id, State: c.state, InitialState: c.initialState,
			RecordingState: "none",
			Confined:       c.confined, Held: c.held, SecurePause: c.securePause,
			DisconnectType: c.disconnectType, StartHoldTime: ts(c.startHold),
			Direction: c.direction, Self: address(c.self), Other: address(c.other),
			Provider: "Edge", PeerID: c.peerID,
			ConnectedTime: ts(c.connected), DisconnectedTime: ts(c.disconnected),
			UUIData: c.uui,
		}}
		w.Participants = append(w.Participants, wp)
	}
	for _, t := range cv.transfers {
		wt := wireTransfer{ID: t.id, State: t.state, DateIssued: ts(t.issued), TransferType: t.kind}
		if t.initiator != "" {
			wt.Initiator = &wireUserRef{UserID: t.initiator}
		}
		if t.destUser != "" || t.destAddress != "" {
			wt.Destination = &wireDestination{UserID: t.destUser, Address: t.destAddress}
		}
		w.RecentTransfers = append(w.RecentTransfers, wt)
	}
	return w
}

// Snapshot returns the conversation as GET /api/v2/conversations/{id} would (the event body plus
// startTime, endTime and selfUri), or nil if the fake does not know it.
func (s *Server) Snapshot(conversationID string) []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	cv := s.convs[conversationID]
	if cv == nil {
		return nil
	}
	cv.recompute(time.Now())
	return mustJSON(s.snapshotLocked(cv, true))
}

// History returns every event body published for the conversation, oldest first (at most the last 1000).
func (s *Server) History(conversationID string) []json.RawMessage {
	s.mu.Lock()
	defer s.mu.Unlock()
	cv := s.convs[conversationID]
	if cv == nil {
		return nil
	}
	out := make([]json.RawMessage, len(cv.history))
	for i, b := range cv.history {
		out[i] = b
	}
	return out
}

// ConversationIDs lists the conversations the fake knows, oldest first.
func (s *Server) ConversationIDs() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]string, len(s.convList))
	for i, cv := range s.convList {
		out[i] = cv.id
	}
	return out
}
