package matcher

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// --- test doubles ---

// fakeSession is a MediaSession whose behaviour is a set of optional funcs; it records every call.
type fakeSession struct {
	id           string
	ActivateFunc func(context.Context) error
	PauseFunc    func(context.Context) error
	AnnotateFunc func(Annotation)

	mu          sync.Mutex
	keys        []Key
	actions     []string // "activate", "pause"
	annotations []Annotation
	inflight    int
	overlapped  bool // two actions ran at once
}

func newSession(id string, keys ...Key) *fakeSession { return &fakeSession{id: id, keys: keys} }

func (f *fakeSession) ID() string { return f.id }

func (f *fakeSession) Keys() []Key {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.keys)
}

func (f *fakeSession) setKeys(keys ...Key) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.keys = keys
}

func (f *fakeSession) act(ctx context.Context, name string, fn func(context.Context) error) error {
	f.mu.Lock()
	f.inflight++
	if f.inflight > 1 {
		f.overlapped = true
	}
	f.actions = append(f.actions, name)
	f.mu.Unlock()
	var err error
	if fn != nil {
		err = fn(ctx)
	}
	f.mu.Lock()
	f.inflight--
	f.mu.Unlock()
	return err
}

func (f *fakeSession) Activate(ctx context.Context) error {
	return f.act(ctx, "activate", f.ActivateFunc)
}
func (f *fakeSession) Pause(ctx context.Context) error { return f.act(ctx, "pause", f.PauseFunc) }

func (f *fakeSession) Annotate(a Annotation) {
	f.mu.Lock()
	f.annotations = append(f.annotations, a)
	f.mu.Unlock()
	if f.AnnotateFunc != nil {
		f.AnnotateFunc(a)
	}
}

func (f *fakeSession) Actions() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.actions)
}

func (f *fakeSession) Annotations() []Annotation {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.annotations)
}

// Last is the latest annotation (zero if none).
func (f *fakeSession) Last() Annotation {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.annotations) == 0 {
		return Annotation{}
	}
	return f.annotations[len(f.annotations)-1]
}

// clock is an injectable clock that moves only when told.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// --- fixtures ---

const (
	ucidA = "00025000160955721139"
	ucidB = "00071252771778010117"
	convX = "1b2c3d4e-0000-4000-8000-00000000000a"
	convY = "1b2c3d4e-0000-4000-8000-00000000000b"
	convZ = "1b2c3d4e-0000-4000-8000-00000000000c"
)

var (
	agentA = Agent{UserID: "agent-a", Name: "Alice"}
	agentB = Agent{UserID: "agent-b", Name: "Bob"}
	agentD = Agent{UserID: "agent-d", Name: "Dana"}
)

func ucid(v string) Key { return Key{Kind: KeyUCID, Value: v} }
func cnv(v string) Key  { return Key{Kind: KeyConversationID, Value: v} }

// call builds an observation of conversation id carrying ucids.
func call(id string, state CallState, agents []Agent, ucids ...string) Call {
	c := Call{Tenant: "acme", ConversationID: id, State: state, Agents: agents, Direction: "inbound",
		QueueID: "q-sales", ANI: "tel:+15550100", DNIS: "tel:+15550199"}
	for _, u := range ucids {
		c.Keys = append(c.Keys, ucid(u))
	}
	return c
}

func with(c Call, f func(*Call)) Call { f(&c); return c }

type env struct {
	t   *testing.T
	m   *Matcher
	clk *clock
	reg *prometheus.Registry
}

func newEnv(t *testing.T, cfg Config) *env {
	t.Helper()
	clk := newClock()
	reg := prometheus.NewRegistry()
	m, err := New(cfg, WithClock(clk.Now), WithRegisterer(reg), WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
	if err != nil {
		t.Fatal(err)
	}
	return &env{t: t, m: m, clk: clk, reg: reg}
}

// on stamps c with the clock and hands it to the matcher, then waits for the workers.
func (e *env) on(c Call) {
	e.t.Helper()
	c.Time, c.Received = e.clk.Now(), e.clk.Now()
	e.m.OnCall(c)
	e.settle()
}

func (e *env) add(s *fakeSession, tenant string) {
	e.t.Helper()
	e.m.AddSession(s, tenant)
	e.settle()
}

// settle waits until every session's worker has taken the latest wanted state and no action runs.
func (e *env) settle() {
	e.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		e.m.mu.Lock()
		idle := true
		for _, b := range e.m.sessions {
			if b.done != b.gen || b.busy {
				idle = false
			}
		}
		e.m.mu.Unlock()
		if idle {
			return
		}
		if time.Now().After(deadline) {
			e.t.Fatal("the session workers did not settle")
		}
		time.Sleep(time.Millisecond)
	}
}

func (e *env) pending(sessions, calls int) {
	e.t.Helper()
	if s, c := e.m.Pending(); s != sessions || c != calls {
		e.t.Errorf("Pending() = %d sessions, %d calls; want %d, %d", s, c, sessions, calls)
	}
}

// metric sums the series of name whose labels include every given label pair (histograms: sample count).
func (e *env) metric(name string, labels ...string) float64 {
	e.t.Helper()
	mfs, err := e.reg.Gather()
	if err != nil {
		e.t.Fatal(err)
	}
	total := 0.0
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, mt := range mf.GetMetric() {
			for i := 0; i+1 < len(labels); i += 2 {
				found := false
				for _, lp := range mt.GetLabel() {
					if lp.GetName() == labels[i] && lp.GetValue() == labels[i+1] {
						found = true
					}
				}
				if !found {
					continue next
				}
			}
			switch {
			case mt.Counter != nil:
				total += mt.GetCounter().GetValue()
			case mt.Gauge != nil:
				total += mt.GetGauge().GetValue()
			case mt.Histogram != nil:
				total += float64(mt.GetHistogram().GetSampleCount())
			}
		}
	}
	return total
}

func (e *env) histogramSum(name string) float64 {
	e.t.Helper()
	mfs, _ := e.reg.Gather()
	for _, mf := range mfs {
		if mf.GetName() == name {
			return mf.GetMetric()[0].GetHistogram().GetSampleSum()
		}
	}
	return 0
}

func reasons(a Annotation) []string {
	var out []string
	for _, s := range a.Segments {
		out = append(out, s.Reason)
	}
	return out
}

