//go:build linux

package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"golang.org/x/time/rate"

	"github.com/siphook/siphook/audiohook"
	"github.com/siphook/siphook/audiohook/hooktest"
	"github.com/siphook/siphook/cti"
	"github.com/siphook/siphook/cti/webhook"
	"github.com/siphook/siphook/matcher"
)

const (
	defaultTemplate   = "testdata/siprec/oracle-sbc-2026-headers-template-INVITE.txt"
	inviteTimeout     = 40 * time.Second // a little over Timer B (64·T1)
	activationTimeout = 15 * time.Second
	ackTimeout        = 5 * time.Second
	byeTimeout        = 40 * time.Second
	openTimeout       = 10 * time.Second
)

// gen is one load run.
type gen struct {
	o    options
	tg   *target
	prog *progress
	http *http.Client

	sender *rtpSender
	sipc   *sipClient
	tmpl   *template
	bodies []string // per RTP shard: the template body with that shard's source port
	node   uint16   // UCID node of this run
	ucidT  uint32

	pump   *hookPump
	frames hookFrames

	stopAll chan struct{} // closed at the end of the window: every call hangs up
	byeLim  *rate.Limiter
	hookLim *rate.Limiter
	ready   sync.WaitGroup // every call/session set up or failed
	done    sync.WaitGroup // every call/session ended

	mu    sync.Mutex // guards the fields of every callResult and hookResult
	calls []*callResult
	hooks []*hookResult
}

type callResult struct {
	callID, ucid, conv string
	inviteAt           time.Time
	answered           time.Duration // INVITE → 200
	activation         time.Duration // CTI POST → re-INVITE received
	setupDone          time.Time
	ok                 bool // activated, streaming
	noAck              bool
	err                string
	endedBySRS         bool
	byeErr             string
	rtp                []streamStats
}

type hookResult struct {
	conv, session  string
	opened         time.Duration // dial → opened
	resumed        time.Duration // CTI POST → resume
	ok             bool
	err            string
	endedEarly     bool
	closeErr       string
	protoErr       string
	pongs          int
	rtt            time.Duration
	sent, held     uint64
	skipped        uint64
	sendErr        string
	sampleRate     int
	samplesPerSent int // samples per channel in one frame
}

