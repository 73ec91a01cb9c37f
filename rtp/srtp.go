package rtp

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"

	"github.com/pion/rtp"
	"github.com/pion/srtp/v3"
	"github.com/pion/transport/v5/replaydetector"
)

// SRTP (RFC 3711) with keys from SDES (RFC 4568): the SRC sends with the key of its a=crypto for the m-line, we
// decrypt with one context per m-line key.

const (
	// srtpReplayWindow is the SRTP replay window in packets: 1024 packets are 20 s of 20 ms audio, far more
	// reordering than a recording can use. Packets older than that are dropped as replays.
	srtpReplayWindow = 1024
	// srtcpReplayWindow is the SRTCP replay window in packets (RTCP comes every few seconds).
	srtcpReplayWindow = 128
	// maxPacket is the initial size of the internal output buffer.
	maxPacket = 1500
)

var (
	// ErrSRTPReplay is returned for a packet already received, or too old for the replay window.
	ErrSRTPReplay = errors.New("rtp: SRTP packet replayed")
	// ErrSRTPAuth is returned for a packet that fails authentication (wrong key, tampering, unknown MKI, or a
	// rollover counter we guessed wrong).
	ErrSRTPAuth = errors.New("rtp: SRTP authentication failed")
)

// SRTPKey is the SRC's master key for one m-line (from its a=crypto).
type SRTPKey struct {
	Profile srtp.ProtectionProfile
	Key     []byte // master key
	Salt    []byte // master salt
	MKI     []byte // nil when the a=crypto has no MKI
}

// Equal reports same profile, key, salt and MKI (a re-INVITE repeating the key keeps the context, its rollover
// counter and replay window).
func (k SRTPKey) Equal(o SRTPKey) bool {
	return k.Profile == o.Profile && bytes.Equal(k.Key, o.Key) && bytes.Equal(k.Salt, o.Salt) &&
		bytes.Equal(k.MKI, o.MKI)
}

// String names the profile only: an SRTPKey must never print its key.
func (k SRTPKey) String() string {
	if len(k.MKI) > 0 {
		return fmt.Sprintf("%s (MKI %d bytes)", k.Profile, len(k.MKI))
	}
	return k.Profile.String()
}

// GoString keeps %#v from printing the key.
func (k SRTPKey) GoString() string { return "rtp.SRTPKey{" + k.String() + "}" }

// LogValue keeps slog from printing the key.
func (k SRTPKey) LogValue() slog.Value { return slog.StringValue(k.String()) }

// MarshalJSON keeps JSON from carrying the key.
func (k SRTPKey) MarshalJSON() ([]byte, error) { return json.Marshal(k.String()) }

func (k SRTPKey) context(mki []byte, replay *bool) (*srtp.Context, error) {
	var opts []srtp.ContextOption
	if replay != nil { // receiving: replay protection on, and tell us when it rejects a packet
		opts = append(opts,
			srtp.SRTPReplayDetectorFactory(func() replaydetector.ReplayDetector {
				return newFlaggingDetector(replaydetector.New(srtpReplayWindow, maxSRTPIndex), replay)
			}),
			srtp.SRTCPReplayDetectorFactory(func() replaydetector.ReplayDetector {
				return newFlaggingDetector(replaydetector.New(srtcpReplayWindow, maxSRTCPIndex), replay)
			}))
	}
	if len(mki) > 0 {
		opts = append(opts, srtp.MasterKeyIndicator(mki))
	}
	ctx, err := srtp.CreateContext(k.Key, k.Salt, k.Profile, opts...)
	if err != nil {
		return nil, fmt.Errorf("rtp: SRTP context for %s: %w", k.Profile, err)
	}
	return ctx, nil
}

// Largest SRTP packet index (48 bits: ROC and sequence number) and SRTCP index (31 bits), as in pion/srtp.
const (
	maxSRTPIndex  = 1<<48 - 1
	maxSRTCPIndex = 1<<31 - 1
)

// flaggingDetector is pion's sliding window replay detector that also records a rejection, so that Decrypter
// can tell replays from other failures without matching pion's unexported error.
type flaggingDetector struct {
	replaydetector.ReplayDetector
	ca       replaydetector.CheckAccepter
	rejected *bool
}

func newFlaggingDetector(d replaydetector.ReplayDetector, rejected *bool) *flaggingDetector {
	ca, _ := d.(replaydetector.CheckAccepter)
	if ca == nil {
		panic("rtp: replay detector without CheckAccepter") // pion/transport v5's sliding window has it
	}
	return &flaggingDetector{ReplayDetector: d, ca: ca, rejected: rejected}
}

func (f *flaggingDetector) Check(seq uint64) (func() bool, bool) {
	accept, ok := f.ReplayDetector.Check(seq)
	if !ok {
		*f.rejected = true
	}
	return accept, ok
}

func (f *flaggingDetector) CheckSeq(seq uint64) replaydetector.Token {
	t := f.ca.CheckSeq(seq)
	if !t.Passed() {
		*f.rejected = true
	}
	return t
}

func (f *flaggingDetector) Accept(t replaydetector.Token) bool { return f.ca.Accept(t) }

