package rtp

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/srtp/v3"
)

var srtpTestProfiles = []srtp.ProtectionProfile{
	srtp.ProtectionProfileAes128CmHmacSha1_80,
	srtp.ProtectionProfileAes128CmHmacSha1_32,
	srtp.ProtectionProfileAes256CmHmacSha1_80,
	srtp.ProtectionProfileAes256CmHmacSha1_32,
	srtp.ProtectionProfileAeadAes128Gcm,
	srtp.ProtectionProfileAeadAes256Gcm,
}

func newSRTPKey(t testing.TB, p srtp.ProtectionProfile, mki []byte) SRTPKey {
	t.Helper()
	kl, err := p.KeyLen()
	if err != nil {
		t.Fatal(err)
	}
	sl, err := p.SaltLen()
	if err != nil {
		t.Fatal(err)
	}
	k := SRTPKey{Profile: p, Key: make([]byte, kl), Salt: make([]byte, sl), MKI: mki}
	_, _ = rand.Read(k.Key)
	_, _ = rand.Read(k.Salt)
	return k
}

func plainRTP(t testing.TB, ssrc uint32, seq uint16, payloadLen int) []byte {
	t.Helper()
	payload := make([]byte, payloadLen)
	for i := range payload {
		payload[i] = byte(int(seq) + i)
	}
	p := rtp.Packet{
		Header:  rtp.Header{Version: 2, PayloadType: 0, SequenceNumber: seq, Timestamp: uint32(seq) * 160, SSRC: ssrc},
		Payload: payload,
	}
	b, err := p.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func mustEncrypter(t testing.TB, k SRTPKey) *Encrypter {
	t.Helper()
	e, err := NewEncrypter(k)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func mustDecrypter(t testing.TB, k SRTPKey) *Decrypter {
	t.Helper()
	d, err := NewDecrypter(k)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func mustEncrypt(t testing.TB, e *Encrypter, plain []byte) []byte {
	t.Helper()
	enc, err := e.EncryptRTP(nil, plain)
	if err != nil {
		t.Fatal(err)
	}
	return enc
}

func TestSRTPDecryptProfiles(t *testing.T) {
	for _, p := range srtpTestProfiles {
		t.Run(p.String(), func(t *testing.T) {
			k := newSRTPKey(t, p, nil)
			// The SRC side: a plain pion context from the same master key, as an SBC would have.
			src, err := srtp.CreateContext(k.Key, k.Salt, k.Profile)
			if err != nil {
				t.Fatal(err)
			}
			d := mustDecrypter(t, k)
			for i := range 50 {
				seq := uint16(1000 + i)
				plain := plainRTP(t, 0x1234, seq, 160)
				enc, err := src.EncryptRTP(nil, plain, nil)
				if err != nil {
					t.Fatal(err)
				}
				if bytes.Contains(enc, plain[12:]) {
					t.Fatal("payload not encrypted")
				}
				var got []byte
				switch i % 3 {
				case 0: // internal buffer
					got, err = d.DecryptRTP(nil, enc)
				case 1: // in place
					got, err = d.DecryptRTP(enc[:0], enc)
					if err == nil && &got[0] != &enc[0] {
						t.Error("in-place decryption used another buffer")
					}
				default: // caller's buffer
					got, err = d.DecryptRTP(make([]byte, 0, 1500), enc)
				}
				if err != nil {
					t.Fatalf("packet %d: %v", i, err)
				}
				if !bytes.Equal(got, plain) {
					t.Fatalf("packet %d: decrypted %x, want %x", i, got, plain)
				}
			}
		})
	}
}

func TestSRTPDecryptReplay(t *testing.T) {
	for _, p := range srtpTestProfiles {
		t.Run(p.String(), func(t *testing.T) {
			k := newSRTPKey(t, p, nil)
			e, d := mustEncrypter(t, k), mustDecrypter(t, k)
			var pkts [][]byte
			for seq := range uint16(10) {
				pkts = append(pkts, mustEncrypt(t, e, plainRTP(t, 7, 100+seq, 160)))
			}
			for i, enc := range pkts {
				if _, err := d.DecryptRTP(nil, enc); err != nil {
					t.Fatalf("packet %d: %v", i, err)
				}
			}
			for _, i := range []int{9, 3, 0} {
				if _, err := d.DecryptRTP(nil, pkts[i]); !errors.Is(err, ErrSRTPReplay) {
					t.Errorf("replayed packet %d: err = %v, want ErrSRTPReplay", i, err)
				}
			}
			// Reordered (not yet seen) packets inside the window are fine.
			late := mustEncrypt(t, e, plainRTP(t, 7, 200, 160))
			later := mustEncrypt(t, e, plainRTP(t, 7, 201, 160))
			if _, err := d.DecryptRTP(nil, later); err != nil {
				t.Fatal(err)
			}
			if _, err := d.DecryptRTP(nil, late); err != nil {
				t.Fatalf("reordered packet: %v", err)
			}
		})
	}
}

func TestSRTPDecryptTampered(t *testing.T) {
	for _, p := range srtpTestProfiles {
		t.Run(p.String(), func(t *testing.T) {
			k := newSRTPKey(t, p, nil)
			e, d := mustEncrypter(t, k), mustDecrypter(t, k)
			plain := plainRTP(t, 7, 500, 160)
			enc := mustEncrypt(t, e, plain)
			for name, off := range map[string]int{"auth tag": len(enc) - 1, "payload": 20, "header": 8} {
				bad := bytes.Clone(enc)
				bad[off] ^= 0x01
				if _, err := d.DecryptRTP(bad[:0], bad); !errors.Is(err, ErrSRTPAuth) {
					t.Errorf("tampered %s: err = %v, want ErrSRTPAuth", name, err)
				}
			}
			// Failed packets leave no trace in the replay window: the genuine one still decrypts.
			got, err := d.DecryptRTP(nil, enc)
			if err != nil || !bytes.Equal(got, plain) {
				t.Fatalf("genuine packet after tampered copies: %v", err)
			}
			if _, err := d.DecryptRTP(nil, []byte{0x80, 0, 0}); err == nil || errors.Is(err, ErrSRTPAuth) || errors.Is(err, ErrSRTPReplay) {
				t.Errorf("short packet: err = %v, want a malformed-packet error", err)
			}
			// A different key fails authentication.
			other := mustDecrypter(t, newSRTPKey(t, p, nil))
			if _, err := other.DecryptRTP(nil, mustEncrypt(t, e, plainRTP(t, 7, 501, 160))); !errors.Is(err, ErrSRTPAuth) {
				t.Errorf("wrong key: err = %v, want ErrSRTPAuth", err)
			}
		})
	}
}

func TestSRTPDecryptRollover(t *testing.T) {
	for _, p := range srtpTestProfiles {
		t.Run(p.String(), func(t *testing.T) {
			k := newSRTPKey(t, p, nil)
			e, d := mustEncrypter(t, k), mustDecrypter(t, k)
			var before []byte
			for seq := uint16(65530); seq != 11; seq++ { // 65530 … 65535, 0 … 10: ROC 0 then 1
				plain := plainRTP(t, 99, seq, 160)
				enc := mustEncrypt(t, e, plain)
				if seq == 65533 {
					before = bytes.Clone(enc)
				}
				got, err := d.DecryptRTP(enc[:0], enc)
				if err != nil {
					t.Fatalf("seq %d: %v", seq, err)
				}
				if !bytes.Equal(got, plain) {
					t.Fatalf("seq %d: wrong plain text", seq)
				}
			}
			if _, err := d.DecryptRTP(nil, before); !errors.Is(err, ErrSRTPReplay) {
				t.Errorf("replay from before the wrap: err = %v, want ErrSRTPReplay", err)
			}
		})
	}
}

func TestSRTPDecryptMKI(t *testing.T) {
	mki := []byte{0, 0, 0, 1}
	for _, p := range srtpTestProfiles {
		t.Run(p.String(), func(t *testing.T) {
			k := newSRTPKey(t, p, mki)
			e := mustEncrypter(t, k)

			t.Run("sent", func(t *testing.T) {
				d := mustDecrypter(t, k)
				for seq := range uint16(20) {
					plain := plainRTP(t, 5, seq, 160)
					enc := mustEncrypt(t, e, plain)
					if got, err := d.DecryptRTP(nil, enc); err != nil || !bytes.Equal(got, plain) {
						t.Fatalf("seq %d: %v", seq, err)
					}
				}
				// Another MKI value is not ours.
				other := k
				other.MKI = []byte{0, 0, 0, 2}
				enc := mustEncrypt(t, mustEncrypter(t, other), plainRTP(t, 5, 100, 160))
				if _, err := d.DecryptRTP(nil, enc); !errors.Is(err, ErrSRTPAuth) {
					t.Errorf("foreign MKI: err = %v, want ErrSRTPAuth", err)
				}
			})

			t.Run("advertised only", func(t *testing.T) {
				// The a=crypto says |1:4 but the SRC sends no MKI bytes.
				plainKey := k
				plainKey.MKI = nil
				src := mustEncrypter(t, plainKey)
				d := mustDecrypter(t, k)
				for seq := range uint16(20) {
					plain := plainRTP(t, 6, seq, 160)
					enc := mustEncrypt(t, src, plain)
					if got, err := d.DecryptRTP(enc[:0], enc); err != nil || !bytes.Equal(got, plain) {
						t.Fatalf("seq %d: %v", seq, err)
					}
				}
				if _, err := d.DecryptRTP(nil, mustEncrypt(t, e, plainRTP(t, 6, 5000, 160))); err == nil {
					t.Error("decided on no MKI, yet a packet with MKI decrypted")
				}
			})
		})
	}
}

func TestSRTCPDecrypt(t *testing.T) {
	for _, p := range srtpTestProfiles {
		for _, mki := range [][]byte{nil, {9}} {
			t.Run(fmt.Sprintf("%s/mki=%x", p, mki), func(t *testing.T) {
				k := newSRTPKey(t, p, mki)
				e, d := mustEncrypter(t, k), mustDecrypter(t, k)
				sr := rtcp.SenderReport{SSRC: 42, NTPTime: 1 << 40, RTPTime: 8000, PacketCount: 50, OctetCount: 8000}
				plain, err := sr.Marshal()
				if err != nil {
					t.Fatal(err)
				}
				var first []byte
				for i := range 3 {
					enc, err := e.EncryptRTCP(nil, plain)
					if err != nil {
						t.Fatal(err)
					}
					if i == 0 {
						first = bytes.Clone(enc)
					}
					got, err := d.DecryptRTCP(nil, enc)
					if err != nil || !bytes.Equal(got, plain) {
						t.Fatalf("packet %d: %v", i, err)
					}
				}
				if _, err := d.DecryptRTCP(nil, first); !errors.Is(err, ErrSRTPReplay) {
					t.Errorf("replayed SRTCP: err = %v, want ErrSRTPReplay", err)
				}
				first[len(first)-1] ^= 0xff
				if _, err := d.DecryptRTCP(nil, first); err == nil {
					t.Error("tampered SRTCP decrypted")
				}
			})
		}
	}
}

func TestSRTPKeyEqual(t *testing.T) {
	k := newSRTPKey(t, srtp.ProtectionProfileAes128CmHmacSha1_80, []byte{1})
	same := SRTPKey{Profile: k.Profile, Key: bytes.Clone(k.Key), Salt: bytes.Clone(k.Salt), MKI: []byte{1}}
	if !k.Equal(same) {
		t.Error("copy not Equal")
	}
	for name, mod := range map[string]func(*SRTPKey){
		"profile": func(x *SRTPKey) { x.Profile = srtp.ProtectionProfileAes128CmHmacSha1_32 },
		"key":     func(x *SRTPKey) { x.Key = bytes.Clone(x.Key); x.Key[0] ^= 1 },
		"salt":    func(x *SRTPKey) { x.Salt = bytes.Clone(x.Salt); x.Salt[13] ^= 1 },
		"mki":     func(x *SRTPKey) { x.MKI = nil },
	} {
		o := same
		mod(&o)
		if k.Equal(o) {
			t.Errorf("different %s reported Equal", name)
		}
	}
	d := mustDecrypter(t, k)
	k.Key[0] ^= 1 // the Decrypter keeps its own copy
	if d.SameKey(k) || !d.SameKey(same) {
		t.Error("SameKey does not track the key the Decrypter was made with")
	}
	var logged strings.Builder
	slog.New(slog.NewJSONHandler(&logged, nil)).Info("key", "k", k)
	js, _ := json.Marshal(k)
	for _, s := range []string{k.String(), fmt.Sprintf("%v %+v %#v", k, k, k), logged.String(), string(js)} {
		if strings.Contains(s, fmt.Sprint(k.Key)) || strings.Contains(s, fmt.Sprintf("%x", k.Key)) {
			t.Errorf("key printed: %s", s)
		}
	}
}

func TestSRTPNewDecrypterBadKey(t *testing.T) {
	k := newSRTPKey(t, srtp.ProtectionProfileAes128CmHmacSha1_80, nil)
	k.Key = k.Key[:15]
	if _, err := NewDecrypter(k); err == nil {
		t.Error("short key accepted")
	}
	if _, err := NewEncrypter(k); err == nil {
		t.Error("short key accepted by NewEncrypter")
	}
	k = newSRTPKey(t, srtp.ProtectionProfileAes128CmHmacSha1_80, nil)
	k.Profile = 0x99
	if _, err := NewDecrypter(k); err == nil {
		t.Error("unknown profile accepted")
	}
}

// srtpBatch holds encrypted packets for allocation tests and benchmarks, re-encrypted with fresh sequence
// numbers (replay protection rejects repeats) when used up.
type srtpBatch struct {
	e     *Encrypter
	plain []byte
	pkts  [][]byte
	seq   uint16
	next  int
}

func newSRTPBatch(t testing.TB, k SRTPKey, n int) *srtpBatch {
	b := &srtpBatch{e: mustEncrypter(t, k), plain: plainRTP(t, 0xabcdef, 0, 160), pkts: make([][]byte, n)}
	for i := range b.pkts {
		b.pkts[i] = make([]byte, 0, 1500)
	}
	b.refill(t)
	return b
}

func (b *srtpBatch) refill(t testing.TB) {
	for i := range b.pkts {
		b.plain[2], b.plain[3] = byte(b.seq>>8), byte(b.seq)
		b.seq++
		var err error
		if b.pkts[i], err = b.e.EncryptRTP(b.pkts[i][:0], b.plain); err != nil {
			t.Fatal(err)
		}
	}
	b.next = 0
}

func TestSRTPDecryptNoAllocs(t *testing.T) {
	for _, p := range srtpTestProfiles {
		t.Run(p.String(), func(t *testing.T) {
			k := newSRTPKey(t, p, nil)
			d := mustDecrypter(t, k)
			batch := newSRTPBatch(t, k, 400)
			out := make([]byte, 0, 1500)
			i := 0
			allocs := testing.AllocsPerRun(100, func() {
				var err error
				switch i++; i % 3 {
				case 0:
					_, err = d.DecryptRTP(nil, batch.pkts[batch.next])
				case 1:
					_, err = d.DecryptRTP(out, batch.pkts[batch.next])
				default:
					pkt := batch.pkts[batch.next]
					_, err = d.DecryptRTP(pkt[:0], pkt)
				}
				if err != nil {
					t.Fatal(err)
				}
				batch.next++
			})
			if allocs != 0 {
				t.Errorf("DecryptRTP allocates %.1f times per packet, want 0", allocs)
			}
		})
	}
}

func BenchmarkDecryptRTP(b *testing.B) {
	for _, p := range srtpTestProfiles {
		for _, mode := range []string{"buffer", "inplace"} {
			b.Run(p.String()+"/"+mode, func(b *testing.B) {
				k := newSRTPKey(b, p, nil)
				d := mustDecrypter(b, k)
				batch := newSRTPBatch(b, k, 4096)
				b.SetBytes(int64(len(batch.pkts[0])))
				b.ReportAllocs()
				b.ResetTimer()
				for range b.N {
					if batch.next == len(batch.pkts) {
						b.StopTimer()
						batch.refill(b)
						b.StartTimer()
					}
					pkt := batch.pkts[batch.next]
					batch.next++
					dst := []byte(nil)
					if mode == "inplace" {
						dst = pkt[:0]
					}
					if _, err := d.DecryptRTP(dst, pkt); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

func TestSRTPEncryptInPlace(t *testing.T) {
	for _, p := range srtpTestProfiles {
		t.Run(p.String(), func(t *testing.T) {
			k := newSRTPKey(t, p, []byte{1, 2})
			e, d := mustEncrypter(t, k), mustDecrypter(t, k)
			for seq := range uint16(5) {
				plain := plainRTP(t, 3, seq, 160)
				buf := make([]byte, len(plain), 1500)
				copy(buf, plain)
				enc, err := e.EncryptRTP(buf[:0], buf)
				if err != nil {
					t.Fatal(err)
				}
				if &enc[0] != &buf[0] || len(enc) <= len(plain) {
					t.Fatal("in-place encryption used another buffer")
				}
				if got, err := d.DecryptRTP(nil, enc); err != nil || !bytes.Equal(got, plain) {
					t.Fatalf("seq %d: %v", seq, err)
				}
			}
		})
	}
}
