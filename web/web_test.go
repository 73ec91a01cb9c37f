package web

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/siphook/siphook/internal/browsertest"
	"github.com/siphook/siphook/recorder"
)

func get(t *testing.T, h http.Handler, method, target string, hdr map[string]string) *http.Response {
	t.Helper()
	req := httptest.NewRequest(method, target, nil)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec.Result()
}

func TestHandler(t *testing.T) {
	h := Handler()
	for _, tc := range []struct {
		path, ctype, contains string
	}{
		{"/", "text/html; charset=utf-8", "<!doctype html>"},
		{"/index.html", "text/html; charset=utf-8", "<!doctype html>"},
		{"/app.js", "text/javascript; charset=utf-8", "function route()"},
		{"/style.css", "text/css; charset=utf-8", ":root"},
		{"/favicon.svg", "image/svg+xml", "<svg"},
	} {
		t.Run(tc.path, func(t *testing.T) {
			res := get(t, h, http.MethodGet, tc.path, nil)
			body, _ := io.ReadAll(res.Body)
			if res.StatusCode != http.StatusOK {
				t.Fatalf("status %d", res.StatusCode)
			}
			if got := res.Header.Get("Content-Type"); got != tc.ctype {
				t.Errorf("Content-Type %q, want %q", got, tc.ctype)
			}
			if got := res.Header.Get("Content-Security-Policy"); got != contentSecurityPolicy {
				t.Errorf("CSP %q", got)
			}
			if got := res.Header.Get("X-Content-Type-Options"); got != "nosniff" {
				t.Errorf("X-Content-Type-Options %q", got)
			}
			if got := res.Header.Get("Cache-Control"); got != "no-cache" {
				t.Errorf("Cache-Control %q", got)
			}
			if !strings.Contains(string(body), tc.contains) {
				t.Errorf("body lacks %q", tc.contains)
			}
			etag := res.Header.Get("ETag")
			if !regexp.MustCompile(`^"[0-9a-f]{24}"$`).MatchString(etag) {
				t.Fatalf("ETag %q", etag)
			}
			res = get(t, h, http.MethodGet, tc.path, map[string]string{"If-None-Match": etag})
			if res.StatusCode != http.StatusNotModified {
				t.Errorf("If-None-Match: status %d, want 304", res.StatusCode)
			}
			res = get(t, h, http.MethodHead, tc.path, nil)
			if n, _ := io.Copy(io.Discard, res.Body); res.StatusCode != http.StatusOK || n != 0 {
				t.Errorf("HEAD: status %d, %d bytes", res.StatusCode, n)
			}
			if got := res.Header.Get("Content-Length"); got != strconv.Itoa(len(body)) {
				t.Errorf("HEAD Content-Length %q, want %d", got, len(body))
			}
		})
	}

	for _, p := range []string{"/nope", "/static/app.js", "/app.js/", "/api/v1/recordings", "/web.go"} {
		res := get(t, h, http.MethodGet, p, nil)
		if res.StatusCode != http.StatusNotFound {
			t.Errorf("GET %s: status %d, want 404", p, res.StatusCode)
		}
		if res.Header.Get("Content-Security-Policy") == "" || res.Header.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("GET %s: 404 without the security headers", p)
		}
	}
	if res := get(t, h, http.MethodPost, "/", nil); res.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST /: status %d, want 405", res.StatusCode)
	}

	// ETags differ between files and are stable.
	if a, b := get(t, h, "GET", "/app.js", nil).Header.Get("ETag"), get(t, h, "GET", "/style.css", nil).Header.Get("ETag"); a == b {
		t.Errorf("app.js and style.css share the ETag %s", a)
	}
}

// TestIndexReferences checks that index.html loads the script and the style sheet, and that every local file
// it references is served.
func TestIndexReferences(t *testing.T) {
	h := Handler()
	body, _ := io.ReadAll(get(t, h, http.MethodGet, "/", nil).Body)
	html := string(body)
	for _, want := range []string{`<script type="module" src="app.js">`, `<link rel="stylesheet" href="style.css">`} {
		if !strings.Contains(html, want) {
			t.Errorf("index.html lacks %s", want)
		}
	}
	for _, m := range regexp.MustCompile(`(?:src|href)="([^"#][^"]*)"`).FindAllStringSubmatch(html, -1) {
		if res := get(t, h, http.MethodGet, "/"+m[1], nil); res.StatusCode != http.StatusOK {
			t.Errorf("index.html references %s: status %d", m[1], res.StatusCode)
		}
	}
	// The UI must never need anything from elsewhere, and must not use inline code the CSP forbids.
	for name, a := range assets {
		s := string(a.body)
		if strings.Contains(s, "http://") || strings.Contains(s, "https://") {
			if name != "/favicon.svg" { // the SVG namespace URI is not a fetch
				t.Errorf("%s refers to an absolute URL", name)
			}
		}
	}
	if regexp.MustCompile(`(?i)<script>|\sstyle="|\son[a-z]+="`).MatchString(html) {
		t.Error("index.html has inline script, style or event handler attributes, which the CSP blocks")
	}
	if regexp.MustCompile(`innerHTML|outerHTML|insertAdjacentHTML|document\.write|eval\(|new Function`).Match(assets["/app.js"].body) {
		t.Error("app.js uses an HTML-parsing or eval API")
	}
}

