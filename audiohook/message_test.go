package audiohook

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

const (
	testSession = "31afcbc3-5b3f-4a3c-8f5e-0c4b7e1d2a90"
	testOrg     = "c13afc37-2f5a-4e8b-9c1d-3e5f7a9b1c2d"
	testConv    = "dfe3ea12-8a4b-4c6d-a1e2-f3a4b5c6d7e8"
	testPart    = "d1f04ed8-1234-4abc-9def-0123456789ab"
)

// expand fills the shortened ids of the research notes' examples (§5.1) with real UUIDs.
func expand(s string) string {
	return strings.NewReplacer("{sid}", testSession, "{org}", testOrg, "{conv}", testConv, "{part}", testPart).Replace(s)
}

// Client → server examples, as captured from the reference client (research §5.1).
var clientExamples = map[string]string{
	"open": `{"version":"2","type":"open","id":"{sid}","seq":1,"serverseq":0,"position":"PT0S",
 "parameters":{"organizationId":"{org}","conversationId":"{conv}",
  "participant":{"id":"{part}","ani":"+1-555-555-1234","aniName":"John Doe","dnis":"+1-800-555-6789"},
  "media":[{"type":"audio","format":"PCMU","channels":["external","internal"],"rate":8000},
           {"type":"audio","format":"PCMU","channels":["external"],"rate":8000},
           {"type":"audio","format":"PCMU","channels":["internal"],"rate":8000}]}}`,
	"open probe": `{"version":"2","type":"open","id":"{sid}","seq":1,"serverseq":0,"position":"PT0S",
 "parameters":{"organizationId":"{org}","conversationId":"00000000-0000-0000-0000-000000000000",
  "participant":{"id":"00000000-0000-0000-0000-000000000000","ani":"","aniName":"","dnis":""},
  "media":[{"type":"audio","format":"PCMU","channels":["external","internal"],"rate":8000}]}}`,
	"open full": `{"version":"2","type":"open","id":"{sid}","seq":1,"serverseq":0,"position":"PT20S",
 "parameters":{"organizationId":"{org}","conversationId":"{conv}",
  "participant":{"id":"{part}","ani":"","aniName":"","dnis":""},
  "media":[{"type":"audio","format":"L16","channels":["internal","external"],"rate":16000}],
  "language":"en-US","supportedLanguages":true,"customConfig":{"a":1},
  "continuedSessions":[{"id":"{part}","serverseq":4,"clientseq":7}]}}`,
	"ping":          `{"version":"2","type":"ping","id":"{sid}","seq":2,"serverseq":1,"position":"PT1S","parameters":{}}`,
	"ping rtt":      `{"version":"2","type":"ping","id":"{sid}","seq":3,"serverseq":2,"position":"PT1S","parameters":{"rtt":"PT0.000909048S"}}`,
	"paused":        `{"version":"2","type":"paused","id":"{sid}","seq":4,"serverseq":4,"position":"PT1.6S","parameters":{}}`,
	"resumed":       `{"version":"2","type":"resumed","id":"{sid}","seq":5,"serverseq":5,"position":"PT3S","parameters":{"start":"PT1.6S","discarded":"PT1.4S"}}`,
	"discarded":     `{"version":"2","type":"discarded","id":"{sid}","seq":2,"serverseq":1,"position":"PT1S","parameters":{"start":"PT0S","discarded":"PT1S"}}`,
	"close":         `{"version":"2","type":"close","id":"{sid}","seq":4,"serverseq":3,"position":"PT3S","parameters":{"reason":"end"}}`,
	"close disc":    `{"version":"2","type":"close","id":"{sid}","seq":2,"serverseq":1,"position":"PT0S","parameters":{"reason":"disconnect"}}`,
	"error":         `{"version":"2","type":"error","id":"{sid}","seq":2,"serverseq":0,"position":"PT0S","parameters":{"code":408,"message":"Open transaction timeout"}}`,
	"error 429":     `{"version":"2","type":"error","id":"{sid}","seq":2,"serverseq":0,"position":"PT0S","parameters":{"code":429,"message":"slow down","retryAfter":"PT5S"}}`,
	"update":        `{"version":"2","type":"update","id":"{sid}","seq":6,"serverseq":5,"position":"PT9S","parameters":{"language":"fr-CA"}}`,
	"dtmf":          `{"version":"2","type":"dtmf","id":"{sid}","seq":6,"serverseq":5,"position":"PT9S","parameters":{"digit":"1"}}`,
	"no position":   `{"version":"2","type":"ping","id":"{sid}","seq":2,"serverseq":1,"parameters":{}}`,
	"extra fields":  `{"version":"2","type":"ping","id":"{sid}","seq":2,"serverseq":1,"position":"PT1S","parameters":{"x":[1]},"future":true}`,
	"upper uuid":    `{"version":"2","type":"ping","id":"31AFCBC3-5B3F-4A3C-8F5E-0C4B7E1D2A90","seq":2,"serverseq":1,"parameters":{}}`,
	"whitespace":    " \n{ \"version\" : \"2\", \"type\":\"paused\",\"id\":\"{sid}\",\"seq\":9,\"serverseq\":0,\"parameters\": {} }\n",
	"empty media":   `{"version":"2","type":"open","id":"{sid}","seq":1,"serverseq":0,"position":"PT0S","parameters":{"organizationId":"{org}","conversationId":"{conv}","participant":{"id":"{part}"},"media":[]}}`,
	"playback done": `{"version":"2","type":"playback_completed","id":"{sid}","seq":3,"serverseq":2,"position":"PT1S","parameters":{}}`,
}

