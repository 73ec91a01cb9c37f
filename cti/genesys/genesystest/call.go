package genesystest

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// Call is a conversation in the fake, driven by test code in call terms. Each method changes the model
// and publishes one snapshot unless its comment says otherwise; methods return the Call for chaining.
// A step that does not fit the call's state (Hold of an agent who is not connected, ...) changes nothing,
// publishes nothing and is reported by Err.
type Call struct {
	s  *Server
	cv *conversation
}

// CallOption configures InboundCall and OutboundCall.
type CallOption func(*callConfig)

type callConfig struct {
	id, ani, dnis, uui, queue, name string
	attrs                           [][2]string
}

// ANI sets the calling number ("+18125841533"; a tel: or sip: URI is kept as given).
func ANI(number string) CallOption { return func(c *callConfig) { c.ani = number } }

// DNIS sets the called number.
func DNIS(number string) CallOption { return func(c *callConfig) { c.dnis = number } }

// UUI sets calls[].uuiData on the customer's call, as Genesys exposes the SIP User-to-User data.
func UUI(data string) CallOption { return func(c *callConfig) { c.uui = data } }

// Attribute sets a participant attribute (participant data, e.g. "ASAIUUI") on the customer.
func Attribute(key, value string) CallOption {
	return func(c *callConfig) { c.attrs = append(c.attrs, [2]string{key, value}) }
}

// Queue starts an inbound call in a queue (an acd participant) rather than with no routing at all.
func Queue(queueID string) CallOption { return func(c *callConfig) { c.queue = queueID } }

// ConversationID fixes the conversation id instead of a random one.
func ConversationID(id string) CallOption { return func(c *callConfig) { c.id = id } }

// CustomerName sets the customer (or external) participant's name.
func CustomerName(name string) CallOption { return func(c *callConfig) { c.name = name } }

// Default numbers, so scenarios that do not care need not say.
const (
	defaultCustomerNumber = "+18125550100"
	defaultContactNumber  = "+13125550199"
)

// ID is the conversation id.
func (c *Call) ID() string { return c.cv.id }

// Err reports the first step that did not fit the call's state.
func (c *Call) Err() error {
	c.s.mu.Lock()
	defer c.s.mu.Unlock()
	return c.cv.err
}

func tel(number string) string {
	if number == "" || strings.Contains(number, ":") {
		return number
	}
	return "tel:" + number
}

func (s *Server) newConversationLocked(cfg callConfig, direction string) *conversation {
	cv := &conversation{id: cfg.id, start: time.Now(), direction: direction}
	if cv.id == "" {
		cv.id = s.newIDLocked()
	}
	if _, dup := s.convs[cv.id]; dup {
		cv.err = fmt.Errorf("conversation id %s already in use", cv.id)
		cv.id = s.newIDLocked()
	}
	s.convs[cv.id] = cv
	s.convList = append(s.convList, cv)
	return cv
}

func (s *Server) addParticipantLocked(cv *conversation, purpose string) *participant {
	p := &participant{id: s.newIDLocked(), purpose: purpose, attributes: map[string]string{}}
	p.call = &call{id: s.newIDLocked()}
	cv.parts = append(cv.parts, p)
	return p
}

func (s *Server) userNameLocked(id string) string {
	if u := s.userByID[id]; u != nil {
		return u.Name
	}
	return ""
}

