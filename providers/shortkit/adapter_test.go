package shortkit_test

import (
	"errors"
	"testing"
	"time"

	"github.com/hookrelay/hookrelay/providers"
	"github.com/hookrelay/hookrelay/providers/providertest"
	"github.com/hookrelay/hookrelay/providers/shortkit"
)

// TestSignVerifyRoundTrip: what the signer produces verifies, at the
// signing time and inside the window, and parses.
func TestSignVerifyRoundTrip(t *testing.T) { providertest.SignVerifyRoundTrip(t, shortkit.Name) }

// TestSecretExpiry: an expiring secret verifies until it expires, a second
// one keeps working.
func TestSecretExpiry(t *testing.T) { providertest.SecretExpiry(t, shortkit.Name) }

// TestSensitiveHeaders: the adapter names every header that carries or
// depends on its credentials, its signature header (by source) first of all.
func TestSensitiveHeaders(t *testing.T) {
	providertest.SensitiveHeaders(t, shortkit.Name, map[string]string{
		"shortkit":                 "X-Shortform-Signature",
		"shortkit-body-only":       "X-Shortform-Signature",
		"shortkit-callback-header": "X-Callback-Token",
	})
}

// TestSensitiveHeadersCanonical: the names can index an http.Header.
func TestSensitiveHeadersCanonical(t *testing.T) {
	providertest.SensitiveHeadersCanonical(t, shortkit.Name)
}

// TestSpecs: the sample of every event of the Spec, signed as the provider
// sends it, verifies and parses to that event with a dedupe key from uid.
func TestSpecs(t *testing.T) { providertest.Specs(t, shortkit.Name) }

// BenchmarkVerify measures Verify of a correctly signed request by body size.
func BenchmarkVerify(b *testing.B) { providertest.BenchmarkVerify(b, shortkit.Name) }

// TestSignSampleWrongAdapter: SignSample handed another provider's
// adapter fails instead of signing with it.
func TestSignSampleWrongAdapter(t *testing.T) { providertest.SignSampleWrongAdapter(t, &shortkit.Spec) }

// TestCallbackValueHasNoSecrets: the callback-header scheme takes no
// secrets, not even expiring ones (their expiry would be silently ignored).
func TestCallbackValueHasNoSecrets(t *testing.T) {
	for _, s := range providertest.Sources(t, shortkit.Name) {
		if !providertest.IsCallback(s.Config) {
			continue
		}
		cfg := providertest.WithSecrets(s.Config, providers.Secret{Value: "whsec_x", Expires: time.Unix(1717243200, 0)})
		_, err := providertest.Build(t, s.Provider, cfg.Common, cfg.Opts)
		var oe *providers.OptionError
		if !errors.As(err, &oe) || oe.Option != providers.OptSecrets {
			t.Errorf("%s with an expiring secret: %v, want an OptionError about secrets", s.Name, err)
		}
	}
}

// TestRepeatedSignatureHeader: every value of a repeated signature header
// is checked; any valid one verifies, in any position.
func TestRepeatedSignatureHeader(t *testing.T) {
	providertest.RepeatedSignatureHeader(t, shortkit.Name)
}

// TestRepeatedTimestampHeader: disagreeing copies of a timestamp are 400.
func TestRepeatedTimestampHeader(t *testing.T) {
	providertest.RepeatedTimestampHeader(t, shortkit.Name)
}
