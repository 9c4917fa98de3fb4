package deliver

import (
	"reflect"
	"slices"
)

// Apply makes targets the engine's targets, as a config reload asks. An
// unchanged target keeps its dispatcher. A changed one gets a new
// dispatcher that starts once the old one has finished the attempts it has
// in flight (so no delivery is attempted by both). A removed target's
// dispatcher stops after its attempts in flight; its pending deliveries
// stay in the store, and a dispatcher made when the target comes back
// finds them. Apply returns the names of the removed targets, sorted.
func (e *Engine) Apply(targets []Target) (removed []string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.stopped {
		return nil // shutting down: nothing is launched any more
	}
	next := make(map[string]*dispatcher, len(targets))
	for _, t := range targets {
		old, ok := e.dispatchers[t.Name]
		if ok && reflect.DeepEqual(old.cfg, t) {
			next[t.Name] = old
			continue
		}
		d := newDispatcher(e, t)
		_, paused := e.paused[t.Name]
		d.paused.Store(paused || e.pauseUnknown)
		next[t.Name] = d
		if e.ctx == nil {
			continue // not started: Start runs it
		}
		var after <-chan struct{}
		if ok {
			old.stop()
			after = old.finished
		}
		e.launch(d, after)
	}
	for name, old := range e.dispatchers {
		if _, ok := next[name]; !ok {
			old.stop()
			removed = append(removed, name)
		}
	}
	e.dispatchers = next
	slices.Sort(removed)
	return removed
}

// stop asks the dispatcher to stop; it finishes its attempts in flight.
func (d *dispatcher) stop() { d.stopOnce.Do(func() { close(d.stopping) }) }
