package genesys

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/siphook/siphook/cti"
)

// Users and queues of the fixtures in testdata/ (built from research/genesys-cti.md §2.6 and §4.2).
const (
	dvUserA  = "5f6fe78e-dfbb-400f-a70b-d9b5c8340fdc" // tracked
	dvUserB  = "2b0f3c1d-8e4a-4c7b-9f6e-1a2b3c4d5e6f" // tracked
	dvUserD  = "3c1e4d2f-9a5b-4d8c-8a7f-2b3c4d5e6f70" // tracked
	dvUserS  = "4d2f5e3a-0b6c-4e9d-9b80-3c4d5e6f7081" // tracked supervisor
	dvUserU  = "9e8d7c6b-5a4f-4e3d-8c2b-1a0f9e8d7c6b" // not tracked
	dvQueue1 = "67ce2258-ff62-4f8e-8467-2d79c9b98e2b"
	dvQueue2 = "8d1f3a52-6b7c-4d8e-9f0a-1b2c3d4e5f60"
	dvUCID   = "00025000160955721139" // FA080019001038F725B3 decoded (research §3.1)
)

var dvUserNames = map[string]string{dvUserA: "A", dvUserB: "B", dvUserD: "D", dvUserS: "S", dvUserU: "U"}

// dvPayloadBase is time 0 of the fixtures' payload clock; dvLocalBase is our clock (deliberately years
// apart: payload times are never compared with ours).
var (
	dvPayloadBase = time.Date(2022, 12, 13, 13, 14, 3, 71_000_000, time.UTC)
	dvLocalBase   = time.Date(2025, 3, 1, 10, 0, 0, 0, time.UTC)
)

// dvReceived is the local time step i is received.
func dvReceived(i int) time.Time { return dvLocalBase.Add(time.Duration(i) * time.Second) }

type dvStep struct {
	Note     string          `json:"note"`
	Envelope json.RawMessage `json:"envelope"`
	Rest     json.RawMessage `json:"rest"`
}

type dvFixture struct {
	Scenario    string   `json:"scenario"`
	Description string   `json:"description"`
	Steps       []dvStep `json:"steps"`
}

func dvLoad(tb testing.TB, name string) dvFixture {
	tb.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name+".json"))
	if err != nil {
		tb.Fatal(err)
	}
	var f dvFixture
	if err := json.Unmarshal(b, &f); err != nil {
		tb.Fatalf("%s: %v", name, err)
	}
	return f
}

// conversation parses a step the way the tracker does: an envelope through ParseEnvelope, then its body.
func (s dvStep) conversation(tb testing.TB) (*Conversation, bool) {
	tb.Helper()
	body, reconciled := s.Rest, true
	if len(s.Envelope) > 0 {
		env, err := ParseEnvelope(s.Envelope)
		if err != nil {
			tb.Fatalf("%s: %v", s.Note, err)
		}
		if !strings.HasSuffix(env.TopicName, ".conversations") || env.Metadata.CorrelationID == "" {
			tb.Fatalf("%s: envelope %q/%q", s.Note, env.TopicName, env.Metadata.CorrelationID)
		}
		body, reconciled = env.EventBody, false
	}
	c, err := ParseConversation(body)
	if err != nil {
		tb.Fatalf("%s: %v", s.Note, err)
	}
	return c, reconciled
}

// dvWant is one expected event: the step that emits it, its state, the tracked agents ("A", "B(held)"),
// the flags ("transfer consult conference secure"), the UCIDs; optionally its Time ("+30.5": seconds after
// dvPayloadBase, "received": the step's received time, or RFC 3339), queue, and a free check.
type dvWant struct {
	step   int
	state  cti.State
	agents string
	flags  string
	ucids  string
	time   string
	queue  string
	check  func(t *testing.T, f dvFixture, ev *cti.Event)
}

func dvSummary(step int, ev *cti.Event) string {
	var agents []string
	for _, a := range ev.Agents {
		n := dvUserNames[a.UserID]
		if n == "" {
			n = a.UserID
		}
		if a.Held {
			n += "(held)"
		}
		agents = append(agents, n)
	}
	var flags []string
	for _, f := range []struct {
		on   bool
		name string
	}{{ev.Transfer, "transfer"}, {ev.Consult, "consult"}, {ev.Conference, "conference"}, {ev.SecurePause, "secure"}} {
		if f.on {
			flags = append(flags, f.name)
		}
	}
	return fmt.Sprintf("step %d: %s agents[%s] flags[%s] ucids[%s]", step, ev.State, strings.Join(agents, " "),
		strings.Join(flags, " "), strings.Join(ev.UCIDs, " "))
}

func (w dvWant) summary() string {
	return fmt.Sprintf("step %d: %s agents[%s] flags[%s] ucids[%s]", w.step, w.state, w.agents, w.flags, w.ucids)
}

func dvWantTime(tb testing.TB, s string, step int) time.Time {
	tb.Helper()
	switch {
	case s == "received":
		return dvReceived(step)
	case strings.HasPrefix(s, "+"):
		var sec float64
		if _, err := fmt.Sscanf(s, "+%g", &sec); err != nil {
			tb.Fatalf("bad want time %q", s)
		}
		return dvPayloadBase.Add(time.Duration(sec * float64(time.Second)))
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		tb.Fatalf("bad want time %q", s)
	}
	return t
}

