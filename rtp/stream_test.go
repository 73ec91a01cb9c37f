package rtp

import (
	"bytes"
	"encoding/binary"
	"math"
	"slices"
	"sync"
	"testing"
	"time"

	pionrtp "github.com/pion/rtp"

	"github.com/siphook/siphook/internal/g711"
)

const (
	samplePeriod = time.Second / 8000 // one G.711 sample
	testSSRC     = 0x5eed1234
	ptTE         = 101 // dynamic payload type used for telephone-event
)

// baseTime is an arbitrary wall-clock instant; arrivals are given in samples after it.
var baseTime = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

// at is the arrival time n samples after baseTime.
func at(n int64) time.Time { return baseTime.Add(time.Duration(n) * samplePeriod) }

// fakeSink records every write. Its timeline starts at position start at wall-clock time base; both are
// settable so tests can move where "now" lands on the timeline.
type fakeSink struct {
	mu     sync.Mutex
	base   time.Time
	start  int64
	writes []sinkWrite
}

type sinkWrite struct {
	pos int64
	pcm []int16
}

func newFakeSink(start int64) *fakeSink { return &fakeSink{base: baseTime, start: start} }

func (s *fakeSink) SampleRate() int { return 8000 }

func (s *fakeSink) SamplePosition(t time.Time) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.start + int64(t.Sub(s.base)/samplePeriod)
}

func (s *fakeSink) WriteSamples(pos int64, pcm []int16) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.writes = append(s.writes, sinkWrite{pos, slices.Clone(pcm)})
}

func (s *fakeSink) Writes() []sinkWrite {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.writes)
}

func (s *fakeSink) samples() int {
	n := 0
	for _, w := range s.Writes() {
		n += len(w.pcm)
	}
	return n
}

// packet describes one RTP packet sent to a stream.
type packet struct {
	seq     uint16
	ts      uint32
	arrive  int64  // arrival, in samples after baseTime
	pt      uint8  // 0 (PCMU) unless set
	ssrc    uint32 // testSSRC unless set
	n       int    // payload length; 160 unless set; -1 for none
	payload []byte // explicit payload (overrides n)
}

// fill is the payload byte of a packet: derived from the sequence number so every write can be traced back
// to the packet it came from.
func fill(seq uint16) byte { return byte(seq)*7 + 3 }

func (p packet) bytes() []byte {
	payload := p.payload
	if payload == nil {
		n := p.n
		switch {
		case n == 0:
			n = 160
		case n < 0:
			n = 0
		}
		payload = bytes.Repeat([]byte{fill(p.seq)}, n)
	}
	ssrc := p.ssrc
	if ssrc == 0 {
		ssrc = testSSRC
	}
	return rtpBytes(p.pt, p.seq, p.ts, ssrc, payload)
}

func rtpBytes(pt uint8, seq uint16, ts, ssrc uint32, payload []byte) []byte {
	b := make([]byte, 12, 12+len(payload))
	b[0] = 0x80
	b[1] = pt & 0x7f
	binary.BigEndian.PutUint16(b[2:], seq)
	binary.BigEndian.PutUint32(b[4:], ts)
	binary.BigEndian.PutUint32(b[8:], ssrc)
	return append(b, payload...)
}

func (p packet) send(s *Stream) { s.HandlePacket(p.bytes(), at(p.arrive)) }

// wantWrite is a write expected at pos, carrying the 160-sample PCMU payload of packet seq.
type wantWrite struct {
	pos int64
	seq uint16
}

func decodedULaw(b []byte) []int16 {
	out := make([]int16, len(b))
	g711.DecodeULaw(out, b)
	return out
}

func checkWrites(t *testing.T, got []sinkWrite, want []wantWrite) {
	t.Helper()
	if len(got) != len(want) {
		gotPos := make([]int64, len(got))
		for i, w := range got {
			gotPos[i] = w.pos
		}
		t.Fatalf("got %d writes at %v, want %d: %v", len(got), gotPos, len(want), want)
	}
	for i, w := range want {
		wantPCM := decodedULaw(bytes.Repeat([]byte{fill(w.seq)}, 160))
		if got[i].pos != w.pos {
			t.Errorf("write %d at %d, want %d", i, got[i].pos, w.pos)
		}
		if !slices.Equal(got[i].pcm, wantPCM) {
			t.Errorf("write %d (pos %d) does not carry packet seq %d: first samples %v, want %v",
				i, got[i].pos, w.seq, got[i].pcm[:min(4, len(got[i].pcm))], wantPCM[:4])
		}
	}
}

