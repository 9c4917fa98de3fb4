package storagetest

import (
	"bytes"
	"fmt"
	"maps"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/hookrelay/hookrelay/relay/delivery"
	"github.com/hookrelay/hookrelay/relay/storage"
)

// testIngestNew: a new event is accepted with an id (also set in ev.ID),
// one pending delivery per target is queued due at ReceivedAt, and the
// event, its raw body and headers come back from Get and LoadDelivery.
func testIngestNew(t *testing.T, s *suite) {
	st := s.open(t, "ingest-new")
	at := base()
	ev := &storage.Event{
		Source: "sp-prod", Provider: "sketchpen", Type: "video.completed", Subject: "video-42",
		Time: at.Add(-3 * time.Second), ReceivedAt: at, DedupeKey: "evt-42", DeliveryID: "dlv-42",
		Headers: map[string]string{"Content-Type": "application/json", "X-Sketchpen-Event": "video.completed"},
		Targets: []string{"media", "archive"},
	}
	want := *ev
	want.Headers = maps.Clone(ev.Headers)
	want.Targets = slices.Clone(ev.Targets)
	raw := []byte("{\"video\":42,\"bin\":\"\x00\xff\xfe\"}\n") // not valid UTF-8: bodies are bytes
	res := ingestNew(t, st, ev, raw)
	if ev.ID != res.ID {
		t.Errorf("ev.ID = %q, want the result's id %q", ev.ID, res.ID)
	}
	want.ID = res.ID

	// Queued: one per target, due at the receive time, usable as keys.
	if len(res.Queued) != 2 {
		t.Fatalf("Queued = %s, want one per target", fmtDues(res.Queued))
	}
	for i, q := range res.Queued {
		if q.EventID != res.ID || q.Target != want.Targets[i] || !q.At.Equal(at) || len(q.Key) == 0 {
			t.Errorf("Queued[%d] = %+v, want %s/%s due at %v with a key", i, q, res.ID, want.Targets[i], at)
		}
	}
	for _, target := range want.Targets {
		d := onlyDue(t, st, target, res.ID, at)
		if !d.At.Equal(at) {
			t.Errorf("due %s at %v, want %v", target, d.At, at)
		}
		if n := depth(t, st, target); n != 1 {
			t.Errorf("QueueDepth %s = %d, want 1", target, n)
		}
	}
	if dues, next := due(t, st, "media", at.Add(-time.Millisecond)); len(dues) != 0 || !next.Equal(at) {
		t.Errorf("DueDeliveries just before receipt = %s next %v, want none, next %v", fmtDues(dues), next, at)
	}

	// Get: the event, its body and a pending delivery per target.
	v, gotRaw := get(t, st, res.ID)
	checkEvent(t, "Get", &v.Event, &want)
	if !bytes.Equal(gotRaw, raw) {
		t.Errorf("Get raw = %q, want %q", gotRaw, raw)
	}
	if v.Status != delivery.EventPending {
		t.Errorf("Get status = %q, want pending", v.Status)
	}
	if len(v.Deliveries) != 2 {
		t.Fatalf("Get deliveries = %+v, want one per target", v.Deliveries)
	}
	for _, target := range want.Targets {
		d := deliveryOf(t, v, target)
		if d.Status != delivery.Pending || !d.NextAt.Equal(at) || d.Tries != 0 || len(d.Attempts) != 0 || d.Replay {
			t.Errorf("Get delivery %s = %+v, want pending due at %v, no tries, no attempts", target, d, at)
		}
	}

	// LoadDelivery: the same, for each target.
	for _, target := range want.Targets {
		lev, lraw, d := load(t, st, res.ID, target)
		checkEvent(t, "LoadDelivery", lev, &want)
		if !bytes.Equal(lraw, raw) {
			t.Errorf("LoadDelivery raw = %q, want %q", lraw, raw)
		}
		if d.Target != target || d.Status != delivery.Pending || !d.NextAt.Equal(at) || d.Tries != 0 {
			t.Errorf("LoadDelivery %s = %+v, want pending due at %v", target, d, at)
		}
	}

	// An empty body is a body.
	res2 := ingestNew(t, st, simpleEvent("empty", at.Add(time.Millisecond), "media"), nil)
	if _, r := get(t, st, res2.ID); len(r) != 0 {
		t.Errorf("Get raw of an empty body = %q", r)
	}
}

