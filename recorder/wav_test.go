package recorder

import (
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

func TestWAVHeader(t *testing.T) {
	tests := []struct {
		name                 string
		rate, channels       int
		data                 uint32
		byteRate, blockAlign uint32
	}{
		{"mono 8k empty", 8000, 1, 0, 16000, 2},
		{"stereo 8k", 8000, 2, 32000, 32000, 4},
		{"16 channels 48k", 48000, 16, 1 << 20, 1536000, 32},
	}
	le := binary.LittleEndian
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := wavHeader(tt.rate, tt.channels, tt.data)
			checks := []struct {
				field     string
				got, want uint32
			}{
				{"riff size", le.Uint32(h[4:]), 36 + tt.data},
				{"fmt size", le.Uint32(h[16:]), 16},
				{"format", uint32(le.Uint16(h[20:])), 1},
				{"channels", uint32(le.Uint16(h[22:])), uint32(tt.channels)},
				{"rate", le.Uint32(h[24:]), uint32(tt.rate)},
				{"byte rate", le.Uint32(h[28:]), tt.byteRate},
				{"block align", uint32(le.Uint16(h[32:])), tt.blockAlign},
				{"bits", uint32(le.Uint16(h[34:])), 16},
				{"data size", le.Uint32(h[40:]), tt.data},
			}
			for _, c := range checks {
				if c.got != c.want {
					t.Errorf("%s = %d, want %d", c.field, c.got, c.want)
				}
			}
			if string(h[0:4]) != "RIFF" || string(h[8:16]) != "WAVEfmt " || string(h[36:40]) != "data" {
				t.Errorf("bad chunk ids: %q", h)
			}
			setWAVSizes(&h, tt.data+4)
			if le.Uint32(h[4:]) != 40+tt.data || le.Uint32(h[40:]) != tt.data+4 {
				t.Errorf("setWAVSizes did not patch both sizes")
			}
		})
	}
}

// wavBytes builds a stereo file whose frames are (i, -i) and whose declared data size is dataSize.
func wavBytes(frames int, dataSize uint32, extra ...[]byte) []byte {
	h := wavHeader(8000, 2, dataSize)
	b := slices.Clone(h[:36])
	for _, e := range extra {
		b = append(b, e...)
	}
	b = append(b, h[36:]...)
	for i := range frames {
		b = binary.LittleEndian.AppendUint16(b, uint16(int16(i)))
		b = binary.LittleEndian.AppendUint16(b, uint16(-int16(i)))
	}
	return b
}

func TestReadWAV(t *testing.T) {
	list := append([]byte("LIST\x03\x00\x00\x00abc"), 0) // odd-sized chunk plus its pad byte
	tests := []struct {
		name       string
		data       []byte
		wantFrames int
		wantErr    bool
	}{
		{"canonical", wavBytes(100, 400), 100, false},
		{"crashed writer, size 0", wavBytes(100, 0), 100, false},
		{"crashed writer, size past the end", wavBytes(100, 4000), 100, false},
		{"header lags behind data", wavBytes(100, 200), 50, false},
		{"trailing partial frame", append(wavBytes(100, 0), 1, 2, 3), 100, false},
		{"chunk before data", wavBytes(10, 40, list), 10, false},
		{"header only", wavBytes(0, 0), 0, false},
		{"empty", nil, 0, true},
		{"not RIFF", []byte("RIFX0000WAVEfmt "), 0, true},
		{"no data chunk", wavBytes(0, 0)[:36], 0, true},
		{"8-bit", func() []byte { b := wavBytes(4, 16); b[34] = 8; return b }(), 0, true},
		{"zero channels", func() []byte { b := wavBytes(4, 16); b[22] = 0; return b }(), 0, true},
		{"chunk runs past the end", append(wavBytes(0, 0)[:12], "fmt \xff\x00\x00\x00"...), 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "x.wav")
			if err := os.WriteFile(p, tt.data, 0o600); err != nil {
				t.Fatal(err)
			}
			w, err := ReadWAV(p)
			if tt.wantErr {
				if !errors.Is(err, ErrNotWAV) {
					t.Fatalf("ReadWAV error = %v, want ErrNotWAV", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if w.SampleRate != 8000 || len(w.Channels) != 2 {
				t.Fatalf("rate %d, %d channels; want 8000, 2", w.SampleRate, len(w.Channels))
			}
			for c, want := range []int16{1, -1} {
				if len(w.Channels[c]) != tt.wantFrames {
					t.Fatalf("channel %d: %d frames, want %d", c, len(w.Channels[c]), tt.wantFrames)
				}
				for i, s := range w.Channels[c] {
					if s != want*int16(i) {
						t.Fatalf("channel %d sample %d = %d, want %d", c, i, s, want*int16(i))
					}
				}
			}
		})
	}
	if _, err := ReadWAV(filepath.Join(t.TempDir(), "missing.wav")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v, want ErrNotExist", err)
	}
}

func FuzzParseWAV(f *testing.F) {
	f.Add(wavBytes(10, 40))
	f.Add(wavBytes(10, 0))
	f.Add(wavBytes(3, 400, []byte("LIST\x01\x00\x00\x00a\x00")))
	f.Fuzz(func(t *testing.T, b []byte) {
		w, err := parseWAV(b)
		if err == nil && len(w.Channels) == 0 {
			t.Fatal("parsed a WAV without channels")
		}
	})
}

func TestEncodePCM(t *testing.T) {
	for n := range 11 {
		pcm := make([]int16, n)
		want := make([]byte, 0, 2*n)
		for i := range pcm {
			pcm[i] = int16(i*7919 - 32768)
			want = binary.LittleEndian.AppendUint16(want, uint16(pcm[i]))
		}
		got := make([]byte, 2*n+2) // room to spare: encodePCM writes 2n bytes and no more
		encodePCM(got, pcm)
		if string(got[:2*n]) != string(want) || got[2*n] != 0 || got[2*n+1] != 0 {
			t.Errorf("%d samples: % x, want % x", n, got, want)
		}
	}
}
