//go:build linux

package main

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/siphook/siphook/audiohook"
	"github.com/siphook/siphook/audiohook/hooktest"
	"github.com/siphook/siphook/internal/audiotest"
	"github.com/siphook/siphook/internal/g711"
)

// AudioHook audio: a few goroutines send one 200 ms frame (the reference client's size) to every open
// session every 200 ms. A paused session takes the frame without sending it, as a Genesys client does.

const hookFrame = 200 * time.Millisecond

type hookStream struct {
	s       *hooktest.Session
	frame   []byte
	idx     int
	next    int64  // the next frame index (frames of hookFrame since the pump's epoch) to produce
	sent    uint64 // frames sent while not paused
	held    uint64 // frames produced while paused (not sent)
	skipped uint64 // frames not produced because the generator fell behind
	errors  uint64
	err     error // first send error
}

// hookCatchUp is how many frames (1 s) a session may send in one tick after late ticks.
const hookCatchUp = 5

type hookPump struct {
	epoch   time.Time
	shards  []*hookShard
	sent    atomic.Uint64 // frames sent, all sessions
	skipped atomic.Uint64
	stop    chan struct{}
	wg      sync.WaitGroup
}

type hookShard struct {
	mu      sync.Mutex
	streams []*hookStream
}

func newHookPump(n int) *hookPump {
	p := &hookPump{epoch: time.Now(), stop: make(chan struct{})}
	for i := range max(n, 1) {
		sh := &hookShard{}
		p.shards = append(p.shards, sh)
		phase := hookFrame * time.Duration(i) / time.Duration(max(n, 1))
		p.wg.Go(func() { p.run(sh, phase) })
	}
	return p
}

func (p *hookPump) close() {
	close(p.stop)
	p.wg.Wait()
}

func (p *hookPump) run(sh *hookShard, phase time.Duration) {
	select {
	case <-time.After(phase):
	case <-p.stop:
		return
	}
	t := time.NewTicker(hookFrame)
	defer t.Stop()
	for {
		select {
		case <-p.stop:
			return
		case now := <-t.C:
			p.tick(sh, int64(now.Sub(p.epoch)/hookFrame))
		}
	}
}

// tick produces every frame due on the shard's sessions, in real time: a session sends the frames it is
// behind by (up to hookCatchUp), as a client catching up after a stall does.
func (p *hookPump) tick(sh *hookShard, target int64) {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	for _, st := range sh.streams {
		if behind := target - st.next + 1; behind > hookCatchUp {
			skip := behind - hookCatchUp
			st.next += skip
			st.skipped += uint64(skip)
			p.skipped.Add(uint64(skip))
		}
		for ; st.next <= target; st.next++ {
			paused := st.s.Paused()
			if err := st.s.SendAudio(st.frame); err != nil {
				st.errors++
				if st.err == nil {
					st.err = err
				}
				continue
			}
			if paused {
				st.held++
			} else {
				st.sent++
				p.sent.Add(1)
			}
		}
	}
}

func (p *hookPump) add(i int, s *hooktest.Session, frame []byte) (*hookShard, *hookStream) {
	sh := p.shards[i%len(p.shards)]
	st := &hookStream{s: s, frame: frame, next: int64(time.Since(p.epoch)/hookFrame) + 1}
	sh.mu.Lock()
	st.idx = len(sh.streams)
	sh.streams = append(sh.streams, st)
	sh.mu.Unlock()
	return sh, st
}

func (p *hookPump) remove(sh *hookShard, st *hookStream) {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if st.idx < 0 {
		return
	}
	last := sh.streams[len(sh.streams)-1]
	sh.streams[st.idx], last.idx = last, st.idx
	sh.streams[len(sh.streams)-1] = nil
	sh.streams = sh.streams[:len(sh.streams)-1]
	st.idx = -1
}

// hookFrames caches one 200 ms frame per (media, tone pair): tones are multiples of 50 Hz, so a whole number
// of cycles fits in the frame and it repeats seamlessly.
type hookFrames struct {
	mu sync.Mutex
	m  map[hookFrameKey][]byte
}

type hookFrameKey struct {
	format   string
	channels int
	rate     int
	pair     int
}

func (h *hookFrames) get(media audiohook.MediaParameter, pair int) []byte {
	k := hookFrameKey{media.Format, len(media.Channels), media.Rate, pair % len(toneA)}
	h.mu.Lock()
	defer h.mu.Unlock()
	if f, ok := h.m[k]; ok {
		return f
	}
	n := media.Rate * int(hookFrame/time.Millisecond) / 1000
	tones := [][]int16{audiotest.Sine(toneA[k.pair], 0.5, media.Rate, 0, n), audiotest.Sine(toneB[k.pair], 0.5, media.Rate, 0, n)}
	var f []byte
	for i := range n {
		for c := range k.channels {
			s := tones[c%2][i]
			if media.Format == audiohook.FormatL16 {
				f = append(f, byte(s), byte(uint16(s)>>8))
			} else {
				f = append(f, g711.EncodeULaw(s))
			}
		}
	}
	if h.m == nil {
		h.m = map[hookFrameKey][]byte{}
	}
	h.m[k] = f
	return f
}
