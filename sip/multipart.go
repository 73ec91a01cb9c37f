package sip

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"strings"
)

// Body parsing errors. The server maps them to responses (413, 415, 400).
var (
	ErrBodyTooLarge            = errors.New("sip: message body too large")
	ErrMetadataTooLarge        = errors.New("sip: rs-metadata too large")
	ErrMalformedBody           = errors.New("sip: malformed message body")
	ErrRequiredPartUnsupported = errors.New("sip: body part with handling=required is not supported")
	ErrUnsupportedContentType  = errors.New("sip: unsupported body content type")
)

// Limits on what one SIP body may make us hold. SIPREC bodies are 2–4 KiB in practice.
const (
	maxBodyBytes     = 1 << 20
	maxMetadataBytes = 64 << 10
	maxBodyParts     = 16
)

// Media types a SIPREC body carries. Both metadata spellings are in use (Metaswitch, AudioCodes, SEMS and
// Avaya send the one without +xml).
const (
	typeSDP             = "application/sdp"
	typeMetadataXML     = "application/rs-metadata+xml"
	typeMetadata        = "application/rs-metadata"
	typeMetadataRequest = "application/rs-metadata-request"
)

// BodyPart is one part of a SIP message body.
type BodyPart struct {
	ContentType string // media type, lower-cased, without parameters ("application/sdp")
	Disposition string // disposition type, lower-cased ("recording-session", "session", "signal", "")
	Handling    string // handling parameter of Content-Disposition, lower-cased ("required", "optional", "")
	Body        []byte
}

// SplitBody splits a body by its Content-Type header value. A non-multipart body is one part; an empty body
// has none. A part whose own Content-Type is missing or unparseable (a real BroadWorks capture sends
// "application/ +xml") gets the type its content shows: SDP or rs-metadata, or "" when neither.
func SplitBody(contentType string, body []byte) ([]BodyPart, error) {
	_, parts, err := splitBody(contentType, body)
	return parts, err
}

// splitBody is SplitBody that also returns the media type of the whole body.
func splitBody(contentType string, body []byte) (string, []BodyPart, error) {
	if len(body) > maxBodyBytes {
		return "", nil, ErrBodyTooLarge
	}
	if len(body) == 0 {
		return "", nil, nil
	}
	mediaType, params := parseBodyType(contentType, body)
	if !strings.HasPrefix(mediaType, "multipart/") {
		return mediaType, []BodyPart{{ContentType: mediaType, Body: body}}, nil
	}
	var parts []BodyPart
	if err := splitMultipart(body, params["boundary"], 0, &parts); err != nil {
		return mediaType, nil, err
	}
	return mediaType, parts, nil
}

// parseBodyType returns the lower-cased media type and parameters of a Content-Type value, falling back to
// sniffing the body when the value is missing or unparseable. A bad parameter (an empty boundary) still
// gives the media type.
func parseBodyType(contentType string, body []byte) (string, map[string]string) {
	mediaType, params, err := mime.ParseMediaType(contentType)
	if err != nil && !errors.Is(err, mime.ErrInvalidMediaParameter) {
		return sniffPartType(body), nil
	}
	return mediaType, params
}

// splitMultipart appends the parts of a multipart body to *parts, one level of nested multipart included.
func splitMultipart(body []byte, boundary string, depth int, parts *[]BodyPart) error {
	body = crlfLineEnds(body)
	found := findBoundary(body)
	if boundary == "" {
		boundary = found // Content-Type without (or with an unreadable) boundary parameter
	}
	if boundary == "" {
		return fmt.Errorf("%w: no multipart boundary", ErrMalformedBody)
	}
	n := len(*parts)
	err := readParts(body, boundary, depth, parts)
	if len(*parts) == n && found != "" && found != boundary {
		// The declared boundary matches nothing in the body: believe the body.
		err = readParts(body, found, depth, parts)
	}
	if err != nil {
		return err
	}
	if len(*parts) == n {
		return fmt.Errorf("%w: no part delimited by %q", ErrMalformedBody, boundary)
	}
	return nil
}

func readParts(body []byte, boundary string, depth int, parts *[]BodyPart) error {
	r := multipart.NewReader(bytes.NewReader(body), boundary)
	for {
		p, err := r.NextRawPart()
		if err != nil {
			// io.EOF after the closing delimiter; anything else is trailing garbage or a missing closing
			// delimiter, which real SRCs send: keep the parts read so far (the caller rejects none at all).
			return nil
		}
		data, err := io.ReadAll(p)
		last := err != nil // no closing delimiter: the part ran to the end of the body
		part := BodyPart{}
		part.ContentType, _ = parseBodyType(p.Header.Get("Content-Type"), data)
		if !strings.HasPrefix(part.ContentType, "multipart/") {
			var cut bool
			if data, cut = cutStrayBoundary(data); cut || last {
				data = bytes.TrimRight(data, "\r\n")
			}
		}
		part.Body = data
		if disp := p.Header.Get("Content-Disposition"); disp != "" {
			d, params, err := mime.ParseMediaType(disp)
			if err != nil && d == "" {
				d, _, _ = strings.Cut(disp, ";")
				d = strings.ToLower(strings.TrimSpace(d))
			}
			part.Disposition, part.Handling = d, strings.ToLower(params["handling"])
		}
		if strings.HasPrefix(part.ContentType, "multipart/") && depth == 0 {
			_, params, _ := mime.ParseMediaType(p.Header.Get("Content-Type"))
			if err := splitMultipart(data, params["boundary"], depth+1, parts); err != nil {
				return err
			}
		} else {
			if len(*parts) == maxBodyParts {
				return fmt.Errorf("%w: more than %d parts", ErrMalformedBody, maxBodyParts)
			}
			*parts = append(*parts, part)
		}
		if last {
			return nil
		}
	}
}

