package sip

import (
	"bytes"
	"cmp"
	"encoding/xml"
	"errors"
	"io"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/siphook/siphook/matcher"
)

// ErrMetadataUnusable is returned when a metadata body yields nothing at all: no recording root element and
// none of the fields we read.
var ErrMetadataUnusable = errors.New("sip: rs-metadata carries nothing usable")

// ErrMetadataDTD is returned for a metadata document with a DOCTYPE: no SRC needs one, and entity tricks
// (billion laughs, external entities) are the only reason to send one. Nothing in it is used.
var ErrMetadataDTD = errors.New("sip: rs-metadata with a DOCTYPE refused")

// Limits on one metadata document besides its size (maxMetadataBytes).
const (
	maxMetadataDepth    = 64
	maxMetadataElements = 8192
	maxMetadataResyncs  = 32 // restarts after syntax errors
)

// Metadata is what siphook reads from an rs-metadata document (RFC 7865, or the pre-RFC draft dialect Oracle
// and AudioCodes send).
type Metadata struct {
	Dialect      string // "rfc7865", "draft", "unknown"
	DataMode     string // "complete" or "partial" (lower-cased; camelCase dataMode and "Partial" accepted); "" if absent
	SessionIDs   []string
	Participants []Participant
	Streams      []MetadataStream
	UCIDs        []string            // raw values of any *ucid element (apkt:ucid, ac:AvayaUCID…), trimmed, in document order, deduplicated
	Headers      map[string][]string // apkt:header label → values (keys lower-cased), from any participant or session
	Malformed    bool                // the XML was not well-formed; fields come from a partial parse plus the fallback scan
}

// Participant is one party of the recorded call.
type Participant struct {
	ID, Name, AOR string
	Send, Recv    []string // stream ids this participant sends/receives (draft: <send>/<recv> inside <participant>; RFC 7865: <participantstreamassoc participant_id=…><send>…)
	CallingParty  *bool    // apkt:callingParty when present
	Left          bool     // its participantsessionassoc has a disassociate-time: it left the call
}

// MetadataStream ties a metadata stream id to the a=label of an SDP m-line.
type MetadataStream struct{ ID, Label string }

// ParseMetadata parses rs-metadata XML. It returns an error only when nothing usable was found or the input
// exceeds 64 KiB (ErrMetadataTooLarge).
//
// Elements are matched by local name, so any namespace or prefix works (Oracle's "http:/acmepacket.com" typo,
// Ribbon's tns:, no namespace at all). A document with a DOCTYPE is refused (ErrMetadataDTD) and entities are
// never expanded. When the XML is not
// well-formed (real Oracle captures carry a raw <sip:…> inside apkt:request-uri) the parse skips the bad
// markup and goes on, and a regular-expression scan adds the identifiers we must never miss.
func ParseMetadata(b []byte) (*Metadata, error) {
	if len(b) > maxMetadataBytes {
		return nil, ErrMetadataTooLarge
	}
	if bytes.Contains(bytes.ToUpper(b), []byte("<!DOCTYPE")) {
		return nil, ErrMetadataDTD
	}
	p := &metadataParser{
		m:         &Metadata{Headers: map[string][]string{}},
		byID:      map[string]int{},
		part:      -1,
		assoc:     -1,
		sessAssoc: -1,
		stream:    -1,
	}
	p.parse(b)
	if p.m.Malformed {
		p.scan(b)
	}
	if !p.usable() {
		return nil, ErrMetadataUnusable
	}
	p.m.Dialect = p.dialect()
	return p.m, nil
}

// ConversationIDs returns the x-inin-cnv values (lower-case canonical UUIDs via matcher.ParseConversationID), deduplicated.
func (m *Metadata) ConversationIDs() []string {
	if m == nil {
		return nil
	}
	var ids []string
	for _, v := range m.Headers["x-inin-cnv"] {
		if id, ok := matcher.ParseConversationID(v); ok && !slices.Contains(ids, id) {
			ids = append(ids, id)
		}
	}
	return ids
}

