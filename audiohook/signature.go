package audiohook

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/dunglas/httpsfv"
)

// Credentials are what one Genesys organisation configured in its AudioHook integration.
type Credentials struct {
	APIKey       string
	ClientSecret []byte // base64-decoded; empty: the organisation does not sign (only the API key is checked)
}

// KeyStore finds credentials by API key (constant-time friendly: implementations return ok=false for unknown keys).
type KeyStore interface {
	Lookup(apiKey string) (Credentials, bool)
}

// StaticKeys is a KeyStore from a fixed list.
type StaticKeys []Credentials

// Lookup implements KeyStore. It compares SHA-256 digests of the keys in constant time and always walks the
// whole list, so neither the position of a key nor the length of the longest common prefix shows in the timing.
func (s StaticKeys) Lookup(apiKey string) (Credentials, bool) {
	want := sha256.Sum256([]byte(apiKey))
	var found Credentials
	ok := false
	for _, c := range s {
		have := sha256.Sum256([]byte(c.APIKey))
		if subtle.ConstantTimeCompare(have[:], want[:]) == 1 && !ok && c.APIKey != "" {
			found, ok = c, true
		}
	}
	return found, ok
}

// SignatureVerifier checks the upgrade request of an AudioHook connection.
type SignatureVerifier struct {
	Keys      KeyStore
	Now       func() time.Time // default time.Now
	Skew      time.Duration    // default 3s: clock skew tolerated on created/expires
	MaxAge    time.Duration    // default 10s: oldest acceptable `created` (beyond skew)
	Authority string           // if set, the externally visible host used for @authority instead of r.Host (TLS proxies rewrite Host)
}

// ErrUnauthorized is returned for every verification failure; the wrapped detail is for our logs only, never for the peer.
var ErrUnauthorized = errors.New("audiohook: unauthorized")

// The components Genesys covers, in the order it sends them. A verifier must find all of them in
// Signature-Input (in any order); a signer emits them in this order.
var sigRequired = [...]string{
	"@request-target", "@authority",
	"audiohook-organization-id", "audiohook-session-id", "audiohook-correlation-id",
	"x-api-key",
}

const (
	sigAlg        = "hmac-sha256"
	sigLabel      = "sig1" // the label Genesys uses; we accept any label as long as both headers agree
	sigMinNonce   = 22     // 128 bits of base64, what the reference verifier demands
	sigLifetime   = 30 * time.Second
	sigMaxHeader  = 4096 // a Genesys Signature-Input is ~330 bytes; cap parsing work on hostile input
	sigMaxCovered = 16   // six required plus room for headers a future Genesys might add
)

// sigDummyKey stands in for the secret of an unknown API key so that the request takes the same path (parse,
// build the base, compute and compare a MAC) as a known one. Its value is irrelevant: the result is a failure.
var sigDummyKey = make([]byte, 32)

// Verify checks X-API-KEY and, when the key's organisation has a client secret, the Signature and
// Signature-Input headers. It returns the credentials of the verified API key.
//
// A key configured without a secret is accepted on the API key alone, whether or not the request carries a
// signature: that is the policy the organisation was configured with, and refusing signed requests would turn
// a secret added on the Genesys side before ours into an outage. A key with a secret requires a valid signature.
func (v *SignatureVerifier) Verify(r *http.Request) (Credentials, error) {
	apiKey := sigHeaderValue(r.Header, "x-api-key")
	if apiKey == "" {
		return Credentials{}, sigFail("missing X-API-KEY")
	}
	if v.Keys == nil {
		return Credentials{}, sigFail("no key store configured")
	}
	creds, known := v.Keys.Lookup(apiKey)
	if known && len(creds.ClientSecret) == 0 {
		return creds, nil
	}
	key := creds.ClientSecret
	if !known {
		key = sigDummyKey
	}
	err := v.verifySignature(r, apiKey, key)
	if !known {
		// Checked after the MAC so that unknown keys cost what known ones do.
		return Credentials{}, sigFail("unknown API key")
	}
	if err != nil {
		return Credentials{}, err
	}
	return creds, nil
}

// sigFail wraps a log-only detail into ErrUnauthorized.
func sigFail(detail string) error { return fmt.Errorf("%w: %s", ErrUnauthorized, detail) }

