package jsstore

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

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

// waitSplit waits until stores own every shard of target between them,
// each no more than its share, and returns each one's set.
func waitSplit(t *testing.T, stores []*Store, target string) []uint32 {
	t.Helper()
	share := (numShards + len(stores) - 1) / len(stores)
	deadline := time.Now().Add(30 * time.Second)
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
			t.Fatalf("shards of %s not split after 30 s: %016b", target, sets)
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
	waitSplit(t, stores, "t")
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

	t.Run("Close", func(t *testing.T) {
		// A closed Store's shards go to the others within a few ticks.
		if err := c.Close(bg); err != nil {
			t.Fatal(err)
		}
		waitSplit(t, stores[:2], "t")
	})

	t.Run("Dead", func(t *testing.T) {
		// A Store that stops without closing (its connection gone): its
		// shards are taken once they expire.
		d := open(t, urls, "shards", 1)
		d.shards.minTTL = time.Second
		if _, _, err := d.DueDeliveries(bg, "t", time.Now(), 1, nil); err != nil {
			t.Fatal(err)
		}
		waitSplit(t, []*Store{a, b, d}, "t")
		d.nc.Close() // no more refreshes
		waitSplit(t, []*Store{a, b}, "t")
	})
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
