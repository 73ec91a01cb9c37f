package matcher

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// TestRace1000Calls is the acceptance test of the matcher under load: 1,000 scripted calls whose CTI
// observations and media events (AddSession, UpdateSession, RemoveSession) arrive from their own goroutines,
// in a random order relative to each other, with random delays, while each session's Activate and Pause take a
// random time. Every call that should be recorded is (Activate called, final media state = the one the
// default policy gives the last CTI state the session saw: ENDED → paused), no call that should not be
// recorded ever is (no Activate), every session that never met its call says why (Unmatched), nothing stays
// pending but the CTI calls that never got media, and no goroutine is left.
//
// The seed fixes the scripts (the kind of every call, its keys, its CTI sequence, the moment its media
// becomes matchable, the delays); the scheduling of the goroutines is the runtime's. SIPHOOK_RACE_SEED
// overrides the seed.
//
// What is random per call:
//   - its kind: a recorded pattern (plain, hold, ended while held, secure pause, cancelled consult,
//     completed consult transfer, conference, held when first seen), a call without agents, a consult-only
//     call, media without any CTI, CTI without any media;
//   - the media keys: UCID (inbound SIPREC, sometimes with the conversation id added later by a metadata
//     re-INVITE), conversation id only (AudioHook), both, or none at first and the conversation id later
//     (outbound SIPREC: x-inin-cnv in a metadata re-INVITE, UpdateSession);
//   - p, the moment the media becomes matchable: before the first CTI observation, between any two, or after
//     the last one (then the call is over before its media shows up and must not be recorded);
//   - a UCID shared with an older ENDED conversation of the same tenant (race 25f), over before the call
//     starts or whose ENDED is received late, while the call is live (live beats a later ENDED);
//   - the BYE before the CTI's ENDED.
//
// Whether a call should be recorded follows from the documented policy applied to the observations its
// session sees: the one replayed when it is matched (o[p-1]) and every later one (see wantsRecording). The
// only orderings the test pins down are the ones the expectation depends on: the matchable moment p, and
// that an ACTIVE stretch which must be recorded lasts until the session is activated (the matcher
// converges a session to the latest wanted state, so an ACTIVE stretch shorter than one worker round trip
// is, by design, not recorded). Everything else (the other media events, the sleeps, the Activate/Pause
// latencies, the worker goroutines, the 1,000 calls against each other) runs free.
func TestRace1000Calls(t *testing.T) {
	const calls = 1000
	seed := uint64(20260302)
	if s := os.Getenv("SIPHOOK_RACE_SEED"); s != "" {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("SIPHOOK_RACE_SEED: %v", err)
		}
		seed = v
	}
	t.Logf("seed %d (set SIPHOOK_RACE_SEED to change it)", seed)

	baseline := runtime.NumGoroutine()
	var offset atomic.Int64 // the clock: real time, moved forward to expire the pending calls at the end
	now := func() time.Time { return time.Now().Add(time.Duration(offset.Load())) }
	reg := prometheus.NewRegistry()
	m, err := New(DefaultConfig(), WithClock(now), WithRegisterer(reg), WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, m: m, reg: reg}

	rng := rand.New(rand.NewPCG(seed, 0x5e1f))
	scripts := make([]*raceScript, calls)
	usedUCIDs := map[string]bool{}
	for i := range scripts {
		scripts[i] = newRaceScript(rng, i, seed, usedUCIDs)
	}

	var wg sync.WaitGroup
	for _, sc := range scripts {
		sc.run(t, m, &wg)
	}
	finished := make(chan struct{})
	go func() { wg.Wait(); close(finished) }()
	select {
	case <-finished:
	case <-time.After(2 * time.Minute):
		buf := make([]byte, 1<<20)
		t.Fatalf("the calls did not finish (deadlock?):\n%s", buf[:runtime.Stack(buf, true)])
	}

	// Every call.
	var recorded, notRecorded, unmatched, late, reuse int
	for _, sc := range scripts {
		sc.check(t, m)
		switch {
		case sc.s == nil:
		case sc.wantRecord:
			recorded++
		default:
			notRecorded++
		}
		if sc.s != nil && len(sc.obs) == 0 {
			unmatched++
		}
		if sc.s != nil && len(sc.obs) > 0 && sc.p == len(sc.obs) {
			late++
		}
		if sc.reuse {
			reuse++
		}
	}
	t.Logf("%d calls: %d recorded, %d with media never recorded (%d media after the call ended), %d media without CTI, %d UCIDs reused",
		calls, recorded, notRecorded, late, unmatched, reuse)
	if recorded < calls/5 || notRecorded < calls/10 || unmatched < calls/20 || late == 0 || reuse == 0 {
		t.Errorf("the scripts exercised too little: %d recorded, %d not recorded, %d unmatched, %d late, %d reused",
			recorded, notRecorded, unmatched, late, reuse)
	}
	if n := e.metric("siphook_matcher_actions_total", "result", "error") + e.metric("siphook_matcher_actions_total", "result", "cancelled"); n != 0 {
		t.Errorf("%v Activate/Pause failed or were cancelled: every session was settled before its removal", n)
	}

	// Pending: no session; the calls left are the CTI calls that never got media (nothing has expired yet,
	// so every conversation still in the store counts: it has no session bound any more).
	neverMedia, neverMediaLive := 0, 0
	for _, sc := range scripts {
		if sc.s == nil && len(sc.obs) > 0 {
			neverMedia++
			if sc.obs[len(sc.obs)-1].state != CallEnded {
				neverMediaLive++
			}
		}
	}
	if s, _ := m.Pending(); s != 0 {
		t.Errorf("Pending() = %d sessions after every session was removed", s)
	}
	// ENDED conversations wait one minute for media, live ones CallTTL (5 minutes): two minutes later only
	// the live calls that never had media are still pending.
	offset.Add(int64(2 * time.Minute))
	m.Sweep()
	if s, c := m.Pending(); s != 0 || c != neverMediaLive || c > neverMedia {
		t.Errorf("Pending() = (%d, %d) two minutes on, want (0, %d): the live calls of the %d that never had media",
			s, c, neverMediaLive, neverMedia)
	}
	offset.Add(int64(10 * time.Minute))
	m.Sweep()
	if s, c := m.Pending(); s != 0 || c != 0 {
		t.Errorf("Pending() = (%d, %d) once everything expired", s, c)
	}
	m.mu.Lock()
	if len(m.sessions) != 0 || len(m.byKey) != 0 || len(m.convs) != 0 || len(m.convByKey) != 0 || m.unmatched != 0 || m.boundStored != 0 {
		t.Errorf("state left: %d sessions, %d session keys, %d conversations, %d conversation keys, %d unmatched, %d bound",
			len(m.sessions), len(m.byKey), len(m.convs), len(m.convByKey), m.unmatched, m.boundStored)
	}
	m.mu.Unlock()
	waitGoroutines(t, baseline)
}

