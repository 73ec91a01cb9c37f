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
		ratios := prometheus.LinearBuckets(0.05, 0.1, 10) // 0.05 … 0.95
		hist := func(name, help string, buckets []float64) prometheus.Histogram {
			return prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: "siphook", Subsystem: "recording", Name: name, Help: help, Buckets: buckets})
		}
		r.met.silence = hist("silence_ratio", "Share of each finished recording with no channel speaking.", ratios)
		r.met.talkOver = hist("talk_over_ratio", "Share of each finished recording with two or more channels speaking.", ratios)
		r.met.longestSilence = hist("longest_silence_seconds", "Longest stretch with no channel speaking, per finished recording.",
			[]float64{1, 2, 5, 10, 20, 30, 60, 120, 300})
		r.met.mos = hist("mos", "E-model MOS estimate of each finished SIPREC recording's worst stream.", []float64{1.5, 2, 2.5, 3, 3.5, 3.8, 4, 4.2, 4.4})
		r.met.jitter = hist("stream_jitter_seconds", "RFC 3550 interarrival jitter of each recorded RTP stream at its end.",
			[]float64{.001, .002, .005, .01, .02, .04, .08, .16})
		r.met.loss = hist("stream_loss_ratio", "Share of the packets of each recorded RTP stream that never arrived.",
			[]float64{.001, .005, .01, .02, .05, .1, .2})
		reg.MustRegister(r.met.documents, r.met.writeErrors, open, free, low, r.met.silence, r.met.talkOver, r.met.longestSilence,
			r.met.mos, r.met.jitter, r.met.loss)
	}
}

type metrics struct {
	documents                              *prometheus.CounterVec
	writeErrors                            prometheus.Counter
	silence, talkOver, longestSilence, mos prometheus.Histogram
	jitter, loss                           prometheus.Histogram
}

// countDocument counts a written document and, for a finished recording, observes its analytics.
func (r *Recorder) countDocument(doc *Document) {
	if r.met == nil {
		return
	}
	r.met.documents.WithLabelValues(doc.State).Inc()
	if doc.State == StateRecording || doc.Analytics == nil {
		return
	}
	a := doc.Analytics
	r.met.silence.Observe(a.SilenceRatio)
	r.met.talkOver.Observe(a.TalkOverRatio)
	r.met.longestSilence.Observe(a.LongestSilenceSec)
	if a.MOS > 0 {
		r.met.mos.Observe(a.MOS)
	}
	for _, c := range doc.Channels {
		if st := c.Stats; st.Expected > 0 {
			r.met.jitter.Observe(st.JitterMs / 1000)
			r.met.loss.Observe(float64(st.Lost) / float64(st.Expected))
		}
	}
}

func (r *Recorder) countWriteError() {
	if r.met != nil {
		r.met.writeErrors.Inc()
	}
}
