package registry_test

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hookrelay/hookrelay/providers"
	"github.com/hookrelay/hookrelay/providers/registry"
	"github.com/hookrelay/hookrelay/verify"
)

func TestNames(t *testing.T) {
	want := []string{"hmac", "shortkit", "sketchpen", "standard-webhooks", "videopilot", "videovector"}
	if got := registry.Names(); !slices.Equal(got, want) {
		t.Fatalf("Names() = %q, want %q", got, want)
	}
}

func TestUnknownProvider(t *testing.T) {
	a, err := registry.New("sketchpan", providers.Common{Secrets: secretsOf("s")})
	if a != nil || !errors.Is(err, registry.ErrUnknownProvider) {
		t.Fatalf("New = %v, %v; want nil, ErrUnknownProvider", a, err)
	}
	for _, n := range registry.Names() {
		if !strings.Contains(err.Error(), n) {
			t.Errorf("error %q does not list %q", err, n)
		}
	}
	spec, err := registry.Lookup("sketchpan")
	if spec != nil || !errors.Is(err, registry.ErrUnknownProvider) || !strings.Contains(err.Error(), `"sketchpan"`) {
		t.Fatalf("Lookup = %v, %v; want nil, ErrUnknownProvider naming the provider", spec, err)
	}
}

// TestLookup: every name resolves to the spec of that name, and New builds
// the providers that need no options of their own.
func TestLookup(t *testing.T) {
	for _, n := range registry.Names() {
		spec, err := registry.Lookup(n)
		if err != nil || spec == nil || spec.Name != n {
			t.Fatalf("Lookup(%q) = %v, %v", n, spec, err)
		}
		if spec.NewOptions == nil || spec.Sample == nil {
			t.Errorf("spec %q lacks NewOptions or Sample", n)
		}
	}
	for _, n := range []string{"sketchpen", "videopilot", "videovector", "shortkit"} {
		if _, err := registry.New(n, providers.Common{Secrets: secretsOf("whsec_c2VjcmV0")}); err != nil {
			t.Errorf("New(%q) with default options: %v", n, err)
		}
	}
	// hmac's defaults lack the required signature_header.
	var oe *providers.OptionError
	if _, err := registry.New("hmac", providers.Common{Secrets: secretsOf("s")}); !errors.As(err, &oe) || oe.Option != "signature_header" {
		t.Errorf("New(hmac) with default options = %v, want an OptionError about signature_header", err)
	}
}

// validOptions are configurations each provider accepts, apart from
// secrets (a nil common.Secrets gets a default secret).
func validOptions() map[string]config {
	return map[string]config{
		"sketchpen":                 {},
		"videopilot":                {},
		"videovector":               {opts: map[string]string{"webhook_id": "wh_1"}},
		"shortkit":                  {},
		"shortkit/body-only":        {opts: map[string]string{"scheme": "body-only"}},
		"standard-webhooks":         {},
		"hmac":                      {opts: map[string]string{"signature_header": "X-Signature"}},
		"hmac/timestamp-base64":     {opts: map[string]string{"signature_header": "X-Signature", "timestamp_header": "X-Ts", "template": "{timestamp}.{body}", "encoding": "base64"}},
		"shortkit/callback-header":  {opts: map[string]string{"scheme": "callback-header", "header": "X-Token", "value": "tok"}},
		"standard-webhooks/bare-ok": {common: providers.Common{Secrets: secretsOf("c2VjcmV0")}},
	}
}

func providerOf(name string) string { p, _, _ := strings.Cut(name, "/"); return p }

func isCallback(c config) bool { return c.opts["scheme"] == "callback-header" }

// TestEmptySecret: no provider treats a missing or empty secret as "no
// verification".
func TestEmptySecret(t *testing.T) {
	for name, base := range validOptions() {
		if base.common.Secrets != nil {
			continue
		}
		cases := map[string][]providers.Secret{"nil": nil, "empty-list": {}, "empty-secret": secretsOf(""),
			"second-empty":   secretsOf("whsec_c2VjcmV0", ""),
			"empty-expiring": {{Value: "", Expires: time.Unix(1717243200, 0)}}}
		if name == "standard-webhooks" {
			cases["decodes-to-nothing"] = secretsOf("whsec_")
		}
		for cname, secrets := range cases {
			t.Run(name+"/"+cname, func(t *testing.T) {
				c := providers.Common{Secrets: secrets}
				opts := maps.Clone(base.opts)
				if isCallback(base) {
					c.Secrets = nil
					delete(opts, "value")
				}
				a, err := build(t, providerOf(name), c, opts)
				if !isNil(a) || !errors.Is(err, verify.ErrEmptySecret) {
					t.Fatalf("New = %v, %v; want an error wrapping ErrEmptySecret", a, err)
				}
				var oe *providers.OptionError
				if !errors.As(err, &oe) {
					t.Fatalf("error %v is not a *providers.OptionError", err)
				}
			})
		}
	}
}

