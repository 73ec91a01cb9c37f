package rtp

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/pion/rtp"

	"github.com/siphook/siphook/internal/g711"
	"github.com/siphook/siphook/internal/g722"
)

// Sink is where a stream's decoded audio goes: one channel of a recording (recorder.Channel satisfies it).
type Sink interface {
	// SamplePosition is the sample index of the recording timeline at wall-clock t.
	SamplePosition(t time.Time) int64
	// WriteSamples places pcm at timeline position pos; the sink copies it.
	WriteSamples(pos int64, pcm []int16)
	// SampleRate is the timeline's rate; streams convert their codec's rate to it.
	SampleRate() int
}

// rtpClock is the RTP timestamp rate of every codec we decode: 8000 for G.711 and, by RFC 3551's historical
// error, for G.722 too.
const rtpClock = 8000

// Encoding is what an RTP payload type carries.
type Encoding uint8

const (
	EncodingUnknown Encoding = iota
	EncodingPCMU
	EncodingPCMA
	EncodingG722           // 16 kHz wideband
	EncodingTelephoneEvent // RFC 4733 DTMF: counted, never written as audio
	EncodingComfortNoise   // RFC 3389 CN: counted, never written as audio
)

// EncodingByName maps an SDP rtpmap encoding name (any case) to an Encoding.
func EncodingByName(name string) Encoding {
	switch strings.ToUpper(name) {
	case "PCMU":
		return EncodingPCMU
	case "PCMA":
		return EncodingPCMA
	case "G722":
		return EncodingG722
	case "TELEPHONE-EVENT":
		return EncodingTelephoneEvent
	case "CN":
		return EncodingComfortNoise
	}
	return EncodingUnknown
}

// SampleRate is the rate an audio encoding decodes to, or 0 for what is not audio we record.
func (e Encoding) SampleRate() int {
	switch e {
	case EncodingPCMU, EncodingPCMA:
		return 8000
	case EncodingG722:
		return g722.SampleRate
	}
	return 0
}

// Name is the encoding's SDP rtpmap name.
func (e Encoding) Name() string {
	return [...]string{"", "PCMU", "PCMA", "G722", "telephone-event", "CN"}[e]
}

// PayloadMap says what each payload type of a stream carries. The static types 0 (PCMU), 8 (PCMA), 9 (G.722)
// and 13 (CN) need no entry.
type PayloadMap map[uint8]Encoding

// Lookup says what payload type pt carries.
func (m PayloadMap) Lookup(pt uint8) Encoding {
	if e, ok := m[pt]; ok {
		return e
	}
	switch pt {
	case 0:
		return EncodingPCMU
	case 8:
		return EncodingPCMA
	case 9:
		return EncodingG722
	case 13:
		return EncodingComfortNoise
	}
	return EncodingUnknown
}

// Stats are a stream's packet counters.
type Stats struct {
	Received   uint64 // RTP packets accepted while recording
	Lost       uint64 // sequence numbers never seen (net of late arrivals)
	Reordered  uint64 // packets that arrived after a later sequence number
	Duplicates uint64 // packets whose sequence number was already seen
	Dropped    uint64 // packets not recorded: not recording yet, paused, malformed, unknown payload type or SRTP rejected
	SRTPFailed uint64 // SRTP packets that failed authentication or were replays
	Jumps      uint64 // timeline re-anchors: SSRC change, timestamp jump
}

const (
	// maxDrift is how far (in samples at 8 kHz) RTP-timestamp placement may stray from wall-clock placement
	// before the stream is re-anchored on the wall clock: one second absorbs jitter and batched reads, and
	// catches SSRC changes, timestamp resets and hold gaps the SRC did not reflect in its timestamps.
	maxDrift = 8000
	// seqWindow is how many recent sequence numbers are remembered for duplicate detection.
	seqWindow = 64
	// maxDropout is the largest forward sequence jump counted as loss; a larger jump either way restarts the
	// sequence tracking (RFC 3550 A.1's MAX_DROPOUT), as a sender restart would.
	maxDropout = 3000
)

