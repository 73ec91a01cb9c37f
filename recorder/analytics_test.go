package recorder

import (
	"encoding/binary"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"path/filepath"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/siphook/siphook/internal/audiotest"
	"github.com/siphook/siphook/internal/vad"
)

// A synthetic call of known shape: on each channel background noise at −55 dBFS, and bursts of sound at known
// times, overlapping on purpose; stretches nobody writes (a hold) are digital silence in the file.
type callShape struct {
	rate       int
	channels   int
	length     time.Duration
	bursts     []burst
	holds      [][2]time.Duration // multiples of packet
	packet     time.Duration      // samples per WriteSamples
	flushEvery int                // packets between flushes
	codec      func([]int16) []int16
}

// burst is talk on one channel over [from, to): a tone, or speech-like sound (modulated, with 60 ms gaps
// inside that the detector's hangover must bridge: they are talk).
type burst struct {
	ch       int
	from, to time.Duration
	speech   bool
}

const noiseLevel = -55 // dBFS

func (c callShape) samples(d time.Duration) int { return int(frames(d, c.rate)) }

// signal is what channel ch carries.
func (c callShape) signal(ch int) []int16 {
	s := noise(noiseLevel, c.samples(c.length), uint64(ch+1))
	for _, b := range c.bursts {
		if b.ch != ch {
			continue
		}
		from, n := c.samples(b.from), c.samples(b.to-b.from)
		if b.speech {
			add(s, from, speechLike(c.rate, n, 150+100*float64(ch)))
		} else {
			add(s, from, audiotest.Sine(440+560*float64(ch), 0.3, c.rate, from, n))
		}
	}
	for _, h := range c.holds {
		clear(s[c.samples(h[0]):c.samples(h[1])])
	}
	if c.codec != nil {
		s = c.codec(s)
	}
	return s
}

// truth is where channel ch talks, sample by sample: inside its bursts, gaps within a burst included.
func (c callShape) truth(ch int) []bool {
	t := make([]bool, c.samples(c.length))
	for _, b := range c.bursts {
		if b.ch == ch {
			for i := c.samples(b.from); i < c.samples(b.to); i++ {
				t[i] = true
			}
		}
	}
	return t
}

// want computes the analytics from the truth.
func (c callShape) want() Analytics {
	n := c.samples(c.length)
	sec := func(samples int) float64 { return float64(samples) / float64(c.rate) }
	var a Analytics
	talking := make([]int, n)
	for ch := range c.channels {
		t := c.truth(ch)
		talk, run, longest := 0, 0, 0
		for i, x := range t {
			if x {
				talk++
				talking[i]++
				run = 0
			} else {
				run++
				longest = max(longest, run)
			}
		}
		a.Channels = append(a.Channels, ChannelAnalytics{Index: ch, TalkSec: sec(talk), SilenceSec: sec(n - talk),
			TalkRatio: float64(talk) / float64(n), LongestSilenceSec: sec(longest)})
	}
	over, silence, run, longest := 0, 0, 0, 0
	for _, k := range talking {
		if k >= 2 {
			over++
		}
		if k == 0 {
			silence++
			run++
			longest = max(longest, run)
		} else {
			run = 0
		}
	}
	a.TalkOverSec, a.TalkOverRatio = sec(over), float64(over)/float64(n)
	a.SilenceSec, a.SilenceRatio, a.LongestSilenceSec = sec(silence), float64(silence)/float64(n), sec(longest)
	return a
}

