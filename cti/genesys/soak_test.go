package genesys_test

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/siphook/siphook/cti"
	"github.com/siphook/siphook/cti/genesys"
	"github.com/siphook/siphook/cti/genesys/genesystest"
)

// soakRun is one scripted conversation of the soak test.
type soakRun struct {
	kind string
	call *genesystest.Call
}

// TestSoak is the acceptance test of the tracker: 500 conversations scripted concurrently on 200 tracked
// agents (plain calls, holds, blind transfers to tracked and untracked agents, consults completed, cancelled
// and conferenced, queues, outbound calls, internal calls, hang-ups on either side) while the fake drops the
// socket (1006), announces socket_closing, expires every token and answers 429 (Retry-After: 1) on REST
// paths. Afterwards the tracker's last state of every conversation must equal the fake's truth (no event at
// all where the truth is "never active"), and the tracker must leave no goroutine behind.
func TestSoak(t *testing.T) {
	if testing.Short() {
		t.Skip("soak test: skipped with -short")
	}
	baseline := runtime.NumGoroutine()
	const (
		nAgents = 200
		nConvs  = 500
		spread  = 7 * time.Second // conversations start evenly over this
	)
	ids := make([]string, nAgents)
	for i := range ids {
		ids[i] = fmt.Sprintf("50a50a50-0000-4000-8000-%012d", i)
	}
	h := newHarness(t, harnessOpts{NoRun: true, Fake: genesystest.Options{Seed: 500}, Config: func(c *genesys.Config) {
		c.Users = ids
		c.ReconcileEvery = 500 * time.Millisecond
	}})
	for i, id := range ids {
		h.Fake.AddUser(genesystest.User{ID: id, Name: fmt.Sprintf("Soak %03d", i), Email: fmt.Sprintf("soak%03d@example.com", i)})
	}
	// Agents A–F of the harness are not tracked here: transfers and consults to them leave the tracked set.
	untracked := []string{agentA, agentE, agentF}
	h.Start()
	begin := time.Now()

	// seen holds the conversations the tracker has reported, fed incrementally from the harness's record.
	// It also measures how long the fake had no socket of ours attached (events published then are lost).
	var seen sync.Map
	var offline, longestGap time.Duration
	stopSeen, seenDone := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(seenDone)
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		var down time.Time
		for n := 0; ; {
			h.mu.Lock()
			for ; n < len(h.events); n++ {
				seen.LoadOrStore(h.events[n].ConversationID, time.Now())
			}
			h.mu.Unlock()
			switch up := h.liveSockets() > 0; {
			case !up && down.IsZero():
				down = time.Now()
			case up && !down.IsZero():
				gap := time.Since(down)
				offline, longestGap, down = offline+gap, max(longestGap, gap), time.Time{}
			}
			select {
			case <-stopSeen:
				return
			case <-tick.C:
			}
		}
	}()
	// A script ends a call a tracked agent answered only once the tracker has reported it (or 15 s passed).
	// A call that connects during a reconnection gap and ends before the reconciliation after the gap has
	// fetched it is never reported: reconciliation lists open conversations only, and the deriver emits
	// nothing for a conversation it first sees ended. Under -race with ~250 open conversations a
	// reconciliation pass takes about a second, so short calls would make this test flaky without saying
	// anything about the final states it checks. waited records how long the scripts were held back: how
	// late the tracker was to report a call.
	var waitMu sync.Mutex
	var waited []time.Duration
	waitSeen := func(c *genesystest.Call) {
		start := time.Now()
		for deadline := start.Add(15 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
			if _, ok := seen.Load(strings.ToLower(c.ID())); ok {
				break
			}
		}
		waitMu.Lock()
		waited = append(waited, time.Since(start))
		waitMu.Unlock()
	}

	runs := make([]soakRun, nConvs)
	var wg sync.WaitGroup
	for i := range runs {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(500, uint64(i)))
			time.Sleep(spread * time.Duration(i) / nConvs)
			runs[i] = soakScript(h.Fake, r, i, ids, untracked, waitSeen)
		})
	}
	faultsDone := make(chan struct{})
	var faultLog []string
	go func() {
		defer close(faultsDone)
		faultLog = soakFaults(h, begin)
	}()
	wg.Wait()
	<-faultsDone
	close(stopSeen)
	<-seenDone
	for _, run := range runs {
		if err := run.call.Err(); err != nil {
			t.Errorf("%s conversation %s: the fake refused a step: %v", run.kind, run.call.ID(), err)
		}
	}
	h.Fake.ClearFaults()
	scripted := time.Since(begin)

	// Converge: the live feed, then reconciliation (every 500 ms) for whatever the faults made us miss.
	deadline := time.Now().Add(40 * time.Second)
	for {
		bad := soakMismatches(h, runs, ids)
		if len(bad) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d conversations differ from the fake's truth after %v, e.g.:\n%s\nfaults: %s\nfake stats: %+v",
				len(bad), nConvs, time.Since(begin), strings.Join(bad[:min(len(bad), 15)], "\n"), strings.Join(faultLog, ", "), h.Fake.Stats())
		}
		time.Sleep(100 * time.Millisecond)
	}
	converged := time.Since(begin)

	// Per conversation, ENDED is final: nothing follows it.
	h.mu.Lock()
	events := slices.Clone(h.events)
	h.mu.Unlock()
	byConv := map[string][]cti.State{}
	reconciled, kinds := 0, map[string]int{}
	for _, e := range events {
		byConv[e.ConversationID] = append(byConv[e.ConversationID], e.State)
		if e.Reconciled {
			reconciled++
		}
	}
	for _, run := range runs {
		kinds[run.kind]++
		states := byConv[strings.ToLower(run.call.ID())]
		if i := slices.Index(states, cti.StateEnded); i >= 0 && i != len(states)-1 {
			t.Errorf("%s conversation %s: events after ENDED: %v", run.kind, run.call.ID(), states)
		}
	}

	// The faults did happen.
	st := h.Fake.Stats()
	ends := map[string]float64{}
	for _, reason := range []string{"dropped", "socket_closing", "server_closed", "stale", "token_revoked", "rollover"} {
		if n := h.Counter("siphook_cti_genesys_socket_ends_total", map[string]string{"reason": reason}); n > 0 {
			ends[reason] = n
		}
	}
	// Faults injected close together can merge (a token expiring while the tracker reconnects after a
	// socket_closing costs no extra socket), so this asks only that each kind left its mark.
	if ends["dropped"] < 1 || ends["socket_closing"] < 1 || st.Connects < 5 || st.Served429 < 5 || st.TokensIssued < 3 {
		t.Errorf("faults not all exercised: socket ends %v, %d connects, %d 429s served, %d tokens issued", ends, st.Connects, st.Served429, st.TokensIssued)
	}
	if len(waited) == 0 {
		t.Fatal("no scripted call waited for the tracker")
	}
	slices.Sort(waited)
	late := len(waited) - sort.Search(len(waited), func(i int) bool { return waited[i] >= 500*time.Millisecond })
	t.Logf("%d conversations %v on %d agents: scripted in %v, converged at %v; %d events (%d from reconciliation); "+
		"socket ends %v; fake: %d connects, %d channels, %d tokens, %d 429s, %d events delivered, %d slow-consumer cuts; "+
		"no socket attached for %v in all, %v at most; ending steps held back for the tracker: %d of %d by ≥ 500 ms, longest %v",
		nConvs, kinds, nAgents, scripted.Round(time.Millisecond), converged.Round(time.Millisecond), len(events), reconciled,
		ends, st.Connects, st.ChannelsCreated, st.TokensIssued, st.Served429, st.EventsDelivered, st.SlowConsumers,
		offline.Round(time.Millisecond), longestGap.Round(time.Millisecond), late, len(waited), waited[len(waited)-1].Round(time.Millisecond))

	h.Stop()
	goroutinesBackTo(t, baseline)
}

