package rtp

import (
	"errors"
	"math/rand/v2"
	"sync"
	"testing"
)

func newAllocator(t testing.TB, min, max int) *PortAllocator {
	t.Helper()
	a, err := NewPortAllocator(min, max)
	if err != nil {
		t.Fatalf("NewPortAllocator(%d, %d): %v", min, max, err)
	}
	return a
}

func mustAllocate(t testing.TB, a *PortAllocator, n int) []int {
	t.Helper()
	ports, err := a.Allocate(n)
	if err != nil {
		t.Fatalf("Allocate(%d): %v", n, err)
	}
	return ports
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestNewPortAllocator(t *testing.T) {
	tests := []struct {
		name      string
		min, max  int
		wantSize  int
		wantFirst int // first port handed out by a fresh allocator
	}{
		{"one pair", 1024, 1025, 1, 1024},
		{"even max drops the last port (no RTCP partner)", 1024, 1028, 2, 1024},
		{"odd max keeps the last pair", 1024, 1029, 3, 1024},
		{"odd min rounded up", 1025, 1029, 2, 1026},
		{"odd min 1023 rounded up to 1024", 1023, 1027, 2, 1024},
		{"top of the port space", 65534, 65535, 1, 65534},
		{"default range", 20000, 29999, 5000, 20000},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := newAllocator(t, tt.min, tt.max)
			if got := a.Size(); got != tt.wantSize {
				t.Errorf("Size() = %d, want %d", got, tt.wantSize)
			}
			if got := a.Free(); got != tt.wantSize {
				t.Errorf("Free() = %d, want %d", got, tt.wantSize)
			}
			if got := mustAllocate(t, a, 1); got[0] != tt.wantFirst {
				t.Errorf("first port = %d, want %d", got[0], tt.wantFirst)
			}
		})
	}
}

func TestNewPortAllocatorInvalid(t *testing.T) {
	tests := []struct {
		name     string
		min, max int
	}{
		{"min below 1024", 1000, 2000},
		{"zero range", 0, 0},
		{"negative min", -5, 2000},
		{"max above 65535", 1024, 65536},
		{"min equals max", 1024, 1024},
		{"odd min rounded past max", 1025, 1026},
		{"min above max", 2000, 1024},
		{"single odd port after rounding", 65535, 65535},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, err := NewPortAllocator(tt.min, tt.max)
			if err == nil {
				t.Fatalf("NewPortAllocator(%d, %d) = size %d, want error", tt.min, tt.max, a.Size())
			}
			if errors.Is(err, ErrNoPorts) {
				t.Errorf("error %v is ErrNoPorts, want a range error", err)
			}
		})
	}
}

func TestPortAllocatorRuns(t *testing.T) {
	tests := []struct {
		name string
		n    int
	}{
		{"single stream", 1},
		{"two streams (SIPREC caller + callee)", 2},
		{"four streams", 4},
		{"whole range", 7},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := newAllocator(t, 30001, 30016) // odd min, even max: pairs 30002 … 30014, 7 of them
			ports := mustAllocate(t, a, tt.n)
			if len(ports) != tt.n {
				t.Fatalf("got %d ports %v, want %d", len(ports), ports, tt.n)
			}
			for i, p := range ports {
				if p%2 != 0 {
					t.Errorf("port %d is odd", p)
				}
				if p < 30002 || p+1 > 30016 {
					t.Errorf("port %d (RTCP %d) outside the range", p, p+1)
				}
				if i > 0 && p != ports[i-1]+2 {
					t.Errorf("ports %v are not X, X+2, …", ports)
				}
			}
			if got, want := a.Free(), a.Size()-tt.n; got != want {
				t.Errorf("Free() = %d, want %d", got, want)
			}
			a.Release(ports)
			if a.Free() != a.Size() {
				t.Errorf("after Release: Free() = %d, want Size() = %d", a.Free(), a.Size())
			}
		})
	}
}

