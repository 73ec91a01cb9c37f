package audiohook

import (
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"
)

// Activation says when an AudioHook session records.
type Activation string

const (
	// ActivateImmediately records from `opened` on (the default without CTI).
	ActivateImmediately Activation = "immediate"
	// ActivateOnMatch opens the session paused (`startPaused`, which also saves the customer's streaming
	// cost) and records when the matcher calls Activate, which sends `resume`.
	ActivateOnMatch Activation = "on-match"
)

// Organization is one Genesys Cloud organisation's AudioHook integration credentials.
type Organization struct {
	ID           string `yaml:"id"`            // Genesys organisation id; empty: any (single-tenant setups)
	APIKey       string `yaml:"api_key"`       // the integration's API key (X-API-KEY)
	ClientSecret string `yaml:"client_secret"` // base64, as entered in Genesys; empty: requests are not signed
	Tenant       string `yaml:"tenant"`        // the CTI tenant whose calls this organisation's sessions match ("" = any)
}

// Config is the AudioHook side of the server.
type Config struct {
	Listen string `yaml:"listen"` // host:port of the HTTP/WebSocket listener; "" disables AudioHook
	Path   string `yaml:"path"`   // URL path of the WebSocket endpoint
	TLS    struct {
		CertFile string `yaml:"cert_file"` // PEM chain; with key_file, the listener serves wss directly
		KeyFile  string `yaml:"key_file"`
	} `yaml:"tls"`
	// Authority is the host[:port] Genesys connects to, when a TLS proxy in front rewrites Host: the
	// signature covers the authority the client saw.
	Authority string `yaml:"authority"`
	// APIKey and ClientSecret configure one organisation from the environment alone
	// (SIPHOOK_AUDIOHOOK_API_KEY, SIPHOOK_AUDIOHOOK_CLIENT_SECRET).
	APIKey        string         `yaml:"api_key"`
	ClientSecret  string         `yaml:"client_secret"`
	Organizations []Organization `yaml:"organizations"`
	Activation    Activation     `yaml:"activation"` // immediate | on-match

	OpenTimeout      time.Duration `yaml:"open_timeout"`       // upgrade → `open` must arrive within this
	IdleTimeout      time.Duration `yaml:"idle_timeout"`       // no message at all for this long: the connection is dead (Genesys pings every 5 s)
	CloseTimeout     time.Duration `yaml:"close_timeout"`      // after `closed` or `disconnect`, how long to wait for the client
	AuthFailureDelay time.Duration `yaml:"auth_failure_delay"` // every refused upgrade is answered no sooner than this after it arrived
	SignatureSkew    time.Duration `yaml:"signature_skew"`
	SignatureMaxAge  time.Duration `yaml:"signature_max_age"`
	// ReconnectGrace keeps the recording of a session that dropped (or closed with reason reconnect) open this
	// long for a session that continues it (`continuedSessions`).
	ReconnectGrace time.Duration `yaml:"reconnect_grace"`
}

// DefaultConfig is the embedded default: ws://127.0.0.1:8080/audiohook, recording at once.
func DefaultConfig() Config {
	return Config{
		Listen:           "127.0.0.1:8080",
		Path:             "/audiohook",
		Activation:       ActivateImmediately,
		OpenTimeout:      5 * time.Second,
		IdleTimeout:      30 * time.Second,
		CloseTimeout:     10 * time.Second,
		AuthFailureDelay: 500 * time.Millisecond,
		SignatureSkew:    3 * time.Second,
		SignatureMaxAge:  10 * time.Second,
		ReconnectGrace:   30 * time.Second,
	}
}

// TLSEnabled reports whether the listener serves TLS itself.
func (c Config) TLSEnabled() bool { return c.TLS.CertFile != "" || c.TLS.KeyFile != "" }

// organizations is every configured organisation, the single-tenant one from APIKey/ClientSecret first.
func (c Config) organizations() []Organization {
	orgs := c.Organizations
	if c.APIKey != "" {
		orgs = append([]Organization{{APIKey: c.APIKey, ClientSecret: c.ClientSecret}}, orgs...)
	}
	return orgs
}

// Validate reports every problem at once. Secrets never appear in the messages.
func (c Config) Validate() error {
	if c.Listen == "" {
		return nil
	}
	var errs []error
	if _, _, err := net.SplitHostPort(c.Listen); err != nil {
		errs = append(errs, fmt.Errorf("audiohook.listen %q: %w", c.Listen, err))
	}
	if !strings.HasPrefix(c.Path, "/") {
		errs = append(errs, fmt.Errorf("audiohook.path %q must start with /", c.Path))
	}
	if c.TLSEnabled() && (c.TLS.CertFile == "" || c.TLS.KeyFile == "") {
		errs = append(errs, errors.New("audiohook.tls: cert_file and key_file go together"))
	}
	if c.Activation != ActivateImmediately && c.Activation != ActivateOnMatch {
		errs = append(errs, fmt.Errorf("audiohook.activation %q: want immediate or on-match", c.Activation))
	}
	seen := map[string]bool{}
	for i, o := range c.organizations() {
		if o.APIKey == "" {
			errs = append(errs, fmt.Errorf("audiohook.organizations[%d]: api_key is empty", i))
		}
		if seen[o.APIKey] {
			errs = append(errs, fmt.Errorf("audiohook.organizations[%d]: api_key configured twice", i))
		}
		seen[o.APIKey] = true
		if _, err := base64.StdEncoding.DecodeString(o.ClientSecret); err != nil {
			errs = append(errs, fmt.Errorf("audiohook organisation %d: client_secret is not base64", i))
		}
	}
	for name, d := range map[string]time.Duration{"open_timeout": c.OpenTimeout, "idle_timeout": c.IdleTimeout,
		"close_timeout": c.CloseTimeout, "signature_skew": c.SignatureSkew, "signature_max_age": c.SignatureMaxAge} {
		if d <= 0 {
			errs = append(errs, fmt.Errorf("audiohook.%s must be positive", name))
		}
	}
	if c.AuthFailureDelay < 0 || c.ReconnectGrace < 0 {
		errs = append(errs, errors.New("audiohook.auth_failure_delay and reconnect_grace must not be negative"))
	}
	return errors.Join(errs...)
}

// tenant is one organisation's credentials as the server uses them.
type tenant struct {
	orgID string
	name  string // CTI tenant for matching
	creds Credentials
}

// tenants finds organisations by API key; it is the signature verifier's KeyStore.
type tenants map[string]tenant

func newTenants(c Config) tenants {
	t := tenants{}
	for _, o := range c.organizations() {
		secret, _ := base64.StdEncoding.DecodeString(o.ClientSecret) // checked by Validate
		t[o.APIKey] = tenant{orgID: strings.ToLower(o.ID), name: o.Tenant, creds: Credentials{APIKey: o.APIKey, ClientSecret: secret}}
	}
	return t
}

// Lookup implements KeyStore.
func (t tenants) Lookup(apiKey string) (Credentials, bool) {
	tn, ok := t[apiKey]
	return tn.creds, ok
}
