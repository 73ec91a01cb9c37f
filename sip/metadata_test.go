package sip

import (
	"bytes"
	"errors"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/siphook/siphook/matcher"
)

// corpusSippMessage returns the first message a sipp scenario sends (the CDATA of its first <send>), with the
// indentation sipp strips removed.
func corpusSippMessage(t testing.TB, name string) []byte {
	t.Helper()
	raw := corpusRead(t, name)
	_, rest, ok := bytes.Cut(raw, []byte("<![CDATA["))
	msg, _, ok2 := bytes.Cut(rest, []byte("]]>"))
	if !ok || !ok2 {
		t.Fatalf("%s: no CDATA message", name)
	}
	var out []byte
	for line := range bytes.Lines(bytes.TrimLeft(msg, "\r\n")) {
		out = append(out, bytes.TrimLeft(line, " \t")...)
	}
	return out
}

// corpusMetadata returns every metadata document in the corpus by sample name: metadata parts of multipart
// bodies, metadata-only bodies and files, the abbreviated AWS examples (from "<?xml" on) and the metadata of
// the project's sipp scenario.
func corpusMetadata(t testing.TB) map[string][]byte {
	t.Helper()
	docs := map[string][]byte{}
	for _, name := range corpusFiles(t) {
		if strings.HasPrefix(name, "rfc7865-aws-") {
			raw := corpusRead(t, name)
			docs[name] = raw[bytes.Index(raw, []byte("<?xml")):]
			continue
		}
		ct, body, ok := corpusBody(t, name)
		if !ok {
			continue
		}
		if got, err := ParseSIPRECBody(ct, body); err == nil && got.Metadata != nil {
			docs[name] = got.Metadata
		}
	}
	const sipp = "sipp/project-checks/uac_oracle_like_inactive_reinvite.xml"
	ct, body := corpusMessage(corpusSippMessage(t, sipp))
	got, err := ParseSIPRECBody(ct, body)
	if err != nil || got.Metadata == nil {
		t.Fatalf("%s: no metadata: %v", sipp, err)
	}
	docs[sipp] = got.Metadata
	if len(docs) < 70 {
		t.Fatalf("found %d metadata documents, want more than 70", len(docs))
	}
	return docs
}

func TestParseMetadataSamples(t *testing.T) {
	hasElement := func(doc []byte, local string) bool {
		return regexp.MustCompile(`(?i)<(\w+:)?` + local + `\b`).Match(doc)
	}
	for name, doc := range corpusMetadata(t) {
		for _, v := range []struct {
			name string
			doc  []byte
		}{{"LF", doc}, {"CRLF", corpusCRLF(doc)}} {
			t.Run(name+"/"+v.name, func(t *testing.T) {
				m, err := ParseMetadata(v.doc)
				if errors.Is(err, ErrMetadataDTD) && strings.Contains(name, "xxe") {
					return // TestParseMetadataEntities
				}
				if err != nil {
					t.Fatalf("ParseMetadata: %v", err)
				}
				if !slices.Contains([]string{"rfc7865", "draft", "unknown"}, m.Dialect) {
					t.Errorf("Dialect = %q", m.Dialect)
				}
				if hasElement(doc, "datamode") && m.DataMode == "" && !strings.Contains(name, "malformed") {
					t.Error("datamode element present but DataMode empty")
				}
				if hasElement(doc, "label") && len(m.Streams) == 0 {
					t.Error("label elements present but no streams")
				}
				if hasElement(doc, "participant") && len(m.Participants) == 0 {
					t.Error("participant elements present but no participants")
				}
				if hasElement(doc, `\w*ucid`) && len(m.UCIDs) == 0 {
					t.Error("ucid element present but no UCIDs")
				}
				for _, s := range m.Streams {
					m.SenderOf(s.Label)
				}
			})
		}
	}
}

