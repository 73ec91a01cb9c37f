package matcher

import (
	"strings"
	"testing"
)

func TestParseUCID(t *testing.T) {
	// Expected 20-digit forms are the worked decodes of research/siprec.md §2.2 and genesys-cti.md §3.1.
	tests := []struct {
		name  string
		in    string
		want  string // 20-digit form; "" means not ok
		wantH string // hex form, checked when set
	}{
		{name: "avaya sbce uui with pd 00", in: "00FA080001000758A20EFA;encoding=hex", want: "00001000071487015674", wantH: "0001000758A20EFA"},
		{name: "oracle 2023 uui with C8 tlv", in: "04FA080090D1B06537E860C8143030313434353336383031363938313632373834;encoding=hex", want: "00144536801698162784"},
		{name: "oracle 2023 apkt:ucid bare hex", in: "0090D1AD6537E860", want: "00144536771698162784"},
		{name: "oracle 2024 uui", in: "04FA080047353A660FF5A7C8143030303731313336323631373132333231393539;encoding=hex", want: "00071136261712321959"},
		{name: "oracle 2024 apkt:ucid", in: "00473539660FF5A7", want: "00071136251712321959"},
		{name: "oracle 2026 uui", in: "04FA08004762C169FA480CC8143030303731323532383131373738303130313234;encoding=hex", want: "00071252811778010124"},
		{name: "oracle 2026 apkt:ucid", in: "004762BD69FA4805", want: "00071252771778010117"},
		{name: "oracle doc apkt:ucid with params", in: "00FA08001900014E3E7D5C;encoding=hex", want: "00025000011312718172"},
		{name: "avaya sbce session_id", in: "00FA0800705D4C5DCAAC41", want: "00112238841573563457"},
		{name: "avaya sbce long uui with ascii payload", in: "04FA08002C0007671C00D3434F7C61633065646565372D323165642D346239642D616534352D3863353262653530383738312D317C5745427C446576696E7C434841547C62613661333930372D396364342D343831612D616338342D313930633735663664623962", want: "00044000071729888467"},
		{name: "audiocodes uui", in: "00FA080019001038F725B3;encoding=hex", want: "00025000160955721139"},
		{name: "audiocodes ac:AvayaUCID without discriminator", in: "FA080019001038F725B3", want: "00025000160955721139"},
		{name: "non-siprec oracle occas uui trailing space", in: "04FA08008009EA67AF658AC8143030313238303235333831373339353438303432;encoding=hex ", want: "00128025381739548042"},
		{name: "lower case with several params", in: " 04fa080090d1b06537e860 ; encoding=hex;purpose=isdn-uui;content=isdn-uui", want: "00144536801698162784"},
		{name: "twenty digits", in: "00144536801698162784", want: "00144536801698162784", wantH: "0090D1B06537E860"},
		{name: "twenty digits trgtech example", in: "00021000050946085673", want: "00021000050946085673", wantH: "0015000538641F29"},
		{name: "fa08 after an unknown leading tlv", in: "00C8023031FA080090D1B06537E860", want: "00144536801698162784"},
		{name: "fa08 found by search in broken framing", in: "04FFFA080090D1B06537E860", want: "00144536801698162784"},
		{name: "twenty digits node too large", in: "70000000010000000001"},
		{name: "twenty digits seq too large", in: "00001700000000000001"},
		{name: "twenty digits time too large", in: "00001000019999999999"},
		{name: "all zero", in: "0000000000000000"},
		{name: "all zero twenty digits", in: "00000000000000000000"},
		{name: "empty", in: ""},
		{name: "params only", in: ";encoding=hex"},
		{name: "not hex", in: "hello world"},
		{name: "hex without fa08", in: "04C8143030313434353336383031363938313632373834"},
		{name: "fa08 truncated", in: "04FA080090D1B06537"},
		{name: "nineteen digits", in: "0014453680169816278"},
		{name: "oversized", in: strings.Repeat("0", maxUCIDInput+1)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u, ok := ParseUCID(tt.in)
			if tt.want == "" {
				if ok {
					t.Fatalf("ParseUCID(%q) = %v, want not ok", tt.in, u)
				}
				return
			}
			if !ok {
				t.Fatalf("ParseUCID(%q) not ok, want %s", tt.in, tt.want)
			}
			if got := u.String(); got != tt.want {
				t.Errorf("String() = %s, want %s", got, tt.want)
			}
			if tt.wantH != "" && u.Hex() != tt.wantH {
				t.Errorf("Hex() = %s, want %s", u.Hex(), tt.wantH)
			}
		})
	}
}

