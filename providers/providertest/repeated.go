package providertest

import (
	"errors"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hookrelay/hookrelay/verify"
)

// signatureHeaders names, per source in sources, the header that carries
// its signature (or, for callback-header, its shared value), and a value
// of the right form that verifies nothing.
var signatureHeaders = map[string]struct{ name, wrong string }{
	"sketchpen":                {"X-Sketchpen-Signature", "sha256=" + strings.Repeat("ab", 32)},
	"videopilot":               {"X-VideoPilot-Signature", "sha256=" + strings.Repeat("ab", 32)},
	"videovector":              {"X-Webhook-Signature", "sha256=" + strings.Repeat("ab", 32)},
	"shortkit":                 {"X-Shortform-Signature", "sha256=" + strings.Repeat("ab", 32)},
	"shortkit-body-only":       {"X-Shortform-Signature", strings.Repeat("ab", 32)},
	"shortkit-callback-header": {"X-Callback-Token", "not-the-value"},
	"standard-webhooks":        {"webhook-signature", "v1,q83vq83vq83vq83vq83vq83vq83vq83vq83vq83vq80="},
	"hmac":                     {"X-Signature", "sha256=" + strings.Repeat("ab", 32)},
	"hmac-timestamp-base64":    {"X-Signature", "q83vq83vq83vq83vq83vq83vq83vq83vq83vq83vq80="},
}

// RepeatedSignatureHeader: for every source of provider, a signature header sent
// several times has every value checked: the valid one verifies in any
// position, next to wrong and malformed values, and also when a proxy has
// joined the copies into one comma-separated value; with only wrong values
// it is 401, never 400 or a pass.
func RepeatedSignatureHeader(t *testing.T, provider string) {
	now := time.Unix(1717243200, 0)
	body := []byte(SampleBody)
	for _, s := range Sources(t, provider) {
		sh, ok := signatureHeaders[s.Name]
		if !ok {
			t.Fatalf("no signature header known for source %s", s.Name)
		}
		t.Run(s.Name, func(t *testing.T) {
			a := NewAdapter(t, s.Provider, s.Config)
			h, err := a.Sign(body, now)
			if err != nil {
				t.Fatal(err)
			}
			good := h.Get(sh.name)
			if good == "" {
				t.Fatalf("Sign set no %s", sh.name)
			}
			orders := [][]string{
				{good, sh.wrong},
				{sh.wrong, good},
				{sh.wrong, "garbage", good, sh.wrong},
				{"garbage", good},
			}
			switch s.Name {
			case "shortkit-callback-header": // a shared value, not a list
			case "standard-webhooks": // its entries hold commas: joined with ", " only
				orders = append(orders, []string{sh.wrong + ", " + good}, []string{good + ", " + sh.wrong})
			default:
				orders = append(orders, []string{sh.wrong + ", " + good}, []string{good + "," + sh.wrong})
			}
			for _, vals := range orders {
				hh := h.Clone()
				hh[http.CanonicalHeaderKey(sh.name)] = slices.Clone(vals)
				if err := a.Verify(hh, body, now); err != nil {
					t.Errorf("Verify with %s = %q: %v", sh.name, vals, err)
				}
			}
			hh := h.Clone()
			hh[http.CanonicalHeaderKey(sh.name)] = []string{sh.wrong, sh.wrong}
			if err := a.Verify(hh, body, now); !errors.Is(err, verify.ErrNoValidSignature) {
				t.Errorf("Verify with two wrong values = %v, want ErrNoValidSignature", err)
			}
		})
	}
}

// RepeatedTimestampHeader: for every source of provider, copies of a timestamp (or message id) that
// disagree are a malformed request (400) whatever their order, since the
// signed content depends on which one is meant; equal copies are fine.
func RepeatedTimestampHeader(t *testing.T, provider string) {
	now := time.Unix(1717243200, 0)
	body := []byte(SampleBody)
	cases := map[string]string{
		"sketchpen": "X-Sketchpen-Timestamp", "shortkit": "X-Shortform-Timestamp",
		"standard-webhooks": "webhook-timestamp", "hmac-timestamp-base64": "X-Timestamp",
	}
	for _, s := range Sources(t, provider) {
		name, ok := cases[s.Name]
		if !ok {
			continue
		}
		t.Run(s.Name, func(t *testing.T) {
			a := NewAdapter(t, s.Provider, s.Config)
			h, err := a.Sign(body, now)
			if err != nil {
				t.Fatal(err)
			}
			ts := h.Get(name)
			for _, vals := range [][]string{{ts, "1717243100"}, {"1717243100", ts}} {
				hh := h.Clone()
				hh[http.CanonicalHeaderKey(name)] = vals
				if err := a.Verify(hh, body, now); !errors.Is(err, verify.ErrMalformedHeader) {
					t.Errorf("Verify with %s = %q: %v, want ErrMalformedHeader", name, vals, err)
				}
			}
			hh := h.Clone()
			hh[http.CanonicalHeaderKey(name)] = []string{ts, ts}
			if err := a.Verify(hh, body, now); err != nil {
				t.Errorf("Verify with two equal %s: %v", name, err)
			}
		})
	}
}
