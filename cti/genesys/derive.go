package genesys

import (
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/siphook/siphook/cti"
	"github.com/siphook/siphook/matcher"
)

// deriveDefaultRetain is how long a Deriver keeps an ENDED conversation when Retain is zero.
const deriveDefaultRetain = 10 * time.Minute

// Bounds on what one conversation can make a Deriver hold, whatever the snapshots say.
const (
	deriveMaxUUI      = 16   // raw UUI values kept per conversation
	deriveMaxUUILen   = 1024 // longer values are not UUI (Genesys advises ≤ 128 characters)
	deriveMaxLegKeys  = 4096 // sticky terminal / seen-connected / known-customer keys per conversation
	deriveMaxIDLength = 128
)

// Deriver turns full conversation snapshots into cti.Events: tracker-independent derivation state for one
// tenant. It is safe for concurrent use; set the exported fields before the first call and leave them. The
// callbacks (Tracked, UserInfo, Now) are called with the Deriver's lock held and must not call back into it.
//
// The derivation (research/genesys-cti.md §7.2–7.3) looks at each snapshot as a whole and emits an event
// only when the derived result differs from the last one emitted for that conversation, so duplicate
// snapshots, the same snapshot delivered on several agents' topics and reconciliation GETs of an unchanged
// conversation emit nothing. Payload timestamps only ever become Event.Time: ordering and retention use the
// order of Apply calls and the local clock (received, Now), never the provider's clock (edge case 28).
//
// Parties of a snapshot:
//   - customer legs: calls of participants with purpose customer or external, except consult participants
//     (consultParticipantId set, edge 18) and monitors;
//   - agent legs: calls of participants with purpose agent or user that are not monitoring, coaching or
//     barging (edge 22); a leg is tracked when Tracked(userId) says so; one user may have several
//     participants (one per offer, §4.2) and is aggregated into one cti.Agent;
//   - routing legs: every other purpose (acd, ivr, workflow, voicemail, …).
//
// States:
//   - nothing is emitted until a customer call and a tracked agent call are connected at the same time
//     (alerting, IVR, queue, unanswered offers, outbound dialing: edges 16, 21, 23);
//   - ACTIVE when some tracked agent call is connected and not held, and some connected customer call is not
//     held; HELD otherwise. A call counts as held when held, confined or startHoldTime is set, or when
//     securePause is set and SecurePauseHolds is true (conversation-level securePause counts for all calls);
//   - ENDED when every customer call is disconnected or terminated (the event still lists the tracked
//     agents connected in that snapshot when the customer hung up first);
//   - after the start, when no tracked agent is connected any more: ENDED once someone else took the
//     customer (an untracked agent, a consulted party, or a customer-side party that was never connected
//     together with a tracked agent, i.e. a transfer to an external number); HELD while the call is on its
//     way somewhere (the last tracked agents left with a transfer disconnect, a party is alerting/dialing,
//     or a queue/flow participant is connected: a blind transfer or a transfer to a queue, edge 17);
//     ENDED otherwise (the agent hung up and the customer is left alone).
//
// Emitted means: the state, the tracked agents (user, participant, held), the secure pause or the UCID set
// differs from the last event of the conversation. Flags (Transfer, Consult, Conference), queue and
// addresses describe the snapshot of the change but do not make an event on their own:
//   - Transfer: recentTransfers is not empty, or an agent (tracked or not) whose call had been connected
//     left with a transfer* disconnect (not transfer.noanswer/notavailable/conference);
//   - Consult: a participant has consultParticipantId, consultationConversations is not empty, or a call
//     ended with transfer.consult;
//   - Conference: a call ended with transfer.conference, or two or more agent participants (tracked or not)
//     are connected while a connected customer call is not held (so a consult is not a conference).
//
// A conversation with no customer leg is internal (edge 20) and never emits. It stays remembered as
// internal only while no customer leg has appeared: callback and dialer conversations start with the
// agent alone (edge 23), so a later snapshot with a customer leg is derived normally.
//
// Stickiness (edge 14): a call once seen disconnected or terminated stays so; a participant whose calls
// all ended stays ended too, which also ties a REST snapshot (flattened call, keyed by participant) to
// the event form of the same participant. A conversation that reached ENDED, or that ended without ever
// being started, ignores every later snapshot until Sweep forgets it Retain after its end.
// Hold and resume cannot be ordered the same way (a resume snapshot carries no timestamp), so a stale
// non-terminal snapshot is taken as it comes.
type Deriver struct {
	Tenant string
	// Tracked reports whether a user is a tracked agent. Nil tracks every user.
	Tracked func(userID string) bool
	// UserInfo supplies an agent's name and email; optional. Without it the participant name is used.
	UserInfo func(userID string) (name, email string)
	// UUIAttributes are the participant attribute keys that carry a UCID (e.g. "ASAIUUI"), matched
	// case-insensitively.
	UUIAttributes []string
	// SecurePauseHolds treats securePause (PCI pause) as HELD; otherwise it is only reported.
	SecurePauseHolds bool
	// Now is the local clock, for Sweep and for a zero received time. Nil means time.Now.
	Now func() time.Time
	// Retain is how long an ENDED conversation is kept (10 minutes when zero).
	Retain time.Duration

	mu    sync.Mutex
	convs map[string]*derivedConv
}

