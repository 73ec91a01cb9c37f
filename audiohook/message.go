package audiohook

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// The AudioHook wire format: JSON text messages in both directions, validated the way the reference
// implementation (purecloudlabs/audiohook-reference-implementation, protocol/validators.ts) validates them,
// so that a message we accept is one Genesys could have sent and a message we send is one Genesys accepts.
// Where we differ, we are more lenient on input (unknown fields, optional position) and never on output.

// ProtocolVersion is the only AudioHook protocol version.
const ProtocolVersion = "2"

// MaxMessageSize is the largest text or binary message accepted, as in the reference implementation.
const MaxMessageSize = 65535

// NullUUID is the all-zero UUID: the conversation and participant id of a connection probe.
const NullUUID = "00000000-0000-0000-0000-000000000000"

// Message types, client → server.
const (
	TypeOpen              = "open"
	TypePing              = "ping"
	TypeClose             = "close"
	TypePaused            = "paused"
	TypeResumed           = "resumed"
	TypeDiscarded         = "discarded"
	TypeUpdate            = "update"
	TypeError             = "error"
	TypeDTMF              = "dtmf"               // Audio Connector; ignored by a Monitor server
	TypePlaybackStarted   = "playback_started"   // Audio Connector; ignored by a Monitor server
	TypePlaybackCompleted = "playback_completed" // Audio Connector; ignored by a Monitor server
)

// Message types, server → client.
const (
	TypeOpened     = "opened"
	TypePong       = "pong"
	TypeClosed     = "closed"
	TypePause      = "pause"
	TypeResume     = "resume"
	TypeDisconnect = "disconnect"
	TypeEvent      = "event"
	TypeUpdated    = "updated"
	TypeReconnect  = "reconnect"
)

// Close reasons (close.parameters.reason).
const (
	CloseEnd        = "end"
	CloseError      = "error"
	CloseDisconnect = "disconnect" // the client answers a server disconnect
	CloseReconnect  = "reconnect"
)

// Disconnect reasons (disconnect.parameters.reason).
const (
	DisconnectCompleted    = "completed"
	DisconnectUnauthorized = "unauthorized"
	DisconnectError        = "error"
	// DisconnectRejected refuses a reconnection attempt. Newer spec only: the reference client rejects it.
	DisconnectRejected = "rejected"
)

// Media parameter values.
const (
	MediaTypeAudio  = "audio"
	FormatPCMU      = "PCMU"
	FormatL16       = "L16" // 16-bit little-endian (the reference code's byte order)
	ChannelExternal = "external"
	ChannelInternal = "internal"
)

// Message is one AudioHook text message in either direction.
type Message struct {
	Version    string          `json:"version"`
	Type       string          `json:"type"`
	ID         string          `json:"id"`
	Seq        int64           `json:"seq"`
	ServerSeq  *int64          `json:"serverseq,omitempty"` // client → server: last server seq seen
	ClientSeq  *int64          `json:"clientseq,omitempty"` // server → client: last client seq seen
	Position   *Duration       `json:"position,omitempty"`  // client → server
	Parameters json.RawMessage `json:"parameters"`          // always sent, {} when empty
}

// emptyObject is what an empty Parameters is sent as: the reference client rejects a message without
// parameters and then fails every later one on its seq check (pipecat PR #4093).
var emptyObject = json.RawMessage("{}")

// MarshalJSON writes the message with parameters {} when none are set, so that no code path can send the
// message Genesys rejects.
func (m Message) MarshalJSON() ([]byte, error) {
	type plain Message // without the method, to avoid recursion
	if len(m.Parameters) == 0 {
		m.Parameters = emptyObject
	}
	return json.Marshal(plain(m))
}

// Params decodes the parameters into p. Unknown fields are ignored, as the reference does; a field of the
// wrong JSON type is an error.
func (m *Message) Params(p any) error {
	raw := m.Parameters
	if len(raw) == 0 {
		raw = emptyObject
	}
	if err := json.Unmarshal(raw, p); err != nil {
		return fmt.Errorf("audiohook: %s parameters: %w", m.Type, err)
	}
	return nil
}