// TestHandlerOnMux mounts the handler as cmd/siphook does, beside more specific routes. (The other routes must
// name their method, or be longer paths: a method-less "/api/v1/" conflicts with "GET /" and ServeMux panics.)
func TestHandlerOnMux(t *testing.T) {
	mux := http.NewServeMux()
	mux.Handle("GET /", Handler())
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok") })
	mux.HandleFunc("GET /api/v1/", func(w http.ResponseWriter, _ *http.Request) { http.Error(w, "api", http.StatusTeapot) })
	mux.HandleFunc("POST /api/v1/index/rebuild", func(w http.ResponseWriter, _ *http.Request) { http.Error(w, "api", http.StatusTeapot) })
	for p, want := range map[string]int{"/": 200, "/app.js": 200, "/healthz": 200, "/api/v1/x": http.StatusTeapot, "/nope": 404} {
		if res := get(t, mux, http.MethodGet, p, nil); res.StatusCode != want {
			t.Errorf("GET %s: status %d, want %d", p, res.StatusCode, want)
		}
	}
}

// TestAppJSSyntax parses app.js with node when it is installed.
func TestAppJSSyntax(t *testing.T) {
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("node not on PATH")
	}
	cmd := exec.Command(node, "--input-type=module", "--check")
	cmd.Stdin = bytes.NewReader(assets["/app.js"].body)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("node --check app.js: %v\n%s", err, out)
	}
}

// ---------------------------------------------------------------------------------------------------------
// Headless browser test against a fake API.

const (
	recMatched      = "0193a1b2-3c4d-7e5f-8a9b-0000000000a1"
	recUnmatched    = "0193a1b2-3c4d-7e5f-8a9b-0000000000b2"
	recConsult      = "0193a1b2-3c4d-7e5f-8a9b-0000000000c3" // matched, never recorded; not in the list
	notRecorded     = "a consultation: a session matched while agents consult each other is not recorded"
	testToken       = "t0ken-4e1f9c"
	unmatchedReason = "no CTI event with ucid 00071252811778010124 within 5m0s"
	wavSeconds      = 3
	wavRate         = 8000
)

// fakeAPI answers the /api/v1 routes of the contract with fixed data.
type fakeAPI struct {
	t     *testing.T
	start time.Time
	pcm   [2][]int16 // per channel
	wav   []byte
	docs  map[string]*recorder.Document
	extra map[string]map[string]any // fields added to a document's JSON

	mu           sync.Mutex
	requireToken bool
	forbidLive   bool // /sessions answers 403, as for a token without the right
	searches     []url.Values
	points       []int
	sessionCalls int
	authBy       map[string]int // path kind → "header"/"cookie" → count, as "audio cookie"
}

