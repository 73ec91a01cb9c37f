// Command siphook records contact-centre calls from SIPREC SBCs.
//
//	siphook [serve] [flags]   run the server (the default)
//	siphook demo              play a short story against in-process fakes, then serve its recordings in the web UI
//	siphook verify [DIR]      check the recordings against their tamper-evident manifests
//	siphook keygen            make an Ed25519 key pair for signing the manifests
//	siphook export [DIR]      a day's recordings as CSV or JSON with the columns of Verint's Genesys template
//	siphook check-config      validate the configuration and print it as loaded
//	siphook env               list the SIPHOOK_* variables and the keys they set
//	siphook check-audiohook   run Genesys's AudioHook connection probe against a server
//	siphook cti-tail          follow the configured CTI feed and print its events as they happen
//	siphook version
package main

import (
	"cmp"
	"context"
	"crypto/ed25519"
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	httppprof "net/http/pprof"
	"os"
	"os/signal"
	"path/filepath"
	"reflect"
	"runtime/debug"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.yaml.in/yaml/v3"

	"github.com/siphook/siphook/api"
	"github.com/siphook/siphook/audiohook"
	"github.com/siphook/siphook/audiohook/hooktest"
	"github.com/siphook/siphook/cti"
	"github.com/siphook/siphook/cti/genesys"
	"github.com/siphook/siphook/cti/webhook"
	"github.com/siphook/siphook/matcher"
	"github.com/siphook/siphook/recorder"
	"github.com/siphook/siphook/recorder/delivery"
	"github.com/siphook/siphook/rtp"
	"github.com/siphook/siphook/sip"
)

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "siphook:", err)
		os.Exit(1)
	}
}

func run(args []string, stdout, stderr io.Writer) error {
	cmd := "serve"
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		cmd, args = args[0], args[1:]
	}
	switch cmd {
	case "serve", "check-config":
		cfg, err := loadConfig(args, stderr)
		if err != nil {
			return err
		}
		if cmd == "check-config" {
			return printConfig(stdout, cfg)
		}
		return serve(cfg, stderr)
	case "env":
		cfg := defaultConfig()
		cfg.resolveDefaults()
		for _, ev := range envVars(&cfg) {
			fmt.Fprintf(stdout, "%-40s %s (default %v)\n", ev.Name, ev.Key, ev.field.Interface())
		}
		return nil
	case "check-audiohook":
		return checkAudioHook(args, stdout, stderr)
	case "cti-tail":
		return ctiTail(args, stdout, stderr)
	case "demo":
		return runDemo(args, stdout, stderr)
	case "verify":
		return verifyRecordings(args, stdout, stderr)
	case "keygen":
		return keygen(args, stdout, stderr)
	case "export":
		return export(args, stdout, stderr)
	case "version":
		fmt.Fprintln(stdout, version())
		return nil
	}
	return fmt.Errorf("unknown command %q (want serve, demo, check-config, env, verify, keygen, export, check-audiohook, cti-tail or version)", cmd)
}

