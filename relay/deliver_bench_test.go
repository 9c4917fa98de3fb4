package relay_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// BenchmarkEndToEnd posts b.N signed sketchpen webhooks, 32 at a time,
// through the real server (verification, dedupe, Badger, delivery engine)
// to a local target that checks nothing and answers 200. It reports the
// throughput from the first post to the last receipt at the target, and
// the latency from acceptance (the 200 reaching the client) to receipt.
// A delivery can reach the target before its 200 reaches the client; such
// latencies count as 0.
func BenchmarkEndToEnd(b *testing.B) {
	const concurrency = 32
	var (
		mu       sync.Mutex
		received = make(map[string]time.Time, b.N)
		all      = make(chan struct{})
	)
	sink := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		now := time.Now()
		var ce struct {
			ID string `json:"id"`
		}
		_ = json.Unmarshal(body, &ce)
		mu.Lock()
		if _, dup := received[ce.ID]; !dup {
			received[ce.ID] = now
			if len(received) == b.N {
				close(all)
			}
		}
		mu.Unlock()
	}))
	defer sink.Close()
	url := startServer(b, dlConfigHead+`
targets:
  sink:
    url: `+sink.URL+`
    max_in_flight: 32
    signing_secret: `+dlSigningSecret+`
routes:
  - name: all
    targets: [sink]
`).URL + "/webhooks/sp-a"

	adapter := signer(b, "sketchpen", dlSketchpenSecret, nil)
	type webhook struct {
		h    http.Header
		body []byte
	}
	hooks := make([]webhook, b.N)
	now := time.Now()
	for i := range hooks {
		body := sketchpenBody("video.completed", fmt.Sprintf("bench-%d-%d", now.UnixNano(), i), now.Unix())
		h, err := adapter.Sign(body, now)
		if err != nil {
			b.Fatal(err)
		}
		hooks[i] = webhook{h, body}
	}
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: concurrency}, Timeout: 30 * time.Second}
	defer client.CloseIdleConnections()
	accepted := make([]time.Time, b.N)
	ids := make([]string, b.N)

	b.ResetTimer()
	start := time.Now()
	var next atomic.Int64
	var wg sync.WaitGroup
	for range concurrency {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= b.N {
					return
				}
				r, _, err := doRequest(client, http.MethodPost, url, hooks[i].h, hooks[i].body, false)
				if err != nil {
					b.Error(err)
					return
				}
				accepted[i] = time.Now()
				if r.Status != http.StatusOK || r.Body["status"] != "accepted" {
					b.Errorf("POST: %d %s", r.Status, r.Raw)
					return
				}
				ids[i] = r.Body["id"]
			}
		})
	}
	wg.Wait()
	if b.Failed() {
		return
	}
	select {
	case <-all:
	case <-time.After(2 * time.Minute):
		mu.Lock()
		n := len(received)
		mu.Unlock()
		b.Fatalf("the target received %d of %d events within 2 minutes", n, b.N)
	}
	elapsed := time.Since(start)
	b.StopTimer()

	mu.Lock()
	lat := make([]time.Duration, 0, b.N)
	for i, id := range ids {
		lat = append(lat, max(0, received[id].Sub(accepted[i])))
	}
	mu.Unlock()
	slices.Sort(lat)
	pct := func(p float64) float64 {
		return float64(lat[min(len(lat)-1, int(p*float64(len(lat))))]) / float64(time.Millisecond)
	}
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "events/s")
	b.ReportMetric(pct(0.50), "p50-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
}
