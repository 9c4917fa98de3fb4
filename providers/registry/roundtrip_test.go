package registry_test

import (
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/hookrelay/hookrelay/providers"
	"github.com/hookrelay/hookrelay/providers/generichmac"
	"github.com/hookrelay/hookrelay/providers/standardwebhooks"
	"github.com/hookrelay/hookrelay/providers/videovector"
	"github.com/hookrelay/hookrelay/verify"
)

// sources is one configured source per adapter and scheme: the benchmarks,
// fuzz tests and round trips run over all of them.
var sources = []struct {
	name     string
	provider string
	cfg      config
}{
	{"sketchpen", "sketchpen", config{common: providers.Common{Secrets: secretsOf("whsec_sketch_primary", "whsec_sketch_old")}}},
	{"videopilot", "videopilot", config{common: providers.Common{Secrets: secretsOf("vp_secret")}}},
	{"videovector", "videovector", config{common: providers.Common{Secrets: secretsOf("vv_secret")}, opts: map[string]string{"webhook_id": "wh_42"}}},
	{"shortkit", "shortkit", config{common: providers.Common{Secrets: secretsOf("whsec_shortkit")}}},
	{"shortkit-body-only", "shortkit", config{common: providers.Common{Secrets: secretsOf("whsec_shortkit")}, opts: map[string]string{"scheme": "body-only"}}},
	{"shortkit-callback-header", "shortkit", config{opts: map[string]string{"scheme": "callback-header", "header": "X-Callback-Token", "value": "cb_value_1"}}},
	{"standard-webhooks", "standard-webhooks", config{common: providers.Common{Secrets: secretsOf("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")}}},
	{"hmac", "hmac", config{common: providers.Common{Secrets: secretsOf("gen_secret")}, opts: map[string]string{"signature_header": "X-Signature", "prefix": "sha256="}}},
	{"hmac-timestamp-base64", "hmac", config{common: providers.Common{Secrets: secretsOf("gen_secret")}, opts: map[string]string{
		"signature_header": "X-Signature", "encoding": "base64", "timestamp_header": "X-Timestamp", "template": "t={timestamp},b={body}"}}},
}

// newSource returns the adapter of the source named name in sources.
func newSource(t testing.TB, name string) providers.Adapter {
	t.Helper()
	for _, s := range sources {
		if s.name == name {
			return newAdapter(t, s.provider, s.cfg)
		}
	}
	t.Fatalf("no source %q", name)
	return nil
}

const sampleBody = `{"event": "video.completed", "type": "video.completed", "id": "evt_1", "video_id": "vid_1", ` +
	`"created_at": 1717243200, "timestamp": "2024-06-01T12:00:00Z", "data": {"id": "vid_1", "video_id": "vid_1", "contentId": "vid_1"}}`

// TestSignVerifyRoundTrip: what each signer produces verifies, at the
// signing time and inside the window, and parses.
func TestSignVerifyRoundTrip(t *testing.T) {
	now := time.Unix(1717243200, 0)
	for _, s := range sources {
		t.Run(s.name, func(t *testing.T) {
			a := newAdapter(t, s.provider, s.cfg)
			body := []byte(sampleBody)
			h, err := a.Sign(body, now)
			if err != nil {
				t.Fatalf("Sign: %v", err)
			}
			for _, at := range []time.Time{now, now.Add(time.Minute), now.Add(-time.Minute)} {
				if err := a.Verify(h, body, at); err != nil {
					t.Fatalf("Verify at %v: %v", at.Sub(now), err)
				}
			}
			ev, err := a.Parse(h, body)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if got, want := ev.Subject, "vid_1"; got != want {
				t.Errorf("Subject = %q, want %q", got, want)
			}
			if got, want := ev.Type, "video.completed"; got != want {
				t.Errorf("Type = %q, want %q", got, want)
			}
			if s.name != "shortkit-callback-header" {
				body[3] ^= 1
				if err := a.Verify(h, body, now); !errors.Is(err, verify.ErrNoValidSignature) {
					t.Errorf("Verify(tampered body) = %v, want ErrNoValidSignature", err)
				}
			}
		})
	}
}

