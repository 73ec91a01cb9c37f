//go:build linux

package rtp

import (
	"math"
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
	sweepBufSize = 2048 // bytes per message, control data included: a full Ethernet frame fits, a bigger datagram is truncated and dropped
	sweepYield   = 32   // sockets drained between yields to other goroutines (≈ 0.3 ms of work)
	// sweepCtrlSize is the control data at the start of each message's slot, the datagram follows: exactly
	// one SCM_TIMESTAMPNS message (CMSG_SPACE of a timespec: 32 bytes on 64-bit Linux). Sharing a cache line
	// with the RTP header saves a line per packet: ≈ 15 ns per packet less than a separate array.
	sweepCtrlSize = (unix.SizeofCmsghdr + sizeofTimespec + 7) &^ 7
)

const sizeofTimespec = int(unsafe.Sizeof(unix.Timespec{}))

// Arrival times: while an RTP socket has SO_TIMESTAMPNS set, the kernel stamps every datagram when it
// receives it (CLOCK_REALTIME, the clock of time.Now) and recvmmsg hands the stamp over as control data. A
// stamped packet's arrival is its stamp, however long it then waited for a sweep: RFC 3550 jitter is computed
// from it, as precisely as a reader blocked on the socket would (more: no scheduling delay). Stamps cost
// about 5 % of the media path (the kernel formats and copies a control message per datagram), so they are
// sampled: a socket has them for the receiver's TimestampWindow of every TimestampEvery, starting when it
// is opened. A packet without a stamp gets an arrival estimated by arrivalOf, which places it as well but
// says nothing of jitter.
//
// When stamps are switched back on, the stamps of the next sweeps are not trusted: the kernel takes receive
// timestamps only while some socket wants them (a global switch, flipped by a deferred work item), and
// gives a datagram received while none did the time it is read instead.

// mmsghdr is struct mmsghdr of recvmmsg(2), which golang.org/x/sys/unix does not wrap. Go pads it to the
// Msghdr's alignment as C does: 64 bytes on 64-bit Linux, 32 on 32-bit.
type mmsghdr struct {
	hdr unix.Msghdr
	len uint32
}

type sweepReader struct {
	r             *Receiver
	interval      time.Duration
	kernelTime    bool          // ask the kernel for receive timestamps (the receiver's clock is the real one)
	window, every time.Duration // the stamps' sampling
	epoch         time.Time     // sampling times are durations since, on the receiver's clock
	shards        []*sweepShard
	next          atomic.Uint32
}

// sweepShard is one sweeping goroutine's sockets and buffers. The goroutine runs while it has sockets.
type sweepShard struct {
	rd      *sweepReader
	mu      sync.Mutex // held for a whole sweep: removal waits for the sweep to finish
	socks   []*rawSocket
	running bool
	hdrs    [sweepBatch]mmsghdr
	iovs    [sweepBatch]unix.Iovec
	bufs    []byte // sweepBatch slots of sweepBufSize: control data, then the datagram
}

type rawSocket struct {
	fd     int
	stream *Stream

	removed bool // by the shard, under its mu: fd may already be another socket's

	// Receive timestamps (kernelTime only), changed by the sweeps. Times are since the reader's epoch: a
	// sweep compares them for every socket, and a rawSocket should stay within a cache line.
	stamped   bool
	toggleAt  time.Duration // when the sampling window next opens or closes
	trustFrom time.Duration // stamps read before this are not trusted (they were switched back on); the first window's all are
}

