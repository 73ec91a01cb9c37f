// Package vad detects voice activity in 16-bit PCM: which 10 ms frames of a stream are speech. It runs on
// every sample of every recorded call, so it is cheap (a multiply-add per sample and a few floating-point
// operations per frame, no logarithm: levels are compared as mean squares) and allocates nothing after New.
//
// # How a frame is decided
//
// A frame's energy is its mean square in dB relative to full scale (dBFS; a full-scale sine is −3 dBFS). A
// frame is active when its energy is more than Threshold above the noise floor and above MinLevel. The noise
// floor follows the quiet frames: it moves halfway in dB towards each frame's level, so it falls quickly (a line
// that goes quiet is followed within 50 ms), but it rises FloorRise per second at most, so a louder steady
// noise (a fan, a busier room) stops counting as speech after a few seconds while a talk spurt, whose level
// dips between syllables, never lifts it far. It starts at MinLevel−Threshold, so from the first frame
// anything that could count as speech does; the price is that noise louder than MinLevel at the very start
// of a stream counts as speech until the floor has risen to it (about 2 s for −45 dBFS).
//
// Frames below FloorMin carry no signal: digital silence from a hold, a paused recording or a gap the recorder
// filled with zeros. They are never speech and leave the floor where it is, so the line's noise coming back
// after a hold is still known as noise (a floor pulled down to the silence would take every noise back as
// speech until it had risen again).
//
// Active frames become speech in talk spurts. A spurt starts with OnsetFrames consecutive active frames (a
// lone click is not speech), those frames included. It goes on through gaps of up to HangoverFrames inactive
// frames (the pauses between syllables and words are talk, not silence) and ends at its last active frame: a
// longer gap is silence from its first frame, not after a hangover. That keeps talk time accurate to a frame
// at each end of a spurt, which a hangover that simply ran on after the speech would not be (by 200 ms a
// spurt).
//
// # Decisions come late
//
// Whether an inactive frame is a pause within a spurt or the start of a silence is known only once activity
// comes back or the hangover runs out, so a frame is decided Delay frames after it is written: Frame returns
// the decision of the frame written Delay frames before. The delay is fixed, so detectors fed in step (the
// channels of a recording) decide the same frame at the same call. Drain decides the frames still waiting
// once the stream has ended.
//
// # Parameters
//
//	FrameDuration  10 ms     the usual VAD frame: short enough for a syllable, long enough for a stable level
//	Threshold      10 dB     speech on a telephone line is 20–40 dB above its noise; noise frames stay within
//	                         a few dB of the floor, so 10 dB separates them with room on both sides
//	MinLevel       −50 dBFS  quieter than any talker a call carries, louder than line noise (typically −60 to
//	                         −70 dBFS); keeps faint noise on a dead-quiet line from being speech
//	FloorMin       −70 dBFS  just above G.711's idle level (A-law silence decodes to ±8, −72 dBFS): quieter
//	                         frames are digital silence, not noise
//	FloorRise      3 dB/s    a steady sound 20 dB above the old floor passes as speech for about 3 s (until
//	                         the floor is within Threshold of it); a tone at −10 dBFS over −55 dBFS noise
//	                         stays speech for over 10 s, a talk spurt (dips between syllables pull the floor
//	                         back down) for as long as it lasts
//	OnsetFrames    2         20 ms of activity: ignores clicks and pops, catches the shortest syllable
//	HangoverFrames 20        200 ms: bridges syllable and word gaps; pauses longer than that are silence
//
// Rates that are not a multiple of 100 Hz get frames of SampleRate/100 samples, slightly shorter than 10 ms.
package vad

import (
	"math"
	"math/bits"
	"time"
)

// Parameters. Package doc says why each has the value it has.
const (
	FrameDuration  = 10 * time.Millisecond
	Threshold      = 10.0  // dB above the noise floor
	MinLevel       = -50.0 // dBFS
	FloorMin       = -70.0 // dBFS
	FloorRise      = 3.0   // dB per second
	OnsetFrames    = 2
	HangoverFrames = 20

	// Delay is how many frames after it is written a frame is decided.
	Delay = HangoverFrames

	initialFloor = MinLevel - Threshold
)

// The levels as mean squares of samples, which is how frames are compared: a logarithm per frame would cost
// as much as the samples' multiply-adds.
var (
	silentMS   = meanSquare(FloorMin) // frames below carry no signal
	minLevelMS = meanSquare(MinLevel)
	threshold  = math.Pow(10, Threshold/10) // as a factor
)

// meanSquare converts dBFS to a mean square: 0 dBFS is a full-scale square wave.
func meanSquare(dBFS float64) float64 { return 32768 * 32768 * math.Pow(10, dBFS/10) }

// The window of pending activity must fit a uint64, bit 0 the oldest frame.
const _ = uint(63 - Delay)

// Detector decides which frames of one stream of samples are speech. The zero value is not usable; make one
// with New. A Detector is not safe for concurrent use.
type Detector struct {
	frameLen int
	perFrame float64 // 1/frameLen: a multiply per frame instead of a divide
	rise     float64 // factor by which the floor may rise per frame
	floor    float64 // mean square

	// Write's current frame.
	acc int64 // sum of squares
	n   int   // samples

	// Frames written but not yet decided: bit i is the activity of the i-th oldest.
	window  uint64
	pending int

	talking bool // the last decided frame was speech
	bridge  int  // frames still to decide as speech: the rest of a gap known to be bridged
	stats   Stats
}