func TestStreamDroppedWithoutSink(t *testing.T) {
	s := NewStream(nil)
	for i := range 3 {
		packet{seq: uint16(i), ts: uint32(160 * i), arrive: int64(160 * i)}.send(s)
	}
	if got, want := s.Stats(), (Stats{Dropped: 3}); got != want {
		t.Errorf("Stats() = %+v, want %+v", got, want)
	}
}

func TestStreamDecodes(t *testing.T) {
	payload := make([]byte, 256)
	for i := range payload {
		payload[i] = byte(i)
	}
	ulaw := make([]int16, len(payload))
	g711.DecodeULaw(ulaw, payload)
	alaw := make([]int16, len(payload))
	g711.DecodeALaw(alaw, payload)

	tests := []struct {
		name     string
		payloads PayloadMap
		pt       uint8
		want     []int16
	}{
		{"PCMU static PT 0", nil, 0, ulaw},
		{"PCMA static PT 8", nil, 8, alaw},
		{"PCMU dynamic PT", PayloadMap{96: EncodingPCMU}, 96, ulaw},
		{"PCMA dynamic PT", PayloadMap{97: EncodingPCMA}, 97, alaw},
		{"map overrides static PT", PayloadMap{0: EncodingPCMA}, 0, alaw},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := NewStream(tt.payloads)
			sink := newFakeSink(0)
			s.SetSink(sink)
			// Two packets of 160 samples in different parts of the code table.
			s.HandlePacket(rtpBytes(tt.pt, 1, 0, testSSRC, payload[:160]), at(0))
			s.HandlePacket(rtpBytes(tt.pt, 2, 160, testSSRC, payload[96:]), at(160))
			w := sink.Writes()
			if len(w) != 2 {
				t.Fatalf("got %d writes, want 2", len(w))
			}
			if !slices.Equal(w[0].pcm, tt.want[:160]) {
				t.Errorf("first packet decoded to %v…, want %v…", w[0].pcm[:8], tt.want[:8])
			}
			if !slices.Equal(w[1].pcm, tt.want[96:]) {
				t.Errorf("second packet decoded to %v…, want %v…", w[1].pcm[:8], tt.want[96:104])
			}
			if got, want := s.Stats(), (Stats{Received: 2}); got != want {
				t.Errorf("Stats() = %+v, want %+v", got, want)
			}
		})
	}
}

