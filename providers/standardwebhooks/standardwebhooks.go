// Package standardwebhooks verifies, parses and signs Standard Webhooks
// (https://www.standardwebhooks.com/).
//
// The sender signs "<webhook-id>.<webhook-timestamp>.<raw body>" with
// HMAC-SHA256 keyed by the base64-decoded secret ("whsec_<base64>"; the
// prefix is optional) and sends "webhook-signature: v1,<base64>", a
// space-separated list from which entries of other versions are ignored.
// The timestamp is unix seconds; both too old and too new are rejected.
package standardwebhooks

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/hookrelay/hookrelay/providers"
	"github.com/hookrelay/hookrelay/verify"
)

// Name is the provider name used in the config file.
const Name = "standard-webhooks"

// Header names.
const (
	IDHeader        = "webhook-id"
	TimestampHeader = "webhook-timestamp"
	SignatureHeader = "webhook-signature"
)

// DefaultTolerance is the timestamp window when the source sets none.
const DefaultTolerance = 5 * time.Minute

var _ providers.Adapter = (*Adapter)(nil)

// Adapter verifies, parses and signs Standard Webhooks for one source.
type Adapter struct {
	keys      []verify.Key
	tolerance time.Duration
}

// New returns an adapter for a source's secrets and tolerance (the adapter
// takes no other option). A secret that is not base64 (after an optional
// whsec_ prefix) is an error; an empty secret list, or a secret that
// decodes to no bytes, is an error wrapping verify.ErrEmptySecret.
func New(c providers.Common) (*Adapter, error) {
	keys, err := c.KeysWith(Name, verify.DecodeWebhookSecret)
	if err != nil {
		return nil, err
	}
	tol, err := c.ToleranceOr(Name, DefaultTolerance)
	if err != nil {
		return nil, err
	}
	return &Adapter{keys: keys, tolerance: tol}, nil
}

// SensitiveHeaders names the signature header.
func (a *Adapter) SensitiveHeaders() []string {
	return []string{http.CanonicalHeaderKey(SignatureHeader)}
}

// ParseSignatures returns the decoded v1 signatures of a webhook-signature
// header value. Entries of other versions, and entries that are not
// "v1,<base64 of 32 bytes>", are skipped; if no v1 signature remains the
// error wraps verify.ErrMalformedHeader (verify.ErrMissingHeader for an
// empty value).
func ParseSignatures(value string) ([][]byte, error) {
	entries := strings.Fields(value)
	if len(entries) == 0 {
		return nil, verify.Missing(SignatureHeader)
	}
	var sigs [][]byte
	for _, e := range entries {
		// A proxy that joins repeated headers leaves "v1,<sig>," behind.
		e = strings.TrimSuffix(e, ",")
		version, b64, ok := strings.Cut(e, ",")
		if !ok || version != "v1" {
			continue
		}
		sig, err := verify.DecodeBase64(b64)
		if err != nil || len(sig) != sha256.Size {
			continue
		}
		sigs = append(sigs, sig)
	}
	if len(sigs) == 0 {
		return nil, verify.Malformed(SignatureHeader)
	}
	return sigs, nil
}

// Verify checks the headers, then the signatures against every secret, then
// the timestamp window.
func (a *Adapter) Verify(h http.Header, body []byte, now time.Time) error {
	if err := a.verify(h, body, now); err != nil {
		return fmt.Errorf("%s: %w", Name, err)
	}
	return nil
}

func (a *Adapter) verify(h http.Header, body []byte, now time.Time) error {
	id, err := verify.OneValue(IDHeader, h.Values(IDHeader))
	if err != nil {
		return err
	}
	if id == "" {
		return verify.Missing(IDHeader)
	}
	tsRaw, err := verify.OneValue(TimestampHeader, h.Values(TimestampHeader))
	if err != nil {
		return err
	}
	ts, err := verify.ParseTimestamp(TimestampHeader, tsRaw, false)
	if err != nil {
		return err
	}
	// A repeated header's values are one list, as if sent space-separated.
	sigs, err := ParseSignatures(strings.Join(h.Values(SignatureHeader), " "))
	if err != nil {
		return err
	}
	if err := verify.MatchAny(a.keys, now, sigs, []byte(id), []byte("."), []byte(tsRaw), []byte("."), body); err != nil {
		return err
	}
	return verify.CheckWindow(ts, now, a.tolerance)
}

// Parse extracts the event: type from body "type" (else "event"), subject
// from "data.id", time from "timestamp", and webhook-id as both delivery id
// and dedupe key (the id is the same on every retry).
func (a *Adapter) Parse(h http.Header, body []byte) (providers.Event, error) {
	return providers.ParseBody(Name, a, h, body)
}

// ParseDoc is Parse for the decoded body.
func (a *Adapter) ParseDoc(h http.Header, doc map[string]any) providers.Event {
	typ := providers.Field(doc, "type")
	if typ == "" {
		typ = providers.Field(doc, "event")
	}
	id := h.Get(IDHeader)
	return providers.Event{
		Type:       typ,
		Subject:    providers.Field(doc, "data.id"),
		Time:       providers.ParseTime(doc["timestamp"]),
		DeliveryID: id,
		DedupeKey:  id,
	}
}

// Sign returns Standard Webhooks headers for body at now, signed with the
// first configured secret. The message id is derived from the timestamp and
// body ("msg_" and 24 hex digits), so equal input gives equal headers; use
// SignWithID to choose the id.
func (a *Adapter) Sign(body []byte, now time.Time) (http.Header, error) {
	ts := strconv.FormatInt(now.Unix(), 10)
	sum := sha256.Sum256(append([]byte(ts+"."), body...))
	return a.SignWithID("msg_"+hex.EncodeToString(sum[:12]), body, now)
}

// SignWithID returns Standard Webhooks headers for the message id, body and
// now, signed with the first configured secret.
func (a *Adapter) SignWithID(id string, body []byte, now time.Time) (http.Header, error) {
	if id == "" {
		return nil, fmt.Errorf("%s: sign: empty message id", Name)
	}
	ts := strconv.FormatInt(now.Unix(), 10)
	h := http.Header{}
	h.Set("Content-Type", "application/json")
	h.Set(IDHeader, id)
	h.Set(TimestampHeader, ts)
	h.Set(SignatureHeader, verify.StandardSignature(providers.SigningKey(a.keys, now), id, ts, body))
	return h, nil
}
