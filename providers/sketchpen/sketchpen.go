// Package sketchpen verifies and parses Sketchpen webhooks.
//
// Sketchpen signs "<X-Sketchpen-Timestamp>.<raw body>" with HMAC-SHA256 and
// sends "X-Sketchpen-Signature: sha256=<hex>". The key is the secret string
// as UTF-8 bytes, whsec_ prefix included. The timestamp is unix seconds (RFC
// 3339 is accepted too).
package sketchpen

import (
	"encoding/hex"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/hookrelay/hookrelay/providers"
	"github.com/hookrelay/hookrelay/verify"
)

// Name is the provider name used in the config file.
const Name = "sketchpen"

// Header names and the signature prefix.
const (
	SignatureHeader = "X-Sketchpen-Signature"
	TimestampHeader = "X-Sketchpen-Timestamp"
	SignaturePrefix = "sha256="
)

// DefaultTolerance is the timestamp window when the source sets none.
const DefaultTolerance = 5 * time.Minute

var _ providers.Adapter = (*Adapter)(nil)

// Adapter verifies, parses and signs Sketchpen webhooks for one source.
type Adapter struct {
	secrets   []verify.Key
	tolerance time.Duration
}

// New returns an adapter for a source's secrets and tolerance (Sketchpen
// takes no other option); an empty secret list or secret is an error
// wrapping verify.ErrEmptySecret.
func New(c providers.Common) (*Adapter, error) {
	secrets, err := c.Keys(Name)
	if err != nil {
		return nil, err
	}
	tol, err := c.ToleranceOr(Name, DefaultTolerance)
	if err != nil {
		return nil, err
	}
	return &Adapter{secrets: secrets, tolerance: tol}, nil
}

// SensitiveHeaders names the signature header.
func (a *Adapter) SensitiveHeaders() []string { return []string{SignatureHeader} }

// Verify checks the signature against every secret, then the timestamp
// window. Missing or malformed headers are reported before the signature is
// computed.
func (a *Adapter) Verify(h http.Header, body []byte, now time.Time) error {
	if err := a.verify(h, body, now); err != nil {
		return fmt.Errorf("%s: %w", Name, err)
	}
	return nil
}

func (a *Adapter) verify(h http.Header, body []byte, now time.Time) error {
	sigs, err := verify.ParseAll(SignatureHeader, verify.SplitList(h.Values(SignatureHeader)), parseSignature)
	if err != nil {
		return err
	}
	tsRaw, err := verify.OneValue(TimestampHeader, h.Values(TimestampHeader))
	if err != nil {
		return err
	}
	ts, err := verify.ParseTimestamp(TimestampHeader, tsRaw, true)
	if err != nil {
		return err
	}
	if err := verify.MatchAny(a.secrets, now, sigs, []byte(tsRaw), []byte("."), body); err != nil {
		return err
	}
	return verify.CheckWindow(ts, now, a.tolerance)
}

func parseSignature(v string) ([]byte, error) {
	return verify.ParsePrefixedHex(SignatureHeader, v, SignaturePrefix)
}

// Parse extracts the event: type from body "event", subject from
// "video_id", time from "created_at" (unix seconds), and the dedupe key
// "<event>:<video_id>:<created_at>" (empty unless all three are present).
func (a *Adapter) Parse(h http.Header, body []byte) (providers.Event, error) {
	return providers.ParseBody(Name, a, h, body)
}

// ParseDoc is Parse for the decoded body.
func (a *Adapter) ParseDoc(h http.Header, doc map[string]any) providers.Event {
	event := providers.Field(doc, "event")
	videoID := providers.Field(doc, "video_id")
	created := providers.Field(doc, "created_at")
	return providers.Event{
		Type:      event,
		Subject:   videoID,
		Time:      providers.ParseTime(doc["created_at"]),
		DedupeKey: providers.JoinKey(event, videoID, created),
	}
}

// Sign returns the headers Sketchpen would send with body at now, signed
// with the first configured secret.
func (a *Adapter) Sign(body []byte, now time.Time) (http.Header, error) {
	ts := strconv.FormatInt(now.Unix(), 10)
	mac := verify.HMACSHA256(providers.SigningKey(a.secrets, now), []byte(ts), []byte("."), body)
	h := http.Header{}
	h.Set("Content-Type", "application/json")
	h.Set(TimestampHeader, ts)
	h.Set(SignatureHeader, SignaturePrefix+hex.EncodeToString(mac))
	return h, nil
}