// NewMessage builds a message of type typ with the parameters marshalled; nil parameters become {}. The
// caller sets ServerSeq/ClientSeq and Position.
func NewMessage(typ, id string, seq int64, params any) (*Message, error) {
	raw := emptyObject
	if params != nil {
		b, err := json.Marshal(params)
		if err != nil {
			return nil, fmt.Errorf("audiohook: %s parameters: %w", typ, err)
		}
		switch {
		case string(b) == "null": // a nil pointer or map: no parameters
		case !isObject(b):
			return nil, fmt.Errorf("audiohook: %s parameters: not a JSON object", typ)
		default:
			raw = b
		}
	}
	return &Message{Version: ProtocolVersion, Type: typ, ID: id, Seq: seq, Parameters: raw}, nil
}

// ProtocolError is a message that breaks the protocol. Reason is short and never quotes the offending
// message, so it can go into a disconnect's info field (the client logs it; it must carry no caller data).
type ProtocolError struct{ Reason string }

func (e *ProtocolError) Error() string { return "audiohook: protocol error: " + e.Reason }

func protoErr(reason string) error { return &ProtocolError{Reason: reason} }

// DecodeClientMessage parses and validates a client → server text message: size, JSON object, version,
// id (a UUID), seq ≥ 1, serverseq ≥ 0, position (when present), parameters (an object), a known type and
// that type's parameters. Sequencing against the session (seq = last+1, serverseq ≤ ours, id = the session's)
// is the session's job. The error is a *ProtocolError.
func DecodeClientMessage(b []byte) (*Message, error) {
	m, err := decodeBase(b)
	if err != nil {
		return nil, err
	}
	if m.ServerSeq == nil || *m.ServerSeq < 0 {
		return nil, protoErr("invalid serverseq")
	}
	check, ok := clientParams[m.Type]
	if !ok {
		return nil, protoErr("unknown message type")
	}
	if err := check(m.Parameters); err != nil {
		return nil, protoErr("invalid " + m.Type + " parameters: " + err.Error())
	}
	return m, nil
}

// DecodeServerMessage is DecodeClientMessage for server → client messages (clientseq ≥ 0 required instead
// of serverseq): the checks the reference client applies to what it receives.
func DecodeServerMessage(b []byte) (*Message, error) {
	m, err := decodeBase(b)
	if err != nil {
		return nil, err
	}
	if m.ClientSeq == nil || *m.ClientSeq < 0 {
		return nil, protoErr("invalid clientseq")
	}
	check, ok := serverParams[m.Type]
	if !ok {
		return nil, protoErr("unknown message type")
	}
	if err := check(m.Parameters); err != nil {
		return nil, protoErr("invalid " + m.Type + " parameters: " + err.Error())
	}
	return m, nil
}

// decodeBase checks what both directions share.
func decodeBase(b []byte) (*Message, error) {
	if len(b) > MaxMessageSize {
		return nil, protoErr("message larger than " + strconv.Itoa(MaxMessageSize) + " bytes")
	}
	if !isObject(b) {
		return nil, protoErr("not a JSON object")
	}
	var m Message
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, protoErr(jsonReason(err))
	}
	switch {
	case m.Version != ProtocolVersion:
		return nil, protoErr("invalid version")
	case !IsUUID(m.ID):
		return nil, protoErr("invalid id")
	case m.Seq < 1:
		return nil, protoErr("invalid seq")
	case m.Parameters == nil:
		return nil, protoErr("missing parameters")
	case !isObject(m.Parameters):
		return nil, protoErr("parameters not an object")
	}
	return &m, nil
}

// jsonReason names what was wrong without quoting the input: the struct field (our own name) or the kind
// of error.
func jsonReason(err error) string {
	var syntax *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syntax):
		return "malformed JSON"
	case errors.As(err, &typ) && typ.Field != "":
		return "invalid " + typ.Field
	case errors.Is(err, errDuration):
		return "invalid position" // the only duration at the top level
	}
	return "malformed message"
}

// isObject reports whether b is (at least the start of) a JSON object. json.Unmarshal has checked the rest.
func isObject(b []byte) bool {
	b = bytes.TrimLeft(b, " \t\r\n")
	return len(b) > 0 && b[0] == '{'
}

// IsUUID reports whether s is a UUID as the reference accepts it: versions 1–5 with the RFC 4122 variant, in
// either case, or the null UUID.
func IsUUID(s string) bool {
	if s == NullUUID {
		return true
	}
	if len(s) != 36 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		case 14: // version
			if c < '1' || c > '5' {
				return false
			}
		case 19: // variant
			if !strings.ContainsRune("89abAB", rune(c)) {
				return false
			}
		default:
			if !isHex(c) {
				return false
			}
		}
	}
	return true
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

