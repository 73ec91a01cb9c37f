// Package audiotest generates and detects tones so that tests can check recorded audio by its content: send
// one tone per channel, then assert that each channel of the WAV carries its own tone and not the other's
// (the way livekit/sip's audiotest checks calls).
//
// Detection works on 20 ms windows. A window "has" a tone when the tone is dominant there: the Goertzel
// power at its frequency holds at least half of the window's energy, and the window is not near-silent. Each
// recorded channel carries one tone in our tests, so dominance is the useful test: it fails when channels are
// swapped or mixed together, as well as when audio is missing. An equal mix of two tones sits exactly on the
// threshold and is not a meaningful input.
package audiotest

import (
	"math"

	"github.com/siphook/siphook/internal/g711"
)

const (
	fullScale = math.MaxInt16
	window    = 20  // ms per detection window
	dominance = 0.5 // share of a window's energy the tone must hold
	// silenceRMS is the window RMS below which nothing counts as detected: −60 dBFS.
	silenceRMS = fullScale / 1000.0
)

// Sine returns n samples of a sine tone at freq Hz, amplitude in [0,1] of full scale, starting at sample
// offset start (so consecutive calls continue the same phase). Out-of-range arguments give silence or an
// empty slice, never a panic.
func Sine(freq float64, amplitude float64, sampleRate int, start, n int) []int16 {
	if n <= 0 {
		return []int16{}
	}
	out := make([]int16, n)
	if sampleRate <= 0 || !(amplitude > 0) {
		return out
	}
	a := min(amplitude, 1) * fullScale
	w := 2 * math.Pi * freq / float64(sampleRate)
	for i := range out {
		out[i] = int16(math.Round(a * math.Sin(w*float64(start+i))))
	}
	return out
}

// ToneCoverage splits samples into 20 ms windows and returns the fraction of windows in which freq is present
// and dominant. A trailing partial window is ignored; with no full window the result is 0.
func ToneCoverage(samples []int16, sampleRate int, freq float64) float64 {
	hits, windows := detect(samples, sampleRate, freq)
	if windows == 0 {
		return 0
	}
	return float64(hits) / float64(windows)
}

// TonePresentSamples returns how many samples lie in windows where the tone is detected, for "at least 95 % of
// the expected samples" checks.
func TonePresentSamples(samples []int16, sampleRate int, freq float64) int {
	hits, _ := detect(samples, sampleRate, freq)
	return hits * windowLen(sampleRate)
}

// RMS returns the root mean square of samples (0 for none), to tell audio from silence.
func RMS(samples []int16) float64 {
	if len(samples) == 0 {
		return 0
	}
	return math.Sqrt(energy(samples) / float64(len(samples)))
}

func windowLen(sampleRate int) int { return sampleRate * window / 1000 }

// detect counts the full windows and those in which freq is dominant.
func detect(samples []int16, sampleRate int, freq float64) (hits, windows int) {
	n := windowLen(sampleRate)
	if n <= 0 {
		return 0, 0
	}
	for len(samples) >= n {
		w := samples[:n]
		samples = samples[n:]
		windows++
		e := energy(w)
		if math.Sqrt(e/float64(n)) < silenceRMS {
			continue
		}
		// For a pure sine of amplitude A over N samples, |X(f)|² ≈ (AN/2)² and the energy is A²N/2, so
		// 2|X|²/(N·E) is the share of the energy at f: about 1 for the tone alone.
		if 2*goertzel(w, sampleRate, freq)/(float64(n)*e) >= dominance {
			hits++
		}
	}
	return hits, windows
}

// goertzel returns |X(f)|², the power of samples at freq (any frequency, not only a DFT bin).
func goertzel(samples []int16, sampleRate int, freq float64) float64 {
	c := 2 * math.Cos(2*math.Pi*freq/float64(sampleRate))
	var s1, s2 float64
	for _, x := range samples {
		s1, s2 = float64(x)+c*s1-s2, s1
	}
	return s1*s1 + s2*s2 - c*s1*s2
}

func energy(samples []int16) float64 {
	var e float64
	for _, x := range samples {
		e += float64(x) * float64(x)
	}
	return e
}

// ULawRoundTrip and ALawRoundTrip return pcm as it comes out of G.711 µ-law or A-law: what a detector sees
// after a telephone codec.
func ULawRoundTrip(pcm []int16) []int16 { return roundTrip(pcm, g711.EncodeULaw, g711.DecodeULaw) }

func ALawRoundTrip(pcm []int16) []int16 { return roundTrip(pcm, g711.EncodeALaw, g711.DecodeALaw) }

func roundTrip(pcm []int16, encode func(int16) byte, decode func(dst []int16, src []byte)) []int16 {
	enc := make([]byte, len(pcm))
	for i, s := range pcm {
		enc[i] = encode(s)
	}
	out := make([]int16, len(pcm))
	decode(out, enc)
	return out
}
