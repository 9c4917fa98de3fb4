// Package generichmac is the configurable HMAC-SHA256 adapter (provider
// "hmac" in the config file), so that a new provider needs config, not code.
//
// Options:
//
//   - signature_header (required): the header carrying the signature.
//   - prefix: text before the signature, e.g. "sha256=" (matched
//     case-insensitively; may be empty).
//   - encoding: "hex" (default, either case) or "base64" (standard or URL
//     alphabet, padding optional).
//   - template: the signed content, default "{body}". Placeholders: {body}
//     (the raw body; required), {timestamp} (the raw timestamp header) and
//     {header:Name} (the raw value of a request header, which is then
//     required). Any other text is signed literally; any other {…} is an
//     error.
//   - timestamp_header: optional; when set the header is required (unix
//     seconds or ISO 8601) and must be within the tolerance (default 5m).
//     {timestamp} needs it; without {timestamp} in the template the
//     timestamp is checked but not signed (as in shortkit's body-only
//     scheme), which only catches honest delays, not replays.
//   - event_type_field (default "type") and subject_field (default
//     "data.id"): dotted JSON paths of the event type and subject.
//
// The key is the secret string as UTF-8 bytes. The adapter derives no
// dedupe key and no event time: the generic body-hash fallback, a source's
// dedupe_key override and the receive time apply.
package generichmac

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/hookrelay/hookrelay/providers"
	"github.com/hookrelay/hookrelay/verify"
)

// Name is the provider name used in the config file.
const Name = "hmac"

// Defaults of the options.
const (
	DefaultTemplate       = "{body}"
	DefaultEventTypeField = "type"
	DefaultSubjectField   = "data.id"
	DefaultTolerance      = 5 * time.Minute
)

var _ providers.Adapter = (*Adapter)(nil)

// Adapter verifies, parses and signs requests as its options describe.
type Adapter struct {
	secrets         []verify.Key
	sigHeader       string
	prefix          string
	base64          bool
	template        []segment
	timestampHeader string
	tolerance       time.Duration
	eventTypeField  string
	subjectField    string
}

// segment is one piece of the signed-content template.
type segment struct {
	kind    int    // segLiteral, segBody, segTimestamp or segHeader
	literal []byte // segLiteral
	header  string // segHeader
}

const (
	segLiteral = iota
	segBody
	segTimestamp
	segHeader
)

// Options are the hmac adapter's own source options (see the package
// documentation); the zero value of a field means its default.
type Options struct {
	SignatureHeader string `yaml:"signature_header"`
	Prefix          string `yaml:"prefix"`
	Encoding        string `yaml:"encoding"`
	Template        string `yaml:"template"`
	TimestampHeader string `yaml:"timestamp_header"`
	EventTypeField  string `yaml:"event_type_field"`
	SubjectField    string `yaml:"subject_field"`
}

// Config keys of the options, as errors name them.
const (
	OptSignatureHeader = "signature_header"
	OptEncoding        = "encoding"
	OptTemplate        = "template"
	OptTimestampHeader = "timestamp_header"
	OptEventTypeField  = "event_type_field"
	OptSubjectField    = "subject_field"
)

// New returns the adapter of a source with these options.
func (o *Options) New(c providers.Common) (providers.Adapter, error) {
	return providers.AsAdapter(New(c, *o))
}