// InboundCall starts an inbound conversation: a customer participant whose call is connected (to the
// flow), with ANI, DNIS, UUI and attributes as given, optionally already in a queue. It publishes one
// snapshot (seen only on queue topics until a user joins).
func (s *Server) InboundCall(opts ...CallOption) *Call {
	cfg := callConfig{ani: defaultCustomerNumber, dnis: defaultContactNumber}
	for _, o := range opts {
		o(&cfg)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now()
	cv := s.newConversationLocked(cfg, "inbound")
	cv.ani, cv.dnis = tel(cfg.ani), tel(cfg.dnis)
	cust := s.addParticipantLocked(cv, purposeCustomer)
	cust.address, cust.name = cv.ani, cfg.name
	for _, kv := range cfg.attrs {
		cust.attributes[kv[0]] = kv[1]
	}
	c := cust.call
	c.direction, c.self, c.other, c.uui = "inbound", cv.dnis, cv.ani, cfg.uui
	c.initialState = stateAlerting
	setState(cust, stateConnected, now)
	if cfg.queue != "" {
		s.enterQueueLocked(cv, cfg.queue, now)
	}
	s.emitLocked(cv)
	return &Call{s: s, cv: cv}
}

// OutboundCall starts an agent's outbound call: the agent's participant (purpose "user") dials, then
// contacts the far end (purpose "external", the DNIS). It publishes two snapshots (dialing, contacting);
// RemoteAnswer or Answer(agent) connects it, RemoteNoAnswer ends it unanswered.
func (s *Server) OutboundCall(agent string, opts ...CallOption) *Call {
	cfg := callConfig{ani: defaultContactNumber, dnis: defaultCustomerNumber}
	for _, o := range opts {
		o(&cfg)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now()
	cv := s.newConversationLocked(cfg, "outbound")
	cv.ani, cv.dnis = tel(cfg.ani), tel(cfg.dnis)
	pa := s.addParticipantLocked(cv, purposeUser)
	pa.userID, pa.name = agent, s.userNameLocked(agent)
	pa.call.direction, pa.call.self, pa.call.other = "outbound", cv.ani, cv.dnis
	setState(pa, stateDialing, now)
	s.emitLocked(cv)

	setState(pa, stateContacting, now)
	pe := s.addParticipantLocked(cv, purposeExternal)
	pe.address, pe.name = cv.dnis, cfg.name
	for _, kv := range cfg.attrs {
		pe.attributes[kv[0]] = kv[1]
	}
	pe.call.direction, pe.call.self, pe.call.other, pe.call.uui = "outbound", cv.dnis, cv.ani, cfg.uui
	setState(pe, stateContacting, now)
	pa.call.peerID, pe.call.peerID = pe.call.id, pa.call.id
	s.emitLocked(cv)
	return &Call{s: s, cv: cv}
}

// InternalCall starts a call from one user to another with no customer: the caller (purpose "user")
// contacting, the callee (purpose "agent") alerting. Answer(to) connects it.
func (s *Server) InternalCall(from, to string) *Call {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now()
	cv := s.newConversationLocked(callConfig{}, "outbound")
	pf := s.addParticipantLocked(cv, purposeUser)
	pf.userID, pf.name = from, s.userNameLocked(from)
	pf.call.direction = "outbound"
	pf.call.initialState = stateDialing
	setState(pf, stateContacting, now)
	pt := s.offerLocked(cv, to, now)
	pf.call.peerID, pt.call.peerID = pt.call.id, pf.call.id
	s.emitLocked(cv)
	return &Call{s: s, cv: cv}
}

var (
	errNoCustomer  = errors.New("no connected customer")
	errNotUp       = errors.New("user has no connected call")
	errNoConsult   = errors.New("no consult in progress")
	errBusyConsult = errors.New("a consult is already in progress")
)

// step runs one builder step under the lock and publishes the result, or records why it did not fit.
func (c *Call) step(name string, f func(now time.Time) error) *Call {
	s := c.s
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := f(time.Now()); err != nil {
		if c.cv.err == nil {
			c.cv.err = fmt.Errorf("%s: %w", name, err)
		}
		return c
	}
	s.emitLocked(c.cv)
	return c
}

// connectedCustomer is the customer participant whose call is connected.
func (cv *conversation) connectedCustomer() (*participant, error) {
	if p := cv.customer(); p != nil && p.call.state == stateConnected {
		return p, nil
	}
	return nil, errNoCustomer
}

// leaveRouting disconnects the IVR or queue participant that is holding the customer.
func leaveRouting(cv *conversation, disconnectType string, now time.Time) {
	for _, p := range cv.parts {
		if isRouting(p) && liveState(p.call.state) {
			disconnect(p, disconnectType, now)
		}
	}
}

func (s *Server) enterQueueLocked(cv *conversation, queueID string, now time.Time) {
	p := s.addParticipantLocked(cv, purposeACD)
	p.queueID, p.name = queueID, "queue"
	p.call.direction = "inbound"
	if cust := cv.customer(); cust != nil {
		p.call.peerID = cust.call.id
	}
	setState(p, stateConnected, now)
	cv.queueID = queueID
}

// offerLocked adds an alerting participant for the user (purpose "agent").
func (s *Server) offerLocked(cv *conversation, userID string, now time.Time) *participant {
	p := s.addParticipantLocked(cv, purposeAgent)
	p.userID, p.name, p.queueID = userID, s.userNameLocked(userID), cv.queueID
	p.wrapupRequired = cv.queueID != ""
	p.call.direction = "inbound"
	p.call.self = "sip:" + userID + "@localhost"
	if cust := cv.customer(); cust != nil {
		p.call.peerID, p.call.other = cust.call.id, cust.address
	}
	setState(p, stateAlerting, now)
	return p
}

// IVR puts the customer in an IVR flow (an ivr participant).
func (c *Call) IVR() *Call {
	return c.step("IVR", func(now time.Time) error {
		cust, err := c.cv.connectedCustomer()
		if err != nil {
			return err
		}
		leaveRouting(c.cv, "transfer", now)
		p := c.s.addParticipantLocked(c.cv, purposeIVR)
		p.name, p.address = "IVR", "sip:ivr@localhost;user=ivr"
		p.call.direction, p.call.peerID = "inbound", cust.call.id
		p.call.self, p.call.other = c.cv.dnis, cust.address
		setState(p, stateConnected, now)
		return nil
	})
}

// Queue routes the customer to a queue: the IVR (or a previous queue) leaves with "transfer" and an acd
// participant holds the customer. Agents offered afterwards carry the queue id.
func (c *Call) Queue(queueID string) *Call {
	return c.step("Queue", func(now time.Time) error {
		if _, err := c.cv.connectedCustomer(); err != nil {
			return err
		}
		leaveRouting(c.cv, "transfer", now)
		c.s.enterQueueLocked(c.cv, queueID, now)
		return nil
	})
}

// Offer alerts a user: a new participant for them, alerting.
func (c *Call) Offer(agent string) *Call {
	return c.step("Offer", func(now time.Time) error {
		c.s.offerLocked(c.cv, agent, now)
		return nil
	})
}

// NoAnswer ends the user's alerting offer with disconnectType "transfer.noanswer" without connecting.
// Without an offer outstanding it makes one first (two snapshots).
func (c *Call) NoAnswer(agent string) *Call {
	return c.unanswered("NoAnswer", agent, "transfer.noanswer")
}

// Decline ends the user's alerting offer with disconnectType "client" (the agent rejected it), as in the
// captured conversation of research §4.2. Without an offer outstanding it makes one first.
func (c *Call) Decline(agent string) *Call { return c.unanswered("Decline", agent, "client") }

func (c *Call) unanswered(name, agent, disconnectType string) *Call {
	return c.step(name, func(now time.Time) error {
		p := c.cv.find(agent, stateAlerting)
		if p == nil {
			p = c.s.offerLocked(c.cv, agent, now)
			c.s.emitLocked(c.cv)
		}
		disconnect(p, disconnectType, now)
		return nil
	})
}

// Answer connects the user: their alerting participant (offered first if need be, one more snapshot)
// connects and the IVR or queue leaves with "transfer". On an internal call the waiting caller connects
// too; on an outbound call whose agent is still dialing, it is RemoteAnswer.
func (c *Call) Answer(agent string) *Call {
	if c.hasUser(agent, stateDialing, stateContacting) {
		return c.RemoteAnswer()
	}
	return c.step("Answer", func(now time.Time) error {
		p := c.cv.find(agent, stateAlerting)
		if p == nil {
			p = c.s.offerLocked(c.cv, agent, now)
			c.s.emitLocked(c.cv)
		}
		setState(p, stateConnected, now)
		leaveRouting(c.cv, "transfer", now)
		for _, o := range c.cv.parts {
			if isAgent(o) && (o.call.state == stateContacting || o.call.state == stateDialing) {
				setState(o, stateConnected, now)
			}
		}
		return nil
	})
}

func (c *Call) hasUser(agent string, states ...string) bool {
	c.s.mu.Lock()
	defer c.s.mu.Unlock()
	return c.cv.find(agent, states...) != nil
}

// RemoteAnswer connects an outbound call: the far end answers, the agent's call and the external call
// become connected.
func (c *Call) RemoteAnswer() *Call {
	return c.step("RemoteAnswer", func(now time.Time) error {
		n := 0
		for _, p := range c.cv.parts {
			if (isAgent(p) || isCustomer(p)) && (p.call.state == stateDialing || p.call.state == stateContacting) {
				setState(p, stateConnected, now)
				n++
			}
		}
		if n == 0 {
			return errors.New("nothing is dialing")
		}
		return nil
	})
}

// RemoteNoAnswer ends an unanswered outbound call: the external call with "timeout", the agent's with
// "peer".
func (c *Call) RemoteNoAnswer() *Call {
	return c.step("RemoteNoAnswer", func(now time.Time) error {
		ext := c.cv.customer()
		if ext == nil || !liveState(ext.call.state) || ext.call.state == stateConnected {
			return errors.New("no far end waiting for an answer")
		}
		disconnect(ext, "timeout", now)
		endAll(c.cv, "peer", now)
		return nil
	})
}

// Hold puts the user's connected call on hold: their call gets held=true and startHoldTime, and the
// other party (the customer) hears hold music, confined=true (research §2.6 (b)).
func (c *Call) Hold(agent string) *Call {
	return c.step("Hold", func(now time.Time) error {
		p := c.cv.find(agent, stateConnected)
		if p == nil {
			return errNotUp
		}
		if !p.call.held {
			p.call.held, p.call.startHold = true, now
		}
		return nil
	})
}

// Resume takes the user's call off hold: held, confined and startHoldTime are cleared.
func (c *Call) Resume(agent string) *Call {
	return c.step("Resume", func(now time.Time) error {
		p := c.cv.find(agent, stateConnected)
		if p == nil {
			return errNotUp
		}
		p.call.held, p.call.startHold = false, time.Time{}
		return nil
	})
}

// SecurePause sets or clears the PCI secure pause on the conversation and its connected calls.
func (c *Call) SecurePause(on bool) *Call {
	return c.step("SecurePause", func(time.Time) error {
		c.cv.securePause = on
		for _, p := range c.cv.parts {
			if p.call.state == stateConnected {
				p.call.securePause = on
			}
		}
		return nil
	})
}

// BlindTransfer transfers the call from one user to another: from leaves with disconnectType
// "transfer", to alerts (one snapshot), then connects (a second snapshot). recentTransfers records an
// unattended transfer.
func (c *Call) BlindTransfer(from, to string) *Call {
	return c.step("BlindTransfer", func(now time.Time) error {
		pf := c.cv.find(from, stateConnected)
		if pf == nil {
			return errNotUp
		}
		disconnect(pf, "transfer", now)
		t := c.s.newTransferLocked(c.cv, "unattended", from, now)
		t.destUser = to
		pt := c.s.offerLocked(c.cv, to, now)
		pt.queueID, pt.wrapupRequired = pf.queueID, pf.wrapupRequired
		c.s.emitLocked(c.cv)
		setState(pt, stateConnected, now)
		t.state = "complete"
		return nil
	})
}

// TransferToQueue transfers the call from a user to a queue: from leaves with "transfer" and an acd
// participant holds the customer until Answer.
func (c *Call) TransferToQueue(from, queueID string) *Call {
	return c.step("TransferToQueue", func(now time.Time) error {
		pf := c.cv.find(from, stateConnected)
		if pf == nil {
			return errNotUp
		}
		disconnect(pf, "transfer", now)
		c.s.newTransferLocked(c.cv, "unattended", from, now).state = "complete"
		c.s.enterQueueLocked(c.cv, queueID, now)
		return nil
	})
}

// TransferExternal transfers the call from a user to an outside number: from leaves with "transfer", an
// external participant is contacted (one snapshot) and connects (a second snapshot).
func (c *Call) TransferExternal(from, number string) *Call {
	return c.step("TransferExternal", func(now time.Time) error {
		pf := c.cv.find(from, stateConnected)
		if pf == nil {
			return errNotUp
		}
		disconnect(pf, "transfer", now)
		t := c.s.newTransferLocked(c.cv, "unattended", from, now)
		t.destAddress = tel(number)
		pe := c.s.addParticipantLocked(c.cv, purposeExternal)
		pe.address = tel(number)
		pe.call.direction, pe.call.self, pe.call.other = "outbound", tel(number), c.cv.dnis
		setState(pe, stateContacting, now)
		c.s.emitLocked(c.cv)
		setState(pe, stateConnected, now)
		t.state = "complete"
		return nil
	})
}

func (s *Server) newTransferLocked(cv *conversation, kind, initiator string, now time.Time) *transfer {
	t := &transfer{id: s.newIDLocked(), state: "active", kind: kind, issued: now, initiator: initiator}
	cv.transfers = append(cv.transfers, t)
	return t
}

// ConsultStart has the agent consult another user while the customer waits: the customer's call
// becomes confined (hold music) and a participant for the other user, with consultParticipantId set to
// the customer's participant id, alerts (one snapshot) and connects (a second snapshot).
func (c *Call) ConsultStart(agent, other string) *Call {
	return c.step("ConsultStart", func(now time.Time) error {
		cv := c.cv
		if cv.consult != nil {
			return errBusyConsult
		}
		pa := cv.find(agent, stateConnected)
		if pa == nil {
			return errNotUp
		}
		cust, err := cv.connectedCustomer()
		if err != nil {
			return err
		}
		pt := c.s.offerLocked(cv, other, now)
		pt.consultParticipantID = cust.id
		pt.queueID, pt.wrapupRequired = pa.queueID, pa.wrapupRequired
		pt.call.peerID, pt.call.other = pa.call.id, "sip:"+agent+"@localhost"
		t := c.s.newTransferLocked(cv, "attended", agent, now)
		t.destUser = other
		cv.consult = &consult{initiator: pa, target: pt, customer: cust, transfer: t}
		c.s.emitLocked(cv)
		setState(pt, stateConnected, now)
		return nil
	})
}

// ConsultComplete completes the consult transfer: the consulting agent leaves with "transfer.consult"
// and the customer, off hold, stays with the other user.
func (c *Call) ConsultComplete() *Call {
	return c.step("ConsultComplete", func(now time.Time) error {
		k := c.cv.consult
		if k == nil {
			return errNoConsult
		}
		disconnect(k.initiator, "transfer.consult", now)
		k.transfer.state = "complete"
		c.cv.consult = nil
		return nil
	})
}

// ConsultCancel cancels the consult: the other user leaves (disconnectType "peer"), the customer is off
// hold with the consulting agent again.
func (c *Call) ConsultCancel() *Call {
	return c.step("ConsultCancel", func(now time.Time) error {
		k := c.cv.consult
		if k == nil {
			return errNoConsult
		}
		disconnect(k.target, "peer", now)
		k.transfer.state = "canceled"
		c.cv.consult = nil
		return nil
	})
}

// ConsultConference joins the consult into a conference: the consult leg of the other user ends with
// "transfer.conference" and that user rejoins as a new participant, so the agent, the other user and the
// customer are all connected (and one user has two participants).
func (c *Call) ConsultConference() *Call {
	return c.step("ConsultConference", func(now time.Time) error {
		cv := c.cv
		k := cv.consult
		if k == nil {
			return errNoConsult
		}
		if k.target.call.state != stateConnected {
			return errNotUp
		}
		disconnect(k.target, "transfer.conference", now)
		p := c.s.addParticipantLocked(cv, purposeAgent)
		p.userID, p.name, p.queueID = k.target.userID, k.target.name, k.target.queueID
		p.wrapupRequired = k.target.wrapupRequired
		p.call.direction, p.call.self = "inbound", k.target.call.self
		p.call.peerID, p.call.other = k.customer.call.id, k.customer.address
		setState(p, stateConnected, now)
		k.transfer.state = "complete"
		cv.consult = nil
		return nil
	})
}

// AgentHangup ends the user's call with disconnectType "client". When fewer than two parties are left
// the rest of the call ends with "peer". Hanging up in the middle of a consult completes it (the
// consulting agent) or cancels it (the consulted one).
func (c *Call) AgentHangup(agent string) *Call {
	return c.step("AgentHangup", func(now time.Time) error {
		cv := c.cv
		p := cv.find(agent, stateConnected, stateAlerting, stateDialing, stateContacting)
		if p == nil {
			// a monitoring supervisor leaves the same way
			for _, o := range cv.parts {
				if o.userID == agent && o.monitoredParticipantID != "" && liveState(o.call.state) {
					p = o
				}
			}
		}
		if p == nil {
			return errNotUp
		}
		disconnect(p, "client", now)
		if k := cv.consult; k != nil && (p == k.initiator || p == k.target) {
			k.transfer.state = map[bool]string{true: "complete", false: "canceled"}[p == k.initiator]
			cv.consult = nil
		}
		parties := 0
		for _, o := range cv.parts {
			if (isCustomer(o) || isAgent(o)) && o.call.state == stateConnected {
				parties++
			}
		}
		if parties < 2 && !routingLive(cv) {
			endAll(cv, "peer", now)
		}
		return nil
	})
}

func routingLive(cv *conversation) bool {
	for _, p := range cv.parts {
		if isRouting(p) && liveState(p.call.state) {
			return true
		}
	}
	return false
}

// endAll disconnects every call still up.
func endAll(cv *conversation, disconnectType string, now time.Time) {
	for _, p := range cv.parts {
		disconnect(p, disconnectType, now)
	}
}

// CustomerHangup ends the call from the customer's side: the customer's call leaves with "endpoint",
// everyone else's with "peer" (research §2.6 (d)).
func (c *Call) CustomerHangup() *Call {
	return c.step("CustomerHangup", func(now time.Time) error {
		cust := c.cv.customer()
		if cust == nil || !liveState(cust.call.state) {
			return errNoCustomer
		}
		for _, p := range c.cv.parts {
			if isCustomer(p) {
				disconnect(p, "endpoint", now)
			}
		}
		endAll(c.cv, "peer", now)
		c.cv.consult = nil
		return nil
	})
}

// Wrapup finishes the user's after-call work: a wrap-up code, endAcwTime, and the call goes from
// disconnected to terminated.
func (c *Call) Wrapup(agent string) *Call {
	return c.step("Wrapup", func(now time.Time) error {
		for _, p := range c.cv.parts {
			if p.userID == agent && p.wrapupRequired && p.wrapup == nil && !p.startAcw.IsZero() {
				p.wrapup = &wrapup{code: c.s.newIDLocked(), duration: int(now.Sub(p.startAcw) / time.Second), end: now}
				p.endAcw = now
				p.call.state = stateTerminated
				return nil
			}
		}
		return errors.New("user owes no wrap-up")
	})
}

// SetUUI changes the customer's uuiData later in the call (research §6.3 item 24: UUI appearing only in a
// later snapshot).
func (c *Call) SetUUI(data string) *Call {
	return c.step("SetUUI", func(time.Time) error {
		cust := c.cv.customer()
		if cust == nil {
			return errNoCustomer
		}
		cust.call.uui = data
		return nil
	})
}

// SetAttribute sets a participant attribute on the customer later in the call (Architect's Set
// Participant Data).
func (c *Call) SetAttribute(key, value string) *Call {
	return c.step("SetAttribute", func(time.Time) error {
		cust := c.cv.customer()
		if cust == nil {
			return errNoCustomer
		}
		cust.attributes[key] = value
		return nil
	})
}

// Monitor adds a supervisor silently monitoring the newest connected agent: a participant with purpose
// "user" and monitoredParticipantId set, connected. (The real purpose of monitor participants is not
// documented; "user" makes a tracker that keys on purpose alone get it wrong, as it should be tested.)
// AgentHangup(supervisor) removes the monitor.
func (c *Call) Monitor(supervisor string) *Call {
	return c.step("Monitor", func(now time.Time) error {
		var target *participant
		for _, p := range c.cv.parts {
			if isAgent(p) && p.call.state == stateConnected {
				target = p
			}
		}
		if target == nil {
			return errNotUp
		}
		p := c.s.addParticipantLocked(c.cv, purposeUser)
		p.userID, p.name = supervisor, c.s.userNameLocked(supervisor)
		p.monitoredParticipantID = target.id
		p.call.direction, p.call.peerID = "outbound", target.call.id
		setState(p, stateConnected, now)
		return nil
	})
}
