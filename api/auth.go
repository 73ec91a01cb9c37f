package api

import (
	"crypto/sha256"
	"crypto/subtle"
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// cookieName carries the token for GET and HEAD requests, for clients that cannot set headers (<audio>).
const cookieName = "siphook_token"

// credential is a configured token; only its digest is kept, so comparisons take the same time whatever
// the presented token is.
type credential struct {
	name   string
	digest [sha256.Size]byte
	role   Role
}

func credentials(tokens []Token) []credential {
	creds := make([]credential, len(tokens))
	for i, t := range tokens {
		creds[i] = credential{name: t.Name, digest: sha256.Sum256([]byte(t.Token)), role: t.Role}
	}
	return creds
}

// authorize runs h only for requests allowed the role need ("" for public routes).
func (s *Server) authorize(need Role, h http.HandlerFunc) http.HandlerFunc {
	if need == "" {
		return h
	}
	return func(w http.ResponseWriter, r *http.Request) {
		if len(s.tokens) == 0 {
			// No tokens: loopback clients are trusted with everything; cmd/siphook refuses to listen
			// elsewhere without tokens, this is the second line.
			if !isLoopback(r.RemoteAddr) {
				s.refuse(w, r, http.StatusForbidden, "no API tokens are configured: only loopback clients are served", "")
				return
			}
			h(w, r)
			return
		}
		token := bearerToken(r)
		if token == "" && (r.Method == http.MethodGet || r.Method == http.MethodHead) {
			// Only safe methods take the cookie: a cross-site form cannot POST with it.
			if c, err := r.Cookie(cookieName); err == nil {
				token = c.Value
			}
		}
		if token == "" {
			s.refuse(w, r, http.StatusUnauthorized, "missing token", "")
			return
		}
		cred := s.lookup(token)
		switch {
		case cred == nil:
			s.refuse(w, r, http.StatusUnauthorized, "unknown token", "")
		case need == RoleAdmin && cred.role != RoleAdmin:
			s.refuse(w, r, http.StatusForbidden, "this token may not do that", cred.name)
		default:
			h(w, r)
		}
	}
}

// lookup finds the credential of token, comparing with every one of them in constant time.
func (s *Server) lookup(token string) *credential {
	digest := sha256.Sum256([]byte(token))
	var found *credential
	for i := range s.tokens {
		if subtle.ConstantTimeCompare(digest[:], s.tokens[i].digest[:]) == 1 {
			found = &s.tokens[i]
		}
	}
	return found
}

// refuse answers 401 or 403 and logs it: never the token, only its name once it is known.
func (s *Server) refuse(w http.ResponseWriter, r *http.Request, status int, reason, tokenName string) {
	attrs := []any{"reason", reason, "remote", r.RemoteAddr, "method", r.Method, "path", r.URL.Path}
	if tokenName != "" {
		attrs = append(attrs, "token_name", tokenName)
	}
	s.log.Warn("API request refused", attrs...)
	if status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="siphook"`)
	}
	writeError(w, status, reason)
}

// bearerToken returns the token of an "Authorization: Bearer" header, or "".
func bearerToken(r *http.Request) string {
	scheme, token, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return ""
	}
	return strings.TrimSpace(token)
}

// isLoopback reports whether a RemoteAddr ("host:port") is 127.0.0.0/8 or ::1, IPv4-mapped forms included.
func isLoopback(remoteAddr string) bool {
	host, _, err := net.SplitHostPort(remoteAddr)
	if err != nil {
		host = remoteAddr
	}
	addr, err := netip.ParseAddr(host)
	return err == nil && addr.Unmap().IsLoopback()
}