// --- the scripts ---

// raceObs is one CTI observation of a scripted call.
type raceObs struct {
	state                                 CallState
	agents                                []Agent
	consult, transfer, conference, secure bool
}

// media keys of a scripted session
const (
	mkUCID     = iota // inbound SIPREC: UCID from the INVITE
	mkCnv             // AudioHook: the conversation id from open
	mkBoth            // both in the INVITE
	mkCnvLater        // outbound SIPREC: no key, then x-inin-cnv in a metadata re-INVITE (UpdateSession)
	mkNone            // no key ever (media without CTI only)
)

var mkNames = [...]string{mkUCID: "ucid", mkCnv: "conversation id", mkBoth: "ucid+conversation id", mkCnvLater: "conversation id later", mkNone: "none"}

type raceScript struct {
	i         int
	kind      string
	conv, old string // conversation ids: the call's, and the older ENDED one sharing its UCID (reuse)
	ucid      string
	ctiUCID   bool // the CTI observations carry the UCID
	reuse     bool // an older ENDED conversation carries the UCID too (race 25f)
	oldAt     int  // reuse: -1, the older conversation is over before this one starts; else its ENDED comes late, before obs[oldAt] (len(obs): after the last)
	obs       []raceObs
	mediaKeys int
	cnvLater  bool   // mkUCID: the conversation id comes later in a metadata re-INVITE
	tenant    string // the media's tenant: "" (unmapped SRC) or "acme"
	p         int    // the media becomes matchable before obs[p] (len(obs): after the last)
	byeFirst  bool   // the session is removed before the last observation (ENDED)
	ctiSleeps []time.Duration
	medSleeps []time.Duration

	// expectations, from the policy (wantRecording)
	wantRecord bool
	wantFinal  string // "idle", "active", "paused": the fake's state when the session is removed
	activateAt int    // the session must be active before obs[activateAt+1] is delivered (-1: never)
	seenFrom   int    // first observation the session sees
	seenTo     int    // last observation the session sees (exclusive)

	s        *raceSession // nil: the call has no media
	final    string       // the fake's state just before RemoveSession
	failures []string     // what went wrong inside the goroutines
	failMu   sync.Mutex
}

