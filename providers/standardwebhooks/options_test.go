package standardwebhooks_test

import (
	"testing"

	"github.com/hookrelay/hookrelay/providers"
	"github.com/hookrelay/hookrelay/providers/providertest"
	"github.com/hookrelay/hookrelay/providers/standardwebhooks"
)

// validOptions are configurations the provider accepts, apart from secrets
// (a nil Common.Secrets gets a default secret).
func validOptions() map[string]providertest.Config {
	return map[string]providertest.Config{
		"standard-webhooks":         {},
		"standard-webhooks/bare-ok": {Common: providers.Common{Secrets: providertest.SecretsOf("c2VjcmV0")}},
	}
}

// emptySecrets are what standard-webhooks also refuses as an empty secret.
var emptySecrets = map[string][]providers.Secret{"decodes-to-nothing": providertest.SecretsOf("whsec_")}

// badOptions are configurations that must fail with an error naming the
// option.
func badOptions() []providertest.BadOption {
	sec := secretForBadOptions
	type m = map[string]string
	return []providertest.BadOption{
		{Name: "unused-template", Provider: "standard-webhooks", Common: sec, Opts: m{"template": "{body}"}, Option: "template", Unknown: true},
		{Name: "sw-not-base64", Provider: "standard-webhooks", Common: providers.Common{Secrets: providertest.SecretsOf("whsec_not*base64!secret")}, Option: "secrets[0]"},
		{Name: "sw-second-not-base64", Provider: "standard-webhooks", Common: providers.Common{Secrets: providertest.SecretsOf("whsec_c2VjcmV0", "whsec_%%%leaky%%%")}, Option: "secrets[1]"},
	}
}

// TestProviderOptionKeys: no keys besides the common ones.
func TestProviderOptionKeys(t *testing.T) { providertest.OptionKeys(t, &standardwebhooks.Spec, nil) }

func TestEmptySecret(t *testing.T) { providertest.EmptySecret(t, validOptions(), emptySecrets) }

func TestValidOptions(t *testing.T) { providertest.ValidOptions(t, validOptions()) }

func TestBadOptions(t *testing.T) { providertest.BadOptions(t, badOptions()) }

// secretForBadOptions is the secret of the bad options; it is checked for
// leaks as well.
var secretForBadOptions = providers.Common{Secrets: providertest.SecretsOf("whsec_c2VjcmV0LWluLWJhZC1vcHRpb25z")}
