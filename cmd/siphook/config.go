package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"reflect"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/siphook/siphook/api"
	"github.com/siphook/siphook/audiohook"
	"github.com/siphook/siphook/cti/genesys"
	"github.com/siphook/siphook/cti/webhook"
	"github.com/siphook/siphook/matcher"
	"github.com/siphook/siphook/recorder"
	"github.com/siphook/siphook/recorder/delivery"
	"github.com/siphook/siphook/rtp"
	"github.com/siphook/siphook/sip"
)

// Config is the whole configuration file. Each section belongs to its package, which owns its defaults and
// its Validate; this file only layers them: embedded defaults < YAML file < SIPHOOK_* environment < flags.
type Config struct {
	Log       LogConfig        `yaml:"log"`
	SIP       sip.Config       `yaml:"sip"`
	RTP       rtp.Config       `yaml:"rtp"`
	Recorder  recorder.Config  `yaml:"recorder"`
	AudioHook audiohook.Config `yaml:"audiohook"`
	Genesys   genesys.Config   `yaml:"genesys"`
	Webhook   webhook.Config   `yaml:"webhook"`
	Matcher   matcher.Config   `yaml:"matcher"`
	API       api.Config       `yaml:"api"`
	Delivery  delivery.Config  `yaml:"delivery"`
	Shutdown  ShutdownConfig   `yaml:"shutdown"`
}

// ShutdownConfig is what SIGTERM does: refuse new calls, let the active ones end by themselves for up to
// DrainTimeout, then end the rest (BYE, recordings finalised). SIGINT, or a second signal, skips the wait.
type ShutdownConfig struct {
	DrainTimeout time.Duration `yaml:"drain_timeout"`
}

// LogConfig chooses the log output.
type LogConfig struct {
	Level  string `yaml:"level"`  // debug, info, warn, error
	Format string `yaml:"format"` // text or json
}

// defaultConfig is the embedded default. Activation is left empty: resolveDefaults picks immediate, or
// on-match when a CTI source is configured, unless the operator chose.
func defaultConfig() Config {
	cfg := Config{
		Log:       LogConfig{Level: "info", Format: "text"},
		SIP:       sip.DefaultConfig(),
		RTP:       rtp.DefaultConfig(),
		Recorder:  recorder.DefaultConfig(),
		AudioHook: audiohook.DefaultConfig(),
		Genesys:   genesys.DefaultConfig(),
		Matcher:   matcher.DefaultConfig(),
		API:       api.DefaultConfig(),
		Delivery:  delivery.DefaultConfig(),
		Shutdown:  ShutdownConfig{DrainTimeout: 30 * time.Second},
	}
	cfg.SIP.Activation, cfg.AudioHook.Activation = "", ""
	return cfg
}

// resolveDefaults fills what depends on other settings: with CTI configured, sessions wait for a match.
func (c *Config) resolveDefaults() {
	cti := c.Genesys.Enabled() || c.Webhook.Listen != ""
	if c.SIP.Activation == "" {
		c.SIP.Activation = sip.ActivateImmediately
		if cti {
			c.SIP.Activation = sip.ActivateOnMatch
		}
	}
	if c.AudioHook.Activation == "" {
		c.AudioHook.Activation = audiohook.ActivateImmediately
		if cti {
			c.AudioHook.Activation = audiohook.ActivateOnMatch
		}
	}
}

// Validate collects every section's problems.
func (c Config) Validate() error {
	var errs []error
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		errs = append(errs, fmt.Errorf("log.level %q: want debug, info, warn or error", c.Log.Level))
	}
	if c.Log.Format != "text" && c.Log.Format != "json" {
		errs = append(errs, fmt.Errorf("log.format %q: want text or json", c.Log.Format))
	}
	errs = append(errs, c.SIP.Validate(), c.RTP.Validate(), c.Recorder.Validate(), c.AudioHook.Validate(), c.Genesys.Validate(),
		c.Webhook.Validate(), c.Matcher.Validate(), c.API.Validate(), c.Delivery.Validate())
	if c.API.Enabled && c.AudioHook.Listen != "" && len(c.API.AllTokens()) == 0 && !loopbackListener(c.AudioHook.Listen) {
		// Without a token the API serves loopback clients only; on a reachable address that would look like a
		// broken API, or tempt someone to proxy it open. Refuse instead.
		errs = append(errs, fmt.Errorf("api: the recordings API and web UI would listen on %s (audiohook.listen) with no token: "+
			"set SIPHOOK_API_TOKEN (or api.token, api.tokens), listen on loopback, or set api.enabled: false", c.AudioHook.Listen))
	}
	if c.Shutdown.DrainTimeout < 0 {
		errs = append(errs, errors.New("shutdown.drain_timeout must not be negative"))
	}
	if c.RTP.Reader != "socket" && c.Recorder.Lag <= c.RTP.SweepInterval {
		// A sweep delivers a stream's packets up to sweep_interval late; the recorder must wait longer.
		errs = append(errs, fmt.Errorf("recorder.lag %v must exceed rtp.sweep_interval %v", c.Recorder.Lag, c.RTP.SweepInterval))
	}
	return errors.Join(errs...)
}

