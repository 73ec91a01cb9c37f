package sip

import "github.com/prometheus/client_golang/prometheus"

// metrics are the SIPREC server's Prometheus series, registered on the registry the server is given.
type metrics struct {
	sessions    *prometheus.CounterVec // by result: answered, rejected, cancelled, no_ack
	rejected    *prometheus.CounterVec // by status code
	active      prometheus.Gauge
	reinvites   *prometheus.CounterVec // by direction and result
	ended       *prometheus.CounterVec // by reason
	portsFailed prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		sessions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "siphook", Subsystem: "siprec", Name: "invites_total",
			Help: "Initial SIPREC INVITEs by outcome (answered, rejected, cancelled, no_ack).",
		}, []string{"result"}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "siphook", Subsystem: "siprec", Name: "rejected_total",
			Help: "INVITEs refused, by SIP status code.",
		}, []string{"code"}),
		active: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "siphook", Subsystem: "siprec", Name: "sessions_active",
			Help: "Recording sessions in progress (waiting, recording or paused).",
		}),
		reinvites: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "siphook", Subsystem: "siprec", Name: "reinvites_total",
			Help: "SRS-initiated re-INVITEs by direction (recvonly = activate, inactive = pause) and result (ok, glare, failed).",
		}, []string{"direction", "result"}),
		ended: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "siphook", Subsystem: "siprec", Name: "sessions_ended_total",
			Help: "Recording sessions ended, by reason.",
		}, []string{"reason"}),
		portsFailed: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "siphook", Subsystem: "siprec", Name: "port_exhaustion_total",
			Help: "INVITEs refused because no RTP ports were free.",
		}),
	}
	reg.MustRegister(m.sessions, m.rejected, m.active, m.reinvites, m.ended, m.portsFailed)
	return m
}
