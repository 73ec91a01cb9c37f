package main

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/siphook/siphook/api"
	"github.com/siphook/siphook/audiohook"
	"github.com/siphook/siphook/matcher"
	"github.com/siphook/siphook/web"
)

// opsRoutes are the operator endpoints, served on the AudioHook listener: Prometheus metrics of every
// component (plus Go and process collectors), liveness and readiness, and the recordings API and web UI.
func (a *app) opsRoutes(reg *prometheus.Registry) []audiohook.Option {
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{Namespace: "siphook"}))
	var ui []audiohook.Option
	if a.api != nil {
		// No method in these patterns: "/" is the least specific route, so /audiohook, /metrics and the API
		// keep theirs (the handlers refuse methods they do not serve).
		ui = []audiohook.Option{audiohook.WithRoute("/api/v1/", a.api.Handler()), audiohook.WithRoute("/", web.Handler())}
	}
	return append(ui,
		audiohook.WithRoute("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{})),
		audiohook.WithRoute("GET /healthz", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			w.Write([]byte("ok\n")) // the process answers: alive
		})),
		audiohook.WithRoute("GET /readyz", http.HandlerFunc(a.serveReady)),
	)
}

// liveSessions shows the matcher's live sessions to the API.
type liveSessions struct{ m *matcher.Matcher }

func (l liveSessions) LiveSessions() []api.LiveSession {
	infos := l.m.Sessions()
	out := make([]api.LiveSession, len(infos))
	for i, s := range infos {
		ls := api.LiveSession{ID: s.ID, Source: s.Source, State: s.State, Since: s.Since, Tenant: s.Tenant,
			ConversationID: s.ConversationID, WaitingReason: s.WaitingReason}
		for _, k := range s.Keys {
			ls.Keys = append(ls.Keys, api.Key{Kind: string(k.Kind), Value: k.Value})
		}
		for _, ag := range s.Agents {
			ls.Agents = append(ls.Agents, api.Agent{UserID: ag.UserID, Name: ag.Name})
		}
		if s.MatchedBy.Value != "" {
			ls.MatchedBy = string(s.MatchedBy.Kind) + " " + s.MatchedBy.Value
		}
		out[i] = ls
	}
	return out
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
