package matcher

import (
	"cmp"
	"slices"
	"sync"
	"time"
)

// Store holds CTI calls waiting for media, so a shared store (Redis) can replace the in-memory one for several
// nodes without touching the policy. The matcher puts every CTI observation (the latest one of a conversation
// replaces the previous) and asks for the calls carrying a media session's keys. Implementations are safe
// for concurrent use; the matcher calls them with its own lock held, so they must not call back into it.
type Store interface {
	Put(c Call, expires time.Time)    // replaces the call with the same tenant+conversation id
	Find(tenant string, k Key) []Call // every unexpired call carrying the key (tenant "" = any tenant)
	Get(tenant, conversationID string) (Call, bool)
	Expire(now time.Time) []Call // removes and returns what expired
	Len() int
}

// convKey identifies a conversation: conversation ids are scoped by tenant.
type convKey struct{ tenant, id string }

func keyOf(c Call) convKey { return convKey{c.Tenant, c.ConversationID} }

// tenantsMatch: keys match across tenants when either side is unscoped.
func tenantsMatch(a, b string) bool { return a == "" || b == "" || a == b }

// callKeys are the keys a call is found by: its Keys and its conversation id.
func callKeys(c Call) []Key {
	keys := slices.Clone(c.Keys)
	if c.ConversationID != "" {
		if k := (Key{Kind: KeyConversationID, Value: c.ConversationID}); !slices.Contains(keys, k) {
			keys = append(keys, k)
		}
	}
	return keys
}

type storedCall struct {
	call    Call
	keys    []Key
	expires time.Time
}

// memoryStore is the single-node Store: a map by conversation and an index by key.
type memoryStore struct {
	mu    sync.Mutex
	now   func() time.Time // "unexpired" in Find and Get; the matcher hands over its clock
	calls map[convKey]*storedCall
	byKey map[Key]map[convKey]struct{}
}

// NewMemoryStore returns the in-memory Store. Expired calls stay invisible to Find and Get until Expire
// removes them. A call of tenant "" is found by every tenant, as the matching rule says.
func NewMemoryStore() Store { return newMemoryStore(time.Now) }

func newMemoryStore(now func() time.Time) *memoryStore {
	return &memoryStore{now: now, calls: map[convKey]*storedCall{}, byKey: map[Key]map[convKey]struct{}{}}
}

// setClock is how New gives the store the matcher's clock (WithClock): expiry is judged by one clock.
func (s *memoryStore) setClock(now func() time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.now = now
}

func (s *memoryStore) Put(c Call, expires time.Time) {
	ck := keyOf(c)
	s.mu.Lock()
	defer s.mu.Unlock()
	if old := s.calls[ck]; old != nil {
		s.unindex(ck, old.keys)
	}
	e := &storedCall{call: c, keys: callKeys(c), expires: expires}
	s.calls[ck] = e
	for _, k := range e.keys {
		set := s.byKey[k]
		if set == nil {
			set = map[convKey]struct{}{}
			s.byKey[k] = set
		}
		set[ck] = struct{}{}
	}
}

func (s *memoryStore) unindex(ck convKey, keys []Key) {
	for _, k := range keys {
		if set := s.byKey[k]; set != nil {
			delete(set, ck)
			if len(set) == 0 {
				delete(s.byKey, k)
			}
		}
	}
}

func (s *memoryStore) Find(tenant string, k Key) []Call {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	var out []Call
	for ck := range s.byKey[k] {
		e := s.calls[ck]
		if now.Before(e.expires) && tenantsMatch(tenant, e.call.Tenant) {
			out = append(out, e.call)
		}
	}
	slices.SortFunc(out, func(a, b Call) int {
		return cmp.Or(b.Received.Compare(a.Received), cmp.Compare(a.Tenant, b.Tenant), cmp.Compare(a.ConversationID, b.ConversationID))
	})
	return out
}

func (s *memoryStore) Get(tenant, conversationID string) (Call, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.calls[convKey{tenant, conversationID}]
	if e == nil || !s.now().Before(e.expires) {
		return Call{}, false
	}
	return e.call, true
}

func (s *memoryStore) Expire(now time.Time) []Call {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Call
	for ck, e := range s.calls {
		if !now.Before(e.expires) {
			out = append(out, e.call)
			s.unindex(ck, e.keys)
			delete(s.calls, ck)
		}
	}
	slices.SortFunc(out, func(a, b Call) int {
		return cmp.Or(cmp.Compare(a.Tenant, b.Tenant), cmp.Compare(a.ConversationID, b.ConversationID))
	})
	return out
}

func (s *memoryStore) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.calls)
}