// record writes the call into a recording the way RTP streams would, packet by packet and channel by channel,
// skipping holds, flushing as the flusher would, and closes it with doc.
func (c callShape) record(t *testing.T, r *Recorder, doc *Document) *Recording {
	t.Helper()
	rec := start(t, r, Spec{ID: "call", Channels: c.channels, SampleRate: c.rate, Start: t0})
	sig := make([][]int16, c.channels)
	for ch := range sig {
		sig[ch] = c.signal(ch)
	}
	n, p := c.samples(c.length), c.samples(c.packet)
	for i, pos := 0, 0; pos < n; i, pos = i+1, pos+p {
		held := false
		for _, h := range c.holds {
			held = held || pos >= c.samples(h[0]) && pos < c.samples(h[1])
		}
		if held {
			continue
		}
		for ch := range sig {
			rec.Channel(ch).WriteSamples(int64(pos), sig[ch][pos:min(pos+p, n)])
		}
		if i%c.flushEvery == c.flushEvery-1 {
			if err := rec.Flush(); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := rec.Close(doc); err != nil {
		t.Fatal(err)
	}
	return rec
}

// tolerance is the acceptance bound on every duration: 50 ms.
const tolerance = 0.050

func compareAnalytics(t *testing.T, got *Analytics, want Analytics, length time.Duration) {
	t.Helper()
	if got == nil {
		t.Fatal("no analytics")
	}
	check := func(what string, got, want float64) {
		t.Helper()
		if math.Abs(got-want) > tolerance {
			t.Errorf("%s = %.3f s, want %.3f s ± %.0f ms", what, got, want, tolerance*1000)
		} else {
			t.Logf("%s = %.3f s, want %.3f s", what, got, want)
		}
	}
	ratio := func(what string, got, sec float64) {
		t.Helper()
		if math.Abs(got-sec/length.Seconds()) > 1e-4 {
			t.Errorf("%s = %v, want %v / %v", what, got, sec, length.Seconds())
		}
	}
	if len(got.Channels) != len(want.Channels) {
		t.Fatalf("%d channels, want %d", len(got.Channels), len(want.Channels))
	}
	for i, g := range got.Channels {
		w := want.Channels[i]
		if g.Index != i {
			t.Errorf("channel %d: index %d", i, g.Index)
		}
		check(fmt.Sprintf("channel %d talk", i), g.TalkSec, w.TalkSec)
		check(fmt.Sprintf("channel %d silence", i), g.SilenceSec, w.SilenceSec)
		check(fmt.Sprintf("channel %d longest silence", i), g.LongestSilenceSec, w.LongestSilenceSec)
		ratio("talk ratio", g.TalkRatio, g.TalkSec)
		if s := g.TalkSec + g.SilenceSec; math.Abs(s-length.Seconds()) > 1e-9 {
			t.Errorf("channel %d: talk + silence = %v, want the recording, %v", i, s, length.Seconds())
		}
	}
	check("talk-over", got.TalkOverSec, want.TalkOverSec)
	check("mutual silence", got.SilenceSec, want.SilenceSec)
	check("longest mutual silence", got.LongestSilenceSec, want.LongestSilenceSec)
	ratio("talk-over ratio", got.TalkOverRatio, got.TalkOverSec)
	ratio("silence ratio", got.SilenceRatio, got.SilenceSec)
}

// twoParties is a 12 s call: each party talks four times, in tones and speech-like bursts, and they talk over
// each other four times. Edges fall anywhere in a 10 ms frame.
var twoParties = []burst{
	{0, 503 * time.Millisecond, 2497 * time.Millisecond, false},
	{1, 2204 * time.Millisecond, 3611 * time.Millisecond, true}, // over ch0 for 293 ms
	{0, 4012 * time.Millisecond, 6308 * time.Millisecond, true},
	{1, 5896 * time.Millisecond, 7003 * time.Millisecond, false}, // 412 ms
	{0, 8007 * time.Millisecond, 9002 * time.Millisecond, false},
	{1, 8493 * time.Millisecond, 10806 * time.Millisecond, true},  // 509 ms
	{0, 10498 * time.Millisecond, 11497 * time.Millisecond, true}, // 308 ms
}

func TestAnalyticsSyntheticCalls(t *testing.T) {
	ms := func(n int) time.Duration { return time.Duration(n) * time.Millisecond }
	tests := []struct {
		name     string
		shape    callShape
		maxAhead time.Duration
	}{
		{"8 kHz", callShape{rate: 8000, channels: 2, length: 12 * time.Second, bursts: twoParties, packet: ms(20), flushEvery: 12}, 0},
		// 25 ms packets and flushes every 125 ms: flushes end in the middle of a 10 ms frame.
		{"16 kHz", callShape{rate: 16000, channels: 2, length: 12 * time.Second, bursts: twoParties, packet: ms(25), flushEvery: 5}, 0},
		{"8 kHz through µ-law", callShape{rate: 8000, channels: 2, length: 12 * time.Second, bursts: twoParties, packet: ms(20), flushEvery: 12, codec: audiotest.ULawRoundTrip}, 0},
		{"8 kHz through A-law", callShape{rate: 8000, channels: 2, length: 12 * time.Second, bursts: twoParties, packet: ms(20), flushEvery: 7, codec: audiotest.ALawRoundTrip}, 0},
		// A 3 s hold: nobody writes, and with MaxAhead 1 s the write after it pushes the hold out as a hole
		// in the file. Silence all the same, and the noise after it is still noise.
		{"hold", callShape{rate: 8000, channels: 2, length: 14 * time.Second, packet: ms(20), flushEvery: 12,
			holds: [][2]time.Duration{{ms(4000), ms(7000)}},
			bursts: []burst{
				{0, ms(503), ms(2497), false},
				{1, ms(2204), ms(3611), true},
				{0, ms(7512), ms(9497), true},
				{1, ms(9004), ms(10296), false},
				{1, ms(11003), ms(13309), true},
			}}, time.Second},
		{"hold at 16 kHz, buffered", callShape{rate: 16000, channels: 2, length: 14 * time.Second, packet: ms(20), flushEvery: 12,
			holds: [][2]time.Duration{{ms(4000), ms(7000)}},
			bursts: []burst{
				{0, ms(503), ms(2497), false},
				{1, ms(2204), ms(3611), true},
				{0, ms(7512), ms(9497), true},
				{1, ms(9004), ms(10296), false},
			}}, 0},
		{"one channel", callShape{rate: 8000, channels: 1, length: 6 * time.Second, packet: ms(20), flushEvery: 12,
			bursts: []burst{{0, ms(1003), ms(2998), true}, {0, ms(3497), ms(5001), false}}}, 0},
		{"three parties", callShape{rate: 8000, channels: 3, length: 12 * time.Second, packet: ms(20), flushEvery: 12,
			bursts: append([]burst{{2, ms(2001), ms(6106), true}}, twoParties...)}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := testRecorder(t, func(c *Config) {
				c.Lag = 0
				if tt.maxAhead > 0 {
					c.MaxAhead = tt.maxAhead
				}
			})
			doc := &Document{Source: "siprec"}
			rec := tt.shape.record(t, r, doc)
			want := tt.shape.want()
			compareAnalytics(t, doc.Analytics, want, tt.shape.length)
			// The document on disk says the same.
			onDisk := readDoc(t, filepath.Join(r.cfg.Dir, t0Dir, "call.json"))
			if !reflect.DeepEqual(onDisk.Analytics, doc.Analytics) {
				t.Errorf("document on disk: %+v, want %+v", onDisk.Analytics, doc.Analytics)
			}
			// What was analysed is what the file holds.
			if w := readWAV(t, rec.WAVPath()); len(w.Channels[0]) != tt.shape.samples(tt.shape.length) {
				t.Errorf("file holds %d samples, want %d", len(w.Channels[0]), tt.shape.samples(tt.shape.length))
			}
		})
	}
}

// Close fills the recorder's fields of Analytics and keeps the caller's; a recording without samples gets
// none.
func TestAnalyticsDocument(t *testing.T) {
	callers := Analytics{MOS: 3.9, MediaErrors: []MediaError{{At: t0, Channel: 1, Type: "ssrc_change"}}, MediaErrorsTruncated: true}
	shape := callShape{rate: 8000, channels: 2, length: 3 * time.Second, packet: 20 * time.Millisecond, flushEvery: 12,
		bursts: []burst{{0, 500 * time.Millisecond, 1500 * time.Millisecond, false}}}

	t.Run("the caller's fields are kept", func(t *testing.T) {
		r := testRecorder(t, func(c *Config) { c.Lag = 0 })
		mine := callers
		doc := &Document{Analytics: &mine}
		shape.record(t, r, doc)
		a := doc.Analytics
		if a.MOS != 3.9 || len(a.MediaErrors) != 1 || !a.MediaErrorsTruncated || len(a.Channels) != 2 {
			t.Errorf("analytics %+v", a)
		}
		if a == &mine || mine.Channels != nil {
			t.Error("Close changed the caller's Analytics in place, not a copy")
		}
		compareAnalytics(t, a, shape.want(), shape.length)
	})
	t.Run("nil document: the initial one's fields are kept, and its Analytics left alone", func(t *testing.T) {
		r := testRecorder(t, func(c *Config) { c.Lag = 0 })
		initial := &Document{Source: "siprec", Analytics: &Analytics{MOS: 4.1}}
		rec := start(t, r, Spec{ID: "call", Channels: 1, Start: t0, Document: initial})
		rec.Channel(0).WriteSamples(0, noise(noiseLevel, rate, 1))
		if err := rec.Close(nil); err != nil {
			t.Fatal(err)
		}
		got := readDoc(t, filepath.Join(r.cfg.Dir, t0Dir, "call.json"))
		if got.Analytics == nil || got.Analytics.MOS != 4.1 || len(got.Analytics.Channels) != 1 ||
			got.Analytics.Channels[0].SilenceSec != 1 || got.Analytics.SilenceRatio != 1 {
			t.Errorf("analytics %+v", got.Analytics)
		}
		if initial.Analytics.Channels != nil {
			t.Error("Close changed the Spec's document")
		}
	})
	t.Run("no samples, no analytics", func(t *testing.T) {
		r := testRecorder(t, nil)
		rec := start(t, r, Spec{ID: "call", Start: t0})
		doc := &Document{}
		if err := rec.Close(doc); err != nil {
			t.Fatal(err)
		}
		if doc.Analytics != nil {
			t.Errorf("analytics %+v for a recording without samples", doc.Analytics)
		}
		if got := readDoc(t, filepath.Join(r.cfg.Dir, t0Dir, "call.json")); got.Analytics != nil {
			t.Errorf("analytics on disk %+v", got.Analytics)
		}
	})
	t.Run("no samples: the caller's analytics as they were", func(t *testing.T) {
		r := testRecorder(t, nil)
		rec := start(t, r, Spec{ID: "call", Start: t0})
		mine := callers
		doc := &Document{Analytics: &mine}
		if err := rec.Close(doc); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(*doc.Analytics, callers) {
			t.Errorf("analytics %+v, want %+v", doc.Analytics, callers)
		}
	})
}

// Recorder.Close, at shutdown, flushes (and so analyses) what is buffered; the caller's Close afterwards
// still reports it.
func TestAnalyticsAfterRecorderClose(t *testing.T) {
	r := testRecorder(t, func(c *Config) { c.Lag = 0 })
	rec := start(t, r, Spec{ID: "call", Channels: 1, Start: t0})
	rec.Channel(0).WriteSamples(0, tone(toneA, 0, rate))
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	doc := &Document{}
	if err := rec.Close(doc); err != nil {
		t.Fatal(err)
	}
	if a := doc.Analytics; a == nil || math.Abs(a.Channels[0].TalkSec-1) > tolerance {
		t.Errorf("analytics %+v", a)
	}
}

// Write sums each channel's energy wherever the pieces it is handed end (the sums themselves are vad's,
// tested there).
func TestVoiceActivityWriteInPieces(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 3))
	for nch := 1; nch <= 3; nch++ {
		for frames := 0; frames <= 200; frames += 7 {
			pcm := make([]int16, nch*frames)
			for i := range pcm {
				pcm[i] = int16(rng.Uint32())
			}
			want := make([]int64, nch)
			for i, s := range pcm {
				want[i%nch] += int64(s) * int64(s)
			}
			data := interleaveLE(pcm)
			for _, piece := range []int{3, 50} { // frames: within a vector block, and across
				v := newVoiceActivity(8000, nch)
				v.frameLen = 1 << 30 // never analyse: the sums stay where they are read
				for i := 0; i < frames; i += piece {
					v.write(data[i*nch*2 : min(i+piece, frames)*nch*2])
				}
				if !slices.Equal(v.energy, want) {
					t.Errorf("%d channels, %d frames in pieces of %d: write summed %v, want %v", nch, frames, piece, v.energy, want)
				}
			}
		}
	}
}

