// Package g711 is the G.711 codec: µ-law (PCMU) and A-law (PCMA) to and from 16-bit linear PCM. RTP and
// AudioHook audio both use it.
package g711

import "math/bits"

// G.711 µ-law (PCMU) and A-law (PCMA), written out because no G.711 module resolves from the module proxy and
// the codec is a few lines. Decoding is a lookup in a table built once; encoding (used by test senders and
// fakes, not on the receive path) computes the segment directly. The arithmetic follows the ITU-T G.711
// reference as in Sun's public-domain g711.c, on 16-bit linear samples.

const (
	ulawBias = 0x84  // added before encoding so that every segment starts at a power of two
	ulawClip = 32635 // largest magnitude that stays within 15 bits once the bias is added
)

var (
	ulawTable = decodeTable(ulawToLinear)
	alawTable = decodeTable(alawToLinear)
)

func decodeTable(decode func(byte) int16) (t [256]int16) {
	for i := range t {
		t[i] = decode(byte(i))
	}
	return t
}

// DecodeULaw decodes µ-law bytes into 16-bit linear samples. It decodes min(len(dst), len(src)) samples, so a
// short dst truncates rather than panics; callers size dst with len(dst) >= len(src).
func DecodeULaw(dst []int16, src []byte) {
	n := min(len(dst), len(src))
	dst = dst[:n]
	for i, c := range src[:n] {
		dst[i] = ulawTable[c]
	}
}

// DecodeALaw decodes A-law bytes into 16-bit linear samples, like DecodeULaw.
func DecodeALaw(dst []int16, src []byte) {
	n := min(len(dst), len(src))
	dst = dst[:n]
	for i, c := range src[:n] {
		dst[i] = alawTable[c]
	}
}

// ULaw decodes one µ-law byte (a table lookup), for interleaved frames that are decoded sample by sample.
func ULaw(code byte) int16 { return ulawTable[code] }

// EncodeULaw encodes one 16-bit linear sample as µ-law.
//
// µ-law has two codes for zero: 0xFF (+0) and 0x7F (−0). Both decode to 0, and 0 encodes to 0xFF, so 0x7F is
// the one code that does not survive a decode/encode round trip.
func EncodeULaw(s int16) byte {
	x := int(s)
	var sign byte
	if x < 0 {
		x, sign = -x, 0x80
	}
	x = min(x, ulawClip) + ulawBias // 132..32767
	exp := bits.Len(uint(x)) - 8    // segment 0..7: the bias puts the leading bit at position 7 or above
	mant := (x >> (exp + 3)) & 0x0F
	return ^(sign | byte(exp<<4) | byte(mant)) // codes are sent inverted
}

// EncodeALaw encodes one 16-bit linear sample as A-law.
func EncodeALaw(s int16) byte {
	x := int(s) >> 3 // A-law works on 13 bits
	mask := byte(0xD5)
	if x < 0 {
		x, mask = -x-1, 0x55
	}
	seg := max(bits.Len(uint(x))-5, 0) // 0..7 for x in 0..4095
	mant := (x >> max(seg, 1)) & 0x0F
	return byte(seg<<4|mant) ^ mask // even bits are sent inverted, plus the sign
}

func ulawToLinear(code byte) int16 {
	u := ^code
	t := (int(u&0x0F)<<3 + ulawBias) << ((u & 0x70) >> 4)
	if u&0x80 != 0 {
		return int16(ulawBias - t)
	}
	return int16(t - ulawBias)
}

func alawToLinear(code byte) int16 {
	a := code ^ 0x55
	t := int(a&0x0F) << 4
	switch seg := (a & 0x70) >> 4; seg {
	case 0:
		t += 8
	case 1:
		t += 0x108
	default:
		t = (t + 0x108) << (seg - 1)
	}
	if a&0x80 != 0 {
		return int16(t)
	}
	return int16(-t)
}
