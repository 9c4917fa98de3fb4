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
	"github.com/hookrelay/hookrelay/relay/store"
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
		ev := &store.Event{Source: "sp", Provider: "sketchpen", Type: "video.completed", ReceivedAt: time.Now().UTC(),
			DedupeKey: fmt.Sprint("overflow-", i), Targets: []string{"t"}}
		res, err := st.Ingest(context.Background(), ev, []byte(`{"i":1}`))
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, res.ID)
		e.Enqueue(res.ID, res.Due, "t")
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
		depth, err := st.QueueDepth("t")
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