// Stereo recordings take a fast path for whole frames: whatever the pieces flush hands over, each channel is
// decided exactly as a detector of its own fed the channel alone.
func TestVoiceActivityStereoMatchesDetectors(t *testing.T) {
	shape := callShape{rate: rate, channels: 2, length: 6 * time.Second, bursts: []burst{
		{0, 500 * time.Millisecond, 2500 * time.Millisecond, true}, {1, 2 * time.Second, 4 * time.Second, true},
		{0, 3800 * time.Millisecond, 5 * time.Second, false}}}
	left, right := shape.signal(0), shape.signal(1)
	pcm := make([]int16, 0, 2*len(left))
	for i := range left {
		pcm = append(pcm, left[i], right[i])
	}
	data := interleaveLE(pcm)
	want := [2]vad.Stats{}
	for c, ch := range [][]int16{left, right} {
		d := vad.New(rate)
		d.Write(ch)
		for {
			if _, ok := d.Drain(); !ok {
				break
			}
		}
		want[c] = d.Stats()
	}
	rng := rand.New(rand.NewPCG(5, 5))
	v := newVoiceActivity(rate, 2)
	for len(data) > 0 {
		n := min(len(data), 4*(1+rng.IntN(3000))) // up to 375 ms, ending anywhere in a frame
		v.write(data[:n])
		data = data[n:]
	}
	var a Analytics
	v.finish(&a)
	for c := range 2 {
		if got := v.dets[c].Stats(); got != want[c] {
			t.Errorf("channel %d: %+v, a detector of its own: %+v", c, got, want[c])
		}
	}
}

