package matcher

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// actionTimeout bounds one Activate or Pause (a re-INVITE transaction, an AudioHook message).
const actionTimeout = 30 * time.Second

// Caps on what untrusted input can make the matcher keep per session or conversation.
const (
	maxKeys     = 32   // keys per session or call
	maxKeyLen   = 256  // a key value that is neither a UCID nor a UUID
	maxAgents   = 256  // agents per observation, and agents ever seen per session
	maxSegments = 1000 // segments per session; later changes still drive the media
	maxRelated  = 64   // sessions named as related per conversation
	maxIgnored  = 16   // other conversations logged as ignored per session
)

// Matcher ties media sessions to CTI conversations and drives them. It implements Binder for the media
// servers and takes CTI observations through OnCall. Every method is safe for concurrent use.
//
// Matching: a session's keys (from Keys at AddSession/UpdateSession time) are looked up among the
// conversations the CTI feed has shown (the Store, and those already bound here). Keys match when kind and
// value are equal and the tenants are compatible ("" matches any). A conversation-id match is authoritative
// over a UCID match; among several conversations carrying a UCID the matcher prefers a live one (ACTIVE or
// HELD) over an ENDED one, then the latest received, and logs and counts the ambiguity when the others were
// received within AmbiguityWindow of it. A session binds to one conversation for good, with two
// exceptions: a session bound by UCID moves to the conversation its conversation id names when that shows
// up, and a session bound by UCID to an ENDED conversation that it never recorded moves to a live
// conversation carrying the UCID (UCID reuse, race 25f).
//
// Driving: every observation of a bound conversation is turned into the media state the policy wants
// (see Config.desired) and a segment when state, agents or secure pause changed. Activate and Pause run on
// one worker goroutine per bound session, which converges the session to the latest wanted state; the
// session's Annotate is called on the goroutine that made the change, outside the matcher's lock, in order.
// Sessions are handed over inactive: a session that never recorded is not paused. Annotate must not call
// back into the matcher.
type Matcher struct {
	cfg   Config
	log   *slog.Logger
	now   func() time.Time
	store Store
	reg   prometheus.Registerer
	met   *metrics

	mu          sync.Mutex
	sessions    map[string]*binding // by session id
	byKey       map[Key]map[*binding]struct{}
	convs       map[convKey]*conversation // conversations with media here (or that had, until the store forgets them)
	convByKey   map[Key]map[*conversation]struct{}
	unmatched   int // sessions waiting for a conversation
	boundStored int // conversations in the store that have a session bound here
}

var _ Binder = (*Matcher)(nil)

// Option configures a Matcher.
type Option func(*Matcher)

// WithLogger sets the logger (default slog.Default()).
func WithLogger(l *slog.Logger) Option { return func(m *Matcher) { m.log = l } }

// WithRegisterer registers the matcher's metrics there (default: a private registry).
func WithRegisterer(r prometheus.Registerer) Option { return func(m *Matcher) { m.reg = r } }

// WithClock sets the clock used for TTLs, match times and latencies (default time.Now).
func WithClock(now func() time.Time) Option { return func(m *Matcher) { m.now = now } }

// WithStore replaces the in-memory store of pending calls. A store made by NewMemoryStore is given the
// matcher's clock.
func WithStore(s Store) Option { return func(m *Matcher) { m.store = s } }

// New builds a matcher; Run sweeps its pending calls.
func New(cfg Config, opts ...Option) (*Matcher, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	m := &Matcher{
		cfg: cfg, log: slog.Default(), now: time.Now,
		sessions: map[string]*binding{}, byKey: map[Key]map[*binding]struct{}{},
		convs: map[convKey]*conversation{}, convByKey: map[Key]map[*conversation]struct{}{},
	}
	for _, o := range opts {
		o(m)
	}
	if m.store == nil {
		m.store = newMemoryStore(m.now)
	} else if s, ok := m.store.(interface{ setClock(func() time.Time) }); ok {
		s.setClock(m.now)
	}
	if m.reg == nil {
		m.reg = prometheus.NewRegistry()
	}
	m.met = newMetrics(m.reg)
	m.reg.MustRegister(sessionsCollector{m})
	return m, nil
}