// loopbackListener says whether a listen address can be reached from this host only.
func loopbackListener(hostPort string) bool {
	host, _, err := net.SplitHostPort(hostPort)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.IsLoopback()
}

// loadFile decodes a YAML file over cfg; unknown keys are errors so a typo fails at start, not in production.
func loadFile(cfg *Config, path string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(cfg); err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}

const envPrefix = "SIPHOOK_"

// envVar is one configuration key reachable from the environment.
type envVar struct {
	Name  string        // SIPHOOK_SIP_LISTEN
	Key   string        // sip.listen
	field reflect.Value // settable
}

// envVars lists every leaf key of the config: the variable name is SIPHOOK_ + the YAML path in upper case
// with '.' as '_' (sip.tls.cert_file → SIPHOOK_SIP_TLS_CERT_FILE).
func envVars(cfg *Config) []envVar {
	var out []envVar
	var walk func(v reflect.Value, path []string)
	walk = func(v reflect.Value, path []string) {
		t := v.Type()
		for i := range t.NumField() {
			tag, opts, _ := strings.Cut(t.Field(i).Tag.Get("yaml"), ",")
			f := v.Field(i)
			if opts == "inline" {
				walk(f, path) // the inline struct's keys sit at this level
				continue
			}
			if tag == "" || tag == "-" {
				continue
			}
			p := append(path[:len(path):len(path)], tag)
			if f.Kind() == reflect.Struct && f.Type() != reflect.TypeFor[time.Duration]() {
				walk(f, p)
				continue
			}
			if f.Kind() == reflect.Slice && f.Type().Elem().Kind() == reflect.Struct {
				continue // lists of records (audiohook.organizations) come from the file only
			}
			out = append(out, envVar{
				Name:  envPrefix + strings.ToUpper(strings.Join(p, "_")),
				Key:   strings.Join(p, "."),
				field: f,
			})
		}
	}
	walk(reflect.ValueOf(cfg).Elem(), nil)
	return out
}

// applyEnv sets every config key that has a SIPHOOK_* variable in env.
func applyEnv(cfg *Config, lookup func(string) (string, bool)) error {
	var errs []error
	for _, ev := range envVars(cfg) {
		val, ok := lookup(ev.Name)
		if !ok {
			continue
		}
		if err := setValue(ev.field, val); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", ev.Name, err))
		}
	}
	return errors.Join(errs...)
}

func setValue(f reflect.Value, s string) error {
	switch {
	case f.Type() == reflect.TypeFor[time.Duration]():
		d, err := time.ParseDuration(s)
		if err != nil {
			return err
		}
		f.SetInt(int64(d))
	case f.Kind() == reflect.String:
		f.SetString(s)
	case f.Kind() == reflect.Int || f.Kind() == reflect.Int64:
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return err
		}
		f.SetInt(n)
	case f.Kind() == reflect.Bool:
		b, err := strconv.ParseBool(s)
		if err != nil {
			return err
		}
		f.SetBool(b)
	case f.Kind() == reflect.Slice && f.Type().Elem().Kind() == reflect.String:
		var items []string
		for item := range strings.SplitSeq(s, ",") {
			if item = strings.TrimSpace(item); item != "" {
				items = append(items, item)
			}
		}
		f.Set(reflect.ValueOf(items))
	default:
		return fmt.Errorf("unsupported type %s", f.Type())
	}
	return nil
}

// isSecret says which keys check-config never prints.
func isSecret(key string) bool {
	return strings.Contains(key, "secret") || strings.Contains(key, "password") || strings.HasSuffix(key, "key_file") ||
		strings.HasSuffix(key, "api_key") || strings.HasSuffix(key, "token")
}

// redact blanks every non-empty secret in v (a config struct), lists of records included.
func redact(v reflect.Value) {
	t := v.Type()
	for i := range t.NumField() {
		tag, _, _ := strings.Cut(t.Field(i).Tag.Get("yaml"), ",")
		f := v.Field(i)
		switch {
		case f.Kind() == reflect.Struct:
			redact(f)
		case f.Kind() == reflect.Slice && f.Type().Elem().Kind() == reflect.Struct:
			for j := range f.Len() {
				redact(f.Index(j))
			}
		case f.Kind() == reflect.String && isSecret(tag) && f.String() != "":
			f.SetString("[redacted]")
		}
	}
}