// SenderOf returns the participant that sends the stream with the given SDP label, or nil.
func (m *Metadata) SenderOf(label string) *Participant {
	if m == nil || label == "" {
		return nil
	}
	for _, s := range m.Streams {
		if s.Label != label || s.ID == "" {
			continue
		}
		for i := range m.Participants {
			if slices.Contains(m.Participants[i].Send, s.ID) {
				return &m.Participants[i]
			}
		}
	}
	return nil
}

// Roles of the open elements the parser keeps context for.
const (
	metaPlain = iota
	metaParticipant
	metaAssoc
	metaStream
	metaHeader
	metaSessionAssoc
)

type metadataElement struct {
	name string // local name, lower-cased
	role int
}

type metadataParser struct {
	m        *Metadata
	stack    []metadataElement
	text     []byte // character data since the last start or end tag
	elements int

	root      string // local name of the root element, lower-cased
	rootNS    string // namespace URI bound to the root element's prefix
	idAttrs   bool   // participant/stream/session ids in draft "id" attributes
	rfcAttrs  bool   // … in RFC 7865 "*_id" attributes
	byID      map[string]int
	part      int // index in m.Participants of the open <participant>, or -1
	assoc     int // index in m.Participants named by the open <participantstreamassoc>, or -1
	sessAssoc int // index in m.Participants named by the open <participantsessionassoc>, or -1
	stream    int // index in m.Streams of the open <stream>, or -1
	header    string
	gotValues bool // the open apkt:header had <value> children
}

// parse runs the token loop. RawToken neither checks end tags against start tags nor resolves prefixes, so the
// parser keeps its own stack and can restart after a syntax error.
func (p *metadataParser) parse(b []byte) {
	off := 0
	for resyncs := 0; off < len(b); resyncs++ {
		d := xml.NewDecoder(bytes.NewReader(b[off:]))
		d.Strict = false // unknown entities stay literal text instead of failing the parse
		d.CharsetReader = func(_ string, r io.Reader) (io.Reader, error) { return r, nil }
		err := p.tokens(d)
		if err == nil || err == io.EOF {
			break
		}
		p.m.Malformed = true
		if err == errMetadataLimit || resyncs == maxMetadataResyncs {
			return
		}
		// Skip the offending bytes and carry on with the stack as it is: to the next '<' when the error was in
		// text, past the next '>' when it was inside a tag (a raw <sip:…> URI).
		pos := min(off+int(d.InputOffset()), len(b))
		lt, gt := bytes.IndexByte(b[pos:], '<'), bytes.IndexByte(b[pos:], '>')
		switch {
		case gt >= 0 && (lt < 0 || gt < lt):
			pos += gt + 1
		case lt >= 0:
			pos += lt
		default:
			pos = len(b)
		}
		off = max(pos, off+1)
	}
	if len(p.stack) > 0 {
		p.m.Malformed = true // unclosed elements at the end
	}
}

var errMetadataLimit = errors.New("metadata depth or element limit")

func (p *metadataParser) tokens(d *xml.Decoder) error {
	for {
		tok, err := d.RawToken()
		if err != nil {
			return err
		}
		switch t := tok.(type) {
		case xml.StartElement:
			p.elements++
			if p.elements > maxMetadataElements || len(p.stack) >= maxMetadataDepth {
				return errMetadataLimit
			}
			p.start(t)
		case xml.EndElement:
			p.end(strings.ToLower(t.Name.Local))
		case xml.CharData:
			p.text = append(p.text, t...)
		case xml.Directive:
			// Another directive (DOCTYPEs are refused before parsing): nothing we understand.
			p.m.Malformed = true
		}
	}
}

