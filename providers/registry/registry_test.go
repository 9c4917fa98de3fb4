package registry_test

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/hookrelay/hookrelay/providers"
	"github.com/hookrelay/hookrelay/providers/providertest"
	"github.com/hookrelay/hookrelay/providers/registry"
)

// The adapters' own tests (golden vectors, tampering, options, expiry,
// specs, fuzzing, benchmarks) are in each provider's package; they share
// providers/providertest. The registry's tests check the registry and that
// those tests cover every provider it lists.

var secretsOf = providertest.SecretsOf

func TestNames(t *testing.T) {
	want := []string{"hmac", "shortkit", "sketchpen", "standard-webhooks", "videopilot", "videovector"}
	if got := registry.Names(); !slices.Equal(got, want) {
		t.Fatalf("Names() = %q, want %q", got, want)
	}
}

func TestUnknownProvider(t *testing.T) {
	a, err := registry.New("sketchpan", providers.Common{Secrets: secretsOf("s")})
	if a != nil || !errors.Is(err, registry.ErrUnknownProvider) {
		t.Fatalf("New = %v, %v; want nil, ErrUnknownProvider", a, err)
	}
	for _, n := range registry.Names() {
		if !strings.Contains(err.Error(), n) {
			t.Errorf("error %q does not list %q", err, n)
		}
	}
	spec, err := registry.Lookup("sketchpan")
	if spec != nil || !errors.Is(err, registry.ErrUnknownProvider) || !strings.Contains(err.Error(), `"sketchpan"`) {
		t.Fatalf("Lookup = %v, %v; want nil, ErrUnknownProvider naming the provider", spec, err)
	}
}

// TestLookup: every name resolves to the spec of that name, and New builds
// the providers that need no options of their own.
func TestLookup(t *testing.T) {
	for _, n := range registry.Names() {
		spec, err := registry.Lookup(n)
		if err != nil || spec == nil || spec.Name != n {
			t.Fatalf("Lookup(%q) = %v, %v", n, spec, err)
		}
		if spec.NewOptions == nil || spec.Sample == nil {
			t.Errorf("spec %q lacks NewOptions or Sample", n)
		}
	}
	for _, n := range []string{"sketchpen", "videopilot", "videovector", "shortkit"} {
		if _, err := registry.New(n, providers.Common{Secrets: secretsOf("whsec_c2VjcmV0")}); err != nil {
			t.Errorf("New(%q) with default options: %v", n, err)
		}
	}
	// hmac's defaults lack the required signature_header.
	var oe *providers.OptionError
	if _, err := registry.New("hmac", providers.Common{Secrets: secretsOf("s")}); !errors.As(err, &oe) || oe.Option != "signature_header" {
		t.Errorf("New(hmac) with default options = %v, want an OptionError about signature_header", err)
	}
}

// TestNewErrorReturnsNilAdapter: a failed New returns a nil Adapter, not
// an interface holding a nil pointer (which != nil and panics when used).
func TestNewErrorReturnsNilAdapter(t *testing.T) {
	for _, n := range registry.Names() {
		t.Run(n, func(t *testing.T) {
			a, err := registry.New(n, providers.Common{})
			if err == nil {
				t.Fatal("New without secrets: want an error")
			}
			if a != nil {
				t.Errorf("New without secrets returned the Adapter %#v (a %T) with its error %v; want a nil interface", a, a, err)
			}
		})
	}
}

// TestSourcesCoverEveryProvider: every registered provider has a source in
// providertest's table, one that takes secrets among them (the round trip,
// expiry, spec and sensitive-header tests of its package run over those),
// and no source names an unregistered provider.
func TestSourcesCoverEveryProvider(t *testing.T) {
	has, withSecrets := map[string]bool{}, map[string]bool{}
	for _, s := range providertest.AllSources() {
		if _, err := registry.Lookup(s.Provider); err != nil {
			t.Errorf("source %q: %v", s.Name, err)
		}
		has[s.Provider] = true
		withSecrets[s.Provider] = withSecrets[s.Provider] || !providertest.IsCallback(s.Config)
	}
	for _, n := range registry.Names() {
		if !has[n] {
			t.Errorf("provider %q has no source in sources", n)
		}
		if !withSecrets[n] {
			t.Errorf("provider %q has no source with secrets in sources", n)
		}
	}
}

// TestVectorsCoverEveryProvider: every registered provider has golden
// vectors, and every vector is of a registered provider (the package of
// each provider runs the vectors of its provider only, so a vector of
// another name would run nowhere).
func TestVectorsCoverEveryProvider(t *testing.T) {
	names := registry.Names()
	seen := map[string]bool{}
	for _, v := range providertest.AllVectors(t) {
		if !slices.Contains(names, v.Provider) {
			t.Errorf("vector %q: provider %q is not registered", v.Name, v.Provider)
		}
		seen[v.Provider] = true
	}
	for _, n := range names {
		if !seen[n] {
			t.Errorf("provider %q has no golden vectors", n)
		}
	}
}
