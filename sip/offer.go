package sip

import (
	"cmp"
	"net/netip"
	"strconv"
	"strings"

	"github.com/pion/sdp/v3"

	"github.com/siphook/siphook/rtp"
	"github.com/siphook/siphook/sip/sdes"
)

// mediaLine is one m-line of the SRC's offer and what we make of it.
type mediaLine struct {
	media     string // "audio", "video", …
	proto     string // "RTP/AVP", "RTP/SAVP", …
	formats   []string
	label     string // a=label (RFC 4574): ties the m-line to a metadata stream
	direction string // the offer's direction: sendonly, recvonly, sendrecv, inactive
	held      bool   // the SRC sends nothing: inactive or recvonly, or a c= address of 0.0.0.0 (RFC 2543 hold)
	recorded  bool   // we can record it: audio we decode, over RTP or SRTP we can decrypt, on a non-zero port
	refusal   string // why an audio line with a port is not recorded

	// For recorded lines: the codec we answer with (the first the SRC lists that we decode), DTMF if offered,
	// the payload map for the stream and, over SRTP, the SRC's key.
	codec    rtp.Encoding
	codecPT  uint8
	dtmfPT   int // -1: none
	payloads rtp.PayloadMap
	crypto   *sdes.Crypto

	// Set by the session when it binds the line to a stream: our port (0: not recorded) and, over SRTP, our
	// key for the answer.
	port      int
	answerKey *sdes.Crypto
}

// analyseOffer reads every m-line of an offer, in order. A line is recorded when it is audio on a non-zero
// port, offers PCMU, PCMA or G.722, and is plain RTP/AVP or RTP/SAVP with an a=crypto suite we support.
// Opus and G.729 are not decoded: a line offering only those is answered with port 0.
func analyseOffer(sd *sdp.SessionDescription) []mediaLine {
	lines := make([]mediaLine, 0, len(sd.MediaDescriptions))
	for _, md := range sd.MediaDescriptions {
		ml := mediaLine{
			media:     md.MediaName.Media,
			proto:     strings.Join(md.MediaName.Protos, "/"),
			formats:   md.MediaName.Formats,
			direction: "sendrecv",
			dtmfPT:    -1,
			payloads:  rtp.PayloadMap{},
		}
		names := map[string]string{} // payload type → encoding name from a=rtpmap
		var cryptos []string
		for _, a := range md.Attributes {
			switch a.Key {
			case "label":
				ml.label = strings.TrimSpace(a.Value)
			case "sendonly", "recvonly", "sendrecv", "inactive":
				ml.direction = a.Key
			case "crypto":
				cryptos = append(cryptos, a.Value)
			case "rtpmap":
				pt, rest, ok := strings.Cut(strings.TrimSpace(a.Value), " ")
				if ok {
					// "pcmu/8000a" (a real Oracle capture) still names PCMU: only the name matters here.
					name, _, _ := strings.Cut(strings.TrimSpace(rest), "/")
					names[pt] = name
				}
			}
		}
		var unknown []string
		for _, f := range ml.formats {
			pt, err := strconv.ParseUint(f, 10, 7)
			if err != nil {
				continue
			}
			enc := rtp.EncodingUnknown
			name, named := names[f]
			if named {
				enc = rtp.EncodingByName(name)
			} else {
				enc = rtp.PayloadMap{}.Lookup(uint8(pt)) // static types need no rtpmap
			}
			ml.payloads[uint8(pt)] = enc
			switch {
			case enc.SampleRate() > 0:
				if ml.codec == rtp.EncodingUnknown {
					ml.codec, ml.codecPT = enc, uint8(pt)
				}
			case enc == rtp.EncodingTelephoneEvent:
				if ml.dtmfPT < 0 {
					ml.dtmfPT = int(pt)
				}
			case enc == rtp.EncodingUnknown:
				unknown = append(unknown, cmp.Or(name, staticName(pt), f))
			}
		}
		if ml.proto == "RTP/SAVP" {
			if c, ok := sdes.ChooseCrypto(cryptos); ok {
				ml.crypto = &c
			}
		}
		conn := sd.ConnectionInformation
		if md.ConnectionInformation != nil {
			conn = md.ConnectionInformation
		}
		ml.held = ml.direction == "inactive" || ml.direction == "recvonly" ||
			(conn != nil && conn.Address != nil && (conn.Address.Address == "0.0.0.0" || conn.Address.Address == "::"))
		switch {
		case ml.media != "audio" || md.MediaName.Port.Value == 0:
		case ml.proto != "RTP/AVP" && ml.proto != "RTP/SAVP":
			ml.refusal = "transport " + ml.proto + " is not recorded (RTP/AVP and RTP/SAVP with SDES are)"
		case ml.codec == rtp.EncodingUnknown:
			ml.refusal = "no codec we record (PCMU, PCMA, G722) among " + strings.Join(unknown, ", ")
		case ml.proto == "RTP/SAVP" && ml.crypto == nil:
			ml.refusal = "RTP/SAVP without an a=crypto suite we support"
		default:
			ml.recorded = true
		}
		lines = append(lines, ml)
	}
	return lines
}