func TestStreamPlacement(t *testing.T) {
	const top = math.MaxUint32 + 1 // 2^32, the timestamp wrap
	tests := []struct {
		name      string
		payloads  PayloadMap
		sinkStart int64 // sink timeline position at baseTime
		packets   []packet
		want      []wantWrite
		wantStats Stats
	}{
		{
			name: "in order",
			packets: []packet{
				{seq: 100, ts: 5000, arrive: 0},
				{seq: 101, ts: 5160, arrive: 160},
				{seq: 102, ts: 5320, arrive: 320},
			},
			want:      []wantWrite{{0, 100}, {160, 101}, {320, 102}},
			wantStats: Stats{Received: 3},
		},
		{
			name:      "anchor is the sink position at the first arrival",
			sinkStart: 48000,
			packets: []packet{
				{seq: 7, ts: 123456, arrive: 40},
				{seq: 8, ts: 123616, arrive: 200},
			},
			want:      []wantWrite{{48040, 7}, {48200, 8}},
			wantStats: Stats{Received: 2},
		},
		{
			name: "positions follow timestamps, not arrival jitter",
			packets: []packet{
				{seq: 1, ts: 0, arrive: 0},
				{seq: 2, ts: 160, arrive: 900},  // late
				{seq: 3, ts: 320, arrive: 905},  // batched with it
				{seq: 4, ts: 480, arrive: 7000}, // within the one-second drift allowance
			},
			want:      []wantWrite{{0, 1}, {160, 2}, {320, 3}, {480, 4}},
			wantStats: Stats{Received: 4},
		},
		{
			name: "reordered packet lands at its own position",
			packets: []packet{
				{seq: 1, ts: 0, arrive: 0},
				{seq: 2, ts: 160, arrive: 160},
				{seq: 4, ts: 480, arrive: 480},
				{seq: 3, ts: 320, arrive: 490},
				{seq: 5, ts: 640, arrive: 640},
			},
			want:      []wantWrite{{0, 1}, {160, 2}, {480, 4}, {320, 3}, {640, 5}},
			wantStats: Stats{Received: 5, Reordered: 1},
		},
		{
			name: "packet older than the first one",
			packets: []packet{
				{seq: 10, ts: 1600, arrive: 0},
				{seq: 9, ts: 1440, arrive: 10},
				{seq: 11, ts: 1760, arrive: 160},
			},
			want:      []wantWrite{{0, 10}, {-160, 9}, {160, 11}},
			wantStats: Stats{Received: 3, Reordered: 1},
		},
		{
			name: "gap counts lost and leaves silence",
			packets: []packet{
				{seq: 1, ts: 0, arrive: 0},
				{seq: 2, ts: 160, arrive: 160},
				{seq: 5, ts: 640, arrive: 640},
				{seq: 6, ts: 800, arrive: 800},
			},
			want:      []wantWrite{{0, 1}, {160, 2}, {640, 5}, {800, 6}},
			wantStats: Stats{Received: 4, Lost: 2},
		},
		{
			name: "gap partly filled late",
			packets: []packet{
				{seq: 1, ts: 0, arrive: 0},
				{seq: 5, ts: 640, arrive: 640},
				{seq: 3, ts: 320, arrive: 650},
			},
			want:      []wantWrite{{0, 1}, {640, 5}, {320, 3}},
			wantStats: Stats{Received: 3, Lost: 2, Reordered: 1},
		},
		{
			name: "duplicate counted and not written twice",
			packets: []packet{
				{seq: 1, ts: 0, arrive: 0},
				{seq: 2, ts: 160, arrive: 160},
				{seq: 2, ts: 160, arrive: 170},
				{seq: 3, ts: 320, arrive: 320},
			},
			want:      []wantWrite{{0, 1}, {160, 2}, {320, 3}},
			wantStats: Stats{Received: 3, Duplicates: 1},
		},
		{
			name: "duplicate of the anchor packet",
			packets: []packet{
				{seq: 1, ts: 0, arrive: 0},
				{seq: 1, ts: 0, arrive: 5},
			},
			want:      []wantWrite{{0, 1}},
			wantStats: Stats{Received: 1, Duplicates: 1},
		},
		{
			name: "duplicate of a reordered packet",
			packets: []packet{
				{seq: 1, ts: 0, arrive: 0},
				{seq: 3, ts: 320, arrive: 320},
				{seq: 2, ts: 160, arrive: 330},
				{seq: 2, ts: 160, arrive: 340},
				{seq: 3, ts: 320, arrive: 350},
			},
			want:      []wantWrite{{0, 1}, {320, 3}, {160, 2}},
			wantStats: Stats{Received: 3, Reordered: 1, Duplicates: 2},
		},
		{
			name: "sequence number wrap",
			packets: []packet{
				{seq: 65534, ts: 0, arrive: 0},
				{seq: 65535, ts: 160, arrive: 160},
				{seq: 0, ts: 320, arrive: 320},
				{seq: 1, ts: 480, arrive: 480},
			},
			want:      []wantWrite{{0, 65534}, {160, 65535}, {320, 0}, {480, 1}},
			wantStats: Stats{Received: 4},
		},
		{
			name: "reordered across the sequence wrap",
			packets: []packet{
				{seq: 65535, ts: 0, arrive: 0},
				{seq: 1, ts: 320, arrive: 320},
				{seq: 0, ts: 160, arrive: 330},
			},
			want:      []wantWrite{{0, 65535}, {320, 1}, {160, 0}},
			wantStats: Stats{Received: 3, Reordered: 1},
		},
		{
			name: "timestamp wrap",
			packets: []packet{
				{seq: 1, ts: top - 320, arrive: 0},
				{seq: 2, ts: top - 160, arrive: 160},
				{seq: 3, ts: 0, arrive: 320},
				{seq: 4, ts: 160, arrive: 480},
			},
			want:      []wantWrite{{0, 1}, {160, 2}, {320, 3}, {480, 4}},
			wantStats: Stats{Received: 4},
		},
		{
			name: "timestamp wrap not on a packet boundary, reordered",
			packets: []packet{
				{seq: 1, ts: top - 100, arrive: 0},
				{seq: 3, ts: 220, arrive: 320},
				{seq: 2, ts: 60, arrive: 330},
				{seq: 4, ts: 380, arrive: 480},
			},
			want:      []wantWrite{{0, 1}, {320, 3}, {160, 2}, {480, 4}},
			wantStats: Stats{Received: 4, Reordered: 1},
		},
		{
			name: "sequence and timestamp wrap together",
			packets: []packet{
				{seq: 65535, ts: top - 160, arrive: 0},
				{seq: 0, ts: 0, arrive: 160},
				{seq: 1, ts: 160, arrive: 320},
			},
			want:      []wantWrite{{0, 65535}, {160, 0}, {320, 1}},
			wantStats: Stats{Received: 3},
		},
		{
			name: "timestamp jump within one second kept (silence)",
			packets: []packet{
				{seq: 1, ts: 0, arrive: 0},
				{seq: 2, ts: 4160, arrive: 160},
			},
			want:      []wantWrite{{0, 1}, {4160, 2}},
			wantStats: Stats{Received: 2},
		},
		{
			name: "drift of exactly one second kept",
			packets: []packet{
				{seq: 1, ts: 0, arrive: 0},
				{seq: 2, ts: 8160, arrive: 160},
			},
			want:      []wantWrite{{0, 1}, {8160, 2}},
			wantStats: Stats{Received: 2},
		},
		{
			name: "timestamp jump forward beyond one second re-anchors",
			packets: []packet{
				{seq: 1, ts: 0, arrive: 0},
				{seq: 2, ts: 8161, arrive: 160},
				{seq: 3, ts: 8321, arrive: 320},
			},
			want:      []wantWrite{{0, 1}, {160, 2}, {320, 3}},
			wantStats: Stats{Received: 3, Jumps: 1},
		},
		{
			name: "timestamp reset backwards re-anchors",
			packets: []packet{
				{seq: 1, ts: 500000, arrive: 0},
				{seq: 2, ts: 500160, arrive: 160},
				{seq: 3, ts: 0, arrive: 320},
				{seq: 4, ts: 160, arrive: 480},
			},
			want:      []wantWrite{{0, 1}, {160, 2}, {320, 3}, {480, 4}},
			wantStats: Stats{Received: 4, Jumps: 1},
		},
		{
			name: "hold gap not reflected in timestamps re-anchors on the wall clock",
			packets: []packet{
				{seq: 1, ts: 0, arrive: 0},
				{seq: 2, ts: 160, arrive: 160},
				{seq: 3, ts: 320, arrive: 24000}, // three seconds of silence the SRC did not send
				{seq: 4, ts: 480, arrive: 24160},
			},
			want:      []wantWrite{{0, 1}, {160, 2}, {24000, 3}, {24160, 4}},
			wantStats: Stats{Received: 4, Jumps: 1},
		},
		{
			name:     "telephone-event counted, never written",
			payloads: PayloadMap{ptTE: EncodingTelephoneEvent},
			packets: []packet{
				{seq: 1, ts: 0, arrive: 0},
				{seq: 2, ts: 160, arrive: 160, pt: ptTE, n: 4},
				{seq: 3, ts: 160, arrive: 200, pt: ptTE, n: 4},
				{seq: 4, ts: 480, arrive: 480},
			},
			want:      []wantWrite{{0, 1}, {480, 4}},
			wantStats: Stats{Received: 4},
		},
		{
			name:     "telephone-event first anchors the stream",
			payloads: PayloadMap{ptTE: EncodingTelephoneEvent},
			packets: []packet{
				{seq: 1, ts: 1000, arrive: 0, pt: ptTE, n: 4},
				{seq: 2, ts: 1160, arrive: 160},
			},
			want:      []wantWrite{{160, 2}},
			wantStats: Stats{Received: 2},
		},
		{
			name: "comfort noise (PT 13) counted, never written",
			packets: []packet{
				{seq: 1, ts: 0, arrive: 0},
				{seq: 2, ts: 160, arrive: 160, pt: 13, n: 1},
				{seq: 3, ts: 3200, arrive: 3200},
			},
			want:      []wantWrite{{0, 1}, {3200, 3}},
			wantStats: Stats{Received: 3},
		},
		{
			name:     "comfort noise on a dynamic PT",
			payloads: PayloadMap{118: EncodingComfortNoise},
			packets: []packet{
				{seq: 1, ts: 0, arrive: 0, pt: 118, n: 1},
			},
			wantStats: Stats{Received: 1},
		},
		{
			name: "unknown payload type dropped",
			packets: []packet{
				{seq: 1, ts: 0, arrive: 0},
				{seq: 2, ts: 160, arrive: 160, pt: 18}, // G.729, not negotiated
				{seq: 3, ts: 160, arrive: 160, pt: 101},
			},
			want:      []wantWrite{{0, 1}},
			wantStats: Stats{Received: 1, Dropped: 2},
		},
		{
			name: "unknown payload type before the first packet does not anchor",
			packets: []packet{
				{seq: 1, ts: 0, arrive: 0, pt: 96},
				{seq: 2, ts: 160, arrive: 5000},
			},
			want:      []wantWrite{{5000, 2}},
			wantStats: Stats{Received: 1, Dropped: 1},
		},
		{
			name: "empty payload counted, not written",
			packets: []packet{
				{seq: 1, ts: 0, arrive: 0},
				{seq: 2, ts: 160, arrive: 160, n: -1},
				{seq: 3, ts: 320, arrive: 320},
			},
			want:      []wantWrite{{0, 1}, {320, 3}},
			wantStats: Stats{Received: 3},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := NewStream(tt.payloads)
			sink := newFakeSink(tt.sinkStart)
			s.SetSink(sink)
			for _, p := range tt.packets {
				p.send(s)
			}
			checkWrites(t, sink.Writes(), tt.want)
			if got := s.Stats(); got != tt.wantStats {
				t.Errorf("Stats() = %+v, want %+v", got, tt.wantStats)
			}
		})
	}
}

