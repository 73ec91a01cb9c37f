package siptest

import (
	"net"
	"slices"
	"time"
)

// Impairment makes the SRC's RTP sender behave like a poor network: it drops and delays packets. Every
// decision is a function of the packet's index and the seed, so a test can work out what the SRS should
// measure from the same Drop and Delay calls the sender makes.
type Impairment struct {
	// Loss is the fraction of packets dropped (0–1). With Seed 0 the drops are spread evenly (0.05: one in
	// every 20 packets); otherwise each block is dropped with probability Loss, drawn from Seed.
	Loss float64
	// Burst drops packets in runs of this many (0 or 1: single packets): Loss applies to blocks of Burst.
	Burst int
	// Jitter delays packets: with Seed 0 every odd-numbered packet by exactly Jitter (an alternating pattern
	// whose RFC 3550 jitter converges to Jitter), otherwise each by a random amount in [0, Jitter).
	Jitter time.Duration
	Seed   uint64
}

// Drop says whether packet k of a stream (counted from 0 since Call.Impair) is dropped.
func (im Impairment) Drop(k int) bool {
	if im.Loss <= 0 {
		return false
	}
	b := k / max(im.Burst, 1)
	if im.Seed == 0 {
		// Bresenham: block b is dropped when the running total b·Loss, offset by a half, passes an integer:
		// the drops sit mid-period (0.05: packets 9, 29, 49, …), so any multiple of the period holds the
		// exact fraction.
		return int((float64(b)+1)*im.Loss+0.5) > int(float64(b)*im.Loss+0.5)
	}
	return unit(im.Seed, 2*uint64(b)) < im.Loss
}

// Delay says how late packet k of a stream (counted from 0 since Call.Impair) is sent.
func (im Impairment) Delay(k int) time.Duration {
	if im.Jitter <= 0 {
		return 0
	}
	if im.Seed == 0 {
		return time.Duration(k%2) * im.Jitter
	}
	return time.Duration(unit(im.Seed, 2*uint64(k)+1) * float64(im.Jitter))
}

// unit is a uniform number in [0, 1) from a seed and an index: SplitMix64's finaliser over both, so any
// packet's fate can be asked for in any order.
func unit(seed, i uint64) float64 {
	z := seed + (i+1)*0x9e3779b97f4a7c15
	z = (z ^ z>>30) * 0xbf58476d1ce4e5b9
	z = (z ^ z>>27) * 0x94d049bb133111eb
	z ^= z >> 31
	return float64(z>>11) / (1 << 53)
}

// Impair applies im to every stream's packets from the next one SendTones sends; the packet index k of
// Drop and Delay restarts at 0. The zero Impairment sends everything on time.
func (c *Call) Impair(im Impairment) {
	c.mu.Lock()
	c.impair, c.impairFrom = im, c.sent
	c.mu.Unlock()
}

// SentJitter is the RFC 3550 interarrival jitter of audio m-line i's packets as they left (send time
// against RTP timestamp): what a receiver over a perfect network would measure. It differs from the
// impairment's pattern by the sender's own timer lateness, which a test can then tell apart from the
// receiver's error.
func (c *Call) SentJitter(i int) time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	if i >= len(c.sentJitter) {
		return 0
	}
	return time.Duration(c.sentJitter[i].j)
}

// sendJitter is RFC 3550 A.8 over send times.
type sendJitter struct {
	j      float64 // nanoseconds
	ref    bool
	lastAt time.Time
	lastTS uint32
}

func (s *sendJitter) add(at time.Time, ts uint32) {
	if s.ref {
		d := at.Sub(s.lastAt) - time.Duration(int32(ts-s.lastTS))*(time.Second/8000)
		s.j += (float64(d.Abs()) - s.j) / 16
	}
	s.ref, s.lastAt, s.lastTS = true, at, ts
}

// noteSent notes that a packet of stream i with timestamp ts left at at.
func (c *Call) noteSent(i int, at time.Time, ts uint32) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for len(c.sentJitter) <= i {
		c.sentJitter = append(c.sentJitter, sendJitter{})
	}
	c.sentJitter[i].add(at, ts)
}

// outPacket is a packet waiting for its (delayed) send time.
type outPacket struct {
	due    time.Time
	order  int // ties keep the order packets were made in
	stream int
	ts     uint32
	conn   *net.UDPConn
	dst    *net.UDPAddr
	b      []byte
}

// sendQueue holds packets in the order they are due.
type sendQueue struct {
	pkts []outPacket
	made int
}

func (q *sendQueue) push(p outPacket) {
	p.order = q.made
	q.made++
	i, _ := slices.BinarySearchFunc(q.pkts, p, func(a, b outPacket) int {
		if c := a.due.Compare(b.due); c != 0 {
			return c
		}
		return a.order - b.order
	})
	q.pkts = slices.Insert(q.pkts, i, p)
}

// sendDue writes every packet due by now, in order.
func (q *sendQueue) sendDue(c *Call, now time.Time) error {
	n := 0
	for ; n < len(q.pkts) && !q.pkts[n].due.After(now); n++ {
		p := q.pkts[n]
		if _, err := p.conn.WriteToUDP(p.b, p.dst); err != nil {
			q.pkts = q.pkts[n+1:]
			return err
		}
		c.noteSent(p.stream, time.Now(), p.ts)
	}
	q.pkts = q.pkts[n:]
	return nil
}

// next is when the earliest packet is due.
func (q *sendQueue) next() (time.Time, bool) {
	if len(q.pkts) == 0 {
		return time.Time{}, false
	}
	return q.pkts[0].due, true
}