var languageRE = regexp.MustCompile(`^[a-z]{2,3}-[A-Za-z]{2,3}$`)

// IsLanguage reports whether s is a language code as AudioHook writes them ("en-US", "cmn-CN").
func IsLanguage(s string) bool { return languageRE.MatchString(s) }

// Duration is an AudioHook duration: ISO 8601 with seconds only ("PT0S", "PT1.6S", "PT0.000909048S"),
// non-negative, nanosecond precision. It is written exactly, never in exponent notation and never rounded:
// positions are counted in samples and Genesys asks servers not to round them.
type Duration time.Duration

var errDuration = errors.New("audiohook: invalid duration")

// maxSeconds is the whole seconds a time.Duration holds.
const maxSeconds = int64(1<<63-1) / int64(time.Second)

// ParseDuration parses ^PT(\d*\.)?\d+S$. Digits beyond nanoseconds are rounded half up.
func ParseDuration(s string) (Duration, error) {
	num, ok := strings.CutPrefix(s, "PT")
	if ok {
		num, ok = strings.CutSuffix(num, "S")
	}
	if !ok {
		return 0, fmt.Errorf("%w: %q", errDuration, s)
	}
	whole, frac, dot := strings.Cut(num, ".")
	if !allDigits(whole) || !allDigits(frac) || frac == "" && (dot || whole == "") {
		return 0, fmt.Errorf("%w: %q", errDuration, s)
	}
	var secs int64
	if whole != "" {
		var err error
		if secs, err = strconv.ParseInt(whole, 10, 64); err != nil || secs > maxSeconds {
			return 0, fmt.Errorf("%w: %q out of range", errDuration, s)
		}
	}
	var ns int64
	for i := range 9 {
		ns *= 10
		if i < len(frac) {
			ns += int64(frac[i] - '0')
		}
	}
	if len(frac) > 9 && frac[9] >= '5' {
		ns++ // may reach 1e9: still exact, the sum below carries it
	}
	if secs == maxSeconds && ns > int64(1<<63-1)-maxSeconds*int64(time.Second) {
		return 0, fmt.Errorf("%w: %q out of range", errDuration, s)
	}
	return Duration(secs*int64(time.Second) + ns), nil
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// String formats d as on the wire. A negative d, which the protocol cannot carry, gets a leading minus so
// that logs still show it; MarshalJSON refuses it.
func (d Duration) String() string {
	if d < 0 {
		return "-" + formatDuration(uint64(-d)) // uint64 conversion keeps -MinInt64 right
	}
	return formatDuration(uint64(d))
}

func formatDuration(n uint64) string {
	secs, ns := n/uint64(time.Second), n%uint64(time.Second)
	b := make([]byte, 0, 24)
	b = append(b, "PT"...)
	b = strconv.AppendUint(b, secs, 10)
	if ns != 0 {
		frac := strconv.AppendUint(nil, ns+uint64(time.Second), 10)[1:] // 9 digits with leading zeros
		b = append(b, '.')
		b = append(b, bytes.TrimRight(frac, "0")...)
	}
	return string(append(b, 'S'))
}

// MarshalJSON writes d as a JSON string; negative durations are an error.
func (d Duration) MarshalJSON() ([]byte, error) {
	if d < 0 {
		return nil, fmt.Errorf("%w: negative %s", errDuration, time.Duration(d))
	}
	return strconv.AppendQuote(nil, d.String()), nil
}

// UnmarshalJSON reads a duration string. null leaves d unchanged, as encoding/json expects.
func (d *Duration) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		return nil
	}
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("%w: not a string", errDuration)
	}
	v, err := ParseDuration(s)
	if err != nil {
		return err
	}
	*d = v
	return nil
}

// MediaParameter is one media format: offered in open (a list), chosen in opened (one of the offered,
// unmodified, or none).
type MediaParameter struct {
	Type     string   `json:"type"`
	Format   string   `json:"format"`
	Channels []string `json:"channels"` // in interleaving order: index 0 is byte (or sample) 0 of each frame
	Rate     int      `json:"rate"`
}

// SampleSize is the bytes one sample instant takes in a frame: channels × bytes per sample (PCMU 1, L16 2),
// 0 for an unknown format. Audio frames must be a multiple of it.
func (p MediaParameter) SampleSize() int {
	switch p.Format {
	case FormatPCMU:
		return len(p.Channels)
	case FormatL16:
		return 2 * len(p.Channels)
	}
	return 0
}