// binding is the matcher's record of one media session.
type binding struct {
	id     string
	s      MediaSession
	tenant string
	keys   []Key
	added  time.Time

	// match
	conv        *conversation // nil while unmatched
	by          Key
	at          time.Time
	latency     time.Duration
	everMatched bool
	provisional bool // bound by UCID to an ENDED conversation: a live one carrying the UCID may take it
	ignored     map[convKey]struct{}

	// what the recording has seen
	hasLast   bool
	last      Call // the observation the segments were last built from
	segments  []Segment
	agents    []Agent
	capLogged bool

	// media, converged by the worker
	desired    mediaState
	everActive bool      // wanted active at least once: it has recorded this call
	since      time.Time // when the current desired state was asked for (activation latency)
	gen, done  uint64    // desired changes made, and taken by the worker
	applied    mediaState
	working    bool
	busy       bool // an Activate or Pause is running
	removed    bool
	wake       chan struct{}
	ctx        context.Context // cancelled by RemoveSession
	cancel     context.CancelFunc

	// annotations: versions are made under Matcher.mu, delivered in order under annMu
	annVer  uint64
	lastAnn Annotation
	annMu   sync.Mutex
	annSent uint64
}

// conversation is a CTI conversation with media here.
type conversation struct {
	key      convKey
	call     Call // latest observation
	info     struct{ direction, queue, ani, dnis string }
	sessions map[string]*binding
	related  []string // every session bound to it, in order
	inStore  bool     // the store holds it (as far as this node knows)
	counted  bool     // counted in boundStored
	touched  time.Time
}

// AddSession takes a media session that is ready (SIPREC answered inactive and ACKed, AudioHook opened):
// its keys are indexed and matched against the conversations seen. A conversation already known replays
// its latest state at once. Adding a session id again takes its new keys and tenant.
func (m *Matcher) AddSession(s MediaSession, tenant string) {
	id, keys, now := s.ID(), normKeys(s.Keys()), m.now()
	var out deliveries
	m.mu.Lock()
	b := m.sessions[id]
	if b == nil {
		ctx, cancel := context.WithCancel(context.Background())
		b = &binding{id: id, s: s, tenant: tenant, added: now, wake: make(chan struct{}, 1), ctx: ctx, cancel: cancel}
		m.sessions[id] = b
		m.unmatched++
		m.setKeys(b, keys)
		m.log.Debug("media session waiting for its call", "session", id, "tenant", tenant, "keys", keysAttr(keys))
	} else {
		b.s, b.tenant = s, tenant
		m.setKeys(b, keys)
	}
	if b.conv == nil {
		m.match(b, now, &out)
	} else {
		m.reconsider(b, now, &out)
	}
	m.gauges()
	m.mu.Unlock()
	out.deliver()
}

// UpdateSession re-reads a session's keys (x-inin-cnv from a metadata re-INVITE): an unmatched session is
// matched, a session bound by UCID moves to the conversation its new conversation id names.
func (m *Matcher) UpdateSession(s MediaSession) {
	id, keys, now := s.ID(), normKeys(s.Keys()), m.now()
	var out deliveries
	m.mu.Lock()
	b := m.sessions[id]
	if b == nil {
		m.mu.Unlock()
		m.log.Debug("keys of an unknown media session ignored", "session", id)
		return
	}
	m.setKeys(b, keys)
	if b.conv == nil {
		m.match(b, now, &out)
	} else {
		m.reconsider(b, now, &out)
	}
	m.gauges()
	m.mu.Unlock()
	out.deliver()
}

// RemoveSession forgets a session that ended (BYE, close) and stops its worker. Before it returns the
// session has its last annotation: the full picture when it was matched, or why it never was.
func (m *Matcher) RemoveSession(s MediaSession) {
	id, now := s.ID(), m.now()
	var out deliveries
	m.mu.Lock()
	b := m.sessions[id]
	if b == nil {
		m.mu.Unlock()
		return
	}
	delete(m.sessions, id)
	keys := b.keys
	m.setKeys(b, nil)
	b.removed = true
	b.cancel()
	var conv string
	if b.conv != nil {
		conv = b.conv.key.id
		if !b.everActive {
			b.annVer++
			b.lastAnn = m.annotation(b)
			b.lastAnn.NotRecorded = notRecordedReason(b.last)
		}
		if b.annVer > 0 {
			out = append(out, delivery{b: b, s: b.s, a: b.lastAnn, ver: b.annVer})
		}
		m.unbind(b, false, now, &out)
	} else {
		b.annVer++
		b.lastAnn = Annotation{Tenant: b.tenant, Unmatched: unmatchedReason(keys, now.Sub(b.added))}
		out = append(out, delivery{b: b, s: b.s, a: b.lastAnn, ver: b.annVer})
		m.log.Info("media session ended unmatched", "session", id, "tenant", b.tenant, "reason", b.lastAnn.Unmatched)
	}
	m.unmatched--
	m.gauges()
	m.mu.Unlock()
	out.deliver()
	if conv != "" {
		m.log.Debug("media session removed", "session", id, "conversation_id", conv)
	}
}

