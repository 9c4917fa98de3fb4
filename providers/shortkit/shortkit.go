// Package shortkit verifies and parses shortkit webhooks and callbacks.
//
// Three schemes, chosen per source with the scheme option, never guessed
// per request:
//
//   - "timestamp" (the default): "X-Shortform-Signature: sha256=<hex>", the
//     HMAC-SHA256 of "<X-Shortform-Timestamp>.<raw body>"; the timestamp is
//     unix seconds and must be within the tolerance (default 300 s).
//   - "body-only" (shortkit's older API): the signature is the plain hex
//     HMAC of the raw body ("sha256=" accepted but not required);
//     X-Shortform-Timestamp is optional and, when present (ISO 8601 or unix
//     seconds), checked against the tolerance. It is not signed.
//   - "callback-header": no signature; the header named by the header
//     option must carry the value option, compared in constant time. The
//     value plays the secret's part, so the secrets option is not used.
//   - "callback-token" (the per-request callbackUrl callbacks as shortkit
//     documents them today: "callback requests are not signed"; a secret
//     token in the URL is recommended): the provider calls
//     /webhooks/<source>?token=<secret>; the token is compared in constant
//     time with the source's secrets (rotation and expiry apply). A missing
//     token is a bad request, a wrong one unauthorized.
//
// The key of the signed schemes is the secret string as UTF-8 bytes, whsec_
// prefix included.
package shortkit

import (
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/hookrelay/hookrelay/providers"
	"github.com/hookrelay/hookrelay/verify"
)

// Name is the provider name used in the config file.
const Name = "shortkit"

// Schemes.
const (
	SchemeTimestamp      = "timestamp"
	SchemeBodyOnly       = "body-only"
	SchemeCallbackHeader = "callback-header"
	SchemeCallbackToken  = "callback-token"
)

// TokenParam is the URL query parameter of the callback-token scheme.
const TokenParam = "token"

// Header names and the signature prefix.
const (
	SignatureHeader  = "X-Shortform-Signature"
	TimestampHeader  = "X-Shortform-Timestamp"
	DeliveryIDHeader = "X-Shortform-Delivery-ID"
	SignaturePrefix  = "sha256="
)

// DefaultTolerance is the timestamp window when the source sets none.
const DefaultTolerance = 300 * time.Second

var _ providers.Adapter = (*Adapter)(nil)

// Adapter verifies, parses and signs shortkit requests for one source.
type Adapter struct {
	scheme    string
	secrets   []verify.Key // signed schemes
	tolerance time.Duration
	header    string // callback-header
	value     string // callback-header
}

// Options are shortkit's own source options.
type Options struct {
	// Scheme: timestamp (default), body-only or callback-header.
	Scheme string `yaml:"scheme"`
	// Header and Value: the callback-header scheme's header and its
	// expected value (a shared secret).
	Header string `yaml:"header"`
	Value  string `yaml:"value" secret:"true"`
}

// Config keys of the options, as errors name them.
const (
	OptScheme = "scheme"
	OptHeader = "header"
	OptValue  = "value"
)

// New returns the adapter of a source with these options.
func (o *Options) New(c providers.Common) (providers.Adapter, error) {
	return providers.AsAdapter(New(c, *o))
}

// New returns an adapter for a source's settings. The signed schemes take
// the secrets and tolerance; callback-header takes header and value
// instead. An empty secret list or secret, or an empty callback value, is
// an error wrapping verify.ErrEmptySecret.
func New(c providers.Common, o Options) (*Adapter, error) {
	a := &Adapter{scheme: o.Scheme}
	switch o.Scheme {
	case "", SchemeTimestamp:
		a.scheme = SchemeTimestamp
	case SchemeBodyOnly:
	case SchemeCallbackHeader:
		return newCallback(c, o)
	case SchemeCallbackToken:
	default:
		return nil, &providers.OptionError{Provider: Name, Option: OptScheme,
			Err: fmt.Errorf("unknown scheme %q (want %s, %s, %s or %s)", o.Scheme, SchemeTimestamp, SchemeBodyOnly, SchemeCallbackHeader, SchemeCallbackToken)}
	}
	for option, v := range map[string]string{OptHeader: o.Header, OptValue: o.Value} {
		if v != "" {
			return nil, &providers.OptionError{Provider: Name, Option: option, Err: fmt.Errorf("only used by scheme %s", SchemeCallbackHeader)}
		}
	}
	var err error
	if a.secrets, err = c.Keys(Name); err != nil {
		return nil, err
	}
	if a.tolerance, err = c.ToleranceOr(Name, DefaultTolerance); err != nil {
		return nil, err
	}
	return a, nil
}

