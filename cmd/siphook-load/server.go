//go:build linux

package main

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// target is the server under test: started here, or attached to.
type target struct {
	pid          int
	sipAddr      string // host:port, UDP and TCP
	webhookURL   string // base URL of the CTI webhook
	webhookToken string
	hookURL      string // ws://…/audiohook
	hookKey      string
	hookSecret   []byte
	recordings   string // "" when unknown (attach without -recordings)
	logPath      string // the server's stderr, when started here
	stop         func(ctx context.Context) error
}

// moduleRoot finds the siphook module's root from the working directory upwards.
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		b, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && bytes.Contains(b, []byte("module github.com/siphook/siphook\n")) {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("not inside the siphook module (no go.mod of github.com/siphook/siphook above the working directory)")
		}
		dir = parent
	}
}

// buildServer builds cmd/siphook into dir.
func buildServer(root, dir string) (string, error) {
	bin := filepath.Join(dir, "siphook")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/siphook")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ./cmd/siphook: %v\n%s", err, out)
	}
	return bin, nil
}

// freePort finds a loopback port free for both UDP and TCP.
func freePort(ip string) (int, error) {
	for range 100 {
		pc, err := net.ListenPacket("udp", net.JoinHostPort(ip, "0"))
		if err != nil {
			return 0, err
		}
		port := pc.LocalAddr().(*net.UDPAddr).Port
		l, err := net.Listen("tcp", net.JoinHostPort(ip, strconv.Itoa(port)))
		pc.Close()
		if err == nil {
			l.Close()
			return port, nil
		}
	}
	return 0, errors.New("no free port")
}

func randomToken(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// startServer writes a configuration into dir and runs the server binary with it: SIPREC activation
// on-match, the CTI webhook with a bearer token, AudioHook with an API key and client secret (also on-match),
// the given RTP port range, recordings under dir, log level warn.
func startServer(bin, dir, ip, rtpPorts string) (*target, error) {
	lo, hi, ok := strings.Cut(rtpPorts, "-")
	pmin, err1 := strconv.Atoi(lo)
	pmax, err2 := strconv.Atoi(hi)
	if !ok || err1 != nil || err2 != nil {
		return nil, fmt.Errorf("-rtp-ports %q: want MIN-MAX", rtpPorts)
	}
	var ports [3]int
	for i := range ports {
		p, err := freePort(ip)
		if err != nil {
			return nil, err
		}
		ports[i] = p
	}
	secret := make([]byte, 32)
	rand.Read(secret)
	t := &target{
		sipAddr:      net.JoinHostPort(ip, strconv.Itoa(ports[0])),
		webhookURL:   "http://" + net.JoinHostPort(ip, strconv.Itoa(ports[1])),
		webhookToken: randomToken(24),
		hookURL:      "ws://" + net.JoinHostPort(ip, strconv.Itoa(ports[2])) + "/audiohook",
		hookKey:      randomToken(18),
		hookSecret:   secret,
		recordings:   filepath.Join(dir, "recordings"),
		logPath:      filepath.Join(dir, "siphook.log"),
	}
	config := fmt.Sprintf(`# written by siphook-load
log: {level: warn, format: text}
sip:
  listen: %q
  transports: [udp, tcp]
  activation: on-match
rtp:
  bind_address: %q
  port_min: %d
  port_max: %d
recorder:
  dir: %q
audiohook:
  listen: %q
  path: /audiohook
  api_key: %q
  client_secret: %q
  activation: on-match
webhook:
  listen: %q
  token: %q
`, t.sipAddr, ip, pmin, pmax, t.recordings, net.JoinHostPort(ip, strconv.Itoa(ports[2])), t.hookKey,
		base64.StdEncoding.EncodeToString(secret), net.JoinHostPort(ip, strconv.Itoa(ports[1])), t.webhookToken)
	cfgPath := filepath.Join(dir, "siphook.yaml")
	if err := os.WriteFile(cfgPath, []byte(config), 0o600); err != nil {
		return nil, err
	}
	logf, err := os.Create(t.logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, "serve", "-config", cfgPath)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL} // never outlive the generator
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	t.pid = cmd.Process.Pid
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait(); logf.Close() }()
	t.stop = func(ctx context.Context) error {
		cmd.Process.Signal(syscall.SIGINT) // every call has ended: no drain wanted
		select {
		case err := <-exited:
			return err
		case <-ctx.Done():
			cmd.Process.Kill()
			<-exited
			return fmt.Errorf("server did not stop in time: killed")
		}
	}
	// Ready when every listener accepts a TCP connection.
	deadline := time.Now().Add(20 * time.Second)
	for _, addr := range []string{t.sipAddr, net.JoinHostPort(ip, strconv.Itoa(ports[1])), net.JoinHostPort(ip, strconv.Itoa(ports[2]))} {
		for {
			c, err := net.DialTimeout("tcp", addr, time.Second)
			if err == nil {
				c.Close()
				break
			}
			select {
			case err := <-exited:
				log, _ := os.ReadFile(t.logPath)
				return nil, fmt.Errorf("server exited at start (%v):\n%s", err, log)
			default:
			}
			if time.Now().After(deadline) {
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				t.stop(ctx)
				cancel()
				return nil, fmt.Errorf("server not listening on %s after 20 s", addr)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	return t, nil
}

// procCPU is a process's utime+stime from /proc/PID/stat.
func procCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, err
	}
	// The command name is in parentheses and may hold spaces: fields count from after the last ')'.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, errors.New("malformed /proc stat")
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0, errors.New("malformed /proc stat")
	}
	// After the name: state(3) ... utime is field 14, stime 15 of the full line: index 11 and 12 here.
	ut, err1 := strconv.ParseUint(f[11], 10, 64)
	st, err2 := strconv.ParseUint(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, errors.New("malformed /proc stat")
	}
	return time.Duration(ut+st) * time.Second / clockTicks, nil
}

