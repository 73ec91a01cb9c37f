package emodel

import (
	"math"
	"testing"
	"time"
)

func near(got, want, tol float64) bool { return math.Abs(got-want) <= tol }

// TestWorkedExamples checks the model against numbers worked out by hand.
func TestWorkedExamples(t *testing.T) {
	tests := []struct {
		name         string
		codec        string
		loss, burstR float64
		delay        time.Duration
		wantR        float64
		wantMOS      float64
	}{
		// No loss, no delay: R = 93.2 − 0 − 0 = 93.2.
		// MOS = 1 + 0.035·93.2 + 93.2·33.2·6.8·7e-6 = 1 + 3.262 + 0.147286 = 4.409286.
		{"G.711 clean", "PCMU", 0, 1, 0, 93.2, 4.4093},
		// 2 % random loss: Ie,eff = 0 + 95·2/(2/1 + 25.1) = 190/27.1 = 7.011070; R = 93.2 − 7.011070 = 86.188930.
		// MOS = 1 + 0.035·86.188930 + 86.188930·26.188930·13.811070·7e-6
		//     = 1 + 3.016613 + 0.218220 = 4.234833.
		{"G.711 2% random loss", "PCMA", 0.02, 1, 0, 86.1889, 4.2348},
		// The same loss in bursts of BurstR 2: Ie,eff = 190/(2/2 + 25.1) = 190/26.1 = 7.279693; R = 85.920307.
		// MOS = 1 + 3.007211 + 85.920307·25.920307·14.079693·7e-6 = 4.226707.
		{"G.711 2% bursty loss", "PCMU", 0.02, 2, 0, 85.9203, 4.2267},
		// 100 ms one way: Id = 0.024·100 = 2.4; R = 90.8. MOS = 1 + 3.178 + 90.8·30.8·9.2·7e-6 = 4.358104.
		{"G.711 100 ms", "PCMU", 0, 1, 100 * time.Millisecond, 90.8, 4.3581},
		// 200 ms one way: Id = 0.024·200 + 0.11·(200 − 177.3) = 4.8 + 2.497 = 7.297; R = 85.903.
		// MOS = 1 + 3.006605 + 85.903·25.903·14.097·7e-6 = 4.226180.
		{"G.711 200 ms", "PCMU", 0, 1, 200 * time.Millisecond, 85.903, 4.2262},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := R(tt.codec, tt.loss, tt.burstR, tt.delay); !near(got, tt.wantR, 0.0001) {
				t.Errorf("R = %.6f, want %.4f", got, tt.wantR)
			}
			if got := MOS(tt.codec, tt.loss, tt.burstR, tt.delay); !near(got, tt.wantMOS, 0.0001) {
				t.Errorf("MOS = %.6f, want %.4f", got, tt.wantMOS)
			}
		})
	}
}

func TestMOSFallsAsLossRises(t *testing.T) {
	for _, codec := range []string{"PCMU", "PCMA", "G722"} {
		prev := MOS(codec, 0, 1, 40*time.Millisecond)
		for loss := 0.005; loss <= 0.5; loss += 0.005 {
			got := MOS(codec, loss, 1, 40*time.Millisecond)
			if got >= prev {
				t.Fatalf("%s: MOS %.4f at %.1f%% loss, not below %.4f at the step before", codec, got, 100*loss, prev)
			}
			prev = got
		}
		// Burstier loss of the same amount is worse.
		if r, b := MOS(codec, 0.05, 1, 0), MOS(codec, 0.05, 3, 0); b >= r {
			t.Errorf("%s: 5%% loss in bursts (BurstR 3) scores %.3f, random %.3f; want bursts lower", codec, b, r)
		}
	}
}

