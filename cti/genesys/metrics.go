package genesys

import "github.com/prometheus/client_golang/prometheus"

// metrics are the Genesys CTI source's Prometheus series, labelled by tenant.
type metrics struct {
	received   *prometheus.CounterVec   // conversation notifications received
	events     *prometheus.CounterVec   // cti events emitted, by state
	reconnects *prometheus.CounterVec   // socket ends, by reason (dropped, socket_closing, stale, rollover, …)
	fixes      *prometheus.CounterVec   // events produced by reconciliation
	lag        *prometheus.HistogramVec // event received − event time (Genesys clock)
	channels   *prometheus.CounterVec   // channels created
	takeovers  *prometheus.CounterVec   // our channel taken by another socket
	rejected   *prometheus.CounterVec   // topics refused at subscription
	retries    *prometheus.CounterVec   // API retries, by reason
}

func newMetrics(reg prometheus.Registerer) *metrics {
	counter := func(name, help string, labels ...string) *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "siphook", Subsystem: "cti_genesys", Name: name, Help: help}, append([]string{"tenant"}, labels...))
	}
	m := &metrics{
		received:   counter("notifications_received_total", "Conversation notifications received."),
		events:     counter("events_total", "CTI events emitted (derived state changes), by state.", "state"),
		reconnects: counter("socket_ends_total", "Notification sockets ended, by reason (dropped, server_closed, socket_closing, stale, token_revoked, rollover, no_longer_subscribed).", "reason"),
		fixes:      counter("reconciliation_fixes_total", "Events produced by reconciliation: states the live feed had missed."),
		lag: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: "siphook", Subsystem: "cti_genesys", Name: "event_lag_seconds",
			Help: "Time from the change (Genesys clock) to its event reaching siphook.", Buckets: prometheus.ExponentialBuckets(0.05, 2, 12)}, []string{"tenant"}),
		channels:  counter("channels_created_total", "Notification channels created."),
		takeovers: counter("channel_takeovers_total", "Our channel was taken over by another socket (a second consumer of the same channel)."),
		rejected:  counter("topics_rejected_total", "Topics Genesys refused at subscription (deleted users, missing permissions)."),
		retries:   counter("api_retries_total", "Genesys API requests retried, by reason.", "reason"),
	}
	reg.MustRegister(m.received, m.events, m.reconnects, m.fixes, m.lag, m.channels, m.takeovers, m.rejected, m.retries)
	return m
}
