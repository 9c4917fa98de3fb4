package jsstore

import (
	"testing"
	"time"

	"github.com/hookrelay/hookrelay/relay/delivery"
	"github.com/hookrelay/hookrelay/relay/jsstore/jstest"
	"github.com/nats-io/nats.go/jetstream"
)

// dueIDs reads the queued deliveries of target through st's queue view
// (whichever Store owns them).
func dueIDs(t *testing.T, st *Store, target string) map[string]bool {
	t.Helper()
	m := map[string]bool{}
	err := st.syncQueue(bg, target, func(entries map[string]queued) {
		for id := range entries {
			m[id] = true
		}
	})
	if err != nil {
		t.Fatalf("read queue view: %v", err)
	}
	return m
}

// TestViewLostMessages: messages of a queue view's consumer lost on the
// way (as in a reconnect during a fetch; here fetched and dropped by the
// test) are noticed by the consumer sequence: the next read builds the
// view again and sees both the finished delivery gone and the new one.
func TestViewLostMessages(t *testing.T) {
	c := jstest.NewCluster(t, 3)
	a := open(t, []string{c.URL(0)}, "view-gap", 3)
	b := open(t, []string{c.URL(1)}, "view-gap", 3)
	r1, err := b.Ingest(bg, webhook("e1", "t"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if !dueIDs(t, a, "t")[r1.ID] {
		t.Fatal("a does not see e1")
	}
	// b delivers e1 (its entry becomes a tombstone), then takes e2.
	if _, _, _, err := b.LoadDelivery(bg, r1.ID, "t"); err != nil {
		t.Fatal(err)
	}
	ok := delivery.Result{Attempt: delivery.Attempt{At: time.Now(), StatusCode: 200}, Outcome: delivery.OK}
	if _, err := b.RecordAttempt(bg, r1.ID, "t", r1.Queued[0].Key, ok, delivery.Policy{}); err != nil {
		t.Fatal(err)
	}
	r2, err := b.Ingest(bg, webhook("e2", "t"), nil)
	if err != nil {
		t.Fatal(err)
	}
	// Two messages a's consumer sends that never reach its view.
	v := a.queueView("t")
	v.mu.Lock()
	batch, err := v.cons.Fetch(2, jetstream.FetchMaxWait(2*time.Second))
	if err != nil {
		v.mu.Unlock()
		t.Fatal(err)
	}
	n := 0
	for range batch.Messages() {
		n++
	}
	v.mu.Unlock()
	if n == 0 {
		t.Fatal("nothing fetched to lose")
	}
	ids := dueIDs(t, a, "t")
	if ids[r1.ID] || !ids[r2.ID] {
		t.Fatalf("a's due deliveries after %d lost messages: e1 (finished) %v, e2 (new) %v; want only e2", n, ids[r1.ID], ids[r2.ID])
	}
	if d, err := a.QueueDepth(bg, "t"); err != nil || d != 1 {
		t.Fatalf("QueueDepth on a = %d, %v; want 1", d, err)
	}
}