func newSweepReader(r *Receiver, interval time.Duration, shards int) *sweepReader {
	rd := &sweepReader{r: r, interval: interval, kernelTime: r.realClock && !r.cfg.EstimateArrivals,
		window: r.cfg.TimestampWindow, every: r.cfg.TimestampEvery, epoch: r.now()}
	for range shards {
		sh := &sweepShard{rd: rd, bufs: make([]byte, sweepBatch*sweepBufSize)}
		for i := range sh.hdrs {
			// The slot's start is word-aligned (a large allocation, slots a power of two apart), as cmsg headers need.
			sh.hdrs[i].hdr.Control = &sh.bufs[i*sweepBufSize]
			sh.hdrs[i].hdr.SetControllen(sweepCtrlSize)
			sh.iovs[i].Base = &sh.bufs[i*sweepBufSize+sweepCtrlSize]
			sh.iovs[i].SetLen(sweepBufSize - sweepCtrlSize)
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
	stamped   bool // the RTP sockets have receive timestamps set
	socks     []*rawSocket
}

func (rd *sweepReader) bindRun(addr netip.Addr, start, n int) (boundRun, error) {
	rtp, rtcp, err := bindPorts(start, n, func(port int) (int, error) { return bindRaw(addr, port) }, func(fd int) { unix.Close(fd) })
	if err != nil {
		return nil, err
	}
	run := &sweepRun{rd: rd, rtp: rtp, rtcp: rtcp, stamped: rd.kernelTime}
	// Stamps from the start: a socket's first window is its first packets, and nothing is queued yet that a
	// stamp could be wrong for.
	for _, fd := range rtp {
		if !run.stamped {
			break
		}
		if err := setStamps(fd, true); err != nil {
			// Every Linux since 2.6.22 has it; without it arrivals are estimated.
			rd.r.log.Warn("rtp: no kernel receive timestamps; arrival times are estimated and jitter not measured", "error", err)
			run.stamped = false
		}
	}
	return run, nil
}

func setStamps(fd int, on bool) error {
	v := 0
	if on {
		v = 1
	}
	return unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_TIMESTAMPNS, v)
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
	windowEnd := run.rd.r.now().Sub(run.rd.epoch) + run.rd.window
	for i, fd := range run.rtp {
		run.socks = append(run.socks, &rawSocket{fd: fd, stream: streams[i], stamped: run.stamped, toggleAt: windowEnd,
			trustFrom: math.MinInt64})
	}
	// A session's sockets share a shard, so its streams are read in the same sweep.
	run.shard = run.rd.shards[int(run.rd.next.Add(1))%len(run.rd.shards)]
	for i, s := range run.socks {
		streams[i].setDrainQueued(func() { run.shard.drainNow(s) })
	}
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
	now, wall := sh.rd.clock()
	for _, s := range socks {
		sh.drain(s, now, wall)
		s.removed = true
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

// drainNow reads what s holds at once, out of turn: a stream about to change sinks has what arrived before
// the change handled under the old one.
func (sh *sweepShard) drainNow(s *rawSocket) {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if s.removed {
		return
	}
	now, wall := sh.rd.clock()
	sh.drain(s, now, wall)
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
		now, wall := sh.rd.clock()
		for i, s := range sh.socks {
			sh.drain(s, now, wall)
			if i%sweepYield == sweepYield-1 {
				// A sweep of thousands of sockets runs for milliseconds on every CPU at once: let SIP and CTI
				// goroutines in between, so signalling never waits for media.
				runtime.Gosched()
			}
		}
		sh.mu.Unlock()
	}
}

// clock is a sweep's time: now on the receiver's clock and, when kernel timestamps are used, the same
// instant on CLOCK_REALTIME (wall; zero otherwise). With the real clock the two are one reading.
func (rd *sweepReader) clock() (now, wall time.Time) {
	now = rd.r.now()
	if rd.kernelTime {
		wall = now
	}
	return now, wall
}

// drain reads everything queued on one socket. sh.mu must be held. now is the sweep's time on the receiver's
// clock; wall, if not zero, is that instant on CLOCK_REALTIME, and a kernel receive timestamp k becomes the
// arrival now + (k − wall): k itself when the two are one reading.
func (sh *sweepShard) drain(s *rawSocket, now, wall time.Time) {
	stamps, base := sh.rd.stamping(s, now), wall.UnixNano() // base: kernel timestamps are offsets from it (int64 math per packet)
	for {
		n, _, errno := unix.RawSyscall6(unix.SYS_RECVMMSG, uintptr(s.fd), uintptr(unsafe.Pointer(&sh.hdrs[0])),
			sweepBatch, unix.MSG_DONTWAIT, 0, 0)
		if errno != 0 || n == 0 {
			return // EAGAIN: drained; any other error means the socket is unusable, which its Close will show
		}
		last := sh.packet(int(n) - 1)
		for i := range int(n) {
			h := &sh.hdrs[i].hdr
			var sec, nsec int64
			var stamped bool
			if stamps {
				sec, nsec, stamped = rxTimestamp(sh.bufs[i*sweepBufSize : i*sweepBufSize+min(int(h.Controllen), sweepCtrlSize)])
			}
			h.SetControllen(sweepCtrlSize) // recvmmsg set it to what it wrote
			if h.Flags&unix.MSG_TRUNC != 0 {
				s.stream.countDropped()
				continue
			}
			pkt := sh.packet(i)
			measured := stamped && stamps
			var arrival time.Time
			if measured {
				arrival = now.Add(time.Duration(sec*int64(time.Second) + nsec - base))
			} else {
				arrival = arrivalOf(pkt, last, now, sh.rd.interval)
			}
			sh.rd.r.handle(s.stream, pkt, arrival, measured)
		}
		if int(n) < sweepBatch {
			return
		}
	}
}

// stamping switches s's receive timestamps on or off when its sampling window opens or closes, and reports
// whether the stamps of what this sweep reads from it are trusted.
func (rd *sweepReader) stamping(s *rawSocket, now time.Time) bool {
	if !rd.kernelTime {
		return false
	}
	t := now.Sub(rd.epoch)
	if t >= s.toggleAt && rd.window < rd.every {
		on := !s.stamped
		if setStamps(s.fd, on) == nil {
			s.stamped = on
		}
		if on {
			s.toggleAt = t + rd.window
			// The sweep that switches them on reads what queued before, the next what came while the kernel
			// may still have been switching its timestamps on: both are estimated.
			s.trustFrom = t + rd.interval + rd.interval/2
		} else {
			s.toggleAt = t + rd.every - rd.window
		}
	}
	return s.stamped && t >= s.trustFrom
}

func (sh *sweepShard) packet(i int) []byte {
	start := i*sweepBufSize + sweepCtrlSize
	return sh.bufs[start : start+int(sh.hdrs[i].len)]
}

// rxTimestamp finds the SCM_TIMESTAMPNS message in one message's control data: the time the kernel received
// the datagram. unix.ParseSocketControlMessage would allocate for every packet; this walks the cmsg headers
// in place. ctrl must be aligned for a cmsg header (the shard's slots are).
func rxTimestamp(ctrl []byte) (sec, nsec int64, ok bool) {
	for len(ctrl) >= unix.SizeofCmsghdr {
		h := (*unix.Cmsghdr)(unsafe.Pointer(&ctrl[0]))
		l := uint64(h.Len)
		if l < unix.SizeofCmsghdr || l > uint64(len(ctrl)) {
			return 0, 0, false // malformed or truncated (MSG_CTRUNC)
		}
		if h.Level == unix.SOL_SOCKET && h.Type == unix.SCM_TIMESTAMPNS && int(l) >= unix.CmsgLen(sizeofTimespec) {
			ts := (*unix.Timespec)(unsafe.Pointer(&ctrl[unix.CmsgLen(0)]))
			return int64(ts.Sec), int64(ts.Nsec), true
		}
		next := unix.CmsgSpace(int(l) - unix.CmsgLen(0))
		if next >= len(ctrl) {
			return 0, 0, false
		}
		ctrl = ctrl[next:]
	}
	return 0, 0, false
}

// arrivalOf estimates when pkt arrived, for packets without a kernel timestamp: a sweep reads a batch at once,
// so the newest packet (last) is taken to have arrived now and an older one earlier by the RTP timestamp
// difference (every codec we record has an 8 kHz RTP clock), bounded by the sweep interval. Placement
// anchors on this time, so the estimate keeps the streams of one call aligned to within a packet rather than
// a sweep; every packet of a batch shows the same transit time, so it is no basis for jitter.
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
