package providertest

import (
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hookrelay/hookrelay/providers"
	"github.com/hookrelay/hookrelay/providers/registry"
	"github.com/hookrelay/hookrelay/providers/sketchpen"
	"github.com/hookrelay/hookrelay/providers/videovector"
	"github.com/hookrelay/hookrelay/verify"
)

// SignVerifyRoundTrip: what the signer of each source of provider produces
// verifies, at the signing time and inside the window, and parses.
func SignVerifyRoundTrip(t *testing.T, provider string) {
	now := time.Unix(1717243200, 0)
	for _, s := range Sources(t, provider) {
		t.Run(s.Name, func(t *testing.T) {
			a := NewAdapter(t, s.Provider, s.Config)
			body := []byte(SampleBody)
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
			if !IsCallback(s.Config) {
				body[3] ^= 1
				if err := a.Verify(h, body, now); !errors.Is(err, verify.ErrNoValidSignature) {
					t.Errorf("Verify(tampered body) = %v, want ErrNoValidSignature", err)
				}
			}
		})
	}
}

// SecretExpiry: for every source of provider that takes secrets, a request
// signed with a secret that has Expires set verifies before that instant
// and fails with ErrNoValidSignature from it on, while a non-expiring
// second secret keeps working. The clock is the now argument; all instants
// are inside the timestamp windows, so only the expiry decides.
func SecretExpiry(t *testing.T, provider string) {
	signAt := time.Unix(1717243200, 0)
	expires := signAt.Add(30 * time.Second)
	body := []byte(SampleBody)
	covered := false
	for _, s := range Sources(t, provider) {
		if IsCallback(s.Config) {
			continue // no secrets: the callback value does not expire
		}
		covered = true
		t.Run(s.Name, func(t *testing.T) {
			first := s.Config.Common.Secrets[0].Value
			expiring := providers.Secret{Value: first, Expires: expires}
			second := providers.Secret{Value: SecondSecret}

			hOld, err := NewAdapter(t, s.Provider, WithSecrets(s.Config, SecretsOf(first)...)).Sign(body, signAt)
			if err != nil {
				t.Fatal(err)
			}
			hNew, err := NewAdapter(t, s.Provider, WithSecrets(s.Config, second)).Sign(body, signAt)
			if err != nil {
				t.Fatal(err)
			}
			for _, order := range []struct {
				name    string
				secrets []providers.Secret
			}{{"expiring-first", []providers.Secret{expiring, second}}, {"expiring-second", []providers.Secret{second, expiring}}} {
				a := NewAdapter(t, s.Provider, WithSecrets(s.Config, order.secrets...))
				for _, c := range []struct {
					which   string
					at      time.Time
					h       http.Header
					wantErr bool
				}{
					{"expiring", signAt, hOld, false},
					{"expiring", expires.Add(-time.Nanosecond), hOld, false},
					{"expiring", expires, hOld, true},
					{"expiring", expires.Add(time.Nanosecond), hOld, true},
					{"expiring", expires.Add(time.Minute), hOld, true},
					{"second", signAt, hNew, false},
					{"second", expires, hNew, false},
					{"second", expires.Add(time.Minute), hNew, false},
				} {
					err := a.Verify(c.h, body, c.at)
					switch {
					case !c.wantErr && err != nil:
						t.Errorf("%s: %s secret at expires%+v: %v, want success", order.name, c.which, c.at.Sub(expires), err)
					case c.wantErr && !errors.Is(err, verify.ErrNoValidSignature):
						t.Errorf("%s: %s secret at expires%+v: %v, want ErrNoValidSignature", order.name, c.which, c.at.Sub(expires), err)
					case err != nil && strings.Contains(err.Error(), first):
						t.Errorf("error %q contains the secret", err)
					}
				}
			}

			// Only expired secrets: nothing verifies, and it is not a
			// configuration error.
			a := NewAdapter(t, s.Provider, WithSecrets(s.Config, expiring, providers.Secret{Value: SecondSecret, Expires: expires}))
			for _, h := range []http.Header{hOld, hNew} {
				if err := a.Verify(h, body, expires); !errors.Is(err, verify.ErrNoValidSignature) {
					t.Errorf("all expired: Verify = %v, want ErrNoValidSignature", err)
				}
			}
		})
	}
	if !covered {
		t.Errorf("provider %q has no source with secrets in providertest's sources", provider)
	}
}

// otherCredentials returns cfg with every credential changed: other
// secrets, or another callback value.
func otherCredentials(cfg Config) Config {
	c := WithSecrets(cfg)
	if IsCallback(cfg) {
		c.Opts["value"] = "another_callback_value"
		return c
	}
	c.Common.Secrets = SecretsOf(SecondSecret)
	return c
}

