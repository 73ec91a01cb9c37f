package siptest

import (
	"math"
	"slices"
	"testing"
	"time"
)

func drops(im Impairment, n int) []int {
	var out []int
	for k := range n {
		if im.Drop(k) {
			out = append(out, k)
		}
	}
	return out
}

func TestImpairmentDropPattern(t *testing.T) {
	if got, want := drops(Impairment{Loss: 0.05}, 100), []int{9, 29, 49, 69, 89}; !slices.Equal(got, want) {
		t.Errorf("5%% of 100: dropped %v, want %v", got, want)
	}
	if got, want := drops(Impairment{Loss: 0.1}, 30), []int{4, 14, 24}; !slices.Equal(got, want) {
		t.Errorf("10%% of 30: dropped %v, want %v", got, want)
	}
	// Runs of 3 at 10 %: one block of 3 in every 10 blocks.
	if got, want := drops(Impairment{Loss: 0.1, Burst: 3}, 60), []int{12, 13, 14, 42, 43, 44}; !slices.Equal(got, want) {
		t.Errorf("10%% in runs of 3: dropped %v, want %v", got, want)
	}
	if got := drops(Impairment{}, 1000); len(got) != 0 {
		t.Errorf("no loss: dropped %v", got)
	}
}

func TestImpairmentSeeded(t *testing.T) {
	im := Impairment{Loss: 0.05, Jitter: 30 * time.Millisecond, Seed: 42}
	got := drops(im, 100000)
	if frac := float64(len(got)) / 100000; math.Abs(frac-0.05) > 0.005 {
		t.Errorf("seeded 5%%: dropped %.2f%%", 100*frac)
	}
	if again := drops(im, 100000); !slices.Equal(got, again) {
		t.Error("the same seed dropped other packets")
	}
	if other := drops(Impairment{Loss: 0.05, Seed: 43}, 100000); slices.Equal(got, other) {
		t.Error("another seed dropped the same packets")
	}
	var sum time.Duration
	for k := range 100000 {
		d := im.Delay(k)
		if d < 0 || d >= im.Jitter {
			t.Fatalf("delay %v of packet %d outside [0, %v)", d, k, im.Jitter)
		}
		sum += d
	}
	if mean := sum / 100000; mean < 14*time.Millisecond || mean > 16*time.Millisecond {
		t.Errorf("mean delay %v, want about 15ms", mean)
	}
}

func TestImpairmentDelayPattern(t *testing.T) {
	im := Impairment{Jitter: 20 * time.Millisecond}
	for k, want := range []time.Duration{0, 20 * time.Millisecond, 0, 20 * time.Millisecond} {
		if got := im.Delay(k); got != want {
			t.Errorf("Delay(%d) = %v, want %v", k, got, want)
		}
	}
	if got := (Impairment{}).Delay(1); got != 0 {
		t.Errorf("no jitter: Delay(1) = %v", got)
	}
}

// TestSendQueueOrder: packets leave by due time, ties in the order they were made.
func TestSendQueueOrder(t *testing.T) {
	t0 := time.Now()
	var q sendQueue
	for i, due := range []time.Duration{40, 20, 20, 0, 60, 20} {
		q.push(outPacket{due: t0.Add(due * time.Millisecond), ts: uint32(i)})
	}
	var got []uint32
	for _, p := range q.pkts {
		got = append(got, p.ts)
	}
	if want := []uint32{3, 1, 2, 5, 0, 4}; !slices.Equal(got, want) {
		t.Errorf("queue order %v, want %v", got, want)
	}
	if next, ok := q.next(); !ok || !next.Equal(t0) {
		t.Errorf("next = %v, %v; want %v", next, ok, t0)
	}
}

// TestSendJitter: RFC 3550 A.8 over send times; packets 20 ms apart sent alternately on time and 20 ms late
// have |D| = 20 ms each time, so J = 20·(1 − (15/16)^n) ms after n differences.
func TestSendJitter(t *testing.T) {
	var s sendJitter
	t0 := time.Now()
	for k := range 11 {
		at := t0.Add(time.Duration(k)*20*time.Millisecond + time.Duration(k%2)*20*time.Millisecond)
		s.add(at, uint32(k*160))
	}
	want := 20 * (1 - math.Pow(15.0/16, 10)) * float64(time.Millisecond)
	if math.Abs(s.j-want) > 1 {
		t.Errorf("jitter %.0f ns, want %.0f", s.j, want)
	}
}