// soakMismatches lists the conversations whose last event state is not the fake's truth.
func soakMismatches(h *harness, runs []soakRun, tracked []string) []string {
	h.mu.Lock()
	last := make(map[string]cti.Event, len(runs))
	all := map[string][]string{}
	for _, e := range h.events {
		last[e.ConversationID] = e
		all[e.ConversationID] = append(all[e.ConversationID], string(e.State))
	}
	h.mu.Unlock()
	var bad []string
	for _, run := range runs {
		id := run.call.ID()
		want := h.Fake.Truth(id, tracked)
		got := string(last[strings.ToLower(id)].State) // "" when the tracker never emitted
		if got != want {
			bad = append(bad, fmt.Sprintf("  %s %s: tracker %q (events %v), truth %q; %s", run.kind, id, got, all[strings.ToLower(id)], want,
				soakTimeline(h, id, tracked)))
		}
	}
	return bad
}

// soakTimeline says when the tracked agents of a conversation connected and left (fake's clock = ours).
func soakTimeline(h *harness, id string, tracked []string) string {
	var c semConv
	if err := json.Unmarshal(h.Fake.Snapshot(id), &c); err != nil {
		return err.Error()
	}
	var out []string
	for _, p := range c.Participants {
		if slices.Contains(tracked, p.UserID) && p.Calls[0].ConnectedTime != "" {
			out = append(out, fmt.Sprintf("tracked %s connected %s, ended %s", p.UserID[len(p.UserID)-4:], p.Calls[0].ConnectedTime[11:], p.Calls[0].DisconnectedTime))
		}
	}
	return strings.Join(out, "; ")
}

