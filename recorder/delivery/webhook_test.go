package delivery

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/siphook/siphook/recorder"
)

// hookRequest is a request a test webhook receiver got.
type hookRequest struct {
	path   string
	header http.Header
	body   []byte
}

// hookServer is a webhook receiver answering with status(n) for its n-th request (from 1).
type hookServer struct {
	*httptest.Server
	mu     sync.Mutex
	reqs   []hookRequest
	status func(n int) int
}

func newHookServer(t *testing.T, status func(n int) int) *hookServer {
	h := &hookServer{status: status}
	h.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		h.mu.Lock()
		h.reqs = append(h.reqs, hookRequest{path: r.URL.Path, header: r.Header.Clone(), body: body})
		n := len(h.reqs)
		h.mu.Unlock()
		if r.Method != http.MethodPost {
			t.Errorf("method %s", r.Method)
		}
		w.WriteHeader(h.status(n))
	}))
	t.Cleanup(h.Close)
	return h
}

func (h *hookServer) requests(path string) []hookRequest {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []hookRequest
	for _, r := range h.reqs {
		if path == "" || r.path == path {
			out = append(out, r)
		}
	}
	return out
}

// checkSignature recomputes X-Siphook-Signature as a receiver would.
func checkSignature(t *testing.T, secret string, r hookRequest) {
	t.Helper()
	ts := r.header.Get("X-Siphook-Timestamp")
	if _, err := strconv.ParseInt(ts, 10, 64); err != nil {
		t.Errorf("timestamp %q: %v", ts, err)
	}
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(ts + "." + string(r.body)))
	want := "sha256=" + hex.EncodeToString(mac.Sum(nil))
	if got := r.header.Get("X-Siphook-Signature"); !hmac.Equal([]byte(got), []byte(want)) {
		t.Errorf("signature %q, want %q", got, want)
	}
}

// TestWebhookEvents: each finished state POSTs its event, signed, to the webhooks that want it; a
// recording still in progress posts nothing.
func TestWebhookEvents(t *testing.T) {
	dir := t.TempDir()
	clock := newQClock(qT0)
	srv := newHookServer(t, func(int) int { return http.StatusNoContent })
	cfg := qConfig()
	cfg.Webhooks = []WebhookConfig{
		{Name: "all", URL: srv.URL + "/all", Secret: "s3cr3t-all"},
		{Name: "problems", URL: srv.URL + "/problems", Secret: "s3cr3t-problems", Events: []string{EventFailed, EventNotRecorded}},
	}
	e := newQEnv(t, cfg, dir, nil, clock.option())
	states := map[string]string{
		recorder.StateCompleted:      "recording.completed",
		recorder.StateFailed:         "recording.failed",
		recorder.StateNeverActivated: "recording.not_recorded",
		recorder.StateRecording:      "",
	}
	for state := range states {
		r := writeQRecording(t, dir, "rec-"+strings.ReplaceAll(state, "_", "-"), 100, state)
		if err := e.Enqueue(r.docRel, r.doc); err != nil {
			t.Fatal(err)
		}
	}
	e.run()
	waitUntil(t, "delivered", func() bool { return e.Pending() == 0 })

	for _, c := range []struct {
		path, secret string
		events       []string
	}{
		{"/all", "s3cr3t-all", []string{"recording.completed", "recording.failed", "recording.not_recorded"}},
		{"/problems", "s3cr3t-problems", []string{"recording.failed", "recording.not_recorded"}},
	} {
		reqs := srv.requests(c.path)
		got := map[string]bool{}
		for _, r := range reqs {
			checkSignature(t, c.secret, r)
			var p WebhookPayload
			if err := json.Unmarshal(r.body, &p); err != nil {
				t.Fatal(err)
			}
			if h := r.header.Get("X-Siphook-Event"); h != p.Event {
				t.Errorf("%s: header event %q, body %q", c.path, h, p.Event)
			}
			if states[p.Document.State] != p.Event || p.RecordingID != p.Document.RecordingID {
				t.Errorf("%s: event %q for recording %q in state %q", c.path, p.Event, p.RecordingID, p.Document.State)
			}
			if ts := r.header.Get("X-Siphook-Timestamp"); ts != strconv.FormatInt(qT0.Unix(), 10) {
				t.Errorf("timestamp %s, want the clock's %d", ts, qT0.Unix())
			}
			if !p.Time.Equal(qT0) {
				t.Errorf("time %v, want %v", p.Time, qT0)
			}
			if ct := r.header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("content type %q", ct)
			}
			got[p.Event] = true
		}
		if len(reqs) != len(c.events) {
			t.Errorf("%s: %d requests, want %d", c.path, len(reqs), len(c.events))
		}
		for _, ev := range c.events {
			if !got[ev] {
				t.Errorf("%s: no %s", c.path, ev)
			}
		}
	}
	if got := e.metric(t, "siphook_delivery_delivered_total", "all"); got != 3 {
		t.Errorf("delivered_total{all} = %v, want 3", got)
	}
}

