package providertest

import (
	"regexp"
	"strings"
	"testing"

	"github.com/hookrelay/hookrelay/verify"
)

var (
	longHex    = regexp.MustCompile(`[0-9a-fA-F]{32,}`)
	longBase64 = regexp.MustCompile(`[A-Za-z0-9+/_-]{40,}`)
)

// ErrorsNeverLeakSecrets collects the error of every failing tamper case of
// provider's vectors and of each bad option, and checks that none contains
// a secret, a callback value, a signature from a vector, or anything shaped
// like a computed signature. Fewer than minErrs errors is a failure (the
// collection itself broke).
func ErrorsNeverLeakSecrets(t *testing.T, provider string, bad []BadOption, minErrs int) {
	var errs []error
	secrets := map[string]bool{}
	sigs := map[string]bool{}
	for _, v := range LoadVectors(t, provider) {
		for _, o := range []VectorOptions{v.Options, v.WrongOptions} {
			for _, s := range o.Secrets {
				secrets[s] = true
				secrets[strings.TrimPrefix(s, verify.WebhookSecretPrefix)] = true
			}
			if o.Value != "" {
				secrets[o.Value] = true
			}
		}
		for _, f := range strings.Fields(v.Headers[v.Tamper.Signature.Header]) {
			_, f = SplitHexPrefix(f)
			f = strings.TrimPrefix(strings.TrimPrefix(f, "v1,"), "v1=")
			sigs[f], sigs[strings.ToLower(f)] = true, true
		}
		for _, c := range TamperCases(t, v) {
			if c.Want != nil {
				errs = append(errs, RunTampered(t, v, c))
			}
		}
	}
	for _, c := range bad {
		_, err := Build(t, c.Provider, c.Common, c.Opts)
		errs = append(errs, err)
		for _, s := range c.Common.Secrets {
			secrets[s.Value] = true
		}
		if v := c.Opts["value"]; v != "" {
			secrets[v] = true
		}
	}
	if len(errs) < minErrs {
		t.Fatalf("only %d errors collected, want at least %d", len(errs), minErrs)
	}
	for _, err := range errs {
		if err == nil {
			t.Fatal("nil error collected")
		}
		CheckNoLeak(t, err, secrets, sigs)
	}
}

// CheckNoLeak reports err if its message contains one of secrets (of at
// least 4 bytes), one of sigs, or a long run of hex or base64.
func CheckNoLeak(t testing.TB, err error, secrets, sigs map[string]bool) {
	t.Helper()
	msg := err.Error()
	for s := range secrets {
		if len(s) >= 4 && strings.Contains(msg, s) {
			t.Errorf("error %q contains secret %q", msg, s)
		}
	}
	for s := range sigs {
		if s != "" && strings.Contains(msg, s) {
			t.Errorf("error %q contains signature %q", msg, s)
		}
	}
	if m := longHex.FindString(msg); m != "" {
		t.Errorf("error %q contains a hex run %q", msg, m)
	}
	if m := longBase64.FindString(msg); m != "" {
		t.Errorf("error %q contains a base64 run %q", msg, m)
	}
}
