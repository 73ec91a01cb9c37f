package genesys_test

// Event-semantics tests: research/genesys-cti.md §6.3 edge cases 13–24 and 28, each driven through the fake
// Genesys Cloud's scenario builder and the real tracker over the fake's WebSocket. Each test asserts the
// cti.Event sequence the tracker emits for a conversation (state, tracked agents and their held flags,
// secure pause) and, where the case is about them, flags, UCIDs, direction and addresses.
//
// "No event" and "no further event" are asserted with a barrier (semBarrier): a separate call on a tracked
// agent's topic whose events, on the same socket, arrive after everything published before it.

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/siphook/siphook/cti"
	"github.com/siphook/siphook/cti/genesys"
	"github.com/siphook/siphook/cti/genesys/genesystest"
	"github.com/siphook/siphook/matcher"
)

// UCIDs (hex UUI forms and the canonical 20-digit form they decode to, per matcher.ParseUCID), queues and
// numbers used below.
const (
	semUCID1Hex   = "00FA080019001038F725B3;encoding=hex" // with protocol discriminator and parameter
	semUCID1Bare  = "FA080019001038F725B3"                // without
	semUCID1      = "00025000160955721139"
	semUCID2Hex   = "FA08004762C169FA480C"
	semUCID2      = "00071252811778010124"
	semQueue1     = "67ce2258-ff62-4f8e-8467-2d79c9b98e2b"
	semQueue2     = "8d1f3a52-6b7c-4d8e-9f0a-1b2c3d4e5f60"
	semCustomer   = "+18125841533"
	semDialled    = "+13129718321"
	semExternalNo = "+15555550123"
)

// semHarness starts a harness whose tracker's start-up reconciliation is over before the test's calls
// begin, so that it cannot fetch a conversation of the test half-way through and interleave that snapshot
// with the live ones (see semStart).
func semHarness(t *testing.T, o harnessOpts) *harness {
	t.Helper()
	o.NoRun = true
	h := newHarness(t, o)
	semStart(t, h)
	return h
}

// semStart starts the harness's tracker with a sentinel call already up (agent D, answered before the
// tracker subscribed): its first event can only come from the start-up reconciliation's GET, which follows
// that reconciliation's analytics query, so once it is recorded no later conversation can be in that pass.
func semStart(t *testing.T, h *harness) {
	t.Helper()
	s := h.Fake.InboundCall(genesystest.CustomerName("sentinel")).Answer(agentD)
	semOK(t, s)
	h.Start()
	h.WaitStates(s.ID(), cti.StateActive)
	if ev := h.Last(s.ID()); !ev.Reconciled {
		t.Fatalf("sentinel event not from reconciliation: %+v", ev)
	}
}

// semOK fails the test when the fake refused a step of the scenario.
func semOK(t *testing.T, calls ...*genesystest.Call) {
	t.Helper()
	for _, c := range calls {
		if err := c.Err(); err != nil {
			t.Fatalf("the fake refused a step of conversation %s: %v", c.ID(), err)
		}
	}
}

// semBarrier runs a separate call on tracked agent D's topic and waits for its events: every event
// published before it (on the one socket, in order) has then been applied.
func semBarrier(t *testing.T, h *harness) {
	t.Helper()
	c := h.Fake.InboundCall(genesystest.CustomerName("barrier")).Answer(agentD).CustomerHangup()
	semOK(t, c)
	h.WaitStates(c.ID(), cti.StateActive, cti.StateEnded)
}

var semLetters = map[string]string{agentA: "A", agentB: "B", agentC: "C", agentD: "D", agentE: "E", agentF: "F"}

// semSummary is an event in short: "ACTIVE A", "HELD A*,B" (* = held), "HELD" (no tracked agent), with
// " pause" when the secure pause is on.
func semSummary(e cti.Event) string {
	s := string(e.State)
	var as []string
	for _, a := range e.Agents {
		l := semLetters[a.UserID]
		if l == "" {
			l = a.UserID
		}
		if a.Held {
			l += "*"
		}
		as = append(as, l)
	}
	if len(as) > 0 {
		s += " " + strings.Join(as, ",")
	}
	if e.SecurePause {
		s += " pause"
	}
	return s
}

func semSummaries(evs []cti.Event) []string {
	out := make([]string, 0, len(evs))
	for _, e := range evs {
		out = append(out, semSummary(e))
	}
	return out
}

// semExpect waits for the conversation's events to be exactly want (semSummary form), runs a barrier, and
// checks that nothing else came. No want means no event at all.
func semExpect(t *testing.T, h *harness, id string, want ...string) []cti.Event {
	t.Helper()
	if len(want) > 0 {
		states := make([]cti.State, len(want))
		for i, w := range want {
			s, _, _ := strings.Cut(w, " ")
			states[i] = cti.State(s)
		}
		h.WaitStates(id, states...)
	}
	semBarrier(t, h)
	evs := h.Events(id)
	if got := semSummaries(evs); !slices.Equal(got, want) {
		t.Fatalf("events of %s:\n got  %q\n want %q", id, got, want)
	}
	for i, e := range evs {
		if e.ConversationID != strings.ToLower(id) || e.Source != "genesys" || e.Tenant != "test" || e.Received.IsZero() || e.Time.IsZero() {
			t.Errorf("event %d of %s malformed: %+v", i, id, e)
		}
	}
	return evs
}

// semConv is what the tests read of a fake's snapshot (decoded here, independently of the tracker's model).
type semConv struct {
	Participants []semPart `json:"participants"`
}

type semPart struct {
	ID                   string    `json:"id"`
	UserID               string    `json:"userId"`
	Purpose              string    `json:"purpose"`
	ConsultParticipantID string    `json:"consultParticipantId"`
	Calls                []semCall `json:"calls"`
}

type semCall struct {
	State            string `json:"state"`
	ConnectedTime    string `json:"connectedTime"`
	DisconnectedTime string `json:"disconnectedTime"`
	StartHoldTime    string `json:"startHoldTime"`
	DisconnectType   string `json:"disconnectType"`
}

func semDecode(t *testing.T, b []byte) semConv {
	t.Helper()
	var c semConv
	if err := json.Unmarshal(b, &c); err != nil {
		t.Fatalf("snapshot unreadable: %v: %s", err, b)
	}
	return c
}

// semSnapshot is the fake's current snapshot of a conversation.
func semSnapshot(t *testing.T, h *harness, id string) semConv {
	t.Helper()
	b := h.Fake.Snapshot(id)
	if b == nil {
		t.Fatalf("the fake does not know conversation %s", id)
	}
	return semDecode(t, b)
}

// agent returns the user's agent/user participants in order (monitors included).
func (c semConv) agent(userID string) []semPart {
	var out []semPart
	for _, p := range c.Participants {
		if p.UserID == userID {
			out = append(out, p)
		}
	}
	return out
}

func (c semConv) purpose(purpose string) []semPart {
	var out []semPart
	for _, p := range c.Participants {
		if p.Purpose == purpose {
			out = append(out, p)
		}
	}
	return out
}

func semTime(t *testing.T, s string) time.Time {
	t.Helper()
	tm, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		t.Fatalf("timestamp %q: %v", s, err)
	}
	return tm
}

func semBools(evs []cti.Event, f func(cti.Event) bool) []bool {
	out := make([]bool, len(evs))
	for i, e := range evs {
		out[i] = f(e)
	}
	return out
}