func states(a Annotation) []CallState {
	var out []CallState
	for _, s := range a.Segments {
		out = append(out, s.State)
	}
	return out
}

func expectActions(t *testing.T, s *fakeSession, want ...string) {
	t.Helper()
	if got := s.Actions(); !slices.Equal(got, want) {
		t.Errorf("session %s actions %v, want %v", s.id, got, want)
	}
}

// --- tests ---

func TestConfig(t *testing.T) {
	for _, tc := range []struct {
		name   string
		modify func(*Config)
		errs   []string
	}{
		{"default", func(*Config) {}, nil},
		{"mark and leave", func(c *Config) { c.Hold, c.End = HoldMark, EndLeave }, nil},
		{"zero window", func(c *Config) { c.AmbiguityWindow = 0 }, nil},
		{"bad hold", func(c *Config) { c.Hold = "stop" }, []string{"matcher.hold"}},
		{"empty end", func(c *Config) { c.End = "" }, []string{"matcher.end"}},
		{"no ttl", func(c *Config) { c.CallTTL = 0 }, []string{"call_ttl"}},
		{"everything", func(c *Config) { *c = Config{AmbiguityWindow: -1} },
			[]string{"matcher.hold", "matcher.end", "call_ttl", "ambiguity_window"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := DefaultConfig()
			tc.modify(&cfg)
			err := cfg.Validate()
			if (err != nil) != (len(tc.errs) > 0) {
				t.Fatalf("Validate() = %v", err)
			}
			for _, want := range tc.errs {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q lacks %q", err, want)
				}
			}
			if _, nerr := New(cfg); (nerr != nil) != (err != nil) {
				t.Errorf("New error %v, Validate error %v", nerr, err)
			}
		})
	}
	if d := DefaultConfig(); d.Hold != HoldPause || d.End != EndPause || d.CallTTL != 5*time.Minute || d.AmbiguityWindow != 2*time.Minute {
		t.Errorf("DefaultConfig() = %+v", d)
	}
}

// TestInboundByUCID: races 25a (media before the CTI) and 25b (CTI before the media), with the session's UCID in
// the hex forms SIPREC carries.
func TestInboundByUCID(t *testing.T) {
	for _, tc := range []struct {
		name       string
		mediaFirst bool
		key        string
	}{
		{"25a media first", true, ucidA},
		{"25b CTI first", false, ucidA},
		{"25b CTI first, UUI hex key", false, "00FA080019001038F725B3;encoding=hex"},
		{"25a media first, apkt:ucid key", true, "0019001038F725B3"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, DefaultConfig())
			s := newSession("rec-1", ucid(tc.key))
			active := call(convX, CallActive, []Agent{agentA}, ucidA)
			start := e.clk.Now()
			if tc.mediaFirst {
				e.add(s, "acme")
				e.pending(1, 0)
				expectActions(t, s)
				if len(s.Annotations()) != 0 {
					t.Errorf("annotated before a match: %+v", s.Annotations())
				}
				e.clk.Advance(20 * time.Second) // the IVR
				e.on(active)
			} else {
				e.on(active)
				e.pending(0, 1)
				e.clk.Advance(2 * time.Second) // the SBC is slow
				e.add(s, "acme")
			}
			e.pending(0, 0)
			expectActions(t, s, "activate")
			a := s.Last()
			if a.ConversationID != convX || a.MatchedBy != ucid(ucidA) || a.Tenant != "acme" || a.Direction != "inbound" ||
				a.QueueID != "q-sales" || a.ANI != "tel:+15550100" || a.DNIS != "tel:+15550199" || a.Unmatched != "" {
				t.Errorf("annotation %+v", a)
			}
			if !a.MatchedAt.Equal(start.Add(map[bool]time.Duration{true: 20 * time.Second, false: 2 * time.Second}[tc.mediaFirst])) || a.MatchLatency != 0 {
				t.Errorf("matched at %v (latency %v)", a.MatchedAt, a.MatchLatency)
			}
			if !slices.Equal(reasons(a), []string{ReasonMatched}) || !slices.Equal(a.Agents, []Agent{agentA}) {
				t.Errorf("segments %+v agents %+v", a.Segments, a.Agents)
			}
			if got := e.metric("siphook_matcher_matches_total", "key", "ucid"); got != 1 {
				t.Errorf("matches_total{ucid} = %v", got)
			}
			if got := e.metric("siphook_matcher_actions_total", "action", "activate", "result", "ok"); got != 1 {
				t.Errorf("actions_total{activate,ok} = %v", got)
			}
			e.m.RemoveSession(s)
			e.pending(0, 1) // the call waits for other media until it expires
		})
	}
}

// TestOutboundByConversationIDViaUpdate: nothing matches at first; x-inin-cnv arrives in a metadata re-INVITE.
func TestOutboundByConversationIDViaUpdate(t *testing.T) {
	e := newEnv(t, DefaultConfig())
	s := newSession("rec-out", ucid(ucidB)) // a UCID no CTI event carries
	e.add(s, "acme")
	out := with(call(convX, CallActive, []Agent{agentA}), func(c *Call) { c.Direction = "outbound" })
	e.on(out)
	expectActions(t, s)
	e.pending(1, 1)
	e.clk.Advance(5 * time.Second)
	s.setKeys(ucid(ucidB), cnv(strings.ToUpper("{"+convX+"}"))) // normalised by the matcher
	e.m.UpdateSession(s)
	e.settle()
	expectActions(t, s, "activate")
	a := s.Last()
	if a.MatchedBy != cnv(convX) || a.Direction != "outbound" || a.MatchLatency != 5*time.Second {
		t.Errorf("annotation %+v", a)
	}
	if got := e.metric("siphook_matcher_matches_total", "key", "conversation_id"); got != 1 {
		t.Errorf("matches_total{conversation_id} = %v", got)
	}
	if got := e.histogramSum("siphook_matcher_match_latency_seconds"); got != 5 {
		t.Errorf("match latency sum %v, want 5", got)
	}
	e.pending(0, 0)
}