// derivedConv is what a Deriver remembers of one conversation.
type derivedConv struct {
	state           cti.State // last emitted; "" before the first event
	finished        bool      // ENDED, or over without ever starting: later snapshots are ignored
	finishedAt      time.Time // local clock
	lastSeen        time.Time // local clock
	transferPending bool
	terminal        map[string]struct{} // "c:"+call key, "p:"+participant id
	connected       map[string]struct{} // call keys seen connected
	known           map[string]struct{} // customer participants seen connected together with a tracked agent
	uui             []string
	ucids           []string
	sig             string
	agents          []cti.Agent // of the last event
}

// legKind classifies a participant.
type legKind uint8

const (
	legRouting legKind = iota
	legCustomer
	legConsult // customer/external purpose with consultParticipantId: a consulted party, not a customer
	legAgent
	legMonitor
)

// derivedLeg is one call of one participant with its effective (sticky) state.
type derivedLeg struct {
	p       *Participant
	c       *Call
	key     string
	state   string
	kind    legKind
	tracked bool
}

func (l *derivedLeg) connected() bool { return l.state == "connected" }
func (l *derivedLeg) terminal() bool  { return deriveTerminalState(l.state) }

// alive: connected or on its way to be (alerting, dialing, contacting, offering, …).
func (l *derivedLeg) alive() bool { return l.state != "" && !l.terminal() }

func (l *derivedLeg) connectedTime() *time.Time {
	if l.c.ConnectedTime != nil {
		return l.c.ConnectedTime
	}
	return l.p.ConnectedTime
}

func (l *derivedLeg) endTime() *time.Time {
	if l.c.DisconnectedTime != nil {
		return l.c.DisconnectedTime
	}
	return l.p.EndTime
}

func deriveTerminalState(s string) bool { return s == "disconnected" || s == "terminated" }

