package rtp

import (
	"math"
	"strings"
	"testing"
	"time"

	"github.com/pion/srtp/v3"
)

// sendSeq sends packets seq first..first+n-1 of a regular 20 ms stream, arriving on time, skipping those
// drop says were lost.
func sendSeq(s *Stream, first, n int, drop func(i int) bool) {
	for i := range n {
		if drop != nil && drop(i) {
			continue
		}
		seq := first + i
		packet{seq: uint16(seq), ts: uint32(seq * 160), arrive: int64(seq * 160)}.send(s)
	}
}

func newRecordingStream() *Stream {
	s := NewStream(PayloadMap{ptTE: EncodingTelephoneEvent})
	s.SetSink(newFakeSink(0))
	return s
}

func TestQualityLoss(t *testing.T) {
	tests := []struct {
		name                   string
		drop                   func(i int) bool
		wantExpected, wantLost uint64
		wantBursts             uint64
		wantLossAfterLoss      float64
	}{
		{"none", nil, 200, 0, 0, 0},
		// Every tenth packet, the first and last kept: 20 of 200 lost (10 %), each a burst of its own.
		{"every tenth", func(i int) bool { return i%10 == 5 }, 200, 20, 20, 0},
		// Runs of three in every ten: 60 lost in 20 bursts; 40 of the 60 follow a lost packet.
		{"runs of three", func(i int) bool { return i%10 >= 4 && i%10 <= 6 }, 200, 60, 20, 40.0 / 60},
		// One run of 50.
		{"one long run", func(i int) bool { return i >= 100 && i < 150 }, 200, 50, 1, 49.0 / 50},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newRecordingStream()
			sendSeq(s, 1000, 200, tt.drop)
			q := s.Quality()
			if q.Expected != tt.wantExpected || q.Lost != tt.wantLost || q.LossBursts != tt.wantBursts {
				t.Errorf("Quality() = %+v, want expected %d, lost %d, bursts %d", q, tt.wantExpected, tt.wantLost, tt.wantBursts)
			}
			if got := q.LossAfterLoss(); math.Abs(got-tt.wantLossAfterLoss) > 1e-12 {
				t.Errorf("LossAfterLoss() = %v, want %v", got, tt.wantLossAfterLoss)
			}
			if got, want := q.LossRatio(), float64(tt.wantLost)/200; got != want {
				t.Errorf("LossRatio() = %v, want %v", got, want)
			}
			if st := s.Stats(); st.Lost != q.Lost || st.Received != 200-tt.wantLost {
				t.Errorf("Stats() = %+v, want Lost %d and Received %d", st, q.Lost, 200-tt.wantLost)
			}
		})
	}
}

// TestQualityLateArrivals: a packet that fills a gap late corrects the loss and the bursts.
func TestQualityLateArrivals(t *testing.T) {
	tests := []struct {
		name       string
		seqs       []uint16 // in arrival order
		wantLost   uint64
		wantBursts uint64
	}{
		{"gap of one filled", []uint16{1, 2, 4, 5, 3, 6}, 0, 0},
		{"gap of three, middle filled: split", []uint16{1, 2, 6, 4, 7}, 2, 2},
		{"gap of three, first filled: shortened", []uint16{1, 2, 6, 3, 7}, 2, 1},
		{"gap of three, last filled: shortened", []uint16{1, 2, 6, 5, 7}, 2, 1},
		{"gap of three filled in turn", []uint16{1, 2, 6, 4, 3, 5, 7}, 0, 0},
		{"two gaps, one filled", []uint16{1, 3, 5, 2, 6}, 1, 1},
		// Older than the packet that started the sequence: the segment starts earlier, seq 9 is lost.
		{"before the first packet", []uint16{10, 11, 8, 12}, 1, 1},
		{"just before the first packet", []uint16{10, 11, 9, 12}, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newRecordingStream()
			for i, seq := range tt.seqs {
				packet{seq: seq, ts: uint32(seq) * 160, arrive: int64(i) * 160}.send(s)
			}
			q := s.Quality()
			lo, hi := slicesMinMax(tt.seqs)
			if want := uint64(hi - lo + 1); q.Expected != want || q.Lost != tt.wantLost || q.LossBursts != tt.wantBursts {
				t.Errorf("Quality() = %+v, want expected %d, lost %d, bursts %d", q, want, tt.wantLost, tt.wantBursts)
			}
		})
	}
}

