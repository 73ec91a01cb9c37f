// Package sdes owns the SDES key exchange of SRTP (RFC 4568): parsing, choosing, generating and redacting
// a=crypto attributes. The SIP server answers with it; fake SRCs and the load generator offer with it.
package sdes

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"math/big"
	"math/bits"
	"strconv"
	"strings"

	"github.com/pion/srtp/v3"

	"github.com/siphook/siphook/rtp"
)

// SDES (RFC 4568) a=crypto attributes for SRTP (RFC 3711, RFC 6188, RFC 7714).

var (
	// ErrCryptoSuite is returned for an a=crypto whose crypto-suite we cannot receive.
	ErrCryptoSuite = errors.New("sdes: unsupported SRTP crypto-suite")
	// ErrMalformedCrypto is returned for an a=crypto value that does not follow RFC 4568.
	ErrMalformedCrypto = errors.New("sdes: malformed a=crypto")
)

// CryptoSuite is an SDES crypto-suite we can receive.
type CryptoSuite struct {
	Name    string // as it appears in SDP
	Profile srtp.ProtectionProfile
	KeyLen  int // master key length in bytes
	SaltLen int // master salt length in bytes
}

// cryptoSuites are the suites we can receive, in our preference order. All are supported by pion/srtp v3.1.0.
var cryptoSuites = []CryptoSuite{
	{"AES_256_CM_HMAC_SHA1_80", srtp.ProtectionProfileAes256CmHmacSha1_80, 32, 14}, // RFC 6188
	{"AES_CM_128_HMAC_SHA1_80", srtp.ProtectionProfileAes128CmHmacSha1_80, 16, 14}, // RFC 4568
	{"AES_256_CM_HMAC_SHA1_32", srtp.ProtectionProfileAes256CmHmacSha1_32, 32, 14}, // RFC 6188
	{"AES_CM_128_HMAC_SHA1_32", srtp.ProtectionProfileAes128CmHmacSha1_32, 16, 14}, // RFC 4568
	{"AEAD_AES_256_GCM", srtp.ProtectionProfileAeadAes256Gcm, 32, 12},              // RFC 7714
	{"AEAD_AES_128_GCM", srtp.ProtectionProfileAeadAes128Gcm, 16, 12},              // RFC 7714
}

// cryptoSuiteAliases are other spellings seen in the wild. A suite parsed from an alias keeps the alias as its
// Name, so our answer repeats the spelling the offerer understands.
var cryptoSuiteAliases = []CryptoSuite{
	{"AES_CM_256_HMAC_SHA1_80", srtp.ProtectionProfileAes256CmHmacSha1_80, 32, 14}, // pre-RFC 6188 drafts
	{"AES_CM_256_HMAC_SHA1_32", srtp.ProtectionProfileAes256CmHmacSha1_32, 32, 14},
}

// CryptoSuites returns the crypto-suites we can receive, in our preference order (without alias spellings).
func CryptoSuites() []CryptoSuite {
	return append([]CryptoSuite(nil), cryptoSuites...)
}

// LookupCryptoSuite finds a supported crypto-suite by its SDP name (case-insensitive, aliases included).
func LookupCryptoSuite(name string) (CryptoSuite, bool) {
	for _, list := range [][]CryptoSuite{cryptoSuites, cryptoSuiteAliases} {
		for _, s := range list {
			if strings.EqualFold(s.Name, name) {
				return s, true
			}
		}
	}
	return CryptoSuite{}, false
}

// Crypto is one a=crypto attribute (RFC 4568 section 9.1 for SRTP).
//
// Crypto holds key material. Only an explicit call of String prints it (that is its job, for the SDP answer);
// every other way of printing a Crypto gives the redacted form: fmt verbs (Format), slog (LogValue) and JSON
// (MarshalJSON), so that a Crypto logged or wrapped into an error by accident never shows the key.
type Crypto struct {
	Tag           int
	Suite         CryptoSuite
	Key           []byte   // master key
	Salt          []byte   // master salt
	Lifetime      uint64   // master key lifetime in packets; 0 = unspecified; 2^64 is kept as math.MaxUint64
	MKI           []byte   // nil when none; the MKI value encoded big-endian into MKI-length bytes
	SessionParams []string // e.g. UNENCRYPTED_SRTP, KDR=0, WSH=64; kept verbatim
}

