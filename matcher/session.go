package matcher

import "context"

// KeyKind names what a matching key identifies.
type KeyKind string

const (
	KeyUCID           KeyKind = "ucid"            // Avaya UCID, 20-digit form
	KeyConversationID KeyKind = "conversation_id" // Genesys conversation id, lower-case UUID
)

// Key is one identifier a media session can be matched on.
type Key struct {
	Kind  KeyKind
	Value string
}

// MediaSession is a recording session the matcher drives: SIPREC sessions and AudioHook sessions both
// implement it. Activate starts (or resumes) recording; Pause stops it without ending the session.
type MediaSession interface {
	ID() string
	Keys() []Key
	Activate(ctx context.Context) error
	Pause(ctx context.Context) error
}
