// Package genesys is the Genesys Cloud CTI source: it follows tracked agents' conversations through the Notification Service and turns conversation snapshots into cti.Events.
package genesys

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// maxSnapshotBytes bounds one notification message or REST body. A conversation snapshot with a few dozen
// participants is tens of kilobytes; anything near this size is not a conversation we can use.
const maxSnapshotBytes = 8 << 20

// Envelope is one message on a notification channel (research/genesys-cti.md §2.3). There is no sequence
// number; metadata.CorrelationId identifies one publication.
type Envelope struct {
	TopicName string          `json:"topicName"`
	Version   string          `json:"version"`
	EventBody json.RawMessage `json:"eventBody"`
	Metadata  struct {
		CorrelationID string `json:"CorrelationId"`
	} `json:"metadata"`
}

// Conversation is a full conversation snapshot: the v2.users.{id}.conversations event body (§2.6) or the
// REST GET /api/v2/conversations[/calls]/{id} body (§4.2), reduced to what the tracker reads.
type Conversation struct {
	ID                        string        `json:"id"`
	Participants              []Participant `json:"participants"`
	RecentTransfers           []Transfer    `json:"recentTransfers"`
	ConsultationConversations []Ref         `json:"consultationConversations"`
	SecurePause               bool          `json:"securePause"`
}

// Transfer is one entry of recentTransfers.
type Transfer struct {
	ID           string `json:"id"`
	State        string `json:"state"`        // pending|active|complete|canceled|failed|timeout|unknown
	TransferType string `json:"transferType"` // attended|unattended
}

// Ref is a reference to another conversation (consultationConversations, associatedConversation).
type Ref struct {
	ID string `json:"id"`
}

// Participant is one participant of a conversation. A user can appear as several participants (one per
// offer, §4.2); monitors, coaches and barging supervisors carry the id of the participant they listen to.
type Participant struct {
	ID                     string            `json:"id"`
	UserID                 string            `json:"userId"`
	Name                   string            `json:"name"`
	Purpose                string            `json:"purpose"` // lower-cased: customer, external, agent, user, acd, ivr, …
	QueueID                string            `json:"queueId"`
	Address                string            `json:"address"`
	ConsultParticipantID   string            `json:"consultParticipantId"`
	MonitoredParticipantID string            `json:"monitoredParticipantId"`
	CoachedParticipantID   string            `json:"coachedParticipantId"`
	BargedParticipantID    string            `json:"bargedParticipantId"`
	ConnectedTime          *time.Time        `json:"connectedTime"`
	EndTime                *time.Time        `json:"endTime"`
	Attributes             map[string]string `json:"attributes"`
	Calls                  []Call            `json:"calls"`
}

// Call is one voice communication of a participant.
type Call struct {
	ID               string     `json:"id"`
	State            string     `json:"state"`          // lower-cased: alerting|dialing|contacting|offering|connected|disconnected|terminated|…
	Direction        string     `json:"direction"`      // lower-cased: inbound|outbound
	DisconnectType   string     `json:"disconnectType"` // lower-cased: endpoint|client|transfer|transfer.consult|…
	UUIData          string     `json:"uuiData"`
	Held             bool       `json:"held"`     // held, this side hears silence
	Confined         bool       `json:"confined"` // held, this side hears hold music
	SecurePause      bool       `json:"securePause"`
	StartHoldTime    *time.Time `json:"startHoldTime"`
	ConnectedTime    *time.Time `json:"connectedTime"`
	DisconnectedTime *time.Time `json:"disconnectedTime"`
	Self             *Address   `json:"self"`
	Other            *Address   `json:"other"`
}

// Address is a call's self or other address.
type Address struct {
	Name              string `json:"name"`
	AddressNormalized string `json:"addressNormalized"`
}

// ParseEnvelope decodes one notification message. It fails only on oversized input or input that is not a
// JSON object; heartbeats, pongs and system messages decode like any other envelope (look at TopicName).
func ParseEnvelope(b []byte) (*Envelope, error) {
	if len(b) > maxSnapshotBytes {
		return nil, fmt.Errorf("genesys: envelope of %d bytes exceeds %d", len(b), maxSnapshotBytes)
	}
	var e Envelope
	if err := json.Unmarshal(b, &e); err != nil {
		return nil, fmt.Errorf("genesys: envelope: %w", err)
	}
	return &e, nil
}

