package delivery

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the delivery's series, labelled target (a target's or a webhook's name). Every label value
// exists from the start. The counters live here; the gauges are computed from the queue when scraped.
type metrics struct {
	d         *Delivery
	delivered *prometheus.CounterVec
	failures  *prometheus.CounterVec
	bytes     *prometheus.CounterVec
	integrity *prometheus.CounterVec

	queued, buffer, oldest, stuck *prometheus.Desc
}

func newMetrics(d *Delivery) *metrics {
	counter := func(name, help string) *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "siphook", Subsystem: "delivery", Name: name, Help: help},
			[]string{"target"})
	}
	gauge := func(name, help string) *prometheus.Desc {
		return prometheus.NewDesc(prometheus.BuildFQName("siphook", "delivery", name), help, []string{"target"}, nil)
	}
	m := &metrics{
		d: d,
		delivered: counter("delivered_total",
			"Jobs delivered: a recording's WAV and JSON stored and verified on a target, or an event accepted (2xx) by a webhook."),
		failures: counter("failures_total", "Failed delivery attempts (each is retried)."),
		bytes:    counter("bytes_total", "Bytes stored on targets (verified uploads) or POSTed to webhooks."),
		integrity: counter("integrity_errors_total",
			"Recordings whose WAV's SHA-256 differs from the one in their document (sent anyway)."),
		queued: gauge("queued", "Jobs not delivered yet, the retry buffer included."),
		buffer: gauge("retry_buffer", "Jobs in the retry buffer (tried every retry_interval)."),
		oldest: gauge("oldest_seconds", "Age of the oldest job not delivered yet (0 when none)."),
		stuck:  gauge("stuck", "Jobs not delivered after stuck_after."),
	}
	for _, n := range d.names {
		for _, c := range []*prometheus.CounterVec{m.delivered, m.failures, m.bytes, m.integrity} {
			c.WithLabelValues(n)
		}
	}
	return m
}

func (m *metrics) register(reg prometheus.Registerer) error {
	var errs []error
	for _, c := range []prometheus.Collector{m.delivered, m.failures, m.bytes, m.integrity, gauges{m}} {
		errs = append(errs, reg.Register(c))
	}
	return errors.Join(errs...)
}

// gauges collects the queue gauges from the Delivery's state.
type gauges struct{ m *metrics }

func (g gauges) Describe(ch chan<- *prometheus.Desc) {
	ch <- g.m.queued
	ch <- g.m.buffer
	ch <- g.m.oldest
	ch <- g.m.stuck
}

func (g gauges) Collect(ch chan<- prometheus.Metric) {
	type counts struct {
		queued, buffer, stuck int
		oldest                float64
	}
	d := g.m.d
	d.mu.Lock()
	now := d.now()
	per := make(map[string]*counts, len(d.names))
	for _, n := range d.names {
		per[n] = &counts{}
	}
	for _, j := range d.jobs {
		c := per[j.rec.Target]
		if c == nil || j.state == stateDone {
			continue
		}
		c.queued++
		if j.state == stateBuffered {
			c.buffer++
		}
		age := now.Sub(j.rec.Created)
		if age > d.cfg.StuckAfter {
			c.stuck++
		}
		c.oldest = max(c.oldest, age.Seconds())
	}
	d.mu.Unlock()
	for _, n := range d.names {
		c := per[n]
		ch <- prometheus.MustNewConstMetric(g.m.queued, prometheus.GaugeValue, float64(c.queued), n)
		ch <- prometheus.MustNewConstMetric(g.m.buffer, prometheus.GaugeValue, float64(c.buffer), n)
		ch <- prometheus.MustNewConstMetric(g.m.oldest, prometheus.GaugeValue, c.oldest, n)
		ch <- prometheus.MustNewConstMetric(g.m.stuck, prometheus.GaugeValue, float64(c.stuck), n)
	}
}