// TestSignUsesFirstSecret: rotation puts the new secret first; a verifier
// that only knows the first secret accepts the signer's output.
func TestSignUsesFirstSecret(t *testing.T) {
	now := time.Unix(1717243200, 0)
	signer := newAdapter(t, "sketchpen", config{common: providers.Common{Secrets: secretsOf("whsec_new", "whsec_old")}})
	h, err := signer.Sign([]byte(sampleBody), now)
	if err != nil {
		t.Fatal(err)
	}
	for secret, want := range map[string]error{"whsec_new": nil, "whsec_old": verify.ErrNoValidSignature} {
		v := newAdapter(t, "sketchpen", config{common: providers.Common{Secrets: secretsOf(secret)}})
		if err := v.Verify(h, []byte(sampleBody), now); !errors.Is(err, want) {
			t.Errorf("verify with %s only: %v, want %v", secret, err, want)
		}
	}
}

func TestVideoVectorSignDelivery(t *testing.T) {
	now := time.Unix(1717243200, 0)
	a, err := videovector.New(providers.Common{Secrets: secretsOf("vv_secret")}, videovector.Options{})
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

	pinned, err := videovector.New(providers.Common{Secrets: secretsOf("vv_secret")}, videovector.Options{WebhookID: "wh_pinned"})
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

func TestStandardWebhooksSignWithID(t *testing.T) {
	now := time.Unix(1717243200, 0)
	a, err := standardwebhooks.New(providers.Common{Secrets: secretsOf("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")})
	if err != nil {
		t.Fatal(err)
	}
	h1, _ := a.Sign([]byte(sampleBody), now)
	h2, _ := a.Sign([]byte(sampleBody), now)
	if h1.Get("webhook-id") == "" || h1.Get("webhook-id") != h2.Get("webhook-id") {
		t.Errorf("Sign ids %q, %q: want equal and non-empty", h1.Get("webhook-id"), h2.Get("webhook-id"))
	}
	h, err := a.SignWithID("msg_custom", []byte(sampleBody), now)
	if err != nil {
		t.Fatal(err)
	}
	if got := h.Get("webhook-id"); got != "msg_custom" {
		t.Errorf("webhook-id = %q", got)
	}
	if err := a.Verify(h, []byte(sampleBody), now); err != nil {
		t.Error(err)
	}
	if _, err := a.SignWithID("", []byte(sampleBody), now); err == nil {
		t.Error("SignWithID with an empty id: want an error")
	}
}

func TestGenericHMACSignWith(t *testing.T) {
	now := time.Unix(1717243200, 0)
	a, err := generichmac.New(providers.Common{Secrets: secretsOf("gen")}, generichmac.Options{SignatureHeader: "X-Sig",
		TimestampHeader: "X-Ts", Template: "{header:X-Request-Id}.{timestamp}.{body}"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Sign([]byte(sampleBody), now); !errors.Is(err, verify.ErrMissingHeader) {
		t.Errorf("Sign without X-Request-Id = %v, want ErrMissingHeader", err)
	}
	in := http.Header{"X-Request-Id": {"req_1"}}
	h, err := a.SignWith(in, []byte(sampleBody), now)
	if err != nil {
		t.Fatal(err)
	}
	if in.Get("X-Sig") != "" {
		t.Error("SignWith modified its input")
	}
	if err := a.Verify(h, []byte(sampleBody), now); err != nil {
		t.Fatal(err)
	}
	h.Set("X-Request-Id", "req_2")
	if err := a.Verify(h, []byte(sampleBody), now); !errors.Is(err, verify.ErrNoValidSignature) {
		t.Errorf("Verify with another X-Request-Id = %v, want ErrNoValidSignature", err)
	}
}
