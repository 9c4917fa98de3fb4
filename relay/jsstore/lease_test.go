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
)

// ownedBits is the set of target's shards st may start attempts under.
func ownedBits(st *Store, target string) uint32 {
	m := st.shards.owned.Load()
	if m == nil {
		return 0
	}
	return (*m)[target]
}

// waitOwned waits until some Store of stores owns the shard of id for
// target.
func waitOwned(t *testing.T, stores []*Store, target, id string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		for _, st := range stores {
			if st.owns(target, id) {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no Store owns the shard of %s/%s after 20 s", target, id)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// waitSplit waits up to within until stores own every shard of target
// between them, each no more than its share, and returns each one's set.
func waitSplit(t *testing.T, within time.Duration, stores []*Store, target string) []uint32 {
	t.Helper()
	share := (numShards + len(stores) - 1) / len(stores)
	deadline := time.Now().Add(within)
	for {
		sets := make([]uint32, len(stores))
		var all uint32
		disjoint, fair := true, true
		for i, st := range stores {
			sets[i] = ownedBits(st, target)
			disjoint = disjoint && all&sets[i] == 0
			all |= sets[i]
			fair = fair && popcount(sets[i]) <= share && sets[i] != 0
		}
		if !disjoint {
			t.Fatalf("two Stores own the same shard of %s: %016b", target, sets)
		}
		if all == 1<<numShards-1 && fair {
			return sets
		}
		if time.Now().After(deadline) {
			t.Fatalf("shards of %s not split after %v: %016b", target, within, sets)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func popcount(x uint32) int {
	n := 0
	for ; x != 0; x &= x - 1 {
		n++
	}
	return n
}

// TestShards: Stores sharing a stream split each target's shards fairly
// and disjointly; a lone Store owns them all; every delivery is leased by
// its shard's owner only; the Stores' leases together never exceed
// max_in_flight; Ingest gives events ids of its own shards; a closed
// Store's shards go to the others at once, a dead one's after their ttl.
func TestShards(t *testing.T) {
	urls := jstest.Single(t)
	a := open(t, urls, "shards", 1)
	if _, _, err := a.DueDeliveries(bg, "t", time.Now(), 1, nil); err != nil {
		t.Fatal(err)
	}
	if got := ownedBits(a, "t"); got != 1<<numShards-1 {
		t.Fatalf("a lone Store owns %016b, want every shard", got)
	}

	b := open(t, urls, "shards", 1)
	c := open(t, urls, "shards", 1)
	stores := []*Store{a, b, c}
	for _, st := range stores[1:] {
		if _, _, err := st.DueDeliveries(bg, "t", time.Now(), 1, nil); err != nil {
			t.Fatal(err)
		}
	}
	start := time.Now()
	waitSplit(t, 30*time.Second, stores, "t")
	t.Logf("three Stores split the shards in %v", time.Since(start).Round(time.Millisecond))

	// Each delivery has one owner, whose Ingest gives it a shard of its own.
	for i := range 16 {
		owner := stores[i%3]
		r, err := owner.Ingest(bg, webhook(fmt.Sprintf("k%d", i), "t"), nil)
		if err != nil {
			t.Fatal(err)
		}
		if !owner.owns("t", r.ID) {
			t.Fatalf("Ingest on a Store gave %s (shard %d), not one of its shards %016b", r.ID, shardOf(r.ID), ownedBits(owner, "t"))
		}
		got := 0
		for _, st := range stores {
			rel, err := st.Lease(bg, "t", r.ID, time.Second, 0)
			if err == nil {
				got++
				rel()
			} else if !errors.Is(err, storage.ErrNotHere) {
				t.Fatal(err)
			}
		}
		if got != 1 {
			t.Fatalf("%s leased on %d Stores, want 1", r.ID, got)
		}
		// The others' queue reads leave it to its owner.
		for _, st := range stores {
			dues, _, err := st.DueDeliveries(bg, "t", time.Now(), 100, nil)
			if err != nil {
				t.Fatal(err)
			}
			seen := false
			for _, d := range dues {
				seen = seen || d.EventID == r.ID
			}
			if seen != (st == owner) {
				t.Fatalf("DueDeliveries on a Store (owner %v) lists %s: %v", st == owner, r.ID, seen)
			}
		}
	}

	t.Run("MaxInFlight", func(t *testing.T) {
		// max_in_flight 4 across three Stores. The 4 slots sit in 4 shards
		// (3, 7, 11, 15): they get owned, and no Store keeps shards
		// without capacity unless it has one with.
		for _, st := range stores {
			if rel, err := st.Lease(bg, "m", "X", time.Second, 4); err == nil {
				rel()
			}
		}
		waitSplitCap(t, stores, "m", 4)
		// Hold every lease they grant on 200 ids at once: no more than 4
		// are granted together.
		var mu sync.Mutex
		var rels []func()
		var wg sync.WaitGroup
		for i := range 200 {
			id := fmt.Sprintf("M%03d", i)
			for _, st := range stores {
				wg.Add(1)
				go func() {
					defer wg.Done()
					rel, err := st.Lease(bg, "m", id, time.Second, 4)
					if err == nil {
						mu.Lock()
						rels = append(rels, rel)
						mu.Unlock()
					}
				}()
			}
		}
		wg.Wait()
		if len(rels) == 0 || len(rels) > 4 {
			t.Fatalf("%d leases held at once, want 1 to 4", len(rels))
		}
		for _, rel := range rels {
			rel()
		}
	})

	t.Run("FewSlots", func(t *testing.T) {
		// max_in_flight 2 with three Stores: two shards carry capacity,
		// so two Stores share the target and the third keeps none; every
		// shard stays owned (none changes hands every other tick).
		for _, st := range stores {
			if rel, err := st.Lease(bg, "f", "X", time.Second, 2); err == nil {
				rel()
			}
		}
		holders := func() int {
			n := 0
			for _, st := range stores {
				if ownedBits(st, "f") != 0 {
					n++
				}
			}
			return n
		}
		deadline := time.Now().Add(30 * time.Second)
		for !allOwned(stores, "f") || holders() != 2 {
			if time.Now().After(deadline) {
				t.Fatalf("shards of f not all owned by 2 Stores after 30 s (%d hold some)", holders())
			}
			time.Sleep(50 * time.Millisecond)
		}
		for range 30 {
			time.Sleep(100 * time.Millisecond)
			if !allOwned(stores, "f") || holders() != 2 {
				t.Fatalf("shards of f change hands (%d Stores hold some)", holders())
			}
		}
	})

	t.Run("Close", func(t *testing.T) {
		// A closed Store's shards go to the others within a few ticks,
		// well before they would expire (20 s).
		if err := c.Close(bg); err != nil {
			t.Fatal(err)
		}
		waitSplit(t, 8*time.Second, stores[:2], "t")
	})

	t.Run("Dead", func(t *testing.T) {
		// A Store that stops without closing (its connection gone): its
		// shards are taken once they expire, and not before.
		d := open(t, urls, "shards", 1)
		d.shards.minTTL = time.Second // its shards live 6 s
		if _, _, err := d.DueDeliveries(bg, "t", time.Now(), 1, nil); err != nil {
			t.Fatal(err)
		}
		sets := waitSplit(t, 30*time.Second, []*Store{a, b, d}, "t")
		d.nc.Close() // no more refreshes
		died := time.Now()
		// Refreshed at most 2 s before: they last 4 s more at least.
		for time.Since(died) < 3*time.Second {
			if (ownedBits(a, "t")|ownedBits(b, "t"))&sets[2] != 0 {
				t.Fatalf("a dead Store's shard taken %v after its death, before it expired", time.Since(died))
			}
			time.Sleep(50 * time.Millisecond)
		}
		waitSplit(t, 30*time.Second, []*Store{a, b}, "t")
	})
}

func allOwned(stores []*Store, target string) bool {
	var all uint32
	for _, st := range stores {
		all |= ownedBits(st, target)
	}
	return all == 1<<numShards-1
}

// TestShardsFirstTickFails: a Store whose first tick fails (here its
// context is cancelled) still takes part: the ticker started anyway.
func TestShardsFirstTickFails(t *testing.T) {
	st := open(t, jstest.Single(t), "shards-first", 1)
	ctx, cancel := context.WithCancel(bg)
	cancel()
	if _, _, err := st.DueDeliveries(ctx, "t", time.Now(), 1, nil); err == nil {
		t.Fatal("DueDeliveries with a cancelled context succeeded")
	}
	deadline := time.Now().Add(10 * time.Second)
	for ownedBits(st, "t") != 1<<numShards-1 {
		if time.Now().After(deadline) {
			t.Fatalf("after a failed first tick the Store owns %016b 10 s later, want every shard", ownedBits(st, "t"))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// waitSplitCap waits until every shard of target with capacity (max m) is
// owned, and every Store owning a shard owns one with capacity.
func waitSplitCap(t *testing.T, stores []*Store, target string, m int) {
	t.Helper()
	var capBits uint32
	for k := range numShards {
		if capacity(k, m) > 0 {
			capBits |= 1 << k
		}
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		var all uint32
		ok := true
		for _, st := range stores {
			b := ownedBits(st, target)
			all |= b
			ok = ok && (b == 0 || b&capBits != 0)
		}
		if ok && all&capBits == capBits {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("shards of %s with capacity not owned after 30 s", target)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestShardsDrainWaits: a Store gives back a shard beyond its share only
// once no attempt runs under it: while a lone Store holds a lease in each
// of its shards, a second Store joining gets none of them; once they are
// released it gets its share within a few ticks.
func TestShardsDrainWaits(t *testing.T) {
	urls := jstest.Single(t)
	a := open(t, urls, "drain", 1)
	if _, _, err := a.DueDeliveries(bg, "t", time.Now(), 1, nil); err != nil {
		t.Fatal(err)
	}
	// One lease per shard (ids found by their hash), no in-flight bound.
	var rels []func()
	for i, k := 0, 0; k < numShards; i++ {
		id := fmt.Sprintf("D%04d", i)
		if shardOf(id) != k {
			continue
		}
		rel, err := a.Lease(bg, "t", id, time.Second, 0)
		if err != nil {
			t.Fatal(err)
		}
		rels = append(rels, rel)
		k++
	}
	b := open(t, urls, "drain", 1)
	if _, _, err := b.DueDeliveries(bg, "t", time.Now(), 1, nil); err != nil {
		t.Fatal(err)
	}
	for range 30 {
		time.Sleep(100 * time.Millisecond)
		if got := ownedBits(b, "t"); got != 0 {
			t.Fatalf("b owns %016b while a attempts under every shard", got)
		}
	}
	for _, rel := range rels {
		rel()
	}
	waitSplit(t, 10*time.Second, []*Store{a, b}, "t")
}

// TestFreshReplayedElsewhere: an event ingested here is replayed by
// another Store before its first attempt; this Store's LoadDelivery takes
// the initial deliveries from its cache (stale now), and RecordAttempt's
// compare-and-set finds the replay: the attempt is recorded on top of the
// replay's record, and the replay's queue entry stays for its own attempt.
func TestFreshReplayedElsewhere(t *testing.T) {
	urls := jstest.Single(t)
	a := open(t, urls, "fresh", 1)
	b := open(t, urls, "fresh", 1)
	res, err := a.Ingest(bg, webhook("f1", "t"), []byte(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Requeue(bg, res.ID, "t", time.Now().Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	if _, _, d, err := a.LoadDelivery(bg, res.ID, "t"); err != nil || d.Replay {
		t.Fatalf("LoadDelivery on the ingesting Store: %+v, %v; want the cached initial delivery", d, err)
	}
	ok := delivery.Result{Attempt: delivery.Attempt{At: time.Now(), StatusCode: 200}, Outcome: delivery.OK}
	if _, err := a.RecordAttempt(bg, res.ID, "t", res.Queued[0].Key, ok, delivery.Policy{}); err != nil && !errors.Is(err, storage.ErrSuperseded) {
		t.Fatalf("RecordAttempt: %v", err)
	}
	v, _, err := b.Get(bg, res.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(v.Deliveries) != 1 || len(v.Deliveries[0].Attempts) != 1 || !v.Deliveries[0].Replay {
		t.Fatalf("deliveries %+v; want the replay's record with the attempt on it", v.Deliveries)
	}
	if n, err := b.QueueDepth(bg, "t"); err != nil || n != 1 {
		t.Errorf("queue depth %d (%v), want the replay's entry", n, err)
	}
	// Later reads go to the stream: the cache served once.
	if _, _, d, err := a.LoadDelivery(bg, res.ID, "t"); err != nil || !d.Replay {
		t.Errorf("second LoadDelivery: %+v, %v; want the stored replay", d, err)
	}
}
