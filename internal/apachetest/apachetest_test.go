package apachetest

import (
	"bytes"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/icholy/digest"
)

func TestApacheDAV(t *testing.T) {
	for _, auth := range []string{"", "basic", "digest"} {
		name := auth
		if name == "" {
			name = "none"
		}
		t.Run(name, func(t *testing.T) {
			s := Start(t, Options{Auth: auth})
			if !strings.HasPrefix(s.URL(), "http://127.0.0.1:") || !strings.HasSuffix(s.URL(), "/dav/") {
				t.Fatalf("URL %q", s.URL())
			}
			client := &http.Client{Timeout: 10 * time.Second}
			authed := client
			switch auth {
			case "basic":
				authed = &http.Client{Timeout: 10 * time.Second, Transport: basicAuth{s.Options().User, s.Options().Password}}
			case "digest":
				authed = &http.Client{Timeout: 10 * time.Second, Transport: &digest.Transport{Username: s.Options().User, Password: s.Options().Password}}
			}

			body := []byte("RIFF some audio\x00\x01\x02")
			mustStatus(t, authed, "MKCOL", s.URL()+"a/", nil, http.StatusCreated)
			mustStatus(t, authed, http.MethodPut, s.URL()+"a/x.wav", body, http.StatusCreated)
			if got := mustStatus(t, authed, http.MethodGet, s.URL()+"a/x.wav", nil, http.StatusOK); !bytes.Equal(got, body) {
				t.Fatalf("GET returned %q, want %q", got, body)
			}
			if onDisk, err := os.ReadFile(filepath.Join(s.Root(), "a", "x.wav")); err != nil || !bytes.Equal(onDisk, body) {
				t.Fatalf("Root()/a/x.wav = %q, %v; want %q", onDisk, err, body)
			}
			if auth != "" {
				mustStatus(t, client, http.MethodGet, s.URL()+"a/x.wav", nil, http.StatusUnauthorized)
				wrong := &http.Client{Timeout: 10 * time.Second, Transport: basicAuth{s.Options().User, "wrong"}}
				if auth == "digest" {
					wrong.Transport = &digest.Transport{Username: s.Options().User, Password: "wrong"}
				}
				mustStatus(t, wrong, http.MethodGet, s.URL()+"a/x.wav", nil, http.StatusUnauthorized)
			}

			s.Stop()
			s.Stop() // a no-op
			if resp, err := authed.Get(s.URL() + "a/x.wav"); err == nil {
				resp.Body.Close()
				t.Fatalf("GET after Stop answered %s", resp.Status)
			}
			s.Restart()
			if got := mustStatus(t, authed, http.MethodGet, s.URL()+"a/x.wav", nil, http.StatusOK); !bytes.Equal(got, body) {
				t.Fatalf("GET after Restart returned %q, want %q", got, body)
			}
			mustStatus(t, authed, http.MethodPut, s.URL()+"a/x.wav", []byte("replaced"), http.StatusNoContent)
			s.Restart() // while running: stops first
			if got := mustStatus(t, authed, http.MethodGet, s.URL()+"a/x.wav", nil, http.StatusOK); string(got) != "replaced" {
				t.Fatalf("GET after second Restart returned %q", got)
			}
		})
	}
}

func mustStatus(t *testing.T, c *http.Client, method, url string, body []byte, want int) []byte {
	t.Helper()
	var r io.Reader
	if body != nil {
		r = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, url, r)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	got, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != want {
		t.Fatalf("%s %s: %s, want %d: %s", method, url, resp.Status, want, got)
	}
	return got
}

type basicAuth struct{ user, password string }

func (b basicAuth) RoundTrip(req *http.Request) (*http.Response, error) {
	req = req.Clone(req.Context())
	req.SetBasicAuth(b.user, b.password)
	return http.DefaultTransport.RoundTrip(req)
}
