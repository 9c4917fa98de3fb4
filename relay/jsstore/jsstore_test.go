package jsstore

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/hookrelay/hookrelay/relay/delivery"
	"github.com/hookrelay/hookrelay/relay/jsstore/jstest"
	"github.com/hookrelay/hookrelay/relay/storage"
	"github.com/nats-io/nats.go"
)

var bg = context.Background()

func open(t *testing.T, urls []string, name string, replicas int) *Store {
	t.Helper()
	st, err := Open(bg, Options{URLs: urls, Name: name, Replicas: replicas, Retention: 48 * time.Hour, DedupeWindow: 24 * time.Hour})
	if err != nil {
		t.Fatalf("Open %s on %v: %v", name, urls, err)
	}
	t.Cleanup(func() { st.Close(bg) })
	return st
}

func webhook(key string, targets ...string) *storage.Event {
	at := time.Now().UTC().Add(-time.Minute).Truncate(time.Millisecond)
	return &storage.Event{Source: "src", Provider: "sketchpen", Type: "video.completed", Subject: key,
		Time: at, ReceivedAt: at, DedupeKey: key, Targets: targets}
}

// only checks that exactly one event with key is stored, with a pending
// delivery queued per target, and returns its id.
func only(t *testing.T, st *Store, key string, targets ...string) string {
	t.Helper()
	var got []*storage.EventView
	if err := st.Each(bg, storage.Filter{}, func(v *storage.EventView) bool {
		if v.DedupeKey == key {
			got = append(got, v)
		}
		return true
	}); err != nil {
		t.Fatalf("Each: %v", err)
	}
	if len(got) != 1 {
		t.Fatalf("key %s: %d events stored, want 1", key, len(got))
	}
	v := got[0]
	if len(v.Deliveries) != len(targets) || v.Status != delivery.EventPending {
		t.Errorf("key %s: event %s status %s deliveries %+v, want %d pending", key, v.ID, v.Status, v.Deliveries, len(targets))
	}
	for _, tg := range targets {
		dues, _, err := st.DueDeliveries(bg, tg, time.Now(), 100, nil)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, d := range dues {
			if d.EventID == v.ID {
				n++
			}
		}
		if n != 1 {
			t.Errorf("key %s: %d queue entries for %s, want 1", key, n, tg)
		}
	}
	return v.ID
}

var errCrash = errors.New("injected crash")

// TestCrashPoints: the node dies at each step of Ingest (its connection
// closed there); the provider's retry through a fresh Store ends with
// exactly one stored event with its deliveries queued, and the retry's
// answer is right for what was stored.
func TestCrashPoints(t *testing.T) {
	urls := jstest.Single(t)
	for _, tc := range []struct {
		point   string
		wantDup bool // the retry finds the crashed call's event
	}{{"claim", false}, {"batch", false}, {"commit", true}} {
		t.Run(tc.point, func(t *testing.T) {
			name := "crash-" + tc.point
			a := open(t, urls, name, 1)
			a.hook = func(p string) error {
				if p == tc.point {
					a.nc.Flush() // what was published reached the server
					a.nc.Close() // the node is gone: nothing more leaves it
					return errCrash
				}
				return nil
			}
			ev := webhook("k", "media", "archive")
			if res, err := a.Ingest(bg, ev, []byte(`{"n":1}`)); !errors.Is(err, errCrash) {
				t.Fatalf("Ingest with a crash at %s = %+v, %v; want the crash", tc.point, res, err)
			}
			firstID := ev.ID
			b := open(t, urls, name, 1)
			res, err := b.Ingest(bg, webhook("k", "media", "archive"), []byte(`{"n":1}`))
			if err != nil {
				t.Fatalf("retry: %v", err)
			}
			if res.Duplicate != tc.wantDup {
				t.Errorf("retry = %+v, want duplicate %v", res, tc.wantDup)
			}
			if tc.wantDup && res.ID != firstID {
				t.Errorf("retry id %s, want the crashed call's %s", res.ID, firstID)
			}
			id := only(t, b, "k", "archive", "media")
			if id != res.ID {
				t.Errorf("stored %s, retry answered %s", id, res.ID)
			}
			// And a further repeat is a duplicate of it.
			if r2, err := b.Ingest(bg, webhook("k", "media"), nil); err != nil || !r2.Duplicate || r2.ID != id {
				t.Errorf("repeat = %+v, %v; want a duplicate of %s", r2, err, id)
			}
		})
	}
}

