package genesys

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"
)

// Tenant is one Genesys Cloud organisation to follow.
type Tenant struct {
	Name      string `yaml:"name"`       // label in events and logs (default: the region)
	Region    string `yaml:"region"`     // SDK region key (us_east_1, eu_west_1, …) or domain (usw2.pure.cloud)
	APIBase   string `yaml:"api_base"`   // https://api.{domain}: overrides Region (the fake Genesys uses it)
	LoginBase string `yaml:"login_base"` // https://login.{domain}
	ClientID  string `yaml:"client_id"`  // OAuth client (client credentials grant)
	// ClientSecret comes from the environment (SIPHOOK_GENESYS_CLIENT_SECRET) or the file; never logged.
	ClientSecret string   `yaml:"client_secret"`
	Users        []string `yaml:"users"`          // user ids or emails of the agents to track
	Groups       []string `yaml:"groups"`         // group ids whose members are tracked
	Queues       []string `yaml:"queues"`         // queue ids whose members are tracked
	UUIAttribute []string `yaml:"uui_attributes"` // participant attribute keys that carry the UCID (e.g. ASAIUUI)
	// SecurePauseHolds treats a secure (PCI) pause as HELD, so it is not recorded.
	SecurePauseHolds bool `yaml:"secure_pause_holds"`
}

// Config is the Genesys CTI source: one tenant from the top-level keys (which the environment alone can
// set), more in Tenants.
type Config struct {
	Tenant  `yaml:",inline"`
	Tenants []Tenant `yaml:"tenants"`

	UserRefresh      time.Duration `yaml:"user_refresh"`       // how often tracked agents are resolved again
	ReconcileEvery   time.Duration `yaml:"reconcile_interval"` // slow reconciliation timer
	HeartbeatTimeout time.Duration `yaml:"heartbeat_timeout"`  // silence after which we ping
	PongTimeout      time.Duration `yaml:"pong_timeout"`       // no answer to our ping: reconnect
	MaxRetryAfter    time.Duration `yaml:"max_retry_after"`    // a 429 asking for a longer wait is an error
}

// DefaultConfig has no tenant: CTI is off until one is configured.
func DefaultConfig() Config {
	return Config{
		UserRefresh:      time.Hour,
		ReconcileEvery:   5 * time.Minute,
		HeartbeatTimeout: 60 * time.Second,
		PongTimeout:      10 * time.Second,
		MaxRetryAfter:    180 * time.Second,
	}
}

// Enabled reports whether any tenant is configured.
func (c Config) Enabled() bool { return len(c.AllTenants()) > 0 }

// AllTenants is the top-level tenant (when it has a client id) followed by Tenants.
func (c Config) AllTenants() []Tenant {
	var out []Tenant
	if c.ClientID != "" {
		out = append(out, c.Tenant)
	}
	return append(out, c.Tenants...)
}

// Validate reports every problem at once; secrets never appear in messages.
func (c Config) Validate() error {
	var errs []error
	names := map[string]bool{}
	for i, t := range c.AllTenants() {
		where := fmt.Sprintf("genesys tenant %d", i)
		if t.Name != "" {
			where = "genesys tenant " + t.Name
		}
		if _, _, err := t.bases(); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", where, err))
		}
		if t.ClientID == "" || t.ClientSecret == "" {
			errs = append(errs, fmt.Errorf("%s: client_id and client_secret are required", where))
		}
		if len(t.Users)+len(t.Groups)+len(t.Queues) == 0 {
			errs = append(errs, fmt.Errorf("%s: no users, groups or queues to track", where))
		}
		name := t.label()
		if names[name] {
			errs = append(errs, fmt.Errorf("%s: tenant name %q used twice", where, name))
		}
		names[name] = true
	}
	for name, d := range map[string]time.Duration{"user_refresh": c.UserRefresh, "reconcile_interval": c.ReconcileEvery,
		"heartbeat_timeout": c.HeartbeatTimeout, "pong_timeout": c.PongTimeout, "max_retry_after": c.MaxRetryAfter} {
		if d <= 0 {
			errs = append(errs, fmt.Errorf("genesys.%s must be positive", name))
		}
	}
	return errors.Join(errs...)
}

// regions maps the SDK region keys to domains (research/genesys-cti.md §1.2).
var regions = map[string]string{
	"us_east_1": "mypurecloud.com", "us_east_2": "use2.us-gov-pure.cloud", "us_west_2": "usw2.pure.cloud",
	"ca_central_1": "cac1.pure.cloud", "sa_east_1": "sae1.pure.cloud", "mx_central_1": "mxc1.pure.cloud",
	"eu_west_1": "mypurecloud.ie", "eu_west_2": "euw2.pure.cloud", "eu_central_1": "mypurecloud.de",
	"eu_central_2": "euc2.pure.cloud", "me_central_1": "mec1.pure.cloud", "ap_south_1": "aps1.pure.cloud",
	"ap_southeast_1": "apse1.pure.cloud", "ap_southeast_2": "mypurecloud.com.au", "ap_northeast_1": "mypurecloud.jp",
	"ap_northeast_2": "apne2.pure.cloud", "ap_northeast_3": "apne3.pure.cloud",
}

// bases returns the API and login base URLs: explicit overrides, else derived from the region's domain
// (api.{domain}, login.{domain}).
func (t Tenant) bases() (api, login string, err error) {
	if t.APIBase != "" || t.LoginBase != "" {
		if t.APIBase == "" || t.LoginBase == "" {
			return "", "", errors.New("api_base and login_base go together")
		}
		for _, b := range []string{t.APIBase, t.LoginBase} {
			if u, err := url.Parse(b); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
				return "", "", fmt.Errorf("base URL %q is not http(s)://host", b)
			}
		}
		return strings.TrimRight(t.APIBase, "/"), strings.TrimRight(t.LoginBase, "/"), nil
	}
	domain := t.Region
	if d, ok := regions[strings.ToLower(t.Region)]; ok {
		domain = d
	}
	if domain == "" || !strings.Contains(domain, ".") {
		return "", "", fmt.Errorf("region %q is neither a region key nor a domain", t.Region)
	}
	return "https://api." + domain, "https://login." + domain, nil
}

func (t Tenant) label() string {
	if t.Name != "" {
		return t.Name
	}
	if t.Region != "" {
		return t.Region
	}
	return t.APIBase
}