// TestDelayMattersMostAbove177ms: below 177.3 ms delay costs 0.024 R per ms, above it 0.134.
func TestDelayMattersMostAbove177ms(t *testing.T) {
	slope := func(from time.Duration) float64 {
		return (R("PCMU", 0, 1, from) - R("PCMU", 0, 1, from+10*time.Millisecond)) / 10
	}
	if got := slope(100 * time.Millisecond); !near(got, 0.024, 1e-9) {
		t.Errorf("R falls %.4f per ms at 100 ms, want 0.024", got)
	}
	if got := slope(200 * time.Millisecond); !near(got, 0.134, 1e-9) {
		t.Errorf("R falls %.4f per ms at 200 ms, want 0.134", got)
	}
	prev := MOS("PCMU", 0, 1, 0)
	for d := 10 * time.Millisecond; d <= 500*time.Millisecond; d += 10 * time.Millisecond {
		got := MOS("PCMU", 0, 1, d)
		if got >= prev {
			t.Fatalf("MOS %.4f at %v, not below %.4f 10 ms earlier", got, d, prev)
		}
		prev = got
	}
}

func TestMOSFromRClamps(t *testing.T) {
	for _, tt := range []struct{ r, want float64 }{{-5, 1}, {0, 1}, {3, 1}, {100, 4.5}, {120, 4.5}, {math.NaN(), 1}} {
		if got := MOSFromR(tt.r); got != tt.want {
			t.Errorf("MOSFromR(%v) = %v, want %v", tt.r, got, tt.want)
		}
	}
	// Total loss is the floor, not below it.
	if got := MOS("PCMU", 1, 1, time.Second); got != 1 {
		t.Errorf("MOS with every packet lost and 1 s delay = %v, want 1", got)
	}
}

func TestBurstR(t *testing.T) {
	tests := []struct {
		name                string
		loss, lossAfterLoss float64
		want                float64
	}{
		{"no loss", 0, 0, 1},
		// Random 10 % loss: P(loss|loss) = 0.1, so BurstR = 0.9/0.9 = 1.
		{"random", 0.1, 0.1, 1},
		// 10 % lost in runs of 3: P(loss|loss) = 2/3, BurstR = 0.9/(1/3) = 2.7.
		{"runs of 3", 0.1, 2.0 / 3, 2.7},
		// Every tenth packet: P(loss|loss) = 0 would give 0.9; scored as random.
		{"periodic", 0.1, 0, 1},
	}
	for _, tt := range tests {
		if got := BurstR(tt.loss, tt.lossAfterLoss); !near(got, tt.want, 1e-9) {
			t.Errorf("%s: BurstR = %v, want %v", tt.name, got, tt.want)
		}
	}
	if got := BurstR(0.5, 1); !math.IsInf(got, 1) {
		t.Errorf("BurstR with P(loss|loss) 1 = %v, want +Inf", got)
	}
	// An infinite burst ratio is still a finite impairment: Ie,eff = 95·Ppl/Bpl.
	c, _ := Lookup("PCMU")
	if got := c.IeEff(0.1, math.Inf(1)); !near(got, 95*10/25.1, 1e-9) {
		t.Errorf("IeEff(10%%, +Inf) = %v, want %v", got, 95*10/25.1)
	}
}

func TestLookup(t *testing.T) {
	for _, name := range []string{"PCMU", "pcmu", "PCMA", "G722", "g722", "G.722", "G.711"} {
		if _, ok := Lookup(name); !ok {
			t.Errorf("Lookup(%q) found nothing", name)
		}
	}
	if _, ok := Lookup("opus"); ok {
		t.Error("Lookup(opus) found a codec")
	}
	if got := MOS("opus", 0, 1, 0); got != 0 {
		t.Errorf("MOS for an unknown codec = %v, want 0 (no estimate)", got)
	}
}

func TestMouthToEar(t *testing.T) {
	if got := MouthToEar(20*time.Millisecond, 5*time.Millisecond, 20*time.Millisecond); got != 50*time.Millisecond {
		t.Errorf("MouthToEar = %v, want 50ms", got)
	}
}