// ParseConversation decodes a conversation snapshot in either shape: the event body of
// v2.users.{id}.conversations (participants with calls[]) or a REST conversation body. REST participants may
// carry the call flattened on the participant (state, held, confined, user{id}, queue{id}, ani, dnis,
// connectedTime, endTime, disconnectType, …); when such a participant has no calls[], one Call is built from
// those fields, with the participant id as its id. Enums are lower-cased; times are parsed leniently (RFC 3339
// with or without fraction or zone, epoch milliseconds) and an unreadable time is left nil. Unknown fields are
// ignored. It fails on oversized input, input that is not a JSON object of the expected types, or a missing id.
func ParseConversation(b []byte) (*Conversation, error) {
	if len(b) > maxSnapshotBytes {
		return nil, fmt.Errorf("genesys: conversation of %d bytes exceeds %d", len(b), maxSnapshotBytes)
	}
	var c Conversation
	if err := json.Unmarshal(b, &c); err != nil {
		return nil, fmt.Errorf("genesys: conversation: %w", err)
	}
	c.ID = strings.TrimSpace(c.ID)
	if c.ID == "" {
		return nil, errors.New("genesys: conversation without id")
	}
	return &c, nil
}

// UnmarshalJSON accepts both participant shapes (see ParseConversation).
func (p *Participant) UnmarshalJSON(b []byte) error {
	var w struct {
		ID                     string                     `json:"id"`
		UserID                 string                     `json:"userId"`
		User                   *struct{ ID, Name string } `json:"user"`
		Name                   string                     `json:"name"`
		Purpose                string                     `json:"purpose"`
		QueueID                string                     `json:"queueId"`
		Queue                  *struct{ ID string }       `json:"queue"`
		Address                string                     `json:"address"`
		ConsultParticipantID   string                     `json:"consultParticipantId"`
		MonitoredParticipantID string                     `json:"monitoredParticipantId"`
		CoachedParticipantID   string                     `json:"coachedParticipantId"`
		BargedParticipantID    string                     `json:"bargedParticipantId"`
		ConnectedTime          wireTime                   `json:"connectedTime"`
		EndTime                wireTime                   `json:"endTime"`
		Attributes             map[string]json.RawMessage `json:"attributes"`
		Calls                  []Call                     `json:"calls"`
		// The flattened call of the REST /calls/ shape.
		State          string   `json:"state"`
		Direction      string   `json:"direction"`
		DisconnectType string   `json:"disconnectType"`
		UUIData        string   `json:"uuiData"`
		Held           bool     `json:"held"`
		Confined       bool     `json:"confined"`
		SecurePause    bool     `json:"securePause"`
		StartHoldTime  wireTime `json:"startHoldTime"`
		ANI            string   `json:"ani"`
		DNIS           string   `json:"dnis"`
	}
	if err := json.Unmarshal(b, &w); err != nil {
		return err
	}
	*p = Participant{
		ID:                     strings.TrimSpace(w.ID),
		UserID:                 strings.TrimSpace(w.UserID),
		Name:                   w.Name,
		Purpose:                wireLower(w.Purpose),
		QueueID:                strings.TrimSpace(w.QueueID),
		Address:                w.Address,
		ConsultParticipantID:   w.ConsultParticipantID,
		MonitoredParticipantID: w.MonitoredParticipantID,
		CoachedParticipantID:   w.CoachedParticipantID,
		BargedParticipantID:    w.BargedParticipantID,
		ConnectedTime:          w.ConnectedTime.t,
		EndTime:                w.EndTime.t,
		Calls:                  w.Calls,
	}
	if w.User != nil {
		if p.UserID == "" {
			p.UserID = strings.TrimSpace(w.User.ID)
		}
		if p.Name == "" {
			p.Name = w.User.Name
		}
	}
	if p.QueueID == "" && w.Queue != nil {
		p.QueueID = strings.TrimSpace(w.Queue.ID)
	}
	for k, v := range w.Attributes {
		if s, ok := wireAttribute(v); ok {
			if p.Attributes == nil {
				p.Attributes = make(map[string]string, len(w.Attributes))
			}
			p.Attributes[k] = s
		}
	}
	if len(p.Calls) == 0 && strings.TrimSpace(w.State) != "" {
		c := Call{
			ID:             p.ID,
			State:          wireLower(w.State),
			Direction:      wireLower(w.Direction),
			DisconnectType: wireLower(w.DisconnectType),
			UUIData:        w.UUIData,
			Held:           w.Held,
			Confined:       w.Confined,
			SecurePause:    w.SecurePause,
			StartHoldTime:  w.StartHoldTime.t,
			ConnectedTime:  p.ConnectedTime,
		}
		if c.State == "disconnected" || c.State == "terminated" {
			c.DisconnectedTime = p.EndTime
		}
		// The flattened shape names the caller and the called party; Call keeps the example-(a) convention
		// of §2.6 on a customer leg: self is our side, other the far end.
		caller, called := wireAddress(w.ANI), wireAddress(w.DNIS)
		if c.Direction == "outbound" {
			c.Self, c.Other = caller, called
		} else {
			c.Self, c.Other = called, caller
		}
		p.Calls = []Call{c}
	}
	return nil
}