func (sc *raceScript) fail(format string, args ...any) {
	sc.failMu.Lock()
	sc.failures = append(sc.failures, fmt.Sprintf(format, args...))
	sc.failMu.Unlock()
}

func raceAgent(i int, who string) Agent {
	return Agent{UserID: fmt.Sprintf("agent-%04d-%s", i, who), Name: "Agent " + who}
}

func newRaceScript(r *rand.Rand, i int, seed uint64, used map[string]bool) *raceScript {
	sc := &raceScript{
		i:          i,
		conv:       fmt.Sprintf("5e1f0000-%04x-4000-8000-%012d", seed&0xffff, i),
		old:        fmt.Sprintf("5e1f0000-%04x-4000-9000-%012d", seed&0xffff, i),
		activateAt: -1,
	}
	for {
		u := UCID{Node: uint16(1 + r.IntN(65535)), Seq: uint16(r.IntN(65536)), Time: 1_700_000_000 + uint32(r.IntN(50_000_000))}.String()
		if !used[u] {
			used[u] = true
			sc.ucid = u
			break
		}
	}
	a, d := raceAgent(i, "a"), raceAgent(i, "d")
	act := func(agents ...Agent) raceObs { return raceObs{state: CallActive, agents: agents} }
	held := func(agents ...Agent) raceObs { return raceObs{state: CallHeld, agents: agents} }
	ended := func(agents ...Agent) raceObs { return raceObs{state: CallEnded, agents: agents} }
	consult := func(o raceObs) raceObs { o.consult = true; return o }
	hasMedia, hasCTI := true, true
	switch n := r.IntN(100); {
	case n < 55:
		patterns := []struct {
			name string
			obs  []raceObs
		}{
			{"plain", []raceObs{act(a), ended(a)}},
			{"hold", []raceObs{act(a), held(a), act(a), ended(a)}},
			{"ended while held", []raceObs{act(a), held(a), ended(a)}},
			{"secure pause", []raceObs{act(a), {state: CallActive, agents: []Agent{a}, secure: true}, act(a), ended(a)}},
			{"cancelled consult", []raceObs{act(a), consult(held(a, d)), consult(act(a)), consult(ended(a))}},
			{"consult transfer", []raceObs{act(a), consult(held(a, d)), {state: CallActive, agents: []Agent{d}, consult: true, transfer: true},
				{state: CallEnded, agents: []Agent{d}, consult: true, transfer: true}}},
			{"conference", []raceObs{act(a), {state: CallActive, agents: []Agent{a, d}, conference: true},
				{state: CallActive, agents: []Agent{d}, conference: true}, ended(d)}},
			{"held first", []raceObs{held(a), act(a), ended(a)}},
		}
		pt := patterns[r.IntN(len(patterns))]
		sc.kind, sc.obs = pt.name, pt.obs
	case n < 63:
		sc.kind, sc.obs = "no agents", []raceObs{act(), held(), act(), ended()}
	case n < 71:
		sc.kind, sc.obs = "consult only", []raceObs{consult(act(d)), consult(held(d)), consult(act(d)), consult(ended(d))}
	case n < 85:
		sc.kind, hasCTI = "media without CTI", false
	default:
		sc.kind, hasMedia = "CTI without media", false
		sc.obs = [][]raceObs{
			{act(a), ended(a)}, {act(a), held(a), act(a), ended(a)}, {act(a)}, {act(a), held(a)}, {act()},
		}[r.IntN(5)]
	}
	if hasMedia {
		sc.tenant = []string{"", "acme"}[r.IntN(2)]
		if hasCTI {
			sc.mediaKeys = r.IntN(4)
		} else {
			sc.mediaKeys = []int{mkUCID, mkCnvLater, mkNone}[r.IntN(3)]
		}
		sc.cnvLater = sc.mediaKeys == mkUCID && r.IntN(2) == 0
		sc.s = &raceSession{id: fmt.Sprintf("rec-%04d", i), rng: rand.New(rand.NewPCG(seed, uint64(i)))}
	}
	if hasCTI {
		// inbound (UCID in the CTI) unless the media is matched by conversation id alone (outbound, AudioHook)
		sc.ctiUCID = sc.mediaKeys == mkUCID || (sc.mediaKeys == mkBoth && r.IntN(2) == 0) || !hasMedia || r.IntN(3) == 0
		sc.reuse = sc.ctiUCID && hasMedia && sc.mediaKeys != mkCnv && sc.mediaKeys != mkCnvLater && r.IntN(3) == 0
		sc.oldAt = -1
		if sc.reuse && r.IntN(2) == 0 {
			// Received after this call's start and before its end; or even after its end when the media
			// carries the conversation id (which then beats the UCID; with the UCID alone the latest ENDED
			// conversation, the older one, would rightly win).
			sc.oldAt = 1 + r.IntN(len(sc.obs)-1)
			if (sc.mediaKeys == mkBoth || sc.cnvLater) && r.IntN(2) == 0 {
				sc.oldAt = len(sc.obs)
			}
		}
	}
	if hasMedia && hasCTI {
		sc.p = r.IntN(len(sc.obs)) // before obs[p]…
		if r.IntN(6) == 0 || (sc.oldAt == len(sc.obs) && r.IntN(2) == 0) {
			sc.p = len(sc.obs) // …or after the call ended
		}
		sc.byeFirst = sc.p < len(sc.obs)-1 && r.IntN(8) == 0
	}
	sleeps := func(n int) []time.Duration {
		out := make([]time.Duration, n)
		for k := range out {
			out[k] = time.Duration(r.IntN(21)) * time.Millisecond
		}
		return out
	}
	sc.ctiSleeps, sc.medSleeps = sleeps(12), sleeps(12)
	sc.expect()
	return sc
}

