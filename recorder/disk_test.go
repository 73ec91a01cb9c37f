package recorder

import (
	"errors"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// fakeDisk is a free-space reading the test sets. The flusher may read it at any moment too.
type fakeDisk struct {
	free  atomic.Uint64
	fails atomic.Bool
}

func (d *fakeDisk) read(string) (uint64, error) {
	if d.fails.Load() {
		return 0, errors.New("statfs: input/output error")
	}
	return d.free.Load(), nil
}

func diskMetrics(t *testing.T, reg *prometheus.Registry) (free, low float64) {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	free, low = -1, -1
	for _, mf := range mfs {
		switch mf.GetName() {
		case "siphook_recorder_disk_free_bytes":
			free = mf.GetMetric()[0].GetGauge().GetValue()
		case "siphook_recorder_disk_low":
			low = mf.GetMetric()[0].GetGauge().GetValue()
		}
	}
	return free, low
}

func TestDiskFloor(t *testing.T) {
	const floor = 1 << 20
	disk := &fakeDisk{}
	disk.free.Store(5 * floor)
	reg := prometheus.NewRegistry()
	var logs lockedBuffer
	r := testRecorder(t, func(c *Config) { c.MinFreeBytes = floor },
		WithFreeSpace(disk.read), WithRegisterer(reg), WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))

	// The first call takes a reading itself.
	if err := r.Accepting(); err != nil {
		t.Fatalf("Accepting with room: %v", err)
	}
	rec := start(t, r, Spec{ID: "in-progress", Channels: 1, Start: t0})
	rec.Channel(0).WriteSamples(0, tone(toneA, 0, rate))
	if free, low := diskMetrics(t, reg); free != 5*floor || low != 0 {
		t.Errorf("metrics free=%v low=%v, want %d and 0", free, low, 5*floor)
	}

	// Below the floor: new recordings are refused, the open one goes on.
	disk.free.Store(floor - 1)
	r.refreshDisk()
	err := r.Accepting()
	var low *DiskLowError
	if !errors.Is(err, ErrDiskLow) || !errors.As(err, &low) || low.Free != floor-1 || low.Floor != floor {
		t.Fatalf("Accepting below the floor = %#v, want a *DiskLowError{%d, %d}", err, floor-1, floor)
	}
	if want := "recordings disk has 1023.9 KiB free, below the floor of 1.0 MiB"; err.Error() != want {
		t.Errorf("error %q, want %q", err, want)
	}
	if _, err := r.Start(Spec{ID: "refused", Channels: 1, Start: t0}); !errors.Is(err, ErrDiskLow) {
		t.Errorf("Start below the floor = %v, want ErrDiskLow", err)
	}
	if _, err := os.Stat(filepath.Join(r.cfg.Dir, t0Dir, "refused.wav")); !os.IsNotExist(err) {
		t.Errorf("a refused recording left a file: %v", err)
	}
	rec.Channel(0).WriteSamples(rate, tone(toneA, rate, rate))
	if err := rec.Flush(); err != nil {
		t.Fatal(err)
	}
	if free, low := diskMetrics(t, reg); free != floor-1 || low != 1 {
		t.Errorf("metrics free=%v low=%v, want %d and 1", free, low, floor-1)
	}
	r.refreshDisk() // still low: no second log line
	if err := rec.Close(nil); err != nil {
		t.Fatalf("closing the recording in progress while low: %v", err)
	}
	equalChannels(t, readWAV(t, rec.WAVPath()), model(1, []write{{0, 0, 2 * rate, toneA}}))
	if rec.Channel(0).Dropped() != 0 {
		t.Errorf("%d samples dropped while the disk was low", rec.Channel(0).Dropped())
	}

	// At the floor again: accepted (the floor is the least that must stay free).
	disk.free.Store(floor)
	r.refreshDisk()
	if err := r.Accepting(); err != nil {
		t.Errorf("Accepting at the floor: %v", err)
	}
	if free, low := diskMetrics(t, reg); free != floor || low != 0 {
		t.Errorf("metrics free=%v low=%v, want %d and 0", free, low, floor)
	}
	rec2 := start(t, r, Spec{ID: "after", Channels: 1, Start: t0})
	rec2.Close(nil)

	out := logs.String()
	if n := strings.Count(out, "level=ERROR"); n != 1 || !strings.Contains(out, "refusing new recordings") {
		t.Errorf("want one error log saying new recordings are refused:\n%s", out)
	}
	if n := strings.Count(out, "level=INFO"); n != 1 || !strings.Contains(out, "accepting new recordings") {
		t.Errorf("want one info log on recovery:\n%s", out)
	}
}

func TestDiskFloorDisabled(t *testing.T) {
	disk := &fakeDisk{} // a full disk
	reg := prometheus.NewRegistry()
	r := testRecorder(t, func(c *Config) { c.MinFreeBytes = 0 }, WithFreeSpace(disk.read), WithRegisterer(reg))
	if err := r.Accepting(); err != nil {
		t.Errorf("Accepting with no floor: %v", err)
	}
	start(t, r, Spec{Channels: 1}).Close(nil)
	if free, low := diskMetrics(t, reg); free != 0 || low != 0 {
		t.Errorf("metrics free=%v low=%v, want 0 and 0", free, low)
	}
}

// A disk whose free space cannot be read does not stop recording: that is logged once, and the gauge says
// unknown.
func TestDiskFreeSpaceUnknown(t *testing.T) {
	disk := &fakeDisk{}
	disk.fails.Store(true)
	reg := prometheus.NewRegistry()
	var logs lockedBuffer
	r := testRecorder(t, func(c *Config) { c.MinFreeBytes = 1 }, WithFreeSpace(disk.read), WithRegisterer(reg),
		WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))
	for range 3 {
		r.refreshDisk()
		if err := r.Accepting(); err != nil {
			t.Fatalf("Accepting with free space unknown: %v", err)
		}
	}
	if free, low := diskMetrics(t, reg); !math.IsNaN(free) || low != 0 {
		t.Errorf("metrics free=%v low=%v, want NaN and 0", free, low)
	}
	if n := strings.Count(logs.String(), "level=WARN"); n != 1 {
		t.Errorf("%d warnings, want 1:\n%s", n, logs.String())
	}

	// Low, then unreadable: accepted again, rather than stuck refusing on a stale reading.
	disk.fails.Store(false)
	r.refreshDisk()
	if err := r.Accepting(); !errors.Is(err, ErrDiskLow) {
		t.Fatalf("Accepting on a full disk = %v", err)
	}
	disk.fails.Store(true)
	r.refreshDisk()
	if err := r.Accepting(); err != nil {
		t.Errorf("Accepting with free space unknown after low: %v", err)
	}
}

func TestAcceptingAfterClose(t *testing.T) {
	r := testRecorder(t, nil)
	r.Close()
	if err := r.Accepting(); !errors.Is(err, ErrClosed) {
		t.Errorf("Accepting after Close = %v, want ErrClosed", err)
	}
}

func TestFormatBytes(t *testing.T) {
	for n, want := range map[uint64]string{
		0:              "0 B",
		1023:           "1023 B",
		1024:           "1.0 KiB",
		1<<30 - 1:      "1023.9 MiB",
		1 << 30:        "1.0 GiB",
		3<<40 + 1<<39:  "3.5 TiB",
		math.MaxUint64: "16.0 EiB",
	} {
		if got := formatBytes(n); got != want {
			t.Errorf("formatBytes(%d) = %q, want %q", n, got, want)
		}
	}
}
