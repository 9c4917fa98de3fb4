package deliver_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hookrelay/hookrelay/relay/deliver"
	"github.com/hookrelay/hookrelay/relay/delivery"
	"github.com/hookrelay/hookrelay/relay/storage"
	"github.com/hookrelay/hookrelay/relay/store"
)

// openTestStore opens a Badger store in a fresh directory.
func openTestStore(t *testing.T, dir string) *store.Store {
	t.Helper()
	st, err := store.Open(context.Background(), store.Options{Path: dir})
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	t.Cleanup(func() { _ = st.Close(context.Background()) })
	return st
}

var eventSeq atomic.Int64

// enqueue stores a new event routed to targets and returns its id.
func enqueue(t *testing.T, st *store.Store, targets ...string) string {
	t.Helper()
	n := eventSeq.Add(1)
	ev := &storage.Event{
		Source: "sp", Provider: "sketchpen", Type: "video.completed", Subject: fmt.Sprintf("vid_%d", n),
		ReceivedAt: time.Now().UTC(), DedupeKey: fmt.Sprintf("engine-test:%d", n), Targets: targets,
	}
	res, err := st.Ingest(context.Background(), ev, []byte(`{"n":`+strconv.FormatInt(n, 10)+`}`))
	if err != nil {
		t.Fatalf("ingest: %v", err)
	}
	return res.ID
}

// startEngine runs an engine over st until the test ends.
func startEngine(t *testing.T, st *store.Store, m deliver.Metrics, targets ...deliver.Target) *deliver.Engine {
	t.Helper()
	return runEngine(t, st, deliver.Options{Metrics: m}, targets...)
}

// runEngine runs an engine with opts over st until the test ends.
func runEngine(t *testing.T, st deliver.Store, opts deliver.Options, targets ...deliver.Target) *deliver.Engine {
	t.Helper()
	e := deliver.New(st, targets, opts)
	e.Start(context.Background())
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = e.Stop(ctx)
	})
	return e
}

func testTarget(name, url string) deliver.Target {
	return deliver.Target{
		Name: name, URL: url, Timeout: 5 * time.Second, MaxInFlight: 2, MaxAttempts: 2,
		InitialBackoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond,
	}
}

// waitDelivery polls the delivery of id to target until done reports true.
func waitDelivery(t *testing.T, st *store.Store, id, target string, done func(*delivery.Delivery) bool) *delivery.Delivery {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		_, _, d, err := st.LoadDelivery(context.Background(), id, target)
		if err != nil {
			t.Fatalf("load delivery %s/%s: %v", id, target, err)
		}
		if done(d) {
			return d
		}
		if time.Now().After(deadline) {
			t.Fatalf("delivery %s to %s: still %s after %d attempts %+v", id, target, d.Status, len(d.Attempts), d.Attempts)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func settled(d *delivery.Delivery) bool { return d.Status != delivery.Pending }

// deliverDead enqueues an event for target, waits for its delivery to
// settle, checks that it died after the two attempts of a testTarget and
// returns them.
func deliverDead(t *testing.T, st *store.Store, e *deliver.Engine, target string) []delivery.Attempt {
	t.Helper()
	id := enqueue(t, st, target)
	e.Notify(target)
	d := waitDelivery(t, st, id, target, settled)
	if d.Status != delivery.Dead || len(d.Attempts) != 2 {
		t.Fatalf("delivery %s after %d attempts, want dead after 2", d.Status, len(d.Attempts))
	}
	return d.Attempts
}

// waitArrived waits up to 10s for a target's arrived counter to move and
// fails the test, naming what never reached the target, if it does not.
func waitArrived(t *testing.T, arrived *atomic.Int64, what string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for arrived.Load() == 0 {
		if time.Now().After(deadline) {
			t.Fatal(what + " never reached the target")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

type outcomes struct {
	mu sync.Mutex
	n  map[string]int // "target/outcome" -> count
}

func (o *outcomes) Delivered(target, outcome string, _ time.Duration) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.n == nil {
		o.n = map[string]int{}
	}
	o.n[target+"/"+outcome]++
}

func (o *outcomes) get(key string) int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.n[key]
}

// TestEngineStatusClasses: 2xx delivered at once; 408, 429 and 5xx retried
// (here up to max_attempts 2); other 4xx and 3xx dead after one attempt.
func TestEngineStatusClasses(t *testing.T) {
	var followed atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/elsewhere" {
			followed.Add(1)
			return
		}
		code, _ := strconv.Atoi(r.URL.Query().Get("code"))
		if code == http.StatusFound {
			w.Header().Set("Location", "/elsewhere")
		}
		w.WriteHeader(code)
	}))
	defer srv.Close()
	tests := []struct {
		code     int
		status   delivery.Status
		attempts int
	}{
		{200, delivery.Delivered, 1},
		{201, delivery.Delivered, 1},
		{204, delivery.Delivered, 1},
		{302, delivery.Dead, 1},
		{400, delivery.Dead, 1},
		{401, delivery.Dead, 1},
		{404, delivery.Dead, 1},
		{410, delivery.Dead, 1},
		{422, delivery.Dead, 1},
		{408, delivery.Dead, 2},
		{429, delivery.Dead, 2},
		{500, delivery.Dead, 2},
		{502, delivery.Dead, 2},
		{503, delivery.Dead, 2},
	}
	st := openTestStore(t, t.TempDir())
	var targets []deliver.Target
	var names []string
	for _, tt := range tests {
		name := fmt.Sprintf("t%d", tt.code)
		names = append(names, name)
		targets = append(targets, testTarget(name, srv.URL+"/hook?code="+strconv.Itoa(tt.code)))
	}
	m := &outcomes{}
	e := startEngine(t, st, m, targets...)
	id := enqueue(t, st, names...)
	e.Notify(names...)
	for i, tt := range tests {
		d := waitDelivery(t, st, id, names[i], settled)
		if d.Status != tt.status || len(d.Attempts) != tt.attempts {
			t.Errorf("HTTP %d: %s after %d attempts, want %s after %d", tt.code, d.Status, len(d.Attempts), tt.status, tt.attempts)
		}
		for _, a := range d.Attempts {
			if a.StatusCode != tt.code || a.Error != "" {
				t.Errorf("HTTP %d: attempt recorded as %d %q", tt.code, a.StatusCode, a.Error)
			}
		}
		if got, want := m.get(names[i]+"/"+string(tt.status)), 1; got != want {
			t.Errorf("HTTP %d: metrics saw %d %q outcomes, want %d", tt.code, got, tt.status, want)
		}
		if got, want := m.get(names[i]+"/retry"), tt.attempts-1; got != want {
			t.Errorf("HTTP %d: metrics saw %d retries, want %d", tt.code, got, want)
		}
	}
	if n := followed.Load(); n != 0 {
		t.Errorf("a redirect was followed %d times", n)
	}
}

