// Package registry lists every provider adapter in one place and builds
// them by their config-file name. There is no init() registration: adding a
// provider means adding a line here.
package registry

import (
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/hookrelay/hookrelay/providers"
	"github.com/hookrelay/hookrelay/providers/generichmac"
	"github.com/hookrelay/hookrelay/providers/shortkit"
	"github.com/hookrelay/hookrelay/providers/sketchpen"
	"github.com/hookrelay/hookrelay/providers/standardwebhooks"
	"github.com/hookrelay/hookrelay/providers/videopilot"
	"github.com/hookrelay/hookrelay/providers/videovector"
)

// ErrUnknownProvider is wrapped by New for a name not in Names.
var ErrUnknownProvider = errors.New("unknown provider")

type constructor func(providers.Options) (providers.Adapter, error)

// adapters maps config-file names to constructors.
var adapters = map[string]constructor{
	generichmac.Name:      adapt(generichmac.New),      // "hmac"
	shortkit.Name:         adapt(shortkit.New),         // "shortkit"
	sketchpen.Name:        adapt(sketchpen.New),        // "sketchpen"
	standardwebhooks.Name: adapt(standardwebhooks.New), // "standard-webhooks"
	videopilot.Name:       adapt(videopilot.New),       // "videopilot"
	videovector.Name:      adapt(videovector.New),      // "videovector"
}

// adapt turns a typed constructor into a constructor, returning a nil
// interface (not a typed nil pointer) on error.
func adapt[A providers.Adapter](f func(providers.Options) (A, error)) constructor {
	return func(o providers.Options) (providers.Adapter, error) {
		a, err := f(o)
		if err != nil {
			return nil, err
		}
		return a, nil
	}
}

// New builds the adapter of provider for one source's options. An unknown
// provider is an error wrapping ErrUnknownProvider that lists the known
// names; option errors are *providers.OptionError values.
func New(provider string, opts providers.Options) (providers.Adapter, error) {
	f, ok := adapters[provider]
	if !ok {
		return nil, fmt.Errorf("%w %q (known: %s)", ErrUnknownProvider, provider, strings.Join(Names(), ", "))
	}
	return f(opts)
}

// Names returns the provider names New accepts, sorted.
func Names() []string {
	names := make([]string, 0, len(adapters))
	for n := range adapters {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}