func semCheckBools(t *testing.T, what string, evs []cti.Event, f func(cti.Event) bool, want ...bool) {
	t.Helper()
	if got := semBools(evs, f); !slices.Equal(got, want) {
		t.Errorf("%s per event = %v, want %v (events %q)", what, got, want, semSummaries(evs))
	}
}

func semIsTransfer(e cti.Event) bool   { return e.Transfer }
func semIsConsult(e cti.Event) bool    { return e.Consult }
func semIsConference(e cti.Event) bool { return e.Conference }

// semLookup asks the tracker for a conversation's state (Source.Lookup: fetched over REST when unknown).
func semLookup(t *testing.T, h *harness, id string) (cti.State, bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, ok, err := h.Src.Lookup(ctx, id)
	if err != nil {
		t.Fatalf("Lookup(%s): %v", id, err)
	}
	return st, ok
}

// TestEdge13DuplicateEvents: the same snapshot twice, and the same change on two tracked agents' topics,
// make one event per change of the derived state.
func TestEdge13DuplicateEvents(t *testing.T) {
	t.Run("same snapshot twice", func(t *testing.T) {
		h := semHarness(t, harnessOpts{Fake: genesystest.Options{Seed: 13}})
		h.Fake.Duplicate(1)
		c := h.Fake.InboundCall(genesystest.UUI(semUCID1Hex)).Answer(agentA).Hold(agentA).Resume(agentA).CustomerHangup()
		semOK(t, c)
		evs := semExpect(t, h, c.ID(), "ACTIVE A", "HELD A*", "ACTIVE A", "ENDED")
		// Every publication on A's topic went out twice: offer, connected, held, resumed, ended.
		if st := h.Fake.Stats(); st.EventsDuplicated < 5 {
			t.Errorf("the fake duplicated %d events, want every one (≥ 5)", st.EventsDuplicated)
		}
		for i, e := range evs {
			if !slices.Equal(e.UCIDs, []string{semUCID1}) {
				t.Errorf("event %d UCIDs = %v", i, e.UCIDs)
			}
		}
	})

	t.Run("same change on two agents' topics", func(t *testing.T) {
		h := semHarness(t, harnessOpts{})
		before := h.Counter("siphook_cti_genesys_notifications_received_total", nil)
		c := h.Fake.InboundCall().Answer(agentA).ConsultStart(agentA, agentB).ConsultConference().
			AgentHangup(agentA).CustomerHangup()
		semOK(t, c)
		semExpect(t, h, c.ID(), "ACTIVE A", "HELD A", "ACTIVE A,B", "ACTIVE B", "ENDED")
		// Snapshots: offer A, A connected (A's topic); consult alerting, consult connected, conference,
		// A leaves, end (A's and B's topics); plus the barrier's three on D's.
		if got, want := h.Counter("siphook_cti_genesys_notifications_received_total", nil)-before, float64(2+5*2+3); got != want {
			t.Errorf("tracker received %v notifications, want %v", got, want)
		}
	})

	t.Run("duplicated on two topics", func(t *testing.T) {
		h := semHarness(t, harnessOpts{Fake: genesystest.Options{Seed: 131}})
		h.Fake.Duplicate(1)
		c := h.Fake.InboundCall().Answer(agentA).BlindTransfer(agentA, agentB).Hold(agentB).Resume(agentB).CustomerHangup()
		semOK(t, c)
		semExpect(t, h, c.ID(), "ACTIVE A", "HELD", "ACTIVE B", "HELD B*", "ACTIVE B", "ENDED")
	})
}

// TestEdge14OutOfOrder: with deliveries reordered and delayed, terminal states stay terminal (a stale
// "connected" never revives an ended conversation), and the live state converges on the fake's truth.
func TestEdge14OutOfOrder(t *testing.T) {
	t.Run("end before connect (Reorder, EventJitter)", func(t *testing.T) {
		// ReorderIdle long: on a loaded machine the default 100 ms could release windows of one event before
		// the next came, and nothing would be reordered.
		h := semHarness(t, harnessOpts{Fake: genesystest.Options{Seed: 14, EventJitter: 10 * time.Millisecond, ReorderIdle: 2 * time.Second}})
		h.Fake.Reorder(3) // each call below publishes exactly three snapshots on A's topic
		var calls []*genesystest.Call
		for range 120 { // enough that some ends come first whatever the windows' alignment
			c := h.Fake.InboundCall().Answer(agentA).CustomerHangup()
			semOK(t, c)
			calls = append(calls, c)
		}
		h.Fake.Reorder(0)
		semBarrier(t, h)
		// Orders of (alerting, connected, ended) and what they must yield:
		//   connected before ended → ACTIVE, ENDED (an alerting snapshot after connected is stale: ignored,
		//   not read as the call being on its way somewhere, which would make it HELD);
		//   ended before connected → nothing: the call was over before it was seen up, and stays over.
		allowed := [][]string{nil, {"ACTIVE A", "ENDED"}}
		endedFirst, started := 0, 0
		for _, c := range calls {
			got := semSummaries(h.Events(c.ID()))
			if !slices.ContainsFunc(allowed, func(w []string) bool { return slices.Equal(w, got) }) {
				t.Errorf("conversation %s: events %q; want one of %q", c.ID(), got, allowed)
			}
			if len(got) == 0 {
				endedFirst++
			} else {
				started++
			}
		}
		if st := h.Fake.Stats(); endedFirst == 0 || started == 0 {
			t.Errorf("reordering not exercised: %d conversations ended before they were seen up, %d started (stats %+v)", endedFirst, started, st)
		}
		t.Logf("%d of %d conversations had their end delivered before their connect", endedFirst, len(calls))
	})

	t.Run("stale hold after resume converges by reconciliation", func(t *testing.T) {
		h := semHarness(t, harnessOpts{
			Fake:   genesystest.Options{Seed: 141, EventJitter: 10 * time.Millisecond},
			Config: func(c *genesys.Config) { c.ReconcileEvery = 300 * time.Millisecond },
		})
		h.Fake.Reorder(4) // offer, connected, held, resumed
		var calls []*genesystest.Call
		for range 12 {
			c := h.Fake.InboundCall().Answer(agentA).Hold(agentA).Resume(agentA)
			semOK(t, c)
			calls = append(calls, c)
		}
		h.Fake.Reorder(0)
		semBarrier(t, h)
		for _, c := range calls {
			if truth := h.Fake.Truth(c.ID(), []string{agentA}); truth != genesystest.TruthActive {
				t.Fatalf("truth of %s = %q", c.ID(), truth)
			}
			h.WaitFor("conversation "+c.ID()+" back to ACTIVE A", func() bool {
				return semSummary(h.Last(c.ID())) == "ACTIVE A"
			})
			for _, e := range h.Events(c.ID()) {
				if e.State == cti.StateEnded {
					t.Errorf("conversation %s ended: %q", c.ID(), semSummaries(h.Events(c.ID())))
				}
			}
		}
	})

	t.Run("delayed and jittered deliveries keep their order", func(t *testing.T) {
		const delay = 40 * time.Millisecond
		h := semHarness(t, harnessOpts{Fake: genesystest.Options{EventDelay: delay, EventJitter: 60 * time.Millisecond, Seed: 142}})
		c := h.Fake.InboundCall(genesystest.UUI(semUCID1Hex)).Answer(agentA).Hold(agentA).Resume(agentA).
			BlindTransfer(agentA, agentB).CustomerHangup()
		semOK(t, c)
		evs := semExpect(t, h, c.ID(), "ACTIVE A", "HELD A*", "ACTIVE A", "HELD", "ACTIVE B", "ENDED")
		// Event.Time is the payload's time of the change, Received ours: at least the delivery delay apart.
		for _, i := range []int{0, 1, 4, 5} { // the events whose time comes from a payload timestamp
			if lag := evs[i].Received.Sub(evs[i].Time); lag < delay {
				t.Errorf("event %d (%s): received %v after its time, want ≥ %v", i, semSummary(evs[i]), lag, delay)
			}
		}
	})
}