const (
	maxCryptoTag    = 999999999 // tag = 1*9DIGIT
	maxMKILen       = 128       // mki-length = 1*3DIGIT ; range 1..128
	maxLifetimeExp  = 64
	inlinePrefix    = "inline:"
	redactedKeyInfo = inlinePrefix + "<redacted>"
)

func malformedCrypto(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrMalformedCrypto, fmt.Sprintf(format, args...))
}

// ParseCrypto parses an a=crypto value (the text after "crypto:"), e.g.
// "1 AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz|2^20|1:32".
// Errors wrap ErrCryptoSuite (well-formed but a suite we cannot receive) or ErrMalformedCrypto; they never
// contain key material. When several key-params are given only the first is used.
func ParseCrypto(value string) (Crypto, error) {
	value = strings.Trim(value, " \t\r\n")
	for i := 0; i < len(value); i++ {
		if b := value[i]; (b < 0x21 || b > 0x7e) && b != ' ' && b != '\t' {
			return Crypto{}, malformedCrypto("invalid character at offset %d", i)
		}
	}
	f := strings.FieldsFunc(value, func(r rune) bool { return r == ' ' || r == '\t' })
	if len(f) < 3 {
		return Crypto{}, malformedCrypto("want tag, crypto-suite and key-params, got %d fields", len(f))
	}
	var c Crypto
	tag, ok := parseDigits(f[0], 9)
	if !ok {
		return Crypto{}, malformedCrypto("bad tag %q", f[0])
	}
	c.Tag = int(tag)
	if !isSuiteName(f[1]) {
		return Crypto{}, malformedCrypto("bad crypto-suite %q", f[1])
	}
	if c.Suite, ok = LookupCryptoSuite(f[1]); !ok {
		return Crypto{}, fmt.Errorf("%w: %s", ErrCryptoSuite, f[1])
	}
	keyParam, _, _ := strings.Cut(f[2], ";") // several key-params: the first one is ours
	if len(keyParam) < len(inlinePrefix) || !strings.EqualFold(keyParam[:len(inlinePrefix)], inlinePrefix) {
		return Crypto{}, malformedCrypto("key-method is not inline")
	}
	if err := c.parseKeyInfo(keyParam[len(inlinePrefix):]); err != nil {
		return Crypto{}, err
	}
	if len(f) > 3 {
		c.SessionParams = append([]string(nil), f[3:]...)
	}
	return c, nil
}

// parseKeyInfo parses key-salt ["|" lifetime] ["|" mki].
func (c *Crypto) parseKeyInfo(info string) error {
	parts := strings.Split(info, "|")
	if len(parts) > 3 {
		return malformedCrypto("too many '|' in key-info")
	}
	raw, err := decodeKeySalt(parts[0])
	if err != nil {
		return err
	}
	if want := c.Suite.KeyLen + c.Suite.SaltLen; len(raw) != want {
		return malformedCrypto("%s needs %d bytes of key and salt, got %d", c.Suite.Name, want, len(raw))
	}
	c.Key = raw[:c.Suite.KeyLen:c.Suite.KeyLen]
	c.Salt = raw[c.Suite.KeyLen:]
	var sawLifetime, sawMKI bool
	for _, p := range parts[1:] {
		switch {
		case strings.Contains(p, ":"):
			if sawMKI {
				return malformedCrypto("two MKIs")
			}
			sawMKI = true
			if c.MKI, err = parseMKI(p); err != nil {
				return err
			}
		case sawMKI:
			return malformedCrypto("lifetime after MKI")
		case sawLifetime:
			return malformedCrypto("two lifetimes")
		default:
			sawLifetime = true
			if c.Lifetime, err = parseLifetime(p); err != nil {
				return err
			}
		}
	}
	return nil
}

