//go:build linux

package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/siphook/siphook/internal/audiotest"
	"github.com/siphook/siphook/recorder"
)

// Latency is a distribution in milliseconds.
type Latency struct {
	N   int     `json:"n"`
	P50 float64 `json:"p50_ms"`
	P99 float64 `json:"p99_ms"`
	Max float64 `json:"max_ms"`
}

func latency(ds []time.Duration) Latency {
	if len(ds) == 0 {
		return Latency{}
	}
	slices.Sort(ds)
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	pick := func(q float64) time.Duration {
		i := int(q*float64(len(ds))+0.5) - 1
		return ds[min(max(i, 0), len(ds)-1)]
	}
	return Latency{N: len(ds), P50: ms(pick(0.50)), P99: ms(pick(0.99)), Max: ms(ds[len(ds)-1])}
}

func (l Latency) String() string {
	if l.N == 0 {
		return "-"
	}
	return fmt.Sprintf("p50 %.1f ms, p99 %.1f ms, max %.1f ms (n=%d)", l.P50, l.P99, l.Max, l.N)
}

// Result is the report, printed as a table and written as JSON by -json.
type Result struct {
	Started       time.Time `json:"started"`
	Transport     string    `json:"transport"`
	Rate          float64   `json:"rate"`
	WindowSeconds float64   `json:"window_seconds"`

	Calls struct {
		Requested   int            `json:"requested"`
		SetUp       int            `json:"set_up"` // answered inactive, activated by the CTI event, streaming
		Failed      int            `json:"failed"`
		FailReasons map[string]int `json:"fail_reasons,omitempty"`
		NoAck       int            `json:"reinvite_without_ack,omitempty"`
		EndedBySRS  int            `json:"ended_by_server,omitempty"`
		ByeErrors   map[string]int `json:"bye_errors,omitempty"`
		RampSeconds float64        `json:"ramp_seconds"`
		SetupRate   float64        `json:"setup_rate_per_s"` // set-up calls ÷ (last activation − first INVITE)
		Invite      Latency        `json:"invite_to_200"`
		Activation  Latency        `json:"cti_post_to_reinvite"`
	} `json:"calls"`

	RTP struct {
		Sent               uint64   `json:"sent"`
		Recorded           uint64   `json:"recorded"` // Σ channels[].stats.received of the calls' documents
		LossPct            float64  `json:"loss_pct"`
		Lost               uint64   `json:"lost"`
		LateSamples        uint64   `json:"late_samples"` // the documents count late audio in samples, not packets
		Dropped            uint64   `json:"dropped"`
		Duplicates         uint64   `json:"duplicates"`
		Reordered          uint64   `json:"reordered"`
		PacketsPerSec      float64  `json:"packets_per_s"`                   // sent, in the window
		Skipped            uint64   `json:"generator_skipped_frames"`        // whole run
		WindowSkipped      uint64   `json:"generator_skipped_frames_window"` // in the window
		CallsShort         int      `json:"calls_with_missing_packets"`      // a channel recorded fewer than sent
		MaxMissing         uint64   `json:"max_missing_per_stream"`
		SendErrors         uint64   `json:"send_errors"`
		Documents          int      `json:"documents"`
		Completed          int      `json:"completed"`
		MissingDocuments   int      `json:"missing_documents"`
		SamplesRecorded    int64    `json:"samples_recorded"` // Σ audio.samples × channels
		SamplesSent        int64    `json:"samples_sent"`     // Σ packets sent × 160
		ToneChecked        int      `json:"tone_checked"`
		TonePassed         int      `json:"tone_passed"`
		ToneFailures       []string `json:"tone_failures,omitempty"`
		KernelRcvbufErrors uint64   `json:"kernel_udp_rcvbuf_errors"`
		KernelUDPInErrors  uint64   `json:"kernel_udp_in_errors"`
	} `json:"rtp"`

	Server struct {
		PID                int      `json:"pid"`
		Attached           bool     `json:"attached"`
		Recordings         string   `json:"recordings,omitempty"`
		CPUCores           float64  `json:"cpu_cores"`         // utime+stime ÷ window
		CPUMicrosPerPacket float64  `json:"cpu_us_per_packet"` // ÷ RTP packets received in the window
		CPUMicrosPerFrame  float64  `json:"cpu_us_per_audiohook_frame,omitempty"`
		RSSBeforeKiB       int64    `json:"rss_before_kib"`
		RSSSteadyKiB       int64    `json:"rss_steady_kib"` // median VmRSS sampled over the window
		RSSPeakKiB         int64    `json:"rss_peak_kib"`   // VmHWM at the end of the window
		KiBPerCall         float64  `json:"kib_per_call,omitempty"`
		KiBPerSession      float64  `json:"kib_per_audiohook_session,omitempty"`
		LogWarnings        int      `json:"log_warnings"`
		LogErrors          int      `json:"log_errors"`
		LogSample          []string `json:"log_sample,omitempty"`
		LogPath            string   `json:"log_path,omitempty"`
		ExitError          string   `json:"exit_error,omitempty"`
		Error              string   `json:"error,omitempty"`
	} `json:"server"`

	// Machine is the whole machine in the window: other processes competing for the CPU make a run's
	// figures unreliable (and, on loopback, the kernel's receive work is charged to the sender).
	Machine struct {
		CPUs        int      `json:"cpus"`
		BusyCores   float64  `json:"busy_cores"`            // /proc/stat: tick-sampled, misses short bursts
		IRQCores    float64  `json:"irq_cores"`             // irq + softirq (/proc/stat), charged to no process
		OthersCores float64  `json:"other_processes_cores"` // every other user-space process's utime+stime ÷ window
		KernelCores float64  `json:"kernel_threads_cores"`  // kernel threads' (kworker, ksoftirqd) CPU ÷ window
		Busiest     []string `json:"busiest_other_processes,omitempty"`
	} `json:"machine"`

	Generator struct {
		CPUCores           float64 `json:"cpu_cores"`
		UserSeconds        float64 `json:"user_seconds"`
		SysSeconds         float64 `json:"sys_seconds"`
		CPUMicrosPerPacket float64 `json:"cpu_us_per_packet"`
		MaxTickMs          float64 `json:"max_rtp_tick_ms"`
	} `json:"generator"`

	AudioHook struct {
		Requested       int            `json:"requested"`
		Opened          int            `json:"opened"`
		Streaming       int            `json:"streaming"` // opened, resumed by the CTI event
		Failed          int            `json:"failed"`
		FailReasons     map[string]int `json:"fail_reasons,omitempty"`
		OpenLatency     Latency        `json:"open_to_opened"`
		ResumeLatency   Latency        `json:"cti_post_to_resume"`
		OpenedOver1s    int            `json:"opened_over_1s"`
		Pongs           int            `json:"pongs"`
		PingFailures    int            `json:"ping_failures"`
		ProtocolErrors  int            `json:"protocol_errors"`
		ErrorSample     []string       `json:"error_sample,omitempty"`
		CloseErrors     int            `json:"close_errors"`
		EndedEarly      int            `json:"ended_early"`
		FramesSent      uint64         `json:"frames_sent"`
		FramesSkipped   uint64         `json:"generator_skipped_frames"`
		FramesPerSec    float64        `json:"frames_per_s"`
		SamplesSent     int64          `json:"samples_sent"` // per channel
		SamplesRecorded int64          `json:"samples_recorded"`
		Documents       int            `json:"documents"`
		Completed       int            `json:"completed"`
		ToneChecked     int            `json:"tone_checked"`
		TonePassed      int            `json:"tone_passed"`
	} `json:"audiohook"`

	window struct {
		elapsed          time.Duration
		serverCPU        time.Duration
		genUser, genSys  time.Duration
		packets, frames  uint64
		maxTick          time.Duration
		machineBusy      time.Duration
		machineIRQ       time.Duration
		recordedFraction float64
	}
}

