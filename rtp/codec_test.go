package rtp

import (
	"testing"
	"time"

	"github.com/pion/srtp/v3"

	"github.com/siphook/siphook/internal/audiotest"
	"github.com/siphook/siphook/internal/g711"
	"github.com/siphook/siphook/internal/g722"
)

// rateSink is a timeline at a given rate that keeps every sample written, by position.
type rateSink struct {
	rate int
	buf  []int16
}

func (s *rateSink) SampleRate() int { return s.rate }
func (s *rateSink) SamplePosition(t time.Time) int64 {
	return int64(t.Sub(baseTime) * time.Duration(s.rate) / time.Second)
}
func (s *rateSink) WriteSamples(pos int64, pcm []int16) {
	if end := int(pos) + len(pcm); end > len(s.buf) {
		s.buf = append(s.buf, make([]int16, end-len(s.buf))...)
	}
	copy(s.buf[pos:], pcm)
}

// sendTone feeds one second of a tone, encoded as enc in 20 ms packets, as it would arrive in real time.
func sendTone(t *testing.T, st *Stream, enc Encoding, pt uint8, freq float64, protect func([]byte) []byte) {
	t.Helper()
	rate := enc.SampleRate()
	perPacket := rate / 50
	var g722enc *g722.Encoder
	if enc == EncodingG722 {
		g722enc = g722.NewEncoder()
	}
	for i := range 50 {
		pcm := audiotest.Sine(freq, 8000, rate, i*perPacket, perPacket)
		var payload []byte
		switch enc {
		case EncodingPCMU:
			payload = make([]byte, len(pcm))
			for j, v := range pcm {
				payload[j] = g711.EncodeULaw(v)
			}
		case EncodingG722:
			payload = make([]byte, len(pcm)/2)
			g722enc.Encode(payload, pcm)
		}
		pkt := rtpBytes(pt, uint16(1000+i), uint32(i*160), testSSRC, payload) // RTP clock 8 kHz for both
		if protect != nil {
			pkt = protect(pkt)
		}
		st.HandlePacket(pkt, baseTime.Add(time.Duration(i)*20*time.Millisecond))
	}
}

// TestStreamRates: each codec lands at the recording's rate, which may differ from its own. G.722 keeps
// what lies above 4 kHz in a 16 kHz recording.
func TestStreamRates(t *testing.T) {
	for _, tc := range []struct {
		name     string
		enc      Encoding
		pt       uint8
		sinkRate int
		tone     float64
	}{
		{"PCMU at 8 kHz", EncodingPCMU, 0, 8000, 1000},
		{"PCMU up to 16 kHz", EncodingPCMU, 0, 16000, 1000},
		{"G.722 at 16 kHz, low band", EncodingG722, 9, 16000, 1000},
		{"G.722 at 16 kHz, high band", EncodingG722, 9, 16000, 5000},
		{"G.722 down to 8 kHz", EncodingG722, 9, 8000, 1000},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := NewStream(PayloadMap{})
			sink := &rateSink{rate: tc.sinkRate}
			st.SetSink(sink)
			sendTone(t, st, tc.enc, tc.pt, tc.tone, nil)
			if got, want := len(sink.buf), tc.sinkRate; got < want*95/100 || got > want*105/100 {
				t.Errorf("%d samples written for one second at %d Hz", got, tc.sinkRate)
			}
			if cov := audiotest.ToneCoverage(sink.buf[tc.sinkRate/50:], tc.sinkRate, tc.tone); cov < 0.95 {
				t.Errorf("%g Hz present in %.0f%% of the recording", tc.tone, cov*100)
			}
		})
	}
}

func TestStreamSRTP(t *testing.T) {
	for _, p := range []srtp.ProtectionProfile{srtp.ProtectionProfileAes128CmHmacSha1_80, srtp.ProtectionProfileAeadAes256Gcm} {
		key := newSRTPKey(t, p, nil)
		enc, err := NewEncrypter(key)
		if err != nil {
			t.Fatal(err)
		}
		st := NewStream(PayloadMap{})
		if err := st.SetSRTP(&key); err != nil {
			t.Fatal(err)
		}
		sink := &rateSink{rate: 8000}
		st.SetSink(sink)
		var sent [][]byte
		sendTone(t, st, EncodingPCMU, 0, 1000, func(b []byte) []byte {
			out, err := enc.EncryptRTP(nil, b)
			if err != nil {
				t.Fatal(err)
			}
			sent = append(sent, append([]byte(nil), out...))
			return out
		})
		if cov := audiotest.ToneCoverage(sink.buf[160:], 8000, 1000); cov < 0.95 {
			t.Errorf("%v: tone in %.0f%% of the decrypted recording", p, cov*100)
		}
		// A replayed packet and a forged one are refused and counted.
		st.HandlePacket(sent[10], baseTime.Add(time.Second))
		forged := append([]byte(nil), sent[49]...)
		forged[len(forged)-1] ^= 0xff
		st.HandlePacket(forged, baseTime.Add(time.Second))
		if s := st.Stats(); s.SRTPFailed != 2 || s.Received != 50 {
			t.Errorf("%v: stats %+v, want 50 received and 2 SRTP failures", p, s)
		}
		// The same key again (a re-INVITE repeating it) keeps the context: the replay window still knows packet 10.
		if err := st.SetSRTP(&key); err != nil {
			t.Fatal(err)
		}
		st.HandlePacket(sent[10], baseTime.Add(time.Second))
		if s := st.Stats(); s.SRTPFailed != 3 {
			t.Errorf("%v: replay after re-keying with the same key was accepted", p)
		}
	}
}

// TestStreamAnchorsNotBeforeRecordingStart: a packet whose (estimated) arrival lies before the recording's
// start is placed at its start, not dropped as late with everything that follows it.
func TestStreamAnchorsNotBeforeRecordingStart(t *testing.T) {
	sink := newFakeSink(-1000) // arrival at baseTime maps to position -1000
	st := NewStream(PayloadMap{})
	st.SetSink(sink)
	for i := range 3 {
		packet{seq: uint16(i), ts: uint32(160 * i), arrive: int64(160 * i)}.send(st)
	}
	w := sink.Writes()
	if len(w) != 3 || w[0].pos != 0 || w[1].pos != 160 || w[2].pos != 320 {
		t.Fatalf("writes at %v, want 0, 160, 320", w)
	}
}