// wantsRecording is the documented policy (Config.desired, default config: hold and end pause) for one observation:
// whether it wants the media recording, given whether the session recorded this call before.
func (o raceObs) wantsRecording(everActive bool) bool {
	consultOnly := o.consult && !o.transfer && !o.conference && !everActive
	return !o.secure && o.state == CallActive && len(o.agents) > 0 && !consultOnly
}

// expect works out what the session must have done: it sees the observation replayed when it is matched
// (obs[p-1], or obs[0] when it was there first) and every later one until its removal.
func (sc *raceScript) expect() {
	sc.wantFinal = "idle"
	if sc.s == nil || len(sc.obs) == 0 {
		return
	}
	sc.seenFrom, sc.seenTo = max(sc.p-1, 0), len(sc.obs)
	if sc.byeFirst {
		sc.seenTo = len(sc.obs) - 1
	}
	state, ever := "idle", false
	for j := sc.seenFrom; j < sc.seenTo; j++ {
		switch o := sc.obs[j]; {
		case o.wantsRecording(ever):
			if !ever {
				sc.activateAt = j
			}
			state, ever = "active", true
		case state != "idle":
			state = "paused"
		}
	}
	sc.wantRecord, sc.wantFinal = ever, state
}

func (sc *raceScript) call(o raceObs, conv string, agents []Agent) Call {
	c := Call{Tenant: "acme", ConversationID: conv, State: o.state, Agents: agents, Consult: o.consult,
		Transfer: o.transfer, Conference: o.conference, SecurePause: o.secure, Direction: "inbound", QueueID: "q-race"}
	if sc.ctiUCID {
		c.Keys = []Key{{Kind: KeyUCID, Value: sc.ucid}}
	}
	return c
}