// New returns a detector for a stream at sampleRate Hz.
func New(sampleRate int) *Detector {
	n := max(sampleRate/100, 1)
	return &Detector{
		frameLen: n,
		perFrame: 1 / float64(n),
		rise:     math.Pow(10, FloorRise*float64(n)/float64(max(sampleRate, 1))/10),
		floor:    meanSquare(initialFloor),
	}
}

// FrameLen returns the number of samples in a frame.
func (d *Detector) FrameLen() int { return d.frameLen }

// Floor returns the current noise floor in dBFS.
func (d *Detector) Floor() float64 { return 10 * math.Log10(d.floor/meanSquare(0)) }

// Stats returns the decisions so far.
func (d *Detector) Stats() Stats { return d.stats }

// Write analyses samples, the next of a mono stream, in frames of FrameLen samples; what is left over waits
// for the next Write. Decisions go to Stats. Use Write or Frame on a detector, not both: Frame knows nothing
// of a frame Write has begun.
func (d *Detector) Write(samples []int16) {
	for len(samples) > 0 {
		k := min(len(samples), d.frameLen-d.n)
		d.acc += sumSquares(samples[:k])
		d.n += k
		samples = samples[k:]
		if d.n == d.frameLen {
			d.push(d.acc, d.n)
			d.acc, d.n = 0, 0
		}
	}
}

// Frame analyses one frame, normally FrameLen samples (any length works: its energy is a mean; an empty or
// nil frame is digital silence), and returns the decision for the frame written Delay frames before it:
// decided is false for the first Delay frames. Decisions are counted in Stats too.
func (d *Detector) Frame(frame []int16) (speech, decided bool) {
	return d.FrameEnergy(sumSquares(frame), len(frame))
}

// FrameEnergy is Frame for a frame given as the sum of the squares of its n samples: for callers that hold
// samples in another layout (interleaved channels, little-endian bytes) and would rather not copy them.
func (d *Detector) FrameEnergy(sumSq int64, n int) (speech, decided bool) {
	return d.push(sumSq, n)
}

// Drain decides the oldest frame still waiting as if the stream had ended after the last one written, and
// returns false when none is left. Call it until then at the end of a stream: the last Delay frames are
// decided only so.
func (d *Detector) Drain() (speech, decided bool) {
	if d.pending == 0 {
		return false, false
	}
	return d.decide(), true
}

// push classifies a frame as active or not, moves the noise floor, and decides the oldest frame once Delay
// newer ones are known.
func (d *Detector) push(sumSq int64, n int) (speech, decided bool) {
	ms := float64(sumSq) * d.perFrame
	if n != d.frameLen {
		ms = float64(sumSq) / float64(max(n, 1))
	}
	if ms >= silentMS {
		// Without branches: whether a frame of noise is above or below the floor is a coin toss, and a
		// mispredicted branch costs more than the square root.
		var active uint64
		if ms > max(minLevelMS, d.floor*threshold) {
			active = 1
		}
		d.window |= active << d.pending
		d.floor = min(math.Sqrt(d.floor*ms), d.floor*d.rise) // halfway in dB, rising FloorRise at most
	}
	d.pending++
	if d.pending <= Delay {
		return false, false
	}
	return d.decide(), true
}

// decide decides the oldest pending frame, bit 0 of the window, from it and the Delay frames after it (those
// not yet written, at the end of a stream, count as inactive), and drops it from the window.
func (d *Detector) decide() bool {
	w := d.window
	d.window >>= 1
	d.pending--
	speech := d.classify(w)
	d.stats.Add(speech)
	return speech
}

// classify decides the frame of bit 0 of w, the window of activity, as speech or not.
func (d *Detector) classify(w uint64) bool {
	if d.bridge > 0 {
		d.bridge--
		return true
	}
	if w&1 != 0 {
		const onset = 1<<OnsetFrames - 1
		if !d.talking && w&onset == onset {
			d.talking = true
		}
		return d.talking
	}
	if !d.talking {
		return false
	}
	// The first inactive frame after speech: a gap of up to HangoverFrames that activity ends is bridged,
	// this frame and the rest of the gap; a longer one is silence from here.
	if next := (w >> 1) & (1<<HangoverFrames - 1); next != 0 {
		d.bridge = bits.TrailingZeros64(next)
		return true
	}
	d.talking = false
	return false
}

// sumSquares returns the sum of the squares of samples. Four accumulators let the multiply-adds run in
// parallel; int64 cannot overflow (2^30 per sample).
func sumSquares(samples []int16) int64 {
	var a, b, c, e int64
	for len(samples) >= 4 {
		s0, s1, s2, s3 := int64(samples[0]), int64(samples[1]), int64(samples[2]), int64(samples[3])
		a += s0 * s0
		b += s1 * s1
		c += s2 * s2
		e += s3 * s3
		samples = samples[4:]
	}
	for _, s := range samples {
		a += int64(s) * int64(s)
	}
	return a + b + c + e
}

// Stats counts frame decisions. Its zero value is empty; Add counts one more decision, so a caller can keep
// Stats of its own, e.g. of frames in which any of several channels speaks.
type Stats struct {
	Frames          int64 // decided
	Speech          int64 // of them speech; the rest are silence
	LongestSilence  int64 // frames in the longest run of silence
	TrailingSilence int64 // frames of silence since the last speech (all of them if none): the open run
}

// Add counts a decision.
func (s *Stats) Add(speech bool) {
	s.Frames++
	if speech {
		s.Speech++
		s.TrailingSilence = 0
		return
	}
	s.TrailingSilence++
	s.LongestSilence = max(s.LongestSilence, s.TrailingSilence)
}
