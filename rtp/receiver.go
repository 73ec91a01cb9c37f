package rtp

import (
	"cmp"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"sync"
	"time"
)

// Config is the media side of the server.
type Config struct {
	BindAddress string `yaml:"bind_address"` // address RTP sockets bind to (default 127.0.0.1; 0.0.0.0 for all)
	PortMin     int    `yaml:"port_min"`     // first port of the RTP range (even)
	PortMax     int    `yaml:"port_max"`     // last port of the RTP range
	// Reader is how sockets are read: "sweep" (Linux: non-blocking sockets drained with recvmmsg every
	// sweep_interval by one goroutine per CPU) or "socket" (a goroutine blocked on each socket).
	Reader        string        `yaml:"reader"`
	SweepInterval time.Duration `yaml:"sweep_interval"` // below the recorder's lag; 10 packets per stream at 200 ms
	// The sweep reader asks the kernel for receive timestamps, which RFC 3550 jitter needs, on each socket for
	// TimestampWindow of every TimestampEvery (from when it is opened): jitter is sampled, because stamping
	// every packet costs about 5 % of the media path. Equal durations stamp every packet.
	TimestampWindow time.Duration `yaml:"timestamp_window"`
	TimestampEvery  time.Duration `yaml:"timestamp_every"`
	// EstimateArrivals makes the sweep reader never ask for receive timestamps and estimate each packet's
	// arrival from its RTP timestamp: jitter (and the jitter part of the MOS estimate) is then not measured.
	EstimateArrivals bool `yaml:"estimate_arrivals"`
}

// DefaultConfig is the embedded default: loopback, ports 20000-29999, swept every 100 ms where possible.
func DefaultConfig() Config {
	return Config{BindAddress: "127.0.0.1", PortMin: 20000, PortMax: 29999, Reader: defaultReader, SweepInterval: 100 * time.Millisecond,
		TimestampWindow: time.Second, TimestampEvery: 10 * time.Second}
}

// Validate reports every problem at once.
func (c Config) Validate() error {
	var errs []error
	if _, err := netip.ParseAddr(c.BindAddress); err != nil {
		errs = append(errs, fmt.Errorf("rtp.bind_address %q: %w", c.BindAddress, err))
	}
	if c.PortMin < 1024 || c.PortMax > 65535 || c.PortMax-c.PortMin < 3 {
		errs = append(errs, fmt.Errorf("rtp.port_min/port_max %d-%d: want 1024 <= port_min, port_min+3 <= port_max <= 65535", c.PortMin, c.PortMax))
	}
	switch cmp.Or(c.Reader, defaultReader) { // zero values mean the defaults
	case "socket":
	case "sweep":
		if !sweepSupported {
			errs = append(errs, errors.New("rtp.reader: sweep needs Linux; use socket"))
		}
		if c.SweepInterval != 0 && (c.SweepInterval < time.Millisecond || c.SweepInterval > time.Second) {
			errs = append(errs, fmt.Errorf("rtp.sweep_interval %v: want 1ms-1s", c.SweepInterval))
		}
		if c.TimestampWindow < 0 || c.TimestampWindow > c.TimestampEvery || (c.TimestampWindow == 0) != (c.TimestampEvery == 0) {
			errs = append(errs, fmt.Errorf("rtp.timestamp_window %v, timestamp_every %v: want 0 < timestamp_window <= timestamp_every",
				c.TimestampWindow, c.TimestampEvery))
		}
	default:
		errs = append(errs, fmt.Errorf("rtp.reader %q: want sweep or socket", c.Reader))
	}
	return errors.Join(errs...)
}

// Receiver binds RTP sockets for sessions and feeds what arrives into their streams.
type Receiver struct {
	cfg   Config
	bind  netip.Addr
	ports *PortAllocator
	log   *slog.Logger
	now   func() time.Time
	// realClock: now is time.Now, so the kernel's receive timestamps (CLOCK_REALTIME) are on the arrival clock
	// and the sweep reader uses them; with another clock (WithClock, tests) it estimates arrivals instead.
	realClock bool
	sweep     *sweepReader // nil: a goroutine per socket

	totals streamTotals
}

// ReceiverOption configures a Receiver.
type ReceiverOption func(*Receiver)

// WithClock replaces time.Now as the arrival clock (tests). The sweep reader then estimates arrivals from
// the time of its sweep instead of taking the kernel's receive timestamps, which are on the real clock.
func WithClock(now func() time.Time) ReceiverOption { return func(r *Receiver) { r.now = now } }

// WithLogger sets the logger.
func WithLogger(l *slog.Logger) ReceiverOption { return func(r *Receiver) { r.log = l } }

