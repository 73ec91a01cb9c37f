package delivery

import (
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"path"
	"slices"
	"strings"
	"time"
)

// Defaults for Config, TargetConfig and WebhookConfig.
const (
	DefaultWorkers        = 4
	DefaultFastAttempts   = 5
	DefaultMinBackoff     = time.Second
	DefaultMaxBackoff     = 5 * time.Minute
	DefaultRetryInterval  = 5 * time.Minute
	DefaultRetryBatch     = 100
	DefaultStuckAfter     = time.Hour
	DefaultTargetTimeout  = 5 * time.Minute  // per request (one upload, one verification)
	DefaultWebhookTimeout = 10 * time.Second // per POST
	DefaultVerify         = VerifyHead
)

// Target types.
const (
	TypeWebDAV = "webdav"
	TypeS3     = "s3"
)

// Verification modes (TargetConfig.Verify).
const (
	VerifyHead     = "head"     // size (and, on S3, the stored sha256 metadata) from a HEAD/stat
	VerifyReadback = "readback" // read the object back and compare its SHA-256
)

// Webhook events (WebhookConfig.Events) and the documents' states they follow.
const (
	EventCompleted   = "completed"    // state completed
	EventFailed      = "failed"       // state failed
	EventNotRecorded = "not_recorded" // state never_activated
)

// Config is the delivery part of the configuration file. With no targets and no webhooks (the default)
// recordings stay local only.
type Config struct {
	Targets  []TargetConfig  `yaml:"targets"`
	Webhooks []WebhookConfig `yaml:"webhooks"`

	Workers       int           `yaml:"workers"`        // jobs sent at the same time
	FastAttempts  int           `yaml:"fast_attempts"`  // tries with exponential backoff before a job goes to the retry buffer
	MinBackoff    time.Duration `yaml:"min_backoff"`    // first backoff; each later one draws from [min, min·2^n] capped at max
	MaxBackoff    time.Duration `yaml:"max_backoff"`    // cap of the backoff
	RetryInterval time.Duration `yaml:"retry_interval"` // how often the retry buffer is tried again
	RetryBatch    int           `yaml:"retry_batch"`    // jobs per target (or webhook) tried in one retry-buffer run
	StuckAfter    time.Duration `yaml:"stuck_after"`    // a job older than this is logged (once) and counted as stuck
	DeleteLocal   bool          `yaml:"delete_local"`   // remove the local WAV and JSON once every target has them
}

// TargetConfig is one archive. Keys that do not belong to the type are ignored.
type TargetConfig struct {
	Name string `yaml:"name"` // in metrics, logs and job file names: letters, digits, '_' and '-'
	Type string `yaml:"type"` // webdav | s3

	// WebDAV
	URL                string `yaml:"url"`                  // collection the files go under, e.g. https://dav.example.com/recordings/
	Username           string `yaml:"username"`             // basic or digest user
	Password           string `yaml:"password"`             // never logged
	Auth               string `yaml:"auth"`                 // basic | digest (default basic when a username is set)
	CAFile             string `yaml:"ca_file"`              // PEM bundle trusted for the server's certificate (WebDAV and S3)
	InsecureSkipVerify bool   `yaml:"insecure_skip_verify"` // do not check the server's certificate (tests only)

	// S3
	Endpoint    string `yaml:"endpoint"`       // host[:port], no scheme (s3.eu-west-1.amazonaws.com, minio.local:9000)
	Bucket      string `yaml:"bucket"`         // must exist
	Region      string `yaml:"region"`         // empty: asked from the server
	AccessKey   string `yaml:"access_key"`     // with secret_key; both empty: AWS_*/MINIO_* environment, then the instance role
	SecretKey   string `yaml:"secret_key"`     // never logged
	PathStyle   bool   `yaml:"path_style"`     // https://endpoint/bucket/key instead of https://bucket.endpoint/key
	Insecure    bool   `yaml:"insecure"`       // plain http
	SSE         string `yaml:"sse"`            // "" | AES256 | aws:kms
	SSEKMSKeyID string `yaml:"sse_kms_key_id"` // with sse: aws:kms; empty: the account's default key

	// Both
	Prefix  string        `yaml:"prefix"`  // prepended to every object name (a folder under url, or a key prefix)
	Verify  string        `yaml:"verify"`  // head (default) | readback
	Timeout time.Duration `yaml:"timeout"` // per request; 0: DefaultTargetTimeout
}