func TestParseMetadataOracleTemplate(t *testing.T) {
	docs := corpusMetadata(t)
	m, err := ParseMetadata(docs["oracle-sbc-2026-headers-template-INVITE.txt"])
	if err != nil {
		t.Fatal(err)
	}
	yes, no := true, false
	want := &Metadata{
		Dialect:    "draft",
		DataMode:   "complete",
		SessionIDs: []string{"tgfh2ko3QLdt5TI44tJGIg=="},
		Participants: []Participant{
			{ID: "gXnUad4yRbxolQd+Vq1Nrw==", Name: "+19195184357", AOR: "sip:+19195184357@vzb.int", Send: []string{"1VE+elttRGdu+waJ7Ij1mw=="}, CallingParty: &yes},
			{ID: "r3jmmJrDTL50Rpog/r9DQg==", Name: "+18442820485", AOR: "sip:+18442820485@uhc.com", Send: []string{"WQ4ngjQpSmNkf81ApBb0kw=="}, CallingParty: &no},
		},
		Streams: []MetadataStream{
			{ID: "1VE+elttRGdu+waJ7Ij1mw==", Label: "739440565"},
			{ID: "WQ4ngjQpSmNkf81ApBb0kw==", Label: "739440566"},
		},
		UCIDs:   []string{"004762BD69FA4805"},
		Headers: map[string][]string{"call-id": {"wlss-64071c05-73fde93a6638f450@152.190.6.22"}},
	}
	if !reflect.DeepEqual(m, want) {
		t.Errorf("ParseMetadata =\n%+v\nwant\n%+v", m, want)
	}
	if p := m.SenderOf("739440565"); p == nil || p.Name != "+19195184357" {
		t.Errorf("SenderOf(739440565) = %+v", p)
	}
	if p := m.SenderOf("739440566"); p == nil || p.Name != "+18442820485" {
		t.Errorf("SenderOf(739440566) = %+v", p)
	}
	if u, ok := matcher.ParseUCID(m.UCIDs[0]); !ok || u.String() != "00071252771778010117" {
		t.Errorf("apkt:ucid decodes to %v, %v", u, ok)
	}
}