// TestAmbiguity: one UCID on two conversations (race 25f).
func TestAmbiguity(t *testing.T) {
	type step struct {
		call    Call
		advance time.Duration // before the call
	}
	for _, tc := range []struct {
		name      string
		before    []step // CTI before the media
		after     []step // CTI after the media
		wantConv  string
		actions   []string
		ambiguous float64
	}{
		{
			name: "live conversation preferred over a newer ended one",
			before: []step{
				{call: call(convY, CallActive, []Agent{agentB}, ucidA)},
				{call: call(convX, CallEnded, []Agent{agentA}, ucidA), advance: 30 * time.Second},
			},
			wantConv: convY, actions: []string{"activate"}, ambiguous: 1,
		},
		{
			name: "latest of two live conversations",
			before: []step{
				{call: call(convX, CallActive, []Agent{agentA}, ucidA)},
				{call: call(convY, CallHeld, []Agent{agentB}, ucidA), advance: time.Minute},
			},
			wantConv: convY, actions: nil, ambiguous: 1,
		},
		{
			name: "the other conversation is older than the window: no ambiguity",
			before: []step{
				{call: call(convX, CallActive, []Agent{agentA}, ucidA)},
				{call: call(convY, CallActive, []Agent{agentB}, ucidA), advance: 3 * time.Minute},
			},
			wantConv: convY, actions: []string{"activate"}, ambiguous: 0,
		},
		{
			name:   "only an ended conversation, then a live one reusing the UCID: the session moves",
			before: []step{{call: call(convX, CallEnded, []Agent{agentA}, ucidA)}},
			after:  []step{{call: call(convY, CallActive, []Agent{agentB}, ucidA), advance: 10 * time.Second}},
			// bound provisionally to X (never recorded), then Y takes it
			wantConv: convY, actions: []string{"activate"}, ambiguous: 1,
		},
		{
			name:   "a bound session ignores a later conversation with its UCID",
			before: []step{{call: call(convX, CallActive, []Agent{agentA}, ucidA)}},
			after: []step{
				{call: call(convY, CallActive, []Agent{agentB}, ucidA), advance: 10 * time.Second},
				{call: call(convY, CallHeld, []Agent{agentB}, ucidA), advance: time.Second},
			},
			wantConv: convX, actions: []string{"activate"}, ambiguous: 0,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, DefaultConfig())
			for _, st := range tc.before {
				e.clk.Advance(st.advance)
				e.on(st.call)
			}
			s := newSession("rec-1", ucid(ucidA))
			e.add(s, "acme")
			for _, st := range tc.after {
				e.clk.Advance(st.advance)
				e.on(st.call)
			}
			if got := s.Last().ConversationID; got != tc.wantConv {
				t.Errorf("bound to %s, want %s", got, tc.wantConv)
			}
			expectActions(t, s, tc.actions...)
			if got := e.metric("siphook_matcher_ambiguous_total"); got != tc.ambiguous {
				t.Errorf("ambiguous_total = %v, want %v", got, tc.ambiguous)
			}
		})
	}
}

// TestConversationIDAuthoritative: a session with a UCID and a conversation id that name different
// conversations is bound by the conversation id.
func TestConversationIDAuthoritative(t *testing.T) {
	t.Run("both known", func(t *testing.T) {
		e := newEnv(t, DefaultConfig())
		e.on(call(convY, CallActive, []Agent{agentB}, ucidA))
		e.on(call(convX, CallHeld, []Agent{agentA}))
		s := newSession("rec-1", ucid(ucidA), cnv(convX))
		e.add(s, "acme")
		if a := s.Last(); a.ConversationID != convX || a.MatchedBy != cnv(convX) {
			t.Errorf("annotation %+v", a)
		}
		expectActions(t, s) // X is held
		if got := e.metric("siphook_matcher_ambiguous_total"); got != 0 {
			t.Errorf("ambiguous_total = %v", got)
		}
	})
	t.Run("conversation id arrives later: the session moves", func(t *testing.T) {
		e := newEnv(t, DefaultConfig())
		e.on(call(convY, CallActive, []Agent{agentB}, ucidA))
		s := newSession("rec-1", ucid(ucidA), cnv(convX))
		e.add(s, "acme")
		if a := s.Last(); a.ConversationID != convY || a.MatchedBy != ucid(ucidA) {
			t.Errorf("first annotation %+v", a)
		}
		expectActions(t, s, "activate")
		e.on(call(convX, CallHeld, []Agent{agentA}))
		a := s.Last()
		if a.ConversationID != convX || a.MatchedBy != cnv(convX) || !slices.Equal(a.Agents, []Agent{agentA}) ||
			!slices.Equal(states(a), []CallState{CallHeld}) {
			t.Errorf("annotation after the move %+v", a)
		}
		expectActions(t, s, "activate", "pause")
	})
}

