package genesystest

import (
	"slices"
	"time"
)

// Truth states, the values of cti.State (the tracker's derived recording state).
const (
	TruthActive = "ACTIVE"
	TruthHeld   = "HELD"
	TruthEnded  = "ENDED"
	TruthNone   = "" // unknown conversation, internal call, or no tracked agent has connected yet
)

// Truth is the fake's own answer to "what should the recording be doing now" for a conversation, by the
// rule of research §7.2 step 4 applied to the model, for the given tracked users. The soak test compares
// the tracker's final state per conversation with it.
//
//   - No customer or external participant: TruthNone (internal calls are never recorded).
//   - A customer call connected and a tracked agent's call connected: TruthActive, unless the call is
//     held: a tracked connected agent held (with none connected and not held), the customer confined or
//     held, or the conversation in secure pause, which give TruthHeld.
//   - Otherwise, if a tracked agent's call was ever connected: TruthEnded (the customer left, or no
//     tracked agent is connected any more, e.g. during and after a blind transfer).
//   - Otherwise TruthNone.
//
// Monitors (monitoredParticipantId set) are never agents of record.
func (s *Server) Truth(conversationID string, trackedUserIDs []string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	cv := s.convs[conversationID]
	if cv == nil {
		return TruthNone
	}
	cv.recompute(time.Now())
	tracked := func(p *participant) bool { return isAgent(p) && slices.Contains(trackedUserIDs, p.userID) }

	hasCustomer, customerUp, customerHeld := false, false, false
	for _, p := range cv.parts {
		if isCustomer(p) {
			hasCustomer = true
			if p.call.state == stateConnected {
				customerUp = true
				customerHeld = customerHeld || p.call.confined || p.call.held
			}
		}
	}
	if !hasCustomer {
		return TruthNone
	}
	agentUp, agentTalking, everUp := false, false, false
	for _, p := range cv.parts {
		if !tracked(p) {
			continue
		}
		everUp = everUp || !p.call.connected.IsZero()
		if p.call.state == stateConnected {
			agentUp = true
			agentTalking = agentTalking || (!p.call.held && p.call.startHold.IsZero())
		}
	}
	switch {
	case customerUp && agentUp:
		if !agentTalking || customerHeld || cv.securePause {
			return TruthHeld
		}
		return TruthActive
	case everUp:
		return TruthEnded
	}
	return TruthNone
}
