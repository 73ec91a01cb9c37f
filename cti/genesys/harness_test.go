package genesys_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/siphook/siphook/cti"
	"github.com/siphook/siphook/cti/genesys"
	"github.com/siphook/siphook/cti/genesys/genesystest"
	"github.com/siphook/siphook/internal/leaktest"
)

// The agents every harness knows; the tracker tracks A–D by email, E and F are untracked.
var agents = []genesystest.User{
	{ID: "5f6fe78e-dfbb-400f-a70b-d9b5c8340fdc", Name: "Agent A", Email: "a@example.com"},
	{ID: "a1b2c3d4-0000-4000-8000-00000000000b", Name: "Agent B", Email: "b@example.com"},
	{ID: "a1b2c3d4-0000-4000-8000-00000000000c", Name: "Agent C", Email: "c@example.com"},
	{ID: "a1b2c3d4-0000-4000-8000-00000000000d", Name: "Agent D", Email: "d@example.com"},
	{ID: "a1b2c3d4-0000-4000-8000-00000000000e", Name: "Untracked E", Email: "e@example.com"},
	{ID: "a1b2c3d4-0000-4000-8000-00000000000f", Name: "Untracked F", Email: "f@example.com"},
}

var (
	agentA, agentB, agentC, agentD = agents[0].ID, agents[1].ID, agents[2].ID, agents[3].ID
	agentE, agentF                 = agents[4].ID, agents[5].ID
)

const (
	clientID     = "siphook-test"
	clientSecret = "c2VjcmV0LXRoYXQtaXMtbm90LWxvZ2dlZA=="
)

// harness is a fake Genesys Cloud and a tracker following it, with every event it emits recorded.
type harness struct {
	t    *testing.T
	Fake *genesystest.Server
	Src  *genesys.Source
	Reg  *prometheus.Registry
	cfg  genesys.Config

	mu     sync.Mutex
	events []cti.Event

	cancel context.CancelFunc
	done   chan error
	once   sync.Once
}

// harnessOpts adjust a harness before it starts.
type harnessOpts struct {
	Fake   genesystest.Options
	Config func(*genesys.Config)
	NoRun  bool // create everything but do not start the tracker (h.Start)
}

func newHarness(t *testing.T, o harnessOpts) *harness {
	t.Helper()
	fake := genesystest.NewServer(o.Fake)
	fake.AddClient(clientID, clientSecret)
	for _, u := range agents {
		fake.AddUser(u)
	}
	cfg := genesys.DefaultConfig()
	cfg.Name = "test"
	cfg.APIBase, cfg.LoginBase = fake.APIBase(), fake.LoginBase()
	cfg.ClientID, cfg.ClientSecret = clientID, clientSecret
	cfg.Users = []string{"a@example.com", "b@example.com", "c@example.com", agentD}
	cfg.HeartbeatTimeout, cfg.PongTimeout = 500*time.Millisecond, 500*time.Millisecond
	cfg.ReconcileEvery = time.Hour
	if o.Config != nil {
		o.Config(&cfg)
	}
	h := &harness{t: t, Fake: fake, cfg: cfg, Reg: prometheus.NewRegistry()}
	t.Cleanup(h.Stop)
	if !o.NoRun {
		h.Start()
	}
	return h
}

// scaledSleep shortens retry waits a hundredfold: tests check what is retried, not how long it waits.
func scaledSleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d / 100)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Start runs a new tracker (a restart when one ran before) and waits until its sockets are live.
func (h *harness) Start() {
	h.t.Helper()
	src, err := genesys.New(h.cfg, genesys.WithHTTPClient(h.Fake.Client()), genesys.WithSleep(scaledSleep),
		genesys.WithRegisterer(h.Reg))
	if err != nil {
		h.t.Fatal(err)
	}
	h.Src = src
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel, h.done, h.once = cancel, make(chan error, 1), sync.Once{}
	go func() { h.done <- src.Run(ctx, h.record) }()
	h.WaitFor("the tracker's socket", func() bool { return h.liveSockets() > 0 })
}