// loadConfig layers defaults, the config file, the environment and the flags, then validates.
func loadConfig(args []string, stderr io.Writer) (Config, error) {
	cfg := defaultConfig()
	fs := flag.NewFlagSet("siphook", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", os.Getenv("SIPHOOK_CONFIG"), "YAML configuration file (env SIPHOOK_CONFIG)")
	sipListen := fs.String("sip-listen", "", "SIP host:port for UDP and TCP (sip.listen)")
	activation := fs.String("activation", "", "immediate, on-match or delayed (sip.activation)")
	dir := fs.String("recordings", "", "recordings directory (recorder.dir)")
	rtpPorts := fs.String("rtp-ports", "", "RTP port range, e.g. 20000-29999 (rtp.port_min, rtp.port_max)")
	logLevel := fs.String("log-level", "", "debug, info, warn or error (log.level)")
	logFormat := fs.String("log-format", "", "text or json (log.format)")
	if err := fs.Parse(args); err != nil {
		return cfg, err
	}
	if *path != "" {
		if err := loadFile(&cfg, *path); err != nil {
			return cfg, err
		}
	}
	if err := applyEnv(&cfg, os.LookupEnv); err != nil {
		return cfg, err
	}
	set := func(dst *string, v string) {
		if v != "" {
			*dst = v
		}
	}
	set(&cfg.SIP.Listen, *sipListen)
	set((*string)(&cfg.SIP.Activation), *activation)
	set(&cfg.Recorder.Dir, *dir)
	set(&cfg.Log.Level, *logLevel)
	set(&cfg.Log.Format, *logFormat)
	if *rtpPorts != "" {
		lo, hi, ok := strings.Cut(*rtpPorts, "-")
		min, err1 := strconv.Atoi(lo)
		max, err2 := strconv.Atoi(hi)
		if !ok || err1 != nil || err2 != nil {
			return cfg, fmt.Errorf("-rtp-ports %q: want MIN-MAX", *rtpPorts)
		}
		cfg.RTP.PortMin, cfg.RTP.PortMax = min, max
	}
	cfg.resolveDefaults()
	if err := cfg.Validate(); err != nil {
		return cfg, fmt.Errorf("invalid configuration:\n%w", err)
	}
	return cfg, nil
}

func printConfig(w io.Writer, cfg Config) error {
	redact(reflect.ValueOf(&cfg).Elem())
	return yaml.NewEncoder(w).Encode(cfg)
}

func newLogger(cfg LogConfig, w io.Writer) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(cfg.Level))
	opts := &slog.HandlerOptions{Level: level}
	if cfg.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// serve runs until SIGINT or SIGTERM, then ends every session (BYE, recording finalised) before exiting.
