package recorder

import (
	"math"

	"github.com/siphook/siphook/internal/vad"
)

// voiceActivity is a recording's analytics in the making: a voice activity detector per channel, fed by
// flush with the frames it writes, in position order, so what is measured is what the file holds (holds,
// gaps and holes included, as the silence they are). Frames are analysed in 10 ms vad frames, all channels
// in step, so the detectors decide the same frame together and talk-over and mutual silence are counted
// frame by frame. Guarded by Recording.flushMu.
type voiceActivity struct {
	rate, nch int
	frameLen  int            // samples per channel in a vad frame
	dets      []vad.Detector // by channel, side by side: every frame touches them all
	energy    []int64        // by channel: the sum of squares of the current vad frame so far
	fill      int            // samples per channel in the current frame so far
	samples   int64          // per channel, analysed
	talkOver  int64          // frames in which two or more channels speak
	anyone    vad.Stats      // a frame is speech when any channel speaks: its silence is mutual silence

	// The detectors and sums of one or two channels, nearly every recording, live here, in the same
	// allocation: each flush of each recording touches all of it, and with a thousand recordings flushed in
	// turn it is rarely in cache. One block of lines is fetched faster than three scattered ones.
	detStore    [2]vad.Detector
	energyStore [2]int64
}

func newVoiceActivity(rate, nch int) *voiceActivity {
	v := &voiceActivity{rate: rate, nch: nch}
	if nch <= len(v.detStore) {
		v.dets, v.energy = v.detStore[:nch], v.energyStore[:nch]
	} else {
		v.dets, v.energy = make([]vad.Detector, nch), make([]int64, nch)
	}
	for c := range v.dets {
		v.dets[c] = *vad.New(rate)
	}
	v.frameLen = v.dets[0].FrameLen()
	return v
}

// write analyses interleaved little-endian frames, as flush writes them to the file. Each channel's samples
// are summed where they lie: no copy.
func (v *voiceActivity) write(data []byte) {
	align := v.nch * bytesPerSample
	for frames := len(data) / align; frames > 0; {
		if v.nch == 2 && v.fill == 0 && frames >= v.frameLen {
			rest := v.stereoFrames(data)
			frames -= (len(data) - len(rest)) / align
			data = rest
			continue
		}
		k := min(v.frameLen-v.fill, frames) // up to the end of the vad frame
		chunk := data[:k*align]
		data = data[k*align:]
		frames -= k
		// Mono and stereo, nearly every recording, have vector loops of their own.
		switch v.nch {
		case 1:
			v.energy[0] += vad.SumSquares(chunk)
		case 2:
			l, r := vad.SumSquaresStereo(chunk)
			v.energy[0] += l
			v.energy[1] += r
		default:
			for c := range v.nch {
				v.energy[c] += vad.SumSquaresStride(chunk[c*bytesPerSample:], align, k)
			}
		}
		v.advance(k)
	}
}

// stereoFrames analyses the whole vad frames at the start of data, no frame being begun, and returns the
// rest: the common case (two channels, a flush of many frames) in one loop without write's bookkeeping.
func (v *voiceActivity) stereoFrames(data []byte) []byte {
	size := v.frameLen * 2 * bytesPerSample
	left, right := &v.dets[0], &v.dets[1]
	n := 0
	for ; len(data) >= size; data = data[size:] {
		l, r := vad.SumSquaresStereo(data[:size])
		sl, decided := left.FrameEnergy(l, v.frameLen)
		sr, _ := right.FrameEnergy(r, v.frameLen)
		n++
		if decided {
			v.count(b2i(sl) + b2i(sr))
		}
	}
	v.samples += int64(n * v.frameLen)
	return data
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// silence analyses n frames of digital silence: a hole at the end of the file that no channel wrote into.
// Zeros add nothing to a sum of squares, so an hour's hole costs a loop over its 10 ms frames.
func (v *voiceActivity) silence(n int64) {
	for n > 0 {
		k := int(min(int64(v.frameLen-v.fill), n))
		n -= int64(k)
		v.advance(k)
	}
}

// advance accounts for k more samples per channel in the current frame, and analyses the frame once full.
func (v *voiceActivity) advance(k int) {
	v.samples += int64(k)
	v.fill += k
	if v.fill < v.frameLen {
		return
	}
	v.fill = 0
	speaking, decided := 0, false
	for c := range v.dets {
		speech, ok := v.dets[c].FrameEnergy(v.energy[c], v.frameLen)
		v.energy[c] = 0
		decided = ok // the same for every channel: they are fed in step
		if speech {
			speaking++
		}
	}
	if decided {
		v.count(speaking)
	}
}

// count counts a decided frame in which speaking channels spoke.
func (v *voiceActivity) count(speaking int) {
	if speaking >= 2 {
		v.talkOver++
	}
	v.anyone.Add(speaking > 0)
}

// finish ends the analysis (the detectors decide their last frames) and sets the recorder's fields of a:
// the channels, talk-over and silence; a's other fields are the caller's and are left alone. A last frame
// shorter than 10 ms is not analysed and counts as silence. Durations are in samples of the recording, so
// ratios are over what was recorded (talk + silence = the recording, per channel).
func (v *voiceActivity) finish(a *Analytics) {
	for {
		speaking, decided := 0, false
		for c := range v.dets {
			speech, ok := v.dets[c].Drain()
			decided = ok
			if speech {
				speaking++
			}
		}
		if !decided {
			break
		}
		v.count(speaking)
	}

	fl, tail := int64(v.frameLen), int64(v.fill)
	sec := func(samples int64) float64 { return float64(samples) / float64(v.rate) }
	ratio := func(samples int64) float64 {
		// Four digits: the frames are 10 ms, more would be noise in the document.
		return math.Round(float64(samples)/float64(v.samples)*1e4) / 1e4
	}
	longest := func(s vad.Stats) int64 { return max(s.LongestSilence*fl, s.TrailingSilence*fl+tail) }

	a.Channels = make([]ChannelAnalytics, v.nch)
	for c, d := range v.dets {
		s := d.Stats()
		talk := s.Speech * fl
		a.Channels[c] = ChannelAnalytics{
			Index:             c,
			TalkSec:           sec(talk),
			SilenceSec:        sec(v.samples - talk),
			TalkRatio:         ratio(talk),
			LongestSilenceSec: sec(longest(s)),
		}
	}
	silence := v.samples - v.anyone.Speech*fl
	a.TalkOverSec = sec(v.talkOver * fl)
	a.TalkOverRatio = ratio(v.talkOver * fl)
	a.SilenceSec = sec(silence)
	a.SilenceRatio = ratio(silence)
	a.LongestSilenceSec = sec(longest(v.anyone))
}
