package jsstore

import (
	"fmt"
	"os"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hookrelay/hookrelay/relay/jsstore/jstest"
)

// TestThroughput (JSSTORE_BENCH=1) ingests 1 KiB webhooks from 64
// writers for 3 s through a single server (replicas 1) and a 3-server
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
		for g := range 64 {
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
