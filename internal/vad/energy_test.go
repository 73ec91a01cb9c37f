package vad

import (
	"encoding/binary"
	"math"
	"math/rand/v2"
	"testing"
)

// referenceSumSquares sums the squares of each channel of interleaved little-endian samples, the obvious way.
func referenceSumSquares(b []byte, nch int) []int64 {
	sums := make([]int64, nch)
	for i := 0; i+2*nch <= len(b); i += 2 * nch {
		for c := range nch {
			s := int64(int16(binary.LittleEndian.Uint16(b[i+2*c:])))
			sums[c] += s * s
		}
	}
	return sums
}

// checkSums compares every sum of b with the reference: the vector and scalar paths, mono and stereo, and the
// stride loop on each channel of one, two and three.
func checkSums(t *testing.T, b []byte) {
	t.Helper()
	mono := referenceSumSquares(b, 1)[0]
	if got := SumSquares(b); got != mono {
		t.Errorf("SumSquares of %d bytes: %d, want %d", len(b), got, mono)
	}
	if got := sumSquaresGo(b); got != mono {
		t.Errorf("sumSquaresGo of %d bytes: %d, want %d", len(b), got, mono)
	}
	stereo := referenceSumSquares(b, 2)
	if l, r := SumSquaresStereo(b); l != stereo[0] || r != stereo[1] {
		t.Errorf("SumSquaresStereo of %d bytes: %d, %d, want %v", len(b), l, r, stereo)
	}
	if l, r := sumSquaresStereoGo(b); l != stereo[0] || r != stereo[1] {
		t.Errorf("sumSquaresStereoGo of %d bytes: %d, %d, want %v", len(b), l, r, stereo)
	}
	for nch := 1; nch <= 3; nch++ {
		want := referenceSumSquares(b, nch)
		frames := len(b) / (2 * nch)
		for c := range nch {
			if frames == 0 {
				break
			}
			if got := SumSquaresStride(b[2*c:], 2*nch, frames); got != want[c] {
				t.Errorf("SumSquaresStride of %d bytes, %d channels, channel %d: %d, want %d", len(b), nch, c, got, want[c])
			}
		}
	}
}

func TestSumSquares(t *testing.T) {
	t.Logf("vector path: %v", useSIMD)
	rng := rand.New(rand.NewPCG(3, 3))
	for n := 0; n <= 3*simdBlock+7; n++ {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		checkSums(t, b)
	}
	// The largest squares everywhere: a lane holding two of them is 2^31, which only an unsigned reading
	// keeps; 2^30 a sample over many blocks tests the 64-bit sums.
	extreme := make([]byte, 64*simdBlock+6)
	for i := 0; i < len(extreme); i += 2 {
		binary.LittleEndian.PutUint16(extreme[i:], uint16(0x8000))
	}
	checkSums(t, extreme)
	for i := 0; i < len(extreme); i += 2 {
		binary.LittleEndian.PutUint16(extreme[i:], math.MaxInt16)
	}
	checkSums(t, extreme)
	// Unaligned slices: the vector loads must not assume alignment.
	for off := range 4 {
		checkSums(t, extreme[off:])
	}
}

func FuzzSumSquares(f *testing.F) {
	f.Add([]byte{0x00, 0x80, 0x00, 0x80})
	f.Add(make([]byte, 2*simdBlock+3))
	f.Fuzz(func(t *testing.T, b []byte) { checkSums(t, b) })
}

// The energy of one second of stereo 8 kHz audio, in the 20 ms pieces a flush usually hands over.
func BenchmarkSumSquaresStereo(b *testing.B) {
	data := make([]byte, 2*2*8000)
	rng := rand.New(rand.NewPCG(1, 1))
	for i := range data {
		data[i] = byte(rng.Uint32())
	}
	for _, path := range []struct {
		name string
		sum  func([]byte) (int64, int64)
	}{{"vector", SumSquaresStereo}, {"scalar", sumSquaresStereoGo}} {
		b.Run(path.name, func(b *testing.B) {
			b.SetBytes(int64(len(data)))
			var sink int64
			for b.Loop() {
				for i := 0; i < len(data); i += 640 {
					l, r := path.sum(data[i : i+640])
					sink += l + r
				}
			}
			_ = sink
		})
	}
}