func TestVoiceActivityNoAllocations(t *testing.T) {
	v := newVoiceActivity(8000, 2)
	data := make([]byte, 2*2*1000) // 1000 frames: not a whole number of 10 ms frames
	if n := testing.AllocsPerRun(100, func() { v.write(data); v.silence(1234) }); n != 0 {
		t.Errorf("%v allocations per flush", n)
	}
}

// The media path through the recorder with analytics on and off: a 2-channel 8 kHz call of 60 s (µ-law
// speech-like talk spurts over noise) written in 20 ms packets per channel and flushed every 250 ms of audio,
// as the flusher would, with the default Lag. ns/audio-s is per second of the call (both channels);
// ns/packet per 20 ms packet of one channel, what an RTP stream delivers. Start and Close (fsyncs) are not
// timed.
func BenchmarkRecordingWithAnalytics(b *testing.B) {
	const seconds = 60
	shape := callShape{rate: rate, channels: 2, length: seconds * time.Second, codec: audiotest.ULawRoundTrip}
	for s := time.Duration(0); s < seconds*time.Second; s += 6 * time.Second {
		shape.bursts = append(shape.bursts, burst{0, s + 500*time.Millisecond, s + 3*time.Second, true},
			burst{1, s + 2800*time.Millisecond, s + 5500*time.Millisecond, true})
	}
	sig := [2][]int16{shape.signal(0), shape.signal(1)}
	n := len(sig[0])
	packets := 2 * n / chunk

	for _, analytics := range []bool{true, false} {
		name := "on"
		if !analytics {
			name = "off"
		}
		b.Run(name, func(b *testing.B) {
			cfg := DefaultConfig() // Lag 300 ms, as in production
			cfg.Dir = b.TempDir()
			cfg.FlushInterval = time.Hour
			cfg.MinFreeBytes = 0
			r, err := New(cfg, WithLogger(slog.New(slog.DiscardHandler)))
			if err != nil {
				b.Fatal(err)
			}
			defer r.Close()
			r.noAnalytics = !analytics
			b.ReportAllocs()
			for range b.N {
				b.StopTimer()
				rec, err := r.Start(Spec{Channels: 2})
				if err != nil {
					b.Fatal(err)
				}
				ch0, ch1 := rec.Channel(0), rec.Channel(1)
				b.StartTimer()
				for pos := 0; pos < n; pos += chunk {
					ch0.WriteSamples(int64(pos), sig[0][pos:pos+chunk])
					ch1.WriteSamples(int64(pos), sig[1][pos:pos+chunk])
					if (pos+chunk)%(rate/4) < chunk { // every 250 ms of audio, as the flusher would
						if err := rec.Flush(); err != nil {
							b.Fatal(err)
						}
					}
				}
				if err := rec.Flush(); err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				if err := rec.Close(nil); err != nil { // fsyncs: not the media path
					b.Fatal(err)
				}
				b.StartTimer()
			}
			ns := float64(b.Elapsed().Nanoseconds()) / float64(b.N)
			b.ReportMetric(ns/seconds, "ns/audio-s")
			b.ReportMetric(ns/float64(packets), "ns/packet")
		})
	}
}