func TestStreamSSRCChange(t *testing.T) {
	tests := []struct {
		name    string
		packets []packet
		want    []wantWrite
	}{
		{
			name: "new SSRC with unrelated timestamps and sequence numbers",
			packets: []packet{
				{seq: 1, ts: 1000, arrive: 0},
				{seq: 2, ts: 1160, arrive: 160},
				{seq: 30000, ts: 900000, arrive: 400, ssrc: 0xbeef},
				{seq: 30001, ts: 900160, arrive: 560, ssrc: 0xbeef},
			},
			want: []wantWrite{{0, 1}, {160, 2}, {400, 30000}, {560, 30001}},
		},
		{
			name: "new SSRC whose timestamps would land within a second",
			packets: []packet{
				{seq: 1, ts: 1000, arrive: 0},
				{seq: 2, ts: 1160, arrive: 160},
				{seq: 3, ts: 5000, arrive: 320, ssrc: 0xbeef}, // by timestamp this would be 4000
				{seq: 4, ts: 5160, arrive: 480, ssrc: 0xbeef},
			},
			want: []wantWrite{{0, 1}, {160, 2}, {320, 3}, {480, 4}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := NewStream(nil)
			sink := newFakeSink(0)
			s.SetSink(sink)
			for _, p := range tt.packets {
				p.send(s)
			}
			checkWrites(t, sink.Writes(), tt.want)
			st := s.Stats()
			if st.Received != uint64(len(tt.packets)) || st.Lost != 0 || st.Reordered != 0 || st.Duplicates != 0 || st.Dropped != 0 {
				t.Errorf("Stats() = %+v, want Received %d and no loss, reorder, duplicate or drop "+
					"(sequence tracking restarts with the new SSRC)", st, len(tt.packets))
			}
		})
	}
}

