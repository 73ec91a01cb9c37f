package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/siphook/siphook/cti/genesys/genesystest"
	"github.com/siphook/siphook/recorder/delivery"
	"github.com/siphook/siphook/sip"
	"github.com/siphook/siphook/sip/siptest"
)

func writeFile(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "siphook.yaml")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestConfigLayers(t *testing.T) {
	file := writeFile(t, `
sip:
  listen: 127.0.0.1:5070
  activation: on-match
  transports: [tcp]
recorder:
  dir: /from/file
log:
  format: json
`)
	for _, tc := range []struct {
		name  string
		env   map[string]string
		args  []string
		check func(t *testing.T, c Config)
	}{
		{name: "embedded defaults", check: func(t *testing.T, c Config) {
			if c.SIP.Listen != "127.0.0.1:5060" || c.SIP.Activation != sip.ActivateImmediately || c.Recorder.Dir != "./recordings" {
				t.Errorf("defaults: %+v", c)
			}
			if strings.Join(c.SIP.Transports, ",") != "udp,tcp" {
				t.Errorf("transports %v", c.SIP.Transports)
			}
		}},
		{name: "file over defaults", args: []string{"-config", file}, check: func(t *testing.T, c Config) {
			if c.SIP.Listen != "127.0.0.1:5070" || c.SIP.Activation != sip.ActivateOnMatch || c.Recorder.Dir != "/from/file" || c.Log.Format != "json" {
				t.Errorf("file not applied: %+v", c)
			}
			if strings.Join(c.SIP.Transports, ",") != "tcp" {
				t.Errorf("transports %v", c.SIP.Transports)
			}
		}},
		{name: "environment over file", args: []string{"-config", file},
			env: map[string]string{"SIPHOOK_SIP_LISTEN": "127.0.0.1:5080", "SIPHOOK_SIP_TRANSPORTS": "udp, tcp", "SIPHOOK_SIP_ACTIVATION_DELAY": "750ms", "SIPHOOK_RTP_PORT_MIN": "25000"},
			check: func(t *testing.T, c Config) {
				if c.SIP.Listen != "127.0.0.1:5080" || c.SIP.ActivationDelay != 750*time.Millisecond || c.RTP.PortMin != 25000 {
					t.Errorf("env not applied: %+v", c)
				}
				if strings.Join(c.SIP.Transports, ",") != "udp,tcp" {
					t.Errorf("transports %v", c.SIP.Transports)
				}
				if c.Recorder.Dir != "/from/file" {
					t.Errorf("file value lost: %q", c.Recorder.Dir)
				}
			}},
		{name: "config path from environment", env: map[string]string{"SIPHOOK_CONFIG": file}, check: func(t *testing.T, c Config) {
			if c.SIP.Listen != "127.0.0.1:5070" {
				t.Errorf("SIPHOOK_CONFIG not read: %q", c.SIP.Listen)
			}
		}},
		{name: "flags over environment", args: []string{"-config", file, "-sip-listen", "127.0.0.1:5090", "-rtp-ports", "31000-31999", "-activation", "delayed"},
			env: map[string]string{"SIPHOOK_SIP_LISTEN": "127.0.0.1:5080"},
			check: func(t *testing.T, c Config) {
				if c.SIP.Listen != "127.0.0.1:5090" || c.RTP.PortMin != 31000 || c.RTP.PortMax != 31999 || c.SIP.Activation != sip.ActivateDelayed {
					t.Errorf("flags not applied: %+v", c)
				}
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			cfg, err := loadConfig(tc.args, &bytes.Buffer{})
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, cfg)
		})
	}
}

func TestConfigErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		file string
		env  map[string]string
		args []string
		want []string // every problem is reported at once
	}{
		{name: "unknown key in file", file: "sip:\n  lisen: 1.2.3.4:5060\n", want: []string{"lisen"}},
		{name: "bad values", args: []string{"-activation", "sometimes", "-log-level", "loud"},
			env:  map[string]string{"SIPHOOK_RTP_PORT_MIN": "70000"},
			want: []string{"sip.activation", "log.level", "rtp.port_min"}},
		{name: "bad duration in env", env: map[string]string{"SIPHOOK_SIP_ACTIVATION_DELAY": "soon"}, want: []string{"SIPHOOK_SIP_ACTIVATION_DELAY"}},
		{name: "bad rtp-ports flag", args: []string{"-rtp-ports", "20000"}, want: []string{"-rtp-ports"}},
		{name: "tls half configured", env: map[string]string{"SIPHOOK_SIP_TLS_CERT_FILE": "/etc/cert.pem"}, want: []string{"cert_file and key_file"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := tc.args
			if tc.file != "" {
				args = append([]string{"-config", writeFile(t, tc.file)}, args...)
			}
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			_, err := loadConfig(args, &bytes.Buffer{})
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

func TestEnvListingCoversEveryKey(t *testing.T) {
	var out bytes.Buffer
	if err := run([]string{"env"}, &out, &out); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"SIPHOOK_SIP_LISTEN", "SIPHOOK_SIP_TLS_CERT_FILE", "SIPHOOK_SIP_ACTIVATION", "SIPHOOK_RTP_PORT_MIN", "SIPHOOK_RECORDER_DIR", "SIPHOOK_LOG_FORMAT"} {
		if !strings.Contains(out.String(), name) {
			t.Errorf("env listing lacks %s", name)
		}
	}
}

func TestCheckConfigRedactsSecrets(t *testing.T) {
	t.Setenv("SIPHOOK_SIP_TLS_CERT_FILE", "/etc/siphook/cert.pem")
	t.Setenv("SIPHOOK_SIP_TLS_KEY_FILE", "/etc/siphook/very-secret-key.pem")
	t.Setenv("SIPHOOK_SIP_TLS_LISTEN", "127.0.0.1:5061")
	var out bytes.Buffer
	if err := run([]string{"check-config"}, &out, &out); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(out.String(), "very-secret-key") || !strings.Contains(out.String(), "[redacted]") {
		t.Errorf("check-config output:\n%s", out.String())
	}
}

// TestDeployExampleConfig: the example configuration shipped in deploy/ loads and validates with the API
// token its comments ask for in the environment, and without one the server refuses to open the API on a
// public address.
func TestDeployExampleConfig(t *testing.T) {
	t.Setenv("SIPHOOK_API_TOKEN", "example-admin-token-0123456789")
	cfg, err := loadConfig([]string{"-config", "../../deploy/siphook.example.yaml"}, io.Discard)
	if err != nil {
		t.Fatalf("deploy/siphook.example.yaml: %v", err)
	}
	var out strings.Builder
	if err := printConfig(&out, cfg); err != nil || strings.Contains(out.String(), "example-admin-token") {
		t.Errorf("check-config prints the API token (or failed: %v):\n%s", err, out.String())
	}
	t.Setenv("SIPHOOK_API_TOKEN", "")
	_, err = loadConfig([]string{"-config", "../../deploy/siphook.example.yaml"}, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "would listen on 0.0.0.0:8080 (audiohook.listen) with no token") {
		t.Errorf("no API token on 0.0.0.0: %v", err)
	}
	t.Setenv("SIPHOOK_API_ENABLED", "false")
	if _, err := loadConfig([]string{"-config", "../../deploy/siphook.example.yaml"}, io.Discard); err != nil {
		t.Errorf("API disabled: %v", err)
	}
}

// TestDashboardMetricsExist: every siphook_* series the Grafana dashboard in deploy/ plots is one the server
// exports (with every component configured), so a renamed metric cannot leave a panel silently empty.
func TestDashboardMetricsExist(t *testing.T) {
	b, err := os.ReadFile("../../deploy/grafana-dashboard.json")
	if err != nil {
		t.Fatal(err)
	}
	// Labelled series exist once something happened: a refused INVITE, a call matched, recorded and ended,
	// an API request; delivery's exist for each configured target.
	store := newS3Store(t, "recordings")
	w := newWorld(t, func(c *Config) {
		c.Delivery.Targets = []delivery.TargetConfig{{Name: "archive", Type: delivery.TypeS3, Endpoint: strings.TrimPrefix(store.URL, "http://"),
			Bucket: "recordings", Region: "us-east-1", Insecure: true, PathStyle: true, AccessKey: "AKIDTEST", SecretKey: "test-secret-key"}}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()
	refused, err := siptest.LoadTemplate("../../testdata/siprec/miarec-cisco-cube-nbr-msg01-INVITE.txt")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.src.Invite(ctx, siptest.Dial{Target: w.app.sip.Addr("tcp"), Template: refused}); siptest.ResponseCode(err) != 403 {
		t.Fatalf("a non-SIPREC INVITE: %v, want 403", err)
	}
	c := w.fake.InboundCall(genesystest.UUI(templateUUI)).Answer(agentA)
	call := w.invite(ctx, "oracle-sbc-2026-headers-template-INVITE.txt")
	expectDirections(ctx, t, call, "recvonly")
	call.SendTones(ctx, []float64{440, 1000}, 200*time.Millisecond)
	c.CustomerHangup()
	call.Bye(ctx)
	w.waitFor("the session to end", func() bool { return w.app.sip.Sessions() == 0 })
	if res, err := http.Get("http://" + w.app.hook.Addr() + "/api/v1/recordings"); err != nil || res.StatusCode != 200 {
		t.Fatalf("API: %v %v", res, err)
	}
	families, err := w.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	exported := map[string]bool{}
	for _, mf := range families {
		exported[mf.GetName()] = true
	}
	names := regexp.MustCompile(`siphook_[a-z0-9_]+`).FindAllString(string(b), -1)
	if len(names) < 20 {
		t.Fatalf("only %d series found in the dashboard", len(names))
	}
	for _, name := range names {
		base := strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(name, "_bucket"), "_sum"), "_count")
		if !exported[base] {
			t.Errorf("the dashboard plots %s, which the server does not export", name)
		}
	}
}

// TestCheckConfigRedactsDeliverySecrets: check-config prints delivery targets and webhooks without their
// passwords, secret keys and HMAC secrets.
func TestCheckConfigRedactsDeliverySecrets(t *testing.T) {
	path := writeFile(t, `delivery:
  targets:
    - {name: dav, type: webdav, url: "https://dav.example.com/r/", username: u, password: dav-password-123}
    - {name: s3, type: s3, endpoint: s3.example.com, bucket: b, region: r, access_key: AKID, secret_key: s3-secret-key-123}
  webhooks:
    - {name: qa, url: "https://qa.example.com/h", secret: webhook-secret-123, events: [completed]}
`)
	var out, errOut bytes.Buffer
	if err := run([]string{"check-config", "-config", path}, &out, &errOut); err != nil {
		t.Fatalf("%v\n%s", err, errOut.String())
	}
	for _, secret := range []string{"dav-password-123", "s3-secret-key-123", "webhook-secret-123"} {
		if strings.Contains(out.String(), secret) {
			t.Errorf("check-config printed %s", secret)
		}
	}
	if !strings.Contains(out.String(), "dav.example.com") {
		t.Errorf("check-config lost the targets:\n%s", out.String())
	}
}