// sigParams is a validated Signature-Input member.
type sigParams struct {
	label      string
	covered    []string
	keyid      string
	nonce      string
	created    int64
	expires    int64
	hasExpires bool
	serialized string // canonical serialisation of the inner list: the @signature-params value
}

// verifySignature checks the signature of r against key; apiKey is the request's X-API-KEY.
func (v *SignatureVerifier) verifySignature(r *http.Request, apiKey string, key []byte) error {
	inputs, sigs := r.Header.Values("Signature-Input"), r.Header.Values("Signature")
	if len(inputs) == 0 || len(sigs) == 0 {
		return sigFail("request not signed")
	}
	p, err := sigParseInput(inputs)
	if err != nil {
		return err
	}
	mac, err := sigParseSignature(sigs, p.label)
	if err != nil {
		return err
	}
	if p.keyid != apiKey {
		return sigFail("keyid does not match X-API-KEY")
	}
	if len(p.nonce) < sigMinNonce {
		return sigFail("nonce missing or too short")
	}
	if err := v.checkTime(p); err != nil {
		return err
	}
	comps := make([]sigComponent, len(p.covered))
	for i, name := range p.covered {
		val, err := v.componentValue(r, name)
		if err != nil {
			return err
		}
		comps[i] = sigComponent{name, val}
	}
	want := sigMAC(key, sigBase(comps, p.serialized))
	if !hmac.Equal(want, mac) {
		return sigFail("signature mismatch")
	}
	return nil
}

// sigParseInput parses and validates Signature-Input: a dictionary with exactly one member, an inner list of
// covered component names with the parameters Genesys sends and nothing else. Anything unexpected fails
// rather than being ignored, so a peer cannot steer what the MAC covers.
func sigParseInput(values []string) (sigParams, error) {
	var p sigParams
	dict, err := sigParseDict(values, "Signature-Input")
	if err != nil {
		return p, err
	}
	p.label = dict.Names()[0]
	m, _ := dict.Get(p.label)
	list, ok := m.(httpsfv.InnerList)
	if !ok {
		return p, sigFail("Signature-Input member is not an inner list")
	}
	if len(list.Items) > sigMaxCovered {
		return p, sigFail("Signature-Input covers too many components")
	}
	seen := make(map[string]bool, len(list.Items))
	for _, it := range list.Items {
		name, ok := it.Value.(string)
		if !ok || len(it.Params.Names()) != 0 {
			// Component parameters (sf, key, bs, req, name) change how a value is derived; Genesys uses none.
			return p, sigFail("Signature-Input component is not a plain string")
		}
		if !sigKnownComponent(name) {
			return p, sigFail(fmt.Sprintf("Signature-Input covers unsupported component %q", name))
		}
		if seen[name] {
			return p, sigFail("Signature-Input covers a component twice")
		}
		seen[name] = true
		p.covered = append(p.covered, name)
	}
	for _, name := range sigRequired {
		if !seen[name] {
			return p, sigFail(fmt.Sprintf("Signature-Input does not cover %q", name))
		}
	}
	var hasCreated bool
	for _, k := range list.Params.Names() {
		val, _ := list.Params.Get(k)
		var ok bool
		switch k {
		case "keyid":
			p.keyid, ok = val.(string)
		case "nonce":
			p.nonce, ok = val.(string)
		case "alg":
			// The MAC is always HMAC-SHA256; alg may only confirm it, never switch it.
			var alg string
			alg, ok = val.(string)
			ok = ok && alg == sigAlg
		case "created":
			p.created, ok = val.(int64)
			hasCreated = ok
		case "expires":
			p.expires, ok = val.(int64)
			p.hasExpires = ok
		default:
			return p, sigFail(fmt.Sprintf("Signature-Input has unknown parameter %q", k))
		}
		if !ok {
			return p, sigFail(fmt.Sprintf("Signature-Input parameter %q has a bad value", k))
		}
	}
	if !hasCreated {
		return p, sigFail("Signature-Input has no created parameter")
	}
	// Re-serialise instead of reusing the raw text: what we MAC is exactly what we validated, in one
	// canonical spelling (the reference verifier does the same).
	p.serialized, err = httpsfv.Marshal(list)
	if err != nil {
		return p, sigFail("Signature-Input cannot be serialised")
	}
	return p, nil
}