// TestWebhookRetries: 5xx answers are retried with the same body; the first 2xx ends the job.
func TestWebhookRetries(t *testing.T) {
	dir := t.TempDir()
	srv := newHookServer(t, func(n int) int {
		if n <= 3 {
			return []int{http.StatusInternalServerError, http.StatusBadGateway, http.StatusServiceUnavailable}[n-1]
		}
		return http.StatusOK
	})
	cfg := qConfig()
	cfg.Webhooks = []WebhookConfig{{Name: "hook", URL: srv.URL, Secret: "k"}}
	e := newQEnv(t, cfg, dir, nil)
	r := writeQRecording(t, dir, "r1", 0, recorder.StateFailed)
	if err := e.Enqueue(r.docRel, r.doc); err != nil {
		t.Fatal(err)
	}
	e.run()
	waitUntil(t, "delivered", func() bool { return e.Pending() == 0 && e.quiet() })
	reqs := srv.requests("")
	if len(reqs) != 4 {
		t.Fatalf("%d requests, want 4 (three 5xx, one 200)", len(reqs))
	}
	for _, req := range reqs {
		checkSignature(t, "k", req)
		if string(req.body) != string(reqs[0].body) {
			t.Error("the body changed between attempts")
		}
	}
	if got := e.metric(t, "siphook_delivery_failures_total", "hook"); got != 3 {
		t.Errorf("failures_total = %v, want 3", got)
	}
	if got := e.metric(t, "siphook_delivery_delivered_total", "hook"); got != 1 {
		t.Errorf("delivered_total = %v, want 1", got)
	}
	if got := e.metric(t, "siphook_delivery_bytes_total", "hook"); got != float64(len(reqs[0].body)) {
		t.Errorf("bytes_total = %v, want %d", got, len(reqs[0].body))
	}
}

// TestWebhookNoSecretInLogs: whatever happens, the secret shows in no log line and no error; the configs
// print redacted.
func TestWebhookNoSecretInLogs(t *testing.T) {
	const secret = "very-secret-hmac-key"
	dir := t.TempDir()
	srv := newHookServer(t, func(n int) int {
		if n <= 2 {
			return http.StatusInternalServerError
		}
		return http.StatusBadRequest // permanent: to the buffer
	})
	cfg := qConfig()
	cfg.FastAttempts = 3
	hook := WebhookConfig{Name: "hook", URL: srv.URL, Secret: secret}
	cfg.Webhooks = []WebhookConfig{hook, {Name: "nowhere", URL: "http://127.0.0.1:1/", Secret: secret}}
	e := newQEnv(t, cfg, dir, nil)
	r := writeQRecording(t, dir, "r1", 0, recorder.StateCompleted)
	if err := e.Enqueue(r.docRel, r.doc); err != nil {
		t.Fatal(err)
	}
	e.run()
	waitUntil(t, "both in the retry buffer", func() bool { _, _, b, _, _ := e.states(); return b == 2 })
	e.logs.logger().Info("config", "webhook", hook, "target", TargetConfig{Name: "s3", Type: TypeS3, SecretKey: secret})
	out := e.logs.String()
	if strings.Contains(out, secret) {
		t.Errorf("secret in the log:\n%s", out)
	}
	if !strings.Contains(out, "HTTP 400") || !strings.Contains(out, "HTTP 500") {
		t.Errorf("the log does not say what happened:\n%s", out)
	}
	for _, s := range []string{fmt.Sprint(hook), fmt.Sprintf("%+v", cfg.Webhooks), fmt.Sprint(TargetConfig{Password: secret, SecretKey: secret})} {
		if strings.Contains(s, secret) || !strings.Contains(s, "[redacted]") {
			t.Errorf("printed config not redacted: %s", s)
		}
	}
	bad := cfg
	bad.Webhooks = []WebhookConfig{{Name: "x y", URL: "ftp://user:" + secret + "@host/", Secret: secret, Timeout: -1}}
	if err := bad.Validate(); err == nil || strings.Contains(err.Error(), secret) {
		t.Errorf("Validate: %v", err)
	}
}

// TestWebhookNoRedirect: a redirect is a failure, not a GET to somewhere else.
func TestWebhookNoRedirect(t *testing.T) {
	var mu sync.Mutex
	gets := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet {
			mu.Lock()
			gets++
			mu.Unlock()
		}
		http.Redirect(w, r, "/elsewhere", http.StatusFound)
	}))
	defer srv.Close()
	w := newWebhook(WebhookConfig{Name: "h", URL: srv.URL, Secret: "k", Timeout: 5 * time.Second})
	rec := &jobFile{Event: wireCompleted, RecordingID: "r1", Created: qT0, Document: recorder.Document{RecordingID: "r1"}}
	if _, err := w.send(t.Context(), rec, qT0); err == nil || !strings.Contains(err.Error(), "302") {
		t.Errorf("send: %v, want an HTTP 302 error", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if gets != 0 {
		t.Errorf("%d GETs: the redirect was followed", gets)
	}
}