// Stream turns the RTP packets of one recorded m-line into samples on a recording's timeline.
// A packet's place comes from its RTP timestamp relative to the stream's anchor, so reordered packets land
// in order and gaps become silence; the anchor is set from the wall clock on the first packet and whenever
// the timestamp stops agreeing with the clock.
type Stream struct {
	folded   Stats // the counts already in the receiver's totals; under the receiver's streamTotals.mu
	mu       sync.Mutex
	payloads PayloadMap
	sink     Sink // nil: not recording, packets are dropped
	rate     int  // the sink's sample rate
	// Packets that arrived before the sink was set are not recorded: a sweep reads a socket after the fact,
	// and what sat there while recording was off (a customer on hold) must not be recorded when it resumes.
	// SetSink has the reader handle what its socket holds first (drainQueued, set by the sweep reader), under
	// the state it arrived in; a packet whose measured arrival is before acceptFrom is dropped too (it came
	// while the sink changed). Estimated arrivals are not checked: they can be a packet off either way, and
	// the drain has already taken everything that came before.
	now         func() time.Time // the receiver's arrival clock, set by Receiver.Open; nil: no such check
	drainQueued func()
	acceptFrom  time.Time
	srtp        *Decrypter
	stats       Stats

	anchored   bool
	ssrc       uint32
	anchorExt  int64 // extended timestamp at the anchor
	anchorPos  int64 // timeline position at the anchor
	lastTS     uint32
	lastExt    int64
	highestSeq int64  // extended sequence number
	seenMask   uint64 // bit i set: highestSeq-i was seen

	q quality

	pkt  rtp.Packet
	pcm  []int16 // decoded, at the codec's rate
	out  []int16 // converted to the sink's rate
	last int16   // the previous decoded sample, for interpolation across packets
	g722 *g722.Decoder
}

// NewStream makes a stream that decodes the given payload types.
func NewStream(payloads PayloadMap) *Stream {
	return &Stream{payloads: payloads, pcm: make([]int16, 0, 320)}
}

func (s *Stream) setClock(now func() time.Time) {
	s.mu.Lock()
	s.now = now
	s.mu.Unlock()
}

func (s *Stream) setDrainQueued(drain func()) {
	s.mu.Lock()
	s.drainQueued = drain
	s.mu.Unlock()
}

// SetPayloads replaces the payload map (an SDP renegotiation).
func (s *Stream) SetPayloads(p PayloadMap) {
	s.mu.Lock()
	s.payloads = p
	s.mu.Unlock()
}

// SetSink starts (sink != nil) or stops (nil) recording. A new sink re-anchors the timeline and takes only
// packets that arrive from now on.
func (s *Stream) SetSink(sink Sink) {
	s.mu.Lock()
	drain := s.drainQueued
	changed := sink != s.sink
	s.mu.Unlock()
	if changed && drain != nil {
		drain() // outside mu: the reader takes its own lock, then mu for each packet
	}
	s.mu.Lock()
	if sink != s.sink {
		s.anchored = false
		if sink != nil && s.now != nil {
			s.acceptFrom = s.now()
		}
	}
	s.sink = sink
	if sink != nil {
		s.rate = sink.SampleRate()
	}
	s.mu.Unlock()
}

// SetSRTP makes the stream decrypt SRTP with the SRC's key (nil: plain RTP). The same key again keeps the
// decryption context, with its rollover counter and replay window.
func (s *Stream) SetSRTP(k *SRTPKey) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if k == nil {
		s.srtp = nil
		return nil
	}
	if s.srtp != nil && s.srtp.SameKey(*k) {
		return nil
	}
	d, err := NewDecrypter(*k)
	if err != nil {
		return err
	}
	s.srtp = d
	return nil
}

// Resync drops the timeline anchor so the next packet is placed by the wall clock: after a hold the SRC's
// timestamps need not reflect the gap.
func (s *Stream) Resync() {
	s.mu.Lock()
	s.anchored = false
	s.mu.Unlock()
}

// countDropped counts a packet the reader could not take (truncated).
func (s *Stream) countDropped() {
	s.mu.Lock()
	s.stats.Dropped++
	s.mu.Unlock()
}

// Stats returns a snapshot of the counters.
func (s *Stream) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stats
}

// HandlePacket records one RTP (or SRTP) packet that arrived at the given time. b is not used after it
// returns.
func (s *Stream) HandlePacket(b []byte, arrival time.Time) { s.handlePacket(b, arrival, true) }