func run(ctx context.Context, o options) (*Result, error) {
	prog := &progress{w: o.progress, start: time.Now()}
	if prog.w == nil && !o.Quiet {
		prog.w = os.Stderr
	}
	// sipgo logs through slog.Default (an UnhandledResponse INFO line per late retransmission, for one):
	// only its warnings and errors belong on the generator's stderr.
	slog.SetDefault(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))
	g := &gen{o: o, prog: prog, stopAll: make(chan struct{})}
	g.http = &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConns: 256, MaxIdleConnsPerHost: 256, IdleConnTimeout: time.Minute}}
	defer g.http.CloseIdleConnections()

	res := &Result{Started: time.Now().UTC(), Transport: o.Transport, WindowSeconds: o.Duration.Seconds(), Rate: o.Rate}
	res.Calls.Requested, res.AudioHook.Requested = o.Calls, o.AudioHook

	root, rootErr := moduleRoot()
	if o.Calls > 0 {
		path := o.Template
		if path == "" {
			if rootErr != nil {
				return nil, fmt.Errorf("-template not given and %w", rootErr)
			}
			path = filepath.Join(root, defaultTemplate)
		}
		t, err := loadTemplate(path)
		if err != nil {
			return nil, err
		}
		g.tmpl = t
	}

	tmp, err := os.MkdirTemp("", "siphook-load-")
	if err != nil {
		return nil, err
	}
	if o.Keep {
		prog.printf("keeping %s", tmp)
	} else {
		defer os.RemoveAll(tmp)
	}

	// The server.
	if o.Attach > 0 {
		secret, err := base64.StdEncoding.DecodeString(o.HookSecret)
		if err != nil {
			return nil, fmt.Errorf("-audiohook-secret is not base64: %w", err)
		}
		g.tg = &target{pid: o.Attach, sipAddr: o.SIPAddr, webhookURL: strings.TrimSuffix(o.WebhookURL, "/"), webhookToken: o.Token,
			hookURL: o.HookURL, hookKey: o.HookKey, hookSecret: secret, recordings: o.Recordings}
		if _, err := procCPU(o.Attach); err != nil {
			return nil, fmt.Errorf("-attach %d: %w", o.Attach, err)
		}
		res.Server.Attached = true
	} else {
		bin := o.Server
		if bin == "" {
			if rootErr != nil {
				return nil, fmt.Errorf("-server not given and %w", rootErr)
			}
			prog.printf("building ./cmd/siphook")
			if bin, err = buildServer(root, tmp); err != nil {
				return nil, err
			}
		}
		if g.tg, err = startServer(bin, tmp, o.IP, o.RTPPorts); err != nil {
			return nil, err
		}
		defer func() {
			if g.tg.stop != nil {
				sctx, cancel := context.WithTimeout(context.Background(), 45*time.Second)
				defer cancel()
				g.tg.stop(sctx)
			}
		}()
		prog.printf("server pid %d: sip %s, webhook %s, audiohook %s", g.tg.pid, g.tg.sipAddr, g.tg.webhookURL, g.tg.hookURL)
	}
	res.Server.PID = g.tg.pid
	res.Server.Recordings = g.tg.recordings

	// The generator's machinery.
	if o.Calls > 0 {
		// One sender goroutine per 500 calls (100 packets per 20 ms tick each), at most -senders: every
		// goroutine costs its wake-ups whatever it sends.
		if g.sender, err = newRTPSender(o.IP, min(o.Senders, (o.Calls+499)/500)); err != nil {
			return nil, err
		}
		defer g.sender.close()
		for _, sh := range g.sender.shards {
			g.bodies = append(g.bodies, g.tmpl.forSource(o.IP, sh.port))
		}
		if g.sipc, err = newSIPClient(o.Transport, o.IP, g.tg.sipAddr); err != nil {
			return nil, err
		}
		defer g.sipc.close()
		g.node = uint16(rand.N(60000) + 1000)
		g.ucidT = uint32(time.Now().Unix())
	}
	if o.AudioHook > 0 {
		g.pump = newHookPump(min(o.Senders, (o.AudioHook+499)/500))
		defer g.pump.close()
	}

	// Before any call.
	time.Sleep(time.Second)
	res.Server.RSSBeforeKiB, _, _ = procStatus(g.tg.pid)
	rcv0, inErr0 := udpErrors()

	// Ramp.
	g.calls = make([]*callResult, o.Calls)
	g.hooks = make([]*hookResult, o.AudioHook)
	for i := range g.calls {
		g.calls[i] = &callResult{}
	}
	for i := range g.hooks {
		g.hooks[i] = &hookResult{}
	}
	g.byeLim = rate.NewLimiter(rate.Limit(o.Rate), burst(o.Rate))
	g.hookLim = rate.NewLimiter(rate.Limit(o.HookRate), burst(o.HookRate))
	g.ready.Add(o.Calls + o.AudioHook)
	rampStart := time.Now()
	prog.printf("ramp: %d calls at %.0f/s over %s, %d AudioHook sessions at %.0f/s", o.Calls, o.Rate, o.Transport, o.AudioHook, o.HookRate)
	var launch sync.WaitGroup
	launch.Go(func() {
		lim := rate.NewLimiter(rate.Limit(o.Rate), burst(o.Rate))
		for i := range o.Calls {
			if lim.Wait(ctx) != nil {
				for range o.Calls - i {
					g.ready.Done()
				}
				return
			}
			g.done.Add(1)
			go g.runCall(ctx, i)
		}
	})
	launch.Go(func() {
		lim := rate.NewLimiter(rate.Limit(o.HookRate), burst(o.HookRate))
		for i := range o.AudioHook {
			if lim.Wait(ctx) != nil {
				for range o.AudioHook - i {
					g.ready.Done()
				}
				return
			}
			g.done.Add(1)
			go g.runHook(ctx, i)
		}
	})
	readyCh := make(chan struct{})
	go func() { launch.Wait(); g.ready.Wait(); close(readyCh) }()
	tick := time.NewTicker(5 * time.Second)
