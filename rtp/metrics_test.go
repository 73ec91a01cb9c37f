package rtp

import (
	"net"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// TestMetrics: the packet counters sum every stream, open or closed, count each packet once when a stream
// moves to new sockets, and the port gauges follow Open and Close.
func TestMetrics(t *testing.T) { forEachReader(t, testMetrics) }

func testMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	r := newTestReceiver(t, 47400, 47409, WithRegisterer(reg))
	value := func(name string) float64 {
		t.Helper()
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, mf := range mfs {
			if mf.GetName() == name {
				m := mf.GetMetric()[0]
				if c := m.GetCounter(); c != nil {
					return c.GetValue()
				}
				return m.GetGauge().GetValue()
			}
		}
		t.Fatalf("no metric %s", name)
		return 0
	}
	s := newStreams(1)[0]
	send := func(m *Media, seqs ...uint16) {
		t.Helper()
		conn, err := net.Dial("udp", net.JoinHostPort("127.0.0.1", m.Port(0)))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		before := s.Stats().Received
		for _, seq := range seqs {
			conn.Write(rtpBytes(0, seq, 160*uint32(seq), 7, make([]byte, 160)))
		}
		waitFor(t, "the packets counted", func() bool { return s.Stats().Received == before+uint64(len(seqs)) })
	}

	m1, err := r.Open([]*Stream{s})
	if err != nil {
		t.Fatal(err)
	}
	if got := value("siphook_rtp_ports_in_use"); got != 1 {
		t.Errorf("ports in use %v, want 1", got)
	}
	send(m1, 1, 2, 4) // 3 lost
	if got, lost := value("siphook_rtp_packets_total"), value("siphook_rtp_lost_packets_total"); got != 3 || lost != 1 {
		t.Errorf("open stream: packets %v lost %v, want 3 and 1", got, lost)
	}
	m1.Close()
	if got := value("siphook_rtp_packets_total"); got != 3 {
		t.Errorf("after close: packets %v, want 3", got)
	}
	// The session moves the stream to new sockets: its earlier packets are not counted again.
	m2, err := r.Open([]*Stream{s})
	if err != nil {
		t.Fatal(err)
	}
	send(m2, 5, 6)
	m2.Close()
	if got, streams, free := value("siphook_rtp_packets_total"), value("siphook_rtp_streams"), value("siphook_rtp_ports_free"); got != 5 || streams != 0 || free != 5 {
		t.Errorf("after the second close: packets %v streams %v free ports %v, want 5, 0, 5", got, streams, free)
	}
	if n, err := testutil.GatherAndCount(reg); err != nil || n != 9 {
		t.Errorf("%d metrics (%v), want 9", n, err)
	}
}