func serve(cfg Config, stderr io.Writer) error {
	log := newLogger(cfg.Log, stderr)
	slog.SetDefault(log)
	// A CPU profile of the whole run, for the load benchmarks (BENCHMARKS.md); not configuration.
	if path := os.Getenv("SIPHOOK_CPUPROFILE"); path != "" {
		f, err := os.Create(path)
		if err != nil {
			return fmt.Errorf("SIPHOOK_CPUPROFILE: %w", err)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			return fmt.Errorf("SIPHOOK_CPUPROFILE: %w", err)
		}
		defer func() { pprof.StopCPUProfile(); f.Close() }()
	}
	// Go's profiling endpoints, for diagnosing a running server (BENCHMARKS.md); never on by default.
	if addr := os.Getenv("SIPHOOK_PPROF"); addr != "" {
		mux := http.NewServeMux()
		mux.HandleFunc("/debug/pprof/", httppprof.Index)
		mux.HandleFunc("/debug/pprof/profile", httppprof.Profile)
		go func() { log.Warn("pprof endpoint stopped", "error", http.ListenAndServe(addr, mux)) }()
		log.Warn("pprof endpoint listening", "address", addr)
	}
	a, err := startApp(cfg, log, prometheus.NewRegistry())
	if err != nil {
		return err
	}
	signals := make(chan os.Signal, 2)
	signal.Notify(signals, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(signals)
	if sig := <-signals; sig == syscall.SIGTERM && cfg.Shutdown.DrainTimeout > 0 {
		// Lame duck: new calls go to other servers (503, /readyz fails); active calls end by themselves.
		log.Info("draining: refusing new sessions, waiting for active ones to end", "timeout", cfg.Shutdown.DrainTimeout)
		a.drain(cfg.Shutdown.DrainTimeout, signals)
	}
	log.Info("stopping: ending sessions and finalising recordings")
	sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	a.stop(sctx)
	log.Info("stopped")
	return nil
}

// app is the running server: every component wired as the configuration says.
type app struct {
	log      *slog.Logger
	dir      string // the recordings
	rec      *recorder.Recorder
	sip      *sip.Server
	hook     *audiohook.Server
	match    *matcher.Matcher
	index    *api.Index         // nil: API off
	api      *api.Server        // nil: API off
	delivery *delivery.Delivery // nil: recordings stay local
	cancel   context.CancelFunc
	bg       sync.WaitGroup // CTI sources and the matcher's sweeper
}

// startApp builds and starts every configured component. CTI events go to the matcher, which drives the
// SIPREC and AudioHook sessions.
func startApp(cfg Config, log *slog.Logger, reg *prometheus.Registry) (*app, error) {
	a := &app{log: log, dir: cfg.Recorder.Dir}
	ctx, cancel := context.WithCancel(context.Background())
	a.cancel = cancel
	fail := func(err error) (*app, error) {
		a.stop(context.Background())
		return nil, err
	}
	var err error
	serveAPI := cfg.API.Enabled && cfg.AudioHook.Listen != ""
	// The index and the delivery queue learn of every document as it is written; they open first so none is
	// missed.
	if serveAPI {
		if a.index, err = api.OpenIndex(cfg.Recorder.Dir, api.WithIndexLogger(log.With("component", "api"))); err != nil {
			return fail(err)
		}
	}
	if cfg.Delivery.Enabled() {
		targets, err := delivery.NewTargets(cfg.Delivery)
		if err != nil {
			return fail(err)
		}
		if a.delivery, err = delivery.New(cfg.Delivery, cfg.Recorder.Dir, targets, delivery.WithLogger(log.With("component", "delivery")),
			delivery.WithRegisterer(reg), delivery.WithRemover(a.removeDelivered)); err != nil {
			return fail(err)
		}
	}
	if a.rec, err = recorder.New(cfg.Recorder, recorder.WithLogger(log.With("component", "recorder")), recorder.WithRegisterer(reg),
		recorder.WithDocumentHook(a.documentWritten)); err != nil {
		return fail(err)
	}
	if a.delivery != nil {
		go a.delivery.Run(context.Background()) // until stop closes it; after the recorder, which removeDelivered uses
	}
	if a.match, err = matcher.New(cfg.Matcher, matcher.WithLogger(log.With("component", "matcher")), matcher.WithRegisterer(reg)); err != nil {
		return fail(err)
	}
	if serveAPI {
		if a.api, err = api.NewServer(cfg.API, a.index, cfg.Recorder.Dir, api.WithLogger(log.With("component", "api")),
			api.WithSessions(liveSessions{a.match}), api.WithRegisterer(reg)); err != nil {
			return fail(err)
		}
	}
	a.bg.Go(func() { a.match.Run(ctx) })
	media, err := rtp.NewReceiver(cfg.RTP, rtp.WithLogger(log.With("component", "rtp")), rtp.WithRegisterer(reg))
	if err != nil {
		return fail(err)
	}
	if a.sip, err = sip.NewServer(cfg.SIP, media, a.rec, sip.WithLogger(log.With("component", "sip")), sip.WithRegisterer(reg), sip.WithBinder(a.match)); err != nil {
		return fail(err)
	}
	if err := a.sip.Start(); err != nil {
		return fail(err)
	}
	if cfg.AudioHook.Listen != "" {
		opts := append([]audiohook.Option{audiohook.WithLogger(log.With("component", "audiohook")),
			audiohook.WithRegisterer(reg), audiohook.WithBinder(a.match)}, a.opsRoutes(reg)...)
		if a.hook, err = audiohook.NewServer(cfg.AudioHook, a.rec, opts...); err != nil {
			return fail(err)
		}
		if err := a.hook.Start(); err != nil {
			return fail(fmt.Errorf("audiohook listen %s: %w", cfg.AudioHook.Listen, err))
		}
	}
	var sources []cti.Source
	if cfg.Genesys.Enabled() {
		src, err := genesys.New(cfg.Genesys, genesys.WithLogger(log.With("component", "cti")), genesys.WithRegisterer(reg))
		if err != nil {
			return fail(err)
		}
		sources = append(sources, src)
	}
	if cfg.Webhook.Listen != "" {
		src, err := webhook.New(cfg.Webhook, log.With("component", "cti-webhook"))
		if err != nil {
			return fail(err)
		}
		sources = append(sources, src)
	}
	for _, src := range sources {
		a.bg.Go(func() {
			if err := src.Run(ctx, func(e cti.Event) { a.match.OnCall(e.Call()) }); err != nil {
				log.Error("CTI source stopped", "error", err)
			}
		})
	}
	log.Info("siphook started", "version", version(), "recordings", cfg.Recorder.Dir,
		"rtp_ports", fmt.Sprintf("%d-%d", cfg.RTP.PortMin, cfg.RTP.PortMax), "sip_activation", cfg.SIP.Activation,
		"cti_sources", len(sources))
	return a, nil
}

// drain refuses new sessions and waits until none is left, the timeout passes or another signal comes.
func (a *app) drain(timeout time.Duration, signals <-chan os.Signal) {
	a.sip.Drain()
	if a.hook != nil {
		a.hook.Drain()
	}
	deadline := time.After(timeout)
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		active := a.sip.Sessions()
		if a.hook != nil {
			active += a.hook.Sessions()
		}
		if active == 0 {
			a.log.Info("drained: no session left")
			return
		}
		select {
		case <-deadline:
			a.log.Warn("drain timeout: ending the remaining sessions", "sessions", active)
			return
		case <-signals:
			a.log.Warn("second signal: ending the remaining sessions", "sessions", active)
			return
		case <-tick.C:
		}
	}
}

