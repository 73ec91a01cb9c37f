package main

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/siphook/siphook/audiohook"
)

// opsRoutes are the operator endpoints, served on the AudioHook listener: Prometheus metrics of every
// component (plus Go and process collectors), liveness and readiness.
func (a *app) opsRoutes(reg *prometheus.Registry) []audiohook.Option {
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{Namespace: "siphook"}))
	return []audiohook.Option{
		audiohook.WithRoute("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{})),
		audiohook.WithRoute("GET /healthz", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			w.Write([]byte("ok\n")) // the process answers: alive
		})),
		audiohook.WithRoute("GET /readyz", http.HandlerFunc(a.serveReady)),
	}
}

// serveReady says whether new calls may be sent here: 503 while starting or draining, so a load balancer
// or an SBC's health check moves them elsewhere.
func (a *app) serveReady(w http.ResponseWriter, _ *http.Request) {
	if a.sip == nil {
		http.Error(w, "starting", http.StatusServiceUnavailable)
		return
	}
	if err := a.sip.Ready(); err != nil {
		http.Error(w, err.Error(), http.StatusServiceUnavailable)
		return
	}
	w.Write([]byte("ready\n"))
}