// sigParseSignature returns the MAC bytes that Signature carries for label.
func sigParseSignature(values []string, label string) ([]byte, error) {
	dict, err := sigParseDict(values, "Signature")
	if err != nil {
		return nil, err
	}
	m, ok := dict.Get(label)
	if !ok {
		return nil, sigFail("Signature has no member with the Signature-Input label")
	}
	it, ok := m.(httpsfv.Item)
	if !ok {
		return nil, sigFail("Signature member is not an item")
	}
	mac, ok := it.Value.([]byte)
	if !ok || len(it.Params.Names()) != 0 {
		return nil, sigFail("Signature member is not a plain byte sequence")
	}
	return mac, nil
}

// sigParseDict parses a structured-field dictionary that must hold exactly one member: Genesys sends one
// signature, and with several we would have to choose, which a peer could exploit.
func sigParseDict(values []string, field string) (*httpsfv.Dictionary, error) {
	n := 0
	for _, s := range values {
		n += len(s)
	}
	if n > sigMaxHeader {
		return nil, sigFail(field + " too long")
	}
	dict, err := httpsfv.UnmarshalDictionary(values)
	if err != nil {
		return nil, sigFail(field + " is not a valid structured-field dictionary")
	}
	if len(dict.Names()) != 1 {
		return nil, sigFail(field + " must have exactly one member")
	}
	return dict, nil
}

// sigKnownComponent reports whether we can derive a value for a covered component: the two derived components
// Genesys uses, or any regular header field by its lower-case name. A header that Genesys might add to the
// covered list later only makes the signature stronger, so it is accepted; derived components we do not know
// (@method, @path, @signature-params, …) are refused because we cannot compute them as the signer did.
func sigKnownComponent(name string) bool {
	if name == "@request-target" || name == "@authority" {
		return true
	}
	if name == "" || name == "signature" || name == "signature-input" {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0) {
			return false // not a lower-case field name (RFC 9110 token)
		}
	}
	return true
}

// checkTime enforces now−skew−maxAge ≤ created ≤ now+skew and expires ≥ now−skew.
func (v *SignatureVerifier) checkTime(p sigParams) error {
	now := time.Now
	if v.Now != nil {
		now = v.Now
	}
	skew, maxAge := v.Skew, v.MaxAge
	if skew <= 0 {
		skew = 3 * time.Second
	}
	if maxAge <= 0 {
		maxAge = 10 * time.Second
	}
	t := now()
	created := time.Unix(p.created, 0)
	if created.After(t.Add(skew)) {
		return sigFail("signature created in the future")
	}
	if created.Before(t.Add(-skew - maxAge)) {
		return sigFail("signature too old")
	}
	if p.hasExpires && time.Unix(p.expires, 0).Before(t.Add(-skew)) {
		return sigFail("signature expired")
	}
	return nil
}

// componentValue derives the value of a covered component from the request.
func (v *SignatureVerifier) componentValue(r *http.Request, name string) (string, error) {
	var val string
	switch name {
	case "@request-target":
		// Path and query as on the request line: the client signs url.pathname + url.search.
		val = r.URL.RequestURI()
	case "@authority":
		host := r.Host
		if v.Authority != "" {
			host = v.Authority
		}
		val = sigAuthority(host)
	default:
		if len(r.Header.Values(name)) == 0 {
			return "", sigFail(fmt.Sprintf("covered header %q missing", name))
		}
		val = sigHeaderValue(r.Header, name)
	}
	if val == "" || strings.ContainsAny(val, "\r\n") {
		// A line break would let one value forge further lines of the signature base.
		return "", sigFail(fmt.Sprintf("covered component %q has an unusable value", name))
	}
	return val, nil
}

// sigAuthority canonicalises a host the way the client's url.host does: lower case, default port omitted.
func sigAuthority(host string) string {
	host = strings.ToLower(host)
	for _, port := range []string{":443", ":80"} {
		if h, ok := strings.CutSuffix(host, port); ok {
			return h
		}
	}
	return host
}