// checkEvent compares every stored field of an event.
func checkEvent(t *testing.T, what string, got, want *storage.Event) {
	t.Helper()
	if got.ID != want.ID || got.Source != want.Source || got.Provider != want.Provider || got.Type != want.Type ||
		got.Subject != want.Subject || !got.Time.Equal(want.Time) || !got.ReceivedAt.Equal(want.ReceivedAt) ||
		got.DedupeKey != want.DedupeKey || got.DeliveryID != want.DeliveryID ||
		!maps.Equal(got.Headers, want.Headers) || !slices.Equal(got.Targets, want.Targets) {
		t.Errorf("%s event =\n\t%+v\nwant\n\t%+v", what, *got, *want)
	}
}

// testIngestDuplicate: the same (source, dedupe key) again is a duplicate
// carrying the first id; it queues nothing and stores nothing.
func testIngestDuplicate(t *testing.T, s *suite) {
	st := s.open(t, "ingest-dup")
	at := base()
	first := ingestNew(t, st, simpleEvent("k", at, "media"), []byte(`{"n":1}`))
	for i, later := range []time.Duration{0, time.Millisecond, time.Minute} {
		ev := simpleEvent("k", at.Add(later), "media", "archive")
		ev.Type = "video.other"
		res := ingest(t, st, ev, []byte(`{"n":2}`))
		if !res.Duplicate || res.ID != first.ID || len(res.Queued) != 0 {
			t.Errorf("repeat #%d = %+v, want a duplicate of %s with nothing queued", i, res, first.ID)
		}
	}
	if n := depth(t, st, "media"); n != 1 {
		t.Errorf("QueueDepth media = %d, want the first event's 1", n)
	}
	if n := depth(t, st, "archive"); n != 0 {
		t.Errorf("QueueDepth archive = %d, want 0 (only the duplicate routed there)", n)
	}
	v, raw := get(t, st, first.ID)
	if v.Type != "video.completed" || string(raw) != `{"n":1}` || len(v.Deliveries) != 1 {
		t.Errorf("first event after duplicates = %+v %s, want it unchanged", v, raw)
	}
	if n := count(t, st, storage.Filter{}); n != 1 {
		t.Errorf("%d events stored, want 1", n)
	}
}

// testIngestSameKeyOtherSource: dedupe keys are per source.
func testIngestSameKeyOtherSource(t *testing.T, s *suite) {
	st := s.open(t, "ingest-sources")
	at := base()
	a := simpleEvent("k", at, "media")
	b := simpleEvent("k", at, "media")
	b.Source = "src-2"
	ra := ingestNew(t, st, a, nil)
	rb := ingestNew(t, st, b, nil)
	if ra.ID == rb.ID {
		t.Errorf("both sources got id %s", ra.ID)
	}
	// Source and key are not simply concatenated.
	c := simpleEvent("2k", at, "media")
	c.Source = "src-"
	d := simpleEvent("k", at, "media")
	d.Source = "src-2"
	ingestNew(t, st, c, nil)
	if res := ingest(t, st, d, nil); !res.Duplicate || res.ID != rb.ID {
		t.Errorf("src-2/k again = %+v, want a duplicate of %s", res, rb.ID)
	}
	if n := depth(t, st, "media"); n != 3 {
		t.Errorf("QueueDepth = %d, want 3", n)
	}
}

// testIngestUnrouted: an event without targets is stored, unrouted, with
// no deliveries and nothing queued.
func testIngestUnrouted(t *testing.T, s *suite) {
	st := s.open(t, "ingest-unrouted")
	at := base()
	res := ingestNew(t, st, simpleEvent("u", at), []byte(`{}`))
	if len(res.Queued) != 0 {
		t.Errorf("Queued = %s, want none", fmtDues(res.Queued))
	}
	v, _ := get(t, st, res.ID)
	if v.Status != delivery.EventUnrouted || len(v.Deliveries) != 0 {
		t.Errorf("Get = status %q deliveries %+v, want unrouted with none", v.Status, v.Deliveries)
	}
	if got := ids(t, st, storage.Filter{Status: delivery.EventUnrouted}); !slices.Equal(got, []string{res.ID}) {
		t.Errorf("unrouted events = %v, want [%s]", got, res.ID)
	}
	if res := ingest(t, st, simpleEvent("u", at), nil); !res.Duplicate {
		t.Errorf("an unrouted event's key again = %+v, want a duplicate", res)
	}
}