func slicesMinMax(s []uint16) (lo, hi uint16) {
	lo, hi = s[0], s[0]
	for _, v := range s {
		lo, hi = min(lo, v), max(hi, v)
	}
	return lo, hi
}

// TestQualityJitter: RFC 3550 A.8 with exact arrivals. Packets 20 ms apart arrive alternately 5 ms late and
// 5 ms early, so every transit difference |D| is 10 ms and J_n = J_{n-1} + (10 − J_{n-1})/16, i.e.
// J_n = 10·(1 − (15/16)^n) ms after n differences: 9.60 ms after 50, 10 ms to 1e-5 after 200.
func TestQualityJitter(t *testing.T) {
	for _, n := range []int{2, 51, 201} {
		s := newRecordingStream()
		for i := range n {
			offset := int64(40) // 5 ms in samples
			if i%2 == 1 {
				offset = -40
			}
			packet{seq: uint16(i), ts: uint32(i * 160), arrive: 1000 + int64(i*160) + offset}.send(s)
		}
		want := 10 * (1 - math.Pow(15.0/16, float64(n-1)))
		if got := s.Quality().JitterMs; math.Abs(got-want) > 1e-9 {
			t.Errorf("%d packets: jitter %.6f ms, want %.6f", n, got, want)
		}
	}
}

// TestQualityJitterOnlyFromNetwork: regular arrivals have no jitter, whatever comes in between that is not
// network delay: DTMF repeating one timestamp, an SSRC change with unrelated timestamps, a timestamp jump,
// or a pause between recordings.
func TestQualityJitterOnlyFromNetwork(t *testing.T) {
	s := newRecordingStream()
	sendSeq(s, 1, 10, nil)
	for i := range 5 { // one DTMF event, 5 packets of one timestamp
		packet{seq: uint16(11 + i), ts: 11 * 160, arrive: int64(11+i) * 160, pt: ptTE, n: 4}.send(s)
	}
	sendSeq(s, 16, 10, nil)
	for i := range 10 { // a new sender
		packet{seq: uint16(5000 + i), ts: uint32(900000 + i*160), arrive: int64(26+i) * 160, ssrc: 0xbeef}.send(s)
	}
	for i := range 10 { // its timestamps jump 10 s ahead
		packet{seq: uint16(5010 + i), ts: uint32(900000 + 80000 + (10+i)*160), arrive: int64(36+i) * 160, ssrc: 0xbeef}.send(s)
	}
	s.SetSink(nil) // paused for a second, resumed; the SRC's timestamps went on regardless
	s.SetSink(newFakeSink(0))
	for i := range 10 {
		packet{seq: uint16(5100 + i), ts: uint32(i * 160), arrive: int64(100+i) * 160, ssrc: 0xbeef}.send(s)
	}
	if q := s.Quality(); q.JitterMs != 0 {
		t.Errorf("jitter %v ms, want 0: %+v", q.JitterMs, q)
	}
}

// TestQualityExpectedAcrossSegments: the sequence restarts with a new SSRC and jumps beyond the dropout
// limit; each segment counts its own packets and the resets are media errors.
func TestQualityExpectedAcrossSegments(t *testing.T) {
	s := newRecordingStream()
	sendSeq(s, 1, 10, nil) // 1..10
	for i := range 10 {    // 40000..40009: a sender restart on the same SSRC
		packet{seq: uint16(40000 + i), ts: uint32((11 + i) * 160), arrive: int64(11+i) * 160}.send(s)
	}
	for i := range 10 { // a new SSRC at 7..16, seq 12 lost
		if i == 5 {
			continue
		}
		packet{seq: uint16(7 + i), ts: uint32(555 + i*160), arrive: int64(21+i) * 160, ssrc: 0xbeef}.send(s)
	}
	q := s.Quality()
	if q.Expected != 30 || q.Lost != 1 || q.LossBursts != 1 {
		t.Errorf("Quality() = %+v, want expected 30 (three segments of 10), lost 1, 1 burst", q)
	}
	errs := s.MediaErrors()
	want := []MediaError{
		{At: at(11 * 160), Type: MediaSequenceReset, Detail: "sequence 10 -> 40000"},
		{At: at(21 * 160), Type: MediaSSRCChange, Detail: "SSRC 5eed1234 -> 0000beef"},
	}
	if len(errs) != len(want) || errs[0] != want[0] || errs[1] != want[1] {
		t.Errorf("MediaErrors() = %+v, want %+v", errs, want)
	}
	if q.MediaErrors != 2 {
		t.Errorf("Quality().MediaErrors = %d, want 2", q.MediaErrors)
	}
}