// Apply takes one full snapshot (from an event or a REST GET; reconciled marks the latter) and returns the
// event to emit when the derived state (or the tracked-agent set, the agents' held flags, the secure pause
// or the UCIDs) changed, else nil. received is the local time the snapshot arrived (Now when zero).
func (d *Deriver) Apply(c *Conversation, received time.Time, reconciled bool) *cti.Event {
	if c == nil {
		return nil
	}
	id := deriveConversationID(c.ID)
	if id == "" {
		return nil
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if received.IsZero() {
		received = d.now()
	}
	if d.convs == nil {
		d.convs = make(map[string]*derivedConv)
	}
	cv := d.convs[id]
	if cv == nil {
		cv = &derivedConv{}
		d.convs[id] = cv
	}
	if cv.finished || d.stale(cv, c) {
		return nil
	}
	cv.lastSeen = received
	legs := d.legs(cv, c)
	d.collectUUI(cv, c)

	hasCustomer := false
	for i := range legs {
		if legs[i].kind == legCustomer {
			hasCustomer = true
			break
		}
	}
	if !hasCustomer {
		if cv.state == "" {
			// Internal so far (or a callback/dialer conversation before its customer leg exists).
			d.finishIfOver(cv, legs, received)
		}
		// A started conversation without customer legs is an incomplete snapshot: it cannot end the call.
		return nil
	}

	agents := d.agents(c, legs)
	customerLive, customerConnected, customerUnheld := false, false, false
	for i := range legs {
		l := &legs[i]
		if l.kind != legCustomer {
			continue
		}
		customerLive = customerLive || !l.terminal() // an unknown state does not end a call
		if l.connected() {
			customerConnected = true
			customerUnheld = customerUnheld || !d.held(c, l.c)
		}
	}
	if len(agents) > 0 {
		for i := range legs {
			if l := &legs[i]; l.kind == legCustomer && l.connected() {
				deriveAdd(&cv.known, l.p.ID)
			}
		}
	}
	activeOrHeld := func() cti.State {
		for _, a := range agents {
			if !a.Held && customerUnheld && !(d.SecurePauseHolds && d.securePause(c, legs)) {
				return cti.StateActive
			}
		}
		return cti.StateHeld
	}

	var (
		state   cti.State
		reached []*derivedLeg // who took the customer from the tracked agents
	)
	switch {
	case cv.state == "":
		if !customerConnected || len(agents) == 0 {
			d.finishIfOver(cv, legs, received)
			return nil
		}
		state = activeOrHeld()
	case !customerLive:
		state = cti.StateEnded
	case len(agents) == 0:
		if len(cv.agents) > 0 {
			cv.transferPending = deriveTransferPending(c, legs, cv.agents)
		}
		for i := range legs {
			l := &legs[i]
			if !l.connected() {
				continue
			}
			if (l.kind == legAgent && !l.tracked) || l.kind == legConsult {
				reached = append(reached, l)
			} else if _, ok := cv.known[l.p.ID]; l.kind == legCustomer && !ok {
				reached = append(reached, l)
			}
		}
		switch {
		case len(reached) > 0:
			state = cti.StateEnded
		case cv.transferPending || deriveRoutingPending(legs):
			state = cti.StateHeld
		default:
			state = cti.StateEnded
		}
	default:
		cv.transferPending = false
		state = activeOrHeld()
	}

	ev := &cti.Event{
		Tenant:         d.Tenant,
		Source:         "genesys",
		ConversationID: id,
		State:          state,
		Agents:         agents,
		QueueID:        deriveQueueID(c, legs, agents),
		UUI:            slices.Clone(cv.uui),
		UCIDs:          slices.Clone(cv.ucids),
		Transfer:       deriveTransferred(c, legs, cv),
		Consult:        deriveConsult(c, legs),
		Conference:     d.isConference(c, legs),
		SecurePause:    d.securePause(c, legs),
		Received:       received,
		Reconciled:     reconciled,
	}
	ev.Direction, ev.ANI, ev.DNIS = deriveAddresses(legs)
	ev.Time = d.eventTime(cv, c, legs, ev, customerLive, reached, received)

	if state == cti.StateEnded && !customerLive {
		// Only the customer leaving is final. ENDED because no tracked agent is left (a transfer to an
		// untracked party) can be followed by a tracked agent again: A → untracked E → tracked B.
		cv.finished, cv.finishedAt = true, received
	}
	sig := deriveSignature(ev)
	if sig == cv.sig {
		return nil
	}
	cv.sig, cv.state, cv.agents = sig, state, slices.Clone(agents)
	return ev
}

// Vanished ends a conversation that Genesys no longer knows (the REST GET answers 404) while we hold it as
// ACTIVE or HELD: its end snapshot was missed. It returns the ENDED event, or nil when there is nothing to end.
func (d *Deriver) Vanished(id string, received time.Time) *cti.Event {
	id = deriveConversationID(id)
	d.mu.Lock()
	defer d.mu.Unlock()
	cv := d.convs[id]
	if cv == nil || cv.finished || cv.state == "" || cv.state == cti.StateEnded {
		return nil
	}
	cv.state, cv.finished, cv.finishedAt = cti.StateEnded, true, received
	return &cti.Event{Tenant: d.Tenant, Source: "genesys", ConversationID: id, State: cti.StateEnded,
		UUI: slices.Clone(cv.uui), UCIDs: slices.Clone(cv.ucids), Time: received, Received: received, Reconciled: true}
}

// Active returns the ids of conversations currently in a non-ENDED derived state (ACTIVE or HELD), sorted:
// the ones reconciliation should re-read after a gap.
func (d *Deriver) Active() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	var ids []string
	for id, cv := range d.convs {
		if cv.state != "" && cv.state != cti.StateEnded {
			ids = append(ids, id)
		}
	}
	sort.Strings(ids)
	return ids
}

