package audiohook

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/dunglas/httpsfv"
)

// Vector 1 of research/audiohook.md §3.3: the upgrade request of the AudioHook documentation.
const (
	sigV1APIKey  = "SGVsbG8sIEkgYW0gdGhlIEFQSSBrZXkh"
	sigV1Secret  = "MySuperSecretKeyTellNo-1!2@3#4$5" // base64 TXlTdXBlclNlY3JldEtleVRlbGxOby0xITJAMyM0JDU=
	sigV1MAC     = "NZBwyBHRRyRoeLqy1IzOa9VYBuI8TgMFt2GRDkDuJh4="
	sigV1Comps   = `"@request-target" "@authority" "audiohook-organization-id" "audiohook-session-id" "audiohook-correlation-id" "x-api-key"`
	sigV1Params  = `;keyid="SGVsbG8sIEkgYW0gdGhlIEFQSSBrZXkh";nonce="VGhpc0lzQVVuaXF1ZU5vbmNl";alg="hmac-sha256";created=1641013200;expires=3282026430`
	sigV1Member  = "(" + sigV1Comps + ")" + sigV1Params
	sigV1Input   = "sig1=" + sigV1Member
	sigV1Sig     = "sig1=:" + sigV1MAC + ":"
	sigV1Created = 1641013200
)

// sigV1Raw is vector 1 on the wire.
const sigV1Raw = "GET /api/v1/voicebiometrics/ws HTTP/1.1\r\n" +
	"Host: audiohook.example.com\r\n" +
	"Connection: Upgrade\r\n" +
	"Upgrade: websocket\r\n" +
	"Sec-WebSocket-Key: SSdtIGEgV2ViU29ja2V0IQ==\r\n" +
	"Sec-WebSocket-Version: 13\r\n" +
	"User-Agent: GenesysCloud-AudioHook-Client\r\n" +
	"Audiohook-Organization-Id: d7934305-0972-4844-938e-9060eef73d05\r\n" +
	"Audiohook-Correlation-Id: e160e428-53e2-487c-977d-96989bf5c99d\r\n" +
	"Audiohook-Session-Id: 30b0e395-84d3-4570-ac13-9a62d8f514c0\r\n" +
	"X-API-KEY: SGVsbG8sIEkgYW0gdGhlIEFQSSBrZXkh\r\n" +
	"Signature: " + sigV1Sig + "\r\n" +
	"Signature-Input: " + sigV1Input + "\r\n" +
	"\r\n"

var sigV1Now = time.Unix(sigV1Created+1, 0)

// sigReadRequest parses raw as net/http's server would (canonical header names, Host, URL from the request line).
func sigReadRequest(tb testing.TB, raw string) *http.Request {
	tb.Helper()
	r, err := http.ReadRequest(bufio.NewReader(strings.NewReader(raw)))
	if err != nil {
		tb.Fatalf("read request: %v", err)
	}
	return r
}

func sigV1Keys() StaticKeys {
	return StaticKeys{
		{APIKey: "other-key", ClientSecret: []byte("another secret")},
		{APIKey: sigV1APIKey, ClientSecret: []byte(sigV1Secret)},
	}
}

func sigV1Verifier(now time.Time) *SignatureVerifier {
	return &SignatureVerifier{Keys: sigV1Keys(), Now: func() time.Time { return now }}
}

// sigCheck asserts the outcome of Verify: ok, or a failure wrapping ErrUnauthorized whose detail contains why.
// No failure may mention the secret or a MAC.
func sigCheck(t *testing.T, creds Credentials, err error, wantOK bool, why string) {
	t.Helper()
	if wantOK {
		if err != nil {
			t.Fatalf("Verify: %v, want success", err)
		}
		if creds.APIKey == "" {
			t.Fatalf("Verify succeeded without credentials")
		}
		return
	}
	if err == nil {
		t.Fatalf("Verify succeeded, want failure (%s)", why)
	}
	if !errors.Is(err, ErrUnauthorized) {
		t.Fatalf("Verify: %v does not wrap ErrUnauthorized", err)
	}
	if !strings.Contains(err.Error(), why) {
		t.Fatalf("Verify: %q, want a detail containing %q", err, why)
	}
	for _, secret := range []string{sigV1Secret, sigV1MAC, "another secret"} {
		if strings.Contains(err.Error(), secret) {
			t.Fatalf("Verify error leaks %q: %v", secret, err)
		}
	}
	if creds.APIKey != "" || creds.ClientSecret != nil {
		t.Fatalf("failed Verify returned credentials %q", creds.APIKey)
	}
}

