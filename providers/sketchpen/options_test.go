package sketchpen_test

import (
	"testing"
	"time"

	"github.com/hookrelay/hookrelay/providers"
	"github.com/hookrelay/hookrelay/providers/providertest"
	"github.com/hookrelay/hookrelay/providers/sketchpen"
)

// validOptions are configurations the provider accepts, apart from secrets
// (a nil Common.Secrets gets a default secret).
func validOptions() map[string]providertest.Config {
	return map[string]providertest.Config{
		"sketchpen": {},
	}
}

// badOptions are configurations that must fail with an error naming the
// option.
func badOptions() []providertest.BadOption {
	sec := secretForBadOptions
	type m = map[string]string
	return []providertest.BadOption{
		{Name: "negative-tolerance", Provider: "sketchpen", Common: providers.Common{Secrets: sec.Secrets, Tolerance: -time.Second}, Option: "tolerance"},
		{Name: "unused-webhook-id", Provider: "sketchpen", Common: sec, Opts: m{"webhook_id": "wh"}, Option: "webhook_id", Unknown: true},
	}
}

// TestProviderOptionKeys: no keys besides the common ones.
func TestProviderOptionKeys(t *testing.T) { providertest.OptionKeys(t, &sketchpen.Spec, nil) }

func TestEmptySecret(t *testing.T) { providertest.EmptySecret(t, validOptions(), nil) }

func TestValidOptions(t *testing.T) { providertest.ValidOptions(t, validOptions()) }

func TestBadOptions(t *testing.T) { providertest.BadOptions(t, badOptions()) }

// secretForBadOptions is the secret of the bad options; it is checked for
// leaks as well.
var secretForBadOptions = providers.Common{Secrets: providertest.SecretsOf("whsec_c2VjcmV0LWluLWJhZC1vcHRpb25z")}
