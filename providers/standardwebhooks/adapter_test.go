package standardwebhooks_test

import (
	"testing"
	"time"

	"github.com/hookrelay/hookrelay/providers"
	"github.com/hookrelay/hookrelay/providers/providertest"
	"github.com/hookrelay/hookrelay/providers/standardwebhooks"
)

// TestSignVerifyRoundTrip: what the signer produces verifies, at the
// signing time and inside the window, and parses.
func TestSignVerifyRoundTrip(t *testing.T) {
	providertest.SignVerifyRoundTrip(t, standardwebhooks.Name)
}

// TestSecretExpiry: an expiring secret verifies until it expires, a second
// one keeps working.
func TestSecretExpiry(t *testing.T) { providertest.SecretExpiry(t, standardwebhooks.Name) }

// TestSensitiveHeaders: the adapter names every header that carries or
// depends on its credentials, its signature header (by source) first of all.
func TestSensitiveHeaders(t *testing.T) {
	providertest.SensitiveHeaders(t, standardwebhooks.Name, map[string]string{
		"standard-webhooks": "Webhook-Signature",
	})
}

// TestSensitiveHeadersCanonical: the names can index an http.Header.
func TestSensitiveHeadersCanonical(t *testing.T) {
	providertest.SensitiveHeadersCanonical(t, standardwebhooks.Name)
}

// TestSpecs: the sample of every event of the Spec, signed as the provider
// sends it, verifies and parses to that event with a dedupe key from uid.
func TestSpecs(t *testing.T) { providertest.Specs(t, standardwebhooks.Name) }

// BenchmarkVerify measures Verify of a correctly signed request by body size.
func BenchmarkVerify(b *testing.B) { providertest.BenchmarkVerify(b, standardwebhooks.Name) }

// TestSignSampleWrongAdapter: SignSample handed another provider's
// adapter fails instead of signing with it.
func TestSignSampleWrongAdapter(t *testing.T) {
	providertest.SignSampleWrongAdapter(t, &standardwebhooks.Spec)
}

func TestStandardWebhooksSignWithID(t *testing.T) {
	now := time.Unix(1717243200, 0)
	body := []byte(providertest.SampleBody)
	a, err := standardwebhooks.New(providers.Common{Secrets: providertest.SecretsOf(specSecret)})
	if err != nil {
		t.Fatal(err)
	}
	h1, _ := a.Sign(body, now)
	h2, _ := a.Sign(body, now)
	if h1.Get("webhook-id") == "" || h1.Get("webhook-id") != h2.Get("webhook-id") {
		t.Errorf("Sign ids %q, %q: want equal and non-empty", h1.Get("webhook-id"), h2.Get("webhook-id"))
	}
	h, err := a.SignWithID("msg_custom", body, now)
	if err != nil {
		t.Fatal(err)
	}
	if got := h.Get("webhook-id"); got != "msg_custom" {
		t.Errorf("webhook-id = %q", got)
	}
	if err := a.Verify(h, body, now); err != nil {
		t.Error(err)
	}
	if _, err := a.SignWithID("", body, now); err == nil {
		t.Error("SignWithID with an empty id: want an error")
	}
}

// TestRepeatedSignatureHeader: every value of a repeated signature header
// is checked; any valid one verifies, in any position.
func TestRepeatedSignatureHeader(t *testing.T) {
	providertest.RepeatedSignatureHeader(t, standardwebhooks.Name)
}

// TestRepeatedTimestampHeader: disagreeing copies of a timestamp are 400.
func TestRepeatedTimestampHeader(t *testing.T) {
	providertest.RepeatedTimestampHeader(t, standardwebhooks.Name)
}