func dvDeriver(clock *time.Time) *Deriver {
	tracked := map[string]bool{dvUserA: true, dvUserB: true, dvUserD: true, dvUserS: true}
	return &Deriver{
		Tenant:  "acme",
		Tracked: func(id string) bool { return tracked[id] },
		UserInfo: func(id string) (string, string) {
			if id == dvUserA {
				return "Alice Agent", "alice@example.com"
			}
			return "", ""
		},
		UUIAttributes: []string{"ASAIUUI"},
		Now:           func() time.Time { return *clock },
	}
}

// dvParticipantOf returns the id of participant i of the conversation of step s.
func dvParticipantOf(t *testing.T, f dvFixture, s, i int) string {
	t.Helper()
	c, _ := f.Steps[s].conversation(t)
	return c.Participants[i].ID
}

func TestDeriverEdgeCases(t *testing.T) {
	hold15 := []dvWant{
		{step: 0, state: cti.StateActive, agents: "A", time: "+20"},
		{step: 1, state: cti.StateHeld, agents: "A(held)", time: "+30"},
		{step: 2, state: cti.StateActive, agents: "A", time: "received"},
		{step: 3, state: cti.StateHeld, agents: "A", time: "received"},
		{step: 4, state: cti.StateActive, agents: "A"},
		{step: 5, state: cti.StateHeld, agents: "A(held)", time: "+50"},
		{step: 6, state: cti.StateActive, agents: "A"},
		{step: 7, state: cti.StateHeld, agents: "A(held)", time: "+60"},
		{step: 8, state: cti.StateActive, agents: "A"},
		{step: 9, state: cti.StateHeld, agents: "A(held)", flags: "secure"},
		{step: 10, state: cti.StateActive, agents: "A"},
		{step: 11, state: cti.StateEnded, agents: "A", time: "+120"},
	}
	hold15Recorded := slices.Clone(hold15)
	hold15Recorded[9] = dvWant{step: 9, state: cti.StateActive, agents: "A", flags: "secure"}

	tests := []struct {
		name       string
		fixture    string
		configure  func(*Deriver)
		want       []dvWant
		wantActive []string // conversations left ACTIVE/HELD at the end
		check      func(t *testing.T, f dvFixture, d *Deriver, clock *time.Time)
	}{
		{
			name:    "13 duplicate snapshots",
			fixture: "13-duplicate-snapshots",
			want: []dvWant{
				{step: 0, state: cti.StateActive, agents: "A", ucids: dvUCID, time: "+20.129", queue: dvQueue1,
					check: func(t *testing.T, f dvFixture, ev *cti.Event) {
						a := ev.Agents[0]
						if a.Name != "Alice Agent" || a.Email != "alice@example.com" {
							t.Errorf("agent = %+v, want the UserInfo name and email", a)
						}
						if ev.ConversationID != "be9d3155-c3b6-4a6c-8ff1-5c48b4585135" || ev.Direction != "inbound" ||
							ev.ANI != "+18125841533" || ev.DNIS != "+13129718321" {
							t.Errorf("event = %+v", ev)
						}
						if !slices.Equal(ev.UUI, []string{"FA080019001038F725B3", dvUCID}) {
							t.Errorf("UUI = %q", ev.UUI)
						}
					}},
				{step: 4, state: cti.StateHeld, agents: "A(held)", ucids: dvUCID, time: "+40"},
				{step: 6, state: cti.StateEnded, ucids: dvUCID, time: "+60"},
			},
		},
		{
			name:    "14 out of order stale conference after a leg ended",
			fixture: "14-out-of-order-conference",
			want: []dvWant{
				{step: 0, state: cti.StateActive, agents: "A", time: "+20"},
				{step: 1, state: cti.StateActive, agents: "A B", flags: "conference", time: "+30"},
				{step: 2, state: cti.StateActive, agents: "A", time: "+50"},
				{step: 5, state: cti.StateEnded, time: "+70"},
			},
		},
		{
			name:    "14 out of order end before hold",
			fixture: "14-out-of-order-end-before-hold",
			want: []dvWant{
				{step: 0, state: cti.StateActive, agents: "A"},
				{step: 1, state: cti.StateEnded, time: "+45"},
			},
		},
		{
			name:      "15 hold resume secure pause holds",
			fixture:   "15-hold-resume",
			configure: func(d *Deriver) { d.SecurePauseHolds = true },
			want:      hold15,
		},
		{
			name:    "15 hold resume secure pause recorded",
			fixture: "15-hold-resume",
			want:    hold15Recorded,
		},
		{
			name:    "16 unanswered offers to the same user",
			fixture: "16-unanswered-offers",
			want: []dvWant{
				{step: 4, state: cti.StateActive, agents: "A", ucids: dvUCID, time: "+41", queue: dvQueue1,
					check: func(t *testing.T, f dvFixture, ev *cti.Event) {
						if want := dvParticipantOf(t, f, 4, 5); ev.Agents[0].ParticipantID != want {
							t.Errorf("participant = %s, want the answered offer %s", ev.Agents[0].ParticipantID, want)
						}
					}},
				{step: 6, state: cti.StateEnded, ucids: dvUCID, time: "+90"},
			},
		},
		{
			name:    "17 blind transfer to a tracked agent",
			fixture: "17-blind-transfer-agent",
			want: []dvWant{
				{step: 0, state: cti.StateActive, agents: "A", time: "+20"},
				{step: 1, state: cti.StateHeld, flags: "transfer", time: "+40"},
				{step: 2, state: cti.StateActive, agents: "B", flags: "transfer", time: "+45"},
				{step: 3, state: cti.StateEnded, flags: "transfer", time: "+90"},
			},
		},
		{
			name:    "17 blind transfer to a queue",
			fixture: "17-blind-transfer-queue",
			want: []dvWant{
				{step: 0, state: cti.StateActive, agents: "A", queue: dvQueue1},
				{step: 1, state: cti.StateHeld, flags: "transfer", time: "+40", queue: dvQueue2},
				{step: 3, state: cti.StateActive, agents: "B", flags: "transfer", time: "+70", queue: dvQueue2},
				{step: 4, state: cti.StateEnded, agents: "B", flags: "transfer", time: "+100"},
			},
		},
		{
			name:    "17 blind transfer to an external number",
			fixture: "17-blind-transfer-external",
			want: []dvWant{
				{step: 0, state: cti.StateActive, agents: "A"},
				{step: 1, state: cti.StateHeld, flags: "transfer", time: "+40"},
				{step: 3, state: cti.StateEnded, flags: "transfer", time: "+55"},
			},
		},
		{
			name:    "17 blind transfer to an untracked agent",
			fixture: "17-blind-transfer-untracked",
			want: []dvWant{
				{step: 0, state: cti.StateActive, agents: "A"},
				{step: 1, state: cti.StateHeld, flags: "transfer", time: "+40"},
				{step: 2, state: cti.StateEnded, flags: "transfer", time: "+50"},
			},
		},
		{
			name:    "18 consult complete",
			fixture: "18-consult-complete",
			want: []dvWant{
				{step: 0, state: cti.StateActive, agents: "A"},
				{step: 1, state: cti.StateHeld, agents: "A", flags: "consult", time: "+40"},
				{step: 3, state: cti.StateActive, agents: "D", flags: "transfer consult", time: "+70"},
				{step: 4, state: cti.StateEnded, agents: "D", flags: "transfer consult", time: "+100"},
			},
		},
		{
			name:    "18 consult cancel",
			fixture: "18-consult-cancel",
			want: []dvWant{
				{step: 0, state: cti.StateActive, agents: "A"},
				{step: 1, state: cti.StateHeld, agents: "A", flags: "consult", time: "+40"},
				{step: 3, state: cti.StateActive, agents: "A", flags: "consult", time: "received"}, // a resume has no payload time
				{step: 4, state: cti.StateEnded, agents: "A", flags: "consult", time: "+100"},
			},
		},
		{
			name:    "18 consult conference",
			fixture: "18-consult-conference",
			want: []dvWant{
				{step: 0, state: cti.StateActive, agents: "A"},
				{step: 1, state: cti.StateHeld, agents: "A", flags: "consult"},
				{step: 3, state: cti.StateActive, agents: "A D", flags: "consult conference", time: "received"},
				{step: 4, state: cti.StateActive, agents: "D", flags: "consult", time: "+90"},
				{step: 5, state: cti.StateEnded, agents: "D", flags: "consult", time: "+120"},
			},
		},
		{
			name:    "18 consult an external party and complete",
			fixture: "18-consult-complete-untracked",
			want: []dvWant{
				{step: 0, state: cti.StateActive, agents: "A"},
				{step: 1, state: cti.StateHeld, agents: "A", flags: "consult"},
				{step: 3, state: cti.StateEnded, flags: "transfer consult", time: "+70"},
			},
		},
		{
			name:    "19 conference agents leave one by one",
			fixture: "19-conference",
			want: []dvWant{
				{step: 0, state: cti.StateActive, agents: "A"},
				{step: 2, state: cti.StateActive, agents: "A B", flags: "conference", time: "+45"},
				{step: 4, state: cti.StateActive, agents: "B", flags: "conference", time: "+80"},
				{step: 5, state: cti.StateEnded, time: "+100"},
			},
		},
		{
			name:    "20 internal call never emits",
			fixture: "20-internal-call",
			want: []dvWant{
				{step: 0, state: cti.StateActive, agents: "A"},
				{step: 2, state: cti.StateHeld, agents: "A(held)", time: "+29.8"},
				{step: 5, state: cti.StateActive, agents: "A", time: "received"},
				{step: 6, state: cti.StateEnded, agents: "A", time: "+80"},
			},
			check: func(t *testing.T, f dvFixture, d *Deriver, _ *time.Time) {
				c, _ := f.Steps[1].conversation(t)
				if st, ok := d.State(c.ID); ok {
					t.Errorf("internal conversation state = %s, want none", st)
				}
			},
		},
		{
			name:    "21 outbound personal call",
			fixture: "21-outbound-personal",
			want: []dvWant{
				{step: 2, state: cti.StateActive, agents: "A", time: "+12",
					check: func(t *testing.T, f dvFixture, ev *cti.Event) {
						if ev.Direction != "outbound" || ev.ANI != "+442071234567" || ev.DNIS != "+13129718321" {
							t.Errorf("direction/ani/dnis = %q/%q/%q", ev.Direction, ev.ANI, ev.DNIS)
						}
					}},
				{step: 3, state: cti.StateEnded, time: "+80"},
			},
		},
		{
			name:    "21 outbound no answer",
			fixture: "21-outbound-no-answer",
			want:    nil,
			check: func(t *testing.T, f dvFixture, d *Deriver, _ *time.Time) {
				c, _ := f.Steps[0].conversation(t)
				if st, ok := d.State(c.ID); ok {
					t.Errorf("state = %s, want none", st)
				}
			},
		},
		{
			name:    "22 monitor coach barge are not agents",
			fixture: "22-monitor-coach-barge",
			want: []dvWant{
				{step: 0, state: cti.StateActive, agents: "A"},
				{step: 4, state: cti.StateEnded, time: "+70"},
			},
		},
		{
			name:    "22 tracked supervisor monitoring an untracked agent",
			fixture: "22-monitor-untracked-agent",
			want:    nil,
		},
		{
			name:    "23 dialer call agent connected first",
			fixture: "23-dialer-agent-first",
			want: []dvWant{
				{step: 3, state: cti.StateActive, agents: "A", time: "+15", queue: dvQueue1,
					check: func(t *testing.T, f dvFixture, ev *cti.Event) {
						if ev.Direction != "outbound" || ev.ANI != "+442071234567" {
							t.Errorf("direction/ani = %q/%q", ev.Direction, ev.ANI)
						}
					}},
				{step: 4, state: cti.StateEnded, agents: "A", time: "+70"},
			},
		},
		{
			name:    "23 callback",
			fixture: "23-callback",
			want: []dvWant{
				{step: 2, state: cti.StateActive, agents: "A", time: "+20", queue: dvQueue1},
				{step: 3, state: cti.StateEnded, agents: "A", time: "+60"},
			},
		},
		{
			name:    "24 uui hex and ascii forms of one ucid",
			fixture: "24-uui-hex-and-ascii",
			want: []dvWant{
				{step: 0, state: cti.StateActive, agents: "A", ucids: dvUCID,
					check: func(t *testing.T, f dvFixture, ev *cti.Event) {
						want := []string{"FA080019001038F725B3", dvUCID, "00FA080019001038F725B3;encoding=hex"}
						if !slices.Equal(ev.UUI, want) {
							t.Errorf("UUI = %q, want %q", ev.UUI, want)
						}
					}},
				{step: 1, state: cti.StateEnded, agents: "A", ucids: dvUCID},
			},
		},
		{
			name:      "24 uui attribute on the customer only",
			fixture:   "24-uui-attribute-customer-only",
			configure: func(d *Deriver) { d.UUIAttributes = []string{"asaiuui"} },
			want: []dvWant{
				{step: 0, state: cti.StateActive, agents: "A", ucids: dvUCID},
				{step: 1, state: cti.StateEnded, agents: "A", ucids: dvUCID},
			},
		},
		{
			name:      "24 uui attribute not configured",
			fixture:   "24-uui-attribute-customer-only",
			configure: func(d *Deriver) { d.UUIAttributes = nil },
			want: []dvWant{
				{step: 0, state: cti.StateActive, agents: "A",
					check: func(t *testing.T, f dvFixture, ev *cti.Event) {
						if len(ev.UUI) != 0 {
							t.Errorf("UUI = %q, want none", ev.UUI)
						}
					}},
				{step: 1, state: cti.StateEnded, agents: "A"},
			},
		},
		{
			name:    "24 uui only in a later snapshot",
			fixture: "24-uui-late",
			want: []dvWant{
				{step: 0, state: cti.StateActive, agents: "A"},
				{step: 1, state: cti.StateActive, agents: "A", ucids: dvUCID, time: "received",
					check: func(t *testing.T, f dvFixture, ev *cti.Event) {
						if len(ev.UUI) != 2 {
							t.Errorf("UUI = %q, want the attribute and the uuiData", ev.UUI)
						}
					}},
				{step: 4, state: cti.StateEnded, agents: "A", ucids: dvUCID, time: "+60"},
			},
		},
		{
			name:    "24 uui malformed",
			fixture: "24-uui-malformed",
			want: []dvWant{
				{step: 0, state: cti.StateActive, agents: "A",
					check: func(t *testing.T, f dvFixture, ev *cti.Event) {
						if want := []string{"zz-not-a-ucid", "00000000000000000000"}; !slices.Equal(ev.UUI, want) {
							t.Errorf("UUI = %q, want %q", ev.UUI, want)
						}
					}},
				{step: 1, state: cti.StateEnded, agents: "A"},
			},
		},
		{
			name:    "28 clock skew",
			fixture: "28-clock-skew",
			want: []dvWant{
				{step: 0, state: cti.StateActive, agents: "A", time: "2031-06-01T09:05:00Z",
					check: func(t *testing.T, f dvFixture, ev *cti.Event) {
						if ev.ConversationID != "28c0ffee-0000-4abc-8def-0123456789ab" {
							t.Errorf("conversation id = %q, want lower case", ev.ConversationID)
						}
					}},
				{step: 1, state: cti.StateHeld, agents: "A(held)", time: "2031-06-01T09:00:10Z"},
				{step: 2, state: cti.StateActive, agents: "A", time: "received"},
				{step: 3, state: cti.StateEnded, agents: "A", time: "2031-06-01T09:00:05Z"},
			},
			check: func(t *testing.T, f dvFixture, d *Deriver, clock *time.Time) {
				// Retention runs on our clock from the step that ended it, whatever the payload says.
				const id = "28c0ffee-0000-4abc-8def-0123456789ab"
				*clock = dvReceived(3).Add(deriveDefaultRetain)
				d.Sweep()
				if st, ok := d.State(id); !ok || st != cti.StateEnded {
					t.Errorf("after Retain exactly: state %s %v, want ENDED retained", st, ok)
				}
				*clock = clock.Add(time.Millisecond)
				d.Sweep()
				if st, ok := d.State(id); ok {
					t.Errorf("after Retain: state %s, want forgotten", st)
				}
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := dvLoad(t, tc.fixture)
			clock := dvLocalBase
			d := dvDeriver(&clock)
			if tc.configure != nil {
				tc.configure(d)
			}
			var got []string
			var events []*cti.Event
			var steps []int
			for i, s := range f.Steps {
				c, reconciled := s.conversation(t)
				clock = dvReceived(i)
				ev := d.Apply(c, dvReceived(i), reconciled)
				if ev == nil {
					continue
				}
				got = append(got, dvSummary(i, ev))
				events = append(events, ev)
				steps = append(steps, i)
				if want := deriveConversationID(c.ID); ev.ConversationID != want || ev.Tenant != "acme" ||
					ev.Source != "genesys" || !ev.Received.Equal(dvReceived(i)) || ev.Reconciled != reconciled {
					t.Errorf("step %d (%s): envelope fields %q %q %q %v %v", i, s.Note, ev.ConversationID, ev.Tenant,
						ev.Source, ev.Received, ev.Reconciled)
				}
			}
			var want []string
			for _, w := range tc.want {
				want = append(want, w.summary())
			}
			if !slices.Equal(got, want) {
				t.Fatalf("events:\n got  %s\n want %s", strings.Join(got, "\n      "), strings.Join(want, "\n      "))
			}
			for k, w := range tc.want {
				ev := events[k]
				if w.time != "" {
					if wt := dvWantTime(t, w.time, steps[k]); !ev.Time.Equal(wt) {
						t.Errorf("step %d: time %s, want %s", w.step, ev.Time.Format(time.RFC3339Nano), wt.Format(time.RFC3339Nano))
					}
				}
				if w.queue != "" && ev.QueueID != w.queue {
					t.Errorf("step %d: queue %s, want %s", w.step, ev.QueueID, w.queue)
				}
				if w.check != nil {
					w.check(t, f, ev)
				}
			}
			if active := d.Active(); !slices.Equal(active, tc.wantActive) {
				t.Errorf("Active() = %q, want %q", active, tc.wantActive)
			}
			if len(events) > 0 {
				last := events[len(events)-1]
				if st, ok := d.State(strings.ToUpper(last.ConversationID)); !ok || st != last.State {
					t.Errorf("State() = %s %v, want %s", st, ok, last.State)
				}
			}
			if tc.check != nil {
				tc.check(t, f, d, &clock)
			}
		})
	}
}

