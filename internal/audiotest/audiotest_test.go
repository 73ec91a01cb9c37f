package audiotest

import (
	"math"
	"testing"
)

const rate = 8000

func mix(parts ...[]int16) []int16 {
	out := make([]int16, len(parts[0]))
	for _, p := range parts {
		for i, s := range p {
			out[i] += s
		}
	}
	return out
}

func TestToneCoverage(t *testing.T) {
	second := rate
	tests := []struct {
		name    string
		samples []int16
		freq    float64
		min     float64
		max     float64
	}{
		{"tone at its frequency", Sine(440, 0.5, rate, 0, second), 440, 1, 1},
		{"tone at another frequency", Sine(440, 0.5, rate, 0, second), 1000, 0, 0},
		{"quiet tone", Sine(1000, 0.01, rate, 0, second), 1000, 1, 1},
		{"low tone", Sine(100, 0.5, rate, 0, second), 100, 1, 1},
		{"dominant tone of a mix", mix(Sine(440, 0.6, rate, 0, second), Sine(1000, 0.3, rate, 0, second)), 440, 1, 1},
		{"weaker tone of a mix", mix(Sine(440, 0.6, rate, 0, second), Sine(1000, 0.3, rate, 0, second)), 1000, 0, 0},
		{"three equal tones", mix(Sine(440, 0.3, rate, 0, second), Sine(1000, 0.3, rate, 0, second), Sine(1700, 0.3, rate, 0, second)), 440, 0, 0},
		{"silence", make([]int16, second), 440, 0, 0},
		{"near silence", Sine(440, 0.0005, rate, 0, second), 440, 0, 0},
		{"through µ-law", ULawRoundTrip(Sine(440, 0.5, rate, 0, second)), 440, 1, 1},
		{"through µ-law, other frequency", ULawRoundTrip(Sine(440, 0.5, rate, 0, second)), 1000, 0, 0},
		{"half tone half silence", append(Sine(1000, 0.5, rate, 0, second/2), make([]int16, second/2)...), 1000, 0.5, 0.5},
		{"shorter than a window", Sine(440, 0.5, rate, 0, 100), 440, 0, 0},
		{"empty", nil, 440, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := ToneCoverage(tt.samples, rate, tt.freq)
			if got < tt.min || got > tt.max {
				t.Errorf("ToneCoverage = %.3f, want in [%.3f, %.3f]", got, tt.min, tt.max)
			}
		})
	}
}

func TestTonePresentSamples(t *testing.T) {
	tests := []struct {
		name    string
		samples []int16
		rate    int
		want    int
	}{
		{"one second", Sine(440, 0.5, rate, 0, rate), rate, rate},
		{"trailing partial window ignored", Sine(440, 0.5, rate, 0, rate+100), rate, rate},
		{"tone then silence", append(Sine(440, 0.5, rate, 0, 800), make([]int16, 800)...), rate, 800},
		{"bad sample rate", Sine(440, 0.5, rate, 0, rate), 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := TonePresentSamples(tt.samples, tt.rate, 440); got != tt.want {
				t.Errorf("TonePresentSamples = %d, want %d", got, tt.want)
			}
		})
	}
}

func TestSine(t *testing.T) {
	whole := Sine(440, 0.8, rate, 0, 320)
	parts := append(Sine(440, 0.8, rate, 0, 160), Sine(440, 0.8, rate, 160, 160)...)
	for i := range whole {
		if whole[i] != parts[i] {
			t.Fatalf("sample %d: consecutive calls %d, one call %d", i, parts[i], whole[i])
		}
	}

	tests := []struct {
		name      string
		amplitude float64
		rate, n   int
		wantLen   int
		wantPeak  int16
	}{
		{"full scale", 1, rate, 800, 800, math.MaxInt16},
		{"amplitude clamped", 3, rate, 800, 800, math.MaxInt16},
		{"negative amplitude is silence", -1, rate, 800, 800, 0},
		{"NaN amplitude is silence", math.NaN(), rate, 800, 800, 0},
		{"bad rate is silence", 1, 0, 800, 800, 0},
		{"negative length", 1, rate, -5, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := Sine(1000, tt.amplitude, tt.rate, 0, tt.n)
			if len(s) != tt.wantLen {
				t.Fatalf("len = %d, want %d", len(s), tt.wantLen)
			}
			var peak int16
			for _, x := range s {
				peak = max(peak, x)
			}
			if peak != tt.wantPeak {
				t.Errorf("peak = %d, want %d", peak, tt.wantPeak)
			}
		})
	}
}

func TestRMS(t *testing.T) {
	tests := []struct {
		name     string
		samples  []int16
		min, max float64
	}{
		{"empty", nil, 0, 0},
		{"silence", make([]int16, 100), 0, 0},
		{"constant", []int16{-100, 100, -100, 100}, 100, 100},
		{"sine is peak over root two", Sine(1000, 0.5, rate, 0, rate), 0.5 * math.MaxInt16 / math.Sqrt2 * 0.999, 0.5 * math.MaxInt16 / math.Sqrt2 * 1.001},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := RMS(tt.samples); got < tt.min || got > tt.max {
				t.Errorf("RMS = %f, want in [%f, %f]", got, tt.min, tt.max)
			}
		})
	}
}