// unmatchedReason: "no CTI event with ucid 00025000160955721139 or conversation_id … within 3m12s".
func unmatchedReason(keys []Key, waited time.Duration) string {
	waited = max(waited, 0).Round(time.Second)
	if len(keys) == 0 {
		return fmt.Sprintf("no UCID or conversation id to match on within %s", waited)
	}
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = string(k.Kind) + " " + k.Value
	}
	return fmt.Sprintf("no CTI event with %s within %s", strings.Join(parts, " or "), waited)
}

// OnCall takes one CTI observation: it waits in the store for media (CallTTL, 1 minute once ENDED), every
// session bound to its conversation is driven to the state it asks for, and waiting sessions carrying
// its keys are matched. A zero Received is taken as now.
func (m *Matcher) OnCall(c Call) {
	now := m.now()
	c = normCall(c, now)
	if c.ConversationID == "" {
		m.log.Warn("CTI observation without a conversation id ignored", "tenant", c.Tenant, "state", c.State)
		return
	}
	ck := keyOf(c)
	var out deliveries
	m.mu.Lock()
	m.store.Put(c, now.Add(m.cfg.ttl(c)))
	if conv := m.convs[ck]; conv != nil {
		conv.inStore = true
		conv.touched = now
		m.setConvCall(conv, c)
		m.recount(conv)
		for _, b := range sortedSessions(conv.sessions) {
			m.apply(b, conv.call, now, &out)
		}
	}
	for _, b := range m.sessionsCarrying(c) {
		switch {
		case b.conv == nil:
			m.match(b, now, &out)
		case b.conv.key == ck:
		case m.reconsider(b, now, &out):
		default:
			if _, seen := b.ignored[ck]; !seen && len(b.ignored) < maxIgnored {
				if b.ignored == nil {
					b.ignored = map[convKey]struct{}{}
				}
				b.ignored[ck] = struct{}{}
				m.log.Info("another conversation carries the key of a bound session: ignored", "session", b.id,
					"conversation_id", b.conv.key.id, "other_conversation_id", c.ConversationID, "tenant", c.Tenant)
			}
		}
	}
	m.gauges()
	m.mu.Unlock()
	out.deliver()
}

// Sweep expires pending calls past their TTL. A conversation that never had media here is counted
// (expired_calls_total: the SIPREC or AudioHook session never came).
func (m *Matcher) Sweep() {
	now := m.now()
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, c := range m.store.Expire(now) {
		if conv := m.convs[keyOf(c)]; conv != nil {
			conv.inStore = false
			m.recount(conv)
			if len(conv.sessions) == 0 {
				m.dropConv(conv)
			}
			continue
		}
		m.met.expired.Inc()
		m.log.Info("CTI conversation expired without media", "conversation_id", c.ConversationID, "tenant", c.Tenant,
			"state", c.State, "keys", keysAttr(c.Keys), "received", c.Received)
	}
	for _, conv := range m.convs {
		if len(conv.sessions) == 0 && !now.Before(conv.touched.Add(m.cfg.ttl(conv.call))) {
			m.dropConv(conv)
		}
	}
	m.gauges()
}

// Run sweeps every CallTTL/10 until ctx ends.
func (m *Matcher) Run(ctx context.Context) {
	t := time.NewTicker(max(m.cfg.CallTTL/10, time.Millisecond))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			m.Sweep()
		}
	}
}

// Session reports what the matcher knows of a media session: its annotation so far (matched or not). It is
// the answer to "why is this call not being recorded?" for operators, and a condition for tests to wait on.
func (m *Matcher) Session(id string) (Annotation, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	b := m.sessions[id]
	if b == nil {
		return Annotation{}, false
	}
	if b.conv == nil {
		return Annotation{Tenant: b.tenant}, true
	}
	return m.annotation(b), true
}