// TestPolicy: hold, secure pause, transfer, conference, consult and end, as segments and media actions.
func TestPolicy(t *testing.T) {
	active := func(agents ...Agent) Call { return call(convX, CallActive, agents, ucidA) }
	held := func(agents ...Agent) Call { return call(convX, CallHeld, agents, ucidA) }
	ended := func(agents ...Agent) Call { return call(convX, CallEnded, agents, ucidA) }
	secure := func(c Call) Call { return with(c, func(c *Call) { c.SecurePause = true }) }
	transfer := func(c Call) Call { return with(c, func(c *Call) { c.Transfer = true }) }
	conference := func(c Call) Call { return with(c, func(c *Call) { c.Conference = true }) }
	consult := func(c Call) Call { return with(c, func(c *Call) { c.Consult = true }) }

	for _, tc := range []struct {
		name       string
		hold, end  string
		mediaAfter int // the session arrives after this many calls (race 25b replay)
		calls      []Call
		actions    []string
		reasons    []string
		states     []CallState
		agents     []Agent
		notes      int // annotations expected (-1: don't check)
	}{
		{name: "hold pauses", calls: []Call{active(agentA), held(agentA), active(agentA)},
			actions: []string{"activate", "pause", "activate"}, reasons: []string{"matched", "hold", "resume"},
			states: []CallState{CallActive, CallHeld, CallActive}, notes: 3},
		{name: "hold marked", hold: HoldMark, calls: []Call{active(agentA), held(agentA), active(agentA)},
			actions: []string{"activate"}, reasons: []string{"matched", "hold", "resume"},
			states: []CallState{CallActive, CallHeld, CallActive}, notes: 3},
		{name: "duplicates act once", calls: []Call{active(agentA), active(agentA), active(agentA)},
			actions: []string{"activate"}, reasons: []string{"matched"}, notes: 1},
		{name: "secure pause pauses even when holds are marked", hold: HoldMark,
			calls:   []Call{active(agentA), secure(active(agentA)), active(agentA)},
			actions: []string{"activate", "pause", "activate"}, reasons: []string{"matched", "secure_pause", "resume"}, notes: 3},
		{name: "secure pause while held", calls: []Call{active(agentA), held(agentA), secure(held(agentA)), active(agentA)},
			actions: []string{"activate", "pause", "activate"}, reasons: []string{"matched", "hold", "secure_pause", "resume"}, notes: 4},
		{name: "blind transfer", calls: []Call{active(agentA), transfer(held()), transfer(active(agentB))},
			actions: []string{"activate", "pause", "activate"}, reasons: []string{"matched", "hold", "transfer"},
			states: []CallState{CallActive, CallHeld, CallActive}, agents: []Agent{agentA, agentB}},
		{name: "blind transfer, holds marked", hold: HoldMark, calls: []Call{active(agentA), transfer(held()), transfer(active(agentB))},
			actions: []string{"activate"}, reasons: []string{"matched", "hold", "transfer"}},
		{name: "direct transfer", calls: []Call{active(agentA), transfer(active(agentB))},
			actions: []string{"activate"}, reasons: []string{"matched", "transfer"}, agents: []Agent{agentA, agentB}},
		{name: "conference", calls: []Call{active(agentA), conference(active(agentA, agentD)), conference(active(agentD))},
			actions: []string{"activate"}, reasons: []string{"matched", "conference", "conference"}, agents: []Agent{agentA, agentD}},
		{name: "agent joins without the flag", calls: []Call{active(agentA), active(agentA, agentD)},
			actions: []string{"activate"}, reasons: []string{"matched", "conference"}},
		{name: "consult call not activated", calls: []Call{consult(active(agentD)), consult(held(agentD)), consult(active(agentD))},
			actions: nil, reasons: []string{"matched", "hold", "resume"}},
		{name: "consult call not activated, holds marked", hold: HoldMark, mediaAfter: 1, calls: []Call{consult(held(agentD))},
			actions: nil},
		{name: "cancelled consult resumes the recorded call",
			calls:   []Call{active(agentA), consult(held(agentA, agentD)), consult(active(agentA))},
			actions: []string{"activate", "pause", "activate"}, reasons: []string{"matched", "hold", "resume"}},
		{name: "a conference party leaves", calls: []Call{active(agentA, agentD), active(agentD)},
			actions: []string{"activate"}, reasons: []string{"matched", "conference"}},
		{name: "completed consult transfer", calls: []Call{active(agentA), consult(held(agentA, agentD)), transfer(consult(active(agentD)))},
			actions: []string{"activate", "pause", "activate"}, reasons: []string{"matched", "hold", "transfer"}},
		{name: "no agents: never activated", calls: []Call{active(), held(), active()}, actions: nil},
		{name: "ended pauses", calls: []Call{active(agentA), ended(agentA)},
			actions: []string{"activate", "pause"}, reasons: []string{"matched", "end"}, states: []CallState{CallActive, CallEnded}},
		{name: "ended left alone", end: EndLeave, calls: []Call{active(agentA), ended(agentA)},
			actions: []string{"activate"}, reasons: []string{"matched", "end"}},
		{name: "replay: agent connected", mediaAfter: 1, calls: []Call{active(agentA), held(agentA)},
			actions: []string{"activate", "pause"}, reasons: []string{"matched", "hold"}},
		{name: "replay: held, holds pause", mediaAfter: 2, calls: []Call{active(agentA), held(agentA), active(agentA)},
			actions: []string{"activate"}, reasons: []string{"matched", "resume"}, states: []CallState{CallHeld, CallActive}},
		{name: "replay: held, holds marked", hold: HoldMark, mediaAfter: 2, calls: []Call{active(agentA), held(agentA)},
			actions: []string{"activate"}, reasons: []string{"matched"}, states: []CallState{CallHeld}},
		{name: "replay: ended", mediaAfter: 2, calls: []Call{active(agentA), ended(agentA)},
			actions: nil, reasons: []string{"matched"}, states: []CallState{CallEnded}},
		{name: "replay: secure pause", mediaAfter: 1, calls: []Call{secure(active(agentA)), active(agentA)},
			actions: []string{"activate"}, reasons: []string{"matched", "resume"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := DefaultConfig()
			if tc.hold != "" {
				cfg.Hold = tc.hold
			}
			if tc.end != "" {
				cfg.End = tc.end
			}
			e := newEnv(t, cfg)
			s := newSession("rec-1", ucid(ucidA))
			for i, c := range tc.calls {
				if i == tc.mediaAfter {
					e.add(s, "acme")
				}
				e.clk.Advance(time.Second)
				e.on(c)
			}
			if tc.mediaAfter >= len(tc.calls) {
				e.add(s, "acme")
			}
			expectActions(t, s, tc.actions...)
			a := s.Last()
			if tc.reasons != nil && !slices.Equal(reasons(a), tc.reasons) {
				t.Errorf("segment reasons %v, want %v", reasons(a), tc.reasons)
			}
			if tc.states != nil && !slices.Equal(states(a), tc.states) {
				t.Errorf("segment states %v, want %v", states(a), tc.states)
			}
			if tc.agents != nil && !slices.Equal(a.Agents, tc.agents) {
				t.Errorf("agents %v, want %v", a.Agents, tc.agents)
			}
			if tc.notes > 0 && len(s.Annotations()) != tc.notes {
				t.Errorf("%d annotations, want %d", len(s.Annotations()), tc.notes)
			}
			for i := 1; i < len(a.Segments); i++ {
				if a.Segments[i].Start.Before(a.Segments[i-1].Start) {
					t.Errorf("segments out of order: %+v", a.Segments)
				}
			}
			if t.Failed() {
				t.Logf("segments %+v", a.Segments)
			}
		})
	}
}