func TestParseMetadataCorpus(t *testing.T) {
	const cnv = "3f2b1c9e-8d4a-4e21-9a7b-5c6d7e8f9a0b"
	tests := []struct {
		file         string
		dialect      string
		dataMode     string
		malformed    bool
		sessionID    string
		participants int
		streams      int
		ucids        []string
		cnv          []string
		headers      map[string]string // label → first value
		senders      map[string]string // SDP label → AOR of the sender, "" for none
		names        []string          // participant names in order
	}{
		{
			file: "sipp/project-checks/uac_oracle_like_inactive_reinvite.xml", dialect: "draft", dataMode: "complete",
			sessionID: "rFaaalmKStJ1EPSB9EUVZw==", participants: 2, streams: 2,
			ucids: []string{"0090D1AD6537E860"}, cnv: []string{cnv},
			senders: map[string]string{"16777219": "sip:+15551230001@carrier.example", "16777220": "sip:+15559870002@byoc.example"},
		},
		{
			file: "oracle-sbc-genesys-2023-4mline-INVITE.txt", dialect: "draft", dataMode: "complete", malformed: true,
			sessionID: "gxwzQvnlSSVhNe2DPctt4Q==", participants: 2, streams: 4, ucids: []string{"0090D1AD6537E860"},
			headers: map[string]string{"call-id": "wlss-51879a67-9C565000-8D9C-2A83-9619-EA8320AF242A-7090@10.29.199.68"},
			senders: map[string]string{
				"268749245": "sip:Genesys@10.29.199.68", "268749247": "sip:Genesys@10.29.199.68",
				"268749246": "sip:record=00U2QRJBLKAF3CCSEDB1Q2LAES0188NT_2023-10-24_15-53-28@127.0.0.1",
			},
		},
		{
			file: "oracle-sbc-genesys-2023-4mline-INVITE-cdata-fixed.txt", dialect: "draft", dataMode: "complete",
			sessionID: "gxwzQvnlSSVhNe2DPctt4Q==", participants: 2, streams: 4, ucids: []string{"0090D1AD6537E860"},
		},
		{
			file: "oracle-sbc-genesys-2024-4mline-INVITE.txt", dialect: "draft", dataMode: "complete", malformed: true,
			sessionID: "Vu4qFY9ESUlyq9aGK4UvmA==", participants: 2, streams: 4, ucids: []string{"00473539660FF5A7"},
			senders: map[string]string{"1006644281": "sip:Genesys@10.28.70.121"},
		},
		{
			file: "oracle-acme-2026-quoted-name-offer-body.txt", dialect: "draft", dataMode: "complete",
			participants: 2, streams: 2, names: []string{`"ECG Tester"`, "+12298558585"},
		},
		{
			file: "synthetic/syn-03-oracle-like-reINVITE-metadata-adds-x-inin-cnv.txt", dialect: "draft", dataMode: "complete",
			participants: 2, streams: 2, ucids: []string{"0090D1AD6537E860"}, cnv: []string{cnv},
			headers: map[string]string{"x-inin-cnv": cnv},
		},
		{
			file: "synthetic/syn-01-oracle-like-initial-INVITE-uui-no-cnv.txt", dialect: "draft", dataMode: "complete",
			participants: 2, streams: 2, ucids: []string{"0090D1AD6537E860"},
		},
		{
			file: "miarec-oracle-sbc-msg01-INVITE.txt", dialect: "draft", dataMode: "complete", malformed: true, // sipp [field0 file="…"] breaks an attribute
			participants: 2, streams: 1,
			headers: map[string]string{"p-asserted-identity": `"PAI-TEST" <sip:[field0 file="tenant-users.csv"]@192.168.50.102>`},
		},
		{
			file: "audiocodes-mediant-ve-INVITE.txt", dialect: "draft", dataMode: "complete",
			sessionID: "0000-0000-0000-0000-bf41fa8f111f3e43", participants: 2, streams: 2,
			senders: map[string]string{"1": "+18888888888@fakeip.com", "2": "+17777777777@fakeip.com"},
		},
		{
			file: "cisco-cube-16.10-INVITE-session-only-metadata.txt", dialect: "rfc7865", dataMode: "complete",
			sessionID: "MIgZ2nTLEemWFaQi1vyb4Q==",
		},
		{
			file: "cisco-cube-drachtio-offer-body.txt", dialect: "rfc7865", dataMode: "complete",
			participants: 2, streams: 2, senders: map[string]string{"1": "sip:7301@35.162.237.204", "2": "sip:7300@35.162.237.204"},
		},
		{
			file: "cisco-cube-drachtio-inactive-offer-body.txt", dialect: "rfc7865", dataMode: "complete", // empty participantstreamassoc
			participants: 2, streams: 2, senders: map[string]string{"1": "", "2": ""},
		},
		{
			file: "connectel-opensips-drachtio-offer-body.txt", dialect: "rfc7865", dataMode: "complete",
			participants: 2, streams: 2, names: []string{"test_user;lang=en-US;id=22", ""},
		},
		{
			file: "avaya-sbce-drachtio-offer2-body.txt", dialect: "rfc7865", dataMode: "complete", // camelCase dataMode
			sessionID: "00FA0800705D4C5DCAAC41", participants: 2, streams: 2,
			senders: map[string]string{"10": "sip:9878942259@212.188.68.145", "20": "sip:ASBCE@asbce.com"},
		},
		{
			file: "miarec-avaya-sbce-msg01-INVITE.txt", dialect: "rfc7865", dataMode: "complete", // empty stream_id
			sessionID: "00FA080001000758A20EFA", participants: 2, streams: 2, senders: map[string]string{"20": ""},
		},
		{
			file: "broadworks-origcall-v4-offer-body.txt", dialect: "unknown", dataMode: "complete", // old siprec dialect
			sessionID: "urn:uuid:7ee4c89f-31d9-41e1-b6f1-8018b79b03d7", participants: 2, streams: 2,
			senders: map[string]string{"1": "sip:user1001@example.test", "2": "sip:15550001002@192.0.2.10;user=phone"},
		},
		{
			file: "broadworks-drachtio-offer1-body-malformed.txt", dialect: "unknown", // tags stripped
		},
		{
			file: "sonus-ribbon-drachtio-offer-body.txt", dialect: "draft", dataMode: "complete", // tns: prefix
			participants: 2, streams: 2, senders: map[string]string{"1": "2249888012@172.16.195.72", "2": "2249888500@172.16.198.55"},
		},
		{
			file: "sonus-ribbon-2026-metadata-body-BYE-partial.txt", dialect: "draft", dataMode: "partial", // "Partial"
			sessionID: "NjUwODA1M2UtNTI4MC0xMA==", participants: 2,
		},
		{
			file: "sonus-ribbon-full-INVITE-no-closing-boundary.txt", dialect: "draft", dataMode: "complete",
			participants: 2, streams: 2, senders: map[string]string{"1": "2245096042@172.16.195.72"},
		},
		{
			file: "sems-procomm-drachtio-offer-body.txt", dialect: "rfc7865", dataMode: "complete",
			participants: 2, streams: 2, senders: map[string]string{"a_leg": "sip:016190200@87.252.209.116", "b_leg": "Extension-016190619@speechpath.ie"},
		},
		{
			file: "miarec-metaswitch-hold-msg01-INVITE.txt", dialect: "draft", dataMode: "complete", participants: 2, streams: 1,
		},
		{
			file: "voiceblender-metadata-no-namespace.xml.txt", dialect: "rfc7865", dataMode: "complete",
			participants: 1, streams: 1, senders: map[string]string{"11": "sip:dave@example.com"},
		},
		{
			file: "voiceblender-metadata-partial-join.xml.txt", dialect: "rfc7865", dataMode: "partial",
			participants: 1, streams: 1, names: []string{"Carol Danvers"},
		},
		{
			file: "synthetic-avaya-3stream-mixed-metadata-body.txt", dialect: "rfc7865", dataMode: "complete",
			participants: 2, streams: 3, senders: map[string]string{"10": "sip:caller@avaya.com", "30": ""},
		},
		{
			file: "rfc7865-aws-example-full-snapshot-INVITE-abbrev.txt", dialect: "rfc7865", dataMode: "complete", malformed: true, // <naSRCme>…</name>
			sessionID: "hVpd7YQgRW2nD22h7q60JQ==", participants: 2, streams: 4, names: []string{"", "Bob"},
			senders: map[string]string{"96": "sip:alice@atlanta.com", "97": "sip:alice@atlanta.com", "98": "sip:bob@biloxy.com"},
		},
		{
			file: "rfc7865-aws-example-hold-partial-update-reINVITE-abbrev.txt", dialect: "rfc7865", dataMode: "partial",
			participants: 2,
		},
		{
			file: "synthetic/thirdparty-loreste-invite-full-bundle.txt", dialect: "rfc7865", dataMode: "complete",
			participants: 2, streams: 2, names: []string{"Alice Smith", "Bob Johnson"}, senders: map[string]string{"1": ""},
		},
	}
	docs := corpusMetadata(t)
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			doc, ok := docs[tt.file]
			if !ok {
				t.Fatal("no metadata found in the sample")
			}
			m, err := ParseMetadata(doc)
			if err != nil {
				t.Fatal(err)
			}
			if m.Dialect != tt.dialect || m.DataMode != tt.dataMode || m.Malformed != tt.malformed {
				t.Errorf("Dialect, DataMode, Malformed = %q, %q, %v; want %q, %q, %v", m.Dialect, m.DataMode, m.Malformed, tt.dialect, tt.dataMode, tt.malformed)
			}
			if tt.sessionID != "" && (len(m.SessionIDs) == 0 || m.SessionIDs[0] != tt.sessionID) {
				t.Errorf("SessionIDs = %v, want %s first", m.SessionIDs, tt.sessionID)
			}
			if len(m.Participants) != tt.participants || len(m.Streams) != tt.streams {
				t.Errorf("%d participants, %d streams; want %d, %d", len(m.Participants), len(m.Streams), tt.participants, tt.streams)
			}
			if !slices.Equal(m.UCIDs, tt.ucids) {
				t.Errorf("UCIDs = %q, want %q", m.UCIDs, tt.ucids)
			}
			if !slices.Equal(m.ConversationIDs(), tt.cnv) {
				t.Errorf("ConversationIDs = %q, want %q", m.ConversationIDs(), tt.cnv)
			}
			for label, value := range tt.headers {
				if got := m.Headers[label]; len(got) == 0 || got[0] != value {
					t.Errorf("Headers[%q] = %q, want %q", label, got, value)
				}
			}
			for label, aor := range tt.senders {
				p := m.SenderOf(label)
				switch {
				case aor == "" && p != nil:
					t.Errorf("SenderOf(%q) = %+v, want none", label, p)
				case aor != "" && (p == nil || p.AOR != aor):
					t.Errorf("SenderOf(%q) = %+v, want AOR %s", label, p, aor)
				}
			}
			if tt.names != nil {
				var names []string
				for _, p := range m.Participants {
					names = append(names, p.Name)
				}
				if !slices.Equal(names, tt.names) {
					t.Errorf("names = %q, want %q", names, tt.names)
				}
			}
		})
	}
}

