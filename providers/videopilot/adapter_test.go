package videopilot_test

import (
	"testing"

	"github.com/hookrelay/hookrelay/providers/providertest"
	"github.com/hookrelay/hookrelay/providers/videopilot"
)

// TestSignVerifyRoundTrip: what the signer produces verifies, at the
// signing time and inside the window, and parses.
func TestSignVerifyRoundTrip(t *testing.T) { providertest.SignVerifyRoundTrip(t, videopilot.Name) }

// TestSecretExpiry: an expiring secret verifies until it expires, a second
// one keeps working.
func TestSecretExpiry(t *testing.T) { providertest.SecretExpiry(t, videopilot.Name) }

// TestSensitiveHeaders: the adapter names every header that carries or
// depends on its credentials, its signature header (by source) first of all.
func TestSensitiveHeaders(t *testing.T) {
	providertest.SensitiveHeaders(t, videopilot.Name, map[string]string{
		"videopilot": "X-Videopilot-Signature",
	})
}

// TestSensitiveHeadersCanonical: the names can index an http.Header.
func TestSensitiveHeadersCanonical(t *testing.T) {
	providertest.SensitiveHeadersCanonical(t, videopilot.Name)
}

// TestSpecs: the sample of every event of the Spec, signed as the provider
// sends it, verifies and parses to that event with a dedupe key from uid.
func TestSpecs(t *testing.T) { providertest.Specs(t, videopilot.Name) }

// BenchmarkVerify measures Verify of a correctly signed request by body size.
func BenchmarkVerify(b *testing.B) { providertest.BenchmarkVerify(b, videopilot.Name) }

// TestRepeatedSignatureHeader: every value of a repeated signature header
// is checked; any valid one verifies, in any position.
func TestRepeatedSignatureHeader(t *testing.T) {
	providertest.RepeatedSignatureHeader(t, videopilot.Name)
}

// TestRepeatedTimestampHeader: disagreeing copies of a timestamp are 400.
func TestRepeatedTimestampHeader(t *testing.T) {
	providertest.RepeatedTimestampHeader(t, videopilot.Name)
}
