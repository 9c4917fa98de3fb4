package shortkit_test

import (
	"errors"
	"testing"

	"github.com/hookrelay/hookrelay/providers"
	"github.com/hookrelay/hookrelay/providers/providertest"
	"github.com/hookrelay/hookrelay/providers/shortkit"
	"github.com/hookrelay/hookrelay/verify"
)

// validOptions are configurations the provider accepts, apart from secrets
// (a nil Common.Secrets gets a default secret).
func validOptions() map[string]providertest.Config {
	return map[string]providertest.Config{
		"shortkit":                 {},
		"shortkit/body-only":       {Opts: map[string]string{"scheme": "body-only"}},
		"shortkit/callback-header": {Opts: map[string]string{"scheme": "callback-header", "header": "X-Token", "value": "tok"}},
	}
}

// badOptions are configurations that must fail with an error naming the
// option.
func badOptions() []providertest.BadOption {
	sec := secretForBadOptions
	none := providers.Common{}
	type m = map[string]string
	return []providertest.BadOption{
		{Name: "unknown-scheme", Provider: "shortkit", Common: sec, Opts: m{"scheme": "hmac"}, Option: "scheme"},
		{Name: "shortkit-unknown-key", Provider: "shortkit", Common: sec, Opts: m{"webhook_id": "wh"}, Option: "webhook_id", Unknown: true},
		{Name: "value-without-callback", Provider: "shortkit", Common: sec, Opts: m{"value": "secret-callback-value-1"}, Option: "value"},
		{Name: "header-without-callback", Provider: "shortkit", Common: sec, Opts: m{"header": "X-Token"}, Option: "header"},
		{Name: "callback-no-header", Provider: "shortkit", Common: none, Opts: m{"scheme": "callback-header", "value": "secret-callback-value-2"}, Option: "header"},
		{Name: "callback-bad-header", Provider: "shortkit", Common: none, Opts: m{"scheme": "callback-header", "header": "X Token", "value": "secret-callback-value-3"}, Option: "header"},
		{Name: "callback-no-value", Provider: "shortkit", Common: none, Opts: m{"scheme": "callback-header", "header": "X-Token"}, Option: "value", Want: verify.ErrEmptySecret},
		{Name: "callback-with-secrets", Provider: "shortkit", Common: sec, Opts: m{"scheme": "callback-header", "header": "X-Token", "value": "secret-callback-value-4"}, Option: "secrets"},
		{Name: "callback-negative-tolerance", Provider: "shortkit", Common: providers.Common{Tolerance: -1}, Opts: m{"scheme": "callback-header", "header": "X-Token", "value": "v"}, Option: "tolerance"},
	}
}

// TestProviderOptionKeys: the keys besides the common ones, fresh defaults
// from every NewOptions call, and the scheme set by key.
func TestProviderOptionKeys(t *testing.T) {
	providertest.OptionKeys(t, &shortkit.Spec, []string{shortkit.OptScheme, shortkit.OptHeader, shortkit.OptValue})
	if _, err := providertest.Build(t, "shortkit", providers.Common{}, map[string]string{"scheme": "callback-header", "header": "X-T", "value": "v"}); err != nil {
		t.Errorf("shortkit callback via SetOption: %v", err)
	}
	if _, err := providertest.Build(t, "shortkit", providers.Common{Secrets: providertest.SecretsOf("s")}, map[string]string{"scheme": "bogus"}); !errors.As(err, new(*providers.OptionError)) {
		t.Errorf("shortkit scheme bogus: %v, want an OptionError from New", err)
	}
}

func TestEmptySecret(t *testing.T) { providertest.EmptySecret(t, validOptions(), nil) }

func TestValidOptions(t *testing.T) { providertest.ValidOptions(t, validOptions()) }

func TestBadOptions(t *testing.T) { providertest.BadOptions(t, badOptions()) }

// secretForBadOptions is the secret of the bad options; it is checked for
// leaks as well.
var secretForBadOptions = providers.Common{Secrets: providertest.SecretsOf("whsec_c2VjcmV0LWluLWJhZC1vcHRpb25z")}