func reason(s string) string {
	if len(s) > 100 {
		s = s[:100] + "…"
	}
	return s
}

// collect sums what the generator saw.
func (g *gen) collect(res *Result) {
	g.mu.Lock()
	defer g.mu.Unlock()
	var invites, acts []time.Duration
	var first, last time.Time
	for _, c := range g.calls {
		if !c.inviteAt.IsZero() && (first.IsZero() || c.inviteAt.Before(first)) {
			first = c.inviteAt
		}
		if c.err == "" || !strings.HasPrefix(c.err, "setup") {
			if c.answered > 0 {
				invites = append(invites, c.answered)
			}
		}
		if c.ok {
			res.Calls.SetUp++
			acts = append(acts, c.activation)
			if c.setupDone.After(last) {
				last = c.setupDone
			}
		} else {
			res.Calls.Failed++
			if res.Calls.FailReasons == nil {
				res.Calls.FailReasons = map[string]int{}
			}
			res.Calls.FailReasons[reason(cmpOr(c.err, "not started"))]++
		}
		if c.noAck {
			res.Calls.NoAck++
		}
		if c.endedBySRS {
			res.Calls.EndedBySRS++
		}
		if c.byeErr != "" {
			if res.Calls.ByeErrors == nil {
				res.Calls.ByeErrors = map[string]int{}
			}
			res.Calls.ByeErrors[reason(c.byeErr)]++
		}
		for _, st := range c.rtp {
			res.RTP.Sent += st.Sent
			res.RTP.Skipped += st.Skipped
			res.RTP.SendErrors += st.Errors
		}
	}
	res.Calls.Invite, res.Calls.Activation = latency(invites), latency(acts)
	if res.Calls.SetUp > 0 && last.After(first) {
		res.Calls.SetupRate = float64(res.Calls.SetUp) / last.Sub(first).Seconds()
	}
	res.RTP.SamplesSent = int64(res.RTP.Sent) * frameSamples

	var opens, resumes []time.Duration
	for _, h := range g.hooks {
		if h.session != "" {
			res.AudioHook.Opened++
			opens = append(opens, h.opened)
			if h.opened > time.Second {
				res.AudioHook.OpenedOver1s++
			}
		}
		if h.ok {
			res.AudioHook.Streaming++
			resumes = append(resumes, h.resumed)
		} else {
			res.AudioHook.Failed++
			if res.AudioHook.FailReasons == nil {
				res.AudioHook.FailReasons = map[string]int{}
			}
			res.AudioHook.FailReasons[reason(cmpOr(h.err, "not started"))]++
		}
		res.AudioHook.Pongs += h.pongs
		if h.protoErr != "" {
			res.AudioHook.ProtocolErrors++
			if strings.Contains(h.protoErr, "pong") {
				res.AudioHook.PingFailures++
			}
			if len(res.AudioHook.ErrorSample) < 5 {
				res.AudioHook.ErrorSample = append(res.AudioHook.ErrorSample, h.protoErr)
			}
		}
		if h.closeErr != "" {
			res.AudioHook.CloseErrors++
			if len(res.AudioHook.ErrorSample) < 5 {
				res.AudioHook.ErrorSample = append(res.AudioHook.ErrorSample, "close: "+h.closeErr)
			}
		}
		if h.endedEarly {
			res.AudioHook.EndedEarly++
		}
		res.AudioHook.FramesSent += h.sent
		res.AudioHook.FramesSkipped += h.skipped
		res.AudioHook.SamplesSent += int64(h.sent) * int64(h.samplesPerSent)
	}
	res.AudioHook.OpenLatency, res.AudioHook.ResumeLatency = latency(opens), latency(resumes)
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// scanRecordings waits for the documents of every call and session to be final, then compares what was
// recorded with what was sent and checks a few WAVs for the tones.
func (g *gen) scanRecordings(ctx context.Context, res *Result) {
	g.mu.Lock()
	wantSIP := map[string]*callResult{}
	for _, c := range g.calls {
		if c.callID != "" && (c.err == "" || !strings.HasPrefix(c.err, "setup")) {
			wantSIP[c.callID] = c
		}
	}
	wantHook := map[string]*hookResult{}
	for _, h := range g.hooks {
		if h.session != "" {
			wantHook[h.conv] = h
		}
	}
	g.mu.Unlock()

	type found struct {
		doc  *recorder.Document
		path string
	}
	final := map[string]bool{} // paths of documents already final
	sipDocs, hookDocs := map[string]found{}, map[string]found{}
	deadline := time.Now().Add(60*time.Second + time.Duration(len(wantSIP)+len(wantHook))*20*time.Millisecond)
	g.prog.printf("waiting for %d SIPREC and %d AudioHook documents", len(wantSIP), len(wantHook))
	for {
		filepath.WalkDir(g.tg.recordings, func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() || !strings.HasSuffix(p, ".json") || final[p] {
				return nil
			}
			b, err := os.ReadFile(p)
			if err != nil {
				return nil
			}
			var doc recorder.Document
			if json.Unmarshal(b, &doc) != nil || doc.State == recorder.StateRecording {
				return nil
			}
			final[p] = true
			switch doc.Source {
			case "siprec":
				if id := doc.Session["sip_call_id"]; wantSIP[id] != nil {
					sipDocs[id] = found{&doc, p}
				}
			case "audiohook":
				if conv := doc.Session["conversation_id"]; wantHook[conv] != nil {
					hookDocs[conv] = found{&doc, p}
				}
			}
			return nil
		})
		if len(sipDocs) == len(wantSIP) && len(hookDocs) == len(wantHook) || time.Now().After(deadline) || ctx.Err() != nil {
			break
		}
		time.Sleep(500 * time.Millisecond)
	}

	g.mu.Lock()
	defer g.mu.Unlock()
	var okCalls []*callResult
	for _, c := range g.calls {
		if c.ok {
			okCalls = append(okCalls, c)
		}
	}
	for id, c := range wantSIP {
		f, ok := sipDocs[id]
		if !ok {
			if c.ok {
				res.RTP.MissingDocuments++
			}
			continue
		}
		res.RTP.Documents++
		if f.doc.State == recorder.StateCompleted {
			res.RTP.Completed++
		}
		short := false
		for k, ch := range f.doc.Channels {
			if k < len(c.rtp) && ch.Stats.Received < c.rtp[k].Sent {
				short = true
				res.RTP.MaxMissing = max(res.RTP.MaxMissing, c.rtp[k].Sent-ch.Stats.Received)
			}
			res.RTP.Recorded += ch.Stats.Received
			res.RTP.Lost += ch.Stats.Lost
			res.RTP.LateSamples += ch.Stats.LateSamples
			res.RTP.Dropped += ch.Stats.Dropped
			res.RTP.Duplicates += ch.Stats.Duplicates
			res.RTP.Reordered += ch.Stats.Reordered
		}
		if short {
			res.RTP.CallsShort++
		}
		if a := f.doc.Audio; a != nil {
			res.RTP.SamplesRecorded += a.Samples * int64(a.Channels) * 8000 / int64(max(a.SampleRate, 1))
		}
	}
	// Tones: the first -verify calls that streamed. Stream k of call i carries toneA/toneB[i%8]; the caller's
	// stream (m-line 0) is channel 0.
	for n, i := 0, 0; n < g.o.Verify && i < len(g.calls); i++ {
		c := g.calls[i]
		f, ok := sipDocs[c.callID]
		if !c.ok || !ok || f.doc.Audio == nil {
			continue
		}
		n++
		res.RTP.ToneChecked++
		if msg := checkTones(filepath.Join(g.tg.recordings, f.doc.Audio.File), i, c.rtp); msg != "" {
			res.RTP.ToneFailures = append(res.RTP.ToneFailures, c.callID+": "+msg)
		} else {
			res.RTP.TonePassed++
		}
	}

	for conv, h := range wantHook {
		f, ok := hookDocs[conv]
		if !ok {
			continue
		}
		res.AudioHook.Documents++
		if f.doc.State == recorder.StateCompleted {
			res.AudioHook.Completed++
		}
		if a := f.doc.Audio; a != nil {
			res.AudioHook.SamplesRecorded += a.Samples * int64(h.sampleRate) / int64(max(a.SampleRate, 1))
		}
	}
	for n, i := 0, 0; n < g.o.Verify && i < len(g.hooks); i++ {
		h := g.hooks[i]
		f, ok := hookDocs[h.conv]
		if !h.ok || !ok || f.doc.Audio == nil {
			continue
		}
		n++
		res.AudioHook.ToneChecked++
		sent := []streamStats{{Sent: h.sent * uint64(h.samplesPerSent) / frameSamples}, {Sent: h.sent * uint64(h.samplesPerSent) / frameSamples}}
		if msg := checkTones(filepath.Join(g.tg.recordings, f.doc.Audio.File), i, sent); msg == "" {
			res.AudioHook.TonePassed++
		} else if len(res.AudioHook.ErrorSample) < 5 {
			res.AudioHook.ErrorSample = append(res.AudioHook.ErrorSample, "tone: "+msg)
		}
	}
	if res.RTP.Sent > 0 && res.RTP.Documents > 0 {
		res.window.recordedFraction = float64(res.RTP.Recorded) / float64(res.RTP.Sent)
	}
}