wait:
	for {
		select {
		case <-readyCh:
			break wait
		case <-tick.C:
			okC, okH := g.counts()
			prog.printf("ramp: %d/%d calls streaming, %d/%d AudioHook sessions", okC, o.Calls, okH, o.AudioHook)
		}
	}
	tick.Stop()
	res.Calls.RampSeconds = time.Since(rampStart).Seconds()
	okC, okH := g.counts()
	prog.printf("ramp done in %.1fs: %d/%d calls streaming, %d/%d AudioHook sessions", res.Calls.RampSeconds, okC, o.Calls, okH, o.AudioHook)

	// Steady state.
	if ctx.Err() == nil {
		select {
		case <-time.After(o.Settle):
		case <-ctx.Done():
		}
	}
	g.window(ctx, res)

	// Teardown.
	prog.printf("hanging up")
	close(g.stopAll)
	g.done.Wait()
	prog.printf("all calls ended")
	rcv1, inErr1 := udpErrors()
	res.RTP.KernelRcvbufErrors, res.RTP.KernelUDPInErrors = rcv1-rcv0, inErr1-inErr0

	g.collect(res)
	if g.tg.recordings != "" {
		g.scanRecordings(ctx, res)
	}
	if g.tg.stop != nil {
		sctx, cancel := context.WithTimeout(context.Background(), 45*time.Second)
		err := g.tg.stop(sctx)
		cancel()
		g.tg.stop = nil
		if err != nil {
			res.Server.ExitError = err.Error()
		}
	}
	if g.tg.logPath != "" {
		res.Server.LogWarnings, res.Server.LogErrors, res.Server.LogSample = serverLogSummary(g.tg.logPath)
		if o.Keep {
			res.Server.LogPath = g.tg.logPath
		}
	}
	res.finish()
	if ctx.Err() != nil {
		return res, ctx.Err()
	}
	return res, nil
}

func burst(r float64) int { return max(1, int(r/50)) }

func (g *gen) counts() (calls, hooks int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, c := range g.calls {
		if c.ok {
			calls++
		}
	}
	for _, h := range g.hooks {
		if h.ok {
			hooks++
		}
	}
	return calls, hooks
}