// Equal reports whether p and q are the same media, channel order included (the client accepts only an
// unmodified copy of one it offered).
func (p MediaParameter) Equal(q MediaParameter) bool {
	return p.Type == q.Type && p.Format == q.Format && p.Rate == q.Rate && slices.Equal(p.Channels, q.Channels)
}

func (p MediaParameter) validate() error {
	switch {
	case p.Type != MediaTypeAudio:
		return errors.New("media type")
	case p.Format != FormatPCMU && p.Format != FormatL16:
		return errors.New("media format")
	case p.Rate <= 0:
		return errors.New("media rate")
	case len(p.Channels) == 0:
		return errors.New("media channels")
	}
	seen := map[string]bool{}
	for _, c := range p.Channels {
		if c != ChannelExternal && c != ChannelInternal || seen[c] {
			return errors.New("media channels")
		}
		seen[c] = true
	}
	return nil
}

// Participant is the monitored party of the conversation (the customer).
type Participant struct {
	ID      string `json:"id"`
	ANI     string `json:"ani"`
	ANIName string `json:"aniName"`
	DNIS    string `json:"dnis"`
}

// ContinuedSession names an earlier session that a reconnecting session continues.
type ContinuedSession struct {
	ID        string `json:"id"`
	ServerSeq int64  `json:"serverseq"`
	ClientSeq int64  `json:"clientseq"`
}

// OpenParameters are the parameters of open.
type OpenParameters struct {
	OrganizationID     string             `json:"organizationId"`
	ConversationID     string             `json:"conversationId"` // NullUUID: a connection probe
	Participant        Participant        `json:"participant"`
	Media              []MediaParameter   `json:"media"` // the offer, in order of preference
	Language           string             `json:"language,omitempty"`
	SupportedLanguages bool               `json:"supportedLanguages,omitempty"` // the client asks for opened.supportedLanguages
	ContinuedSessions  []ContinuedSession `json:"continuedSessions,omitempty"`
	CustomConfig       json.RawMessage    `json:"customConfig,omitempty"` // an object when present
}

// OpenedParameters are the parameters of opened.
type OpenedParameters struct {
	Media []MediaParameter `json:"media"` // zero or one of the offered; sent as [] when empty, never null
	// StartPaused is sent only when true: the reference server sends false, the client treats absent as
	// false, and leaving it out keeps the message to what matters.
	StartPaused        bool      `json:"startPaused,omitempty"`
	DiscardTo          *Duration `json:"discardTo,omitempty"`
	SupportedLanguages []string  `json:"supportedLanguages,omitempty"`
}

// MarshalJSON writes a nil Media as []: the client rejects opened without media.
func (p OpenedParameters) MarshalJSON() ([]byte, error) {
	type plain OpenedParameters
	if p.Media == nil {
		p.Media = []MediaParameter{}
	}
	return json.Marshal(plain(p))
}

// PingParameters are the parameters of ping.
type PingParameters struct {
	RTT *Duration `json:"rtt,omitempty"` // the client's measure of the previous ping/pong
}

// CloseParameters are the parameters of close.
type CloseParameters struct {
	Reason string `json:"reason"` // CloseEnd, CloseError, CloseDisconnect, CloseReconnect
}

// DiscardedParameters are the parameters of discarded and of resumed: the client did not send the audio
// from Start for Discarded (stream time), which the server's timeline must skip.
type DiscardedParameters struct {
	Start     Duration `json:"start"`
	Discarded Duration `json:"discarded"`
}

// UpdateParameters are the parameters of update.
type UpdateParameters struct {
	Language string `json:"language"`
}

// ErrorParameters are the parameters of a client error.
type ErrorParameters struct {
	Code       int       `json:"code"`
	Message    string    `json:"message"`
	RetryAfter *Duration `json:"retryAfter,omitempty"` // with 429
}

// DisconnectParameters are the parameters of disconnect. Info is logged by Genesys: nothing sensitive.
type DisconnectParameters struct {
	Reason string `json:"reason"` // DisconnectCompleted, DisconnectUnauthorized, DisconnectError, DisconnectRejected
	Info   string `json:"info,omitempty"`
}

