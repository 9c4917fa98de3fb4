package deliver_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/hookrelay/hookrelay/relay/deliver"
	"github.com/hookrelay/hookrelay/relay/delivery"
	"github.com/hookrelay/hookrelay/relay/store"
)

// recorder is a target that counts requests per event id and notes the
// X-Rev header of each; hold, when set, keeps requests waiting.
type recorder struct {
	*httptest.Server
	mu   sync.Mutex
	ids  map[string]int
	revs map[string]string
	hold chan struct{} // closed to let held requests answer
	once sync.Once
	in   chan string // ids of requests that arrived
}

// release lets held requests answer (once).
func (r *recorder) release() {
	if r.hold != nil {
		r.once.Do(func() { close(r.hold) })
	}
}

func newRecorder(t *testing.T, hold bool) *recorder {
	r := &recorder{ids: map[string]int{}, revs: map[string]string{}, in: make(chan string, 100)}
	if hold {
		r.hold = make(chan struct{})
	}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		id := req.Header.Get("webhook-id")
		if id == "" {
			id = req.Header.Get("X-Id")
		}
		r.mu.Lock()
		r.ids[id]++
		r.revs[id] = req.Header.Get("X-Rev")
		r.mu.Unlock()
		r.in <- id
		if r.hold != nil {
			<-r.hold
		}
	}))
	t.Cleanup(r.Close)
	t.Cleanup(r.release) // runs first: a failed test must not hang in Close
	return r
}

func (r *recorder) count(id string) (int, string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.ids[id], r.revs[id]
}

// attemptInFlight starts an engine with target t (signed, X-Rev: 1) on a
// recorder that holds requests, and returns once the attempt of a first
// event is in flight.
func attemptInFlight(t *testing.T) (*store.Store, *recorder, deliver.Target, *deliver.Engine, string) {
	t.Helper()
	st := openTestStore(t, t.TempDir())
	rec := newRecorder(t, true)
	tg := testTarget("t", rec.URL)
	tg.SigningKey = []byte("k")
	tg.Headers = map[string]string{"X-Rev": "1"}
	e := startEngine(t, st, nil, tg)
	first := enqueue(t, st, "t")
	e.Notify("t")
	select {
	case <-rec.in:
	case <-time.After(10 * time.Second):
		t.Fatal("no attempt started")
	}
	return st, rec, tg, e, first
}

// TestApplyChangedTargetWaitsForAttemptsInFlight: a reload that changes a
// target while an attempt is in flight lets the attempt finish and be
// recorded, and the new dispatcher (new headers) does not attempt it again.
func TestApplyChangedTargetWaitsForAttemptsInFlight(t *testing.T) {
	st, rec, tg, e, first := attemptInFlight(t)
	changed := tg
	changed.Headers = map[string]string{"X-Rev": "2"}
	if removed := e.Apply([]deliver.Target{changed}); len(removed) != 0 {
		t.Fatalf("removed = %v, want none", removed)
	}
	second := enqueue(t, st, "t")
	e.Notify("t")
	time.Sleep(100 * time.Millisecond) // the new dispatcher must not start yet
	if n, _ := rec.count(second); n != 0 {
		t.Fatalf("new dispatcher attempted while the old one had an attempt in flight")
	}
	rec.release()
	waitDelivery(t, st, first, "t", func(d *delivery.Delivery) bool { return d.Status == delivery.Delivered })
	waitDelivery(t, st, second, "t", func(d *delivery.Delivery) bool { return d.Status == delivery.Delivered })
	if n, rev := rec.count(first); n != 1 || rev != "1" {
		t.Errorf("first event: %d requests, X-Rev %q; want 1 with the old header", n, rev)
	}
	if n, rev := rec.count(second); n != 1 || rev != "2" {
		t.Errorf("second event: %d requests, X-Rev %q; want 1 with the new header", n, rev)
	}
}

// TestApplyRemovedTargetKeepsPending: a removed target's deliveries stay
// pending in the store and are made once the target comes back.
func TestApplyRemovedTargetKeepsPending(t *testing.T) {
	st := openTestStore(t, t.TempDir())
	rec := newRecorder(t, false)
	tg := testTarget("t", rec.URL)
	tg.SigningKey = []byte("k")
	e := startEngine(t, st, nil)
	if removed := e.Apply(nil); len(removed) != 0 {
		t.Fatalf("removed = %v", removed)
	}
	id := enqueue(t, st, "t")
	e.Notify("t")
	time.Sleep(100 * time.Millisecond)
	if n, _ := rec.count(id); n != 0 {
		t.Fatal("delivered to a target that is not configured")
	}
	if n, err := st.QueueDepth(context.Background(), "t"); err != nil || n != 1 {
		t.Fatalf("queue depth = %d, %v; want 1", n, err)
	}
	e.Apply([]deliver.Target{tg})
	waitDelivery(t, st, id, "t", func(d *delivery.Delivery) bool { return d.Status == delivery.Delivered })
	if removed := e.Apply(nil); len(removed) != 1 || removed[0] != "t" {
		t.Errorf("removed = %v, want [t]", removed)
	}
}

// TestApplyTwiceWhileInFlight: two reloads in a row that change a target
// while an attempt is in flight still start the newest dispatcher only
// after the first one finished (the middle one never ran).
func TestApplyTwiceWhileInFlight(t *testing.T) {
	st, rec, tg, e, first := attemptInFlight(t)
	for _, rev := range []string{"2", "3"} {
		next := tg
		next.Headers = map[string]string{"X-Rev": rev}
		e.Apply([]deliver.Target{next})
	}
	time.Sleep(200 * time.Millisecond) // a dispatcher started too early would re-send first now
	if n, _ := rec.count(first); n != 1 {
		t.Fatalf("first event attempted %d times while its attempt was in flight", n)
	}
	rec.release()
	waitDelivery(t, st, first, "t", func(d *delivery.Delivery) bool { return d.Status == delivery.Delivered })
	second := enqueue(t, st, "t")
	e.Notify("t")
	waitDelivery(t, st, second, "t", func(d *delivery.Delivery) bool { return d.Status == delivery.Delivered })
	if n, _ := rec.count(first); n != 1 {
		t.Errorf("first event: %d requests, want 1", n)
	}
	if n, rev := rec.count(second); n != 1 || rev != "3" {
		t.Errorf("second event: %d requests with X-Rev %q, want 1 with the newest header", n, rev)
	}
}
