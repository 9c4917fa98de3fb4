// Package providers defines the adapter interface every webhook provider
// implements, the per-source options the config passes to adapters, and the
// generic parts of turning a verified request into an event (dedupe-key
// overrides and the SHA-256 fallback). One sub-package per provider holds its
// adapter; package providers/registry lists them all in one place.
package providers

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/url"
	"time"
)

// Provider verifies and parses the webhooks of one provider for one source.
// Implementations are safe for concurrent use.
type Provider interface {
	// Verify checks that the request was signed with one of the source's
	// secrets and that its timestamp (if any) is inside the tolerance. The
	// returned error wraps one of the verify.Err* sentinels and never contains
	// a secret or a computed signature.
	Verify(h http.Header, body []byte, now time.Time) error
	// Parse extracts the event from a verified request. It fails with an
	// error wrapping verify.ErrInvalidJSON if the body is not JSON.
	// Adapters implement it with ParseBody.
	Parse(h http.Header, body []byte) (Event, error)
	// ParseDoc is Parse for a body already decoded with DecodeObject, so
	// that Source.Accept decodes the body once for the adapter and a
	// dedupe-key override.
	ParseDoc(h http.Header, doc map[string]any) Event
	// SensitiveHeaders names the request headers (canonical form) whose
	// values are credentials: signatures, tokens. They are redacted before an
	// event's headers are stored, shown or logged.
	SensitiveHeaders() []string
}

// ParseBody is the Parse of every adapter: it decodes body with
// DecodeObject and hands the object to p.ParseDoc. A decode error wraps
// verify.ErrInvalidJSON and is prefixed with the provider name.
func ParseBody(provider string, p Provider, h http.Header, body []byte) (Event, error) {
	doc, err := DecodeObject(body)
	if err != nil {
		return Event{}, fmt.Errorf("%s: %w", provider, err)
	}
	return p.ParseDoc(h, doc), nil
}

// QueryVerifier is implemented by adapters whose scheme authenticates a
// request by its URL query too (a secret token in the callback URL).
// Source.Accept then calls VerifyQuery instead of Verify.
type QueryVerifier interface {
	VerifyQuery(q url.Values, h http.Header, body []byte, now time.Time) error
}

// QuerySigner is implemented by adapters whose requests carry their
// credential in the URL query: `hookrelay send` adds it to the URL.
type QuerySigner interface {
	SignQuery(q url.Values, now time.Time)
}

// Signer produces the headers a provider would send with body at time now.
// Every adapter has one: tests and `hookrelay send` use it.
type Signer interface {
	Sign(body []byte, now time.Time) (http.Header, error)
}

// Adapter is a Provider that can also sign.
type Adapter interface {
	Provider
	Signer
}

// Event is what an adapter extracts from a request.
type Event struct {
	// Type is the provider's event type, e.g. "video.completed".
	Type string
	// Subject is the id of the resource the event is about.
	Subject string
	// Time is the provider's event time; zero if it sent none.
	Time time.Time
	// DeliveryID is the provider's delivery id, if it sends one.
	DeliveryID string
	// DedupeKey identifies the event across the provider's retries; empty if
	// the provider's default key fields are absent.
	DedupeKey string
}

// BodyKey is the dedupe key of last resort: the hex SHA-256 of the raw body.
func BodyKey(body []byte) string {
	sum := sha256.Sum256(body)
	return "sha256:" + hex.EncodeToString(sum[:])
}
