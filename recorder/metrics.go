package recorder

import (
	"math"

	"github.com/prometheus/client_golang/prometheus"
)

// WithRegisterer registers the recorder's metrics there: recordings open, documents written by state, write
// errors, free space on the recordings disk and whether it is below the floor.
func WithRegisterer(reg prometheus.Registerer) Option {
	return func(r *Recorder) {
		r.met = &metrics{
			documents: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "siphook", Subsystem: "recorder", Name: "documents_total",
				Help: "Metadata documents written, by the recording's state (recording, completed, never_activated, failed)."}, []string{"state"}),
			writeErrors: prometheus.NewCounter(prometheus.CounterOpts{Namespace: "siphook", Subsystem: "recorder", Name: "write_errors_total",
				Help: "Failed writes of audio or documents (disk full, I/O errors): audio may be missing from a recording."}),
		}
		for _, st := range []string{StateRecording, StateCompleted, StateNeverActivated, StateFailed} {
			r.met.documents.WithLabelValues(st)
		}
		open := prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "siphook", Subsystem: "recorder", Name: "recordings_open",
			Help: "Recordings with audio being written."}, func() float64 { return float64(r.Open()) })
		free := prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "siphook", Subsystem: "recorder", Name: "disk_free_bytes",
			Help: "Bytes available on the recordings disk at the latest reading (once a second); NaN when unknown."}, func() float64 {
			if s := r.diskState(); s.known {
				return float64(s.free)
			}
			return math.NaN()
		})
		low := prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "siphook", Subsystem: "recorder", Name: "disk_low",
			Help: "1 while the recordings disk is below min_free_bytes and new recordings are refused, else 0."}, func() float64 {
			if r.cfg.MinFreeBytes > 0 && r.diskState().low {
				return 1
			}
			return 0
		})
		reg.MustRegister(r.met.documents, r.met.writeErrors, open, free, low)
	}
}

type metrics struct {
	documents   *prometheus.CounterVec
	writeErrors prometheus.Counter
}

func (r *Recorder) countDocument(state string) {
	if r.met != nil {
		r.met.documents.WithLabelValues(state).Inc()
	}
}

func (r *Recorder) countWriteError() {
	if r.met != nil {
		r.met.writeErrors.Inc()
	}
}