// TestDeriverStickyAndRetain: an ENDED conversation ignores every later snapshot until Sweep forgets it
// Retain later (by the local clock); pending conversations are forgotten when idle for Retain; ACTIVE ones are
// kept for reconciliation.
func TestDeriverStickyAndRetain(t *testing.T) {
	active := dvLoad(t, "17-blind-transfer-agent")
	ended := dvLoad(t, "14-out-of-order-end-before-hold")
	pending := dvLoad(t, "16-unanswered-offers")
	clock := dvLocalBase
	d := dvDeriver(&clock)
	d.Retain = time.Minute
	apply := func(f dvFixture, i int) *cti.Event {
		c, rec := f.Steps[i].conversation(t)
		return d.Apply(c, clock, rec)
	}
	if ev := apply(active, 0); ev == nil || ev.State != cti.StateActive {
		t.Fatalf("active: %+v", ev)
	}
	if ev := apply(ended, 0); ev == nil || ev.State != cti.StateActive {
		t.Fatalf("ended: %+v", ev)
	}
	if ev := apply(ended, 1); ev == nil || ev.State != cti.StateEnded {
		t.Fatalf("ended: %+v", ev)
	}
	if ev := apply(pending, 0); ev != nil {
		t.Fatalf("pending: %+v", ev)
	}
	if _, ok := d.State("00000000-0000-4000-8000-000000000000"); ok {
		t.Fatal("State of an unknown id")
	}
	c0, _ := ended.Steps[0].conversation(t)
	clock = clock.Add(30 * time.Second)
	d.Sweep()
	if ev := apply(ended, 0); ev != nil {
		t.Fatalf("resurrected after 30 s: %+v", ev)
	}
	if got := d.Active(); len(got) != 1 {
		t.Fatalf("Active() = %q", got)
	}
	clock = clock.Add(31 * time.Second)
	d.Sweep()
	if _, ok := d.State(c0.ID); ok {
		t.Fatal("ENDED conversation not forgotten after Retain")
	}
	if got := d.Active(); len(got) != 1 {
		t.Fatalf("Active() = %q, want the active conversation kept", got)
	}
	d.mu.Lock()
	n := len(d.convs)
	d.mu.Unlock()
	if n != 1 {
		t.Fatalf("%d conversations remembered, want 1 (the pending one idle for Retain is forgotten)", n)
	}
}

