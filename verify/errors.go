// Package verify holds the pure primitives that webhook adapters are built
// from: HMAC signing and constant-time comparison, timestamp windows and a
// CPython-compatible canonical JSON encoder. Nothing here knows about HTTP
// servers or configuration; every input, including the current time, is an
// argument.
package verify

import (
	"errors"
	"fmt"
)

// Errors returned (wrapped) by the primitives and by provider adapters. The
// HTTP layer maps the "bad request" group to 400 and the "unauthorized"
// group to 401; see IsBadRequest.
var (
	// ErrMissingHeader: a required header is absent or empty.
	ErrMissingHeader = errors.New("missing header")
	// ErrMalformedHeader: a header is present but cannot be parsed.
	ErrMalformedHeader = errors.New("malformed header")
	// ErrInvalidJSON: the body is not valid JSON.
	ErrInvalidJSON = errors.New("body is not valid JSON")
	// ErrNoValidSignature: no signature matched any configured secret.
	ErrNoValidSignature = errors.New("no valid signature")
	// ErrTooOld: the timestamp is older than the tolerance allows.
	ErrTooOld = errors.New("timestamp too old")
	// ErrTooNew: the timestamp is further in the future than the tolerance allows.
	ErrTooNew = errors.New("timestamp too far in the future")
	// ErrEmptySecret: a secret is empty, or no secret is configured.
	ErrEmptySecret = errors.New("empty secret")
	// ErrWebhookIDMismatch: the request names another webhook than the one configured.
	ErrWebhookIDMismatch = errors.New("webhook id mismatch")
	// ErrMissingToken: a scheme that authenticates by a token in the URL
	// query got none.
	ErrMissingToken = errors.New("missing token query parameter")
)

// IsBadRequest reports whether err describes a malformed request (HTTP 400)
// rather than a failed authentication (HTTP 401).
func IsBadRequest(err error) bool {
	return errors.Is(err, ErrMissingHeader) || errors.Is(err, ErrMalformedHeader) || errors.Is(err, ErrInvalidJSON) ||
		errors.Is(err, ErrMissingToken)
}

// HeaderError names the header a ErrMissingHeader or ErrMalformedHeader is
// about. Its message never contains the header's value.
type HeaderError struct {
	Header string
	Err    error
}

// Error names the failure and the header, never its value.
func (e *HeaderError) Error() string { return fmt.Sprintf("%v %s", e.Err, e.Header) }

// Unwrap returns the underlying sentinel error.
func (e *HeaderError) Unwrap() error { return e.Err }

// Missing returns an ErrMissingHeader about header.
func Missing(header string) error { return &HeaderError{Header: header, Err: ErrMissingHeader} }

// Malformed returns an ErrMalformedHeader about header.
func Malformed(header string) error { return &HeaderError{Header: header, Err: ErrMalformedHeader} }
