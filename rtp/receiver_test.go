package rtp

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// Private port ranges for the receiver tests, away from the default 20000-29999 used by other packages' tests.
const (
	recvPortMin = 47000
	recvPortMax = 47099
)

// waitFor polls cond until it holds, failing the test if it does not within a generous deadline. It never
// asserts how long anything took.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// testReader is the reader newTestReceiver builds receivers with; forEachReader runs a test with each.
var testReader string

func forEachReader(t *testing.T, test func(t *testing.T)) {
	readers := []string{"socket"}
	if sweepSupported {
		readers = append(readers, "sweep")
	}
	for _, reader := range readers {
		t.Run(reader, func(t *testing.T) {
			testReader = reader
			defer func() { testReader = "" }()
			test(t)
		})
	}
}

func newTestReceiver(t *testing.T, min, max int, opts ...ReceiverOption) *Receiver {
	t.Helper()
	opts = append([]ReceiverOption{WithLogger(slog.New(slog.DiscardHandler))}, opts...)
	r, err := NewReceiver(Config{BindAddress: "127.0.0.1", PortMin: min, PortMax: max, Reader: testReader, SweepInterval: 5 * time.Millisecond}, opts...)
	if err != nil {
		t.Fatalf("NewReceiver: %v", err)
	}
	return r
}

// newStreams makes n recording streams (each with its own sink).
func newStreams(n int) []*Stream {
	s := make([]*Stream, n)
	for i := range s {
		s[i] = NewStream(nil)
		s[i].SetSink(newFakeSink(0))
	}
	return s
}

// holdUDP binds 127.0.0.1:port for the duration of the test, standing in for another process.
func holdUDP(t *testing.T, port int) {
	t.Helper()
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: port})
	if errors.Is(err, syscall.EADDRINUSE) {
		// Another test process (sipp in cmd/siphook picks ephemeral ports) holds it: busy all the same.
		t.Logf("port %d already held by another process", port)
		return
	}
	if err != nil {
		t.Fatalf("binding %d ourselves: %v", port, err)
	}
	t.Cleanup(func() { c.Close() })
}

// canBind reports whether 127.0.0.1:port is free, releasing it again at once.
func canBind(port int) bool {
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: port})
	if err != nil {
		return false
	}
	c.Close()
	return true
}

// sendUntilReceived sends RTP to port from an ephemeral source port until the stream has counted a packet.
func sendUntilReceived(t *testing.T, port int, s *Stream, ssrc uint32) {
	t.Helper()
	conn, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(port))))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if src := conn.LocalAddr().(*net.UDPAddr).Port; src == port || src == port+1 {
		t.Fatalf("source port %d is not arbitrary", src)
	}
	seq := uint16(0)
	waitFor(t, fmt.Sprintf("RTP on port %d to reach its stream", port), func() bool {
		if s.Stats().Received > 0 {
			return true
		}
		seq++
		if _, err := conn.Write(rtpBytes(0, seq, 160*uint32(seq), ssrc, make([]byte, 160))); err != nil {
			t.Fatalf("send to %d: %v", port, err)
		}
		return false
	})
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name    string
		cfg     Config
		wantErr []string // substrings of the error; nil: valid
	}{
		{"default", DefaultConfig(), nil},
		{"all interfaces", Config{BindAddress: "0.0.0.0", PortMin: 10000, PortMax: 10003}, nil},
		{"IPv6 loopback", Config{BindAddress: "::1", PortMin: 1024, PortMax: 65535}, nil},
		{"odd min", Config{BindAddress: "127.0.0.1", PortMin: 1025, PortMax: 1028}, nil},
		{"empty bind address", Config{PortMin: 20000, PortMax: 29999}, []string{"rtp.bind_address"}},
		{"host name as bind address", Config{BindAddress: "localhost", PortMin: 20000, PortMax: 29999}, []string{"rtp.bind_address", `"localhost"`}},
		{"address with port", Config{BindAddress: "127.0.0.1:5060", PortMin: 20000, PortMax: 29999}, []string{"rtp.bind_address"}},
		{"min below 1024", Config{BindAddress: "127.0.0.1", PortMin: 1023, PortMax: 2000}, []string{"rtp.port_min/port_max", "1023-2000"}},
		{"max above 65535", Config{BindAddress: "127.0.0.1", PortMin: 20000, PortMax: 65536}, []string{"rtp.port_min/port_max"}},
		{"range under four ports", Config{BindAddress: "127.0.0.1", PortMin: 20000, PortMax: 20002}, []string{"rtp.port_min/port_max"}},
		{"inverted range", Config{BindAddress: "127.0.0.1", PortMin: 29999, PortMax: 20000}, []string{"rtp.port_min/port_max"}},
		{"timestamps always", Config{BindAddress: "127.0.0.1", PortMin: 20000, PortMax: 29999, TimestampWindow: time.Second, TimestampEvery: time.Second}, nil},
		{"timestamp window longer than its period", Config{BindAddress: "127.0.0.1", PortMin: 20000, PortMax: 29999,
			TimestampWindow: 3 * time.Second, TimestampEvery: time.Second}, []string{"rtp.timestamp_window"}},
		{"timestamp window without a period", Config{BindAddress: "127.0.0.1", PortMin: 20000, PortMax: 29999,
			TimestampWindow: time.Second}, []string{"rtp.timestamp_window"}},
		{"zero value", Config{}, []string{"rtp.bind_address", "rtp.port_min/port_max"}},
		{"every problem at once", Config{BindAddress: "nope", PortMin: 80, PortMax: 70000}, []string{"rtp.bind_address", "rtp.port_min/port_max"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			if tt.wantErr == nil {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validate() = nil, want an error mentioning %q", tt.wantErr)
			}
			for _, w := range tt.wantErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Validate() = %q, want it to mention %q", err, w)
				}
			}
			if _, nerr := NewReceiver(tt.cfg); nerr == nil {
				t.Errorf("NewReceiver accepted a config Validate rejects")
			}
		})
	}
}

