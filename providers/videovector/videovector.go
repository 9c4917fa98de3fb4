// Package videovector verifies and parses VideoVector webhooks.
//
// VideoVector signs json.dumps(payload, sort_keys=True) (CPython) with
// HMAC-SHA256 and sends "X-Webhook-Signature: sha256=<hex>"; the key is the
// secret string as UTF-8 bytes. The wire body normally is that canonical
// form, so the raw body is checked first; a body re-encoded on the way is
// re-serialized with verify.CanonicalJSON and checked again. There is no
// timestamp. A source may pin its webhook with the webhook_id option, which
// must then equal X-Webhook-ID.
package videovector

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"net/http"
	"time"

	"github.com/hookrelay/hookrelay/providers"
	"github.com/hookrelay/hookrelay/verify"
)

// Name is the provider name used in the config file.
const Name = "videovector"

// Header names and the signature prefix.
const (
	SignatureHeader  = "X-Webhook-Signature"
	WebhookIDHeader  = "X-Webhook-ID"
	EventTypeHeader  = "X-Event-Type"
	DeliveryIDHeader = "X-Delivery-ID"
	SignaturePrefix  = "sha256="
)

var _ providers.Adapter = (*Adapter)(nil)

// Adapter verifies, parses and signs VideoVector webhooks for one source.
type Adapter struct {
	secrets   []verify.Key
	webhookID string
}

// Options are VideoVector's own source options.
type Options struct {
	// WebhookID, when set, must equal the X-Webhook-ID header (VideoVector's
	// own integration rejects other webhooks' deliveries).
	WebhookID string `yaml:"webhook_id"`
}

// New returns the adapter of a source with these options.
func (o *Options) New(c providers.Common) (providers.Adapter, error) {
	return providers.AsAdapter(New(c, *o))
}

// New returns an adapter for a source's secrets and options (tolerance is
// ignored: VideoVector sends no timestamp); an empty secret list or secret
// is an error wrapping verify.ErrEmptySecret.
func New(c providers.Common, o Options) (*Adapter, error) {
	secrets, err := c.Keys(Name)
	if err != nil {
		return nil, err
	}
	if _, err := c.ToleranceOr(Name, 0); err != nil {
		return nil, err
	}
	return &Adapter{secrets: secrets, webhookID: o.WebhookID}, nil
}

// SensitiveHeaders names the signature header.
func (a *Adapter) SensitiveHeaders() []string { return []string{SignatureHeader} }

// Verify checks X-Webhook-ID (when the source pins one; a missing or other
// id wraps verify.ErrWebhookIDMismatch), then the signature over the raw
// body and, only if that fails, over the body's canonical JSON.
func (a *Adapter) Verify(h http.Header, body []byte, now time.Time) error {
	sigs, err := verify.ParseAll(SignatureHeader, verify.SplitList(h.Values(SignatureHeader)), func(v string) ([]byte, error) {
		return verify.ParsePrefixedHex(SignatureHeader, v, SignaturePrefix)
	})
	if err != nil {
		return fmt.Errorf("%s: %w", Name, err)
	}
	if a.webhookID != "" {
		got, err := verify.OneValue(WebhookIDHeader, h.Values(WebhookIDHeader))
		if err != nil {
			return fmt.Errorf("%s: %w", Name, err)
		}
		if got == "" {
			return fmt.Errorf("%s: %w: %s header missing", Name, verify.ErrWebhookIDMismatch, WebhookIDHeader)
		}
		if !verify.EqualString(got, a.webhookID) {
			return fmt.Errorf("%s: %w: %s is not the configured webhook_id", Name, verify.ErrWebhookIDMismatch, WebhookIDHeader)
		}
	}
	if verify.MatchAny(a.secrets, now, sigs, body) == nil {
		return nil
	}
	canon, err := verify.CanonicalJSON(body)
	if err != nil {
		return fmt.Errorf("%s: %w (and the body has no canonical JSON form: %v)", Name, verify.ErrNoValidSignature, err)
	}
	if bytes.Equal(canon, body) {
		return fmt.Errorf("%s: %w", Name, verify.ErrNoValidSignature)
	}
	if err := verify.MatchAny(a.secrets, now, sigs, canon); err != nil {
		return fmt.Errorf("%s: %w", Name, err)
	}
	return nil
}

// Parse extracts the event: type from X-Event-Type (else body "event"),
// subject from body "data.id" (else "id"), time from "created_at", delivery
// id from X-Delivery-ID, and the dedupe key X-Delivery-ID, else body "id"
// (test events carry no delivery id).
func (a *Adapter) Parse(h http.Header, body []byte) (providers.Event, error) {
	return providers.ParseBody(Name, a, h, body)
}

// ParseDoc is Parse for the decoded body.
func (a *Adapter) ParseDoc(h http.Header, doc map[string]any) providers.Event {
	ev := providers.Event{
		Type:       h.Get(EventTypeHeader),
		Subject:    providers.Field(doc, "data.id"),
		Time:       providers.ParseTime(doc["created_at"]),
		DeliveryID: h.Get(DeliveryIDHeader),
		DedupeKey:  h.Get(DeliveryIDHeader),
	}
	if ev.Type == "" {
		ev.Type = providers.Field(doc, "event")
	}
	if ev.Subject == "" {
		ev.Subject = providers.Field(doc, "id")
	}
	if ev.DedupeKey == "" {
		ev.DedupeKey = providers.Field(doc, "id")
	}
	return ev
}

// Delivery holds the optional headers VideoVector sends beside the
// signature. Empty fields are not sent.
type Delivery struct {
	EventType  string // X-Event-Type
	DeliveryID string // X-Delivery-ID
	WebhookID  string // X-Webhook-ID; overrides the source's webhook_id
}

// Sign returns the headers VideoVector would send with body: the signature
// over the canonical JSON of body (made with the first configured secret)
// and, if the source pins one, X-Webhook-ID. It fails if body is not JSON.
// Use SignDelivery to add the event type and delivery id.
func (a *Adapter) Sign(body []byte, now time.Time) (http.Header, error) {
	return a.SignDelivery(body, now, Delivery{})
}

// SignDelivery is Sign plus the non-empty headers of d.
func (a *Adapter) SignDelivery(body []byte, now time.Time, d Delivery) (http.Header, error) {
	canon, err := verify.CanonicalJSON(body)
	if err != nil {
		return nil, fmt.Errorf("%s: sign: %w", Name, err)
	}
	h := http.Header{}
	h.Set("Content-Type", "application/json")
	h.Set(SignatureHeader, SignaturePrefix+hex.EncodeToString(verify.HMACSHA256(providers.SigningKey(a.secrets, now), canon)))
	if d.WebhookID == "" {
		d.WebhookID = a.webhookID
	}
	for name, v := range map[string]string{WebhookIDHeader: d.WebhookID, EventTypeHeader: d.EventType, DeliveryIDHeader: d.DeliveryID} {
		if v != "" {
			h.Set(name, v)
		}
	}
	return h, nil
}
