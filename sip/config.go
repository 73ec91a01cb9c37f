package sip

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"time"
)

// Activation says when a new recording session starts recording.
type Activation string

const (
	// ActivateImmediately answers recvonly at once: every session is recorded.
	ActivateImmediately Activation = "immediate"
	// ActivateOnMatch answers inactive and waits for Session.Activate (called by the matcher when the CTI feed
	// shows a tracked agent on the call).
	ActivateOnMatch Activation = "on-match"
	// ActivateDelayed answers inactive and activates by re-INVITE after ActivationDelay: the on-match flow
	// without CTI, for proving that an SBC accepts SRS-initiated re-INVITEs.
	ActivateDelayed Activation = "delayed"
)

// Config is the SIP side of the server.
type Config struct {
	Listen     string   `yaml:"listen"`     // host:port for UDP and TCP
	Transports []string `yaml:"transports"` // any of udp, tcp
	TLS        struct {
		Listen   string `yaml:"listen"`    // host:port; TLS is served when cert_file and key_file are set
		CertFile string `yaml:"cert_file"` // PEM certificate chain
		KeyFile  string `yaml:"key_file"`  // PEM private key
		// ClientCAFile (PEM) makes us verify the certificates SBCs present against these CAs;
		// RequireClientCert refuses connections without one (mutual TLS, as Oracle SBC TLS profiles offer).
		ClientCAFile      string `yaml:"client_ca_file"`
		RequireClientCert bool   `yaml:"require_client_cert"`
	} `yaml:"tls"`
	// AdvertiseAddress is the host written in our Contact (default: the listen host, or the address the
	// request arrived on when listening on all interfaces).
	AdvertiseAddress string `yaml:"advertise_address"`
	// MediaAddress is the IP written in our SDP c= line (default: the RTP bind address, or the address the
	// request arrived on when RTP binds to all interfaces).
	MediaAddress    string        `yaml:"media_address"`
	Activation      Activation    `yaml:"activation"`       // immediate | on-match | delayed
	ActivationDelay time.Duration `yaml:"activation_delay"` // for activation: delayed
	// ReinviteTimeout bounds one activation or pause re-INVITE transaction.
	ReinviteTimeout time.Duration `yaml:"reinvite_timeout"`
	// ReinviteAttempts is how many times a re-INVITE refused with 491 (glare) is tried.
	ReinviteAttempts int    `yaml:"reinvite_attempts"`
	UserAgent        string `yaml:"user_agent"`
	// SessionExpires is the session timer (RFC 4028) we ask for when an SRC supports timers but proposes
	// none; 0 asks for none.
	SessionExpires time.Duration `yaml:"session_expires"`
	// MinSessionExpires is our Min-SE: a shorter Session-Expires is refused with 422. RFC 4028 sets 90 s as
	// the floor; lower values exist for tests.
	MinSessionExpires time.Duration `yaml:"min_session_expires"`
	Admission         Admission     `yaml:"admission"`
	// Tenants maps SRC addresses (IP or CIDR) to the CTI tenant whose calls they record; sessions from other
	// addresses match calls of any tenant.
	Tenants map[string]string `yaml:"tenants"`
}

// Admission limits who may open recording sessions and how many; refusals are counted by status code.
type Admission struct {
	// AllowSources are the SRC addresses (IP or CIDR) allowed to send INVITEs and OPTIONS; others get 403.
	// Empty allows any source.
	AllowSources []string `yaml:"allow_sources"`
	// MaxSessions bounds concurrent recording sessions; beyond it INVITEs get 503 with Retry-After, which
	// moves an SBC's session-recording-group to its next server. 0: bounded only by the RTP port range.
	MaxSessions int `yaml:"max_sessions"`
	// MaxStreams bounds the recorded audio m-lines of one session; an offer with more gets 488.
	MaxStreams int `yaml:"max_streams"`
	// InviteRate is how many new INVITEs per second one source address may send (beyond: 503 with
	// Retry-After); InviteBurst is how many may come at once. 0: no limit.
	InviteRate  float64 `yaml:"invite_rate"`
	InviteBurst int     `yaml:"invite_burst"`
}

// DefaultConfig is the embedded default: UDP and TCP on 127.0.0.1:5060, immediate activation.
func DefaultConfig() Config {
	return Config{
		Listen:           "127.0.0.1:5060",
		Transports:       []string{"udp", "tcp"},
		Activation:       ActivateImmediately,
		ActivationDelay:  2 * time.Second,
		ReinviteTimeout:  10 * time.Second,
		ReinviteAttempts: 5,
		UserAgent:        "siphook",
		SessionExpires:   1800 * time.Second,
		// RFC 4028's floor.
		MinSessionExpires: 90 * time.Second,
		Admission:         Admission{MaxStreams: 8, InviteBurst: 20},
	}
}