func TestValidOptions(t *testing.T) {
	for name, c := range validOptions() {
		t.Run(name, func(t *testing.T) {
			if c.common.Secrets == nil && !isCallback(c) {
				c.common.Secrets = secretsOf("whsec_c2VjcmV0")
			}
			if _, err := build(t, providerOf(name), c.common, c.opts); err != nil {
				t.Fatal(err)
			}
		})
	}
}

type badOption struct {
	name     string
	provider string
	common   providers.Common
	opts     map[string]string
	option   string // the option (config key) the error must name
	want     error  // optional sentinel
	// unknown: the provider has no such key, so SetOption refuses it
	// before New runs; otherwise New returns a *providers.OptionError.
	unknown bool
}

// badOptions are configurations that must fail with an error naming the
// option. Their secrets and values are checked for leaks as well.
func badOptions() []badOption {
	sec := providers.Common{Secrets: secretsOf("whsec_c2VjcmV0LWluLWJhZC1vcHRpb25z")}
	none := providers.Common{}
	type m = map[string]string
	return []badOption{
		{name: "negative-tolerance", provider: "sketchpen", common: providers.Common{Secrets: sec.Secrets, Tolerance: -time.Second}, option: "tolerance"},
		{name: "vv-negative-tolerance", provider: "videovector", common: providers.Common{Secrets: sec.Secrets, Tolerance: -time.Second}, option: "tolerance"},
		{name: "unused-webhook-id", provider: "sketchpen", common: sec, opts: m{"webhook_id": "wh"}, option: "webhook_id", unknown: true},
		{name: "unused-scheme", provider: "videopilot", common: sec, opts: m{"scheme": "body-only"}, option: "scheme", unknown: true},
		{name: "unused-header", provider: "videovector", common: sec, opts: m{"header": "X-Token"}, option: "header", unknown: true},
		{name: "unused-template", provider: "standard-webhooks", common: sec, opts: m{"template": "{body}"}, option: "template", unknown: true},
		{name: "unused-value-leak", provider: "videopilot", common: sec, opts: m{"value": "secret-callback-value-5"}, option: "value", unknown: true},
		{name: "unknown-scheme", provider: "shortkit", common: sec, opts: m{"scheme": "hmac"}, option: "scheme"},
		{name: "shortkit-unknown-key", provider: "shortkit", common: sec, opts: m{"webhook_id": "wh"}, option: "webhook_id", unknown: true},
		{name: "value-without-callback", provider: "shortkit", common: sec, opts: m{"value": "secret-callback-value-1"}, option: "value"},
		{name: "header-without-callback", provider: "shortkit", common: sec, opts: m{"header": "X-Token"}, option: "header"},
		{name: "callback-no-header", provider: "shortkit", common: none, opts: m{"scheme": "callback-header", "value": "secret-callback-value-2"}, option: "header"},
		{name: "callback-bad-header", provider: "shortkit", common: none, opts: m{"scheme": "callback-header", "header": "X Token", "value": "secret-callback-value-3"}, option: "header"},
		{name: "callback-no-value", provider: "shortkit", common: none, opts: m{"scheme": "callback-header", "header": "X-Token"}, option: "value", want: verify.ErrEmptySecret},
		{name: "callback-with-secrets", provider: "shortkit", common: sec, opts: m{"scheme": "callback-header", "header": "X-Token", "value": "secret-callback-value-4"}, option: "secrets"},
		{name: "callback-negative-tolerance", provider: "shortkit", common: providers.Common{Tolerance: -1}, opts: m{"scheme": "callback-header", "header": "X-Token", "value": "v"}, option: "tolerance"},
		{name: "sw-not-base64", provider: "standard-webhooks", common: providers.Common{Secrets: secretsOf("whsec_not*base64!secret")}, option: "secrets[0]"},
		{name: "sw-second-not-base64", provider: "standard-webhooks", common: providers.Common{Secrets: secretsOf("whsec_c2VjcmV0", "whsec_%%%leaky%%%")}, option: "secrets[1]"},
		{name: "hmac-no-signature-header", provider: "hmac", common: sec, option: "signature_header"},
		{name: "hmac-bad-signature-header", provider: "hmac", common: sec, opts: m{"signature_header": "X:Sig"}, option: "signature_header"},
		{name: "hmac-bad-timestamp-header", provider: "hmac", common: sec, opts: m{"signature_header": "X-Sig", "timestamp_header": "X Ts"}, option: "timestamp_header"},
		{name: "hmac-same-headers", provider: "hmac", common: sec, opts: m{"signature_header": "X-Sig", "timestamp_header": "x-sig"}, option: "timestamp_header"},
		{name: "hmac-bad-encoding", provider: "hmac", common: sec, opts: m{"signature_header": "X-Sig", "encoding": "base32"}, option: "encoding"},
		{name: "hmac-timestamp-without-header", provider: "hmac", common: sec, opts: m{"signature_header": "X-Sig", "template": "{timestamp}.{body}"}, option: "template"},
		{name: "hmac-no-body", provider: "hmac", common: sec, opts: m{"signature_header": "X-Sig", "timestamp_header": "X-Ts", "template": "{timestamp}"}, option: "template"},
		{name: "hmac-unknown-placeholder", provider: "hmac", common: sec, opts: m{"signature_header": "X-Sig", "template": "{id}.{body}"}, option: "template"},
		{name: "hmac-unterminated", provider: "hmac", common: sec, opts: m{"signature_header": "X-Sig", "template": "{body}.{timestamp"}, option: "template"},
		{name: "hmac-bad-header-placeholder", provider: "hmac", common: sec, opts: m{"signature_header": "X-Sig", "template": "{header:}.{body}"}, option: "template"},
		{name: "hmac-bad-event-field", provider: "hmac", common: sec, opts: m{"signature_header": "X-Sig", "event_type_field": "data..type"}, option: "event_type_field"},
		{name: "hmac-bad-subject-field", provider: "hmac", common: sec, opts: m{"signature_header": "X-Sig", "subject_field": "."}, option: "subject_field"},
		{name: "hmac-unused-scheme", provider: "hmac", common: sec, opts: m{"signature_header": "X-Sig", "scheme": "x"}, option: "scheme", unknown: true},
		{name: "hmac-empty-secret", provider: "hmac", common: providers.Common{Secrets: secretsOf("")}, opts: m{"signature_header": "X-Sig"}, option: "secrets[0]", want: verify.ErrEmptySecret},
	}
}

