package matcher

import (
	"fmt"
	"strconv"
	"strings"
)

// UCID is an Avaya Universal Call ID: node (2 bytes), sequence (2 bytes), timestamp (4 bytes, epoch seconds).
type UCID struct {
	Node, Seq uint16
	Time      uint32
}

// maxUCIDInput bounds the work done on one value: a User-to-User header is at most a few hundred characters.
const maxUCIDInput = 4096

// ParseUCID accepts every form seen on the wire and returns the UCID it carries:
//   - UUI hex carrying the FA08 TLV, with or without a protocol discriminator (00/04), with trailing TLVs
//     (e.g. "04FA08004762C169FA480CC814…"), with or without ";encoding=hex" or other ;params, any case;
//   - bare 16 hex digits (Oracle apkt:ucid "0090D1AD6537E860");
//   - the 20-digit ASCII form "00144536801698162784" (5 node, 5 seq, 10 timestamp digits).
//
// The all-zero UCID carries nothing and is rejected.
func ParseUCID(s string) (UCID, bool) {
	if len(s) > maxUCIDInput {
		return UCID{}, false
	}
	s, _, _ = strings.Cut(s, ";")
	s = strings.TrimSpace(s)
	if len(s) == 20 && isDigits(s) {
		return parseDecimalUCID(s)
	}
	if s == "" || !isHex(s) {
		return UCID{}, false
	}
	h := strings.ToUpper(s)
	if len(h) == 16 {
		return ucidFromHex(h)
	}
	// Walk the UUI as tag-length-value octets, from the start or after a protocol discriminator; try the
	// discriminator first when the value starts like one, so "00FA08…" is not read as tag 00 of length FA.
	offsets := [2]int{0, 2}
	if strings.HasPrefix(h, "00") || strings.HasPrefix(h, "04") {
		offsets = [2]int{2, 0}
	}
	for _, off := range offsets {
		if u, ok := walkTLV(h, off); ok {
			return u, true
		}
	}
	// Not a clean TLV list (odd vendor framing): take the first FA08 on an octet boundary, then anywhere.
	for _, step := range [2]int{2, 1} {
		for i := 0; i+20 <= len(h); i += step {
			if h[i:i+4] == "FA08" {
				return ucidFromHex(h[i+4 : i+20])
			}
		}
	}
	return UCID{}, false
}

// walkTLV looks for the FA08 (UCID, 8 octets) element in a list of TLVs that starts at offset off of the
// upper-case hex string h. It stops at the first element that runs past the end.
func walkTLV(h string, off int) (UCID, bool) {
	for i := off; i+4 <= len(h); {
		tag, _ := strconv.ParseUint(h[i:i+2], 16, 8)
		n, _ := strconv.ParseUint(h[i+2:i+4], 16, 8)
		end := i + 4 + 2*int(n)
		if end > len(h) {
			return UCID{}, false
		}
		if tag == 0xFA && n == 8 {
			return ucidFromHex(h[i+4 : end])
		}
		i = end
	}
	return UCID{}, false
}

func ucidFromHex(h string) (UCID, bool) {
	v, err := strconv.ParseUint(h, 16, 64)
	if err != nil || v == 0 {
		return UCID{}, false
	}
	return UCID{Node: uint16(v >> 48), Seq: uint16(v >> 32), Time: uint32(v)}, true
}

func parseDecimalUCID(s string) (UCID, bool) {
	node, err1 := strconv.ParseUint(s[:5], 10, 16)
	seq, err2 := strconv.ParseUint(s[5:10], 10, 16)
	ts, err3 := strconv.ParseUint(s[10:], 10, 32)
	if err1 != nil || err2 != nil || err3 != nil {
		return UCID{}, false
	}
	u := UCID{Node: uint16(node), Seq: uint16(seq), Time: uint32(ts)}
	if u == (UCID{}) {
		return UCID{}, false
	}
	return u, true
}

// String returns the 20-digit canonical form (NNNNNSSSSSTTTTTTTTTT), the one CTI systems usually show.
func (u UCID) String() string {
	return fmt.Sprintf("%05d%05d%010d", u.Node, u.Seq, u.Time)
}

// Hex returns the 8 octets as 16 upper-case hex digits, the form carried in UUI and apkt:ucid.
func (u UCID) Hex() string {
	return fmt.Sprintf("%04X%04X%08X", u.Node, u.Seq, u.Time)
}

// ParseConversationID returns a Genesys conversation id as a lower-case canonical UUID (8-4-4-4-12), trimming
// spaces, braces, quotes, "<>" and a "urn:uuid:" prefix; false if it is not a UUID. 32 hex digits without
// dashes are accepted too.
func ParseConversationID(s string) (string, bool) {
	if len(s) > 128 {
		return "", false
	}
	s = strings.Trim(s, " \t\r\n{}<>\"")
	if len(s) > 9 && strings.EqualFold(s[:9], "urn:uuid:") {
		s = s[9:]
	}
	switch len(s) {
	case 32:
		if !isHex(s) {
			return "", false
		}
		s = s[:8] + "-" + s[8:12] + "-" + s[12:16] + "-" + s[16:20] + "-" + s[20:]
	case 36:
		for i := range len(s) {
			if i == 8 || i == 13 || i == 18 || i == 23 {
				if s[i] != '-' {
					return "", false
				}
			} else if !isHexDigit(s[i]) {
				return "", false
			}
		}
	default:
		return "", false
	}
	return strings.ToLower(s), true
}

func isDigits(s string) bool {
	for i := range len(s) {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

func isHex(s string) bool {
	for i := range len(s) {
		if !isHexDigit(s[i]) {
			return false
		}
	}
	return true
}

func isHexDigit(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}