func TestStreamSSRCChangeCountsJump(t *testing.T) {
	s := NewStream(nil)
	sink := newFakeSink(0)
	s.SetSink(sink)
	packet{seq: 1, ts: 1000, arrive: 0}.send(s)
	packet{seq: 9, ts: 77777, arrive: 160, ssrc: 0xbeef}.send(s)
	if got := s.Stats().Jumps; got != 1 {
		t.Errorf("Stats().Jumps = %d after one SSRC change, want 1", got)
	}
}

func TestStreamMalformed(t *testing.T) {
	valid := packet{seq: 1, ts: 0}.bytes()
	with := func(f func(b []byte) []byte) []byte { return f(slices.Clone(valid)) }
	tests := []struct {
		name string
		b    []byte
	}{
		{"nil", nil},
		{"empty", []byte{}},
		{"one byte", []byte{0x80}},
		{"eleven bytes", valid[:11]},
		{"version 0", with(func(b []byte) []byte { b[0] = 0x00; return b })},
		{"version 1", with(func(b []byte) []byte { b[0] = 0x40; return b })},
		{"version 3", with(func(b []byte) []byte { b[0] = 0xC0; return b })},
		{"CSRC count beyond the packet", with(func(b []byte) []byte { b[0] = 0x8F; return b[:12+4*14] })},
		{"extension header truncated", with(func(b []byte) []byte { b[0] = 0x90; return b[:14] })},
		{"extension length beyond the packet", with(func(b []byte) []byte {
			b[0] = 0x90
			binary.BigEndian.PutUint16(b[12:], 0x1000)
			binary.BigEndian.PutUint16(b[14:], 0xFFFF)
			return b
		})},
		{"padding length zero", with(func(b []byte) []byte { b[0] = 0xA0; b[len(b)-1] = 0; return b })},
		{"padding longer than the payload", with(func(b []byte) []byte { b[0] = 0xA0; b[len(b)-1] = 200; return b })},
		{"padding bit on a bare header", with(func(b []byte) []byte { b[0] = 0xA0; return b[:12] })},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := NewStream(nil)
			sink := newFakeSink(0)
			s.SetSink(sink)
			s.HandlePacket(tt.b, at(0))
			if got, want := s.Stats(), (Stats{Dropped: 1}); got != want {
				t.Errorf("Stats() = %+v, want %+v", got, want)
			}
			if n := len(sink.Writes()); n != 0 {
				t.Errorf("%d writes, want none", n)
			}
			// The stream still works and the malformed packet did not anchor it.
			packet{seq: 2, ts: 160, arrive: 800}.send(s)
			checkWrites(t, sink.Writes(), []wantWrite{{800, 2}})
		})
	}
}

