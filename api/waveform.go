package api

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"sync"

	"github.com/siphook/siphook/recorder"
)

// Waveform request limits.
const (
	defaultPoints  = 800
	maxPoints      = 4000
	waveformCached = 64 // results kept: a page of recordings being listened to
	wavHeaderLen   = 44 // the recorder writes canonical headers: fmt chunk, then data at byte 36
)

// waveform is the body of GET /api/v1/recordings/{id}/waveform.
type waveform struct {
	SampleRate  int               `json:"sample_rate"`
	Samples     int64             `json:"samples"` // per channel
	DurationSec float64           `json:"duration_seconds"`
	Channels    []waveformChannel `json:"channels"`
}

type waveformChannel struct {
	Index int          `json:"index"`
	Label string       `json:"label"`
	Peaks [][2]float64 `json:"peaks"` // [min, max] per bucket, in [-1, 1]
}

var errNotPCM16 = errors.New("not a canonical 16-bit PCM WAV file")

// peaks computes min/max peaks of each channel of the WAV file r, of size bytes, in points buckets (fewer
// when the file has fewer samples). It streams the file: a recording can be hours long. Like
// recorder.ReadWAV it tolerates what a writer leaves mid-file: a data size of 0 or beyond the end means
// "what is there".
func peaks(r io.Reader, size int64, points int) (*waveform, error) {
	var h [wavHeaderLen]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return nil, fmt.Errorf("%w: %v", errNotPCM16, err)
	}
	le := binary.LittleEndian
	channels, rate := int(le.Uint16(h[22:])), int(le.Uint32(h[24:]))
	if string(h[0:4]) != "RIFF" || string(h[8:16]) != "WAVEfmt " || le.Uint32(h[16:]) != 16 ||
		le.Uint16(h[20:]) != 1 || le.Uint16(h[34:]) != 16 || string(h[36:40]) != "data" || channels == 0 || channels > recorder.MaxChannels || rate == 0 {
		return nil, errNotPCM16
	}
	data := int64(le.Uint32(h[40:]))
	if avail := size - wavHeaderLen; data == 0 || data > avail {
		data = max(avail, 0)
	}
	frameLen := channels * 2
	frames := data / int64(frameLen)
	buckets := int(min(int64(points), frames))

	wf := &waveform{SampleRate: rate, Samples: frames, DurationSec: float64(frames) / float64(rate),
		Channels: make([]waveformChannel, channels)}
	for c := range wf.Channels {
		wf.Channels[c] = waveformChannel{Index: c, Peaks: make([][2]float64, buckets)}
	}
	if buckets == 0 {
		return wf, nil
	}
	lo, hi := make([]int16, channels), make([]int16, channels)
	reset := func() {
		for c := range channels {
			lo[c], hi[c] = math.MaxInt16, math.MinInt16
		}
	}
	reset()
	// Bucket b holds frames [b*frames/buckets, (b+1)*frames/buckets): none is empty, as buckets <= frames.
	bucket, frame, end := 0, int64(0), frames/int64(buckets)
	buf := make([]byte, (64<<10)/frameLen*frameLen) // whole frames
	src := io.LimitReader(r, frames*int64(frameLen))
	for {
		n, err := io.ReadFull(src, buf)
		for off := 0; off+frameLen <= n; off += frameLen {
			if frame == end {
				for c := range channels {
					wf.Channels[c].Peaks[bucket] = [2]float64{normalise(lo[c]), normalise(hi[c])}
				}
				reset()
				bucket++
				end = int64(bucket+1) * frames / int64(buckets)
			}
			for c := range channels {
				v := int16(le.Uint16(buf[off+2*c:]))
				lo[c], hi[c] = min(lo[c], v), max(hi[c], v)
			}
			frame++
		}
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			break
		}
		if err != nil {
			return nil, err
		}
	}
	if frame > 0 && bucket < buckets {
		for c := range channels {
			wf.Channels[c].Peaks[bucket] = [2]float64{normalise(lo[c]), normalise(hi[c])}
		}
	}
	return wf, nil
}

// normalise maps a sample to [-1, 1), rounded to 4 decimals: finer than any screen, and a shorter body.
func normalise(v int16) float64 { return math.Round(float64(v)/32768*1e4) / 1e4 }

type waveformKey struct {
	id     string
	size   int64 // a recording being written grows: its waveform changes
	points int
}

// waveformCache keeps the last results, first in first out.
type waveformCache struct {
	mu     sync.Mutex
	bodies map[waveformKey][]byte
	keys   []waveformKey // ring, in insertion order
	next   int
}

func (c *waveformCache) get(k waveformKey) ([]byte, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	b, ok := c.bodies[k]
	return b, ok
}

func (c *waveformCache) put(k waveformKey, body []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.bodies == nil {
		c.bodies = map[waveformKey][]byte{}
	}
	if _, ok := c.bodies[k]; ok {
		return
	}
	if len(c.keys) < waveformCached {
		c.keys = append(c.keys, k)
	} else {
		delete(c.bodies, c.keys[c.next])
		c.keys[c.next] = k
		c.next = (c.next + 1) % waveformCached
	}
	c.bodies[k] = body
}
