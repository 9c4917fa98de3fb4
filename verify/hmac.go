package verify

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"strings"
)

// HMACSHA256 returns HMAC-SHA256(key, parts[0] || parts[1] || ...).
func HMACSHA256(key []byte, parts ...[]byte) []byte {
	m := hmac.New(sha256.New, key)
	for _, p := range parts {
		m.Write(p)
	}
	return m.Sum(nil)
}

// ParsePrefixedHex parses a header value of the form "<prefix><hex>", for
// example "sha256=9f86d0...", with the hex digits in either case. prefix may
// be empty. header names the header in the returned error.
func ParsePrefixedHex(header, value, prefix string) ([]byte, error) {
	value, err := trimPrefix(header, value, prefix)
	if err != nil {
		return nil, err
	}
	if len(value) != 2*sha256.Size {
		return nil, Malformed(header)
	}
	sig, err := hex.DecodeString(value)
	if err != nil {
		return nil, Malformed(header)
	}
	return sig, nil
}

// ParsePrefixedBase64 parses "<prefix><base64>" (standard or URL alphabet,
// padded or not).
func ParsePrefixedBase64(header, value, prefix string) ([]byte, error) {
	value, err := trimPrefix(header, value, prefix)
	if err != nil {
		return nil, err
	}
	sig, err := DecodeBase64(value)
	if err != nil || len(sig) == 0 {
		return nil, Malformed(header)
	}
	return sig, nil
}

// trimPrefix returns the trimmed header value without prefix (matched
// case-insensitively; may be empty): ErrMissingHeader if the value is empty,
// ErrMalformedHeader if it does not start with prefix.
func trimPrefix(header, value, prefix string) (string, error) {
	value = strings.TrimSpace(value)
	if value == "" {
		return "", Missing(header)
	}
	if len(value) < len(prefix) || !strings.EqualFold(value[:len(prefix)], prefix) {
		return "", Malformed(header)
	}
	return value[len(prefix):], nil
}

// DecodeBase64 accepts standard or URL-safe base64, with or without padding.
func DecodeBase64(s string) ([]byte, error) {
	s = strings.TrimRight(s, "=")
	if strings.ContainsAny(s, "-_") {
		return base64.RawURLEncoding.DecodeString(s)
	}
	return base64.RawStdEncoding.DecodeString(s)
}

// EqualString compares two strings in constant time. Both are hashed first,
// so neither the position of the first difference nor the length of the
// expected value (a configured header value, say) shows in the timing.
func EqualString(a, b string) bool {
	ha, hb := sha256.Sum256([]byte(a)), sha256.Sum256([]byte(b))
	return hmac.Equal(ha[:], hb[:])
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}