// run starts the call's CTI and media goroutines.
func (sc *raceScript) run(t *testing.T, m *Matcher, wg *sync.WaitGroup) {
	gate, gateDone := make(chan struct{}), make(chan struct{})
	bye, byeDone := make(chan struct{}), make(chan struct{})
	ctiDone := make(chan struct{})
	hasCTI, hasMedia := len(sc.obs) > 0, sc.s != nil

	if hasCTI {
		wg.Go(func() {
			defer close(ctiDone)
			sleep := sleeper(sc.ctiSleeps)
			sleep()
			oldAgent := []Agent{raceAgent(sc.i, "old")}
			if sc.reuse && sc.oldAt < 0 { // the older conversation with the same UCID, over before this one starts
				m.OnCall(sc.call(raceObs{state: CallActive}, sc.old, oldAgent))
				sleep()
				m.OnCall(sc.call(raceObs{state: CallEnded}, sc.old, oldAgent))
			}
			n := len(sc.obs)
			for j := 0; j <= n; j++ {
				if sc.reuse && j == sc.oldAt { // its ENDED comes late: received after this live call's start
					m.OnCall(sc.call(raceObs{state: CallEnded}, sc.old, oldAgent))
				}
				if hasMedia && j == sc.p {
					gate <- struct{}{} // the media becomes matchable now
					<-gateDone
				}
				if sc.activateAt >= 0 && j == sc.activateAt+1 {
					sc.waitActivated()
				}
				if sc.byeFirst && j == n-1 {
					bye <- struct{}{}
					<-byeDone
				}
				if j == n {
					break
				}
				sleep()
				o := sc.obs[j]
				m.OnCall(sc.call(o, sc.conv, slices.Clone(o.agents)))
			}
		})
	} else {
		close(ctiDone)
	}
	if !hasMedia {
		return
	}
	wg.Go(func() {
		s := sc.s
		sleep := sleeper(sc.medSleeps)
		sleep()
		ucidKey, cnvKey := Key{Kind: KeyUCID, Value: sc.ucid}, Key{Kind: KeyConversationID, Value: sc.conv}
		if !hasCTI {
			switch sc.mediaKeys {
			case mkUCID:
				s.setKeys(ucidKey)
			case mkCnvLater:
				s.setKeys()
			}
			m.AddSession(s, sc.tenant)
			sleep()
			if sc.mediaKeys == mkCnvLater { // a conversation id no CTI ever shows
				s.setKeys(Key{Kind: KeyConversationID, Value: sc.old})
				m.UpdateSession(s)
				sleep()
			}
			m.Pending()
		} else {
			if sc.mediaKeys == mkCnvLater { // the INVITE carries nothing to match on: added at once
				m.AddSession(s, sc.tenant)
				sleep()
			}
			<-gate
			switch sc.mediaKeys {
			case mkUCID:
				s.setKeys(ucidKey)
				m.AddSession(s, sc.tenant)
			case mkCnv:
				s.setKeys(cnvKey)
				m.AddSession(s, sc.tenant)
			case mkBoth:
				s.setKeys(ucidKey, cnvKey)
				m.AddSession(s, sc.tenant)
			case mkCnvLater:
				s.setKeys(cnvKey)
				m.UpdateSession(s)
			}
			gateDone <- struct{}{}
			if sc.cnvLater {
				sleep()
				s.setKeys(ucidKey, cnvKey)
				m.UpdateSession(s)
			}
			if sc.byeFirst {
				<-bye
			} else {
				<-ctiDone
			}
		}
		sleep()
		sc.settle(m)
		sc.final = s.state()
		m.RemoveSession(s)
		if sc.byeFirst {
			close(byeDone)
		}
	})
}

func sleeper(d []time.Duration) func() {
	k := 0
	return func() {
		time.Sleep(d[k%len(d)])
		k++
	}
}

// waitActivated: an ACTIVE stretch that must be recorded lasts until the session is recording.
func (sc *raceScript) waitActivated() {
	deadline := time.Now().Add(10 * time.Second)
	for sc.s.activated() == 0 {
		if time.Now().After(deadline) {
			sc.fail("not activated within 10s of the observation that asks for it (obs %d)", sc.activateAt)
			return
		}
		time.Sleep(time.Millisecond)
	}
}