// Server → client examples (research §5.1).
var serverExamples = map[string]string{
	"opened":          `{"version":"2","type":"opened","seq":1,"clientseq":1,"id":"{sid}","parameters":{"media":[{"type":"audio","format":"PCMU","channels":["external","internal"],"rate":8000}],"startPaused":false}}`,
	"opened no media": `{"version":"2","type":"opened","seq":1,"clientseq":1,"id":"{sid}","parameters":{"media":[]}}`,
	"opened options":  `{"version":"2","type":"opened","seq":1,"clientseq":1,"id":"{sid}","parameters":{"media":[],"startPaused":true,"discardTo":"PT1S","supportedLanguages":["en-US"]}}`,
	"pong":            `{"version":"2","type":"pong","seq":2,"clientseq":2,"id":"{sid}","parameters":{}}`,
	"pause":           `{"version":"2","type":"pause","seq":4,"clientseq":3,"id":"{sid}","parameters":{}}`,
	"resume":          `{"version":"2","type":"resume","seq":5,"clientseq":4,"id":"{sid}","parameters":{}}`,
	"closed":          `{"version":"2","type":"closed","seq":4,"clientseq":4,"id":"{sid}","parameters":{}}`,
	"disconnect":      `{"version":"2","type":"disconnect","seq":1,"clientseq":1,"id":"{sid}","parameters":{"reason":"unauthorized","info":"FAILED: Signatures do not match"}}`,
	"disconnect bare": `{"version":"2","type":"disconnect","seq":1,"clientseq":1,"id":"{sid}","parameters":{"reason":"completed"}}`,
	"updated":         `{"version":"2","type":"updated","seq":3,"clientseq":6,"id":"{sid}","parameters":{}}`,
	"reconnect":       `{"version":"2","type":"reconnect","seq":3,"clientseq":6,"id":"{sid}","parameters":{"info":"handover"}}`,
	"event": `{"version":"2","type":"event","id":"{sid}","seq":2,"clientseq":1,"parameters":{"entities":[{"type":"transcript","data":{
  "id":"97d33231-0000-4000-8000-000000000000","channelId":0,"isFinal":true,"offset":"PT0.1S","duration":"PT0.4S",
  "alternatives":[{"confidence":0.9,"interpretations":[{"type":"display","transcript":"My",
    "tokens":[{"type":"word","value":"My","confidence":0.9,"offset":"PT0.15S","duration":"PT0.39S","language":"en"}]}]}]}}]}}`,
}