// soakFaults injects the faults while the conversations run, each once the tracker's socket is up again,
// and returns when it injected what.
func soakFaults(h *harness, begin time.Time) (log []string) {
	live := func() {
		deadline := time.Now().Add(10 * time.Second)
		for h.liveSockets() == 0 && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
	}
	at := func(d time.Duration) {
		time.Sleep(time.Until(begin.Add(d)))
		live()
		log = append(log, time.Now().UTC().Format("15:04:05.000"))
	}
	at(1 * time.Second)
	h.Fake.DropSockets(1006)
	at(2 * time.Second)
	h.Fake.Fail429("/api/v2/conversations", 12, time.Second)
	h.Fake.Fail429("/api/v2/analytics", 3, time.Second)
	h.Fake.SendSocketClosing()
	at(3 * time.Second)
	h.Fake.ExpireTokensNow()
	at(4 * time.Second)
	h.Fake.Fail429("/api/v2/notifications", 3, time.Second)
	h.Fake.DropSockets(1006)
	at(5 * time.Second)
	h.Fake.Fail429("/oauth/token", 2, time.Second)
	h.Fake.ExpireTokensNow()
	at(6 * time.Second)
	h.Fake.Fail429("/api/v2/conversations", 8, time.Second)
	h.Fake.DropSockets(1006)
	at(7 * time.Second)
	h.Fake.SendSocketClosing()
	at(8 * time.Second)
	h.Fake.DropSockets(1006)
	return log
}