func newCallback(c providers.Common, o Options) (*Adapter, error) {
	if _, err := c.ToleranceOr(Name, 0); err != nil {
		return nil, err
	}
	if len(c.Secrets) > 0 {
		return nil, &providers.OptionError{Provider: Name, Option: providers.OptSecrets,
			Err: errors.New("not used by scheme callback-header (the expected header value is the value option)")}
	}
	if o.Header == "" {
		return nil, &providers.OptionError{Provider: Name, Option: OptHeader, Err: errors.New("required by scheme callback-header")}
	}
	if !verify.ValidHeaderName(o.Header) {
		return nil, &providers.OptionError{Provider: Name, Option: OptHeader, Err: fmt.Errorf("%q is not a valid header name", o.Header)}
	}
	if o.Value == "" {
		return nil, &providers.OptionError{Provider: Name, Option: OptValue,
			Err: fmt.Errorf("required by scheme callback-header: %w", verify.ErrEmptySecret)}
	}
	return &Adapter{scheme: SchemeCallbackHeader, header: o.Header, value: o.Value}, nil
}

// SensitiveHeaders names the signature header, or the callback header
// whose value is the shared secret. (The callback token is in the URL
// query, which hookrelay never stores or logs.)
func (a *Adapter) SensitiveHeaders() []string {
	switch a.scheme {
	case SchemeCallbackHeader:
		return []string{http.CanonicalHeaderKey(a.header)}
	case SchemeCallbackToken:
		return nil
	}
	return []string{SignatureHeader}
}

// VerifyQuery checks a request with its URL query: the callback-token
// scheme's token, every value of a repeated token parameter tried (any
// valid one verifies); the other schemes ignore the query (Verify).
func (a *Adapter) VerifyQuery(q url.Values, h http.Header, body []byte, now time.Time) error {
	if a.scheme != SchemeCallbackToken {
		return a.Verify(h, body, now)
	}
	tokens := q[TokenParam]
	ok := false
	for _, tok := range tokens {
		ok = verify.MatchToken(a.secrets, now, tok) || ok
	}
	switch {
	case len(tokens) == 0 || tokens[0] == "" && len(tokens) == 1:
		return fmt.Errorf("%s: %w", Name, verify.ErrMissingToken)
	case !ok:
		return fmt.Errorf("%s: %w: the token does not match a configured secret", Name, verify.ErrNoValidSignature)
	}
	return nil
}

// SignQuery adds the callback-token scheme's token (the first secret) to
// a callback URL's query.
func (a *Adapter) SignQuery(q url.Values, now time.Time) {
	if a.scheme == SchemeCallbackToken {
		q.Set(TokenParam, string(providers.SigningKey(a.secrets, now)))
	}
}

// Scheme returns the adapter's scheme (SchemeTimestamp for the default).
func (a *Adapter) Scheme() string { return a.scheme }

// Verify checks the request according to the source's scheme.
func (a *Adapter) Verify(h http.Header, body []byte, now time.Time) error {
	var err error
	switch a.scheme {
	case SchemeCallbackToken:
		err = verify.ErrMissingToken // the token is in the query: see VerifyQuery
	case SchemeCallbackHeader:
		err = a.verifyCallback(h)
	case SchemeBodyOnly:
		err = a.verifyBodyOnly(h, body, now)
	default:
		err = a.verifyTimestamp(h, body, now)
	}
	if err != nil {
		return fmt.Errorf("%s: %w", Name, err)
	}
	return nil
}

func (a *Adapter) verifyTimestamp(h http.Header, body []byte, now time.Time) error {
	sigs, err := verify.ParseAll(SignatureHeader, verify.SplitList(h.Values(SignatureHeader)), func(v string) ([]byte, error) {
		return verify.ParsePrefixedHex(SignatureHeader, v, SignaturePrefix)
	})
	if err != nil {
		return err
	}
	tsRaw, err := verify.OneValue(TimestampHeader, h.Values(TimestampHeader))
	if err != nil {
		return err
	}
	ts, err := verify.ParseTimestamp(TimestampHeader, tsRaw, false)
	if err != nil {
		return err
	}
	if err := verify.MatchAny(a.secrets, now, sigs, []byte(tsRaw), []byte("."), body); err != nil {
		return err
	}
	return verify.CheckWindow(ts, now, a.tolerance)
}

