package main

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/siphook/siphook/internal/audiotest"
	"github.com/siphook/siphook/internal/g711"
)

// The RTP sender: a few goroutines ("shards") send every stream of every call, each from one raw UDP
// socket outside Go's netpoller, paced by a 20 ms ticker, in batches of up to maxBatch packets per
// sendmmsg(2). A packet is two iovecs: a 12-byte header written per packet and a 160-byte PCMU payload
// shared by every stream playing the same tone, so the generator copies nothing per packet but the header.

const (
	frameDur     = 20 * time.Millisecond
	frameSamples = 160 // 20 ms at 8 kHz
	rtpHeaderLen = 12
	maxBatch     = 1024 // UIO_MAXIOV: the kernel's limit on vlen
	// maxCatchUp is how many frames a stream may send in one tick when ticks were late; beyond that the
	// generator is not keeping real time and the frames are skipped (counted, and reported).
	maxCatchUp = 10
)

// Tone pairs: stream 0 of call i plays toneA[i%len], stream 1 toneB[i%len]. Every frequency is a multiple
// of 50 Hz, so a whole number of cycles fits in 20 ms and one 160-byte payload repeats seamlessly.
var (
	toneA = []float64{400, 450, 500, 550, 600, 650, 700, 750}
	toneB = []float64{1000, 1100, 1200, 1300, 1400, 1500, 1600, 1700}
)

// payloads holds one 20 ms PCMU frame per tone frequency.
var payloads = func() map[float64]*[frameSamples]byte {
	m := map[float64]*[frameSamples]byte{}
	for _, f := range append(append([]float64(nil), toneA...), toneB...) {
		p := new([frameSamples]byte)
		for i, s := range audiotest.Sine(f, 0.5, 8000, 0, frameSamples) {
			p[i] = g711.EncodeULaw(s)
		}
		m[f] = p
	}
	return m
}()

// mmsghdr is struct mmsghdr: Go's struct alignment pads it as C does on every Linux architecture.
type mmsghdr struct {
	hdr unix.Msghdr
	len uint32
}

// rtpStream is one RTP stream being sent. Owned by its shard: touched only under shard.mu.
type rtpStream struct {
	addr    unix.RawSockaddrInet4
	payload *[frameSamples]byte
	ssrc    uint32
	seq     uint16
	ts      uint32
	next    int64 // the next frame index (frames of frameDur since the sender's epoch) to send
	idx     int   // position in shard.streams, -1 when not sending
	first   bool  // marker bit on the first packet

	sent, skipped, errors uint64
}

// streamStats are a stream's counters once it stopped.
type streamStats struct{ Sent, Skipped, Errors uint64 }

type shard struct {
	fd   int
	port int // local port, advertised in our SDP

	mu      sync.Mutex
	streams []*rtpStream
	// per batch, reused
	msgs   []mmsghdr
	iovs   [][2]unix.Iovec
	hdrs   [][rtpHeaderLen]byte
	owners []*rtpStream

	maxTick time.Duration // longest tick (building and sending one round)
	ticks   uint64
}

// rtpSender paces and sends all streams.
type rtpSender struct {
	epoch   time.Time
	shards  []*shard
	sent    atomic.Uint64 // packets accepted by the kernel, all streams
	skipped atomic.Uint64 // frames skipped because the generator fell behind, all streams
	stop    chan struct{}
	wg      sync.WaitGroup
}

// newRTPSender opens n sockets bound to ip and starts their goroutines, phase-shifted across the 20 ms.
func newRTPSender(ip string, n int) (*rtpSender, error) {
	addr, err := netip.ParseAddr(ip)
	if err != nil || !addr.Is4() {
		return nil, fmt.Errorf("rtp source address %q: want an IPv4 address", ip)
	}
	s := &rtpSender{epoch: time.Now(), stop: make(chan struct{})}
	for range max(n, 1) {
		fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, unix.IPPROTO_UDP)
		if err != nil {
			s.close()
			return nil, fmt.Errorf("rtp socket: %w", err)
		}
		_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_SNDBUF, 4<<20)
		if err := unix.Bind(fd, &unix.SockaddrInet4{Addr: addr.As4()}); err != nil {
			unix.Close(fd)
			s.close()
			return nil, fmt.Errorf("rtp bind %s: %w", ip, err)
		}
		sa, err := unix.Getsockname(fd)
		if err != nil {
			unix.Close(fd)
			s.close()
			return nil, err
		}
		sh := &shard{fd: fd, port: sa.(*unix.SockaddrInet4).Port,
			msgs: make([]mmsghdr, maxBatch), iovs: make([][2]unix.Iovec, maxBatch),
			hdrs: make([][rtpHeaderLen]byte, maxBatch), owners: make([]*rtpStream, maxBatch)}
		for i := range sh.msgs {
			sh.msgs[i].hdr.Iov = &sh.iovs[i][0]
			sh.msgs[i].hdr.SetIovlen(2)
			sh.msgs[i].hdr.Namelen = unix.SizeofSockaddrInet4
			sh.iovs[i][0].Base = &sh.hdrs[i][0]
			sh.iovs[i][0].SetLen(rtpHeaderLen)
			sh.iovs[i][1].SetLen(frameSamples)
		}
		s.shards = append(s.shards, sh)
	}
	for i, sh := range s.shards {
		phase := frameDur * time.Duration(i) / time.Duration(len(s.shards))
		s.wg.Go(func() { s.run(sh, phase) })
	}
	return s, nil
}