// TestDeriverConcurrent exercises the lock under -race: Apply, Active, State and Sweep from several goroutines.
func TestDeriverConcurrent(t *testing.T) {
	var fixtures []dvFixture
	for _, name := range []string{"13-duplicate-snapshots", "15-hold-resume", "18-consult-complete", "19-conference"} {
		fixtures = append(fixtures, dvLoad(t, name))
	}
	d := &Deriver{Tenant: "acme"} // every user tracked, real clock: nothing here asserts on time
	var wg sync.WaitGroup
	for _, f := range fixtures {
		var convs []*Conversation
		for _, s := range f.Steps {
			c, _ := s.conversation(t)
			convs = append(convs, c)
		}
		wg.Go(func() {
			for _, c := range convs {
				d.Apply(c, time.Time{}, false)
				d.Active()
				d.State(c.ID)
			}
		})
	}
	wg.Go(func() {
		for range 50 {
			d.Sweep()
		}
	})
	wg.Wait()
	if got := d.Active(); len(got) != 0 {
		t.Fatalf("Active() = %q", got)
	}
}

func TestParseConversation(t *testing.T) {
	ms := func(s string) time.Time {
		t.Helper()
		v, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	eqTime := func(got *time.Time, want string) bool {
		if want == "" {
			return got == nil
		}
		return got != nil && got.Equal(ms(want))
	}
	read := func(name string) []byte {
		b, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	tests := []struct {
		name    string
		input   []byte
		wantErr string
		check   func(t *testing.T, c *Conversation)
	}{
		{
			name: "event body of research example (a)",
			input: func() []byte {
				env, err := ParseEnvelope(read("parse-event-envelope.json"))
				if err != nil {
					t.Fatal(err)
				}
				if env.TopicName != "v2.users.5f6fe78e-dfbb-400f-a70b-d9b5c8340fdc.conversations" || env.Version != "2" ||
					env.Metadata.CorrelationID != "0f2d8b1e-3c4a-4b5d-9e6f-7a8b9c0d1e2f" {
					t.Errorf("envelope = %+v", env)
				}
				return env.EventBody
			}(),
			check: func(t *testing.T, c *Conversation) {
				if c.ID != "be9d3155-c3b6-4a6c-8ff1-5c48b4585135" || len(c.Participants) != 3 {
					t.Fatalf("conversation = %+v", c)
				}
				cust, acd, agent := c.Participants[0], c.Participants[1], c.Participants[2]
				if cust.Purpose != "customer" || cust.Address != "tel:+18125841533" || cust.Attributes["ASAIUUI"] != dvUCID {
					t.Errorf("customer = %+v", cust)
				}
				call := cust.Calls[0]
				if call.ID != "c1-..." || call.State != "connected" || call.Direction != "inbound" ||
					call.UUIData != "FA080019001038F725B3" || !eqTime(call.ConnectedTime, "2022-12-13T13:14:03.071Z") ||
					call.Self.AddressNormalized != "tel:+13129718321" || call.Other.AddressNormalized != "tel:+18125841533" {
					t.Errorf("customer call = %+v", call)
				}
				if acd.QueueID != dvQueue1 || acd.Calls[0].DisconnectType != "transfer" || acd.Calls[0].State != "disconnected" {
					t.Errorf("acd = %+v", acd)
				}
				if agent.UserID != dvUserA || agent.QueueID != dvQueue1 || !eqTime(agent.ConnectedTime, "2022-12-13T13:14:23.200Z") ||
					len(agent.Calls) != 1 || agent.Calls[0].Held || agent.EndTime != nil {
					t.Errorf("agent = %+v", agent)
				}
			},
		},
		{
			name:  "REST flattened participants of research 4.2",
			input: read("parse-rest-flattened.json"),
			check: func(t *testing.T, c *Conversation) {
				if len(c.Participants) != 6 {
					t.Fatalf("%d participants", len(c.Participants))
				}
				for _, p := range c.Participants {
					if len(p.Calls) != 1 || p.Calls[0].ID != p.ID || p.Calls[0].State != "terminated" {
						t.Errorf("participant %s: calls %+v, want one flattened call keyed by the participant", p.ID, p.Calls)
					}
				}
				cust := c.Participants[0]
				call := cust.Calls[0]
				if call.UUIData != "FA080019001038F725B3" || call.Other.AddressNormalized != "tel:+18125841533" ||
					call.Self.AddressNormalized != "tel:+13129718321" || call.DisconnectType != "endpoint" ||
					!eqTime(call.ConnectedTime, "2022-12-13T13:14:03.071Z") || !eqTime(call.DisconnectedTime, "2022-12-13T13:14:47.101Z") {
					t.Errorf("customer call = %+v", call)
				}
				if acd := c.Participants[2]; acd.QueueID != dvQueue1 {
					t.Errorf("acd queue = %q (from queue.id)", acd.QueueID)
				}
				for _, i := range []int{3, 4} {
					offer := c.Participants[i]
					if offer.UserID != dvUserA || offer.ConnectedTime != nil || offer.Calls[0].DisconnectType != "client" {
						t.Errorf("unanswered offer = %+v", offer)
					}
				}
				agent := c.Participants[5]
				if agent.UserID != dvUserA || agent.QueueID != dvQueue1 || agent.Calls[0].DisconnectType != "peer" ||
					!eqTime(agent.Calls[0].ConnectedTime, "2022-12-13T13:14:23.200Z") ||
					!eqTime(agent.Calls[0].DisconnectedTime, "2022-12-13T13:14:47.101Z") {
					t.Errorf("agent = %+v call %+v", agent, agent.Calls[0])
				}
			},
		},
		{
			name:  "REST calls with upper-case enums and lenient times",
			input: read("parse-rest-calls.json"),
			check: func(t *testing.T, c *Conversation) {
				if c.ID != "BE9D3155-C3B6-4A6C-8FF1-5C48B4585135" || !c.SecurePause || len(c.RecentTransfers) != 1 ||
					len(c.ConsultationConversations) != 1 {
					t.Errorf("conversation = %+v", c)
				}
				cust := c.Participants[0]
				if cust.Purpose != "customer" || len(cust.Calls) != 1 {
					t.Fatalf("customer = %+v", cust)
				}
				if want := map[string]string{"ASAIUUI": dvUCID, "Priority": "5", "VIP": "true"}; fmt.Sprint(cust.Attributes) != fmt.Sprint(want) {
					t.Errorf("attributes = %v, want %v", cust.Attributes, want)
				}
				call := cust.Calls[0]
				if call.ID != "c1-rest" || call.State != "connected" || call.Direction != "inbound" || !call.Confined || !call.SecurePause ||
					!eqTime(call.StartHoldTime, "2022-12-13T13:14:30.5Z") || !eqTime(call.ConnectedTime, "2022-12-13T13:14:03.071Z") ||
					call.Other.AddressNormalized != "sip:+18125841533@10.87.26.159" {
					t.Errorf("customer call = %+v", call)
				}
				if !eqTime(cust.ConnectedTime, "2022-12-13T13:14:03Z") {
					t.Errorf("customer connectedTime = %v", cust.ConnectedTime)
				}
				agent := c.Participants[1]
				if agent.Name != "Agent A" || agent.EndTime != nil || !eqTime(agent.ConnectedTime, "2022-12-13T13:14:23.200Z") ||
					!agent.Calls[0].Held || agent.Calls[0].DisconnectedTime != nil {
					t.Errorf("agent = %+v call %+v", agent, agent.Calls[0])
				}
			},
		},
		{
			name:  "unknown fields and other media are ignored",
			input: []byte(`{"id":"x","participants":[{"id":"p","purpose":"customer","chats":[{"state":"connected"}],"extra":{"a":[1,2]}}],"divisions":[]}`),
			check: func(t *testing.T, c *Conversation) {
				if len(c.Participants) != 1 || len(c.Participants[0].Calls) != 0 {
					t.Errorf("conversation = %+v", c)
				}
			},
		},
		{name: "missing id", input: []byte(`{"participants":[]}`), wantErr: "without id"},
		{name: "blank id", input: []byte(`{"id":"  "}`), wantErr: "without id"},
		{name: "not an object", input: []byte(`[1,2]`), wantErr: "cannot unmarshal"},
		{name: "truncated", input: []byte(`{"id":"x","participants":[{"id":`), wantErr: "unexpected end"},
		{name: "wrong type", input: []byte(`{"id":"x","participants":[{"id":"p","calls":[{"held":"yes"}]}]}`), wantErr: "cannot unmarshal"},
		{name: "oversized", input: []byte(`{"id":"x","pad":"` + strings.Repeat("a", maxSnapshotBytes) + `"}`), wantErr: "exceeds"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := ParseConversation(tc.input)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, c)
		})
	}
}

