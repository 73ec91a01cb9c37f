package vad

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/siphook/siphook/internal/audiotest"
	"github.com/siphook/siphook/internal/g711"
)

// noise returns n samples of white Gaussian noise at level dBFS (mean square), seeded so runs repeat.
func noise(level float64, n int, seed uint64) []int16 {
	rng := rand.New(rand.NewPCG(seed, 1))
	rms := 32768 * math.Pow(10, level/20)
	out := make([]int16, n)
	for i := range out {
		out[i] = int16(max(min(math.Round(rng.NormFloat64()*rms), math.MaxInt16), math.MinInt16))
	}
	return out
}

// add mixes src into dst from sample at, saturating.
func add(dst []int16, at int, src []int16) {
	for i, s := range src {
		dst[at+i] = int16(max(min(int32(dst[at+i])+int32(s), math.MaxInt16), math.MinInt16))
	}
}

// decisions feeds samples frame by frame and returns every decision, drained at the end: one per whole frame.
func decisions(d *Detector, samples []int16) []bool {
	var out []bool
	n := d.FrameLen()
	for ; len(samples) >= n; samples = samples[n:] {
		if speech, ok := d.Frame(samples[:n]); ok {
			out = append(out, speech)
		}
	}
	for {
		speech, ok := d.Drain()
		if !ok {
			return out
		}
		out = append(out, speech)
	}
}

// runs describes decisions as speech runs [from, to) in frames, for readable failures.
func runs(ds []bool) [][2]int {
	var out [][2]int
	for i, s := range ds {
		switch {
		case s && (i == 0 || !ds[i-1]):
			out = append(out, [2]int{i, i + 1})
		case s:
			out[len(out)-1][1] = i + 1
		}
	}
	return out
}

