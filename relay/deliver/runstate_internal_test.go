package deliver

import (
	"testing"
	"time"

	"github.com/hookrelay/hookrelay/relay/storage"
)

func testRunState(capacity, inFlight int) *runState {
	d := &dispatcher{
		e:        &Engine{opts: Options{Rescan: time.Minute}},
		t:        Target{Name: "t", MaxInFlight: inFlight},
		capacity: capacity,
		fresh:    make(chan storage.Due, capacity),
		work:     make(chan storage.Due, inFlight),
		done:     make(chan completion, inFlight),
	}
	return &runState{d: d, known: map[string]bool{}}
}

func due(id string, at time.Time) storage.Due { return storage.Due{EventID: id, Target: "t", At: at} }

// TestRunStateSteps walks the dispatcher's steps by hand: hand-over,
// bounded memory, retries promoted when due, dispatch to at most
// MaxInFlight workers, completions, and purge after a replay.
func TestRunStateSteps(t *testing.T) {
	now := time.Now() // handleCompletions adds retries as of time.Now()
	s := testRunState(6, 2)

	s.d.fresh <- due("a", now)
	s.d.fresh <- due("a", now) // twice: taken once
	s.d.fresh <- due("b", now)
	s.takeFresh(now)
	if got, want := len(s.ready), 2; got != want {
		t.Fatalf("ready after takeFresh = %d, want %d", got, want)
	}

	// Scheduled retries get at most half the memory; the rest wait in the
	// store and set scanAt to the earliest of them.
	s.add(due("r1", now.Add(2*time.Second)), now)
	s.add(due("r2", now.Add(3*time.Second)), now)
	s.add(due("r3", now.Add(5*time.Second)), now)
	s.add(due("r4", now.Add(time.Second)), now)
	s.add(due("r5", now.Add(4*time.Second)), now)
	if got, want := s.later.Len(), 3; got != want || !s.scanAt.Equal(now.Add(time.Second)) || s.known["r4"] {
		t.Fatalf("later = %d (want %d), scanAt = %v (want r4's due time)", got, want, s.scanAt)
	}
	// Memory full (a, b, r1-r3 and one more): the next one waits in the store.
	s.add(due("c", now), now)
	s.d.scanReq.Store(false)
	s.add(due("d", now), now)
	if s.known["d"] || !s.d.scanReq.Load() {
		t.Fatalf("add past capacity: known %v, scanReq %v; want refused and a scan requested", s.known["d"], s.d.scanReq.Load())
	}

	s.dispatchReady()
	if s.inflight != 2 || len(s.d.work) != 2 || len(s.ready) != 1 {
		t.Fatalf("dispatchReady: %d in flight, %d handed out, %d ready; want 2, 2, 1", s.inflight, len(s.d.work), len(s.ready))
	}

	s.promoteDue(now.Add(time.Second))
	if s.later.Len() != 3 {
		t.Fatalf("promoteDue before r1 is due moved it")
	}
	s.promoteDue(now.Add(3 * time.Second))
	if s.later.Len() != 1 || s.ready[1].EventID != "r1" || s.ready[2].EventID != "r2" {
		t.Fatalf("promoteDue at r2's time: later %d, ready %v; want r1, r2 promoted in order", s.later.Len(), s.ready)
	}

	// Two completions at once: one retry kept in memory, one asking the
	// store.
	<-s.d.work
	<-s.d.work
	s.d.scanReq.Store(false)
	s.d.done <- completion{id: "b", rescan: true}
	s.handleCompletions(completion{id: "a", retry: &storage.Due{EventID: "a", Target: "t", At: now.Add(time.Hour)}})
	if s.inflight != 0 || s.known["b"] || !s.known["a"] || s.later.Len() != 2 || !s.d.scanReq.Load() {
		t.Fatalf("handleCompletions: inflight %d, known %v, later %d, scanReq %v", s.inflight, s.known, s.later.Len(), s.d.scanReq.Load())
	}

	// A replay: the schedule in memory is forgotten.
	s.purgeStale()
	if s.later.Len() != 2 {
		t.Fatalf("purgeStale without a purge request dropped the schedule")
	}
	s.d.purge.Store(true)
	s.purgeStale()
	if s.later.Len() != 0 || s.known["a"] || s.known["r3"] || !s.known["c"] {
		t.Fatalf("purgeStale: later %d, known a %v; want the schedule forgotten", s.later.Len(), s.known["a"])
	}
}

// TestRunStateOnly: deliveries Only rejects are never taken into memory.
func TestRunStateOnly(t *testing.T) {
	now := time.Now()
	s := testRunState(8, 1)
	s.only = func(id string) bool { return id == "mine" }
	s.add(due("other", now), now)
	s.add(due("mine", now), now)
	if len(s.ready) != 1 || s.ready[0].EventID != "mine" || s.known["other"] {
		t.Errorf("ready = %v, want only the accepted delivery", s.ready)
	}
}
