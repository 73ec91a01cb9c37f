package delivery

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/siphook/siphook/recorder"
)

// The on-disk queue: one JSON file per (recording, target) and per (recording, webhook) in
// <recordings>/.queue/, named <recording id>.<target or webhook>.json.
const (
	queueDir     = ".queue"
	jobExt       = ".json"
	badExt       = ".bad" // appended to a job file that cannot be read; never loaded again
	tmpExt       = ".tmp" // a job file being written (a crash can leave one: removed at load)
	jobVersion   = 1
	maxJobFile   = 4 << 20 // a document with thousands of events is still far below
	maxIDLen     = 128     // as the recorder's ids
	jobFilePerm  = 0o640
	queueDirPerm = 0o750
)

// Job kinds.
const (
	kindTarget  = "target"  // the WAV and the JSON to a Target
	kindWebhook = "webhook" // an event POSTed to a webhook
)

// Webhook event names on the wire (X-Siphook-Event, "event").
const (
	wireCompleted   = "recording.completed"
	wireFailed      = "recording.failed"
	wireNotRecorded = "recording.not_recorded"
)

// jobFile is the content of a job file.
type jobFile struct {
	Version     int               `json:"version"`
	Kind        string            `json:"kind"`
	Target      string            `json:"target"` // target or webhook name
	RecordingID string            `json:"recording_id"`
	DocRel      string            `json:"doc"`             // the document's path relative to the recordings directory
	Event       string            `json:"event,omitempty"` // webhooks: recording.completed, …
	Created     time.Time         `json:"created"`         // when it was enqueued: its age for stuck_after
	Done        bool              `json:"done,omitempty"`  // delete_local: this target has it; the others do not yet
	Document    recorder.Document `json:"document"`
}

// fileName is the job file's name in the queue directory.
func (j *jobFile) fileName() string { return jobName(j.RecordingID, j.Target) }

func jobName(recordingID, target string) string { return recordingID + "." + target + jobExt }

// errBadJob is the error of job files that cannot be used; they are moved aside.
var errBadJob = errors.New("delivery: bad job file")

// decodeJob reads a job file. name, when not empty, is the file's name and must be the one the content
// implies (a renamed or copied file is not trusted). Errors wrap errBadJob.
func decodeJob(name string, data []byte) (*jobFile, error) {
	if len(data) > maxJobFile {
		return nil, fmt.Errorf("%w: %d bytes, more than %d", errBadJob, len(data), maxJobFile)
	}
	var j jobFile
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&j); err != nil {
		return nil, fmt.Errorf("%w: %v", errBadJob, err)
	}
	if dec.More() {
		return nil, fmt.Errorf("%w: data after the JSON object", errBadJob)
	}
	if err := j.validate(); err != nil {
		return nil, fmt.Errorf("%w: %v", errBadJob, err)
	}
	if name != "" && name != j.fileName() {
		return nil, fmt.Errorf("%w: file name %q does not match its content (%q)", errBadJob, name, j.fileName())
	}
	return &j, nil
}

// validate checks what the queue relies on: known version and kind, names fit for file names and labels,
// paths that stay inside the recordings directory.
func (j *jobFile) validate() error {
	if j.Version != jobVersion {
		return fmt.Errorf("unknown version %d", j.Version)
	}
	switch j.Kind {
	case kindTarget:
		if j.Event != "" {
			return errors.New("a target job has no event")
		}
	case kindWebhook:
		if j.Event != wireCompleted && j.Event != wireFailed && j.Event != wireNotRecorded {
			return fmt.Errorf("unknown event %q", j.Event)
		}
		if j.Done {
			return errors.New("a webhook job is never kept done")
		}
	default:
		return fmt.Errorf("unknown kind %q", j.Kind)
	}
	if !validName(j.Target) {
		return fmt.Errorf("bad target name %q", j.Target)
	}
	if !recorder.ValidID(j.RecordingID) {
		return fmt.Errorf("bad recording id %q", j.RecordingID)
	}
	if j.Document.RecordingID != j.RecordingID {
		return fmt.Errorf("document of recording %q in the job of %q", j.Document.RecordingID, j.RecordingID)
	}
	if !validObjectPath(j.DocRel) {
		return fmt.Errorf("bad document path %q", j.DocRel)
	}
	if a := j.Document.Audio; a != nil && a.File != "" && !validObjectPath(a.File) {
		return fmt.Errorf("bad audio path %q", a.File)
	}
	if j.Created.IsZero() {
		return errors.New("no creation time")
	}
	return nil
}

// eventFor is the webhook event of a document's state ("" for states that have none, such as recording),
// with its configuration name and its wire name.
func eventFor(state string) (event, wire string) {
	switch state {
	case recorder.StateCompleted:
		return EventCompleted, wireCompleted
	case recorder.StateFailed:
		return EventFailed, wireFailed
	case recorder.StateNeverActivated:
		return EventNotRecorded, wireNotRecorded
	}
	return "", ""
}

// writeFileSync writes data to dir/name atomically and durably: a temporary file, fsync'd, renamed over
// the old one. The directory itself is synced by the caller (syncDir), once for a batch of files.
func writeFileSync(dir, name string, data []byte) error {
	f, err := os.CreateTemp(dir, "."+name+".*"+tmpExt)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	err = errors.Join(err, f.Chmod(jobFilePerm), f.Sync(), f.Close())
	if err == nil {
		err = os.Rename(f.Name(), filepath.Join(dir, name))
	}
	if err != nil {
		os.Remove(f.Name())
	}
	return err
}

// syncDir makes renames and removals in dir durable.
func syncDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	return errors.Join(f.Sync(), f.Close())
}

// readJobFile reads a job file, refusing one larger than maxJobFile.
func readJobFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if fi, err := f.Stat(); err != nil {
		return nil, err
	} else if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%w: not a regular file", errBadJob)
	}
	data, err := io.ReadAll(io.LimitReader(f, maxJobFile+1))
	if err != nil {
		return nil, err
	}
	if len(data) > maxJobFile {
		return nil, fmt.Errorf("%w: more than %d bytes", errBadJob, maxJobFile)
	}
	return data, nil
}

// isTempName: a job file a crash left half-written.
func isTempName(name string) bool {
	return strings.HasPrefix(name, ".") && strings.HasSuffix(name, tmpExt)
}
