package storagetest

import (
	"testing"
	"time"

	"github.com/hookrelay/hookrelay/relay/storage"
)

// paused reads the paused targets and fails t on error.
func paused(t *testing.T, st storage.Store) map[string]time.Time {
	t.Helper()
	p, err := st.Paused(bg)
	if err != nil {
		t.Fatalf("Paused: %v", err)
	}
	return p
}

func setPaused(t *testing.T, st storage.Store, target string, on bool) {
	t.Helper()
	if err := st.SetPaused(bg, target, on); err != nil {
		t.Fatalf("SetPaused(%q, %v): %v", target, on, err)
	}
}

// testPause: pausing and resuming targets, idempotently, independently of
// each other, and of their queues; targets whose names are not plain
// tokens too.
func testPause(t *testing.T, s *suite) {
	st := s.open(t, "pause")
	if p := paused(t, st); len(p) != 0 {
		t.Fatalf("Paused on a new store = %v, want none", p)
	}
	before := time.Now().Add(-time.Second)
	setPaused(t, st, "media", true)
	setPaused(t, st, "odd name/ü", true)
	p := paused(t, st)
	if len(p) != 2 {
		t.Fatalf("Paused = %v, want media and the odd name", p)
	}
	first := p["media"]
	if first.Before(before) || first.After(time.Now().Add(time.Second)) {
		t.Errorf("media paused at %v, want about now", first)
	}
	if _, ok := p["odd name/ü"]; !ok {
		t.Errorf("Paused = %v, want %q in it", p, "odd name/ü")
	}

	// Pausing again keeps the first time; resuming one leaves the other.
	setPaused(t, st, "media", true)
	if got := paused(t, st)["media"]; !got.Equal(first) {
		t.Errorf("media paused at %v after a second pause, want the first time %v", got, first)
	}
	setPaused(t, st, "odd name/ü", false)
	setPaused(t, st, "odd name/ü", false) // resuming a running target is no error
	setPaused(t, st, "never-paused", false)
	if p := paused(t, st); len(p) != 1 || !p["media"].Equal(first) {
		t.Errorf("Paused after resuming the odd name = %v, want only media", p)
	}

	// A paused target's deliveries stay queued: pausing is the delivery
	// engine's business, not the queue's.
	b := base()
	res := ingestNew(t, st, simpleEvent("k", b, "media"), []byte(`{}`))
	dues, _, err := st.DueDeliveries(bg, "media", time.Now(), 10, nil)
	if err != nil || len(dues) != 1 || dues[0].EventID != res.ID {
		t.Errorf("DueDeliveries of a paused target = %v, %v; want the queued delivery", dues, err)
	}
}

// testPausePersists: the paused state survives closing and reopening.
func testPausePersists(t *testing.T, s *suite) {
	st := s.open(t, "pause-persist")
	setPaused(t, st, "media", true)
	setPaused(t, st, "archive", true)
	setPaused(t, st, "archive", false)
	at := paused(t, st)["media"]
	if err := st.Close(bg); err != nil {
		t.Fatalf("Close: %v", err)
	}
	st = s.open(t, "pause-persist")
	if p := paused(t, st); len(p) != 1 || !p["media"].Equal(at) {
		t.Errorf("Paused after reopen = %v, want media paused at %v", p, at)
	}
}