// TestVerifySignatureVector1 edits the wire bytes of vector 1 and keeps its signature: equivalent spellings
// must verify, any change to a covered value must not.
func TestVerifySignatureVector1(t *testing.T) {
	replace := func(old, new string) func(string) string {
		return func(raw string) string {
			if !strings.Contains(raw, old) {
				panic("test edit does not apply: " + old)
			}
			return strings.Replace(raw, old, new, 1)
		}
	}
	drop := func(header string) func(string) string {
		return func(raw string) string {
			lines := strings.Split(raw, "\r\n")
			out := lines[:0]
			for _, l := range lines {
				if !strings.HasPrefix(l, header+":") {
					out = append(out, l)
				}
			}
			return strings.Join(out, "\r\n")
		}
	}
	lowerNamesReversed := func(raw string) string {
		lines := strings.Split(strings.TrimSuffix(raw, "\r\n\r\n"), "\r\n")
		out := []string{lines[0]}
		for i := len(lines) - 1; i > 0; i-- {
			name, val, _ := strings.Cut(lines[i], ":")
			out = append(out, strings.ToLower(name)+":"+val)
		}
		return strings.Join(out, "\r\n") + "\r\n\r\n"
	}
	tests := []struct {
		name string
		edit func(string) string
		now  time.Time // zero: sigV1Now
		ok   bool
		why  string
	}{
		{name: "as documented", ok: true},
		{name: "header names lower case and reversed", edit: lowerNamesReversed, ok: true},
		{name: "padded header values", edit: replace("X-API-KEY: "+sigV1APIKey, "X-API-KEY: \t "+sigV1APIKey+" \t"), ok: true},
		{name: "host upper case", edit: replace("Host: audiohook.example.com", "Host: AudioHook.Example.COM"), ok: true},
		{name: "host with default port 443", edit: replace("Host: audiohook.example.com", "Host: audiohook.example.com:443"), ok: true},
		{name: "host with default port 80", edit: replace("Host: audiohook.example.com", "Host: audiohook.example.com:80"), ok: true},
		{name: "Signature-Input with extra spaces", edit: replace(sigV1Input, `sig1=(  "@request-target"   "@authority" "audiohook-organization-id" "audiohook-session-id" "audiohook-correlation-id" "x-api-key" )`+sigV1Params), ok: true},
		{name: "Signature-Input with leading space", edit: replace("Signature-Input: sig1", "Signature-Input:    sig1"), ok: true},
		{name: "label renamed in both headers", edit: func(raw string) string {
			return strings.ReplaceAll(raw, ": sig1=", ": my-label=")
		}, ok: true},
		{name: "newest acceptable clock", now: time.Unix(sigV1Created+13, 0), ok: true},
		{name: "earliest acceptable clock", now: time.Unix(sigV1Created-3, 0), ok: true},

		{name: "session and correlation swapped", edit: func(raw string) string {
			raw = strings.Replace(raw, "Audiohook-Correlation-Id: e160e428", "Audiohook-Correlation-Id: TMP", 1)
			raw = strings.Replace(raw, "Audiohook-Session-Id: 30b0e395-84d3-4570-ac13-9a62d8f514c0", "Audiohook-Session-Id: e160e428-53e2-487c-977d-96989bf5c99d", 1)
			return strings.Replace(raw, "Audiohook-Correlation-Id: TMP-53e2-487c-977d-96989bf5c99d", "Audiohook-Correlation-Id: 30b0e395-84d3-4570-ac13-9a62d8f514c0", 1)
		}, why: "signature mismatch"},
		{name: "organization id upper case", edit: replace("d7934305-0972-4844-938e-9060eef73d05", "D7934305-0972-4844-938E-9060EEF73D05"), why: "signature mismatch"},
		{name: "query added", edit: replace("/ws HTTP/1.1", "/ws?a=1 HTTP/1.1"), why: "signature mismatch"},
		{name: "empty query added", edit: replace("/ws HTTP/1.1", "/ws? HTTP/1.1"), why: "signature mismatch"},
		{name: "path case changed", edit: replace("/voicebiometrics/", "/VoiceBiometrics/"), why: "signature mismatch"},
		{name: "non-default port", edit: replace("Host: audiohook.example.com", "Host: audiohook.example.com:8443"), why: "signature mismatch"},
		{name: "proxy rewrote host", edit: replace("Host: audiohook.example.com", "Host: 10.0.0.7:8080"), why: "signature mismatch"},
		{name: "covered header repeated", edit: replace("X-API-KEY: ", "Audiohook-Session-Id: 1\r\nX-API-KEY: "), why: "signature mismatch"},
		// RFC 8941 §4.2.7: parsers should not fail on non-zero pad bits; the decoded MAC is the same.
		{name: "signature with non-zero pad bits", edit: replace(sigV1MAC, "NZBwyBHRRyRoeLqy1IzOa9VYBuI8TgMFt2GRDkDuJh5="), ok: true},
		{name: "signature tampered", edit: replace(sigV1MAC, "MZBwyBHRRyRoeLqy1IzOa9VYBuI8TgMFt2GRDkDuJh4="), why: "signature mismatch"},
		{name: "signature truncated", edit: replace(sigV1MAC, "NZBwyBHRRyRoeLqy1IzOa9VYBuI8TgMFt2GRDkDu"), why: "signature mismatch"},
		{name: "signature empty", edit: replace(sigV1Sig, "sig1=::"), why: "signature mismatch"},
		{name: "expires changed", edit: replace("expires=3282026430", "expires=3282026431"), why: "signature mismatch"},
		{name: "nonce changed", edit: replace("VGhpc0lzQVVuaXF1ZU5vbmNl", "VGhpc0lzQVVuaXF1ZU5vbmNm"), why: "signature mismatch"},

		{name: "created too far in the past", now: time.Unix(sigV1Created+14, 0), why: "too old"},
		{name: "created in the future", now: time.Unix(sigV1Created-4, 0), why: "future"},
		{name: "X-API-KEY missing", edit: drop("X-API-KEY"), why: "missing X-API-KEY"},
		{name: "X-API-KEY empty", edit: replace("X-API-KEY: "+sigV1APIKey, "X-API-KEY: "), why: "missing X-API-KEY"},
		{name: "X-API-KEY changed", edit: replace("X-API-KEY: "+sigV1APIKey, "X-API-KEY: other-key"), why: "keyid"},
		{name: "X-API-KEY unknown", edit: replace("X-API-KEY: "+sigV1APIKey, "X-API-KEY: nobody"), why: "unknown API key"},
		{name: "X-API-KEY repeated", edit: replace("X-API-KEY: ", "X-API-KEY: "+sigV1APIKey+"\r\nX-API-KEY: "), why: "unknown API key"},
		{name: "Signature missing", edit: drop("Signature"), why: "not signed"},
		{name: "Signature-Input missing", edit: drop("Signature-Input"), why: "not signed"},
		{name: "both signature headers missing", edit: func(raw string) string { return drop("Signature-Input")(drop("Signature")(raw)) }, why: "not signed"},
		{name: "label differs", edit: replace(sigV1Sig, "sig2=:"+sigV1MAC+":"), why: "label"},
		{name: "two signatures", edit: replace(sigV1Sig, sigV1Sig+", sig2=:"+sigV1MAC+":"), why: "exactly one member"},
		{name: "two signature inputs", edit: replace(sigV1Input, sigV1Input+", sig2="+sigV1Member), why: "exactly one member"},
		{name: "second Signature-Input line", edit: replace("Signature-Input: ", "Signature-Input: sig0=()\r\nSignature-Input: "), why: "exactly one member"},
		{name: "signature is a string", edit: replace(sigV1Sig, `sig1="`+sigV1MAC+`"`), why: "byte sequence"},
		{name: "signature has parameters", edit: replace(sigV1Sig, sigV1Sig+";alg=x"), why: "byte sequence"},
		{name: "signature is an inner list", edit: replace(sigV1Sig, "sig1=(:"+sigV1MAC+":)"), why: "not an item"},
		{name: "signature not base64", edit: replace(sigV1Sig, "sig1=:NZBw*yBHR:"), why: "Signature is not a valid"},
		{name: "signature unterminated", edit: replace(sigV1Sig, "sig1=:"+sigV1MAC), why: "Signature is not a valid"},
		{name: "Signature-Input unterminated", edit: replace(sigV1Input, `sig1=("@request-target" "@authority"`), why: "Signature-Input is not a valid"},
		{name: "Signature-Input trailing comma", edit: replace(sigV1Input, sigV1Input+","), why: "Signature-Input is not a valid"},
		{name: "Signature-Input garbage", edit: replace(sigV1Input, "{}"), why: "Signature-Input is not a valid"},
		{name: "Signature-Input bare label", edit: replace(sigV1Input, "sig1"), why: "not an inner list"},
		{name: "Signature-Input item", edit: replace(sigV1Input, `sig1="@authority"`+sigV1Params), why: "not an inner list"},
		{name: "Signature-Input too long", edit: replace(sigV1Params, sigV1Params+`;x="`+strings.Repeat("a", 5000)+`"`), why: "too long"},
		{name: "covers host instead of @authority (vector 1b)", edit: replace(`"@authority" "audio`, `"host" "audio`), why: `does not cover "@authority"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			raw := sigV1Raw
			if tt.edit != nil {
				raw = tt.edit(raw)
			}
			now := tt.now
			if now.IsZero() {
				now = sigV1Now
			}
			creds, err := sigV1Verifier(now).Verify(sigReadRequest(t, raw))
			sigCheck(t, creds, err, tt.ok, tt.why)
			if tt.ok && (creds.APIKey != sigV1APIKey || string(creds.ClientSecret) != sigV1Secret) {
				t.Fatalf("Verify returned credentials for %q", creds.APIKey)
			}
		})
	}
}

// sigSignInput puts input (a whole Signature-Input value) on r and signs it with secret, whatever it says:
// the rule tests below need requests that fail for the rule they test, not for a bad MAC. Items that are not
// strings and components that cannot be derived are signed with an empty value.
func sigSignInput(tb testing.TB, r *http.Request, secret []byte, input string) {
	tb.Helper()
	dict, err := httpsfv.UnmarshalDictionary([]string{input})
	if err != nil {
		tb.Fatalf("test input %q: %v", input, err)
	}
	label := dict.Names()[0]
	m, _ := dict.Get(label)
	list, ok := m.(httpsfv.InnerList)
	if !ok {
		tb.Fatalf("test input %q: not an inner list", input)
	}
	var comps []sigComponent
	for _, it := range list.Items {
		name, _ := it.Value.(string)
		val, _ := (&SignatureVerifier{}).componentValue(r, name)
		comps = append(comps, sigComponent{name, val})
	}
	params, err := httpsfv.Marshal(list)
	if err != nil {
		tb.Fatalf("test input %q: %v", input, err)
	}
	r.Header.Set("Signature-Input", input)
	r.Header.Set("Signature", label+"=:"+base64.StdEncoding.EncodeToString(sigMAC(secret, sigBase(comps, params)))+":")
}

// TestVerifySignatureRules signs each Signature-Input variant correctly, so what decides is the rule alone.
func TestVerifySignatureRules(t *testing.T) {
	const (
		keyid   = `;keyid="` + sigV1APIKey + `"`
		nonce   = `;nonce="VGhpc0lzQVVuaXF1ZU5vbmNl"`
		alg     = `;alg="hmac-sha256"`
		created = `;created=1641013200`
		expires = `;expires=1641013230`
		all     = keyid + nonce + alg + created + expires
	)
	in := func(comps, params string) string { return "sig1=(" + comps + ")" + params }
	tests := []struct {
		name  string
		input string
		ok    bool
		why   string
	}{
		{name: "genesys order", input: in(sigV1Comps, all), ok: true},
		{name: "components in another order", input: in(`"x-api-key" "audiohook-correlation-id" "audiohook-session-id" "audiohook-organization-id" "@authority" "@request-target"`, all), ok: true},
		{name: "parameters in another order", input: in(sigV1Comps, expires+created+alg+nonce+keyid), ok: true},
		{name: "extra covered header", input: in(sigV1Comps+` "user-agent"`, all), ok: true},
		{name: "without alg", input: in(sigV1Comps, keyid+nonce+created+expires), ok: true},
		{name: "without expires", input: in(sigV1Comps, keyid+nonce+alg+created), ok: true},
		{name: "nonce of 22 characters", input: in(sigV1Comps, keyid+`;nonce="0123456789012345678901"`+created), ok: true},
		{name: "other label", input: "x=(" + sigV1Comps + ")" + all, ok: true},

		{name: "@authority not covered", input: in(`"@request-target" "audiohook-organization-id" "audiohook-session-id" "audiohook-correlation-id" "x-api-key"`, all), why: `does not cover "@authority"`},
		{name: "@request-target not covered", input: in(`"@authority" "audiohook-organization-id" "audiohook-session-id" "audiohook-correlation-id" "x-api-key"`, all), why: `does not cover "@request-target"`},
		{name: "x-api-key not covered", input: in(`"@request-target" "@authority" "audiohook-organization-id" "audiohook-session-id" "audiohook-correlation-id"`, all), why: `does not cover "x-api-key"`},
		{name: "session id not covered", input: in(`"@request-target" "@authority" "audiohook-organization-id" "audiohook-correlation-id" "x-api-key"`, all), why: `does not cover "audiohook-session-id"`},
		{name: "nothing covered", input: in("", all), why: "does not cover"},
		{name: "extra covered header absent", input: in(sigV1Comps+` "audiohook-retry-attempt"`, all), why: "missing"},
		{name: "component twice", input: in(sigV1Comps+` "x-api-key"`, all), why: "twice"},
		{name: "unknown derived component", input: in(sigV1Comps+` "@method"`, all), why: "unsupported component"},
		{name: "@signature-params covered", input: in(sigV1Comps+` "@signature-params"`, all), why: "unsupported component"},
		{name: "signature covered", input: in(sigV1Comps+` "signature"`, all), why: "unsupported component"},
		{name: "upper-case header name", input: in(`"@request-target" "@authority" "audiohook-organization-id" "audiohook-session-id" "audiohook-correlation-id" "X-API-KEY"`, all), why: "unsupported component"},
		{name: "empty component name", input: in(sigV1Comps+` ""`, all), why: "unsupported component"},
		{name: "component is a token", input: in(`"@request-target" "@authority" "audiohook-organization-id" "audiohook-session-id" "audiohook-correlation-id" x-api-key`, all), why: "plain string"},
		{name: "component with sf parameter", input: in(`"@request-target" "@authority" "audiohook-organization-id" "audiohook-session-id" "audiohook-correlation-id" "x-api-key";sf`, all), why: "plain string"},
		{name: "component with key parameter", input: in(`"@request-target" "@authority" "audiohook-organization-id" "audiohook-session-id" "audiohook-correlation-id" "x-api-key";key="a"`, all), why: "plain string"},
		{name: "too many components", input: in(sigV1Comps+strings.Repeat(` "user-agent"`, 11), all), why: "too many"},
		{name: "unknown parameter", input: in(sigV1Comps, all+`;tag="audiohook"`), why: `unknown parameter "tag"`},
		{name: "other algorithm", input: in(sigV1Comps, keyid+nonce+`;alg="rsa-pss-sha512"`+created), why: `"alg" has a bad value`},
		{name: "alg as token", input: in(sigV1Comps, keyid+nonce+`;alg=hmac-sha256`+created), why: `"alg" has a bad value`},
		{name: "alg upper case", input: in(sigV1Comps, keyid+nonce+`;alg="HMAC-SHA256"`+created), why: `"alg" has a bad value`},
		{name: "nonce missing", input: in(sigV1Comps, keyid+alg+created+expires), why: "nonce"},
		{name: "nonce of 21 characters", input: in(sigV1Comps, keyid+`;nonce="012345678901234567890"`+created), why: "nonce"},
		{name: "nonce is an integer", input: in(sigV1Comps, keyid+`;nonce=123456789012345`+created), why: `"nonce" has a bad value`},
		{name: "nonce is a flag", input: in(sigV1Comps, keyid+`;nonce`+created), why: `"nonce" has a bad value`},
		{name: "keyid missing", input: in(sigV1Comps, nonce+alg+created+expires), why: "keyid"},
		{name: "keyid of another key", input: in(sigV1Comps, `;keyid="other-key"`+nonce+created), why: "keyid does not match"},
		{name: "keyid is a token", input: in(sigV1Comps, `;keyid=SGVsbG8sIEkgYW0gdGhlIEFQSSBrZXkh`+nonce+created), why: `"keyid" has a bad value`},
		{name: "created missing", input: in(sigV1Comps, keyid+nonce+alg+expires), why: "no created"},
		{name: "created is a decimal", input: in(sigV1Comps, keyid+nonce+`;created=1641013200.0`), why: `"created" has a bad value`},
		{name: "created is a string", input: in(sigV1Comps, keyid+nonce+`;created="1641013200"`), why: `"created" has a bad value`},
		{name: "created is a date", input: in(sigV1Comps, keyid+nonce+`;created=@1641013200`), why: `"created" has a bad value`},
		{name: "expires is a string", input: in(sigV1Comps, keyid+nonce+created+`;expires="1641013230"`), why: `"expires" has a bad value`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := sigReadRequest(t, sigV1Raw)
			sigSignInput(t, r, []byte(sigV1Secret), tt.input)
			creds, err := sigV1Verifier(sigV1Now).Verify(r)
			sigCheck(t, creds, err, tt.ok, tt.why)
		})
	}
}

// TestVerifySignatureClock moves the clock around a request signed the way Genesys signs (expires = created+30s).
func TestVerifySignatureClock(t *testing.T) {
	created := time.Unix(1_800_000_000, 0)
	tests := []struct {
		name   string
		now    time.Time
		skew   time.Duration
		maxAge time.Duration
		ok     bool
		why    string
	}{
		{name: "just created", now: created, ok: true},
		{name: "created within default skew ahead", now: created.Add(-3 * time.Second), ok: true},
		{name: "created beyond default skew ahead", now: created.Add(-4 * time.Second), why: "future"},
		{name: "created sub-second beyond skew ahead", now: created.Add(-3*time.Second - time.Millisecond), why: "future"},
		{name: "oldest by default", now: created.Add(13 * time.Second), ok: true},
		{name: "too old by default", now: created.Add(13*time.Second + time.Millisecond), why: "too old"},
		{name: "wider skew", now: created.Add(-5 * time.Second), skew: 5 * time.Second, ok: true},
		{name: "longer max age", now: created.Add(30 * time.Second), maxAge: time.Minute, ok: true},
		{name: "expired within skew", now: created.Add(33 * time.Second), maxAge: time.Hour, ok: true},
		{name: "expired", now: created.Add(34 * time.Second), maxAge: time.Hour, why: "expired"},
		{name: "years later", now: created.Add(10 * 365 * 24 * time.Hour), why: "too old"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := sigReadRequest(t, sigV1Raw)
			if err := SignRequest(r, sigV1APIKey, []byte(sigV1Secret), created, "VGhpc0lzQVVuaXF1ZU5vbmNl"); err != nil {
				t.Fatal(err)
			}
			v := &SignatureVerifier{Keys: sigV1Keys(), Now: func() time.Time { return tt.now }, Skew: tt.skew, MaxAge: tt.maxAge}
			creds, err := v.Verify(r)
			sigCheck(t, creds, err, tt.ok, tt.why)
		})
	}
}

// TestVerifySignatureKeys covers how the organisation's credentials decide what is checked.
func TestVerifySignatureKeys(t *testing.T) {
	unsigned := func(raw string) string {
		raw = strings.Replace(raw, "Signature: "+sigV1Sig+"\r\n", "", 1)
		return strings.Replace(raw, "Signature-Input: "+sigV1Input+"\r\n", "", 1)
	}
	garbage := func(raw string) string {
		return strings.Replace(raw, sigV1Sig, "sig1=:AAAA:", 1)
	}
	noSecret := StaticKeys{{APIKey: sigV1APIKey}}
	tests := []struct {
		name string
		keys KeyStore
		edit func(string) string
		ok   bool
		why  string
	}{
		{name: "no secret, unsigned", keys: noSecret, edit: unsigned, ok: true},
		// Our choice: an organisation configured without a secret is checked on its API key alone.
		{name: "no secret, signed", keys: noSecret, ok: true},
		{name: "no secret, bad signature ignored", keys: noSecret, edit: garbage, ok: true},
		{name: "secret, unsigned", keys: sigV1Keys(), edit: unsigned, why: "not signed"},
		{name: "secret, bad signature", keys: sigV1Keys(), edit: garbage, why: "signature mismatch"},
		{name: "other secret for the key", keys: StaticKeys{{APIKey: sigV1APIKey, ClientSecret: []byte("rotated")}}, why: "signature mismatch"},
		{name: "unknown key, signed", keys: StaticKeys{{APIKey: "other-key", ClientSecret: []byte(sigV1Secret)}}, why: "unknown API key"},
		{name: "unknown key, unsigned", keys: StaticKeys{{APIKey: "other-key"}}, edit: unsigned, why: "unknown API key"},
		{name: "empty key store", keys: StaticKeys{}, why: "unknown API key"},
		{name: "no key store", keys: nil, why: "no key store"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			raw := sigV1Raw
			if tt.edit != nil {
				raw = tt.edit(raw)
			}
			v := &SignatureVerifier{Keys: tt.keys, Now: func() time.Time { return sigV1Now }}
			creds, err := v.Verify(sigReadRequest(t, raw))
			sigCheck(t, creds, err, tt.ok, tt.why)
		})
	}
}

func TestVerifySignatureStaticKeys(t *testing.T) {
	keys := StaticKeys{
		{APIKey: ""}, // a blank entry must not make the empty key valid
		{APIKey: "a", ClientSecret: []byte("1")},
		{APIKey: "b", ClientSecret: []byte("2")},
		{APIKey: "a", ClientSecret: []byte("shadowed")},
	}
	tests := []struct {
		name   string
		key    string
		ok     bool
		secret string
	}{
		{name: "first", key: "a", ok: true, secret: "1"},
		{name: "second", key: "b", ok: true, secret: "2"},
		{name: "unknown", key: "c"},
		{name: "prefix", key: "aa"},
		{name: "case", key: "A"},
		{name: "empty", key: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, ok := keys.Lookup(tt.key)
			if ok != tt.ok || string(c.ClientSecret) != tt.secret || (ok && c.APIKey != tt.key) {
				t.Fatalf("Lookup(%q) = %q, %q, %v; want secret %q, %v", tt.key, c.APIKey, c.ClientSecret, ok, tt.secret, tt.ok)
			}
		})
	}
}

// TestVerifySignatureAuthority: behind a TLS proxy that rewrites Host, @authority must come from configuration.
func TestVerifySignatureAuthority(t *testing.T) {
	proxied := strings.Replace(sigV1Raw, "Host: audiohook.example.com", "Host: 10.0.0.7:8080", 1)
	tests := []struct {
		name      string
		raw       string
		authority string
		ok        bool
	}{
		{name: "rewritten host without override", raw: proxied},
		{name: "rewritten host with override", raw: proxied, authority: "audiohook.example.com", ok: true},
		{name: "override spelled with case and default port", raw: proxied, authority: "AudioHook.example.com:443", ok: true},
		{name: "override wins over a correct Host", raw: sigV1Raw, authority: "other.example.com"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := sigV1Verifier(sigV1Now)
			v.Authority = tt.authority
			creds, err := v.Verify(sigReadRequest(t, tt.raw))
			sigCheck(t, creds, err, tt.ok, "signature mismatch")
		})
	}
}

// TestSignatureBase checks the signature base and MAC against the published vectors, independently of Verify.
func TestSignatureBase(t *testing.T) {
	v1Values := []string{
		"/api/v1/voicebiometrics/ws",
		"audiohook.example.com",
		"d7934305-0972-4844-938e-9060eef73d05",
		"30b0e395-84d3-4570-ac13-9a62d8f514c0",
		"e160e428-53e2-487c-977d-96989bf5c99d",
		sigV1APIKey,
	}
	comps := func(names []string, values []string) []sigComponent {
		var c []sigComponent
		for i := range names {
			c = append(c, sigComponent{names[i], values[i]})
		}
		return c
	}
	v1Names := []string{"@request-target", "@authority", "audiohook-organization-id", "audiohook-session-id", "audiohook-correlation-id", "x-api-key"}
	v1bNames := []string{"@request-target", "host", "audiohook-organization-id", "audiohook-session-id", "audiohook-correlation-id", "x-api-key"}
	tests := []struct {
		name   string
		key    []byte
		comps  []sigComponent
		params string
		base   string // empty: not checked
		mac    string
	}{
		{
			name:   "vector 1 AudioHook documentation",
			key:    []byte(sigV1Secret),
			comps:  comps(v1Names, v1Values),
			params: sigV1Member,
			base: `"@request-target": /api/v1/voicebiometrics/ws` + "\n" +
				`"@authority": audiohook.example.com` + "\n" +
				`"audiohook-organization-id": d7934305-0972-4844-938e-9060eef73d05` + "\n" +
				`"audiohook-session-id": 30b0e395-84d3-4570-ac13-9a62d8f514c0` + "\n" +
				`"audiohook-correlation-id": e160e428-53e2-487c-977d-96989bf5c99d` + "\n" +
				`"x-api-key": SGVsbG8sIEkgYW0gdGhlIEFQSSBrZXkh` + "\n" +
				`"@signature-params": ("@request-target" "@authority" "audiohook-organization-id" "audiohook-session-id" "audiohook-correlation-id" "x-api-key");keyid="SGVsbG8sIEkgYW0gdGhlIEFQSSBrZXkh";nonce="VGhpc0lzQVVuaXF1ZU5vbmNl";alg="hmac-sha256";created=1641013200;expires=3282026430`,
			mac: sigV1MAC,
		},
		{
			name:   "vector 1b host instead of @authority",
			key:    []byte(sigV1Secret),
			comps:  comps(v1bNames, v1Values),
			params: strings.Replace(sigV1Member, `"@authority"`, `"host"`, 1),
			mac:    "zupMJUMfd/kMuvKc5zhRyfJPE3jTROuz1S1hn8SCTpE=",
		},
		{
			name: "vector 2 draft-ietf-httpbis-message-signatures-11 B.2.5",
			key:  sigDecode(t, "uzvJfB4u3N0Jy4T7NZ75MDVcr8zSTInedJtkgcu46YW4XByzNJjxBdtjUkdJPBtbmHhIDi6pcl8jsasjlTMtDQ=="),
			comps: []sigComponent{
				{"date", "Tue, 20 Apr 2021 02:07:55 GMT"},
				{"@authority", "example.com"},
				{"content-type", "application/json"},
			},
			params: `("date" "@authority" "content-type");created=1618884473;keyid="test-shared-secret"`,
			mac:    "pxcQw6G3AjtMBQjwo8XzkZf/bws5LelbaMk5rGIGtE8=",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			base := sigBase(tt.comps, tt.params)
			if tt.base != "" && string(base) != tt.base {
				t.Fatalf("base:\n%s\nwant:\n%s", base, tt.base)
			}
			if got := base64.StdEncoding.EncodeToString(sigMAC(tt.key, base)); got != tt.mac {
				t.Fatalf("MAC %s, want %s", got, tt.mac)
			}
		})
	}
}

// TestVerifySignatureComponents checks what the verifier derives from a parsed vector 1 request and how it
// re-serialises the parameters: together they must give the documented base byte for byte.
func TestVerifySignatureComponents(t *testing.T) {
	r := sigReadRequest(t, sigV1Raw)
	p, err := sigParseInput(r.Header.Values("Signature-Input"))
	if err != nil {
		t.Fatal(err)
	}
	if p.serialized != sigV1Member {
		t.Fatalf("serialised parameters\n%s\nwant\n%s", p.serialized, sigV1Member)
	}
	v := &SignatureVerifier{}
	want := map[string]string{
		"@request-target":           "/api/v1/voicebiometrics/ws",
		"@authority":                "audiohook.example.com",
		"audiohook-organization-id": "d7934305-0972-4844-938e-9060eef73d05",
		"audiohook-session-id":      "30b0e395-84d3-4570-ac13-9a62d8f514c0",
		"audiohook-correlation-id":  "e160e428-53e2-487c-977d-96989bf5c99d",
		"x-api-key":                 sigV1APIKey,
		"user-agent":                "GenesysCloud-AudioHook-Client",
	}
	for name, val := range want {
		t.Run(name, func(t *testing.T) {
			got, err := v.componentValue(r, name)
			if err != nil || got != val {
				t.Fatalf("componentValue(%q) = %q, %v; want %q", name, got, err, val)
			}
		})
	}
	t.Run("header instances joined", func(t *testing.T) {
		h := http.Header{}
		h.Add("X-Multi", " a ")
		h.Add("X-Multi", "\tb")
		if got := sigHeaderValue(h, "x-multi"); got != "a, b" {
			t.Fatalf("got %q, want %q", got, "a, b")
		}
	})
}

func sigDecode(tb testing.TB, s string) []byte {
	tb.Helper()
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// sigNewClientRequest builds an upgrade request as the fake Genesys client would, before signing.
func sigNewClientRequest(tb testing.TB, url string) *http.Request {
	tb.Helper()
	r, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		tb.Fatal(err)
	}
	r.Header.Set("Audiohook-Organization-Id", "d7934305-0972-4844-938e-9060eef73d05")
	r.Header.Set("Audiohook-Correlation-Id", "e160e428-53e2-487c-977d-96989bf5c99d")
	r.Header.Set("Audiohook-Session-Id", "30b0e395-84d3-4570-ac13-9a62d8f514c0")
	return r
}

// sigOverTheWire writes r as a client would and parses it back as a server would.
func sigOverTheWire(tb testing.TB, r *http.Request) *http.Request {
	tb.Helper()
	var buf bytes.Buffer
	if err := r.Write(&buf); err != nil {
		tb.Fatal(err)
	}
	return sigReadRequest(tb, buf.String())
}

// TestSignRequest checks SignRequest against bytes computed independently (Python hmac over the documented
// base with expires = created+30).
func TestSignRequest(t *testing.T) {
	r := sigNewClientRequest(t, "https://audiohook.example.com/api/v1/voicebiometrics/ws")
	if err := SignRequest(r, sigV1APIKey, []byte(sigV1Secret), time.Unix(sigV1Created, 0), "VGhpc0lzQVVuaXF1ZU5vbmNl"); err != nil {
		t.Fatal(err)
	}
	wantInput := "sig1=(" + sigV1Comps + `);keyid="SGVsbG8sIEkgYW0gdGhlIEFQSSBrZXkh";nonce="VGhpc0lzQVVuaXF1ZU5vbmNl";alg="hmac-sha256";created=1641013200;expires=1641013230`
	for _, h := range []struct{ name, want string }{
		{"X-Api-Key", sigV1APIKey},
		{"Signature-Input", wantInput},
		{"Signature", "sig1=:13MrOmtEIFb8cH00czAZWdEkgJr9QlnAQABRRF1A2gE=:"},
	} {
		if got := r.Header.Values(h.name); len(got) != 1 || got[0] != h.want {
			t.Errorf("%s: %q, want %q", h.name, got, h.want)
		}
	}
}

// TestSignRequestVerify round-trips SignRequest through the wire into Verify with an injected clock.
func TestSignRequestVerify(t *testing.T) {
	created := time.Date(2026, 11, 3, 10, 0, 0, 0, time.UTC)
	tests := []struct {
		name      string
		url       string
		secret    string
		nonce     string
		authority string
		edit      func(*http.Request) // after signing, before sending
		ok        bool
		why       string
	}{
		{name: "documented endpoint", url: "https://audiohook.example.com/api/v1/voicebiometrics/ws", secret: sigV1Secret, nonce: "VGhpc0lzQVVuaXF1ZU5vbmNl", ok: true},
		{name: "random nonce", url: "https://audiohook.example.com/ws", secret: sigV1Secret, ok: true},
		{name: "local port and query", url: "http://127.0.0.1:8077/api/v1/audiohook/ws?connectionId=abc%20d&x=1", secret: sigV1Secret, ok: true},
		{name: "upper-case host", url: "https://AUDIOHOOK.example.com/ws", secret: sigV1Secret, ok: true},
		{name: "escaped path", url: "https://audiohook.example.com/a%2Fb/ws", secret: sigV1Secret, ok: true},
		{name: "behind a proxy with override", url: "http://10.0.0.7:8080/ws", secret: sigV1Secret, authority: "10.0.0.7:8080", ok: true},
		{name: "no secret", url: "https://audiohook.example.com/ws", ok: true},
		{name: "keys differ", url: "https://audiohook.example.com/ws", secret: "not the configured secret", why: "signature mismatch"},
		{name: "query added after signing", url: "https://audiohook.example.com/ws", secret: sigV1Secret,
			edit: func(r *http.Request) { r.URL.RawQuery = "a=1" }, why: "signature mismatch"},
		{name: "session id changed after signing", url: "https://audiohook.example.com/ws", secret: sigV1Secret,
			edit: func(r *http.Request) { r.Header.Set("Audiohook-Session-Id", "00000000-0000-0000-0000-000000000000") }, why: "signature mismatch"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := sigNewClientRequest(t, tt.url)
			if err := SignRequest(r, sigV1APIKey, []byte(tt.secret), created, tt.nonce); err != nil {
				t.Fatal(err)
			}
			if tt.secret == "" && (r.Header.Get("Signature") != "" || r.Header.Get("Signature-Input") != "") {
				t.Fatalf("signed without a secret: %v", r.Header)
			}
			if tt.edit != nil {
				tt.edit(r)
			}
			keys := StaticKeys{{APIKey: sigV1APIKey, ClientSecret: []byte(sigV1Secret)}}
			if tt.secret == "" {
				keys[0].ClientSecret = nil
			}
			v := &SignatureVerifier{Keys: keys, Now: func() time.Time { return created.Add(2 * time.Second) }, Authority: tt.authority}
			creds, err := v.Verify(sigOverTheWire(t, r))
			sigCheck(t, creds, err, tt.ok, tt.why)
		})
	}
}

func TestSignRequestErrors(t *testing.T) {
	tests := []struct {
		name   string
		url    string
		apiKey string
		nonce  string
		drop   string
	}{
		{name: "session id missing", url: "https://h/ws", apiKey: "k", drop: "Audiohook-Session-Id"},
		{name: "organization id missing", url: "https://h/ws", apiKey: "k", drop: "Audiohook-Organization-Id"},
		{name: "api key empty", url: "https://h/ws", apiKey: ""},
		{name: "api key not ASCII", url: "https://h/ws", apiKey: "clé"},
		{name: "nonce with control character", url: "https://h/ws", apiKey: "k", nonce: "abc\x01defghijklmnopqrstuvwxyz"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := sigNewClientRequest(t, tt.url)
			if tt.drop != "" {
				r.Header.Del(tt.drop)
			}
			if err := SignRequest(r, tt.apiKey, []byte("secret"), time.Unix(sigV1Created, 0), tt.nonce); err == nil {
				t.Fatalf("SignRequest succeeded, headers %v", r.Header)
			}
		})
	}
}

// FuzzVerifySignature fuzzes X-API-KEY, Signature-Input and Signature on an otherwise valid vector 1 request.
// Invariant: Verify never panics, fails only with ErrUnauthorized, and succeeds only when the headers are a
// re-spelling of the signed ones: same API key, one Signature-Input member whose canonical serialisation is
// the signed one, and a Signature member under the same label carrying the same MAC bytes. Finding anything
// else that verifies would mean forging HMAC-SHA256 or a hole in what the MAC covers.
func FuzzVerifySignature(f *testing.F) {
	f.Add(sigV1APIKey, sigV1Input, sigV1Sig)
	f.Add(sigV1APIKey, ` sig1=(  "@request-target" "@authority" "audiohook-organization-id" "audiohook-session-id" "audiohook-correlation-id"   "x-api-key" )`+sigV1Params+" ", "sig1=:"+sigV1MAC+":  ")
	f.Add(sigV1APIKey, "a="+sigV1Member, "a=:"+sigV1MAC+":")
	f.Add(sigV1APIKey, sigV1Input+", sig2=()", sigV1Sig)
	f.Add(sigV1APIKey, `sig1=("@request-target" "@authority");keyid="`+sigV1APIKey+`";created=1641013200`, sigV1Sig)
	f.Add("nobody", sigV1Input, sigV1Sig)
	f.Add(sigV1APIKey, "sig1=(", "sig1=:")
	f.Add(sigV1APIKey, "", "")
	f.Add(sigV1APIKey, `sig1=("\"";sf "@authority")`, "sig1=?1;a=@1;b=%\"x\";c=1.5")

	v := sigV1Verifier(sigV1Now)
	wantMAC := sigDecode(f, sigV1MAC)
	f.Fuzz(func(t *testing.T, apiKey, input, sig string) {
		r := sigReadRequest(t, sigV1Raw)
		r.Header.Set("X-Api-Key", apiKey)
		r.Header.Set("Signature-Input", input)
		r.Header.Set("Signature", sig)
		creds, err := v.Verify(r)
		if err != nil {
			if !errors.Is(err, ErrUnauthorized) || strings.Contains(err.Error(), sigV1Secret) {
				t.Fatalf("bad error %v", err)
			}
			return
		}
		if strings.Trim(apiKey, " \t") != sigV1APIKey || creds.APIKey != sigV1APIKey {
			t.Fatalf("verified with API key %q", apiKey)
		}
		in, err := httpsfv.UnmarshalDictionary([]string{input})
		if err != nil || len(in.Names()) != 1 {
			t.Fatalf("verified with Signature-Input %q (%v)", input, err)
		}
		label := in.Names()[0]
		m, _ := in.Get(label)
		list, ok := m.(httpsfv.InnerList)
		if !ok {
			t.Fatalf("verified with Signature-Input %q", input)
		}
		if canon, err := httpsfv.Marshal(list); err != nil || canon != sigV1Member {
			t.Fatalf("verified with Signature-Input %q, canonical %q", input, canon)
		}
		s, err := httpsfv.UnmarshalDictionary([]string{sig})
		if err != nil {
			t.Fatalf("verified with Signature %q (%v)", sig, err)
		}
		sm, _ := s.Get(label)
		item, ok := sm.(httpsfv.Item)
		if got, _ := item.Value.([]byte); !ok || !bytes.Equal(got, wantMAC) {
			t.Fatalf("verified with Signature %q for label %q", sig, label)
		}
	})
}

func BenchmarkVerify(b *testing.B) {
	unknown := strings.Replace(sigV1Raw, "X-API-KEY: "+sigV1APIKey, "X-API-KEY: nobody", 1)
	unknown = strings.Replace(unknown, `keyid="`+sigV1APIKey, `keyid="nobody`, 1)
	for _, bb := range []struct {
		name string
		raw  string
		ok   bool
	}{
		{"valid", sigV1Raw, true},
		{"tampered", strings.Replace(sigV1Raw, "e160e428", "e160e429", 1), false},
		{"unknown-key", unknown, false},
	} {
		b.Run(bb.name, func(b *testing.B) {
			v := sigV1Verifier(sigV1Now)
			r := sigReadRequest(b, bb.raw)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := v.Verify(r); (err == nil) != bb.ok {
					b.Fatal(fmt.Sprint("unexpected result: ", err))
				}
			}
		})
	}
}

func BenchmarkSignRequest(b *testing.B) {
	r := sigNewClientRequest(b, "https://audiohook.example.com/api/v1/voicebiometrics/ws")
	created := time.Unix(sigV1Created, 0)
	b.ReportAllocs()
	for b.Loop() {
		if err := SignRequest(r, sigV1APIKey, []byte(sigV1Secret), created, "VGhpc0lzQVVuaXF1ZU5vbmNl"); err != nil {
			b.Fatal(err)
		}
	}
}