func TestPortAllocatorInvalidCount(t *testing.T) {
	for _, n := range []int{0, -1} {
		a := newAllocator(t, 30000, 30009)
		ports, err := a.Allocate(n)
		if err == nil {
			t.Errorf("Allocate(%d) = %v, want error", n, ports)
		}
		if errors.Is(err, ErrNoPorts) {
			t.Errorf("Allocate(%d): %v is ErrNoPorts, want an argument error", n, err)
		}
		if a.Free() != a.Size() {
			t.Errorf("Allocate(%d) changed Free() to %d", n, a.Free())
		}
	}
}

func TestPortAllocatorEveryPortOnce(t *testing.T) {
	a := newAllocator(t, 30000, 30199)
	seen := map[int]bool{}
	for range a.Size() {
		p := mustAllocate(t, a, 1)[0]
		if seen[p] {
			t.Fatalf("port %d handed out twice", p)
		}
		seen[p] = true
	}
	if a.Free() != 0 {
		t.Errorf("Free() = %d after allocating every pair, want 0", a.Free())
	}
	if _, err := a.Allocate(1); !errors.Is(err, ErrNoPorts) {
		t.Errorf("Allocate(1) on a full range: err = %v, want ErrNoPorts", err)
	}
}

func TestPortAllocatorRelease(t *testing.T) {
	tests := []struct {
		name    string
		release func(a *PortAllocator, ports []int)
	}{
		{"once", func(a *PortAllocator, ports []int) { a.Release(ports) }},
		{"twice", func(a *PortAllocator, ports []int) { a.Release(ports); a.Release(ports) }},
		{"one at a time, repeated", func(a *PortAllocator, ports []int) {
			for _, p := range ports {
				a.Release([]int{p})
				a.Release([]int{p})
			}
		}},
		{"with nil and out-of-range ports mixed in", func(a *PortAllocator, ports []int) {
			a.Release(nil)
			a.Release([]int{0, -2, 29998, 30010, 30012, 65534})
			a.Release(ports)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := newAllocator(t, 30000, 30009) // 5 pairs
			ports := mustAllocate(t, a, 3)
			tt.release(a, ports)
			if a.Free() != a.Size() {
				t.Errorf("Free() = %d, want Size() = %d", a.Free(), a.Size())
			}
			// Everything is usable again.
			all := mustAllocate(t, a, a.Size())
			if all[0] != 30000 {
				t.Errorf("whole range starts at %d, want 30000", all[0])
			}
		})
	}
}

func TestPortAllocatorDoubleReleaseDoesNotFreeOthers(t *testing.T) {
	a := newAllocator(t, 30000, 30005) // 3 pairs
	first := mustAllocate(t, a, 1)
	a.Release(first)
	second := mustAllocate(t, a, 1)
	third := mustAllocate(t, a, 1)
	a.Release(first) // stale double release: pair already free (not reallocated yet, cursor moved on)
	if got := a.Free(); got != 1 {
		t.Errorf("Free() = %d, want 1 (%v and %v still held)", got, second, third)
	}
}

func TestPortAllocatorReleaseBelowRange(t *testing.T) {
	a := newAllocator(t, 30000, 30009)
	held := mustAllocate(t, a, 1) // 30000
	a.Release([]int{29999})
	if got, want := a.Free(), a.Size()-1; got != want {
		t.Errorf("Release([29999]) with %v held: Free() = %d, want %d", held, got, want)
	}
}

func TestPortAllocatorExhaustion(t *testing.T) {
	tests := []struct {
		name  string
		held  int // pairs allocated first
		n     int
		wantN bool // whether Allocate(n) succeeds
	}{
		{"more than the range", 0, 6, false},
		{"exactly the range", 0, 5, true},
		{"full range, one more", 5, 1, false},
		{"last pair", 4, 1, true},
		{"one short", 4, 2, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := newAllocator(t, 30000, 30009) // 5 pairs
			if tt.held > 0 {
				mustAllocate(t, a, tt.held)
			}
			ports, err := a.Allocate(tt.n)
			switch {
			case tt.wantN && err != nil:
				t.Fatalf("Allocate(%d): %v", tt.n, err)
			case !tt.wantN && !errors.Is(err, ErrNoPorts):
				t.Fatalf("Allocate(%d) = %v, %v; want ErrNoPorts", tt.n, ports, err)
			case !tt.wantN && a.Free() != a.Size()-tt.held:
				t.Errorf("failed Allocate changed Free() to %d", a.Free())
			}
		})
	}
}

