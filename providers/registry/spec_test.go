package registry_test

import (
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/hookrelay/hookrelay/providers"
	"github.com/hookrelay/hookrelay/providers/generichmac"
	"github.com/hookrelay/hookrelay/providers/registry"
	"github.com/hookrelay/hookrelay/providers/shortkit"
	"github.com/hookrelay/hookrelay/providers/videovector"
)

// wantSensitive is the credential header each source's adapter must name.
var wantSensitive = map[string]string{
	"sketchpen":                "X-Sketchpen-Signature",
	"videopilot":               "X-Videopilot-Signature",
	"videovector":              "X-Webhook-Signature",
	"shortkit":                 "X-Shortform-Signature",
	"shortkit-body-only":       "X-Shortform-Signature",
	"shortkit-callback-header": "X-Callback-Token",
	"standard-webhooks":        "Webhook-Signature",
	"hmac":                     "X-Signature",
	"hmac-timestamp-base64":    "X-Signature",
}

// otherCredentials returns cfg with every credential changed: other
// secrets, or another callback value.
func otherCredentials(cfg config) config {
	c := withSecrets(cfg)
	if isCallback(cfg) {
		c.opts["value"] = "another_callback_value"
		return c
	}
	c.common.Secrets = secretsOf(secondSecret)
	return c
}

// TestSensitiveHeaders: each adapter names its signature (or callback)
// header, every header it names is on the wire when it signs, and every
// header whose value depends on the credentials is among them, so
// redacting SensitiveHeaders removes all of them.
func TestSensitiveHeaders(t *testing.T) {
	now := time.Unix(1717243200, 0)
	for _, s := range sources {
		t.Run(s.name, func(t *testing.T) {
			a := newAdapter(t, s.provider, s.cfg)
			names := a.SensitiveHeaders()
			canon := make([]string, len(names))
			for i, n := range names {
				canon[i] = http.CanonicalHeaderKey(n)
			}
			want, ok := wantSensitive[s.name]
			if !ok {
				t.Fatalf("no expected sensitive header for source %q", s.name)
			}
			if !slices.Contains(canon, want) {
				t.Errorf("SensitiveHeaders() = %q, want it to include %s", names, want)
			}
			h, err := a.Sign([]byte(sampleBody), now)
			if err != nil {
				t.Fatal(err)
			}
			for _, n := range names {
				if h.Get(n) == "" {
					t.Errorf("sensitive header %s is not set by Sign", n)
				}
			}
			h2, err := newAdapter(t, s.provider, otherCredentials(s.cfg)).Sign([]byte(sampleBody), now)
			if err != nil {
				t.Fatal(err)
			}
			for k := range h {
				if h.Get(k) != h2.Get(k) && !slices.Contains(canon, http.CanonicalHeaderKey(k)) {
					t.Errorf("header %s depends on the credentials but is not in SensitiveHeaders() = %q", k, names)
				}
			}
			// The callback header option may be spelled in any case.
			if isCallback(s.cfg) {
				cfg := withSecrets(s.cfg)
				cfg.opts["header"] = "x-callback-TOKEN"
				got := newAdapter(t, s.provider, cfg).SensitiveHeaders()
				if !slices.Contains(got, "X-Callback-Token") {
					t.Errorf("SensitiveHeaders() with header x-callback-TOKEN = %q, want X-Callback-Token", got)
				}
			}
		})
	}
}

// TestSensitiveHeadersCanonical: the names are in canonical form, as the
// Provider interface documents, so that they can index an http.Header.
func TestSensitiveHeadersCanonical(t *testing.T) {
	for _, s := range sources {
		for _, n := range newAdapter(t, s.provider, s.cfg).SensitiveHeaders() {
			if c := http.CanonicalHeaderKey(n); c != n {
				t.Errorf("%s: SensitiveHeaders() has %q, want the canonical %q", s.name, n, c)
			}
		}
	}
}