func TestStreamHeaderVariants(t *testing.T) {
	payload := bytes.Repeat([]byte{fill(1)}, 160)
	tests := []struct {
		name string
		pkt  pionrtp.Packet
	}{
		{"marker bit", pionrtp.Packet{Header: pionrtp.Header{Marker: true}}},
		{"CSRCs", pionrtp.Packet{Header: pionrtp.Header{CSRC: []uint32{1, 2, 3}}}},
		{"padding", pionrtp.Packet{Header: pionrtp.Header{Padding: true, PaddingSize: 4}}},
		{"one-byte header extension", pionrtp.Packet{Header: pionrtp.Header{
			Extension: true, ExtensionProfile: pionrtp.ExtensionProfileOneByte,
		}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := tt.pkt
			p.Version, p.SequenceNumber, p.SSRC, p.Payload = 2, 1, testSSRC, payload
			if p.Extension {
				if err := p.SetExtension(1, []byte{0xAA, 0xBB}); err != nil {
					t.Fatal(err)
				}
			}
			b, err := p.Marshal()
			if err != nil {
				t.Fatal(err)
			}
			s := NewStream(nil)
			sink := newFakeSink(0)
			s.SetSink(sink)
			s.HandlePacket(b, at(0))
			checkWrites(t, sink.Writes(), []wantWrite{{0, 1}})
		})
	}
}

func TestStreamLargePayload(t *testing.T) {
	for _, n := range []int{321, 480, 1488} {
		func() {
			defer func() {
				if r := recover(); r != nil {
					t.Errorf("payload of %d bytes: panic: %v", n, r)
				}
			}()
			s := NewStream(nil)
			sink := newFakeSink(0)
			s.SetSink(sink)
			packet{seq: 1, n: n}.send(s)
			if got := sink.samples(); got != n {
				t.Errorf("payload of %d bytes: wrote %d samples, want %d", n, got, n)
			}
		}()
	}
}

func TestStreamSetSink(t *testing.T) {
	a, b := newFakeSink(0), newFakeSink(100000)
	s := NewStream(nil)
	s.SetSink(a)
	packet{seq: 1, ts: 0, arrive: 0}.send(s)
	packet{seq: 2, ts: 160, arrive: 160}.send(s)

	// Same sink again: no re-anchor, placement still follows timestamps (arrival is 2000 samples late).
	s.SetSink(a)
	packet{seq: 3, ts: 320, arrive: 2320}.send(s)

	// Paused: dropped.
	s.SetSink(nil)
	packet{seq: 4, ts: 480, arrive: 2480}.send(s)

	// Resumed on another sink: re-anchored on that sink's clock, although the timestamps continue.
	s.SetSink(b)
	packet{seq: 5, ts: 640, arrive: 4000}.send(s)
	packet{seq: 6, ts: 800, arrive: 4160}.send(s)

	// Back to the first sink after a pause: re-anchored again, on a's clock.
	s.SetSink(nil)
	s.SetSink(a)
	packet{seq: 7, ts: 960, arrive: 6000}.send(s)

	// Straight to another sink without a pause: re-anchored on b's clock.
	s.SetSink(b)
	packet{seq: 8, ts: 1120, arrive: 7000}.send(s)

	t.Run("first sink", func(t *testing.T) {
		checkWrites(t, a.Writes(), []wantWrite{{0, 1}, {160, 2}, {320, 3}, {6000, 7}})
	})
	t.Run("second sink", func(t *testing.T) {
		checkWrites(t, b.Writes(), []wantWrite{{104000, 5}, {104160, 6}, {107000, 8}})
	})
	t.Run("stats", func(t *testing.T) {
		if got, want := s.Stats(), (Stats{Received: 7, Dropped: 1}); got != want {
			t.Errorf("Stats() = %+v, want %+v", got, want)
		}
	})
}

func TestStreamSetPayloads(t *testing.T) {
	s := NewStream(nil)
	sink := newFakeSink(0)
	s.SetSink(sink)
	packet{seq: 1, ts: 0, arrive: 0, pt: 96}.send(s) // unknown: dropped
	s.SetPayloads(PayloadMap{96: EncodingPCMU})
	packet{seq: 2, ts: 160, arrive: 160, pt: 96}.send(s)
	checkWrites(t, sink.Writes(), []wantWrite{{160, 2}})
	if got, want := s.Stats(), (Stats{Received: 1, Dropped: 1}); got != want {
		t.Errorf("Stats() = %+v, want %+v", got, want)
	}
}