// TestEdge15HoldResume: hold and resume (agent held, customer confined), rapid toggling, a hold while a
// second agent is alerting, and the secure pause with and without the hold policy.
func TestEdge15HoldResume(t *testing.T) {
	t.Run("agent hold and resume", func(t *testing.T) {
		h := semHarness(t, harnessOpts{})
		c := h.Fake.InboundCall().Answer(agentA).Hold(agentA).Resume(agentA).CustomerHangup()
		semOK(t, c)
		evs := semExpect(t, h, c.ID(), "ACTIVE A", "HELD A*", "ACTIVE A", "ENDED")
		// The HELD event carries the agent's startHoldTime (the snapshot that put the call on hold).
		var hold string
		for _, b := range h.Fake.History(c.ID()) {
			for _, p := range semDecode(t, b).agent(agentA) {
				if hold == "" && p.Calls[0].StartHoldTime != "" {
					hold = p.Calls[0].StartHoldTime
				}
			}
		}
		if hold == "" {
			t.Fatal("no snapshot with startHoldTime")
		}
		if !evs[1].Time.Equal(semTime(t, hold)) {
			t.Errorf("HELD time %v, want startHoldTime %s", evs[1].Time, hold)
		}
	})

	t.Run("rapid hold and resume", func(t *testing.T) {
		h := semHarness(t, harnessOpts{})
		c := h.Fake.InboundCall().Answer(agentA)
		want := []string{"ACTIVE A"}
		for range 5 {
			c.Hold(agentA).Resume(agentA)
			want = append(want, "HELD A*", "ACTIVE A")
		}
		c.CustomerHangup()
		semOK(t, c)
		semExpect(t, h, c.ID(), append(want, "ENDED")...)
	})

	t.Run("customer confined while the agent consults", func(t *testing.T) {
		h := semHarness(t, harnessOpts{})
		c := h.Fake.InboundCall().Answer(agentA).ConsultStart(agentA, agentE)
		semOK(t, c)
		cust := semSnapshot(t, h, c.ID()).purpose("customer")[0]
		if cust.Calls[0].State != "connected" {
			t.Fatalf("customer %+v", cust)
		}
		c.ConsultCancel().CustomerHangup()
		semOK(t, c)
		// The agent is not held, the customer is (confined): HELD with A not held.
		semExpect(t, h, c.ID(), "ACTIVE A", "HELD A", "ACTIVE A", "ENDED")
	})

	t.Run("hold while a second agent is alerting", func(t *testing.T) {
		h := semHarness(t, harnessOpts{})
		c := h.Fake.InboundCall().Answer(agentA).Hold(agentA).Offer(agentB)
		semOK(t, c)
		semExpect(t, h, c.ID(), "ACTIVE A", "HELD A*") // B alerting changes nothing
		c.Answer(agentB).AgentHangup(agentA).CustomerHangup()
		semOK(t, c)
		semExpect(t, h, c.ID(), "ACTIVE A", "HELD A*", "ACTIVE A*,B", "ACTIVE B", "ENDED")
	})

	t.Run("secure pause reported", func(t *testing.T) {
		h := semHarness(t, harnessOpts{})
		c := h.Fake.InboundCall().Answer(agentA).SecurePause(true).SecurePause(false).CustomerHangup()
		semOK(t, c)
		semExpect(t, h, c.ID(), "ACTIVE A", "ACTIVE A pause", "ACTIVE A", "ENDED")
	})

	t.Run("secure pause holds", func(t *testing.T) {
		h := semHarness(t, harnessOpts{Config: func(c *genesys.Config) { c.SecurePauseHolds = true }})
		c := h.Fake.InboundCall().Answer(agentA).SecurePause(true).SecurePause(false).Hold(agentA).SecurePause(true).
			Resume(agentA).SecurePause(false).CustomerHangup()
		semOK(t, c)
		semExpect(t, h, c.ID(), "ACTIVE A", "HELD A* pause", "ACTIVE A", "HELD A*", "HELD A* pause", "ACTIVE A", "ENDED")
	})
}

// TestEdge16UnansweredOffers: offers that time out or are declined (several participants of one user) start
// and stop nothing; the answered one is the agent of record.
func TestEdge16UnansweredOffers(t *testing.T) {
	t.Run("offers before the answer", func(t *testing.T) {
		h := semHarness(t, harnessOpts{})
		c := h.Fake.InboundCall(genesystest.Queue(semQueue1)).NoAnswer(agentA).Decline(agentA).NoAnswer(agentB)
		semOK(t, c)
		semExpect(t, h, c.ID())
		c.Answer(agentA)
		semOK(t, c)
		snap := semSnapshot(t, h, c.ID())
		c.CustomerHangup()
		semOK(t, c)
		evs := semExpect(t, h, c.ID(), "ACTIVE A", "ENDED")
		as := snap.agent(agentA)
		if len(as) != 3 || as[0].Calls[0].DisconnectType != "transfer.noanswer" || as[1].Calls[0].DisconnectType != "client" ||
			as[2].Calls[0].State != "connected" {
			t.Fatalf("participants of A: %+v", as)
		}
		if a := evs[0].Agents[0]; a.ParticipantID != as[2].ID || a.Email != "a@example.com" || a.Name != "Agent A" {
			t.Errorf("agent of record %+v, want participant %s", a, as[2].ID)
		}
		if evs[0].QueueID != semQueue1 {
			t.Errorf("queue %q", evs[0].QueueID)
		}
		semCheckBools(t, "Transfer", evs, semIsTransfer, false, false)
	})

	t.Run("abandoned after unanswered offers", func(t *testing.T) {
		h := semHarness(t, harnessOpts{})
		c := h.Fake.InboundCall(genesystest.Queue(semQueue1)).NoAnswer(agentA).Decline(agentB).NoAnswer(agentA).CustomerHangup()
		semOK(t, c)
		semExpect(t, h, c.ID())
		if st, ok := semLookup(t, h, c.ID()); ok {
			t.Errorf("Lookup = %s, want unknown", st)
		}
	})

	t.Run("offers to others during the call", func(t *testing.T) {
		h := semHarness(t, harnessOpts{})
		c := h.Fake.InboundCall().Answer(agentA).NoAnswer(agentB).Decline(agentC).NoAnswer(agentA).CustomerHangup()
		semOK(t, c)
		evs := semExpect(t, h, c.ID(), "ACTIVE A", "ENDED")
		semCheckBools(t, "Transfer", evs, semIsTransfer, false, false)
	})
}

