package videovector_test

import (
	"testing"
	"time"

	"github.com/hookrelay/hookrelay/providers"
	"github.com/hookrelay/hookrelay/providers/providertest"
	"github.com/hookrelay/hookrelay/providers/videovector"
)

// validOptions are configurations the provider accepts, apart from secrets
// (a nil Common.Secrets gets a default secret).
func validOptions() map[string]providertest.Config {
	return map[string]providertest.Config{
		"videovector": {Opts: map[string]string{"webhook_id": "wh_1"}},
	}
}

// badOptions are configurations that must fail with an error naming the
// option.
func badOptions() []providertest.BadOption {
	sec := secretForBadOptions
	type m = map[string]string
	return []providertest.BadOption{
		{Name: "vv-negative-tolerance", Provider: "videovector", Common: providers.Common{Secrets: sec.Secrets, Tolerance: -time.Second}, Option: "tolerance"},
		{Name: "unused-header", Provider: "videovector", Common: sec, Opts: m{"header": "X-Token"}, Option: "header", Unknown: true},
	}
}

// TestProviderOptionKeys: the keys besides the common ones, fresh defaults
// from every NewOptions call, and options set by key reach the adapter.
func TestProviderOptionKeys(t *testing.T) {
	providertest.OptionKeys(t, &videovector.Spec, []string{"webhook_id"})
	o := videovector.Spec.NewOptions()
	if err := providers.SetOption(o, "webhook_id", "wh_set"); err != nil {
		t.Fatal(err)
	}
	a, err := o.New(providers.Common{Secrets: providertest.SecretsOf("vv")})
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
}

func TestEmptySecret(t *testing.T) { providertest.EmptySecret(t, validOptions(), nil) }

func TestValidOptions(t *testing.T) { providertest.ValidOptions(t, validOptions()) }

func TestBadOptions(t *testing.T) { providertest.BadOptions(t, badOptions()) }

// secretForBadOptions is the secret of the bad options; it is checked for
// leaks as well.
var secretForBadOptions = providers.Common{Secrets: providertest.SecretsOf("whsec_c2VjcmV0LWluLWJhZC1vcHRpb25z")}
