package generichmac_test

import (
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/hookrelay/hookrelay/providers"
	"github.com/hookrelay/hookrelay/providers/generichmac"
	"github.com/hookrelay/hookrelay/providers/providertest"
	"github.com/hookrelay/hookrelay/verify"
)

// TestSignVerifyRoundTrip: what the signer produces verifies, at the
// signing time and inside the window, and parses.
func TestSignVerifyRoundTrip(t *testing.T) { providertest.SignVerifyRoundTrip(t, generichmac.Name) }

// TestSecretExpiry: an expiring secret verifies until it expires, a second
// one keeps working.
func TestSecretExpiry(t *testing.T) { providertest.SecretExpiry(t, generichmac.Name) }

// TestSensitiveHeaders: the adapter names every header that carries or
// depends on its credentials, its signature header (by source) first of all.
func TestSensitiveHeaders(t *testing.T) {
	providertest.SensitiveHeaders(t, generichmac.Name, map[string]string{
		"hmac":                  "X-Signature",
		"hmac-timestamp-base64": "X-Signature",
	})
}

// TestSensitiveHeadersCanonical: the names can index an http.Header.
func TestSensitiveHeadersCanonical(t *testing.T) {
	providertest.SensitiveHeadersCanonical(t, generichmac.Name)
}

// TestSpecs: the sample of every event of the Spec, signed as the provider
// sends it, verifies and parses to that event with a dedupe key from uid.
func TestSpecs(t *testing.T) { providertest.Specs(t, generichmac.Name) }

// BenchmarkVerify measures Verify of a correctly signed request by body size.
func BenchmarkVerify(b *testing.B) { providertest.BenchmarkVerify(b, generichmac.Name) }

func TestGenericHMACSignWith(t *testing.T) {
	now := time.Unix(1717243200, 0)
	body := []byte(providertest.SampleBody)
	a, err := generichmac.New(providers.Common{Secrets: providertest.SecretsOf("gen")}, generichmac.Options{SignatureHeader: "X-Sig",
		TimestampHeader: "X-Ts", Template: "{header:X-Request-Id}.{timestamp}.{body}"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Sign(body, now); !errors.Is(err, verify.ErrMissingHeader) {
		t.Errorf("Sign without X-Request-Id = %v, want ErrMissingHeader", err)
	}
	in := http.Header{"X-Request-Id": {"req_1"}}
	h, err := a.SignWith(in, body, now)
	if err != nil {
		t.Fatal(err)
	}
	if in.Get("X-Sig") != "" {
		t.Error("SignWith modified its input")
	}
	if err := a.Verify(h, body, now); err != nil {
		t.Fatal(err)
	}
	h.Set("X-Request-Id", "req_2")
	if err := a.Verify(h, body, now); !errors.Is(err, verify.ErrNoValidSignature) {
		t.Errorf("Verify with another X-Request-Id = %v, want ErrNoValidSignature", err)
	}
}

// TestRepeatedSignatureHeader: every value of a repeated signature header
// is checked; any valid one verifies, in any position.
func TestRepeatedSignatureHeader(t *testing.T) {
	providertest.RepeatedSignatureHeader(t, generichmac.Name)
}

// TestRepeatedTimestampHeader: disagreeing copies of a timestamp are 400.
func TestRepeatedTimestampHeader(t *testing.T) {
	providertest.RepeatedTimestampHeader(t, generichmac.Name)
}
