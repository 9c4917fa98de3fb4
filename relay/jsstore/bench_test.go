package jsstore

import (
	"fmt"
	"os"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hookrelay/hookrelay/relay/delivery"
	"github.com/hookrelay/hookrelay/relay/jsstore/jstest"
	"github.com/hookrelay/hookrelay/relay/storage"
)

// TestThroughput (JSSTORE_BENCH=1) ingests 1 KiB webhooks from 64
// writers (JSSTORE_WRITERS) for 3 s through a single server (replicas 1) and a 3-server
// cluster (replicas 3, writers spread over the servers).
func TestThroughput(t *testing.T) {
	if os.Getenv("JSSTORE_BENCH") == "" {
		t.Skip("set JSSTORE_BENCH=1")
	}
	body := make([]byte, 1024)
	run := func(t *testing.T, nodes []*Store) {
		var n atomic.Int64
		var mu sync.Mutex
		var lat []time.Duration
		stop := time.Now().Add(3 * time.Second)
		var wg sync.WaitGroup
		writers := 64
		if w, err := strconv.Atoi(os.Getenv("JSSTORE_WRITERS")); err == nil && w > 0 {
			writers = w
		}
		for g := range writers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				var mine []time.Duration
				for i := 0; time.Now().Before(stop); i++ {
					t0 := time.Now()
					if _, err := nodes[g%len(nodes)].Ingest(bg, webhook(fmt.Sprintf("b%d-%d", g, i), "media"), body); err != nil {
						t.Errorf("Ingest: %v", err)
						return
					}
					mine = append(mine, time.Since(t0))
					n.Add(1)
				}
				mu.Lock()
				lat = append(lat, mine...)
				mu.Unlock()
			}()
		}
		wg.Wait()
		sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
		if len(lat) > 0 {
			t.Logf("%d events in 3s: %.0f/s, p50 %v, p99 %v", n.Load(), float64(n.Load())/3, lat[len(lat)/2], lat[len(lat)*99/100])
		}
	}
	t.Run("single-r1", func(t *testing.T) {
		urls := jstest.Single(t)
		run(t, []*Store{open(t, urls, "bench", 1)})
	})
	t.Run("cluster-r3", func(t *testing.T) {
		c := jstest.NewCluster(t, 3)
		var nodes []*Store
		for i := range 3 {
			nodes = append(nodes, open(t, []string{c.URL(i)}, "bench", 3))
		}
		run(t, nodes)
	})
}

// TestDeliveryThroughput (JSSTORE_BENCH=1) measures the store's side of a
// delivery in a 3-server cluster (replicas 3): each node ingests its
// share of 3000 events with one target, then 16 workers per node deliver
// what their node ingested as the engine does (Lease with a cluster-wide
// bound of 16, LoadDelivery, RecordAttempt, release; a refused lease is
// tried again later), with no HTTP in between. It also times one queue scan.
func TestDeliveryThroughput(t *testing.T) {
	if os.Getenv("JSSTORE_BENCH") == "" {
		t.Skip("set JSSTORE_BENCH=1")
	}
	c := jstest.NewCluster(t, 3)
	var nodes []*Store
	for i := range 3 {
		nodes = append(nodes, open(t, []string{c.URL(i)}, "dbench", 3))
	}
	const events = 3000
	queues := make([]chan storage.Due, 3)
	for i := range queues {
		queues[i] = make(chan storage.Due, events)
	}
	var wg sync.WaitGroup
	for g := range 48 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := g; i < events; i += 48 {
				res, err := nodes[g%3].Ingest(bg, webhook(fmt.Sprintf("d%d", i), "sink"), make([]byte, 1024))
				if err != nil {
					t.Errorf("Ingest: %v", err)
					return
				}
				queues[g%3] <- res.Queued[0]
			}
		}()
	}
	wg.Wait()
	t0 := time.Now()
	dues, _, err := nodes[1].DueDeliveries(bg, "sink", time.Now(), 10000, nil)
	if err != nil || len(dues) != events {
		t.Fatalf("scan: %d, %v", len(dues), err)
	}
	t.Logf("scan of %d queued: %v", len(dues), time.Since(t0))
	var n, refused atomic.Int64
	t0 = time.Now()
	for i := range 3 {
		for range 16 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					var due storage.Due
					select {
					case due = <-queues[i]:
					default:
						return
					}
					release, err := nodes[i].Lease(bg, "sink", due.EventID, 15*time.Second, 16)
					if err != nil {
						refused.Add(1)
						queues[i] <- due
						time.Sleep(20 * time.Millisecond)
						continue
					}
					if _, _, _, err := nodes[i].LoadDelivery(bg, due.EventID, "sink"); err != nil {
						t.Errorf("LoadDelivery: %v", err)
					}
					r := delivery.Result{Attempt: delivery.Attempt{At: time.Now(), StatusCode: 200}, Outcome: delivery.OK}
					if _, err := nodes[i].RecordAttempt(bg, due.EventID, "sink", due.Key, r, delivery.Policy{}); err != nil {
						t.Errorf("RecordAttempt: %v", err)
					}
					release()
					n.Add(1)
				}
			}()
		}
	}
	wg.Wait()
	el := time.Since(t0)
	t.Logf("%d deliveries in %v: %.0f/s; %d leases refused", n.Load(), el.Round(time.Millisecond), float64(n.Load())/el.Seconds(), refused.Load())
	if d, err := nodes[2].QueueDepth(bg, "sink"); err != nil || d != 0 {
		t.Errorf("queue depth after: %d %v", d, err)
		dues, _, _ := nodes[2].DueDeliveries(bg, "sink", time.Now(), 5, nil)
		for _, due := range dues {
			_, _, d, err := nodes[0].LoadDelivery(bg, due.EventID, "sink")
			q, ok, _ := nodes[0].last(bg, nodes[0].queueSubj("sink", due.EventID))
			t.Logf("left: %+v: %+v %v; queue %v %+v", due, d, err, ok, q)
		}
	}
}
