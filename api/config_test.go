package api

import (
	"fmt"
	"strings"
	"testing"
)

func TestConfigValidate(t *testing.T) {
	const good = "0123456789abcdef"
	tests := []struct {
		name   string
		tokens []Token
		errs   []string // substrings, one per expected problem
	}{
		{"default: no tokens", DefaultConfig().Tokens, nil},
		{"read and admin", []Token{{"ui", good, RoleRead}, {"ops", good + "x", RoleAdmin}}, nil},
		{"empty name", []Token{{"", good, RoleRead}}, []string{"tokens[0]: name is empty"}},
		{"name twice", []Token{{"ui", good, RoleRead}, {"ui", good + "x", RoleRead}}, []string{"tokens[1] (ui): name used twice"}},
		{"bad role", []Token{{"ui", good, "write"}}, []string{`role "write"`}},
		{"no role", []Token{{"ui", good, ""}}, []string{`role ""`}},
		{"empty token", []Token{{"ui", "", RoleRead}}, []string{"token is empty"}},
		{"short token", []Token{{"ui", "0123456789abcde", RoleRead}}, []string{"shorter than 16"}},
		{"token with a space", []Token{{"ui", "0123456789 abcdef", RoleRead}}, []string{"printable ASCII"}},
		{"token with a semicolon", []Token{{"ui", "0123456789;abcdef", RoleRead}}, []string{"printable ASCII"}},
		{"token twice", []Token{{"a", good, RoleRead}, {"b", good, RoleAdmin}}, []string{"tokens[1] (b): token is the same"}},
		{"every problem at once", []Token{{"", "short-secret", "x"}, {"b", "", RoleRead}},
			[]string{"name is empty", "shorter than", `role "x"`, "tokens[1] (b): token is empty"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Config{Tokens: tt.tokens}.Validate()
			if (err == nil) != (len(tt.errs) == 0) {
				t.Fatalf("Validate() = %v, want errors %q", err, tt.errs)
			}
			if err == nil {
				return
			}
			msg := err.Error()
			if lines := strings.Count(msg, "\n") + 1; lines != len(tt.errs) {
				t.Errorf("%d problems reported, want %d:\n%s", lines, len(tt.errs), msg)
			}
			for _, want := range tt.errs {
				if !strings.Contains(msg, want) {
					t.Errorf("%q missing from:\n%s", want, msg)
				}
			}
			for _, tok := range tt.tokens {
				if tok.Token != "" && strings.Contains(msg, tok.Token) {
					t.Errorf("error reveals a token: %s", msg)
				}
			}
		})
	}
}

func TestTokenStringHidesSecret(t *testing.T) {
	tok := Token{Name: "ui", Token: "0123456789abcdef-secret", Role: RoleRead}
	for _, s := range []string{fmt.Sprint(tok), fmt.Sprintf("%v %+v", tok, Config{Tokens: []Token{tok}})} {
		if strings.Contains(s, "secret") || !strings.Contains(s, "ui (read)") {
			t.Errorf("%q", s)
		}
	}
}

// TestAllTokens: api.token and api.read_token (SIPHOOK_API_TOKEN, SIPHOOK_API_READ_TOKEN) join the list
// with their roles, and are validated like the others.
func TestAllTokens(t *testing.T) {
	c := Config{Token: "admin-0123456789ab", ReadToken: "read-0123456789abc", Tokens: []Token{{"ui", "ui-0123456789abcde", RoleRead}}}
	got := c.AllTokens()
	if len(got) != 3 || got[1].Role != RoleAdmin || got[1].Token != c.Token || got[2].Role != RoleRead || got[2].Token != c.ReadToken {
		t.Fatalf("AllTokens() = %v", got)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if err := (Config{Token: "short"}).Validate(); err == nil || !strings.Contains(err.Error(), "(api.token)") {
		t.Errorf("a short api.token: %v", err)
	}
}
