package matcher

import (
	"strings"
	"testing"
	"time"
)

// reportingSession adds the optional Reporter to a fake session.
type reportingSession struct {
	*fakeSession
	state string
}

func (r reportingSession) Source() string     { return "audiohook" }
func (r reportingSession) MediaState() string { return r.state }

// TestSessions: the live view lists each session with its match, the state the matcher drove it to (or the
// session's own, when it reports one) and, while waiting, why.
func TestSessions(t *testing.T) {
	e := newEnv(t, DefaultConfig())
	waiting := newSession("s-waiting", ucid("00071252811778010124"))
	e.add(waiting, "acme")
	e.clk.Advance(3 * time.Second)
	recording := newSession("s-recording", ucid("00144536801698162784"))
	e.add(recording, "acme")
	e.on(call("conv-1", CallActive, []Agent{agentA}, "00144536801698162784"))
	e.clk.Advance(time.Second)
	e.m.AddSession(reportingSession{newSession("s-immediate"), SessionActive}, "")
	e.settle()

	got := e.m.Sessions()
	if len(got) != 3 {
		t.Fatalf("%d sessions, want 3: %+v", len(got), got)
	}
	w, r, im := got[0], got[1], got[2]
	if w.ID != "s-waiting" || w.State != SessionWaiting || w.ConversationID != "" ||
		!strings.Contains(w.WaitingReason, "ucid 00071252811778010124 within 4s") {
		t.Errorf("waiting session %+v", w)
	}
	if r.ID != "s-recording" || r.State != SessionActive || r.ConversationID != "conv-1" || r.MatchedBy != ucid("00144536801698162784") ||
		len(r.Agents) != 1 || r.Agents[0] != agentA || r.WaitingReason != "" || r.Tenant != "acme" {
		t.Errorf("recording session %+v", r)
	}
	if im.ID != "s-immediate" || im.Source != "audiohook" || im.State != SessionActive || im.WaitingReason != "" {
		t.Errorf("reporting session %+v", im)
	}

	if got := e.metric("siphook_media_sessions", "source", "audiohook", "state", "active"); got != 1 {
		t.Errorf("media_sessions{audiohook,active} = %v, want 1", got)
	}
	if got := e.metric("siphook_media_sessions", "source", "other", "state", "waiting"); got != 1 {
		t.Errorf("media_sessions{other,waiting} = %v, want 1", got)
	}

	e.clk.Advance(time.Second)
	e.on(call("conv-1", CallHeld, []Agent{agentA}, "00144536801698162784"))
	if got := e.m.Sessions()[1]; got.State != SessionPaused {
		t.Errorf("held call: session state %q, want paused", got.State)
	}
}

// TestNotRecordedReason: a session matched to a call that never asked it to record ends with the reason;
// one that recorded does not.
func TestNotRecordedReason(t *testing.T) {
	e := newEnv(t, DefaultConfig())
	consult := newSession("s-consult", ucid("00144536801698162784"))
	e.on(with(call("conv-1", CallActive, []Agent{agentA, agentB}, "00144536801698162784"), func(c *Call) { c.Consult = true }))
	e.add(consult, "acme")
	e.m.RemoveSession(consult)
	if got := consult.Last(); got.ConversationID != "conv-1" || !strings.HasPrefix(got.NotRecorded, "a consultation") {
		t.Errorf("consult leg's last annotation: conversation %q, not recorded %q", got.ConversationID, got.NotRecorded)
	}

	recorded := newSession("s-recorded", ucid("00071252811778010124"))
	e.on(call("conv-2", CallActive, []Agent{agentA}, "00071252811778010124"))
	e.add(recorded, "acme")
	e.m.RemoveSession(recorded)
	if got := recorded.Last(); got.NotRecorded != "" {
		t.Errorf("a recorded session says it was not recorded: %q", got.NotRecorded)
	}
}
