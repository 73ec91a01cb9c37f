package genesys

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/siphook/siphook/cti"
)

// maxTopicsPerChannel is the Notification Service's limit per channel (research §2.2).
const maxTopicsPerChannel = 1000

// Source follows every configured tenant; it implements cti.Source. A tenant whose credentials are refused
// stops with a clear error; the others go on.
type Source struct {
	mu      sync.Mutex
	tenants []*tenant // running, for Lookup

	cfg   Config
	log   *slog.Logger
	m     *metrics
	hc    *http.Client
	now   func() time.Time
	sleep func(ctx context.Context, d time.Duration) error
}

// Option configures a Source.
type Option func(*Source)

// WithLogger sets the logger.
func WithLogger(l *slog.Logger) Option { return func(s *Source) { s.log = l } }

// WithRegisterer registers the metrics there (default: a private registry).
func WithRegisterer(r prometheus.Registerer) Option { return func(s *Source) { s.m = newMetrics(r) } }

// WithHTTPClient replaces the HTTP client (tests: TLS roots of a fake).
func WithHTTPClient(c *http.Client) Option { return func(s *Source) { s.hc = c } }

// WithSleep replaces the waits of retries (tests scale them down).
func WithSleep(f func(ctx context.Context, d time.Duration) error) Option {
	return func(s *Source) { s.sleep = f }
}

// New checks the configuration.
func New(cfg Config, opts ...Option) (*Source, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	s := &Source{cfg: cfg, log: slog.Default(), hc: &http.Client{Timeout: 30 * time.Second}, now: time.Now, sleep: sleepCtx}
	for _, o := range opts {
		o(s)
	}
	if s.m == nil {
		s.m = newMetrics(prometheus.NewRegistry())
	}
	return s, nil
}

// Run follows every tenant until ctx ends. It returns an error only when every tenant failed for good.
func (s *Source) Run(ctx context.Context, h cti.Handler) error {
	tenants := s.cfg.AllTenants()
	errs := make([]error, len(tenants))
	var wg sync.WaitGroup
	for i, tc := range tenants {
		wg.Go(func() {
			t := s.newTenant(tc, h)
			s.mu.Lock()
			s.tenants = append(s.tenants, t)
			s.mu.Unlock()
			if errs[i] = t.run(ctx); errs[i] != nil && ctx.Err() == nil {
				t.log.Error("genesys tenant stopped: fix its configuration", "error", errs[i])
			}
		})
	}
	wg.Wait()
	if ctx.Err() != nil {
		return nil
	}
	return errors.Join(errs...)
}

// Lookup returns a conversation's current derived state, fetching its snapshot from Genesys when the feed
// has not shown it yet: an AudioHook session, or a SIPREC metadata update, can name a conversation before
// its first notification arrives. ok is false when no tenant knows the conversation or no tracked agent is
// on it. An event the fetch produces is delivered to the handler as usual.
func (s *Source) Lookup(ctx context.Context, conversationID string) (state cti.State, ok bool, err error) {
	id := strings.ToLower(conversationID)
	s.mu.Lock()
	tenants := slices.Clone(s.tenants)
	s.mu.Unlock()
	for _, t := range tenants {
		t.mu.Lock()
		state, ok = t.derive.State(id)
		t.mu.Unlock()
		if ok {
			return state, true, nil
		}
		live := t.liveCount(id)
		var raw jsonRaw
		err = t.c.do(ctx, http.MethodGet, "/api/v2/conversations/"+url.PathEscape(id), nil, &raw)
		if apiErr, isAPI := errors.AsType[*APIError](err); isAPI && apiErr.Status == http.StatusNotFound {
			err = nil
			continue
		}
		if err != nil {
			return "", false, err
		}
		conv, perr := ParseConversation(raw)
		if perr != nil {
			return "", false, perr
		}
		t.applyFetched(conv, live)
		t.mu.Lock()
		state, ok = t.derive.State(id)
		t.mu.Unlock()
		if ok {
			return state, true, nil
		}
	}
	return "", false, err
}

// tenant follows one Genesys organisation.
type tenant struct {
	src     *Source
	cfg     Tenant
	name    string
	log     *slog.Logger
	c       *client
	h       cti.Handler
	mu      sync.Mutex // serialises Apply and the handler: events of one conversation stay in order
	derive  *Deriver
	usersMu sync.RWMutex // users is read by the deriver while mu is held: its own lock
	users   map[string]userInfo
	kick    chan struct{}     // reconcile soon
	live    map[string]uint64 // live snapshots applied per conversation, under mu: a GET overtaken by one is dropped
	seen    dedup             // correlation ids of publications already applied (channel overlaps)
	tracked sync.Map          // user id → struct{}: read by the deriver from several goroutines
}