// handlePacket is HandlePacket for a reader that knows whether arrival was measured (a clock read as the
// packet came) or estimated (from its RTP timestamp): only measured arrivals count for jitter.
func (s *Stream) handlePacket(b []byte, arrival time.Time, measured bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.srtp != nil {
		// Decrypted even when not recording, so the rollover counter follows the sequence numbers.
		plain, err := s.srtp.DecryptRTP(nil, b)
		if err != nil {
			s.stats.Dropped++
			s.stats.SRTPFailed++
			// A replay is a duplicate, not a failure; a wrong key fails every packet, reported once per run.
			if !errors.Is(err, ErrSRTPReplay) && !s.q.decryptFailing {
				s.q.decryptFailing = true
				s.mediaError(arrival, MediaDecryptFailed, err.Error())
			}
			return
		}
		s.q.decryptFailing = false
		b = plain
	}
	if s.sink == nil || (measured && arrival.Before(s.acceptFrom)) || s.pkt.Unmarshal(b) != nil || s.pkt.Version != 2 {
		s.stats.Dropped++
		return
	}
	h := &s.pkt.Header
	enc := s.payloads.Lookup(h.PayloadType)
	if enc == EncodingUnknown {
		s.stats.Dropped++
		return
	}
	if !s.anchored || h.SSRC != s.ssrc {
		if s.anchored && h.SSRC != s.ssrc {
			s.stats.Jumps++ // a new SSRC (transfer, SBC failover) starts a new timeline anchor
		}
		if s.q.tracking && h.SSRC != s.ssrc {
			s.mediaError(arrival, MediaSSRCChange, fmt.Sprintf("SSRC %08x -> %08x", s.ssrc, h.SSRC))
		}
		if h.SSRC != s.ssrc && s.g722 != nil {
			s.g722.Reset() // a new sender: its ADPCM state starts afresh
		}
		s.anchor(h, arrival)
		s.restartSeq(int64(h.SequenceNumber))
	} else if !s.countSeq(h.SequenceNumber, arrival) {
		return // duplicate
	}
	s.stats.Received++
	codecRate := enc.SampleRate()
	if codecRate == 0 || len(s.pkt.Payload) == 0 {
		return // DTMF, comfort noise
	}
	if s.q.codec != enc || s.q.codecPT != h.PayloadType {
		if s.q.codec != EncodingUnknown {
			s.mediaError(arrival, MediaCodecChange, fmt.Sprintf("%s (%d) -> %s (%d)", s.q.codec.Name(), s.q.codecPT, enc.Name(), h.PayloadType))
		}
		s.q.codec, s.q.codecPT = enc, h.PayloadType
	}

	d := int64(int32(h.Timestamp - s.lastTS))
	ext := s.lastExt + d
	if d > 0 {
		s.lastTS, s.lastExt = h.Timestamp, ext
	}
	scale := int64(s.rate / rtpClock)
	pos := s.anchorPos + (ext-s.anchorExt)*scale
	if wall := s.sink.SamplePosition(arrival); pos-wall > maxDrift*scale || wall-pos > maxDrift*scale {
		s.stats.Jumps++
		s.mediaError(arrival, MediaTimestampJump, fmt.Sprintf("timestamp %d is %+.3f s off the arrival time; re-anchored",
			h.Timestamp, float64(pos-wall)/float64(s.rate)))
		s.anchor(h, arrival)
		pos = s.anchorPos
	}
	if measured {
		s.updateJitter(h.Timestamp, arrival)
	} else {
		s.q.jitterRef = false // the next measured arrival starts afresh: transit times don't compare across
	}
	if pcm := s.convert(s.decode(enc, s.pkt.Payload), codecRate); pcm != nil {
		s.sink.WriteSamples(pos, pcm)
	}
}

// decode turns a payload into samples at the encoding's rate, in a buffer reused across packets.
func (s *Stream) decode(enc Encoding, payload []byte) []int16 {
	n := len(payload)
	if enc == EncodingG722 {
		n *= 2
	}
	if cap(s.pcm) < n {
		s.pcm = make([]int16, n) // 60 ms or longer packets; grows once per stream
	}
	pcm := s.pcm[:n]
	switch enc {
	case EncodingPCMU:
		g711.DecodeULaw(pcm, payload)
	case EncodingPCMA:
		g711.DecodeALaw(pcm, payload)
	case EncodingG722:
		if s.g722 == nil {
			s.g722 = g722.NewDecoder()
		}
		s.g722.Decode(pcm, payload)
	}
	return pcm
}

