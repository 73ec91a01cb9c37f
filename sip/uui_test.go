package sip

import (
	"errors"
	"regexp"
	"strings"
	"testing"
)

func TestParseUserToUser(t *testing.T) {
	tests := []struct {
		name     string
		value    string
		want     UUI
		wantUCID string // 20-digit form; "" means none
		wantErr  bool
	}{
		{
			name:  "avaya sbce (miarec)",
			value: "00FA080001000758A20EFA;encoding=hex",
			want:  UUI{Data: "00FA080001000758A20EFA", Encoding: "hex"}, wantUCID: "00001000071487015674",
		},
		{
			name:  "oracle genesys 2023",
			value: "04FA080090D1B06537E860C8143030313434353336383031363938313632373834;encoding=hex",
			want:  UUI{Data: "04FA080090D1B06537E860C8143030313434353336383031363938313632373834", Encoding: "hex"}, wantUCID: "00144536801698162784",
		},
		{
			name:  "oracle genesys 2024, leading space",
			value: " 04FA080047353A660FF5A7C8143030303731313336323631373132333231393539;encoding=hex",
			want:  UUI{Data: "04FA080047353A660FF5A7C8143030303731313336323631373132333231393539", Encoding: "hex"}, wantUCID: "00071136261712321959",
		},
		{
			name:  "oracle 2026 template",
			value: "04FA08004762C169FA480CC8143030303731323532383131373738303130313234;encoding=hex",
			want:  UUI{Data: "04FA08004762C169FA480CC8143030303731323532383131373738303130313234", Encoding: "hex"}, wantUCID: "00071252811778010124",
		},
		{
			name:  "oracle occas plain call, trailing space",
			value: "04FA08008009EA67AF658AC8143030313238303235333831373339353438303432;encoding=hex ",
			want:  UUI{Data: "04FA08008009EA67AF658AC8143030313238303235333831373339353438303432", Encoding: "hex"}, wantUCID: "00128025381739548042",
		},
		{
			name:  "oracle doc sample",
			value: "00FA08001900014E3E7D5C;encoding=hex",
			want:  UUI{Data: "00FA08001900014E3E7D5C", Encoding: "hex"}, wantUCID: "00025000011312718172",
		},
		{
			name:  "audiocodes doc sample",
			value: "00FA080019001038F725B3;encoding=hex",
			want:  UUI{Data: "00FA080019001038F725B3", Encoding: "hex"}, wantUCID: "00025000160955721139",
		},
		{
			name:  "rfc 7434 purpose and content, lower case data",
			value: "04fa080090d1b06537e860;encoding=hex;purpose=isdn-uui;content=isdn-uui",
			want:  UUI{Data: "04FA080090D1B06537E860", Encoding: "hex", Purpose: "isdn-uui", Content: "isdn-uui"}, wantUCID: "00144536801698162784",
		},
		{
			name:  "pd parameter, no discriminator in the data",
			value: "FA080090D1B06537E860 ; ENCODING=HEX ; pd=4",
			want:  UUI{Data: "FA080090D1B06537E860", Encoding: "hex", PD: "4"}, wantUCID: "00144536801698162784",
		},
		{
			name:  "encoding absent defaults to hex",
			value: "00fa080001000758a20efa",
			want:  UUI{Data: "00FA080001000758A20EFA", Encoding: "hex"}, wantUCID: "00001000071487015674",
		},
		{
			name:  "audiocodes x-User-To-User ascii",
			value: `00144536801698162784;encoding="ascii"`,
			want:  UUI{Data: "00144536801698162784", Encoding: "ascii"}, wantUCID: "00144536801698162784",
		},
		{
			name:  "ascii data keeps its case",
			value: "Hello World;encoding=ascii",
			want:  UUI{Data: "Hello World", Encoding: "ascii"},
		},
		{
			name:  "hex without ucid",
			value: "04C8143030313434353336383031363938313632373834;encoding=hex",
			want:  UUI{Data: "04C8143030313434353336383031363938313632373834", Encoding: "hex"},
		},
		{name: "empty", value: "", wantErr: true},
		{name: "params only", value: ";encoding=hex", wantErr: true},
		{name: "non-hex data with hex encoding", value: "hello;encoding=hex", wantErr: true},
		{name: "non-hex data with default encoding", value: "04FA08 0090", wantErr: true},
		{name: "too long", value: strings.Repeat("00", maxUUIValue/2+1), wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseUserToUser(tt.value)
			if tt.wantErr {
				if !errors.Is(err, ErrInvalidUserToUser) {
					t.Fatalf("ParseUserToUser(%q) = %+v, %v; want ErrInvalidUserToUser", tt.value, got, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("ParseUserToUser = %+v, want %+v", got, tt.want)
			}
			u, ok := got.UCID()
			switch {
			case tt.wantUCID == "" && ok:
				t.Errorf("UCID() = %v, want none", u)
			case tt.wantUCID != "" && (!ok || u.String() != tt.wantUCID):
				t.Errorf("UCID() = %v, %v; want %s", u, ok, tt.wantUCID)
			}
		})
	}
}

// Every User-to-User header in the corpus parses and carries a UCID.
func TestParseUserToUserSamples(t *testing.T) {
	header := regexp.MustCompile(`(?im)^\s*(?:x-)?user-to-user:(.*)$`)
	files := append(corpusFiles(t), "sipp/project-checks/uac_oracle_like_inactive_reinvite.xml")
	n := 0
	for _, name := range files {
		for _, m := range header.FindAllSubmatch(corpusRead(t, name), -1) {
			n++
			value := strings.TrimRight(string(m[1]), "\r")
			t.Run(name, func(t *testing.T) {
				u, err := ParseUserToUser(value)
				if err != nil {
					t.Fatalf("ParseUserToUser(%q): %v", value, err)
				}
				if _, ok := u.UCID(); !ok {
					t.Errorf("no UCID in %q", value)
				}
			})
		}
	}
	if n < 15 {
		t.Errorf("found %d User-to-User headers in the corpus, want at least 15", n)
	}
}

func FuzzParseUserToUser(f *testing.F) {
	for _, s := range []string{
		"04FA080090D1B06537E860C8143030313434353336383031363938313632373834;encoding=hex",
		"00FA080001000758A20EFA;encoding=hex;purpose=isdn-uui;content=isdn-uui",
		"FA080019001038F725B3;pd=4",
		"abc;encoding=ascii",
		";;=;",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, value string) {
		u, err := ParseUserToUser(value)
		if err != nil {
			return
		}
		if u.Data == "" || len(u.Data) > maxUUIValue {
			t.Fatalf("ParseUserToUser(%q) = %+v", value, u)
		}
		if uc, ok := u.UCID(); ok && uc.String() == "00000000000000000000" {
			t.Fatalf("zero UCID from %q", value)
		}
	})
}