// WebhookConfig is an HTTP endpoint told about finished recordings.
type WebhookConfig struct {
	Name    string        `yaml:"name"`    // in metrics, logs and job file names: letters, digits, '_' and '-'
	URL     string        `yaml:"url"`     // http(s) URL the events are POSTed to
	Secret  string        `yaml:"secret"`  // HMAC-SHA256 key of X-Siphook-Signature; never logged
	Events  []string      `yaml:"events"`  // completed, failed, not_recorded; empty: all three
	Timeout time.Duration `yaml:"timeout"` // per POST; 0: DefaultWebhookTimeout
}

// DefaultConfig has no targets and no webhooks: recordings stay local until some are configured.
func DefaultConfig() Config {
	return Config{
		Workers:       DefaultWorkers,
		FastAttempts:  DefaultFastAttempts,
		MinBackoff:    DefaultMinBackoff,
		MaxBackoff:    DefaultMaxBackoff,
		RetryInterval: DefaultRetryInterval,
		RetryBatch:    DefaultRetryBatch,
		StuckAfter:    DefaultStuckAfter,
	}
}

// Enabled reports whether anything is configured to receive recordings or events.
func (c Config) Enabled() bool { return len(c.Targets)+len(c.Webhooks) > 0 }

// Validate reports every problem at once; secrets never appear in messages.
func (c Config) Validate() error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if c.Workers < 1 {
		add("delivery.workers %d: must be at least 1", c.Workers)
	}
	if c.FastAttempts < 1 {
		add("delivery.fast_attempts %d: must be at least 1", c.FastAttempts)
	}
	if c.MinBackoff <= 0 {
		add("delivery.min_backoff %v: must be positive", c.MinBackoff)
	}
	if c.MaxBackoff < c.MinBackoff {
		add("delivery.max_backoff %v: must not be below min_backoff (%v)", c.MaxBackoff, c.MinBackoff)
	}
	if c.RetryInterval <= 0 {
		add("delivery.retry_interval %v: must be positive", c.RetryInterval)
	}
	if c.RetryBatch < 1 {
		add("delivery.retry_batch %d: must be at least 1", c.RetryBatch)
	}
	if c.StuckAfter <= 0 {
		add("delivery.stuck_after %v: must be positive", c.StuckAfter)
	}
	if c.DeleteLocal && len(c.Targets) == 0 {
		add("delivery.delete_local: needs at least one target (webhooks do not keep the audio)")
	}
	names := map[string]string{}
	name := func(where, n string) {
		if !validName(n) {
			add("%s.name %q: must be 1-64 letters, digits, '_' or '-'", where, n)
			return
		}
		if other, ok := names[n]; ok {
			add("%s.name %q: already used by %s (target and webhook names share one namespace)", where, n, other)
			return
		}
		names[n] = where
	}
	for i, t := range c.Targets {
		where := fmt.Sprintf("delivery.targets[%d]", i)
		name(where, t.Name)
		errs = append(errs, t.validate(where)...)
	}
	for i, w := range c.Webhooks {
		where := fmt.Sprintf("delivery.webhooks[%d]", i)
		name(where, w.Name)
		errs = append(errs, w.validate(where)...)
	}
	return errors.Join(errs...)
}

func (t TargetConfig) validate(where string) []error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(where+"."+format, args...)) }
	switch t.Type {
	case TypeWebDAV:
		if u, err := url.Parse(t.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			add("url: must be http(s)://host/path")
		} else if u.User != nil {
			add("url: put credentials in username and password, not in the URL")
		}
		switch t.Auth {
		case "", "basic", "digest":
		default:
			add("auth %q: must be basic or digest", t.Auth)
		}
		if t.Auth != "" && t.Username == "" {
			add("auth %s: needs a username", t.Auth)
		}
	case TypeS3:
		if t.Endpoint == "" {
			add("endpoint: required (host[:port])")
		} else if strings.Contains(t.Endpoint, "://") || strings.ContainsAny(t.Endpoint, "/?#@ ") {
			add("endpoint %q: must be host[:port] without scheme or path (insecure: true for http)", t.Endpoint)
		}
		if t.Bucket == "" {
			add("bucket: required")
		}
		if (t.AccessKey == "") != (t.SecretKey == "") {
			add("access_key and secret_key: give both or neither")
		}
		switch t.SSE {
		case "", "AES256", "aws:kms":
		default:
			add("sse %q: must be AES256 or aws:kms", t.SSE)
		}
		if t.SSEKMSKeyID != "" && t.SSE != "aws:kms" {
			add("sse_kms_key_id: only with sse: aws:kms")
		}
		if t.Insecure && t.CAFile != "" {
			add("ca_file: has no use with insecure (plain http)")
		}
	case "":
		add("type: required (webdav or s3)")
	default:
		add("type %q: must be webdav or s3", t.Type)
	}
	if p := strings.Trim(t.Prefix, "/"); p != "" && (!validObjectPath(p) || path.Clean(p) != p) {
		add("prefix %q: must be a clean relative path without . or .. segments", t.Prefix)
	}
	switch t.Verify {
	case "", VerifyHead, VerifyReadback:
	default:
		add("verify %q: must be head or readback", t.Verify)
	}
	if t.Timeout < 0 {
		add("timeout %v: must not be negative", t.Timeout)
	}
	return errs
}