// checkTones reads a recording and checks that channel k carries stream k's tone for at least 90 % of the
// audio sent on it. It returns "" when it does.
func checkTones(path string, i int, sent []streamStats) string {
	wav, err := recorder.ReadWAV(path)
	if err != nil {
		return err.Error()
	}
	var problems []string
	for k, st := range sent {
		if k >= 2 {
			break
		}
		if k >= len(wav.Channels) {
			problems = append(problems, fmt.Sprintf("no channel %d", k))
			continue
		}
		tone := toneA[i%len(toneA)]
		if k == 1 {
			tone = toneB[i%len(toneB)]
		}
		want := int(st.Sent) * frameSamples * wav.SampleRate / 8000 * 9 / 10
		if got := audiotest.TonePresentSamples(wav.Channels[k], wav.SampleRate, tone); got < want {
			problems = append(problems, fmt.Sprintf("channel %d: %.0f Hz in %d samples, want ≥ %d", k, tone, got, want))
		}
	}
	return strings.Join(problems, "; ")
}

// finish derives the ratios.
func (res *Result) finish() {
	w := res.window
	secs := w.elapsed.Seconds()
	if secs <= 0 {
		return
	}
	res.Server.CPUCores = w.serverCPU.Seconds() / secs
	res.Generator.CPUCores = (w.genUser + w.genSys).Seconds() / secs
	res.Machine.CPUs = runtime.NumCPU()
	res.Machine.BusyCores = w.machineBusy.Seconds() / secs
	res.Machine.IRQCores = w.machineIRQ.Seconds() / secs
	res.Generator.UserSeconds, res.Generator.SysSeconds = w.genUser.Seconds(), w.genSys.Seconds()
	res.Generator.MaxTickMs = float64(w.maxTick.Microseconds()) / 1000
	res.RTP.PacketsPerSec = float64(w.packets) / secs
	res.AudioHook.FramesPerSec = float64(w.frames) / secs
	if w.packets > 0 {
		received := float64(w.packets)
		if w.recordedFraction > 0 {
			received *= min(w.recordedFraction, 1)
		}
		res.Server.CPUMicrosPerPacket = float64(w.serverCPU.Microseconds()) / received
		res.Generator.CPUMicrosPerPacket = float64((w.genUser + w.genSys).Microseconds()) / float64(w.packets)
	} else if w.frames > 0 {
		res.Server.CPUMicrosPerFrame = float64(w.serverCPU.Microseconds()) / float64(w.frames)
	}
	if w.packets == 0 && w.frames > 0 {
		res.Server.CPUMicrosPerFrame = float64(w.serverCPU.Microseconds()) / float64(w.frames)
	}
	if res.RTP.Sent > 0 && res.RTP.Documents > 0 {
		res.RTP.LossPct = 100 * (float64(res.RTP.Sent) - float64(res.RTP.Recorded)) / float64(res.RTP.Sent)
	}
	delta := float64(res.Server.RSSSteadyKiB - res.Server.RSSBeforeKiB)
	if res.Calls.SetUp > 0 {
		res.Server.KiBPerCall = delta / float64(res.Calls.SetUp)
	} else if res.AudioHook.Streaming > 0 {
		res.Server.KiBPerSession = delta / float64(res.AudioHook.Streaming)
	}
}

