package deliver_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/hookrelay/hookrelay/relay/deliver"
	"github.com/hookrelay/hookrelay/relay/delivery"
	"github.com/hookrelay/hookrelay/relay/storage"
)

// TestEngineOverflowDeliversEverythingOnce: far more deliveries than the
// dispatcher may hold in memory, handed over while the target is slow, and
// some retried: every one is delivered, each exactly once, the excess
// coming from store scans.
func TestEngineOverflowDeliversEverythingOnce(t *testing.T) {
	var mu sync.Mutex
	got := map[string]int{}
	failedOnce := map[string]bool{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var ev struct{ ID string }
		_ = json.Unmarshal(body, &ev)
		time.Sleep(time.Millisecond)
		mu.Lock()
		defer mu.Unlock()
		if len(ev.ID)%2 == 0 && !failedOnce[ev.ID] && len(failedOnce) < 20 {
			failedOnce[ev.ID] = true
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		got[ev.ID]++
	}))
	defer srv.Close()

	st := openTestStore(t, t.TempDir())
	tg := testTarget("t", srv.URL)
	tg.MaxInFlight, tg.MaxAttempts = 4, 5
	e := deliver.New(st, []deliver.Target{tg}, deliver.Options{Memory: 16, Rescan: time.Hour})
	e.Start(context.Background())
	t.Cleanup(func() { _ = e.Stop(context.Background()) })

	const n = 300
	ids := make([]string, 0, n)
	for i := 0; i < n; i++ {
		ev := &storage.Event{Source: "sp", Provider: "sketchpen", Type: "video.completed", ReceivedAt: time.Now().UTC(),
			DedupeKey: fmt.Sprint("overflow-", i), Targets: []string{"t"}}
		res, err := st.Ingest(context.Background(), ev, []byte(`{"i":1}`))
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, res.ID)
		e.Enqueue(res.Queued...)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		mu.Lock()
		done := len(got)
		mu.Unlock()
		if done == n {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d deliveries arrived within 30s", done, n)
		}
		time.Sleep(10 * time.Millisecond)
	}
	// The target saw everything; the engine records each outcome just after.
	for {
		depth, err := st.QueueDepth(context.Background(), "t")
		if err != nil {
			t.Fatal(err)
		}
		if depth == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("queue depth still %d after every delivery arrived", depth)
		}
		time.Sleep(10 * time.Millisecond)
	}
	mu.Lock()
	defer mu.Unlock()
	for _, id := range ids {
		if got[id] != 1 {
			t.Errorf("event %s delivered %d times, want 1", id, got[id])
		}
	}
}

// TestEngineReplayOfScheduledRetry: a delivery waiting an hour for its
// retry (Retry-After: 3600) is replayed: it goes out at once, once, and the
// old schedule does not send it again.
func TestEngineReplayOfScheduledRetry(t *testing.T) {
	var mu sync.Mutex
	var replays, plain int
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		mu.Lock()
		defer mu.Unlock()
		if r.Header.Get("Hookrelay-Replay") == "true" {
			replays++
			return
		}
		plain++
		w.Header().Set("Retry-After", "3600")
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	defer srv.Close()
	st := openTestStore(t, t.TempDir())
	tg := testTarget("t", srv.URL)
	tg.MaxAttempts = 5
	e := deliver.New(st, []deliver.Target{tg}, deliver.Options{Rescan: time.Hour})
	e.Start(context.Background())
	t.Cleanup(func() { _ = e.Stop(context.Background()) })

	id := enqueue(t, st, "t")
	e.Notify("t")
	d := waitDelivery(t, st, id, "t", func(d *delivery.Delivery) bool { return len(d.Attempts) == 1 })
	if d.Status != delivery.Pending || time.Until(d.NextAt) < 50*time.Minute {
		t.Fatalf("after a 503 with Retry-After 3600: status %s, next %v; want pending about an hour ahead", d.Status, d.NextAt)
	}
	if err := st.Requeue(context.Background(), id, "t", time.Now()); err != nil {
		t.Fatal(err)
	}
	e.Notify("t")
	d = waitDelivery(t, st, id, "t", settled)
	if d.Status != delivery.Delivered || len(d.Attempts) != 2 || !d.Attempts[1].Replay {
		t.Fatalf("after replay: status %s, attempts %+v; want delivered by the replay", d.Status, d.Attempts)
	}
	// Nothing else is queued: the hour-old schedule is gone with the replay.
	if depth, err := st.QueueDepth(context.Background(), "t"); err != nil || depth != 0 {
		t.Errorf("queue depth %d (%v), want 0", depth, err)
	}
	mu.Lock()
	defer mu.Unlock()
	if plain != 1 || replays != 1 {
		t.Errorf("target saw %d plain and %d replayed requests, want 1 and 1", plain, replays)
	}
}

// TestEngineOnlyRestrictsDelivery: with Options.Only (offline replay), the
// engine sends the selected events and leaves the rest queued.
func TestEngineOnlyRestrictsDelivery(t *testing.T) {
	var mu sync.Mutex
	got := map[string]bool{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var ev struct{ ID string }
		_ = json.Unmarshal(body, &ev)
		mu.Lock()
		got[ev.ID] = true
		mu.Unlock()
	}))
	defer srv.Close()
	st := openTestStore(t, t.TempDir())
	chosen, other := enqueue(t, st, "t"), enqueue(t, st, "t")
	e := deliver.New(st, []deliver.Target{testTarget("t", srv.URL)}, deliver.Options{Rescan: time.Hour, Only: func(id string) bool { return id == chosen }})
	e.Start(context.Background())
	t.Cleanup(func() { _ = e.Stop(context.Background()) })
	e.Notify("t")
	waitDelivery(t, st, chosen, "t", settled)
	_ = e.Stop(context.Background())
	mu.Lock()
	defer mu.Unlock()
	if got[other] {
		t.Error("an event outside Only was delivered")
	}
	if depth, _ := st.QueueDepth(context.Background(), "t"); depth != 1 {
		t.Errorf("queue depth %d, want 1 (the other event still queued)", depth)
	}
}