func (w WebhookConfig) validate(where string) []error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(where+"."+format, args...)) }
	if u, err := url.Parse(w.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		add("url: must be http(s)://host/path")
	}
	if w.Secret == "" {
		add("secret: required (receivers check X-Siphook-Signature with it)")
	}
	for _, e := range w.Events {
		if !slices.Contains(allEvents, e) {
			add("events: %q is not one of %s", e, strings.Join(allEvents, ", "))
		}
	}
	if w.Timeout < 0 {
		add("timeout %v: must not be negative", w.Timeout)
	}
	return errs
}

var allEvents = []string{EventCompleted, EventFailed, EventNotRecorded}

// NewTargets builds every configured target (Validate first). It reports every target that could not be
// built.
func NewTargets(cfg Config) ([]Target, error) {
	var (
		out  []Target
		errs []error
	)
	for _, tc := range cfg.Targets {
		var (
			t   Target
			err error
		)
		switch tc.Type {
		case TypeWebDAV:
			t, err = NewWebDAV(tc)
		case TypeS3:
			t, err = NewS3(tc)
		default:
			err = fmt.Errorf("delivery: target %q: unknown type %q", tc.Name, tc.Type)
		}
		if err != nil {
			errs = append(errs, err)
			continue
		}
		out = append(out, t)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return out, nil
}

// LogValue leaves the secrets out, so logging a TargetConfig never shows them.
func (t TargetConfig) LogValue() slog.Value {
	attrs := []slog.Attr{slog.String("name", t.Name), slog.String("type", t.Type)}
	switch t.Type {
	case TypeWebDAV:
		attrs = append(attrs, slog.String("url", t.URL), slog.String("username", t.Username))
	case TypeS3:
		attrs = append(attrs, slog.String("endpoint", t.Endpoint), slog.String("bucket", t.Bucket))
	}
	return slog.GroupValue(append(attrs, slog.String("prefix", t.Prefix))...)
}

// String leaves the secrets out, so printing a TargetConfig (%v, %s) never shows them.
func (t TargetConfig) String() string {
	c := t
	c.Password, c.SecretKey = redactSecret(c.Password), redactSecret(c.SecretKey)
	type plain TargetConfig // no String method: no recursion
	return fmt.Sprintf("%+v", plain(c))
}

// LogValue leaves the secret out, so logging a WebhookConfig never shows it.
func (w WebhookConfig) LogValue() slog.Value {
	return slog.GroupValue(slog.String("name", w.Name), slog.String("url", redactURL(w.URL)))
}

// String leaves the secret out, so printing a WebhookConfig (%v, %s) never shows it.
func (w WebhookConfig) String() string {
	c := w
	c.Secret, c.URL = redactSecret(c.Secret), redactURL(c.URL)
	type plain WebhookConfig
	return fmt.Sprintf("%+v", plain(c))
}

func redactSecret(s string) string {
	if s == "" {
		return ""
	}
	return "[redacted]"
}

// redactURL hides a password in the URL's user info.
func redactURL(s string) string {
	if u, err := url.Parse(s); err == nil {
		return u.Redacted()
	}
	return "[unparsable URL]"
}

// validName: target and webhook names become metric labels and parts of file names.
func validName(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for _, c := range []byte(s) {
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '_', c == '-':
		default:
			return false
		}
	}
	return true
}

// validObjectPath: a slash-separated relative path that stays inside its root (recordings' relative paths,
// prefixes).
func validObjectPath(p string) bool {
	if p == "" || len(p) > 1024 || strings.HasPrefix(p, "/") || strings.ContainsAny(p, "\\\x00") {
		return false
	}
	for seg := range strings.SplitSeq(p, "/") {
		if seg == "" || seg == "." || seg == ".." {
			return false
		}
		for _, r := range seg {
			if r < 0x20 || r == 0x7f {
				return false
			}
		}
	}
	return true
}
