//go:build linux

// Command siphook-load is siphook's load generator: it runs the server (or attaches to a running one),
// drives N concurrent SIPREC calls and M AudioHook sessions at it in real time, and reports what the server
// did with them and what that cost.
//
// Each SIPREC call is real SIP over UDP or TCP: a SIPREC INVITE made from a captured Oracle SBC INVITE with a
// unique UCID (User-to-User, Cisco-Gucid and the metadata's apkt:ucid), the server's inactive 200, ACK; then
// a CTI event for that UCID with a tracked agent on the call is POSTed to the server's webhook, which makes
// the matcher activate the session with a re-INVITE (the latency from the POST to that re-INVITE is
// measured); the re-INVITE is answered sendonly and, once the server ACKs, two PCMU streams of 20 ms packets
// (a distinct tone each) are sent in real time until the end of the run, then BYE. RTP for every call is
// sent by a few goroutines with sendmmsg(2), so the generator stays cheap next to the server.
//
// Each AudioHook session is a signed Genesys-like client (audiohook/hooktest): open (timed to opened),
// a CTI event for its conversation (the server resumes it), 200 ms stereo PCMU frames in real time, pings,
// close.
//
// Usage:
//
//	siphook-load [flags]              run a load test and print the report
//	siphook-load table FILE.json...   print the markdown results table of earlier -json reports
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"syscall"
	"time"
)

type options struct {
	Server     string
	Attach     int
	SIPAddr    string
	WebhookURL string
	Token      string
	HookURL    string
	HookKey    string
	HookSecret string // base64
	Recordings string
	RTPPorts   string
	IP         string
	Keep       bool

	Calls     int
	Rate      float64
	Duration  time.Duration
	Settle    time.Duration
	Transport string
	Template  string
	Senders   int
	ByeDelay  time.Duration

	AudioHook    int
	HookRate     float64
	PingInterval time.Duration

	Verify int
	JSON   string
	Quiet  bool

	progress io.Writer // nil: os.Stderr unless Quiet
}

func defaultOptions() options {
	return options{
		RTPPorts: "20000-39999", IP: "127.0.0.1",
		Calls: 100, Rate: 100, Duration: 30 * time.Second, Settle: 2 * time.Second, Transport: "udp", Senders: 2,
		HookRate: 100, PingInterval: 5 * time.Second, Verify: 4,
	}
}

func parseFlags(args []string, stderr io.Writer) (options, error) {
	o := defaultOptions()
	fs := flag.NewFlagSet("siphook-load", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, `siphook-load drives SIPREC calls and AudioHook sessions at a siphook server in real time and reports
calls set up, CTI→activation latency, RTP packets sent vs recorded, loss, server CPU per packet and RSS per call.

  siphook-load [flags]                 run (by default starts the server itself: see -server)
  siphook-load table FILE.json...      print the markdown table of earlier -json reports

By default the server is started from -server (or built with "go build ./cmd/siphook" into a temporary
directory) with a generated configuration: SIPREC activation on-match, the CTI webhook with a random bearer
token, AudioHook (on-match) with a random API key and client secret, RTP ports -rtp-ports, recordings in a
temporary directory, log level warn. SIPHOOK_* variables in the environment still apply to it (they override
the file), e.g. to try another RTP reader. With -attach PID the generator uses a running server instead
(-sip, -webhook, -webhook-token; -audiohook-url, -audiohook-key, -audiohook-secret for AudioHook;
-recordings to count recorded packets).

Flags:
`)
		fs.PrintDefaults()
	}
	fs.StringVar(&o.Server, "server", o.Server, "siphook binary to start (default: go build ./cmd/siphook into a temporary directory)")
	fs.IntVar(&o.Attach, "attach", o.Attach, "PID of an already running siphook to measure instead of starting one")
	fs.StringVar(&o.SIPAddr, "sip", o.SIPAddr, "with -attach: the server's SIP host:port")
	fs.StringVar(&o.WebhookURL, "webhook", o.WebhookURL, "with -attach: base URL of the server's CTI webhook, e.g. http://127.0.0.1:8081")
	fs.StringVar(&o.Token, "webhook-token", os.Getenv("SIPHOOK_WEBHOOK_TOKEN"), "with -attach: the webhook's bearer token (env SIPHOOK_WEBHOOK_TOKEN)")
	fs.StringVar(&o.HookURL, "audiohook-url", o.HookURL, "with -attach: the AudioHook URL, e.g. ws://127.0.0.1:8080/audiohook")
	fs.StringVar(&o.HookKey, "audiohook-key", os.Getenv("SIPHOOK_AUDIOHOOK_API_KEY"), "with -attach: AudioHook API key (env SIPHOOK_AUDIOHOOK_API_KEY)")
	fs.StringVar(&o.HookSecret, "audiohook-secret", os.Getenv("SIPHOOK_AUDIOHOOK_CLIENT_SECRET"), "with -attach: AudioHook client secret, base64 (env SIPHOOK_AUDIOHOOK_CLIENT_SECRET)")
	fs.StringVar(&o.Recordings, "recordings", o.Recordings, "with -attach: the server's recordings directory (to count what was recorded)")
	fs.StringVar(&o.RTPPorts, "rtp-ports", o.RTPPorts, "RTP port range of the started server")
	fs.StringVar(&o.IP, "ip", o.IP, "IPv4 address the generator (and a started server) use")
	fs.BoolVar(&o.Keep, "keep", o.Keep, "keep the temporary directory (configuration, server log, recordings)")
	fs.IntVar(&o.Calls, "calls", o.Calls, "concurrent SIPREC calls")
	fs.Float64Var(&o.Rate, "rate", o.Rate, "calls set up (and torn down) per second")
	fs.DurationVar(&o.Duration, "duration", o.Duration, "steady state: how long all calls stream together (the measurement window)")
	fs.DurationVar(&o.Settle, "settle", o.Settle, "wait between the end of the ramp and the measurement window")
	fs.StringVar(&o.Transport, "transport", o.Transport, "SIP transport: udp or tcp")
	fs.StringVar(&o.Template, "template", o.Template, "SIPREC INVITE template (default testdata/siprec/oracle-sbc-2026-headers-template-INVITE.txt of the module)")
	fs.IntVar(&o.Senders, "senders", o.Senders, "at most this many goroutines (one socket each) send all RTP, one per 500 calls; the same for AudioHook audio per 500 sessions")
	fs.DurationVar(&o.ByeDelay, "bye-delay", o.ByeDelay, "wait between a call's last RTP packet and its BYE (0: at once, as an SBC does)")
	fs.IntVar(&o.AudioHook, "audiohook", o.AudioHook, "concurrent AudioHook sessions")
	fs.Float64Var(&o.HookRate, "audiohook-rate", o.HookRate, "AudioHook sessions opened (and closed) per second")
	fs.DurationVar(&o.PingInterval, "ping", o.PingInterval, "AudioHook ping interval (Genesys: 5s)")
	fs.IntVar(&o.Verify, "verify", o.Verify, "recordings whose WAV is checked for each stream's tone")
	fs.StringVar(&o.JSON, "json", o.JSON, "also write the report as JSON to this file")
	fs.BoolVar(&o.Quiet, "quiet", o.Quiet, "no progress lines on stderr")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	return o, o.validate()
}