// TestSegmentsKeepSourceTime: segment starts come from the CTI's clock and stay in order when it goes back.
func TestSegmentsKeepSourceTime(t *testing.T) {
	e := newEnv(t, DefaultConfig())
	s := newSession("rec-1", ucid(ucidA))
	e.add(s, "acme")
	t0 := time.Date(2026, 3, 2, 8, 59, 0, 0, time.UTC)
	for _, c := range []Call{
		with(call(convX, CallActive, []Agent{agentA}, ucidA), func(c *Call) { c.Time = t0 }),
		with(call(convX, CallHeld, []Agent{agentA}, ucidA), func(c *Call) { c.Time = t0.Add(time.Minute) }),
		with(call(convX, CallActive, []Agent{agentA}, ucidA), func(c *Call) { c.Time = t0.Add(30 * time.Second) }), // skewed
	} {
		e.m.OnCall(c) // Received zero: taken as now
	}
	e.settle()
	a := s.Last()
	if len(a.Segments) != 3 || !a.Segments[0].Start.Equal(t0) || !a.Segments[1].Start.Equal(t0.Add(time.Minute)) ||
		!a.Segments[2].Start.Equal(t0.Add(time.Minute)) {
		t.Errorf("segments %+v", a.Segments)
	}
}

// TestRemoveSessionAnnotation: an unmatched session says why before RemoveSession returns; a matched one has
// its full picture.
func TestRemoveSessionAnnotation(t *testing.T) {
	for _, tc := range []struct {
		name string
		keys []Key
		want string
	}{
		{"ucid and conversation id", []Key{ucid(ucidA), cnv(convX)},
			"no CTI event with ucid " + ucidA + " or conversation_id " + convX + " within 3m12s"},
		{"hex ucid", []Key{ucid("FA080019001038F725B3")}, "no CTI event with ucid " + ucidA + " within 3m12s"},
		{"no keys", nil, "no UCID or conversation id to match on within 3m12s"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, DefaultConfig())
			e.on(call(convY, CallActive, []Agent{agentA}, ucidB)) // someone else's call
			s := newSession("rec-1", tc.keys...)
			e.add(s, "acme")
			e.clk.Advance(3*time.Minute + 12*time.Second + 300*time.Millisecond)
			e.m.RemoveSession(s)
			notes := s.Annotations() // no waiting: it must be there already
			if len(notes) != 1 || notes[0].Unmatched != tc.want || notes[0].Tenant != "acme" || notes[0].ConversationID != "" ||
				notes[0].MatchedBy != (Key{}) {
				t.Errorf("annotations %+v, want Unmatched %q", notes, tc.want)
			}
			e.pending(0, 1)
			e.m.RemoveSession(s) // twice: nothing more
			if len(s.Annotations()) != 1 {
				t.Errorf("%d annotations after a second RemoveSession", len(s.Annotations()))
			}
		})
	}
	t.Run("matched", func(t *testing.T) {
		e := newEnv(t, DefaultConfig())
		var onRemove []Annotation
		s := newSession("rec-1", ucid(ucidA))
		e.add(s, "acme")
		e.on(call(convX, CallActive, []Agent{agentA}, ucidA))
		e.on(call(convX, CallEnded, []Agent{agentA}, ucidA))
		e.m.RemoveSession(s)
		onRemove = s.Annotations()
		last := onRemove[len(onRemove)-1]
		if last.Unmatched != "" || last.ConversationID != convX || !slices.Equal(reasons(last), []string{"matched", "end"}) {
			t.Errorf("last annotation %+v", last)
		}
		e.on(call(convX, CallActive, []Agent{agentA}, ucidA)) // late: nobody to tell
		if n := len(s.Annotations()); n != len(onRemove) {
			t.Errorf("annotated after RemoveSession")
		}
	})
}

// TestPendingCalls: race 25d: a conversation whose media never comes expires after CallTTL (ENDED: 1 min) and
// is counted; a matched one is not.
func TestPendingCalls(t *testing.T) {
	cfg := DefaultConfig()
	e := newEnv(t, cfg)
	e.on(call(convX, CallActive, []Agent{agentA}, ucidA))
	e.on(call(convY, CallEnded, []Agent{agentB}, ucidB))
	e.on(call(convZ, CallActive, []Agent{agentA}))
	s := newSession("hook-1", cnv(convZ))
	e.add(s, "acme")
	e.pending(0, 2)

	e.clk.Advance(time.Minute)
	e.m.Sweep()
	e.pending(0, 1) // Y (ENDED) went after a minute
	if got := e.metric("siphook_matcher_expired_calls_total"); got != 1 {
		t.Errorf("expired_calls_total = %v after a minute", got)
	}
	e.clk.Advance(cfg.CallTTL - time.Minute - time.Second)
	e.m.Sweep()
	e.pending(0, 1)
	e.clk.Advance(time.Second)
	e.m.Sweep()
	e.pending(0, 0)
	if got := e.metric("siphook_matcher_expired_calls_total"); got != 2 {
		t.Errorf("expired_calls_total = %v, want 2 (X and Y; Z had media)", got)
	}
	if got := e.metric("siphook_matcher_pending_calls"); got != 0 {
		t.Errorf("pending_calls gauge %v", got)
	}

	// X is gone: its media now waits; Z is still bound here, so a late AudioHook session still finds it.
	late := newSession("rec-late", ucid(ucidA))
	e.add(late, "acme")
	hook2 := newSession("hook-2", cnv(convZ))
	e.add(hook2, "acme")
	e.pending(1, 0)
	expectActions(t, late)
	expectActions(t, hook2, "activate")
	if a := hook2.Last(); a.ConversationID != convZ || !slices.Equal(a.Related, []string{"hook-1"}) {
		t.Errorf("late session annotation %+v", a)
	}

	// Z's media all ended: its conversation waits for more until its TTL, and is not counted then.
	e.m.RemoveSession(s)
	e.m.RemoveSession(hook2)
	e.on(call(convZ, CallEnded, []Agent{agentA}))
	e.pending(1, 1)
	e.clk.Advance(time.Minute)
	e.m.Sweep()
	e.pending(1, 0)
	if got := e.metric("siphook_matcher_expired_calls_total"); got != 2 {
		t.Errorf("expired_calls_total = %v, want still 2", got)
	}
	e.m.RemoveSession(late)
	e.pending(0, 0)
	if got := e.metric("siphook_matcher_pending_sessions"); got != 0 {
		t.Errorf("pending_sessions gauge %v", got)
	}
}

