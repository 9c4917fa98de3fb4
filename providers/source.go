package providers

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/hookrelay/hookrelay/verify"
)

// Source is one configured webhook endpoint: /webhooks/<Name>.
type Source struct {
	Name     string
	Provider string // adapter name, e.g. "sketchpen"
	Adapter  Adapter
	// DedupeKey overrides the adapter's default key when non-empty.
	DedupeKey []KeyExpr
	// Sensitive is Adapter.SensitiveHeaders, asked once when the source is
	// built rather than for every request.
	Sensitive []string
}

// Accept verifies a request (its raw URL query, headers and body) and
// extracts its event, applying the source's dedupe-key override and,
// failing everything else, the body-hash fallback. The body is decoded
// once, for the adapter and the override alike.
func (s *Source) Accept(rawQuery string, h http.Header, body []byte, now time.Time) (Event, error) {
	var err error
	if qv, ok := s.Adapter.(QueryVerifier); ok {
		// Parsed only for the adapters that read it (as url.URL.Query
		// does, a malformed pair is skipped).
		q, _ := url.ParseQuery(rawQuery)
		err = qv.VerifyQuery(q, h, body, now)
	} else {
		err = s.Adapter.Verify(h, body, now)
	}
	if err != nil {
		return Event{}, err
	}
	doc, err := DecodeObject(body)
	if err != nil {
		// Parse fails alike, with the provider's name in the error.
		if _, perr := s.Adapter.Parse(h, body); perr != nil {
			err = perr
		}
		return Event{}, err
	}
	ev := s.Adapter.ParseDoc(h, doc)
	if len(s.DedupeKey) > 0 {
		ev.DedupeKey = DedupeKey(s.DedupeKey, h, doc)
	}
	if ev.DedupeKey == "" {
		ev.DedupeKey = BodyKey(body)
	}
	ev.DedupeKey = ShortKey(ev.DedupeKey)
	return ev, nil
}

// MaxKeyLen is the longest dedupe key kept as it is; see ShortKey.
const MaxKeyLen = 200

// ShortKey returns key, or its hex SHA-256 when it is longer than
// MaxKeyLen bytes: a key made of body fields (a 1 MB number, say) must not
// bloat the stored metadata and every CloudEvent.
func ShortKey(key string) string {
	if len(key) <= MaxKeyLen {
		return key
	}
	sum := sha256.Sum256([]byte(key))
	return hex.EncodeToString(sum[:])
}

// DecodeObject decodes a JSON object body with numbers kept exact. Errors
// wrap verify.ErrInvalidJSON.
func DecodeObject(body []byte) (map[string]any, error) {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, fmt.Errorf("%w: %v", verify.ErrInvalidJSON, err)
	}
	// Anything but whitespace after the value is an error, as in Python's
	// json.loads ("Extra data"). dec.More and dec.Token miss a stray "]".
	if len(bytes.TrimLeft(body[dec.InputOffset():], " \t\r\n")) != 0 {
		return nil, fmt.Errorf("%w: trailing data after the JSON value", verify.ErrInvalidJSON)
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("%w: body must be a JSON object", verify.ErrInvalidJSON)
	}
	return m, nil
}

// ParseTime reads a provider time field: a unix-seconds number or numeric
// string, or an ISO 8601 / RFC 3339 string. It returns the zero time if v is
// absent or unreadable (the caller then uses the receive time).
func ParseTime(v any) time.Time {
	s := Scalar(v)
	if s == "" {
		return time.Time{}
	}
	if n, err := strconv.ParseFloat(s, 64); err == nil && !strings.ContainsAny(s, "-:T") {
		// Only finite, non-negative values that fit the unix-seconds range
		// that ParseTimestamp accepts; NaN, Inf and 1e300 are unreadable.
		if n < 0 || n > 1<<40 || n != n {
			return time.Time{}
		}
		sec := int64(n)
		return time.Unix(sec, int64((n-float64(sec))*1e9)).UTC()
	}
	if t, ok := verify.ParseISO8601(s); ok {
		return t.UTC()
	}
	return time.Time{}
}
