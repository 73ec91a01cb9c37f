//go:build linux

package rtp

import (
	"log/slog"
	"net"
	"net/netip"
	"runtime"
	"testing"
	"time"

	"github.com/siphook/siphook/recorder"
)

func newSweepReceiver(t testing.TB, min, max int, interval time.Duration) *Receiver {
	t.Helper()
	r, err := NewReceiver(Config{BindAddress: "127.0.0.1", PortMin: min, PortMax: max, Reader: "sweep", SweepInterval: interval},
		WithLogger(slog.New(slog.DiscardHandler)))
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

// BenchmarkSweepReceive is the server's media path per packet: recvmmsg from a socket, parse, place,
// decode, write into a recording channel (a discarding sink here). 0 allocs/op is the requirement.
func BenchmarkSweepReceive(b *testing.B) {
	r := newSweepReceiver(b, 47700, 47799, time.Second)
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
		b.StartTimer()
		run.shard.mu.Lock()
		run.shard.drain(run.socks[0], baseTime.Add(time.Duration(seq)*20*time.Millisecond))
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
		b.StartTimer()
		run.shard.mu.Lock()
		// Arrival follows the packets' own clock, as in real time, so the recorder's timeline moves on.
		run.shard.drain(run.socks[0], start.Add(time.Duration(seq)*20*time.Millisecond))
		run.shard.mu.Unlock()
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*sweepBatch), "ns/packet")
}