// Pending counts the sessions waiting for a conversation and the calls waiting for media (in the store,
// no session bound here; with a shared store, the other nodes' calls count too).
func (m *Matcher) Pending() (sessions, calls int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.pending()
}

func (m *Matcher) pending() (sessions, calls int) {
	return m.unmatched, max(m.store.Len()-m.boundStored, 0)
}

func (m *Matcher) gauges() {
	s, c := m.pending()
	m.met.pendingSessions.Set(float64(s))
	m.met.pendingCalls.Set(float64(c))
}

// --- matching (m.mu held) ---

type candidate struct {
	call Call
	key  Key // the session key that found it; a conversation id when both did
}

// choice is the conversation a session should be bound to.
type choice struct {
	candidate
	rivals     []Call // other conversations with the UCID, received within the ambiguity window
	overridden []Call // conversations the session's UCID names, passed over for its conversation id
}

// candidates are the conversations carrying a session's keys: the store's and those bound here.
func (m *Matcher) candidates(b *binding) []candidate {
	var out []candidate
	add := func(c Call, k Key) {
		if !tenantsMatch(b.tenant, c.Tenant) {
			return
		}
		for i := range out {
			if keyOf(out[i].call) == keyOf(c) {
				if k.Kind == KeyConversationID {
					out[i].key = k
				}
				if c.Received.After(out[i].call.Received) {
					out[i].call = c
				}
				return
			}
		}
		out = append(out, candidate{call: c, key: k})
	}
	for _, k := range b.keys {
		for _, c := range m.store.Find(b.tenant, k) {
			add(c, k)
		}
		for conv := range m.convByKey[k] {
			add(conv.call, k)
		}
	}
	return out
}

// better orders candidates: a conversation-id match, then live over ENDED, then the latest received.
func better(a, b candidate) bool {
	if ac, bc := a.key.Kind == KeyConversationID, b.key.Kind == KeyConversationID; ac != bc {
		return ac
	}
	if al, bl := a.call.State != CallEnded, b.call.State != CallEnded; al != bl {
		return al
	}
	if !a.call.Received.Equal(b.call.Received) {
		return a.call.Received.After(b.call.Received)
	}
	return cmp.Or(cmp.Compare(a.call.Tenant, b.call.Tenant), cmp.Compare(a.call.ConversationID, b.call.ConversationID)) < 0
}

func (m *Matcher) choose(b *binding) (choice, bool) {
	cands := m.candidates(b)
	if len(cands) == 0 {
		return choice{}, false
	}
	best := cands[0]
	for _, c := range cands[1:] {
		if better(c, best) {
			best = c
		}
	}
	ch := choice{candidate: best}
	for _, c := range cands {
		switch {
		case keyOf(c.call) == keyOf(best.call):
		case best.key.Kind == KeyConversationID && c.key.Kind != KeyConversationID:
			ch.overridden = append(ch.overridden, c.call)
		case absDur(c.call.Received.Sub(best.call.Received)) <= m.cfg.AmbiguityWindow:
			ch.rivals = append(ch.rivals, c.call)
		}
	}
	return ch, true
}

func absDur(d time.Duration) time.Duration {
	if d < 0 {
		return -d
	}
	return d
}

// match binds a waiting session to the best conversation carrying its keys, if any.
func (m *Matcher) match(b *binding, now time.Time, out *deliveries) {
	if ch, ok := m.choose(b); ok {
		m.bind(b, ch, now, out)
	}
}

// reconsider moves a bound session when a conversation-id key overrides its UCID match, or when its
// provisional match (UCID → ENDED conversation, never recorded) meets a live conversation with the UCID.
func (m *Matcher) reconsider(b *binding, now time.Time, out *deliveries) bool {
	ch, ok := m.choose(b)
	if !ok || keyOf(ch.call) == b.conv.key {
		return false
	}
	switch {
	case ch.key.Kind == KeyConversationID && b.by.Kind != KeyConversationID:
		m.log.Warn("conversation id overrides the UCID match: session moves", "session", b.id,
			"from_conversation_id", b.conv.key.id, "conversation_id", ch.call.ConversationID, "tenant", ch.call.Tenant)
	case b.provisional && !b.everActive && ch.call.State != CallEnded:
		m.log.Warn("UCID reused: session moves from an ended conversation to a live one", "session", b.id,
			"from_conversation_id", b.conv.key.id, "conversation_id", ch.call.ConversationID, "ucid", ch.key.Value)
		if !slices.ContainsFunc(ch.rivals, func(c Call) bool { return keyOf(c) == b.conv.key }) {
			ch.rivals = append(ch.rivals, b.conv.call)
		}
	default:
		return false
	}
	m.unbind(b, true, now, out)
	m.bind(b, ch, now, out)
	return true
}

