package store_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hookrelay/hookrelay/relay/storage"
	"github.com/hookrelay/hookrelay/relay/store"
)

// claimer is the part of a storage implementation the concurrent-claims
// test drives. Any store (Badger today, JetStream for cluster mode) that
// claims dedupe keys on Ingest satisfies it.
type claimer interface {
	Ingest(ctx context.Context, ev *storage.Event, raw []byte) (storage.Result, error)
}

// TestConcurrentClaims runs testConcurrentClaims against the Badger store,
// with and without its LRU of recent claims.
func TestConcurrentClaims(t *testing.T) {
	for _, cache := range []int{0, 1024} {
		t.Run(fmt.Sprint("cache-", cache), func(t *testing.T) {
			testConcurrentClaims(t, func(t *testing.T) claimer {
				st, err := store.Open(context.Background(), store.Options{Path: t.TempDir(), DedupeWindow: time.Hour, CacheSize: cache})
				if err != nil {
					t.Fatalf("Open: %v", err)
				}
				t.Cleanup(func() {
					if err := st.Close(context.Background()); err != nil {
						t.Errorf("Close: %v", err)
					}
				})
				return st
			})
		})
	}
}

// testConcurrentClaims: in each of many rounds, racers goroutines are
// released at once by a barrier and ingest events with one dedupe key;
// exactly one is accepted and every other one answers "duplicate" with
// the winner's id.
//
// A claim that is not atomic (the key read in one transaction and written
// in another, "check, then insert") accepts two racers only if both read
// before either commits. Left alone, a group-committing store serializes
// most racers by accident: the committer picks up the first racer alone
// and commits it before the others are read, and an LRU in front answers
// the late ones. So while the racers run, fillers keep the store busy with
// events of other keys: the racers then queue behind a commit in progress,
// every one of them reads the key before the first claim commits, and a
// non-atomic claim accepts several of them in nearly every round. Over
// many rounds that is a failure on every run, not one run in three.
func testConcurrentClaims(t *testing.T, open func(t *testing.T) claimer) {
	const (
		rounds  = 300
		racers  = 16
		fillers = 4
	)
	st := open(t)
	ctx := context.Background()
	base := time.Now().UTC()

	stop := make(chan struct{})
	var fill sync.WaitGroup
	var filled atomic.Int64
	var fillErr atomic.Value // error
	filler := make([]byte, 16<<10)
	for f := range fillers {
		fill.Go(func() {
			for n := 0; ; n++ {
				select {
				case <-stop:
					return
				default:
				}
				ev := &storage.Event{Source: "fill", Type: "t", ReceivedAt: base, DedupeKey: fmt.Sprintf("fill-%d-%d", f, n), Targets: []string{"x"}}
				if _, err := st.Ingest(ctx, ev, filler); err != nil {
					fillErr.Store(err)
					return
				}
				filled.Add(1)
			}
		})
	}
	defer func() {
		close(stop)
		fill.Wait()
		if err, _ := fillErr.Load().(error); err != nil {
			t.Errorf("filler Ingest: %v", err)
		}
	}()

	var twice int // rounds with more than one acceptance
	for round := range rounds {
		key := fmt.Sprint("race-", round)
		results := make([]storage.Result, racers)
		errs := make([]error, racers)
		start := make(chan struct{})
		var wg sync.WaitGroup
		for i := range racers {
			ev := &storage.Event{Source: "sp", Provider: "sketchpen", Type: "video.completed", ReceivedAt: base,
				DedupeKey: key, Targets: []string{"media"}}
			raw := fmt.Appendf(nil, `{"round":%d,"racer":%d}`, round, i)
			wg.Go(func() {
				<-start
				results[i], errs[i] = st.Ingest(ctx, ev, raw)
			})
		}
		close(start)
		wg.Wait()

		var accepted []string
		for i := range racers {
			if errs[i] != nil {
				t.Fatalf("round %d racer %d: Ingest: %v", round, i, errs[i])
			}
			if !results[i].Duplicate {
				accepted = append(accepted, results[i].ID)
			}
		}
		if len(accepted) != 1 {
			twice++
			if twice <= 3 {
				t.Errorf("round %d: %d of %d racers accepted, want exactly 1", round, len(accepted), racers)
			}
			continue
		}
		for i, r := range results {
			if r.ID != accepted[0] {
				t.Errorf("round %d racer %d: id %q, want the winner's %q", round, i, r.ID, accepted[0])
			}
		}
	}
	if twice > 0 {
		t.Errorf("%d of %d rounds accepted more than one racer", twice, rounds)
	}
	t.Logf("%d rounds of %d racers, %d filler events", rounds, racers, filled.Load())
}
