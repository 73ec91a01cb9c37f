package api

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/siphook/siphook/internal/audiotest"
	"github.com/siphook/siphook/recorder"
)

const (
	readToken  = "read-token-0123456789"
	adminToken = "admin-token-0123456789"
)

var withTokens = Config{Tokens: []Token{
	{Name: "ui", Token: readToken, Role: RoleRead},
	{Name: "ops", Token: adminToken, Role: RoleAdmin},
}}

// env is a server over a fresh recordings directory, with a recorder feeding its index.
type env struct {
	dir string
	ix  *Index
	rec *recorder.Recorder
	srv *Server
	h   http.Handler
}

func newEnv(t *testing.T, cfg Config, opts ...Option) *env {
	t.Helper()
	dir := t.TempDir()
	ix := openIndex(t, dir)
	srv, err := NewServer(cfg, ix, dir, append([]Option{WithLogger(quiet)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return &env{dir: dir, ix: ix, rec: newRecorder(t, dir, ix), srv: srv, h: srv.Handler()}
}

// do serves one request from loopback, as modified by edits.
func (e *env) do(method, target string, edits ...func(*http.Request)) *httptest.ResponseRecorder {
	r := httptest.NewRequest(method, target, nil)
	r.RemoteAddr = "127.0.0.1:5555"
	for _, edit := range edits {
		edit(r)
	}
	w := httptest.NewRecorder()
	e.h.ServeHTTP(w, r)
	return w
}

func header(k, v string) func(*http.Request)  { return func(r *http.Request) { r.Header.Set(k, v) } }
func bearer(token string) func(*http.Request) { return header("Authorization", "Bearer "+token) }
func from(addr string) func(*http.Request)    { return func(r *http.Request) { r.RemoteAddr = addr } }
func cookie(token string) func(*http.Request) {
	return func(r *http.Request) { r.AddCookie(&http.Cookie{Name: cookieName, Value: token}) }
}

func decode[T any](t *testing.T, w *httptest.ResponseRecorder) T {
	t.Helper()
	var v T
	if ct := w.Header().Get("Content-Type"); ct != "application/json" {
		t.Fatalf("Content-Type %q", ct)
	}
	if err := json.Unmarshal(w.Body.Bytes(), &v); err != nil {
		t.Fatalf("%s: %v", w.Body, err)
	}
	return v
}

func TestAuth(t *testing.T) {
	tests := []struct {
		name   string
		cfg    Config
		method string
		path   string
		edits  []func(*http.Request)
		want   int
	}{
		{"no tokens, loopback", Config{}, "GET", "/api/v1/recordings", nil, 200},
		{"no tokens, 127/8", Config{}, "GET", "/api/v1/sessions", []func(*http.Request){from("127.3.2.1:9")}, 200},
		{"no tokens, ::1", Config{}, "GET", "/api/v1/recordings", []func(*http.Request){from("[::1]:9")}, 200},
		{"no tokens, v4-mapped loopback", Config{}, "GET", "/api/v1/recordings", []func(*http.Request){from("[::ffff:127.0.0.1]:9")}, 200},
		{"no tokens, loopback is admin", Config{}, "POST", "/api/v1/index/rebuild", nil, 200},
		{"no tokens, not loopback", Config{}, "GET", "/api/v1/recordings", []func(*http.Request){from("192.0.2.1:1234")}, 403},
		{"no tokens, not loopback, v6", Config{}, "GET", "/api/v1/recordings", []func(*http.Request){from("[2001:db8::1]:1234")}, 403},
		{"no tokens, not loopback, a token does not help", Config{}, "GET", "/api/v1/recordings", []func(*http.Request){from("192.0.2.1:1234"), bearer(adminToken)}, 403},
		{"no tokens, openapi from anywhere", Config{}, "GET", "/api/v1/openapi.json", []func(*http.Request){from("192.0.2.1:1234")}, 200},
		{"missing token", withTokens, "GET", "/api/v1/recordings", nil, 401},
		{"wrong token", withTokens, "GET", "/api/v1/recordings", []func(*http.Request){bearer("wrong-token-0123456789")}, 401},
		{"token prefix", withTokens, "GET", "/api/v1/recordings", []func(*http.Request){bearer(readToken[:10])}, 401},
		{"basic auth", withTokens, "GET", "/api/v1/recordings", []func(*http.Request){header("Authorization", "Basic "+readToken)}, 401},
		{"read token", withTokens, "GET", "/api/v1/recordings", []func(*http.Request){bearer(readToken)}, 200},
		{"scheme is case-insensitive", withTokens, "GET", "/api/v1/sessions", []func(*http.Request){header("Authorization", "bearer "+readToken)}, 200},
		{"read token, admin endpoint", withTokens, "POST", "/api/v1/index/rebuild", []func(*http.Request){bearer(readToken)}, 403},
		{"admin token, admin endpoint", withTokens, "POST", "/api/v1/index/rebuild", []func(*http.Request){bearer(adminToken)}, 200},
		{"admin token reads", withTokens, "GET", "/api/v1/recordings", []func(*http.Request){bearer(adminToken)}, 200},
		{"cookie on GET", withTokens, "GET", "/api/v1/recordings", []func(*http.Request){cookie(readToken)}, 200},
		{"cookie on HEAD", withTokens, "HEAD", "/api/v1/recordings", []func(*http.Request){cookie(readToken)}, 200},
		{"cookie on POST", withTokens, "POST", "/api/v1/index/rebuild", []func(*http.Request){cookie(adminToken)}, 401},
		{"the header wins over the cookie", withTokens, "GET", "/api/v1/recordings", []func(*http.Request){bearer("wrong-token-0123456789"), cookie(readToken)}, 401},
		{"tokens, not loopback", withTokens, "GET", "/api/v1/recordings", []func(*http.Request){from("192.0.2.1:1234"), bearer(readToken)}, 200},
		{"openapi needs no token", withTokens, "GET", "/api/v1/openapi.json", nil, 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var logs bytes.Buffer
			e := newEnv(t, tt.cfg, WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))
			w := e.do(tt.method, tt.path, tt.edits...)
			if w.Code != tt.want {
				t.Fatalf("status %d, want %d: %s", w.Code, tt.want, w.Body)
			}
			if got := w.Header().Get("WWW-Authenticate"); (tt.want == 401) != (got == `Bearer realm="siphook"`) {
				t.Errorf("WWW-Authenticate %q", got)
			}
			if tt.want >= 400 {
				if msg := decode[map[string]string](t, w)["error"]; msg == "" {
					t.Errorf("no error message: %s", w.Body)
				}
				if !strings.Contains(logs.String(), "level=WARN") || !strings.Contains(logs.String(), "remote=") ||
					!strings.Contains(logs.String(), "path="+tt.path) {
					t.Errorf("refusal not logged at warn with remote and path: %s", logs.String())
				}
			}
			for _, secret := range []string{readToken, adminToken, readToken[:10], "wrong-token"} {
				if strings.Contains(logs.String(), secret) {
					t.Errorf("logs reveal a token: %s", logs.String())
				}
			}
		})
	}
}

func TestNewServerErrors(t *testing.T) {
	dir := t.TempDir()
	ix := openIndex(t, dir)
	if _, err := NewServer(Config{Tokens: []Token{{Name: "x", Token: "short", Role: RoleRead}}}, ix, dir); err == nil {
		t.Error("invalid config accepted")
	}
	if _, err := NewServer(Config{}, nil, dir); err == nil {
		t.Error("nil index accepted")
	}
	reg := prometheus.NewRegistry()
	if _, err := NewServer(Config{}, ix, dir, WithRegisterer(reg)); err != nil {
		t.Fatal(err)
	}
	if _, err := NewServer(Config{}, ix, dir, WithRegisterer(reg)); err == nil {
		t.Error("second server on one registry: no error")
	}
}

func TestListRecordings(t *testing.T) {
	e := newEnv(t, Config{})
	fixture(t, e.rec)
	w := e.do("GET", "/api/v1/recordings?tenant=acme&limit=1")
	page := decode[Page](t, w)
	if w.Code != 200 || page.Total != 2 || len(page.Recordings) != 1 || page.Recordings[0].ID != "d4" || page.NextCursor == "" {
		t.Fatalf("%d %s", w.Code, w.Body)
	}
	w = e.do("GET", "/api/v1/recordings?tenant=acme&limit=1&cursor="+page.NextCursor)
	if page := decode[Page](t, w); len(page.Recordings) != 1 || page.Recordings[0].ID != "d1" || page.NextCursor != "" {
		t.Fatalf("%d %s", w.Code, w.Body)
	}
	if strings.Contains(w.Body.String(), "next_cursor") {
		t.Errorf("next_cursor present on the last page: %s", w.Body)
	}
	for _, tt := range []struct{ query, param string }{
		{"limit=0", "limit"}, {"from=x", "from"}, {"cursor=zzzz", "cursor"}, {"matched=maybe", "matched"},
		{"unknown=1&state=gone", "state"},
	} {
		w := e.do("GET", "/api/v1/recordings?"+tt.query)
		if msg := decode[map[string]string](t, w)["error"]; w.Code != 400 || !strings.Contains(msg, "parameter "+tt.param) {
			t.Errorf("%s: %d %q", tt.query, w.Code, msg)
		}
	}
	// The mux answers other methods.
	if w := e.do("DELETE", "/api/v1/recordings"); w.Code != http.StatusMethodNotAllowed {
		t.Errorf("DELETE: %d", w.Code)
	}
}

func TestGetRecording(t *testing.T) {
	e := newEnv(t, Config{})
	id := record(t, e.rec, "rec-1", t0, recorder.Document{Source: "siprec"}, make([]int16, 800))
	onDisk, err := os.ReadFile(filepath.Join(e.dir, "2026/11/21/rec-1.json"))
	if err != nil {
		t.Fatal(err)
	}
	w := e.do("GET", "/api/v1/recordings/"+id)
	if w.Code != 200 || !bytes.Equal(w.Body.Bytes(), onDisk) || w.Header().Get("Content-Type") != "application/json" {
		t.Fatalf("%d %q: %s", w.Code, w.Header().Get("Content-Type"), w.Body)
	}
	for _, path := range []string{"/api/v1/recordings/nope", "/api/v1/recordings/..%2F..%2Fetc%2Fpasswd", "/api/v1/recordings/%2e%2e"} {
		if w := e.do("GET", path); w.Code != 404 {
			t.Errorf("%s: %d", path, w.Code)
		}
	}
	// A document deleted from the disk (retention) leaves the index at the first request that misses it.
	os.Remove(filepath.Join(e.dir, "2026/11/21/rec-1.json"))
	if w := e.do("GET", "/api/v1/recordings/"+id); w.Code != 404 {
		t.Errorf("deleted document: %d", w.Code)
	}
	if _, ok := e.ix.Get(id); ok {
		t.Error("deleted document still indexed")
	}
}

func TestAudio(t *testing.T) {
	e := newEnv(t, Config{})
	tone := audiotest.Sine(440, 0.5, 8000, 0, 8000)
	id := record(t, e.rec, "rec-1", t0, recorder.Document{Source: "siprec"}, tone, tone)
	file, err := os.ReadFile(filepath.Join(e.dir, "2026/11/21/rec-1.wav"))
	if err != nil {
		t.Fatal(err)
	}
	n := len(file)
	if n != 44+8000*4 {
		t.Fatalf("WAV of %d bytes", n)
	}
	etag := e.do("GET", "/api/v1/recordings/"+id+"/audio").Header().Get("ETag")
	tests := []struct {
		name   string
		method string
		edits  []func(*http.Request)
		status int
		body   []byte
		crange string
	}{
		{"whole", "GET", nil, 200, file, ""},
		{"first 100 bytes", "GET", []func(*http.Request){header("Range", "bytes=0-99")}, 206, file[:100], fmt.Sprintf("bytes 0-99/%d", n)},
		{"from 100", "GET", []func(*http.Request){header("Range", "bytes=100-")}, 206, file[100:], fmt.Sprintf("bytes 100-%d/%d", n-1, n)},
		{"last 50", "GET", []func(*http.Request){header("Range", "bytes=-50")}, 206, file[n-50:], fmt.Sprintf("bytes %d-%d/%d", n-50, n-1, n)},
		{"unsatisfiable", "GET", []func(*http.Request){header("Range", fmt.Sprintf("bytes=%d-", n))}, 416, nil, fmt.Sprintf("bytes */%d", n)},
		{"HEAD", "HEAD", nil, 200, nil, ""},
		{"not modified", "GET", []func(*http.Request){header("If-None-Match", etag)}, 304, nil, ""},
		{"If-Range with the ETag", "GET", []func(*http.Request){header("Range", "bytes=0-9"), header("If-Range", etag)}, 206, file[:10], fmt.Sprintf("bytes 0-9/%d", n)},
		{"If-Range with another ETag", "GET", []func(*http.Request){header("Range", "bytes=0-9"), header("If-Range", `"old"`)}, 200, file, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := e.do(tt.method, "/api/v1/recordings/"+id+"/audio", tt.edits...)
			if w.Code != tt.status {
				t.Fatalf("status %d, want %d", w.Code, tt.status)
			}
			if tt.status != 416 && !bytes.Equal(w.Body.Bytes(), tt.body) {
				t.Errorf("body of %d bytes, want %d", w.Body.Len(), len(tt.body))
			}
			if got := w.Header().Get("Content-Range"); got != tt.crange {
				t.Errorf("Content-Range %q, want %q", got, tt.crange)
			}
			if tt.status == 200 {
				h := w.Header()
				if h.Get("Content-Type") != "audio/wav" || h.Get("Accept-Ranges") != "bytes" || h.Get("ETag") != etag ||
					h.Get("Last-Modified") == "" || h.Get("Content-Length") != fmt.Sprint(n) {
					t.Errorf("headers %v", h)
				}
			}
		})
	}
	if etag == "" {
		t.Error("no ETag")
	}

	// Through a real connection too: the status-recording writer must keep io.ReaderFrom working.
	ts := httptest.NewServer(e.h)
	defer ts.Close()
	resp, err := http.Get(ts.URL + "/api/v1/recordings/" + id + "/audio")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !bytes.Equal(body, file) {
		t.Errorf("over HTTP: %d, %d bytes", resp.StatusCode, len(body))
	}
}