func TestNewReceiver(t *testing.T) {
	r := newTestReceiver(t, 47001, 47010) // odd min: pairs 47002 … 47008
	if got := r.BindAddress(); got != netip.MustParseAddr("127.0.0.1") {
		t.Errorf("BindAddress() = %v", got)
	}
	if got := r.Ports().Size(); got != 4 {
		t.Errorf("Ports().Size() = %d, want 4", got)
	}
}

func TestReceiverOpen(t *testing.T) { forEachReader(t, testReceiverOpen) }

func testReceiverOpen(t *testing.T) {
	tests := []struct {
		name    string
		streams int
	}{
		{"one stream", 1},
		{"SIPREC pair", 2},
		{"four streams", 4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			baseline := runtime.NumGoroutine()
			arrival := baseTime.Add(3 * time.Second)
			r := newTestReceiver(t, recvPortMin, recvPortMax, WithClock(func() time.Time { return arrival }))
			streams := newStreams(tt.streams)
			sinks := make([]*fakeSink, tt.streams)
			for i, s := range streams {
				sinks[i] = newFakeSink(int64(1000 * i))
				s.SetSink(sinks[i])
			}
			m, err := r.Open(streams)
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			defer m.Close()

			ports := m.Ports()
			if len(ports) != tt.streams {
				t.Fatalf("Ports() = %v, want %d ports", ports, tt.streams)
			}
			for i, p := range ports {
				if p%2 != 0 || p < recvPortMin || p+1 > recvPortMax {
					t.Errorf("port %d: odd or outside %d-%d", p, recvPortMin, recvPortMax)
				}
				if i > 0 && p != ports[i-1]+2 {
					t.Errorf("ports %v are not consecutive even ports", ports)
				}
				if m.Port(i) != strconv.Itoa(p) {
					t.Errorf("Port(%d) = %q, want %q", i, m.Port(i), strconv.Itoa(p))
				}
				if canBind(p) || canBind(p+1) {
					t.Errorf("port %d or its RTCP port %d is not bound", p, p+1)
				}
			}
			if got, want := r.Ports().Free(), r.Ports().Size()-tt.streams; got != want {
				t.Errorf("Ports().Free() = %d while open, want %d", got, want)
			}

			for i, s := range streams {
				sendUntilReceived(t, ports[i], s, uint32(0x1000+i))
			}
			for i, s := range streams {
				// Each stream got its own port's packets, placed with the injected clock.
				w := sinks[i].Writes()
				if len(w) == 0 || w[0].pos != sinks[i].SamplePosition(arrival) {
					t.Errorf("stream %d: writes %d, first at %v; want the first at %d", i, len(w), w, sinks[i].SamplePosition(arrival))
				}
				if st := s.Stats(); st.Dropped != 0 || st.Jumps != 0 {
					t.Errorf("stream %d: Stats() = %+v", i, st)
				}
			}

			m.Close()
			m.Close() // twice is safe
			if got := r.Ports().Free(); got != r.Ports().Size() {
				t.Errorf("Ports().Free() = %d after Close, want %d", got, r.Ports().Size())
			}
			for _, p := range ports {
				if !canBind(p) || !canBind(p+1) {
					t.Errorf("port %d or %d still bound after Close", p, p+1)
				}
			}
			waitFor(t, "reader goroutines to exit", func() bool { return runtime.NumGoroutine() <= baseline })
		})
	}
}

