package verify_test

import (
	"encoding/hex"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/hookrelay/hookrelay/verify"
)

// The seed corpora of these targets are in testdata/fuzz/<FuzzName>/.

const fuzzHeader = "X-Fuzz-Signature"

// checkHeaderError checks that err is a missing or malformed header error
// about fuzzHeader whose message does not repeat the value.
func checkHeaderError(t *testing.T, err error) {
	t.Helper()
	if !errors.Is(err, verify.ErrMissingHeader) && !errors.Is(err, verify.ErrMalformedHeader) {
		t.Fatalf("error %v wraps neither ErrMissingHeader nor ErrMalformedHeader", err)
	}
	if !verify.IsBadRequest(err) {
		t.Fatalf("IsBadRequest(%v) = false", err)
	}
	var he *verify.HeaderError
	if !errors.As(err, &he) || he.Header != fuzzHeader || err.Error() != he.Err.Error()+" "+fuzzHeader {
		t.Fatalf("error %q: want a *verify.HeaderError about %s and nothing else", err, fuzzHeader)
	}
}

func FuzzParsePrefixedHex(f *testing.F) {
	f.Fuzz(func(t *testing.T, value, prefix string) {
		sig, err := verify.ParsePrefixedHex(fuzzHeader, value, prefix)
		if err != nil {
			checkHeaderError(t, err)
			return
		}
		if len(sig) != 32 {
			t.Fatalf("ParsePrefixedHex(%q, %q) = %d bytes, want 32", value, prefix, len(sig))
		}
		v := strings.TrimSpace(value)
		if got, want := hex.EncodeToString(sig), strings.ToLower(v[len(v)-64:]); got != want {
			t.Fatalf("ParsePrefixedHex(%q, %q) = %s, want %s", value, prefix, got, want)
		}
		if !strings.EqualFold(v[:len(v)-64], prefix) {
			t.Fatalf("ParsePrefixedHex(%q, %q) accepted another prefix", value, prefix)
		}
	})
}

func FuzzParsePrefixedBase64(f *testing.F) {
	f.Fuzz(func(t *testing.T, value, prefix string) {
		sig, err := verify.ParsePrefixedBase64(fuzzHeader, value, prefix)
		if err != nil {
			checkHeaderError(t, err)
			return
		}
		if len(sig) == 0 {
			t.Fatalf("ParsePrefixedBase64(%q, %q) returned no bytes and no error", value, prefix)
		}
		v := strings.TrimSpace(value)
		if len(v) < len(prefix) || !strings.EqualFold(v[:len(prefix)], prefix) {
			t.Fatalf("ParsePrefixedBase64(%q, %q) accepted another prefix", value, prefix)
		}
	})
}

func FuzzParseTimestamp(f *testing.F) {
	now := time.Unix(1717243200, 0)
	f.Fuzz(func(t *testing.T, value string, allowISO bool) {
		ts, err := verify.ParseTimestamp(fuzzHeader, value, allowISO)
		if err != nil {
			checkHeaderError(t, err)
			return
		}
		if !allowISO && (ts.Unix() < 0 || ts.Unix() > 1<<40) {
			t.Fatalf("ParseTimestamp(%q) = %v: out of the unix-seconds range", value, ts)
		}
		// The window check must classify any parsed time without panicking.
		switch err := verify.CheckWindow(ts, now, 5*time.Minute); {
		case err == nil:
			if d := now.Sub(ts); d > 5*time.Minute || d < -5*time.Minute {
				t.Fatalf("CheckWindow accepted %v (%v from now)", ts, d)
			}
		case errors.Is(err, verify.ErrTooOld), errors.Is(err, verify.ErrTooNew):
		default:
			t.Fatalf("CheckWindow: unexpected error %v", err)
		}
	})
}

func FuzzEqualString(f *testing.F) {
	f.Fuzz(func(t *testing.T, a, b string) {
		if got, want := verify.EqualString(a, b), a == b; got != want {
			t.Fatalf("EqualString(%q, %q) = %v, want %v", a, b, got, want)
		}
	})
}