func TestAudioMissing(t *testing.T) {
	e := newEnv(t, Config{})
	writeDoc(t, e.rec, recorder.Document{RecordingID: "no-audio", Source: "siprec", State: recorder.StateNeverActivated, Start: t0})
	id := record(t, e.rec, "rec-1", t0, recorder.Document{}, make([]int16, 80))
	os.Remove(filepath.Join(e.dir, "2026/11/21/rec-1.wav"))
	for _, path := range []string{"/api/v1/recordings/no-audio/audio", "/api/v1/recordings/no-audio/waveform",
		"/api/v1/recordings/" + id + "/audio", "/api/v1/recordings/" + id + "/waveform", "/api/v1/recordings/nope/audio"} {
		if w := e.do("GET", path); w.Code != 404 || decode[map[string]string](t, w)["error"] == "" {
			t.Errorf("%s: %d %s", path, w.Code, w.Body)
		}
	}
	if _, ok := e.ix.Get(id); !ok {
		t.Error("a recording whose document is still there left the index")
	}
}

func TestWaveform(t *testing.T) {
	e := newEnv(t, Config{})
	const n = 8000
	loud := audiotest.Sine(400, 0.9, 8000, 0, n) // 20 samples a period: every bucket of 800 has peaks
	id := record(t, e.rec, "rec-1", t0, recorder.Document{Source: "siprec",
		Channels: []recorder.ChannelInfo{{Index: 0, Label: "caller"}, {Index: 1, Label: "callee"}}}, loud, make([]int16, n))

	wf := decode[waveform](t, e.do("GET", "/api/v1/recordings/"+id+"/waveform?points=10"))
	if wf.SampleRate != 8000 || wf.Samples != n || wf.DurationSec != 1 || len(wf.Channels) != 2 {
		t.Fatalf("%+v", wf)
	}
	for c, label := range []string{"caller", "callee"} {
		ch := wf.Channels[c]
		if ch.Index != c || ch.Label != label || len(ch.Peaks) != 10 {
			t.Fatalf("channel %d: %d %q, %d peaks", c, ch.Index, ch.Label, len(ch.Peaks))
		}
		for i, p := range ch.Peaks {
			if c == 0 && (p[0] > -0.85 || p[1] < 0.85 || p[0] < -0.91 || p[1] > 0.91) {
				t.Errorf("loud channel, bucket %d: %v", i, p)
			}
			if c == 1 && p != [2]float64{} {
				t.Errorf("silent channel, bucket %d: %v", i, p)
			}
		}
	}
	if wf := decode[waveform](t, e.do("GET", "/api/v1/recordings/"+id+"/waveform")); len(wf.Channels[0].Peaks) != defaultPoints {
		t.Errorf("default: %d points", len(wf.Channels[0].Peaks))
	}
	if wf := decode[waveform](t, e.do("GET", "/api/v1/recordings/"+id+"/waveform?points=4000")); len(wf.Channels[1].Peaks) != 4000 {
		t.Errorf("4000: %d points", len(wf.Channels[1].Peaks))
	}
	for _, p := range []string{"0", "4001", "-1", "many", "1.5"} {
		w := e.do("GET", "/api/v1/recordings/"+id+"/waveform?points="+p)
		if msg := decode[map[string]string](t, w)["error"]; w.Code != 400 || !strings.Contains(msg, "points") {
			t.Errorf("points=%s: %d %q", p, w.Code, msg)
		}
	}

	// A recording still being written: the waveform follows the file as it grows, not the cached result.
	rec, err := e.rec.Start(recorder.Spec{ID: "live", Channels: 1, Start: t0})
	if err != nil {
		t.Fatal(err)
	}
	defer rec.Close(nil)
	for _, samples := range []int64{1000, 3000} {
		rec.Channel(0).WriteSamples(samples-1000, audiotest.Sine(400, 0.5, 8000, 0, 1000))
		if err := rec.Flush(); err != nil {
			t.Fatal(err)
		}
		wf := decode[waveform](t, e.do("GET", "/api/v1/recordings/live/waveform?points=4000"))
		if wf.Samples != samples || len(wf.Channels[0].Peaks) != int(samples) {
			t.Errorf("live recording at %d samples: %d samples, %d peaks", samples, wf.Samples, len(wf.Channels[0].Peaks))
		}
	}
}

