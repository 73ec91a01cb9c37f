package sip

import (
	"bytes"
	"errors"
	"regexp"
	"strings"
	"testing"

	"github.com/pion/sdp/v3"
)

// corpusSippKeyword matches the [bracketed] keywords of sipp templates (miarec-*, sipp/).
var corpusSippKeyword = regexp.MustCompile(`\[[a-z_]+(?:\+\d+)?\]`)

// corpusFillSipp replaces sipp keywords with values a real message would carry.
func corpusFillSipp(b []byte) []byte {
	return corpusSippKeyword.ReplaceAllFunc(b, func(k []byte) []byte {
		switch s := string(k); {
		case strings.HasSuffix(s, "_ip]"):
			return []byte("192.0.2.10")
		case strings.HasSuffix(s, "_ip_type]"):
			return []byte("4")
		case strings.Contains(s, "port"):
			return []byte("40000")
		}
		return k
	})
}

func TestParseSDPSamples(t *testing.T) {
	n := 0
	for _, name := range corpusFiles(t) {
		ct, body, ok := corpusBody(t, name)
		if !ok {
			continue
		}
		got, err := ParseSIPRECBody(ct, body)
		if err != nil || got.SDP == nil {
			continue
		}
		n++
		t.Run(name, func(t *testing.T) {
			raw := corpusFillSipp(got.SDP)
			for _, b := range [][]byte{raw, corpusCRLF(raw)} {
				sd, err := ParseSDP(b)
				if err != nil {
					t.Fatalf("ParseSDP: %v\n%s", err, NormalizeSDP(b))
				}
				if want := bytes.Count(raw, []byte("\nm=")); len(sd.MediaDescriptions) != want {
					t.Errorf("got %d m-lines, the part has %d", len(sd.MediaDescriptions), want)
				}
			}
		})
	}
	if n < 70 {
		t.Errorf("only %d samples carried SDP", n)
	}
}

func TestParseSDP(t *testing.T) {
	const (
		head = "v=0\no=- 1 2 IN IP4 192.0.2.1\ns=-\n"
		m1   = "m=audio 4000 RTP/AVP 0 101\na=rtpmap:0 PCMU/8000\na=label:1\na=sendonly\n"
	)
	tests := []struct {
		name      string
		sdp       string
		wantMedia int
		check     func(t *testing.T, sd *sdp.SessionDescription)
	}{
		{name: "t before c (OpenSIPS)", sdp: "v=0\no=- 1 2 IN IP4 192.0.2.1\ns=-\nt=0 0\nc=IN IP4 192.0.2.9\n" + m1, wantMedia: 1, check: sdpWantSessionConn("192.0.2.9")},
		{name: "b before c", sdp: head + "b=AS:64\nc=IN IP4 192.0.2.9\nt=0 0\n" + m1, wantMedia: 1, check: sdpWantSessionConn("192.0.2.9")},
		{name: "a before t", sdp: head + "c=IN IP4 192.0.2.9\na=recvonly\nt=0 0\n" + m1, wantMedia: 1, check: sdpWantSessionConn("192.0.2.9")},
		{name: "i after c", sdp: head + "c=IN IP4 192.0.2.9\ni=info\nt=0 0\n" + m1, wantMedia: 1},
		{name: "missing s", sdp: "v=0\no=- 1 2 IN IP4 192.0.2.1\nc=IN IP4 192.0.2.9\nt=0 0\n" + m1, wantMedia: 1},
		{name: "missing t", sdp: head + "c=IN IP4 192.0.2.9\n" + m1, wantMedia: 1},
		{name: "missing v", sdp: "o=- 1 2 IN IP4 192.0.2.1\ns=-\nc=IN IP4 192.0.2.9\nt=0 0\n" + m1, wantMedia: 1},
		{name: "missing s and t", sdp: "v=0\no=- 1 2 IN IP4 192.0.2.1\n" + m1, wantMedia: 1},
		{name: "duplicate session c keeps the first", sdp: head + "c=IN IP4 192.0.2.9\nc=IN IP4 192.0.2.8\nt=0 0\n" + m1, wantMedia: 1, check: sdpWantSessionConn("192.0.2.9")},
		{name: "blank line between m-sections", sdp: head + "c=IN IP4 192.0.2.9\nt=0 0\n" + m1 + "\n" + strings.ReplaceAll(m1, "label:1", "label:2"), wantMedia: 2, check: sdpWantLabels("1", "2")},
		{name: "no c at all", sdp: head + "t=0 0\n" + m1, wantMedia: 1, check: func(t *testing.T, sd *sdp.SessionDescription) {
			if sd.ConnectionInformation != nil || sd.MediaDescriptions[0].ConnectionInformation != nil {
				t.Error("connection information invented")
			}
		}},
		{name: "media a before c", sdp: head + "t=0 0\nm=audio 4000 RTP/AVP 0\na=label:1\nc=IN IP4 192.0.2.7\n", wantMedia: 1, check: func(t *testing.T, sd *sdp.SessionDescription) {
			if c := sd.MediaDescriptions[0].ConnectionInformation; c == nil || c.Address.Address != "192.0.2.7" {
				t.Errorf("media c = %+v", c)
			}
		}},
		{name: "lower-case pcmu", sdp: head + "t=0 0\nm=audio 4000 RTP/AVP 0\na=rtpmap:0 pcmu/8000\n", wantMedia: 1, check: sdpWantAttr(0, "rtpmap", "0 pcmu/8000")},
		{name: "pcmu/8000a typo", sdp: head + "t=0 0\nm=audio 4000 RTP/AVP 0\na=rtpmap:0 pcmu/8000a\n", wantMedia: 1, check: sdpWantAttr(0, "rtpmap", "0 pcmu/8000a")},
		{name: "CR line ends and trailing spaces", sdp: strings.ReplaceAll(head+"t=0 0  \n"+m1, "\n", " \r"), wantMedia: 1, check: sdpWantLabels("1")},
		{name: "garbage lines", sdp: "Content-Type: application/sdp\n" + head + "t=0 0\nX=1\n==\nfoo\n" + m1 + "--boundary\n", wantMedia: 1},
		{name: "pasted second description dropped", sdp: head + "t=0 0\n" + m1 + "v=0\no=- 3 3 IN IP4 192.0.2.2\ns=-\nt=0 0\nm=audio 5000 RTP/AVP 8\n", wantMedia: 1, check: sdpWantLabels("1")},
		{name: "misplaced t at media level dropped", sdp: head + "t=0 0\n" + m1 + "t=0 0\n", wantMedia: 1},
		{name: "video m-lines", sdp: head + "c=IN IP4 192.0.2.9\nt=0 0\n" + m1 + "m=video 0 RTP/AVP 96\nm=video 4004 RTP/AVPF 96\na=rtpmap:96 H264/90000\n", wantMedia: 3},
	}
	for _, tt := range tests {
		for _, v := range []string{"LF", "CRLF"} {
			t.Run(tt.name+"/"+v, func(t *testing.T) {
				raw := []byte(tt.sdp)
				if v == "CRLF" {
					raw = corpusCRLF(raw)
				}
				sd, err := ParseSDP(raw)
				if err != nil {
					t.Fatalf("ParseSDP: %v\n%s", err, NormalizeSDP(raw))
				}
				if len(sd.MediaDescriptions) != tt.wantMedia {
					t.Errorf("got %d m-lines, want %d", len(sd.MediaDescriptions), tt.wantMedia)
				}
				if tt.check != nil {
					tt.check(t, sd)
				}
			})
		}
	}
}