// NewReceiver checks the config and sets up the port range.
func NewReceiver(cfg Config, opts ...ReceiverOption) (*Receiver, error) {
	if cfg.Reader == "" {
		cfg.Reader = defaultReader
	}
	if cfg.SweepInterval == 0 {
		cfg.SweepInterval = DefaultConfig().SweepInterval
	}
	if cfg.TimestampWindow == 0 && cfg.TimestampEvery == 0 {
		cfg.TimestampWindow, cfg.TimestampEvery = DefaultConfig().TimestampWindow, DefaultConfig().TimestampEvery
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	ports, err := NewPortAllocator(cfg.PortMin, cfg.PortMax)
	if err != nil {
		return nil, err
	}
	r := &Receiver{cfg: cfg, bind: netip.MustParseAddr(cfg.BindAddress), ports: ports, log: slog.Default()}
	r.totals.r = r
	for _, o := range opts {
		o(r)
	}
	if r.now == nil {
		r.now, r.realClock = time.Now, true
	}
	if cfg.Reader == "sweep" {
		r.sweep = newSweepReader(r, cfg.SweepInterval, runtime.GOMAXPROCS(0))
	}
	return r, nil
}

// BindAddress is the address RTP sockets are bound to.
func (r *Receiver) BindAddress() netip.Addr { return r.bind }

// Ports exposes the allocator (for readiness and leak checks).
func (r *Receiver) Ports() *PortAllocator { return r.ports }

// Open binds len(streams) consecutive even ports (and the RTCP port after each) and starts reading them.
func (r *Receiver) Open(streams []*Stream) (*Media, error) {
	var run boundRun
	var bindErr error
	ports, err := r.ports.allocate(len(streams), func(start, n int) bool {
		// The bookkeeping says the run is free; another process may still hold a port. Bind now and veto the run
		// on failure, so the allocator moves on to the next one.
		var err error
		if r.sweep != nil {
			run, err = r.sweep.bindRun(r.bind, start, n)
		} else {
			run, err = r.bindSocketRun(start, n)
		}
		if err != nil {
			bindErr = err
			return true
		}
		return false
	})
	if err != nil {
		if bindErr != nil {
			err = fmt.Errorf("%w (last bind error: %v)", err, bindErr)
		}
		return nil, err
	}
	for _, s := range streams {
		s.setClock(r.now)
	}
	run.start(streams)
	r.totals.opened(streams)
	streams = slices.Clone(streams)
	return &Media{ports: ports, run: run, release: func() {
		r.totals.closed(streams) // after the last packets were taken in
		r.ports.Release(ports)
	}}, nil
}

// boundRun is one session's bound sockets, read by one of the readers.
type boundRun interface {
	start(streams []*Stream) // start reading: packets of socket i go to streams[i]
	close()                  // stop reading, keep what was received, close the sockets
}

// socketRun reads each RTP socket with a goroutine of its own: the portable reader.
type socketRun struct {
	r         *Receiver
	rtp, rtcp []*net.UDPConn
	wg        sync.WaitGroup
}

// bindSocketRun binds RTP sockets start, start+2, … followed by their RTCP sockets; all or nothing.
func (r *Receiver) bindSocketRun(start, n int) (boundRun, error) {
	rtp, rtcp, err := bindPorts(start, n, func(port int) (*net.UDPConn, error) {
		return net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(r.bind, uint16(port))))
	}, func(c *net.UDPConn) { c.Close() })
	if err != nil {
		return nil, err
	}
	return &socketRun{r: r, rtp: rtp, rtcp: rtcp}, nil
}

// bindPorts binds a run's RTP ports start, start+2, … and then their RTCP ports start+1, …; on any failure
// it closes what it bound.
func bindPorts[S any](start, n int, bind func(port int) (S, error), closeSocket func(S)) (rtp, rtcp []S, err error) {
	for _, odd := range []int{0, 1} {
		for i := range n {
			sock, err := bind(start + 2*i + odd)
			if err != nil {
				for _, s := range append(rtp, rtcp...) {
					closeSocket(s)
				}
				return nil, nil, err
			}
			if odd == 0 {
				rtp = append(rtp, sock)
			} else {
				rtcp = append(rtcp, sock)
			}
		}
	}
	return rtp, rtcp, nil
}

func (run *socketRun) start(streams []*Stream) {
	for i, c := range run.rtp {
		run.wg.Add(1)
		go run.read(c, streams[i])
	}
}

func (run *socketRun) close() {
	run.closeConns()
	run.wg.Wait()
}

func (run *socketRun) closeConns() {
	for _, c := range append(run.rtp, run.rtcp...) {
		c.Close()
	}
}

// read feeds one socket's packets to its stream until the socket is closed. RTP is accepted from any source
// address: SBCs behind NAT and sipp's pcap player send from ports other than the ones in their SDP.
func (run *socketRun) read(c *net.UDPConn, s *Stream) {
	defer run.wg.Done()
	buf := make([]byte, 1500)
	for {
		n, _, err := c.ReadFromUDPAddrPort(buf)
		if err != nil {
			if !errors.Is(err, net.ErrClosed) {
				run.r.log.Warn("rtp read failed", "port", c.LocalAddr().String(), "error", err)
			}
			return
		}
		run.r.handle(s, buf[:n], run.r.now(), true)
	}
}

// handle feeds one packet to its stream. A panic there is a bug, but it must cost one packet, not the
// process and every call it records: it is logged with the packet and the reader goes on.
func (r *Receiver) handle(s *Stream, pkt []byte, arrival time.Time, measured bool) {
	defer func() {
		if p := recover(); p != nil {
			r.log.Error("rtp packet handler panicked; packet dropped", "panic", p, "packet", fmt.Sprintf("%x", pkt), "stack", string(debug.Stack()))
		}
	}()
	s.handlePacket(pkt, arrival, measured)
}

// Media is the bound sockets of one session. RTCP sockets are bound so the SRC's RTCP is accepted by the
// kernel rather than answered with ICMP port-unreachable; it is not read yet.
type Media struct {
	ports     []int
	run       boundRun
	release   func()
	closeOnce sync.Once
}

// Ports are the RTP ports, one per stream, in stream order.
func (m *Media) Ports() []int { return m.ports }

// Port returns stream i's RTP port as a string for SDP.
func (m *Media) Port(i int) string { return strconv.Itoa(m.ports[i]) }

// Close stops reading (after taking in what the sockets still hold), closes the sockets and frees the
// ports. Safe to call twice.
func (m *Media) Close() {
	m.closeOnce.Do(func() {
		m.run.close()
		m.release()
	})
}