// A target that does not answer within its timeout is retried; the
// attempt records the timeout, not a status code.
func TestEngineTimeout(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Read the body first: only then does net/http notice the client
		// going away and cancel the request's context.
		_, _ = io.Copy(io.Discard, r.Body)
		<-r.Context().Done() // hangs until the relay gives up
	}))
	defer srv.Close()
	st := openTestStore(t, t.TempDir())
	tg := testTarget("slow", srv.URL)
	tg.Timeout = 100 * time.Millisecond
	e := startEngine(t, st, nil, tg)
	for _, a := range deliverDead(t, st, e, "slow") {
		if a.StatusCode != 0 || !strings.Contains(a.Error, "timeout") {
			t.Errorf("attempt recorded as %d %q, want a timeout", a.StatusCode, a.Error)
		}
		if a.LatencyMS < 100 {
			t.Errorf("attempt latency %vms, want at least the 100ms timeout", a.LatencyMS)
		}
	}
}

// Connection errors are retried, and the recorded error never contains the
// target URL (its userinfo or query may hold credentials).
func TestEngineConnectionErrorRedacted(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now
	st := openTestStore(t, t.TempDir())
	e := startEngine(t, st, nil, testTarget("down", "http://user:pw-s3cret@"+addr+"/hook?token=q-s3cret"))
	for _, a := range deliverDead(t, st, e, "down") {
		if a.Error == "" || a.StatusCode != 0 {
			t.Errorf("attempt recorded as %d %q, want a connection error", a.StatusCode, a.Error)
		}
		if strings.Contains(a.Error, "s3cret") || strings.Contains(a.Error, addr) {
			t.Errorf("attempt error %q leaks the target URL", a.Error)
		}
	}
}