// TestRelated: the SIPREC and AudioHook recordings of one conversation name each other.
func TestRelated(t *testing.T) {
	e := newEnv(t, DefaultConfig())
	rec := newSession("siprec-1", ucid(ucidA))
	hook := newSession("audiohook-1", cnv(convX))
	e.add(rec, "acme")
	e.on(call(convX, CallActive, []Agent{agentA}, ucidA))
	if a := rec.Last(); len(a.Related) != 0 {
		t.Errorf("related before the second session %v", a.Related)
	}
	e.add(hook, "acme")
	if a := rec.Last(); !slices.Equal(a.Related, []string{"audiohook-1"}) {
		t.Errorf("siprec related %v", a.Related)
	}
	if a := hook.Last(); !slices.Equal(a.Related, []string{"siprec-1"}) || a.MatchedBy != cnv(convX) {
		t.Errorf("audiohook annotation %+v", a)
	}
	expectActions(t, rec, "activate")
	expectActions(t, hook, "activate")
	e.on(call(convX, CallHeld, []Agent{agentA}, ucidA))
	expectActions(t, rec, "activate", "pause")
	expectActions(t, hook, "activate", "pause")
	e.m.RemoveSession(hook)
	if a := rec.Last(); !slices.Equal(a.Related, []string{"audiohook-1"}) {
		t.Errorf("a removed session still recorded the conversation: related %v", a.Related)
	}
}

// TestTenants: keys match within a tenant; "" on either side matches any.
func TestTenants(t *testing.T) {
	globex := func(c Call) Call { return with(c, func(c *Call) { c.Tenant = "globex" }) }
	unscoped := func(c Call) Call { return with(c, func(c *Call) { c.Tenant = "" }) }
	for _, tc := range []struct {
		name          string
		sessionTenant string
		keys          []Key
		calls         []Call
		wantConv      string
		wantTenant    string
		actions       []string
	}{
		{"same tenant", "acme", []Key{ucid(ucidA)}, []Call{call(convX, CallActive, []Agent{agentA}, ucidA)},
			convX, "acme", []string{"activate"}},
		{"other tenant", "globex", []Key{ucid(ucidA)}, []Call{call(convX, CallActive, []Agent{agentA}, ucidA)},
			"", "", nil},
		{"other tenant by conversation id", "globex", []Key{cnv(convX)}, []Call{call(convX, CallActive, []Agent{agentA})},
			"", "", nil},
		{"unscoped session", "", []Key{ucid(ucidA)}, []Call{call(convX, CallActive, []Agent{agentA}, ucidA)},
			convX, "acme", []string{"activate"}},
		{"unscoped call", "globex", []Key{ucid(ucidA)}, []Call{unscoped(call(convX, CallActive, []Agent{agentA}, ucidA))},
			convX, "globex", []string{"activate"}},
		{"one UCID in two tenants", "globex", []Key{ucid(ucidA)}, []Call{
			globex(call(convY, CallHeld, []Agent{agentB}, ucidA)),
			call(convX, CallActive, []Agent{agentA}, ucidA), // acme's, newer and active
		}, convY, "globex", nil},
		{"one conversation id in two tenants", "globex", []Key{cnv(convX)}, []Call{
			globex(call(convX, CallHeld, []Agent{agentB})),
			call(convX, CallActive, []Agent{agentA}),
		}, convX, "globex", nil},
	} {
		for _, mediaFirst := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/media first %v", tc.name, mediaFirst), func(t *testing.T) {
				e := newEnv(t, DefaultConfig())
				s := newSession("rec-1", tc.keys...)
				if mediaFirst {
					e.add(s, tc.sessionTenant)
				}
				for _, c := range tc.calls {
					e.clk.Advance(time.Second)
					e.on(c)
				}
				if !mediaFirst {
					e.add(s, tc.sessionTenant)
				}
				if a := s.Last(); a.ConversationID != tc.wantConv || a.Tenant != tc.wantTenant {
					t.Errorf("bound to %q of tenant %q, want %q of %q", a.ConversationID, a.Tenant, tc.wantConv, tc.wantTenant)
				}
				expectActions(t, s, tc.actions...)
				if got := e.metric("siphook_matcher_ambiguous_total"); got != 0 {
					t.Errorf("ambiguous_total = %v across tenants", got)
				}
			})
		}
	}
}

// TestActions: failures are counted and retried on the next change only; the latest wanted state wins over
// intermediate ones; activation latency runs from the CTI observation to Activate returning.
func TestActions(t *testing.T) {
	t.Run("failure", func(t *testing.T) {
		e := newEnv(t, DefaultConfig())
		var fail atomic.Bool
		fail.Store(true)
		s := newSession("rec-1", ucid(ucidA))
		s.ActivateFunc = func(context.Context) error {
			if fail.Load() {
				return errors.New("488 Not Acceptable Here")
			}
			return nil
		}
		e.add(s, "acme")
		e.on(call(convX, CallActive, []Agent{agentA}, ucidA))
		e.on(call(convX, CallActive, []Agent{agentA}, ucidA)) // no change: no retry
		expectActions(t, s, "activate")
		if got := e.metric("siphook_matcher_actions_total", "action", "activate", "result", "error"); got != 1 {
			t.Errorf("actions_total{activate,error} = %v", got)
		}
		e.on(call(convX, CallHeld, []Agent{agentA}, ucidA)) // never recorded: nothing to pause
		fail.Store(false)
		e.on(call(convX, CallActive, []Agent{agentA}, ucidA))
		expectActions(t, s, "activate", "activate")
		if got := e.metric("siphook_matcher_activation_latency_seconds"); got != 1 {
			t.Errorf("%v activation latencies observed, want 1", got)
		}
	})
	t.Run("latest wins", func(t *testing.T) {
		e := newEnv(t, DefaultConfig())
		entered, release := make(chan struct{}), make(chan struct{})
		s := newSession("rec-1", ucid(ucidA))
		var first atomic.Bool
		s.ActivateFunc = func(context.Context) error {
			if first.CompareAndSwap(false, true) {
				close(entered)
				<-release
			}
			return nil
		}
		e.m.AddSession(s, "acme")
		now := e.clk.Now()
		e.m.OnCall(with(call(convX, CallActive, []Agent{agentA}, ucidA), func(c *Call) { c.Received = now }))
		<-entered
		for _, st := range []CallState{CallHeld, CallActive, CallHeld, CallActive, CallHeld} {
			e.m.OnCall(call(convX, st, []Agent{agentA}, ucidA))
		}
		close(release)
		e.settle()
		expectActions(t, s, "activate", "pause")
		if s.overlapped {
			t.Error("two actions ran at once")
		}
	})
	t.Run("activation latency", func(t *testing.T) {
		e := newEnv(t, DefaultConfig())
		s := newSession("rec-1", ucid(ucidA))
		s.ActivateFunc = func(context.Context) error { e.clk.Advance(250 * time.Millisecond); return nil } // the re-INVITE
		e.add(s, "acme")
		e.clk.Advance(time.Second)
		e.on(call(convX, CallActive, []Agent{agentA}, ucidA))
		if got := e.histogramSum("siphook_matcher_activation_latency_seconds"); got != 0.25 {
			t.Errorf("activation latency sum %v, want 0.25", got)
		}
	})
	t.Run("removed while activating", func(t *testing.T) {
		e := newEnv(t, DefaultConfig())
		entered := make(chan struct{})
		s := newSession("rec-1", ucid(ucidA))
		s.ActivateFunc = func(ctx context.Context) error { close(entered); <-ctx.Done(); return ctx.Err() }
		e.add(s, "acme")
		e.m.OnCall(call(convX, CallActive, []Agent{agentA}, ucidA))
		<-entered
		e.m.RemoveSession(s)
		deadline := time.Now().Add(10 * time.Second)
		for e.metric("siphook_matcher_actions_total", "action", "activate", "result", "cancelled") != 1 {
			if time.Now().After(deadline) {
				t.Fatal("the cancelled activation was not counted")
			}
			time.Sleep(time.Millisecond)
		}
	})
}

