// Package callinfo turns the matcher's annotation of a media session into the call section of its
// recording document. It exists because recorder and matcher may not import each other.
package callinfo

import (
	"github.com/siphook/siphook/matcher"
	"github.com/siphook/siphook/recorder"
)

// Apply writes what an annotation says into doc: the call section when matched, else why not.
func Apply(doc *recorder.Document, a *matcher.Annotation) {
	if a == nil {
		return
	}
	if a.MatchedBy.Value == "" {
		doc.Unmatched = a.Unmatched
		return
	}
	info := &recorder.CallInfo{
		Tenant: a.Tenant, ConversationID: a.ConversationID, Direction: a.Direction, QueueID: a.QueueID,
		ANI: a.ANI, DNIS: a.DNIS, MatchedBy: string(a.MatchedBy.Kind) + " " + a.MatchedBy.Value,
		MatchedAt: a.MatchedAt.UTC(), MatchLatencyMs: a.MatchLatency.Milliseconds(), Related: a.Related,
	}
	doc.NotRecorded = a.NotRecorded
	for _, ag := range a.Agents {
		info.Agents = append(info.Agents, recorder.CallAgent{UserID: ag.UserID, Name: ag.Name})
	}
	for _, s := range a.Segments {
		seg := recorder.CallSegment{Start: s.Start.UTC(), State: string(s.State), Reason: s.Reason}
		for _, ag := range s.Agents {
			seg.Agents = append(seg.Agents, recorder.CallAgent{UserID: ag.UserID, Name: ag.Name})
		}
		info.Segments = append(info.Segments, seg)
	}
	doc.Call = info
}
