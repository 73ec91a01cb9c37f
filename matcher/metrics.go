package matcher

import (
	"cmp"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the matcher's Prometheus series, registered on the registry it is given.
type metrics struct {
	matches           *prometheus.CounterVec // by key kind: ucid, conversation_id
	pendingSessions   prometheus.Gauge
	pendingCalls      prometheus.Gauge
	matchLatency      prometheus.Histogram
	activationLatency prometheus.Histogram
	expired           prometheus.Counter
	ambiguous         prometheus.Counter
	actions           *prometheus.CounterVec // by action (activate, pause) and result (ok, error, cancelled)
}

// sessionsCollector counts the live media sessions by source and state at scrape time.
type sessionsCollector struct{ m *Matcher }

var descSessions = prometheus.NewDesc("siphook_media_sessions", "Live media sessions by source (siprec, audiohook) and state (waiting, active, paused).",
	[]string{"source", "state"}, nil)

func (c sessionsCollector) Describe(ch chan<- *prometheus.Desc) { ch <- descSessions }

func (c sessionsCollector) Collect(ch chan<- prometheus.Metric) {
	type group struct{ source, state string }
	counts := map[group]int{}
	for _, src := range []string{"siprec", "audiohook"} {
		for _, st := range []string{SessionWaiting, SessionActive, SessionPaused} {
			counts[group{src, st}] = 0 // every series exists from the start
		}
	}
	for _, s := range c.m.Sessions() {
		counts[group{cmp.Or(s.Source, "other"), s.State}]++
	}
	for g, n := range counts {
		ch <- prometheus.MustNewConstMetric(descSessions, prometheus.GaugeValue, float64(n), g.source, g.state)
	}
}

func newMetrics(reg prometheus.Registerer) *metrics {
	const ns, sub = "siphook", "matcher"
	m := &metrics{
		matches: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Subsystem: sub, Name: "matches_total",
			Help: "Media sessions bound to a CTI conversation, by the key that matched (ucid, conversation_id).",
		}, []string{"key"}),
		pendingSessions: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: ns, Subsystem: sub, Name: "pending_sessions",
			Help: "Media sessions waiting for a CTI conversation.",
		}),
		pendingCalls: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: ns, Subsystem: sub, Name: "pending_calls",
			Help: "CTI conversations waiting for media (in the store, no media session bound here).",
		}),
		matchLatency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: ns, Subsystem: sub, Name: "match_latency_seconds",
			Help:    "From the later of the media session and the CTI observation arriving to the match.",
			Buckets: []float64{.0005, .001, .005, .01, .05, .1, .5, 1, 5, 10, 30, 60, 300},
		}),
		activationLatency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: ns, Subsystem: sub, Name: "activation_latency_seconds",
			Help:    "From the CTI observation that asked for recording (or the media arriving, if later) to the session's Activate returning.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}),
		expired: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: ns, Subsystem: sub, Name: "expired_calls_total",
			Help: "CTI conversations that expired from the pending table without any media session.",
		}),
		ambiguous: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: ns, Subsystem: sub, Name: "ambiguous_total",
			Help: "Matches where one UCID was on several conversations within the ambiguity window.",
		}),
		actions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Subsystem: sub, Name: "actions_total",
			Help: "Activate and Pause calls on media sessions, by result (ok, error, cancelled: the session ended meanwhile).",
		}, []string{"action", "result"}),
	}
	for _, k := range []KeyKind{KeyUCID, KeyConversationID} {
		m.matches.WithLabelValues(string(k))
	}
	for _, a := range []string{"activate", "pause"} {
		for _, r := range []string{"ok", "error", "cancelled"} {
			m.actions.WithLabelValues(a, r)
		}
	}
	reg.MustRegister(m.matches, m.pendingSessions, m.pendingCalls, m.matchLatency, m.activationLatency,
		m.expired, m.ambiguous, m.actions)
	return m
}
