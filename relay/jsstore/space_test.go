package jsstore

import (
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hookrelay/hookrelay/relay/delivery"
	"github.com/hookrelay/hookrelay/relay/jsstore/jstest"
	"github.com/hookrelay/hookrelay/relay/storage"
)

// fakeSpace is a SpaceSource a test turns low and back.
type fakeSpace struct {
	path string
	low  atomic.Bool
}

func (f *fakeSpace) Err() error {
	if !f.low.Load() {
		return nil
	}
	return &storage.LowSpaceError{Path: f.path, Free: 1 << 20, Min: 256 << 20}
}

func (f *fakeSpace) Space() (uint64, bool, bool) {
	if f.low.Load() {
		return 1 << 20, true, true
	}
	return 10 << 30, false, true
}

// TestLowSpaceClusterWide: one node's disk nearly full makes every node
// refuse new events, naming that node, within a few seconds; reads and
// deliveries go on; events taken before are kept; when the disk has space
// again, or the low node dies (its claim expires), every node takes
// events again.
func TestLowSpaceClusterWide(t *testing.T) {
	if testing.Short() {
		t.Skip("3-server cluster")
	}
	c := jstest.NewCluster(t, 3)
	spaces := make([]*fakeSpace, 3)
	nodes := make([]*Store, 3)
	leases := make([]*NodeLease, 3)
	for i := range 3 {
		spaces[i] = &fakeSpace{path: fmt.Sprintf("/srv/n%d/nats", i)}
		st, err := Open(bg, Options{URLs: []string{c.URL(i)}, Name: "space", Replicas: 3, Space: spaces[i]})
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		t.Cleanup(func() { st.Close(bg) })
		nodes[i] = st
		l, err := st.ClaimNode(bg, NodeClaim{Node: fmt.Sprintf("n%d", i), Host: "h", PID: i, Since: time.Now()},
			NodeClaimOptions{Refresh: time.Second, TTL: 3 * time.Second})
		if err != nil {
			t.Fatalf("ClaimNode: %v", err)
		}
		t.Cleanup(l.Release)
		leases[i] = l
	}
	n := 0
	ingest := func(i int) (storage.Result, error) {
		n++
		return nodes[i].Ingest(bg, webhook(fmt.Sprintf("space-%d", n), "sink"), []byte(`{}`))
	}
	// waitAll waits until every node's Ingest gives an error matching want
	// (nil: success), at most 10 s.
	waitAll := func(t *testing.T, what string, want func(error) bool) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for i := range 3 {
			for {
				_, err := ingest(i)
				if want(err) {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("node n%d: %s: still %v after 10s", i, what, err)
				}
				time.Sleep(100 * time.Millisecond)
			}
		}
	}
	refusedFor := func(node string) func(error) bool {
		return func(err error) bool {
			var lse *storage.LowSpaceError
			return errors.Is(err, storage.ErrLowSpace) && errors.Is(err, storage.ErrUnavailable) &&
				errors.As(err, &lse) && lse.Path == "/srv/"+node+"/nats"
		}
	}
	ok := func(err error) bool { return err == nil }

	before, err := ingest(1)
	if err != nil {
		t.Fatalf("Ingest: %v", err)
	}

	spaces[0].low.Store(true)
	// The low node itself refuses at once.
	if _, err := ingest(0); !refusedFor("n0")(err) {
		t.Fatalf("Ingest on the low node: %v, want its LowSpaceError", err)
	}
	waitAll(t, "refusal for n0's disk", refusedFor("n0"))
	if _, err := ingest(2); err == nil || !strings.Contains(err.Error(), "node n0: disk nearly full: 1.0 MiB free on the filesystem of /srv/n0/nats") {
		t.Errorf("Ingest on n2: %v, want it to name n0 and its figures", err)
	}
	if err := nodes[2].Ready(); !refusedFor("n0")(err) {
		t.Errorf("Ready on n2: %v, want n0's LowSpaceError", err)
	}
	if free, low, known := nodes[0].Space(); !low || !known || free != 1<<20 {
		t.Errorf("Space on n0: %d %v %v", free, low, known)
	}
	if _, low, _ := nodes[1].Space(); low {
		t.Error("Space on n1 says low: it is n0's disk")
	}
	// What was taken before is kept, read and delivered as usual.
	if _, _, err := nodes[2].Get(bg, before.ID); err != nil {
		t.Errorf("Get of an event taken before: %v", err)
	}
	due := before.Queued[0]
	if _, _, _, err := nodes[1].LoadDelivery(bg, due.EventID, "sink"); err != nil {
		t.Fatalf("LoadDelivery: %v", err)
	}
	r := delivery.Result{Attempt: delivery.Attempt{At: time.Now(), StatusCode: 200}, Outcome: delivery.OK}
	if d, err := nodes[1].RecordAttempt(bg, due.EventID, "sink", due.Key, r, delivery.Policy{}); err != nil || d.Status != delivery.Delivered {
		t.Errorf("RecordAttempt while a disk is low: %+v, %v", d, err)
	}

	spaces[0].low.Store(false)
	waitAll(t, "taking events again", ok)
	if err := nodes[2].Ready(); err != nil {
		t.Errorf("Ready on n2 after: %v", err)
	}

	// A node that dies while its disk is low stops counting once its
	// claim expires.
	spaces[1].low.Store(true)
	waitAll(t, "refusal for n1's disk", func(err error) bool { return errors.Is(err, storage.ErrLowSpace) })
	leases[1].abandon() // stops refreshing, as a killed node would
	nodes[1].Close(bg)
	deadline := time.Now().Add(15 * time.Second)
	for _, i := range []int{0, 2} {
		for {
			_, err := ingest(i)
			if err == nil {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("node n%d after n1 died: still %v", i, err)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
}

// TestHealthInReady: Options.Health failing makes Ready fail with its
// reason (an ErrUnavailable); events are still taken.
func TestHealthInReady(t *testing.T) {
	var sick atomic.Bool
	st, err := Open(bg, Options{URLs: jstest.Single(t), Name: "health", Health: func() error {
		if sick.Load() {
			return errors.New("JetStream is off here")
		}
		return nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close(bg)
	if err := st.Ready(); err != nil {
		t.Fatalf("Ready: %v", err)
	}
	sick.Store(true)
	if err := st.Ready(); !errors.Is(err, storage.ErrUnavailable) || !strings.Contains(err.Error(), "JetStream is off here") {
		t.Errorf("Ready with Health failing: %v", err)
	}
	if _, err := st.Ingest(bg, webhook("health-1"), []byte(`{}`)); err != nil {
		t.Errorf("Ingest with Health failing: %v", err)
	}
}
