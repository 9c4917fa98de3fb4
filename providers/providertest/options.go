package providertest

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hookrelay/hookrelay/providers"
	"github.com/hookrelay/hookrelay/providers/registry"
	"github.com/hookrelay/hookrelay/verify"
)

// EmptySecret: no configuration of valid (named "provider/variant")
// treats a missing or empty secret as "no verification". The
// configurations that set secrets themselves are skipped; extra adds cases
// to the common ones.
func EmptySecret(t *testing.T, valid map[string]Config, extra map[string][]providers.Secret) {
	for name, base := range valid {
		if base.Common.Secrets != nil {
			continue
		}
		cases := map[string][]providers.Secret{"nil": nil, "empty-list": {}, "empty-secret": SecretsOf(""),
			"second-empty":   SecretsOf("whsec_c2VjcmV0", ""),
			"empty-expiring": {{Value: "", Expires: time.Unix(1717243200, 0)}}}
		maps.Copy(cases, extra)
		for cname, secrets := range cases {
			t.Run(name+"/"+cname, func(t *testing.T) {
				c := providers.Common{Secrets: secrets}
				opts := maps.Clone(base.Opts)
				if IsCallback(base) {
					c.Secrets = nil
					delete(opts, "value")
				}
				a, err := Build(t, ProviderOf(name), c, opts)
				if !IsNil(a) || !errors.Is(err, verify.ErrEmptySecret) {
					t.Fatalf("New = %v, %v; want an error wrapping ErrEmptySecret", a, err)
				}
				var oe *providers.OptionError
				if !errors.As(err, &oe) {
					t.Fatalf("error %v is not a *providers.OptionError", err)
				}
			})
		}
	}
}

// ValidOptions: every configuration of valid (named "provider/variant";
// a nil Common.Secrets gets a default secret) builds.
func ValidOptions(t *testing.T, valid map[string]Config) {
	for name, c := range valid {
		t.Run(name, func(t *testing.T) {
			if c.Common.Secrets == nil && !IsCallback(c) {
				c.Common.Secrets = SecretsOf("whsec_c2VjcmV0")
			}
			if _, err := Build(t, ProviderOf(name), c.Common, c.Opts); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// BadOption is a configuration that must fail with an error naming the
// option.
type BadOption struct {
	Name     string
	Provider string
	Common   providers.Common
	Opts     map[string]string
	Option   string // the option (config key) the error must name
	Want     error  // optional sentinel
	// Unknown: the provider has no such key, so SetOption refuses it
	// before New runs; otherwise New returns a *providers.OptionError.
	Unknown bool
}

// BadOptions checks that each case fails, naming its option.
func BadOptions(t *testing.T, cases []BadOption) {
	for _, c := range cases {
		t.Run(c.Name, func(t *testing.T) {
			a, err := Build(t, c.Provider, c.Common, c.Opts)
			if !IsNil(a) || err == nil {
				t.Fatalf("build = %v, %v; want an error", a, err)
			}
			if !strings.Contains(err.Error(), c.Option) {
				t.Errorf("error %q does not name option %q", err, c.Option)
			}
			if c.Unknown {
				// SetOption's error names the key and lists the keys the
				// provider does take.
				if want := fmt.Sprintf("unknown key %q", c.Option); !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not contain %s", err, want)
				}
				spec, lerr := registry.Lookup(c.Provider)
				if lerr != nil {
					t.Fatal(lerr)
				}
				for _, k := range providers.OptionKeys(spec.NewOptions()) {
					if !strings.Contains(err.Error(), k) {
						t.Errorf("error %q does not list the provider's key %q", err, k)
					}
				}
				return
			}
			var oe *providers.OptionError
			if !errors.As(err, &oe) {
				t.Fatalf("error %v is not a *providers.OptionError", err)
			}
			if got, want := oe.Option, c.Option; got != want {
				t.Errorf("Option = %q, want %q (error: %v)", got, want, err)
			}
			if got, want := oe.Provider, c.Provider; got != want {
				t.Errorf("Provider = %q, want %q", got, want)
			}
			if c.Want != nil && !errors.Is(err, c.Want) {
				t.Errorf("error %v does not wrap %v", err, c.Want)
			}
		})
	}
}

// OptionKeys: the keys spec takes besides the common ones are want, and
// every NewOptions call returns fresh defaults.
func OptionKeys(t *testing.T, spec *providers.Spec, want []string) {
	t.Helper()
	n := spec.Name
	o := spec.NewOptions()
	if got := providers.OptionKeys(o); !slices.Equal(got, want) && !(len(got) == 0 && len(want) == 0) {
		t.Errorf("%s: OptionKeys = %q, want %q", n, got, want)
	}
	for _, k := range want {
		if err := providers.SetOption(o, k, "changed"); err != nil {
			t.Errorf("%s: SetOption(%s): %v", n, k, err)
		}
	}
	if len(want) > 0 && spec.NewOptions() == o {
		t.Errorf("%s: NewOptions returned the same options twice", n)
	}
	for _, k := range []string{"secrets", "tolerance", "dedupe_key", "provider"} {
		if err := providers.SetOption(spec.NewOptions(), k, "x"); err == nil {
			t.Errorf("%s: SetOption(%s) succeeded; it is a common key", n, k)
		}
	}
}