func (p *metadataParser) start(t xml.StartElement) {
	name := strings.ToLower(t.Name.Local)
	p.text = p.text[:0]
	attr := func(names ...string) string {
		for _, n := range names {
			for _, a := range t.Attr {
				if a.Name.Space == "" && strings.EqualFold(a.Name.Local, n) {
					return strings.TrimSpace(a.Value)
				}
			}
		}
		return ""
	}
	e := metadataElement{name: name}
	depth := len(p.stack)
	switch {
	case depth == 0 && p.root == "":
		p.root = name
		for _, a := range t.Attr {
			if t.Name.Space == "" && a.Name.Space == "" && a.Name.Local == "xmlns" ||
				t.Name.Space != "" && a.Name.Space == "xmlns" && a.Name.Local == t.Name.Space {
				p.rootNS = strings.TrimSpace(a.Value)
			}
		}
	case depth == 1 && name == "session":
		p.noteIDStyle(t, "session_id")
		if id := attr("session_id", "id"); id != "" && !slices.Contains(p.m.SessionIDs, id) {
			p.m.SessionIDs = append(p.m.SessionIDs, id)
		}
	case depth == 1 && name == "participant":
		p.noteIDStyle(t, "participant_id")
		p.part = p.participant(attr("participant_id", "id"))
		e.role = metaParticipant
	case depth == 1 && name == "participantstreamassoc":
		if id := attr("participant_id"); id != "" {
			p.assoc = p.participant(id)
			e.role = metaAssoc
		}
	case depth == 1 && name == "participantsessionassoc":
		if id := attr("participant_id"); id != "" {
			p.sessAssoc = p.participant(id)
			e.role = metaSessionAssoc
		}
	case depth == 1 && name == "stream":
		p.noteIDStyle(t, "stream_id")
		p.m.Streams = append(p.m.Streams, MetadataStream{ID: attr("stream_id", "id", "streamid"), Label: attr("label")})
		p.stream = len(p.m.Streams) - 1
		e.role = metaStream
	case name == "nameid" && p.part >= 0:
		if aor := attr("aor"); aor != "" && p.m.Participants[p.part].AOR == "" {
			p.m.Participants[p.part].AOR = aor
		}
	case name == "header" && p.header == "":
		if label := strings.ToLower(attr("label")); label != "" {
			p.header, p.gotValues = label, false
			e.role = metaHeader
		}
	}
	p.stack = append(p.stack, e)
}

// end closes the element named name. A name that matches an open ancestor closes everything above it too; one
// that matches nothing is ignored. Both mean the XML is not well-formed.
func (p *metadataParser) end(name string) {
	i := len(p.stack) - 1
	for i >= 0 && p.stack[i].name != name {
		i--
	}
	if i < 0 {
		p.m.Malformed = true
		p.text = p.text[:0]
		return
	}
	if i != len(p.stack)-1 {
		p.m.Malformed = true
	}
	value := strings.TrimSpace(string(p.text))
	p.text = p.text[:0]
	for len(p.stack) > i {
		e := p.stack[len(p.stack)-1]
		p.stack = p.stack[:len(p.stack)-1]
		p.closeElement(e, value)
		value = "" // text belongs to the innermost element only
	}
}