// State returns the last derived state of a conversation; false when it never emitted an event (unknown,
// internal, still in IVR/queue/alerting) or was forgotten by Sweep. An ENDED conversation reports ENDED
// until Sweep forgets it.
func (d *Deriver) State(id string) (cti.State, bool) {
	id = deriveConversationID(id)
	d.mu.Lock()
	defer d.mu.Unlock()
	cv := d.convs[id]
	if cv == nil || cv.state == "" {
		return "", false
	}
	return cv.state, true
}

// Sweep forgets conversations that ended (ENDED, or over without ever emitting) more than Retain ago,
// and conversations that never emitted and were not seen for Retain (a queue call whose offer to a tracked
// agent went elsewhere sends no more snapshots). ACTIVE and HELD conversations are kept: reconciliation
// (Active, then a REST GET) is what ends those when their end was missed. All by the local clock.
func (d *Deriver) Sweep() {
	now := d.now()
	retain := d.Retain
	if retain <= 0 {
		retain = deriveDefaultRetain
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	for id, cv := range d.convs {
		switch {
		case cv.finished && now.Sub(cv.finishedAt) > retain:
			delete(d.convs, id)
		case !cv.finished && (cv.state == "" || cv.state == cti.StateEnded) && now.Sub(cv.lastSeen) > retain:
			delete(d.convs, id) // never started, or ended with the customer still on an untracked party
		}
	}
}

// Knows reports whether the deriver still holds state for a conversation.
func (d *Deriver) Knows(id string) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	_, ok := d.convs[deriveConversationID(id)]
	return ok
}

func (d *Deriver) now() time.Time {
	if d.Now != nil {
		return d.Now()
	}
	return time.Now()
}

func (d *Deriver) tracked(userID string) bool {
	if userID == "" {
		return false
	}
	if d.Tracked == nil {
		return true
	}
	return d.Tracked(userID)
}

// stale reports a snapshot older than one already applied: it shows a call in a phase before connected
// (alerting, dialing, contacting, offering) that was already seen connected. A call's state only moves
// forward, so such a snapshot was overtaken — typically a live event still in flight when a reconciliation
// GET returned the newer state. Hold and resume cannot be ordered this way; terminal states are sticky
// separately.
func (d *Deriver) stale(cv *derivedConv, c *Conversation) bool {
	for pi := range c.Participants {
		p := &c.Participants[pi]
		for ci := range p.Calls {
			call := &p.Calls[ci]
			key := call.ID
			if key == "" {
				key = p.ID + "#" + strconv.Itoa(ci)
			}
			switch call.State {
			case "alerting", "dialing", "contacting", "offering":
				if _, seen := cv.connected[key]; seen {
					return true
				}
			}
		}
	}
	return false
}

// legs flattens the snapshot into calls with their effective states. Three passes, so that a terminal state
// seen anywhere in the snapshot applies to every occurrence of that call or participant, which makes
// applying the same snapshot twice a no-op: record the calls that ended now, then the participants all of
// whose calls ended (now or before), then read every call through both.
func (d *Deriver) legs(cv *derivedConv, c *Conversation) []derivedLeg {
	var legs []derivedLeg
	for pi := range c.Participants {
		p := &c.Participants[pi]
		kind := deriveKind(p)
		tracked := kind == legAgent && d.tracked(p.UserID)
		for ci := range p.Calls {
			call := &p.Calls[ci]
			key := call.ID
			if key == "" {
				key = p.ID + "#" + strconv.Itoa(ci)
			}
			if deriveTerminalState(call.State) {
				deriveAdd(&cv.terminal, "c:"+key)
			}
			legs = append(legs, derivedLeg{p: p, c: call, key: key, state: call.State, kind: kind, tracked: tracked})
		}
	}
	ended := func(l *derivedLeg) bool {
		_, call := cv.terminal["c:"+l.key]
		_, participant := cv.terminal["p:"+l.p.ID]
		return call || (participant && l.p.ID != "")
	}
	for i := 0; i < len(legs); {
		j, all := i, true
		for ; j < len(legs) && legs[j].p == legs[i].p; j++ {
			all = all && ended(&legs[j])
		}
		if all && legs[i].p.ID != "" {
			deriveAdd(&cv.terminal, "p:"+legs[i].p.ID)
		}
		i = j
	}
	for i := range legs {
		l := &legs[i]
		if ended(l) {
			l.state = "disconnected"
		} else if l.state == "connected" {
			deriveAdd(&cv.connected, l.key)
		}
	}
	return legs
}