func TestReceiverSkipsBusyPort(t *testing.T) { forEachReader(t, testReceiverSkipsBusyPort) }

func testReceiverSkipsBusyPort(t *testing.T) {
	tests := []struct {
		name    string
		min     int
		streams int
		busy    []int // ports held by "another process"
	}{
		{"RTP port of the first run", 47100, 1, []int{47100}},
		{"RTCP port of the first run", 47110, 1, []int{47111}},
		{"second port of a two-stream run", 47120, 2, []int{47122}},
		{"several runs", 47130, 2, []int{47130, 47135}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, p := range tt.busy {
				holdUDP(t, p)
			}
			r := newTestReceiver(t, tt.min, tt.min+9) // 5 pairs
			streams := newStreams(tt.streams)
			m, err := r.Open(streams)
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			defer m.Close()
			for _, p := range m.Ports() {
				for _, b := range tt.busy {
					if p == b || p+1 == b {
						t.Errorf("Open handed out %v, which includes busy port %d", m.Ports(), b)
					}
				}
			}
			if got, want := r.Ports().Free(), r.Ports().Size()-tt.streams; got != want {
				t.Errorf("Ports().Free() = %d, want %d: vetoed runs must not stay allocated", got, want)
			}
			for i, s := range streams {
				sendUntilReceived(t, m.Ports()[i], s, 1)
			}
			m.Close()
			if r.Ports().Free() != r.Ports().Size() {
				t.Errorf("Ports().Free() = %d after Close, want %d", r.Ports().Free(), r.Ports().Size())
			}
		})
	}
}

func TestReceiverOpenFails(t *testing.T) { forEachReader(t, testReceiverOpenFails) }

func testReceiverOpenFails(t *testing.T) {
	t.Run("every run busy", func(t *testing.T) {
		holdUDP(t, 47200)
		holdUDP(t, 47203)
		r := newTestReceiver(t, 47200, 47203) // 2 pairs
		m, err := r.Open(newStreams(1))
		if !errors.Is(err, ErrNoPorts) {
			t.Fatalf("Open = %v, %v; want ErrNoPorts", m, err)
		}
		if !strings.Contains(err.Error(), "bind") {
			t.Errorf("error %q does not carry the bind error", err)
		}
		if r.Ports().Free() != r.Ports().Size() {
			t.Errorf("Ports().Free() = %d, want %d", r.Ports().Free(), r.Ports().Size())
		}
		// The partly bound runs were closed again: the free ports of the range are usable.
		for _, p := range []int{47201, 47202} {
			if !canBind(p) {
				t.Errorf("port %d left bound after a failed Open", p)
			}
		}
	})
	t.Run("range exhausted", func(t *testing.T) {
		r := newTestReceiver(t, 47210, 47213) // 2 pairs
		m, err := r.Open(newStreams(2))
		if err != nil {
			t.Fatalf("Open(2): %v", err)
		}
		if m2, err := r.Open(newStreams(1)); !errors.Is(err, ErrNoPorts) {
			t.Fatalf("Open on a full range = %v, %v; want ErrNoPorts", m2, err)
		}
		m.Close()
		m3, err := r.Open(newStreams(1))
		if err != nil {
			t.Fatalf("Open after Close: %v", err)
		}
		m3.Close()
	})
	t.Run("no streams", func(t *testing.T) {
		r := newTestReceiver(t, 47220, 47229)
		if m, err := r.Open(nil); err == nil {
			t.Fatalf("Open(nil) = %v, want error", m.Ports())
		}
		if r.Ports().Free() != r.Ports().Size() {
			t.Errorf("Ports().Free() = %d, want %d", r.Ports().Free(), r.Ports().Size())
		}
	})
}

