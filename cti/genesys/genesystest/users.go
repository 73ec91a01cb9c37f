package genesystest

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
)

// User states (research §4.1: state active|deleted).
const (
	UserActive  = "active"
	UserDeleted = "deleted"
)

// User is a Genesys user. Groups and Queues feed the group and queue member look-ups.
type User struct {
	ID, Name, Email string
	Groups, Queues  []string
	State           string // UserActive (default) or UserDeleted
}

// Page size limits of the fake. The real maximum for /api/v2/users is not confirmed (research §4.1); 500
// is what some Genesys list endpoints accept.
const (
	defaultPageSize = 25
	maxPageSize     = 500
)

// AddUser adds or replaces a user.
func (s *Server) AddUser(u User) {
	if u.State == "" {
		u.State = UserActive
	}
	u.Groups, u.Queues = slices.Clone(u.Groups), slices.Clone(u.Queues)
	s.mu.Lock()
	defer s.mu.Unlock()
	if old := s.userByID[u.ID]; old != nil {
		*old = u
		return
	}
	p := &u
	s.users = append(s.users, p)
	s.userByID[u.ID] = p
}

// userEntity is the User model as far as the tracker needs it.
type userEntity struct {
	ID       string `json:"id"`
	Name     string `json:"name"`
	Email    string `json:"email,omitempty"`
	Username string `json:"username,omitempty"`
	State    string `json:"state"`
	SelfURI  string `json:"selfUri"`
}

func entityOf(u *User) userEntity {
	return userEntity{ID: u.ID, Name: u.Name, Email: u.Email, Username: u.Email, State: u.State, SelfURI: "/api/v2/users/" + u.ID}
}

// paging reads pageSize and pageNumber; ok is false after a 400 has been written.
func paging(w http.ResponseWriter, q url.Values) (size, number int, ok bool) {
	size, number = defaultPageSize, 1
	for name, dst := range map[string]*int{"pageSize": &size, "pageNumber": &number} {
		v := q.Get(name)
		if v == "" {
			continue
		}
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			writeError(w, http.StatusBadRequest, "bad.request", name+" must be a positive integer")
			return 0, 0, false
		}
		*dst = n
	}
	if size > maxPageSize {
		writeError(w, http.StatusBadRequest, "bad.request", "pageSize must be at most "+strconv.Itoa(maxPageSize))
		return 0, 0, false
	}
	return size, number, true
}

// entityListing is the *EntityListing envelope: entities plus paging fields and URIs (research §4.1).
func entityListing[T any](path string, q url.Values, all []T, size, number int) map[string]any {
	total := len(all)
	pageCount := (total + size - 1) / size
	lo, hi := min((number-1)*size, total), min(number*size, total)
	uri := func(n int) string {
		v := url.Values{}
		for k, vs := range q {
			v[k] = vs
		}
		v.Set("pageSize", strconv.Itoa(size))
		v.Set("pageNumber", strconv.Itoa(n))
		return path + "?" + v.Encode()
	}
	out := map[string]any{
		"entities":   append([]T{}, all[lo:hi]...),
		"pageSize":   size,
		"pageNumber": number,
		"total":      total,
		"pageCount":  pageCount,
		"firstUri":   uri(1),
		"selfUri":    uri(number),
		"lastUri":    uri(max(pageCount, 1)),
	}
	if number < pageCount {
		out["nextUri"] = uri(number + 1)
	}
	if number > 1 {
		out["previousUri"] = uri(number - 1)
	}
	return out
}

// handleUsers is GET /api/v2/users: pageSize, pageNumber, id (repeatable or comma-separated), state
// (default active).
func (s *Server) handleUsers(w http.ResponseWriter, r *http.Request, _ *token) {
	q := r.URL.Query()
	size, number, ok := paging(w, q)
	if !ok {
		return
	}
	state := q.Get("state")
	if state == "" {
		state = UserActive
	}
	var ids []string
	for _, v := range q["id"] {
		for _, id := range strings.Split(v, ",") {
			if id = strings.TrimSpace(id); id != "" {
				ids = append(ids, id)
			}
		}
	}
	s.mu.Lock()
	var all []userEntity
	for _, u := range s.users {
		if (state == "any" || u.State == state) && (len(ids) == 0 || slices.Contains(ids, u.ID)) {
			all = append(all, entityOf(u))
		}
	}
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, entityListing(r.URL.Path, q, all, size, number))
}