// New returns an adapter for a source's secrets, tolerance and options.
// Errors are *providers.OptionError values naming the option; an empty
// secret list or secret wraps verify.ErrEmptySecret.
func New(c providers.Common, opts Options) (*Adapter, error) {
	bad := func(option string, format string, args ...any) error {
		return &providers.OptionError{Provider: Name, Option: option, Err: fmt.Errorf(format, args...)}
	}
	secrets, err := c.Keys(Name)
	if err != nil {
		return nil, err
	}
	a := &Adapter{
		secrets:         secrets,
		sigHeader:       opts.SignatureHeader,
		prefix:          opts.Prefix,
		timestampHeader: opts.TimestampHeader,
		eventTypeField:  or(opts.EventTypeField, DefaultEventTypeField),
		subjectField:    or(opts.SubjectField, DefaultSubjectField),
	}
	if a.tolerance, err = c.ToleranceOr(Name, DefaultTolerance); err != nil {
		return nil, err
	}
	switch {
	case a.sigHeader == "":
		return nil, bad(OptSignatureHeader, "required")
	case !verify.ValidHeaderName(a.sigHeader):
		return nil, bad(OptSignatureHeader, "%q is not a valid header name", a.sigHeader)
	case a.timestampHeader != "" && !verify.ValidHeaderName(a.timestampHeader):
		return nil, bad(OptTimestampHeader, "%q is not a valid header name", a.timestampHeader)
	case a.timestampHeader != "" && http.CanonicalHeaderKey(a.timestampHeader) == http.CanonicalHeaderKey(a.sigHeader):
		return nil, bad(OptTimestampHeader, "must differ from %s", OptSignatureHeader)
	}
	switch strings.ToLower(opts.Encoding) {
	case "", "hex":
	case "base64":
		a.base64 = true
	default:
		return nil, bad(OptEncoding, "%q: want hex or base64", opts.Encoding)
	}
	for _, f := range []struct{ option, path string }{
		{OptEventTypeField, a.eventTypeField},
		{OptSubjectField, a.subjectField},
	} {
		for _, step := range strings.Split(f.path, ".") {
			if step == "" {
				return nil, bad(f.option, "%q is not a dotted JSON path", f.path)
			}
		}
	}
	if a.template, err = parseTemplate(or(opts.Template, DefaultTemplate), a.timestampHeader != ""); err != nil {
		return nil, &providers.OptionError{Provider: Name, Option: OptTemplate, Err: err}
	}
	return a, nil
}

// SensitiveHeaders names the signature header.
func (a *Adapter) SensitiveHeaders() []string { return []string{http.CanonicalHeaderKey(a.sigHeader)} }