func (o options) validate() error {
	var errs []error
	if o.Calls < 0 || o.AudioHook < 0 || o.Calls+o.AudioHook == 0 {
		errs = append(errs, errors.New("-calls and -audiohook: at least one session"))
	}
	if o.Rate <= 0 || o.HookRate <= 0 {
		errs = append(errs, errors.New("-rate and -audiohook-rate must be positive"))
	}
	if o.Duration <= 0 {
		errs = append(errs, errors.New("-duration must be positive"))
	}
	if o.Transport != "udp" && o.Transport != "tcp" {
		errs = append(errs, fmt.Errorf("-transport %q: want udp or tcp", o.Transport))
	}
	if o.Attach > 0 {
		if o.Calls > 0 && (o.SIPAddr == "" || o.WebhookURL == "" || o.Token == "") {
			errs = append(errs, errors.New("-attach with -calls needs -sip, -webhook and -webhook-token"))
		}
		if o.AudioHook > 0 && (o.HookURL == "" || o.HookKey == "" || o.WebhookURL == "" || o.Token == "") {
			errs = append(errs, errors.New("-attach with -audiohook needs -audiohook-url, -audiohook-key (and -audiohook-secret if set), -webhook and -webhook-token"))
		}
	}
	return errors.Join(errs...)
}

func main() {
	if len(os.Args) > 1 && os.Args[1] == "table" {
		if err := printTables(os.Stdout, os.Args[2:]); err != nil {
			fmt.Fprintln(os.Stderr, "siphook-load:", err)
			os.Exit(1)
		}
		return
	}
	o, err := parseFlags(os.Args[1:], os.Stderr)
	if errors.Is(err, flag.ErrHelp) {
		return
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "siphook-load:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	res, err := run(ctx, o)
	if res != nil {
		res.print(os.Stdout)
		if o.JSON != "" {
			b, _ := json.MarshalIndent(res, "", "  ")
			if werr := os.WriteFile(o.JSON, append(b, '\n'), 0o644); werr != nil {
				fmt.Fprintln(os.Stderr, "siphook-load:", werr)
			}
		}
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "siphook-load:", err)
		os.Exit(1)
	}
}

// progress prints timestamped progress lines.
type progress struct {
	w     io.Writer
	start time.Time
}

func (p *progress) printf(format string, args ...any) {
	if p.w == nil {
		return
	}
	fmt.Fprintf(p.w, "[%6.1fs] %s\n", time.Since(p.start).Seconds(), strings.TrimSuffix(fmt.Sprintf(format, args...), "\n"))
}

func init() {
	// The generator's work is a few sender goroutines and parked call goroutines: keep the GC from
	// dominating what little it does.
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(400)
	}
}
