package rtp

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"runtime/debug"
	"strconv"
	"sync"
	"time"
)

// Config is the media side of the server.
type Config struct {
	BindAddress string `yaml:"bind_address"` // address RTP sockets bind to (default 127.0.0.1; 0.0.0.0 for all)
	PortMin     int    `yaml:"port_min"`     // first port of the RTP range (even)
	PortMax     int    `yaml:"port_max"`     // last port of the RTP range
}

// DefaultConfig is the embedded default: loopback, ports 20000-29999.
func DefaultConfig() Config {
	return Config{BindAddress: "127.0.0.1", PortMin: 20000, PortMax: 29999}
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
	return errors.Join(errs...)
}

// Receiver binds RTP sockets for sessions and feeds what arrives into their streams.
type Receiver struct {
	cfg   Config
	bind  netip.Addr
	ports *PortAllocator
	log   *slog.Logger
	now   func() time.Time
}

// ReceiverOption configures a Receiver.
type ReceiverOption func(*Receiver)

// WithClock replaces time.Now as the arrival clock (tests).
func WithClock(now func() time.Time) ReceiverOption { return func(r *Receiver) { r.now = now } }

// WithLogger sets the logger.
func WithLogger(l *slog.Logger) ReceiverOption { return func(r *Receiver) { r.log = l } }

// NewReceiver checks the config and sets up the port range.
func NewReceiver(cfg Config, opts ...ReceiverOption) (*Receiver, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	ports, err := NewPortAllocator(cfg.PortMin, cfg.PortMax)
	if err != nil {
		return nil, err
	}
	r := &Receiver{cfg: cfg, bind: netip.MustParseAddr(cfg.BindAddress), ports: ports, log: slog.Default(), now: time.Now}
	for _, o := range opts {
		o(r)
	}
	return r, nil
}

// BindAddress is the address RTP sockets are bound to.
func (r *Receiver) BindAddress() netip.Addr { return r.bind }

// Ports exposes the allocator (for readiness and leak checks).
func (r *Receiver) Ports() *PortAllocator { return r.ports }

// Open binds len(streams) consecutive even ports (and the RTCP port after each) and starts reading them.
func (r *Receiver) Open(streams []*Stream) (*Media, error) {
	m := &Media{streams: streams}
	var bindErr error
	ports, err := r.ports.allocate(len(streams), func(start, n int) bool {
		// The bookkeeping says the run is free; another process may still hold a port. Bind now and veto the run
		// on failure, so the allocator moves on to the next one.
		conns, err := r.bindRun(start, n)
		if err != nil {
			bindErr = err
			return true
		}
		m.rtp, m.rtcp = conns[:n], conns[n:]
		return false
	})
	if err != nil {
		if bindErr != nil {
			err = fmt.Errorf("%w (last bind error: %v)", err, bindErr)
		}
		return nil, err
	}
	m.ports, m.release = ports, func() { r.ports.Release(ports) }
	for i, c := range m.rtp {
		m.wg.Add(1)
		go r.read(c, streams[i], &m.wg)
	}
	return m, nil
}

// bindRun binds RTP sockets start, start+2, … followed by their RTCP sockets; all or nothing.
func (r *Receiver) bindRun(start, n int) ([]*net.UDPConn, error) {
	conns := make([]*net.UDPConn, 0, 2*n)
	for _, odd := range []int{0, 1} {
		for i := range n {
			c, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(r.bind, uint16(start+2*i+odd))))
			if err != nil {
				for _, c := range conns {
					c.Close()
				}
				return nil, err
			}
			conns = append(conns, c)
		}
	}
	return conns, nil
}

// read feeds one socket's packets to its stream until the socket is closed. RTP is accepted from any source
// address: SBCs behind NAT and sipp's pcap player send from ports other than the ones in their SDP.
func (r *Receiver) read(c *net.UDPConn, s *Stream, wg *sync.WaitGroup) {
	defer wg.Done()
	buf := make([]byte, 1500)
	for {
		n, _, err := c.ReadFromUDPAddrPort(buf)
		if err != nil {
			if !errors.Is(err, net.ErrClosed) {
				r.log.Warn("rtp read failed", "port", c.LocalAddr().String(), "error", err)
			}
			return
		}
		r.handle(s, buf[:n])
	}
}

// handle feeds one packet to its stream. A panic there is a bug, but it must cost one packet, not the
// process and every call it records: it is logged with the packet and the reader goes on.
func (r *Receiver) handle(s *Stream, pkt []byte) {
	defer func() {
		if p := recover(); p != nil {
			r.log.Error("rtp packet handler panicked; packet dropped", "panic", p, "packet", fmt.Sprintf("%x", pkt), "stack", string(debug.Stack()))
		}
	}()
	s.HandlePacket(pkt, r.now())
}

// Media is the bound sockets of one session. RTCP sockets are bound so the SRC's RTCP is accepted by the
// kernel rather than answered with ICMP port-unreachable; it is not read yet.
type Media struct {
	streams   []*Stream
	ports     []int
	rtp, rtcp []*net.UDPConn
	wg        sync.WaitGroup
	release   func()
	closeOnce sync.Once
}

// Ports are the RTP ports, one per stream, in stream order.
func (m *Media) Ports() []int { return m.ports }

// Port returns stream i's RTP port as a string for SDP.
func (m *Media) Port(i int) string { return strconv.Itoa(m.ports[i]) }

// Close closes the sockets, waits for their readers to stop and frees the ports. Safe to call twice.
func (m *Media) Close() {
	m.closeOnce.Do(func() {
		for _, c := range m.rtp {
			c.Close()
		}
		for _, c := range m.rtcp {
			c.Close()
		}
		m.wg.Wait()
		m.release()
	})
}