// TestQualityPauseStartsSegment: packets while paused are dropped, not expected; the segment after the pause
// counts from its first packet.
func TestQualityPauseStartsSegment(t *testing.T) {
	s := newRecordingStream()
	sendSeq(s, 1, 10, nil)
	s.SetSink(nil)
	sendSeq(s, 11, 10, nil) // dropped while paused
	s.SetSink(newFakeSink(0))
	sendSeq(s, 21, 10, nil)
	if q := s.Quality(); q.Expected != 20 || q.Lost != 0 {
		t.Errorf("Quality() = %+v, want expected 20, none lost", q)
	}
	if errs := s.MediaErrors(); len(errs) != 0 {
		t.Errorf("MediaErrors() = %+v, want none for a pause", errs)
	}
}

func TestQualityTimestampJump(t *testing.T) {
	s := newRecordingStream()
	sendSeq(s, 1, 5, nil)
	// Seq 6 carries a timestamp 2 s ahead of where 20 ms of audio would put it.
	packet{seq: 6, ts: 6*160 + 16000, arrive: 6 * 160}.send(s)
	errs := s.MediaErrors()
	if len(errs) != 1 || errs[0].Type != MediaTimestampJump || !errs[0].At.Equal(at(6*160)) || !strings.Contains(errs[0].Detail, "+2.000 s") {
		t.Fatalf("MediaErrors() = %+v, want one timestamp_jump at seq 6, +2 s", errs)
	}
	// The sequence goes on from the new timestamps: the jump restarts neither it nor the count.
	for seq := 7; seq < 12; seq++ {
		packet{seq: uint16(seq), ts: uint32(seq*160 + 16000), arrive: int64(seq * 160)}.send(s)
	}
	if errs := s.MediaErrors(); len(errs) != 1 {
		t.Errorf("MediaErrors() = %+v after the jump, want still one", errs)
	}
	if q := s.Quality(); q.Expected != 11 || q.Lost != 0 {
		t.Errorf("Quality() = %+v, want expected 11, none lost", q)
	}
}

func TestQualityCodecChange(t *testing.T) {
	s := newRecordingStream()
	packet{seq: 1, ts: 0, arrive: 0}.send(s)                     // PCMU
	packet{seq: 2, ts: 160, arrive: 160, pt: ptTE, n: 4}.send(s) // DTMF between: not a codec
	packet{seq: 3, ts: 320, arrive: 320, pt: 13, n: 1}.send(s)   // comfort noise: not a codec either
	packet{seq: 4, ts: 480, arrive: 480}.send(s)
	packet{seq: 5, ts: 640, arrive: 640, pt: 8}.send(s) // PCMA
	packet{seq: 6, ts: 800, arrive: 800, pt: 8}.send(s)
	errs := s.MediaErrors()
	if len(errs) != 1 || errs[0] != (MediaError{At: at(640), Type: MediaCodecChange, Detail: "PCMU (0) -> PCMA (8)"}) {
		t.Errorf("MediaErrors() = %+v, want one codec change PCMU -> PCMA at seq 5", errs)
	}
	if q := s.Quality(); q.Codec != EncodingPCMA {
		t.Errorf("Quality().Codec = %v, want PCMA", q.Codec)
	}
}

