//go:build !linux

package rtp

import (
	"errors"
	"net/netip"
	"time"
)

// The sweep reader needs recvmmsg; elsewhere every socket has a goroutine of its own.
const (
	sweepSupported = false
	defaultReader  = "socket"
)

type sweepReader struct{}

func newSweepReader(*Receiver, time.Duration, int) *sweepReader { return &sweepReader{} }

func (*sweepReader) bindRun(netip.Addr, int, int) (boundRun, error) {
	return nil, errors.New("rtp: the sweep reader needs Linux")
}