// Parameter checks per type. They decode with the same encoding/json rules as Params (same field names,
// same case folding), so what they accept is what Params later returns; pointers tell absent from zero.
var clientParams = map[string]func(json.RawMessage) error{
	TypeOpen:              checkOpen,
	TypePing:              checkInto[PingParameters](nil),
	TypeClose:             checkClose,
	TypePaused:            anyObject,
	TypeResumed:           checkDiscarded,
	TypeDiscarded:         checkDiscarded,
	TypeUpdate:            checkUpdate,
	TypeError:             checkError,
	TypeDTMF:              anyObject,
	TypePlaybackStarted:   anyObject,
	TypePlaybackCompleted: anyObject,
}

var serverParams = map[string]func(json.RawMessage) error{
	TypeOpened:     checkOpened,
	TypePong:       anyObject,
	TypeClosed:     anyObject,
	TypePause:      anyObject,
	TypeResume:     anyObject,
	TypeDisconnect: checkDisconnect,
	TypeEvent:      checkEvent,
	TypeUpdated:    anyObject,
	TypeReconnect:  checkInto[struct{ Info *string }](nil),
}

// The reasons below end up in ProtocolError.Reason after "invalid <type> parameters: ".
var (
	errParamTypes = errors.New("wrong field type")
	errParamValue = errors.New("missing or invalid field")
)

func anyObject(json.RawMessage) error { return nil } // decodeBase has checked it is an object

var (
	checkClose = checkInto(func(p CloseParameters) bool {
		return oneOf(p.Reason, CloseEnd, CloseError, CloseDisconnect, CloseReconnect)
	})
	checkUpdate     = checkInto(func(p UpdateParameters) bool { return IsLanguage(p.Language) })
	checkError      = checkInto(func(p struct{ Code *int }) bool { return p.Code != nil }) // matches "code"
	checkDisconnect = checkInto(func(p DisconnectParameters) bool {
		return oneOf(p.Reason, DisconnectCompleted, DisconnectUnauthorized, DisconnectError, DisconnectRejected)
	})
)

// checkInto decodes into T (type errors fail) and applies ok, if any.
func checkInto[T any](ok func(T) bool) func(json.RawMessage) error {
	return func(raw json.RawMessage) error {
		var p T
		if json.Unmarshal(raw, &p) != nil {
			return errParamTypes
		}
		if ok != nil && !ok(p) {
			return errParamValue
		}
		return nil
	}
}

func oneOf(s string, set ...string) bool { return slices.Contains(set, s) }

func checkDiscarded(raw json.RawMessage) error {
	return checkInto(func(p struct {
		Start     *Duration `json:"start"`
		Discarded *Duration `json:"discarded"`
	}) bool {
		return p.Start != nil && p.Discarded != nil
	})(raw)
}

func checkOpen(raw json.RawMessage) error {
	var p OpenParameters
	if json.Unmarshal(raw, &p) != nil {
		return errParamTypes
	}
	switch {
	case !IsUUID(p.OrganizationID):
		return errors.New("organizationId")
	case !IsUUID(p.ConversationID):
		return errors.New("conversationId")
	case !IsUUID(p.Participant.ID): // also catches a missing participant
		return errors.New("participant")
	case p.Media == nil: // absent or null; [] is a valid (empty) offer
		return errors.New("media")
	case p.Language != "" && !IsLanguage(p.Language):
		return errors.New("language")
	case p.CustomConfig != nil && !isObject(p.CustomConfig):
		return errors.New("customConfig")
	}
	for _, m := range p.Media {
		if err := m.validate(); err != nil {
			return err
		}
	}
	for _, c := range p.ContinuedSessions {
		if !IsUUID(c.ID) || c.ServerSeq < 0 || c.ClientSeq < 0 {
			return errors.New("continuedSessions")
		}
	}
	return nil
}

func checkOpened(raw json.RawMessage) error {
	var p OpenedParameters
	if json.Unmarshal(raw, &p) != nil {
		return errParamTypes
	}
	if p.Media == nil {
		return errors.New("media")
	}
	for _, m := range p.Media {
		if err := m.validate(); err != nil {
			return err
		}
	}
	return nil
}

func checkEvent(raw json.RawMessage) error {
	var p struct {
		Entities *[]struct {
			Type *string         `json:"type"`
			Data json.RawMessage `json:"data"`
		} `json:"entities"`
	}
	if json.Unmarshal(raw, &p) != nil {
		return errParamTypes
	}
	if p.Entities == nil {
		return errors.New("entities")
	}
	for _, e := range *p.Entities {
		if e.Type == nil || e.Data == nil {
			return errors.New("entities")
		}
	}
	return nil
}