// UnmarshalJSON lower-cases the enums and reads times leniently.
func (c *Call) UnmarshalJSON(b []byte) error {
	var w struct {
		ID               string   `json:"id"`
		State            string   `json:"state"`
		Direction        string   `json:"direction"`
		DisconnectType   string   `json:"disconnectType"`
		UUIData          string   `json:"uuiData"`
		Held             bool     `json:"held"`
		Confined         bool     `json:"confined"`
		SecurePause      bool     `json:"securePause"`
		StartHoldTime    wireTime `json:"startHoldTime"`
		ConnectedTime    wireTime `json:"connectedTime"`
		DisconnectedTime wireTime `json:"disconnectedTime"`
		Self             *Address `json:"self"`
		Other            *Address `json:"other"`
	}
	if err := json.Unmarshal(b, &w); err != nil {
		return err
	}
	*c = Call{
		ID:               strings.TrimSpace(w.ID),
		State:            wireLower(w.State),
		Direction:        wireLower(w.Direction),
		DisconnectType:   wireLower(w.DisconnectType),
		UUIData:          w.UUIData,
		Held:             w.Held,
		Confined:         w.Confined,
		SecurePause:      w.SecurePause,
		StartHoldTime:    w.StartHoldTime.t,
		ConnectedTime:    w.ConnectedTime.t,
		DisconnectedTime: w.DisconnectedTime.t,
		Self:             w.Self,
		Other:            w.Other,
	}
	return nil
}

// UnmarshalJSON falls back to addressRaw, then addressDisplayable, when addressNormalized is empty.
func (a *Address) UnmarshalJSON(b []byte) error {
	var w struct {
		Name               string `json:"name"`
		AddressNormalized  string `json:"addressNormalized"`
		AddressRaw         string `json:"addressRaw"`
		AddressDisplayable string `json:"addressDisplayable"`
	}
	if err := json.Unmarshal(b, &w); err != nil {
		return err
	}
	a.Name = w.Name
	a.AddressNormalized = wireFirst(w.AddressNormalized, w.AddressRaw, w.AddressDisplayable)
	return nil
}

// wireTime reads a Genesys timestamp leniently; t stays nil for null, "" or anything unreadable.
type wireTime struct{ t *time.Time }

// wireTimeLayouts are tried in order; RFC 3339 with milliseconds ("2022-12-13T13:14:23.200Z") is the norm.
var wireTimeLayouts = []string{
	time.RFC3339Nano,
	"2006-01-02T15:04:05.999999999Z0700",
	"2006-01-02T15:04:05.999999999",
	"2006-01-02 15:04:05.999999999Z07:00",
	"2006-01-02 15:04:05.999999999",
}

func (w *wireTime) UnmarshalJSON(b []byte) error {
	w.t = nil
	b = bytes.TrimSpace(b)
	if len(b) == 0 || b[0] == 'n' {
		return nil
	}
	if b[0] != '"' {
		// Epoch milliseconds, as the detail events carry them.
		ms, err := strconv.ParseFloat(string(b), 64)
		if err != nil || ms <= 0 || ms > 1e15 {
			return nil
		}
		t := time.UnixMilli(int64(ms)).UTC()
		w.t = &t
		return nil
	}
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return nil
	}
	s = strings.TrimSpace(s)
	if s == "" || len(s) > 64 {
		return nil
	}
	for _, layout := range wireTimeLayouts {
		if t, err := time.Parse(layout, s); err == nil {
			t = t.UTC()
			w.t = &t
			return nil
		}
	}
	return nil
}

// attributeString returns a participant attribute value as a string: strings as they are, numbers and
// booleans as their JSON text; null, objects and arrays are dropped.
func wireAttribute(v json.RawMessage) (string, bool) {
	v = bytes.TrimSpace(v)
	if len(v) == 0 {
		return "", false
	}
	switch v[0] {
	case '"':
		var s string
		if err := json.Unmarshal(v, &s); err != nil {
			return "", false
		}
		return s, true
	case 'n', '{', '[':
		return "", false
	default:
		return string(v), true
	}
}

func wireAddress(s string) *Address {
	if s == "" {
		return nil
	}
	return &Address{AddressNormalized: s}
}

func wireLower(s string) string { return strings.ToLower(strings.TrimSpace(s)) }

func wireFirst(ss ...string) string {
	for _, s := range ss {
		if s != "" {
			return s
		}
	}
	return ""
}
