package deliver_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hookrelay/hookrelay/relay/deliver"
	"github.com/hookrelay/hookrelay/relay/delivery"
	"github.com/hookrelay/hookrelay/relay/store"
)

// hits counts the requests each path of a test server received.
type hits struct {
	mu sync.Mutex
	n  map[string]int
}

func (h *hits) get(path string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.n[path]
}

func hitServer(t *testing.T) (*hits, *httptest.Server) {
	h := &hits{n: map[string]int{}}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.mu.Lock()
		h.n[r.URL.Path]++
		h.mu.Unlock()
	}))
	t.Cleanup(srv.Close)
	return h, srv
}

// TestPauseAndResume: a paused target gets no attempt while a running one
// next to it does; its deliveries stay pending and are made on resume; the
// pause is read from the store when an engine starts (a restart) and when
// RefreshPaused is called.
func TestPauseAndResume(t *testing.T) {
	ctx := context.Background()
	st := openTestStore(t, t.TempDir())
	h, srv := hitServer(t)
	if err := st.SetPaused(ctx, "held", true); err != nil {
		t.Fatal(err)
	}
	e := startEngine(t, st, nil, testTarget("held", srv.URL+"/held"), testTarget("free", srv.URL+"/free"))

	var held []string
	for range 5 {
		held = append(held, enqueue(t, st, "held"))
		free := enqueue(t, st, "free")
		e.Notify("held", "free")
		waitDelivery(t, st, free, "free", settled)
	}
	// Every "free" delivery was made after the "held" ones were queued and
	// notified: the paused dispatcher had every chance to attempt them.
	time.Sleep(100 * time.Millisecond)
	if n := h.get("/held"); n != 0 {
		t.Fatalf("paused target got %d requests, want 0", n)
	}
	for _, id := range held {
		if _, _, d, err := st.LoadDelivery(ctx, id, "held"); err != nil || d.Status != delivery.Pending || d.Tries != 0 {
			t.Fatalf("delivery to the paused target = %+v, %v; want pending, untried", d, err)
		}
	}
	ts := e.Targets()
	if len(ts) != 2 || ts[0].Name != "free" || ts[0].Paused || ts[1].Name != "held" || !ts[1].Paused || ts[1].PausedAt.IsZero() {
		t.Fatalf("Targets = %+v, want free running and held paused", ts)
	}

	// Resume: the store first, then the engine reads it.
	if err := st.SetPaused(ctx, "held", false); err != nil {
		t.Fatal(err)
	}
	if err := e.RefreshPaused(ctx); err != nil {
		t.Fatal(err)
	}
	for _, id := range held {
		if d := waitDelivery(t, st, id, "held", settled); d.Status != delivery.Delivered {
			t.Fatalf("after resume: %s, want delivered", d.Status)
		}
	}
	if n := h.get("/held"); n != len(held) {
		t.Fatalf("resumed target got %d requests, want %d", n, len(held))
	}
}

// TestPauseRefresh: with PauseRefresh, a pause written to the store by
// someone else (another node) takes effect without RefreshPaused, and so
// does the resume; a target added by Apply while paused starts paused.
func TestPauseRefresh(t *testing.T) {
	ctx := context.Background()
	st := openTestStore(t, t.TempDir())
	h, srv := hitServer(t)
	e := runEngine(t, st, deliver.Options{PauseRefresh: 10 * time.Millisecond}, testTarget("a", srv.URL+"/a"))
	// b first: a read that sees a paused has b too.
	if err := st.SetPaused(ctx, "b", true); err != nil {
		t.Fatal(err)
	}
	if err := st.SetPaused(ctx, "a", true); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the engine to see the pause", func() bool { return len(e.Targets()) == 1 && e.Targets()[0].Paused })
	e.Apply([]deliver.Target{testTarget("a", srv.URL+"/a"), testTarget("b", srv.URL+"/b")})
	if ts := e.Targets(); len(ts) != 2 || !ts[1].Paused {
		t.Fatalf("Targets after Apply = %+v, want b paused from the start", ts)
	}
	ida, idb := enqueue(t, st, "a"), enqueue(t, st, "b")
	e.Notify("a", "b")
	time.Sleep(100 * time.Millisecond)
	if h.get("/a")+h.get("/b") != 0 {
		t.Fatalf("paused targets got requests: a %d, b %d", h.get("/a"), h.get("/b"))
	}
	for _, name := range []string{"a", "b"} {
		if err := st.SetPaused(ctx, name, false); err != nil {
			t.Fatal(err)
		}
	}
	waitDelivery(t, st, ida, "a", settled)
	waitDelivery(t, st, idb, "b", settled)
}

func waitFor(t *testing.T, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// failingPaused is a store whose Paused fails the first fails times.
type failingPaused struct {
	*store.Store
	fails atomic.Int32
}

func (f *failingPaused) Paused(ctx context.Context) (map[string]time.Time, error) {
	if f.fails.Add(-1) >= 0 {
		return nil, errors.New("store busy")
	}
	return f.Store.Paused(ctx)
}

// TestPauseFailClosed: when the paused targets cannot be read at Start,
// no target is attempted until they are (a paused one must not get an
// attempt because the store did not answer), and the read is tried again
// until it succeeds: then the running targets deliver and the paused one
// still waits.
func TestPauseFailClosed(t *testing.T) {
	ctx := context.Background()
	st := openTestStore(t, t.TempDir())
	h, srv := hitServer(t)
	if err := st.SetPaused(ctx, "held", true); err != nil {
		t.Fatal(err)
	}
	held, free := enqueue(t, st, "held"), enqueue(t, st, "free")
	fp := &failingPaused{Store: st}
	fp.fails.Store(2) // Start's read and the first retry
	runEngine(t, fp, deliver.Options{}, testTarget("held", srv.URL+"/held"), testTarget("free", srv.URL+"/free"))
	if h.get("/free") != 0 {
		t.Fatal("a target was attempted before the paused targets were read")
	}
	waitDelivery(t, st, free, "free", settled) // the second retry read them
	if fp.fails.Load() >= 0 {
		t.Fatalf("delivered before the paused targets were read")
	}
	if _, _, d, err := st.LoadDelivery(ctx, held, "held"); err != nil || d.Status != delivery.Pending || d.Tries != 0 || h.get("/held") != 0 {
		t.Fatalf("the paused target = %+v, %v, %d requests; want pending, untried", d, err, h.get("/held"))
	}
}