// TestParseConversationForms: the event body and the REST body of one state derive the same event.
func TestParseConversationForms(t *testing.T) {
	f := dvLoad(t, "16-unanswered-offers")
	event, _ := f.Steps[4].conversation(t)
	rest, reconciled := f.Steps[5].conversation(t)
	if !reconciled {
		t.Fatal("step 5 is not the REST form")
	}
	for _, tc := range []struct {
		name string
		c    *Conversation
	}{{"event body", event}, {"REST body", rest}} {
		t.Run(tc.name, func(t *testing.T) {
			clock := dvLocalBase
			ev := dvDeriver(&clock).Apply(tc.c, clock, false)
			if ev == nil {
				t.Fatal("no event")
			}
			got := dvSummary(0, ev) + fmt.Sprintf(" %s %s %s %s %s %s", ev.QueueID, ev.Direction, ev.ANI, ev.DNIS,
				ev.Agents[0].ParticipantID, ev.Time.Format(time.RFC3339Nano))
			want := "step 0: ACTIVE agents[A] flags[] ucids[" + dvUCID + "] " + dvQueue1 + " inbound +18125841533 +13129718321 " +
				dvParticipantOf(t, f, 4, 5) + " 2022-12-13T13:14:44.071Z"
			if got != want {
				t.Errorf("\n got  %s\n want %s", got, want)
			}
		})
	}
}

