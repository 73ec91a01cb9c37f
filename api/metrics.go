package api

import "github.com/prometheus/client_golang/prometheus"

// metrics are the API's Prometheus series.
type metrics struct {
	requests *prometheus.CounterVec // by route (mux pattern) and status code
}

func newMetrics(reg prometheus.Registerer, ix *Index) (*metrics, error) {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "siphook", Subsystem: "api", Name: "requests_total",
			Help: "API requests answered, by route (the mux pattern; \"unmatched\" for 404 and 405 of the mux) and status code.",
		}, []string{"route", "code"}),
	}
	recordings := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Namespace: "siphook", Subsystem: "index", Name: "recordings",
		Help: "Recordings in the index.",
	}, func() float64 { return float64(ix.Len()) })
	for _, c := range []prometheus.Collector{m.requests, recordings} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}