// clockTicks is USER_HZ, which Linux fixes at 100 for /proc on every architecture Go supports.
const clockTicks = 100

// procStatus reads VmRSS and VmHWM (KiB) from /proc/PID/status.
func procStatus(pid int) (rss, hwm int64, err error) {
	f, err := os.Open("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		switch k {
		case "VmRSS":
			rss = n
		case "VmHWM":
			hwm = n
		}
	}
	return rss, hwm, sc.Err()
}

// selfCPU is the generator's own user and system CPU time.
func selfCPU() (user, sys time.Duration) {
	var ru unix.Rusage
	if unix.Getrusage(unix.RUSAGE_SELF, &ru) != nil {
		return 0, 0
	}
	return time.Duration(ru.Utime.Nano()), time.Duration(ru.Stime.Nano())
}

// udpErrors reads the kernel's UDP RcvbufErrors and InErrors (all sockets of the machine) from
// /proc/net/snmp: datagrams dropped because a socket's receive buffer was full.
func udpErrors() (rcvbuf, inErrors uint64) {
	b, err := os.ReadFile("/proc/net/snmp")
	if err != nil {
		return 0, 0
	}
	var names []string
	for line := range strings.Lines(string(b)) {
		if !strings.HasPrefix(line, "Udp: ") {
			continue
		}
		f := strings.Fields(line[len("Udp: "):])
		if names == nil {
			names = f
			continue
		}
		for i, n := range names {
			if i >= len(f) {
				break
			}
			v, _ := strconv.ParseUint(f[i], 10, 64)
			switch n {
			case "RcvbufErrors":
				rcvbuf = v
			case "InErrors":
				inErrors = v
			}
		}
		break
	}
	return rcvbuf, inErrors
}

// serverLogSummary counts the server's WARN and ERROR lines and keeps the first few of each distinct
// message.
func serverLogSummary(path string) (warnings, errorsN int, sample []string) {
	f, err := os.Open(path)
	if err != nil {
		return 0, 0, nil
	}
	defer f.Close()
	seen := map[string]int{}
	var order []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.Contains(line, "level=WARN"):
			warnings++
		case strings.Contains(line, "level=ERROR"):
			errorsN++
		case strings.HasPrefix(line, "panic:") || strings.HasPrefix(line, "fatal error:"):
			errorsN++
		default:
			continue
		}
		key := line
		if i := strings.Index(line, "msg="); i >= 0 {
			// Group by message, and error when there is one: text-handler values are quoted when they
			// hold spaces.
			key = "msg=" + slogValue(line[i+4:])
			if j := strings.Index(line, " error="); j >= 0 {
				key += " error=" + slogValue(line[j+7:])
			}
		}
		if len(key) > 160 {
			key = key[:160] + "…"
		}
		if seen[key] == 0 {
			order = append(order, key)
		}
		seen[key]++
	}
	for _, k := range order {
		if len(sample) == 8 {
			break
		}
		sample = append(sample, fmt.Sprintf("%d× %s", seen[k], k))
	}
	return warnings, errorsN, sample
}