func or(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// parseTemplate splits a signed-content template into segments.
func parseTemplate(t string, haveTimestamp bool) ([]segment, error) {
	var segs []segment
	hasBody := false
	for t != "" {
		open := strings.IndexByte(t, '{')
		if open < 0 {
			segs = append(segs, segment{kind: segLiteral, literal: []byte(t)})
			break
		}
		if open > 0 {
			segs = append(segs, segment{kind: segLiteral, literal: []byte(t[:open])})
		}
		end := strings.IndexByte(t[open:], '}')
		if end < 0 {
			return nil, errors.New("unterminated placeholder (a '{' without '}')")
		}
		name := t[open+1 : open+end]
		t = t[open+end+1:]
		switch {
		case name == "body":
			segs = append(segs, segment{kind: segBody})
			hasBody = true
		case name == "timestamp":
			if !haveTimestamp {
				return nil, fmt.Errorf("{timestamp} needs the %s option", OptTimestampHeader)
			}
			segs = append(segs, segment{kind: segTimestamp})
		case strings.HasPrefix(name, "header:"):
			hn := strings.TrimPrefix(name, "header:")
			if !verify.ValidHeaderName(hn) {
				return nil, fmt.Errorf("{%s}: %q is not a valid header name", name, hn)
			}
			segs = append(segs, segment{kind: segHeader, header: hn})
		default:
			return nil, fmt.Errorf("unknown placeholder {%s} (want {body}, {timestamp} or {header:Name})", name)
		}
	}
	if !hasBody {
		return nil, errors.New("must contain {body}: a signature must cover the body")
	}
	return segs, nil
}

// Verify checks the headers the options require, then the signature against
// every secret, then the timestamp window (if a timestamp header is set).
func (a *Adapter) Verify(h http.Header, body []byte, now time.Time) error {
	if err := a.verify(h, body, now); err != nil {
		return fmt.Errorf("%s: %w", Name, err)
	}
	return nil
}

func (a *Adapter) verify(h http.Header, body []byte, now time.Time) error {
	values := h.Values(a.sigHeader)
	if !strings.Contains(a.prefix, ",") {
		values = verify.SplitList(values)
	}
	sigs, err := verify.ParseAll(a.sigHeader, values, a.parseSignature)
	if err != nil {
		return err
	}
	var ts time.Time
	tsRaw := ""
	if a.timestampHeader != "" {
		if tsRaw, err = verify.OneValue(a.timestampHeader, h.Values(a.timestampHeader)); err != nil {
			return err
		}
		if ts, err = verify.ParseTimestamp(a.timestampHeader, tsRaw, true); err != nil {
			return err
		}
	}
	parts, err := a.content(h, tsRaw, body)
	if err != nil {
		return err
	}
	if err := verify.MatchAny(a.secrets, now, sigs, parts...); err != nil {
		return err
	}
	if a.timestampHeader != "" {
		return verify.CheckWindow(ts, now, a.tolerance)
	}
	return nil
}

func (a *Adapter) parseSignature(v string) ([]byte, error) {
	if !a.base64 {
		return verify.ParsePrefixedHex(a.sigHeader, v, a.prefix)
	}
	sig, err := verify.ParsePrefixedBase64(a.sigHeader, v, a.prefix)
	if err == nil && len(sig) != sha256.Size {
		return nil, verify.Malformed(a.sigHeader)
	}
	return sig, err
}

// content returns the pieces of the signed content, or ErrMissingHeader for
// a header the template names but the request lacks.
func (a *Adapter) content(h http.Header, tsRaw string, body []byte) ([][]byte, error) {
	parts := make([][]byte, len(a.template))
	for i, s := range a.template {
		switch s.kind {
		case segLiteral:
			parts[i] = s.literal
		case segBody:
			parts[i] = body
		case segTimestamp:
			parts[i] = []byte(tsRaw)
		case segHeader:
			v, err := verify.OneValue(s.header, h.Values(s.header))
			if err != nil {
				return nil, err
			}
			if v == "" {
				return nil, verify.Missing(s.header)
			}
			parts[i] = []byte(v)
		}
	}
	return parts, nil
}

// Parse extracts the event type and subject from the configured fields.
// Time, delivery id and dedupe key are left empty.
func (a *Adapter) Parse(h http.Header, body []byte) (providers.Event, error) {
	return providers.ParseBody(Name, a, h, body)
}

// ParseDoc is Parse for the decoded body.
func (a *Adapter) ParseDoc(h http.Header, doc map[string]any) providers.Event {
	return providers.Event{
		Type:    providers.Field(doc, a.eventTypeField),
		Subject: providers.Field(doc, a.subjectField),
	}
}

// Sign returns the signature (and unix timestamp) headers for body at now,
// signed with the first configured secret. It fails if the template names
// request headers; use SignWith for those.
func (a *Adapter) Sign(body []byte, now time.Time) (http.Header, error) {
	return a.SignWith(nil, body, now)
}

// SignWith is Sign for a request that already carries the headers in h
// (which it does not modify); the returned headers are a copy of h with the
// signature and timestamp headers set.
func (a *Adapter) SignWith(h http.Header, body []byte, now time.Time) (http.Header, error) {
	out := h.Clone()
	if out == nil {
		out = http.Header{}
	}
	if out.Get("Content-Type") == "" {
		out.Set("Content-Type", "application/json")
	}
	tsRaw := ""
	if a.timestampHeader != "" {
		tsRaw = strconv.FormatInt(now.Unix(), 10)
		out.Set(a.timestampHeader, tsRaw)
	}
	parts, err := a.content(out, tsRaw, body)
	if err != nil {
		return nil, fmt.Errorf("%s: sign: %w", Name, err)
	}
	mac := verify.HMACSHA256(providers.SigningKey(a.secrets, now), parts...)
	enc := hex.EncodeToString(mac)
	if a.base64 {
		enc = base64.StdEncoding.EncodeToString(mac)
	}
	out.Set(a.sigHeader, a.prefix+enc)
	return out, nil
}
