package jsstore

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/hookrelay/hookrelay/relay/delivery"
	"github.com/hookrelay/hookrelay/relay/jsstore/jstest"
	"github.com/hookrelay/hookrelay/relay/storage"
)

// TestGroupedRecords: many attempts recorded at once, two targets of each
// event among them (both rewrite the event's delivery record, so they
// must not share a batch), from two nodes: every one is recorded, none
// is lost to another's compare-and-set, and the queues end empty.
func TestGroupedRecords(t *testing.T) {
	c := jstest.NewCluster(t, 3)
	a := open(t, []string{c.URL(0)}, "grouped", 3)
	b := open(t, []string{c.URL(1)}, "grouped", 3)
	const events = 40
	var results []storage.Result
	for i := range events {
		res, err := a.Ingest(bg, webhook(fmt.Sprintf("g%d", i), "media", "archive"), []byte(`{}`))
		if err != nil {
			t.Fatal(err)
		}
		results = append(results, res)
	}
	ok := delivery.Result{Attempt: delivery.Attempt{At: time.Now(), StatusCode: 200}, Outcome: delivery.OK}
	var wg sync.WaitGroup
	errs := make(chan error, 2*events)
	for i, res := range results {
		for j, due := range res.Queued {
			st := a
			if (i+j)%2 == 1 {
				st = b
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				d, err := st.RecordAttempt(bg, res.ID, due.Target, due.Key, ok, delivery.Policy{MaxAttempts: 3})
				if err == nil && d.Status != delivery.Delivered {
					err = fmt.Errorf("%s/%s recorded as %s", res.ID, due.Target, d.Status)
				}
				if err != nil {
					errs <- err
				}
			}()
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	for _, res := range results {
		v, _, err := b.Get(bg, res.ID)
		if err != nil {
			t.Fatal(err)
		}
		if v.Status != delivery.EventDelivered || len(v.Deliveries) != 2 {
			t.Errorf("event %s: %s with %+v, want both deliveries delivered", res.ID, v.Status, v.Deliveries)
		}
	}
	for _, tg := range []string{"media", "archive"} {
		if n, err := a.QueueDepth(bg, tg); err != nil || n != 0 {
			t.Errorf("QueueDepth(%s) = %d, %v; want 0", tg, n, err)
		}
	}
}