func (a *Adapter) verifyBodyOnly(h http.Header, body []byte, now time.Time) error {
	sigs, err := verify.ParseAll(SignatureHeader, verify.SplitList(h.Values(SignatureHeader)), func(v string) ([]byte, error) {
		if len(v) > len(SignaturePrefix) && strings.EqualFold(v[:len(SignaturePrefix)], SignaturePrefix) {
			v = v[len(SignaturePrefix):]
		}
		return verify.ParsePrefixedHex(SignatureHeader, v, "")
	})
	if err != nil {
		return err
	}
	var ts time.Time
	tsRaw, err := verify.OneValue(TimestampHeader, h.Values(TimestampHeader))
	if err != nil {
		return err
	}
	if tsRaw != "" {
		if ts, err = verify.ParseTimestamp(TimestampHeader, tsRaw, true); err != nil {
			return err
		}
	}
	if err := verify.MatchAny(a.secrets, now, sigs, body); err != nil {
		return err
	}
	if tsRaw != "" {
		return verify.CheckWindow(ts, now, a.tolerance)
	}
	return nil
}

func (a *Adapter) verifyCallback(h http.Header) error {
	// Every value of a repeated header is compared (each in constant
	// time): any match verifies, whatever the order.
	ok, present := false, false
	for _, got := range h.Values(a.header) {
		if got = strings.TrimSpace(got); got != "" {
			present = true
			ok = verify.EqualString(got, a.value) || ok
		}
	}
	switch {
	case !present:
		return verify.Missing(a.header)
	case !ok:
		return fmt.Errorf("%w: %s does not carry the configured value", verify.ErrNoValidSignature, a.header)
	}
	return nil
}

// Parse extracts the event: type from body "event", subject from
// "data.contentId" (the snake_case content.playback_id_updated event:
// "data.content_id" or "content_id"), time from "timestamp" (ISO 8601 or
// unix seconds), delivery id and dedupe key from
// X-Shortform-Delivery-ID (the same on every retry). Without that header,
// as with callbacks, the dedupe key is empty and the caller falls back to
// the body hash: a key made of event and content id could merge two
// distinct callbacks about the same content.
func (a *Adapter) Parse(h http.Header, body []byte) (providers.Event, error) {
	return providers.ParseBody(Name, a, h, body)
}

// ParseDoc is Parse for the decoded body.
func (a *Adapter) ParseDoc(h http.Header, doc map[string]any) providers.Event {
	id := h.Get(DeliveryIDHeader)
	subject := providers.Field(doc, "data.contentId")
	for _, path := range []string{"data.content_id", "content_id"} {
		if subject == "" {
			subject = providers.Field(doc, path) // content.playback_id_updated: snake_case
		}
	}
	return providers.Event{
		Type:       providers.Field(doc, "event"),
		Subject:    subject,
		Time:       providers.ParseTime(doc["timestamp"]),
		DeliveryID: id,
		DedupeKey:  id,
	}
}

// Sign returns the headers shortkit would send with body at now under the
// source's scheme, signed with the first configured secret: the signature
// and unix timestamp (timestamp), the plain hex signature and an RFC 3339
// timestamp (body-only), or the configured header (callback-header). No
// delivery id (DeliveryIDHeader, unsigned) is set.
func (a *Adapter) Sign(body []byte, now time.Time) (http.Header, error) {
	h := http.Header{}
	h.Set("Content-Type", "application/json")
	switch a.scheme {
	case SchemeCallbackToken:
		// Nothing in the headers: the token goes in the URL (SignQuery).
	case SchemeCallbackHeader:
		h.Set(a.header, a.value)
	case SchemeBodyOnly:
		h.Set(TimestampHeader, now.UTC().Format(time.RFC3339))
		h.Set(SignatureHeader, hex.EncodeToString(verify.HMACSHA256(providers.SigningKey(a.secrets, now), body)))
	default:
		ts := strconv.FormatInt(now.Unix(), 10)
		h.Set(TimestampHeader, ts)
		h.Set(SignatureHeader, SignaturePrefix+hex.EncodeToString(verify.HMACSHA256(providers.SigningKey(a.secrets, now), []byte(ts), []byte("."), body)))
	}
	return h, nil
}
