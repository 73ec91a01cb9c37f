package recorder

import "time"

// Document states.
const (
	StateRecording      = "recording"       // written when a recording starts, so a crash leaves a record
	StateCompleted      = "completed"       // the recording ended normally
	StateNeverActivated = "never_activated" // a session that never got audio recorded
	StateFailed         = "failed"
)

// FormatWAVPCM16 is AudioInfo.Format for the files this package writes.
const FormatWAVPCM16 = "wav/pcm16"

// Document is the JSON metadata written beside each recording. It is deliberately general: source-specific
// facts go in Session as strings, so no SIP or AudioHook types leak in.
type Document struct {
	RecordingID  string            `json:"recording_id"`
	Source       string            `json:"source"`            // "siprec", "audiohook"
	State        string            `json:"state"`             // one of the State constants
	Session      map[string]string `json:"session,omitempty"` // source-specific facts: sip_call_id, src_address, transport, …
	Identifiers  []Identifier      `json:"identifiers,omitempty"`
	Participants []Participant     `json:"participants,omitempty"`
	Channels     []ChannelInfo     `json:"channels,omitempty"`
	Events       []Event           `json:"events,omitempty"` // activated, paused, resumed, … in time order
	Pauses       []Pause           `json:"pauses,omitempty"` // stretches of silence by agreement: hold, or paused by us
	Start        time.Time         `json:"start"`
	End          *time.Time        `json:"end,omitempty"`
	DurationSec  float64           `json:"duration_seconds"`
	Audio        *AudioInfo        `json:"audio,omitempty"`        // nil when no audio file exists
	Call         *CallInfo         `json:"call,omitempty"`         // what the CTI feed says about the call; nil when unmatched
	Analytics    *Analytics        `json:"analytics,omitempty"`    // talk, silence, talk-over, voice quality; nil without audio
	Unmatched    string            `json:"unmatched,omitempty"`    // why the recording was never tied to a CTI call
	NotRecorded  string            `json:"not_recorded,omitempty"` // tied to a call, but never asked to record: why
}

// CallInfo is the CTI side of a recording: the conversation it was matched to and what happened on it.
type CallInfo struct {
	Tenant         string        `json:"tenant,omitempty"`
	ConversationID string        `json:"conversation_id"`
	Direction      string        `json:"direction,omitempty"`
	QueueID        string        `json:"queue_id,omitempty"`
	ANI            string        `json:"ani,omitempty"`
	DNIS           string        `json:"dnis,omitempty"`
	Agents         []CallAgent   `json:"agents,omitempty"`
	Segments       []CallSegment `json:"segments,omitempty"`
	MatchedBy      string        `json:"matched_by"` // "ucid 00025000160955721139", "conversation_id be9d…"
	MatchedAt      time.Time     `json:"matched_at"`
	MatchLatencyMs int64         `json:"match_latency_ms"`
	Related        []string      `json:"related_recordings,omitempty"` // other recordings of the same conversation
}

// CallAgent is an agent seen on the call.
type CallAgent struct {
	UserID string `json:"user_id"`
	Name   string `json:"name,omitempty"`
}

// CallSegment is a stretch of the call with one state and set of agents.
type CallSegment struct {
	Start  time.Time   `json:"start"`
	State  string      `json:"state"`
	Agents []CallAgent `json:"agents,omitempty"`
	Reason string      `json:"reason,omitempty"`
}

// Identifier is a key that ties the recording to the outside world, e.g.
// {Kind: "ucid", Value: "00071252811778010124", Raw: "04FA08…", Origin: "User-to-User"}.
type Identifier struct {
	Kind   string `json:"kind"`
	Value  string `json:"value"`
	Raw    string `json:"raw,omitempty"`
	Origin string `json:"origin"`
}

// Participant is a party of the recorded call.
type Participant struct {
	ID   string `json:"id"`
	Name string `json:"name,omitempty"`
	AOR  string `json:"aor,omitempty"`
	Role string `json:"role,omitempty"` // "caller", "callee", ""
	Left bool   `json:"left,omitempty"` // gone from the SRC's latest metadata (left a conference, transferred away)
}

// ChannelInfo describes one channel of the audio file.
type ChannelInfo struct {
	Index         int         `json:"index"`
	Label         string      `json:"label,omitempty"`
	ParticipantID string      `json:"participant_id,omitempty"`
	Codec         string      `json:"codec,omitempty"`
	Stats         StreamStats `json:"stats"`
}

