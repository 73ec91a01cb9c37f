package sip

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The SIPREC sample corpus (testdata/siprec/INDEX.md). Files are stored with LF line ends and a "# source:"
// first line.
const corpusDir = "../testdata/siprec"

// corpusRead returns a sample without its "# source:" line.
func corpusRead(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(corpusDir, name))
	if err != nil {
		t.Fatal(err)
	}
	if bytes.HasPrefix(b, []byte("# source:")) {
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			b = b[i+1:]
		}
	}
	return b
}

// corpusFiles lists the sample message files (top level and synthetic/), relative to corpusDir.
func corpusFiles(t testing.TB) []string {
	t.Helper()
	var names []string
	for _, pattern := range []string{"*.txt", "synthetic/*.txt"} {
		m, err := filepath.Glob(filepath.Join(corpusDir, pattern))
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range m {
			rel, _ := filepath.Rel(corpusDir, p)
			names = append(names, filepath.ToSlash(rel))
		}
	}
	if len(names) < 80 {
		t.Fatalf("found %d sample files in %s, want the whole corpus", len(names), corpusDir)
	}
	return names
}

// corpusMessage splits a sample SIP message at its first blank line and returns the value of its
// Content-Type header and its body. Header lines may be indented (documentation examples); a partial capture
// without the blank line is split where its SDP starts.
func corpusMessage(raw []byte) (contentType string, body []byte) {
	head, body, ok := bytes.Cut(raw, []byte("\n\n"))
	if !ok {
		head, body, _ = bytes.Cut(raw, []byte("\nv=0"))
		if len(body) > 0 {
			body = append([]byte("v=0"), body...)
		}
	}
	for line := range strings.Lines(string(head)) {
		name, value, ok := strings.Cut(line, ":")
		if ok && strings.EqualFold(strings.TrimSpace(name), "content-type") && contentType == "" {
			contentType = strings.TrimSpace(value)
		}
	}
	return contentType, body
}

// corpusBody returns the Content-Type and body a sample carries: a whole message, a "*-body.txt" multipart
// body ("*-body*.txt", whose Content-Type is made from its first "--" line, as INDEX.md says) or a bare XML
// document.
// ok is false for samples without a body.
func corpusBody(t testing.TB, name string) (contentType string, body []byte, ok bool) {
	t.Helper()
	raw := corpusRead(t, name)
	trimmed := bytes.TrimSpace(raw)
	switch {
	case strings.Contains(name, "-body") && bytes.HasPrefix(trimmed, []byte("--")):
		line, _, _ := bytes.Cut(trimmed, []byte("\n"))
		return "multipart/mixed;boundary=" + strings.TrimSpace(string(line[2:])), raw, true
	case strings.Contains(name, "-body") && bytes.HasPrefix(trimmed, []byte("v=0")):
		return typeSDP, raw, true
	case bytes.HasPrefix(trimmed, []byte("<?xml")):
		return typeMetadataXML, raw, true
	}
	ct, body := corpusMessage(raw)
	return ct, body, ct != "" && len(bytes.TrimSpace(body)) > 0
}

// corpusCRLF turns a stored LF sample into the CRLF a real SRC sends.
func corpusCRLF(b []byte) []byte {
	return bytes.ReplaceAll(b, []byte("\n"), []byte("\r\n"))
}

// corpusMultipart lists the samples whose body is multipart with real delimiter lines (the abbreviated AWS
// documentation examples have none).
func corpusMultipart(t testing.TB) []string {
	t.Helper()
	var names []string
	for _, name := range corpusFiles(t) {
		ct, body, ok := corpusBody(t, name)
		if ok && strings.HasPrefix(strings.ToLower(ct), "multipart/") && bytes.Contains(body, []byte("\n--")) {
			names = append(names, name)
		}
	}
	if len(names) < 50 {
		t.Fatalf("found %d multipart samples, want more than 50", len(names))
	}
	return names
}

