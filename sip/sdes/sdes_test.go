package sdes

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/pion/srtp/v3"

	"github.com/siphook/siphook/rtp"
)

const (
	rfcKey     = "WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz" // RFC 4568 section 9.1
	rfcKeyRaw  = "YS___semctl () {\t220;}\n}\nunles"
	aes256Key  = "7gR0Mx3w8U8zgZ9Ulo1wqXkW7mVJ0J2kuS8nRV1VTk0iYcTdMCrRjGQ0J3hPFQ==" // 46 bytes
	gcm128Key  = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGw=="                         // 28 bytes
	gcm256Key  = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIjJCUmJygpKis="     // 44 bytes
	suite80    = "AES_CM_128_HMAC_SHA1_80"
	suite32    = "AES_CM_128_HMAC_SHA1_32"
	suite256   = "AES_256_CM_HMAC_SHA1_80"
	suiteGCM16 = "AEAD_AES_128_GCM"
	suiteGCM32 = "AEAD_AES_256_GCM"
)

func mustSuite(t testing.TB, name string) CryptoSuite {
	t.Helper()
	s, ok := LookupCryptoSuite(name)
	if !ok {
		t.Fatalf("suite %s not supported", name)
	}
	return s
}

func b64(t testing.TB, s string) []byte {
	t.Helper()
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func equalCrypto(a, b Crypto) bool {
	return a.Tag == b.Tag && a.Suite == b.Suite && bytes.Equal(a.Key, b.Key) && bytes.Equal(a.Salt, b.Salt) &&
		a.Lifetime == b.Lifetime && bytes.Equal(a.MKI, b.MKI) && slices.Equal(a.SessionParams, b.SessionParams)
}

// syntheticCryptos reads the a=crypto values of a test INVITE.
func syntheticCryptos(t *testing.T) []string {
	t.Helper()
	raw, err := os.ReadFile("../../testdata/siprec/synthetic/syn-11-oracle-like-INVITE-SRTP-SDES-TLS.txt")
	if err != nil {
		t.Fatal(err)
	}
	var vals []string
	for line := range strings.Lines(string(raw)) {
		if v, ok := strings.CutPrefix(strings.TrimRight(line, "\r\n"), "a=crypto:"); ok {
			vals = append(vals, v)
		}
	}
	if len(vals) < 2 {
		t.Fatalf("want the a=crypto of each m-line, got %q", vals)
	}
	return vals
}

func TestParseCrypto(t *testing.T) {
	key := b64(t, rfcKey)
	if string(key) != rfcKeyRaw {
		t.Fatalf("RFC key decodes to %q", key)
	}
	k256 := b64(t, aes256Key)
	kg16, kg32 := b64(t, gcm128Key), b64(t, gcm256Key)
	tests := []struct {
		name, in string
		want     Crypto
		err      error
	}{
		{name: "plain", in: "1 " + suite80 + " inline:" + rfcKey,
			want: Crypto{Tag: 1, Suite: mustSuite(t, suite80), Key: key[:16], Salt: key[16:]}},
		{name: "lifetime 2^31", in: "2 " + suite80 + " inline:" + rfcKey + "|2^31",
			want: Crypto{Tag: 2, Suite: mustSuite(t, suite80), Key: key[:16], Salt: key[16:], Lifetime: 1 << 31}},
		{name: "RFC 4568 example", in: "1 AES_CM_128_HMAC_SHA1_80 inline:" + rfcKey + "|2^20|1:32",
			want: Crypto{Tag: 1, Suite: mustSuite(t, suite80), Key: key[:16], Salt: key[16:], Lifetime: 1 << 20,
				MKI: append(make([]byte, 31), 1)}},
		{name: "MKI only", in: "1 " + suite32 + " inline:" + rfcKey + "|1:4",
			want: Crypto{Tag: 1, Suite: mustSuite(t, suite32), Key: key[:16], Salt: key[16:], MKI: []byte{0, 0, 0, 1}}},
		{name: "MKI big-endian", in: "1 " + suite80 + " inline:" + rfcKey + "|2^48|258:2",
			want: Crypto{Tag: 1, Suite: mustSuite(t, suite80), Key: key[:16], Salt: key[16:], Lifetime: 1 << 48,
				MKI: []byte{1, 2}}},
		{name: "decimal lifetime", in: "7 " + suite80 + " inline:" + rfcKey + "|1048576|3:1",
			want: Crypto{Tag: 7, Suite: mustSuite(t, suite80), Key: key[:16], Salt: key[16:], Lifetime: 1048576,
				MKI: []byte{3}}},
		{name: "lifetime 2^64", in: "1 " + suite80 + " inline:" + rfcKey + "|2^64",
			want: Crypto{Tag: 1, Suite: mustSuite(t, suite80), Key: key[:16], Salt: key[16:], Lifetime: math.MaxUint64}},
		{name: "two key params", in: "1 " + suite80 + " inline:" + rfcKey + "|2^20|1:4;inline:QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVphYmNk|2^20|2:4",
			want: Crypto{Tag: 1, Suite: mustSuite(t, suite80), Key: key[:16], Salt: key[16:], Lifetime: 1 << 20,
				MKI: []byte{0, 0, 0, 1}}},
		{name: "session params", in: "3 " + suite80 + " inline:" + rfcKey + " KDR=0 UNENCRYPTED_SRTCP  WSH=64",
			want: Crypto{Tag: 3, Suite: mustSuite(t, suite80), Key: key[:16], Salt: key[16:],
				SessionParams: []string{"KDR=0", "UNENCRYPTED_SRTCP", "WSH=64"}}},
		{name: "missing padding", in: "1 " + suite256 + " inline:" + strings.TrimRight(aes256Key, "="),
			want: Crypto{Tag: 1, Suite: mustSuite(t, suite256), Key: k256[:32], Salt: k256[32:]}},
		{name: "AES_256 46 bytes", in: "1 " + suite256 + " inline:" + aes256Key + "|2^31",
			want: Crypto{Tag: 1, Suite: mustSuite(t, suite256), Key: k256[:32], Salt: k256[32:], Lifetime: 1 << 31}},
		{name: "legacy AES_CM_256 name", in: "1 AES_CM_256_HMAC_SHA1_80 inline:" + aes256Key,
			want: Crypto{Tag: 1, Suite: CryptoSuite{"AES_CM_256_HMAC_SHA1_80", srtp.ProtectionProfileAes256CmHmacSha1_80, 32, 14},
				Key: k256[:32], Salt: k256[32:]}},
		{name: "GCM 128", in: "1 " + suiteGCM16 + " inline:" + gcm128Key,
			want: Crypto{Tag: 1, Suite: mustSuite(t, suiteGCM16), Key: kg16[:16], Salt: kg16[16:]}},
		{name: "GCM 256", in: "4 " + suiteGCM32 + " inline:" + gcm256Key,
			want: Crypto{Tag: 4, Suite: mustSuite(t, suiteGCM32), Key: kg32[:32], Salt: kg32[32:]}},
		{name: "case and blanks", in: " \t1\taes_cm_128_hmac_sha1_80   INLINE:" + rfcKey + "\r\n",
			want: Crypto{Tag: 1, Suite: mustSuite(t, suite80), Key: key[:16], Salt: key[16:]}},

		{name: "bad base64", in: "1 " + suite80 + " inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubG!z", err: ErrMalformedCrypto},
		{name: "key too short", in: "1 " + suite80 + " inline:" + rfcKey[:36], err: ErrMalformedCrypto},
		{name: "AES_256 suite with 30 bytes", in: "1 " + suite256 + " inline:" + rfcKey, err: ErrMalformedCrypto},
		{name: "AES_128 suite with 46 bytes", in: "1 " + suite80 + " inline:" + aes256Key, err: ErrMalformedCrypto},
		{name: "unknown suite", in: "1 F8_128_HMAC_SHA1_80 inline:" + rfcKey, err: ErrCryptoSuite},
		{name: "AES_192 suite", in: "1 AES_192_CM_HMAC_SHA1_80 inline:" + rfcKey, err: ErrCryptoSuite},
		{name: "no key", in: "1 " + suite80, err: ErrMalformedCrypto},
		{name: "empty", in: "", err: ErrMalformedCrypto},
		{name: "bad tag", in: "x " + suite80 + " inline:" + rfcKey, err: ErrMalformedCrypto},
		{name: "negative tag", in: "-1 " + suite80 + " inline:" + rfcKey, err: ErrMalformedCrypto},
		{name: "tag too long", in: "1234567890 " + suite80 + " inline:" + rfcKey, err: ErrMalformedCrypto},
		{name: "not inline", in: "1 " + suite80 + " uri:https://keys.example/x", err: ErrMalformedCrypto},
		{name: "empty key", in: "1 " + suite80 + " inline:|2^31", err: ErrMalformedCrypto},
		{name: "lifetime 2^65", in: "1 " + suite80 + " inline:" + rfcKey + "|2^65", err: ErrMalformedCrypto},
		{name: "lifetime overflow", in: "1 " + suite80 + " inline:" + rfcKey + "|18446744073709551616", err: ErrMalformedCrypto},
		{name: "lifetime 2^", in: "1 " + suite80 + " inline:" + rfcKey + "|2^", err: ErrMalformedCrypto},
		{name: "MKI length 0", in: "1 " + suite80 + " inline:" + rfcKey + "|1:0", err: ErrMalformedCrypto},
		{name: "MKI length 129", in: "1 " + suite80 + " inline:" + rfcKey + "|1:129", err: ErrMalformedCrypto},
		{name: "MKI value too big", in: "1 " + suite80 + " inline:" + rfcKey + "|256:1", err: ErrMalformedCrypto},
		{name: "MKI before lifetime", in: "1 " + suite80 + " inline:" + rfcKey + "|1:4|2^20", err: ErrMalformedCrypto},
		{name: "two lifetimes", in: "1 " + suite80 + " inline:" + rfcKey + "|2^20|2^20", err: ErrMalformedCrypto},
		{name: "too many fields", in: "1 " + suite80 + " inline:" + rfcKey + "|2^20|1:4|x", err: ErrMalformedCrypto},
		{name: "control character", in: "1 " + suite80 + " inline:" + rfcKey + "\x00", err: ErrMalformedCrypto},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseCrypto(tt.in)
			if tt.err != nil {
				if !errors.Is(err, tt.err) {
					t.Fatalf("ParseCrypto(%q) error = %v, want %v", tt.in, err, tt.err)
				}
				if k := keyOf(tt.in); k != "" && strings.Contains(err.Error(), k) {
					t.Errorf("error %q quotes the key", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseCrypto(%q): %v", tt.in, err)
			}
			if !equalCrypto(got, tt.want) {
				t.Fatalf("ParseCrypto(%q) =\n %#v %x %x %x\nwant\n %#v %x %x %x", tt.in,
					got, got.Key, got.Salt, got.MKI, tt.want, tt.want.Key, tt.want.Salt, tt.want.MKI)
			}
			again, err := ParseCrypto(got.String())
			if err != nil || !equalCrypto(again, got) {
				t.Fatalf("round trip of %q via %q: %v", tt.in, got.String(), err)
			}
		})
	}
}

// keyOf returns the base64 key of an a=crypto value, or "".
func keyOf(v string) string {
	_, after, ok := strings.Cut(strings.ToLower(v), "inline:")
	if !ok {
		return ""
	}
	i := strings.Index(strings.ToLower(v), "inline:") + len("inline:")
	end := strings.IndexAny(v[i:], "|; ")
	if end < 0 {
		end = len(after)
	}
	return v[i : i+end]
}

func TestParseCryptoSynthetic(t *testing.T) {
	vals := syntheticCryptos(t)
	var keys [][]byte
	for _, v := range vals {
		c, err := ParseCrypto(v)
		if err != nil {
			t.Fatalf("%q: %v", v, err)
		}
		if c.Suite.Profile != srtp.ProtectionProfileAes128CmHmacSha1_80 || len(c.Key) != 16 || len(c.Salt) != 14 {
			t.Errorf("%q parsed as %s", v, c.Redacted())
		}
		if got := c.String(); got != strings.TrimSpace(v) {
			t.Errorf("String() = %q, want %q", got, v)
		}
		keys = append(keys, c.Key)
	}
	if bytes.Equal(keys[0], keys[1]) {
		t.Error("the two m-lines should have distinct keys")
	}
}

func TestCryptoString(t *testing.T) {
	c := Crypto{Tag: 12, Suite: mustSuite(t, suite80), Key: b64(t, rfcKey)[:16], Salt: b64(t, rfcKey)[16:],
		Lifetime: 1 << 20, MKI: append(make([]byte, 31), 1), SessionParams: []string{"KDR=0"}}
	want := "12 AES_CM_128_HMAC_SHA1_80 inline:" + rfcKey + "|2^20|1:32 KDR=0"
	if got := c.String(); got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
	c.Lifetime, c.MKI, c.SessionParams = 1000, nil, nil
	want = "12 AES_CM_128_HMAC_SHA1_80 inline:" + rfcKey + "|1000"
	if got := c.String(); got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
}

func TestNewCrypto(t *testing.T) {
	for _, s := range CryptoSuites() {
		t.Run(s.Name, func(t *testing.T) {
			offered := Crypto{Tag: 5, Suite: s, Key: make([]byte, s.KeyLen), Salt: make([]byte, s.SaltLen),
				Lifetime: 1 << 31, MKI: []byte{1}, SessionParams: []string{"WSH=64"}}
			a, err := NewCrypto(offered)
			if err != nil {
				t.Fatal(err)
			}
			b, err := NewCrypto(offered)
			if err != nil {
				t.Fatal(err)
			}
			if a.Tag != 5 || a.Suite != s || a.Lifetime != 0 || a.MKI != nil || a.SessionParams != nil {
				t.Errorf("answer %s does not follow the offer", a.Redacted())
			}
			if len(a.Key) != s.KeyLen || len(a.Salt) != s.SaltLen {
				t.Errorf("key %d bytes, salt %d, want %d and %d", len(a.Key), len(a.Salt), s.KeyLen, s.SaltLen)
			}
			if bytes.Equal(a.Key, b.Key) || bytes.Equal(a.Salt, b.Salt) || bytes.Equal(a.Key, offered.Key) {
				t.Error("keys are not fresh")
			}
			again, err := ParseCrypto(a.String())
			if err != nil || !equalCrypto(again, a) {
				t.Errorf("answer %s does not parse back: %v", a.Redacted(), err)
			}
			// The answer's key works with SRTP.
			if _, err := rtp.NewDecrypter(a.SRTPKey()); err != nil {
				t.Errorf("answer key: %v", err)
			}
		})
	}
	if _, err := NewCrypto(Crypto{Tag: 1}); !errors.Is(err, ErrCryptoSuite) {
		t.Errorf("NewCrypto without suite: %v", err)
	}
}

func TestChooseCrypto(t *testing.T) {
	gcm := "2 " + suiteGCM16 + " inline:" + gcm128Key
	aes := "3 " + suite80 + " inline:" + rfcKey + "|2^31"
	tests := []struct {
		name    string
		in      []string
		wantTag int // 0: none
	}{
		{"first in offer order", []string{gcm, aes}, 2},
		{"offer order beats our preference", []string{aes, "4 " + suite256 + " inline:" + aes256Key}, 3},
		{"skips unknown suite", []string{"1 F8_128_HMAC_SHA1_80 inline:" + rfcKey, aes}, 3},
		{"skips malformed", []string{"1 " + suite80 + " inline:!!!", "", aes}, 3},
		{"skips session params we cannot honour", []string{"1 " + suite80 + " inline:" + rfcKey + " UNENCRYPTED_SRTP", "5 " + suite80 + " inline:" + rfcKey + " KDR=1", "6 " + suite80 + " inline:" + rfcKey + " FEC_KEY=inline:" + rfcKey, "7 " + suite80 + " inline:" + rfcKey + " FOO", aes}, 3},
		{"keeps ignorable session params", []string{"8 " + suite80 + " inline:" + rfcKey + " KDR=0 WSH=64 FEC_ORDER=FEC_SRTP -FOO=1"}, 8},
		{"none usable", []string{"1 F8_128_HMAC_SHA1_80 inline:" + rfcKey, "garbage"}, 0},
		{"empty", nil, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, ok := ChooseCrypto(tt.in)
			if ok != (tt.wantTag != 0) || c.Tag != tt.wantTag {
				t.Errorf("ChooseCrypto = tag %d ok %v, want tag %d", c.Tag, ok, tt.wantTag)
			}
		})
	}
	if c, ok := ChooseCrypto(syntheticCryptos(t)[:1]); !ok || c.Suite.Name != suite80 {
		t.Errorf("synthetic INVITE: %s %v", c.Redacted(), ok)
	}
}