func TestParseEnvelope(t *testing.T) {
	tests := []struct {
		name, input, topic, body string
		wantErr                  bool
	}{
		{name: "heartbeat", input: `{"topicName":"channel.metadata","eventBody":{"message":"WebSocket Heartbeat"}}`,
			topic: "channel.metadata", body: `{"message":"WebSocket Heartbeat"}`},
		{name: "subscribe reply without topic", input: `{"result":"404","message":"channel gone"}`},
		{name: "not json", input: `hello`, wantErr: true},
		{name: "array", input: `[]`, wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			env, err := ParseEnvelope([]byte(tc.input))
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v", err)
			}
			if err == nil && (env.TopicName != tc.topic || string(env.EventBody) != tc.body) {
				t.Errorf("envelope = %+v", env)
			}
		})
	}
}

// FuzzParseConversation: parsing never panics, and a parsed snapshot derives without panicking and
// idempotently (the second Apply of the same snapshot emits nothing).
func FuzzParseConversation(f *testing.F) {
	names, _ := filepath.Glob(filepath.Join("testdata", "*.json"))
	for _, name := range names {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
		var fx dvFixture
		if json.Unmarshal(b, &fx) == nil {
			for _, s := range fx.Steps {
				if len(s.Envelope) > 0 {
					f.Add([]byte(s.Envelope))
				} else {
					f.Add([]byte(s.Rest))
				}
			}
		}
	}
	f.Add([]byte(`{"id":"x","participants":[{"id":"p","state":"connected","connectedTime":1e300,"calls":[]}]}`))
	f.Add([]byte(`{"id":"x","participants":[{"id":"p","purpose":"customer","calls":[{"id":"c","state":"connected","connectedTime":"2022-13-45T99:99:99Z"}]},{"id":"p","purpose":"agent","userId":"u","calls":[{"id":"c","state":"disconnected"}]}]}`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, b []byte) {
		bodies := [][]byte{b}
		if env, err := ParseEnvelope(b); err == nil && len(env.EventBody) > 0 {
			bodies = append(bodies, env.EventBody)
		}
		for _, body := range bodies {
			c, err := ParseConversation(body)
			if err != nil {
				continue
			}
			d := &Deriver{Tenant: "fuzz", UUIAttributes: []string{"ASAIUUI"}, SecurePauseHolds: len(b)%2 == 0}
			received := time.Unix(1_700_000_000, 0)
			d.Apply(c, received, false)
			if ev := d.Apply(c, received, false); ev != nil {
				t.Fatalf("second Apply of the same snapshot emitted %+v", ev)
			}
			d.Active()
			d.Sweep()
		}
	})
}

