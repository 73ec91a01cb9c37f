package matcher

import (
	"errors"
	"fmt"
	"slices"
	"time"
)

// Hold and End policies.
const (
	HoldPause = "pause" // a held call pauses the media (SIPREC re-INVITE inactive, AudioHook pause)
	HoldMark  = "mark"  // a held call keeps recording; its segment says HELD
	EndPause  = "pause" // the CTI saying ENDED pauses the media until the BYE/close
	EndLeave  = "leave" // the media records until the BYE/close
)

// endedTTL is how long an ENDED conversation waits for media (at most CallTTL).
const endedTTL = time.Minute

// Config is the matcher's part of the configuration file.
type Config struct {
	Hold            string        `yaml:"hold"`             // "pause" (default: re-INVITE inactive / AudioHook pause) or "mark" (keep recording, mark the segment)
	End             string        `yaml:"end"`              // "pause" (default: stop recording when the CTI says ENDED) or "leave" (keep until BYE/close)
	CallTTL         time.Duration `yaml:"call_ttl"`         // CTI conversations waiting for media (default 5m)
	AmbiguityWindow time.Duration `yaml:"ambiguity_window"` // a UCID on two conversations: prefer the latest active within this window (default 2m)
}

// DefaultConfig pauses on hold and on end, keeps CTI conversations 5 minutes for their media and treats two
// conversations carrying one UCID within 2 minutes of each other as ambiguous.
func DefaultConfig() Config {
	return Config{Hold: HoldPause, End: EndPause, CallTTL: 5 * time.Minute, AmbiguityWindow: 2 * time.Minute}
}

// Validate reports every problem at once.
func (c Config) Validate() error {
	var errs []error
	if c.Hold != HoldPause && c.Hold != HoldMark {
		errs = append(errs, fmt.Errorf("matcher.hold %q: want pause or mark", c.Hold))
	}
	if c.End != EndPause && c.End != EndLeave {
		errs = append(errs, fmt.Errorf("matcher.end %q: want pause or leave", c.End))
	}
	if c.CallTTL <= 0 {
		errs = append(errs, errors.New("matcher.call_ttl must be positive"))
	}
	if c.AmbiguityWindow < 0 {
		errs = append(errs, errors.New("matcher.ambiguity_window must not be negative"))
	}
	return errors.Join(errs...)
}

// ttl is how long a CTI observation waits for media: ENDED conversations go sooner.
func (c Config) ttl(call Call) time.Duration {
	if call.State == CallEnded {
		return min(c.CallTTL, endedTTL)
	}
	return c.CallTTL
}

// mediaState is what the matcher wants from (or last got from) a session.
type mediaState uint8

const (
	mediaIdle   mediaState = iota // never activated: sessions are handed over inactive (SIPREC) or paused (AudioHook)
	mediaActive                   // recording
	mediaPaused                   // recorded before, paused now
)

func (s mediaState) String() string {
	switch s {
	case mediaActive:
		return "active"
	case mediaPaused:
		return "paused"
	}
	return "idle"
}

// stopped is "not recording" from cur: a session never activated stays idle (nothing to pause).
func stopped(cur mediaState) mediaState {
	if cur == mediaIdle {
		return mediaIdle
	}
	return mediaPaused
}

// desired is the media state a session should be in after observation c, from cur (the state wanted
// so far) and whether the session has ever been wanted active:
//   - a secure pause always pauses;
//   - ENDED pauses (end: pause) or leaves the media as it is (end: leave);
//   - HELD pauses (hold: pause); with hold: mark the media keeps recording, and a session bound while the
//     call is held with an agent on it starts recording (the hold is part of the recording);
//   - ACTIVE with at least one agent records;
//   - a call with no agent, or a consultation, never starts a recording. A consultation (Consult without
//     Transfer or Conference) only keeps a session that never recorded the call idle: the consult flag stays
//     on the conversation after a cancelled consult, and the customer's recording must resume then.
func (c Config) desired(call Call, cur mediaState, everActive bool) mediaState {
	consultOnly := call.Consult && !call.Transfer && !call.Conference && !everActive
	switch {
	case call.SecurePause:
		return stopped(cur)
	case call.State == CallEnded:
		if c.End == EndPause {
			return stopped(cur)
		}
		return cur
	case call.State == CallHeld:
		if c.Hold == HoldPause {
			return stopped(cur)
		}
		if len(call.Agents) > 0 && !consultOnly {
			return mediaActive
		}
		return cur
	case call.State == CallActive:
		if len(call.Agents) == 0 || consultOnly {
			return stopped(cur)
		}
		return mediaActive
	}
	return cur
}

// notRecordedReason says why a session matched to a call was never asked to record, from the last
// observation of the call: what the operator reads for "why was this call not recorded?".
func notRecordedReason(last Call) string {
	switch {
	case last.Consult && !last.Transfer && !last.Conference:
		return "a consultation: a session matched while agents consult each other is not recorded"
	case last.SecurePause:
		return "the call was in a secure pause"
	case last.State == CallEnded:
		return "the call had ended"
	case last.State == CallHeld:
		return "the call stayed on hold"
	case len(last.Agents) == 0:
		return "no tracked agent was on the call"
	}
	return "the recording policy kept it idle"
}

// Segment reasons.
const (
	ReasonMatched     = "matched"
	ReasonHold        = "hold"
	ReasonResume      = "resume"
	ReasonTransfer    = "transfer"
	ReasonConference  = "conference"
	ReasonSecurePause = "secure_pause"
	ReasonEnd         = "end"
)

// segmentChanged: a new segment starts on every change of state, agent set or secure pause.
func segmentChanged(prev, next Call) bool {
	return prev.State != next.State || prev.SecurePause != next.SecurePause || !sameAgents(prev.Agents, next.Agents)
}

// segmentReason names why next starts a segment after prev.
func segmentReason(prev, next Call) string {
	agentsChanged := !sameAgents(prev.Agents, next.Agents)
	switch {
	case next.State == CallEnded:
		return ReasonEnd
	case next.SecurePause && !prev.SecurePause:
		return ReasonSecurePause
	case next.State == CallHeld && prev.State != CallHeld:
		return ReasonHold
	case agentsChanged && next.Conference:
		return ReasonConference
	case agentsChanged && next.Transfer:
		return ReasonTransfer
	case agentsChanged && containsAgents(next.Agents, prev.Agents):
		return ReasonConference // someone joined and nobody left
	case agentsChanged && len(next.Agents) > 0 && containsAgents(prev.Agents, next.Agents):
		if prev.State == CallHeld && next.State == CallActive {
			return ReasonResume // the consulted party left and the agent took the customer back
		}
		return ReasonConference // a party of a multi-agent call left
	case agentsChanged && len(next.Agents) > 0:
		return ReasonTransfer
	case next.State == CallHeld:
		return ReasonHold // still held, the last agent left: on its way somewhere
	}
	return ReasonResume
}

func agentIDs(agents []Agent) []string {
	ids := make([]string, 0, len(agents))
	for _, a := range agents {
		if !slices.Contains(ids, a.UserID) {
			ids = append(ids, a.UserID)
		}
	}
	slices.Sort(ids)
	return ids
}

func sameAgents(a, b []Agent) bool { return slices.Equal(agentIDs(a), agentIDs(b)) }

// containsAgents: every agent of sub is in super.
func containsAgents(super, sub []Agent) bool {
	for _, a := range sub {
		if !slices.ContainsFunc(super, func(b Agent) bool { return b.UserID == a.UserID }) {
			return false
		}
	}
	return true
}