// window measures the steady state: server CPU, packets and frames sent, RSS, the generator's own CPU.
func (g *gen) window(ctx context.Context, res *Result) {
	pid := g.tg.pid
	cpu0, err := procCPU(pid)
	if err != nil {
		res.Server.Error = err.Error()
	}
	u0, s0 := selfCPU()
	busy0, irq0 := machineCPU()
	procs0 := procTimes()
	sent0 := g.packetsSent()
	var skipped0 uint64
	if g.sender != nil {
		g.sender.resetMaxTick()
		skipped0 = g.sender.skipped.Load()
	}
	frames0 := g.framesSent()
	t0 := time.Now()
	g.prog.printf("measuring for %s", g.o.Duration)
	end := time.NewTimer(g.o.Duration)
	defer end.Stop()
	sample := time.NewTicker(time.Second)
	defer sample.Stop()
	var rss []int64
	lastPrint := t0
loop:
	for {
		select {
		case <-end.C:
			break loop
		case <-ctx.Done():
			break loop
		case now := <-sample.C:
			r, _, err := procStatus(pid)
			if err == nil {
				rss = append(rss, r)
			}
			if now.Sub(lastPrint) >= 5*time.Second {
				lastPrint = now
				c, _ := procCPU(pid)
				el := now.Sub(t0).Seconds()
				g.prog.printf("window %4.0fs: %.0f packets/s, %.0f AudioHook frames/s, server %.2f cores, RSS %d MiB", el,
					float64(g.packetsSent()-sent0)/el, float64(g.framesSent()-frames0)/el, (c-cpu0).Seconds()/el, r>>10)
			}
		}
	}
	cpu1, _ := procCPU(pid)
	u1, s1 := selfCPU()
	busy1, irq1 := machineCPU()
	procs1 := procTimes()
	el := time.Since(t0)
	w := &res.window
	w.elapsed = el
	w.serverCPU = cpu1 - cpu0
	w.genUser, w.genSys = u1-u0, s1-s0
	w.machineBusy, w.machineIRQ = busy1-busy0, irq1-irq0
	res.Machine.OthersCores, res.Machine.KernelCores, res.Machine.Busiest = busiestOthers(procs0, procs1, el, pid, os.Getpid())
	w.packets = g.packetsSent() - sent0
	w.frames = g.framesSent() - frames0
	if g.sender != nil {
		w.maxTick, _ = g.sender.tickStats()
		res.RTP.WindowSkipped = g.sender.skipped.Load() - skipped0
	}
	res.WindowSeconds = el.Seconds()
	if r, hwm, err := procStatus(pid); err == nil {
		rss = append(rss, r)
		res.Server.RSSPeakKiB = hwm
	}
	if len(rss) > 0 {
		slices.Sort(rss)
		res.Server.RSSSteadyKiB = rss[len(rss)/2] // median of the window's samples
	}
}

func (g *gen) framesSent() uint64 {
	if g.pump == nil {
		return 0
	}
	return g.pump.sent.Load()
}

func (g *gen) packetsSent() uint64 {
	if g.sender == nil {
		return 0
	}
	return g.sender.sent.Load()
}

// postEvent tells the server's CTI webhook that a tracked agent is connected on the conversation.
func (g *gen) postEvent(ctx context.Context, conv, agent string, ucids []string) error {
	e := cti.Event{ConversationID: conv, State: cti.StateActive, Direction: "inbound", UCIDs: ucids,
		Agents: []cti.Agent{{UserID: agent, Name: "Load agent"}}}
	body, err := json.Marshal(e)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, g.tg.webhookURL+webhook.Path, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+g.tg.webhookToken)
	req.Header.Set("Content-Type", "application/json")
	resp, err := g.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	if resp.StatusCode != http.StatusAccepted {
		return fmt.Errorf("webhook: HTTP %d %s", resp.StatusCode, strings.TrimSpace(string(b)))
	}
	return nil
}

// readyFunc marks one call or session ready for the measurement window, at most once.
func (g *gen) readyFunc() func() {
	var once sync.Once
	return func() { once.Do(g.ready.Done) }
}

// failFunc records, under g.mu, the stage at which a call or session failed and why.
func (g *gen) failFunc(dst *string) func(stage string, err error) {
	return func(stage string, err error) {
		g.mu.Lock()
		*dst = stage + ": " + err.Error()
		g.mu.Unlock()
	}
}