func TestCryptoSRTPKey(t *testing.T) {
	c, err := ParseCrypto("1 " + suite80 + " inline:" + rfcKey + "|2^20|1:4")
	if err != nil {
		t.Fatal(err)
	}
	k := c.SRTPKey()
	want := rtp.SRTPKey{Profile: srtp.ProtectionProfileAes128CmHmacSha1_80, Key: c.Key, Salt: c.Salt, MKI: []byte{0, 0, 0, 1}}
	if !k.Equal(want) {
		t.Errorf("SRTPKey() = %v", k)
	}
	k.Key[0] ^= 1
	if c.Key[0] == k.Key[0] {
		t.Error("SRTPKey shares the Crypto's key bytes")
	}
}

func TestCryptoRedacted(t *testing.T) {
	in := "1 " + suite80 + " inline:" + rfcKey + "|2^20|1:4 KDR=0"
	c, err := ParseCrypto(in)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := c.Redacted(), "1 "+suite80+" inline:<redacted>|2^20|1:4 KDR=0"; got != want {
		t.Errorf("Redacted() = %q, want %q", got, want)
	}
	var buf bytes.Buffer
	for _, h := range []slog.Handler{slog.NewTextHandler(&buf, nil), slog.NewJSONHandler(&buf, nil)} {
		l := slog.New(h)
		l.Info("answer", "crypto", c, "ptr", &c, slog.Any("any", c), slog.Group("g", "c", c))
		l.Info("list", "cryptos", []Crypto{c})
	}
	fmt.Fprintf(&buf, "%v %s %+v %q %#v %v %+v %v\n", c, c, c, c, c, []Crypto{c}, struct{ C Crypto }{c}, &c)
	fmt.Fprintln(&buf, fmt.Errorf("answer %v: %w", c, errors.New("x")), fmt.Sprint(c))
	js, err := json.Marshal(map[string]any{"c": c, "list": []Crypto{c}})
	if err != nil {
		t.Fatal(err)
	}
	buf.Write(js)
	out := buf.String()
	raw := string(b64(t, rfcKey))
	for _, secret := range []string{rfcKey, raw[:8], fmt.Sprint(c.Key), fmt.Sprintf("%x", c.Key)} {
		if strings.Contains(out, secret) {
			t.Errorf("log output contains key material %q:\n%s", secret, out)
		}
	}
	if !strings.Contains(out, "inline:<redacted>") {
		t.Errorf("log output lacks the redacted value:\n%s", out)
	}
}