func TestParseSIPRECBodySamples(t *testing.T) {
	for _, name := range corpusMultipart(t) {
		ct, body, _ := corpusBody(t, name)
		// What the body holds, judged independently of the parser.
		hasSDP := bytes.Contains(body, []byte("\nv=0"))
		hasMeta := bytes.Contains(body, []byte("<?xml")) || bytes.Contains(body, []byte("<recording"))
		for _, variant := range []struct {
			name string
			body []byte
		}{{"LF", body}, {"CRLF", corpusCRLF(body)}} {
			t.Run(name+"/"+variant.name, func(t *testing.T) {
				got, err := ParseSIPRECBody(ct, variant.body)
				if err != nil {
					t.Fatalf("ParseSIPRECBody: %v", err)
				}
				if hasSDP != (got.SDP != nil) {
					t.Errorf("SDP found = %v, body has SDP = %v", got.SDP != nil, hasSDP)
				}
				if got.SDP != nil && !bytes.HasPrefix(bytes.TrimSpace(got.SDP), []byte("v=0")) {
					t.Errorf("SDP part does not start with v=0: %.40q", got.SDP)
				}
				if hasMeta != (got.Metadata != nil) {
					t.Errorf("metadata found = %v, body has metadata = %v", got.Metadata != nil, hasMeta)
				}
				if got.Metadata != nil && got.MetadataType != typeMetadataXML && got.MetadataType != typeMetadata {
					t.Errorf("MetadataType = %q", got.MetadataType)
				}
			})
		}
	}
}

func TestSplitBodySamples(t *testing.T) {
	tests := []struct {
		file string
		want []BodyPart // Body not compared
	}{
		{
			file: "cisco-cube-drachtio-offer-body.txt",
			want: []BodyPart{
				{ContentType: typeSDP, Disposition: "session", Handling: "required"},
				{ContentType: typeMetadataXML, Disposition: "recording-session"},
				{ContentType: "application/gtd", Disposition: "signal", Handling: "optional"},
			},
		},
		{
			file: "broadworks-drachtio-offer1-body-malformed.txt", // "application/ +xml", metadata first
			want: []BodyPart{
				{ContentType: typeMetadataXML, Disposition: "recording-session"},
				{ContentType: typeSDP},
			},
		},
		{
			file: "broadworks-origcall-v4-offer-body.txt",
			want: []BodyPart{
				{ContentType: typeMetadataXML, Disposition: "recording-session"},
				{ContentType: typeSDP},
			},
		},
		{
			file: "audiocodes-mediant-ve-INVITE.txt",
			want: []BodyPart{
				{ContentType: typeSDP},
				{ContentType: typeMetadata, Disposition: "recording-session"},
			},
		},
		{
			file: "oracle-sbc-metadata-only-multipart-INVITE.txt",
			want: []BodyPart{{ContentType: typeMetadataXML, Disposition: "recording-session"}},
		},
		{
			file: "sonus-ribbon-full-INVITE-no-closing-boundary.txt",
			want: []BodyPart{
				{ContentType: typeSDP, Disposition: "session", Handling: "required"},
				{ContentType: typeMetadataXML, Disposition: "recording-session"},
			},
		},
		{
			file: "synthetic/syn-17-robust-quoted-boundary-crlf-mix.txt",
			want: []BodyPart{
				{ContentType: typeSDP},
				{ContentType: typeMetadataXML, Disposition: "recording-session", Handling: "required"},
			},
		},
		{
			file: "miarec-oracle-sbc-msg01-INVITE.txt", // stray --metaswitch-boundary inside the SDP part
			want: []BodyPart{
				{ContentType: typeSDP},
				{ContentType: typeMetadataXML, Disposition: "recording-session"},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			ct, body, _ := corpusBody(t, tt.file)
			for _, b := range [][]byte{body, corpusCRLF(body)} {
				parts, err := SplitBody(ct, b)
				if err != nil {
					t.Fatalf("SplitBody: %v", err)
				}
				if len(parts) != len(tt.want) {
					t.Fatalf("got %d parts, want %d", len(parts), len(tt.want))
				}
				for i, p := range parts {
					p.Body = nil
					if p.ContentType != tt.want[i].ContentType || p.Disposition != tt.want[i].Disposition || p.Handling != tt.want[i].Handling {
						t.Errorf("part %d = %+v, want %+v", i, p, tt.want[i])
					}
				}
			}
		})
	}
}

func TestParseSIPRECBodyStrayBoundary(t *testing.T) {
	ct, body, _ := corpusBody(t, "miarec-oracle-sbc-msg01-INVITE.txt")
	got, err := ParseSIPRECBody(ct, body)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Count(got.SDP, []byte("v=0")) != 1 || bytes.Contains(got.SDP, []byte("metaswitch-boundary")) {
		t.Errorf("SDP part keeps the pasted part:\n%s", got.SDP)
	}
	if !bytes.HasSuffix(got.SDP, []byte("a=sendonly")) {
		t.Errorf("SDP part should end at its last line, got %q", got.SDP[max(0, len(got.SDP)-20):])
	}
}