func TestDecodeExamples(t *testing.T) {
	for name, s := range clientExamples {
		t.Run("client/"+name, func(t *testing.T) {
			if _, err := DecodeClientMessage([]byte(expand(s))); err != nil {
				t.Fatal(err)
			}
		})
	}
	for name, s := range serverExamples {
		t.Run("server/"+name, func(t *testing.T) {
			if _, err := DecodeServerMessage([]byte(expand(s))); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestDecodeClientMessageFields(t *testing.T) {
	m, err := DecodeClientMessage([]byte(expand(clientExamples["resumed"])))
	if err != nil {
		t.Fatal(err)
	}
	if m.Version != "2" || m.Type != TypeResumed || m.ID != testSession || m.Seq != 5 ||
		m.ServerSeq == nil || *m.ServerSeq != 5 || m.ClientSeq != nil ||
		m.Position == nil || time.Duration(*m.Position) != 3*time.Second {
		t.Fatalf("decoded %+v", m)
	}
	var p DiscardedParameters
	if err := m.Params(&p); err != nil {
		t.Fatal(err)
	}
	if p.Start != Duration(1600*time.Millisecond) || p.Discarded != Duration(1400*time.Millisecond) {
		t.Fatalf("params %+v", p)
	}

	m, err = DecodeClientMessage([]byte(expand(clientExamples["open"])))
	if err != nil {
		t.Fatal(err)
	}
	var open OpenParameters
	if err := m.Params(&open); err != nil {
		t.Fatal(err)
	}
	want := OpenParameters{
		OrganizationID: testOrg, ConversationID: testConv,
		Participant: Participant{ID: testPart, ANI: "+1-555-555-1234", ANIName: "John Doe", DNIS: "+1-800-555-6789"},
		Media: []MediaParameter{
			{Type: "audio", Format: "PCMU", Channels: []string{"external", "internal"}, Rate: 8000},
			{Type: "audio", Format: "PCMU", Channels: []string{"external"}, Rate: 8000},
			{Type: "audio", Format: "PCMU", Channels: []string{"internal"}, Rate: 8000},
		},
	}
	if !reflect.DeepEqual(open, want) {
		t.Fatalf("open parameters\n got %+v\nwant %+v", open, want)
	}
}

// mutate applies edits to a decoded JSON object and re-encodes it: each failing case below changes one
// thing in a valid message.
func mutate(t *testing.T, base string, edit func(m map[string]any)) []byte {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(expand(base)), &m); err != nil {
		t.Fatal(err)
	}
	edit(m)
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func params(m map[string]any) map[string]any { return m["parameters"].(map[string]any) }

func media0(m map[string]any) map[string]any {
	return params(m)["media"].([]any)[0].(map[string]any)
}

func TestDecodeClientMessageRejects(t *testing.T) {
	open, ping := clientExamples["open"], clientExamples["ping"]
	tests := []struct {
		name   string
		base   string
		edit   func(m map[string]any)
		reason string // substring of the ProtocolError reason
	}{
		{"version missing", ping, func(m map[string]any) { delete(m, "version") }, "version"},
		{"version 1", ping, func(m map[string]any) { m["version"] = "1" }, "version"},
		{"version number", ping, func(m map[string]any) { m["version"] = 2 }, "version"},
		{"id missing", ping, func(m map[string]any) { delete(m, "id") }, "id"},
		{"id not uuid", ping, func(m map[string]any) { m["id"] = "abc" }, "id"},
		{"id version 6", ping, func(m map[string]any) { m["id"] = "31afcbc3-5b3f-6a3c-8f5e-0c4b7e1d2a90" }, "id"},
		{"id bad variant", ping, func(m map[string]any) { m["id"] = "31afcbc3-5b3f-4a3c-cf5e-0c4b7e1d2a90" }, "id"},
		{"seq missing", ping, func(m map[string]any) { delete(m, "seq") }, "seq"},
		{"seq zero", ping, func(m map[string]any) { m["seq"] = 0 }, "seq"},
		{"seq negative", ping, func(m map[string]any) { m["seq"] = -1 }, "seq"},
		{"seq fraction", ping, func(m map[string]any) { m["seq"] = 1.5 }, "seq"},
		{"seq string", ping, func(m map[string]any) { m["seq"] = "2" }, "seq"},
		{"serverseq missing", ping, func(m map[string]any) { delete(m, "serverseq") }, "serverseq"},
		{"serverseq null", ping, func(m map[string]any) { m["serverseq"] = nil }, "serverseq"},
		{"serverseq negative", ping, func(m map[string]any) { m["serverseq"] = -1 }, "serverseq"},
		{"position bad", ping, func(m map[string]any) { m["position"] = "1.5" }, "position"},
		{"position number", ping, func(m map[string]any) { m["position"] = 1.5 }, "position"},
		{"parameters missing", ping, func(m map[string]any) { delete(m, "parameters") }, "parameters"},
		{"parameters null", ping, func(m map[string]any) { m["parameters"] = nil }, "parameters"},
		{"parameters array", ping, func(m map[string]any) { m["parameters"] = []any{} }, "parameters"},
		{"type missing", ping, func(m map[string]any) { delete(m, "type") }, "type"},
		{"type unknown", ping, func(m map[string]any) { m["type"] = "reconnecting" }, "type"},
		{"type of server", ping, func(m map[string]any) { m["type"] = "pong" }, "type"},
		{"ping rtt bad", ping, func(m map[string]any) { params(m)["rtt"] = "PT1M" }, "ping parameters"},
		{"open org missing", open, func(m map[string]any) { delete(params(m), "organizationId") }, "organizationId"},
		{"open org bad", open, func(m map[string]any) { params(m)["organizationId"] = "x" }, "organizationId"},
		{"open conv bad", open, func(m map[string]any) { params(m)["conversationId"] = 7 }, "open parameters"},
		{"open participant missing", open, func(m map[string]any) { delete(params(m), "participant") }, "participant"},
		{"open participant id bad", open, func(m map[string]any) { params(m)["participant"].(map[string]any)["id"] = "x" }, "participant"},
		{"open ani number", open, func(m map[string]any) { params(m)["participant"].(map[string]any)["ani"] = 5 }, "open parameters"},
		{"open media missing", open, func(m map[string]any) { delete(params(m), "media") }, "media"},
		{"open media null", open, func(m map[string]any) { params(m)["media"] = nil }, "media"},
		{"open media object", open, func(m map[string]any) { params(m)["media"] = map[string]any{} }, "open parameters"},
		{"open media type", open, func(m map[string]any) { media0(m)["type"] = "video" }, "media type"},
		{"open media format", open, func(m map[string]any) { media0(m)["format"] = "PCMA" }, "media format"},
		{"open media rate zero", open, func(m map[string]any) { media0(m)["rate"] = 0 }, "media rate"},
		{"open media rate fraction", open, func(m map[string]any) { media0(m)["rate"] = 8000.5 }, "open parameters"},
		{"open channels empty", open, func(m map[string]any) { media0(m)["channels"] = []any{} }, "media channels"},
		{"open channels unknown", open, func(m map[string]any) { media0(m)["channels"] = []any{"left"} }, "media channels"},
		{"open channels repeated", open, func(m map[string]any) { media0(m)["channels"] = []any{"external", "external"} }, "media channels"},
		{"open language bad", open, func(m map[string]any) { params(m)["language"] = "english" }, "language"},
		{"open supportedLanguages not bool", open, func(m map[string]any) { params(m)["supportedLanguages"] = "yes" }, "open parameters"},
		{"open customConfig array", open, func(m map[string]any) { params(m)["customConfig"] = []any{} }, "customConfig"},
		{"open continued bad", open, func(m map[string]any) {
			params(m)["continuedSessions"] = []any{map[string]any{"id": "x", "serverseq": 1, "clientseq": 1}}
		}, "continuedSessions"},
		{"close reason missing", clientExamples["close"], func(m map[string]any) { delete(params(m), "reason") }, "close parameters"},
		{"close reason unknown", clientExamples["close"], func(m map[string]any) { params(m)["reason"] = "bye" }, "close parameters"},
		{"resumed start missing", clientExamples["resumed"], func(m map[string]any) { delete(params(m), "start") }, "resumed parameters"},
		{"resumed discarded missing", clientExamples["resumed"], func(m map[string]any) { delete(params(m), "discarded") }, "resumed parameters"},
		{"discarded bad duration", clientExamples["discarded"], func(m map[string]any) { params(m)["discarded"] = "PT-1S" }, "discarded parameters"},
		{"error code missing", clientExamples["error"], func(m map[string]any) { delete(params(m), "code") }, "error parameters"},
		{"error code string", clientExamples["error"], func(m map[string]any) { params(m)["code"] = "408" }, "error parameters"},
		{"update language missing", clientExamples["update"], func(m map[string]any) { delete(params(m), "language") }, "update parameters"},
		{"update language bad", clientExamples["update"], func(m map[string]any) { params(m)["language"] = "en_US" }, "update parameters"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assertProtocolError(t, DecodeClientMessage, mutate(t, tt.base, tt.edit), tt.reason)
		})
	}
}

func TestDecodeRejectsRaw(t *testing.T) {
	big := `{"version":"2","type":"ping","id":"` + testSession + `","seq":2,"serverseq":1,"parameters":{"pad":"` +
		strings.Repeat("x", MaxMessageSize) + `"}}`
	tests := []struct {
		name, msg, reason string
	}{
		{"empty", "", "JSON object"},
		{"array", `[1]`, "JSON object"},
		{"null", `null`, "JSON object"},
		{"string", `"open"`, "JSON object"},
		{"truncated", `{"version":"2"`, "malformed"},
		{"trailing garbage", expand(clientExamples["ping"]) + "x", "malformed"},
		{"too large", big, "larger than"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assertProtocolError(t, DecodeClientMessage, []byte(tt.msg), tt.reason)
			assertProtocolError(t, DecodeServerMessage, []byte(tt.msg), tt.reason)
		})
	}
}

func TestDecodeServerMessageRejects(t *testing.T) {
	opened, pong := serverExamples["opened"], serverExamples["pong"]
	tests := []struct {
		name   string
		base   string
		edit   func(m map[string]any)
		reason string
	}{
		{"clientseq missing", pong, func(m map[string]any) { delete(m, "clientseq") }, "clientseq"},
		{"clientseq negative", pong, func(m map[string]any) { m["clientseq"] = -2 }, "clientseq"},
		{"parameters missing", pong, func(m map[string]any) { delete(m, "parameters") }, "parameters"},
		{"seq zero", pong, func(m map[string]any) { m["seq"] = 0 }, "seq"},
		{"id bad", pong, func(m map[string]any) { m["id"] = "" }, "id"},
		{"type of client", pong, func(m map[string]any) { m["type"] = "ping" }, "type"},
		{"opened media missing", opened, func(m map[string]any) { delete(params(m), "media") }, "media"},
		{"opened media bad", opened, func(m map[string]any) { media0(m)["channels"] = []any{"both"} }, "media channels"},
		{"opened startPaused string", opened, func(m map[string]any) { params(m)["startPaused"] = "true" }, "opened parameters"},
		{"opened discardTo bad", opened, func(m map[string]any) { params(m)["discardTo"] = "1s" }, "opened parameters"},
		{"disconnect reason missing", serverExamples["disconnect"], func(m map[string]any) { delete(params(m), "reason") }, "disconnect parameters"},
		{"disconnect reason unknown", serverExamples["disconnect"], func(m map[string]any) { params(m)["reason"] = "bye" }, "disconnect parameters"},
		{"disconnect info number", serverExamples["disconnect"], func(m map[string]any) { params(m)["info"] = 1 }, "disconnect parameters"},
		{"event entities missing", serverExamples["event"], func(m map[string]any) { delete(params(m), "entities") }, "entities"},
		{"event entity type missing", serverExamples["event"], func(m map[string]any) {
			params(m)["entities"] = []any{map[string]any{"data": map[string]any{}}}
		}, "entities"},
		{"reconnect info number", serverExamples["reconnect"], func(m map[string]any) { params(m)["info"] = 1 }, "reconnect parameters"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assertProtocolError(t, DecodeServerMessage, mutate(t, tt.base, tt.edit), tt.reason)
		})
	}
}

func assertProtocolError(t *testing.T, decode func([]byte) (*Message, error), b []byte, reason string) {
	t.Helper()
	m, err := decode(b)
	if err == nil {
		t.Fatalf("decoded %s as %+v, want an error", b, m)
	}
	var pe *ProtocolError
	if !errors.As(err, &pe) {
		t.Fatalf("error %v (%T) is not a *ProtocolError", err, err)
	}
	if !strings.Contains(pe.Reason, reason) {
		t.Fatalf("reason %q does not mention %q", pe.Reason, reason)
	}
}

func TestDuration(t *testing.T) {
	tests := []struct {
		in   string
		want time.Duration
		out  string // canonical form when it differs from in
	}{
		{"PT0S", 0, ""},
		{"PT1.6S", 1600 * time.Millisecond, ""},
		{"PT0.000909048S", 909048 * time.Nanosecond, ""},
		{"PT3S", 3 * time.Second, ""},
		{"PT.5S", 500 * time.Millisecond, "PT0.5S"},
		{"PT0.000000001S", 1, ""},
		{"PT1.000000000S", time.Second, "PT1S"},
		{"PT007S", 7 * time.Second, "PT7S"},
		{"PT86400.125S", 24*time.Hour + 125*time.Millisecond, ""},
		{"PT0.0000000005S", 1, "PT0.000000001S"},   // half up
		{"PT0.0000000004999S", 0, "PT0S"},          // below half
		{"PT0.9999999999S", time.Second, "PT1S"},   // the rounding carries into the seconds
		{"PT9223372036.854775807S", 1<<63 - 1, ""}, // the largest time.Duration
		{"PT100000000000000000000.5S", -1, ""},     // out of range
		{"PT9223372036.854775808S", -1, ""},        // out of range by 1 ns
		{"PT1M", -1, ""},
		{"P1D", -1, ""},
		{"PT-1S", -1, ""},
		{"PT1e3S", -1, ""},
		{"1.5", -1, ""},
		{"PTS", -1, ""},
		{"PT.S", -1, ""},
		{"PT1.S", -1, ""},
		{"PT1.2.3S", -1, ""},
		{"pt1s", -1, ""},
		{"PT1S ", -1, ""},
		{"", -1, ""},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			d, err := ParseDuration(tt.in)
			if tt.want < 0 {
				if err == nil {
					t.Fatalf("parsed as %v, want an error", time.Duration(d))
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if time.Duration(d) != tt.want {
				t.Fatalf("got %v, want %v", time.Duration(d), tt.want)
			}
			out := tt.out
			if out == "" {
				out = tt.in
			}
			if d.String() != out {
				t.Fatalf("String() = %q, want %q", d.String(), out)
			}
			b, err := json.Marshal(d)
			if err != nil {
				t.Fatal(err)
			}
			var back Duration
			if err := json.Unmarshal(b, &back); err != nil || back != d {
				t.Fatalf("round trip %s → %v, %v", b, time.Duration(back), err)
			}
		})
	}
}

// TestDurationMarshalExact checks that sample-counted positions are written in full, never with an exponent.
func TestDurationMarshalExact(t *testing.T) {
	for _, d := range []time.Duration{1, 125 * time.Microsecond, time.Second, 3*time.Hour + 1, 1 << 62} {
		b, err := json.Marshal(Duration(d))
		if err != nil {
			t.Fatal(err)
		}
		s := string(b)
		if strings.ContainsAny(s, "eE+-") || !strings.HasPrefix(s, `"PT`) {
			t.Fatalf("%v marshalled as %s", d, s)
		}
		back, err := ParseDuration(strings.Trim(s, `"`))
		if err != nil || time.Duration(back) != d {
			t.Fatalf("%s parsed back as %v, %v", s, time.Duration(back), err)
		}
	}
	if _, err := json.Marshal(Duration(-time.Second)); err == nil {
		t.Fatal("negative duration marshalled")
	}
	if s := Duration(-1500 * time.Millisecond).String(); s != "-PT1.5S" {
		t.Fatalf("negative String() = %q", s)
	}
}

func TestNewMessage(t *testing.T) {
	tests := []struct {
		name   string
		params any
		want   string // parameters as marshalled
	}{
		{"nil", nil, `{}`},
		{"nil pointer", (*CloseParameters)(nil), `{}`},
		{"struct", CloseParameters{Reason: "end"}, `{"reason":"end"}`},
		{"opened without media", OpenedParameters{}, `{"media":[]}`},
		{"opened paused", &OpenedParameters{StartPaused: true}, `{"media":[],"startPaused":true}`},
		{"raw", json.RawMessage(`{"a":1}`), `{"a":1}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := NewMessage("opened", testSession, 1, tt.params)
			if err != nil {
				t.Fatal(err)
			}
			if string(m.Parameters) != tt.want {
				t.Fatalf("parameters %s, want %s", m.Parameters, tt.want)
			}
		})
	}
	if _, err := NewMessage("pong", testSession, 1, []int{1}); err == nil {
		t.Fatal("array parameters accepted")
	}
	if _, err := NewMessage("pong", testSession, 1, PingParameters{RTT: ptr(Duration(-1))}); err == nil {
		t.Fatal("negative duration accepted")
	}
}

func ptr[T any](v T) *T { return &v }

// TestMessageMarshal checks what the server sends: parameters are always present, and a built pong is one
// the client accepts.
func TestMessageMarshal(t *testing.T) {
	b, err := json.Marshal(Message{Version: "2", Type: TypePong, ID: testSession, Seq: 2, ClientSeq: ptr[int64](2)})
	if err != nil {
		t.Fatal(err)
	}
	want := `{"version":"2","type":"pong","id":"` + testSession + `","seq":2,"clientseq":2,"parameters":{}}`
	if string(b) != want {
		t.Fatalf("got  %s\nwant %s", b, want)
	}
	if _, err := DecodeServerMessage(b); err != nil {
		t.Fatal(err)
	}

	m, err := NewMessage(TypeOpened, testSession, 1, OpenedParameters{
		Media:     []MediaParameter{{Type: "audio", Format: "PCMU", Channels: []string{"external", "internal"}, Rate: 8000}},
		DiscardTo: ptr(Duration(time.Second)),
	})
	if err != nil {
		t.Fatal(err)
	}
	m.ClientSeq = ptr[int64](1)
	b, err = json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := DecodeServerMessage(b); err != nil {
		t.Fatalf("%s: %v", b, err)
	}
}

func TestParamsStrictTypes(t *testing.T) {
	m := &Message{Type: TypeClose, Parameters: json.RawMessage(`{"reason":1}`)}
	var p CloseParameters
	if err := m.Params(&p); err == nil {
		t.Fatal("number decoded into a string field")
	}
	m = &Message{Type: TypeClose, Parameters: json.RawMessage(`{"reason":"end","extra":{"x":1}}`)}
	if err := m.Params(&p); err != nil || p.Reason != "end" {
		t.Fatalf("unknown field: %+v, %v", p, err)
	}
	m = &Message{Type: TypePaused}
	if err := m.Params(&struct{}{}); err != nil {
		t.Fatalf("nil parameters: %v", err)
	}
}

func TestIsUUID(t *testing.T) {
	tests := []struct {
		s    string
		want bool
	}{
		{testSession, true},
		{strings.ToUpper(testSession), true},
		{NullUUID, true},
		{"30b0e395-84d3-4570-ac13-9a62d8f514c0", true},
		{"30b0e395-84d3-1570-bc13-9a62d8f514c0", true},
		{"30b0e395-84d3-0570-ac13-9a62d8f514c0", false}, // version 0
		{"30b0e395-84d3-7570-ac13-9a62d8f514c0", false}, // version 7: not in the reference's set
		{"30b0e395-84d3-4570-7c13-9a62d8f514c0", false}, // NCS variant
		{"30b0e39584d34570ac139a62d8f514c0", false},
		{"{30b0e395-84d3-4570-ac13-9a62d8f514c0}", false},
		{"30b0e395-84d3-4570-ac13-9a62d8f514cg", false},
		{"", false},
	}
	for _, tt := range tests {
		if got := IsUUID(tt.s); got != tt.want {
			t.Errorf("IsUUID(%q) = %v", tt.s, got)
		}
	}
}

func TestMediaParameterSampleSize(t *testing.T) {
	tests := []struct {
		p    MediaParameter
		want int
	}{
		{MediaParameter{Format: FormatPCMU, Channels: []string{"external", "internal"}}, 2},
		{MediaParameter{Format: FormatPCMU, Channels: []string{"internal"}}, 1},
		{MediaParameter{Format: FormatL16, Channels: []string{"external", "internal"}}, 4},
		{MediaParameter{Format: "opus", Channels: []string{"external"}}, 0},
	}
	for _, tt := range tests {
		if got := tt.p.SampleSize(); got != tt.want {
			t.Errorf("%+v: %d, want %d", tt.p, got, tt.want)
		}
	}
}

func FuzzDecodeClientMessage(f *testing.F) {
	for _, s := range clientExamples {
		f.Add([]byte(expand(s)))
	}
	for _, s := range serverExamples {
		f.Add([]byte(expand(s)))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := DecodeClientMessage(b)
		if err != nil {
			var pe *ProtocolError
			if !errors.As(err, &pe) {
				t.Fatalf("error %v is not a *ProtocolError", err)
			}
			return
		}
		// Re-encode without HTML escaping: escaping could push a message near the size limit over it.
		var buf bytes.Buffer
		enc := json.NewEncoder(&buf)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(m); err != nil {
			t.Fatalf("decoded message does not marshal: %v", err)
		}
		if buf.Len() > MaxMessageSize {
			return // canonical forms can be a few bytes longer ("PT.5S" → "PT0.5S")
		}
		m2, err := DecodeClientMessage(buf.Bytes())
		if err != nil {
			t.Fatalf("re-marshalled %s does not decode: %v", buf.Bytes(), err)
		}
		if !sameMessage(m, m2) {
			t.Fatalf("round trip changed the message:\n%+v\n%+v", m, m2)
		}
	})
}

// sameMessage compares two messages, parameters by value (their bytes may differ in spacing and escapes).
func sameMessage(a, b *Message) bool {
	var pa, pb any
	if json.Unmarshal(a.Parameters, &pa) != nil || json.Unmarshal(b.Parameters, &pb) != nil {
		return false
	}
	a2, b2 := *a, *b
	a2.Parameters, b2.Parameters = nil, nil
	return reflect.DeepEqual(a2, b2) && reflect.DeepEqual(pa, pb)
}

func BenchmarkDecodeClientMessage(b *testing.B) {
	msg := []byte(expand(clientExamples["ping rtt"]))
	b.ReportAllocs()
	b.SetBytes(int64(len(msg)))
	for b.Loop() {
		if _, err := DecodeClientMessage(msg); err != nil {
			b.Fatal(err)
		}
	}
}
