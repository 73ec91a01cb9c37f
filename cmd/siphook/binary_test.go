package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/siphook/siphook/cti/genesys/genesystest"
	"github.com/siphook/siphook/internal/audiotest"
	"github.com/siphook/siphook/recorder"
	"github.com/siphook/siphook/sip/siptest"
)

// These tests run the real binary, as an operator would, and talk to it over loopback.

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

func siphookBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "siphook-bin")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "siphook")
		out, err := exec.Command("go", "build", "-o", binPath, ".").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// freePort finds a port free for both UDP and TCP on loopback.
func freePort(t *testing.T) int {
	t.Helper()
	for range 50 {
		pc, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := pc.LocalAddr().(*net.UDPAddr).Port
		l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		pc.Close()
		if err == nil {
			l.Close()
			return port
		}
	}
	t.Fatal("no free port")
	return 0
}

// server is a running siphook process.
type server struct {
	cmd  *exec.Cmd
	addr string
	dir  string
	log  *bytes.Buffer
	done chan error
}

func startServer(t *testing.T, activation string, env ...string) *server {
	t.Helper()
	return startServerIn(t, t.TempDir(), activation, env...)
}

// startServerIn is startServer on a given recordings directory (a restart on the same one).
func startServerIn(t *testing.T, dir, activation string, env ...string) *server {
	t.Helper()
	s := &server{dir: dir, log: &bytes.Buffer{}, done: make(chan error, 1)}
	s.addr = fmt.Sprintf("127.0.0.1:%d", freePort(t))
	s.cmd = exec.Command(siphookBinary(t), "serve", "-sip-listen", s.addr, "-recordings", s.dir,
		"-rtp-ports", "41000-41999", "-activation", activation, "-log-format", "json")
	// Each server gets its own AudioHook port: tests run in parallel processes.
	// No drain by default: tests that stop the server expect their calls ended at once.
	s.cmd.Env = append(append(os.Environ(), "SIPHOOK_AUDIOHOOK_LISTEN=127.0.0.1:0", "SIPHOOK_SHUTDOWN_DRAIN_TIMEOUT=0s"), env...)
	s.cmd.Stderr = &lockedWriter{w: s.log}
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { s.done <- s.cmd.Wait() }()
	t.Cleanup(func() {
		s.cmd.Process.Kill()
		<-s.done
		if t.Failed() {
			t.Logf("server log:\n%s", s.log.String())
		}
	})
	deadline := time.Now().Add(20 * time.Second)
	for {
		if c, err := net.Dial("tcp", s.addr); err == nil {
			c.Close()
			return s
		}
		if time.Now().After(deadline) {
			t.Fatalf("server did not start; log:\n%s", s.log.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

type lockedWriter struct {
	mu sync.Mutex
	w  *bytes.Buffer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// findFile waits for one file with the suffix under dir.
func findFile(t *testing.T, dir, suffix string, ok func(path string) bool) string {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		var found string
		filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
			if err == nil && strings.HasSuffix(p, suffix) && (ok == nil || ok(p)) {
				found = p
			}
			return nil
		})
		if found != "" {
			return found
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("no %s file under %s", suffix, dir)
	return ""
}

func readDoc(t *testing.T, path string) *recorder.Document {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var doc recorder.Document
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	return &doc
}

func completed(path string) bool {
	b, err := os.ReadFile(path)
	return err == nil && (bytes.Contains(b, []byte(`"state": "completed"`)) || bytes.Contains(b, []byte(`"state":"completed"`)))
}

func hasUCID(doc *recorder.Document, ucid string) bool {
	for _, id := range doc.Identifiers {
		if id.Kind == "ucid" && id.Value == ucid {
			return true
		}
	}
	return false
}

func lastLines(b []byte, n int) string {
	lines := strings.Split(string(b), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// oracleCall places an Oracle-style SIPREC call to the server from a fake SRC over TCP.
func oracleCall(ctx context.Context, t *testing.T, srv *server) *siptest.Call {
	t.Helper()
	src, err := siptest.NewSRC("tcp")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(src.Close)
	tmpl, err := siptest.LoadTemplate("../../testdata/siprec/oracle-sbc-2026-headers-template-INVITE.txt")
	if err != nil {
		t.Fatal(err)
	}
	call, err := src.Invite(ctx, siptest.Dial{Target: srv.addr, Template: tmpl})
	if err != nil {
		t.Fatal(err)
	}
	return call
}

// TestKill9LeavesReadableWAV kills the server mid-recording: the WAV must open in a standard reader and hold
// the audio up to about the last second.
func TestKill9LeavesReadableWAV(t *testing.T) {
	srv := startServer(t, "immediate")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	call := oracleCall(ctx, t, srv)
	const sent = 4 * time.Second
	if err := call.SendTones(ctx, []float64{440, 1000}, sent); err != nil {
		t.Fatal(err)
	}
	if err := srv.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-srv.done
	srv.done <- nil // for the cleanup

	path := findFile(t, srv.dir, ".wav", nil)
	if py, err := exec.LookPath("python3"); err == nil {
		// Python's wave module is the standard reader here; it refuses inconsistent headers.
		script := `import sys, wave
w = wave.open(sys.argv[1]); print(w.getnchannels(), w.getframerate(), w.getnframes())`
		out, err := exec.Command(py, "-c", script, path).CombinedOutput()
		if err != nil {
			t.Fatalf("python wave cannot open the WAV: %v\n%s", err, out)
		}
		var ch, rate, frames int
		fmt.Sscan(string(out), &ch, &rate, &frames)
		if ch != 2 || rate != 8000 || frames < int((sent-1500*time.Millisecond).Seconds()*8000) {
			t.Errorf("python wave: %d channels, %d Hz, %d frames; want 2, 8000, >= %d", ch, rate, frames, int((sent-1500*time.Millisecond).Seconds()*8000))
		}
	}
	wav, err := recorder.ReadWAV(path)
	if err != nil {
		t.Fatal(err)
	}
	// All that was sent except about the last second (flush interval + lag) must be there, by content.
	want := int((sent - 1500*time.Millisecond).Seconds() * 8000)
	for ch, tone := range []float64{440, 1000} {
		if got := audiotest.TonePresentSamples(wav.Channels[ch], 8000, tone); got < want {
			t.Errorf("channel %d: %.0f Hz in %d samples after kill -9, want >= %d", ch, tone, got, want)
		}
	}
}

// TestSIGTERMFinalisesRecordings stops the server during a call: the SRC gets a BYE and the recording and its
// document are complete.
func TestSIGTERMFinalisesRecordings(t *testing.T) {
	srv := startServer(t, "immediate")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	call := oracleCall(ctx, t, srv)
	if err := call.SendTones(ctx, []float64{440, 1000}, 2*time.Second); err != nil {
		t.Fatal(err)
	}
	if err := srv.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := <-srv.done; err != nil {
		t.Fatalf("server exit: %v", err)
	}
	srv.done <- nil
	select {
	case <-call.Ended():
	case <-ctx.Done():
		t.Fatal("SRC never got a BYE")
	}
	doc := readDoc(t, findFile(t, srv.dir, ".json", completed))
	if doc.Session["end_reason"] != "shutdown" || doc.Audio == nil {
		t.Fatalf("document after SIGTERM: %+v", doc)
	}
	wav, err := recorder.ReadWAV(filepath.Join(srv.dir, doc.Audio.File))
	if err != nil {
		t.Fatal(err)
	}
	if got := audiotest.TonePresentSamples(wav.Channels[1], 8000, 1000); got < 2*8000*90/100 {
		t.Errorf("1 kHz present in %d samples, want the whole 2 s", got)
	}
}

// TestCheckAudioHook runs the binary's AudioHook endpoint configured from the environment alone and probes it
// the way Genesys does on activation, with the right and a wrong client secret.
func TestCheckAudioHook(t *testing.T) {
	const apiKey = "c2lwaG9vay10ZXN0LWtleQ=="
	secret := base64.StdEncoding.EncodeToString([]byte("0123456789abcdef0123456789abcdef"))
	hookAddr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	startServer(t, "immediate", "SIPHOOK_AUDIOHOOK_LISTEN="+hookAddr,
		"SIPHOOK_AUDIOHOOK_API_KEY="+apiKey, "SIPHOOK_AUDIOHOOK_CLIENT_SECRET="+secret)
	url := "ws://" + hookAddr + "/audiohook"
	waitListening(t, hookAddr)

	check := func(secret string) (string, error) {
		cmd := exec.Command(siphookBinary(t), "check-audiohook", "-url", url)
		cmd.Env = append(os.Environ(), "SIPHOOK_AUDIOHOOK_API_KEY="+apiKey, "SIPHOOK_AUDIOHOOK_CLIENT_SECRET="+secret)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	if out, err := check(secret); err != nil || !strings.HasPrefix(out, "ok:") {
		t.Fatalf("probe with the right secret: %v\n%s", err, out)
	}
	wrong := base64.StdEncoding.EncodeToString([]byte("not the secret, not the secret!!"))
	if out, err := check(wrong); err == nil || !strings.Contains(out, "401") {
		t.Fatalf("probe with a wrong secret: err %v, output:\n%s", err, out)
	}
}

func waitListening(t *testing.T, addr string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("nothing listens on %s", addr)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestCTITail runs `siphook cti-tail` against the fake Genesys Cloud, configured from the environment
// alone, and watches a scripted call go ACTIVE → HELD → ACTIVE → ENDED.
func TestCTITail(t *testing.T) {
	fake := genesystest.NewServer(genesystest.Options{})
	defer fake.Close()
	fake.AddClient("siphook", "cti-tail-secret")
	const agent = "5f6fe78e-dfbb-400f-a70b-d9b5c8340fdc"
	fake.AddUser(genesystest.User{ID: agent, Name: "Agent A", Email: "a@example.com"})

	cmd := exec.Command(siphookBinary(t), "cti-tail")
	cmd.Env = append(os.Environ(),
		"SIPHOOK_GENESYS_API_BASE="+fake.APIBase(), "SIPHOOK_GENESYS_LOGIN_BASE="+fake.LoginBase(),
		"SIPHOOK_GENESYS_CLIENT_ID=siphook", "SIPHOOK_GENESYS_CLIENT_SECRET=cti-tail-secret",
		"SIPHOOK_GENESYS_USERS=a@example.com")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &lockedWriter{w: &stderr}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
		if t.Failed() {
			t.Logf("cti-tail stderr:\n%s", stderr.String())
		}
	}()
	lines := make(chan string, 16)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	deadline := time.Now().Add(20 * time.Second)
	for sum(fake.Stats().LiveSockets) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("cti-tail never connected")
		}
		time.Sleep(20 * time.Millisecond)
	}
	c := fake.InboundCall(genesystest.UUI("00FA080019001038F725B3;encoding=hex")).Answer(agent).Hold(agent).Resume(agent).CustomerHangup()
	var states []string
	timeout := time.After(20 * time.Second)
	for len(states) < 4 {
		select {
		case line, ok := <-lines:
			if !ok {
				t.Fatalf("cti-tail ended; states so far %v", states)
			}
			f := strings.Fields(line)
			if len(f) < 3 || f[2] != "conversation="+c.ID() {
				t.Fatalf("unexpected line %q", line)
			}
			states = append(states, f[1])
			if f[1] == "ACTIVE" && !strings.Contains(line, "a@example.com") {
				t.Errorf("line without the agent: %q", line)
			}
		case <-timeout:
			t.Fatalf("states so far %v", states)
		}
	}
	if strings.Join(states, " ") != "ACTIVE HELD ACTIVE ENDED" {
		t.Errorf("cti-tail printed %v, want ACTIVE HELD ACTIVE ENDED", states)
	}
}

// TestOpsEndpoints: the operator endpoints on the AudioHook listener. /metrics is Prometheus text with
// every component's series (checked by parsing it, as a scraper would); /healthz and /readyz answer 200.
func TestOpsEndpoints(t *testing.T) {
	hook := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	startServer(t, "immediate", "SIPHOOK_AUDIOHOOK_LISTEN="+hook)
	get := func(path string) (int, string) {
		t.Helper()
		var res *http.Response
		var err error
		for range 50 { // the HTTP listener may come up just after SIP
			if res, err = http.Get("http://" + hook + path); err == nil {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, string(b)
	}
	for _, path := range []string{"/healthz", "/readyz"} {
		if code, body := get(path); code != 200 {
			t.Errorf("%s: %d %q", path, code, body)
		}
	}
	code, body := get("/metrics")
	if code != 200 {
		t.Fatalf("/metrics: %d", code)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(strings.NewReader(body))
	if err != nil {
		t.Fatalf("/metrics is not Prometheus text: %v", err)
	}
	for _, name := range []string{"siphook_siprec_sessions_active", "siphook_process_resident_memory_bytes", "go_goroutines",
		"siphook_rtp_packets_total", "siphook_rtp_lost_packets_total", "siphook_rtp_ports_free", "siphook_media_sessions",
		"siphook_recorder_recordings_open", "siphook_recorder_documents_total", "siphook_matcher_matches_total"} {
		if families[name] == nil {
			t.Errorf("/metrics lacks %s", name)
		}
	}
	// Prometheus's own linter (naming, _total suffixes, HELP): Debian's prometheus package has it.
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		if os.Getenv("SIPHOOK_REQUIRE_PROMTOOL") != "" {
			t.Fatal("promtool is required (apt-get install prometheus)")
		}
		t.Skip("promtool not installed (apt-get install prometheus)")
	}
	check := exec.Command(promtool, "check", "metrics")
	check.Stdin = strings.NewReader(body)
	if out, err := check.CombinedOutput(); err != nil {
		t.Errorf("promtool check metrics: %v\n%s", err, out)
	}
}

// TestSIGTERMDrains: SIGTERM during 20 active calls is a lame-duck drain. New INVITEs get 503 and /readyz
// fails, the 20 calls go on until their SRCs hang up, and each is recorded whole; then the server exits.
func TestSIGTERMDrains(t *testing.T) {
	hook := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	srv := startServer(t, "immediate", "SIPHOOK_SHUTDOWN_DRAIN_TIMEOUT=60s", "SIPHOOK_AUDIOHOOK_LISTEN="+hook)
	waitListening(t, hook)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	const n = 20
	calls := make([]*siptest.Call, n)
	for i := range calls {
		calls[i] = oracleCall(ctx, t, srv)
	}
	talk := func() {
		var wg sync.WaitGroup
		for _, c := range calls {
			wg.Go(func() { c.SendTones(ctx, []float64{440, 1000}, time.Second) })
		}
		wg.Wait()
	}
	talk()
	if err := srv.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	for ready := true; ready; time.Sleep(50 * time.Millisecond) {
		res, err := http.Get("http://" + hook + "/readyz")
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		ready = res.StatusCode != http.StatusServiceUnavailable
		if ctx.Err() != nil {
			t.Fatal("/readyz never failed while draining")
		}
	}
	src, err := siptest.NewSRC("tcp")
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	tmpl, err := siptest.LoadTemplate("../../testdata/siprec/oracle-sbc-2026-headers-template-INVITE.txt")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := src.Invite(ctx, siptest.Dial{Target: srv.addr, Template: tmpl}); siptest.ResponseCode(err) != 503 {
		t.Fatalf("INVITE while draining: %v, want 503", err)
	}
	talk() // the calls go on through the drain
	select {
	case err := <-srv.done:
		t.Fatalf("server exited with calls still up: %v", err)
	default:
	}
	for _, c := range calls {
		if err := c.Bye(ctx); err != nil {
			t.Fatal(err)
		}
	}
	select {
	case err := <-srv.done:
		if err != nil {
			t.Fatalf("server exit: %v", err)
		}
		srv.done <- nil
	case <-ctx.Done():
		t.Fatal("server did not exit once drained")
	}
	docs, _ := filepath.Glob(filepath.Join(srv.dir, "*", "*", "*", "*.json"))
	whole := 0
	for _, p := range docs {
		doc := readDoc(t, p)
		if doc.State != "completed" || doc.Session["end_reason"] != "bye" || doc.Audio == nil {
			t.Errorf("%s: state %q, end_reason %q", p, doc.State, doc.Session["end_reason"])
			continue
		}
		wav, err := recorder.ReadWAV(filepath.Join(srv.dir, doc.Audio.File))
		if err != nil {
			t.Fatal(err)
		}
		if got := audiotest.TonePresentSamples(wav.Channels[1], 8000, 1000); got >= 2*8000*85/100 {
			whole++
		}
	}
	if len(docs) != n || whole != n {
		t.Errorf("%d documents, %d with both seconds of audio; want %d recorded whole", len(docs), whole, n)
	}
}