func deriveKind(p *Participant) legKind {
	if p.MonitoredParticipantID != "" || p.CoachedParticipantID != "" || p.BargedParticipantID != "" {
		return legMonitor
	}
	switch p.Purpose {
	case "agent", "user":
		return legAgent
	case "customer", "external":
		if p.ConsultParticipantID != "" {
			return legConsult
		}
		return legCustomer
	}
	return legRouting
}

// finishIfOver marks a conversation that never emitted as over once every call in it ended.
func (d *Deriver) finishIfOver(cv *derivedConv, legs []derivedLeg, received time.Time) {
	if len(legs) == 0 {
		return
	}
	for i := range legs {
		if !legs[i].terminal() {
			return
		}
	}
	cv.finished, cv.finishedAt = true, received
}

// held reports whether a call is on hold for recording purposes.
func (d *Deriver) held(c *Conversation, call *Call) bool {
	return call.Held || call.Confined || call.StartHoldTime != nil ||
		(d.SecurePauseHolds && (call.SecurePause || c.SecurePause))
}

// securePause: the conversation, or a connected customer or tracked agent call, is in secure pause.
func (d *Deriver) securePause(c *Conversation, legs []derivedLeg) bool {
	if c.SecurePause {
		return true
	}
	for i := range legs {
		l := &legs[i]
		if l.connected() && l.c.SecurePause && (l.kind == legCustomer || (l.kind == legAgent && l.tracked)) {
			return true
		}
	}
	return false
}

// agents aggregates the connected tracked agent legs per user, in participant order. A user is held when
// none of its connected calls is unheld.
func (d *Deriver) agents(c *Conversation, legs []derivedLeg) []cti.Agent {
	// A consulted agent (consultParticipantId set) talks to the consulting agent, not to the customer, for as
	// long as the consult lasts; once the consulting agent has left (consult transfer completed), or the
	// customer is back in a conference, the consulted agent is on the customer's call.
	// The customer is held during a consult and back in a conference: that, not the field alone, tells
	// them apart (whether a conferenced participant keeps consultParticipantId is not known for sure).
	consultingAgent, customerTalking := false, false
	for i := range legs {
		l := &legs[i]
		switch {
		case l.kind == legAgent && l.connected() && l.p.ConsultParticipantID == "":
			consultingAgent = true
		case l.kind == legCustomer && l.connected() && !d.held(c, l.c):
			customerTalking = true
		}
	}
	consulting := consultingAgent && !customerTalking
	var agents []cti.Agent
	for i := range legs {
		l := &legs[i]
		if l.kind != legAgent || !l.tracked || !l.connected() {
			continue
		}
		if consulting && l.p.ConsultParticipantID != "" {
			continue
		}
		held := d.held(c, l.c)
		j := slices.IndexFunc(agents, func(a cti.Agent) bool { return a.UserID == l.p.UserID })
		if j >= 0 {
			agents[j].Held = agents[j].Held && held
			continue
		}
		a := cti.Agent{UserID: l.p.UserID, Name: l.p.Name, ParticipantID: l.p.ID, Held: held}
		if d.UserInfo != nil {
			if name, email := d.UserInfo(l.p.UserID); name != "" || email != "" {
				a.Name = wireFirst(name, a.Name)
				a.Email = email
			}
		}
		agents = append(agents, a)
	}
	return agents
}