func equalRuns(a, b [][2]int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// ms is the sample count of d milliseconds at rate.
func ms(rate, d int) int { return rate * d / 1000 }

func TestToneBursts(t *testing.T) {
	for _, rate := range []int{8000, 16000, 48000} {
		t.Run("", func(t *testing.T) {
			// 3 s of noise at −55 dBFS; tones at −13 dBFS over [500, 1200) and [1700, 2300) ms, frame-aligned so
			// the truth is exact.
			s := noise(-55, ms(rate, 3000), 1)
			add(s, ms(rate, 500), audiotest.Sine(440, 0.3, rate, 0, ms(rate, 700)))
			add(s, ms(rate, 1700), audiotest.Sine(1000, 0.3, rate, 0, ms(rate, 600)))
			d := New(rate)
			if d.FrameLen() != rate/100 {
				t.Fatalf("FrameLen() = %d at %d Hz", d.FrameLen(), rate)
			}
			got := runs(decisions(d, s))
			if want := [][2]int{{50, 120}, {170, 230}}; !equalRuns(got, want) {
				t.Errorf("%d Hz: speech in frames %v, want %v", rate, got, want)
			}
			st := d.Stats()
			if st.Frames != 300 || st.Speech != 130 || st.LongestSilence != 70 || st.TrailingSilence != 70 {
				t.Errorf("%d Hz: stats %+v", rate, st)
			}
		})
	}
}

func TestOnset(t *testing.T) {
	const rate = 8000
	tests := []struct {
		name   string
		frames int // of tone
		want   [][2]int
	}{
		{"one frame is a click", 1, nil},
		{"two frames are speech, both of them", 2, [][2]int{{100, 102}}},
		{"five frames", 5, [][2]int{{100, 105}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := noise(-60, ms(rate, 2000), 2)
			add(s, ms(rate, 1000), audiotest.Sine(1000, 0.3, rate, 0, tt.frames*rate/100))
			if got := runs(decisions(New(rate), s)); !equalRuns(got, tt.want) {
				t.Errorf("speech in frames %v, want %v", got, tt.want)
			}
		})
	}
}

func TestHangover(t *testing.T) {
	const rate = 8000
	tests := []struct {
		name string
		gap  int // ms between two 300 ms tones starting at 1000 ms
		want [][2]int
	}{
		{"a 60 ms gap is talk", 60, [][2]int{{100, 166}}},
		{"a gap of the whole hangover is talk", HangoverFrames * 10, [][2]int{{100, 130 + HangoverFrames + 30}}},
		{"a longer gap is silence, all of it", HangoverFrames*10 + 10, [][2]int{{100, 130}, {130 + HangoverFrames + 1, 130 + HangoverFrames + 31}}},
		{"a long gap", 1000, [][2]int{{100, 130}, {230, 260}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := noise(-55, ms(rate, 4000), 3)
			add(s, ms(rate, 1000), audiotest.Sine(500, 0.2, rate, 0, ms(rate, 300)))
			add(s, ms(rate, 1300+tt.gap), audiotest.Sine(500, 0.2, rate, 0, ms(rate, 300)))
			if got := runs(decisions(New(rate), s)); !equalRuns(got, tt.want) {
				t.Errorf("speech in frames %v, want %v", got, tt.want)
			}
		})
	}
}

// A louder steady noise is a surprise at first, but the floor rises to it: it is not speech forever, and
// speech over it is still found.
func TestNoiseFloorAdapts(t *testing.T) {
	const rate = 8000
	s := append(noise(-65, ms(rate, 2000), 4), noise(-35, ms(rate, 14000), 5)...)
	add(s, ms(rate, 13000), audiotest.Sine(700, 0.3, rate, 0, ms(rate, 1000))) // −13 dBFS, 22 dB over the noise
	d := New(rate)
	got := runs(decisions(d, s))
	// The step is 30 dB; the floor has to rise 20 of them at FloorRise before the noise is below the
	// threshold: that long and a little more (the floor starts from the quieter noise) is speech.
	riseFrames := int(math.Round(20 / FloorRise * 100))
	if len(got) != 2 || got[0][0] != 200 || got[0][1] < 200+riseFrames-50 || got[0][1] > 200+riseFrames+50 {
		t.Fatalf("speech in frames %v, want the first from 200 for about %d frames, then the tone", got, riseFrames)
	}
	if want := [2]int{1300, 1400}; got[1] != want {
		t.Errorf("tone over the louder noise in frames %v, want %v", got[1], want)
	}
	if f := d.Floor(); f < -37 || f > -33 {
		t.Errorf("floor %.1f dBFS after 14 s of noise at −35 dBFS", f)
	}
}

// Digital silence is never speech, has a level (no NaN), and leaves the floor alone: the noise coming back
// after a hold is not speech, nor is a lost packet in a noisy line.
func TestDigitalSilence(t *testing.T) {
	const rate = 8000
	t.Run("all zeros", func(t *testing.T) {
		d := New(rate)
		if got := runs(decisions(d, make([]int16, ms(rate, 2000)))); got != nil {
			t.Errorf("speech in frames %v", got)
		}
		st := d.Stats()
		if st.Frames != 200 || st.Speech != 0 || st.LongestSilence != 200 {
			t.Errorf("stats %+v", st)
		}
		if f := d.Floor(); math.Abs(f-(MinLevel-Threshold)) > 1e-9 {
			t.Errorf("floor %v after digital silence, want it where it started", f)
		}
	})
	t.Run("A-law idle", func(t *testing.T) {
		enc := make([]byte, ms(rate, 2000))
		for i := range enc {
			enc[i] = 0xD5 // what an idle A-law line sends: ±8
		}
		s := make([]int16, len(enc))
		g711.DecodeALaw(s, enc)
		d := New(rate)
		if got := runs(decisions(d, s)); got != nil {
			t.Errorf("speech in frames %v", got)
		}
		if f := d.Floor(); math.Abs(f-(MinLevel-Threshold)) > 1e-9 {
			t.Errorf("floor %v after A-law idle, want it where it started", f)
		}
	})
	t.Run("zeros then a tone", func(t *testing.T) {
		s := make([]int16, ms(rate, 2000))
		add(s, ms(rate, 1000), audiotest.Sine(1000, 0.01, rate, 0, ms(rate, 500))) // −43 dBFS: quiet speech
		if got, want := runs(decisions(New(rate), s)), [][2]int{{100, 150}}; !equalRuns(got, want) {
			t.Errorf("speech in frames %v, want %v", got, want)
		}
	})
	t.Run("noise, hold, noise", func(t *testing.T) {
		// Noise at −45 dBFS is above MinLevel, so the first second of it is speech until the floor has
		// risen to it; then no more, neither after a hold of digital silence nor after lost packets.
		s := noise(-45, ms(rate, 12000), 6)
		clear(s[ms(rate, 5000):ms(rate, 8000)])   // hold
		clear(s[ms(rate, 9000):ms(rate, 9040)])   // two lost packets
		clear(s[ms(rate, 10000):ms(rate, 10020)]) // one
		got := runs(decisions(New(rate), s))
		if len(got) > 1 || len(got) == 1 && (got[0][0] != 0 || got[0][1] > 300) {
			t.Errorf("speech in frames %v, want at most the first 3 s", got)
		}
	})
}

func TestG711(t *testing.T) {
	const rate = 8000
	s := noise(-55, ms(rate, 3000), 7)
	add(s, ms(rate, 500), audiotest.Sine(440, 0.3, rate, 0, ms(rate, 700)))
	add(s, ms(rate, 1700), audiotest.Sine(1000, 0.02, rate, 0, ms(rate, 600))) // −37 dBFS
	for _, codec := range []struct {
		name   string
		encode func(int16) byte
		decode func([]int16, []byte)
	}{{"µ-law", g711.EncodeULaw, g711.DecodeULaw}, {"A-law", g711.EncodeALaw, g711.DecodeALaw}} {
		enc := make([]byte, len(s))
		for i, x := range s {
			enc[i] = codec.encode(x)
		}
		dec := make([]int16, len(s))
		codec.decode(dec, enc)
		if got, want := runs(decisions(New(rate), dec)), [][2]int{{50, 120}, {170, 230}}; !equalRuns(got, want) {
			t.Errorf("%s: speech in frames %v, want %v", codec.name, got, want)
		}
	}
}

// Write frames a stream itself: any split of the samples gives the decisions of whole frames.
func TestWriteMatchesFrame(t *testing.T) {
	const rate = 16000
	s := noise(-55, ms(rate, 3000), 8)
	add(s, ms(rate, 400), audiotest.Sine(300, 0.5, rate, 0, ms(rate, 900)))
	add(s, ms(rate, 2000), audiotest.Sine(300, 0.5, rate, 0, ms(rate, 35)))
	want := New(rate)
	decisions(want, s)

	got := New(rate)
	rng := rand.New(rand.NewPCG(9, 9))
	for rest := s; len(rest) > 0; {
		n := min(rng.IntN(700), len(rest))
		got.Write(rest[:n])
		rest = rest[n:]
	}
	for {
		if _, ok := got.Drain(); !ok {
			break
		}
	}
	if got.Stats() != want.Stats() {
		t.Errorf("Write: %+v, Frame: %+v", got.Stats(), want.Stats())
	}
}

func TestDelay(t *testing.T) {
	d := New(8000)
	frame := make([]int16, d.FrameLen())
	for i := range Delay {
		if _, ok := d.Frame(frame); ok {
			t.Fatalf("frame %d decided before Delay frames", i)
		}
	}
	if _, ok := d.Frame(frame); !ok {
		t.Fatal("frame Delay+1 not decided")
	}
	n := 0
	for {
		if _, ok := d.Drain(); !ok {
			break
		}
		n++
	}
	if n != Delay || d.Stats().Frames != Delay+1 {
		t.Errorf("Drain decided %d, %d in all; want %d, %d", n, d.Stats().Frames, Delay, Delay+1)
	}
}

func TestOddRates(t *testing.T) {
	for _, rate := range []int{11025, 50, 0, -1} {
		d := New(rate)
		d.Write(make([]int16, 1000))
		if d.FrameLen() < 1 || math.IsNaN(d.Floor()) {
			t.Errorf("rate %d: FrameLen %d, floor %v", rate, d.FrameLen(), d.Floor())
		}
	}
}

func TestNoAllocations(t *testing.T) {
	d := New(8000)
	s := audiotest.Sine(440, 0.3, 8000, 0, 160)
	if n := testing.AllocsPerRun(1000, func() { d.Write(s); d.Frame(s[:80]) }); n != 0 {
		t.Errorf("%v allocations per call", n)
	}
}

func BenchmarkWrite(b *testing.B) {
	const rate = 8000
	s := noise(-55, rate, 10)
	add(s, 2000, audiotest.Sine(440, 0.3, rate, 0, 3000))
	d := New(rate)
	b.SetBytes(int64(len(s) * 2))
	b.ReportAllocs()
	for b.Loop() {
		d.Write(s)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N), "ns/audio-s")
}