type userInfo struct{ name, email string }

func (s *Source) newTenant(tc Tenant, h cti.Handler) *tenant {
	api, login, _ := tc.bases() // validated
	name := tc.label()
	t := &tenant{src: s, cfg: tc, name: name, h: h, log: s.log.With("tenant", name), kick: make(chan struct{}, 1),
		users: map[string]userInfo{}, live: map[string]uint64{}, seen: newDedup(10000)}
	t.c = &client{api: api, login: login, id: tc.ClientID, secret: tc.ClientSecret, hc: s.hc, log: t.log, now: s.now,
		sleep: s.sleep, maxRetryWait: s.cfg.MaxRetryAfter, onRetry: func(r string) { s.m.retries.WithLabelValues(name, r).Inc() }}
	t.derive = &Deriver{
		Tenant:           name,
		Tracked:          func(id string) bool { _, ok := t.tracked.Load(id); return ok },
		UserInfo:         t.userInfo,
		UUIAttributes:    tc.UUIAttribute,
		SecurePauseHolds: tc.SecurePauseHolds,
		Now:              s.now,
	}
	return t
}

func (t *tenant) userInfo(id string) (string, string) {
	t.usersMu.RLock()
	defer t.usersMu.RUnlock()
	u := t.users[id]
	return u.name, u.email
}

// run: token, users, channels, reconciliation, until ctx ends or the credentials are refused.
func (t *tenant) run(ctx context.Context) error {
	if _, err := t.c.Token(ctx); err != nil {
		return err
	}
	ids, err := t.resolveUsers(ctx)
	if err != nil {
		return fmt.Errorf("resolving tracked agents: %w", err)
	}
	t.log.Info("genesys tracker started", "tracked_agents", len(ids))
	var wg sync.WaitGroup
	defer wg.Wait()
	rctx, stopReconciler := context.WithCancel(ctx)
	defer stopReconciler()
	wg.Go(func() { t.reconciler(rctx) })
	refresh := time.NewTicker(t.src.cfg.UserRefresh)
	defer refresh.Stop()
	for {
		stopChannels := t.startChannels(ctx, ids, &wg)
		for changed := false; !changed; {
			select {
			case <-ctx.Done():
				stopChannels()
				return nil
			case <-refresh.C:
			}
			next, err := t.resolveUsers(ctx)
			if err != nil {
				t.log.Warn("refreshing tracked agents failed; keeping the current set", "error", err)
				continue
			}
			if changed = !sameSet(ids, next); changed {
				t.log.Info("tracked agents changed; resubscribing", "before", len(ids), "after", len(next))
				ids = next
			}
		}
		stopChannels() // new channels for the new set; reconciliation covers the switch
	}
}

// startChannels runs one channel per chunk of at most 1,000 topics and returns the function that stops them.
func (t *tenant) startChannels(ctx context.Context, ids []string, wg *sync.WaitGroup) func() {
	ctx, cancel := context.WithCancel(ctx)
	var chans sync.WaitGroup
	topics := make([]string, 0, len(ids))
	for _, id := range ids {
		topics = append(topics, "v2.users."+id+".conversations")
	}
	for start := 0; start < len(topics); start += maxTopicsPerChannel {
		chunk := topics[start:min(start+maxTopicsPerChannel, len(topics))]
		chans.Go(func() { t.runChannel(ctx, chunk) })
	}
	wg.Go(chans.Wait)
	return func() { cancel(); chans.Wait() }
}

func sameSet(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	set := make(map[string]bool, len(a))
	for _, x := range a {
		set[x] = true
	}
	for _, x := range b {
		if !set[x] {
			return false
		}
	}
	return true
}

