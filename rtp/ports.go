package rtp

import (
	"errors"
	"fmt"
	"sync"
)

// ErrNoPorts is returned when the port range has no run of free port pairs long enough.
var ErrNoPorts = errors.New("rtp: no free ports in range")

// PortAllocator hands out runs of consecutive even ports X, X+2, X+4, … from a range; the odd port after each
// (X+1, …) is kept for RTCP. Consecutive ports let stock sipp pcaps, which keep the destination-port offsets
// of their capture, drive every stream of a session.
//
// The cursor moves on after each allocation, so a port freed by one call is not handed to the very next call
// and stale packets from the old call do not land in the new one.
type PortAllocator struct {
	mu    sync.Mutex
	first int    // first even port of the range
	used  []bool // one entry per even port (pair)
	free  int
	next  int
}

// NewPortAllocator covers the even ports in [min, max] whose RTCP partner also lies in the range.
func NewPortAllocator(min, max int) (*PortAllocator, error) {
	if min%2 == 1 {
		min++
	}
	if min < 1024 || max > 65535 || max-min < 1 {
		return nil, fmt.Errorf("rtp: invalid port range %d-%d (want 1024 <= min < max <= 65535)", min, max)
	}
	pairs := (max - min + 1) / 2
	return &PortAllocator{first: min, used: make([]bool, pairs), free: pairs}, nil
}

// Allocate reserves n consecutive port pairs and returns their even (RTP) ports.
func (a *PortAllocator) Allocate(n int) ([]int, error) {
	return a.allocate(n, nil)
}

// allocate is Allocate with a veto: skip(port) rejects a run whose ports are busy outside our bookkeeping
// (bound by another process) and the search goes on past it.
func (a *PortAllocator) allocate(n int, skip func(start int, n int) bool) ([]int, error) {
	if n < 1 {
		return nil, fmt.Errorf("rtp: cannot allocate %d ports", n)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	total := len(a.used)
	if n > a.free {
		return nil, ErrNoPorts
	}
	for tried := 0; tried < total; tried++ {
		start := (a.next + tried) % total
		if start+n > total {
			continue
		}
		if !a.runFree(start, n) {
			continue
		}
		port := a.first + 2*start
		if skip != nil && skip(port, n) {
			continue
		}
		ports := make([]int, n)
		for i := range n {
			a.used[start+i] = true
			ports[i] = port + 2*i
		}
		a.free -= n
		a.next = (start + n) % total
		return ports, nil
	}
	return nil, ErrNoPorts
}

func (a *PortAllocator) runFree(start, n int) bool {
	for i := start; i < start+n; i++ {
		if a.used[i] {
			return false
		}
	}
	return true
}

// Release returns ports handed out by Allocate. Releasing a port twice is harmless.
func (a *PortAllocator) Release(ports []int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, p := range ports {
		if p < a.first || (p-a.first)%2 != 0 {
			continue // not a port we hand out
		}
		if i := (p - a.first) / 2; i < len(a.used) && a.used[i] {
			a.used[i] = false
			a.free++
		}
	}
}

// Free is the number of free port pairs.
func (a *PortAllocator) Free() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.free
}

// Size is the number of port pairs in the range.
func (a *PortAllocator) Size() int { return len(a.used) }