// TestQualityDecryptFailures: a run of packets that fail SRTP authentication is one media error, a replay is
// none, and a new run after good packets is another.
func TestQualityDecryptFailures(t *testing.T) {
	good := newSRTPKey(t, srtp.ProtectionProfileAes128CmHmacSha1_80, nil)
	wrong := newSRTPKey(t, srtp.ProtectionProfileAes128CmHmacSha1_80, nil)
	encGood, encWrong := mustEncrypter(t, good), mustEncrypter(t, wrong)
	s := newRecordingStream()
	if err := s.SetSRTP(&good); err != nil {
		t.Fatal(err)
	}
	send := func(e *Encrypter, seq uint16) []byte {
		b := mustEncrypt(t, e, plainRTP(t, testSSRC, seq, 160))
		s.HandlePacket(b, at(int64(seq)*160))
		return b
	}
	first := send(encGood, 1)
	send(encGood, 2)
	for seq := uint16(3); seq < 13; seq++ { // ten packets under the wrong key
		send(encWrong, seq)
	}
	s.HandlePacket(first, at(13*160)) // a replay
	send(encGood, 14)
	send(encWrong, 15)
	send(encWrong, 16)
	send(encGood, 17)
	errs := s.MediaErrors()
	if len(errs) != 2 || errs[0].Type != MediaDecryptFailed || !errs[0].At.Equal(at(3*160)) ||
		errs[1].Type != MediaDecryptFailed || !errs[1].At.Equal(at(15*160)) {
		t.Errorf("MediaErrors() = %+v, want decrypt_failed at seq 3 and at seq 15", errs)
	}
	if st := s.Stats(); st.SRTPFailed != 13 {
		t.Errorf("Stats().SRTPFailed = %d, want 13 (12 failures and a replay)", st.SRTPFailed)
	}
}

// TestQualityMediaErrorsBounded: a stream whose SSRC changes every packet keeps the first MaxMediaErrors
// and counts them all.
func TestQualityMediaErrorsBounded(t *testing.T) {
	s := newRecordingStream()
	for i := range 151 {
		packet{seq: uint16(i), ts: uint32(i * 160), arrive: int64(i * 160), ssrc: uint32(1000 + i)}.send(s)
	}
	errs := s.MediaErrors()
	if len(errs) != MaxMediaErrors || s.Quality().MediaErrors != 150 {
		t.Fatalf("%d media errors kept, %d counted; want %d and 150", len(errs), s.Quality().MediaErrors, MaxMediaErrors)
	}
	if !errs[0].At.Equal(at(160)) || !errs[MaxMediaErrors-1].At.Equal(at(MaxMediaErrors*160)) {
		t.Errorf("kept errors from %v to %v, want the first %d", errs[0].At, errs[MaxMediaErrors-1].At, MaxMediaErrors)
	}
}

// TestQualityNoAllocs: the quality bookkeeping adds nothing to the packet path's allocations, loss and
// reordering included.
func TestQualityNoAllocs(t *testing.T) {
	s := NewStream(nil)
	s.SetSink(discardSink{})
	pkts := make([][]byte, 64)
	for i := range pkts {
		pkts[i] = packet{seq: uint16(i), ts: uint32(i * 160)}.bytes()
	}
	i := 0
	allocs := testing.AllocsPerRun(1000, func() {
		// Packets 0..63 again and again, a tenth skipped and pairs swapped: loss, bursts and late arrivals.
		n := i % len(pkts)
		if n%10 != 3 {
			j := n ^ (n >> 4 & 1) // swap neighbours in every other group of 16
			b := pkts[j]
			seq := uint16(i - n + j)
			b[2], b[3] = byte(seq>>8), byte(seq)
			ts := uint32(seq) * 160
			b[4], b[5], b[6], b[7] = byte(ts>>24), byte(ts>>16), byte(ts>>8), byte(ts)
			s.HandlePacket(b, baseTime.Add(time.Duration(i)*20*time.Millisecond+time.Duration(i%3)*time.Millisecond))
		}
		i++
	})
	if allocs != 0 {
		t.Errorf("%v allocations per packet, want 0", allocs)
	}
	if q := s.Quality(); q.Lost == 0 || q.LossBursts == 0 || q.JitterMs == 0 {
		t.Errorf("Quality() = %+v: the run should have seen loss and jitter", q)
	}
}