// convert brings samples at the codec's rate to the sink's rate, which is an integer multiple or fraction
// of it (8 and 16 kHz): linear interpolation up, averaging down. Speech loses nothing audible either way,
// and a recording keeps one rate even when its streams' codecs differ or change.
func (s *Stream) convert(pcm []int16, from int) []int16 {
	to := s.rate
	if len(pcm) == 0 {
		return nil
	}
	defer func() { s.last = pcm[len(pcm)-1] }()
	switch {
	case to == from:
		return pcm
	case to > from && to%from == 0:
		f := to / from
		out := s.outBuf(len(pcm) * f)
		prev := int32(s.last)
		for i, v := range pcm {
			cur := int32(v)
			for k := range f {
				out[i*f+k] = int16(prev + (cur-prev)*int32(k+1)/int32(f))
			}
			prev = cur
		}
		return out
	case from > to && from%to == 0:
		f := from / to
		out := s.outBuf(len(pcm) / f)
		for i := range out {
			var sum int32
			for _, v := range pcm[i*f : (i+1)*f] {
				sum += int32(v)
			}
			out[i] = int16(sum / int32(f))
		}
		return out
	}
	return nil // rates we never pair (Validate of the session's codecs keeps them out)
}

func (s *Stream) outBuf(n int) []int16 {
	if cap(s.out) < n {
		s.out = make([]int16, n)
	}
	return s.out[:n]
}

// anchor pins the packet's timestamp to the wall-clock position of its arrival. The packet starts a new
// jitter reference too: its transit time need not continue the old one's.
func (s *Stream) anchor(h *rtp.Header, arrival time.Time) {
	s.anchored = true
	s.ssrc = h.SSRC
	s.lastTS, s.lastExt, s.anchorExt = h.Timestamp, 0, 0
	// Never before the recording's start: a batched reader's arrival estimate (or a packet queued before the
	// recording began) can point there, and those samples would all be dropped as late.
	s.anchorPos = max(0, s.sink.SamplePosition(arrival))
	s.q.jitterRef = false
}

// restartSeq starts a new sequence segment at ext (a new SSRC, recording switched on or resumed, a
// sequence reset): the packets expected so far are kept and the new segment adds its own.
func (s *Stream) restartSeq(ext int64) {
	s.q.expectedDone = s.expected()
	s.q.tracking = true
	s.q.segBase, s.highestSeq, s.seenMask = ext, ext, 1
}

// expected is the number of packets the sequence numbers say were sent: highest − first + 1 of the current
// segment plus every finished one.
func (s *Stream) expected() uint64 {
	if !s.q.tracking {
		return s.q.expectedDone
	}
	return s.q.expectedDone + uint64(s.highestSeq-s.q.segBase+1)
}

// countSeq updates the loss/reorder/duplicate counters and the loss bursts; it reports false for a duplicate.
//
// A burst is counted when its gap is seen. A late packet that falls in a gap within the 64-packet window
// corrects it from its neighbours: filling a gap of one removes the burst, landing inside a longer gap with
// neither neighbour seen splits it in two, and landing at a gap's edge shortens it. A packet later than the
// window leaves loss and bursts as they were (it is counted as reordered and could be a duplicate).
func (s *Stream) countSeq(seq uint16, arrival time.Time) bool {
	ext := s.highestSeq + int64(int16(seq-uint16(s.highestSeq)))
	switch diff := ext - s.highestSeq; {
	case diff > maxDropout || diff < -maxDropout:
		s.mediaError(arrival, MediaSequenceReset, fmt.Sprintf("sequence %d -> %d", uint16(s.highestSeq), seq))
		s.restartSeq(ext)
	case diff > 0:
		if diff > 1 {
			s.stats.Lost += uint64(diff - 1)
			s.q.bursts++
		}
		if diff >= seqWindow {
			s.seenMask = 0
		} else {
			s.seenMask <<= uint(diff)
		}
		s.seenMask |= 1
		s.highestSeq = ext
	case diff == 0:
		s.stats.Duplicates++
		return false
	case -diff < seqWindow:
		k := uint(-diff)
		bit := uint64(1) << k
		if s.seenMask&bit != 0 {
			s.stats.Duplicates++
			return false
		}
		s.seenMask |= bit
		s.stats.Reordered++
		if ext < s.q.segBase {
			// Older than the packet that started the segment: the segment starts here, and what lies between
			// was lost.
			if gap := s.q.segBase - ext - 1; gap > 0 {
				s.stats.Lost += uint64(gap)
				s.q.bursts++
			}
			s.q.segBase = ext
			break
		}
		if s.stats.Lost > 0 {
			s.stats.Lost--
		}
		newer := s.seenMask&(bit>>1) != 0
		older := k+1 >= seqWindow || s.seenMask&(bit<<1) != 0 // outside the window: assume seen
		switch {
		case newer && older:
			s.q.bursts -= min(s.q.bursts, 1)
		case !newer && !older:
			s.q.bursts++
		}
	default:
		// Older than the window but within the dropout limit: cannot tell a duplicate from a very late packet;
		// the recorder drops it if its place was already written.
		s.stats.Reordered++
	}
	return true
}