// runCall is one SIPREC call from INVITE to BYE.
func (g *gen) runCall(ctx context.Context, i int) {
	defer g.done.Done()
	r := g.calls[i]
	setReady := g.readyFunc()
	defer setReady()
	fail := g.failFunc(&r.err)

	shIdx := i % len(g.sender.shards)
	sh := g.sender.shards[shIdx]
	call := newSIPCall(g.o.IP, sh.port, g.tmpl.streams)
	u := matcher.UCID{Node: g.node, Seq: uint16(i), Time: g.ucidT + uint32(i>>16)}
	conv := uuid.NewString()
	g.mu.Lock()
	r.callID, r.ucid, r.conv = call.callID, u.String(), conv
	g.mu.Unlock()

	headers := make([][2]string, 0, len(g.tmpl.Headers))
	for _, h := range g.tmpl.Headers {
		switch strings.ToLower(h[0]) {
		case "user-to-user":
			h[1] = "04FA08" + u.Hex() + ";encoding=hex"
		case "cisco-gucid":
			h[1] = u.String()
		case "x-acme-call-id":
			h[1] = call.callID
		}
		headers = append(headers, h)
	}
	body := g.bodies[shIdx]
	if g.tmpl.ucidHex != "" {
		body = strings.Replace(body, "<apkt:ucid>"+g.tmpl.ucidHex+"<", "<apkt:ucid>"+u.Hex()+"<", 1)
	}

	ictx, cancel := context.WithTimeout(ctx, inviteTimeout)
	t0 := time.Now()
	err := g.sipc.invite(ictx, call, headers, body, g.tmpl.SRCContact)
	cancel()
	g.mu.Lock()
	r.inviteAt, r.answered = t0, time.Since(t0)
	g.mu.Unlock()
	if err != nil {
		fail("setup", err)
		return
	}
	hangup := func() {
		bctx, cancel := context.WithTimeout(context.Background(), byeTimeout)
		defer cancel()
		if err := g.sipc.bye(bctx, call); err != nil {
			g.mu.Lock()
			r.byeErr = err.Error()
			g.mu.Unlock()
		}
	}
	for _, d := range call.answer.dirs {
		if d != "inactive" {
			fail("answer", fmt.Errorf("streams answered %v, want inactive until matched", call.answer.dirs))
			hangup()
			return
		}
	}

	tPost := time.Now()
	if err := g.postEvent(ctx, conv, uuid.NewString(), []string{u.String()}); err != nil {
		fail("cti", err)
		hangup()
		return
	}
	var ev reinviteEvent
	timer := time.NewTimer(activationTimeout)
	select {
	case ev = <-call.reinvite:
		timer.Stop()
	case <-timer.C:
		fail("activation", fmt.Errorf("no re-INVITE within %s of the CTI event", activationTimeout))
		hangup()
		return
	case <-ctx.Done():
		hangup()
		return
	}
	g.mu.Lock()
	r.activation = ev.at.Sub(tPost)
	g.mu.Unlock()
	if slices.Contains(ev.sdp.dirs, "inactive") || len(ev.sdp.ports) < g.tmpl.streams {
		fail("activation", fmt.Errorf("re-INVITE asks for %v on ports %v, want recvonly", ev.sdp.dirs, ev.sdp.ports))
		hangup()
		return
	}
	// The server records once it has our answer; its ACK says it has.
	timer = time.NewTimer(ackTimeout)
	select {
	case <-call.acked:
		timer.Stop()
	case <-timer.C:
		g.mu.Lock()
		r.noAck = true
		g.mu.Unlock()
	}
	ip, err := netip.ParseAddr(ev.sdp.ip)
	if err != nil {
		fail("activation", fmt.Errorf("re-INVITE SDP address %q", ev.sdp.ip))
		hangup()
		return
	}
	var streams []*rtpStream
	for k, port := range ev.sdp.ports[:g.tmpl.streams] {
		if port == 0 {
			continue
		}
		tone := toneA[i%len(toneA)]
		if k%2 == 1 {
			tone = toneB[i%len(toneB)]
		}
		st, err := g.sender.start(sh, netip.AddrPortFrom(ip, uint16(port)), tone, rand.Uint32(), uint16(rand.Uint32()), rand.Uint32())
		if err != nil {
			fail("rtp", err)
			break
		}
		streams = append(streams, st)
	}
	g.mu.Lock()
	r.ok, r.setupDone = len(streams) > 0, time.Now()
	g.mu.Unlock()
	setReady()

	select {
	case <-g.stopAll:
	case <-call.ended:
		g.mu.Lock()
		r.endedBySRS = true
		g.mu.Unlock()
		<-g.stopAll
	case <-ctx.Done():
	}
	if ctx.Err() == nil {
		g.byeLim.Wait(ctx)
	}
	stats := make([]streamStats, len(streams))
	for k, st := range streams {
		stats[k] = g.sender.stopStream(sh, st)
	}
	g.mu.Lock()
	r.rtp = stats
	g.mu.Unlock()
	if g.o.ByeDelay > 0 {
		time.Sleep(g.o.ByeDelay)
	}
	hangup()
}