// TestNoGoroutineLeak: every worker ends with its session, including one blocked in Activate.
func TestNoGoroutineLeak(t *testing.T) {
	baseline := runtime.NumGoroutine()
	e := newEnv(t, DefaultConfig())
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { e.m.Run(ctx); close(done) }()
	var sessions []*fakeSession
	for i := range 50 {
		s := newSession(fmt.Sprintf("rec-%d", i), ucid(fmt.Sprintf("%05d%05d%010d", 1, i+1, 1700000000)))
		if i%10 == 0 {
			s.ActivateFunc = func(ctx context.Context) error { <-ctx.Done(); return ctx.Err() }
		}
		sessions = append(sessions, s)
		e.m.AddSession(s, "acme")
		e.m.OnCall(call(fmt.Sprintf("1b2c3d4e-0000-4000-8000-%012d", i), CallActive, []Agent{agentA}, s.keys[0].Value))
	}
	if runtime.NumGoroutine() <= baseline {
		t.Error("no worker goroutines running")
	}
	for _, s := range sessions {
		e.m.RemoveSession(s)
	}
	cancel()
	<-done
	waitGoroutines(t, baseline)
}

// TestRun: Run sweeps on its own (every CallTTL/10) until its context ends.
func TestRun(t *testing.T) {
	e := newEnv(t, with0(DefaultConfig(), func(c *Config) { c.CallTTL = 20 * time.Millisecond }))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { e.m.Run(ctx); close(done) }()
	e.on(call(convX, CallActive, []Agent{agentA}, ucidA))
	e.pending(0, 1)
	e.clk.Advance(time.Second)
	deadline := time.Now().Add(10 * time.Second)
	for mustCalls(e.m) != 0 {
		if time.Now().After(deadline) {
			t.Fatal("Run did not sweep the expired call")
		}
		time.Sleep(time.Millisecond)
	}
	cancel()
	<-done
	if got := e.metric("siphook_matcher_expired_calls_total"); got != 1 {
		t.Errorf("expired_calls_total = %v", got)
	}
}