func TestPortAllocatorFragmentation(t *testing.T) {
	tests := []struct {
		name    string
		hold    []int // pair indexes left allocated (of 5: 30000 … 30008)
		n       int
		want    []int // nil: ErrNoPorts
		comment string
	}{
		{"free pairs not contiguous", []int{1, 3}, 2, nil, "pairs 0, 2, 4 free but no two adjacent"},
		{"no wrap-around run", []int{1, 2, 3}, 2, nil, "pairs 4 and 0 are free but not consecutive ports"},
		{"contiguous hole found", []int{0, 3}, 2, []int{30002, 30004}, "pairs 1-2 free"},
		{"hole at the end", []int{0, 1, 2}, 2, []int{30006, 30008}, "pairs 3-4 free"},
		{"single pairs still usable", []int{1, 3}, 1, []int{30000}, "cursor wrapped to the front"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := newAllocator(t, 30000, 30009)
			all := mustAllocate(t, a, 5)
			held := map[int]bool{}
			for _, i := range tt.hold {
				held[i] = true
			}
			for i, p := range all {
				if !held[i] {
					a.Release([]int{p})
				}
			}
			got, err := a.Allocate(tt.n)
			if tt.want == nil {
				if !errors.Is(err, ErrNoPorts) {
					t.Fatalf("Allocate(%d) = %v, %v; want ErrNoPorts (%s)", tt.n, got, err, tt.comment)
				}
				return
			}
			if err != nil {
				t.Fatalf("Allocate(%d): %v (%s)", tt.n, err, tt.comment)
			}
			if !equalInts(got, tt.want) {
				t.Errorf("Allocate(%d) = %v, want %v (%s)", tt.n, got, tt.want, tt.comment)
			}
		})
	}
}