// collectUUI adds every uuiData and configured attribute value of the snapshot to the conversation's UUI
// and UCID sets (first-seen order, bounded). Values only ever accumulate: a UUI that appears in a later
// snapshot (Architect setting participant data after the start, edge 24) adds a UCID and so an event.
func (d *Deriver) collectUUI(cv *derivedConv, c *Conversation) {
	add := func(v string) {
		v = strings.TrimSpace(v)
		if v == "" || len(v) > deriveMaxUUILen || len(cv.uui) >= deriveMaxUUI || slices.Contains(cv.uui, v) {
			return
		}
		cv.uui = append(cv.uui, v)
		if u, ok := matcher.ParseUCID(v); ok {
			if s := u.String(); !slices.Contains(cv.ucids, s) {
				cv.ucids = append(cv.ucids, s)
			}
		}
	}
	for pi := range c.Participants {
		p := &c.Participants[pi]
		for ci := range p.Calls {
			add(p.Calls[ci].UUIData)
		}
		if len(p.Attributes) == 0 {
			continue
		}
		for _, key := range d.UUIAttributes {
			if v, ok := p.Attributes[key]; ok {
				add(v)
			}
			var folded []string
			for k := range p.Attributes {
				if k != key && strings.EqualFold(k, key) {
					folded = append(folded, k)
				}
			}
			sort.Strings(folded)
			for _, k := range folded {
				add(p.Attributes[k])
			}
		}
	}
}

// deriveTransferPending decides, when the last tracked agents just left, whether they transferred the call:
// one of their participants ended with a transfer disconnect, or a transfer is pending or active.
func deriveTransferPending(c *Conversation, legs []derivedLeg, gone []cti.Agent) bool {
	for _, t := range c.RecentTransfers {
		if s := strings.ToLower(t.State); s == "pending" || s == "active" {
			return true
		}
	}
	for i := range legs {
		l := &legs[i]
		if l.terminal() && deriveIsTransferDisconnect(l.c.DisconnectType) &&
			slices.ContainsFunc(gone, func(a cti.Agent) bool { return a.ParticipantID == l.p.ID }) {
			return true
		}
	}
	return false
}

// deriveRoutingPending: the customer is on its way somewhere: a party is alerting/dialing, or a queue or flow
// participant is connected.
func deriveRoutingPending(legs []derivedLeg) bool {
	for i := range legs {
		l := &legs[i]
		switch {
		case l.kind == legMonitor:
		case l.kind == legRouting && l.connected():
			return true
		case l.alive() && !l.connected():
			return true
		}
	}
	return false
}

// deriveIsTransferDisconnect: transfer, transfer.consult, transfer.forward, … but not the disconnects of offers
// that were never answered, nor the merge into a conference.
func deriveIsTransferDisconnect(dt string) bool {
	switch dt {
	case "transfer.noanswer", "transfer.notavailable", "transfer.conference":
		return false
	}
	return dt == "transfer" || strings.HasPrefix(dt, "transfer.")
}

// deriveTransferred: recentTransfers is not empty, or an agent (tracked or not) whose call had been connected
// left with a transfer disconnect. Unanswered offers (disconnectType client, transfer.noanswer; never
// connected) are not transfers (edge 16).
func deriveTransferred(c *Conversation, legs []derivedLeg, cv *derivedConv) bool {
	// Only a completed transfer: recentTransfers also lists the attended transfer of a consult that is still
	// going on or was cancelled, which must not look like a transfer to the policy.
	for _, tr := range c.RecentTransfers {
		if strings.EqualFold(tr.State, "complete") {
			return true
		}
	}
	for i := range legs {
		l := &legs[i]
		if l.kind != legAgent || !l.terminal() || !deriveIsTransferDisconnect(l.c.DisconnectType) {
			continue
		}
		_, seen := cv.connected[l.key]
		if seen || l.connectedTime() != nil {
			return true
		}
	}
	return false
}

// deriveConsult: a consult participant, a consultation conversation, or a completed consult transfer.
func deriveConsult(c *Conversation, legs []derivedLeg) bool {
	if len(c.ConsultationConversations) > 0 {
		return true
	}
	for i := range c.Participants {
		if c.Participants[i].ConsultParticipantID != "" {
			return true
		}
	}
	for i := range legs {
		if legs[i].c.DisconnectType == "transfer.consult" {
			return true
		}
	}
	return false
}