func TestParseMetadataAvayaSessionIDCarriesUCID(t *testing.T) {
	m, err := ParseMetadata(corpusMetadata(t)["avaya-sbce-long-uui-session-id-metadata-body.txt"])
	if err != nil {
		t.Fatal(err)
	}
	if u, ok := matcher.ParseUCID(m.SessionIDs[0]); !ok || u.String() != "00044000071729888467" {
		t.Errorf("session_id %q decodes to %v, %v", m.SessionIDs[0], u, ok)
	}
}

func TestParseMetadataEntities(t *testing.T) {
	m, err := ParseMetadata(corpusMetadata(t)["synthetic/syn-18-robust-xml-entity-expansion-and-xxe.txt"])
	if !errors.Is(err, ErrMetadataDTD) || m != nil {
		t.Fatalf("a document with a DOCTYPE gave %+v, %v; want ErrMetadataDTD", m, err)
	}
	if _, err := ParseMetadata([]byte(`<?xml version="1.0"?><!doctype r [<!ENTITY x "y">]><recording/>`)); !errors.Is(err, ErrMetadataDTD) {
		t.Errorf("lower-case doctype: %v", err)
	}
}

func TestParseMetadataRobustness(t *testing.T) {
	const (
		open  = `<?xml version="1.0"?><recording xmlns="urn:ietf:params:xml:ns:recording:1"><datamode>complete</datamode>`
		close = `</recording>`
	)
	ids := `<session session_id="s1"><extensiondata xmlns:apkt="http:/acmepacket.com/siprec/extensiondata"><apkt:ucid>0090D1AD6537E860</apkt:ucid></extensiondata></session>` +
		`<participant participant_id="p1"><nameID aor="sip:a@x"><name>A</name></nameID>` +
		`<extensiondata><apkt:header label="X-Inin-Cnv"><value>{3F2B1C9E-8D4A-4E21-9A7B-5C6D7E8F9A0B}</value><value>3f2b1c9e-8d4a-4e21-9a7b-5c6d7e8f9a0b</value></apkt:header></extensiondata></participant>` +
		`<stream stream_id="st1" session_id="s1"><label>11</label></stream>` +
		`<participantstreamassoc participant_id="p1"><send>st1</send></participantstreamassoc>`
	tests := []struct {
		name      string
		doc       string
		wantErr   error
		malformed bool
		check     func(*testing.T, *Metadata)
	}{
		{name: "well-formed reference", doc: open + ids + close, check: metaHasIDs},
		{name: "too large", doc: open + strings.Repeat(" ", maxMetadataBytes) + close, wantErr: ErrMetadataTooLarge},
		{name: "empty", doc: "", wantErr: ErrMetadataUnusable},
		{name: "not xml", doc: "hello world", wantErr: ErrMetadataUnusable},
		{name: "foreign xml", doc: "<foo><bar/></foo>", wantErr: ErrMetadataUnusable},
		{name: "truncated", doc: (open + ids + close)[:len(open+ids)-40], malformed: true, check: func(t *testing.T, m *Metadata) {
			if len(m.UCIDs) != 1 || len(m.ConversationIDs()) != 1 || len(m.Streams) != 1 {
				t.Errorf("truncated document lost identifiers: %+v", m)
			}
		}},
		{name: "raw markup in text", doc: open + `<participant participant_id="p0"><extensiondata><apkt:request-uri><sip:x=1;y=2@h></apkt:request-uri></extensiondata></participant>` + ids + close, malformed: true, check: metaHasIDs},
		{name: "mismatched end tag", doc: open + `<participant participant_id="p0"><nameID><naSRCme>Z</name></nameID></participant>` + ids + close, malformed: true, check: metaHasIDs},
		{name: "stray end tag", doc: open + `</nothing>` + ids + close, malformed: true, check: metaHasIDs},
		{name: "invalid utf-8", doc: open + "<participant participant_id=\"p0\"><nameID><name>\xff\xfe</name></nameID></participant>" + ids + close, malformed: true, check: metaHasIDs},
		{name: "control character", doc: open + "<session session_id=\"s0\">\x01</session>" + ids + close, malformed: true, check: metaHasIDs},
		{name: "latin-1 declaration", doc: `<?xml version="1.0" encoding="ISO-8859-1"?>` + open[len(`<?xml version="1.0"?>`):] + ids + close, check: metaHasIDs},
		{name: "unknown entity stays literal", doc: open + `<participant participant_id="p0"><nameID><name>&foo;</name></nameID></participant>` + ids + close, check: func(t *testing.T, m *Metadata) {
			if m.Participants[0].Name != "&foo;" {
				t.Errorf("Name = %q", m.Participants[0].Name)
			}
		}},
		{name: "external entity refused", doc: `<!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]>` + open + `<session session_id="&x;"/>` + ids + close, wantErr: ErrMetadataDTD},
		{name: "unknown entity left literal", doc: open + `<session session_id="&x;"/>` + ids + close, check: func(t *testing.T, m *Metadata) {
			if m.SessionIDs[0] != "&x;" {
				t.Errorf("SessionIDs = %q", m.SessionIDs)
			}
		}},
		{name: "deep nesting stops the parse, fallback finds ids", doc: open + strings.Repeat("<a>", 2*maxMetadataDepth) + ids + strings.Repeat("</a>", 2*maxMetadataDepth) + close, malformed: true, check: func(t *testing.T, m *Metadata) {
			if !slices.Equal(m.UCIDs, []string{"0090D1AD6537E860"}) || len(m.ConversationIDs()) != 1 || len(m.Streams) != 1 || m.Streams[0].Label != "11" {
				t.Errorf("fallback scan missed identifiers: %+v", m)
			}
		}},
		{name: "element count limit", doc: open + strings.Repeat("<x/>", maxMetadataElements+1) + ids + close, malformed: true, check: func(t *testing.T, m *Metadata) {
			if len(m.UCIDs) != 1 || len(m.ConversationIDs()) != 1 {
				t.Errorf("fallback scan missed identifiers: %+v", m)
			}
		}},
		{name: "header without value children", doc: open + `<participant participant_id="p"><extensiondata><apkt:header label="P-Asserted-Identity"> &lt;sip:a@b&gt; </apkt:header></extensiondata></participant>` + close, check: func(t *testing.T, m *Metadata) {
			if got := m.Headers["p-asserted-identity"]; !slices.Equal(got, []string{"<sip:a@b>"}) {
				t.Errorf("header = %q", got)
			}
		}},
		{name: "cdata value", doc: open + `<participant participant_id="p"><extensiondata><apkt:header label="x-inin-cnv"><value><![CDATA[3f2b1c9e-8d4a-4e21-9a7b-5c6d7e8f9a0b]]></value></apkt:header></extensiondata></participant>` + close, check: func(t *testing.T, m *Metadata) {
			if len(m.ConversationIDs()) != 1 {
				t.Errorf("ConversationIDs = %q", m.ConversationIDs())
			}
		}},
		{name: "assoc before participant and camelCase", doc: `<recording><dataMode>Partial</dataMode><participantstreamassoc participant_id="p"><send>s</send><recv>r</recv></participantstreamassoc><participant participant_id="p"><nameID aor="sip:p@x"/><apkt:callingParty>TRUE</apkt:callingParty></participant><stream stream_id="s"><label>7</label></stream></recording>`, check: func(t *testing.T, m *Metadata) {
			if m.DataMode != "partial" || m.Dialect != "rfc7865" {
				t.Errorf("DataMode, Dialect = %q, %q", m.DataMode, m.Dialect)
			}
			p := m.SenderOf("7")
			if len(m.Participants) != 1 || p == nil || p.AOR != "sip:p@x" || p.CallingParty == nil || !*p.CallingParty || !slices.Equal(p.Recv, []string{"r"}) {
				t.Errorf("participants = %+v", m.Participants)
			}
		}},
		{name: "draft dialect without namespace", doc: `<recording><participant id="p" session="s"><send>st</send></participant><stream id="st" session="s"><label>1</label></stream></recording>`, check: func(t *testing.T, m *Metadata) {
			if m.Dialect != "draft" || m.SenderOf("1") == nil {
				t.Errorf("Dialect = %q, SenderOf(1) = %v", m.Dialect, m.SenderOf("1"))
			}
		}},
		{name: "audiocodes ucid element", doc: open + `<session session_id="s"><extensiondata xmlns:ac="http://AudioCodes"><ac:AvayaUCID xmlns="urn:ietf:params:xml:ns:Avaya">FA080019001038F725B3</ac:AvayaUCID></extensiondata></session>` + close, check: func(t *testing.T, m *Metadata) {
			if !slices.Equal(m.UCIDs, []string{"FA080019001038F725B3"}) {
				t.Errorf("UCIDs = %q", m.UCIDs)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			start := time.Now()
			m, err := ParseMetadata([]byte(tt.doc))
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if err != nil {
				return
			}
			if m.Malformed != tt.malformed {
				t.Errorf("Malformed = %v, want %v", m.Malformed, tt.malformed)
			}
			if tt.check != nil {
				tt.check(t, m)
			}
			if d := time.Since(start); d > 5*time.Second {
				t.Logf("slow parse: %v", d) // reported, not asserted: shared machines are slow
			}
		})
	}
}

// metaHasIDs checks the identifiers of the robustness reference document.
func metaHasIDs(t *testing.T, m *Metadata) {
	t.Helper()
	if !slices.Equal(m.UCIDs, []string{"0090D1AD6537E860"}) {
		t.Errorf("UCIDs = %q", m.UCIDs)
	}
	if got := m.ConversationIDs(); !slices.Equal(got, []string{"3f2b1c9e-8d4a-4e21-9a7b-5c6d7e8f9a0b"}) {
		t.Errorf("ConversationIDs = %q", got)
	}
	if p := m.SenderOf("11"); p == nil || p.AOR != "sip:a@x" || p.Name != "A" {
		t.Errorf("SenderOf(11) = %+v", p)
	}
	if !slices.Contains(m.SessionIDs, "s1") || m.DataMode != "complete" || m.Dialect != "rfc7865" {
		t.Errorf("SessionIDs, DataMode, Dialect = %q, %q, %q", m.SessionIDs, m.DataMode, m.Dialect)
	}
}

func TestSenderOfNone(t *testing.T) {
	var nilMeta *Metadata
	if nilMeta.SenderOf("1") != nil {
		t.Error("nil Metadata has a sender")
	}
	m := &Metadata{Streams: []MetadataStream{{ID: "", Label: "1"}}, Participants: []Participant{{ID: "p", Send: []string{""}}}}
	if m.SenderOf("1") != nil || m.SenderOf("") != nil || m.SenderOf("2") != nil {
		t.Error("sender found for a stream without id, an empty label or an unknown label")
	}
}

func FuzzParseMetadata(f *testing.F) {
	for _, doc := range corpusMetadata(f) {
		f.Add(doc)
	}
	f.Add([]byte(`<recording><participant participant_id="p"><send>s</send></participant><stream stream_id="s"><label>1</label></stream></recording>`))
	f.Fuzz(func(t *testing.T, doc []byte) {
		m, err := ParseMetadata(doc)
		if err != nil {
			return
		}
		if !slices.Contains([]string{"rfc7865", "draft", "unknown"}, m.Dialect) {
			t.Fatalf("Dialect = %q", m.Dialect)
		}
		m.ConversationIDs()
		for _, s := range m.Streams {
			m.SenderOf(s.Label)
		}
	})
}

// BenchmarkParseMetadata parses the Oracle template's rs-metadata (about 2 KB, apkt extensions): once per
// INVITE and per re-INVITE or UPDATE carrying metadata.
func BenchmarkParseMetadata(b *testing.B) {
	doc := corpusMetadata(b)["oracle-sbc-2026-headers-template-INVITE.txt"]
	if doc == nil {
		b.Fatal("no metadata in the Oracle template")
	}
	b.SetBytes(int64(len(doc)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseMetadata(doc); err != nil {
			b.Fatal(err)
		}
	}
}
