package registry_test

import (
	"errors"
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
	a, err := registry.New("sketchpan", providers.Options{Secrets: []string{"s"}})
	if a != nil || !errors.Is(err, registry.ErrUnknownProvider) {
		t.Fatalf("New = %v, %v; want nil, ErrUnknownProvider", a, err)
	}
	for _, n := range registry.Names() {
		if !strings.Contains(err.Error(), n) {
			t.Errorf("error %q does not list %q", err, n)
		}
	}
}

// validOptions are options each provider accepts, apart from secrets.
func validOptions() map[string]providers.Options {
	return map[string]providers.Options{
		"sketchpen":                 {},
		"videopilot":                {},
		"videovector":               {WebhookID: "wh_1"},
		"shortkit":                  {},
		"shortkit/body-only":        {Scheme: "body-only"},
		"standard-webhooks":         {},
		"hmac":                      {SignatureHeader: "X-Signature"},
		"hmac/timestamp-base64":     {SignatureHeader: "X-Signature", TimestampHeader: "X-Ts", Template: "{timestamp}.{body}", Encoding: "base64"},
		"shortkit/callback-header":  {Scheme: "callback-header", Header: "X-Token", Value: "tok"},
		"standard-webhooks/bare-ok": {Secrets: []string{"c2VjcmV0"}},
	}
}

func providerOf(name string) string { p, _, _ := strings.Cut(name, "/"); return p }

