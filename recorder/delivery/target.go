package delivery

import (
	"context"
	"errors"
	"io"
)

// Target is an archive recordings are shipped to. Object names are the recordings' paths relative to the
// recordings directory (YYYY/MM/DD/<id>.wav, .json), under the target's own prefix, so sending the same
// file again replaces it with itself: delivery is at-least-once and idempotent.
type Target interface {
	// Name identifies the target in configuration, metrics and logs.
	Name() string
	// Put stores size bytes read from body under name. sha256 is the hex SHA-256 of the content, for targets
	// that can store or check it.
	Put(ctx context.Context, name string, body io.ReadSeeker, size int64, sha256, contentType string) error
	// Verify checks that name holds exactly the content with that size and SHA-256 (by HEAD/stat metadata or
	// by reading it back, as the target is configured). A mismatch is ErrMismatch.
	Verify(ctx context.Context, name string, size int64, sha256 string) error
}

// ErrMismatch is returned by Verify when the stored object differs from what was sent.
var ErrMismatch = errors.New("delivery: stored object differs from the local file")

// Permanent marks an error retrying cannot fix (bad credentials are not one: they get fixed in config).
type Permanent struct{ Err error }

func (p *Permanent) Error() string { return p.Err.Error() }
func (p *Permanent) Unwrap() error { return p.Err }