func TestUCIDForms(t *testing.T) {
	u := UCID{Node: 21, Seq: 5, Time: 946085673}
	if got, want := u.String(), "00021000050946085673"; got != want {
		t.Errorf("String() = %s, want %s", got, want)
	}
	if got, want := u.Hex(), "0015000538641F29"; got != want {
		t.Errorf("Hex() = %s, want %s", got, want)
	}
	top := UCID{Node: 65535, Seq: 65535, Time: 4294967295}
	if got, want := top.String(), "65535655354294967295"; got != want {
		t.Errorf("top.String() = %s, want %s", got, want)
	}
	if back, ok := ParseUCID(top.String()); !ok || back != top {
		t.Errorf("ParseUCID(top.String()) = %v, %v", back, ok)
	}
}

func TestParseConversationID(t *testing.T) {
	const id = "3f2b1c9e-8d4a-4e21-9a7b-5c6d7e8f9a0b"
	tests := []struct {
		name   string
		in     string
		want   string
		wantOK bool
	}{
		{name: "canonical", in: id, want: id, wantOK: true},
		{name: "upper case", in: strings.ToUpper(id), want: id, wantOK: true},
		{name: "spaces and newline", in: "\n\t  " + id + " \n", want: id, wantOK: true},
		{name: "braces", in: "{" + id + "}", want: id, wantOK: true},
		{name: "angle brackets", in: "<" + id + ">", want: id, wantOK: true},
		{name: "urn prefix", in: "urn:uuid:" + id, want: id, wantOK: true},
		{name: "no dashes", in: "3F2B1C9E8D4A4E219A7B5C6D7E8F9A0B", want: id, wantOK: true},
		{name: "empty", in: ""},
		{name: "too short", in: "3f2b1c9e-8d4a-4e21-9a7b-5c6d7e8f9a0"},
		{name: "dash misplaced", in: "3f2b1c9e8-d4a-4e21-9a7b-5c6d7e8f9a0b"},
		{name: "non hex", in: "3f2b1c9e-8d4a-4e21-9a7b-5c6d7e8f9a0g"},
		{name: "test-uui-123", in: "test-uui-123"},
		{name: "oversized", in: strings.Repeat("a", 200)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := ParseConversationID(tt.in)
			if ok != tt.wantOK || got != tt.want {
				t.Errorf("ParseConversationID(%q) = %q, %v; want %q, %v", tt.in, got, ok, tt.want, tt.wantOK)
			}
		})
	}
}

func FuzzParseUCID(f *testing.F) {
	for _, s := range []string{
		"00FA080001000758A20EFA;encoding=hex",
		"04FA080090D1B06537E860C8143030313434353336383031363938313632373834;encoding=hex",
		"0090D1AD6537E860",
		"00144536801698162784",
		"FA080019001038F725B3",
		"04FA08002C0007671C00D3434F7C6163",
		"",
		";",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		u, ok := ParseUCID(s)
		if !ok {
			return
		}
		if back, ok := ParseUCID(u.String()); !ok || back != u {
			t.Fatalf("ParseUCID(%q) = %v; ParseUCID(String() %q) = %v, %v", s, u, u.String(), back, ok)
		}
		if back, ok := ParseUCID(u.Hex()); !ok || back != u {
			t.Fatalf("ParseUCID(%q) = %v; ParseUCID(Hex() %q) = %v, %v", s, u, u.Hex(), back, ok)
		}
	})
}

// BenchmarkParseUCID normalises the UCID of an Avaya-style User-to-User value (hex, 04FA08 prefix).
func BenchmarkParseUCID(b *testing.B) {
	const uui = "04FA08004762C169FA480CC8143030303731323532383131373738303130313234"
	b.ReportAllocs()
	for b.Loop() {
		if _, ok := ParseUCID(uui); !ok {
			b.Fatal("not a UCID")
		}
	}
}