func (p *metadataParser) closeElement(e metadataElement, value string) {
	parent := ""
	if len(p.stack) > 0 {
		parent = p.stack[len(p.stack)-1].name
	}
	switch e.role {
	case metaParticipant:
		p.part = -1
	case metaAssoc:
		p.assoc = -1
	case metaSessionAssoc:
		p.sessAssoc = -1
	case metaStream:
		p.stream = -1
	case metaHeader:
		if !p.gotValues {
			p.addHeader(p.header, value)
		}
		p.header = ""
	}
	if value == "" {
		return
	}
	switch {
	case e.name == "datamode":
		if v := strings.ToLower(value); v == "complete" || v == "partial" {
			p.m.DataMode = v
		}
	case strings.HasSuffix(e.name, "ucid"):
		if !slices.Contains(p.m.UCIDs, value) {
			p.m.UCIDs = append(p.m.UCIDs, value)
		}
	case e.name == "value" && p.header != "":
		p.gotValues = true
		p.addHeader(p.header, value)
	case e.name == "send" || e.name == "recv":
		p.addStreamRef(e.name, value)
	case e.name == "id" && (parent == "send" || parent == "recv"):
		p.addStreamRef(parent, value) // old BroadWorks dialect: <send><id>…</id></send>
	case e.name == "disassociate-time" && p.sessAssoc >= 0:
		p.m.Participants[p.sessAssoc].Left = true
	case e.name == "label" && p.stream >= 0:
		if p.m.Streams[p.stream].Label == "" {
			p.m.Streams[p.stream].Label = value
		}
	case p.part >= 0:
		pt := &p.m.Participants[p.part]
		switch e.name {
		case "name":
			if pt.Name == "" {
				pt.Name = value
			}
		case "aor":
			if pt.AOR == "" {
				pt.AOR = value
			}
		case "callingparty":
			if v, err := strconv.ParseBool(value); err == nil {
				pt.CallingParty = &v
			}
		}
	}
}

// participant returns the index of the participant with the given id, adding it when new. Participant
// elements and participantstreamassoc elements name the same participants, in either order.
func (p *metadataParser) participant(id string) int {
	if i, ok := p.byID[id]; ok && id != "" {
		return i
	}
	p.m.Participants = append(p.m.Participants, Participant{ID: id})
	i := len(p.m.Participants) - 1
	if id != "" {
		p.byID[id] = i
	}
	return i
}

func (p *metadataParser) addStreamRef(kind, id string) {
	i := p.assoc
	if i < 0 {
		i = p.part
	}
	if i < 0 {
		return
	}
	pt := &p.m.Participants[i]
	list := &pt.Send
	if kind == "recv" {
		list = &pt.Recv
	}
	if !slices.Contains(*list, id) {
		*list = append(*list, id)
	}
}

func (p *metadataParser) addHeader(label, v string) {
	if v == "" || label == "" || slices.Contains(p.m.Headers[label], v) {
		return
	}
	p.m.Headers[label] = append(p.m.Headers[label], v)
}

// noteIDStyle records which attribute style names ids, for telling the dialect of a document without namespace.
func (p *metadataParser) noteIDStyle(t xml.StartElement, rfcName string) {
	for _, a := range t.Attr {
		switch strings.ToLower(a.Name.Local) {
		case rfcName:
			p.rfcAttrs = true
		case "id":
			p.idAttrs = true
		}
	}
}

func (p *metadataParser) dialect() string {
	if p.root != "recording" {
		return "unknown" // includes the old BroadWorks urn:ietf:params:xml:ns:siprec recording_metadata
	}
	switch p.rootNS {
	case "urn:ietf:params:xml:ns:recording:1":
		return "rfc7865"
	case "urn:ietf:params:xml:ns:recording":
		return "draft"
	case "":
		switch {
		case p.rfcAttrs && !p.idAttrs:
			return "rfc7865"
		case p.idAttrs && !p.rfcAttrs:
			return "draft"
		}
	}
	return "unknown"
}

func (p *metadataParser) usable() bool {
	m := p.m
	return strings.HasPrefix(p.root, "recording") || m.DataMode != "" || len(m.SessionIDs) > 0 ||
		len(m.Participants) > 0 || len(m.Streams) > 0 || len(m.UCIDs) > 0 || len(m.Headers) > 0
}