// runHook is one AudioHook session from open to close.
func (g *gen) runHook(ctx context.Context, i int) {
	defer g.done.Done()
	r := g.hooks[i]
	setReady := g.readyFunc()
	defer setReady()
	fail := g.failFunc(&r.err)
	conv := uuid.NewString()
	dctx, cancel := context.WithTimeout(ctx, openTimeout+5*time.Second)
	t0 := time.Now()
	s, err := hooktest.Dial(dctx, hooktest.Config{URL: g.tg.hookURL, APIKey: g.tg.hookKey, ClientSecret: g.tg.hookSecret,
		ConversationID: conv, PingInterval: g.o.PingInterval, OpenTimeout: openTimeout})
	cancel()
	opened := time.Since(t0)
	g.mu.Lock()
	r.conv, r.opened = conv, opened
	g.mu.Unlock()
	if err != nil {
		fail("open", err)
		return
	}
	g.mu.Lock()
	r.session = s.ID()
	g.mu.Unlock()
	closeIt := func() {
		cctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		err := s.Close(cctx, "end")
		g.mu.Lock()
		defer g.mu.Unlock()
		if err != nil {
			r.closeErr = err.Error()
		}
		if e := s.Err(); e != nil {
			r.protoErr = e.Error()
		}
		r.pongs, r.rtt = s.Pongs(), s.LastRTT()
	}
	media := s.Opened().Media
	if len(media) == 0 {
		fail("open", errors.New("opened without media"))
		closeIt()
		return
	}
	tPost := time.Now()
	if err := g.postEvent(ctx, conv, uuid.NewString(), nil); err != nil {
		fail("cti", err)
		closeIt()
		return
	}
	if s.Opened().StartPaused {
		if err := waitResume(ctx, s); err != nil {
			fail("activation", err)
			closeIt()
			return
		}
	}
	g.mu.Lock()
	r.resumed = time.Since(tPost)
	r.sampleRate = media[0].Rate
	r.samplesPerSent = media[0].Rate * int(hookFrame/time.Millisecond) / 1000
	g.mu.Unlock()
	sh, st := g.pump.add(i, s, g.frames.get(media[0], i))
	g.mu.Lock()
	r.ok = true
	g.mu.Unlock()
	setReady()

	select {
	case <-g.stopAll:
	case <-s.Done():
		g.mu.Lock()
		r.endedEarly = true
		g.mu.Unlock()
		<-g.stopAll
	case <-ctx.Done():
	}
	if ctx.Err() == nil {
		g.hookLim.Wait(ctx)
	}
	g.pump.remove(sh, st)
	g.mu.Lock()
	r.sent, r.held, r.skipped = st.sent, st.held, st.skipped
	if st.err != nil {
		r.sendErr = st.err.Error()
	}
	g.mu.Unlock()
	closeIt()
}

// waitResume waits for the server's resume (the matcher activating the session).
func waitResume(ctx context.Context, s *hooktest.Session) error {
	timer := time.NewTimer(activationTimeout)
	defer timer.Stop()
	for {
		select {
		case m, ok := <-s.Messages():
			if !ok {
				return errors.New("session ended before resume")
			}
			if m.Type == audiohook.TypeResume {
				return nil
			}
		case <-timer.C:
			return fmt.Errorf("no resume within %s of the CTI event", activationTimeout)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}
