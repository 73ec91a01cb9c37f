package api

import (
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/siphook/siphook/recorder"
)

// Filter selects recordings; every field set must match. Zero fields match everything.
type Filter struct {
	From, To       time.Time // start in [From, To)
	Tenant         string    // exact
	ConversationID string    // exact, case-insensitive
	Agent          string    // an agent's user id, or part of an agent's name (case-insensitive)
	ANI, DNIS      string    // digits as a substring of the number's digits; without digits a case-insensitive substring
	Direction      string    // inbound | outbound
	Matched        *bool     // tied to a CTI call or not
	Source         string    // siprec | audiohook
	State          string    // recorder.State* constants
	// Ranges over the call analytics, inclusive; a recording without analytics matches none of them.
	SilenceRatio, TalkOverRatio, MOS Range
}

// Range is an inclusive interval; nil ends are open.
type Range struct{ Min, Max *float64 }

func (r Range) set() bool { return r.Min != nil || r.Max != nil }

func (r Range) contains(v float64) bool {
	return (r.Min == nil || v >= *r.Min) && (r.Max == nil || v <= *r.Max)
}

var (
	directions = []string{"inbound", "outbound"}
	sources    = []string{"siprec", "audiohook"}
	states     = []string{recorder.StateRecording, recorder.StateCompleted, recorder.StateNeverActivated, recorder.StateFailed}
)

// ParseFilter reads the query parameters of GET /api/v1/recordings. Empty parameters count as absent. Its
// errors name the parameter at fault.
func ParseFilter(q url.Values) (f Filter, limit int, cursor string, err error) {
	bad := func(param, want string) error {
		return fmt.Errorf("parameter %s: %q is not %s", param, q.Get(param), want)
	}
	parseTime := func(param string, t *time.Time) error {
		if v := q.Get(param); v != "" {
			var err error
			if *t, err = time.Parse(time.RFC3339Nano, v); err != nil {
				return bad(param, "an RFC 3339 time")
			}
		}
		return nil
	}
	oneOf := func(param string, dst *string, allowed []string) error {
		v := strings.ToLower(q.Get(param))
		if v == "" {
			return nil
		}
		for _, a := range allowed {
			if v == a {
				*dst = v
				return nil
			}
		}
		return bad(param, "one of "+strings.Join(allowed, ", "))
	}
	if err := parseTime("from", &f.From); err != nil {
		return Filter{}, 0, "", err
	}
	if err := parseTime("to", &f.To); err != nil {
		return Filter{}, 0, "", err
	}
	if !f.From.IsZero() && !f.To.IsZero() && !f.To.After(f.From) {
		return Filter{}, 0, "", errors.New("parameter to: must be after from")
	}
	for _, e := range []struct {
		param   string
		dst     *string
		allowed []string
	}{{"direction", &f.Direction, directions}, {"source", &f.Source, sources}, {"state", &f.State, states}} {
		if err := oneOf(e.param, e.dst, e.allowed); err != nil {
			return Filter{}, 0, "", err
		}
	}
	switch q.Get("matched") {
	case "":
	case "true", "false":
		m := q.Get("matched") == "true"
		f.Matched = &m
	default:
		return Filter{}, 0, "", bad("matched", "true or false")
	}
	for _, e := range []struct {
		param    string
		dst      *Range
		min, max float64
	}{{"silence_ratio", &f.SilenceRatio, 0, 1}, {"talk_over_ratio", &f.TalkOverRatio, 0, 1}, {"mos", &f.MOS, 1, 5}} {
		for _, end := range []struct {
			suffix string
			dst    **float64
		}{{"_min", &e.dst.Min}, {"_max", &e.dst.Max}} {
			param := e.param + end.suffix
			if v := q.Get(param); v != "" {
				x, err := strconv.ParseFloat(v, 64)
				if err != nil || x < e.min || x > e.max {
					return Filter{}, 0, "", bad(param, fmt.Sprintf("a number from %g to %g", e.min, e.max))
				}
				*end.dst = &x
			}
		}
	}
	limit = DefaultLimit
	if v := q.Get("limit"); v != "" {
		if limit, err = strconv.Atoi(v); err != nil || limit < 1 || limit > MaxLimit {
			return Filter{}, 0, "", bad("limit", fmt.Sprintf("an integer from 1 to %d", MaxLimit))
		}
	}
	if cursor = q.Get("cursor"); cursor != "" {
		if _, err := decodeCursor(cursor); err != nil {
			return Filter{}, 0, "", bad("cursor", "a cursor from a previous page")
		}
	}
	f.Tenant, f.ConversationID, f.Agent = q.Get("tenant"), q.Get("conversation_id"), q.Get("agent")
	f.ANI, f.DNIS = q.Get("ani"), q.Get("dnis")
	return f, limit, cursor, nil
}

// matcher is a Filter prepared for matching many rows.
type matcher struct {
	Filter
	aniDigits, dnisDigits string
}

func (f Filter) compile() matcher {
	return matcher{Filter: f, aniDigits: digits(f.ANI), dnisDigits: digits(f.DNIS)}
}

// match checks everything but the time range, which Query handles by position.
func (m *matcher) match(r *row) bool {
	switch {
	case m.Tenant != "" && r.Tenant != m.Tenant,
		m.ConversationID != "" && !strings.EqualFold(r.ConversationID, m.ConversationID),
		m.Direction != "" && !strings.EqualFold(r.Direction, m.Direction),
		m.Matched != nil && r.Matched != *m.Matched,
		m.Source != "" && !strings.EqualFold(r.Source, m.Source),
		m.State != "" && r.State != m.State,
		m.ANI != "" && !numberMatch(r.ANI, r.aniDigits, m.ANI, m.aniDigits),
		m.DNIS != "" && !numberMatch(r.DNIS, r.dnisDigits, m.DNIS, m.dnisDigits),
		m.Agent != "" && !m.agentMatch(r.Agents):
		return false
	}
	if m.SilenceRatio.set() || m.TalkOverRatio.set() || m.MOS.set() {
		a := r.Analytics
		if a == nil || !m.SilenceRatio.contains(a.SilenceRatio) || !m.TalkOverRatio.contains(a.TalkOverRatio) ||
			(m.MOS.set() && (a.MOS == 0 || !m.MOS.contains(a.MOS))) {
			return false
		}
	}
	return true
}

func (m *matcher) agentMatch(agents []Agent) bool {
	for _, a := range agents {
		if a.UserID == m.Agent || containsFold(a.Name, m.Agent) {
			return true
		}
	}
	return false
}

// numberMatch compares by digits, so "+1 555 0100" finds "tel:+15550100"; a parameter without digits
// ("anonymous") compares as text.
func numberMatch(number, numberDigits, param, paramDigits string) bool {
	if paramDigits == "" {
		return containsFold(number, param)
	}
	return strings.Contains(numberDigits, paramDigits)
}

// containsFold is a case-insensitive strings.Contains that does not allocate: queries run it on every row.
func containsFold(s, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		if strings.EqualFold(s[i:i+len(sub)], sub) {
			return true
		}
	}
	return false
}
