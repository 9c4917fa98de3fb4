package relay_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hookrelay/hookrelay/providers"
	"github.com/hookrelay/hookrelay/providers/registry"
	"github.com/hookrelay/hookrelay/relay"
	"github.com/hookrelay/hookrelay/relay/config"
)

// benchStartRelay starts a server from yamlText ({{DATA}}: a fresh
// directory) and returns its public URL; it stops at the end of tb.
func benchStartRelay(tb testing.TB, yamlText string) string {
	tb.Helper()
	yamlText = strings.ReplaceAll(yamlText, "{{DATA}}", tb.TempDir())
	cfg, err := config.Parse("bench.yaml", []byte(yamlText), func(string) (string, bool) { return "", false })
	if err != nil {
		tb.Fatalf("config: %v", err)
	}
	log := slog.New(slog.NewTextHandler(benchLogWriter{tb}, &slog.HandlerOptions{Level: slog.LevelWarn}))
	srv, err := relay.New(cfg, log, "bench")
	if err != nil {
		tb.Fatalf("relay.New: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	if err := srv.Start(ctx); err != nil {
		cancel()
		tb.Fatalf("Start: %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	tb.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			tb.Errorf("Run: %v", err)
		}
	})
	return "http://" + srv.Addr("public")
}

type benchLogWriter struct{ tb testing.TB }

func (w benchLogWriter) Write(p []byte) (int, error) {
	w.tb.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

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
	url := benchStartRelay(b, dlConfigHead+`
targets:
  sink:
    url: `+sink.URL+`
    max_in_flight: 32
    signing_secret: `+dlSigningSecret+`
routes:
  - name: all
    targets: [sink]
`) + "/webhooks/sp-a"

	signer, err := registry.New("sketchpen", providers.Options{Secrets: []string{dlSketchpenSecret}})
	if err != nil {
		b.Fatal(err)
	}
	type webhook struct {
		h    http.Header
		body []byte
	}
	hooks := make([]webhook, b.N)
	now := time.Now()
	for i := range hooks {
		body := sketchpenBody("video.completed", fmt.Sprintf("bench-%d-%d", now.UnixNano(), i), now.Unix())
		h, err := signer.Sign(body, now)
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
				req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(hooks[i].body))
				req.Header = hooks[i].h.Clone()
				resp, err := client.Do(req)
				if err != nil {
					b.Error(err)
					return
				}
				raw, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				accepted[i] = time.Now()
				var out map[string]string
				_ = json.Unmarshal(raw, &out)
				if resp.StatusCode != http.StatusOK || out["status"] != "accepted" {
					b.Errorf("POST: %d %s", resp.StatusCode, raw)
					return
				}
				ids[i] = out["id"]
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