// noise returns n samples of white Gaussian noise at level dBFS (mean square), seeded so that runs repeat.
func noise(level float64, n int, seed uint64) []int16 {
	rng := rand.New(rand.NewPCG(seed, 2))
	rms := 32768 * math.Pow(10, level/20)
	out := make([]int16, n)
	for i := range out {
		out[i] = saturate(math.Round(rng.NormFloat64() * rms))
	}
	return out
}

// speechLike is n samples of a voiced sound at f0 Hz (a fundamental and two harmonics, −19 dBFS at its peak),
// modulated at a syllable rate of 4 Hz, with a 60 ms gap every 350 ms away from its ends.
func speechLike(rate, n int, f0 float64) []int16 {
	out := make([]int16, n)
	parts := [][]int16{audiotest.Sine(f0, 0.1, rate, 0, n), audiotest.Sine(2*f0, 0.06, rate, 0, n), audiotest.Sine(3*f0, 0.03, rate, 0, n)}
	gapFrom, gapTo := rate*290/1000, rate*350/1000
	for i := range out {
		u := float64(i) / float64(rate)
		if k := i % gapTo; k >= gapFrom && i > rate/10 && i < n-rate/10 {
			continue
		}
		env := 1 - 0.7*(0.5-0.5*math.Cos(2*math.Pi*4*u))
		out[i] = saturate(env * float64(int(parts[0][i])+int(parts[1][i])+int(parts[2][i])))
	}
	return out
}

