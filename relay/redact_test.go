package relay_test

import (
	"context"
	"strings"
	"testing"
	"time"
)

// TestStoredHeadersRedactSecrets: the headers kept with an event never hold
// a signature or a shared secret, whatever the header is called: a generic
// hmac source's signature header, a shortkit callback header, Authorization,
// Proxy-Authorization, Cookie.
func TestStoredHeadersRedactSecrets(t *testing.T) {
	const hmacSecret, callbackValue = "hmac-secret-for-redaction", "callback-token-for-redaction"
	ts := startServer(t, loopbackConfig("", "")+`
sources:
  gen:
    provider: hmac
    secrets: ["`+hmacSecret+`"]
    signature_header: X-Hub-Hmac
  cb:
    provider: shortkit
    scheme: callback-header
    header: X-Callback-Token
    value: "`+callbackValue+`"
`)
	body := []byte(`{"type":"video.completed","data":{"id":"v1"}}`)
	h, err := signer(t, "hmac", hmacSecret, map[string]string{"signature_header": "X-Hub-Hmac"}).Sign(body, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	h.Set("Authorization", "Bearer not-for-storage")
	h.Set("Proxy-Authorization", "Basic not-for-storage-proxy")
	h.Set("Cookie", "session=not-for-storage-cookie")
	sig := h.Get("X-Hub-Hmac")
	genID := post(t, ts.URL+"/webhooks/gen", h, body).Body["id"]

	cbBody := []byte(`{"event":"content.imported","timestamp":"2026-11-23T10:00:00Z","data":{"contentId":"c1"}}`)
	cbID := post(t, ts.URL+"/webhooks/cb", map[string][]string{"X-Callback-Token": {callbackValue}}, cbBody).Body["id"]
	if genID == "" || cbID == "" {
		t.Fatalf("webhooks not accepted: ids %q %q", genID, cbID)
	}
	for _, tc := range []struct{ id, header, secret string }{
		{genID, "X-Hub-Hmac", sig},
		{genID, "Authorization", "not-for-storage"},
		{genID, "Proxy-Authorization", "not-for-storage-proxy"},
		{genID, "Cookie", "not-for-storage-cookie"},
		{cbID, "X-Callback-Token", callbackValue},
	} {
		ev, _, _, err := ts.Store().LoadDelivery(context.Background(), tc.id, "none")
		if err != nil {
			t.Fatal(err)
		}
		if got := ev.Headers[tc.header]; got != "[redacted]" {
			t.Errorf("stored %s = %q, want [redacted]", tc.header, got)
		}
		for k, v := range ev.Headers {
			if strings.Contains(v, tc.secret) {
				t.Errorf("stored header %s holds the secret", k)
			}
		}
	}
}