// resolveUsers turns the configured users (ids or emails), groups and queues into tracked user ids.
func (t *tenant) resolveUsers(ctx context.Context) ([]string, error) {
	type user struct {
		ID    string `json:"id"`
		Name  string `json:"name"`
		Email string `json:"email"`
		User  *struct {
			ID    string `json:"id"`
			Name  string `json:"name"`
			Email string `json:"email"`
		} `json:"user"`
	}
	type page struct {
		Entities  []user `json:"entities"`
		PageCount int    `json:"pageCount"`
	}
	all := func(path string) ([]user, error) {
		var out []user
		for n := 1; ; n++ {
			var p page
			sep := "?"
			if strings.Contains(path, "?") {
				sep = "&"
			}
			if err := t.c.do(ctx, http.MethodGet, fmt.Sprintf("%s%spageSize=100&pageNumber=%d", path, sep, n), nil, &p); err != nil {
				return nil, err
			}
			for _, u := range p.Entities {
				if u.User != nil { // queue members wrap the user
					u = user{ID: u.User.ID, Name: u.User.Name, Email: u.User.Email}
				}
				out = append(out, u)
			}
			if n >= p.PageCount || len(p.Entities) == 0 {
				return out, nil
			}
		}
	}
	users := map[string]userInfo{}
	wanted := map[string]bool{} // lower-case ids and emails
	for _, u := range t.cfg.Users {
		wanted[strings.ToLower(strings.TrimSpace(u))] = true
	}
	if len(wanted) > 0 {
		list, err := all("/api/v2/users?state=active")
		if err != nil {
			return nil, err
		}
		for _, u := range list {
			if wanted[strings.ToLower(u.ID)] || wanted[strings.ToLower(u.Email)] {
				users[strings.ToLower(u.ID)] = userInfo{u.Name, u.Email}
			}
		}
	}
	for _, g := range t.cfg.Groups {
		list, err := all("/api/v2/groups/" + url.PathEscape(g) + "/members")
		if err != nil {
			return nil, fmt.Errorf("group %s: %w", g, err)
		}
		for _, u := range list {
			users[strings.ToLower(u.ID)] = userInfo{u.Name, u.Email}
		}
	}
	for _, q := range t.cfg.Queues {
		list, err := all("/api/v2/routing/queues/" + url.PathEscape(q) + "/members")
		if err != nil {
			return nil, fmt.Errorf("queue %s: %w", q, err)
		}
		for _, u := range list {
			users[strings.ToLower(u.ID)] = userInfo{u.Name, u.Email}
		}
	}
	if len(users) == 0 {
		return nil, errors.New("none of the configured users, groups or queues resolves to an active user")
	}
	t.usersMu.Lock()
	t.users = users
	t.usersMu.Unlock()
	ids := make([]string, 0, len(users))
	for id := range users {
		t.tracked.Store(id, struct{}{})
		ids = append(ids, id)
	}
	t.tracked.Range(func(k, _ any) bool {
		if _, ok := users[k.(string)]; !ok {
			t.tracked.Delete(k)
		}
		return true
	})
	return ids, nil
}

// apply feeds one live snapshot to the deriver and hands on the event it yields.
func (t *tenant) apply(c *Conversation) bool {
	t.mu.Lock()
	t.live[strings.ToLower(c.ID)]++
	ev := t.derive.Apply(c, t.src.now(), false)
	t.mu.Unlock()
	return t.emit(ev)
}

// liveCount is how many live snapshots of a conversation were applied so far.
func (t *tenant) liveCount(id string) uint64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.live[id]
}

// applyFetched feeds a snapshot fetched by REST, unless a live snapshot of the conversation was applied
// since the fetch began (live is liveCount then): the live one is at least as new.
func (t *tenant) applyFetched(c *Conversation, live uint64) bool {
	id := strings.ToLower(c.ID)
	t.mu.Lock()
	if t.live[id] != live {
		t.mu.Unlock()
		return false
	}
	ev := t.derive.Apply(c, t.src.now(), true)
	t.mu.Unlock()
	return t.emit(ev)
}

// emit hands an event to the handler, with metrics and a log line.
func (t *tenant) emit(ev *cti.Event) bool {
	if ev == nil {
		return false
	}
	if !ev.Time.IsZero() {
		t.src.m.lag.WithLabelValues(t.name).Observe(ev.Received.Sub(ev.Time).Seconds())
	}
	t.src.m.events.WithLabelValues(t.name, string(ev.State)).Inc()
	t.log.Info("cti event", "conversation_id", ev.ConversationID, "state", ev.State, "agents", len(ev.Agents), "reconciled", ev.Reconciled)
	t.h(*ev)
	return true
}

// vanished ends a conversation Genesys no longer has (its end was missed).
func (t *tenant) vanished(id string) bool {
	t.mu.Lock()
	ev := t.derive.Vanished(id, t.src.now())
	t.mu.Unlock()
	return t.emit(ev)
}

// reconcileSoon asks the reconciler to run (after any gap in the feed).
func (t *tenant) reconcileSoon() {
	select {
	case t.kick <- struct{}{}:
	default:
	}
}