// machineCPU is the whole machine's busy CPU time from /proc/stat (all cores; busy excludes idle and
// iowait) and the part of it spent in interrupts (irq, softirq: not charged to any process), to tell how much
// of the machine other processes used during a window.
func machineCPU() (busy, irq time.Duration) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 5 || f[0] != "cpu" {
		return 0, 0
	}
	var sum, idle, intr uint64
	for i, v := range f[1:] {
		n, _ := strconv.ParseUint(v, 10, 64)
		if i >= 8 { // guest and guest_nice are already counted in user and nice
			break
		}
		sum += n
		switch i {
		case 3, 4: // idle, iowait
			idle += n
		case 5, 6: // irq, softirq
			intr += n
		}
	}
	tick := time.Second / clockTicks
	return time.Duration(sum-idle) * tick, time.Duration(intr) * tick
}

// procTimes is every process's utime+stime (clock ticks) and name, from /proc/*/stat.
func procTimes() map[int]procTime {
	out := map[int]procTime{}
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return out
	}
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		open, close := bytes.IndexByte(b, '('), bytes.LastIndexByte(b, ')')
		if open < 0 || close < open {
			continue
		}
		f := strings.Fields(string(b[close+1:]))
		if len(f) < 13 {
			continue
		}
		ut, _ := strconv.ParseUint(f[11], 10, 64)
		st, _ := strconv.ParseUint(f[12], 10, 64)
		ppid, _ := strconv.Atoi(f[1])
		out[pid] = procTime{name: string(b[open+1 : close]), ticks: ut + st, kernel: pid == 2 || ppid == 2}
	}
	return out
}

type procTime struct {
	name   string
	ticks  uint64
	kernel bool // a kernel thread (child of kthreadd)
}

// busiestOthers sums the CPU (in cores over d) that user-space processes other than skip, and kernel threads,
// used between two procTimes snapshots, and names the busiest. Per-process times are exact (the scheduler's
// runtime), unlike /proc/stat's tick samples, which miss short bursts on a tickless idle CPU. Kernel threads
// (kworkers, ksoftirqd) partly work for the load itself: writeback of the recordings, deferred network
// receive, freeing sockets.
func busiestOthers(before, after map[int]procTime, d time.Duration, skip ...int) (others, kernel float64, busiest []string) {
	type use struct {
		name  string
		pid   int
		cores float64
	}
	var uses []use
	for pid, a := range after {
		if slices.Contains(skip, pid) {
			continue
		}
		b := before[pid] // a process started in the window counts from zero
		if b.name != a.name {
			b.ticks = 0
		}
		if a.ticks <= b.ticks {
			continue
		}
		u := use{a.name, pid, (time.Duration(a.ticks-b.ticks) * time.Second / clockTicks).Seconds() / d.Seconds()}
		uses = append(uses, u)
		if a.kernel {
			kernel += u.cores
		} else {
			others += u.cores
		}
	}
	slices.SortFunc(uses, func(x, y use) int { return cmp.Compare(y.cores, x.cores) })
	for _, u := range uses {
		if len(busiest) == 4 || u.cores < 0.02 {
			break
		}
		busiest = append(busiest, fmt.Sprintf("%s[%d] %.2f", u.name, u.pid, u.cores))
	}
	return others, kernel, busiest
}

// slogValue is the value at the start of s as slog's text handler writes it: a quoted string or up to the
// next space.
func slogValue(s string) string {
	if strings.HasPrefix(s, `"`) {
		if q, err := strconv.QuotedPrefix(s); err == nil {
			return q
		}
	}
	v, _, _ := strings.Cut(s, " ")
	return v
}
