package registry_test

import (
	"errors"
	"maps"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/hookrelay/hookrelay/providers"
	"github.com/hookrelay/hookrelay/providers/registry"
	"github.com/hookrelay/hookrelay/verify"
)

// secondSecret is valid for every provider (base64 for standard-webhooks).
const secondSecret = "whsec_c2Vjb25kLXNlY3JldC1mb3ItZXhwaXJ5"

// withSecrets returns a copy of cfg with other secrets.
func withSecrets(cfg config, s ...providers.Secret) config {
	return config{common: providers.Common{Secrets: s, Tolerance: cfg.common.Tolerance}, opts: maps.Clone(cfg.opts)}
}

// TestSecretExpiry: for every source that takes secrets, a request signed
// with a secret that has Expires set verifies before that instant and
// fails with ErrNoValidSignature from it on, while a non-expiring second
// secret keeps working. The clock is the now argument; all instants are
// inside the timestamp windows, so only the expiry decides.
func TestSecretExpiry(t *testing.T) {
	signAt := time.Unix(1717243200, 0)
	expires := signAt.Add(30 * time.Second)
	body := []byte(sampleBody)
	covered := map[string]bool{}
	for _, s := range sources {
		if isCallback(s.cfg) {
			continue // no secrets: the callback value does not expire
		}
		covered[s.provider] = true
		t.Run(s.name, func(t *testing.T) {
			first := s.cfg.common.Secrets[0].Value
			expiring := providers.Secret{Value: first, Expires: expires}
			second := providers.Secret{Value: secondSecret}

			hOld, err := newAdapter(t, s.provider, withSecrets(s.cfg, secretsOf(first)...)).Sign(body, signAt)
			if err != nil {
				t.Fatal(err)
			}
			hNew, err := newAdapter(t, s.provider, withSecrets(s.cfg, second)).Sign(body, signAt)
			if err != nil {
				t.Fatal(err)
			}
			for _, order := range []struct {
				name    string
				secrets []providers.Secret
			}{{"expiring-first", []providers.Secret{expiring, second}}, {"expiring-second", []providers.Secret{second, expiring}}} {
				a := newAdapter(t, s.provider, withSecrets(s.cfg, order.secrets...))
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
			a := newAdapter(t, s.provider, withSecrets(s.cfg, expiring, providers.Secret{Value: secondSecret, Expires: expires}))
			for _, h := range []http.Header{hOld, hNew} {
				if err := a.Verify(h, body, expires); !errors.Is(err, verify.ErrNoValidSignature) {
					t.Errorf("all expired: Verify = %v, want ErrNoValidSignature", err)
				}
			}
		})
	}
	for _, n := range registry.Names() {
		if !covered[n] {
			t.Errorf("provider %q has no source with secrets in sources", n)
		}
	}
}

// TestCallbackValueHasNoSecrets: the callback-header scheme takes no
// secrets, not even expiring ones (their expiry would be silently ignored).
func TestCallbackValueHasNoSecrets(t *testing.T) {
	for _, s := range sources {
		if !isCallback(s.cfg) {
			continue
		}
		cfg := withSecrets(s.cfg, providers.Secret{Value: "whsec_x", Expires: time.Unix(1717243200, 0)})
		_, err := build(t, s.provider, cfg.common, cfg.opts)
		var oe *providers.OptionError
		if !errors.As(err, &oe) || oe.Option != providers.OptSecrets {
			t.Errorf("%s with an expiring secret: %v, want an OptionError about secrets", s.name, err)
		}
	}
}
