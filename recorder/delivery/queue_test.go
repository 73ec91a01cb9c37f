package delivery

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/siphook/siphook/recorder"
)

func validJobFile() *jobFile {
	return &jobFile{Version: jobVersion, Kind: kindTarget, Target: "arch", RecordingID: "r1", DocRel: "2026/11/21/r1.json",
		Created: qT0, Document: recorder.Document{RecordingID: "r1", State: recorder.StateCompleted, Start: qT0,
			Audio: &recorder.AudioInfo{File: "2026/11/21/r1.wav", SHA256: strings.Repeat("ab", 32)}}}
}

// TestJobFileRoundTrip: what Enqueue writes, load reads back as it was.
func TestJobFileRoundTrip(t *testing.T) {
	for _, j := range []*jobFile{
		validJobFile(),
		func() *jobFile {
			j := validJobFile()
			j.Kind, j.Target, j.Event = kindWebhook, "hook", wireNotRecorded
			return j
		}(),
		func() *jobFile { j := validJobFile(); j.Done = true; return j }(),
	} {
		data, err := json.Marshal(j)
		if err != nil {
			t.Fatal(err)
		}
		got, err := decodeJob(j.fileName(), data)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, j) {
			t.Errorf("round trip:\n got %+v\nwant %+v", got, j)
		}
	}
}

// TestJobFileRejects: each way a job file can be unusable is errBadJob.
func TestJobFileRejects(t *testing.T) {
	for name, mod := range map[string]func(*jobFile){
		"version":       func(j *jobFile) { j.Version = 2 },
		"kind":          func(j *jobFile) { j.Kind = "" },
		"target name":   func(j *jobFile) { j.Target = "a/b" },
		"recording id":  func(j *jobFile) { j.RecordingID, j.Document.RecordingID = "..", ".." },
		"document id":   func(j *jobFile) { j.Document.RecordingID = "r2" },
		"doc path":      func(j *jobFile) { j.DocRel = "/etc/passwd" },
		"audio path":    func(j *jobFile) { j.Document.Audio.File = "a/../../b.wav" },
		"created":       func(j *jobFile) { j.Created = time.Time{} },
		"target event":  func(j *jobFile) { j.Event = wireCompleted },
		"webhook event": func(j *jobFile) { j.Kind, j.Event = kindWebhook, "recording.exploded" },
		"webhook done":  func(j *jobFile) { j.Kind, j.Event, j.Done = kindWebhook, wireFailed, true },
	} {
		j := validJobFile()
		mod(j)
		data, _ := json.Marshal(j)
		if _, err := decodeJob("", data); !errors.Is(err, errBadJob) {
			t.Errorf("%s: %v, want errBadJob", name, err)
		}
	}
	data, _ := json.Marshal(validJobFile())
	for name, c := range map[string]struct {
		file string
		data []byte
	}{
		"renamed":  {"r2.arch.json", data},
		"trailing": {"", append(append([]byte(nil), data...), "{}"...)},
		"huge":     {"", append(data, make([]byte, maxJobFile)...)},
		"array":    {"", []byte("[]")},
	} {
		if _, err := decodeJob(c.file, c.data); !errors.Is(err, errBadJob) {
			t.Errorf("%s: %v, want errBadJob", name, err)
		}
	}
}

// FuzzJobFile: decoding arbitrary job files never panics, and what decodes encodes back to itself.
func FuzzJobFile(f *testing.F) {
	for _, j := range []*jobFile{validJobFile(), func() *jobFile { j := validJobFile(); j.Kind, j.Event = kindWebhook, wireFailed; return j }()} {
		data, _ := json.Marshal(j)
		f.Add(j.fileName(), data)
		f.Add("", data[:len(data)/2])
	}
	f.Add("x.json", []byte(`{"version":1,"kind":"target","target":"a","recording_id":"r","doc":"r.json","created":"2026-01-01T00:00:00Z","document":{"recording_id":"r","audio":null}}`))
	f.Add("", []byte(`{"version":1e400}`))
	f.Add("", []byte("null"))
	f.Fuzz(func(t *testing.T, name string, data []byte) {
		j, err := decodeJob(name, data)
		if err != nil {
			if !errors.Is(err, errBadJob) {
				t.Fatalf("error %v is not errBadJob", err)
			}
			return
		}
		again, err := json.Marshal(j)
		if err != nil {
			t.Fatal(err)
		}
		j2, err := decodeJob(j.fileName(), again)
		if err != nil {
			t.Fatalf("re-encoded job does not decode: %v", err)
		}
		if j2.fileName() != j.fileName() || j2.DocRel != j.DocRel || j2.Kind != j.Kind {
			t.Fatalf("round trip changed the job: %+v vs %+v", j2, j)
		}
	})
}