// Stop stops the tracker and waits for Run to return.
func (h *harness) Stop() {
	h.once.Do(func() {
		if h.cancel != nil {
			h.cancel()
			<-h.done
		}
		h.Fake.Close()
	})
}

// StopTracker stops only the tracker (the fake goes on), for restart tests.
func (h *harness) StopTracker() {
	h.cancel()
	<-h.done
	h.Reg = prometheus.NewRegistry()
}

func (h *harness) record(e cti.Event) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.events = append(h.events, e)
}

func (h *harness) liveSockets() int {
	n := 0
	for _, c := range h.Fake.Stats().LiveSockets {
		n += c
	}
	return n
}

// Events returns the events recorded for a conversation.
func (h *harness) Events(conversationID string) []cti.Event {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []cti.Event
	for _, e := range h.events {
		if e.ConversationID == strings.ToLower(conversationID) {
			out = append(out, e)
		}
	}
	return out
}

// States returns the state sequence recorded for a conversation.
func (h *harness) States(conversationID string) []cti.State {
	var out []cti.State
	for _, e := range h.Events(conversationID) {
		out = append(out, e.State)
	}
	return out
}

// Last returns the last event for a conversation, or a zero event.
func (h *harness) Last(conversationID string) cti.Event {
	ev := h.Events(conversationID)
	if len(ev) == 0 {
		return cti.Event{}
	}
	return ev[len(ev)-1]
}

// WaitStates waits until the conversation's state sequence is exactly want.
func (h *harness) WaitStates(conversationID string, want ...cti.State) {
	h.t.Helper()
	h.WaitFor(fmt.Sprintf("states %v of %s", want, conversationID), func() bool {
		return slices.Equal(h.States(conversationID), want)
	})
}

// WaitLast waits until the last event of the conversation has the state.
func (h *harness) WaitLast(conversationID string, want cti.State) {
	h.t.Helper()
	h.WaitFor(fmt.Sprintf("last state %s of %s", want, conversationID), func() bool {
		return h.Last(conversationID).State == want
	})
}

// WaitFor polls cond until it holds (a condition, never a timing assertion).
func (h *harness) WaitFor(what string, cond func() bool) {
	h.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			h.mu.Lock()
			evs := slices.Clone(h.events)
			h.mu.Unlock()
			h.t.Fatalf("timed out waiting for %s; events so far: %+v; fake stats: %+v", what, evs, h.Fake.Stats())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Counter reads a counter of the tracker's metrics, summed over label values that match labels.
func (h *harness) Counter(name string, labels map[string]string) float64 {
	mfs, err := h.Reg.Gather()
	if err != nil {
		h.t.Fatal(err)
	}
	sum := 0.0
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	metric:
		for _, m := range mf.GetMetric() {
			for k, v := range labels {
				found := false
				for _, lp := range m.GetLabel() {
					if lp.GetName() == k && lp.GetValue() == v {
						found = true
					}
				}
				if !found {
					continue metric
				}
			}
			if c := m.GetCounter(); c != nil {
				sum += c.GetValue()
			}
		}
	}
	return sum
}

// TestHarnessSeesACall is the smoke test of the harness itself: a plain inbound call through to the end.
func TestHarnessSeesACall(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	c := h.Fake.InboundCall(genesystest.ANI("+18125841533"), genesystest.UUI("00FA080019001038F725B3;encoding=hex"))
	c.Answer(agentA).Hold(agentA).Resume(agentA).CustomerHangup()
	h.WaitStates(c.ID(), cti.StateActive, cti.StateHeld, cti.StateActive, cti.StateEnded)
	ev := h.Events(c.ID())[0]
	if len(ev.Agents) != 1 || ev.Agents[0].Email != "a@example.com" || !slices.Contains(ev.UCIDs, "00025000160955721139") {
		t.Errorf("first event = %+v", ev)
	}
	if err := c.Err(); err != nil {
		t.Fatal(err)
	}
}

// goroutinesBackTo is leaktest.Wait under the name the tracker tests use.
func goroutinesBackTo(t *testing.T, baseline int) { t.Helper(); leaktest.Wait(t, baseline) }