// TestEdge17BlindTransfer: the recording follows a blind transfer to a tracked agent (directly or through a
// queue) with the attribution changing at the new agent's connectedTime, and ends when the call goes to an
// external number or an untracked agent.
func TestEdge17BlindTransfer(t *testing.T) {
	t.Run("to a tracked agent", func(t *testing.T) {
		h := semHarness(t, harnessOpts{})
		c := h.Fake.InboundCall(genesystest.Queue(semQueue1), genesystest.UUI(semUCID1Hex), genesystest.ANI(semCustomer)).
			Answer(agentA).BlindTransfer(agentA, agentB)
		semOK(t, c)
		snap := semSnapshot(t, h, c.ID())
		c.CustomerHangup()
		semOK(t, c)
		evs := semExpect(t, h, c.ID(), "ACTIVE A", "HELD", "ACTIVE B", "ENDED")
		semCheckBools(t, "Transfer", evs, semIsTransfer, false, true, true, true)
		b := snap.agent(agentB)
		if len(b) != 1 || b[0].Calls[0].State != "connected" {
			t.Fatalf("B %+v", b)
		}
		if !evs[2].Time.Equal(semTime(t, b[0].Calls[0].ConnectedTime)) || evs[2].Agents[0].ParticipantID != b[0].ID {
			t.Errorf("B's event at %v with %+v; want B's connectedTime %s, participant %s", evs[2].Time, evs[2].Agents, b[0].Calls[0].ConnectedTime, b[0].ID)
		}
		for i, e := range evs {
			if !slices.Equal(e.UCIDs, []string{semUCID1}) || e.ANI != semCustomer || e.Direction != "inbound" {
				t.Errorf("event %d: UCIDs %v, ANI %q, direction %q", i, e.UCIDs, e.ANI, e.Direction)
			}
		}
	})

	t.Run("via a queue", func(t *testing.T) {
		h := semHarness(t, harnessOpts{})
		c := h.Fake.InboundCall(genesystest.Queue(semQueue1)).Answer(agentA).TransferToQueue(agentA, semQueue2).
			NoAnswer(agentB).Answer(agentC).CustomerHangup()
		semOK(t, c)
		evs := semExpect(t, h, c.ID(), "ACTIVE A", "HELD", "ACTIVE C", "ENDED")
		if evs[0].QueueID != semQueue1 || evs[2].QueueID != semQueue2 {
			t.Errorf("queues %q then %q, want %s then %s", evs[0].QueueID, evs[2].QueueID, semQueue1, semQueue2)
		}
		semCheckBools(t, "Transfer", evs, semIsTransfer, false, true, true, true)
	})

	t.Run("to an external number", func(t *testing.T) {
		h := semHarness(t, harnessOpts{})
		c := h.Fake.InboundCall(genesystest.ANI(semCustomer)).Answer(agentA).TransferExternal(agentA, semExternalNo)
		semOK(t, c)
		evs := semExpect(t, h, c.ID(), "ACTIVE A", "HELD", "ENDED")
		if evs[2].ANI != semCustomer {
			t.Errorf("ENDED ANI %q, want the customer's", evs[2].ANI)
		}
		if truth := h.Fake.Truth(c.ID(), []string{agentA, agentB, agentC, agentD}); truth != genesystest.TruthEnded {
			t.Errorf("truth %q", truth)
		}
		c.CustomerHangup()
		semOK(t, c)
		semExpect(t, h, c.ID(), "ACTIVE A", "HELD", "ENDED")
	})

	t.Run("to an untracked agent", func(t *testing.T) {
		h := semHarness(t, harnessOpts{})
		c := h.Fake.InboundCall().Answer(agentA).BlindTransfer(agentA, agentE)
		semOK(t, c)
		semExpect(t, h, c.ID(), "ACTIVE A", "HELD", "ENDED")
		c.Hold(agentE).Resume(agentE).CustomerHangup()
		semOK(t, c)
		semExpect(t, h, c.ID(), "ACTIVE A", "HELD", "ENDED")
	})

	t.Run("from an untracked agent", func(t *testing.T) {
		h := semHarness(t, harnessOpts{})
		c := h.Fake.InboundCall().Answer(agentE).BlindTransfer(agentE, agentA).CustomerHangup()
		semOK(t, c)
		evs := semExpect(t, h, c.ID(), "ACTIVE A", "ENDED")
		semCheckBools(t, "Transfer", evs, semIsTransfer, true, true)
	})

	t.Run("to an untracked agent and back to a tracked one", func(t *testing.T) {
		h := semHarness(t, harnessOpts{})
		c := h.Fake.InboundCall().Answer(agentA).BlindTransfer(agentA, agentE)
		semOK(t, c)
		semExpect(t, h, c.ID(), "ACTIVE A", "HELD", "ENDED")
		c.BlindTransfer(agentE, agentB)
		semOK(t, c)
		if truth := h.Fake.Truth(c.ID(), []string{agentA, agentB, agentC, agentD}); truth != genesystest.TruthActive {
			t.Fatalf("truth %q", truth)
		}
		h.WaitFor("B's call reported", func() bool { return semSummary(h.Last(c.ID())) == "ACTIVE B" })
	})
}

// TestEdge18ConsultTransfer: while A consults D the customer is held; the consulted agent's leg is not a
// customer call; outcomes complete, cancel and conference.
func TestEdge18ConsultTransfer(t *testing.T) {
	start := func(t *testing.T) (*harness, *genesystest.Call) {
		h := semHarness(t, harnessOpts{})
		c := h.Fake.InboundCall(genesystest.UUI(semUCID1Hex), genesystest.ANI(semCustomer)).Answer(agentA).ConsultStart(agentA, agentD)
		semOK(t, c)
		return h, c
	}
	// checkConsult: the consult participant is D's, points at the customer, and no event took the
	// consult for a customer call (ANI, UCID and direction stay the customer's).
	checkConsult := func(t *testing.T, h *harness, c *genesystest.Call, evs []cti.Event) {
		t.Helper()
		snap := semSnapshot(t, h, c.ID())
		d := snap.agent(agentD)
		cust := snap.purpose("customer")
		if len(d) == 0 || len(cust) != 1 || d[0].ConsultParticipantID != cust[0].ID {
			t.Fatalf("consult participant %+v, customer %+v", d, cust)
		}
		for i, e := range evs {
			if e.ANI != semCustomer || e.Direction != "inbound" || !slices.Equal(e.UCIDs, []string{semUCID1}) {
				t.Errorf("event %d: ANI %q, direction %q, UCIDs %v", i, e.ANI, e.Direction, e.UCIDs)
			}
		}
		// While A consults, D talks to A, not to the customer: D is not an agent of the customer's call.
		if len(evs[1].Agents) != 1 || evs[1].Agents[0].UserID != agentA {
			t.Errorf("during the consult the agents are %+v, want A only", evs[1].Agents)
		}
	}

	t.Run("complete", func(t *testing.T) {
		h, c := start(t)
		c.ConsultComplete().CustomerHangup()
		semOK(t, c)
		evs := semExpect(t, h, c.ID(), "ACTIVE A", "HELD A", "ACTIVE D", "ENDED")
		checkConsult(t, h, c, evs)
		semCheckBools(t, "Consult", evs, semIsConsult, false, true, true, true)
		semCheckBools(t, "Conference", evs, semIsConference, false, false, false, false)
		semCheckBools(t, "Transfer", evs[:3], semIsTransfer, false, false, true)
	})

	t.Run("cancel", func(t *testing.T) {
		h, c := start(t)
		c.ConsultCancel().CustomerHangup()
		semOK(t, c)
		evs := semExpect(t, h, c.ID(), "ACTIVE A", "HELD A", "ACTIVE A", "ENDED")
		checkConsult(t, h, c, evs)
		semCheckBools(t, "Conference", evs, semIsConference, false, false, false, false)
		semCheckBools(t, "Transfer", evs, semIsTransfer, false, false, false, false) // a cancelled consult is no transfer
	})

	t.Run("conference", func(t *testing.T) {
		h, c := start(t)
		c.ConsultConference()
		semOK(t, c)
		d := semSnapshot(t, h, c.ID()).agent(agentD)
		c.AgentHangup(agentA).CustomerHangup()
		semOK(t, c)
		evs := semExpect(t, h, c.ID(), "ACTIVE A", "HELD A", "ACTIVE A,D", "ACTIVE D", "ENDED")
		checkConsult(t, h, c, evs)
		if len(d) != 2 || d[0].Calls[0].DisconnectType != "transfer.conference" || evs[2].Agents[1].ParticipantID != d[1].ID {
			t.Errorf("D's participants %+v; conference event agents %+v", d, evs[2].Agents)
		}
		semCheckBools(t, "Conference", evs[:3], semIsConference, false, false, true)
	})

	t.Run("complete to an untracked agent", func(t *testing.T) {
		h := semHarness(t, harnessOpts{})
		c := h.Fake.InboundCall().Answer(agentA).ConsultStart(agentA, agentE)
		semOK(t, c)
		semExpect(t, h, c.ID(), "ACTIVE A", "HELD A")
		c.ConsultComplete()
		semOK(t, c)
		evs := semExpect(t, h, c.ID(), "ACTIVE A", "HELD A", "ENDED")
		semCheckBools(t, "Consult", evs, semIsConsult, false, true, true)
	})
}

