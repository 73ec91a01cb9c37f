package sip

import (
	"net/netip"
	"strconv"
	"strings"

	"github.com/pion/sdp/v3"

	"github.com/siphook/siphook/rtp"
)

// mediaLine is one m-line of the SRC's offer and what we make of it.
type mediaLine struct {
	media     string // "audio", "video", …
	proto     string // "RTP/AVP", …
	formats   []string
	label     string // a=label (RFC 4574): ties the m-line to a metadata stream
	direction string // the offer's direction: sendonly, recvonly, sendrecv, inactive
	held      bool   // the SRC sends nothing: inactive or recvonly, or a c= address of 0.0.0.0 (RFC 2543 hold)
	recorded  bool   // we give it a port and record it

	// For recorded lines: the audio codec we answer with, DTMF if offered, and the payload map for the stream.
	codecPT   uint8
	codecName string
	dtmfPT    int // -1: none
	payloads  rtp.PayloadMap
}

// analyseOffer reads every m-line of an offer, in order. A line is recorded when it is audio over plain RTP with
// a non-zero port and offers PCMU or PCMA; everything else is answered with port 0.
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
		for _, a := range md.Attributes {
			switch a.Key {
			case "label":
				ml.label = strings.TrimSpace(a.Value)
			case "sendonly", "recvonly", "sendrecv", "inactive":
				ml.direction = a.Key
			case "rtpmap":
				pt, rest, ok := strings.Cut(strings.TrimSpace(a.Value), " ")
				if ok {
					// "pcmu/8000a" (a real Oracle capture) still names PCMU: only the name matters here.
					name, _, _ := strings.Cut(strings.TrimSpace(rest), "/")
					names[pt] = name
				}
			}
		}
		for _, f := range ml.formats {
			pt, err := strconv.ParseUint(f, 10, 7)
			if err != nil {
				continue
			}
			enc := rtp.EncodingUnknown
			if name, ok := names[f]; ok {
				enc = rtp.EncodingByName(name)
			} else {
				enc = rtp.PayloadMap{}.Lookup(uint8(pt)) // static types need no rtpmap
			}
			ml.payloads[uint8(pt)] = enc
			switch enc {
			case rtp.EncodingPCMU, rtp.EncodingPCMA:
				if ml.codecName == "" {
					ml.codecPT, ml.codecName = uint8(pt), map[rtp.Encoding]string{rtp.EncodingPCMU: "PCMU", rtp.EncodingPCMA: "PCMA"}[enc]
				}
			case rtp.EncodingTelephoneEvent:
				if ml.dtmfPT < 0 {
					ml.dtmfPT = int(pt)
				}
			}
		}
		ml.recorded = ml.media == "audio" && ml.proto == "RTP/AVP" && md.MediaName.Port.Value != 0 && ml.codecName != ""
		conn := sd.ConnectionInformation
		if md.ConnectionInformation != nil {
			conn = md.ConnectionInformation
		}
		ml.held = ml.direction == "inactive" || ml.direction == "recvonly" ||
			(conn != nil && conn.Address != nil && (conn.Address.Address == "0.0.0.0" || conn.Address.Address == "::"))
		lines = append(lines, ml)
	}
	return lines
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

// answerSDP builds our answer (or re-INVITE offer) to the SRC's m-lines, in offer order (RFC 3264): recorded
// lines get our port, their label and the given direction; the others get port 0.
func answerSDP(lines []mediaLine, ports []int, addr netip.Addr, sessionID, version uint64, direction string) ([]byte, error) {
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
	next := 0
	for _, ml := range lines {
		md := &sdp.MediaDescription{MediaName: sdp.MediaName{Media: ml.media, Protos: strings.Split(ml.proto, "/")}}
		if !ml.recorded {
			md.MediaName.Formats = ml.formats
			if len(md.MediaName.Formats) == 0 {
				md.MediaName.Formats = []string{"0"}
			}
			sd.MediaDescriptions = append(sd.MediaDescriptions, md)
			continue
		}
		md.MediaName.Port = sdp.RangedPort{Value: ports[next]}
		next++
		pt := strconv.Itoa(int(ml.codecPT))
		md.MediaName.Formats = []string{pt}
		md.WithValueAttribute("rtpmap", pt+" "+ml.codecName+"/8000")
		if ml.dtmfPT >= 0 {
			dtmf := strconv.Itoa(ml.dtmfPT)
			md.MediaName.Formats = append(md.MediaName.Formats, dtmf)
			md.WithValueAttribute("rtpmap", dtmf+" telephone-event/8000")
		}
		if ml.label != "" {
			md.WithValueAttribute("label", ml.label)
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