// TestEmptySecret: no provider treats a missing or empty secret as "no
// verification".
func TestEmptySecret(t *testing.T) {
	for name, base := range validOptions() {
		if base.Secrets != nil {
			continue
		}
		cases := map[string][]string{"nil": nil, "empty-list": {}, "empty-secret": {""}, "second-empty": {"whsec_c2VjcmV0", ""}}
		if name == "standard-webhooks" {
			cases["decodes-to-nothing"] = []string{"whsec_"}
		}
		for cname, secrets := range cases {
			t.Run(name+"/"+cname, func(t *testing.T) {
				o := base
				o.Secrets = secrets
				if base.Scheme == "callback-header" {
					o.Secrets = nil
					o.Value = ""
				}
				a, err := registry.New(providerOf(name), o)
				if a != nil || !errors.Is(err, verify.ErrEmptySecret) {
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
	for name, o := range validOptions() {
		t.Run(name, func(t *testing.T) {
			if o.Secrets == nil && o.Scheme != "callback-header" {
				o.Secrets = []string{"whsec_c2VjcmV0"}
			}
			if _, err := registry.New(providerOf(name), o); err != nil {
				t.Fatal(err)
			}
		})
	}
}

type badOption struct {
	name     string
	provider string
	opts     providers.Options
	option   string // the option the error must name
	want     error  // optional sentinel
}

// badOptions are constructor calls that must fail with an error naming the
// option. Their secrets and values are checked for leaks as well.
func badOptions() []badOption {
	s := []string{"whsec_c2VjcmV0LWluLWJhZC1vcHRpb25z"}
	return []badOption{
		{"negative-tolerance", "sketchpen", providers.Options{Secrets: s, Tolerance: -time.Second}, "tolerance", nil},
		{"unused-webhook-id", "sketchpen", providers.Options{Secrets: s, WebhookID: "wh"}, "webhook_id", nil},
		{"unused-scheme", "videopilot", providers.Options{Secrets: s, Scheme: "body-only"}, "scheme", nil},
		{"unused-header", "videovector", providers.Options{Secrets: s, Header: "X-Token"}, "header", nil},
		{"unused-template", "standard-webhooks", providers.Options{Secrets: s, Template: "{body}"}, "template", nil},
		{"unknown-scheme", "shortkit", providers.Options{Secrets: s, Scheme: "hmac"}, "scheme", nil},
		{"value-without-callback", "shortkit", providers.Options{Secrets: s, Value: "secret-callback-value-1"}, "value", nil},
		{"callback-no-header", "shortkit", providers.Options{Scheme: "callback-header", Value: "secret-callback-value-2"}, "header", nil},
		{"callback-bad-header", "shortkit", providers.Options{Scheme: "callback-header", Header: "X Token", Value: "secret-callback-value-3"}, "header", nil},
		{"callback-no-value", "shortkit", providers.Options{Scheme: "callback-header", Header: "X-Token"}, "value", verify.ErrEmptySecret},
		{"callback-with-secrets", "shortkit", providers.Options{Scheme: "callback-header", Header: "X-Token", Value: "secret-callback-value-4", Secrets: s}, "secrets", nil},
		{"callback-negative-tolerance", "shortkit", providers.Options{Scheme: "callback-header", Header: "X-Token", Value: "v", Tolerance: -1}, "tolerance", nil},
		{"sw-not-base64", "standard-webhooks", providers.Options{Secrets: []string{"whsec_not*base64!secret"}}, "secrets[0]", nil},
		{"sw-second-not-base64", "standard-webhooks", providers.Options{Secrets: []string{"whsec_c2VjcmV0", "whsec_%%%leaky%%%"}}, "secrets[1]", nil},
		{"hmac-no-signature-header", "hmac", providers.Options{Secrets: s}, "signature_header", nil},
		{"hmac-bad-signature-header", "hmac", providers.Options{Secrets: s, SignatureHeader: "X:Sig"}, "signature_header", nil},
		{"hmac-bad-timestamp-header", "hmac", providers.Options{Secrets: s, SignatureHeader: "X-Sig", TimestampHeader: "X Ts"}, "timestamp_header", nil},
		{"hmac-same-headers", "hmac", providers.Options{Secrets: s, SignatureHeader: "X-Sig", TimestampHeader: "x-sig"}, "timestamp_header", nil},
		{"hmac-bad-encoding", "hmac", providers.Options{Secrets: s, SignatureHeader: "X-Sig", Encoding: "base32"}, "encoding", nil},
		{"hmac-timestamp-without-header", "hmac", providers.Options{Secrets: s, SignatureHeader: "X-Sig", Template: "{timestamp}.{body}"}, "template", nil},
		{"hmac-no-body", "hmac", providers.Options{Secrets: s, SignatureHeader: "X-Sig", TimestampHeader: "X-Ts", Template: "{timestamp}"}, "template", nil},
		{"hmac-unknown-placeholder", "hmac", providers.Options{Secrets: s, SignatureHeader: "X-Sig", Template: "{id}.{body}"}, "template", nil},
		{"hmac-unterminated", "hmac", providers.Options{Secrets: s, SignatureHeader: "X-Sig", Template: "{body}.{timestamp"}, "template", nil},
		{"hmac-bad-header-placeholder", "hmac", providers.Options{Secrets: s, SignatureHeader: "X-Sig", Template: "{header:}.{body}"}, "template", nil},
		{"hmac-bad-event-field", "hmac", providers.Options{Secrets: s, SignatureHeader: "X-Sig", EventTypeField: "data..type"}, "event_type_field", nil},
		{"hmac-bad-subject-field", "hmac", providers.Options{Secrets: s, SignatureHeader: "X-Sig", SubjectField: "."}, "subject_field", nil},
		{"hmac-unused-scheme", "hmac", providers.Options{Secrets: s, SignatureHeader: "X-Sig", Scheme: "x"}, "scheme", nil},
		{"hmac-empty-secret", "hmac", providers.Options{Secrets: []string{""}, SignatureHeader: "X-Sig"}, "secrets[0]", verify.ErrEmptySecret},
	}
}

func newOrErr(provider string, o providers.Options) (providers.Adapter, error) {
	return registry.New(provider, o)
}

func TestBadOptions(t *testing.T) {
	for _, c := range badOptions() {
		t.Run(c.name, func(t *testing.T) {
			a, err := newOrErr(c.provider, c.opts)
			if a != nil || err == nil {
				t.Fatalf("New = %v, %v; want an error", a, err)
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
			if !strings.Contains(err.Error(), c.option) {
				t.Errorf("error %q does not name option %q", err, c.option)
			}
		})
	}
}

// TestAcceptDedupeOverride: a source's dedupe_key override reads headers
// and body fields; a body that is not JSON fails as the adapter's Parse does.
func TestAcceptDedupeOverride(t *testing.T) {
	a := newAdapter(t, "sketchpen", providers.Options{Secrets: []string{"whsec_override"}})
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
	ev, err := src.Accept(h, body, now)
	if err != nil || ev.DedupeKey != "req_1:7" || ev.Type != "video.completed" || ev.Subject != "vid_1" {
		t.Fatalf("Accept = %+v, %v; want key req_1:7", ev, err)
	}

	bad := []byte(`{"event": "video.completed"`)
	if h, err = a.Sign(bad, now); err != nil {
		t.Fatal(err)
	}
	_, err = src.Accept(h, bad, now)
	_, perr := a.Parse(h, bad)
	if !errors.Is(err, verify.ErrInvalidJSON) || perr == nil || err.Error() != perr.Error() {
		t.Fatalf("Accept(not JSON) = %v, want Parse's error %v", err, perr)
	}
}
