package providertest

import (
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/hookrelay/hookrelay/providers"
	"github.com/hookrelay/hookrelay/providers/registry"
)

// Config is a source's configuration as the tests build it: the common
// settings and the provider's own keys, spelled as in the config file.
type Config struct {
	Common providers.Common
	Opts   map[string]string
}

// SecretsOf returns Common.Secrets of values that never expire.
func SecretsOf(values ...string) []providers.Secret {
	if values == nil {
		return nil
	}
	out := make([]providers.Secret, len(values))
	for i, v := range values {
		out[i] = providers.Secret{Value: v}
	}
	return out
}

// WithSecrets returns a copy of cfg with other secrets.
func WithSecrets(cfg Config, s ...providers.Secret) Config {
	return Config{Common: providers.Common{Secrets: s, Tolerance: cfg.Common.Tolerance}, Opts: maps.Clone(cfg.Opts)}
}

// IsCallback reports whether cfg is shortkit's callback-header scheme,
// which takes a value instead of secrets.
func IsCallback(c Config) bool { return c.Opts["scheme"] == "callback-header" }

// ProviderOf returns the provider of a "provider/variant" case name.
func ProviderOf(name string) string { p, _, _ := strings.Cut(name, "/"); return p }

// Build makes the adapter of provider the way the config loader does: the
// provider's default options, each of opts set by its key (in sorted order,
// so that the first bad key is the one reported), then New with c.
func Build(t testing.TB, provider string, c providers.Common, opts map[string]string) (providers.Adapter, error) {
	t.Helper()
	spec, err := registry.Lookup(provider)
	if err != nil {
		return nil, err
	}
	o := spec.NewOptions()
	for _, k := range slices.Sorted(maps.Keys(opts)) {
		if err := providers.SetOption(o, k, opts[k]); err != nil {
			return nil, fmt.Errorf("%s: %w", provider, err)
		}
	}
	return o.New(c)
}

// IsNil reports whether a is nil or an interface holding a nil pointer:
// the provider constructors return a typed nil *Adapter with their errors,
// which Options.New passes on inside the Adapter interface.
func IsNil(a providers.Adapter) bool {
	if a == nil {
		return true
	}
	v := reflect.ValueOf(a)
	return v.Kind() == reflect.Pointer && v.IsNil()
}

// NewAdapter is Build for a configuration that must be valid.
func NewAdapter(t testing.TB, provider string, cfg Config) providers.Adapter {
	t.Helper()
	a, err := Build(t, provider, cfg.Common, cfg.Opts)
	if err != nil {
		t.Fatalf("Build(%q): %v", provider, err)
	}
	return a
}
