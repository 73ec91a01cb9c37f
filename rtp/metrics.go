package rtp

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// WithRegisterer registers the receiver's metrics there: packet counters summed over every stream, RTP
// ports in use and free.
func WithRegisterer(reg prometheus.Registerer) ReceiverOption {
	return func(r *Receiver) { reg.MustRegister(&r.totals) }
}

// streamTotals sums the counters of every stream the receiver has fed. They are read from the streams at
// scrape time, so the packet path pays nothing: streams still open are read live, and a stream's counts
// move into folded when its last Media closes.
type streamTotals struct {
	r *Receiver

	mu       sync.Mutex
	open     map[*Stream]int // stream → Media holding it
	folded   Stats           // counts of streams no longer open
	reported Stats           // the last values exported: counters never go down (Lost can, net of late packets)
}

var (
	descPackets   = prometheus.NewDesc("siphook_rtp_packets_total", "RTP packets recorded.", nil, nil)
	descLost      = prometheus.NewDesc("siphook_rtp_lost_packets_total", "RTP packets never received (sequence gaps, net of late arrivals).", nil, nil)
	descReordered = prometheus.NewDesc("siphook_rtp_reordered_packets_total", "RTP packets that arrived after a later sequence number.", nil, nil)
	descDupes     = prometheus.NewDesc("siphook_rtp_duplicate_packets_total", "RTP packets received twice.", nil, nil)
	descDropped   = prometheus.NewDesc("siphook_rtp_dropped_packets_total", "RTP packets not recorded: session waiting or paused, malformed, unknown payload type or SRTP rejected.", nil, nil)
	descSRTP      = prometheus.NewDesc("siphook_rtp_srtp_failures_total", "SRTP packets that failed authentication or replay checks.", nil, nil)
	descStreams   = prometheus.NewDesc("siphook_rtp_streams", "RTP streams with bound sockets.", nil, nil)
	descPortsUsed = prometheus.NewDesc("siphook_rtp_ports_in_use", "RTP ports (even ports of the range) bound to sessions.", nil, nil)
	descPortsFree = prometheus.NewDesc("siphook_rtp_ports_free", "RTP ports of the range free for new sessions.", nil, nil)
)

func (t *streamTotals) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descPackets, descLost, descReordered, descDupes, descDropped, descSRTP, descStreams, descPortsUsed, descPortsFree} {
		ch <- d
	}
}

func (t *streamTotals) Collect(ch chan<- prometheus.Metric) {
	t.mu.Lock()
	sum := t.folded
	for s := range t.open {
		sum.add(s.unfolded())
	}
	t.reported = t.reported.max(sum)
	got, streams := t.reported, len(t.open)
	t.mu.Unlock()
	counter := func(d *prometheus.Desc, v uint64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v))
	}
	counter(descPackets, got.Received)
	counter(descLost, got.Lost)
	counter(descReordered, got.Reordered)
	counter(descDupes, got.Duplicates)
	counter(descDropped, got.Dropped)
	counter(descSRTP, got.SRTPFailed)
	gauge := func(d *prometheus.Desc, v int) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, float64(v))
	}
	free := t.r.ports.Free()
	gauge(descStreams, streams)
	gauge(descPortsUsed, t.r.ports.Size()-free)
	gauge(descPortsFree, free)
}

// opened and closed track the streams a Media holds.
func (t *streamTotals) opened(streams []*Stream) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.open == nil {
		t.open = map[*Stream]int{}
	}
	for _, s := range streams {
		t.open[s]++
	}
}

func (t *streamTotals) closed(streams []*Stream) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, s := range streams {
		if t.open[s]--; t.open[s] > 0 {
			continue
		}
		delete(t.open, s)
		t.folded.add(s.fold())
	}
}

// unfolded is what the stream counted since its counts were last folded into the totals.
func (s *Stream) unfolded() Stats {
	st := s.Stats()
	return st.minus(s.folded)
}

// fold marks the stream's counts as taken into the totals and returns the part not taken before.
func (s *Stream) fold() Stats {
	d := s.unfolded()
	s.folded.add(d)
	return d
}

func (a *Stats) add(b Stats) {
	a.Received += b.Received
	a.Lost += b.Lost
	a.Reordered += b.Reordered
	a.Duplicates += b.Duplicates
	a.Dropped += b.Dropped
	a.SRTPFailed += b.SRTPFailed
	a.Jumps += b.Jumps
}

// minus subtracts b, flooring at zero (Lost can shrink when a late packet arrives).
func (a Stats) minus(b Stats) Stats {
	sub := func(x, y uint64) uint64 { return x - min(x, y) }
	return Stats{Received: sub(a.Received, b.Received), Lost: sub(a.Lost, b.Lost), Reordered: sub(a.Reordered, b.Reordered),
		Duplicates: sub(a.Duplicates, b.Duplicates), Dropped: sub(a.Dropped, b.Dropped), SRTPFailed: sub(a.SRTPFailed, b.SRTPFailed),
		Jumps: sub(a.Jumps, b.Jumps)}
}

func (a Stats) max(b Stats) Stats {
	return Stats{Received: max(a.Received, b.Received), Lost: max(a.Lost, b.Lost), Reordered: max(a.Reordered, b.Reordered),
		Duplicates: max(a.Duplicates, b.Duplicates), Dropped: max(a.Dropped, b.Dropped), SRTPFailed: max(a.SRTPFailed, b.SRTPFailed),
		Jumps: max(a.Jumps, b.Jumps)}
}
