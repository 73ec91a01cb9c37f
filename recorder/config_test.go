package recorder

import (
	"strings"
	"testing"
	"time"
)

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name   string
		modify func(*Config)
		want   []string // substrings of the error; none means valid
	}{
		{"defaults", func(*Config) {}, nil},
		{"zero lag", func(c *Config) { c.Lag = 0 }, nil},
		{"empty dir", func(c *Config) { c.Dir = "" }, []string{"recorder.dir"}},
		{"zero flush interval", func(c *Config) { c.FlushInterval = 0 }, []string{"recorder.flush_interval"}},
		{"negative lag", func(c *Config) { c.Lag = -time.Second }, []string{"recorder.lag"}},
		{"max ahead not above lag", func(c *Config) { c.MaxAhead = c.Lag }, []string{"recorder.max_ahead"}},
		{"no disk floor", func(c *Config) { c.MinFreeBytes = 0 }, nil},
		{"negative disk floor", func(c *Config) { c.MinFreeBytes = -1 }, []string{"recorder.min_free_bytes"}},
		{"manifest off", func(c *Config) { c.Manifest.Enabled = false }, nil},
		{"signing key, manifest off", func(c *Config) { c.Manifest = ManifestConfig{SigningKeyFile: "k"} }, []string{"recorder.manifest.signing_key_file"}},
		{"every problem at once", func(c *Config) {
			*c = Config{Lag: -1, MaxAhead: -2, MinFreeBytes: -1, Manifest: ManifestConfig{SigningKeyFile: "k"}}
		}, []string{
			"recorder.dir", "recorder.flush_interval", "recorder.lag", "recorder.max_ahead", "recorder.min_free_bytes",
			"recorder.manifest.signing_key_file",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := DefaultConfig()
			tt.modify(&c)
			err := c.Validate()
			if len(tt.want) == 0 {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validate() = nil, want errors about %v", tt.want)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Validate() = %q, want it to mention %q", err, w)
				}
			}
		})
	}
}

func TestDefaultConfig(t *testing.T) {
	c := DefaultConfig()
	if c.MinFreeBytes != 1<<30 || !c.Manifest.Enabled || c.Manifest.SigningKeyFile != "" {
		t.Errorf("defaults: min_free_bytes %d, manifest %+v; want 1 GiB and an unsigned manifest", c.MinFreeBytes, c.Manifest)
	}
}

func TestNewRejectsInvalidConfig(t *testing.T) {
	if _, err := New(Config{}); err == nil {
		t.Fatal("New(Config{}) succeeded")
	}
}
