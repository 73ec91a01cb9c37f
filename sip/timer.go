package sip

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/emiago/sipgo/sip"
)

// Session timers (RFC 4028): an SRC that asks for one refreshes the recording dialog (or asks us to) before
// Session-Expires runs out; a dialog nobody refreshes is dead, and its recording must be finalised rather
// than left open until the RTP stops.

// SessionExpires is the value of a Session-Expires header: the interval in seconds and who refreshes, "uac"
// (the sender of the request carrying it) or "uas"; "" when the header leaves it open.
type SessionExpires struct {
	Delta     uint32
	Refresher string
}

// String formats the header value.
func (se SessionExpires) String() string {
	if se.Refresher == "" {
		return strconv.FormatUint(uint64(se.Delta), 10)
	}
	return fmt.Sprintf("%d;refresher=%s", se.Delta, se.Refresher)
}

var errTimerHeader = errors.New("malformed session timer header")

// ParseSessionExpires parses "1800;refresher=uac" (RFC 4028 §4). Unknown parameters are ignored; a
// refresher other than uac or uas is an error.
func ParseSessionExpires(v string) (SessionExpires, error) {
	delta, params, _ := strings.Cut(v, ";")
	d, err := parseDeltaSeconds(delta)
	if err != nil {
		return SessionExpires{}, err
	}
	se := SessionExpires{Delta: d}
	for p := range strings.SplitSeq(params, ";") {
		name, value, _ := strings.Cut(p, "=")
		if !strings.EqualFold(strings.TrimSpace(name), "refresher") {
			continue
		}
		switch r := strings.ToLower(strings.TrimSpace(value)); r {
		case "uac", "uas":
			se.Refresher = r
		default:
			return SessionExpires{}, fmt.Errorf("%w: refresher %q", errTimerHeader, value)
		}
	}
	return se, nil
}

// ParseMinSE parses a Min-SE header value: delta-seconds, parameters ignored.
func ParseMinSE(v string) (uint32, error) {
	delta, _, _ := strings.Cut(v, ";")
	return parseDeltaSeconds(delta)
}

// parseDeltaSeconds reads RFC 3261 delta-seconds; values beyond 2^32-1 are an error here, not a wrap.
func parseDeltaSeconds(s string) (uint32, error) {
	s = strings.TrimSpace(s)
	n, err := strconv.ParseUint(s, 10, 32)
	if err != nil || n == 0 {
		return 0, fmt.Errorf("%w: delta-seconds %q", errTimerHeader, s)
	}
	return uint32(n), nil
}

// sessionTimer is a session's negotiated timer: the interval and whether we are the refresher.
type sessionTimer struct {
	interval  time.Duration
	weRefresh bool
}

// sessionExpiresHeader finds Session-Expires in its long or compact ("x") form.
func sessionExpiresHeader(req *sip.Request) sip.Header {
	if h := req.GetHeader("Session-Expires"); h != nil {
		return h
	}
	return req.GetHeader("x")
}

// negotiateTimer reads an SRC request's session timer headers (the INVITE, or a refreshing re-INVITE or
// UPDATE). It returns nil when no timer applies: the SRC neither asked for one nor supports one, or our
// own session_expires is 0. An interval below our minimum is refused with 422 and our Min-SE.
func (c Config) negotiateTimer(req *sip.Request, previous *sessionTimer) (*sessionTimer, error) {
	minSE := uint32(c.MinSessionExpires / time.Second)
	h := sessionExpiresHeader(req)
	if h == nil {
		if previous != nil {
			return previous, nil // a re-INVITE without the header keeps the timer (RFC 4028 §9 lets us keep it)
		}
		if c.SessionExpires <= 0 || !supportsTimer(req) {
			return nil, nil
		}
		delta := uint32(c.SessionExpires / time.Second)
		if mh := req.GetHeader("Min-SE"); mh != nil {
			if m, err := ParseMinSE(mh.Value()); err == nil && m > delta {
				delta = m
			}
		}
		return &sessionTimer{interval: time.Duration(delta) * time.Second}, nil
	}
	se, err := ParseSessionExpires(h.Value())
	if err != nil {
		return nil, sipError(400, "Bad Request", "malformed Session-Expires", err)
	}
	if se.Delta < minSE {
		e := sipError(422, "Session Interval Too Small", "Session-Expires below our Min-SE", fmt.Errorf("session-expires %d < %d", se.Delta, minSE))
		e.Headers = map[string]string{"Min-SE": strconv.FormatUint(uint64(minSE), 10)}
		return nil, e
	}
	// Absent refresher: the choice is ours (RFC 4028 §9). The SRC refreshes, as it does for every SBC we know.
	return &sessionTimer{interval: time.Duration(se.Delta) * time.Second, weRefresh: se.Refresher == "uas"}, nil
}

func supportsTimer(req *sip.Request) bool {
	for _, name := range []string{"Supported", "k", "Require"} {
		for _, h := range req.GetHeaders(name) {
			if hasToken(h.Value(), "timer") {
				return true
			}
		}
	}
	return false
}

// header is the Session-Expires value for a message we send; asUAC says we send the request (our re-INVITE)
// rather than answer one, since refresher names the role in that transaction.
func (t *sessionTimer) header(asUAC bool) string {
	refresher := "uac"
	if t.weRefresh != asUAC {
		refresher = "uas"
	}
	return SessionExpires{Delta: uint32(t.interval / time.Second), Refresher: refresher}.String()
}

// wait is how long after a refresh the next thing happens: the refresher refreshes at half the interval; the
// other side gives up min(32 s, interval/3) before the end (RFC 4028 §10).
func (t *sessionTimer) wait() time.Duration {
	if t.weRefresh {
		return t.interval / 2
	}
	return t.interval - time.Duration(math.Min(float64(32*time.Second), float64(t.interval/3)))
}