// TestEdge19Conference: two agents and the customer; the recording stays active while at least one tracked
// agent is connected and talking.
func TestEdge19Conference(t *testing.T) {
	conference := func(t *testing.T, other string) (*harness, *genesystest.Call) {
		h := semHarness(t, harnessOpts{})
		c := h.Fake.InboundCall().Answer(agentA).ConsultStart(agentA, other).ConsultConference()
		semOK(t, c)
		return h, c
	}

	t.Run("two tracked agents, one leaves", func(t *testing.T) {
		h, c := conference(t, agentB)
		b := semSnapshot(t, h, c.ID()).agent(agentB)
		c.AgentHangup(agentA)
		semOK(t, c)
		evs := semExpect(t, h, c.ID(), "ACTIVE A", "HELD A", "ACTIVE A,B", "ACTIVE B")
		if len(b) != 2 || evs[2].Agents[1].ParticipantID != b[1].ID || evs[3].Agents[0].ParticipantID != b[1].ID {
			t.Errorf("B's participants %+v, events %+v", b, evs[2:])
		}
		// The last event still shows B's consult leg that ended with transfer.conference.
		semCheckBools(t, "Conference", evs, semIsConference, false, false, true, true)
		c.AgentHangup(agentB) // the customer is alone: the call ends
		semOK(t, c)
		semExpect(t, h, c.ID(), "ACTIVE A", "HELD A", "ACTIVE A,B", "ACTIVE B", "ENDED")
	})

	t.Run("tracked and untracked, the tracked agent leaves", func(t *testing.T) {
		h, c := conference(t, agentE)
		c.AgentHangup(agentA)
		semOK(t, c)
		semExpect(t, h, c.ID(), "ACTIVE A", "HELD A", "ACTIVE A", "ENDED")
	})

	t.Run("tracked and untracked, the untracked agent leaves", func(t *testing.T) {
		h, c := conference(t, agentE)
		c.AgentHangup(agentE)
		semOK(t, c)
		semExpect(t, h, c.ID(), "ACTIVE A", "HELD A", "ACTIVE A")
		c.CustomerHangup()
		semOK(t, c)
		semExpect(t, h, c.ID(), "ACTIVE A", "HELD A", "ACTIVE A", "ENDED")
	})

	t.Run("holds inside the conference", func(t *testing.T) {
		h, c := conference(t, agentB)
		c.Hold(agentA).Hold(agentB).Resume(agentA).CustomerHangup()
		semOK(t, c)
		semExpect(t, h, c.ID(), "ACTIVE A", "HELD A", "ACTIVE A,B", "ACTIVE A*,B", "HELD A*,B*", "ACTIVE A,B*", "ENDED")
	})
}

// TestEdge20InternalCalls: calls without a customer leg are never recorded, including one an agent makes
// while a customer call waits on hold.
func TestEdge20InternalCalls(t *testing.T) {
	t.Run("tracked to tracked", func(t *testing.T) {
		h := semHarness(t, harnessOpts{})
		c := h.Fake.InternalCall(agentA, agentB).Answer(agentB).Hold(agentA).Resume(agentA)
		semOK(t, c)
		semExpect(t, h, c.ID())
		if st, ok := semLookup(t, h, c.ID()); ok {
			t.Errorf("Lookup of an internal call = %s", st)
		}
		c.AgentHangup(agentA)
		semOK(t, c)
		semExpect(t, h, c.ID())
	})

	t.Run("tracked to untracked", func(t *testing.T) {
		h := semHarness(t, harnessOpts{})
		c := h.Fake.InternalCall(agentA, agentE).Answer(agentE).AgentHangup(agentE)
		semOK(t, c)
		semExpect(t, h, c.ID())
	})

	t.Run("internal call while a customer waits", func(t *testing.T) {
		h := semHarness(t, harnessOpts{})
		cust := h.Fake.InboundCall().Answer(agentA).Hold(agentA)
		semOK(t, cust)
		internal := h.Fake.InternalCall(agentA, agentB).Answer(agentB)
		semOK(t, internal)
		semExpect(t, h, cust.ID(), "ACTIVE A", "HELD A*")
		semExpect(t, h, internal.ID())
		internal.AgentHangup(agentB)
		cust.Resume(agentA).CustomerHangup()
		semOK(t, cust, internal)
		semExpect(t, h, cust.ID(), "ACTIVE A", "HELD A*", "ACTIVE A", "ENDED")
		semExpect(t, h, internal.ID())
	})
}

