// Package videopilot verifies and parses VideoPilot webhooks.
//
// VideoPilot signs the raw body with HMAC-SHA256 and sends
// "X-VideoPilot-Signature: sha256=<hex>". The key is the secret string as
// UTF-8 bytes. No timestamp is sent in the headers, so there is no window to
// check; replays are caught by the dedupe key.
package videopilot

import (
	"encoding/hex"
	"fmt"
	"net/http"
	"time"

	"github.com/hookrelay/hookrelay/providers"
	"github.com/hookrelay/hookrelay/verify"
)

// Name is the provider name used in the config file.
const Name = "videopilot"

// SignatureHeader carries "sha256=<hex>".
const (
	SignatureHeader = "X-VideoPilot-Signature"
	SignaturePrefix = "sha256="
)

var _ providers.Adapter = (*Adapter)(nil)

// Adapter verifies, parses and signs VideoPilot webhooks for one source.
type Adapter struct {
	secrets []verify.Key
}

// New returns an adapter for a source's secrets (VideoPilot takes no other
// option, and tolerance is ignored: it sends no timestamp header); an empty
// secret list or secret is an error wrapping verify.ErrEmptySecret.
func New(c providers.Common) (*Adapter, error) {
	secrets, err := c.Keys(Name)
	if err != nil {
		return nil, err
	}
	if _, err := c.ToleranceOr(Name, 0); err != nil {
		return nil, err
	}
	return &Adapter{secrets: secrets}, nil
}

// SensitiveHeaders names the signature header.
func (a *Adapter) SensitiveHeaders() []string {
	return []string{http.CanonicalHeaderKey(SignatureHeader)}
}

// Verify checks the signature of the raw body against every secret.
func (a *Adapter) Verify(h http.Header, body []byte, now time.Time) error {
	sigs, err := verify.ParseAll(SignatureHeader, verify.SplitList(h.Values(SignatureHeader)), func(v string) ([]byte, error) {
		return verify.ParsePrefixedHex(SignatureHeader, v, SignaturePrefix)
	})
	if err != nil {
		return fmt.Errorf("%s: %w", Name, err)
	}
	if err := verify.MatchAny(a.secrets, now, sigs, body); err != nil {
		return fmt.Errorf("%s: %w", Name, err)
	}
	return nil
}

// Parse extracts the event: type from body "event", subject from
// "data.video_id", time from "timestamp" (ISO 8601), and the dedupe key
// "<event>:<data.render_job_id or data.video_id>:<timestamp>" (empty unless
// all three are present).
func (a *Adapter) Parse(h http.Header, body []byte) (providers.Event, error) {
	return providers.ParseBody(Name, a, h, body)
}

// ParseDoc is Parse for the decoded body.
func (a *Adapter) ParseDoc(h http.Header, doc map[string]any) providers.Event {
	event := providers.Field(doc, "event")
	videoID := providers.Field(doc, "data.video_id")
	job := providers.Field(doc, "data.render_job_id")
	if job == "" {
		job = videoID
	}
	return providers.Event{
		Type:      event,
		Subject:   videoID,
		Time:      providers.ParseTime(doc["timestamp"]),
		DedupeKey: providers.JoinKey(event, job, providers.Field(doc, "timestamp")),
	}
}

// Sign returns the headers VideoPilot would send with body, signed with the
// first configured secret.
func (a *Adapter) Sign(body []byte, now time.Time) (http.Header, error) {
	h := http.Header{}
	h.Set("Content-Type", "application/json")
	h.Set(SignatureHeader, SignaturePrefix+hex.EncodeToString(verify.HMACSHA256(providers.SigningKey(a.secrets, now), body)))
	return h, nil
}