func newFakeAPI(t *testing.T) *fakeAPI {
	f := &fakeAPI{t: t, start: time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC), authBy: map[string]int{}}
	n := wavSeconds * wavRate
	for i := range n {
		sec := float64(i) / wavRate
		var l, r float64
		switch {
		case sec < 1.2: // the caller talks
			l = 0.6 * math.Sin(2*math.Pi*440*sec) * (0.6 + 0.4*math.Sin(2*math.Pi*3*sec))
		case sec < 1.8: // on hold: silence
		default: // the agent answers
			r = 0.4 * math.Sin(2*math.Pi*300*sec) * (0.5 + 0.5*math.Abs(math.Sin(2*math.Pi*2*sec)))
			l = 0.05 * math.Sin(2*math.Pi*440*sec)
		}
		f.pcm[0] = append(f.pcm[0], int16(l*32767))
		f.pcm[1] = append(f.pcm[1], int16(r*32767))
	}
	f.wav = wavFile(f.pcm[:], wavRate)

	at := func(sec float64) time.Time { return f.start.Add(time.Duration(sec * float64(time.Second))) }
	end := at(wavSeconds)
	alice := recorder.CallAgent{UserID: "u-alice", Name: "Alice Agent"}
	holdEnd := at(1.8)
	f.docs = map[string]*recorder.Document{
		recMatched: {
			RecordingID: recMatched, Source: "siprec", State: recorder.StateCompleted,
			Session: map[string]string{"sip_call_id": "a84b4c76e66710@pc33.example.com", "transport": "tls"},
			Identifiers: []recorder.Identifier{
				{Kind: "ucid", Value: "00071252811778010124", Raw: "FA080007…", Origin: "User-to-User"},
			},
			Participants: []recorder.Participant{
				{ID: "p1", Name: "Carol <b>Caller</b>", AOR: "tel:+15550100", Role: "caller"}, // markup must stay text
				{ID: "p2", Name: "Alice Agent", AOR: "sip:alice@pbx.example.com", Role: "callee"},
			},
			Channels: []recorder.ChannelInfo{
				{Index: 0, Label: "caller", ParticipantID: "p1", Codec: "PCMU/8000", Stats: recorder.StreamStats{Received: 150, Lost: 2, Reordered: 1,
					Expected: 152, LossBursts: 1, JitterMs: 12.4, MOS: 3.42}},
				{Index: 1, Label: "agent", ParticipantID: "p2", Codec: "PCMU/8000", Stats: recorder.StreamStats{Received: 148, LateSamples: 160,
					Expected: 148, JitterMs: 3.1, MOS: 4.38}},
			},
			Analytics: &recorder.Analytics{
				Channels: []recorder.ChannelAnalytics{
					{Index: 0, TalkSec: 1.2, SilenceSec: 1.8, TalkRatio: 0.4, LongestSilenceSec: 1.8},
					{Index: 1, TalkSec: 1.14, SilenceSec: 1.86, TalkRatio: 0.38, LongestSilenceSec: 1.8},
				},
				TalkOverSec: 0.12, TalkOverRatio: 0.04, SilenceSec: 0.6, SilenceRatio: 0.2, LongestSilenceSec: 0.6, MOS: 3.42,
				MediaErrors: []recorder.MediaError{
					{At: at(2.1), Channel: 0, Type: "ssrc_change", Detail: "SSRC 0x1a2b3c4d → 0x5e6f7a8b"},
					{At: at(2.44), Channel: 1, Type: "timestamp_jump", Detail: "timestamp jumped by 16000 <i>samples</i>"}, // markup must stay text
				},
				MediaErrorsTruncated: true,
			},
			Events: []recorder.Event{
				{At: at(0), Type: "activated"},
				{At: at(1.2), Type: "held"},
				{At: at(1.8), Type: "unheld"},
			},
			Pauses: []recorder.Pause{{By: "src", Start: at(1.2), End: &holdEnd, OffsetSec: 1.2, DurationSec: 0.6}},
			Start:  f.start, End: &end, DurationSec: wavSeconds,
			Audio: &recorder.AudioInfo{File: "2026/11/21/" + recMatched + ".wav", Format: recorder.FormatWAVPCM16, SampleRate: wavRate, Channels: 2, Samples: int64(n)},
			Call: &recorder.CallInfo{
				ConversationID: "be9d3c1e-5a52-4f0e-9a47-2d6f3b0c1a77", Direction: "inbound",
				ANI: "tel:+15550100", DNIS: "tel:+18005550199", QueueID: "q-support",
				Agents: []recorder.CallAgent{alice},
				Segments: []recorder.CallSegment{
					{Start: at(-2), State: "ACTIVE", Agents: []recorder.CallAgent{alice}},
					{Start: at(1.2), State: "HELD", Agents: []recorder.CallAgent{alice}, Reason: "agent hold"},
					{Start: at(1.8), State: "ACTIVE", Agents: []recorder.CallAgent{alice}},
					{Start: at(2.7), State: "ENDED", Reason: "customer hung up"},
				},
				MatchedBy: "ucid 00071252811778010124", MatchedAt: at(0.04), MatchLatencyMs: 40,
			},
		},
		recUnmatched: {
			RecordingID: recUnmatched, Source: "audiohook", State: recorder.StateNeverActivated,
			Session:     map[string]string{"organization_id": "org-1"},
			Identifiers: []recorder.Identifier{{Kind: "ucid", Value: "00071252811778010124", Origin: "customConfig"}},
			Participants: []recorder.Participant{
				{ID: "p1", AOR: "tel:+15550111", Role: "caller"},
			},
			Start: f.start.Add(-time.Hour), End: new(f.start.Add(-time.Hour + 5*time.Minute)), DurationSec: 300,
			Unmatched: unmatchedReason,
		},
		recConsult: {
			RecordingID: recConsult, Source: "siprec", State: recorder.StateNeverActivated,
			Start: f.start.Add(-2 * time.Hour), End: new(f.start.Add(-2*time.Hour + time.Minute)), DurationSec: 60,
			Call: &recorder.CallInfo{
				ConversationID: "c0c0c0c0-1111-2222-3333-444444444444", Direction: "outbound", Agents: []recorder.CallAgent{alice},
				Segments:  []recorder.CallSegment{{Start: f.start.Add(-2 * time.Hour), State: "ACTIVE", Agents: []recorder.CallAgent{alice}, Reason: "consult"}},
				MatchedBy: "conversation_id c0c0c0c0-1111-2222-3333-444444444444", MatchedAt: f.start.Add(-2 * time.Hour),
			},
		},
	}
	// Added as raw JSON, so the test does not depend on the Go field.
	f.extra = map[string]map[string]any{recConsult: {"not_recorded": notRecorded}}
	return f
}

// wavFile builds a 16-bit PCM WAV of the channels, interleaved.
func wavFile(chans [][]int16, rate int) []byte {
	var b bytes.Buffer
	n := len(chans[0])
	dataLen := n * len(chans) * 2
	w := func(v any) { _ = binary.Write(&b, binary.LittleEndian, v) }
	b.WriteString("RIFF")
	w(uint32(36 + dataLen))
	b.WriteString("WAVEfmt ")
	w(uint32(16))
	w(uint16(1))
	w(uint16(len(chans)))
	w(uint32(rate))
	w(uint32(rate * len(chans) * 2))
	w(uint16(len(chans) * 2))
	w(uint16(16))
	b.WriteString("data")
	w(uint32(dataLen))
	for i := range n {
		for _, c := range chans {
			w(c[i])
		}
	}
	return b.Bytes()
}

