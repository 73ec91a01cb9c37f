package sip

import (
	"net/netip"
	"sync"
	"time"

	"github.com/emiago/sipgo/sip"
	"golang.org/x/time/rate"
)

// admission decides, before a request is parsed, whether its source may open a session now: the
// allow-list and a per-source INVITE rate. Session and stream counts are checked where they are known.
type admission struct {
	allow []netip.Prefix // empty: any source
	rate  rate.Limit     // 0: no rate limit
	burst int

	mu        sync.Mutex
	limiters  map[netip.Addr]*sourceLimiter
	lastPrune time.Time
}

type sourceLimiter struct {
	lim  *rate.Limiter
	seen time.Time
}

func newAdmission(c Admission) *admission {
	a := &admission{rate: rate.Limit(c.InviteRate), burst: c.InviteBurst, limiters: map[netip.Addr]*sourceLimiter{}}
	for _, s := range c.AllowSources {
		if p, err := parseSource(s); err == nil { // Validate has reported bad entries
			a.allow = append(a.allow, p)
		}
	}
	return a
}

// sourceAddr is the IP a request came from, or the zero Addr.
func sourceAddr(req *sip.Request) netip.Addr {
	ap, err := netip.ParseAddrPort(req.Source())
	if err != nil {
		return netip.Addr{}
	}
	return ap.Addr().Unmap()
}

// allowed reports whether addr is on the allow-list (or there is none).
func (a *admission) allowed(addr netip.Addr) bool {
	if len(a.allow) == 0 {
		return true
	}
	for _, p := range a.allow {
		if p.Contains(addr) {
			return true
		}
	}
	return false
}

// takeInvite spends one of addr's INVITE tokens; false means the source is over its rate.
func (a *admission) takeInvite(addr netip.Addr, now time.Time) bool {
	if a.rate == 0 {
		return true
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	a.prune(now)
	l := a.limiters[addr]
	if l == nil {
		l = &sourceLimiter{lim: rate.NewLimiter(a.rate, a.burst)}
		a.limiters[addr] = l
	}
	l.seen = now
	return l.lim.AllowN(now, 1)
}

// prune forgets sources idle long enough for their bucket to be full again, so a scan of many source
// addresses cannot grow the table without bound. a.mu must be held.
func (a *admission) prune(now time.Time) {
	refill := time.Duration(float64(a.burst) / float64(a.rate) * float64(time.Second))
	if now.Sub(a.lastPrune) < max(refill, time.Second) {
		return
	}
	a.lastPrune = now
	for addr, l := range a.limiters {
		if now.Sub(l.seen) > refill {
			delete(a.limiters, addr)
		}
	}
}
