// Package route decides which targets an event goes to.
package route

import (
	"path"
	"slices"
)

// Rule is one routing rule. Empty lists match everything.
type Rule struct {
	Name      string
	Sources   []string
	Providers []string
	Events    []string // globs, path.Match syntax ("video.*")
	Targets   []string
}

// Table is an ordered set of rules.
type Table struct{ rules []Rule }

// New returns a table of rules. Globs must already be valid.
func New(rules []Rule) *Table { return &Table{rules: rules} }

// Targets returns the targets of every rule that matches, each once, in the
// order the rules first name them. nil means the event is unrouted.
func (t *Table) Targets(source, provider, eventType string) []string {
	var out []string
	for _, r := range t.rules {
		if !r.matches(source, provider, eventType) {
			continue
		}
		for _, name := range r.Targets {
			if !slices.Contains(out, name) {
				out = append(out, name)
			}
		}
	}
	return out
}

func (r *Rule) matches(source, provider, eventType string) bool {
	if len(r.Sources) > 0 && !slices.Contains(r.Sources, source) {
		return false
	}
	if len(r.Providers) > 0 && !slices.Contains(r.Providers, provider) {
		return false
	}
	if len(r.Events) == 0 {
		return true
	}
	for _, g := range r.Events {
		if ok, _ := path.Match(g, eventType); ok {
			return true
		}
	}
	return false
}