// settle waits until the session's worker has taken the latest wanted state and no action runs.
func (sc *raceScript) settle(m *Matcher) {
	deadline := time.Now().Add(10 * time.Second)
	for {
		m.mu.Lock()
		b := m.sessions[sc.s.id]
		idle := b == nil || (b.done == b.gen && !b.busy)
		m.mu.Unlock()
		if idle {
			return
		}
		if time.Now().After(deadline) {
			sc.fail("the session's worker did not settle within 10s")
			return
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// check asserts what happened to one call.
func (sc *raceScript) check(t *testing.T, m *Matcher) {
	t.Helper()
	sc.failMu.Lock()
	failures := slices.Clone(sc.failures)
	sc.failMu.Unlock()
	reuse := "no"
	switch {
	case sc.reuse && sc.oldAt < 0:
		reuse = "older ENDED first"
	case sc.reuse:
		reuse = fmt.Sprintf("older ENDED before obs %d", sc.oldAt)
	}
	keys := mkNames[sc.mediaKeys]
	if sc.cnvLater {
		keys += ", conversation id later"
	}
	desc := fmt.Sprintf("call %d (%s, media keys %s, p %d/%d, UCID reuse %s, bye first %v)",
		sc.i, sc.kind, keys, sc.p, len(sc.obs), reuse, sc.byeFirst)
	for _, f := range failures {
		t.Errorf("%s: %s", desc, f)
	}
	s := sc.s
	if s == nil {
		return
	}
	s.mu.Lock()
	activates, pauses, overlapped := s.activates, s.pauses, s.overlapped
	notes := slices.Clone(s.notes)
	s.mu.Unlock()
	if overlapped {
		t.Errorf("%s: two actions at once", desc)
	}
	if sc.wantRecord {
		if activates == 0 {
			t.Errorf("%s: should have been recorded, Activate never called", desc)
		}
		if sc.final != sc.wantFinal {
			t.Errorf("%s: media %s at the end, want %s (activate×%d, pause×%d)", desc, sc.final, sc.wantFinal, activates, pauses)
		}
	} else if activates != 0 || pauses != 0 || sc.final != "idle" {
		t.Errorf("%s: must never be recorded, got activate×%d pause×%d, media %s", desc, activates, pauses, sc.final)
	}
	if _, ok := m.Session(s.id); ok {
		t.Errorf("%s: the matcher still knows the session after RemoveSession", desc)
	}
	if len(notes) == 0 {
		t.Errorf("%s: never annotated", desc)
		return
	}
	last := notes[len(notes)-1]
	if len(sc.obs) == 0 {
		if last.Unmatched == "" || last.ConversationID != "" || last.MatchedBy != (Key{}) {
			t.Errorf("%s: media without CTI must end with an Unmatched annotation, got %+v", desc, last)
		}
		return
	}
	if last.Unmatched != "" || last.ConversationID != sc.conv || last.Tenant != "acme" {
		t.Errorf("%s: last annotation: conversation %q unmatched %q, want matched to %s", desc, last.ConversationID, last.Unmatched, sc.conv)
		return
	}
	if !slices.Contains(s.Keys(), last.MatchedBy) {
		t.Errorf("%s: matched by %v, not one of the session's keys %v", desc, last.MatchedBy, s.Keys())
	}
	// The recording's agents are those of the observations it saw (a wrong provisional match, race 25f,
	// leaves nothing behind).
	var want []string
	for j := sc.seenFrom; j < sc.seenTo; j++ {
		for _, a := range sc.obs[j].agents {
			if !slices.Contains(want, a.UserID) {
				want = append(want, a.UserID)
			}
		}
	}
	if got := agentIDs(last.Agents); !slices.Equal(got, sortedCopy(want)) {
		t.Errorf("%s: agents %v, want %v", desc, got, sortedCopy(want))
	}
	if n := len(last.Segments); n == 0 || last.Segments[n-1].State != sc.obs[sc.seenTo-1].state {
		t.Errorf("%s: segments %+v, want the last in state %s", desc, last.Segments, sc.obs[sc.seenTo-1].state)
	}
}

func sortedCopy(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	if s == nil {
		s = []string{}
	}
	return s
}

// raceSession is a MediaSession whose Activate and Pause take a random 0–3 ms (cut short by the context)
// and which records what it was asked.
type raceSession struct {
	id string

	mu         sync.Mutex
	rng        *rand.Rand
	keys       []Key
	activates  int    // Activate calls
	pauses     int    // Pause calls
	active     int    // successful activations
	cur        string // "", "active", "paused"
	inflight   int
	overlapped bool
	notes      []Annotation
}

func (s *raceSession) ID() string { return s.id }

func (s *raceSession) Keys() []Key {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.keys)
}

func (s *raceSession) setKeys(keys ...Key) {
	s.mu.Lock()
	s.keys = keys
	s.mu.Unlock()
}

func (s *raceSession) act(ctx context.Context, to string) error {
	s.mu.Lock()
	if to == "active" {
		s.activates++
	} else {
		s.pauses++
	}
	s.inflight++
	s.overlapped = s.overlapped || s.inflight > 1
	d := time.Duration(s.rng.IntN(3001)) * time.Microsecond
	s.mu.Unlock()
	tm := time.NewTimer(d)
	defer tm.Stop()
	var err error
	select {
	case <-ctx.Done():
		err = ctx.Err()
	case <-tm.C:
	}
	s.mu.Lock()
	s.inflight--
	if err == nil {
		s.cur = to
		if to == "active" {
			s.active++
		}
	}
	s.mu.Unlock()
	return err
}

func (s *raceSession) Activate(ctx context.Context) error { return s.act(ctx, "active") }
func (s *raceSession) Pause(ctx context.Context) error    { return s.act(ctx, "paused") }

func (s *raceSession) Annotate(a Annotation) {
	s.mu.Lock()
	s.notes = append(s.notes, a)
	s.mu.Unlock()
}

func (s *raceSession) activated() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.active
}

func (s *raceSession) state() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cur == "" {
		return "idle"
	}
	return s.cur
}