// reconciler runs reconciliation on demand and on a slow timer, and forgets long-ended conversations.
func (t *tenant) reconciler(ctx context.Context) {
	tick := time.NewTicker(t.src.cfg.ReconcileEvery)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.kick:
		case <-tick.C:
		}
		if err := t.reconcile(ctx); err != nil && ctx.Err() == nil {
			t.log.Warn("genesys reconciliation failed; will retry", "error", err)
			t.src.sleep(ctx, 5*time.Second)
			t.reconcileSoon()
		}
		t.mu.Lock()
		t.derive.Sweep()
		for id := range t.live {
			if !t.derive.Knows(id) {
				delete(t.live, id) // forgotten by the deriver: nothing left to order against
			}
		}
		t.mu.Unlock()
	}
}

// reconcile fetches the current snapshot of every conversation that may have changed unseen: those we
// hold as not ended, and those analytics lists as open for a tracked agent (research §4.3).
func (t *tenant) reconcile(ctx context.Context) error {
	t.mu.Lock()
	ids := map[string]bool{}
	for _, id := range t.derive.Active() {
		ids[id] = true
	}
	t.mu.Unlock()
	var users []string
	t.tracked.Range(func(k, _ any) bool { users = append(users, k.(string)); return true })
	now := t.src.now().UTC()
	interval := now.Add(-24*time.Hour).Format("2006-01-02T15:04:05.000Z") + "/" + now.Add(time.Minute).Format("2006-01-02T15:04:05.000Z")
	for start := 0; start < len(users); start += 100 {
		var preds []map[string]string
		for _, u := range users[start:min(start+100, len(users))] {
			preds = append(preds, map[string]string{"type": "dimension", "dimension": "userId", "value": u})
		}
		for page := 1; ; page++ {
			query := map[string]any{
				"interval": interval, "order": "asc", "orderBy": "conversationStart",
				"paging": map[string]int{"pageSize": 100, "pageNumber": page},
				"conversationFilters": []any{map[string]any{"type": "and", "predicates": []any{
					map[string]string{"type": "dimension", "dimension": "conversationEnd", "operator": "notExists"}}}},
				"segmentFilters": []any{map[string]any{"type": "or", "predicates": preds}},
			}
			var res struct {
				Conversations []struct {
					ConversationID string `json:"conversationId"`
				} `json:"conversations"`
				TotalHits int `json:"totalHits"`
			}
			if err := t.c.do(ctx, http.MethodPost, "/api/v2/analytics/conversations/details/query", query, &res); err != nil {
				return err
			}
			for _, c := range res.Conversations {
				ids[strings.ToLower(c.ConversationID)] = true
			}
			if len(res.Conversations) < 100 || page*100 >= res.TotalHits {
				break
			}
		}
	}
	fixes := 0
	for id := range ids {
		live := t.liveCount(id)
		var raw jsonRaw
		err := t.c.do(ctx, http.MethodGet, "/api/v2/conversations/"+url.PathEscape(id), nil, &raw)
		var apiErr *APIError
		if errors.As(err, &apiErr) && apiErr.Status == http.StatusNotFound {
			if t.vanished(id) {
				fixes++
			}
			continue
		}
		if err != nil {
			return err
		}
		conv, err := ParseConversation(raw)
		if err != nil {
			t.log.Warn("conversation unreadable", "conversation_id", id, "error", err)
			continue
		}
		if t.applyFetched(conv, live) {
			fixes++
		}
	}
	if fixes > 0 {
		t.src.m.fixes.WithLabelValues(t.name).Add(float64(fixes))
		t.log.Info("genesys reconciliation corrected states", "conversations", len(ids), "events", fixes)
	}
	return nil
}

// jsonRaw keeps a response body as is.
type jsonRaw []byte

func (r *jsonRaw) UnmarshalJSON(b []byte) error { *r = append((*r)[:0], b...); return nil }

// dedup remembers the last n correlation ids: a publication delivered on two channels during a rollover (or
// replayed after a reconnect) is applied once, so an old snapshot arriving late cannot undo a newer one.
type dedup struct {
	mu   sync.Mutex
	set  map[string]struct{}
	ring []string
	next int
}

func newDedup(n int) dedup { return dedup{set: make(map[string]struct{}, n), ring: make([]string, n)} }

// firstTime records id and reports whether it was new. An empty id is always new.
func (d *dedup) firstTime(id string) bool {
	if id == "" {
		return true
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if _, ok := d.set[id]; ok {
		return false
	}
	delete(d.set, d.ring[d.next])
	d.ring[d.next] = id
	d.set[id] = struct{}{}
	d.next = (d.next + 1) % len(d.ring)
	return true
}