// Decrypter decrypts SRTP and SRTCP packets of one m-line; replay protection is on. Not safe for concurrent use
// (the caller holds its stream lock). Keep it as long as the SRC's key for the m-line stays the same
// (SRTPKey.Equal): it holds each SSRC's rollover counter and replay window.
//
// When the a=crypto carries an MKI but the SRC sends packets without one (some SBCs advertise "|1:4" only for
// compatibility), the first packet that authenticates decides: Decrypter then decrypts without MKI for good.
type Decrypter struct {
	ctx     *srtp.Context
	noMKI   *srtp.Context // MKI advertised and not yet seen: the same key without MKI; nil once decided
	decided bool          // a packet has authenticated with ctx
	replay  bool          // set by the replay detectors when they reject a packet
	hdr     rtp.Header    // reused by pion for every packet
	buf     []byte        // output when the caller gives no dst
	key     SRTPKey
}

// NewDecrypter makes the receive context for k.
func NewDecrypter(k SRTPKey) (*Decrypter, error) {
	k = SRTPKey{Profile: k.Profile, Key: bytes.Clone(k.Key), Salt: bytes.Clone(k.Salt), MKI: bytes.Clone(k.MKI)}
	d := &Decrypter{key: k}
	var err error
	if d.ctx, err = k.context(k.MKI, &d.replay); err != nil {
		return nil, err
	}
	if len(k.MKI) > 0 {
		if d.noMKI, err = k.context(nil, &d.replay); err != nil {
			return nil, err
		}
	}
	return d, nil
}

// SameKey reports whether the Decrypter was made for k: a re-INVITE repeating the key must keep the Decrypter.
func (d *Decrypter) SameKey(k SRTPKey) bool { return d.key.Equal(k) }

// output is where plain text goes: dst when the caller gives one, else the internal buffer.
func (d *Decrypter) output(dst []byte, n int) []byte {
	if dst != nil {
		return dst[:0]
	}
	if cap(d.buf) < n {
		d.buf = make([]byte, max(n, maxPacket))
	}
	return d.buf[:0]
}

// DecryptRTP authenticates and decrypts an SRTP packet and returns the plain RTP packet (header and payload).
// The plain packet is written to dst[:len] when dst has the capacity (dst may be b[:0]: decryption in place),
// else, when dst is nil, to an internal buffer reused by the next call. Steady state allocates nothing.
// Errors are ErrSRTPReplay, ErrSRTPAuth or a malformed-packet error.
func (d *Decrypter) DecryptRTP(dst, b []byte) ([]byte, error) {
	out := d.output(dst, len(b))
	d.replay = false
	p, err := d.ctx.DecryptRTP(out, b, &d.hdr)
	if err == nil {
		d.decide()
		return p, nil
	}
	if d.noMKI != nil && errors.Is(err, srtp.ErrMKINotFound) {
		d.replay = false
		if p, err2 := d.noMKI.DecryptRTP(out, b, &d.hdr); err2 == nil {
			d.ctx, d.noMKI = d.noMKI, nil // the SRC does not send MKI: from now on neither do we expect it
			d.decided = true
			return p, nil
		}
	}
	return nil, d.classify(err)
}

// DecryptRTCP authenticates and decrypts an SRTCP packet and returns the plain RTCP compound packet, with the
// same dst conventions as DecryptRTP.
func (d *Decrypter) DecryptRTCP(dst, b []byte) ([]byte, error) {
	out := d.output(dst, len(b))
	d.replay = false
	p, err := d.ctx.DecryptRTCP(out, b, nil)
	if err == nil {
		d.decide()
		return p, nil
	}
	if d.noMKI != nil && errors.Is(err, srtp.ErrMKINotFound) {
		d.replay = false
		if p, err2 := d.noMKI.DecryptRTCP(out, b, nil); err2 == nil {
			d.ctx, d.noMKI = d.noMKI, nil
			d.decided = true
			return p, nil
		}
	}
	return nil, d.classify(err)
}

// decide drops the no-MKI fallback once a packet authenticated with the MKI.
func (d *Decrypter) decide() {
	if !d.decided {
		d.decided = true
		d.noMKI = nil
	}
}

func (d *Decrypter) classify(err error) error {
	switch {
	case d.replay:
		return ErrSRTPReplay
	case errors.Is(err, srtp.ErrFailedToVerifyAuthTag), errors.Is(err, srtp.ErrMKINotFound):
		return ErrSRTPAuth
	}
	return fmt.Errorf("rtp: SRTP: %w", err)
}

// Encrypter is the sending side, for fake SRCs and the load generator. Not safe for concurrent use.
type Encrypter struct {
	ctx *srtp.Context
	hdr rtp.Header
}

// NewEncrypter makes a send context for k (with k.MKI in every packet when set).
func NewEncrypter(k SRTPKey) (*Encrypter, error) {
	ctx, err := k.context(k.MKI, nil)
	if err != nil {
		return nil, err
	}
	return &Encrypter{ctx: ctx}, nil
}

// EncryptRTP encrypts the plain RTP packet into dst (reallocated when its capacity is short of the packet plus
// MKI and authentication tag) and returns the SRTP packet. dst may be plain[:0] when plain has the capacity.
func (e *Encrypter) EncryptRTP(dst, plain []byte) ([]byte, error) {
	return e.ctx.EncryptRTP(dst, plain, &e.hdr)
}

// EncryptRTCP encrypts a plain RTCP compound packet into dst and returns the SRTCP packet.
func (e *Encrypter) EncryptRTCP(dst, plain []byte) ([]byte, error) {
	return e.ctx.EncryptRTCP(dst, plain, nil)
}