func TestStreamConcurrentUse(t *testing.T) {
	s := NewStream(nil)
	sinks := []*fakeSink{newFakeSink(0), newFakeSink(5000)}
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := range 2000 {
			packet{seq: uint16(i), ts: uint32(160 * i), arrive: int64(160 * i)}.send(s)
		}
	})
	wg.Go(func() {
		for i := range 500 {
			switch i % 3 {
			case 0:
				s.SetSink(nil)
			default:
				s.SetSink(sinks[i%2])
			}
			_ = s.Stats()
		}
	})
	wg.Go(func() {
		for range 200 {
			s.SetPayloads(PayloadMap{96: EncodingPCMA})
		}
	})
	wg.Wait()
	st := s.Stats()
	if got := st.Received + st.Dropped + st.Duplicates; got != 2000 {
		t.Errorf("Received+Dropped+Duplicates = %d (%+v), want 2000", got, st)
	}
}

func TestEncodingByName(t *testing.T) {
	tests := []struct {
		name string
		want Encoding
	}{
		{"PCMU", EncodingPCMU},
		{"pcmu", EncodingPCMU},
		{"PCMA", EncodingPCMA},
		{"pcma", EncodingPCMA},
		{"PcMa", EncodingPCMA},
		{"telephone-event", EncodingTelephoneEvent},
		{"TELEPHONE-EVENT", EncodingTelephoneEvent},
		{"CN", EncodingComfortNoise},
		{"cn", EncodingComfortNoise},
		{"G729", EncodingUnknown},
		{"opus", EncodingUnknown},
		{"PCMU/8000", EncodingUnknown}, // the caller splits the rtpmap
		{" PCMU", EncodingUnknown},
		{"", EncodingUnknown},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := EncodingByName(tt.name); got != tt.want {
				t.Errorf("EncodingByName(%q) = %d, want %d", tt.name, got, tt.want)
			}
		})
	}
}

func TestPayloadMapLookup(t *testing.T) {
	m := PayloadMap{101: EncodingTelephoneEvent, 8: EncodingPCMU, 13: EncodingUnknown}
	tests := []struct {
		name string
		m    PayloadMap
		pt   uint8
		want Encoding
	}{
		{"static PCMU", nil, 0, EncodingPCMU},
		{"static PCMA", nil, 8, EncodingPCMA},
		{"static CN", nil, 13, EncodingComfortNoise},
		{"unmapped static", nil, 18, EncodingUnknown},
		{"unmapped dynamic", nil, 101, EncodingUnknown},
		{"mapped dynamic", m, 101, EncodingTelephoneEvent},
		{"entry overrides static", m, 8, EncodingPCMU},
		{"entry can disable static", m, 13, EncodingUnknown},
		{"static without entry", m, 0, EncodingPCMU},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.m.Lookup(tt.pt); got != tt.want {
				t.Errorf("Lookup(%d) = %d, want %d", tt.pt, got, tt.want)
			}
		})
	}
}

func FuzzHandlePacket(f *testing.F) {
	f.Add(packet{seq: 1, ts: 160}.bytes())
	f.Add(packet{seq: 65535, ts: math.MaxUint32, pt: 8, n: 80}.bytes())
	f.Add(packet{seq: 2, pt: 13, n: 1}.bytes())
	f.Add(packet{seq: 3, pt: ptTE, n: 4}.bytes())
	f.Add(packet{seq: 4, pt: 96, n: 20}.bytes())
	f.Add(packet{seq: 5, n: -1}.bytes())
	f.Add([]byte{0xA0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1, 0xFF, 0xFF, 2})       // padding
	f.Add([]byte{0x91, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0}) // CSRC + extension
	f.Add([]byte{0x90, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1, 0xBE, 0xDE, 0, 1, 0x10, 0xAA, 0, 0, 0xFF})
	f.Add([]byte{0x80})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		// What an independent parse says the stream should write.
		var p pionrtp.Packet
		wantSamples := 0
		valid := p.Unmarshal(slices.Clone(b)) == nil && p.Version == 2
		enc := PayloadMap{ptTE: EncodingTelephoneEvent, 96: EncodingPCMA}.Lookup(p.PayloadType)
		audio := valid && enc.SampleRate() > 0
		if audio {
			wantSamples = len(p.Payload) // G.711: a sample per byte; G.722: two at 16 kHz, averaged to one at the sink's 8 kHz
		}

		orig := slices.Clone(b)
		s := NewStream(PayloadMap{ptTE: EncodingTelephoneEvent, 96: EncodingPCMA})
		sink := newFakeSink(0)
		s.SetSink(sink)
		s.HandlePacket(b, at(0))
		s.HandlePacket(b, at(1)) // the same packet again is a duplicate
		if !bytes.Equal(b, orig) {
			t.Fatalf("HandlePacket modified its input")
		}
		if got := sink.samples(); got != wantSamples {
			t.Fatalf("wrote %d samples, want %d (payload length)", got, wantSamples)
		}
		if w := sink.Writes(); len(w) == 1 && enc != EncodingG722 {
			want := make([]int16, wantSamples)
			if enc == EncodingPCMU {
				g711.DecodeULaw(want, p.Payload)
			} else {
				g711.DecodeALaw(want, p.Payload)
			}
			if !slices.Equal(w[0].pcm, want) || w[0].pos != 0 {
				t.Fatalf("write at %d does not match the decoded payload", w[0].pos)
			}
		}
		st := s.Stats()
		switch {
		case !valid || enc == EncodingUnknown:
			if st != (Stats{Dropped: 2}) {
				t.Fatalf("invalid packet: Stats() = %+v, want Dropped 2", st)
			}
		default:
			if st != (Stats{Received: 1, Duplicates: 1}) {
				t.Fatalf("valid packet sent twice: Stats() = %+v, want Received 1, Duplicates 1", st)
			}
		}
	})
}