// staticName names the static payload types an SRC may offer without an rtpmap, for log lines.
func staticName(pt uint64) string {
	switch pt {
	case 3:
		return "GSM"
	case 4:
		return "G723"
	case 18:
		return "G729"
	}
	return ""
}

// allHeld reports whether the SRC holds every recorded line: the call is on hold, the recording pauses.
func allHeld(lines []mediaLine) bool {
	n := 0
	for _, ml := range lines {
		if ml.recorded {
			if !ml.held {
				return false
			}
			n++
		}
	}
	return n > 0
}

// answerSDP builds our answer (or re-INVITE offer) to the SRC's m-lines, in offer order (RFC 3264): lines
// the session bound to a stream get their port, codec, label, the given direction and, over SRTP, our key;
// the others get port 0.
func answerSDP(lines []mediaLine, addr netip.Addr, sessionID, version uint64, direction string) ([]byte, error) {
	addrType := "IP4"
	if addr.Is6() {
		addrType = "IP6"
	}
	sd := &sdp.SessionDescription{
		Origin: sdp.Origin{
			Username: "siphook", SessionID: sessionID, SessionVersion: version,
			NetworkType: "IN", AddressType: addrType, UnicastAddress: addr.String(),
		},
		SessionName:           "siphook",
		ConnectionInformation: &sdp.ConnectionInformation{NetworkType: "IN", AddressType: addrType, Address: &sdp.Address{Address: addr.String()}},
		TimeDescriptions:      []sdp.TimeDescription{{}},
	}
	for _, ml := range lines {
		md := &sdp.MediaDescription{MediaName: sdp.MediaName{Media: ml.media, Protos: strings.Split(ml.proto, "/")}}
		if ml.port == 0 {
			md.MediaName.Formats = ml.formats
			if len(md.MediaName.Formats) == 0 {
				md.MediaName.Formats = []string{"0"}
			}
			sd.MediaDescriptions = append(sd.MediaDescriptions, md)
			continue
		}
		md.MediaName.Port = sdp.RangedPort{Value: ml.port}
		pt := strconv.Itoa(int(ml.codecPT))
		md.MediaName.Formats = []string{pt}
		md.WithValueAttribute("rtpmap", pt+" "+ml.codec.Name()+"/8000") // G.722 too: RFC 3551 §4.5.2
		if ml.dtmfPT >= 0 {
			dtmf := strconv.Itoa(ml.dtmfPT)
			md.MediaName.Formats = append(md.MediaName.Formats, dtmf)
			md.WithValueAttribute("rtpmap", dtmf+" telephone-event/8000")
		}
		if ml.label != "" {
			md.WithValueAttribute("label", ml.label)
		}
		if ml.answerKey != nil {
			md.WithValueAttribute("crypto", ml.answerKey.String())
		}
		dir := direction
		if ml.held {
			dir = "inactive" // the SRC is not sending on this line: recvonly would be a wrong answer (RFC 3264 §6.1)
		}
		md.WithPropertyAttribute(dir)
		sd.MediaDescriptions = append(sd.MediaDescriptions, md)
	}
	return sd.Marshal()
}
