// Package cti defines the call events siphook consumes from CTI sources (Genesys Cloud notifications, the
// webhook): one normalised Event per change of a conversation's derived recording state. Sources live in
// sub-packages; the matcher consumes Events. It imports matcher only, for the key types.
package cti

import (
	"context"
	"time"

	"github.com/siphook/siphook/matcher"
)

// State is a conversation's recording state as derived from the CTI feed.
type State string

const (
	// StateActive: a customer leg and a tracked agent leg are connected and not held: record.
	StateActive State = "ACTIVE"
	// StateHeld: connected, but the customer or the tracked agent is on hold (or in a secure pause).
	StateHeld State = "HELD"
	// StateEnded: the customer left, or no tracked agent is connected any more.
	StateEnded State = "ENDED"
)

// Agent is a tracked agent (a Genesys user) on the conversation.
type Agent struct {
	UserID        string `json:"user_id"`
	Name          string `json:"name,omitempty"`
	Email         string `json:"email,omitempty"`
	ParticipantID string `json:"participant_id,omitempty"`
	Held          bool   `json:"held,omitempty"`
}

// Event is one change of a conversation's derived state.
type Event struct {
	Tenant         string    `json:"tenant"`          // the configured tenant (Genesys organisation) it came from
	Source         string    `json:"source"`          // "genesys", "webhook"
	ConversationID string    `json:"conversation_id"` // lower-case UUID
	State          State     `json:"state"`
	Agents         []Agent   `json:"agents,omitempty"` // tracked agents connected now
	QueueID        string    `json:"queue_id,omitempty"`
	Direction      string    `json:"direction,omitempty"` // inbound | outbound
	ANI            string    `json:"ani,omitempty"`       // customer address
	DNIS           string    `json:"dnis,omitempty"`
	UUI            []string  `json:"uui,omitempty"`   // every raw UUI / UCID form seen (uuiData, configured attributes)
	UCIDs          []string  `json:"ucids,omitempty"` // canonical 20-digit UCIDs decoded from them
	Transfer       bool      `json:"transfer,omitempty"`
	Consult        bool      `json:"consult,omitempty"`
	Conference     bool      `json:"conference,omitempty"`
	SecurePause    bool      `json:"secure_pause,omitempty"`
	Time           time.Time `json:"time"`                 // when the change happened, by the source's clock
	Received       time.Time `json:"received"`             // when we learned of it, by our clock
	Reconciled     bool      `json:"reconciled,omitempty"` // produced by reconciliation after a gap, not a live event
}

// Keys are the matching keys the event carries: its conversation id and every UCID.
func (e Event) Keys() []matcher.Key {
	keys := []matcher.Key{{Kind: matcher.KeyConversationID, Value: e.ConversationID}}
	for _, u := range e.UCIDs {
		keys = append(keys, matcher.Key{Kind: matcher.KeyUCID, Value: u})
	}
	return keys
}

// Handler receives events. It is called from the source's goroutine and must not block for long.
type Handler func(Event)

// Source is a running CTI feed.
type Source interface {
	// Run delivers events to h until ctx ends or the source fails for good.
	Run(ctx context.Context, h Handler) error
}

// Call is the event as the matcher sees it.
func (e Event) Call() matcher.Call {
	agents := make([]matcher.Agent, len(e.Agents))
	for i, a := range e.Agents {
		agents[i] = matcher.Agent{UserID: a.UserID, Name: a.Name}
	}
	return matcher.Call{
		Tenant: e.Tenant, ConversationID: e.ConversationID, State: matcher.CallState(e.State), Agents: agents,
		Keys: e.Keys(), QueueID: e.QueueID, Direction: e.Direction, ANI: e.ANI, DNIS: e.DNIS,
		Transfer: e.Transfer, Consult: e.Consult, Conference: e.Conference, SecurePause: e.SecurePause,
		Time: e.Time, Received: e.Received,
	}
}
