// Package g722 owns the ITU-T G.722 wideband codec at 64 kbit/s (mode 1): a decoder for recording G.722
// RTP streams and an encoder for tests and prompts. It is hand-written in pure Go because no G.722 library
// is reachable as a Go module.
//
// The structure follows the public-domain reference (CMU/Sun, Steve Underwood): a 24-tap QMF splits
// 16 kHz PCM into two 8 kHz sub-bands; the lower band is coded by 6-bit ADPCM, the higher by 2-bit ADPCM,
// and each byte carries one sample pair as ihigh<<6 | ilow. All arithmetic is the reference's fixed-point
// arithmetic: the tests check both directions bit for bit against libspandsp, except that Decode saturates
// QMF overflow to int16 where spandsp 0.0.6 wraps.
package g722

// SampleRate is the PCM rate on both sides of the codec. The RTP clock rate of G.722 is nevertheless 8000
// (RFC 3551 keeps the value that was wrongly registered first), so RTP timestamps advance by one per byte.
const SampleRate = 16000

// qmf holds the even taps h[0], h[2], …, h[22] of the 24-tap QMF; the filter is symmetric, so the odd taps
// are the same values reversed (h[2i+1] = qmf[11-i]). Each half sums to 4096.
var qmf = [12]int{3, -11, 12, 32, -210, 951, 3876, -805, 362, -156, 53, -11}

// Lower sub-band tables.
var (
	// q6: decision levels of the 6-bit quantiser, scaled by det>>12.
	q6 = [32]int{
		0, 35, 72, 110, 150, 190, 233, 276,
		323, 370, 422, 473, 530, 587, 650, 714,
		786, 858, 940, 1023, 1121, 1219, 1339, 1458,
		1612, 1765, 1980, 2195, 2557, 2919, 0, 0,
	}
	// iln, ilp: quantiser interval → 6-bit code, for negative and positive differences.
	iln = [32]int{
		0, 63, 62, 31, 30, 29, 28, 27,
		26, 25, 24, 23, 22, 21, 20, 19,
		18, 17, 16, 15, 14, 13, 12, 11,
		10, 9, 8, 7, 6, 5, 4, 0,
	}
	ilp = [32]int{
		0, 61, 60, 59, 58, 57, 56, 55,
		54, 53, 52, 51, 50, 49, 48, 47,
		46, 45, 44, 43, 42, 41, 40, 39,
		38, 37, 36, 35, 34, 33, 32, 0,
	}
	// qm6: 6-bit inverse quantiser, for the output signal only.
	qm6 = [64]int{
		-136, -136, -136, -136, -24808, -21904, -19008, -16704,
		-14984, -13512, -12280, -11192, -10232, -9360, -8576, -7856,
		-7192, -6576, -6000, -5456, -4944, -4464, -4008, -3576,
		-3168, -2776, -2400, -2032, -1688, -1360, -1040, -728,
		24808, 21904, 19008, 16704, 14984, 13512, 12280, 11192,
		10232, 9360, 8576, 7856, 7192, 6576, 6000, 5456,
		4944, 4464, 4008, 3576, 3168, 2776, 2400, 2032,
		1688, 1360, 1040, 728, 432, 136, -432, -136,
	}
	// qm4: 4-bit inverse quantiser (the code's top four bits) that drives adaptation, so that the 56 and
	// 48 kbit/s modes, which drop low bits, keep encoder and decoder in step.
	qm4 = [16]int{
		0, -20456, -12896, -8968, -6288, -4240, -2584, -1200,
		20456, 12896, 8968, 6288, 4240, 2584, 1200, 0,
	}
	// rl42 maps the 4-bit code to its magnitude class, wl to the log scale factor step of that class.
	rl42 = [16]int{0, 7, 6, 5, 4, 3, 2, 1, 7, 6, 5, 4, 3, 2, 1, 0}
	wl   = [8]int{-60, -30, 58, 172, 334, 538, 1198, 3042}
	// ilb: 2048·2^(i/32), the antilog table shared by both bands' scale factors.
	ilb = [32]int{
		2048, 2093, 2139, 2186, 2233, 2282, 2332, 2383,
		2435, 2489, 2543, 2599, 2656, 2714, 2774, 2834,
		2896, 2960, 3025, 3091, 3158, 3228, 3298, 3371,
		3444, 3520, 3597, 3676, 3756, 3838, 3922, 4008,
	}
)

// Higher sub-band tables.
var (
	qm2 = [4]int{-7408, -1616, 7408, 1616} // 2-bit inverse quantiser
	rh2 = [4]int{2, 1, 2, 1}               // code → magnitude class
	wh  = [3]int{0, -214, 798}             // magnitude class → log scale factor step
	ihn = [3]int{0, 1, 0}                  // magnitude class → code, negative difference
	ihp = [3]int{0, 3, 2}                  // magnitude class → code, positive difference
)