// print writes the human report.
func (res *Result) print(out io.Writer) {
	w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	row := func(k, format string, args ...any) { fmt.Fprintf(w, "  %s\t%s\n", k, fmt.Sprintf(format, args...)) }
	mode := "started here"
	if res.Server.Attached {
		mode = "attached"
	}
	fmt.Fprintf(w, "siphook-load %s: server pid %d (%s), window %.1f s\n", res.Started.Format(time.RFC3339), res.Server.PID, mode, res.WindowSeconds)
	if res.Calls.Requested > 0 {
		c, r := res.Calls, res.RTP
		fmt.Fprintf(w, "SIPREC (%s, -rate %.0f/s)\n", res.Transport, res.Rate)
		row("calls set up / failed", "%d of %d / %d", c.SetUp, c.Requested, c.Failed)
		for k, n := range c.FailReasons {
			row("  failed", "%d× %s", n, k)
		}
		row("setup rate reached", "%.1f calls/s (ramp %.1f s)", c.SetupRate, c.RampSeconds)
		row("INVITE → 200", "%s", c.Invite)
		row("CTI POST → re-INVITE", "%s", c.Activation)
		if c.NoAck+c.EndedBySRS > 0 {
			row("anomalies", "%d re-INVITEs never ACKed, %d calls ended by the server", c.NoAck, c.EndedBySRS)
		}
		for k, n := range c.ByeErrors {
			row("  BYE failed", "%d× %s", n, k)
		}
		row("RTP packets/s (window)", "%.0f", r.PacketsPerSec)
		if r.Documents > 0 {
			row("packets sent / recorded", "%d / %d  (loss %.3f %%)", r.Sent, r.Recorded, r.LossPct)
			if r.CallsShort > 0 {
				row("  short recordings", "%d calls recorded fewer packets than sent (at most %d missing on a stream)", r.CallsShort, r.MaxMissing)
			}
			row("server stream counters", "lost %d, duplicates %d, reordered %d, dropped %d packets; late %d samples (audio dropped)", r.Lost, r.Duplicates, r.Reordered, r.Dropped, r.LateSamples)
			row("documents", "%d final (%d completed), %d missing", r.Documents, r.Completed, r.MissingDocuments)
			row("audio samples recorded / sent", "%d / %d (%.1f %%)", r.SamplesRecorded, r.SamplesSent, pct(r.SamplesRecorded, r.SamplesSent))
			row("tone check", "%d of %d recordings", r.TonePassed, r.ToneChecked)
			for _, f := range r.ToneFailures {
				row("  tone failed", "%s", f)
			}
		} else {
			row("packets sent", "%d (recordings not read)", r.Sent)
		}
		row("kernel UDP drops", "RcvbufErrors %d, InErrors %d (whole machine)", r.KernelRcvbufErrors, r.KernelUDPInErrors)
		if r.Skipped+r.SendErrors > 0 {
			row("generator", "%d frames skipped (not real time; %d in the window), %d send errors", r.Skipped, r.WindowSkipped, r.SendErrors)
		}
	}
	if res.AudioHook.Requested > 0 {
		h := res.AudioHook
		fmt.Fprintf(w, "AudioHook\n")
		row("sessions opened / streaming / failed", "%d / %d of %d / %d", h.Opened, h.Streaming, h.Requested, h.Failed)
		for k, n := range h.FailReasons {
			row("  failed", "%d× %s", n, k)
		}
		row("dial → opened", "%s; %d over 1 s", h.OpenLatency, h.OpenedOver1s)
		row("CTI POST → resume", "%s", h.ResumeLatency)
		row("pongs / ping failures", "%d / %d", h.Pongs, h.PingFailures)
		row("protocol / close errors", "%d / %d", h.ProtocolErrors, h.CloseErrors)
		for _, e := range h.ErrorSample {
			row("  error", "%s", e)
		}
		row("frames/s (window)", "%.0f", h.FramesPerSec)
		if h.FramesSkipped > 0 {
			row("generator", "%d frames skipped (not real time)", h.FramesSkipped)
		}
		if h.Documents > 0 || res.Server.Recordings != "" {
			row("samples recorded / sent", "%d / %d per channel (%.1f %%), %d documents (%d completed)", h.SamplesRecorded, h.SamplesSent, pct(h.SamplesRecorded, h.SamplesSent), h.Documents, h.Completed)
			row("tone check", "%d of %d recordings", h.TonePassed, h.ToneChecked)
		}
	}
	s := res.Server
	fmt.Fprintf(w, "server\n")
	row("CPU", "%.2f cores; %s", s.CPUCores, perUnit(s.CPUMicrosPerPacket, s.CPUMicrosPerFrame))
	perCall := ""
	if s.KiBPerCall != 0 {
		perCall = fmt.Sprintf(" → %.0f KiB per call", s.KiBPerCall)
	} else if s.KiBPerSession != 0 {
		perCall = fmt.Sprintf(" → %.0f KiB per AudioHook session", s.KiBPerSession)
	}
	row("RSS", "before %d KiB, steady %d KiB, peak %d KiB%s", s.RSSBeforeKiB, s.RSSSteadyKiB, s.RSSPeakKiB, perCall)
	if !s.Attached {
		row("log", "%d warnings, %d errors", s.LogWarnings, s.LogErrors)
		for _, l := range s.LogSample {
			row("  ", "%s", l)
		}
	}
	if s.ExitError != "" {
		row("exit", "%s", s.ExitError)
	}
	gn := res.Generator
	fmt.Fprintf(w, "generator\n")
	row("CPU", "%.2f cores (user %.2f s, sys %.2f s); %.2f µs per packet sent; longest RTP tick %.1f ms", gn.CPUCores, gn.UserSeconds, gn.SysSeconds, gn.CPUMicrosPerPacket, gn.MaxTickMs)
	m := res.Machine
	fmt.Fprintf(w, "machine\n")
	row("CPU", "%d CPUs; in the window other processes used %.2f cores%s, kernel threads %.2f, interrupts %.2f (of %.2f busy per /proc/stat)",
		m.CPUs, m.OthersCores, othersWarning(m.OthersCores), m.KernelCores, m.IRQCores, m.BusyCores)
	if len(m.Busiest) > 0 {
		row("busiest others (cores)", "%s", strings.Join(m.Busiest, ", "))
	}
	w.Flush()
}

