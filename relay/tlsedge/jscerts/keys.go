package jscerts

import (
	"errors"
	"strings"
)

// errBadKey is returned for keys with no path component at all ("", "/").
var errBadKey = errors.New("jscerts: empty storage key")

// Key mapping.
//
// A certmagic key is a slash path ("certificates/acme-v02.../example.com/
// example.com.crt"). Every path component becomes one NATS subject token,
// so "/" maps to "." and a directory is a subject prefix: List and Delete of
// a directory use the wildcard "<dir>.>". Inside a component the bytes
// [A-Za-z0-9_-] are kept and every other byte (".", "@", "=", "+", ...,
// and any non-ASCII byte) is written as "=" and two upper-case hex digits.
// The result only uses [-_=.A-Za-z0-9], what nats.go's KV key check
// accepts, never starts or ends with "." nor contains "..", and decodes
// back to the original key.
//
// Keys are canonicalised first: leading, trailing and repeated slashes are
// dropped (as FileStorage's filepath.Join does), so "a//b/" is "a/b".

func splitKey(key string) []string {
	var parts []string
	for _, p := range strings.Split(key, "/") {
		if p != "" {
			parts = append(parts, p)
		}
	}
	return parts
}

// canonical returns key with empty components removed.
func canonical(key string) string { return strings.Join(splitKey(key), "/") }

const hexDigits = "0123456789ABCDEF"

func keptByte(b byte) bool {
	return b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' || b >= '0' && b <= '9' || b == '-' || b == '_'
}

// encodeKey maps a certmagic key to a KV key.
func encodeKey(key string) (string, error) {
	parts := splitKey(key)
	if len(parts) == 0 {
		return "", errBadKey
	}
	var b strings.Builder
	for i, p := range parts {
		if i > 0 {
			b.WriteByte('.')
		}
		for j := 0; j < len(p); j++ {
			c := p[j]
			if keptByte(c) {
				b.WriteByte(c)
				continue
			}
			b.WriteByte('=')
			b.WriteByte(hexDigits[c>>4])
			b.WriteByte(hexDigits[c&0xf])
		}
	}
	return b.String(), nil
}

// decodeKey is the inverse of encodeKey.
func decodeKey(k string) (string, error) {
	var b strings.Builder
	for i := 0; i < len(k); i++ {
		c := k[i]
		switch {
		case c == '.':
			b.WriteByte('/')
		case c == '=':
			if i+2 >= len(k) {
				return "", errors.New("jscerts: truncated escape in KV key " + k)
			}
			hi, lo := unhex(k[i+1]), unhex(k[i+2])
			if hi < 0 || lo < 0 {
				return "", errors.New("jscerts: bad escape in KV key " + k)
			}
			b.WriteByte(byte(hi<<4 | lo))
			i += 2
		case keptByte(c):
			b.WriteByte(c)
		default:
			return "", errors.New("jscerts: unexpected byte in KV key " + k)
		}
	}
	return b.String(), nil
}

func unhex(c byte) int {
	switch {
	case c >= '0' && c <= '9':
		return int(c - '0')
	case c >= 'A' && c <= 'F':
		return int(c-'A') + 10
	}
	return -1
}

// subtreeFilter is the KV filter matching every key below the encoded
// directory enc ("" = the whole bucket).
func subtreeFilter(enc string) string {
	if enc == "" {
		return ">"
	}
	return enc + ".>"
}