// Fallback patterns for the identifiers we must never miss, used on XML that is not well-formed.
var (
	metadataUCIDRE   = regexp.MustCompile(`(?i)<(?:[\w.-]+:)?\w*ucid\b[^>]*>([^<]*)<`)
	metadataCnvRE    = regexp.MustCompile(`(?is)\blabel\s*=\s*["']x-inin-cnv["'][^>]*>(.*?)</(?:[\w.-]+:)?header\s*>`)
	metadataValueRE  = regexp.MustCompile(`(?i)<(?:[\w.-]+:)?value\b[^>]*>([^<]*)<`)
	metadataLabelRE  = regexp.MustCompile(`(?i)<(?:[\w.-]+:)?label\s*>([^<]*)<`)
	metadataMarkupRE = regexp.MustCompile(`<[^>]*>`)
)

// scan adds what the fallback patterns find and the token parse did not.
func (p *metadataParser) scan(b []byte) {
	for _, sm := range metadataUCIDRE.FindAllSubmatch(b, -1) {
		if v := strings.TrimSpace(string(sm[1])); v != "" && !slices.Contains(p.m.UCIDs, v) {
			p.m.UCIDs = append(p.m.UCIDs, v)
		}
	}
	for _, sm := range metadataCnvRE.FindAllSubmatch(b, -1) {
		values := metadataValueRE.FindAllSubmatch(sm[1], -1)
		for _, v := range values {
			p.addHeader("x-inin-cnv", strings.TrimSpace(string(v[1])))
		}
		if len(values) == 0 {
			p.addHeader("x-inin-cnv", strings.TrimSpace(string(metadataMarkupRE.ReplaceAll(sm[1], nil))))
		}
	}
	for _, sm := range metadataLabelRE.FindAllSubmatch(b, -1) {
		label := strings.TrimSpace(string(sm[1]))
		if label != "" && !slices.ContainsFunc(p.m.Streams, func(s MetadataStream) bool { return s.Label == label }) {
			p.m.Streams = append(p.m.Streams, MetadataStream{Label: label})
		}
	}
}

// Merge applies a partial update (RFC 7865 datamode "partial": only what changed) to a copy of m and returns
// it: participants and streams are matched by id, known fields overwritten, new ones added; identifiers
// accumulate. A participant's stream associations are replaced only when the update names some.
func (m *Metadata) Merge(update *Metadata) *Metadata {
	out := *m
	out.SessionIDs = appendNew(slices.Clone(m.SessionIDs), update.SessionIDs...)
	out.UCIDs = appendNew(slices.Clone(m.UCIDs), update.UCIDs...)
	out.Malformed = m.Malformed || update.Malformed
	out.Headers = make(map[string][]string, len(m.Headers)+len(update.Headers))
	for k, v := range m.Headers {
		out.Headers[k] = slices.Clone(v)
	}
	for k, v := range update.Headers {
		out.Headers[k] = appendNew(out.Headers[k], v...)
	}
	out.Participants = slices.Clone(m.Participants)
	for _, p := range update.Participants {
		i := slices.IndexFunc(out.Participants, func(q Participant) bool { return q.ID == p.ID })
		if i < 0 {
			out.Participants = append(out.Participants, p)
			continue
		}
		q := &out.Participants[i]
		q.Name = cmp.Or(p.Name, q.Name)
		q.AOR = cmp.Or(p.AOR, q.AOR)
		if p.CallingParty != nil {
			q.CallingParty = p.CallingParty
		}
		q.Left = q.Left || p.Left
		if len(p.Send) > 0 || len(p.Recv) > 0 {
			q.Send, q.Recv = p.Send, p.Recv
		}
	}
	out.Streams = slices.Clone(m.Streams)
	for _, s := range update.Streams {
		if i := slices.IndexFunc(out.Streams, func(t MetadataStream) bool { return t.ID == s.ID }); i >= 0 {
			out.Streams[i].Label = cmp.Or(s.Label, out.Streams[i].Label)
		} else {
			out.Streams = append(out.Streams, s)
		}
	}
	return &out
}

func appendNew(list []string, values ...string) []string {
	for _, v := range values {
		if !slices.Contains(list, v) {
			list = append(list, v)
		}
	}
	return list
}
