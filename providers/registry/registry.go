// Package registry lists every provider in one place. There is no init()
// registration: adding a provider means adding its package's Spec here.
package registry

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/hookrelay/hookrelay/providers"
	"github.com/hookrelay/hookrelay/providers/generichmac"
	"github.com/hookrelay/hookrelay/providers/shortkit"
	"github.com/hookrelay/hookrelay/providers/sketchpen"
	"github.com/hookrelay/hookrelay/providers/standardwebhooks"
	"github.com/hookrelay/hookrelay/providers/videopilot"
	"github.com/hookrelay/hookrelay/providers/videovector"
)

// ErrUnknownProvider is wrapped by Lookup for a name not in Names.
var ErrUnknownProvider = errors.New("unknown provider")

// specs are every provider, sorted by name.
var specs = []*providers.Spec{
	&generichmac.Spec,      // "hmac"
	&shortkit.Spec,         // "shortkit"
	&sketchpen.Spec,        // "sketchpen"
	&standardwebhooks.Spec, // "standard-webhooks"
	&videopilot.Spec,       // "videopilot"
	&videovector.Spec,      // "videovector"
}

// Lookup returns the provider named name. An unknown name is an error
// wrapping ErrUnknownProvider that lists the known names.
func Lookup(name string) (*providers.Spec, error) {
	for _, s := range specs {
		if s.Name == name {
			return s, nil
		}
	}
	return nil, fmt.Errorf("%w %q (known: %s)", ErrUnknownProvider, name, strings.Join(Names(), ", "))
}

// New builds the adapter of provider for a source's common settings and
// the provider's default options: what tests and `hookrelay send` need.
func New(provider string, c providers.Common) (providers.Adapter, error) {
	s, err := Lookup(provider)
	if err != nil {
		return nil, err
	}
	return s.NewOptions().New(c)
}

// Names returns the provider names Lookup accepts, sorted.
func Names() []string {
	names := make([]string, len(specs))
	for i, s := range specs {
		names[i] = s.Name
	}
	slices.Sort(names)
	return names
}
