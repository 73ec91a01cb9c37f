//go:build linux

package rtp

import (
	"cmp"
	"log/slog"
	"math"
	"net"
	"net/netip"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/siphook/siphook/recorder"
)

func newSweepReceiver(t testing.TB, min, max int, interval time.Duration, opts ...ReceiverOption) *Receiver {
	t.Helper()
	// Kernel timestamps on every packet: sampling them is TestSweepSamplesTimestamps's.
	r, err := NewReceiver(Config{BindAddress: "127.0.0.1", PortMin: min, PortMax: max, Reader: "sweep", SweepInterval: interval,
		TimestampWindow: time.Hour, TimestampEvery: time.Hour},
		append([]ReceiverOption{WithLogger(slog.New(slog.DiscardHandler))}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func dialRTP(t testing.TB, port int) *net.UDPConn {
	t.Helper()
	c, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(port))))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// TestSweepKeepsWhatArrivedBeforeClose: packets the kernel holds when a session ends are read, not lost,
// even if no sweep came by since they arrived.
func TestSweepKeepsWhatArrivedBeforeClose(t *testing.T) {
	baseline := runtime.NumGoroutine()
	r := newSweepReceiver(t, 47200, 47299, time.Second) // no sweep during the test
	st := NewStream(PayloadMap{})
	st.SetSink(discardSink{})
	m, err := r.Open([]*Stream{st})
	if err != nil {
		t.Fatal(err)
	}
	c := dialRTP(t, m.Ports()[0])
	for i := range 50 {
		if _, err := c.Write(rtpBytes(0, uint16(i), uint32(160*i), testSSRC, make([]byte, 160))); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(50 * time.Millisecond) // let loopback deliver (not a timing assertion: the count is)
	m.Close()
	if got := st.Stats().Received; got != 50 {
		t.Errorf("%d of 50 packets recorded at Close", got)
	}
	waitFor(t, "sweeper to stop once idle", func() bool { return runtime.NumGoroutine() <= baseline })
}

// TestSweepReadsManySockets: one sweeper serves many sessions; each socket's packets reach its own stream.
func TestSweepReadsManySockets(t *testing.T) {
	r := newSweepReceiver(t, 47300, 47699, 2*time.Millisecond)
	const sessions = 50
	var media []*Media
	var streams []*Stream
	for range sessions {
		pair := []*Stream{NewStream(PayloadMap{}), NewStream(PayloadMap{})}
		for _, s := range pair {
			s.SetSink(discardSink{})
		}
		m, err := r.Open(pair)
		if err != nil {
			t.Fatal(err)
		}
		media, streams = append(media, m), append(streams, pair...)
	}
	for i, s := range streams {
		c := dialRTP(t, media[i/2].Ports()[i%2])
		for seq := range 1 + i%5 {
			if _, err := c.Write(rtpBytes(0, uint16(seq), uint32(160*seq), uint32(i), make([]byte, 160))); err != nil {
				t.Fatal(err)
			}
		}
		_ = s
	}
	for i, s := range streams {
		want := uint64(1 + i%5)
		waitFor(t, "every packet", func() bool { return s.Stats().Received == want })
	}
	for _, m := range media {
		m.Close()
	}
}

func TestArrivalOf(t *testing.T) {
	now := baseTime
	pkt := func(ts uint32) []byte { return rtpBytes(0, 1, ts, testSSRC, make([]byte, 160)) }
	for _, tc := range []struct {
		name     string
		ts, last uint32
		want     time.Duration
	}{
		{"newest", 8000, 8000, 0},
		{"two packets older", 8000 - 320, 8000, -40 * time.Millisecond},
		{"older than a sweep: bounded", 0, 8000, 0},
		{"newer than the newest (reordered)", 8160, 8000, 0},
		{"timestamp wrap", 0xffffff20, 0x60, -40 * time.Millisecond},
	} {
		got := arrivalOf(pkt(tc.ts), pkt(tc.last), now, 100*time.Millisecond).Sub(now)
		if got != tc.want {
			t.Errorf("%s: arrival %v from now, want %v", tc.name, got, tc.want)
		}
	}
	if got := arrivalOf([]byte{1, 2}, pkt(0), now, time.Second); !got.Equal(now) {
		t.Errorf("short packet: %v", got)
	}
}

// sentPacket is one packet as a test sender sent it.
type sentPacket struct {
	at time.Time // just before the write
	k  int       // its index: sequence number k, timestamp 160·k
}

// sendPaced sends n 20 ms PCMU packets to c in real time, packet k due delay(k) after its place (packets
// due together leave in index order), and returns them in the order sent.
func sendPaced(c *net.UDPConn, n int, delay func(k int) time.Duration) ([]sentPacket, error) {
	type due struct {
		at time.Duration
		k  int
	}
	var plan []due
	for k := range n {
		plan = append(plan, due{time.Duration(k)*20*time.Millisecond + delay(k), k})
	}
	slices.SortStableFunc(plan, func(a, b due) int { return cmp.Compare(a.at, b.at) })
	start := time.Now()
	sent := make([]sentPacket, 0, n)
	for _, p := range plan {
		time.Sleep(time.Until(start.Add(p.at)))
		pkt := rtpBytes(0, uint16(p.k), uint32(160*p.k), testSSRC, make([]byte, 160))
		at := time.Now()
		if _, err := c.Write(pkt); err != nil {
			return sent, err
		}
		sent = append(sent, sentPacket{at, p.k})
	}
	return sent, nil
}

// sentJitter is the RFC 3550 jitter, in ms, of packets as they left: their send times against their
// timestamps, in the order sent (which loopback keeps).
func sentJitter(sent []sentPacket) float64 {
	j := 0.0
	for i := 1; i < len(sent); i++ {
		d := sent[i].at.Sub(sent[i-1].at) - time.Duration(sent[i].k-sent[i-1].k)*20*time.Millisecond
		j += (math.Abs(float64(d)) - j) * jitterGain
	}
	return j / float64(time.Millisecond)
}

// TestSweepJitterFromKernelTimestamps: with the sweep reader at its default interval, which reads each
// socket five packets at a time, a stream's jitter is what its packets were sent with, because arrivals are
// the kernel's receive timestamps. One stream of a call sends every other packet 20 ms late (≈ 20 ms of
// jitter), the other is clean (≈ 0); each must come within 1 ms of what the sender measured as it sent.
// (Arrivals estimated per sweep, as before kernel timestamps, read 2.5 ms for the first.) The first packet
// is placed where the sender sent it, not where a sweep found it.
func TestSweepJitterFromKernelTimestamps(t *testing.T) {
	const packets = 100
	r := newSweepReceiver(t, 47900, 47949, 100*time.Millisecond)
	sinkStart := time.Now()
	streams := []*Stream{NewStream(PayloadMap{}), NewStream(PayloadMap{})}
	sinks := []*fakeSink{{base: sinkStart}, {base: sinkStart}}
	m, err := r.Open(streams)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	for i, s := range streams {
		s.SetSink(sinks[i])
	}
	delays := []func(int) time.Duration{
		func(k int) time.Duration { return time.Duration(k%2) * 20 * time.Millisecond },
		func(int) time.Duration { return 0 },
	}
	sent := make([][]sentPacket, len(streams))
	errs := make([]error, len(streams))
	var wg sync.WaitGroup
	for i := range streams {
		c := dialRTP(t, m.Ports()[i])
		wg.Go(func() { sent[i], errs[i] = sendPaced(c, packets, delays[i]) })
	}
	wg.Wait()
	time.Sleep(10 * time.Millisecond) // let loopback deliver the last packets (Close reads what the kernel holds)
	m.Close()
	for i, s := range streams {
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
		want := sentJitter(sent[i])
		got := s.Quality().JitterMs
		pattern := 0.0
		if i == 0 {
			pattern = 20 * (1 - math.Pow(1-jitterGain, packets-1))
		}
		t.Logf("stream %d: jitter %.3f ms, as sent %.3f ms, by the pattern %.3f ms; %+v", i, got, want, pattern, s.Stats())
		if math.Abs(got-want) > 1 {
			t.Errorf("stream %d: jitter %.3f ms, the packets were sent with %.3f ms", i, got, want)
		}
		if math.Abs(want-pattern) > 3 {
			t.Errorf("stream %d: the sender's jitter %.3f ms strays from its pattern's %.3f ms: the test's own timing is off", i, want, pattern)
		}
		if st := s.Stats(); st.Received != packets || st.Lost != 0 || st.Jumps != 0 || st.Dropped != 0 {
			t.Errorf("stream %d: Stats() = %+v, want %d received, nothing lost, dropped or re-anchored", i, st, packets)
		}
		w := sinks[i].Writes()
		if len(w) == 0 {
			t.Fatalf("stream %d: nothing written", i)
		}
		// Packet 0 is sent first on both streams and anchors the timeline.
		if first, at := w[0].pos, sinks[i].SamplePosition(sent[i][0].at); first < at || first > at+16 {
			t.Errorf("stream %d: first packet placed at %d, it was sent at position %d: want it within 2 ms after", i, first, at)
		}
	}
}

// TestSweepSamplesTimestamps: receive timestamps, and so jitter, are sampled in windows (500 ms of every
// second here). A stream sends cleanly through the first window, then every other packet 20 ms late from
// 650 ms on. Read just after 1 s, it shows the first window's jitter only: what came after the window closed
// is placed (every packet is recorded) but not measured. The second window opens at 1.0–1.1 s and trusts
// its stamps after a sweep and a half; by the end of the call (1.6 s) the lateness it saw shows.
func TestSweepSamplesTimestamps(t *testing.T) {
	const packets = 80
	r, err := NewReceiver(Config{BindAddress: "127.0.0.1", PortMin: 47960, PortMax: 47979, SweepInterval: 100 * time.Millisecond,
		TimestampWindow: 500 * time.Millisecond, TimestampEvery: time.Second}, WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	s := NewStream(PayloadMap{})
	m, err := r.Open([]*Stream{s})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	s.SetSink(&fakeSink{base: time.Now()})
	c := dialRTP(t, m.Ports()[0])
	late := func(k int) time.Duration {
		if k >= 33 { // 660 ms
			return time.Duration(k%2) * 20 * time.Millisecond
		}
		return 0
	}
	probe := make(chan float64, 1)
	time.AfterFunc(1150*time.Millisecond, func() { probe <- s.Quality().JitterMs })
	if _, err := sendPaced(c, packets, late); err != nil {
		t.Fatal(err)
	}
	time.Sleep(10 * time.Millisecond)
	m.Close()
	midCall, end := <-probe, s.Quality().JitterMs
	t.Logf("jitter at 1.15 s %.3f ms, at the end %.3f ms; %+v", midCall, end, s.Stats())
	if midCall > 2 {
		t.Errorf("jitter %.3f ms at 1.15 s: the late packets came after the first window closed and must not count", midCall)
	}
	if end < 6 {
		t.Errorf("jitter %.3f ms at the end: the second window saw packets 20 ms late", end)
	}
	if st := s.Stats(); st.Received != packets || st.Dropped != 0 || st.Jumps != 0 {
		t.Errorf("Stats() = %+v: want every packet placed, none dropped or re-anchored", st)
	}
}

// TestSweepDropsWhatArrivedBeforeTheSink: packets that came while a stream had no sink are dropped even when
// the sweep that would read them comes after the sink is set, and those that came after are all kept,
// whatever their RTP timestamps say. SetSink has the socket drained first, under the old state, so this
// holds whether arrivals are the kernel's stamps or estimates (which can be a packet off: here the packets
// go out in bursts, 20 ms apart by their timestamps, so an estimate would put the first after the sink a
// packet before it).
func TestSweepDropsWhatArrivedBeforeTheSink(t *testing.T) {
	for _, tc := range []struct {
		name string
		port int
		opts []ReceiverOption
	}{
		{"kernel timestamps", 47950, nil},
		{"estimated arrivals", 47970, []ReceiverOption{WithClock(time.Now)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newSweepReceiver(t, tc.port, tc.port+19, time.Second, tc.opts...) // no sweep during the test
			st := NewStream(PayloadMap{})
			m, err := r.Open([]*Stream{st})
			if err != nil {
				t.Fatal(err)
			}
			c := dialRTP(t, m.Ports()[0])
			seq := 0
			send := func(n int) {
				for range n {
					if _, err := c.Write(rtpBytes(0, uint16(seq), uint32(160*seq), testSSRC, make([]byte, 160))); err != nil {
						t.Fatal(err)
					}
					seq++
				}
			}
			send(5) // on hold: no sink
			time.Sleep(20 * time.Millisecond)
			st.SetSink(discardSink{})
			time.Sleep(time.Millisecond)
			send(3)
			time.Sleep(20 * time.Millisecond) // let loopback deliver (the count is the assertion, not the timing)
			m.Close()
			if got := st.Stats(); got.Dropped != 5 || got.Received != 3 {
				t.Errorf("Stats() = %+v, want the 5 packets from before the sink dropped and the 3 after it received", got)
			}
		})
	}
}

func TestRxTimestamp(t *testing.T) {
	hdr := func(level, typ int32, data []byte, space bool) []byte {
		n := unix.CmsgLen(len(data))
		if space {
			n = unix.CmsgSpace(len(data))
		}
		b := make([]byte, n)
		h := (*unix.Cmsghdr)(unsafe.Pointer(&b[0]))
		h.Level, h.Type = level, typ
		h.SetLen(unix.CmsgLen(len(data)))
		copy(b[unix.CmsgLen(0):], data)
		return b
	}
	ts := unix.Timespec{Sec: 1764000000, Nsec: 123456789}
	tsBytes := unsafe.Slice((*byte)(unsafe.Pointer(&ts)), unsafe.Sizeof(ts))
	stamp := hdr(unix.SOL_SOCKET, unix.SCM_TIMESTAMPNS, tsBytes, true)
	other := hdr(unix.IPPROTO_IP, unix.IP_TTL, []byte{64, 0, 0, 0}, true)
	truncated := slices.Clone(stamp[:unix.CmsgLen(4)])
	(*unix.Cmsghdr)(unsafe.Pointer(&truncated[0])).SetLen(len(truncated))
	for _, tc := range []struct {
		name string
		ctrl []byte
		ok   bool
	}{
		{"none", nil, false},
		{"timestamp", stamp, true},
		{"after another message", slices.Concat(other, stamp), true},
		{"only another message", other, false},
		{"truncated (MSG_CTRUNC)", truncated, false},
		{"length beyond the data", stamp[:len(stamp)-4], false},
		{"length below a header", hdr(unix.SOL_SOCKET, unix.SCM_TIMESTAMPNS, nil, true)[:unix.SizeofCmsghdr-1], false},
	} {
		// Copy into word-aligned memory, as the shard's buffers are.
		buf := make([]uint64, (len(tc.ctrl)+7)/8)
		ctrl := unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(buf))), len(buf)*8)[:len(tc.ctrl)]
		copy(ctrl, tc.ctrl)
		sec, nsec, ok := rxTimestamp(ctrl)
		if ok != tc.ok || ok && (sec != int64(ts.Sec) || nsec != int64(ts.Nsec)) {
			t.Errorf("%s: rxTimestamp = %d, %d, %v; want ok %v", tc.name, sec, nsec, ok, tc.ok)
		}
	}
	if n := testing.AllocsPerRun(100, func() { rxTimestamp(stamp) }); n != 0 {
		t.Errorf("rxTimestamp allocates %v times", n)
	}
}