// isConference: a transfer.conference disconnect, or two or more agent participants (tracked or not,
// monitors excluded) connected while a connected customer call is not held. The last condition keeps a
// consult (customer on hold while two agents talk) from counting as a conference.
func (d *Deriver) isConference(c *Conversation, legs []derivedLeg) bool {
	var agents []string
	customerUnheld := false
	for i := range legs {
		l := &legs[i]
		if l.c.DisconnectType == "transfer.conference" {
			return true
		}
		switch {
		case l.kind == legAgent && l.connected() && !slices.Contains(agents, l.p.ID):
			agents = append(agents, l.p.ID)
		case l.kind == legCustomer && l.connected() && !d.held(c, l.c):
			customerUnheld = true
		}
	}
	return customerUnheld && len(agents) >= 2
}

// deriveQueueID: the queue of a connected tracked agent participant, else of the latest acd participant, else of
// the latest participant that names one.
func deriveQueueID(c *Conversation, legs []derivedLeg, agents []cti.Agent) string {
	for _, a := range agents {
		for i := range c.Participants {
			if p := &c.Participants[i]; p.ID == a.ParticipantID && p.QueueID != "" {
				return p.QueueID
			}
		}
	}
	for i := len(c.Participants) - 1; i >= 0; i-- {
		if p := &c.Participants[i]; p.Purpose == "acd" && p.QueueID != "" {
			return p.QueueID
		}
	}
	for i := len(c.Participants) - 1; i >= 0; i-- {
		if p := &c.Participants[i]; p.QueueID != "" && deriveKind(p) != legMonitor {
			return p.QueueID
		}
	}
	return ""
}

// deriveAddresses reads the first connected customer call (else the first customer call): its direction;
// ANI, the customer's address (participant address, else the call's other side); DNIS, the other party's
// address on that call (self, or other when self is the customer): the number the customer dialled on an
// inbound call, our caller id on an outbound one. "tel:" is stripped.
func deriveAddresses(legs []derivedLeg) (direction, ani, dnis string) {
	var leg *derivedLeg
	for i := range legs {
		if l := &legs[i]; l.kind == legCustomer && (leg == nil || (l.connected() && !leg.connected())) {
			leg = l
		}
	}
	if leg == nil {
		return "", "", ""
	}
	var self, other string
	if leg.c.Self != nil {
		self = deriveStripTel(leg.c.Self.AddressNormalized)
	}
	if leg.c.Other != nil {
		other = deriveStripTel(leg.c.Other.AddressNormalized)
	}
	ani = deriveStripTel(leg.p.Address)
	if ani == "" {
		ani = other
	}
	dnis = self
	if dnis == "" || dnis == ani {
		dnis = other
	}
	if dnis == ani {
		dnis = ""
	}
	return leg.c.Direction, ani, dnis
}

func deriveStripTel(s string) string {
	s = strings.TrimSpace(s)
	if len(s) >= 4 && strings.EqualFold(s[:4], "tel:") {
		return s[4:]
	}
	return s
}