// TestSpecs: every provider's Spec has events, and the sample of each
// event, signed as the provider sends it, verifies with the same adapter
// and parses to that event, with a dedupe key that derives from uid.
func TestSpecs(t *testing.T) {
	now := time.Unix(1717243200, 0)
	covered := map[string]bool{}
	for _, s := range sources {
		spec, err := registry.Lookup(s.provider)
		if err != nil {
			t.Fatal(err)
		}
		covered[s.provider] = true
		t.Run(s.name, func(t *testing.T) {
			if len(spec.Events) == 0 {
				t.Fatal("Spec.Events is empty")
			}
			seen := map[string]bool{}
			for _, e := range spec.Events {
				if e == "" || seen[e] {
					t.Errorf("Spec.Events %q: empty or duplicate event", spec.Events)
				}
				seen[e] = true
			}
			a := newAdapter(t, s.provider, s.cfg)
			for _, event := range spec.Events {
				keys := map[string]string{}
				for _, uid := range []string{"u1", "u2", "u1"} {
					body, h := signSample(t, spec, a, event, uid, now)
					if err := a.Verify(h, body, now); err != nil {
						t.Fatalf("%s/%s: Verify: %v", event, uid, err)
					}
					ev, err := a.Parse(h, body)
					if err != nil {
						t.Fatalf("%s/%s: Parse: %v", event, uid, err)
					}
					if ev.Type != event {
						t.Errorf("%s/%s: Parse type = %q, want %q", event, uid, ev.Type, event)
					}
					if s.provider == videovector.Name {
						if got := h.Get(videovector.EventTypeHeader); got != event {
							t.Errorf("%s/%s: %s = %q, want %q", event, uid, videovector.EventTypeHeader, got, event)
						}
						if ev.DeliveryID == "" {
							t.Errorf("%s/%s: no delivery id", event, uid)
						}
					}
					src := providers.Source{Name: "spec", Provider: s.provider, Adapter: a}
					acc, err := src.Accept(nil, h, body, now)
					if err != nil {
						t.Fatalf("%s/%s: Accept: %v", event, uid, err)
					}
					if acc.Type != event || acc.DedupeKey == "" {
						t.Errorf("%s/%s: Accept = %+v", event, uid, acc)
					}
					if prev, ok := keys[uid]; ok && prev != acc.DedupeKey {
						t.Errorf("%s/%s: dedupe key %q, then %q for the same uid", event, uid, prev, acc.DedupeKey)
					}
					keys[uid] = acc.DedupeKey
				}
				if keys["u1"] == keys["u2"] {
					t.Errorf("%s: uids u1 and u2 share the dedupe key %q", event, keys["u1"])
				}
				// Tampering with a sample's body is caught (the callback
				// scheme signs nothing).
				if !isCallback(s.cfg) {
					body, h := signSample(t, spec, a, event, "u1", now)
					body[len(body)/2] ^= 1
					if err := a.Verify(h, body, now); err == nil {
						t.Errorf("%s: Verify(tampered sample) succeeded", event)
					}
				}
			}
		})
	}
	for _, n := range registry.Names() {
		if !covered[n] {
			t.Errorf("provider %q has no source in sources", n)
		}
	}
}

func signSample(t *testing.T, spec *providers.Spec, a providers.Adapter, event, uid string, now time.Time) ([]byte, http.Header) {
	t.Helper()
	doc := spec.Sample(event, uid, now)
	if len(doc) == 0 {
		t.Fatalf("Sample(%q) is empty", event)
	}
	body, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	if spec.SignSample == nil {
		h, err := a.Sign(body, now)
		if err != nil {
			t.Fatalf("Sign(sample %s): %v", event, err)
		}
		return body, h
	}
	wire, h, err := spec.SignSample(a, event, body, uid, now)
	if err != nil {
		t.Fatalf("SignSample(%s): %v", event, err)
	}
	return wire, h
}

