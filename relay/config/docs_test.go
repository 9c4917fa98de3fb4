package config_test

import (
	"os"
	"reflect"
	"regexp"
	"strings"
	"testing"

	"github.com/hookrelay/hookrelay/providers"
	"github.com/hookrelay/hookrelay/providers/registry"
	"github.com/hookrelay/hookrelay/relay/config"
	"gopkg.in/yaml.v3"
)

// keyPaths returns the documented form of every leaf key of t, walking the
// yaml tags: "server.listen", "sources.<name>.provider",
// "routes[].match.sources". A map of structs adds ".<name>", a list of
// structs "[]"; a struct with its own YAML decoding (config.Duration) and
// every other type is a leaf.
func keyPaths(t reflect.Type, prefix string) []string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch {
	case t.Kind() == reflect.Map && structElem(t.Elem()):
		return keyPaths(t.Elem(), prefix+".<name>")
	case t.Kind() == reflect.Slice && structElem(t.Elem()):
		return keyPaths(t.Elem(), prefix+"[]")
	case t.Kind() != reflect.Struct || (prefix != "" && reflect.PointerTo(t).Implements(unmarshaler)):
		return []string{prefix}
	}
	var out []string
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "" || name == "-" || !f.IsExported() {
			continue
		}
		p := name
		if prefix != "" {
			p = prefix + "." + name
		}
		out = append(out, keyPaths(f.Type, p)...)
	}
	return out
}

var unmarshaler = reflect.TypeFor[yaml.Unmarshaler]()

// providerKeys returns "sources.<name>.KEY" for the own keys of every
// provider (their options structs, which the config decodes a source's
// other keys into).
func providerKeys(t *testing.T) []string {
	var out []string
	for _, name := range registry.Names() {
		spec, err := registry.Lookup(name)
		if err != nil {
			t.Fatal(err)
		}
		for _, k := range providers.OptionKeys(spec.NewOptions()) {
			out = append(out, "sources.<name>."+k)
		}
	}
	return out
}

// structElem reports whether t (or what it points to) is a struct that the
// yaml package decodes field by field (not one with its own UnmarshalYAML,
// like config.Secret).
func structElem(t reflect.Type) bool {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	return t.Kind() == reflect.Struct && !reflect.PointerTo(t).Implements(unmarshaler)
}

// TestDocsListEveryKey: every key of the config structs (and of each
// provider's options struct) appears in
// docs/config.md as `key` in a table row, and every key a table row names
// exists, so the reference can neither fall behind nor invent keys.
func TestDocsListEveryKey(t *testing.T) {
	raw, err := os.ReadFile("../../docs/config.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(raw)
	keys := append(keyPaths(reflect.TypeOf(config.Config{}), ""), providerKeys(t)...)
	if len(keys) < 40 {
		t.Fatalf("walked only %d keys: %v", len(keys), keys)
	}
	known := map[string]bool{}
	for _, k := range keys {
		known[k] = true
		if !strings.Contains(doc, "| `"+k+"` |") {
			t.Errorf("docs/config.md has no table row for `%s`", k)
		}
	}
	rows := regexp.MustCompile("(?m)^\\| `([^`]+)` \\|").FindAllStringSubmatch(doc, -1)
	for _, m := range rows {
		if !known[m[1]] {
			t.Errorf("docs/config.md documents `%s`, which the config does not have", m[1])
		}
	}
	for _, col := range []string{"| key | type | default | change | meaning |"} {
		if got, want := strings.Count(doc, col), 9; got < want {
			t.Errorf("docs/config.md has %d tables with the columns %q, want at least %d (one per section)", got, col, want)
		}
	}
}
