package audiohook

import "github.com/prometheus/client_golang/prometheus"

// metrics are the AudioHook server's Prometheus series.
type metrics struct {
	refused  *prometheus.CounterVec // upgrades refused, by reason
	sessions *prometheus.CounterVec // sessions ended, by outcome
	active   prometheus.Gauge
	audio    prometheus.Counter // audio bytes received
	errors   *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "siphook", Subsystem: "audiohook", Name: "upgrades_refused_total",
			Help: "WebSocket upgrades refused, by reason (unauthorized, bad_request).",
		}, []string{"reason"}),
		sessions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "siphook", Subsystem: "audiohook", Name: "sessions_total",
			Help: "AudioHook sessions ended, by outcome (closed, probe, dropped, protocol_error, unauthorized, no_open).",
		}, []string{"outcome"}),
		active: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "siphook", Subsystem: "audiohook", Name: "sessions_active",
			Help: "AudioHook WebSocket connections open.",
		}),
		audio: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "siphook", Subsystem: "audiohook", Name: "audio_bytes_total",
			Help: "Audio bytes received.",
		}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "siphook", Subsystem: "audiohook", Name: "client_errors_total",
			Help: "error messages received from clients, by code.",
		}, []string{"code"}),
	}
	reg.MustRegister(m.refused, m.sessions, m.active, m.audio, m.errors)
	return m
}
