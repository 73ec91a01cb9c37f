package genesystest

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestTokenEndpoint(t *testing.T) {
	h := newHarness(t, Options{TimeScale: 0.001})
	tests := []struct {
		name      string
		user, pwd string
		basic     bool
		form      string
		ctype     string
		status    int
		wantError string
	}{
		{"ok", testClient, testSecret, true, "grant_type=client_credentials", "application/x-www-form-urlencoded", 200, ""},
		{"bad secret", testClient, "nope", true, "grant_type=client_credentials", "application/x-www-form-urlencoded", 401, "invalid_client"},
		{"unknown client", "other", testSecret, true, "grant_type=client_credentials", "application/x-www-form-urlencoded", 401, "invalid_client"},
		{"no basic auth", "", "", false, "grant_type=client_credentials", "application/x-www-form-urlencoded", 401, "invalid_client"},
		{"password grant", testClient, testSecret, true, "grant_type=password", "application/x-www-form-urlencoded", 400, "unsupported_grant_type"},
		{"no grant", testClient, testSecret, true, "", "application/x-www-form-urlencoded", 400, "unsupported_grant_type"},
		{"json body", testClient, testSecret, true, `{"grant_type":"client_credentials"}`, "application/json", 400, "unsupported_grant_type"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest("POST", h.s.LoginBase()+"/oauth/token", strings.NewReader(tt.form))
			req.Header.Set("Content-Type", tt.ctype)
			if tt.basic {
				req.SetBasicAuth(tt.user, tt.pwd)
			}
			resp, err := h.hc.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if resp.StatusCode != tt.status {
				t.Fatalf("status %d, want %d", resp.StatusCode, tt.status)
			}
			if resp.Header.Get("ININ-Correlation-Id") == "" {
				t.Error("no ININ-Correlation-Id")
			}
			data, err := io.ReadAll(resp.Body)
			if err != nil {
				t.Fatal(err)
			}
			type tokenBody struct {
				AccessToken      string `json:"access_token"`
				TokenType        string `json:"token_type"`
				ExpiresIn        *int   `json:"expires_in"`
				Error            string `json:"error"`
				ErrorDescription string `json:"error_description"`
			}
			body := decode[tokenBody](t, data)
			if tt.wantError != "" {
				if body.Error != tt.wantError || body.ErrorDescription == "" || body.AccessToken != "" {
					t.Errorf("error body %s", data)
				}
				return
			}
			// 86400 s scaled by 0.001 is 86.4 s, reported as whole seconds rounded down.
			if body.AccessToken == "" || body.TokenType != "bearer" || body.ExpiresIn == nil || *body.ExpiresIn != 86 {
				t.Errorf("token body %s", data)
			}
		})
	}
	if got := h.s.Stats().TokensIssued; got != 1 {
		t.Errorf("TokensIssued %d, want 1", got)
	}
}

func TestBearerRequired(t *testing.T) {
	h := newHarness(t, Options{})
	good := h.token()
	tests := []struct {
		name, auth string
		status     int
		code       string
	}{
		{"valid", "Bearer " + good, 200, ""},
		{"lower-case scheme", "bearer " + good, 200, ""},
		{"missing", "", 401, "authentication.required"},
		{"basic", "Basic Zm9vOmJhcg==", 401, "authentication.required"},
		{"unknown token", "Bearer nope", 401, "bad.credentials"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest("GET", h.s.APIBase()+"/api/v2/users", nil)
			if tt.auth != "" {
				req.Header.Set("Authorization", tt.auth)
			}
			resp, err := h.hc.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if resp.StatusCode != tt.status {
				t.Fatalf("status %d, want %d", resp.StatusCode, tt.status)
			}
			if tt.code == "" {
				return
			}
			data, err := io.ReadAll(resp.Body)
			if err != nil {
				t.Fatal(err)
			}
			type errBody struct {
				Message string `json:"message"`
				Code    string `json:"code"`
				Status  int    `json:"status"`
			}
			eb := decode[errBody](t, data)
			if eb.Code != tt.code || eb.Status != 401 || eb.Message == "" {
				t.Errorf("ErrorBody %s", data)
			}
		})
	}
}

func TestTokenExpiry(t *testing.T) {
	// A 300 s token (the shortest Genesys allows) at TimeScale 0.001 lasts 300 ms.
	h := newHarness(t, Options{TimeScale: 0.001, TokenLifetime: 300 * time.Second})
	tok := h.token()
	if resp, _ := h.do("GET", "/api/v2/users", tok, nil); resp.StatusCode != 200 {
		t.Fatalf("fresh token: %d", resp.StatusCode)
	}
	eventually(t, "token expiry", func() bool {
		resp, _ := h.do("GET", "/api/v2/users", tok, nil)
		return resp.StatusCode == 401
	})
}