// decodeKeySalt decodes base64 key||salt; standard encoding, padding optional (some SBCs strip it).
func decodeKeySalt(s string) ([]byte, error) {
	if s == "" {
		return nil, malformedCrypto("empty key")
	}
	raw, err := base64.StdEncoding.DecodeString(s)
	if err != nil && len(s)%4 != 0 && !strings.Contains(s, "=") {
		raw, err = base64.RawStdEncoding.DecodeString(s)
	}
	if err != nil {
		return nil, malformedCrypto("key is not base64") // the decoder's error would quote key bytes
	}
	return raw, nil
}

// parseLifetime parses lifetime = ["2^"] 1*(DIGIT).
func parseLifetime(s string) (uint64, error) {
	if exp, ok := strings.CutPrefix(s, "2^"); ok {
		n, ok := parseDigits(exp, 3)
		if !ok || n > maxLifetimeExp {
			return 0, malformedCrypto("bad lifetime %q", s)
		}
		if n == 64 {
			return math.MaxUint64, nil
		}
		return 1 << n, nil
	}
	n, ok := parseDigits(s, 20)
	if !ok {
		return 0, malformedCrypto("bad lifetime %q", s)
	}
	return n, nil
}

// parseMKI parses mki = mki-value ":" mki-length, mki-value = 1*DIGIT, mki-length = 1*3DIGIT (1..128 bytes).
func parseMKI(s string) ([]byte, error) {
	v, l, _ := strings.Cut(s, ":")
	n, ok := parseDigits(l, 3)
	if !ok || n < 1 || n > maxMKILen {
		return nil, malformedCrypto("bad MKI length %q", l)
	}
	if !allDigits(v) || len(v) > 400 { // 128 bytes hold at most 309 digits; allow leading zeros
		return nil, malformedCrypto("bad MKI value")
	}
	var x big.Int
	if _, ok := x.SetString(v, 10); !ok || x.BitLen() > int(n)*8 {
		return nil, malformedCrypto("MKI value does not fit in %d bytes", n)
	}
	return x.FillBytes(make([]byte, n)), nil
}

// parseDigits parses 1..maxLen ASCII digits into a uint64 (no sign, no '_').
func parseDigits(s string, maxLen int) (uint64, bool) {
	if len(s) == 0 || len(s) > maxLen || !allDigits(s) {
		return 0, false
	}
	n, err := strconv.ParseUint(s, 10, 64)
	return n, err == nil
}

func allDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// isSuiteName reports crypto-suite = 1*(ALPHA / DIGIT / "_").
func isSuiteName(s string) bool {
	for i := 0; i < len(s); i++ {
		b := s[i]
		if !(b >= 'A' && b <= 'Z' || b >= 'a' && b <= 'z' || b >= '0' && b <= '9' || b == '_') {
			return false
		}
	}
	return s != ""
}

// String formats the a=crypto value: tag suite inline:base64(key||salt)[|lifetime][|mki:len] [session-params].
// It contains the master key: never log it, use Redacted.
func (c Crypto) String() string {
	keySalt := make([]byte, 0, len(c.Key)+len(c.Salt))
	keySalt = append(append(keySalt, c.Key...), c.Salt...)
	return c.format(inlinePrefix+base64.StdEncoding.EncodeToString(keySalt), func(p string) string { return p })
}

// Redacted returns the a=crypto value with the key material replaced by "inline:<redacted>", for logs.
func (c Crypto) Redacted() string { return c.format(redactedKeyInfo, redactSessionParam) }

// redactSessionParam keeps the session parameters that carry no secret (RFC 4568 §6.3) and hides the
// others: FEC_KEY holds a key, and an unknown parameter may too.
func redactSessionParam(p string) string {
	name, _, _ := strings.Cut(p, "=")
	switch name {
	case "KDR", "UNENCRYPTED_SRTP", "UNENCRYPTED_SRTCP", "UNAUTHENTICATED_SRTP", "FEC_ORDER", "WSH":
		return p
	}
	return "<redacted>"
}

// LogValue makes slog print the redacted form, so logging a Crypto never prints the key.
func (c Crypto) LogValue() slog.Value { return slog.StringValue(c.Redacted()) }