// sigHeaderValue is the RFC 9421 value of a header field: each instance trimmed, instances joined with ", ".
func sigHeaderValue(h http.Header, name string) string {
	vals := h.Values(name)
	if len(vals) == 1 {
		return strings.Trim(vals[0], " \t")
	}
	trimmed := make([]string, len(vals))
	for i, s := range vals {
		trimmed[i] = strings.Trim(s, " \t")
	}
	return strings.Join(trimmed, ", ")
}

// sigComponent is one covered component: its identifier and its derived value.
type sigComponent struct{ name, value string }

// sigBase builds the signature base: one `"name": value` line per covered component in the order listed,
// then `"@signature-params": <params>`, joined with \n and no trailing newline. Names are plain lower-case
// identifiers (checked by sigKnownComponent), so quoting needs no escapes.
func sigBase(comps []sigComponent, params string) []byte {
	n := len(`"@signature-params": `) + len(params)
	for _, c := range comps {
		n += len(c.name) + len(c.value) + 5
	}
	b := make([]byte, 0, n)
	for _, c := range comps {
		b = append(b, '"')
		b = append(b, c.name...)
		b = append(b, `": `...)
		b = append(b, c.value...)
		b = append(b, '\n')
	}
	b = append(b, `"@signature-params": `...)
	return append(b, params...)
}

// sigMAC is HMAC-SHA256(key, base).
func sigMAC(key, base []byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write(base)
	return m.Sum(nil)
}

// SignRequest signs an upgrade request as the Genesys client does (covered components in this order:
// "@request-target" "@authority" "audiohook-organization-id" "audiohook-session-id" "audiohook-correlation-id" "x-api-key";
// params keyid, nonce, alg="hmac-sha256", created, expires=created+30s). It sets X-API-KEY, Signature-Input and Signature.
// Used by the fake Genesys client (audiohook/hooktest) and tests. With an empty secret it only sets X-API-KEY.
//
// The Audiohook-* headers must be set before signing. An empty nonce is replaced by 18 random bytes in
// base64 (24 characters), as the reference client does. @authority comes from r.Host, or r.URL.Host when
// r.Host is empty (requests built with http.NewRequest carry the host in both).
func SignRequest(r *http.Request, apiKey string, secret []byte, created time.Time, nonce string) error {
	r.Header.Set("X-API-KEY", apiKey)
	r.Header.Del("Signature-Input")
	r.Header.Del("Signature")
	if len(secret) == 0 {
		return nil
	}
	if nonce == "" {
		b := make([]byte, 18)
		rand.Read(b) // never fails since Go 1.24
		nonce = base64.StdEncoding.EncodeToString(b)
	}
	host := r.Host
	if host == "" {
		host = r.URL.Host
	}
	signer := SignatureVerifier{Authority: host}
	list := httpsfv.InnerList{Params: httpsfv.NewParams()}
	comps := make([]sigComponent, 0, len(sigRequired))
	for _, name := range sigRequired {
		val, err := signer.componentValue(r, name)
		if err != nil {
			return fmt.Errorf("audiohook: sign request: component %q is missing or unusable", name)
		}
		comps = append(comps, sigComponent{name, val})
		list.Items = append(list.Items, httpsfv.NewItem(name))
	}
	list.Params.Add("keyid", apiKey)
	list.Params.Add("nonce", nonce)
	list.Params.Add("alg", sigAlg)
	list.Params.Add("created", created.Unix())
	list.Params.Add("expires", created.Add(sigLifetime).Unix())
	params, err := httpsfv.Marshal(list)
	if err != nil {
		return fmt.Errorf("audiohook: sign request: api key or nonce is not a structured-field string: %w", err)
	}
	input := httpsfv.NewDictionary()
	input.Add(sigLabel, list)
	sig := httpsfv.NewDictionary()
	sig.Add(sigLabel, httpsfv.NewItem(sigMAC(secret, sigBase(comps, params))))
	inputText, err := httpsfv.Marshal(input)
	if err != nil {
		return fmt.Errorf("audiohook: sign request: %w", err)
	}
	sigText, err := httpsfv.Marshal(sig)
	if err != nil {
		return fmt.Errorf("audiohook: sign request: %w", err)
	}
	r.Header.Set("Signature-Input", inputText)
	r.Header.Set("Signature", sigText)
	return nil
}