// soakScript plays one conversation. Between steps it waits 300–500 ms; a conversation a tracked agent
// answered stays with tracked agents for at least three such waits and until waitSeen (the tracker reported
// it) before the step that ends it for the tracker. Some conversations are left up at the end.
func soakScript(f *genesystest.Server, r *rand.Rand, i int, tracked, untracked []string, waitSeen func(*genesystest.Call)) soakRun {
	pause := func(n int) {
		for range n {
			time.Sleep(300*time.Millisecond + time.Duration(r.Int64N(int64(200*time.Millisecond))))
		}
	}
	perm := r.Perm(len(tracked))
	a, b, c := tracked[perm[0]], tracked[perm[1]], tracked[perm[2]]
	u := untracked[r.IntN(len(untracked))]
	maybe := func() bool { return r.IntN(2) == 0 }
	queue := fmt.Sprintf("0000a000-0000-4000-8000-%012d", r.IntN(5))
	inbound := func() *genesystest.Call {
		return f.InboundCall(genesystest.ANI(fmt.Sprintf("+1812555%04d", i)),
			genesystest.UUI(fmt.Sprintf("00FA08%04X%04X%08X;encoding=hex", 1+i%7, i, 1700000000+i)))
	}

	switch i % 10 {
	case 0:
		cl := inbound().Answer(a)
		pause(3)
		if maybe() {
			waitSeen(cl)
			cl.CustomerHangup()
		}
		return soakRun{"plain", cl}
	case 1:
		cl := inbound().Answer(a)
		pause(1)
		cl.Hold(a)
		pause(1)
		cl.Resume(a)
		pause(1)
		cl.Hold(a)
		if maybe() {
			pause(1)
			waitSeen(cl)
			cl.Resume(a).CustomerHangup()
		}
		return soakRun{"hold/resume", cl}
	case 2:
		cl := inbound().Answer(a)
		pause(1)
		cl.BlindTransfer(a, b)
		pause(3)
		waitSeen(cl)
		switch r.IntN(3) {
		case 0:
			cl.CustomerHangup()
		case 1:
			cl.AgentHangup(b)
		}
		return soakRun{"blind transfer", cl}
	case 3:
		cl := inbound().Answer(a)
		pause(3)
		waitSeen(cl)
		cl.BlindTransfer(a, u)
		pause(1)
		if maybe() {
			cl.CustomerHangup()
		}
		return soakRun{"blind transfer away", cl}
	case 4:
		other := b
		if r.IntN(3) == 0 {
			other = u
		}
		cl := inbound().Answer(a)
		pause(1)
		cl.ConsultStart(a, other)
		pause(1)
		if r.IntN(4) == 0 {
			return soakRun{"consult (open)", cl}
		}
		waitSeen(cl)
		cl.ConsultComplete()
		pause(3)
		if maybe() {
			cl.CustomerHangup()
		}
		return soakRun{"consult complete", cl}
	case 5:
		cl := inbound().Answer(a)
		pause(1)
		cl.ConsultStart(a, b)
		pause(1)
		if maybe() {
			cl.ConsultCancel()
			pause(3)
			waitSeen(cl)
			cl.AgentHangup(a)
			return soakRun{"consult cancel", cl}
		}
		cl.ConsultConference()
		pause(1)
		cl.AgentHangup(a)
		pause(3)
		if maybe() {
			waitSeen(cl)
			cl.CustomerHangup()
		}
		return soakRun{"conference", cl}
	case 6:
		cl := f.InboundCall(genesystest.Queue(queue))
		pause(1)
		cl.NoAnswer(a)
		pause(1)
		cl.Answer(b)
		pause(3)
		waitSeen(cl)
		cl.AgentHangup(b)
		return soakRun{"queue, agent hangs up", cl}
	case 7:
		cl := inbound().Answer(a)
		pause(1)
		cl.TransferToQueue(a, queue)
		pause(1)
		cl.Answer(c)
		pause(3)
		if maybe() {
			waitSeen(cl)
			cl.CustomerHangup()
		}
		return soakRun{"transfer to queue", cl}
	case 8:
		cl := f.OutboundCall(a, genesystest.DNIS(fmt.Sprintf("+1317555%04d", i)))
		pause(1)
		if r.IntN(4) == 0 {
			cl.RemoteNoAnswer()
			return soakRun{"outbound, no answer", cl}
		}
		cl.RemoteAnswer()
		pause(3)
		if maybe() {
			waitSeen(cl)
			cl.AgentHangup(a)
		}
		return soakRun{"outbound", cl}
	default:
		if maybe() {
			cl := f.InternalCall(a, b)
			pause(1)
			cl.Answer(b)
			pause(1)
			if maybe() {
				cl.AgentHangup(a)
			}
			return soakRun{"internal", cl}
		}
		cl := f.InboundCall(genesystest.Queue(queue))
		pause(1)
		cl.NoAnswer(a)
		pause(1)
		cl.Decline(b)
		if maybe() {
			pause(1)
			cl.CustomerHangup()
		}
		return soakRun{"unanswered", cl}
	}
}