// StreamStats are the counters of the stream that fed a channel.
type StreamStats struct {
	Received    uint64 `json:"received"`
	Lost        uint64 `json:"lost"`
	Reordered   uint64 `json:"reordered"`
	Duplicates  uint64 `json:"duplicates"`
	LateSamples uint64 `json:"late_samples"` // samples, not packets: audio that came after its place was written, dropped
	Dropped     uint64 `json:"dropped"`
	// RTP quality (SIPREC streams; zero for AudioHook, which carries no packets of its own).
	Expected   uint64  `json:"expected,omitempty"`    // packets the sequence numbers say were sent
	LossBursts uint64  `json:"loss_bursts,omitempty"` // runs of consecutive lost packets
	JitterMs   float64 `json:"jitter_ms,omitempty"`   // RFC 3550 interarrival jitter at the end of the call
	MOS        float64 `json:"mos,omitempty"`         // ITU-T G.107 E-model estimate for the codec, loss and jitter
}

// Analytics is what the audio of a call says: voice activity per channel, computed while the audio is
// written (the recorder fills Channels, talk-over and silence), and the media's quality (the source fills
// MOS and MediaErrors).
type Analytics struct {
	Channels             []ChannelAnalytics `json:"channels"`
	TalkOverSec          float64            `json:"talk_over_sec"`          // two or more channels speaking at once
	TalkOverRatio        float64            `json:"talk_over_ratio"`        // talk-over time / recorded time
	SilenceSec           float64            `json:"silence_sec"`            // no channel speaking
	SilenceRatio         float64            `json:"silence_ratio"`          // silence time / recorded time
	LongestSilenceSec    float64            `json:"longest_silence_sec"`    // longest stretch with no channel speaking
	MOS                  float64            `json:"mos,omitempty"`          // the lowest of the streams' MOS estimates
	MediaErrors          []MediaError       `json:"media_errors,omitempty"` // in time order, at most MaxMediaErrors
	MediaErrorsTruncated bool               `json:"media_errors_truncated,omitempty"`
}

// ChannelAnalytics is the voice activity of one channel.
type ChannelAnalytics struct {
	Index             int     `json:"index"`
	TalkSec           float64 `json:"talk_sec"`
	SilenceSec        float64 `json:"silence_sec"`
	TalkRatio         float64 `json:"talk_ratio"`
	LongestSilenceSec float64 `json:"longest_silence_sec"`
}

// MaxMediaErrors bounds Analytics.MediaErrors: a stream that breaks every packet must not grow a document
// without limit.
const MaxMediaErrors = 100

// MediaError is something that went wrong with a stream's media: "ssrc_change", "sequence_reset",
// "timestamp_jump", "decrypt_failed", "codec_change".
type MediaError struct {
	At      time.Time `json:"at"`
	Channel int       `json:"channel"`
	Type    string    `json:"type"`
	Detail  string    `json:"detail,omitempty"`
}

// Event is something that happened to the session, such as "activated", "paused" or "resumed".
type Event struct {
	At     time.Time `json:"at"`
	Type   string    `json:"type"`
	Detail string    `json:"detail,omitempty"`
}

// Pause is a stretch of the recording with no audio by agreement: the call was on hold (the SRC made every
// stream inactive) or we paused the recording. The audio holds silence there.
type Pause struct {
	By          string     `json:"by"` // "src" (hold) or "srs" (our pause)
	Start       time.Time  `json:"start"`
	End         *time.Time `json:"end,omitempty"` // nil while it lasts
	OffsetSec   float64    `json:"offset_sec"`    // where it starts in the audio
	DurationSec float64    `json:"duration_sec"`
}

// AudioInfo describes the audio file.
type AudioInfo struct {
	File       string `json:"file"` // path relative to Config.Dir, slash-separated
	Format     string `json:"format"`
	SampleRate int    `json:"sample_rate"`
	Channels   int    `json:"channels"`
	Samples    int64  `json:"samples"`          // per channel
	SHA256     string `json:"sha256,omitempty"` // hex SHA-256 of the WAV file once finalised
}

// fill sets the fields the recorder owns when the caller left them empty: the ID, the start, the end (now)
// and the duration (end minus start).
func (d *Document) fill(id string, start, now time.Time) {
	if d.RecordingID == "" {
		d.RecordingID = id
	}
	if d.Start.IsZero() {
		d.Start = start
	}
	if d.End == nil {
		d.End = &now
	}
	if d.DurationSec == 0 && d.End.After(d.Start) {
		d.DurationSec = d.End.Sub(d.Start).Seconds()
	}
}