// SensitiveHeaders: the adapter of each source of provider names its
// signature (or callback) header, want[source name], every header it names
// is on the wire when it signs, and every header whose value depends on
// the credentials is among them, so redacting SensitiveHeaders removes all
// of them.
func SensitiveHeaders(t *testing.T, provider string, want map[string]string) {
	now := time.Unix(1717243200, 0)
	for _, s := range Sources(t, provider) {
		t.Run(s.Name, func(t *testing.T) {
			a := NewAdapter(t, s.Provider, s.Config)
			names := a.SensitiveHeaders()
			canon := make([]string, len(names))
			for i, n := range names {
				canon[i] = http.CanonicalHeaderKey(n)
			}
			want, ok := want[s.Name]
			if !ok {
				t.Fatalf("no expected sensitive header for source %q", s.Name)
			}
			if !slices.Contains(canon, want) {
				t.Errorf("SensitiveHeaders() = %q, want it to include %s", names, want)
			}
			h, err := a.Sign([]byte(SampleBody), now)
			if err != nil {
				t.Fatal(err)
			}
			for _, n := range names {
				if h.Get(n) == "" {
					t.Errorf("sensitive header %s is not set by Sign", n)
				}
			}
			h2, err := NewAdapter(t, s.Provider, otherCredentials(s.Config)).Sign([]byte(SampleBody), now)
			if err != nil {
				t.Fatal(err)
			}
			for k := range h {
				if h.Get(k) != h2.Get(k) && !slices.Contains(canon, http.CanonicalHeaderKey(k)) {
					t.Errorf("header %s depends on the credentials but is not in SensitiveHeaders() = %q", k, names)
				}
			}
			// The callback header option may be spelled in any case.
			if IsCallback(s.Config) {
				cfg := WithSecrets(s.Config)
				cfg.Opts["header"] = "x-callback-TOKEN"
				got := NewAdapter(t, s.Provider, cfg).SensitiveHeaders()
				if !slices.Contains(got, "X-Callback-Token") {
					t.Errorf("SensitiveHeaders() with header x-callback-TOKEN = %q, want X-Callback-Token", got)
				}
			}
		})
	}
}

// SensitiveHeadersCanonical: the names are in canonical form, as the
// Provider interface documents, so that they can index an http.Header.
func SensitiveHeadersCanonical(t *testing.T, provider string) {
	for _, s := range Sources(t, provider) {
		for _, n := range NewAdapter(t, s.Provider, s.Config).SensitiveHeaders() {
			if c := http.CanonicalHeaderKey(n); c != n {
				t.Errorf("%s: SensitiveHeaders() has %q, want the canonical %q", s.Name, n, c)
			}
		}
	}
}

// Specs: provider's Spec (as registered) has events, and the sample of
// each event, signed as the provider sends it, verifies with the adapter
// of each source and parses to that event, with a dedupe key that derives
// from uid.
func Specs(t *testing.T, provider string) {
	now := time.Unix(1717243200, 0)
	spec, err := registry.Lookup(provider)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range Sources(t, provider) {
		t.Run(s.Name, func(t *testing.T) {
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
			a := NewAdapter(t, s.Provider, s.Config)
			for _, event := range spec.Events {
				keys := map[string]string{}
				for _, uid := range []string{"u1", "u2", "u1"} {
					body, h := SignSample(t, spec, a, event, uid, now)
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
					if s.Provider == videovector.Name {
						if got := h.Get(videovector.EventTypeHeader); got != event {
							t.Errorf("%s/%s: %s = %q, want %q", event, uid, videovector.EventTypeHeader, got, event)
						}
						if ev.DeliveryID == "" {
							t.Errorf("%s/%s: no delivery id", event, uid)
						}
					}
					src := providers.Source{Name: "spec", Provider: s.Provider, Adapter: a}
					acc, err := src.Accept("", h, body, now)
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
				if !IsCallback(s.Config) {
					body, h := SignSample(t, spec, a, event, "u1", now)
					body[len(body)/2] ^= 1
					if err := a.Verify(h, body, now); err == nil {
						t.Errorf("%s: Verify(tampered sample) succeeded", event)
					}
				}
			}
		})
	}
}

// SignSample returns the sample of event for uid as spec's provider sends
// it, signed by a.
func SignSample(t *testing.T, spec *providers.Spec, a providers.Adapter, event, uid string, now time.Time) ([]byte, http.Header) {
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

// SignSampleWrongAdapter: spec's SignSample, handed another provider's
// adapter (sketchpen's), fails instead of signing with it.
func SignSampleWrongAdapter(t *testing.T, spec *providers.Spec) {
	t.Helper()
	if spec.SignSample == nil || spec.Name == sketchpen.Name {
		t.Fatalf("%s: no SignSample to check with a sketchpen adapter", spec.Name)
	}
	other := NewAdapter(t, sketchpen.Name, Config{Common: providers.Common{Secrets: SecretsOf("whsec_x")}})
	if _, _, err := spec.SignSample(other, spec.Events[0], []byte(`{}`), "u", time.Unix(1717243200, 0)); err == nil {
		t.Errorf("%s: SignSample(sketchpen adapter) succeeded", spec.Name)
	}
}