func TestBadOptions(t *testing.T) {
	for _, c := range badOptions() {
		t.Run(c.name, func(t *testing.T) {
			a, err := build(t, c.provider, c.common, c.opts)
			if !isNil(a) || err == nil {
				t.Fatalf("build = %v, %v; want an error", a, err)
			}
			if !strings.Contains(err.Error(), c.option) {
				t.Errorf("error %q does not name option %q", err, c.option)
			}
			if c.unknown {
				// SetOption's error names the key and lists the keys the
				// provider does take.
				if want := fmt.Sprintf("unknown key %q", c.option); !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not contain %s", err, want)
				}
				spec, lerr := registry.Lookup(c.provider)
				if lerr != nil {
					t.Fatal(lerr)
				}
				for _, k := range providers.OptionKeys(spec.NewOptions()) {
					if !strings.Contains(err.Error(), k) {
						t.Errorf("error %q does not list the provider's key %q", err, k)
					}
				}
				return
			}
			var oe *providers.OptionError
			if !errors.As(err, &oe) {
				t.Fatalf("error %v is not a *providers.OptionError", err)
			}
			if got, want := oe.Option, c.option; got != want {
				t.Errorf("Option = %q, want %q (error: %v)", got, want, err)
			}
			if got, want := oe.Provider, c.provider; got != want {
				t.Errorf("Provider = %q, want %q", got, want)
			}
			if c.want != nil && !errors.Is(err, c.want) {
				t.Errorf("error %v does not wrap %v", err, c.want)
			}
		})
	}
}

// TestAcceptDedupeOverride: a source's dedupe_key override reads headers
// and body fields; a body that is not JSON fails as the adapter's Parse does.
func TestAcceptDedupeOverride(t *testing.T) {
	a := newAdapter(t, "sketchpen", config{common: providers.Common{Secrets: secretsOf("whsec_override")}})
	exprs, err := providers.ParseKeyExprs([]string{"header:X-Request-Id", "json:data.n"})
	if err != nil {
		t.Fatal(err)
	}
	src := providers.Source{Name: "o", Provider: "sketchpen", Adapter: a, DedupeKey: exprs}
	now := time.Unix(1717243200, 0)
	body := []byte(`{"event": "video.completed", "video_id": "vid_1", "created_at": 1717243200, "data": {"n": 7}}`)
	h, err := a.Sign(body, now)
	if err != nil {
		t.Fatal(err)
	}
	h.Set("X-Request-Id", "req_1")
	ev, err := src.Accept(nil, h, body, now)
	if err != nil || ev.DedupeKey != "req_1:7" || ev.Type != "video.completed" || ev.Subject != "vid_1" {
		t.Fatalf("Accept = %+v, %v; want key req_1:7", ev, err)
	}

	bad := []byte(`{"event": "video.completed"`)
	if h, err = a.Sign(bad, now); err != nil {
		t.Fatal(err)
	}
	_, err = src.Accept(nil, h, bad, now)
	_, perr := a.Parse(h, bad)
	if !errors.Is(err, verify.ErrInvalidJSON) || perr == nil || err.Error() != perr.Error() {
		t.Fatalf("Accept(not JSON) = %v, want Parse's error %v", err, perr)
	}
}

// TestNewErrorReturnsNilAdapter: a failed New returns a nil Adapter, not
// an interface holding a nil pointer (which != nil and panics when used).
func TestNewErrorReturnsNilAdapter(t *testing.T) {
	for _, n := range registry.Names() {
		t.Run(n, func(t *testing.T) {
			a, err := registry.New(n, providers.Common{})
			if err == nil {
				t.Fatal("New without secrets: want an error")
			}
			if a != nil {
				t.Errorf("New without secrets returned the Adapter %#v (a %T) with its error %v; want a nil interface", a, a, err)
			}
		})
	}
}