// TestEdge21OutboundCall: an agent's outbound call is recorded from the far end's answer, keyed by the
// conversation id, with outbound direction and the dialled party as ANI; unanswered, it never starts.
func TestEdge21OutboundCall(t *testing.T) {
	t.Run("answered", func(t *testing.T) {
		h := semHarness(t, harnessOpts{})
		c := h.Fake.OutboundCall(agentA, genesystest.ANI(semDialled), genesystest.DNIS(semCustomer))
		semOK(t, c)
		semExpect(t, h, c.ID()) // dialing, contacting
		c.RemoteAnswer().Hold(agentA).Resume(agentA).AgentHangup(agentA)
		semOK(t, c)
		evs := semExpect(t, h, c.ID(), "ACTIVE A", "HELD A*", "ACTIVE A", "ENDED")
		for i, e := range evs {
			if e.Direction != "outbound" || e.ANI != semCustomer || e.DNIS != semDialled {
				t.Errorf("event %d: direction %q, ANI %q, DNIS %q", i, e.Direction, e.ANI, e.DNIS)
			}
		}
		if keys := evs[0].Keys(); !slices.Contains(keys, matcher.Key{Kind: matcher.KeyConversationID, Value: strings.ToLower(c.ID())}) {
			t.Errorf("keys %v lack the conversation id (x-inin-cnv)", keys)
		}
		ext := semSnapshot(t, h, c.ID()).purpose("external")
		if len(ext) != 1 || !evs[0].Time.Equal(semTime(t, ext[0].Calls[0].ConnectedTime)) {
			t.Errorf("ACTIVE at %v, want the far end's connectedTime (%+v)", evs[0].Time, ext)
		}
	})

	t.Run("no answer", func(t *testing.T) {
		h := semHarness(t, harnessOpts{})
		c := h.Fake.OutboundCall(agentA).RemoteNoAnswer()
		semOK(t, c)
		semExpect(t, h, c.ID())
	})

	t.Run("agent abandons while dialing", func(t *testing.T) {
		h := semHarness(t, harnessOpts{})
		c := h.Fake.OutboundCall(agentA).AgentHangup(agentA)
		semOK(t, c)
		semExpect(t, h, c.ID())
	})

	t.Run("inbound for contrast", func(t *testing.T) {
		h := semHarness(t, harnessOpts{})
		c := h.Fake.InboundCall(genesystest.ANI(semCustomer), genesystest.DNIS(semDialled)).Answer(agentA).AgentHangup(agentA)
		semOK(t, c)
		evs := semExpect(t, h, c.ID(), "ACTIVE A", "ENDED")
		for i, e := range evs {
			if e.Direction != "inbound" || e.ANI != semCustomer || e.DNIS != semDialled {
				t.Errorf("event %d: direction %q, ANI %q, DNIS %q", i, e.Direction, e.ANI, e.DNIS)
			}
		}
	})
}

// TestEdge22MonitorCoachBarge: a monitoring supervisor (purpose "user", monitoredParticipantId) is never an
// agent of record, tracked or not, and does not keep a held call active. The fake can express monitoring
// only (no coach or barge participants).
func TestEdge22MonitorCoachBarge(t *testing.T) {
	t.Run("tracked supervisor monitors a tracked agent", func(t *testing.T) {
		h := semHarness(t, harnessOpts{})
		c := h.Fake.InboundCall().Answer(agentA).Monitor(agentB)
		semOK(t, c)
		mon := semSnapshot(t, h, c.ID()).agent(agentB)
		if len(mon) != 1 || mon[0].Purpose != "user" || mon[0].Calls[0].State != "connected" {
			t.Fatalf("monitor %+v", mon)
		}
		c.Hold(agentA).Resume(agentA).AgentHangup(agentA) // the customer is left with the monitor only: the call ends
		semOK(t, c)
		semExpect(t, h, c.ID(), "ACTIVE A", "HELD A*", "ACTIVE A", "ENDED")
	})

	t.Run("monitor leaves", func(t *testing.T) {
		h := semHarness(t, harnessOpts{})
		c := h.Fake.InboundCall().Answer(agentA).Monitor(agentB).AgentHangup(agentB)
		semOK(t, c)
		semExpect(t, h, c.ID(), "ACTIVE A")
		c.CustomerHangup()
		semOK(t, c)
		semExpect(t, h, c.ID(), "ACTIVE A", "ENDED")
	})

	t.Run("untracked supervisor", func(t *testing.T) {
		h := semHarness(t, harnessOpts{})
		c := h.Fake.InboundCall().Answer(agentA).Monitor(agentE).Hold(agentA).CustomerHangup()
		semOK(t, c)
		semExpect(t, h, c.ID(), "ACTIVE A", "HELD A*", "ENDED")
	})

	t.Run("tracked supervisor monitors an untracked agent", func(t *testing.T) {
		h := semHarness(t, harnessOpts{})
		c := h.Fake.InboundCall().Answer(agentE).Monitor(agentA).Hold(agentE).Resume(agentE).CustomerHangup()
		semOK(t, c)
		semExpect(t, h, c.ID())
	})
}

// TestEdge23CallbackDialer: conversations where the agent is on the call before the customer leg exists.
// The fake has no callback or campaign participants; the closest it can express are an agent's internal call
// that then dials the customer out (a callback: the agent, purpose "agent", is connected first and the
// customer leg appears later, purpose "external") and an outbound call whose first snapshot has the agent
// dialing alone (a preview dialer).
func TestEdge23CallbackDialer(t *testing.T) {
	t.Run("callback: agent connected before the customer leg", func(t *testing.T) {
		h := semHarness(t, harnessOpts{})
		const callbackNo = "+18125550111"
		c := h.Fake.InternalCall(agentE, agentA).Answer(agentA)
		semOK(t, c)
		semExpect(t, h, c.ID())
		if st, ok := semLookup(t, h, c.ID()); ok {
			t.Errorf("Lookup before the customer leg = %s", st)
		}
		c.TransferExternal(agentE, callbackNo) // the customer leg is dialled: contacting, then connected
		semOK(t, c)
		evs := semExpect(t, h, c.ID(), "ACTIVE A")
		if e := evs[0]; e.Direction != "outbound" || e.ANI != callbackNo {
			t.Errorf("direction %q, ANI %q", e.Direction, e.ANI)
		}
		if st, ok := semLookup(t, h, c.ID()); !ok || st != cti.StateActive {
			t.Errorf("Lookup = %s, %v", st, ok)
		}
		c.AgentHangup(agentA)
		semOK(t, c)
		semExpect(t, h, c.ID(), "ACTIVE A", "ENDED")
	})

	t.Run("preview dialer: agent leg first", func(t *testing.T) {
		h := semHarness(t, harnessOpts{})
		c := h.Fake.OutboundCall(agentA)
		semOK(t, c)
		first := semDecode(t, h.Fake.History(c.ID())[0])
		if len(first.Participants) != 1 || first.Participants[0].Calls[0].State != "dialing" {
			t.Fatalf("first snapshot %+v", first)
		}
		semExpect(t, h, c.ID())
		c.RemoteAnswer().AgentHangup(agentA)
		semOK(t, c)
		semExpect(t, h, c.ID(), "ACTIVE A", "ENDED")
	})

	t.Run("dialer: customer never answers", func(t *testing.T) {
		h := semHarness(t, harnessOpts{})
		c := h.Fake.OutboundCall(agentA).RemoteNoAnswer()
		semOK(t, c)
		semExpect(t, h, c.ID())
	})
}

