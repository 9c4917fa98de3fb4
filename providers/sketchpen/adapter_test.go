package sketchpen_test

import (
	"errors"
	"testing"
	"time"

	"github.com/hookrelay/hookrelay/providers"
	"github.com/hookrelay/hookrelay/providers/providertest"
	"github.com/hookrelay/hookrelay/providers/sketchpen"
	"github.com/hookrelay/hookrelay/verify"
)

// TestSignVerifyRoundTrip: what the signer produces verifies, at the
// signing time and inside the window, and parses.
func TestSignVerifyRoundTrip(t *testing.T) { providertest.SignVerifyRoundTrip(t, sketchpen.Name) }

// TestSecretExpiry: an expiring secret verifies until it expires, a second
// one keeps working.
func TestSecretExpiry(t *testing.T) { providertest.SecretExpiry(t, sketchpen.Name) }

// TestSensitiveHeaders: the adapter names every header that carries or
// depends on its credentials, its signature header (by source) first of all.
func TestSensitiveHeaders(t *testing.T) {
	providertest.SensitiveHeaders(t, sketchpen.Name, map[string]string{
		"sketchpen": "X-Sketchpen-Signature",
	})
}

// TestSensitiveHeadersCanonical: the names can index an http.Header.
func TestSensitiveHeadersCanonical(t *testing.T) {
	providertest.SensitiveHeadersCanonical(t, sketchpen.Name)
}

// TestSpecs: the sample of every event of the Spec, signed as the provider
// sends it, verifies and parses to that event with a dedupe key from uid.
func TestSpecs(t *testing.T) { providertest.Specs(t, sketchpen.Name) }

// BenchmarkVerify measures Verify of a correctly signed request by body size.
func BenchmarkVerify(b *testing.B) { providertest.BenchmarkVerify(b, sketchpen.Name) }

// TestSignUsesFirstSecret: rotation puts the new secret first; a verifier
// that only knows the first secret accepts the signer's output.
func TestSignUsesFirstSecret(t *testing.T) {
	now := time.Unix(1717243200, 0)
	secrets := func(s ...string) providertest.Config {
		return providertest.Config{Common: providers.Common{Secrets: providertest.SecretsOf(s...)}}
	}
	signer := providertest.NewAdapter(t, "sketchpen", secrets("whsec_new", "whsec_old"))
	h, err := signer.Sign([]byte(providertest.SampleBody), now)
	if err != nil {
		t.Fatal(err)
	}
	for secret, want := range map[string]error{"whsec_new": nil, "whsec_old": verify.ErrNoValidSignature} {
		v := providertest.NewAdapter(t, "sketchpen", secrets(secret))
		if err := v.Verify(h, []byte(providertest.SampleBody), now); !errors.Is(err, want) {
			t.Errorf("verify with %s only: %v, want %v", secret, err, want)
		}
	}
}

// TestRepeatedSignatureHeader: every value of a repeated signature header
// is checked; any valid one verifies, in any position.
func TestRepeatedSignatureHeader(t *testing.T) {
	providertest.RepeatedSignatureHeader(t, sketchpen.Name)
}

// TestRepeatedTimestampHeader: disagreeing copies of a timestamp are 400.
func TestRepeatedTimestampHeader(t *testing.T) {
	providertest.RepeatedTimestampHeader(t, sketchpen.Name)
}