// handleGroupMembers is GET /api/v2/groups/{id}/members: the active users in the group.
func (s *Server) handleGroupMembers(w http.ResponseWriter, r *http.Request, _ *token) {
	q := r.URL.Query()
	size, number, ok := paging(w, q)
	if !ok {
		return
	}
	group := r.PathValue("id")
	s.mu.Lock()
	var all []userEntity
	for _, u := range s.users {
		if u.State == UserActive && slices.Contains(u.Groups, group) {
			all = append(all, entityOf(u))
		}
	}
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, entityListing(r.URL.Path, q, all, size, number))
}

// queueMember is the QueueMember model: the member's user inside.
type queueMember struct {
	ID       string     `json:"id"`
	Name     string     `json:"name"`
	User     userEntity `json:"user"`
	Joined   bool       `json:"joined"`
	MemberBy string     `json:"memberBy"`
}

// handleQueueMembers is GET /api/v2/routing/queues/{id}/members.
func (s *Server) handleQueueMembers(w http.ResponseWriter, r *http.Request, _ *token) {
	q := r.URL.Query()
	size, number, ok := paging(w, q)
	if !ok {
		return
	}
	queue := r.PathValue("id")
	s.mu.Lock()
	var all []queueMember
	for _, u := range s.users {
		if u.State == UserActive && slices.Contains(u.Queues, queue) {
			all = append(all, queueMember{ID: u.ID, Name: u.Name, User: entityOf(u), Joined: true, MemberBy: "user"})
		}
	}
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, entityListing(r.URL.Path, q, all, size, number))
}

// handleUserSearch is a small POST /api/v2/users/search: EXACT or CONTAINS criteria on id, email, name,
// state, groups and queues ("groups.id", "queues.id"); criteria are ANDed, values within one ORed.
func (s *Server) handleUserSearch(w http.ResponseWriter, r *http.Request, _ *token) {
	var req struct {
		PageSize   int `json:"pageSize"`
		PageNumber int `json:"pageNumber"`
		Query      []struct {
			Type   string   `json:"type"`
			Fields []string `json:"fields"`
			Value  string   `json:"value"`
			Values []string `json:"values"`
		} `json:"query"`
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err == nil {
		err = json.Unmarshal(body, &req)
	}
	if err != nil {
		writeError(w, http.StatusBadRequest, "bad.request", "invalid search body: "+err.Error())
		return
	}
	size, number := positiveOr(req.PageSize, defaultPageSize), positiveOr(req.PageNumber, 1)
	if size > 100 {
		writeError(w, http.StatusBadRequest, "bad.request", "pageSize must be at most 100")
		return
	}
	s.mu.Lock()
	var all []userEntity
	for _, u := range s.users {
		match := true
		for _, c := range req.Query {
			values := c.Values
			if c.Value != "" {
				values = append(values, c.Value)
			}
			hit := false
			for _, f := range c.Fields {
				for _, have := range userField(u, f) {
					for _, v := range values {
						switch strings.ToUpper(c.Type) {
						case "EXACT":
							hit = hit || strings.EqualFold(have, v)
						case "CONTAINS":
							hit = hit || strings.Contains(strings.ToLower(have), strings.ToLower(v))
						}
					}
				}
			}
			match = match && hit
		}
		if match {
			all = append(all, entityOf(u))
		}
	}
	s.mu.Unlock()
	total := len(all)
	lo, hi := min((number-1)*size, total), min(number*size, total)
	writeJSON(w, http.StatusOK, map[string]any{
		"total": total, "pageSize": size, "pageNumber": number,
		"pageCount": (total + size - 1) / size,
		"results":   append([]userEntity{}, all[lo:hi]...),
	})
}

func userField(u *User, field string) []string {
	switch field {
	case "id":
		return []string{u.ID}
	case "email", "username":
		return []string{u.Email}
	case "name":
		return []string{u.Name}
	case "state":
		return []string{u.State}
	case "groups.id":
		return u.Groups
	case "queues.id", "routing.queues.id":
		return u.Queues
	}
	return nil
}

// positiveOr is v, or def when v is not positive (an absent paging field).
func positiveOr(v, def int) int {
	if v <= 0 {
		return def
	}
	return v
}
