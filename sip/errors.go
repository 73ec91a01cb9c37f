package sip

import (
	"errors"
	"fmt"
)

// Error is a failure that knows the SIP response it deserves. Handlers wrap what went wrong in an Error at
// the place it went wrong; respondError turns it into a response in one place.
type Error struct {
	Code    int    // SIP status code
	Reason  string // reason phrase
	Warning string // text of a Warning: 399 header, for the SRC's logs
	Headers map[string]string
	Err     error // underlying cause, for our logs
}

func (e *Error) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("%d %s: %s: %v", e.Code, e.Reason, e.Warning, e.Err)
	}
	return fmt.Sprintf("%d %s: %s", e.Code, e.Reason, e.Warning)
}

func (e *Error) Unwrap() error { return e.Err }

func sipError(code int, reason, warning string, cause error) *Error {
	return &Error{Code: code, Reason: reason, Warning: warning, Err: cause}
}

// classify maps any error to the response it deserves: an *Error keeps its own; body parser sentinels get
// their 4xx; anything else is a 500.
func classify(err error) *Error {
	if e, ok := errors.AsType[*Error](err); ok {
		return e
	}
	switch {
	case errors.Is(err, ErrBodyTooLarge), errors.Is(err, ErrMetadataTooLarge), errors.Is(err, ErrSDPTooLarge):
		return sipError(413, "Request Entity Too Large", "body too large", err)
	case errors.Is(err, ErrUnsupportedContentType), errors.Is(err, ErrRequiredPartUnsupported):
		e := sipError(415, "Unsupported Media Type", "unsupported body", err)
		e.Headers = map[string]string{"Accept": acceptHeader}
		return e
	case errors.Is(err, ErrMalformedBody):
		return sipError(400, "Bad Request", "malformed body", err)
	}
	return sipError(500, "Server Internal Error", "internal error", err)
}
