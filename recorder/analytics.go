package recorder

import (
	"encoding/binary"
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
	frameLen  int             // samples per channel in a vad frame
	dets      []*vad.Detector // by channel
	energy    []int64         // by channel: the sum of squares of the current vad frame so far
	fill      int             // samples per channel in the current frame so far
	samples   int64           // per channel, analysed
	talkOver  int64           // frames in which two or more channels speak
	anyone    vad.Stats       // a frame is speech when any channel speaks: its silence is mutual silence
}

func newVoiceActivity(rate, nch int) *voiceActivity {
	v := &voiceActivity{rate: rate, nch: nch, dets: make([]*vad.Detector, nch), energy: make([]int64, nch)}
	for c := range v.dets {
		v.dets[c] = vad.New(rate)
	}
	v.frameLen = v.dets[0].FrameLen()
	return v
}

// write analyses interleaved little-endian frames, as flush writes them to the file. Each channel's samples
// are summed where they lie: no copy.
func (v *voiceActivity) write(data []byte) {
	align := v.nch * bytesPerSample
	for len(data) >= align {
		k := min(v.frameLen-v.fill, len(data)/align) // frames, up to the end of the vad frame
		chunk := data[:k*align]
		data = data[k*align:]
		// Mono and stereo, nearly every recording, have loops of their own that keep the sums in registers:
		// the stride loop costs about twice as much per sample.
		switch v.nch {
		case 1:
			v.energy[0] += sumSquaresMono(chunk)
		case 2:
			l, r := sumSquaresStereo(chunk)
			v.energy[0] += l
			v.energy[1] += r
		default:
			for c := range v.nch {
				v.energy[c] += sumSquaresStride(chunk[c*bytesPerSample:], align, k)
			}
		}
		v.advance(k)
	}
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
	for c, d := range v.dets {
		speech, ok := d.FrameEnergy(v.energy[c], v.frameLen)
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
		for _, d := range v.dets {
			speech, ok := d.Drain()
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

// The sums of the squares of little-endian 16-bit samples: int64, which 2^30 a sample cannot overflow,
// several at a time so the multiply-adds overlap. (Summing while encodePCM converts, under the writers' lock,
// saved nothing: the multiplies are the cost, wherever they run.)

// sumSquaresMono sums all the samples of b, eight a step (a fifth faster than four: less loop per sample).
func sumSquaresMono(b []byte) int64 {
	var x0, x1, x2, x3 int64
	for len(b) >= 16 {
		c := b[:16:16]
		s0, s1 := int64(int16(binary.LittleEndian.Uint16(c))), int64(int16(binary.LittleEndian.Uint16(c[2:])))
		s2, s3 := int64(int16(binary.LittleEndian.Uint16(c[4:]))), int64(int16(binary.LittleEndian.Uint16(c[6:])))
		s4, s5 := int64(int16(binary.LittleEndian.Uint16(c[8:]))), int64(int16(binary.LittleEndian.Uint16(c[10:])))
		s6, s7 := int64(int16(binary.LittleEndian.Uint16(c[12:]))), int64(int16(binary.LittleEndian.Uint16(c[14:])))
		x0 += s0*s0 + s4*s4
		x1 += s1*s1 + s5*s5
		x2 += s2*s2 + s6*s6
		x3 += s3*s3 + s7*s7
		b = b[16:]
	}
	for ; len(b) >= 2; b = b[2:] {
		s := int64(int16(binary.LittleEndian.Uint16(b)))
		x0 += s * s
	}
	return x0 + x1 + x2 + x3
}

// sumSquaresStereo sums the left and the right samples of b, interleaved, four frames a step.
func sumSquaresStereo(b []byte) (left, right int64) {
	var l0, r0, l1, r1 int64
	for len(b) >= 16 {
		c := b[:16:16]
		s0, s1 := int64(int16(binary.LittleEndian.Uint16(c))), int64(int16(binary.LittleEndian.Uint16(c[2:])))
		s2, s3 := int64(int16(binary.LittleEndian.Uint16(c[4:]))), int64(int16(binary.LittleEndian.Uint16(c[6:])))
		s4, s5 := int64(int16(binary.LittleEndian.Uint16(c[8:]))), int64(int16(binary.LittleEndian.Uint16(c[10:])))
		s6, s7 := int64(int16(binary.LittleEndian.Uint16(c[12:]))), int64(int16(binary.LittleEndian.Uint16(c[14:])))
		l0 += s0*s0 + s4*s4
		r0 += s1*s1 + s5*s5
		l1 += s2*s2 + s6*s6
		r1 += s3*s3 + s7*s7
		b = b[16:]
	}
	for ; len(b) >= 4; b = b[4:] {
		s0, s1 := int64(int16(binary.LittleEndian.Uint16(b))), int64(int16(binary.LittleEndian.Uint16(b[2:])))
		l0 += s0 * s0
		r0 += s1 * s1
	}
	return l0 + l1, r0 + r1
}

// sumSquaresStride sums n samples stride bytes apart from the start of b.
func sumSquaresStride(b []byte, stride, n int) int64 {
	var x, y int64
	i := 0
	for ; i+1 < n; i += 2 {
		s0 := int64(int16(binary.LittleEndian.Uint16(b[i*stride:])))
		s1 := int64(int16(binary.LittleEndian.Uint16(b[(i+1)*stride:])))
		x += s0 * s0
		y += s1 * s1
	}
	if i < n {
		s := int64(int16(binary.LittleEndian.Uint16(b[i*stride:])))
		x += s * s
	}
	return x + y
}