// TestLostAck: a commit that was stored but whose ack the call did not
// see (timeout) is retried by the same call, whose claim then conflicts
// with its own id: the answer is "accepted" with its deliveries, and one
// event is stored.
func TestLostAck(t *testing.T) {
	st := open(t, jstest.Single(t), "lost-ack", 1)
	lost := 0
	st.hook = func(p string) error {
		if p == "ack" && lost == 0 {
			lost++
			return nats.ErrTimeout
		}
		return nil
	}
	ev := webhook("k", "media")
	res, err := st.Ingest(bg, ev, nil)
	if err != nil || res.Duplicate || res.ID != ev.ID || len(res.Queued) != 1 || lost != 1 {
		t.Fatalf("Ingest after a lost ack = %+v, %v (lost %d); want accepted with one queued", res, err, lost)
	}
	if id := only(t, st, "k", "media"); id != res.ID {
		t.Errorf("stored %s, answered %s", id, res.ID)
	}
}

func TestCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("3-server cluster")
	}
	c := jstest.NewCluster(t, 3)
	// One Store per server, each connected to that server only.
	var nodes []*Store
	for i := range 3 {
		nodes = append(nodes, open(t, []string{c.URL(i)}, "hookrelay", 3))
	}

	t.Run("DuplicateAcrossNodes", func(t *testing.T) {
		a, cc := nodes[0], nodes[2]
		first, err := a.Ingest(bg, webhook("x", "media"), []byte(`{}`))
		if err != nil || first.Duplicate {
			t.Fatalf("through A: %+v %v", first, err)
		}
		res, err := cc.Ingest(bg, webhook("x", "media", "archive"), []byte(`{}`))
		if err != nil || !res.Duplicate || res.ID != first.ID || len(res.Queued) != 0 {
			t.Fatalf("through C: %+v %v, want a duplicate of %s", res, err, first.ID)
		}
		if v, _, err := cc.Get(bg, first.ID); err != nil || v.ID != first.ID {
			t.Fatalf("Get through C: %+v %v", v, err)
		}
	})

	t.Run("FiftyAtOnce", func(t *testing.T) {
		results := make([]storage.Result, 50)
		errs := make([]error, 50)
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := range 50 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				results[i], errs[i] = nodes[i%3].Ingest(bg, webhook("fifty", "media"), []byte(`{}`))
			}()
		}
		close(start)
		wg.Wait()
		accepted := 0
		var id string
		for i := range 50 {
			if errs[i] != nil {
				t.Fatalf("#%d: %v", i, errs[i])
			}
			if !results[i].Duplicate {
				accepted++
				id = results[i].ID
			}
		}
		if accepted != 1 {
			t.Fatalf("%d accepted, want 1", accepted)
		}
		for i := range 50 {
			if results[i].ID != id {
				t.Errorf("#%d answered id %s, want %s", i, results[i].ID, id)
			}
		}
		if got := only(t, nodes[1], "fifty", "media"); got != id {
			t.Errorf("stored %s, want %s", got, id)
		}
	})

	t.Run("Lease", func(t *testing.T) {
		// Every delivery has one owner among the nodes: its lease is
		// granted there and refused with ErrNotHere elsewhere.
		for _, n := range nodes {
			if _, _, err := n.DueDeliveries(bg, "media", time.Now(), 1, nil); err != nil {
				t.Fatal(err)
			}
		}
		for i := range 32 {
			id := fmt.Sprintf("E%d", i)
			waitOwned(t, nodes, "media", id)
			got := 0
			for _, n := range nodes {
				rel, err := n.Lease(bg, "media", id, time.Second, 0)
				switch {
				case err == nil:
					got++
					if _, err := n.Lease(bg, "media", id, time.Second, 0); !errors.Is(err, ErrLeased) {
						t.Fatalf("second lease of %s on its owner = %v, want ErrLeased", id, err)
					}
					rel()
					rel() // twice is harmless
				case !errors.Is(err, storage.ErrNotHere):
					t.Fatalf("lease %s: %v", id, err)
				}
			}
			if got != 1 {
				t.Fatalf("%s leased on %d nodes, want 1", id, got)
			}
		}
	})
}

