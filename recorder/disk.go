package recorder

import (
	"errors"
	"fmt"
	"math"
	"time"
)

// DefaultMinFreeBytes is Config.MinFreeBytes by default: 1 GiB, about 18 hours of 8 kHz stereo.
const DefaultMinFreeBytes = 1 << 30

// diskCheckInterval is how often the flusher reads the free space.
const diskCheckInterval = time.Second

// ErrDiskLow matches (errors.Is) the *DiskLowError of Accepting and Start.
var ErrDiskLow = errors.New("recorder: recordings disk below the free-space floor")

// DiskLowError says the recordings disk has less free space than Config.MinFreeBytes: new recordings are
// refused, those in progress go on.
type DiskLowError struct {
	Free, Floor uint64 // bytes
}

func (e *DiskLowError) Error() string {
	return fmt.Sprintf("recordings disk has %s free, below the floor of %s", formatBytes(e.Free), formatBytes(e.Floor))
}

// Is makes errors.Is(err, ErrDiskLow) true.
func (e *DiskLowError) Is(target error) bool { return target == ErrDiskLow }

// WithFreeSpace sets how free space is measured: f returns the bytes available to the recorder on the file
// system holding dir (Config.Dir). An error means unknown, and recordings are accepted. The default asks the
// operating system (statfs on Linux; unknown elsewhere).
func WithFreeSpace(f func(dir string) (free uint64, err error)) Option {
	return func(r *Recorder) {
		if f != nil {
			r.freeSpace = f
		}
	}
}

// diskState is the latest free-space reading.
type diskState struct {
	free  uint64
	known bool // false: the reading failed, or the platform cannot tell
	low   bool // known and below a non-zero floor
}

// Accepting says whether a new recording may start: nil, a *DiskLowError (errors.Is ErrDiskLow) while the
// recordings disk is below Config.MinFreeBytes, or ErrClosed. It is cheap enough for every INVITE: the
// flusher refreshes the reading once a second; the first call takes one itself. Callers refuse a session
// before accepting any audio when it fails; recordings already running are never cut short by it.
func (r *Recorder) Accepting() error {
	if r.isClosed() {
		return ErrClosed
	}
	return r.diskLow()
}

func (r *Recorder) diskLow() error {
	if r.cfg.MinFreeBytes <= 0 {
		return nil
	}
	if s := r.diskState(); s.low {
		return &DiskLowError{Free: s.free, Floor: uint64(r.cfg.MinFreeBytes)}
	}
	return nil
}

// diskState returns the latest reading, taking the first one if there is none yet.
func (r *Recorder) diskState() diskState {
	if s := r.disk.Load(); s != nil {
		return *s
	}
	r.refreshDisk()
	return *r.disk.Load()
}

// refreshDisk reads the free space and logs the transitions: below the floor at error, back above it at
// info, an unreadable disk once at warn.
func (r *Recorder) refreshDisk() {
	r.diskMu.Lock()
	defer r.diskMu.Unlock()
	free, err := r.freeSpace(r.cfg.Dir)
	floor := uint64(max(r.cfg.MinFreeBytes, 0))
	s := diskState{free: free, known: err == nil}
	s.low = s.known && floor > 0 && free < floor
	old := r.disk.Swap(&s)
	wasLow := old != nil && old.low

	switch {
	case err != nil:
		// Once per stretch of failures; a platform that cannot tell at all is not worth a warning.
		if (old == nil || old.known) && !errors.Is(err, errors.ErrUnsupported) {
			r.log.Warn("cannot read the free space of the recordings disk: accepting new recordings", "dir", r.cfg.Dir, "error", err)
		}
	case s.low && !wasLow:
		r.log.Error("recordings disk below the free-space floor: refusing new recordings", "dir", r.cfg.Dir,
			"free_bytes", free, "floor_bytes", floor)
	case !s.low && wasLow:
		r.log.Info("recordings disk back above the free-space floor: accepting new recordings", "dir", r.cfg.Dir,
			"free_bytes", free, "floor_bytes", floor)
	}
}

// formatBytes writes n in IEC units: "512 B", "1.0 GiB", "37.5 MiB".
func formatBytes(n uint64) string {
	if n < 1024 {
		return fmt.Sprintf("%d B", n)
	}
	units := []string{"KiB", "MiB", "GiB", "TiB", "PiB", "EiB"}
	v, i := float64(n)/1024, 0
	for v >= 1024 && i < len(units)-1 {
		v /= 1024
		i++
	}
	return fmt.Sprintf("%.1f %s", math.Floor(v*10)/10, units[i])
}
