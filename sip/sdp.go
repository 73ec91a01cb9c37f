package sip

import (
	"bytes"
	"errors"
	"fmt"
	"slices"

	"github.com/pion/sdp/v3"
)

// ErrSDPTooLarge is returned for an SDP over maxSDPBytes or with more than maxSDPMedia m-lines.
var ErrSDPTooLarge = errors.New("sip: SDP too large")

const (
	maxSDPBytes = 64 << 10
	maxSDPMedia = 32
)

// Line order that pion/sdp/v3 insists on (RFC 8866 §5). r= sorts after every t= so each repeat still follows
// a t= line; media-level lines keep m first.
var (
	sdpSessionOrder = map[byte]int{'v': 0, 'o': 1, 's': 2, 'i': 3, 'u': 4, 'e': 5, 'p': 6, 'c': 7, 'b': 8, 't': 9, 'r': 10, 'z': 11, 'k': 12, 'a': 13}
	sdpMediaOrder   = map[byte]int{'m': 0, 'i': 1, 'c': 2, 'b': 3, 'k': 4, 'a': 5}
	// Session-level types pion accepts once only; later duplicates are dropped.
	sdpSessionOnce = map[byte]bool{'v': true, 'o': true, 's': true, 'i': true, 'u': true, 'e': true, 'p': true, 'c': true, 'z': true, 'k': true}
)

// NormalizeSDP rewrites raw SDP so pion/sdp/v3's strict line-order parser accepts what real SRCs send:
// CRLF/LF/CR line ends, blank lines and trailing spaces dropped, lines without "x=" shape dropped,
// session-level lines stable-sorted into v o s i u e p c b t r z k a order, media-level lines into m i c b k a order,
// missing s= ("s=-") and t= ("t=0 0") inserted, missing v=0 inserted. Output uses CRLF.
//
// Lines of a type that has no place at their level are dropped, as are repeats of session-level lines that
// may appear once. A v= line after other lines starts a second, pasted description: it and everything after
// it are dropped. Input without a single SDP line gives nil.
func NormalizeSDP(raw []byte) []byte {
	var session [][]byte
	var media [][][]byte // one slice of lines per m-section, m= first
	seen := map[byte]bool{}
	for line := range sdpLines(raw) {
		typ := line[0]
		if typ == 'v' && (len(session) > 0 || len(media) > 0) {
			break
		}
		switch {
		case typ == 'm':
			media = append(media, [][]byte{line})
		case len(media) > 0:
			if _, ok := sdpMediaOrder[typ]; ok {
				media[len(media)-1] = append(media[len(media)-1], line)
			}
		default:
			if _, ok := sdpSessionOrder[typ]; !ok || sdpSessionOnce[typ] && seen[typ] {
				continue
			}
			seen[typ] = true
			session = append(session, line)
		}
	}
	if len(session) == 0 && len(media) == 0 {
		return nil
	}
	for _, def := range []string{"v=0", "s=-", "t=0 0"} {
		if !seen[def[0]] {
			session = append(session, []byte(def))
		}
	}
	byOrder := func(order map[byte]int) func(a, b []byte) int {
		return func(a, b []byte) int { return order[a[0]] - order[b[0]] }
	}
	slices.SortStableFunc(session, byOrder(sdpSessionOrder))
	var out bytes.Buffer
	for _, l := range session {
		out.Write(l)
		out.WriteString("\r\n")
	}
	for _, sec := range media {
		slices.SortStableFunc(sec, byOrder(sdpMediaOrder))
		for _, l := range sec {
			out.Write(l)
			out.WriteString("\r\n")
		}
	}
	return out.Bytes()
}

// sdpLines yields the trimmed lines of raw that have the "x=" shape (a lower-case letter and '='), split at
// CRLF, LF or CR.
func sdpLines(raw []byte) func(yield func([]byte) bool) {
	return func(yield func([]byte) bool) {
		for len(raw) > 0 {
			i := bytes.IndexAny(raw, "\r\n")
			line := raw
			if i < 0 {
				raw = nil
			} else {
				line, raw = raw[:i], raw[i+1:]
			}
			line = bytes.TrimSpace(line)
			if len(line) < 2 || line[0] < 'a' || line[0] > 'z' || line[1] != '=' {
				continue
			}
			if !yield(line) {
				return
			}
		}
	}
}

// ParseSDP normalises and unmarshals (github.com/pion/sdp/v3). Caps input at 64 KiB and at most 32 m-lines (ErrSDPTooLarge).
func ParseSDP(raw []byte) (*sdp.SessionDescription, error) {
	if len(raw) > maxSDPBytes {
		return nil, ErrSDPTooLarge
	}
	norm := NormalizeSDP(raw)
	if norm == nil {
		return nil, errors.New("sip: parse SDP: no SDP lines")
	}
	if bytes.Count(norm, []byte("\nm=")) > maxSDPMedia {
		return nil, fmt.Errorf("%w: more than %d m-lines", ErrSDPTooLarge, maxSDPMedia)
	}
	sd := &sdp.SessionDescription{}
	if err := sd.UnmarshalString(string(norm)); err != nil {
		return nil, fmt.Errorf("sip: parse SDP: %w", err)
	}
	return sd, nil
}
