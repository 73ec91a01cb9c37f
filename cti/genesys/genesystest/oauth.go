package genesystest

import (
	"crypto/subtle"
	"encoding/hex"
	"net/http"
	"strings"
	"time"
)

// token is an issued access token. Channels belong to the token that created them (research §2.1), so
// a token's end is its channels' end too.
type token struct {
	value    string
	clientID string
	expires  time.Time
	revoked  bool
}

func (t *token) valid(now time.Time) bool {
	return t != nil && !t.revoked && now.Before(t.expires)
}

// AddClient registers an OAuth client (client credentials grant).
func (s *Server) AddClient(id, secret string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.clients[id] = secret
}

// authError is the login service's error shape (SDK AuthErrorResponse, research §1.1).
type authError struct {
	Error            string `json:"error"`
	Description      string `json:"description,omitempty"`
	ErrorDescription string `json:"error_description,omitempty"`
}

// handleToken is POST /oauth/token: HTTP Basic client_id:client_secret, form grant_type=client_credentials.
func (s *Server) handleToken(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	id, secret, ok := r.BasicAuth()
	s.mu.Lock()
	want, known := s.clients[id]
	s.mu.Unlock()
	// The client is authenticated before the grant is looked at, so a bad secret is always a 401.
	if !ok || !known || subtle.ConstantTimeCompare([]byte(secret), []byte(want)) != 1 {
		w.Header().Set("WWW-Authenticate", `Basic realm="oauth"`)
		writeJSON(w, http.StatusUnauthorized, authError{
			Error:            "invalid_client",
			Description:      "client authentication failed",
			ErrorDescription: "client authentication failed",
		})
		return
	}
	// ParseForm reads the body only for application/x-www-form-urlencoded, as the real endpoint expects.
	if err := r.ParseForm(); err != nil || r.PostForm.Get("grant_type") != "client_credentials" {
		writeJSON(w, http.StatusBadRequest, authError{
			Error:            "unsupported_grant_type",
			Description:      "grant_type must be client_credentials",
			ErrorDescription: "grant_type must be client_credentials",
		})
		return
	}
	s.mu.Lock()
	t := s.issueTokenLocked(id)
	s.stats.TokensIssued++
	s.mu.Unlock()
	// expires_in is whole seconds (research §1.1); the scaled lifetime is rounded down so a client that
	// trusts it renews early rather than late, but never reports 0.
	secs := max(int64(time.Until(t.expires)/time.Second), 1)
	writeJSON(w, http.StatusOK, map[string]any{
		"access_token": t.value,
		"token_type":   "bearer",
		"expires_in":   secs,
	})
}

func (s *Server) issueTokenLocked(clientID string) *token {
	b := make([]byte, 24)
	_, _ = s.rngSrc.Read(b)
	t := &token{
		value:    hex.EncodeToString(b),
		clientID: clientID,
		expires:  time.Now().Add(s.scale(s.opts.TokenLifetime)),
	}
	s.tokens[t.value] = t
	return t
}

// authed requires a valid bearer token on /api/v2 requests (research §6.1) and hands it to h.
func (s *Server) authed(h func(http.ResponseWriter, *http.Request, *token)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		auth := r.Header.Get("Authorization")
		scheme, value, found := strings.Cut(auth, " ")
		if !found || !strings.EqualFold(scheme, "bearer") || value == "" {
			writeError(w, http.StatusUnauthorized, "authentication.required",
				"No authentication bearer token specified in authorization header.")
			return
		}
		s.mu.Lock()
		t := s.tokens[strings.TrimSpace(value)]
		ok := t.valid(time.Now())
		s.mu.Unlock()
		if !ok {
			writeError(w, http.StatusUnauthorized, "bad.credentials", "Invalid login credentials.")
			return
		}
		h(w, r, t)
	}
}
