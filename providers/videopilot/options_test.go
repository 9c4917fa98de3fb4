package videopilot_test

import (
	"testing"

	"github.com/hookrelay/hookrelay/providers"
	"github.com/hookrelay/hookrelay/providers/providertest"
	"github.com/hookrelay/hookrelay/providers/videopilot"
)

// validOptions are configurations the provider accepts, apart from secrets
// (a nil Common.Secrets gets a default secret).
func validOptions() map[string]providertest.Config {
	return map[string]providertest.Config{
		"videopilot": {},
	}
}

// badOptions are configurations that must fail with an error naming the
// option.
func badOptions() []providertest.BadOption {
	sec := secretForBadOptions
	type m = map[string]string
	return []providertest.BadOption{
		{Name: "unused-scheme", Provider: "videopilot", Common: sec, Opts: m{"scheme": "body-only"}, Option: "scheme", Unknown: true},
		{Name: "unused-value-leak", Provider: "videopilot", Common: sec, Opts: m{"value": "secret-callback-value-5"}, Option: "value", Unknown: true},
	}
}

// TestProviderOptionKeys: no keys besides the common ones.
func TestProviderOptionKeys(t *testing.T) { providertest.OptionKeys(t, &videopilot.Spec, nil) }

func TestEmptySecret(t *testing.T) { providertest.EmptySecret(t, validOptions(), nil) }

func TestValidOptions(t *testing.T) { providertest.ValidOptions(t, validOptions()) }

func TestBadOptions(t *testing.T) { providertest.BadOptions(t, badOptions()) }

// secretForBadOptions is the secret of the bad options; it is checked for
// leaks as well.
var secretForBadOptions = providers.Common{Secrets: providertest.SecretsOf("whsec_c2VjcmV0LWluLWJhZC1vcHRpb25z")}