// Format makes every fmt verb print the redacted form, even inside slices and structs (%v, %s, %+v, %q, %#v).
// Write the SDP with c.String(), not with fmt.Sprint(c).
func (c Crypto) Format(f fmt.State, verb rune) {
	r := c.Redacted()
	switch {
	case verb == 'q':
		r = strconv.Quote(r)
	case verb == 'v' && f.Flag('#'):
		r = "sip.Crypto(" + strconv.Quote(r) + ")"
	}
	_, _ = io.WriteString(f, r)
}

// MarshalJSON gives the redacted form as a JSON string: key material has no business in JSON.
func (c Crypto) MarshalJSON() ([]byte, error) { return json.Marshal(c.Redacted()) }

func (c Crypto) format(keyInfo string, sessionParam func(string) string) string {
	var b strings.Builder
	b.WriteString(strconv.Itoa(c.Tag))
	b.WriteByte(' ')
	b.WriteString(c.Suite.Name)
	b.WriteByte(' ')
	b.WriteString(keyInfo)
	if c.Lifetime != 0 {
		b.WriteByte('|')
		if c.Lifetime > 1 && bits.OnesCount64(c.Lifetime) == 1 {
			b.WriteString("2^")
			b.WriteString(strconv.Itoa(bits.TrailingZeros64(c.Lifetime)))
		} else {
			b.WriteString(strconv.FormatUint(c.Lifetime, 10))
		}
	}
	if len(c.MKI) > 0 {
		b.WriteByte('|')
		b.WriteString(new(big.Int).SetBytes(c.MKI).String())
		b.WriteByte(':')
		b.WriteString(strconv.Itoa(len(c.MKI)))
	}
	for _, p := range c.SessionParams {
		b.WriteByte(' ')
		b.WriteString(sessionParam(p))
	}
	return b.String()
}

// NewCrypto makes our answer for an offered crypto: same tag and suite, a fresh random key and salt from
// crypto/rand, no MKI, no lifetime, no session parameters.
func NewCrypto(offered Crypto) (Crypto, error) {
	s := offered.Suite
	if s.KeyLen <= 0 || s.SaltLen <= 0 {
		return Crypto{}, fmt.Errorf("%w: %q", ErrCryptoSuite, s.Name)
	}
	raw := make([]byte, s.KeyLen+s.SaltLen)
	if _, err := rand.Read(raw); err != nil {
		return Crypto{}, fmt.Errorf("sip: SRTP key: %w", err)
	}
	return Crypto{Tag: offered.Tag, Suite: s, Key: raw[:s.KeyLen:s.KeyLen], Salt: raw[s.KeyLen:]}, nil
}

// ChooseCrypto picks from an m-line's a=crypto values the first one (in offer order: RFC 4568 has the offerer
// list its preference first) that parses, has a suite we support and only session parameters we can honour.
// It returns ok=false when there is none; unknown or malformed lines are skipped.
func ChooseCrypto(values []string) (Crypto, bool) {
	for _, v := range values {
		c, err := ParseCrypto(v)
		if err != nil || !c.sessionParamsSupported() {
			continue
		}
		return c, true
	}
	return Crypto{}, false
}

// sessionParamsSupported reports whether we can receive SRTP under c's session parameters (RFC 4568 6.3). We
// cannot honour the ones that change the transform (UNENCRYPTED_*, UNAUTHENTICATED_SRTP, FEC_KEY, KDR other
// than 0), so an offer carrying them is not chosen. WSH and FEC_ORDER are hints we may ignore; so are unknown
// parameters marked optional with a leading '-'. Other unknown parameters make the line unusable.
func (c Crypto) sessionParamsSupported() bool {
	for _, p := range c.SessionParams {
		name, val, _ := strings.Cut(p, "=")
		switch strings.ToUpper(name) {
		case "KDR":
			if val != "0" {
				return false
			}
		case "WSH", "FEC_ORDER":
		default:
			if !strings.HasPrefix(name, "-") {
				return false
			}
		}
	}
	return true
}

// SRTPKey is the receive key for the m-line this a=crypto came from.
func (c Crypto) SRTPKey() rtp.SRTPKey {
	return rtp.SRTPKey{
		Profile: c.Suite.Profile,
		Key:     bytes.Clone(c.Key),
		Salt:    bytes.Clone(c.Salt),
		MKI:     bytes.Clone(c.MKI),
	}
}