// crlfLineEnds rewrites bare LF line ends to CRLF. mime/multipart copes with all-LF bodies but not with
// bodies that mix LF and CRLF, which hand-edited and templated messages do.
func crlfLineEnds(b []byte) []byte {
	bare := false
	for i, c := range b {
		if c == '\n' && (i == 0 || b[i-1] != '\r') {
			bare = true
			break
		}
	}
	if !bare {
		return b
	}
	out := make([]byte, 0, len(b)+len(b)/32)
	for i, c := range b {
		if c == '\n' && (i == 0 || b[i-1] != '\r') {
			out = append(out, '\r')
		}
		out = append(out, c)
	}
	return out
}

// findBoundary returns the boundary named by the first line that starts with "--", or "".
func findBoundary(body []byte) string {
	for line := range bytes.Lines(body) {
		line = bytes.TrimRight(line, " \t\r\n")
		if b, ok := bytes.CutPrefix(line, []byte("--")); ok && len(b) > 0 {
			return string(bytes.TrimSuffix(b, []byte("--")))
		}
	}
	return ""
}

// cutStrayBoundary cuts a part at a line that looks like a delimiter of some other multipart body (a line
// starting with "--" followed by a Content-* header): a real SIPREC template carries a pasted second SDP
// part under a foreign boundary inside its SDP part. It reports whether it cut.
func cutStrayBoundary(b []byte) ([]byte, bool) {
	off, delim := 0, -1
	for line := range bytes.Lines(b) {
		if delim > 0 && len(line) > 8 && strings.EqualFold(string(line[:8]), "content-") && bytes.IndexByte(line, ':') > 0 {
			return b[:delim], true
		}
		delim = -1
		if bytes.HasPrefix(line, []byte("--")) && len(bytes.TrimSpace(line)) > 2 {
			delim = off
		}
		off += len(line)
	}
	return b, false
}

// sniffPartType names the type of a part whose Content-Type is missing or unparseable.
func sniffPartType(b []byte) string {
	t := bytes.TrimLeft(b, " \t\r\n")
	t = bytes.TrimPrefix(t, []byte("\xef\xbb\xbf")) // UTF-8 byte order mark
	switch {
	case bytes.HasPrefix(t, []byte("v=0")):
		return typeSDP
	case bytes.HasPrefix(t, []byte("<?xml")) || bytes.Contains(t, []byte("<recording")):
		return typeMetadataXML
	case bytes.HasPrefix(t, []byte("--")) && findBoundary(t) != "":
		return "multipart/mixed"
	}
	return ""
}

// SIPRECBody is what a SIPREC INVITE/re-INVITE/UPDATE/BYE body carries.
type SIPRECBody struct {
	SDP             []byte
	Metadata        []byte // rs-metadata XML, nil if absent
	MetadataType    string // "application/rs-metadata+xml" or "application/rs-metadata"
	MetadataRequest bool   // an application/rs-metadata-request part was present
}

// ParseSIPRECBody finds the SDP offer and the rs-metadata in a body. The first part of each kind wins; other
// parts are ignored unless marked handling=required. A body without SDP is not an error (the caller decides).
// With ErrMetadataTooLarge the SDP is still returned, so the caller may record without metadata.
func ParseSIPRECBody(contentType string, body []byte) (SIPRECBody, error) {
	var out SIPRECBody
	mediaType, parts, err := splitBody(contentType, body)
	if err != nil {
		return out, err
	}
	multi := strings.HasPrefix(mediaType, "multipart/")
	var tooLarge error
	for _, p := range parts {
		empty := len(bytes.TrimSpace(p.Body)) == 0 // an empty part is no part
		switch p.ContentType {
		case typeSDP:
			if out.SDP == nil && !empty {
				out.SDP = p.Body
			}
		case typeMetadataXML, typeMetadata:
			switch {
			case len(p.Body) > maxMetadataBytes:
				tooLarge = ErrMetadataTooLarge
			case out.Metadata == nil && !empty:
				out.Metadata, out.MetadataType = p.Body, p.ContentType
			}
		case typeMetadataRequest:
			out.MetadataRequest = true
		default:
			if !multi {
				return SIPRECBody{}, fmt.Errorf("%w: %q", ErrUnsupportedContentType, contentType)
			}
			if p.Handling == "required" {
				return SIPRECBody{}, fmt.Errorf("%w: %q", ErrRequiredPartUnsupported, p.ContentType)
			}
		}
	}
	return out, tooLarge
}