// BenchmarkSweepReceive is the server's media path per packet: recvmmsg from a socket (with its kernel
// receive timestamp), parse, place, decode, write into a recording channel (a discarding sink here).
// 0 allocs/op is the requirement.
func BenchmarkSweepReceive(b *testing.B) { benchSweepReceive(b, 47700) }

// BenchmarkSweepReceiveEstimated is BenchmarkSweepReceive without kernel receive timestamps (a receiver on
// its own clock: arrivals estimated per batch). The difference between the two is what the timestamps cost.
func BenchmarkSweepReceiveEstimated(b *testing.B) { benchSweepReceive(b, 47750, WithClock(time.Now)) }

func benchSweepReceive(b *testing.B, port int, opts ...ReceiverOption) {
	r := newSweepReceiver(b, port, port+49, time.Second, opts...)
	st := NewStream(PayloadMap{})
	st.SetSink(discardSink{})
	m, err := r.Open([]*Stream{st})
	if err != nil {
		b.Fatal(err)
	}
	defer m.Close()
	run := m.run.(*sweepRun)
	c := dialRTP(b, m.Ports()[0])
	pkts := make([][]byte, sweepBatch)
	b.ReportAllocs()
	b.ResetTimer()
	seq := 0
	for b.Loop() {
		b.StopTimer()
		for i := range pkts {
			pkts[i] = rtpBytes(0, uint16(seq), uint32(160*seq), testSSRC, make([]byte, 160))
			seq++
			c.Write(pkts[i])
		}
		var wall time.Time
		if r.realClock {
			wall = time.Now()
		}
		b.StartTimer()
		run.shard.mu.Lock()
		// Arrival follows the packets' own clock, as in real time; kernel timestamps are taken relative to it.
		run.shard.drain(run.socks[0], baseTime.Add(time.Duration(seq)*20*time.Millisecond), wall)
		run.shard.mu.Unlock()
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*sweepBatch), "ns/packet")
}

