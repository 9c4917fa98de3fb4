package videovector_test

import (
	"testing"
	"time"

	"github.com/hookrelay/hookrelay/providers"
	"github.com/hookrelay/hookrelay/providers/providertest"
	"github.com/hookrelay/hookrelay/providers/videovector"
	"github.com/hookrelay/hookrelay/verify"
)

// TestSignVerifyRoundTrip: what the signer produces verifies, at the
// signing time and inside the window, and parses.
func TestSignVerifyRoundTrip(t *testing.T) { providertest.SignVerifyRoundTrip(t, videovector.Name) }

// TestSecretExpiry: an expiring secret verifies until it expires, a second
// one keeps working.
func TestSecretExpiry(t *testing.T) { providertest.SecretExpiry(t, videovector.Name) }

// TestSensitiveHeaders: the adapter names every header that carries or
// depends on its credentials, its signature header (by source) first of all.
func TestSensitiveHeaders(t *testing.T) {
	providertest.SensitiveHeaders(t, videovector.Name, map[string]string{
		"videovector": "X-Webhook-Signature",
	})
}

// TestSensitiveHeadersCanonical: the names can index an http.Header.
func TestSensitiveHeadersCanonical(t *testing.T) {
	providertest.SensitiveHeadersCanonical(t, videovector.Name)
}

// TestSpecs: the sample of every event of the Spec, signed as the provider
// sends it, verifies and parses to that event with a dedupe key from uid.
func TestSpecs(t *testing.T) { providertest.Specs(t, videovector.Name) }

// BenchmarkVerify measures Verify of a correctly signed request by body size.
func BenchmarkVerify(b *testing.B) { providertest.BenchmarkVerify(b, videovector.Name) }

// TestSignSampleWrongAdapter: SignSample handed another provider's
// adapter fails instead of signing with it.
func TestSignSampleWrongAdapter(t *testing.T) {
	providertest.SignSampleWrongAdapter(t, &videovector.Spec)
}

func TestVideoVectorSignDelivery(t *testing.T) {
	now := time.Unix(1717243200, 0)
	a, err := videovector.New(providers.Common{Secrets: providertest.SecretsOf("vv_secret")}, videovector.Options{})
	if err != nil {
		t.Fatal(err)
	}
	compact := []byte(`{"id":"evt_9","event":"video.generated","data":{"id":"vid_9"}}`)

	h, err := a.Sign(compact, now)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{videovector.EventTypeHeader, videovector.DeliveryIDHeader, videovector.WebhookIDHeader} {
		if v := h.Get(name); v != "" {
			t.Errorf("Sign set %s = %q; want it unset", name, v)
		}
	}

	h, err = a.SignDelivery(compact, now, videovector.Delivery{EventType: "video.generated", DeliveryID: "dlv_9", WebhookID: "wh_9"})
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]string{videovector.EventTypeHeader: "video.generated", videovector.DeliveryIDHeader: "dlv_9", videovector.WebhookIDHeader: "wh_9"} {
		if got := h.Get(name); got != want {
			t.Errorf("%s = %q, want %q", name, got, want)
		}
	}
	// The signature covers the canonical form: both the compact body and
	// its canonical re-encoding verify.
	canon, err := verify.CanonicalJSON(compact)
	if err != nil {
		t.Fatal(err)
	}
	for _, body := range [][]byte{compact, canon} {
		if err := a.Verify(h, body, now); err != nil {
			t.Errorf("Verify(%s): %v", body, err)
		}
	}
	ev, err := a.Parse(h, compact)
	if err != nil {
		t.Fatal(err)
	}
	if ev.DedupeKey != "dlv_9" || ev.DeliveryID != "dlv_9" || ev.Type != "video.generated" || ev.Subject != "vid_9" {
		t.Errorf("Parse = %+v", ev)
	}

	pinned, err := videovector.New(providers.Common{Secrets: providertest.SecretsOf("vv_secret")}, videovector.Options{WebhookID: "wh_pinned"})
	if err != nil {
		t.Fatal(err)
	}
	if h, err = pinned.Sign(compact, now); err != nil {
		t.Fatal(err)
	}
	if got, want := h.Get(videovector.WebhookIDHeader), "wh_pinned"; got != want {
		t.Errorf("pinned Sign: X-Webhook-ID = %q, want %q", got, want)
	}
	if _, err := a.Sign([]byte("not json"), now); err == nil {
		t.Error("Sign(not json): want an error")
	}
}

// TestRepeatedSignatureHeader: every value of a repeated signature header
// is checked; any valid one verifies, in any position.
func TestRepeatedSignatureHeader(t *testing.T) {
	providertest.RepeatedSignatureHeader(t, videovector.Name)
}

// TestRepeatedTimestampHeader: disagreeing copies of a timestamp are 400.
func TestRepeatedTimestampHeader(t *testing.T) {
	providertest.RepeatedTimestampHeader(t, videovector.Name)
}