// TestEdge24UUIVariants: UCIDs from uuiData (hex with or without discriminator, ASCII) and from a configured
// participant attribute, present from the start or set later; malformed values are kept raw but give no UCID.
func TestEdge24UUIVariants(t *testing.T) {
	cfg := harnessOpts{Config: func(c *genesys.Config) { c.UUIAttribute = []string{"ASAIUUI"} }}
	static := []struct {
		name      string
		opts      []genesystest.CallOption
		uui, ucid []string
	}{
		{"absent", nil, nil, nil},
		{"hex with discriminator", []genesystest.CallOption{genesystest.UUI(semUCID1Hex)}, []string{semUCID1Hex}, []string{semUCID1}},
		{"hex", []genesystest.CallOption{genesystest.UUI(semUCID1Bare)}, []string{semUCID1Bare}, []string{semUCID1}},
		{"ASCII 20 digits", []genesystest.CallOption{genesystest.UUI(semUCID1)}, []string{semUCID1}, []string{semUCID1}},
		{"attribute on the customer only", []genesystest.CallOption{genesystest.Attribute("ASAIUUI", semUCID1)}, []string{semUCID1}, []string{semUCID1}},
		{"attribute key in another case", []genesystest.CallOption{genesystest.Attribute("asaiUUI", semUCID2Hex)}, []string{semUCID2Hex}, []string{semUCID2}},
		{"attribute not configured", []genesystest.CallOption{genesystest.Attribute("OtherKey", semUCID1)}, nil, nil},
		{"hex and attribute agree", []genesystest.CallOption{genesystest.UUI(semUCID1Hex), genesystest.Attribute("ASAIUUI", semUCID1)},
			[]string{semUCID1Hex, semUCID1}, []string{semUCID1}},
		{"malformed", []genesystest.CallOption{genesystest.UUI("FA08XYZ;encoding=hex")}, []string{"FA08XYZ;encoding=hex"}, nil},
	}
	for _, tc := range static {
		t.Run(tc.name, func(t *testing.T) {
			h := semHarness(t, cfg)
			c := h.Fake.InboundCall(tc.opts...).Answer(agentA).CustomerHangup()
			semOK(t, c)
			evs := semExpect(t, h, c.ID(), "ACTIVE A", "ENDED")
			for i, e := range evs {
				if !slices.Equal(e.UUI, tc.uui) || !slices.Equal(e.UCIDs, tc.ucid) {
					t.Errorf("event %d: UUI %q UCIDs %q, want %q %q", i, e.UUI, e.UCIDs, tc.uui, tc.ucid)
				}
				keys := e.Keys()
				if len(keys) != 1+len(tc.ucid) || (len(tc.ucid) > 0 && !slices.Contains(keys, matcher.Key{Kind: matcher.KeyUCID, Value: tc.ucid[0]})) {
					t.Errorf("event %d keys %v", i, keys)
				}
			}
		})
	}

	late := []struct {
		name string
		set  func(c *genesystest.Call) *genesystest.Call
	}{
		{"uuiData set later", func(c *genesystest.Call) *genesystest.Call { return c.SetUUI(semUCID1Hex) }},
		{"attribute set later", func(c *genesystest.Call) *genesystest.Call { return c.SetAttribute("ASAIUUI", semUCID1) }},
	}
	for _, tc := range late {
		t.Run(tc.name, func(t *testing.T) {
			h := semHarness(t, cfg)
			c := h.Fake.InboundCall().Answer(agentA)
			semOK(t, c)
			semExpect(t, h, c.ID(), "ACTIVE A")
			tc.set(c)
			tc.set(c) // the same value again: no change
			c.CustomerHangup()
			semOK(t, c)
			evs := semExpect(t, h, c.ID(), "ACTIVE A", "ACTIVE A", "ENDED")
			for i, want := range [][]string{nil, {semUCID1}, {semUCID1}} {
				if !slices.Equal(evs[i].UCIDs, want) {
					t.Errorf("event %d UCIDs %q, want %q", i, evs[i].UCIDs, want)
				}
			}
		})
	}

	t.Run("a second UCID later", func(t *testing.T) {
		h := semHarness(t, cfg)
		c := h.Fake.InboundCall(genesystest.UUI(semUCID1Hex)).Answer(agentA).SetUUI(semUCID2Hex).SetUUI("").CustomerHangup()
		semOK(t, c)
		evs := semExpect(t, h, c.ID(), "ACTIVE A", "ACTIVE A", "ENDED")
		for i, want := range [][]string{{semUCID1}, {semUCID1, semUCID2}, {semUCID1, semUCID2}} {
			if !slices.Equal(evs[i].UCIDs, want) {
				t.Errorf("event %d UCIDs %q, want %q", i, evs[i].UCIDs, want)
			}
		}
	})
}

// TestEdge28ClockSkew: the payload clock (Genesys) is not ours. A proxy between the tracker and the fake
// shifts every timestamp of the conversation payloads (events and REST snapshots) by a fixed or a random
// amount; the derived sequence must not change, Event.Time must be the payload's (skewed) time and
// Event.Received ours.
func TestEdge28ClockSkew(t *testing.T) {
	want := []string{"ACTIVE A", "HELD A*", "ACTIVE A", "HELD", "ACTIVE B", "HELD B", "ACTIVE C", "ENDED"}
	scenario := func(t *testing.T, h *harness) *genesystest.Call {
		c := h.Fake.InboundCall(genesystest.UUI(semUCID1Hex)).Answer(agentA)
		semOK(t, c)
		c.Hold(agentA).Resume(agentA).BlindTransfer(agentA, agentB).ConsultStart(agentB, agentC).ConsultComplete().CustomerHangup()
		semOK(t, c)
		return c
	}
	for _, tc := range []struct {
		name  string
		fixed time.Duration
		skew  func() time.Duration
	}{
		{name: "none", skew: func() time.Duration { return 0 }},
		{name: "Genesys ahead by 2h", fixed: 2 * time.Hour, skew: func() time.Duration { return 2 * time.Hour }},
		{name: "Genesys behind by 2h", fixed: -2 * time.Hour, skew: func() time.Duration { return -2 * time.Hour }},
		{name: "every timestamp off by up to an hour", skew: func() time.Duration {
			return time.Duration(rand.Int64N(int64(2*time.Hour))) - time.Hour
		}},
	} {
		base := runtime.NumGoroutine()
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, harnessOpts{NoRun: true})
			p := newSemSkewProxy(t, h, tc.skew)
			h.cfg.APIBase, h.cfg.LoginBase = p.URL(), p.URL()
			semStart(t, h)
			if tc.fixed == 0 && tc.name != "none" {
				h.Fake.Duplicate(1) // the copies carry different timestamps and are still duplicates
			}
			begin := time.Now()
			c := scenario(t, h)
			snap := semSnapshot(t, h, c.ID()) // straight from the fake: unskewed
			evs := semExpect(t, h, c.ID(), want...)
			end := time.Now()
			for i, e := range evs {
				if e.Received.Before(begin) || e.Received.After(end) {
					t.Errorf("event %d received %v, outside the local time of the test [%v, %v]", i, e.Received, begin, end)
				}
			}
			if tc.fixed == 0 && tc.name != "none" {
				return
			}
			a := snap.agent(agentA)[0].Calls[0]
			cust := snap.purpose("customer")[0].Calls[0]
			if got, want := evs[0].Time, semTime(t, a.ConnectedTime).Add(tc.fixed); !got.Equal(want) {
				t.Errorf("ACTIVE time %v, want A's connectedTime on the Genesys clock %v", got, want)
			}
			if got, want := evs[len(evs)-1].Time, semTime(t, cust.DisconnectedTime).Add(tc.fixed); !got.Equal(want) {
				t.Errorf("ENDED time %v, want the customer's disconnectedTime on the Genesys clock %v", got, want)
			}
			if d := evs[0].Received.Sub(evs[0].Time) + tc.fixed; d < 0 || d > 5*time.Second {
				t.Errorf("received − time = %v, want the skew %v plus a small delivery lag", evs[0].Received.Sub(evs[0].Time), -tc.fixed)
			}
		})
		goroutinesBackTo(t, base) // the tracker, the fake and the proxy's relays are gone
	}

	// Retention is by our clock: a conversation whose payload end is two days old (or ahead) is still
	// remembered as ENDED for Retain after we saw it end, so a late snapshot cannot revive it. This part
	// drives the exported Deriver with the fake's published snapshots, because the tracker's clock cannot
	// be moved from outside.
	for _, skew := range []time.Duration{-48 * time.Hour, 48 * time.Hour} {
		t.Run("retention by the local clock, payload "+skew.String(), func(t *testing.T) {
			fake := genesystest.NewServer(genesystest.Options{})
			t.Cleanup(fake.Close)
			c := fake.InboundCall().Answer(agentA).Hold(agentA).CustomerHangup()
			semOK(t, c)
			clock := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
			d := &genesys.Deriver{Tenant: "test", Tracked: func(id string) bool { return id == agentA },
				Now: func() time.Time { return clock }, Retain: time.Minute}
			var convs []*genesys.Conversation
			for _, b := range fake.History(c.ID()) {
				conv, err := genesys.ParseConversation(semShiftJSON(b, func() time.Duration { return skew }))
				if err != nil {
					t.Fatal(err)
				}
				convs = append(convs, conv)
			}
			var got []string
			for _, conv := range convs {
				if ev := d.Apply(conv, clock, false); ev != nil {
					got = append(got, semSummary(*ev))
					if !ev.Received.Equal(clock) {
						t.Errorf("received %v, want our clock %v", ev.Received, clock)
					}
				}
			}
			if !slices.Equal(got, []string{"ACTIVE A", "HELD A*", "ENDED"}) {
				t.Fatalf("events %q", got)
			}
			clock = clock.Add(30 * time.Second)
			d.Sweep()
			if ev := d.Apply(convs[2], clock, false); ev != nil { // the "connected" snapshot, late
				t.Errorf("a late snapshot revived the conversation: %+v", ev)
			}
			if st, ok := d.State(c.ID()); !ok || st != cti.StateEnded {
				t.Errorf("within Retain by our clock: state %s, %v; want ENDED", st, ok)
			}
			clock = clock.Add(2 * time.Minute)
			d.Sweep()
			if st, ok := d.State(c.ID()); ok {
				t.Errorf("after Retain by our clock: state %s, want forgotten", st)
			}
		})
	}
}