func FuzzParseCrypto(f *testing.F) {
	for _, s := range []string{
		"1 " + suite80 + " inline:" + rfcKey,
		"1 " + suite80 + " inline:" + rfcKey + "|2^20|1:32",
		"2 " + suite32 + " inline:" + rfcKey + "|2^31",
		"3 " + suite80 + " inline:" + rfcKey + "|1:4",
		"4 " + suite80 + " inline:" + rfcKey + "|1048576|7:2 KDR=0 WSH=64",
		"5 " + suite256 + " inline:" + aes256Key,
		"6 AES_CM_256_HMAC_SHA1_80 inline:" + strings.TrimRight(aes256Key, "="),
		"7 " + suiteGCM16 + " inline:" + gcm128Key + ";inline:" + gcm128Key,
		"8 " + suiteGCM32 + " inline:" + gcm256Key + "|2^64|0:128",
		"9 F8_128_HMAC_SHA1_80 inline:" + rfcKey,
		"",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		c, err := ParseCrypto(in)
		if err != nil {
			if !errors.Is(err, ErrMalformedCrypto) && !errors.Is(err, ErrCryptoSuite) {
				t.Fatalf("untyped error %v", err)
			}
			return
		}
		if len(c.Key) != c.Suite.KeyLen || len(c.Salt) != c.Suite.SaltLen || len(c.MKI) > maxMKILen {
			t.Fatalf("bad lengths in %s", c.Redacted())
		}
		s := c.String()
		again, err := ParseCrypto(s)
		if err != nil {
			t.Fatalf("%q re-parsing %q: %v", in, s, err)
		}
		if !equalCrypto(again, c) {
			t.Fatalf("%q: round trip via %q changed it", in, s)
		}
		if r := c.Redacted(); strings.Contains(r, base64.StdEncoding.EncodeToString(append(bytes.Clone(c.Key), c.Salt...))) {
			t.Fatalf("Redacted() has the key: %q", r)
		}
	})
}

// TestRedactedSessionParams: session parameters that can carry key material (FEC_KEY, anything unknown)
// are hidden like the key; the harmless ones stay readable.
func TestRedactedSessionParams(t *testing.T) {
	const fecKey = "bTNuZjB4aGU0c2w1Yzc0dGg4Nmdua2k0dGhlNjFh"
	c, err := ParseCrypto("1 AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz KDR=0 WSH=64 FEC_KEY=inline:" + fecKey)
	if err != nil {
		t.Fatal(err)
	}
	r := c.Redacted()
	if strings.Contains(r, fecKey) || !strings.Contains(r, "KDR=0") || !strings.Contains(r, "WSH=64") {
		t.Errorf("Redacted() = %q", r)
	}
	if !strings.Contains(c.String(), fecKey) {
		t.Errorf("String() lost a session parameter: %q", c.String())
	}
}