// Concurrent claims: rounds of claimers goroutines, released together,
// ingest the same dedupe key (one key per round). Each round exactly one is
// accepted, every other gets its id, and one event with one delivery is
// stored. A claim checked outside the transaction that writes it lets
// several through in every round.
const (
	claimRounds = 20
	claimers    = 32
)

func testConcurrentClaims(t *testing.T, s *suite) {
	st := s.open(t, "claims")
	at := base()
	winners := map[string]string{} // dedupe key -> id
	for round := range claimRounds {
		key := fmt.Sprintf("race-%d", round)
		results := make([]storage.Result, claimers)
		events := make([]*storage.Event, claimers)
		errs := make([]error, claimers)
		var ready, done sync.WaitGroup
		start := make(chan struct{})
		for g := range claimers {
			ev := simpleEvent(key, at.Add(time.Duration(round)*time.Second), "race-target")
			ev.Source = "race"
			ev.Subject = fmt.Sprintf("claimer-%d", g)
			events[g] = ev
			ready.Add(1)
			done.Add(1)
			go func() {
				defer done.Done()
				ready.Done()
				<-start
				results[g], errs[g] = st.Ingest(bg, ev, fmt.Appendf(nil, `{"claimer":%d}`, g))
			}()
		}
		ready.Wait()
		close(start)
		done.Wait()

		winner := -1
		for g := range claimers {
			if errs[g] != nil {
				t.Fatalf("round %d claimer %d: Ingest: %v", round, g, errs[g])
			}
			if !results[g].Duplicate {
				if winner >= 0 {
					t.Errorf("round %d: claimers %d and %d both accepted (ids %s, %s)", round, winner, g, results[winner].ID, results[g].ID)
					continue
				}
				winner = g
			}
		}
		if winner < 0 {
			t.Fatalf("round %d: no claimer accepted", round)
		}
		id := results[winner].ID
		winners[key] = id
		if events[winner].ID != id || len(results[winner].Queued) != 1 {
			t.Errorf("round %d: winner result %+v, ev.ID %q; want its id and one queued delivery", round, results[winner], events[winner].ID)
		}
		for g := range claimers {
			if g != winner && results[g].Duplicate && (results[g].ID != id || len(results[g].Queued) != 0) {
				t.Errorf("round %d claimer %d: duplicate %+v, want id %s and nothing queued", round, g, results[g], id)
			}
		}
		v, raw := get(t, st, id)
		if want := fmt.Sprintf(`{"claimer":%d}`, winner); v.Subject != events[winner].Subject || string(raw) != want {
			t.Errorf("round %d: stored %s with body %s, want the winner's (%s, %s)", round, v.Subject, raw, events[winner].Subject, want)
		}
	}

	// Exactly one event per round, the winner's, and one delivery each.
	perKey := map[string][]string{}
	if err := st.Each(bg, storage.Filter{Source: "race"}, func(v *storage.EventView) bool {
		perKey[v.DedupeKey] = append(perKey[v.DedupeKey], v.ID)
		return true
	}); err != nil {
		t.Fatalf("Each: %v", err)
	}
	if len(perKey) != claimRounds {
		t.Errorf("events stored for %d keys, want %d", len(perKey), claimRounds)
	}
	for key, got := range perKey {
		if len(got) != 1 || got[0] != winners[key] {
			t.Errorf("key %s: stored events %v, want only the winner %s", key, got, winners[key])
		}
	}
	if n := depth(t, st, "race-target"); n != claimRounds {
		t.Errorf("QueueDepth = %d, want %d (one per round)", n, claimRounds)
	}
}

// ids returns the ids Each visits for f, oldest first.
func ids(t *testing.T, st storage.Store, f storage.Filter) []string {
	t.Helper()
	var out []string
	if err := st.Each(bg, f, func(v *storage.EventView) bool {
		out = append(out, v.ID)
		return true
	}); err != nil {
		t.Fatalf("Each %+v: %v", f, err)
	}
	return out
}

func count(t *testing.T, st storage.Store, f storage.Filter) int {
	t.Helper()
	return len(ids(t, st, f))
}
