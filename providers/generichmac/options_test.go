package generichmac_test

import (
	"testing"

	"github.com/hookrelay/hookrelay/providers"
	"github.com/hookrelay/hookrelay/providers/generichmac"
	"github.com/hookrelay/hookrelay/providers/providertest"
	"github.com/hookrelay/hookrelay/verify"
)

// validOptions are configurations the provider accepts, apart from secrets
// (a nil Common.Secrets gets a default secret).
func validOptions() map[string]providertest.Config {
	return map[string]providertest.Config{
		"hmac":                  {Opts: map[string]string{"signature_header": "X-Signature"}},
		"hmac/timestamp-base64": {Opts: map[string]string{"signature_header": "X-Signature", "timestamp_header": "X-Ts", "template": "{timestamp}.{body}", "encoding": "base64"}},
	}
}

// badOptions are configurations that must fail with an error naming the
// option.
func badOptions() []providertest.BadOption {
	sec := secretForBadOptions
	type m = map[string]string
	return []providertest.BadOption{
		{Name: "hmac-no-signature-header", Provider: "hmac", Common: sec, Option: "signature_header"},
		{Name: "hmac-bad-signature-header", Provider: "hmac", Common: sec, Opts: m{"signature_header": "X:Sig"}, Option: "signature_header"},
		{Name: "hmac-bad-timestamp-header", Provider: "hmac", Common: sec, Opts: m{"signature_header": "X-Sig", "timestamp_header": "X Ts"}, Option: "timestamp_header"},
		{Name: "hmac-same-headers", Provider: "hmac", Common: sec, Opts: m{"signature_header": "X-Sig", "timestamp_header": "x-sig"}, Option: "timestamp_header"},
		{Name: "hmac-bad-encoding", Provider: "hmac", Common: sec, Opts: m{"signature_header": "X-Sig", "encoding": "base32"}, Option: "encoding"},
		{Name: "hmac-timestamp-without-header", Provider: "hmac", Common: sec, Opts: m{"signature_header": "X-Sig", "template": "{timestamp}.{body}"}, Option: "template"},
		{Name: "hmac-no-body", Provider: "hmac", Common: sec, Opts: m{"signature_header": "X-Sig", "timestamp_header": "X-Ts", "template": "{timestamp}"}, Option: "template"},
		{Name: "hmac-unknown-placeholder", Provider: "hmac", Common: sec, Opts: m{"signature_header": "X-Sig", "template": "{id}.{body}"}, Option: "template"},
		{Name: "hmac-unterminated", Provider: "hmac", Common: sec, Opts: m{"signature_header": "X-Sig", "template": "{body}.{timestamp"}, Option: "template"},
		{Name: "hmac-bad-header-placeholder", Provider: "hmac", Common: sec, Opts: m{"signature_header": "X-Sig", "template": "{header:}.{body}"}, Option: "template"},
		{Name: "hmac-bad-event-field", Provider: "hmac", Common: sec, Opts: m{"signature_header": "X-Sig", "event_type_field": "data..type"}, Option: "event_type_field"},
		{Name: "hmac-bad-subject-field", Provider: "hmac", Common: sec, Opts: m{"signature_header": "X-Sig", "subject_field": "."}, Option: "subject_field"},
		{Name: "hmac-unused-scheme", Provider: "hmac", Common: sec, Opts: m{"signature_header": "X-Sig", "scheme": "x"}, Option: "scheme", Unknown: true},
		{Name: "hmac-empty-secret", Provider: "hmac", Common: providers.Common{Secrets: providertest.SecretsOf("")}, Opts: m{"signature_header": "X-Sig"}, Option: "secrets[0]", Want: verify.ErrEmptySecret},
	}
}

// TestProviderOptionKeys: the keys besides the common ones and fresh
// defaults from every NewOptions call.
func TestProviderOptionKeys(t *testing.T) {
	providertest.OptionKeys(t, &generichmac.Spec, []string{generichmac.OptSignatureHeader, "prefix", generichmac.OptEncoding,
		generichmac.OptTemplate, generichmac.OptTimestampHeader, generichmac.OptEventTypeField, generichmac.OptSubjectField})
}

func TestEmptySecret(t *testing.T) { providertest.EmptySecret(t, validOptions(), nil) }

func TestValidOptions(t *testing.T) { providertest.ValidOptions(t, validOptions()) }

func TestBadOptions(t *testing.T) { providertest.BadOptions(t, badOptions()) }

// secretForBadOptions is the secret of the bad options; it is checked for
// leaks as well.
var secretForBadOptions = providers.Common{Secrets: providertest.SecretsOf("whsec_c2VjcmV0LWluLWJhZC1vcHRpb25z")}