// stop ends every session and finalises every recording; the CTI sources stop first so no decision
// arrives for a session being torn down.
func (a *app) stop(ctx context.Context) {
	a.cancel()
	a.bg.Wait()
	if a.sip != nil {
		if err := a.sip.Shutdown(ctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
			a.log.Warn("sip shutdown", "error", err)
		}
	}
	if a.hook != nil {
		if err := a.hook.Shutdown(ctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
			a.log.Warn("audiohook shutdown", "error", err)
		}
	}
	if a.rec != nil {
		a.rec.Close()
	}
	// Last: the sessions ended above have queued their recordings (shipped now, or after the next start).
	if a.delivery != nil {
		a.delivery.Close()
	}
	if a.index != nil {
		a.index.Close()
	}
}

// documentWritten is the recorder's hook: the index follows every document, and every finished recording
// (completed, failed or never recorded, for the webhooks) is queued for delivery.
func (a *app) documentWritten(rel string, doc recorder.Document) {
	if a.index != nil {
		a.index.Observe(rel, doc)
	}
	if a.delivery != nil && doc.State != recorder.StateRecording {
		if err := a.delivery.Enqueue(rel, doc); err != nil {
			a.log.Error("recording not queued for delivery; it stays local", "recording", doc.RecordingID, "error", err)
		}
	}
}

// removeDelivered deletes a recording's local files once every target holds a verified copy
// (delivery.delete_local), and records the removal in the day's manifest so verify expects them gone.
func (a *app) removeDelivered(docRel string, doc recorder.Document) error {
	paths := []string{docRel}
	if doc.Audio != nil && doc.Audio.File != "" {
		paths = []string{doc.Audio.File, docRel}
	}
	for _, p := range paths {
		if err := os.Remove(filepath.Join(a.dir, filepath.FromSlash(p))); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
	}
	return a.rec.MarkRemoved(docRel, paths, "delivered")
}

func version() string {
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" {
				return bi.Main.Version + " " + s.Value
			}
		}
		return bi.Main.Version
	}
	return "unknown"
}