const (
	maxNbLow  = 18432 // upper limit of the lower band's log scale factor
	maxNbHigh = 22528 // upper limit of the higher band's log scale factor
	initDetLo = 32    // det for nb = 0: ilb[0]>>8<<2
	initDetHi = 8     // det for nb = 0: ilb[0]>>10<<2
)

func sat16(x int) int {
	if x > 32767 {
		return 32767
	}
	if x < -32768 {
		return -32768
	}
	return x
}

// sat15 is the LIMIT block: reconstructed sub-band signals are 15-bit.
func sat15(x int) int {
	if x > 16383 {
		return 16383
	}
	if x < -16384 {
		return -16384
	}
	return x
}

// sameSign compares signs the way the reference does (zero counts as positive).
func sameSign(x, y int) bool { return (x < 0) == (y < 0) }

// band is the ADPCM state of one sub-band. Encoder and decoder run the same updates on the same codes, so
// their band states stay equal; that is what lets the decoder track the encoder's predictor.
type band struct {
	s   int    // predicted signal (PREDIC)
	sz  int    // zero-section prediction (FILTEZ)
	r   int    // previous reconstructed signal
	a   [2]int // pole coefficients a1, a2
	p   [2]int // previous partial reconstructions p(n-1), p(n-2)
	d   [6]int // previous quantised differences d(n-1)…d(n-6)
	b   [6]int // zero coefficients b1…b6
	nb  int    // log scale factor
	det int    // linear scale factor
}

// scale updates the log scale factor nb by step and derives det from it (LOGSCL/SCALEL, LOGSCH/SCALEH).
// shift is 8 for the lower band and 10 for the higher.
func (b *band) scale(step, limit, shift int) {
	nb := (b.nb*127)>>7 + step
	nb = max(0, min(nb, limit))
	b.nb = nb
	v := ilb[(nb>>6)&31]
	if sh := shift - nb>>11; sh < 0 {
		v <<= -sh
	} else {
		v >>= sh
	}
	b.det = v << 2
}

// update is block 4: reconstruct, adapt the two-pole/six-zero predictor, and predict the next sample from
// the quantised difference dx.
func (b *band) update(dx int) {
	r := sat16(b.s + dx)  // RECONS
	p := sat16(b.sz + dx) // PARREC

	// UPPOL2
	wd := sat16(b.a[0] << 2)
	if sameSign(p, b.p[0]) {
		wd = -wd
	}
	wd = min(wd, 32767) // -(-32768) overflows int16 in the reference
	a2 := wd >> 7
	if sameSign(p, b.p[1]) {
		a2 += 128
	} else {
		a2 -= 128
	}
	a2 += (b.a[1] * 32512) >> 15
	a2 = max(-12288, min(a2, 12288))

	// UPPOL1
	a1 := (b.a[0] * 32640) >> 15
	if sameSign(p, b.p[0]) {
		a1 += 192
	} else {
		a1 -= 192
	}
	a1 = sat16(a1)
	lim := sat16(15360 - a2)
	a1 = max(-lim, min(a1, lim))

	// FILTEP, on the new coefficients and r(n), r(n-1)
	sp := sat16((a1*sat16(r+r))>>15 + (a2*sat16(b.r+b.r))>>15)
	b.r = r
	b.a = [2]int{a1, a2}
	b.p = [2]int{p, b.p[0]}

	// UPZERO: leak each zero coefficient and nudge it towards sign agreement of d(n) and d(n-i-1); DELAYA
	// and FILTEZ in the same pass, walking down so that d(n-i-1) is read before it is shifted.
	g := 128
	if dx == 0 {
		g = 0
	}
	sz := 0
	for i := 5; i >= 0; i-- {
		w := -g
		if sameSign(b.d[i], dx) {
			w = g
		}
		b.b[i] = sat16(w + (b.b[i]*32640)>>15)
		if i > 0 {
			b.d[i] = b.d[i-1]
		} else {
			b.d[0] = dx
		}
		sz += (b.b[i] * sat16(b.d[i]+b.d[i])) >> 15
	}
	b.sz = sat16(sz)

	// PREDIC
	b.s = sat16(sp + b.sz)
}

// history holds the last 12 values of one QMF phase, each stored twice, so that the window (oldest first)
// is a contiguous slice without shifting the buffer every sample.
type history struct {
	buf [24]int
	pos int
}

// push adds v as the newest value and returns the window.
func (h *history) push(v int) *[12]int {
	h.buf[h.pos] = v
	h.buf[h.pos+12] = v
	h.pos++
	if h.pos == 12 {
		h.pos = 0
	}
	return (*[12]int)(h.buf[h.pos : h.pos+12])
}

// Decoder decodes one G.722 stream. Its state carries from one Decode call to the next, so a stream's
// packets must go through one Decoder in order. It is not safe for concurrent use.
type Decoder struct {
	lo, hi   band
	sum, dif history // QMF inputs rlow+rhigh and rlow-rhigh
}

