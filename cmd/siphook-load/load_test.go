//go:build linux

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/siphook/siphook/matcher"
)

// testWriter sends progress lines to the test log.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// TestLoadAgainstServer runs the generator end to end against the real server binary (built from
// ./cmd/siphook, or SIPHOOK_LOAD_SERVER): 5 SIPREC calls and 3 AudioHook sessions for a few seconds.
func TestLoadAgainstServer(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the server and streams for several seconds")
	}
	o := defaultOptions()
	o.Server = os.Getenv("SIPHOOK_LOAD_SERVER")
	o.Calls, o.Rate, o.Duration, o.Settle = 5, 50, 5*time.Second, 500*time.Millisecond
	o.AudioHook, o.HookRate, o.PingInterval = 3, 50, time.Second
	o.Verify = 5
	// The server discards packets still queued on a stream's socket when a BYE closes it (at most one per
	// stream here, the one sent just before the BYE); the report shows that with -bye-delay 0. This test is
	// about the generator, so it lets the last packets land before hanging up.
	o.ByeDelay = 200 * time.Millisecond
	o.progress = testWriter{t}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	res, err := run(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	res.print(&out)
	t.Log("\n" + out.String())

	c, r, s, h := res.Calls, res.RTP, res.Server, res.AudioHook
	if c.SetUp != 5 || c.Failed != 0 {
		t.Errorf("calls set up %d, failed %d (%v), want 5 and 0", c.SetUp, c.Failed, c.FailReasons)
	}
	if c.Activation.N != 5 || c.Activation.Max <= 0 {
		t.Errorf("activation latency %+v, want 5 measurements", c.Activation)
	}
	if r.Sent < 5*2*100 { // at least a second of audio per stream
		t.Errorf("sent %d packets", r.Sent)
	}
	if r.Documents != 5 || r.Completed != 5 || r.Recorded != r.Sent || r.LossPct != 0 {
		t.Errorf("documents %d (completed %d), recorded %d of %d sent, loss %.3f %%, want every packet recorded",
			r.Documents, r.Completed, r.Recorded, r.Sent, r.LossPct)
	}
	if r.ToneChecked != 5 || r.TonePassed != 5 {
		t.Errorf("tones: %d of %d recordings passed: %v", r.TonePassed, r.ToneChecked, r.ToneFailures)
	}
	if s.CPUCores <= 0 || s.CPUMicrosPerPacket <= 0 {
		t.Errorf("server CPU %.3f cores, %.2f µs/packet: want both measured", s.CPUCores, s.CPUMicrosPerPacket)
	}
	if s.RSSBeforeKiB <= 0 || s.RSSSteadyKiB <= 0 || s.KiBPerCall == 0 {
		t.Errorf("RSS before %d, steady %d KiB, %.0f KiB/call: want all measured", s.RSSBeforeKiB, s.RSSSteadyKiB, s.KiBPerCall)
	}
	if res.Generator.CPUMicrosPerPacket <= 0 {
		t.Errorf("generator CPU per packet not measured")
	}
	if s.LogErrors != 0 {
		t.Errorf("server logged %d errors: %v", s.LogErrors, s.LogSample)
	}
	if h.Opened != 3 || h.Streaming != 3 || h.OpenLatency.N != 3 {
		t.Errorf("AudioHook opened %d, streaming %d, latencies %d, want 3 (%v)", h.Opened, h.Streaming, h.OpenLatency.N, h.FailReasons)
	}
	if h.Pongs < 3 || h.PingFailures != 0 || h.ProtocolErrors != 0 || h.CloseErrors != 0 {
		t.Errorf("AudioHook pongs %d, ping failures %d, protocol errors %d, close errors %d: %v", h.Pongs, h.PingFailures, h.ProtocolErrors, h.CloseErrors, h.ErrorSample)
	}
	if h.Completed != 3 || h.SamplesRecorded < h.SamplesSent || h.TonePassed != h.ToneChecked || h.ToneChecked == 0 {
		t.Errorf("AudioHook documents completed %d, samples %d recorded of %d sent, tones %d of %d", h.Completed, h.SamplesRecorded, h.SamplesSent, h.TonePassed, h.ToneChecked)
	}

	// The table subcommand reads the JSON report.
	path := filepath.Join(t.TempDir(), "r.json")
	b, _ := json.Marshal(res)
	os.WriteFile(path, b, 0o644)
	var table bytes.Buffer
	if err := printTables(&table, []string{path}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(table.String(), "| 5 | 5 |") {
		t.Errorf("table:\n%s", table.String())
	}
}

func TestTemplate(t *testing.T) {
	tmpl, err := loadTemplate("../../" + defaultTemplate)
	if err != nil {
		t.Fatal(err)
	}
	if tmpl.streams != 2 || !tmpl.SRCContact || tmpl.ucidHex != "004762BD69FA4805" {
		t.Fatalf("template: %d streams, +sip.src %v, apkt:ucid %q", tmpl.streams, tmpl.SRCContact, tmpl.ucidHex)
	}
	for _, h := range tmpl.Headers {
		if name := strings.ToLower(h[0]); name == "via" || name == "call-id" || name == "cseq" || name == "contact" {
			t.Errorf("routing header %s kept", h[0])
		}
	}
	body := tmpl.forSource("127.0.0.1", 4000)
	if strings.Count(body, "m=audio 4000 RTP/AVP") != 2 || strings.Contains(body, "10.173.188.16") {
		t.Errorf("SDP not pointed at the source:\n%s", body)
	}
	// The UCID we put in User-to-User is the one the matcher reads, in the form the CTI event carries.
	u := matcher.UCID{Node: 4242, Seq: 7, Time: 1790000000}
	got, ok := matcher.ParseUCID("04FA08" + u.Hex() + ";encoding=hex")
	if !ok || got.String() != u.String() {
		t.Errorf("UUI round trip: %v %v, want %s", got, ok, u)
	}
}

func TestParseSDP(t *testing.T) {
	info := parseSDP([]byte("v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.2\r\nt=0 0\r\n" +
		"m=audio 20000 RTP/AVP 0\r\na=recvonly\r\nm=video 0 RTP/AVP 96\r\na=inactive\r\nm=audio 20002 RTP/AVP 0\r\nc=IN IP4 10.0.0.3\r\na=inactive\r\n"))
	if info.ip != "10.0.0.3" || len(info.ports) != 2 || info.ports[1] != 20002 || info.dirs[0] != "recvonly" || info.dirs[1] != "inactive" {
		t.Errorf("%+v", info)
	}
}

func TestLatency(t *testing.T) {
	var ds []time.Duration
	for i := 1; i <= 100; i++ {
		ds = append(ds, time.Duration(i)*time.Millisecond)
	}
	l := latency(ds)
	if l.N != 100 || l.P50 != 50 || l.P99 != 99 || l.Max != 100 {
		t.Errorf("%+v", l)
	}
	if latency(nil).N != 0 {
		t.Error("empty")
	}
}

func TestServerLogSummary(t *testing.T) {
	path := filepath.Join(t.TempDir(), "log")
	os.WriteFile(path, []byte(`time=2026-11-21T19:00:00Z level=WARN msg="audiohook client error" audiohook_session=97ae correlation_id=b error="code 408: no pong"
time=2026-11-21T19:00:01Z level=WARN msg="audiohook client error" audiohook_session=11c2 correlation_id=c error="code 408: no pong"
time=2026-11-21T19:00:02Z level=INFO msg=ignored
time=2026-11-21T19:00:03Z level=ERROR msg=boom x=1
`), 0o644)
	warn, errs, sample := serverLogSummary(path)
	want := []string{`2× msg="audiohook client error" error="code 408: no pong"`, `1× msg=boom`}
	if warn != 2 || errs != 1 || strings.Join(sample, "|") != strings.Join(want, "|") {
		t.Errorf("%d warnings, %d errors, %q", warn, errs, sample)
	}
}