func add(dst []int16, at int, src []int16) {
	for i, s := range src {
		dst[at+i] = saturate(float64(dst[at+i]) + float64(s))
	}
}

func saturate(x float64) int16 { return int16(max(min(x, math.MaxInt16), math.MinInt16)) }

// The analysis alone, as flush runs it: 2 channels at 8 kHz in flushes of about 250 ms.
func BenchmarkVoiceActivity(b *testing.B) {
	shape := callShape{rate: rate, channels: 2, length: time.Second,
		bursts: []burst{{0, 100 * time.Millisecond, 600 * time.Millisecond, true}, {1, 500 * time.Millisecond, 900 * time.Millisecond, true}}}
	left, right := shape.signal(0), shape.signal(1)
	pcm := make([]int16, 0, 2*len(left))
	for i := range left {
		pcm = append(pcm, left[i], right[i])
	}
	data := interleaveLE(pcm)
	step := 2027 * 2 * bytesPerSample // flushes of about 250 ms that end anywhere in a 10 ms frame, as the flusher's do
	v := newVoiceActivity(rate, 2)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		for i := 0; i < len(data); i += step {
			v.write(data[i:min(i+step, len(data))])
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N), "ns/audio-s")
}

// interleaveLE is the bytes of interleaved samples, as the file holds them.
func interleaveLE(pcm []int16) []byte {
	out := make([]byte, 0, len(pcm)*bytesPerSample)
	for _, s := range pcm {
		out = binary.LittleEndian.AppendUint16(out, uint16(s))
	}
	return out
}