// NewDecoder returns a Decoder in the initial state.
func NewDecoder() *Decoder {
	d := &Decoder{}
	d.Reset()
	return d
}

// Reset returns the decoder to its initial state (new SSRC / new stream).
func (d *Decoder) Reset() {
	*d = Decoder{}
	d.lo.det = initDetLo
	d.hi.det = initDetHi
}

// Decode decodes G.722 bytes (64 kbit/s: each byte is 2 output samples at 16 kHz) into dst, which must have
// room for 2*len(src) samples; returns the number of samples written. Every byte value is a valid code, so
// no input makes it panic; if dst is too short, only the bytes that fit are decoded.
func (d *Decoder) Decode(dst []int16, src []byte) int {
	n := min(len(src), len(dst)/2)
	for i, code := range src[:n] {
		ilow := int(code & 0x3f)
		ihigh := int(code >> 6)

		// Lower band: the output uses all six bits (INVQBL), adaptation only the top four (INVQAL).
		rlow := sat15(d.lo.s + (d.lo.det*qm6[ilow])>>15)
		ril := ilow >> 2
		dlow := (d.lo.det * qm4[ril]) >> 15
		d.lo.scale(wl[rl42[ril]], maxNbLow, 8)
		d.lo.update(dlow)

		// Higher band.
		dhigh := (d.hi.det * qm2[ihigh]) >> 15
		rhigh := sat15(dhigh + d.hi.s)
		d.hi.scale(wh[rh2[ihigh]], maxNbHigh, 10)
		d.hi.update(dhigh)

		// Receive QMF: DC gain 4096 per phase, less 1 for the 15-bit sub-band signals, hence >>11.
		xs := d.sum.push(rlow + rhigh)
		xd := d.dif.push(rlow - rhigh)
		var out1, out2 int
		for j := range 12 {
			out2 += xs[j] * qmf[j]
			out1 += xd[j] * qmf[11-j]
		}
		dst[2*i] = int16(sat16(out1 >> 11))
		dst[2*i+1] = int16(sat16(out2 >> 11))
	}
	return 2 * n
}

// Encoder encodes one 16 kHz PCM stream to G.722. It is not safe for concurrent use.
type Encoder struct {
	lo, hi    band
	even, odd history // QMF inputs: first and second sample of each pair
}

// NewEncoder returns an Encoder in the initial state.
func NewEncoder() *Encoder {
	e := &Encoder{}
	e.Reset()
	return e
}

// Reset returns the encoder to its initial state.
func (e *Encoder) Reset() {
	*e = Encoder{}
	e.lo.det = initDetLo
	e.hi.det = initDetHi
}

// Encode encodes 16 kHz PCM (len(src) even) into dst (len(src)/2 bytes); returns bytes written. A trailing
// odd sample is ignored; if dst is too short, only the pairs that fit are encoded.
func (e *Encoder) Encode(dst []byte, src []int16) int {
	n := min(len(src)/2, len(dst))
	for i := range n {
		// Transmit QMF: DC gain 4096 per phase, plus 1 for summing the two, plus 1 for the 15-bit sub-band
		// signals, hence >>14.
		xe := e.even.push(int(src[2*i]))
		xo := e.odd.push(int(src[2*i+1]))
		var sumOdd, sumEven int
		for j := range 12 {
			sumOdd += xe[j] * qmf[j]
			sumEven += xo[j] * qmf[11-j]
		}
		xlow := (sumEven + sumOdd) >> 14
		xhigh := (sumEven - sumOdd) >> 14

		// Lower band: SUBTRA, QUANTL (6-bit), then the same adaptation as the decoder.
		el := sat16(xlow - e.lo.s)
		wd := el
		if el < 0 {
			wd = -(el + 1) // one's complement, as in the reference
		}
		k := 1
		for ; k < 30; k++ {
			if wd < (q6[k]*e.lo.det)>>12 {
				break
			}
		}
		ilow := ilp[k]
		if el < 0 {
			ilow = iln[k]
		}
		ril := ilow >> 2
		dlow := (e.lo.det * qm4[ril]) >> 15
		e.lo.scale(wl[rl42[ril]], maxNbLow, 8)
		e.lo.update(dlow)

		// Higher band: SUBTRA, QUANTH (2-bit).
		eh := sat16(xhigh - e.hi.s)
		wd = eh
		if eh < 0 {
			wd = -(eh + 1)
		}
		mih := 1
		if wd >= (564*e.hi.det)>>12 {
			mih = 2
		}
		ihigh := ihp[mih]
		if eh < 0 {
			ihigh = ihn[mih]
		}
		dhigh := (e.hi.det * qm2[ihigh]) >> 15
		e.hi.scale(wh[rh2[ihigh]], maxNbHigh, 10)
		e.hi.update(dhigh)

		dst[i] = byte(ihigh<<6 | ilow)
	}
	return n
}