// Stop abandons an attempt that outlives its deadline; the delivery stays
// queued, without a recorded attempt, and a new engine delivers it.
func TestEngineStopLeavesInFlightQueued(t *testing.T) {
	release := make(chan struct{})
	var arrived atomic.Int64
	hang := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		arrived.Add(1)
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer hang.Close()
	defer close(release)
	st := openTestStore(t, t.TempDir())
	tg := testTarget("t", hang.URL)
	tg.Timeout = 30 * time.Second
	e := deliver.New(st, []deliver.Target{tg}, deliver.Options{})
	e.Start(context.Background())
	id := enqueue(t, st, "t")
	e.Notify("t")
	waitArrived(t, &arrived, "the attempt")
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := e.Stop(ctx); err == nil {
		t.Error("Stop returned nil while an attempt was still running past its deadline")
	}
	_, _, d, err := st.LoadDelivery(context.Background(), id, "t")
	if err != nil {
		t.Fatal(err)
	}
	if d.Status != delivery.Pending || len(d.Attempts) != 0 || d.Tries != 0 {
		t.Errorf("after Stop: %s with %d attempts (tries %d), want pending with none", d.Status, len(d.Attempts), d.Tries)
	}
	if n, err := st.QueueDepth(context.Background(), "t"); err != nil || n != 1 {
		t.Errorf("queue depth after Stop = %d (%v), want 1", n, err)
	}

	ok := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer ok.Close()
	e2 := startEngine(t, st, nil, testTarget("t", ok.URL))
	e2.Notify("t")
	d = waitDelivery(t, st, id, "t", settled)
	if d.Status != delivery.Delivered || len(d.Attempts) != 1 {
		t.Errorf("after restart: %s after %d attempts, want delivered after 1", d.Status, len(d.Attempts))
	}
	if n, err := st.QueueDepth(context.Background(), "t"); err != nil || n != 0 {
		t.Errorf("queue depth after delivery = %d (%v), want 0", n, err)
	}
}

// A replay requested while an attempt is in flight supersedes it: the
// stale attempt is recorded (RecordAttempt says ErrSuperseded) but neither
// settles the delivery nor uses up the replay's attempts.
func TestRecordAttemptSupersededByReplay(t *testing.T) {
	ctx := context.Background()
	st := openTestStore(t, t.TempDir())
	id := enqueue(t, st, "t")
	dues, _, err := st.DueDeliveries(context.Background(), "t", time.Now(), 10, nil)
	if err != nil || len(dues) != 1 {
		t.Fatalf("due deliveries = %v, %v; want the new one", dues, err)
	}
	// The attempt is in flight when the replay comes.
	if err := st.Requeue(ctx, id, "t", time.Now()); err != nil {
		t.Fatal(err)
	}
	r := delivery.Result{Attempt: delivery.Attempt{At: time.Now(), StatusCode: http.StatusServiceUnavailable}, Outcome: delivery.Permanent}
	if _, err := st.RecordAttempt(ctx, id, "t", dues[0].Key, r, delivery.Policy{MaxAttempts: 1}); !errors.Is(err, storage.ErrSuperseded) {
		t.Fatalf("RecordAttempt of a superseded attempt: %v, want ErrSuperseded", err)
	}
	_, _, d, err := st.LoadDelivery(context.Background(), id, "t")
	if err != nil {
		t.Fatal(err)
	}
	if d.Status != delivery.Pending || !d.Replay || len(d.Attempts) != 1 {
		t.Errorf("delivery %s (replay %v) with %d attempts, want the pending replay with the stale attempt recorded", d.Status, d.Replay, len(d.Attempts))
	}
	if d.Tries != 0 {
		t.Errorf("tries = %d, want 0: the stale attempt is not one of the replay's", d.Tries)
	}
	if n, err := st.QueueDepth(context.Background(), "t"); err != nil || n != 1 {
		t.Errorf("queue depth = %d (%v), want the replay's entry", n, err)
	}
}

// countingStore counts the engine's queue scans.
type countingStore struct {
	*store.Store
	scans atomic.Int64
}

func (c *countingStore) DueDeliveries(ctx context.Context, target string, now time.Time, limit int, skip func(string) bool) ([]storage.Due, time.Time, error) {
	c.scans.Add(1)
	return c.Store.DueDeliveries(ctx, target, now, limit, skip)
}

