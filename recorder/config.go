package recorder

import (
	"errors"
	"fmt"
	"time"
)

// Defaults for Config.
const (
	DefaultDir           = "./recordings"
	DefaultFlushInterval = 250 * time.Millisecond
	DefaultLag           = 300 * time.Millisecond
	DefaultMaxAhead      = 10 * time.Second
)

// Config is the recorder's part of the configuration file.
type Config struct {
	Dir           string         `yaml:"dir"`            // root directory; files go to Dir/YYYY/MM/DD/ (UTC)
	FlushInterval time.Duration  `yaml:"flush_interval"` // how often buffered audio is written and the WAV header rewritten
	Lag           time.Duration  `yaml:"lag"`            // how far behind the newest sample a flush stops, so late/reordered packets and a slower stream still land
	MaxAhead      time.Duration  `yaml:"max_ahead"`      // samples further ahead of the written part than this force a flush (bounds memory)
	MinFreeBytes  int64          `yaml:"min_free_bytes"` // below this much free space on Dir's disk new recordings are refused; 0: no floor
	Manifest      ManifestConfig `yaml:"manifest"`
	// DisableAnalytics skips voice activity analysis (talk, silence, talk-over): about 100 ns of CPU per
	// 20 ms packet saved, the analytics section of documents left to what the source knows (MOS, media errors).
	DisableAnalytics bool `yaml:"disable_analytics"`
}

// ManifestConfig is the tamper-evident list of finished files kept in each day directory.
type ManifestConfig struct {
	Enabled        bool   `yaml:"enabled"`
	SigningKeyFile string `yaml:"signing_key_file"` // Ed25519 private key (PEM PKCS #8, or base64 seed) that signs each entry; "": unsigned
}

// DefaultConfig returns the defaults: a kill -9 loses at most about a second of audio, each recording
// buffers about a second (at most MaxAhead) in memory, new recordings stop 1 GiB before the disk is full,
// and finished files go into unsigned day manifests.
func DefaultConfig() Config {
	return Config{
		Dir:           DefaultDir,
		FlushInterval: DefaultFlushInterval,
		Lag:           DefaultLag,
		MaxAhead:      DefaultMaxAhead,
		MinFreeBytes:  DefaultMinFreeBytes,
		Manifest:      ManifestConfig{Enabled: true},
	}
}

// Validate reports every problem at once.
func (c Config) Validate() error {
	var errs []error
	if c.Dir == "" {
		errs = append(errs, errors.New("recorder.dir: must not be empty"))
	}
	if c.FlushInterval <= 0 {
		errs = append(errs, fmt.Errorf("recorder.flush_interval %v: must be positive", c.FlushInterval))
	}
	if c.Lag < 0 {
		errs = append(errs, fmt.Errorf("recorder.lag %v: must not be negative", c.Lag))
	}
	// MaxAhead must leave room for Lag plus at least one packet, or a forced flush could not make space.
	// Keeping it above Lag+FlushInterval as well means only timestamp jumps force flushes.
	if c.MaxAhead <= c.Lag {
		errs = append(errs, fmt.Errorf("recorder.max_ahead %v: must exceed lag (%v)", c.MaxAhead, c.Lag))
	}
	if c.MinFreeBytes < 0 {
		errs = append(errs, fmt.Errorf("recorder.min_free_bytes %d: must not be negative (0 disables the floor)", c.MinFreeBytes))
	}
	if c.Manifest.SigningKeyFile != "" && !c.Manifest.Enabled {
		errs = append(errs, errors.New("recorder.manifest.signing_key_file: set, but recorder.manifest.enabled is false"))
	}
	return errors.Join(errs...)
}
