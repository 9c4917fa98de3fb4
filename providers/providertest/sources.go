package providertest

import (
	"testing"

	"github.com/hookrelay/hookrelay/providers"
)

// Source is one configured source of a provider.
type Source struct {
	Name     string
	Provider string
	Config   Config
}

// sources is one configured source per adapter and scheme: the round
// trips, expiry, spec and sensitive-header checks and the benchmarks run
// over those of the provider under test. The registry's tests check that
// every registered provider has one.
var sources = []Source{
	{"sketchpen", "sketchpen", Config{Common: providers.Common{Secrets: SecretsOf("whsec_sketch_primary", "whsec_sketch_old")}}},
	{"videopilot", "videopilot", Config{Common: providers.Common{Secrets: SecretsOf("vp_secret")}}},
	{"videovector", "videovector", Config{Common: providers.Common{Secrets: SecretsOf("vv_secret")}, Opts: map[string]string{"webhook_id": "wh_42"}}},
	{"shortkit", "shortkit", Config{Common: providers.Common{Secrets: SecretsOf("whsec_shortkit")}}},
	{"shortkit-body-only", "shortkit", Config{Common: providers.Common{Secrets: SecretsOf("whsec_shortkit")}, Opts: map[string]string{"scheme": "body-only"}}},
	{"shortkit-callback-header", "shortkit", Config{Opts: map[string]string{"scheme": "callback-header", "header": "X-Callback-Token", "value": "cb_value_1"}}},
	{"standard-webhooks", "standard-webhooks", Config{Common: providers.Common{Secrets: SecretsOf("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")}}},
	{"hmac", "hmac", Config{Common: providers.Common{Secrets: SecretsOf("gen_secret")}, Opts: map[string]string{"signature_header": "X-Signature", "prefix": "sha256="}}},
	{"hmac-timestamp-base64", "hmac", Config{Common: providers.Common{Secrets: SecretsOf("gen_secret")}, Opts: map[string]string{
		"signature_header": "X-Signature", "encoding": "base64", "timestamp_header": "X-Timestamp", "template": "t={timestamp},b={body}"}}},
}

// AllSources returns every configured source.
func AllSources() []Source { return append([]Source(nil), sources...) }

// Sources returns the configured sources of provider; none is a failure.
func Sources(t testing.TB, provider string) []Source {
	t.Helper()
	var out []Source
	for _, s := range sources {
		if s.Provider == provider {
			out = append(out, s)
		}
	}
	if len(out) == 0 {
		t.Fatalf("provider %q has no source in providertest's sources", provider)
	}
	return out
}

// NewSource returns the adapter of the source named name.
func NewSource(t testing.TB, name string) providers.Adapter {
	t.Helper()
	for _, s := range sources {
		if s.Name == name {
			return NewAdapter(t, s.Provider, s.Config)
		}
	}
	t.Fatalf("no source %q", name)
	return nil
}

// SampleBody is a payload every adapter parses to type video.completed
// and subject vid_1.
const SampleBody = `{"event": "video.completed", "type": "video.completed", "id": "evt_1", "video_id": "vid_1", ` +
	`"created_at": 1717243200, "timestamp": "2024-06-01T12:00:00Z", "data": {"id": "vid_1", "video_id": "vid_1", "contentId": "vid_1"}}`

// SecondSecret is valid for every provider (base64 for standard-webhooks).
const SecondSecret = "whsec_c2Vjb25kLXNlY3JldC1mb3ItZXhwaXJ5"
