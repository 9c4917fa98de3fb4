package storagetest

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/hookrelay/hookrelay/relay/delivery"
	"github.com/hookrelay/hookrelay/relay/storage"
)

// testReady: Ready is nil while the store is open.
func testReady(t *testing.T, s *suite) {
	st := s.open(t, "ready")
	if err := st.Ready(); err != nil {
		t.Errorf("Ready of a new store = %v", err)
	}
	ingestNew(t, st, simpleEvent("k", base(), "media"), nil)
	if err := st.Ready(); err != nil {
		t.Errorf("Ready after an ingest = %v", err)
	}
}

// testPersistence: closing and reopening keeps events, bodies, deliveries,
// the queue and the dedupe claims.
func testPersistence(t *testing.T, s *suite) {
	st := s.open(t, "persist")
	b := base()
	p := delivery.Policy{MaxAttempts: 3}
	a := ingestNew(t, st, simpleEvent("a", b, "media", "archive"), []byte(`{"a":1}`))
	u := ingestNew(t, st, simpleEvent("u", b.Add(time.Second)), []byte(`{"u":1}`))
	record(t, st, a.ID, "archive", a.Queued[1].Key, delivery.OK, b.Add(time.Second), time.Time{}, p)
	retryAt := time.Now().Add(time.Hour).Truncate(time.Millisecond)
	r := ingestNew(t, st, simpleEvent("r", b.Add(2*time.Second), "media"), nil)
	record(t, st, r.ID, "media", r.Queued[0].Key, delivery.Retry, b.Add(3*time.Second), retryAt, p)
	if err := st.Close(bg); err != nil {
		t.Fatalf("Close: %v", err)
	}

	st = s.open(t, "persist")
	if err := st.Ready(); err != nil {
		t.Fatalf("Ready after reopen = %v", err)
	}
	// Events and bodies.
	va, raw := get(t, st, a.ID)
	if !bytes.Equal(raw, []byte(`{"a":1}`)) || va.DedupeKey != "a" || !va.ReceivedAt.Equal(b) {
		t.Errorf("event a after reopen = %+v %s", va.Event, raw)
	}
	if va.Status != delivery.EventPending || deliveryOf(t, va, "media").Status != delivery.Pending ||
		deliveryOf(t, va, "archive").Status != delivery.Delivered || len(deliveryOf(t, va, "archive").Attempts) != 1 {
		t.Errorf("deliveries of a after reopen = %+v, want media pending, archive delivered", va.Deliveries)
	}
	if vu, _ := get(t, st, u.ID); vu.Status != delivery.EventUnrouted {
		t.Errorf("event u after reopen: status %q, want unrouted", vu.Status)
	}
	_, _, dr := load(t, st, r.ID, "media")
	if dr.Status != delivery.Pending || dr.Tries != 1 || !dr.NextAt.Equal(retryAt) {
		t.Errorf("retried delivery after reopen = %+v, want pending at %v after 1 try", *dr, retryAt)
	}
	if got := ids(t, st, storage.Filter{}); !equalIDs(got, []string{a.ID, u.ID, r.ID}) {
		t.Errorf("events after reopen = %v, want [%s %s %s]", got, a.ID, u.ID, r.ID)
	}
	// The queue: a's media now, r's retry later, archive empty.
	if n := depth(t, st, "media"); n != 2 {
		t.Errorf("QueueDepth media after reopen = %d, want 2", n)
	}
	if n := depth(t, st, "archive"); n != 0 {
		t.Errorf("QueueDepth archive after reopen = %d, want 0", n)
	}
	q := onlyDue(t, st, "media", a.ID, time.Now())
	if _, next := due(t, st, "media", time.Now()); !next.Equal(retryAt) {
		t.Errorf("next after reopen = %v, want the retry at %v", next, retryAt)
	}
	// Dedupe claims: the same keys are still duplicates of the first ids.
	for _, c := range []struct{ key, id string }{{"a", a.ID}, {"u", u.ID}, {"r", r.ID}} {
		res := ingest(t, st, simpleEvent(c.key, time.Now(), "media"), nil)
		if !res.Duplicate || res.ID != c.id || len(res.Queued) != 0 {
			t.Errorf("key %s after reopen = %+v, want a duplicate of %s", c.key, res, c.id)
		}
	}
	// And the store keeps working: the queued entry is deliverable, new
	// events get new ids.
	if d := record(t, st, a.ID, "media", q.Key, delivery.OK, time.Now(), time.Time{}, p); d.Status != delivery.Delivered {
		t.Errorf("delivering after reopen = %+v", d)
	}
	n := ingestNew(t, st, simpleEvent("new", time.Now().Add(-time.Minute), "media"), nil)
	for _, old := range []string{a.ID, u.ID, r.ID} {
		if n.ID == old {
			t.Errorf("a new event after reopen reused id %s", old)
		}
	}
	if got := count(t, st, storage.Filter{}); got != 4 {
		t.Errorf("%d events after reopen and one ingest, want 4", got)
	}
}

// testClosed: after Close, every call fails with ErrUnavailable (Ingest
// too, for a new key and for a key already claimed), and Ready fails.
func testClosed(t *testing.T, s *suite) {
	st := s.open(t, "closed")
	b := base()
	res := ingestNew(t, st, simpleEvent("seen", b, "media"), []byte(`{}`))
	key := res.Queued[0].Key
	if err := st.Close(bg); err != nil {
		t.Fatalf("Close: %v", err)
	}
	unavailable := func(what string, err error) {
		t.Helper()
		if !errors.Is(err, storage.ErrUnavailable) {
			t.Errorf("%s after Close = %v, want ErrUnavailable", what, err)
		}
	}
	if err := st.Ready(); err == nil {
		t.Error("Ready after Close = nil, want an error")
	} else {
		unavailable("Ready", err)
	}
	r, err := st.Ingest(bg, simpleEvent("new", b, "media"), nil)
	unavailable("Ingest of a new key", err)
	if err == nil {
		t.Logf("  (Ingest returned %+v)", r)
	}
	r, err = st.Ingest(bg, simpleEvent("seen", b, "media"), nil)
	unavailable("Ingest of a claimed key", err)
	if err == nil {
		t.Logf("  (Ingest returned %+v)", r)
	}
	_, _, err = st.Get(bg, res.ID)
	unavailable("Get", err)
	_, _, _, err = st.LoadDelivery(bg, res.ID, "media")
	unavailable("LoadDelivery", err)
	_, _, err = st.DueDeliveries(bg, "media", time.Now(), 10, nil)
	unavailable("DueDeliveries", err)
	_, err = st.QueueDepth(bg, "media")
	unavailable("QueueDepth", err)
	_, err = st.RecordAttempt(bg, res.ID, "media", key, attemptResult(delivery.OK, b, time.Time{}), delivery.Policy{MaxAttempts: 1})
	unavailable("RecordAttempt", err)
	unavailable("Requeue", st.Requeue(bg, res.ID, "media", time.Now()))
	_, _, err = st.List(bg, storage.Filter{}, "", 10)
	unavailable("List", err)
	unavailable("Each", st.Each(bg, storage.Filter{}, func(*storage.EventView) bool { return true }))
}
