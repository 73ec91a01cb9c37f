package api

import (
	"errors"
	"fmt"
)

// Role is what a token may do.
type Role string

const (
	RoleRead  Role = "read"  // every GET endpoint
	RoleAdmin Role = "admin" // everything, including POST /api/v1/index/rebuild
)

// minTokenLen keeps tokens out of guessing range.
const minTokenLen = 16

// Token is one API credential. Token is a secret: it never appears in logs or errors.
type Token struct {
	Name  string `yaml:"name"` // who holds it; appears in logs
	Token string `yaml:"token"`
	Role  Role   `yaml:"role"` // read | admin
}

// String names the token without revealing it, so a stray %v cannot print the secret.
func (t Token) String() string { return fmt.Sprintf("%s (%s)", t.Name, t.Role) }

// Config is the API's part of the configuration file.
type Config struct {
	// Enabled serves the API and the web UI on the AudioHook listener.
	Enabled bool `yaml:"enabled"`
	// Token and ReadToken are one admin and one read-only token, for setups that keep secrets in the
	// environment (SIPHOOK_API_TOKEN, SIPHOOK_API_READ_TOKEN); Tokens names any number.
	Token     string `yaml:"token"`
	ReadToken string `yaml:"read_token"`
	// Tokens that may use the API. With none at all, only loopback clients are served (with admin rights).
	Tokens []Token `yaml:"tokens"`
}

// DefaultConfig is enabled with no tokens: the API answers loopback clients only.
func DefaultConfig() Config { return Config{Enabled: true} }

// AllTokens are Tokens plus Token and ReadToken when set.
func (c Config) AllTokens() []Token {
	all := c.Tokens
	if c.Token != "" {
		all = append(all[:len(all):len(all)], Token{Name: "api.token", Token: c.Token, Role: RoleAdmin})
	}
	if c.ReadToken != "" {
		all = append(all[:len(all):len(all)], Token{Name: "api.read_token", Token: c.ReadToken, Role: RoleRead})
	}
	return all
}

// Validate reports every problem at once. Token values never appear in the messages.
func (c Config) Validate() error {
	var errs []error
	names, secrets := map[string]bool{}, map[string]bool{}
	for i, t := range c.AllTokens() {
		where := fmt.Sprintf("api.tokens[%d]", i)
		if t.Name == "" {
			errs = append(errs, fmt.Errorf("%s: name is empty", where))
		} else {
			where += fmt.Sprintf(" (%s)", t.Name)
		}
		if names[t.Name] && t.Name != "" {
			errs = append(errs, fmt.Errorf("%s: name used twice", where))
		}
		names[t.Name] = true
		if t.Role != RoleRead && t.Role != RoleAdmin {
			errs = append(errs, fmt.Errorf("%s: role %q: want read or admin", where, t.Role))
		}
		switch {
		case t.Token == "":
			errs = append(errs, fmt.Errorf("%s: token is empty", where))
		case len(t.Token) < minTokenLen:
			errs = append(errs, fmt.Errorf("%s: token is shorter than %d characters", where, minTokenLen))
		case !tokenChars(t.Token):
			errs = append(errs, fmt.Errorf("%s: token: only printable ASCII without spaces, quotes, commas, semicolons or backslashes (it travels in a header and a cookie)", where))
		case secrets[t.Token]:
			errs = append(errs, fmt.Errorf("%s: token is the same as another one's", where))
		}
		secrets[t.Token] = true
	}
	return errors.Join(errs...)
}

// tokenChars reports whether s survives both an Authorization header and a cookie unchanged.
func tokenChars(s string) bool {
	for _, c := range []byte(s) {
		if c <= ' ' || c >= 0x7f || c == '"' || c == ',' || c == ';' || c == '\\' {
			return false
		}
	}
	return true
}
