package store_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/hookrelay/hookrelay/relay/delivery"
	"github.com/hookrelay/hookrelay/relay/storage"
)

// TestRecordAttempt checks that the store applies delivery.Next under the
// caller's policy and performs its queue operation.
func TestRecordAttempt(t *testing.T) {
	received := time.Now().UTC().Add(-time.Hour).Truncate(time.Millisecond)
	retryAt := received.Add(time.Minute)
	attempt := delivery.Attempt{At: received, StatusCode: 503, LatencyMS: 1}
	tests := []struct {
		name       string
		outcomes   []delivery.Outcome // recorded one after another
		max        int
		wantStatus delivery.Status
		wantTries  int
		wantQueued bool
	}{
		{"delivered", []delivery.Outcome{delivery.OK}, 3, delivery.Delivered, 1, false},
		{"permanent", []delivery.Outcome{delivery.Permanent}, 3, delivery.Dead, 1, false},
		{"retry", []delivery.Outcome{delivery.Retry}, 3, delivery.Pending, 1, true},
		{"retry then delivered", []delivery.Outcome{delivery.Retry, delivery.OK}, 3, delivery.Delivered, 2, false},
		{"retries up to max_attempts", []delivery.Outcome{delivery.Retry, delivery.Retry, delivery.Retry}, 3, delivery.Dead, 3, false},
		{"max_attempts 1", []delivery.Outcome{delivery.Retry}, 1, delivery.Dead, 1, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := openStore(t)
			ctx := context.Background()
			res, err := st.Ingest(ctx, &storage.Event{Source: "sp", ReceivedAt: received, DedupeKey: "k", Targets: []string{"media"}}, []byte(`{}`))
			if err != nil {
				t.Fatal(err)
			}
			var got delivery.Delivery
			for i, o := range tt.outcomes {
				r := delivery.Result{Attempt: attempt, Outcome: o, RetryAt: retryAt.Add(time.Duration(i) * time.Second)}
				if got, err = st.RecordAttempt(ctx, res.ID, "media", queueKeyOf(t, st, res.ID, "media"), r, delivery.Policy{MaxAttempts: tt.max}); err != nil {
					t.Fatalf("RecordAttempt #%d: %v", i, err)
				}
			}
			if got.Status != tt.wantStatus || got.Tries != tt.wantTries || len(got.Attempts) != len(tt.outcomes) {
				t.Errorf("RecordAttempt = %+v, want %s after %d tries", got, tt.wantStatus, tt.wantTries)
			}
			_, _, stored, err := st.LoadDelivery(context.Background(), res.ID, "media")
			if err != nil {
				t.Fatal(err)
			}
			if stored.Status != got.Status || stored.Tries != got.Tries || !stored.NextAt.Equal(got.NextAt) {
				t.Errorf("stored %+v, returned %+v", stored, got)
			}
			n, err := st.QueueDepth(context.Background(), "media")
			if err != nil {
				t.Fatal(err)
			}
			if want := map[bool]int{true: 1, false: 0}[tt.wantQueued]; n != want {
				t.Errorf("queue depth = %d, want %d", n, want)
			}
			if tt.wantQueued {
				due, _, err := st.DueDeliveries(context.Background(), "media", got.NextAt, 10, nil)
				if err != nil || len(due) != 1 || !due[0].At.Equal(got.NextAt) {
					t.Errorf("DueDeliveries = %v, %v; want the retry at %v", due, err, got.NextAt)
				}
			}
		})
	}
}

// TestRecordAttemptSuperseded records an attempt whose queue entry a replay
// replaced: only the attempt is kept, the replay's state and entry stay.
func TestRecordAttemptSuperseded(t *testing.T) {
	st := openStore(t)
	ctx := context.Background()
	received := time.Now().UTC().Add(-time.Hour)
	res, err := st.Ingest(ctx, &storage.Event{Source: "sp", ReceivedAt: received, DedupeKey: "k", Targets: []string{"media"}}, []byte(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	key := queueKeyOf(t, st, res.ID, "media")
	now := time.Now()
	if err := st.Requeue(ctx, res.ID, "media", now); err != nil {
		t.Fatal(err)
	}
	r := delivery.Result{Attempt: delivery.Attempt{At: now, StatusCode: 404}, Outcome: delivery.Permanent}
	got, err := st.RecordAttempt(ctx, res.ID, "media", key, r, delivery.Policy{MaxAttempts: 3})
	if !errors.Is(err, storage.ErrSuperseded) {
		t.Fatalf("RecordAttempt = %v, want ErrSuperseded", err)
	}
	if got.Status != delivery.Pending || !got.Replay || got.Tries != 0 || len(got.Attempts) != 1 || !got.NextAt.Equal(now) {
		t.Errorf("superseded attempt left %+v, want the pending replay with one attempt", got)
	}
	if n, _ := st.QueueDepth(context.Background(), "media"); n != 1 {
		t.Errorf("queue depth = %d, want the replay's entry", n)
	}
	if _, err := st.RecordAttempt(ctx, res.ID, "media", []byte("q/media/x"), r, delivery.Policy{}); err == nil {
		t.Error("RecordAttempt with a malformed queue key succeeded")
	}
}