func sdpWantSessionConn(addr string) func(*testing.T, *sdp.SessionDescription) {
	return func(t *testing.T, sd *sdp.SessionDescription) {
		t.Helper()
		if c := sd.ConnectionInformation; c == nil || c.Address == nil || c.Address.Address != addr {
			t.Errorf("session c = %+v, want %s", c, addr)
		}
	}
}

func sdpWantLabels(want ...string) func(*testing.T, *sdp.SessionDescription) {
	return func(t *testing.T, sd *sdp.SessionDescription) {
		t.Helper()
		var got []string
		for _, md := range sd.MediaDescriptions {
			l, _ := md.Attribute("label")
			got = append(got, l)
		}
		if strings.Join(got, ",") != strings.Join(want, ",") {
			t.Errorf("labels = %v, want %v", got, want)
		}
	}
}

func sdpWantAttr(media int, key, want string) func(*testing.T, *sdp.SessionDescription) {
	return func(t *testing.T, sd *sdp.SessionDescription) {
		t.Helper()
		if got, _ := sd.MediaDescriptions[media].Attribute(key); got != want {
			t.Errorf("m-line %d a=%s = %q, want %q", media, key, got, want)
		}
	}
}

func TestParseSDPSampleDetails(t *testing.T) {
	sdpOf := func(t *testing.T, name string) []byte {
		t.Helper()
		ct, body, _ := corpusBody(t, name)
		got, err := ParseSIPRECBody(ct, body)
		if err != nil || got.SDP == nil {
			t.Fatalf("no SDP in %s: %v", name, err)
		}
		return corpusFillSipp(got.SDP)
	}
	tests := []struct {
		file   string
		labels []string
		check  func(*testing.T, *sdp.SessionDescription)
	}{
		{file: "oracle-sbc-genesys-2023-4mline-INVITE.txt", labels: []string{"268749245", "268749246", "268749247", "268749248"}, check: func(t *testing.T, sd *sdp.SessionDescription) {
			sdpWantAttr(0, "rtpmap", "0 pcmu/8000a")(t, sd)
			if c := sd.MediaDescriptions[1].ConnectionInformation; c == nil || c.Address.Address != "10.23.90.113" {
				t.Errorf("m-line 1 c = %+v", c)
			}
			if _, ok := sd.MediaDescriptions[1].Attribute("inactive"); !ok {
				t.Error("m-line 1 not inactive")
			}
		}},
		{file: "oracle-sbc-genesys-2024-4mline-INVITE.txt", labels: []string{"1006644281", "1006644282", "1006644283", "1006644284"}},
		{file: "cisco-cube-16.10-INVITE-session-only-metadata.txt", labels: []string{"1", "2"}},
		{file: "connectel-opensips-drachtio-offer-body.txt", labels: []string{"1", "2"}, check: func(t *testing.T, sd *sdp.SessionDescription) {
			if sd.ConnectionInformation != nil {
				t.Error("session c invented")
			}
		}},
		{file: "synthetic/syn-16-robust-video-mlines.txt", check: func(t *testing.T, sd *sdp.SessionDescription) {
			var media []string
			for _, md := range sd.MediaDescriptions {
				media = append(media, md.MediaName.Media)
			}
			if !strings.Contains(strings.Join(media, ","), "video") {
				t.Errorf("media = %v, want video m-lines kept", media)
			}
		}},
		{file: "miarec-oracle-sbc-msg01-INVITE.txt", labels: []string{"16777227"}},
		{file: "sems-procomm-drachtio-offer-body.txt", labels: []string{"a_leg", "b_leg"}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			sd, err := ParseSDP(sdpOf(t, tt.file))
			if err != nil {
				t.Fatal(err)
			}
			if tt.labels != nil {
				sdpWantLabels(tt.labels...)(t, sd)
			}
			if tt.check != nil {
				tt.check(t, sd)
			}
		})
	}
}