// discardSink is a sink whose timeline runs with the wall clock from baseTime and that drops every write.
type discardSink struct{}

func (discardSink) SamplePosition(t time.Time) int64 { return int64(t.Sub(baseTime) / samplePeriod) }
func (discardSink) WriteSamples(int64, []int16)      {}
func (discardSink) SampleRate() int                  { return 8000 }

func BenchmarkStreamHandlePacket(b *testing.B) {
	pkt := packet{seq: 0, ts: 0, n: 160}.bytes()
	if len(pkt) != 172 {
		b.Fatalf("packet is %d bytes, want 172", len(pkt))
	}
	s := NewStream(nil)
	s.SetSink(discardSink{})
	b.SetBytes(int64(len(pkt)))
	b.ReportAllocs()
	var i uint32
	for b.Loop() {
		i++
		binary.BigEndian.PutUint16(pkt[2:], uint16(i))
		binary.BigEndian.PutUint32(pkt[4:], 160*i)
		s.HandlePacket(pkt, baseTime.Add(time.Duration(i)*20*time.Millisecond))
	}
	b.StopTimer()
	if st := s.Stats(); st.Dropped != 0 || st.Duplicates != 0 || st.Jumps != 0 {
		b.Fatalf("Stats() = %+v, want every packet recorded in place", st)
	}
}

// A sequence jump beyond RFC 3550's dropout limit (a sender restart keeping its SSRC and timestamps) restarts
// sequence tracking: it is not counted as loss and duplicates are still caught after it.
func TestStreamSequenceRestart(t *testing.T) {
	s := NewStream(nil)
	sink := newFakeSink(0)
	s.SetSink(sink)
	packet{seq: 1, ts: 0, arrive: 0}.send(s)
	packet{seq: 2, ts: 160, arrive: 160}.send(s)
	packet{seq: 40000, ts: 320, arrive: 320}.send(s)
	packet{seq: 40001, ts: 480, arrive: 480}.send(s)
	packet{seq: 40001, ts: 480, arrive: 500}.send(s)
	st := s.Stats()
	if st.Lost != 0 || st.Duplicates != 1 || st.Received != 4 {
		t.Errorf("stats after a sequence restart = %+v, want 0 lost, 1 duplicate, 4 received", st)
	}
}

// TestStreamDropsPacketsFromBeforeItsSink: a sweep reads a socket after the fact; packets that were waiting
// there when recording was switched on (audio sent on hold) are not recorded.
func TestStreamDropsPacketsFromBeforeItsSink(t *testing.T) {
	s := NewStream(PayloadMap{0: EncodingPCMU})
	s.setClock(func() time.Time { return at(8000) }) // recording switched on 1 s after baseTime
	sink := newFakeSink(0)
	s.SetSink(sink)
	packet{seq: 1, ts: 160, arrive: 7840}.send(s) // arrived before: on hold
	packet{seq: 2, ts: 320, arrive: 8000}.send(s)
	packet{seq: 3, ts: 480, arrive: 8160}.send(s)
	if got := s.Stats(); got.Dropped != 1 || got.Received != 2 {
		t.Errorf("Stats() = %+v, want 1 dropped and 2 received", got)
	}
	if len(sink.writes) != 2 {
		t.Errorf("%d writes, want 2", len(sink.writes))
	}
}