func TestPortAllocatorCursor(t *testing.T) {
	tests := []struct {
		name  string
		steps func(t *testing.T, a *PortAllocator) []int // returns the run whose placement is checked
		want  []int
	}{
		{"freed port not handed out next", func(t *testing.T, a *PortAllocator) []int {
			a.Release(mustAllocate(t, a, 1))
			return mustAllocate(t, a, 1)
		}, []int{30002}},
		{"freed run not handed out next", func(t *testing.T, a *PortAllocator) []int {
			a.Release(mustAllocate(t, a, 2))
			return mustAllocate(t, a, 2)
		}, []int{30004, 30006}},
		{"cursor wraps to the start", func(t *testing.T, a *PortAllocator) []int {
			for range 5 {
				a.Release(mustAllocate(t, a, 1))
			}
			return mustAllocate(t, a, 1)
		}, []int{30000}},
		{"run that does not fit before the end restarts at the front", func(t *testing.T, a *PortAllocator) []int {
			a.Release(mustAllocate(t, a, 4)) // cursor at pair 4
			return mustAllocate(t, a, 2)
		}, []int{30000, 30002}},
		{"cursor skips busy pairs", func(t *testing.T, a *PortAllocator) []int {
			first := mustAllocate(t, a, 1) // 30000
			mustAllocate(t, a, 1)          // 30002 held
			a.Release(first)
			mustAllocate(t, a, 2) // 30004, 30006
			return mustAllocate(t, a, 1)
		}, []int{30008}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := newAllocator(t, 30000, 30009) // 5 pairs
			if got := tt.steps(t, a); !equalInts(got, tt.want) {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestPortAllocatorSkipVeto(t *testing.T) {
	tests := []struct {
		name      string
		n         int
		vetoed    map[int]bool // busy ports outside our bookkeeping
		want      []int        // nil: ErrNoPorts
		wantCalls []int        // run starts offered to the veto, in order
	}{
		{"no veto", 1, nil, []int{30000}, []int{30000}},
		{"first run vetoed", 1, map[int]bool{30000: true}, []int{30002}, []int{30000, 30002}},
		{"run with a busy second port", 2, map[int]bool{30002: true},
			[]int{30004, 30006}, []int{30000, 30002, 30004}},
		{"everything vetoed", 1, map[int]bool{30000: true, 30002: true, 30004: true, 30006: true, 30008: true},
			nil, []int{30000, 30002, 30004, 30006, 30008}},
		{"only the last run left", 2, map[int]bool{30000: true, 30004: true},
			[]int{30006, 30008}, []int{30000, 30002, 30004, 30006}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := newAllocator(t, 30000, 30009)
			var calls []int
			got, err := a.allocate(tt.n, func(start, n int) bool {
				if n != tt.n {
					t.Errorf("veto got n = %d, want %d", n, tt.n)
				}
				calls = append(calls, start)
				for i := range n {
					if tt.vetoed[start+2*i] {
						return true
					}
				}
				return false
			})
			if !equalInts(calls, tt.wantCalls) {
				t.Errorf("veto offered runs %v, want %v", calls, tt.wantCalls)
			}
			if tt.want == nil {
				if !errors.Is(err, ErrNoPorts) {
					t.Fatalf("allocate = %v, %v; want ErrNoPorts", got, err)
				}
				if a.Free() != a.Size() {
					t.Errorf("vetoed runs leaked: Free() = %d, want %d", a.Free(), a.Size())
				}
				return
			}
			if err != nil {
				t.Fatalf("allocate: %v", err)
			}
			if !equalInts(got, tt.want) {
				t.Errorf("allocate = %v, want %v", got, tt.want)
			}
			if want := a.Size() - tt.n; a.Free() != want {
				t.Errorf("Free() = %d, want %d (vetoed runs must stay free)", a.Free(), want)
			}
		})
	}
}

func TestPortAllocatorVetoNotAskedForBusyRuns(t *testing.T) {
	a := newAllocator(t, 30000, 30009)
	mustAllocate(t, a, 2) // 30000, 30002
	var calls []int
	got, err := a.allocate(1, func(start, n int) bool { calls = append(calls, start); return false })
	if err != nil {
		t.Fatal(err)
	}
	if !equalInts(got, []int{30004}) || !equalInts(calls, []int{30004}) {
		t.Errorf("allocate = %v with veto calls %v, want [30004] with calls [30004]", got, calls)
	}
}

func TestPortAllocatorConcurrent(t *testing.T) {
	a := newAllocator(t, 30000, 30099) // 50 pairs
	var (
		mu    sync.Mutex
		owned = map[int]bool{}
		wg    sync.WaitGroup
	)
	for g := range 16 {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(uint64(g), 1))
			for range 500 {
				ports, err := a.Allocate(1 + r.IntN(4))
				if errors.Is(err, ErrNoPorts) {
					continue
				}
				if err != nil {
					t.Errorf("Allocate: %v", err)
					return
				}
				mu.Lock()
				for _, p := range ports {
					if owned[p] {
						t.Errorf("port %d handed out while still held", p)
					}
					owned[p] = true
				}
				mu.Unlock()
				_ = a.Free()
				mu.Lock()
				for _, p := range ports {
					delete(owned, p)
				}
				mu.Unlock()
				a.Release(ports)
			}
		})
	}
	wg.Wait()
	if a.Free() != a.Size() {
		t.Errorf("Free() = %d after all releases, want %d", a.Free(), a.Size())
	}
}

func BenchmarkPortAllocator(b *testing.B) {
	for _, bb := range []struct {
		name string
		n    int
		held int // pairs held for the whole benchmark (a busy server)
	}{
		{"n=1", 1, 0},
		{"n=2", 2, 0},
		{"n=2/one-third-held", 2, 1666},
	} {
		b.Run(bb.name, func(b *testing.B) {
			a := newAllocator(b, 20000, 29999)
			for range bb.held {
				ports := mustAllocate(b, a, 3)
				a.Release(ports[:2]) // keep every third pair: free runs of two between held pairs
			}
			b.ReportAllocs()
			for b.Loop() {
				ports, err := a.Allocate(bb.n)
				if err != nil {
					b.Fatal(err)
				}
				a.Release(ports)
			}
		})
	}
}