func othersWarning(c float64) string {
	if c >= 0.2 {
		return " (!): figures disturbed by other load"
	}
	return ""
}

func perUnit(pkt, frame float64) string {
	switch {
	case pkt > 0:
		return fmt.Sprintf("%.2f µs per RTP packet received", pkt)
	case frame > 0:
		return fmt.Sprintf("%.1f µs per AudioHook frame", frame)
	}
	return "no media in the window"
}

func pct(a, b int64) float64 {
	if b == 0 {
		return 0
	}
	return 100 * float64(a) / float64(b)
}

// printTables prints the markdown tables of earlier -json reports: SIPREC runs, then AudioHook-only runs.
func printTables(out io.Writer, files []string) error {
	if len(files) == 0 {
		return fmt.Errorf("table: give the -json files of the runs")
	}
	var sipRuns, hookRuns []*Result
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return err
		}
		var r Result
		if err := json.Unmarshal(b, &r); err != nil {
			return fmt.Errorf("%s: %w", f, err)
		}
		if r.Calls.Requested > 0 {
			sipRuns = append(sipRuns, &r)
		} else {
			hookRuns = append(hookRuns, &r)
		}
	}
	sort.SliceStable(sipRuns, func(i, j int) bool { return sipRuns[i].Calls.Requested < sipRuns[j].Calls.Requested })
	sort.SliceStable(hookRuns, func(i, j int) bool { return hookRuns[i].AudioHook.Requested < hookRuns[j].AudioHook.Requested })
	if len(sipRuns) > 0 {
		fmt.Fprintln(out, "| calls | set up | packets/s | server CPU µs/packet | server cores | loss | RSS KiB/call | activation p50 / p99 ms | setup rate calls/s | generator µs/packet | other load (cores) |")
		fmt.Fprintln(out, "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
		for _, r := range sipRuns {
			fmt.Fprintf(out, "| %d | %d | %.0f | %.2f | %.2f | %s | %.0f | %.1f / %.1f | %.0f | %.2f | %.2f |\n",
				r.Calls.Requested, r.Calls.SetUp, r.RTP.PacketsPerSec, r.Server.CPUMicrosPerPacket, r.Server.CPUCores,
				lossCell(r), r.Server.KiBPerCall, r.Calls.Activation.P50, r.Calls.Activation.P99, r.Calls.SetupRate,
				r.Generator.CPUMicrosPerPacket, r.Machine.OthersCores)
		}
	}
	if len(hookRuns) > 0 {
		if len(sipRuns) > 0 {
			fmt.Fprintln(out)
		}
		fmt.Fprintln(out, "| AudioHook sessions | streaming | frames/s | server CPU µs/frame | server cores | opened p50 / p99 / max ms | opened > 1 s | pongs | ping failures | samples recorded / sent | RSS KiB/session | other load (cores) |")
		fmt.Fprintln(out, "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
		for _, r := range hookRuns {
			h := r.AudioHook
			fmt.Fprintf(out, "| %d | %d | %.0f | %.1f | %.2f | %.1f / %.1f / %.1f | %d | %d | %d | %.1f %% | %.0f | %.2f |\n",
				h.Requested, h.Streaming, h.FramesPerSec, r.Server.CPUMicrosPerFrame, r.Server.CPUCores,
				h.OpenLatency.P50, h.OpenLatency.P99, h.OpenLatency.Max, h.OpenedOver1s, h.Pongs, h.PingFailures,
				pct(h.SamplesRecorded, h.SamplesSent), r.Server.KiBPerSession, r.Machine.OthersCores)
		}
	}
	return nil
}

func lossCell(r *Result) string {
	if r.RTP.Documents == 0 {
		return "n/a"
	}
	return fmt.Sprintf("%.3f %%", r.RTP.LossPct)
}
