package webhook

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/siphook/siphook/cti"
)

const token = "0123456789abcdef-token"

func post(t *testing.T, h http.Handler, auth, body string) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(http.MethodPost, Path, strings.NewReader(body))
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

func TestWebhook(t *testing.T) {
	srv, err := New(Config{Listen: "127.0.0.1:0", Token: token}, nil)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)
	srv.now = func() time.Time { return now }
	var mu sync.Mutex
	var got []cti.Event
	h := srv.Handler(func(e cti.Event) { mu.Lock(); got = append(got, e); mu.Unlock() })
	const conv = `"conversation_id":"BE9D3155-C3B6-4A6C-8FF1-5C48B4585135"`
	for _, tc := range []struct {
		name   string
		auth   string
		body   string
		status int
		events int
	}{
		{"no token", "", `{` + conv + `,"state":"ACTIVE"}`, 401, 0},
		{"wrong token", "Bearer not-the-token-at-all", `{` + conv + `,"state":"ACTIVE"}`, 401, 0},
		{"token without Bearer", token, `{` + conv + `,"state":"ACTIVE"}`, 401, 0},
		{"one event", "Bearer " + token, `{` + conv + `,"state":"ACTIVE","uui":["00FA080019001038F725B3;encoding=hex"]}`, 202, 1},
		{"several events", "Bearer " + token, `[{` + conv + `,"state":"HELD"},{` + conv + `,"state":"ENDED"}]`, 202, 2},
		{"bad JSON", "Bearer " + token, `{"conversation_id":`, 400, 0},
		{"unknown field", "Bearer " + token, `{` + conv + `,"state":"ACTIVE","stat":"x"}`, 400, 0},
		{"bad state", "Bearer " + token, `{` + conv + `,"state":"RINGING"}`, 400, 0},
		{"bad conversation id", "Bearer " + token, `{"conversation_id":"12","state":"ACTIVE"}`, 400, 0},
		{"empty array", "Bearer " + token, `[]`, 400, 0},
		{"too large", "Bearer " + token, strings.Repeat(" ", maxBody+1), 413, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mu.Lock()
			got = nil
			mu.Unlock()
			rec := post(t, h, tc.auth, tc.body)
			if rec.Code != tc.status {
				t.Fatalf("status %d, want %d (%s)", rec.Code, tc.status, rec.Body)
			}
			mu.Lock()
			defer mu.Unlock()
			if len(got) != tc.events {
				t.Fatalf("%d events delivered, want %d", len(got), tc.events)
			}
			for _, e := range got {
				if e.Source != "webhook" || e.Tenant != "webhook" || e.ConversationID != "be9d3155-c3b6-4a6c-8ff1-5c48b4585135" || !e.Received.Equal(now) {
					t.Errorf("event not normalised: %+v", e)
				}
			}
			if tc.name == "one event" && (len(got[0].UCIDs) != 1 || got[0].UCIDs[0] != "00025000160955721139") {
				t.Errorf("UCIDs = %v, want the UUI decoded", got[0].UCIDs)
			}
		})
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, Path, nil))
	if rec.Code != http.StatusMethodNotAllowed {
		t.Errorf("GET answered %d", rec.Code)
	}
}

func TestConfigNeedsAToken(t *testing.T) {
	if err := (Config{Listen: "127.0.0.1:9090", Token: "short"}).Validate(); err == nil {
		t.Error("a short token was accepted")
	}
	if err := (Config{}).Validate(); err != nil {
		t.Errorf("a disabled webhook is valid: %v", err)
	}
}

func FuzzDecode(f *testing.F) {
	f.Add([]byte(`{"conversation_id":"be9d3155-c3b6-4a6c-8ff1-5c48b4585135","state":"ACTIVE","uui":["00FA080019001038F725B3"]}`))
	f.Add([]byte(`[{"conversation_id":"be9d3155-c3b6-4a6c-8ff1-5c48b4585135","state":"ENDED","agents":[{"user_id":"x"}]}]`))
	f.Fuzz(func(t *testing.T, b []byte) {
		events, err := Decode(b, time.Unix(0, 0))
		if err != nil {
			return
		}
		for _, e := range events {
			if e.State != cti.StateActive && e.State != cti.StateHeld && e.State != cti.StateEnded {
				t.Fatalf("accepted state %q", e.State)
			}
		}
	})
}