// TestKillOne: the stream leader's server is killed while writers ingest
// through all three; Ingest through the survivors keeps working, nothing
// acknowledged is lost, every stored event has its queue entry, and the
// killed server catches up after its restart.
func TestKillOne(t *testing.T) {
	if testing.Short() {
		t.Skip("3-server cluster")
	}
	c := jstest.NewCluster(t, 3)
	var nodes []*Store
	for i := range 3 {
		nodes = append(nodes, open(t, []string{c.URL(i)}, "hookrelay", 3))
	}
	info, err := nodes[0].stream.Info(bg)
	if err != nil {
		t.Fatal(err)
	}
	victim := 0
	fmt.Sscanf(info.Cluster.Leader, "n%d", &victim)

	var mu sync.Mutex
	acked := map[string]bool{}
	okAfterKill := map[int]int{} // node -> acks after the kill
	var killed sync.WaitGroup
	killed.Add(1)
	isKilled := false
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for g := range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			node := g % 3
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				ctx, cancel := context.WithTimeout(bg, 3*time.Second)
				res, err := nodes[node].Ingest(ctx, webhook(fmt.Sprintf("w%d-%d", g, i), "media"), []byte("x"))
				cancel()
				time.Sleep(40 * time.Millisecond) // paced: the checks below read every event
				if err != nil {
					continue
				}
				mu.Lock()
				if res.Duplicate {
					t.Errorf("writer %d key %d: duplicate of %s", g, i, res.ID)
				}
				acked[res.ID] = true
				if isKilled {
					okAfterKill[node]++
				}
				mu.Unlock()
			}
		}()
	}
	time.Sleep(500 * time.Millisecond)
	c.Kill(victim)
	mu.Lock()
	isKilled = true
	mu.Unlock()
	// Leaders move within the election timeout (4-9 s).
	deadline := time.Now().Add(20 * time.Second)
	for {
		time.Sleep(200 * time.Millisecond)
		mu.Lock()
		done := okAfterKill[(victim+1)%3] >= 10 && okAfterKill[(victim+2)%3] >= 10
		mu.Unlock()
		if done || time.Now().After(deadline) {
			break
		}
	}
	close(stop)
	wg.Wait()
	for _, n := range []int{(victim + 1) % 3, (victim + 2) % 3} {
		if okAfterKill[n] < 10 {
			t.Errorf("survivor n%d acknowledged %d webhooks after the kill, want at least 10", n, okAfterKill[n])
		}
	}
	check := func(st *Store, what string) {
		t.Helper()
		have := map[string]bool{}
		if err := st.Each(bg, storage.Filter{}, func(v *storage.EventView) bool {
			have[v.ID] = v.Status == delivery.EventPending && len(v.Deliveries) == 1
			return true
		}); err != nil {
			t.Fatal(err)
		}
		for id := range acked {
			if !have[id] {
				t.Errorf("%s: acknowledged event %s missing or without its pending delivery", what, id)
			}
		}
		stored := len(have)
		// Stored but unacknowledged (timed out) events may exist; no
		// acknowledged one may be missing.
		if stored < len(acked) {
			t.Errorf("%s: %d events stored, %d acknowledged", what, stored, len(acked))
		}
		if d, err := st.QueueDepth(bg, "media"); err != nil || d != stored {
			t.Errorf("%s: queue depth %d %v, want one per stored event (%d)", what, d, err, stored)
		}
		t.Logf("%s: %d acknowledged, %d stored", what, len(acked), stored)
	}
	check(nodes[(victim+1)%3], "survivor")
	c.Restart(victim)
	deadline = time.Now().Add(15 * time.Second)
	for nodes[victim].Ready() != nil && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	check(nodes[victim], "restarted node")
}

// TestReadyWithoutQuorum: with two of three servers gone, Ready fails on
// the survivor (within the RAFT heartbeat window), and comes back once a
// second server returns.
func TestReadyWithoutQuorum(t *testing.T) {
	if testing.Short() {
		t.Skip("3-server cluster")
	}
	c := jstest.NewCluster(t, 3)
	st := open(t, []string{c.URL(0)}, "hookrelay", 3)
	if err := st.Ready(); err != nil {
		t.Fatalf("Ready: %v", err)
	}
	c.Kill(1)
	c.Kill(2)
	deadline := time.Now().Add(15 * time.Second)
	for st.Ready() == nil {
		if time.Now().After(deadline) {
			t.Fatal("Ready still nil 15s after losing quorum")
		}
		time.Sleep(200 * time.Millisecond)
	}
	if err := st.Ready(); !errors.Is(err, storage.ErrUnavailable) {
		t.Errorf("Ready without quorum = %v, want ErrUnavailable", err)
	}
	c.Restart(1)
	deadline = time.Now().Add(20 * time.Second)
	for {
		err := st.Ready()
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("Ready not back with quorum: %v", err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if _, err := st.Ingest(bg, webhook("back", "media"), nil); err != nil {
		t.Errorf("Ingest with quorum back: %v", err)
	}
}

// TestGroupWithDuplicates: a group commit holding new keys and keys
// already claimed is split until each duplicate is alone: every new key is
// accepted once, every repeat answers the first id.
func TestGroupWithDuplicates(t *testing.T) {
	st := open(t, jstest.Single(t), "groups", 1)
	first, err := st.Ingest(bg, webhook("dup", "media"), nil)
	if err != nil {
		t.Fatal(err)
	}
	const n = 60
	results := make([]storage.Result, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			key := fmt.Sprintf("new-%d", i)
			if i%4 == 0 {
				key = "dup"
			}
			<-start
			results[i], errs[i] = st.Ingest(bg, webhook(key, "media"), nil)
		}()
	}
	close(start)
	wg.Wait()
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("#%d: %v", i, errs[i])
		}
		if dup := i%4 == 0; results[i].Duplicate != dup || dup && results[i].ID != first.ID {
			t.Errorf("#%d = %+v, want duplicate %v", i, results[i], dup)
		}
	}
	if d, err := st.QueueDepth(bg, "media"); err != nil || d != 1+n-n/4 {
		t.Errorf("queue depth %d %v, want %d", d, err, 1+n-n/4)
	}
}

