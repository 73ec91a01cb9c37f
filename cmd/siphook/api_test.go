package main

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/siphook/siphook/cti/genesys"
)

// getJSON fetches url (with a bearer token when given) and decodes the answer into v; it returns the status.
func getJSON(t *testing.T, url, token string, v any) int {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if v != nil && res.StatusCode == 200 {
		if err := json.NewDecoder(res.Body).Decode(v); err != nil {
			t.Fatalf("%s: %v", url, err)
		}
	}
	return res.StatusCode
}

type recordingsPage struct {
	Total      int `json:"total"`
	Recordings []struct {
		ID       string `json:"id"`
		Source   string `json:"source"`
		HasAudio bool   `json:"has_audio"`
	} `json:"recordings"`
}

// TestAPIOnDemoRecordings: the API on the server's own listener finds the demo's recordings as they were
// written (the index follows the recorder), serves their audio by range, and the index survives a restart
// and is rebuilt from the documents when lost. With a token configured, the API wants it; the UI and the
// OpenAPI document are public.
func TestAPIOnDemoRecordings(t *testing.T) {
	d, _ := startTestDemo(t)
	base := d.url() + "api/v1/"
	for query, want := range map[string]int{"": 6, "source=audiohook": 1, "matched=false": 1, "direction=outbound": 1, "agent=bob": 1, "state=completed": 4} {
		var page recordingsPage
		if code := getJSON(t, base+"recordings?"+query, "", &page); code != 200 || page.Total != want {
			t.Errorf("recordings?%s: %d, total %d, want %d", query, code, page.Total, want)
		}
	}
	var page recordingsPage
	getJSON(t, base+"recordings?source=audiohook", "", &page)
	req, _ := http.NewRequest("GET", base+"recordings/"+page.Recordings[0].ID+"/audio", nil)
	req.Header.Set("Range", "bytes=0-43")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	header, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusPartialContent || len(header) != 44 || string(header[:4]) != "RIFF" {
		t.Errorf("range of the WAV header: %d, %d bytes %q", res.StatusCode, len(header), header[:min(4, len(header))])
	}
	var live struct{ Sessions []any }
	if code := getJSON(t, base+"sessions", "", &live); code != 200 || len(live.Sessions) != 0 {
		t.Errorf("sessions after the story: %d %v", code, live.Sessions)
	}
	d.stop()

	// A restart on the same directory: the index comes back from its journal; with the journal gone, from
	// the documents. Now with a token.
	const token = "restart-admin-token-0123456789"
	restart := func() (string, func()) {
		t.Helper()
		cfg := d.cfg
		cfg.Genesys = genesys.DefaultConfig()
		cfg.AudioHook.Listen = "127.0.0.1:0"
		cfg.API.Token = token
		a, err := startApp(cfg, slog.New(slog.DiscardHandler), prometheus.NewRegistry())
		if err != nil {
			t.Fatal(err)
		}
		var once sync.Once
		stop := func() {
			once.Do(func() {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				a.stop(ctx)
			})
		}
		t.Cleanup(stop)
		return "http://" + a.hook.Addr() + "/", stop
	}
	url, stop := restart()
	if code := getJSON(t, url+"api/v1/recordings", "", nil); code != http.StatusUnauthorized {
		t.Errorf("no token: %d, want 401", code)
	}
	for _, public := range []string{"api/v1/openapi.json", "", "app.js"} {
		if code := getJSON(t, url+public, "", nil); code != 200 {
			t.Errorf("/%s without a token: %d, want 200", public, code)
		}
	}
	if code := getJSON(t, url+"api/v1/recordings", token, &page); code != 200 || page.Total != 6 {
		t.Errorf("after a restart: %d, %d recordings, want 6", code, page.Total)
	}
	stop()
	if err := os.RemoveAll(filepath.Join(d.cfg.Recorder.Dir, ".index")); err != nil {
		t.Fatal(err)
	}
	url, _ = restart()
	if code := getJSON(t, url+"api/v1/recordings", token, &page); code != 200 || page.Total != 6 {
		t.Errorf("after losing the index: %d, %d recordings, want 6", code, page.Total)
	}
}
