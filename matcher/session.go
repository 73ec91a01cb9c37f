package matcher

import (
	"context"
	"time"
)

// KeyKind names what a matching key identifies.
type KeyKind string

const (
	KeyUCID           KeyKind = "ucid"            // Avaya UCID, 20-digit form
	KeyConversationID KeyKind = "conversation_id" // Genesys conversation id, lower-case UUID
)

// Key is one identifier a media session or a call can be matched on.
type Key struct {
	Kind  KeyKind
	Value string
}

// MediaSession is a recording session the matcher drives: SIPREC sessions and AudioHook sessions both
// implement it. Activate starts (or resumes) recording; Pause stops it without ending the session.
// Annotate hands the session what the matcher knows, for its metadata document.
type MediaSession interface {
	ID() string
	Keys() []Key
	Activate(ctx context.Context) error
	Pause(ctx context.Context) error
	Annotate(Annotation)
}

// Binder is what media servers tell the matcher: a session is ready to be matched, its keys changed, or it
// ended. tenant scopes the keys ("" matches calls of any tenant).
type Binder interface {
	AddSession(s MediaSession, tenant string)
	UpdateSession(s MediaSession)
	RemoveSession(s MediaSession)
}

// CallState is a conversation's recording state as the CTI feed derives it.
type CallState string

const (
	CallActive CallState = "ACTIVE"
	CallHeld   CallState = "HELD"
	CallEnded  CallState = "ENDED"
)

// Agent is a tracked agent on a call.
type Agent struct {
	UserID string `json:"user_id"`
	Name   string `json:"name,omitempty"`
}

// Call is one CTI observation of a conversation (the matcher's view of a cti.Event).
type Call struct {
	Tenant         string
	ConversationID string
	State          CallState
	Agents         []Agent
	Keys           []Key // the conversation id and every UCID
	QueueID        string
	Direction      string
	ANI, DNIS      string
	Transfer       bool
	Consult        bool
	Conference     bool
	SecurePause    bool
	Time           time.Time // when it happened (source clock)
	Received       time.Time // when it reached siphook
}

// Segment is a stretch of a recording with one CTI state and set of agents.
type Segment struct {
	Start  time.Time `json:"start"`
	State  CallState `json:"state"`
	Agents []Agent   `json:"agents,omitempty"`
	Reason string    `json:"reason,omitempty"` // matched, hold, resume, transfer, conference, secure_pause, end
}

// Annotation is what the matcher tells a media session about its call, for the metadata document.
type Annotation struct {
	Tenant         string
	ConversationID string
	Direction      string
	QueueID        string
	ANI, DNIS      string
	Agents         []Agent   // every agent seen on the recording
	Segments       []Segment // in time order
	MatchedBy      Key       // the key that matched; zero when unmatched
	MatchedAt      time.Time
	MatchLatency   time.Duration // from the later of media and CTI arriving to the match
	Unmatched      string        // why the session was never matched
	NotRecorded    string        // matched but never asked to record: why (set when the session is removed)
	Related        []string      // ids of other media sessions recording the same conversation
}

// Reporter is optionally implemented by a MediaSession so the live view shows what it is and what its media
// is doing (in immediate activation a session records without the matcher asking).
type Reporter interface {
	Source() string     // "siprec", "audiohook"
	MediaState() string // SessionWaiting, SessionActive or SessionPaused
}

// Live media states, as SessionInfo.State reports them.
const (
	SessionWaiting = "waiting" // not recording yet: unmatched, or matched and kept idle by the policy
	SessionActive  = "active"  // recording
	SessionPaused  = "paused"  // recorded, paused now
)

// SessionInfo is a live media session as the matcher sees it: the operator's "what is being recorded now,
// and why not that one".
type SessionInfo struct {
	ID             string
	Source         string
	Tenant         string
	Keys           []Key
	Since          time.Time // when the session was added
	State          string
	ConversationID string  // "" while unmatched
	Agents         []Agent // agents seen on the recording
	MatchedBy      Key
	WaitingReason  string // set when State is SessionWaiting
}