// TestSignSampleWrongAdapter: a SignSample handed another provider's
// adapter fails instead of signing with it.
func TestSignSampleWrongAdapter(t *testing.T) {
	other := newAdapter(t, "sketchpen", config{common: providers.Common{Secrets: secretsOf("whsec_x")}})
	for _, n := range registry.Names() {
		spec, _ := registry.Lookup(n)
		if spec.SignSample == nil || n == "sketchpen" {
			continue
		}
		if _, _, err := spec.SignSample(other, spec.Events[0], []byte(`{}`), "u", time.Unix(1717243200, 0)); err == nil {
			t.Errorf("%s: SignSample(sketchpen adapter) succeeded", n)
		}
	}
}

// TestProviderOptionKeys: the keys each provider takes besides the common
// ones, and fresh defaults from every NewOptions call.
func TestProviderOptionKeys(t *testing.T) {
	want := map[string][]string{
		"hmac": {generichmac.OptSignatureHeader, "prefix", generichmac.OptEncoding, generichmac.OptTemplate,
			generichmac.OptTimestampHeader, generichmac.OptEventTypeField, generichmac.OptSubjectField},
		"shortkit":          {shortkit.OptScheme, shortkit.OptHeader, shortkit.OptValue},
		"sketchpen":         nil,
		"standard-webhooks": nil,
		"videopilot":        nil,
		"videovector":       {"webhook_id"},
	}
	for _, n := range registry.Names() {
		spec, _ := registry.Lookup(n)
		w, ok := want[n]
		if !ok {
			t.Errorf("no expected keys for provider %q", n)
			continue
		}
		o := spec.NewOptions()
		if got := providers.OptionKeys(o); !slices.Equal(got, w) && !(len(got) == 0 && len(w) == 0) {
			t.Errorf("%s: OptionKeys = %q, want %q", n, got, w)
		}
		for _, k := range w {
			if err := providers.SetOption(o, k, "changed"); err != nil {
				t.Errorf("%s: SetOption(%s): %v", n, k, err)
			}
		}
		if len(w) > 0 && spec.NewOptions() == o {
			t.Errorf("%s: NewOptions returned the same options twice", n)
		}
		for _, k := range []string{"secrets", "tolerance", "dedupe_key", "provider"} {
			if err := providers.SetOption(spec.NewOptions(), k, "x"); err == nil {
				t.Errorf("%s: SetOption(%s) succeeded; it is a common key", n, k)
			}
		}
	}
	// Options set by key reach the adapter.
	o := videovector.Spec.NewOptions()
	if err := providers.SetOption(o, "webhook_id", "wh_set"); err != nil {
		t.Fatal(err)
	}
	a, err := o.New(providers.Common{Secrets: secretsOf("vv")})
	if err != nil {
		t.Fatal(err)
	}
	h, err := a.Sign([]byte(`{"id":"e"}`), time.Unix(1717243200, 0))
	if err != nil || h.Get(videovector.WebhookIDHeader) != "wh_set" {
		t.Errorf("Sign after SetOption(webhook_id) = %v, %v; want X-Webhook-ID wh_set", h, err)
	}
	if fresh := videovector.Spec.NewOptions().(*videovector.Options); fresh.WebhookID != "" {
		t.Errorf("NewOptions after SetOption = %+v, want defaults", *fresh)
	}
	if _, err := build(t, "shortkit", providers.Common{}, map[string]string{"scheme": "callback-header", "header": "X-T", "value": "v"}); err != nil {
		t.Errorf("shortkit callback via SetOption: %v", err)
	}
	if _, err := build(t, "shortkit", providers.Common{Secrets: secretsOf("s")}, map[string]string{"scheme": "bogus"}); !errors.As(err, new(*providers.OptionError)) {
		t.Errorf("shortkit scheme bogus: %v, want an OptionError from New", err)
	}
}