func (f *fakeAPI) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/v1/recordings", f.list)
	mux.HandleFunc("GET /api/v1/recordings/{id}", f.document)
	mux.HandleFunc("GET /api/v1/recordings/{id}/audio", f.audio)
	mux.HandleFunc("GET /api/v1/recordings/{id}/waveform", f.waveform)
	mux.HandleFunc("GET /api/v1/sessions", f.sessions)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		need := f.requireToken
		f.mu.Unlock()
		if need {
			kind := "other"
			if strings.HasSuffix(r.URL.Path, "/audio") {
				kind = "audio"
			}
			c, _ := r.Cookie("siphook_token")
			switch {
			case r.Header.Get("Authorization") == "Bearer "+testToken:
				f.count(kind + " header")
			case c != nil && c.Value == testToken:
				f.count(kind + " cookie")
			default:
				w.Header().Set("WWW-Authenticate", `Bearer realm="siphook"`)
				writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "missing or unknown token"})
				return
			}
		}
		mux.ServeHTTP(w, r)
	})
}

func (f *fakeAPI) count(k string) {
	f.mu.Lock()
	f.authBy[k]++
	f.mu.Unlock()
}

func (f *fakeAPI) setRequireToken(v bool) {
	f.mu.Lock()
	f.requireToken = v
	f.mu.Unlock()
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func (f *fakeAPI) summary(d *recorder.Document) map[string]any {
	s := map[string]any{
		"id": d.RecordingID, "source": d.Source, "state": d.State, "start": d.Start, "end": d.End,
		"duration_seconds": d.DurationSec, "matched": d.Call != nil, "identifiers": d.Identifiers,
		"document": "2026/11/21/" + d.RecordingID + ".json", "has_audio": d.Audio != nil,
	}
	if d.Call != nil {
		s["conversation_id"], s["direction"], s["ani"], s["dnis"] = d.Call.ConversationID, d.Call.Direction, d.Call.ANI, d.Call.DNIS
		s["agents"], s["matched_by"], s["queue_id"] = d.Call.Agents, d.Call.MatchedBy, d.Call.QueueID
	} else {
		s["unmatched"] = d.Unmatched
		s["ani"] = d.Participants[0].AOR
	}
	if d.Audio != nil {
		s["channels"], s["sample_rate"], s["audio"] = d.Audio.Channels, d.Audio.SampleRate, d.Audio.File
	}
	if a := d.Analytics; a != nil {
		s["analytics"] = map[string]any{"silence_ratio": a.SilenceRatio, "talk_over_ratio": a.TalkOverRatio,
			"longest_silence_sec": a.LongestSilenceSec, "mos": a.MOS, "media_errors": len(a.MediaErrors)}
	}
	return s
}

// list filters like the real API, newest first, and pages one recording at a time so the UI's "more" button
// gets exercised.
func (f *fakeAPI) list(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	f.mu.Lock()
	f.searches = append(f.searches, q)
	f.mu.Unlock()
	var out []map[string]any
	for _, id := range []string{recMatched, recUnmatched} {
		d := f.docs[id]
		if a := q.Get("agent"); a != "" {
			ok := false
			if d.Call != nil {
				for _, ag := range d.Call.Agents {
					ok = ok || ag.UserID == a || strings.Contains(strings.ToLower(ag.Name), strings.ToLower(a))
				}
			}
			if !ok {
				continue
			}
		}
		if m := q.Get("matched"); m != "" && m != strconv.FormatBool(d.Call != nil) {
			continue
		}
		if s := q.Get("source"); s != "" && s != d.Source {
			continue
		}
		if !analyticsMatch(q, d.Analytics) {
			continue
		}
		out = append(out, f.summary(d))
	}
	offset := 0
	if c := q.Get("cursor"); c != "" {
		offset, _ = strconv.Atoi(strings.TrimPrefix(c, "c"))
	}
	page := map[string]any{"recordings": []map[string]any{}, "total": len(out)}
	if offset < len(out) {
		page["recordings"] = out[offset : offset+1]
		if offset+1 < len(out) {
			page["next_cursor"] = fmt.Sprintf("c%d", offset+1)
		}
	}
	writeJSON(w, http.StatusOK, page)
}

// analyticsMatch applies the analytics filters as the real API does: bounds on the silence and talk-over
// ratios and the MOS; a recording without analytics (or, for the MOS, without a MOS) never matches one.
func analyticsMatch(q url.Values, a *recorder.Analytics) bool {
	for _, b := range []struct {
		name string
		v    func() (float64, bool)
	}{
		{"silence_ratio", func() (float64, bool) { return a.SilenceRatio, true }},
		{"talk_over_ratio", func() (float64, bool) { return a.TalkOverRatio, true }},
		{"mos", func() (float64, bool) { return a.MOS, a.MOS > 0 }},
	} {
		for _, side := range []string{"_min", "_max"} {
			s := q.Get(b.name + side)
			if s == "" {
				continue
			}
			bound, err := strconv.ParseFloat(s, 64)
			if err != nil || a == nil {
				return false
			}
			v, ok := b.v()
			if !ok || (side == "_min" && v < bound) || (side == "_max" && v > bound) {
				return false
			}
		}
	}
	return true
}

func (f *fakeAPI) document(w http.ResponseWriter, r *http.Request) {
	d := f.docs[r.PathValue("id")]
	if d == nil {
		writeJSON(w, http.StatusNotFound, map[string]string{"error": "no such recording"})
		return
	}
	if extra := f.extra[d.RecordingID]; extra != nil {
		var m map[string]any
		b, _ := json.Marshal(d)
		_ = json.Unmarshal(b, &m)
		for k, v := range extra {
			m[k] = v
		}
		writeJSON(w, http.StatusOK, m)
		return
	}
	writeJSON(w, http.StatusOK, d)
}

func (f *fakeAPI) audio(w http.ResponseWriter, r *http.Request) {
	if r.PathValue("id") != recMatched {
		writeJSON(w, http.StatusNotFound, map[string]string{"error": "no audio"})
		return
	}
	w.Header().Set("Content-Type", "audio/wav")
	w.Header().Set("Cache-Control", "private, no-cache") // revalidate, so the auth part sees the request
	w.Header().Set("ETag", `"wav1"`)
	http.ServeContent(w, r, "audio.wav", f.start, bytes.NewReader(f.wav))
}

func (f *fakeAPI) waveform(w http.ResponseWriter, r *http.Request) {
	if r.PathValue("id") != recMatched {
		writeJSON(w, http.StatusNotFound, map[string]string{"error": "no audio"})
		return
	}
	points := 800
	if p := r.URL.Query().Get("points"); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 || n > 4000 {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": "points: want 1..4000"})
			return
		}
		points = n
	}
	f.mu.Lock()
	f.points = append(f.points, points)
	f.mu.Unlock()
	type channel struct {
		Index int          `json:"index"`
		Label string       `json:"label"`
		Peaks [][2]float64 `json:"peaks"`
	}
	var chans []channel
	for ci, pcm := range f.pcm {
		c := channel{Index: ci, Label: f.docs[recMatched].Channels[ci].Label}
		for b := range points {
			lo, hi := 0.0, 0.0
			for _, s := range pcm[b*len(pcm)/points : max((b+1)*len(pcm)/points, b*len(pcm)/points+1)] {
				v := float64(s) / 32768
				lo, hi = min(lo, v), max(hi, v)
			}
			c.Peaks = append(c.Peaks, [2]float64{lo, hi})
		}
		chans = append(chans, c)
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"sample_rate": wavRate, "samples": len(f.pcm[0]), "duration_seconds": float64(wavSeconds), "channels": chans,
	})
}

