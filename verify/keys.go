package verify

import (
	"crypto/hmac"
	"encoding/base64"
	"errors"
	"strings"
	"time"

	"golang.org/x/net/http/httpguts"
)

// Key is one configured secret in the form an adapter compares with: the
// HMAC key (or, for token schemes, the expected token) and the instant from
// which it is refused. A zero Expires never expires.
type Key struct {
	Bytes   []byte
	Expires time.Time
}

// ActiveAt reports whether k may be used at now.
func (k Key) ActiveAt(now time.Time) bool {
	return k.Expires.IsZero() || now.Before(k.Expires)
}

// CheckKeys returns ErrEmptySecret if keys is empty or holds an empty key:
// an adapter must never treat "no secret" as "no verification".
func CheckKeys(keys []Key) error {
	if len(keys) == 0 {
		return ErrEmptySecret
	}
	for _, k := range keys {
		if len(k.Bytes) == 0 {
			return ErrEmptySecret
		}
	}
	return nil
}

// MatchAny computes HMAC-SHA256 over parts with every key active at now and
// compares it in constant time with every candidate signature. It returns
// nil if any pair matches and ErrNoValidSignature otherwise (also when every
// key has expired). Every active key is tried even after a match so that
// timing does not reveal which one matched.
func MatchAny(keys []Key, now time.Time, sigs [][]byte, parts ...[]byte) error {
	if err := CheckKeys(keys); err != nil {
		return err
	}
	ok := 0
	for _, k := range keys {
		if !k.ActiveAt(now) {
			continue
		}
		mac := HMACSHA256(k.Bytes, parts...)
		for _, sig := range sigs {
			ok |= boolInt(hmac.Equal(mac, sig))
		}
	}
	if ok == 1 {
		return nil
	}
	return ErrNoValidSignature
}

// MatchToken reports whether token equals one of the keys active at now,
// comparing in constant time (see EqualString). Every active key is
// compared.
func MatchToken(keys []Key, now time.Time, token string) bool {
	if CheckKeys(keys) != nil {
		return false // no (or an empty) secret never matches
	}
	ok := 0
	for _, k := range keys {
		if k.ActiveAt(now) {
			ok |= boolInt(EqualString(token, string(k.Bytes)))
		}
	}
	return ok == 1
}

// WebhookSecretPrefix starts a Standard Webhooks secret ("whsec_<base64>").
const WebhookSecretPrefix = "whsec_"

// errNotWebhookSecret is what DecodeWebhookSecret reports; it never
// contains the secret.
var errNotWebhookSecret = errors.New("not base64 (want whsec_<base64>)")

// DecodeWebhookSecret returns the HMAC key of a Standard Webhooks secret:
// the base64 (standard or URL alphabet, padding optional) after an
// optional whsec_ prefix. A secret that decodes to no bytes wraps
// ErrEmptySecret. Errors never contain the secret.
func DecodeWebhookSecret(secret string) ([]byte, error) {
	key, err := DecodeBase64(strings.TrimPrefix(secret, WebhookSecretPrefix))
	if err != nil {
		return nil, errNotWebhookSecret
	}
	if len(key) == 0 {
		return nil, ErrEmptySecret
	}
	return key, nil
}

// StandardSignature returns the Standard Webhooks signature entry
// "v1,<base64 HMAC-SHA256 of id.timestamp.body>" for key (the decoded
// secret, see DecodeWebhookSecret). hookrelay signs its deliveries with it
// and the standard-webhooks adapter verifies with it.
func StandardSignature(key []byte, id, timestamp string, body []byte) string {
	mac := HMACSHA256(key, []byte(id), []byte("."), []byte(timestamp), []byte("."), body)
	return "v1," + base64.StdEncoding.EncodeToString(mac)
}

// ValidHeaderName reports whether name can be an HTTP header field name.
func ValidHeaderName(name string) bool { return httpguts.ValidHeaderFieldName(name) }
