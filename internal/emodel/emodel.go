// Package emodel estimates a call's listening quality from what its RTP stream shows (codec, loss, loss
// burstiness, delay) with the ITU-T G.107 E-model in the simplified form VoIP monitors use:
//
//	R = (Ro − Is) − Id − Ie,eff + A,  MOS from R by G.107 Annex B.
//
// Only the terms a recorder can observe vary: everything else (loudness ratings, room and circuit noise,
// sidetone, echo) stays at its G.107 default, which is what makes Ro − Is − Id(0) the constant 93.2.
package emodel

import (
	"math"
	"strings"
	"time"
)

// RDefault is R with every G.107 parameter at its default (G.107 §7.7: R = 93.2; Ro ≈ 94.8 less Is ≈ 1.4 and
// the small delay impairment left at zero delay): the best a narrowband call can score, MOS 4.41. Monitors
// start the simplified model from it, so our MOS compares with theirs.
const RDefault = 93.2

// Codec is what the E-model needs to know of a codec.
type Codec struct {
	Name string
	Ie   float64 // equipment impairment factor without loss
	Bpl  float64 // packet-loss robustness factor: how well the decoder conceals a lost packet
}

// The codecs we record. The numbers are the provisional planning values of ITU-T G.113 (11/2007) Appendix I.
//
// G.711 is scored with packet-loss concealment (Bpl 25.1, G.711 with the PLC of G.711 Appendix I, random
// loss) rather than without (Bpl 4.3): the estimate describes the call as its parties hear it, and every
// phone and SBC conceals loss. Our own recording does not (a lost packet is silence in the WAV), so for the
// audio file the estimate is optimistic under loss; with Bpl 4.3, 2 % loss alone would score MOS 3.3 instead
// of 4.2, which no monitor would show for the same call.
//
// G.722 is placed on the narrowband scale, where MOS tops out at 4.5, as G.711 with PLC: Ie 0, because the
// narrowband scale cannot express wideband's advantage (on the 0–129 wideband scale of G.107.1, where
// G.113 Appendix IV gives G.722 at 64 kbit/s Ie,wb 13, it scores above any narrowband codec), and Bpl 25.1
// because G.113 Appendix I has no
// narrowband entry for G.722 and its PLC (G.722 Appendix III/IV) is, like G.711's, waveform extrapolation
// in the sample domain. This is our assumption, not a G.113 value.
var codecs = []Codec{
	{Name: "PCMU", Ie: 0, Bpl: 25.1},
	{Name: "PCMA", Ie: 0, Bpl: 25.1},
	{Name: "G722", Ie: 0, Bpl: 25.1},
}

// BplG711NoPLC is G.113 Appendix I's Bpl for G.711 without concealment (random loss): what a recording that
// fills lost packets with silence suffers. Not used by Lookup; kept for callers scoring the audio file itself.
const BplG711NoPLC = 4.3

// Lookup finds a codec by its SDP encoding name (any case; "G711" and "G.722" spellings too).
func Lookup(name string) (Codec, bool) {
	n := strings.ToUpper(strings.ReplaceAll(name, ".", ""))
	switch n {
	case "G711", "G711U", "PCMU":
		n = "PCMU"
	case "G711A":
		n = "PCMA"
	}
	for _, c := range codecs {
		if c.Name == n {
			return c, true
		}
	}
	return Codec{}, false
}

// Id is the delay impairment for a one-way mouth-to-ear delay: the piecewise-linear fit of G.107's delay
// terms at default echo control by Cole and Rosenbluth ("Voice over IP performance monitoring", ACM SIGCOMM
// CCR 31(2), 2001), Id = 0.024·d + 0.11·(d − 177.3)·H(d − 177.3), d in ms. Delay costs little until
// 177.3 ms, where conversation starts to break down, and much after it.
func Id(delay time.Duration) float64 {
	d := float64(max(delay, 0)) / float64(time.Millisecond)
	id := 0.024 * d
	if d > 177.3 {
		id += 0.11 * (d - 177.3)
	}
	return id
}

// IeEff is G.107's effective equipment impairment for a loss ratio (0–1) and burst ratio:
// Ie,eff = Ie + (95 − Ie)·Ppl/(Ppl/BurstR + Bpl), Ppl in percent. A burst ratio below 1 counts as 1 (see
// BurstR).
func (c Codec) IeEff(lossRatio, burstR float64) float64 {
	ppl := 100 * min(max(lossRatio, 0), 1)
	if ppl == 0 {
		return c.Ie
	}
	burstR = max(burstR, 1)
	return c.Ie + (95-c.Ie)*ppl/(ppl/burstR+c.Bpl)
}

// R is the transmission rating for the codec at this loss and mouth-to-ear delay (the advantage factor A
// is 0: a wired or managed network, where users expect full quality).
func (c Codec) R(lossRatio, burstR float64, oneWayDelay time.Duration) float64 {
	return RDefault - Id(oneWayDelay) - c.IeEff(lossRatio, burstR)
}

// R is Codec.R for a codec named as Lookup takes it, or 0 for a codec it does not know.
func R(codec string, lossRatio, burstR float64, oneWayDelay time.Duration) float64 {
	c, ok := Lookup(codec)
	if !ok {
		return 0
	}
	return c.R(lossRatio, burstR, oneWayDelay)
}

// MOS is the estimated mean opinion score (1–4.5) for a codec named as Lookup takes it, or 0 (no estimate)
// for a codec it does not know.
func MOS(codec string, lossRatio, burstR float64, oneWayDelay time.Duration) float64 {
	c, ok := Lookup(codec)
	if !ok {
		return 0
	}
	return MOSFromR(c.R(lossRatio, burstR, oneWayDelay))
}

// MOSFromR is G.107 Annex B: MOS = 1 + 0.035R + R(R − 60)(100 − R)·7·10⁻⁶ for 0 < R < 100, 1 below and 4.5
// above. The polynomial dips below 1 for R under 6.5; it is clamped there.
func MOSFromR(r float64) float64 {
	switch {
	case math.IsNaN(r) || r <= 0:
		return 1
	case r >= 100:
		return 4.5
	}
	return max(1, 1+0.035*r+r*(r-60)*(100-r)*7e-6)
}

// BurstR is G.107's burst ratio from the loss ratio (0–1) and the probability that a packet is lost given
// that the one before it was (P(loss|loss)): with the two-state Markov model of G.107, p = P(loss|received)
// and q = 1 − P(loss|loss), BurstR = 1/(p + q) = (1 − Ppl)/(1 − P(loss|loss)). It is 1 for random loss and
// grows with burstiness. Loss spread more evenly than random (every tenth packet) would come out below 1; G.107
// defines nothing there, so it is scored as random.
func BurstR(lossRatio, lossAfterLoss float64) float64 {
	if lossRatio <= 0 || lossAfterLoss <= 0 {
		return 1
	}
	if lossAfterLoss >= 1 || lossRatio >= 1 {
		return math.Inf(1) // one unbroken run: Ie,eff = Ie + (95 − Ie)·Ppl/Bpl
	}
	return max(1, (1-lossRatio)/(1-lossAfterLoss))
}

// MouthToEar is the one-way delay the E-model needs, from what a receiver can know: the network's one-way
// delay (estimated: RTP alone cannot measure it), a jitter buffer sized at twice the interarrival jitter,
// as adaptive buffers are, and one packet of packetisation. Our codecs' own algorithmic delay (G.711 none,
// G.722's filter bank a few ms, 0.024 R per ms) is too small to count.
func MouthToEar(network, jitter, packet time.Duration) time.Duration {
	return network + 2*jitter + packet
}