// BenchmarkApply derives a 3-participant snapshot (research example (a)) that alternates between connected
// and held, so every Apply emits an event.
func BenchmarkApply(b *testing.B) {
	raw, err := os.ReadFile(filepath.Join("testdata", "parse-event-envelope.json"))
	if err != nil {
		b.Fatal(err)
	}
	env, err := ParseEnvelope(raw)
	if err != nil {
		b.Fatal(err)
	}
	active, err := ParseConversation(env.EventBody)
	if err != nil {
		b.Fatal(err)
	}
	held, _ := ParseConversation(env.EventBody)
	held.Participants[2].Calls[0].Held = true
	d := &Deriver{Tenant: "bench", UUIAttributes: []string{"ASAIUUI"}}
	received := time.Unix(1_700_000_000, 0)
	snapshots := [2]*Conversation{active, held}
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		if d.Apply(snapshots[n%2], received, false) == nil {
			b.Fatal("no event")
		}
		n++
	}
}

// BenchmarkParseConversation parses the same snapshot from its JSON.
func BenchmarkParseConversation(b *testing.B) {
	raw, err := os.ReadFile(filepath.Join("testdata", "parse-event-envelope.json"))
	if err != nil {
		b.Fatal(err)
	}
	env, err := ParseEnvelope(raw)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(env.EventBody)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseConversation(env.EventBody); err != nil {
			b.Fatal(err)
		}
	}
}

