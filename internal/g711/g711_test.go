package g711

import (
	"math"
	"testing"
)

func TestG711DecodeReference(t *testing.T) {
	// Reference values from the G.711 tables (research/go-ecosystem.md §5).
	tests := []struct {
		name   string
		decode func([]int16, []byte)
		code   byte
		want   int16
	}{
		{"ulaw positive zero", DecodeULaw, 0xFF, 0},
		{"ulaw negative zero", DecodeULaw, 0x7F, 0},
		{"ulaw negative full scale", DecodeULaw, 0x00, -32124},
		{"ulaw positive full scale", DecodeULaw, 0x80, 32124},
		{"alaw smallest positive", DecodeALaw, 0xD5, 8},
		{"alaw smallest negative", DecodeALaw, 0x55, -8},
		{"alaw positive full scale", DecodeALaw, 0xAA, 32256},
		{"alaw negative full scale", DecodeALaw, 0x2A, -32256},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dst := make([]int16, 1)
			tt.decode(dst, []byte{tt.code})
			if dst[0] != tt.want {
				t.Errorf("decode(%#02x) = %d, want %d", tt.code, dst[0], tt.want)
			}
		})
	}
}

func TestG711RoundTrip(t *testing.T) {
	tests := []struct {
		name   string
		decode func([]int16, []byte)
		encode func(int16) byte
		except map[byte]byte // codes that legitimately come back as another code
	}{
		// 0x7F is µ-law's negative zero: it decodes to 0, which encodes as 0xFF (positive zero).
		{"ulaw", DecodeULaw, EncodeULaw, map[byte]byte{0x7F: 0xFF}},
		{"alaw", DecodeALaw, EncodeALaw, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := make([]byte, 256)
			for i := range src {
				src[i] = byte(i)
			}
			pcm := make([]int16, 256)
			tt.decode(pcm, src)
			for i, s := range pcm {
				want, ok := tt.except[byte(i)]
				if !ok {
					want = byte(i)
				}
				if got := tt.encode(s); got != want {
					t.Errorf("encode(decode(%#02x) = %d) = %#02x, want %#02x", i, s, got, want)
				}
			}
		})
	}
}

func TestG711EncodeMonotonic(t *testing.T) {
	// Exhaustive over all 65536 inputs: decode(encode(x)) never goes down as x goes up, and stays within the
	// largest quantisation step (1024 in the top segment) of x, clipping aside.
	tests := []struct {
		name    string
		decode  func([]int16, []byte)
		encode  func(int16) byte
		maxStep int
	}{
		{"ulaw", DecodeULaw, EncodeULaw, 1024},
		{"alaw", DecodeALaw, EncodeALaw, 1024},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := make([]int16, 1)
			prev := math.MinInt32
			for x := math.MinInt16; x <= math.MaxInt16; x++ {
				tt.decode(out, []byte{tt.encode(int16(x))})
				y := int(out[0])
				if y < prev {
					t.Fatalf("not monotonic at %d: %d after %d", x, y, prev)
				}
				if d := y - x; (d > tt.maxStep || d < -tt.maxStep) && x > -32124 && x < 32124 {
					t.Fatalf("decode(encode(%d)) = %d, off by more than %d", x, y, tt.maxStep)
				}
				prev = y
			}
		})
	}
}

func TestG711ShortDst(t *testing.T) {
	tests := []struct {
		name   string
		decode func([]int16, []byte)
	}{
		{"ulaw", DecodeULaw},
		{"alaw", DecodeALaw},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dst := make([]int16, 2)
			tt.decode(dst, []byte{0x00, 0x80, 0xFF, 0x7F}) // must not panic
			tt.decode(nil, []byte{0x00})
			tt.decode(dst, nil)
		})
	}
}

func BenchmarkDecodeULaw(b *testing.B) {
	src := make([]byte, 160) // one 20 ms frame at 8 kHz
	for i := range src {
		src[i] = byte(i)
	}
	dst := make([]int16, len(src))
	b.ReportAllocs()
	b.SetBytes(int64(len(src)))
	for b.Loop() {
		DecodeULaw(dst, src)
	}
}