func TestReceiverDropsMalformedWithoutStopping(t *testing.T) {
	forEachReader(t, testReceiverDropsMalformedWithoutStopping)
}

func testReceiverDropsMalformedWithoutStopping(t *testing.T) {
	r := newTestReceiver(t, 47230, 47239)
	s := NewStream(nil)
	s.SetSink(newFakeSink(0))
	m, err := r.Open([]*Stream{s})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	conn, err := net.Dial("udp", net.JoinHostPort("127.0.0.1", m.Port(0)))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	for _, b := range [][]byte{{0x80}, {0x00, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}, {}} {
		if _, err := conn.Write(b); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "malformed packets to be dropped", func() bool { return s.Stats().Dropped >= 2 })
	sendUntilReceived(t, m.Ports()[0], s, 7)
}

// blockingSink holds the reader goroutine inside WriteSamples until released.
type blockingSink struct {
	entered chan struct{}
	release chan struct{}
	once    sync.Once
}

func (s *blockingSink) SamplePosition(time.Time) int64 { return 0 }
func (s *blockingSink) SampleRate() int                { return 8000 }
func (s *blockingSink) WriteSamples(int64, []int16) {
	s.once.Do(func() { close(s.entered) })
	<-s.release
}

func TestMediaCloseWaitsForReaders(t *testing.T) { forEachReader(t, testMediaCloseWaitsForReaders) }

func testMediaCloseWaitsForReaders(t *testing.T) {
	r := newTestReceiver(t, 47240, 47249)
	sink := &blockingSink{entered: make(chan struct{}), release: make(chan struct{})}
	s := NewStream(nil)
	s.SetSink(sink)
	m, err := r.Open([]*Stream{s})
	if err != nil {
		t.Fatal(err)
	}
	conn, err := net.Dial("udp", net.JoinHostPort("127.0.0.1", m.Port(0)))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.Write(rtpBytes(0, 1, 0, 1, make([]byte, 160))); err != nil {
		t.Fatal(err)
	}
	select {
	case <-sink.entered:
	case <-time.After(10 * time.Second):
		t.Fatal("timed out waiting for the packet to reach the sink")
	}

	closed := make(chan struct{})
	go func() { m.Close(); close(closed) }()
	for range 100 {
		runtime.Gosched()
	}
	select {
	case <-closed:
		t.Fatal("Close returned while a reader was still inside HandlePacket")
	default:
	}
	if r.Ports().Free() == r.Ports().Size() {
		t.Error("ports released before the reader stopped")
	}
	close(sink.release)
	select {
	case <-closed:
	case <-time.After(10 * time.Second):
		t.Fatal("timed out waiting for Close once the reader was released")
	}
	if r.Ports().Free() != r.Ports().Size() {
		t.Errorf("Ports().Free() = %d after Close, want %d", r.Ports().Free(), r.Ports().Size())
	}
}

// panicSink panics on its first write, as a bug met by some packet would.
type panicSink struct {
	fakeSink
	panicked atomic.Bool
}

func (s *panicSink) WriteSamples(pos int64, pcm []int16) {
	if s.panicked.CompareAndSwap(false, true) {
		panic("bug met by a packet")
	}
	s.fakeSink.WriteSamples(pos, pcm)
}

func TestReceiverSurvivesAPanickingPacket(t *testing.T) {
	forEachReader(t, testReceiverSurvivesAPanickingPacket)
}

func testReceiverSurvivesAPanickingPacket(t *testing.T) {
	r := newTestReceiver(t, 47250, 47259)
	sink := &panicSink{fakeSink: *newFakeSink(0)}
	s := NewStream(nil)
	s.SetSink(sink)
	m, err := r.Open([]*Stream{s})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	// The first packet panics inside the stream; the reader must go on receiving the next ones.
	sendUntilReceived(t, m.Ports()[0], s, 3)
	if !sink.panicked.Load() {
		t.Fatal("the sink never panicked")
	}
	conn, err := net.Dial("udp", net.JoinHostPort("127.0.0.1", m.Port(0)))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	seq := uint16(100)
	waitFor(t, "audio written after the panic", func() bool {
		seq++
		conn.Write(rtpBytes(0, seq, uint32(seq)*160, 3, make([]byte, 160)))
		return len(sink.Writes()) > 0
	})
}