func (m *Matcher) bind(b *binding, ch choice, now time.Time, out *deliveries) {
	ck := keyOf(ch.call)
	conv := m.convs[ck]
	if conv == nil {
		conv = &conversation{key: ck, sessions: map[string]*binding{}, inStore: true}
		m.convs[ck] = conv
		m.setConvCall(conv, ch.call)
	} else if ch.call.Received.After(conv.call.Received) {
		m.setConvCall(conv, ch.call)
	}
	if b.conv == nil {
		m.unmatched--
	}
	b.conv, b.by, b.at = conv, ch.key, now
	b.latency = max(now.Sub(later(b.added, ch.call.Received)), 0)
	b.provisional = ch.key.Kind == KeyUCID && conv.call.State == CallEnded
	conv.sessions[b.id] = b
	conv.touched = now
	if !slices.Contains(conv.related, b.id) && len(conv.related) < maxRelated {
		conv.related = append(conv.related, b.id)
	}
	m.recount(conv)
	m.met.matches.WithLabelValues(string(ch.key.Kind)).Inc()
	if !b.everMatched {
		b.everMatched = true
		m.met.matchLatency.Observe(b.latency.Seconds())
	}
	log := m.log.With("session", b.id, "conversation_id", ck.id, "tenant", ck.tenant)
	if ch.key.Kind == KeyUCID {
		log = log.With("ucid", ch.key.Value)
	}
	log.Info("media session matched", "matched_by", string(ch.key.Kind), "state", conv.call.State,
		"latency", b.latency, "related", len(conv.sessions)-1)
	if len(ch.rivals) > 0 {
		m.met.ambiguous.Inc()
		others := make([]string, len(ch.rivals))
		for i, c := range ch.rivals {
			others[i] = c.ConversationID
		}
		log.Warn("UCID on several conversations: chose the latest live one", "others", others)
	}
	for _, c := range ch.overridden {
		log.Info("conversation id is authoritative: UCID match on another conversation passed over",
			"other_conversation_id", c.ConversationID)
	}
	if !b.working {
		b.working = true
		go m.work(b)
	}
	m.apply(b, conv.call, now, out)
	for _, o := range sortedSessions(conv.sessions) {
		if o != b {
			m.annotate(o, out) // Related changed
		}
	}
}

// unbind detaches a session from its conversation. wrong: the match was wrong (the session moves on), so
// the recording's picture of the conversation is dropped and the others stop naming it as related.
func (m *Matcher) unbind(b *binding, wrong bool, now time.Time, out *deliveries) {
	conv := b.conv
	delete(conv.sessions, b.id)
	conv.touched = now
	b.conv = nil
	m.unmatched++
	if wrong {
		conv.related = slices.DeleteFunc(conv.related, func(id string) bool { return id == b.id })
		b.hasLast, b.last, b.segments, b.agents, b.provisional, b.ignored = false, Call{}, nil, nil, false, nil
		for _, o := range sortedSessions(conv.sessions) {
			m.annotate(o, out)
		}
		if len(conv.related) == 0 {
			m.dropConv(conv) // never really had media: let it expire (and be counted) as a call without media
			return
		}
	}
	m.recount(conv)
}