func TestVanishedEndsAMissedEnd(t *testing.T) {
	d := &Deriver{Tenant: "t"}
	if ev := d.Vanished("be9d3155-c3b6-4a6c-8ff1-5c48b4585135", time.Now()); ev != nil {
		t.Fatalf("an unknown conversation vanished with an event: %+v", ev)
	}
	conv, err := ParseConversation([]byte(`{"id":"BE9D3155-C3B6-4A6C-8FF1-5C48B4585135","participants":[
	 {"id":"p1","purpose":"customer","calls":[{"id":"c1","state":"connected","direction":"inbound"}]},
	 {"id":"p2","purpose":"agent","userId":"u1","calls":[{"id":"c2","state":"connected"}]}]}`))
	if err != nil {
		t.Fatal(err)
	}
	if ev := d.Apply(conv, time.Now(), false); ev == nil || ev.State != cti.StateActive {
		t.Fatalf("apply = %+v, want ACTIVE", ev)
	}
	ev := d.Vanished("be9d3155-c3b6-4a6c-8ff1-5c48b4585135", time.Now())
	if ev == nil || ev.State != cti.StateEnded || !ev.Reconciled {
		t.Fatalf("vanished = %+v, want a reconciled ENDED", ev)
	}
	if again := d.Vanished("be9d3155-c3b6-4a6c-8ff1-5c48b4585135", time.Now()); again != nil {
		t.Errorf("vanished twice: %+v", again)
	}
}