// close stops the goroutines and closes the sockets.
func (s *rtpSender) close() {
	select {
	case <-s.stop:
	default:
		close(s.stop)
	}
	s.wg.Wait()
	for _, sh := range s.shards {
		unix.Close(sh.fd)
	}
}

// shardFor is the shard call i's streams go to.
func (s *rtpSender) shardFor(i int) *shard { return s.shards[i%len(s.shards)] }

// frameNow is the index of the frame due now.
func (s *rtpSender) frameNow(now time.Time) int64 { return int64(now.Sub(s.epoch) / frameDur) }

// start begins sending a stream to dst (an IPv4 host:port) with the given tone, from the next frame on.
func (s *rtpSender) start(sh *shard, dst netip.AddrPort, tone float64, ssrc uint32, seq uint16, ts uint32) (*rtpStream, error) {
	if !dst.Addr().Is4() {
		return nil, fmt.Errorf("rtp destination %s: want IPv4", dst)
	}
	st := &rtpStream{payload: payloads[tone], ssrc: ssrc, seq: seq, ts: ts, first: true}
	st.addr.Family = unix.AF_INET
	st.addr.Addr = dst.Addr().As4()
	binary.BigEndian.PutUint16((*[2]byte)(unsafe.Pointer(&st.addr.Port))[:], dst.Port())
	sh.mu.Lock()
	st.next = s.frameNow(time.Now()) + 1
	st.idx = len(sh.streams)
	sh.streams = append(sh.streams, st)
	sh.mu.Unlock()
	return st, nil
}

// stopStream ends a stream; once it returns no further packet of it is sent. Its counters are final.
func (s *rtpSender) stopStream(sh *shard, st *rtpStream) streamStats {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if st.idx >= 0 {
		last := sh.streams[len(sh.streams)-1]
		sh.streams[st.idx], last.idx = last, st.idx
		sh.streams[len(sh.streams)-1] = nil
		sh.streams = sh.streams[:len(sh.streams)-1]
		st.idx = -1
	}
	return streamStats{Sent: st.sent, Skipped: st.skipped, Errors: st.errors}
}

// resetMaxTick starts a new measurement of the longest tick.
func (s *rtpSender) resetMaxTick() {
	for _, sh := range s.shards {
		sh.mu.Lock()
		sh.maxTick = 0
		sh.mu.Unlock()
	}
}

// tickStats is the longest tick of any shard and the number of ticks.
func (s *rtpSender) tickStats() (maxTick time.Duration, ticks uint64) {
	for _, sh := range s.shards {
		sh.mu.Lock()
		maxTick = max(maxTick, sh.maxTick)
		ticks += sh.ticks
		sh.mu.Unlock()
	}
	return maxTick, ticks
}

func (s *rtpSender) run(sh *shard, phase time.Duration) {
	// Align the first tick to the shard's phase within the frame grid.
	delay := frameDur - time.Since(s.epoch)%frameDur + phase
	select {
	case <-time.After(delay):
	case <-s.stop:
		return
	}
	t := time.NewTicker(frameDur)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case now := <-t.C:
			s.tick(sh, now)
		}
	}
}

// tick sends every frame due on the shard's streams.
func (s *rtpSender) tick(sh *shard, now time.Time) {
	target := s.frameNow(now)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	n := 0
	for _, st := range sh.streams {
		if st.next > target {
			continue
		}
		if behind := target - st.next + 1; behind > maxCatchUp {
			// The generator stalled: skip the frames it cannot send in time. The timestamp jumps (the
			// receiver writes silence there) but the sequence does not, so the server does not count the
			// generator's stall as network loss.
			skip := behind - maxCatchUp
			st.next += skip
			st.ts += uint32(skip) * frameSamples
			st.skipped += uint64(skip)
			s.skipped.Add(uint64(skip))
		}
		for ; st.next <= target; st.next++ {
			h := &sh.hdrs[n]
			h[0] = 0x80 // V=2
			h[1] = 0    // PT 0 (PCMU)
			if st.first {
				h[1] |= 0x80
				st.first = false
			}
			binary.BigEndian.PutUint16(h[2:], st.seq)
			binary.BigEndian.PutUint32(h[4:], st.ts)
			binary.BigEndian.PutUint32(h[8:], st.ssrc)
			sh.iovs[n][1].Base = &st.payload[0]
			sh.msgs[n].hdr.Name = (*byte)(unsafe.Pointer(&st.addr))
			sh.owners[n] = st
			st.seq++
			st.ts += frameSamples
			if n++; n == maxBatch {
				s.flush(sh, n)
				n = 0
			}
		}
	}
	s.flush(sh, n)
	sh.ticks++
	sh.maxTick = max(sh.maxTick, time.Since(now))
}

// flush sends msgs[:n]; a message the kernel refuses is counted against its stream and skipped.
func (s *rtpSender) flush(sh *shard, n int) {
	for off := 0; off < n; {
		r, _, errno := unix.Syscall6(unix.SYS_SENDMMSG, uintptr(sh.fd), uintptr(unsafe.Pointer(&sh.msgs[off])), uintptr(n-off), 0, 0, 0)
		if errno == unix.EINTR {
			continue
		}
		if errno != 0 {
			sh.owners[off].errors++
			off++
			continue
		}
		for i := off; i < off+int(r); i++ {
			sh.owners[i].sent++
		}
		s.sent.Add(uint64(r))
		off += int(r)
	}
	for i := range n {
		sh.owners[i] = nil
	}
	runtime.KeepAlive(sh)
}