// wavFile is a canonical 16-bit PCM file; dataSize -1 means the right one.
func wavFile(channels int, dataSize int, samples ...int16) []byte {
	var b bytes.Buffer
	data := len(samples) * 2
	if dataSize < 0 {
		dataSize = data
	}
	le := func(v any) { binary.Write(&b, binary.LittleEndian, v) }
	b.WriteString("RIFF")
	le(uint32(36 + data))
	b.WriteString("WAVEfmt ")
	le(uint32(16))
	le(uint16(1))
	le(uint16(channels))
	le(uint32(8000))
	le(uint32(8000 * channels * 2))
	le(uint16(channels * 2))
	le(uint16(16))
	b.WriteString("data")
	le(uint32(dataSize))
	for _, s := range samples {
		le(s)
	}
	return b.Bytes()
}

func TestPeaks(t *testing.T) {
	mono := []int16{0, 100, -200, 32767, -32768, 5, 7} // the 7th is cut off by the data size in one case
	tests := []struct {
		name    string
		file    []byte
		points  int
		want    [][][2]float64
		samples int64
	}{
		{"three buckets", wavFile(1, 12, mono...), 3, [][][2]float64{{{0, 0.0031}, {-0.0061, 1}, {-1, 0.0002}}}, 6},
		{"data size 0: what is there", wavFile(1, 0, mono[:6]...), 3, [][][2]float64{{{0, 0.0031}, {-0.0061, 1}, {-1, 0.0002}}}, 6},
		{"data size past the end", wavFile(1, 1000, mono[:6]...), 2, [][][2]float64{{{-0.0061, 0.0031}, {-1, 1}}}, 6},
		{"more points than samples", wavFile(1, -1, 1, 2), 10, [][][2]float64{{{0, 0}, {0.0001, 0.0001}}}, 2},
		{"stereo, trailing half frame", wavFile(2, 0, 10, -10, 20, -20, 99), 1, [][][2]float64{{{0.0003, 0.0006}}, {{-0.0006, -0.0003}}}, 2},
		{"no samples", wavFile(2, -1), 5, [][][2]float64{{}, {}}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wf, err := peaks(bytes.NewReader(tt.file), int64(len(tt.file)), tt.points)
			if err != nil {
				t.Fatal(err)
			}
			if wf.Samples != tt.samples || len(wf.Channels) != len(tt.want) {
				t.Fatalf("%d samples, %d channels", wf.Samples, len(wf.Channels))
			}
			for c := range tt.want {
				if fmt.Sprint(wf.Channels[c].Peaks) != fmt.Sprint(tt.want[c]) {
					t.Errorf("channel %d: %v, want %v", c, wf.Channels[c].Peaks, tt.want[c])
				}
			}
		})
	}
	for name, file := range map[string][]byte{
		"empty":    nil,
		"RIFX":     append([]byte("RIFX"), wavFile(1, -1, 1)[4:]...),
		"8-bit":    append(append(wavFile(1, -1)[:34:34], 8, 0), wavFile(1, -1)[36:]...),
		"float":    append(append(wavFile(1, -1)[:20:20], 3, 0), wavFile(1, -1)[22:]...),
		"too many": append(append(wavFile(1, -1)[:22:22], 200, 0), wavFile(1, -1)[24:]...),
	} {
		if _, err := peaks(bytes.NewReader(file), int64(len(file)), 10); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

type fakeSessions []LiveSession

func (f fakeSessions) LiveSessions() []LiveSession { return f }

func TestSessions(t *testing.T) {
	if w := newEnv(t, Config{}).do("GET", "/api/v1/sessions"); w.Code != 200 || w.Body.String() != "{\"sessions\":[]}\n" {
		t.Errorf("without a lister: %d %s", w.Code, w.Body)
	}
	live := fakeSessions{
		{ID: "s1", Source: "siprec", State: "waiting", Since: t0, WaitingReason: "no CTI call carries ucid 7 yet"},
		{ID: "s2", Source: "audiohook", State: "active", Since: t0, Tenant: "acme", Keys: []Key{{"conversation_id", "c"}},
			ConversationID: "c", Agents: []Agent{{"u-1", "Alice"}}, MatchedBy: "conversation_id c"},
	}
	w := newEnv(t, Config{}, WithSessions(live)).do("GET", "/api/v1/sessions")
	got := decode[map[string][]map[string]any](t, w)["sessions"]
	if len(got) != 2 {
		t.Fatalf("%s", w.Body)
	}
	for _, absent := range []string{"conversation_id", "agents", "matched_by"} {
		if _, ok := got[0][absent]; ok {
			t.Errorf("waiting session has %s: %s", absent, w.Body)
		}
	}
	if keys, ok := got[0]["keys"].([]any); !ok || len(keys) != 0 || got[0]["tenant"] != "" || got[0]["waiting_reason"] == nil {
		t.Errorf("waiting session: %v", got[0])
	}
	if _, ok := got[1]["waiting_reason"]; ok || got[1]["conversation_id"] != "c" || got[1]["since"] != "2026-11-21T10:00:00Z" {
		t.Errorf("active session: %v", got[1])
	}
	if live[0].Keys != nil {
		t.Error("the lister's sessions were modified")
	}
}

func TestRebuildEndpoint(t *testing.T) {
	e := newEnv(t, withTokens)
	fixture(t, e.rec)
	os.Remove(filepath.Join(e.dir, "2026/11/21/d1.json"))
	w := e.do("POST", "/api/v1/index/rebuild", bearer(adminToken))
	if got := decode[map[string]int](t, w); w.Code != 200 || got["recordings"] != 4 || e.ix.Len() != 4 {
		t.Errorf("%d %s, %d indexed", w.Code, w.Body, e.ix.Len())
	}
}

func TestMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	e := newEnv(t, Config{}, WithRegisterer(reg))
	fixture(t, e.rec)
	e.do("GET", "/api/v1/recordings")
	e.do("GET", "/api/v1/recordings")
	e.do("GET", "/api/v1/recordings/nope")
	e.do("GET", "/api/v1/nothing-here")
	e.do("PUT", "/api/v1/sessions")
	e.do("GET", "/api/v1/sessions", from("192.0.2.1:1"))
	want := `
# HELP siphook_api_requests_total API requests answered, by route (the mux pattern; "unmatched" for 404 and 405 of the mux) and status code.
# TYPE siphook_api_requests_total counter
siphook_api_requests_total{code="200",route="GET /api/v1/recordings"} 2
siphook_api_requests_total{code="403",route="GET /api/v1/sessions"} 1
siphook_api_requests_total{code="404",route="GET /api/v1/recordings/{id}"} 1
siphook_api_requests_total{code="404",route="unmatched"} 1
siphook_api_requests_total{code="405",route="unmatched"} 1
# HELP siphook_index_recordings Recordings in the index.
# TYPE siphook_index_recordings gauge
siphook_index_recordings 5
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want)); err != nil {
		t.Error(err)
	}
}

func TestRoutes(t *testing.T) {
	got := newEnv(t, Config{}).srv.Routes()
	if len(got) != 7 || got[0] != "GET /api/v1/recordings" {
		t.Errorf("%q", got)
	}
}