const (
	multipartSDP  = "v=0\no=- 1 1 IN IP4 192.0.2.1\ns=-\nc=IN IP4 192.0.2.1\nt=0 0\nm=audio 4000 RTP/AVP 0\na=label:1\na=sendonly\n"
	multipartMeta = "<?xml version='1.0' encoding='UTF-8'?>\n<recording xmlns='urn:ietf:params:xml:ns:recording:1'><datamode>complete</datamode></recording>\n"
)

func TestParseSIPRECBody(t *testing.T) {
	big := strings.Repeat("x", maxMetadataBytes+1)
	tests := []struct {
		name        string
		contentType string
		body        string // LF line ends; every case also runs with CRLF unless lfOnly
		lfOnly      bool
		wantSDP     string // substring of the SDP; "" means no SDP
		wantMeta    string // substring of the metadata; "" means no metadata
		wantType    string
		wantRequest bool
		wantErr     error
	}{
		{
			name:        "plain two parts",
			contentType: "multipart/mixed;boundary=b1",
			body:        "--b1\nContent-Type: application/sdp\n\n" + multipartSDP + "\n--b1\nContent-Type: application/rs-metadata+xml\nContent-Disposition: recording-session\n\n" + multipartMeta + "--b1--\n",
			wantSDP:     "a=label:1", wantMeta: "<datamode>complete", wantType: typeMetadataXML,
		},
		{
			name:        "quoted boundary and parameter case",
			contentType: `Multipart/Mixed; Boundary="b 1:x"`,
			body:        "--b 1:x\nContent-Type: application/sdp\n\n" + multipartSDP + "\n--b 1:x\nContent-Type: application/rs-metadata+xml\n\n" + multipartMeta + "--b 1:x--\n",
			wantSDP:     "a=label:1", wantMeta: "<recording", wantType: typeMetadataXML,
		},
		{
			name:        "header name case and spacing",
			contentType: "multipart/mixed;boundary=b1",
			body:        "--b1\ncontent-type:application/sdp \n\n" + multipartSDP + "\n--b1\nCONTENT-TYPE:   APPLICATION/RS-METADATA+XML\ncontent-disposition: Recording-Session ; Handling=Required\n\n" + multipartMeta + "--b1--\n",
			wantSDP:     "a=label:1", wantMeta: "<recording", wantType: typeMetadataXML,
		},
		{
			name:        "missing closing delimiter",
			contentType: "multipart/mixed;boundary=b1",
			body:        "--b1\nContent-Type: application/sdp\n\n" + multipartSDP + "\n--b1\nContent-Type: application/rs-metadata+xml\n\n" + multipartMeta,
			wantSDP:     "a=label:1", wantMeta: "</recording>", wantType: typeMetadataXML,
		},
		{
			name:        "mixed line ends",
			contentType: "multipart/mixed;boundary=b1",
			body:        "--b1\r\nContent-Type: application/sdp\r\n\r\n" + multipartSDP + "\n--b1\nContent-Type: application/rs-metadata+xml\r\n\n" + multipartMeta + "--b1--\r\n",
			lfOnly:      true,
			wantSDP:     "a=label:1", wantMeta: "<recording", wantType: typeMetadataXML,
		},
		{
			name:        "blank line inside the SDP part",
			contentType: "multipart/mixed;boundary=b1",
			body:        "--b1\nContent-Type: application/sdp\n\n" + multipartSDP + "\nm=audio 4002 RTP/AVP 0\na=label:2\n\n--b1--\n",
			wantSDP:     "a=label:2",
		},
		{
			name:        "garbage part content type sniffed as metadata",
			contentType: "multipart/mixed;boundary=b1",
			body:        "--b1\nContent-Type:application/ +xml\nContent-Disposition:recording-session\n\n<recording_metadata xmlns=\"urn:ietf:params:xml:ns:siprec\">x</recording_metadata>\n--b1\nContent-Type: application/sdp\n\n" + multipartSDP + "--b1--\n",
			wantSDP:     "a=label:1", wantMeta: "<recording_metadata", wantType: typeMetadataXML,
		},
		{
			name:        "parts without content type sniffed",
			contentType: "multipart/mixed;boundary=b1",
			body:        "--b1\n\n" + multipartSDP + "\n--b1\n\n" + multipartMeta + "--b1--\n",
			wantSDP:     "a=label:1", wantMeta: "<recording", wantType: typeMetadataXML,
		},
		{
			name:        "content type without boundary",
			contentType: "multipart/mixed",
			body:        "\n--b1\nContent-Type: application/sdp\n\n" + multipartSDP + "\n--b1--\n",
			wantSDP:     "a=label:1",
		},
		{
			name:        "content type with unparseable boundary parameter",
			contentType: "multipart/mixed; boundary=",
			body:        "--b1\nContent-Type: application/sdp\n\n" + multipartSDP + "\n--b1--\n",
			wantSDP:     "a=label:1",
		},
		{
			name:        "declared boundary does not match the body",
			contentType: "multipart/mixed;boundary=other",
			body:        "--b1\nContent-Type: application/sdp\n\n" + multipartSDP + "\n--b1--\n",
			wantSDP:     "a=label:1",
		},
		{
			name:        "preamble and delimiter whitespace",
			contentType: "multipart/mixed;boundary=b1",
			body:        "  \nThis is a preamble.\n--b1 \nContent-Type: application/sdp\n\n" + multipartSDP + "\n--b1-- \nepilogue\n",
			wantSDP:     "a=label:1",
		},
		{
			name:        "stray boundary-like line inside a part",
			contentType: "multipart/mixed;boundary=b1",
			body:        "--b1\nContent-Type: application/sdp\n\n" + multipartSDP + "\n--other-boundary \nContent-Type: application/sdp\n\nv=0\nm=audio 9 RTP/AVP 8\n\n--b1\nContent-Type: application/rs-metadata\n\n" + multipartMeta + "--b1--\n",
			wantSDP:     "a=sendonly", wantMeta: "<recording", wantType: typeMetadata,
		},
		{
			name:        "metadata first and unknown optional part",
			contentType: "multipart/mixed;boundary=b1",
			body:        "--b1\nContent-Type: application/rs-metadata\nContent-Disposition: recording-session\n\n" + multipartMeta + "--b1\nContent-Type: application/gtd\nContent-Disposition: signal;handling=optional\n\nIAM,\n--b1\nContent-Type: application/sdp\nContent-Disposition: session;handling=required\n\n" + multipartSDP + "--b1--\n",
			wantSDP:     "a=label:1", wantMeta: "<recording", wantType: typeMetadata,
		},
		{
			name:        "unknown required part",
			contentType: "multipart/mixed;boundary=b1",
			body:        "--b1\nContent-Type: application/sdp\n\n" + multipartSDP + "--b1\nContent-Type: application/isup\nContent-Disposition: signal;handling=required\n\nxx\n--b1--\n",
			wantErr:     ErrRequiredPartUnsupported,
		},
		{
			name:        "metadata request part",
			contentType: "multipart/mixed;boundary=b1",
			body:        "--b1\nContent-Type: application/rs-metadata-request\nContent-Disposition: recording-session\n\n\n--b1--\n",
			wantRequest: true,
		},
		{
			name:        "multipart without sdp",
			contentType: "multipart/mixed;boundary=b1",
			body:        "--b1\nContent-Type: application/rs-metadata+xml\n\n" + multipartMeta + "--b1--\n",
			wantMeta:    "<recording", wantType: typeMetadataXML,
		},
		{
			name:        "nested multipart alternative",
			contentType: "multipart/mixed;boundary=outer",
			body:        "--outer\nContent-Type: multipart/alternative;boundary=inner\n\n--inner\nContent-Type: application/sdp\n\n" + multipartSDP + "--inner--\n--outer\nContent-Type: application/rs-metadata+xml\n\n" + multipartMeta + "--outer--\n",
			wantSDP:     "a=label:1", wantMeta: "<recording", wantType: typeMetadataXML,
		},
		{
			name:        "no delimiter at all",
			contentType: "multipart/mixed;boundary=b1",
			body:        "Content-Type: application/sdp\n\n" + multipartSDP,
			wantErr:     ErrMalformedBody,
		},
		{
			name:        "too many parts",
			contentType: "multipart/mixed;boundary=b1",
			body:        strings.Repeat("--b1\nContent-Type: text/plain\n\nx\n", maxBodyParts+1) + "--b1--\n",
			wantErr:     ErrMalformedBody,
		},
		{
			name:        "metadata part too large",
			contentType: "multipart/mixed;boundary=b1",
			body:        "--b1\nContent-Type: application/rs-metadata+xml\n\n<recording>" + big + "</recording>\n--b1\nContent-Type: application/sdp\n\n" + multipartSDP + "--b1--\n",
			wantSDP:     "a=label:1", // still returned alongside the error
			wantErr:     ErrMetadataTooLarge,
		},
		{
			name:        "body too large",
			contentType: "application/sdp",
			body:        strings.Repeat("a=x\n", maxBodyBytes/4+1),
			lfOnly:      true,
			wantErr:     ErrBodyTooLarge,
		},
		{
			name:        "bare sdp",
			contentType: "application/sdp",
			body:        multipartSDP,
			wantSDP:     "a=label:1",
		},
		{
			name:        "bare metadata without +xml",
			contentType: "application/rs-metadata; charset=UTF-8",
			body:        multipartMeta,
			wantMeta:    "<recording", wantType: typeMetadata,
		},
		{
			name:        "bare metadata request",
			contentType: "application/rs-metadata-request",
			body:        "\n",
			wantRequest: true,
		},
		{
			name:        "unsupported body type",
			contentType: "text/plain",
			body:        "hello\n",
			wantErr:     ErrUnsupportedContentType,
		},
		{
			name:        "no content type, sniffed sdp",
			contentType: "",
			body:        multipartSDP,
			wantSDP:     "a=label:1",
		},
		{
			name:        "no content type, unrecognisable",
			contentType: "",
			body:        "hello\n",
			wantErr:     ErrUnsupportedContentType,
		},
		{
			name:        "empty body",
			contentType: "multipart/mixed;boundary=b1",
			body:        "",
		},
	}
	for _, tt := range tests {
		variants := []string{"LF", "CRLF"}
		if tt.lfOnly {
			variants = variants[:1]
		}
		for _, v := range variants {
			t.Run(tt.name+"/"+v, func(t *testing.T) {
				body := []byte(tt.body)
				if v == "CRLF" {
					body = corpusCRLF(body)
				}
				got, err := ParseSIPRECBody(tt.contentType, body)
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("err = %v, want %v", err, tt.wantErr)
				}
				if tt.wantSDP == "" && got.SDP != nil {
					t.Errorf("SDP = %q, want none", got.SDP)
				}
				if tt.wantSDP != "" && !bytes.Contains(got.SDP, []byte(tt.wantSDP)) {
					t.Errorf("SDP = %q, want it to contain %q", got.SDP, tt.wantSDP)
				}
				if tt.wantMeta == "" && got.Metadata != nil {
					t.Errorf("Metadata = %.60q, want none", got.Metadata)
				}
				if tt.wantMeta != "" && !bytes.Contains(got.Metadata, []byte(tt.wantMeta)) {
					t.Errorf("Metadata = %.60q, want it to contain %q", got.Metadata, tt.wantMeta)
				}
				if got.MetadataType != tt.wantType {
					t.Errorf("MetadataType = %q, want %q", got.MetadataType, tt.wantType)
				}
				if got.MetadataRequest != tt.wantRequest {
					t.Errorf("MetadataRequest = %v, want %v", got.MetadataRequest, tt.wantRequest)
				}
			})
		}
	}
}

func FuzzParseSIPRECBody(f *testing.F) {
	for _, name := range corpusMultipart(f) {
		ct, body, _ := corpusBody(f, name)
		f.Add(ct, body)
		f.Add(ct, corpusCRLF(body))
	}
	f.Add("multipart/mixed", []byte("--b\r\n\r\nv=0\r\n--b--"))
	f.Add("", []byte("<?xml version='1.0'?><recording/>"))
	f.Fuzz(func(t *testing.T, ct string, body []byte) {
		got, err := ParseSIPRECBody(ct, body)
		if err == nil && len(got.Metadata) > maxMetadataBytes {
			t.Fatalf("metadata of %d bytes passed the cap", len(got.Metadata))
		}
		parts, err := SplitBody(ct, body)
		if err == nil && len(parts) > maxBodyParts {
			t.Fatalf("%d parts passed the cap", len(parts))
		}
	})
}