// TLSEnabled reports whether a certificate is configured.
func (c Config) TLSEnabled() bool { return c.TLS.CertFile != "" || c.TLS.KeyFile != "" }

// Validate reports every problem at once.
func (c Config) Validate() error {
	var errs []error
	if _, _, err := net.SplitHostPort(c.Listen); err != nil {
		errs = append(errs, fmt.Errorf("sip.listen %q: %w", c.Listen, err))
	}
	if len(c.Transports) == 0 && !c.TLSEnabled() {
		errs = append(errs, errors.New("sip.transports: none configured and no TLS certificate"))
	}
	for _, t := range c.Transports {
		if t != "udp" && t != "tcp" {
			errs = append(errs, fmt.Errorf("sip.transports: %q is not udp or tcp", t))
		}
	}
	if c.TLSEnabled() {
		if c.TLS.CertFile == "" || c.TLS.KeyFile == "" {
			errs = append(errs, errors.New("sip.tls: cert_file and key_file go together"))
		}
		if c.TLS.RequireClientCert && c.TLS.ClientCAFile == "" {
			errs = append(errs, errors.New("sip.tls.require_client_cert needs client_ca_file"))
		}
		if _, _, err := net.SplitHostPort(c.TLS.Listen); err != nil {
			errs = append(errs, fmt.Errorf("sip.tls.listen %q: %w", c.TLS.Listen, err))
		}
	}
	if c.MediaAddress != "" {
		if _, err := netip.ParseAddr(c.MediaAddress); err != nil {
			errs = append(errs, fmt.Errorf("sip.media_address %q: %w", c.MediaAddress, err))
		}
	}
	if !slices.Contains([]Activation{ActivateImmediately, ActivateOnMatch, ActivateDelayed}, c.Activation) {
		errs = append(errs, fmt.Errorf("sip.activation %q: want immediate, on-match or delayed", c.Activation))
	}
	if c.Activation == ActivateDelayed && c.ActivationDelay < 0 {
		errs = append(errs, errors.New("sip.activation_delay must not be negative"))
	}
	if c.ReinviteTimeout <= 0 {
		errs = append(errs, errors.New("sip.reinvite_timeout must be positive"))
	}
	for src := range c.Tenants {
		if _, err := parseSource(src); err != nil {
			errs = append(errs, fmt.Errorf("sip.tenants: %q is not an IP or CIDR", src))
		}
	}
	if c.MinSessionExpires < time.Second {
		errs = append(errs, errors.New("sip.min_session_expires must be at least 1s"))
	}
	if c.SessionExpires != 0 && c.SessionExpires < c.MinSessionExpires {
		errs = append(errs, errors.New("sip.session_expires must be 0 or at least sip.min_session_expires"))
	}
	for _, src := range c.Admission.AllowSources {
		if _, err := parseSource(src); err != nil {
			errs = append(errs, fmt.Errorf("sip.admission.allow_sources: %q is not an IP or CIDR", src))
		}
	}
	if c.Admission.MaxSessions < 0 || c.Admission.MaxStreams < 1 {
		errs = append(errs, errors.New("sip.admission: max_sessions must not be negative, max_streams must be at least 1"))
	}
	if c.Admission.InviteRate < 0 || (c.Admission.InviteRate > 0 && c.Admission.InviteBurst < 1) {
		errs = append(errs, errors.New("sip.admission: invite_rate must not be negative and needs invite_burst ≥ 1"))
	}
	if c.ReinviteAttempts < 1 {
		errs = append(errs, errors.New("sip.reinvite_attempts must be at least 1"))
	}
	return errors.Join(errs...)
}

func parseSource(s string) (netip.Prefix, error) {
	if p, err := netip.ParsePrefix(s); err == nil {
		return p, nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// tenantOf is the tenant configured for an SRC address (host:port), or "".
func (c Config) tenantOf(source string) string {
	ap, err := netip.ParseAddrPort(source)
	if err != nil {
		return ""
	}
	for src, tenant := range c.Tenants {
		if p, err := parseSource(src); err == nil && p.Contains(ap.Addr().Unmap()) {
			return tenant
		}
	}
	return ""
}
