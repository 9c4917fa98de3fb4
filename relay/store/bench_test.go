package store_test

import (
	"context"
	"fmt"
	"runtime"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hookrelay/hookrelay/providers"
	"github.com/hookrelay/hookrelay/providers/registry"
	"github.com/hookrelay/hookrelay/relay/storage"
	"github.com/hookrelay/hookrelay/relay/store"
)

// benchIngesters is the number of concurrent ingesters RunParallel runs
// (rounded up to a multiple of GOMAXPROCS).
const benchIngesters = 64

// benchBodySize is the size of every raw body.
const benchBodySize = 1024

// benchBody returns a sketchpen body of exactly benchBodySize bytes for
// video n: distinct n give distinct default dedupe keys.
func benchBody(n int64) []byte {
	head := `{"event":"video.completed","video_id":"bench-` + strconv.FormatInt(n, 10) + `","created_at":1700000000,"pad":"`
	tail := `"}`
	b := make([]byte, 0, benchBodySize)
	b = append(b, head...)
	for len(b) < benchBodySize-len(tail) {
		b = append(b, 'x')
	}
	return append(b, tail...)
}

func benchOpen(b *testing.B, sync bool) *store.Store {
	b.Helper()
	st, err := store.Open(context.Background(), store.Options{
		Path: b.TempDir(), Sync: sync, DedupeWindow: time.Hour, CacheSize: 100000,
	})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		if err := st.Close(context.Background()); err != nil {
			b.Error(err)
		}
	})
	return st
}

// benchParallel runs op from benchIngesters goroutines and reports req/s.
// op gets a number unique across all goroutines.
func benchParallel(b *testing.B, op func(n int64) error) {
	b.Helper()
	var seq atomic.Int64
	b.SetParallelism((benchIngesters + runtime.GOMAXPROCS(0) - 1) / runtime.GOMAXPROCS(0))
	b.SetBytes(benchBodySize)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := op(seq.Add(1)); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "req/s")
}

// BenchmarkIngest measures the atomic claim-and-store transaction with
// unique dedupe keys and 1 KiB bodies, alone ("store") and behind
// signature verification and parsing ("verify+store", the work of one
// webhook request minus HTTP; the provider-side signing of each request is
// inside the timing too), with storage.sync off and on.
func BenchmarkIngest(b *testing.B) {
	for _, sync := range []bool{false, true} {
		name := map[bool]string{false: "sync=off", true: "sync=on"}[sync]

		b.Run("store/"+name, func(b *testing.B) {
			st := benchOpen(b, sync)
			benchParallel(b, func(n int64) error {
				now := time.Now().UTC()
				ev := &storage.Event{
					Source: "bench", Provider: "sketchpen", Type: "video.completed",
					Subject: "bench-" + strconv.FormatInt(n, 10), Time: now, ReceivedAt: now,
					DedupeKey: "video.completed:bench-" + strconv.FormatInt(n, 10) + ":1700000000",
				}
				res, err := st.Ingest(context.Background(), ev, benchBody(n))
				if err == nil && res.Duplicate {
					err = fmt.Errorf("unique key %d answered duplicate", n)
				}
				return err
			})
		})

		b.Run("verify+store/"+name, func(b *testing.B) {
			st := benchOpen(b, sync)
			ad, err := registry.New("sketchpen", providers.Common{Secrets: []providers.Secret{{Value: "whsec_bench_secret"}}})
			if err != nil {
				b.Fatal(err)
			}
			src := &providers.Source{Name: "bench", Provider: "sketchpen", Adapter: ad}
			benchParallel(b, func(n int64) error {
				body := benchBody(n)
				now := time.Now()
				h, err := ad.Sign(body, now)
				if err != nil {
					return err
				}
				pev, err := src.Accept("", h, body, now)
				if err != nil {
					return err
				}
				ev := &storage.Event{
					Source: src.Name, Provider: src.Provider, Type: pev.Type, Subject: pev.Subject,
					Time: pev.Time, ReceivedAt: now.UTC(), DedupeKey: pev.DedupeKey,
					Headers: map[string]string{"X-Sketchpen-Timestamp": h.Get("X-Sketchpen-Timestamp"), "X-Sketchpen-Signature": "[redacted]"},
				}
				res, err := st.Ingest(context.Background(), ev, body)
				if err == nil && res.Duplicate {
					err = fmt.Errorf("unique key %q answered duplicate", pev.DedupeKey)
				}
				return err
			})
		})
	}
}
