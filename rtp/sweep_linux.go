//go:build linux

package rtp

import (
	"net/netip"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

const (
	sweepSupported = true
	defaultReader  = "sweep"
)

// The sweep reader keeps RTP sockets out of Go's netpoller: they are non-blocking, and each of a few
// goroutines drains its share of them with recvmmsg every interval. A recorder needs no per-packet
// latency, and an epoll wake-up per packet is most of what receiving costs (research/performance.md:
// ≈2 µs per packet this way against ≈9–13 µs with a goroutine per socket).

const (
	sweepBatch   = 32   // messages per recvmmsg
	sweepBufSize = 2048 // bytes per message: a full Ethernet frame fits, a bigger datagram is truncated and dropped
	sweepYield   = 32   // sockets drained between yields to other goroutines (≈ 0.3 ms of work)
)

// mmsghdr is struct mmsghdr of recvmmsg(2), which golang.org/x/sys/unix does not wrap.
type mmsghdr struct {
	hdr unix.Msghdr
	len uint32
	_   [4]byte
}

type sweepReader struct {
	r        *Receiver
	interval time.Duration
	shards   []*sweepShard
	next     atomic.Uint32
}

// sweepShard is one sweeping goroutine's sockets and buffers. The goroutine runs while it has sockets.
type sweepShard struct {
	rd      *sweepReader
	mu      sync.Mutex // held for a whole sweep: removal waits for the sweep to finish
	socks   []*rawSocket
	running bool
	hdrs    [sweepBatch]mmsghdr
	iovs    [sweepBatch]unix.Iovec
	bufs    []byte
}

type rawSocket struct {
	fd     int
	stream *Stream
}

func newSweepReader(r *Receiver, interval time.Duration, shards int) *sweepReader {
	rd := &sweepReader{r: r, interval: interval}
	for range shards {
		sh := &sweepShard{rd: rd, bufs: make([]byte, sweepBatch*sweepBufSize)}
		for i := range sh.hdrs {
			sh.iovs[i].Base = &sh.bufs[i*sweepBufSize]
			sh.iovs[i].SetLen(sweepBufSize)
			sh.hdrs[i].hdr.Iov = &sh.iovs[i]
			sh.hdrs[i].hdr.SetIovlen(1)
		}
		rd.shards = append(rd.shards, sh)
	}
	return rd
}

// sweepRun is one session's sockets: RTP ones read by a shard, RTCP ones only bound.
type sweepRun struct {
	rd        *sweepReader
	shard     *sweepShard
	rtp, rtcp []int
	socks     []*rawSocket
}

func (rd *sweepReader) bindRun(addr netip.Addr, start, n int) (boundRun, error) {
	rtp, rtcp, err := bindPorts(start, n, func(port int) (int, error) { return bindRaw(addr, port) }, func(fd int) { unix.Close(fd) })
	if err != nil {
		return nil, err
	}
	return &sweepRun{rd: rd, rtp: rtp, rtcp: rtcp}, nil
}

// bindRaw makes a non-blocking UDP socket bound to addr:port, unknown to Go's runtime.
func bindRaw(addr netip.Addr, port int) (int, error) {
	family := unix.AF_INET
	var sa unix.Sockaddr = &unix.SockaddrInet4{Port: port, Addr: addr.As4()}
	if addr.Is6() && !addr.Is4In6() {
		family = unix.AF_INET6
		sa = &unix.SockaddrInet6{Port: port, Addr: addr.As16()}
	}
	fd, err := unix.Socket(family, unix.SOCK_DGRAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, unix.IPPROTO_UDP)
	if err != nil {
		return -1, err
	}
	if err := unix.Bind(fd, sa); err != nil {
		unix.Close(fd)
		return -1, err
	}
	return fd, nil
}

func (run *sweepRun) start(streams []*Stream) {
	for i, fd := range run.rtp {
		run.socks = append(run.socks, &rawSocket{fd: fd, stream: streams[i]})
	}
	// A session's sockets share a shard, so its streams are read in the same sweep.
	run.shard = run.rd.shards[int(run.rd.next.Add(1))%len(run.rd.shards)]
	run.shard.add(run.socks)
}

// close stops reading, records what the kernel still holds (audio already received is never lost) and
// closes the sockets.
func (run *sweepRun) close() {
	if run.shard != nil {
		run.shard.remove(run.socks)
	}
	run.closeFDs()
}

func (run *sweepRun) closeFDs() {
	for _, fds := range [][]int{run.rtp, run.rtcp} {
		for _, fd := range fds {
			unix.Close(fd)
		}
	}
}

func (sh *sweepShard) add(socks []*rawSocket) {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	sh.socks = append(sh.socks, socks...)
	if !sh.running {
		sh.running = true
		go sh.run()
	}
}

func (sh *sweepShard) remove(socks []*rawSocket) {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	now := sh.rd.r.now()
	for _, s := range socks {
		sh.drain(s, now)
	}
	sh.socks = deleteSockets(sh.socks, socks)
}

func deleteSockets(list, gone []*rawSocket) []*rawSocket {
	out := list[:0]
	for _, s := range list {
		keep := true
		for _, g := range gone {
			if s == g {
				keep = false
				break
			}
		}
		if keep {
			out = append(out, s)
		}
	}
	clear(list[len(out):])
	return out
}

// run sweeps every interval until the shard has no sockets left.
func (sh *sweepShard) run() {
	t := time.NewTicker(sh.rd.interval)
	defer t.Stop()
	for range t.C {
		sh.mu.Lock()
		if len(sh.socks) == 0 {
			sh.running = false
			sh.mu.Unlock()
			return
		}
		now := sh.rd.r.now()
		for i, s := range sh.socks {
			sh.drain(s, now)
			if i%sweepYield == sweepYield-1 {
				// A sweep of thousands of sockets runs for milliseconds on every CPU at once: let SIP and CTI
				// goroutines in between, so signalling never waits for media.
				runtime.Gosched()
			}
		}
		sh.mu.Unlock()
	}
}

// drain reads everything queued on one socket. sh.mu must be held.
func (sh *sweepShard) drain(s *rawSocket, now time.Time) {
	for {
		n, _, errno := unix.RawSyscall6(unix.SYS_RECVMMSG, uintptr(s.fd), uintptr(unsafe.Pointer(&sh.hdrs[0])),
			sweepBatch, unix.MSG_DONTWAIT, 0, 0)
		if errno != 0 || n == 0 {
			return // EAGAIN: drained; any other error means the socket is unusable, which its Close will show
		}
		last := sh.packet(int(n) - 1)
		for i := range int(n) {
			if sh.hdrs[i].hdr.Flags&unix.MSG_TRUNC != 0 {
				s.stream.countDropped()
				continue
			}
			pkt := sh.packet(i)
			sh.rd.r.handle(s.stream, pkt, arrivalOf(pkt, last, now, sh.rd.interval))
		}
		if int(n) < sweepBatch {
			return
		}
	}
}

func (sh *sweepShard) packet(i int) []byte {
	return sh.bufs[i*sweepBufSize : i*sweepBufSize+int(sh.hdrs[i].len)]
}

// arrivalOf estimates when pkt arrived: a sweep reads a batch at once, so the newest packet (last) is taken
// to have arrived now and an older one earlier by the RTP timestamp difference (every codec we record has
// an 8 kHz RTP clock), bounded by the sweep interval. Placement anchors on this time, so the estimate keeps
// the streams of one call aligned to within a packet rather than a sweep.
func arrivalOf(pkt, last []byte, now time.Time, interval time.Duration) time.Time {
	if len(pkt) < 12 || len(last) < 12 {
		return now
	}
	ts := uint32(pkt[4])<<24 | uint32(pkt[5])<<16 | uint32(pkt[6])<<8 | uint32(pkt[7])
	lastTS := uint32(last[4])<<24 | uint32(last[5])<<16 | uint32(last[6])<<8 | uint32(last[7])
	d := time.Duration(int32(lastTS-ts)) * time.Second / rtpClock
	if d <= 0 || d > interval {
		return now
	}
	return now.Add(-d)
}