// checkAudioHook does what Genesys Cloud does when an AudioHook integration is activated: a signed upgrade,
// then a synthetic session with a null conversation id (the connection probe), opened and closed.
func checkAudioHook(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("check-audiohook", flag.ContinueOnError)
	fs.SetOutput(stderr)
	url := fs.String("url", "ws://127.0.0.1:8080/audiohook", "the AudioHook connection URI, as entered in Genesys")
	org := fs.String("org", "00000000-0000-4000-8000-000000000001", "Genesys organisation id to present")
	apiKey := fs.String("api-key", os.Getenv("SIPHOOK_AUDIOHOOK_API_KEY"), "API key (env SIPHOOK_AUDIOHOOK_API_KEY)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	secret, err := base64.StdEncoding.DecodeString(os.Getenv("SIPHOOK_AUDIOHOOK_CLIENT_SECRET"))
	if err != nil {
		return fmt.Errorf("SIPHOOK_AUDIOHOOK_CLIENT_SECRET is not base64: %w", err)
	}
	if *apiKey == "" {
		return errors.New("no API key: set SIPHOOK_AUDIOHOOK_API_KEY or -api-key")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	s, err := hooktest.Dial(ctx, hooktest.Config{URL: *url, APIKey: *apiKey, ClientSecret: secret, OrganizationID: *org,
		ConversationID: audiohook.NullUUID, Participant: audiohook.Participant{ID: audiohook.NullUUID}, PingInterval: -1,
		TLSConfig: &tls.Config{MinVersion: tls.VersionTLS12}})
	if err != nil {
		return fmt.Errorf("connection probe failed: %w", err)
	}
	media := s.Opened().Media
	if err := s.Close(ctx, "end"); err != nil {
		return fmt.Errorf("connection probe: close: %w", err)
	}
	if err := s.Err(); err != nil {
		return fmt.Errorf("connection probe: the server broke the protocol: %w", err)
	}
	fmt.Fprintf(stdout, "ok: %s accepted the signed connection probe (opened with media %+v, closed)\n", *url, media)
	return nil
}

// ctiTail follows the configured CTI feed and prints each normalised event: the tool to reach for when a
// call was not recorded ("did siphook ever see that agent on that conversation?").
func ctiTail(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("cti-tail", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", os.Getenv("SIPHOOK_CONFIG"), "YAML configuration file (env SIPHOOK_CONFIG)")
	asJSON := fs.Bool("json", false, "print each event as a JSON line")
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg := defaultConfig()
	if *path != "" {
		if err := loadFile(&cfg, *path); err != nil {
			return err
		}
	}
	if err := applyEnv(&cfg, os.LookupEnv); err != nil {
		return err
	}
	if !cfg.Genesys.Enabled() {
		return errors.New("no CTI configured: set SIPHOOK_GENESYS_CLIENT_ID, SIPHOOK_GENESYS_CLIENT_SECRET, SIPHOOK_GENESYS_REGION and SIPHOOK_GENESYS_USERS (or a config file)")
	}
	log := newLogger(cfg.Log, stderr)
	src, err := genesys.New(cfg.Genesys, genesys.WithLogger(log))
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	var mu sync.Mutex
	enc := json.NewEncoder(stdout)
	return src.Run(ctx, func(e cti.Event) {
		mu.Lock()
		defer mu.Unlock()
		if *asJSON {
			enc.Encode(e)
			return
		}
		agents := make([]string, len(e.Agents))
		for i, a := range e.Agents {
			agents[i] = cmp.Or(a.Email, a.Name, a.UserID)
		}
		fmt.Fprintf(stdout, "%s %-6s conversation=%s agents=%v ucids=%v direction=%s ani=%s%s\n",
			e.Received.Format(time.RFC3339), e.State, e.ConversationID, agents, e.UCIDs, e.Direction, e.ANI,
			map[bool]string{true: " (reconciled)"}[e.Reconciled])
	})
}

// verifyRecordings checks a recordings directory against its manifests: altered, missing and extra files,
// broken hash chains, bad signatures. It exits non-zero when anything is wrong.
func verifyRecordings(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("verify", flag.ContinueOnError)
	fs.SetOutput(stderr)
	pubPath := fs.String("public-key", "", "Ed25519 public key (PEM or base64) the manifests must be signed with")
	if err := fs.Parse(args); err != nil {
		return err
	}
	dir := recorder.DefaultDir
	if fs.NArg() > 0 {
		dir = fs.Arg(0)
	}
	var pub ed25519.PublicKey
	if *pubPath != "" {
		var err error
		if pub, err = recorder.PublicKeyFromFile(*pubPath); err != nil {
			return err
		}
	}
	rep, err := recorder.Verify(dir, pub)
	if err != nil {
		return err
	}
	for _, l := range []struct {
		what  string
		paths []string
	}{{"altered", rep.Altered}, {"missing", rep.Missing}, {"extra", rep.Extra}, {"chain", rep.ChainErrors}} {
		for _, p := range l.paths {
			fmt.Fprintf(stdout, "%-8s %s\n", l.what, p)
		}
	}
	fmt.Fprintf(stdout, "%d files checked: %d altered, %d missing, %d extra, %d chain errors\n",
		rep.Checked, len(rep.Altered), len(rep.Missing), len(rep.Extra), len(rep.ChainErrors))
	if !rep.OK() {
		return errors.New("verification failed")
	}
	return nil
}

// keygen writes a new Ed25519 key pair: the private key for recorder.manifest.signing_key_file, the public
// one for siphook verify -public-key.
func keygen(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("keygen", flag.ContinueOnError)
	fs.SetOutput(stderr)
	priv := fs.String("private", "manifest-signing.key", "where to write the private key (0600)")
	pub := fs.String("public", "manifest-signing.pub", "where to write the public key")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := recorder.GenerateKey(*priv, *pub); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "wrote %s (set recorder.manifest.signing_key_file) and %s (for siphook verify -public-key)\n", *priv, *pub)
	return nil
}