func (f *fakeAPI) sessions(w http.ResponseWriter, _ *http.Request) {
	f.mu.Lock()
	f.sessionCalls++
	forbid := f.forbidLive
	f.mu.Unlock()
	if forbid {
		writeJSON(w, http.StatusForbidden, map[string]string{"error": "token \"ops\" may not read sessions"})
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"sessions": []map[string]any{{
		"id": "sess-1", "source": "siprec", "state": "waiting", "since": time.Now().Add(-130 * time.Second).UTC(),
		"tenant": "", "keys": []map[string]string{{"kind": "ucid", "value": "00071252811778010999"}},
		"waiting_reason": "no CTI call carries ucid 00071252811778010999 yet",
	}}})
}

func (f *fakeAPI) sawSearch(key, value string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, q := range f.searches {
		if q.Get(key) == value {
			return true
		}
	}
	return false
}

func TestBrowser(t *testing.T) {
	b := browsertest.New(t)

	fake := newFakeAPI(t)
	mux := http.NewServeMux()
	mux.Handle("GET /", Handler())
	mux.Handle("GET /api/v1/", fake.handler())
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close) // after the browser's cleanup, which New registered before

	const rows = `document.querySelectorAll('#results tr.recording')`

	// The search page lists everything, one page at a time from this fake.
	b.Step("open /", 30*time.Second, chromedp.Navigate(srv.URL+"/"))
	b.Wait(rows + `.length === 1 && !document.getElementById('more').hidden`)
	if got := b.Eval(`document.getElementById('total').textContent`); !strings.HasPrefix(got, "2 recordings") {
		t.Errorf("#total %q", got)
	}
	b.Step("more", 10*time.Second, chromedp.Click(chromedp.CSS("#more")))
	b.Wait(rows + `.length === 2 && document.getElementById('more').hidden`)
	b.Screenshot("ui-web-fake-search.png")

	// The Quality column: the MOS (rated poor: below 3.5) and the silence / talk-over shares; "—" without audio.
	quality := b.Eval(`[...document.querySelectorAll('#results tr.recording td.quality')].map((td) => td.textContent + '|' + ` +
		`(td.querySelector('.mos') ? td.querySelector('.mos').className : '')).join(' ; ')`)
	if quality != "3.4 20% / 4%|mos mos-poor ; —|" {
		t.Errorf("Quality column %q", quality)
	}
	if got := b.Eval(`document.querySelector('#results tr.recording td.quality').title`); !strings.Contains(got, "MOS 3.42 (poor)") || !strings.Contains(got, "media errors: 2") {
		t.Errorf("Quality title %q", got)
	}
	// No cell of the table is cut off at 1280 px (the table does not scroll sideways).
	if got := b.Eval(`(() => { const w = document.querySelector('#view-search .table-wrap'); return w.scrollWidth + '/' + w.clientWidth; })()`); func() bool {
		var sw, cw int
		_, err := fmt.Sscanf(got, "%d/%d", &sw, &cw)
		return err != nil || sw > cw
	}() {
		t.Errorf("the results table scrolls sideways at 1280 px: scroll/client width %s", got)
	}

	// The quality filters: per cent in the form, ratios in the hash and the query; the MOS as typed.
	b.Step("search quality", 10*time.Second,
		chromedp.SendKeys(chromedp.CSS("#f-silence-min"), "10"),
		chromedp.SendKeys(chromedp.CSS("#f-talkover-min"), "3"),
		chromedp.SendKeys(chromedp.CSS("#f-mos-max"), "3.5"),
		chromedp.Click(chromedp.CSS("#search-submit")))
	b.Wait(`location.hash === '#/?silence_ratio_min=0.1&talk_over_ratio_min=0.03&mos_max=3.5' && ` + rows + `.length === 1 && ` +
		rows + `[0].dataset.id === '` + recMatched + `' && document.getElementById('more').hidden`)
	for k, v := range map[string]string{"silence_ratio_min": "0.1", "talk_over_ratio_min": "0.03", "mos_max": "3.5"} {
		if !fake.sawSearch(k, v) {
			t.Errorf("the fake API never got %s=%s", k, v)
		}
	}
	if got := b.Eval(`['f-silence-min', 'f-talkover-min', 'f-mos-max'].map((id) => document.getElementById(id).value).join(',')`); got != "10,3,3.5" {
		t.Errorf("quality filter inputs %q after the search", got)
	}
	// Followed from a link, the ratios come back as per cents; a bound nothing meets leaves no row.
	b.Step("quality link", 10*time.Second, chromedp.Evaluate[chromedp.Void](`location.hash = '#/?silence_ratio_min=0.5&mos_max=3'`))
	b.Wait(`document.getElementById('f-silence-min').value === '50' && document.getElementById('f-mos-max').value === '3' && ` +
		`document.getElementById('f-talkover-min').value === '' && document.getElementById('total').textContent.startsWith('0 recordings')`)
	if !fake.sawSearch("silence_ratio_min", "0.5") {
		t.Error("the fake API never got silence_ratio_min=0.5")
	}
	b.Step("reset", 10*time.Second, chromedp.Click(chromedp.CSS("#search-reset")))
	b.Wait(`location.hash === '#/' && document.getElementById('f-silence-min').value === '' && ` + rows + `.length === 1`)

	// Search by agent: the filter goes to the hash and to the API.
	b.Step("search alice", 10*time.Second,
		chromedp.SendKeys(chromedp.CSS("#f-agent"), "alice"),
		chromedp.Click(chromedp.CSS("#search-submit")))
	b.Wait(`location.hash === '#/?agent=alice' && ` + rows + `.length === 1 && ` + rows + `[0].dataset.id === '` + recMatched + `'`)
	if !fake.sawSearch("agent", "alice") {
		t.Error("the fake API never got agent=alice")
	}
	row := b.Eval(rows + `[0].textContent`)
	for _, want := range []string{"Alice Agent", "siprec", "completed", "inbound", "+15550100", "0:03", "✓"} {
		if !strings.Contains(row, want) {
			t.Errorf("result row %q lacks %q", row, want)
		}
	}

	// The detail page: player, one waveform per channel, the timeline.
	b.Step("open recording", 10*time.Second, chromedp.Click(chromedp.CSS("#results tr.recording a.recording-link")))
	b.Wait(`location.hash === '#/recordings/` + recMatched + `' && document.getElementById('player') !== null && ` +
		`document.querySelectorAll('#waveforms canvas.waveform').length === 2`)
	if got := b.Eval(`[...document.querySelectorAll('#waveforms .track-label')].map((e) => e.textContent).join(',')`); got != "caller · Carol <b>Caller</b>,callee · Alice Agent" { // SIPREC: named by participant
		t.Errorf("waveform labels %q", got)
	}
	if got := b.Eval(`[...document.querySelectorAll('#timeline .lane .segment')].map((e) => e.className + '=' + e.title.split('\n').join('|')).join(' ; ')`); !strings.Contains(got, "state-held") ||
		!strings.Contains(got, "Alice Agent") || !strings.Contains(got, "agent hold") || strings.Count(got, "state-active") != 2 || !strings.Contains(got, "state-ended") {
		t.Errorf("timeline segments: %s", got)
	}
	if got := b.Eval(`document.querySelectorAll('#timeline .lane .pause').length + '/' + document.querySelectorAll('#timeline .lane .event').length`); got != "1/3" {
		t.Errorf("timeline pauses/events %s, want 1/3", got)
	}
	if got := b.Eval(`String(document.getElementById('why'))`); got != "null" {
		t.Errorf("#why shown for a matched, completed recording")
	}
	for _, sel := range []string{"#agents", "#identifiers", "#participants", "#channels", "#events"} {
		if got := b.Eval(`document.querySelector('` + sel + `').textContent`); got == "" {
			t.Errorf("%s is empty", sel)
		}
	}
	if got := b.Eval(`document.querySelector('#participants b') === null && document.querySelector('#participants').textContent`); !strings.Contains(got, "Carol <b>Caller</b>") {
		t.Errorf("participant markup was not shown as text: %q", got)
	}
	if got := b.Eval(`document.querySelector('#channels').textContent`); !strings.Contains(got, "PCMU/8000") || !strings.Contains(got, "160") || !strings.Contains(got, "Late") {
		t.Errorf("#channels %q", got)
	}
	// The channels' RTP quality: expected, loss bursts, jitter, MOS.
	if got := b.Eval(`[...document.querySelectorAll('#channels tbody tr')].map((tr) => [...tr.cells].slice(3).map((td) => td.textContent).join(' ')).join(' | ')`); got != "150 152 2 1 1 0 0 0 12.4 3.42 | 148 148 0 0 0 0 160 0 3.1 4.38" {
		t.Errorf("#channels numbers %q", got)
	}
	if got := b.Eval(`[...document.querySelectorAll('#channels thead th')].map((th) => th.textContent).join(',')`); !strings.Contains(got, "Expected,Lost,Loss bursts") || !strings.Contains(got, "Jitter (ms),MOS") {
		t.Errorf("#channels headers %q", got)
	}
	// The analytics card: the call's figures, talk and silence per channel, the media errors.
	stats := b.Eval(`[...document.querySelectorAll('#analytics .stat')].map((s) => s.id + '=' + s.querySelector('.stat-value').textContent + ' ' + s.querySelector('.stat-note').textContent).join(' ; ')`)
	for _, want := range []string{"an-mos=3.42 poor", "an-silence=20% 0:00.6", "an-talkover=4% 0:00.1", "an-longest=0:00.6", "an-errors=2+"} {
		if !strings.Contains(stats, want) {
			t.Errorf("analytics figures %q lack %q", stats, want)
		}
	}
	if got := b.Eval(`[...document.querySelectorAll('#talk-bars .talk-row')].map((r) => r.querySelector('.talk-label').textContent + ': ' + ` +
		`r.querySelector('.talk-nums').textContent + ' bar ' + r.querySelector('.talk-fill').style.width).join(' | ')`); got !=
		"caller · Carol <b>Caller</b>: talk 0:01.2 (40%)silence 0:01.8longest silence 0:01.8 bar 40% | "+
			"callee · Alice Agent: talk 0:01.1 (38%)silence 0:01.9longest silence 0:01.8 bar 38%" {
		t.Errorf("talk bars %q", got)
	}
	if got := b.Eval(`[...document.querySelectorAll('#media-errors tbody tr')].map((tr) => [...tr.cells].map((td) => td.textContent).join(' / ')).join(' | ')`); got !=
		"0:02.1 / caller · Carol <b>Caller</b> / SSRC change / SSRC 0x1a2b3c4d → 0x5e6f7a8b | 0:02.4 / callee · Alice Agent / timestamp jump / timestamp jumped by 16000 <i>samples</i>" {
		t.Errorf("media errors %q", got)
	}
	if got := b.Eval(`String(document.querySelector('#analytics b, #analytics i') === null) + ' ' + document.getElementById('media-errors-truncated').textContent`); !strings.HasPrefix(got, "true Truncated") {
		t.Errorf("analytics markup not kept as text, or no truncation note: %q", got)
	}
	fake.mu.Lock()
	points := fake.points
	fake.mu.Unlock()
	if len(points) == 0 || points[len(points)-1] < 200 {
		t.Errorf("waveform points requested %v, want about the canvas width", points)
	}

	// Play: the time advances and the playhead follows.
	b.Step("play", 10*time.Second, chromedp.Click(chromedp.CSS("#play")))
	b.Wait(`document.getElementById('player').currentTime > 0.3`)
	b.Wait(`!document.getElementById('time').textContent.startsWith('0:00 ')`)
	if got := b.Eval(`document.querySelector('#waveforms .playhead').style.left`); got == "" || got == "0%" {
		t.Errorf("playhead at %q while playing", got)
	}
	b.Step("pause", 10*time.Second, chromedp.Click(chromedp.CSS("#play")))
	b.Wait(`document.getElementById('player').paused && document.getElementById('play').textContent.includes('Play')`)
	// Clicking the middle of a waveform seeks to the middle of the recording.
	b.Step("seek", 10*time.Second, chromedp.Click(chromedp.CSS("#waveforms canvas.waveform")))
	b.Wait(`Math.abs(document.getElementById('player').currentTime - 1.5) < 0.25`)
	b.Wait(`document.getElementById('time').textContent === '0:01 / 0:03'`)

	b.Screenshot("ui-web-fake.png") // the detail view, paused half-way
	if got := b.Eval(`[...document.querySelectorAll('#recording .card')].filter((c) => c.scrollWidth > c.clientWidth + 1).map((c) => c.querySelector('h3') ? c.querySelector('h3').textContent : c.className).join(',')`); got != "" {
		t.Errorf("cards of the detail view that scroll sideways at 1280 px: %s", got)
	}

	// The unmatched recording explains itself.
	b.Step("search unmatched", 10*time.Second, chromedp.Evaluate[chromedp.Void](`location.hash = '#/?matched=false'`))
	b.Wait(rows + `.length === 1 && ` + rows + `[0].dataset.id === '` + recUnmatched + `'`)
	if !fake.sawSearch("matched", "false") {
		t.Error("the fake API never got matched=false")
	}
	if got := b.Eval(`document.getElementById('f-matched').value`); got != "false" {
		t.Errorf("#f-matched %q after following a link with matched=false", got)
	}
	b.Step("open unmatched", 10*time.Second, chromedp.Click(chromedp.CSS("#results tr.recording a.recording-link")))
	b.Wait(`document.getElementById('why') !== null && document.getElementById('why').offsetParent !== null`)
	why := b.Eval(`document.getElementById('why').textContent`)
	for _, want := range []string{"Why this call was not recorded or matched", unmatchedReason, "never_activated"} {
		if !strings.Contains(why, want) {
			t.Errorf("#why %q lacks %q", why, want)
		}
	}
	if got := b.Eval(`String(document.getElementById('player'))`); got != "null" {
		t.Error("a player for a recording without audio")
	}
	b.Screenshot("ui-web-fake-unmatched.png")

	// A matched call that was never recorded says why.
	b.Step("open consult", 10*time.Second, chromedp.Evaluate[chromedp.Void](`location.hash = '#/recordings/`+recConsult+`'`))
	b.Wait(`document.getElementById('why') !== null && document.getElementById('agents') !== null`)
	why = b.Eval(`document.getElementById('why').textContent`)
	for _, want := range []string{"Why this call was not recorded", notRecorded} {
		if !strings.Contains(why, want) {
			t.Errorf("#why %q lacks %q", why, want)
		}
	}
	if strings.Contains(why, "matched") && strings.Contains(why, "Not matched") {
		t.Errorf("#why of a matched call talks of matching: %q", why)
	}
	if got := b.Eval(`document.getElementById('agents').textContent`); !strings.Contains(got, "Alice Agent") {
		t.Errorf("#agents %q", got)
	}

	// Back goes to the search with its filters.
	b.Step("back", 10*time.Second, chromedp.Evaluate[chromedp.Void](`history.go(-2)`))
	b.Wait(`location.hash === '#/?matched=false' && ` + rows + `.length === 1`)

	// Live sessions refresh while shown, and stop when left.
	b.Step("live", 10*time.Second, chromedp.Click(chromedp.CSS("#nav-live")))
	b.Wait(`document.querySelectorAll('#sessions tr.session').length === 1`)
	live := b.Eval(`document.querySelector('#sessions tr.session').textContent`)
	for _, want := range []string{"siprec", "waiting", "2m 1", "ucid 00071252811778010999", "no CTI call carries"} {
		if !strings.Contains(live, want) {
			t.Errorf("session row %q lacks %q", live, want)
		}
	}
	b.Screenshot("ui-web-fake-live.png")
	deadline := time.Now().Add(15 * time.Second)
	for {
		fake.mu.Lock()
		n := fake.sessionCalls
		fake.mu.Unlock()
		if n >= 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the live view did not refresh: %d calls", n)
		}
		time.Sleep(100 * time.Millisecond)
	}
	b.Step("leave live", 10*time.Second, chromedp.Click(chromedp.CSS("#nav-recordings")))
	b.Wait(rows + `.length >= 1`)
	fake.mu.Lock()
	before := fake.sessionCalls
	fake.mu.Unlock()
	time.Sleep(2500 * time.Millisecond)
	fake.mu.Lock()
	after := fake.sessionCalls
	fake.mu.Unlock()
	if after > before+1 {
		t.Errorf("the live view kept polling after it was left: %d → %d calls", before, after)
	}

	// A token becomes necessary: the UI asks for one, stores it and retries.
	fake.setRequireToken(true)
	b.Step("reload", 30*time.Second, chromedp.Reload())
	b.Wait(`!document.getElementById('token-form').hidden && document.getElementById('status').textContent.includes('token')`)
	if got := b.Eval(`String(` + rows + `.length)`); got != "0" {
		t.Errorf("%s rows shown without a token", got)
	}
	b.Screenshot("ui-web-fake-token.png")
	b.Step("enter token", 10*time.Second,
		chromedp.SendKeys(chromedp.CSS("#token-input"), testToken),
		chromedp.Click(chromedp.CSS("#token-submit")))
	b.Wait(rows + `.length >= 1 && document.getElementById('token-form').hidden`)
	if got := b.Eval(`localStorage.getItem('siphook_token')`); got != testToken {
		t.Errorf("stored token %q", got)
	}
	// The <audio> element cannot send headers: it must get in with the cookie.
	b.Step("open recording with token", 10*time.Second,
		chromedp.Evaluate[chromedp.Void](`location.hash = '#/recordings/`+recMatched+`'`))
	b.Wait(`document.getElementById('player') !== null && document.getElementById('player').readyState >= 1 && ` +
		`Math.abs(document.getElementById('player').duration - 3) < 0.05 && document.querySelectorAll('#waveforms canvas.waveform').length === 2`)
	fake.mu.Lock()
	byHeader, byCookie := fake.authBy["other header"], fake.authBy["audio cookie"]
	fake.mu.Unlock()
	if byHeader == 0 || byCookie == 0 {
		t.Errorf("authorised API calls: %d by header, %d audio by cookie; want both", byHeader, byCookie)
	}

	// A token without the right gets a clear message.
	fake.mu.Lock()
	fake.forbidLive = true
	fake.mu.Unlock()
	b.Step("live forbidden", 10*time.Second, chromedp.Click(chromedp.CSS("#nav-live")))
	b.Wait(`document.getElementById('status').classList.contains('error') && ` +
		`document.getElementById('status').textContent.includes('this token may not do that')`)

	b.CheckPageErrors()
}
