package recorder

import (
	"encoding/json"
	"testing"
	"time"
)

func TestDocumentJSON(t *testing.T) {
	start := time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC)
	end := start.Add(90 * time.Second)
	doc := Document{
		RecordingID: "r1",
		Source:      "siprec",
		State:       StateCompleted,
		Session:     map[string]string{"sip_call_id": "abc@host"},
		Identifiers: []Identifier{
			{Kind: "ucid", Value: "00071252811778010124", Raw: "04FA08", Origin: "User-to-User"},
			{Kind: "conversation_id", Value: "c-1", Origin: "x-inin-cnv"},
		},
		Participants: []Participant{{ID: "p1", Name: "Alice", AOR: "sip:alice@example.com", Role: "caller"}, {ID: "p2"}},
		Channels: []ChannelInfo{{
			Index: 0, Label: "1", ParticipantID: "p1", Codec: "PCMU",
			Stats: StreamStats{Received: 1, Lost: 2, Reordered: 3, Duplicates: 4, LateSamples: 5, Dropped: 6},
		}},
		Events:      []Event{{At: start, Type: "activated"}, {At: end, Type: "paused", Detail: "hold"}},
		Start:       start,
		End:         &end,
		DurationSec: 90,
		Audio:       &AudioInfo{File: "2026/11/21/r1.wav", Format: FormatWAVPCM16, SampleRate: 8000, Channels: 2, Samples: 720000},
	}
	const want = `{"recording_id":"r1","source":"siprec","state":"completed",` +
		`"session":{"sip_call_id":"abc@host"},` +
		`"identifiers":[{"kind":"ucid","value":"00071252811778010124","raw":"04FA08","origin":"User-to-User"},` +
		`{"kind":"conversation_id","value":"c-1","origin":"x-inin-cnv"}],` +
		`"participants":[{"id":"p1","name":"Alice","aor":"sip:alice@example.com","role":"caller"},{"id":"p2"}],` +
		`"channels":[{"index":0,"label":"1","participant_id":"p1","codec":"PCMU",` +
		`"stats":{"received":1,"lost":2,"reordered":3,"duplicates":4,"late_samples":5,"dropped":6}}],` +
		`"events":[{"at":"2026-11-21T10:00:00Z","type":"activated"},{"at":"2026-11-21T10:01:30Z","type":"paused","detail":"hold"}],` +
		`"start":"2026-11-21T10:00:00Z","end":"2026-11-21T10:01:30Z","duration_seconds":90,` +
		`"audio":{"file":"2026/11/21/r1.wav","format":"wav/pcm16","sample_rate":8000,"channels":2,"samples":720000}}`

	tests := []struct {
		name string
		doc  Document
		want string
	}{
		{"full", doc, want},
		{"minimal", Document{RecordingID: "r2", State: StateNeverActivated, Start: start},
			`{"recording_id":"r2","source":"","state":"never_activated","start":"2026-11-21T10:00:00Z","duration_seconds":0}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := json.Marshal(tt.doc)
			if err != nil {
				t.Fatal(err)
			}
			if string(b) != tt.want {
				t.Errorf("got  %s\nwant %s", b, tt.want)
			}
		})
	}
}

func TestDocumentFill(t *testing.T) {
	start := time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC)
	now := start.Add(time.Minute)
	earlier := start.Add(30 * time.Second)
	tests := []struct {
		name     string
		doc      Document
		wantID   string
		wantEnd  time.Time
		wantDur  float64
		wantFrom time.Time
	}{
		{"empty", Document{}, "id", now, 60, start},
		{"caller values kept", Document{RecordingID: "mine", Start: earlier, End: &now, DurationSec: 7}, "mine", now, 7, earlier},
		{"duration from caller end", Document{End: &earlier}, "id", earlier, 30, start},
		{"end before start gives no duration", Document{Start: now.Add(time.Hour)}, "id", now, 0, now.Add(time.Hour)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := tt.doc
			d.fill("id", start, now)
			if d.RecordingID != tt.wantID || !d.End.Equal(tt.wantEnd) || d.DurationSec != tt.wantDur || !d.Start.Equal(tt.wantFrom) {
				t.Errorf("fill: id %q end %v duration %v start %v; want %q %v %v %v",
					d.RecordingID, d.End, d.DurationSec, d.Start, tt.wantID, tt.wantEnd, tt.wantDur, tt.wantFrom)
			}
		})
	}
}