// Retries are scheduled in memory: a target that keeps failing does not
// make its dispatcher rescan the store for every retry, also not after a
// scan (here on Notify, as a replay does; also at start and every Rescan)
// has seen the retries' future queue entries.
func TestEngineRetriesDoNotRescan(t *testing.T) {
	const events, attempts = 40, 10
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	defer srv.Close()
	st := &countingStore{Store: openTestStore(t, t.TempDir())}
	var ids []string
	for range events {
		ids = append(ids, enqueue(t, st.Store, "t"))
	}
	tg := testTarget("t", srv.URL)
	tg.MaxInFlight, tg.MaxAttempts = 4, attempts
	tg.InitialBackoff, tg.MaxBackoff = 5*time.Millisecond, 20*time.Millisecond
	e := deliver.New(st, []deliver.Target{tg}, deliver.Options{})
	e.Start(context.Background())
	t.Cleanup(func() { _ = e.Stop(context.Background()) })
	for _, id := range ids {
		waitDelivery(t, st.Store, id, "t", func(d *delivery.Delivery) bool { return len(d.Attempts) > 0 })
	}
	e.Notify("t")
	for _, id := range ids {
		if d := waitDelivery(t, st.Store, id, "t", settled); len(d.Attempts) != attempts {
			t.Errorf("delivery of %s: %s after %d attempts, want %d", id, d.Status, len(d.Attempts), attempts)
		}
	}
	if n := st.scans.Load(); n > events {
		t.Errorf("%d queue scans for %d attempts, want a handful (retries are scheduled in memory)", n, events*attempts)
	}
	t.Logf("%d queue scans for %d attempts", st.scans.Load(), events*attempts)
}

// A replay requested while the delivery's attempt is in flight is sent as
// soon as that attempt ends, not at the next periodic rescan.
func TestEngineReplayDuringAttempt(t *testing.T) {
	release := make(chan struct{})
	var arrived atomic.Int64
	var replays atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		if r.Header.Get("Hookrelay-Replay") == "true" {
			replays.Add(1)
			return
		}
		arrived.Add(1)
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	st := openTestStore(t, t.TempDir())
	tg := testTarget("t", srv.URL)
	tg.Timeout = 30 * time.Second
	e := deliver.New(st, []deliver.Target{tg}, deliver.Options{Rescan: time.Hour})
	e.Start(context.Background())
	t.Cleanup(func() { _ = e.Stop(context.Background()) })
	defer close(release)
	id := enqueue(t, st, "t")
	e.Notify("t")
	waitArrived(t, &arrived, "the first attempt")
	if err := st.Requeue(context.Background(), id, "t", time.Now()); err != nil {
		t.Fatal(err)
	}
	e.Notify("t")
	release <- struct{}{} // the first attempt ends (200) after the replay was queued
	d := waitDelivery(t, st, id, "t", func(d *delivery.Delivery) bool { return len(d.Attempts) == 2 && !d.Replay })
	if d.Status != delivery.Delivered || !d.Attempts[1].Replay {
		t.Errorf("delivery %s with attempts %+v, want delivered by the replay", d.Status, d.Attempts)
	}
	if n := replays.Load(); n != 1 {
		t.Errorf("target received %d replays, want 1", n)
	}
}

// elsewhereStore is a shared store whose Lease refuses the deliveries of
// the events in other with storage.ErrNotHere (another node makes them),
// counting the refusals.
type elsewhereStore struct {
	*store.Store
	other   map[string]bool
	refused atomic.Int64
}

func (s *elsewhereStore) Lease(_ context.Context, target, id string, _ time.Duration, _ int) (func(), error) {
	if s.other[id] {
		s.refused.Add(1)
		return nil, fmt.Errorf("%s/%s: %w", target, id, storage.ErrNotHere)
	}
	return func() {}, nil
}

// A delivery another node makes (Lease: storage.ErrNotHere) is not
// attempted and is forgotten at once, not retried every leaseRetry: it
// stays queued in the store for that node, while the others are made.
func TestEngineLeavesOtherNodesDeliveries(t *testing.T) {
	var got sync.Map
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got.Store(r.Header.Get("webhook-id"), true)
	}))
	defer srv.Close()
	st := &elsewhereStore{Store: openTestStore(t, t.TempDir()), other: map[string]bool{}}
	mine, theirs := enqueue(t, st.Store, "t"), enqueue(t, st.Store, "t")
	st.other[theirs] = true
	e := runEngine(t, st, deliver.Options{Rescan: time.Hour}, testTarget("t", srv.URL))
	waitDelivery(t, st.Store, mine, "t", settled)
	time.Sleep(2500 * time.Millisecond) // past leaseRetry: a held delivery would be asked again
	if n := st.refused.Load(); n != 1 {
		t.Errorf("lease of the other node's delivery asked %d times, want once (then forgotten)", n)
	}
	if _, _, d, err := st.LoadDelivery(context.Background(), theirs, "t"); err != nil || d.Status != delivery.Pending || len(d.Attempts) != 0 {
		t.Errorf("the other node's delivery: %+v, %v; want pending, not attempted", d, err)
	}
	if n, err := st.QueueDepth(context.Background(), "t"); err != nil || n != 1 {
		t.Errorf("queue depth %d (%v), want 1: the other node's entry stays", n, err)
	}
	if e.InFlight("t") != 0 {
		t.Errorf("in flight %d, want 0", e.InFlight("t"))
	}
}
