package delivery

import (
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

func TestDefaultConfig(t *testing.T) {
	c := DefaultConfig()
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if c.Enabled() {
		t.Error("the default delivers somewhere")
	}
	want := Config{Workers: 4, FastAttempts: 5, MinBackoff: time.Second, MaxBackoff: 5 * time.Minute,
		RetryInterval: 5 * time.Minute, RetryBatch: 100, StuckAfter: time.Hour}
	if !reflect.DeepEqual(c, want) {
		t.Errorf("DefaultConfig() = %+v, want %+v", c, want)
	}
}

// TestValidate: every problem is reported at once, and no secret is in the report.
func TestValidate(t *testing.T) {
	const secret = "do-not-print-me"
	c := DefaultConfig()
	c.Workers, c.FastAttempts, c.RetryBatch = 0, 0, 0
	c.MinBackoff, c.MaxBackoff, c.RetryInterval, c.StuckAfter = 0, -1, 0, 0
	c.Targets = []TargetConfig{
		{Name: "dav", Type: TypeWebDAV, URL: "ftp://x", Auth: "ntlm", Password: secret},
		{Name: "dav", Type: TypeS3, Endpoint: "https://s3.example.com", SSE: "rot13", SSEKMSKeyID: "k", AccessKey: "a", Prefix: "../up"},
		{Name: "bad name", Type: "ftp", Verify: "eyeball", Timeout: -time.Second},
		{Name: "digest", Type: TypeWebDAV, URL: "https://u:" + secret + "@dav.example.com/", Auth: "digest"},
	}
	c.Webhooks = []WebhookConfig{
		{Name: "dav", URL: "mailto:x", Events: []string{"completed", "exploded"}, Timeout: -1},
	}
	err := c.Validate()
	if err == nil {
		t.Fatal("accepted")
	}
	msg := err.Error()
	for _, want := range []string{
		"delivery.workers", "delivery.fast_attempts", "delivery.retry_batch", "delivery.min_backoff", "delivery.max_backoff",
		"delivery.retry_interval", "delivery.stuck_after",
		"targets[0].url", "targets[0].auth", "targets[1].name \"dav\": already used", "targets[1].endpoint",
		"targets[1].bucket", "targets[1].sse", "targets[1].access_key", "targets[1].prefix",
		"targets[2].name", "targets[2].type", "targets[2].verify", "targets[2].timeout",
		"targets[3].url: put credentials", "targets[3].auth digest: needs a username",
		"webhooks[0].name \"dav\": already used", "webhooks[0].url", "webhooks[0].secret", "\"exploded\"", "webhooks[0].timeout",
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("no %q in:\n%s", want, msg)
		}
	}
	if strings.Contains(msg, secret) {
		t.Errorf("secret in:\n%s", msg)
	}
	c = DefaultConfig()
	c.DeleteLocal = true
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "delete_local") {
		t.Errorf("delete_local without targets: %v", err)
	}
}

// TestNewTargets builds each type and reports every target that cannot be built.
func TestNewTargets(t *testing.T) {
	c := DefaultConfig()
	c.Targets = []TargetConfig{
		{Name: "dav", Type: TypeWebDAV, URL: "https://dav.example.com/recordings/", Username: "u", Password: "p"},
		{Name: "s3", Type: TypeS3, Endpoint: "s3.eu-west-1.amazonaws.com", Bucket: "b", Region: "eu-west-1", AccessKey: "a", SecretKey: "s"},
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	ts, err := NewTargets(c)
	if err != nil {
		t.Fatal(err)
	}
	if len(ts) != 2 || ts[0].Name() != "dav" || ts[1].Name() != "s3" {
		t.Errorf("targets %v", ts)
	}
	c.Targets = append(c.Targets, TargetConfig{Name: "x", Type: "ftp"}, TargetConfig{Name: "y", Type: TypeS3})
	if _, err := NewTargets(c); err == nil || !strings.Contains(err.Error(), `"x"`) || !strings.Contains(err.Error(), "y") {
		t.Errorf("NewTargets: %v, want both bad targets named", err)
	}
}

// TestREADMEConfig: the configuration example in README.md parses into Config with every key known, and
// validates.
func TestREADMEConfig(t *testing.T) {
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(readme), "```yaml\n")
	example, _, ok2 := strings.Cut(rest, "```")
	if !ok || !ok2 {
		t.Fatal("no yaml example in README.md")
	}
	var doc struct {
		Delivery Config `yaml:"delivery"`
	}
	doc.Delivery = DefaultConfig()
	dec := yaml.NewDecoder(strings.NewReader(example))
	dec.KnownFields(true)
	if err := dec.Decode(&doc); err != nil {
		t.Fatalf("README example: %v", err)
	}
	if err := doc.Delivery.Validate(); err != nil {
		t.Fatalf("README example: %v", err)
	}
	c := doc.Delivery
	if len(c.Targets) != 2 || len(c.Webhooks) != 1 || c.Targets[1].SSE != "aws:kms" || c.Webhooks[0].Timeout != 10*time.Second {
		t.Errorf("README example parsed as %+v", c)
	}
	// Every key of Config, TargetConfig and WebhookConfig is documented in the README.
	for _, typ := range []reflect.Type{reflect.TypeFor[Config](), reflect.TypeFor[TargetConfig](), reflect.TypeFor[WebhookConfig]()} {
		for i := range typ.NumField() {
			key, _, _ := strings.Cut(typ.Field(i).Tag.Get("yaml"), ",")
			if !strings.Contains(string(readme), "`"+key+"`") {
				t.Errorf("README.md does not document `%s`", key)
			}
		}
	}
}
