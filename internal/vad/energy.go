package vad

import "encoding/binary"

// Frame energies of 16-bit little-endian PCM, as a WAV file holds it: the sums of squares that FrameEnergy
// takes. They run over every recorded sample, so on amd64 with AVX2 they use vector multiply-adds (16 samples
// an instruction, about six times the scalar loops' speed); elsewhere, and for the few bytes past the last
// whole 64-byte block, the scalar loops. Sums are int64: 2^30 a sample cannot overflow them.

// simdBlock is the bytes the vector loops take at a time: 32 mono samples or 16 stereo frames.
const simdBlock = 64

// SumSquares returns the sum of the squares of the little-endian 16-bit samples in b. A trailing odd byte is
// ignored.
func SumSquares(b []byte) int64 {
	var sum int64
	if n := len(b) &^ (simdBlock - 1); useSIMD && n > 0 {
		sum = sumSquaresAVX2(b[:n])
		if n == len(b) {
			return sum // a 10 ms frame at 8 or 16 kHz: no tail
		}
		b = b[n:]
	}
	return sum + sumSquaresGo(b)
}

// SumSquaresStereo returns the sums of the squares of the left and the right samples of b, interleaved
// little-endian 16-bit frames. A trailing partial frame is ignored.
func SumSquaresStereo(b []byte) (left, right int64) {
	if n := len(b) &^ (simdBlock - 1); useSIMD && n > 0 {
		left, right = sumSquaresStereoAVX2(b[:n])
		if n == len(b) {
			return left, right
		}
		b = b[n:]
	}
	l, r := sumSquaresStereoGo(b)
	return left + l, right + r
}

// SumSquaresStride returns the sum of the squares of n little-endian 16-bit samples stride bytes apart from
// the start of b: one channel of interleaved frames with three channels or more, rare enough for a scalar
// loop.
func SumSquaresStride(b []byte, stride, n int) int64 {
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

// sumSquaresGo is SumSquares in scalar code, eight samples a step in four sums so the multiply-adds overlap.
func sumSquaresGo(b []byte) int64 {
	var x0, x1, x2, x3 int64
	for len(b) >= 16 {
		s0, s1, s2, s3, s4, s5, s6, s7 := eightSamples(b)
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

// sumSquaresStereoGo is SumSquaresStereo in scalar code, four frames a step.
func sumSquaresStereoGo(b []byte) (left, right int64) {
	var l0, r0, l1, r1 int64
	for len(b) >= 16 {
		s0, s1, s2, s3, s4, s5, s6, s7 := eightSamples(b)
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

// eightSamples reads the first eight little-endian samples of b, which holds at least 16 bytes.
func eightSamples(b []byte) (s0, s1, s2, s3, s4, s5, s6, s7 int64) {
	c := b[:16:16]
	return int64(int16(binary.LittleEndian.Uint16(c))), int64(int16(binary.LittleEndian.Uint16(c[2:]))),
		int64(int16(binary.LittleEndian.Uint16(c[4:]))), int64(int16(binary.LittleEndian.Uint16(c[6:]))),
		int64(int16(binary.LittleEndian.Uint16(c[8:]))), int64(int16(binary.LittleEndian.Uint16(c[10:]))),
		int64(int16(binary.LittleEndian.Uint16(c[12:]))), int64(int16(binary.LittleEndian.Uint16(c[14:])))
}