// BenchmarkMediaPath is BenchmarkSweepReceive writing into a real recording (recorder.Channel): receive →
// parse → place → decode → buffer for the WAV, with the recorder's flusher running.
func BenchmarkMediaPath(b *testing.B) {
	cfg := recorder.DefaultConfig()
	cfg.Dir = b.TempDir()
	rec, err := recorder.New(cfg)
	if err != nil {
		b.Fatal(err)
	}
	defer rec.Close()
	start := time.Now()
	recording, err := rec.Start(recorder.Spec{Channels: 1, Start: start})
	if err != nil {
		b.Fatal(err)
	}
	defer recording.Close(nil)
	r := newSweepReceiver(b, 47800, 47899, time.Second)
	st := NewStream(PayloadMap{})
	st.SetSink(recording.Channel(0))
	m, err := r.Open([]*Stream{st})
	if err != nil {
		b.Fatal(err)
	}
	defer m.Close()
	run := m.run.(*sweepRun)
	c := dialRTP(b, m.Ports()[0])
	payload := make([]byte, 160)
	b.ReportAllocs()
	seq := 0
	for b.Loop() {
		b.StopTimer()
		for range sweepBatch {
			c.Write(rtpBytes(0, uint16(seq), uint32(160*seq), testSSRC, payload))
			seq++
		}
		wall := time.Now()
		b.StartTimer()
		run.shard.mu.Lock()
		// Arrival follows the packets' own clock, as in real time, so the recorder's timeline moves on; kernel
		// timestamps are taken relative to it.
		run.shard.drain(run.socks[0], start.Add(time.Duration(seq)*20*time.Millisecond), wall)
		run.shard.mu.Unlock()
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*sweepBatch), "ns/packet")
}