// semTimestamp matches the payload timestamps (UTC, with or without fractional seconds).
var semTimestamp = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$`)

// semShiftJSON moves every timestamp string of a JSON document by skew() (drawn per timestamp). Numbers are
// kept as written; the result is the document re-encoded.
func semShiftJSON(b []byte, skew func() time.Duration) []byte {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return b
	}
	var walk func(any) any
	walk = func(v any) any {
		switch x := v.(type) {
		case map[string]any:
			for k, e := range x {
				x[k] = walk(e)
			}
		case []any:
			for i, e := range x {
				x[i] = walk(e)
			}
		case string:
			if semTimestamp.MatchString(x) {
				if tm, err := time.Parse(time.RFC3339Nano, x); err == nil {
					return tm.Add(skew()).UTC().Format("2006-01-02T15:04:05.000Z")
				}
			}
		}
		return v
	}
	out, err := json.Marshal(walk(v))
	if err != nil {
		return b
	}
	return out
}

// semSkewProxy sits between the tracker and the fake: REST through a reverse proxy (conversation snapshots
// skewed, channel connectUris pointed at the proxy), notification sockets relayed with their messages skewed.
type semSkewProxy struct {
	srv      *httptest.Server
	target   *url.URL
	fakeWS   string // the fake's ws:// base, as it appears in connectUri
	skew     func() time.Duration
	tr       *http.Transport
	upgrader websocket.Upgrader

	mu    sync.Mutex
	conns map[*websocket.Conn]struct{}
	wg    sync.WaitGroup
}

// newSemSkewProxy starts a proxy in front of the harness's fake. Its cleanup, which runs before the harness's
// (registered later), stops the harness first so the tracker does not see the proxy go away.
func newSemSkewProxy(t *testing.T, h *harness, skew func() time.Duration) *semSkewProxy {
	fake := h.Fake
	target, err := url.Parse(fake.APIBase())
	if err != nil {
		t.Fatal(err)
	}
	p := &semSkewProxy{target: target, fakeWS: "ws" + strings.TrimPrefix(fake.APIBase(), "http"), skew: skew,
		tr: &http.Transport{}, conns: map[*websocket.Conn]struct{}{},
		upgrader: websocket.Upgrader{CheckOrigin: func(*http.Request) bool { return true }}}
	rp := httputil.NewSingleHostReverseProxy(target)
	rp.Transport = p.tr
	rp.ModifyResponse = p.modify
	p.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if websocket.IsWebSocketUpgrade(r) {
			p.relay(w, r)
			return
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(func() {
		h.Stop()
		p.Close()
	})
	return p
}

func (p *semSkewProxy) URL() string { return p.srv.URL }

func (p *semSkewProxy) modify(res *http.Response) error {
	if res.StatusCode != http.StatusOK {
		return nil
	}
	path := res.Request.URL.Path
	var rewrite func([]byte) []byte
	switch {
	case res.Request.Method == http.MethodPost && path == "/api/v2/notifications/channels":
		proxyWS := "ws" + strings.TrimPrefix(p.srv.URL, "http")
		rewrite = func(b []byte) []byte { return bytes.ReplaceAll(b, []byte(p.fakeWS), []byte(proxyWS)) }
	case res.Request.Method == http.MethodGet && strings.HasPrefix(path, "/api/v2/conversations/"):
		rewrite = func(b []byte) []byte { return semShiftJSON(b, p.skew) }
	default:
		return nil
	}
	b, err := io.ReadAll(res.Body)
	res.Body.Close()
	if err != nil {
		return err
	}
	b = rewrite(b)
	res.Body = io.NopCloser(bytes.NewReader(b))
	res.ContentLength = int64(len(b))
	res.Header.Set("Content-Length", strconv.Itoa(len(b)))
	return nil
}

func (p *semSkewProxy) relay(w http.ResponseWriter, r *http.Request) {
	back, res, err := websocket.DefaultDialer.Dial(p.fakeWS+r.URL.RequestURI(), nil)
	if err != nil {
		status := http.StatusBadGateway
		if res != nil {
			status = res.StatusCode
		}
		http.Error(w, "upstream refused the socket", status)
		return
	}
	front, err := p.upgrader.Upgrade(w, r, nil)
	if err != nil {
		back.Close()
		return
	}
	p.mu.Lock()
	p.conns[front], p.conns[back] = struct{}{}, struct{}{}
	p.mu.Unlock()
	p.wg.Add(2)
	go p.pump(back, front, func(b []byte) []byte { return semShiftJSON(b, p.skew) })
	go p.pump(front, back, func(b []byte) []byte { return b })
}

// pump copies messages from src to dst; when src ends it passes a close frame on and closes both.
func (p *semSkewProxy) pump(src, dst *websocket.Conn, rewrite func([]byte) []byte) {
	defer p.wg.Done()
	defer func() {
		src.Close()
		dst.Close()
		p.mu.Lock()
		delete(p.conns, src)
		delete(p.conns, dst)
		p.mu.Unlock()
	}()
	for {
		typ, b, err := src.ReadMessage()
		if err != nil {
			if ce, ok := err.(*websocket.CloseError); ok && ce.Code != websocket.CloseAbnormalClosure {
				_ = dst.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(ce.Code, ce.Text), time.Now().Add(time.Second))
			}
			return
		}
		if typ == websocket.TextMessage {
			b = rewrite(b)
		}
		if err := dst.WriteMessage(typ, b); err != nil {
			return
		}
	}
}

// Close stops the proxy and its relays.
func (p *semSkewProxy) Close() {
	p.srv.Close()
	p.mu.Lock()
	for c := range p.conns {
		c.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
	p.tr.CloseIdleConnections()
}