// apply turns an observation of a session's conversation into a segment, a wanted media state and an
// annotation.
func (m *Matcher) apply(b *binding, c Call, now time.Time, out *deliveries) {
	if !b.hasLast || segmentChanged(b.last, c) {
		reason := ReasonMatched
		if b.hasLast {
			reason = segmentReason(b.last, c)
		}
		start := c.Time
		if start.IsZero() {
			start = c.Received
		}
		if n := len(b.segments); n > 0 && start.Before(b.segments[n-1].Start) {
			start = b.segments[n-1].Start // keep them in order whatever the source clock does
		}
		if len(b.segments) < maxSegments {
			b.segments = append(b.segments, Segment{Start: start, State: c.State, Agents: slices.Clone(c.Agents), Reason: reason})
		} else if !b.capLogged {
			b.capLogged = true
			m.log.Warn("segment cap reached: later segments are not recorded", "session", b.id, "conversation_id", c.ConversationID)
		}
	}
	for _, a := range c.Agents {
		switch i := slices.IndexFunc(b.agents, func(x Agent) bool { return x.UserID == a.UserID }); {
		case i >= 0:
			if a.Name != "" {
				b.agents[i].Name = a.Name
			}
		case len(b.agents) < maxAgents:
			b.agents = append(b.agents, a)
		}
	}
	b.last, b.hasLast = c, true
	if c.State != CallEnded {
		b.provisional = false
	}
	if want := m.cfg.desired(c, b.desired, b.everActive); want != b.desired {
		b.desired = want
		b.gen++
		if want == mediaActive {
			b.everActive = true
		}
		b.since = later(c.Received, b.added)
		select {
		case b.wake <- struct{}{}:
		default:
		}
		m.log.Debug("media state wanted", "session", b.id, "conversation_id", c.ConversationID, "state", c.State, "media", want.String())
	}
	m.annotate(b, out)
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// --- annotations ---

type delivery struct {
	b   *binding
	s   MediaSession
	a   Annotation
	ver uint64
}

type deliveries []delivery

// deliver hands annotations over outside the matcher's lock; an older version than one already handed
// over is dropped, so the session ends with the latest.
func (d deliveries) deliver() {
	for _, x := range d {
		x.b.annMu.Lock()
		if x.ver > x.b.annSent {
			x.b.annSent = x.ver
			x.s.Annotate(x.a)
		}
		x.b.annMu.Unlock()
	}
}

// annotate queues a session's annotation if it changed.
func (m *Matcher) annotate(b *binding, out *deliveries) {
	a := m.annotation(b)
	if b.annVer > 0 && sameAnnotation(a, b.lastAnn) {
		return
	}
	b.annVer++
	b.lastAnn = a
	*out = append(*out, delivery{b: b, s: b.s, a: a, ver: b.annVer})
}

func (m *Matcher) annotation(b *binding) Annotation {
	conv := b.conv
	a := Annotation{
		Tenant: cmp.Or(conv.key.tenant, b.tenant), ConversationID: conv.key.id,
		Direction: conv.info.direction, QueueID: conv.info.queue, ANI: conv.info.ani, DNIS: conv.info.dnis,
		Agents:    slices.Clone(b.agents),
		Segments:  make([]Segment, len(b.segments)),
		MatchedBy: b.by, MatchedAt: b.at, MatchLatency: b.latency,
	}
	for i, s := range b.segments {
		s.Agents = slices.Clone(s.Agents)
		a.Segments[i] = s
	}
	for _, id := range conv.related {
		if id != b.id {
			a.Related = append(a.Related, id)
		}
	}
	slices.Sort(a.Related)
	return a
}

func sameAnnotation(a, b Annotation) bool {
	return a.Tenant == b.Tenant && a.ConversationID == b.ConversationID && a.Direction == b.Direction &&
		a.QueueID == b.QueueID && a.ANI == b.ANI && a.DNIS == b.DNIS && a.MatchedBy == b.MatchedBy &&
		a.MatchedAt.Equal(b.MatchedAt) && a.MatchLatency == b.MatchLatency && a.Unmatched == b.Unmatched && a.NotRecorded == b.NotRecorded &&
		slices.Equal(a.Related, b.Related) && slices.Equal(a.Agents, b.Agents) &&
		slices.EqualFunc(a.Segments, b.Segments, func(x, y Segment) bool {
			return x.Start.Equal(y.Start) && x.State == y.State && x.Reason == y.Reason && slices.Equal(x.Agents, y.Agents)
		})
}

// --- the worker ---

// work converges one session's media to the latest wanted state until the session is removed.
func (m *Matcher) work(b *binding) {
	for {
		select {
		case <-b.ctx.Done():
			return
		case <-b.wake:
		}
		for m.step(b) {
		}
	}
}

// step takes the latest wanted state and acts on it if the session is not there yet; false when there was
// nothing left to take.
func (m *Matcher) step(b *binding) bool {
	m.mu.Lock()
	if b.removed || b.done == b.gen {
		m.mu.Unlock()
		return false
	}
	b.done = b.gen
	want, have, since, s := b.desired, b.applied, b.since, b.s
	if want == have || want == mediaIdle || (want == mediaPaused && have == mediaIdle) {
		m.mu.Unlock()
		return true
	}
	var conv string
	if b.conv != nil {
		conv = b.conv.key.id
	}
	b.busy = true
	m.mu.Unlock()
	action := "activate"
	ctx, cancel := context.WithTimeout(b.ctx, actionTimeout)
	var err error
	if want == mediaActive {
		err = s.Activate(ctx)
	} else {
		action = "pause"
		err = s.Pause(ctx)
	}
	cancel()
	end := m.now()
	m.mu.Lock()
	if err == nil {
		b.applied = want
	}
	b.busy = false
	removed := b.removed
	m.mu.Unlock()
	switch {
	case err == nil:
		m.met.actions.WithLabelValues(action, "ok").Inc()
		if want == mediaActive {
			m.met.activationLatency.Observe(max(end.Sub(since), 0).Seconds())
		}
		m.log.Debug("media session "+action+"d", "session", b.id, "conversation_id", conv)
	case removed:
		m.met.actions.WithLabelValues(action, "cancelled").Inc()
		m.log.Debug("media session ended during "+action, "session", b.id, "conversation_id", conv, "error", err)
	default:
		m.met.actions.WithLabelValues(action, "error").Inc()
		m.log.Warn("media session "+action+" failed", "session", b.id, "conversation_id", conv, "error", err)
	}
	return true
}

// --- indexes (m.mu held) ---

func (m *Matcher) setKeys(b *binding, keys []Key) {
	for _, k := range b.keys {
		if set := m.byKey[k]; set != nil {
			delete(set, b)
			if len(set) == 0 {
				delete(m.byKey, k)
			}
		}
	}
	b.keys = keys
	for _, k := range keys {
		set := m.byKey[k]
		if set == nil {
			set = map[*binding]struct{}{}
			m.byKey[k] = set
		}
		set[b] = struct{}{}
	}
}

// setConvCall makes c the conversation's latest observation, re-indexing its keys and keeping the call
// details seen so far when c lacks them.
func (m *Matcher) setConvCall(conv *conversation, c Call) {
	old := conv.call
	conv.call = c
	conv.info.direction = cmp.Or(c.Direction, conv.info.direction)
	conv.info.queue = cmp.Or(c.QueueID, conv.info.queue)
	conv.info.ani = cmp.Or(c.ANI, conv.info.ani)
	conv.info.dnis = cmp.Or(c.DNIS, conv.info.dnis)
	if old.ConversationID != "" && slices.Equal(old.Keys, c.Keys) {
		return
	}
	m.unindexConv(conv, old.Keys)
	for _, k := range c.Keys {
		set := m.convByKey[k]
		if set == nil {
			set = map[*conversation]struct{}{}
			m.convByKey[k] = set
		}
		set[conv] = struct{}{}
	}
}

func (m *Matcher) unindexConv(conv *conversation, keys []Key) {
	for _, k := range keys {
		if set := m.convByKey[k]; set != nil {
			delete(set, conv)
			if len(set) == 0 {
				delete(m.convByKey, k)
			}
		}
	}
}

func (m *Matcher) dropConv(conv *conversation) {
	conv.inStore = false
	m.recount(conv)
	m.unindexConv(conv, conv.call.Keys)
	delete(m.convs, conv.key)
}

// recount keeps boundStored: conversations in the store that have media here are not pending.
func (m *Matcher) recount(conv *conversation) {
	if want := conv.inStore && len(conv.sessions) > 0; want != conv.counted {
		conv.counted = want
		if want {
			m.boundStored++
		} else {
			m.boundStored--
		}
	}
}

// sessionsCarrying are the sessions with a key of c and a compatible tenant, by id.
func (m *Matcher) sessionsCarrying(c Call) []*binding {
	var out []*binding
	for _, k := range c.Keys {
		for b := range m.byKey[k] {
			if tenantsMatch(b.tenant, c.Tenant) && !slices.Contains(out, b) {
				out = append(out, b)
			}
		}
	}
	slices.SortFunc(out, func(a, b *binding) int { return cmp.Compare(a.id, b.id) })
	return out
}

func sortedSessions(set map[string]*binding) []*binding {
	out := make([]*binding, 0, len(set))
	for _, b := range set {
		out = append(out, b)
	}
	slices.SortFunc(out, func(a, b *binding) int { return cmp.Compare(a.id, b.id) })
	return out
}

// --- normalisation ---

// normKey puts a key in canonical form (20-digit UCID, lower-case UUID); other values are kept trimmed.
func normKey(k Key) (Key, bool) {
	switch k.Kind {
	case KeyUCID:
		if u, ok := ParseUCID(k.Value); ok {
			return Key{Kind: KeyUCID, Value: u.String()}, true
		}
	case KeyConversationID:
		if id, ok := ParseConversationID(k.Value); ok {
			return Key{Kind: KeyConversationID, Value: id}, true
		}
	}
	v := strings.TrimSpace(k.Value)
	if k.Kind == "" || v == "" || len(v) > maxKeyLen {
		return Key{}, false
	}
	return Key{Kind: k.Kind, Value: v}, true
}

func normKeys(keys []Key) []Key {
	var out []Key
	for _, k := range keys {
		if k, ok := normKey(k); ok && !slices.Contains(out, k) && len(out) < maxKeys {
			out = append(out, k)
		}
	}
	return out
}

// normCall copies what the matcher keeps of c (the caller may reuse its slices), in canonical form.
func normCall(c Call, now time.Time) Call {
	if id, ok := ParseConversationID(c.ConversationID); ok {
		c.ConversationID = id
	} else {
		c.ConversationID = strings.TrimSpace(c.ConversationID)
		if len(c.ConversationID) > maxKeyLen {
			c.ConversationID = ""
		}
	}
	keys := make([]Key, 0, len(c.Keys)+1)
	if c.ConversationID != "" {
		keys = append(keys, Key{Kind: KeyConversationID, Value: c.ConversationID})
	}
	c.Keys = normKeys(append(keys, c.Keys...))
	c.Agents = slices.Clone(c.Agents[:min(len(c.Agents), maxAgents)])
	if c.Received.IsZero() {
		c.Received = now
	}
	return c
}

// keysAttr logs keys as "ucid 0002…", "conversation_id …".
func keysAttr(keys []Key) []string {
	out := make([]string, len(keys))
	for i, k := range keys {
		out[i] = string(k.Kind) + " " + k.Value
	}
	return out
}

// Sessions lists the live media sessions, oldest first.
func (m *Matcher) Sessions() []SessionInfo {
	m.mu.Lock()
	now := m.now()
	out := make([]SessionInfo, 0, len(m.sessions))
	reporters := make([]Reporter, 0, len(m.sessions))
	for _, b := range m.sessions {
		info := SessionInfo{ID: b.id, Tenant: b.tenant, Keys: slices.Clone(b.keys), Since: b.added, State: SessionWaiting}
		switch b.applied {
		case mediaActive:
			info.State = SessionActive
		case mediaPaused:
			info.State = SessionPaused
		}
		if c := b.conv; c != nil {
			info.Tenant = cmp.Or(c.key.tenant, b.tenant)
			info.ConversationID, info.MatchedBy, info.Agents = c.key.id, b.by, slices.Clone(b.agents)
			info.WaitingReason = fmt.Sprintf("matched by %s %s; the recording policy keeps it idle while the call is %s",
				b.by.Kind, b.by.Value, strings.ToLower(string(c.call.State)))
		} else {
			info.WaitingReason = "waiting for the CTI feed: " + unmatchedReason(b.keys, now.Sub(b.added))
		}
		r, _ := b.s.(Reporter)
		out, reporters = append(out, info), append(reporters, r)
	}
	m.mu.Unlock()
	// The session's own view wins (asked outside the lock: it takes the session's).
	for i, r := range reporters {
		if r == nil {
			continue
		}
		out[i].Source = r.Source()
		if st := r.MediaState(); st != "" {
			out[i].State = st
		}
	}
	for i := range out {
		if out[i].State != SessionWaiting {
			out[i].WaitingReason = ""
		}
	}
	slices.SortFunc(out, func(a, b SessionInfo) int { return cmp.Or(a.Since.Compare(b.Since), cmp.Compare(a.ID, b.ID)) })
	return out
}