func TestNormalizeSDP(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want string // lines joined with "|"
	}{
		{name: "opensips order", in: "v=0\no=- 1 1 IN IP4 h\ns=-\nt=0 0\nc=IN IP4 h\nm=audio 1 RTP/AVP 0\na=label:0\nc=IN IP4 m\n", want: "v=0|o=- 1 1 IN IP4 h|s=-|c=IN IP4 h|t=0 0|m=audio 1 RTP/AVP 0|c=IN IP4 m|a=label:0"},
		{name: "inserts v s t", in: "o=- 1 1 IN IP4 h\r\nm=audio 1 RTP/AVP 0\r\n", want: "v=0|o=- 1 1 IN IP4 h|s=-|t=0 0|m=audio 1 RTP/AVP 0"},
		{name: "repeat times after timings", in: "v=0\no=x\ns=-\nt=1 2\nr=7d 1h 0\nt=3 4\n", want: "v=0|o=x|s=-|t=1 2|t=3 4|r=7d 1h 0"},
		{name: "nothing sdp-shaped", in: "hello\nworld\n", want: ""},
		{name: "empty", in: "", want: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := NormalizeSDP([]byte(tt.in))
			if tt.want == "" {
				if got != nil {
					t.Fatalf("NormalizeSDP = %q, want nil", got)
				}
				return
			}
			want := strings.ReplaceAll(tt.want, "|", "\r\n") + "\r\n"
			if string(got) != want {
				t.Errorf("NormalizeSDP =\n%q\nwant\n%q", got, want)
			}
		})
	}
}

func TestParseSDPLimits(t *testing.T) {
	head := "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nt=0 0\r\n"
	tests := []struct {
		name    string
		sdp     string
		wantErr error // nil: any error will do
	}{
		{name: "over 64 KiB", sdp: head + strings.Repeat("a=x\r\n", maxSDPBytes/5+1), wantErr: ErrSDPTooLarge},
		{name: "33 m-lines", sdp: head + strings.Repeat("m=audio 4000 RTP/AVP 0\r\n", maxSDPMedia+1), wantErr: ErrSDPTooLarge},
		{name: "empty"},
		{name: "no origin", sdp: "v=0\r\ns=-\r\nt=0 0\r\n"},
		{name: "bad port", sdp: head + "m=audio [auto_media_port] RTP/AVP 0\r\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseSDP([]byte(tt.sdp))
			if err == nil || tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Errorf("err = %v, want %v", err, tt.wantErr)
			}
		})
	}
	if _, err := ParseSDP([]byte(head + strings.Repeat("m=audio 4000 RTP/AVP 0\r\n", maxSDPMedia))); err != nil {
		t.Errorf("32 m-lines: %v", err)
	}
}

func FuzzNormalizeSDP(f *testing.F) {
	for _, name := range corpusMultipart(f) {
		ct, body, _ := corpusBody(f, name)
		if got, err := ParseSIPRECBody(ct, body); err == nil && got.SDP != nil {
			f.Add(got.SDP)
		}
	}
	f.Add([]byte("o=x\rv=0\n\nt=0 0\nm=a\nr=1\n"))
	f.Fuzz(func(t *testing.T, raw []byte) {
		once := NormalizeSDP(raw)
		if twice := NormalizeSDP(once); !bytes.Equal(once, twice) {
			t.Fatalf("not idempotent:\n%q\n%q", once, twice)
		}
		_, _ = ParseSDP(raw)
	})
}