// eventTime picks the payload timestamp of the change (best effort, provider/cloud clock):
//   - the start: when both sides were connected (the later of the first customer and the first tracked
//     agent connectedTime);
//   - ENDED: the customers' disconnectedTime; after a transfer away, the later of the connectedTime of
//     whoever took the call and the departed agents' disconnectedTime;
//   - into HELD: the latest startHoldTime;
//   - otherwise: a joining agent's connectedTime, a leaving agent's disconnectedTime, a newly held agent's
//     startHoldTime.
//
// A resume or a UUI that appeared carry no timestamp; those (and anything else without one) take received.
func (d *Deriver) eventTime(cv *derivedConv, c *Conversation, legs []derivedLeg, ev *cti.Event, customerLive bool,
	reached []*derivedLeg, received time.Time) time.Time {
	prevAgent := func(l *derivedLeg) bool {
		return slices.ContainsFunc(cv.agents, func(a cti.Agent) bool { return a.ParticipantID == l.p.ID })
	}
	nowAgent := func(l *derivedLeg) (cti.Agent, bool) {
		i := slices.IndexFunc(ev.Agents, func(a cti.Agent) bool { return a.UserID == l.p.UserID })
		if i < 0 || !l.tracked || l.kind != legAgent || !l.connected() {
			return cti.Agent{}, false
		}
		return ev.Agents[i], true
	}
	var leave, join, newlyHeld, hold *time.Time
	for i := range legs {
		l := &legs[i]
		if l.terminal() && prevAgent(l) {
			leave = deriveLatest(leave, l.endTime())
		}
		if a, ok := nowAgent(l); ok {
			if !slices.ContainsFunc(cv.agents, func(p cti.Agent) bool { return p.UserID == a.UserID }) {
				if l.p.ConsultParticipantID == "" || l.c.ConnectedTime == nil {
					// A consulted agent's connect time is when the consult began, not when it joined the
					// customer: it says nothing about the change.
					join = deriveLatest(join, l.connectedTime())
				}
			} else if a.Held && !slices.ContainsFunc(cv.agents, func(p cti.Agent) bool { return p.UserID == a.UserID && p.Held }) {
				newlyHeld = deriveLatest(newlyHeld, l.c.StartHoldTime)
			}
			hold = deriveLatest(hold, l.c.StartHoldTime)
		}
		if l.kind == legCustomer && l.connected() {
			hold = deriveLatest(hold, l.c.StartHoldTime)
		}
	}
	var t *time.Time
	switch {
	case cv.state == "":
		var cust, agent *time.Time
		for i := range legs {
			l := &legs[i]
			if !l.connected() {
				continue
			}
			if l.kind == legCustomer {
				cust = deriveEarliest(cust, l.connectedTime())
			} else if _, ok := nowAgent(l); ok {
				agent = deriveEarliest(agent, l.connectedTime())
			}
		}
		t = deriveLatest(cust, agent)
	case ev.State == cti.StateEnded:
		if !customerLive {
			for i := range legs {
				if l := &legs[i]; l.kind == legCustomer {
					t = deriveLatest(t, l.endTime())
				}
			}
			if t == nil {
				t = leave
			}
			break
		}
		// Taken over: when the last of (the taker connected, the tracked agents left) happened.
		for _, l := range reached {
			t = deriveLatest(t, l.connectedTime())
		}
		t = deriveLatest(t, leave)
	default:
		if ev.State == cti.StateHeld && cv.state != cti.StateHeld {
			t = hold
		}
		if t == nil {
			// Agents joined and left in one snapshot (a consult transfer completed): the change is when the
			// last of them happened.
			t = deriveLatest(join, leave)
		}
		if t == nil {
			t = newlyHeld
		}
	}
	if t == nil {
		return received
	}
	return *t
}

func deriveLatest(a, b *time.Time) *time.Time {
	if a == nil || (b != nil && b.After(*a)) {
		return b
	}
	return a
}

func deriveEarliest(a, b *time.Time) *time.Time {
	if a == nil || (b != nil && b.Before(*a)) {
		return b
	}
	return a
}

// deriveSignature is what decides whether an event is new: state, the tracked agents (user, participant,
// held), the secure pause and the UCIDs. Flags, queue and addresses ride along but do not make an event.
func deriveSignature(ev *cti.Event) string {
	agents := make([]string, 0, len(ev.Agents))
	for _, a := range ev.Agents {
		agents = append(agents, a.UserID+"/"+a.ParticipantID+"/"+strconv.FormatBool(a.Held))
	}
	sort.Strings(agents)
	var b strings.Builder
	b.WriteString(string(ev.State))
	b.WriteString("|")
	b.WriteString(strings.Join(agents, ","))
	b.WriteString("|")
	b.WriteString(strconv.FormatBool(ev.SecurePause))
	b.WriteString("|")
	ucids := slices.Clone(ev.UCIDs)
	sort.Strings(ucids)
	b.WriteString(strings.Join(ucids, ","))
	return b.String()
}

// deriveConversationID canonicalises a conversation id (lower-case UUID); a non-UUID id is lower-cased.
func deriveConversationID(s string) string {
	if id, ok := matcher.ParseConversationID(s); ok {
		return id
	}
	s = strings.ToLower(strings.TrimSpace(s))
	if len(s) > deriveMaxIDLength {
		return ""
	}
	return s
}

func deriveAdd(m *map[string]struct{}, k string) {
	if *m == nil {
		*m = make(map[string]struct{})
	}
	if len(*m) < deriveMaxLegKeys {
		(*m)[k] = struct{}{}
	}
}
