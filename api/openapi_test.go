package api

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers/gorillamux"

	"github.com/siphook/siphook/recorder"
)

func loadOpenAPI(t *testing.T) *openapi3.T {
	t.Helper()
	doc, err := openapi3.NewLoader().LoadFromData(openAPISpec)
	if err != nil {
		t.Fatal(err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		t.Fatal(err)
	}
	if doc.OpenAPI != "3.0.3" {
		t.Errorf("openapi %q", doc.OpenAPI)
	}
	return doc
}

// The document describes exactly the routes the server serves.
func TestOpenAPIRoutes(t *testing.T) {
	doc := loadOpenAPI(t)
	var described []string
	for path, item := range doc.Paths.Map() {
		for method := range item.Operations() {
			described = append(described, method+" "+path)
		}
	}
	slices.Sort(described)
	served := newEnv(t, Config{}).srv.Routes()
	slices.Sort(served)
	if !slices.Equal(described, served) {
		t.Errorf("openapi.json describes\n%q\nthe server serves\n%q", described, served)
	}
	// The embedded file is the one in the package directory.
	if b, err := os.ReadFile("openapi.json"); err != nil || !bytes.Equal(b, openAPISpec) {
		t.Errorf("embedded document differs from openapi.json: %v", err)
	}
}

// Real requests and responses of every route, successes and failures, conform to the document.
func TestOpenAPIResponses(t *testing.T) {
	doc := loadOpenAPI(t)
	router, err := gorillamux.NewRouter(doc)
	if err != nil {
		t.Fatal(err)
	}
	openapi3filter.RegisterBodyDecoder("audio/wav", openapi3filter.FileBodyDecoder)
	defer openapi3filter.UnregisterBodyDecoder("audio/wav")

	e := newEnv(t, withTokens, WithSessions(fakeSessions{
		{ID: "s1", Source: "siprec", State: "waiting", Since: t0, WaitingReason: "no CTI call yet"},
		{ID: "s2", Source: "audiohook", State: "active", Since: t0, Keys: []Key{{"conversation_id", "c"}},
			ConversationID: "c", Agents: []Agent{{"u-1", "Alice"}}, MatchedBy: "conversation_id c"},
	}))
	fixture(t, e.rec)
	id := record(t, e.rec, "rec-1", t0, recorder.Document{Source: "siprec",
		Channels: []recorder.ChannelInfo{{Index: 0, Label: "caller"}}}, make([]int16, 1600))

	tests := []struct {
		method, target string
		edits          []func(*http.Request)
		status         int
	}{
		{"GET", "/api/v1/recordings", nil, 200},
		{"GET", "/api/v1/recordings?limit=2&matched=true&direction=inbound&from=2026-11-21T00:00:00Z", nil, 200},
		{"GET", "/api/v1/recordings?limit=0", nil, 400},
		{"GET", "/api/v1/recordings/d1", nil, 200},
		{"GET", "/api/v1/recordings/" + id, nil, 200},
		{"GET", "/api/v1/recordings/nope", nil, 404},
		{"GET", "/api/v1/recordings/" + id + "/audio", nil, 200},
		{"GET", "/api/v1/recordings/" + id + "/audio", []func(*http.Request){header("Range", "bytes=0-99")}, 206},
		{"GET", "/api/v1/recordings/" + id + "/audio", []func(*http.Request){header("Range", "bytes=99999-")}, 416},
		{"GET", "/api/v1/recordings/d1/audio", nil, 404},
		{"GET", "/api/v1/recordings/" + id + "/waveform?points=100", nil, 200},
		{"GET", "/api/v1/recordings/" + id + "/waveform?points=0", nil, 400},
		{"GET", "/api/v1/recordings/d1/waveform", nil, 404},
		{"GET", "/api/v1/sessions", nil, 200},
		{"POST", "/api/v1/index/rebuild", nil, 200},
		{"POST", "/api/v1/index/rebuild", []func(*http.Request){bearer(readToken)}, 403},
		{"GET", "/api/v1/recordings", []func(*http.Request){bearer("wrong-token-0123456789")}, 401},
		{"GET", "/api/v1/openapi.json", []func(*http.Request){header("Authorization", "")}, 200},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.target, func(t *testing.T) {
			w := e.do(tt.method, tt.target, append([]func(*http.Request){bearer(adminToken)}, tt.edits...)...)
			if w.Code != tt.status {
				t.Fatalf("status %d, want %d: %s", w.Code, tt.status, w.Body)
			}
			req := httptest.NewRequest(tt.method, tt.target, nil)
			for _, edit := range tt.edits {
				edit(req)
			}
			route, params, err := router.FindRoute(req)
			if err != nil {
				t.Fatal(err)
			}
			in := &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route,
				Options: &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc}}
			if tt.status != 400 { // the 400s are requests the document forbids
				if err := openapi3filter.ValidateRequest(context.Background(), in); err != nil {
					t.Errorf("request: %v", err)
				}
			}
			err = openapi3filter.ValidateResponse(context.Background(), &openapi3filter.ResponseValidationInput{
				RequestValidationInput: in,
				Status:                 w.Code,
				Header:                 w.Header(),
				Body:                   io.NopCloser(bytes.NewReader(w.Body.Bytes())),
				Options:                &openapi3filter.Options{IncludeResponseStatus: true, MultiError: true},
			})
			if err != nil {
				t.Errorf("response %s: %v", strings.TrimSpace(w.Body.String())[:min(200, w.Body.Len())], err)
			}
		})
	}
}
