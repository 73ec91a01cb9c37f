package rtp

import "time"

// Quality is what a stream's packets say about the path they came over, for voice-quality estimates.
type Quality struct {
	Expected    uint64   // packets the sequence numbers say were sent: highest − first + 1, summed over sequence segments
	Lost        uint64   // Stats.Lost: Expected minus what arrived, net of late arrivals
	LossBursts  uint64   // runs of consecutive lost packets
	JitterMs    float64  // RFC 3550 interarrival jitter (A.8) of the audio packets with measured arrivals, in milliseconds
	Codec       Encoding // the encoding of the latest audio packet; EncodingUnknown before the first
	MediaErrors uint64   // media errors seen, including those past the MaxMediaErrors that MediaErrors keeps
}

// LossRatio is Lost/Expected.
func (q Quality) LossRatio() float64 {
	if q.Expected == 0 {
		return 0
	}
	return float64(q.Lost) / float64(q.Expected)
}

// LossAfterLoss estimates P(loss|loss), the chance that a packet is lost when the one before it was: a run
// of n lost packets has n−1 such transitions, so it is (Lost − LossBursts)/Lost.
func (q Quality) LossAfterLoss() float64 {
	if q.Lost == 0 || q.LossBursts >= q.Lost {
		return 0
	}
	return float64(q.Lost-q.LossBursts) / float64(q.Lost)
}

// Media error types: what MediaError.Type says.
const (
	MediaSSRCChange    = "ssrc_change"    // a new sender on the same m-line (transfer, SBC failover)
	MediaSequenceReset = "sequence_reset" // a sequence jump beyond RFC 3550's dropout limit, same SSRC
	MediaTimestampJump = "timestamp_jump" // the timestamp strayed more than 1 s from the arrival time: re-anchored
	MediaDecryptFailed = "decrypt_failed" // SRTP authentication failed: the first packet of a failing run
	MediaCodecChange   = "codec_change"   // the audio payload type changed
)

// MaxMediaErrors bounds what a stream keeps: a stream that breaks every packet must not grow without limit.
const MaxMediaErrors = 100

// MediaError is something that went wrong with a stream's media, at the arrival of the packet that showed it.
type MediaError struct {
	At     time.Time
	Type   string // one of the Media* constants
	Detail string
}

// quality is the state behind Quality and MediaErrors. Updated per packet under Stream.mu with no
// allocation; only a media error formats a string.
type quality struct {
	tracking     bool   // a sequence segment is open
	segBase      int64  // first extended sequence number of the current segment
	expectedDone uint64 // packets expected in finished segments
	bursts       uint64

	jitter     float64   // RFC 3550 J, in nanoseconds
	jitterRef  bool      // refArrival and refTS hold the previous audio packet
	refArrival time.Time // the previous audio packet's arrival
	refTS      uint32    // and its RTP timestamp

	codec   Encoding
	codecPT uint8

	decryptFailing bool // the latest SRTP packet failed: further failures are the same run
	errs           []MediaError
	errCount       uint64
}

// jitterGain is RFC 3550's 1/16: each packet moves the jitter estimate a sixteenth of the way to its
// transit-time difference, so one outlier cannot dominate and the noise of single packets is smoothed.
const jitterGain = 1.0 / 16

// Quality returns a snapshot of the reception quality.
func (s *Stream) Quality() Quality {
	s.mu.Lock()
	defer s.mu.Unlock()
	return Quality{Expected: s.expected(), Lost: s.stats.Lost, LossBursts: s.q.bursts, JitterMs: s.q.jitter / float64(time.Millisecond),
		Codec: s.q.codec, MediaErrors: s.q.errCount}
}

// MediaErrors returns the media errors seen so far, oldest first: at most MaxMediaErrors, the first ones
// (Quality.MediaErrors counts them all).
func (s *Stream) MediaErrors() []MediaError {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]MediaError(nil), s.q.errs...)
}

// mediaError notes a media error, keeping the first MaxMediaErrors.
func (s *Stream) mediaError(at time.Time, typ, detail string) {
	s.q.errCount++
	if len(s.q.errs) < MaxMediaErrors {
		s.q.errs = append(s.q.errs, MediaError{At: at, Type: typ, Detail: detail})
	}
}

// updateJitter is RFC 3550 A.8: D is the difference between two consecutive audio packets' transit times
// (arrival minus RTP timestamp, at the 8 kHz RTP clock of every codec we record) and J += (|D| − J)/16.
// Packets are taken in arrival order, reordered ones too. DTMF and comfort noise are left out: an RFC 4733
// event repeats one timestamp for its whole length, which is no network jitter.
func (s *Stream) updateJitter(ts uint32, arrival time.Time) {
	if s.q.jitterRef {
		d := arrival.Sub(s.q.refArrival) - time.Duration(int32(ts-s.q.refTS))*(time.Second/rtpClock)
		s.q.jitter += (float64(d.Abs()) - s.q.jitter) * jitterGain
	}
	s.q.jitterRef, s.q.refArrival, s.q.refTS = true, arrival, ts
}