func waitGoroutines(t *testing.T, baseline int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for runtime.NumGoroutine() > baseline {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<16)
			t.Fatalf("%d goroutines left, baseline %d:\n%s", runtime.NumGoroutine(), baseline, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestConcurrency: CTI, SIP and AudioHook goroutines at once (run with -race); no session sees two actions
// at once, every session ends with an annotation, and nothing is left.
func TestConcurrency(t *testing.T) {
	baseline := runtime.NumGoroutine()
	e := newEnv(t, with0(DefaultConfig(), func(c *Config) { c.CallTTL = time.Minute }))
	const convs, workers = 40, 8
	ucidOf := func(i int) string { return fmt.Sprintf("%05d%05d%010d", 2, i+1, 1700000000) }
	convOf := func(i int) string { return fmt.Sprintf("1b2c3d4e-0000-4000-8000-%012d", i) }
	var wg sync.WaitGroup
	var all sync.Map
	states := []CallState{CallActive, CallHeld, CallActive, CallEnded}
	for w := range workers {
		wg.Go(func() { // CTI
			r := rand.New(rand.NewPCG(uint64(w), 1))
			for range 300 {
				i := r.IntN(convs)
				c := call(convOf(i), states[r.IntN(len(states))], []Agent{agentA}, ucidOf(i))
				c.Transfer, c.SecurePause = r.IntN(5) == 0, r.IntN(7) == 0
				e.m.OnCall(c)
				if r.IntN(20) == 0 {
					e.clk.Advance(5 * time.Second)
					e.m.Sweep()
				}
			}
		})
		wg.Go(func() { // media
			r := rand.New(rand.NewPCG(uint64(w), 2))
			for j := range 60 {
				i := r.IntN(convs)
				s := newSession(fmt.Sprintf("s-%d-%d", w, j), ucid(ucidOf(i)))
				all.Store(s.id, s)
				e.m.AddSession(s, []string{"", "acme"}[r.IntN(2)])
				if r.IntN(3) == 0 {
					s.setKeys(ucid(ucidOf(i)), cnv(convOf(r.IntN(convs))))
					e.m.UpdateSession(s)
				}
				e.m.Pending()
				runtime.Gosched()
				e.m.RemoveSession(s)
			}
		})
	}
	wg.Wait()
	e.pending(0, mustCalls(e.m))
	if e.metric("siphook_matcher_matches_total") == 0 || e.metric("siphook_matcher_actions_total", "result", "ok") == 0 {
		t.Error("nothing matched or activated: the test exercised nothing")
	}
	all.Range(func(_, v any) bool {
		s := v.(*fakeSession)
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.overlapped {
			t.Errorf("session %s: two actions at once", s.id)
		}
		if len(s.annotations) == 0 {
			t.Errorf("session %s never annotated", s.id)
		}
		return true
	})
	e.m.mu.Lock()
	if len(e.m.sessions) != 0 || len(e.m.byKey) != 0 || e.m.unmatched != 0 || e.m.boundStored != 0 {
		t.Errorf("state left: %d sessions, %d keys, %d unmatched, %d bound", len(e.m.sessions), len(e.m.byKey), e.m.unmatched, e.m.boundStored)
	}
	for _, conv := range e.m.convs {
		if len(conv.sessions) != 0 {
			t.Errorf("conversation %s still has sessions", conv.key.id)
		}
	}
	e.m.mu.Unlock()
	e.clk.Advance(time.Hour)
	e.m.Sweep()
	e.pending(0, 0)
	e.m.mu.Lock()
	if len(e.m.convs) != 0 || len(e.m.convByKey) != 0 {
		t.Errorf("%d conversations, %d keys left after expiry", len(e.m.convs), len(e.m.convByKey))
	}
	e.m.mu.Unlock()
	waitGoroutines(t, baseline)
}

func with0(c Config, f func(*Config)) Config { f(&c); return c }

func mustCalls(m *Matcher) int { _, c := m.Pending(); return c }

// TestMemoryStore: the Store contract on its own.
func TestMemoryStore(t *testing.T) {
	clk := newClock()
	s := newMemoryStore(clk.Now)
	t0 := clk.Now()
	x := call(convX, CallActive, nil, ucidA)
	x.Received = t0
	y := with(call(convY, CallActive, nil, ucidA), func(c *Call) { c.Tenant, c.Received = "", t0.Add(time.Second) })
	s.Put(x, t0.Add(time.Minute))
	s.Put(y, t0.Add(2*time.Minute))
	for _, tc := range []struct {
		tenant string
		key    Key
		want   []string
	}{
		{"acme", ucid(ucidA), []string{convY, convX}}, // newest first; "" is any tenant
		{"", ucid(ucidA), []string{convY, convX}},
		{"globex", ucid(ucidA), []string{convY}},
		{"acme", cnv(convX), []string{convX}}, // the conversation id is a key even when Keys lacks it
		{"acme", ucid(ucidB), nil},
	} {
		var got []string
		for _, c := range s.Find(tc.tenant, tc.key) {
			got = append(got, c.ConversationID)
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("Find(%q, %v) = %v, want %v", tc.tenant, tc.key, got, tc.want)
		}
	}
	// Put replaces, re-indexing the keys.
	s.Put(with(x, func(c *Call) { c.Keys = []Key{ucid(ucidB)}; c.State = CallHeld }), t0.Add(time.Minute))
	if got := s.Find("acme", ucid(ucidA)); len(got) != 1 || got[0].ConversationID != convY {
		t.Errorf("old key still finds the replaced call: %+v", got)
	}
	if c, ok := s.Get("acme", convX); !ok || c.State != CallHeld {
		t.Errorf("Get = %+v, %v", c, ok)
	}
	if _, ok := s.Get("globex", convX); ok {
		t.Error("Get across tenants")
	}
	if s.Len() != 2 {
		t.Errorf("Len = %d", s.Len())
	}
	clk.Advance(time.Minute) // X expired but not swept: invisible
	if got := s.Find("acme", ucid(ucidB)); len(got) != 0 {
		t.Errorf("expired call found: %+v", got)
	}
	if _, ok := s.Get("acme", convX); ok {
		t.Error("expired call got")
	}
	if got := s.Expire(clk.Now()); len(got) != 1 || got[0].ConversationID != convX || s.Len() != 1 {
		t.Errorf("Expire = %+v, Len %d", got, s.Len())
	}
	if got := s.Expire(t0.Add(2 * time.Minute)); len(got) != 1 || s.Len() != 0 || len(s.byKey) != 0 {
		t.Errorf("Expire = %+v, Len %d, %d keys", got, s.Len(), len(s.byKey))
	}
}

// TestWithStore: a store handed in is used (and a memory store gets the matcher's clock).
func TestWithStore(t *testing.T) {
	clk := newClock()
	clk.Advance(-24 * 365 * time.Hour * 10) // far in the past: wall-clock expiry would hide everything
	store := NewMemoryStore()
	m, err := New(DefaultConfig(), WithStore(store), WithClock(clk.Now), WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	m.OnCall(call(convX, CallActive, []Agent{agentA}, ucidA))
	if store.Len() != 1 {
		t.Fatalf("store holds %d calls", store.Len())
	}
	s := newSession("rec-1", ucid(ucidA))
	m.AddSession(s, "acme")
	if s.Last().ConversationID != convX {
		t.Errorf("not matched through the given store: %+v", s.Last())
	}
	m.RemoveSession(s)
}

// TestNormalisation: keys in any accepted form match; CTI observations without a conversation id are dropped.
func TestNormalisation(t *testing.T) {
	e := newEnv(t, DefaultConfig())
	e.m.OnCall(Call{Tenant: "acme", State: CallActive, Agents: []Agent{agentA}, Keys: []Key{ucid(ucidA)}})
	e.pending(0, 0)
	e.on(with(call(strings.ToUpper(convX), CallActive, []Agent{agentA}), func(c *Call) {
		c.Keys = []Key{ucid("04FA080019001038F725B3"), {Kind: KeyUCID, Value: "  "}}
	}))
	s := newSession("rec-1", ucid(ucidA))
	e.add(s, "acme")
	if a := s.Last(); a.ConversationID != convX {
		t.Errorf("annotation %+v", a)
	}
}

// BenchmarkOnCall: one CTI observation that matches one waiting session (and activates it).
func BenchmarkOnCall(b *testing.B) {
	m, err := New(DefaultConfig(), WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		b.Fatal(err)
	}
	const n = 1024
	sessions := make([]*fakeSession, n)
	calls := make([]Call, n)
	for i := range n {
		u := fmt.Sprintf("%05d%05d%010d", 3, i+1, 1700000000)
		sessions[i] = newSession(fmt.Sprintf("rec-%d", i), ucid(u))
		calls[i] = call(fmt.Sprintf("1b2c3d4e-0000-4000-8000-%012d", i), CallActive, []Agent{agentA}, u)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		s := sessions[i%n]
		b.StopTimer()
		m.RemoveSession(s)
		s.mu.Lock()
		s.actions, s.annotations = nil, nil
		s.mu.Unlock()
		m.AddSession(s, "acme")
		b.StartTimer()
		m.OnCall(calls[i%n])
	}
	b.StopTimer()
	for _, s := range sessions {
		m.RemoveSession(s)
	}
}