// TestDedupeWindow: a claim is remembered for the dedupe window and
// expires after it (by TTL, never deleted): the key is then new again,
// while the first event stays for its retention.
func TestDedupeWindow(t *testing.T) {
	urls := jstest.Single(t)
	st, err := Open(bg, Options{URLs: urls, Name: "window", DedupeWindow: time.Second, Retention: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close(bg)
	first, err := st.Ingest(bg, webhook("w", "media"), nil)
	if err != nil || first.Duplicate {
		t.Fatalf("first: %+v %v", first, err)
	}
	if r, err := st.Ingest(bg, webhook("w", "media"), nil); err != nil || !r.Duplicate || r.ID != first.ID {
		t.Fatalf("within the window: %+v %v, want a duplicate of %s", r, err, first.ID)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		time.Sleep(250 * time.Millisecond)
		r, err := st.Ingest(bg, webhook("w", "media"), nil)
		if err != nil {
			t.Fatal(err)
		}
		if !r.Duplicate {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("claim still held 10s after a 1s window")
		}
	}
	if _, _, err := st.Get(bg, first.ID); err != nil {
		t.Errorf("first event after its claim expired: %v", err)
	}
}

// TestReplayAfterFinish: leases end with their release (there is no
// lease record to expire), so a finished delivery replayed is leased
// again at once; a second lease while one is held is refused; a lease
// longer than the shard's ownership lasts is refused until the next
// tick extends the ownership.
func TestReplayAfterFinish(t *testing.T) {
	st := open(t, jstest.Single(t), "replay-finished", 1)
	res, err := st.Ingest(bg, webhook("k1", "t"), []byte("{}"))
	if err != nil {
		t.Fatal(err)
	}
	id := res.ID
	rel, err := st.Lease(bg, "t", id, 10*time.Second, 4)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := st.LoadDelivery(bg, id, "t"); err != nil {
		t.Fatal(err)
	}
	ok := delivery.Result{Attempt: delivery.Attempt{At: time.Now(), StatusCode: 200}, Outcome: delivery.OK}
	if _, err := st.RecordAttempt(bg, id, "t", res.Queued[0].Key, ok, delivery.Policy{}); err != nil {
		t.Fatal(err)
	}
	rel()
	if err := st.Requeue(bg, id, "t", time.Now()); err != nil {
		t.Fatal(err)
	}
	rel, err = st.Lease(bg, "t", id, 10*time.Second, 4)
	if err != nil {
		t.Fatalf("lease of the replayed delivery: %v, want it at once", err)
	}
	if _, err := st.Lease(bg, "t", id, 10*time.Second, 4); !errors.Is(err, ErrLeased) {
		t.Fatalf("lease while another is held = %v, want ErrLeased", err)
	}
	rel()
	// An attempt that may take an hour: not under ownership that lasts
	// 20 s; the next ticks make it last long enough.
	if _, err := st.Lease(bg, "t", id, time.Hour, 4); !errors.Is(err, ErrLeased) {
		t.Fatalf("lease of an hour under 20 s of ownership = %v, want ErrLeased", err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		rel, err := st.Lease(bg, "t", id, time.Hour, 4)
		if err == nil {
			rel()
			break
		}
		if !errors.Is(err, ErrLeased) || time.Now().After(deadline) {
			t.Fatalf("lease of an hour 10 s later: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
