package storagetest

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/hookrelay/hookrelay/relay/delivery"
	"github.com/hookrelay/hookrelay/relay/storage"
)

// testDueDeliveries: oldest due first whatever the ingest order, only
// those due at or before now, at most limit, leaving out skipped ones;
// next is the first later entry not skipped.
func testDueDeliveries(t *testing.T, s *suite) {
	st := s.open(t, "due")
	b := base()
	// Ingested out of due order: e0 due at +2m, e1 at +0, e2 at +1m.
	e0 := ingestNew(t, st, simpleEvent("e0", b.Add(2*time.Minute), "t"), nil).ID
	e1 := ingestNew(t, st, simpleEvent("e1", b, "t"), nil).ID
	e2 := ingestNew(t, st, simpleEvent("e2", b.Add(time.Minute), "t"), nil).ID
	ingestNew(t, st, simpleEvent("other", b, "other"), nil)
	at := map[string]time.Time{e0: b.Add(2 * time.Minute), e1: b, e2: b.Add(time.Minute)}
	skipOnly := func(id string) func(string) bool { return func(x string) bool { return x == id } }

	tests := []struct {
		name     string
		now      time.Time
		limit    int
		skip     func(string) bool
		want     []string
		wantNext time.Time // checked unless the limit cut the result short
	}{
		{"all due", b.Add(time.Hour), 10, nil, []string{e1, e2, e0}, time.Time{}},
		{"due exactly now", b.Add(2 * time.Minute), 10, nil, []string{e1, e2, e0}, time.Time{}},
		{"some due", b.Add(90 * time.Second), 10, nil, []string{e1, e2}, b.Add(2 * time.Minute)},
		{"none due", b.Add(-time.Second), 10, nil, nil, b},
		{"limit", b.Add(time.Hour), 2, nil, []string{e1, e2}, time.Time{}},
		{"limit 1", b.Add(time.Hour), 1, nil, []string{e1}, time.Time{}},
		{"skip", b.Add(time.Hour), 10, skipOnly(e2), []string{e1, e0}, time.Time{}},
		{"skip before limit", b.Add(time.Hour), 1, skipOnly(e1), []string{e2}, time.Time{}},
		{"skip the due one", b.Add(30 * time.Second), 10, skipOnly(e1), nil, b.Add(time.Minute)},
		{"next skips skipped", b.Add(30 * time.Second), 10, skipOnly(e2), []string{e1}, b.Add(2 * time.Minute)},
		{"skip everything", b.Add(time.Hour), 10, func(string) bool { return true }, nil, time.Time{}},
	}
	for _, tt := range tests {
		dues, next, err := st.DueDeliveries(bg, "t", tt.now, tt.limit, tt.skip)
		if err != nil {
			t.Fatalf("%s: DueDeliveries: %v", tt.name, err)
		}
		var got []string
		for _, d := range dues {
			got = append(got, d.EventID)
			if d.Target != "t" || !d.At.Equal(at[d.EventID]) || len(d.Key) == 0 {
				t.Errorf("%s: due %+v, want target t at %v with a key", tt.name, d, at[d.EventID])
			}
		}
		if !equalIDs(got, tt.want) {
			t.Errorf("%s: DueDeliveries = %s, want %v", tt.name, fmtDues(dues), tt.want)
		}
		limited := tt.limit < 3 && len(dues) == tt.limit
		if !limited && !next.Equal(tt.wantNext) {
			t.Errorf("%s: next = %v, want %v", tt.name, next, tt.wantNext)
		}
	}
	if dues, next := due(t, st, "nobody", b.Add(time.Hour)); len(dues) != 0 || !next.IsZero() {
		t.Errorf("DueDeliveries of a target without deliveries = %s next %v, want none", fmtDues(dues), next)
	}
	if dues, _ := due(t, st, "other", b.Add(time.Hour)); len(dues) != 1 {
		t.Errorf("DueDeliveries other = %s, want its one delivery", fmtDues(dues))
	}
	// A target name that is a prefix of another's is its own queue.
	ingestNew(t, st, simpleEvent("tt", b, "tt"), nil)
	if dues, _ := due(t, st, "t", b.Add(time.Hour)); len(dues) != 3 {
		t.Errorf("DueDeliveries t after queueing for tt = %s, want t's 3", fmtDues(dues))
	}
}

func equalIDs(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// testQueueDepth counts queued deliveries per target as they come and go.
func testQueueDepth(t *testing.T, s *suite) {
	st := s.open(t, "depth")
	b := base()
	if n := depth(t, st, "a"); n != 0 {
		t.Errorf("QueueDepth of an empty store = %d", n)
	}
	var keys []storage.Due
	for i, targets := range [][]string{{"a"}, {"a", "b"}, {"b"}, {"a"}, nil} {
		res := ingestNew(t, st, simpleEvent(string(rune('p'+i)), b.Add(time.Duration(i)*time.Second), targets...), nil)
		keys = append(keys, res.Queued...)
	}
	if a, bb := depth(t, st, "a"), depth(t, st, "b"); a != 3 || bb != 2 {
		t.Errorf("QueueDepth a, b = %d, %d, want 3, 2", a, bb)
	}
	// Delivering one of a's (by its ingest hand-over key) dequeues it.
	q := keys[0]
	record(t, st, q.EventID, q.Target, q.Key, delivery.OK, b.Add(time.Minute), time.Time{}, delivery.Policy{MaxAttempts: 3})
	if a, bb := depth(t, st, "a"), depth(t, st, "b"); a != 2 || bb != 2 {
		t.Errorf("QueueDepth a, b after a delivery = %d, %d, want 2, 2", a, bb)
	}
}

// testRecordAttemptOK: OK makes the delivery delivered and dequeues it.
func testRecordAttemptOK(t *testing.T, s *suite) {
	st := s.open(t, "attempt-ok")
	b := base()
	res := ingestNew(t, st, simpleEvent("k", b, "media", "archive"), nil)
	q := res.Queued[0] // media, by the ingest hand-over key
	attemptAt := b.Add(time.Second)
	d := record(t, st, res.ID, "media", q.Key, delivery.OK, attemptAt, time.Time{}, delivery.Policy{MaxAttempts: 3})
	if d.Target != "media" || d.Status != delivery.Delivered || d.Tries != 1 || !d.NextAt.IsZero() || len(d.Attempts) != 1 {
		t.Fatalf("RecordAttempt OK = %+v, want delivered after 1 try", d)
	}
	if a := d.Attempts[0]; !a.At.Equal(attemptAt) || a.StatusCode != 200 || a.LatencyMS != 1.5 {
		t.Errorf("attempt = %+v, want the one recorded", a)
	}
	_, _, stored := load(t, st, res.ID, "media")
	if stored.Status != delivery.Delivered || stored.Tries != 1 || len(stored.Attempts) != 1 || !stored.NextAt.IsZero() {
		t.Errorf("stored %+v, want what RecordAttempt returned (%+v)", *stored, d)
	}
	if dues, next := due(t, st, "media", b.Add(time.Hour)); len(dues) != 0 || !next.IsZero() {
		t.Errorf("media queue after delivery = %s next %v, want empty", fmtDues(dues), next)
	}
	if n := depth(t, st, "archive"); n != 1 {
		t.Errorf("archive queue = %d, want its delivery still queued", n)
	}
	v, _ := get(t, st, res.ID)
	if v.Status != delivery.EventPending {
		t.Errorf("event status with archive pending = %q, want pending", v.Status)
	}
	record(t, st, res.ID, "archive", res.Queued[1].Key, delivery.OK, attemptAt, time.Time{}, delivery.Policy{MaxAttempts: 3})
	v, _ = get(t, st, res.ID)
	if v.Status != delivery.EventDelivered || deliveryOf(t, v, "media").Status != delivery.Delivered {
		t.Errorf("event after both deliveries = %+v, want delivered", v)
	}
}

// testRecordAttemptRetry: Retry makes the delivery pending again, queued
// at RetryAt: not due before, due at it, and deliverable by the new entry.
func testRecordAttemptRetry(t *testing.T, s *suite) {
	st := s.open(t, "attempt-retry")
	b := base()
	res := ingestNew(t, st, simpleEvent("k", b, "media"), nil)
	q := onlyDue(t, st, "media", res.ID, b)
	now := time.Now()
	retryAt := now.Add(time.Hour).Truncate(time.Millisecond)
	p := delivery.Policy{MaxAttempts: 3}
	d := record(t, st, res.ID, "media", q.Key, delivery.Retry, now, retryAt, p)
	if d.Status != delivery.Pending || !d.NextAt.Equal(retryAt) || d.Tries != 1 || len(d.Attempts) != 1 {
		t.Fatalf("RecordAttempt Retry = %+v, want pending at %v after 1 try", d, retryAt)
	}
	_, _, stored := load(t, st, res.ID, "media")
	if stored.Status != delivery.Pending || !stored.NextAt.Equal(retryAt) || stored.Tries != 1 {
		t.Errorf("stored %+v, want pending at %v", *stored, retryAt)
	}
	if n := depth(t, st, "media"); n != 1 {
		t.Errorf("QueueDepth = %d, want 1 (the retry, not the old entry too)", n)
	}
	if dues, next := due(t, st, "media", now); len(dues) != 0 || !next.Equal(retryAt) {
		t.Errorf("DueDeliveries before RetryAt = %s next %v, want none, next %v", fmtDues(dues), next, retryAt)
	}
	r := onlyDue(t, st, "media", res.ID, retryAt)
	if !r.At.Equal(retryAt) {
		t.Errorf("retry due at %v, want %v", r.At, retryAt)
	}
	// The engine schedules the retry in memory with the key QueueKey makes:
	// it must be the key of the entry the store queued.
	if got := st.QueueKey("media", d.NextAt, res.ID); !bytes.Equal(got, r.Key) {
		t.Errorf("QueueKey(retry) = %q, want the queued entry's key %q", got, r.Key)
	}
	if got := st.QueueKey("media", b, res.ID); !bytes.Equal(got, q.Key) {
		t.Errorf("QueueKey(first) = %q, want the ingested entry's key %q", got, q.Key)
	}
	d = record(t, st, res.ID, "media", r.Key, delivery.OK, retryAt, time.Time{}, p)
	if d.Status != delivery.Delivered || d.Tries != 2 || len(d.Attempts) != 2 {
		t.Errorf("RecordAttempt OK after a retry = %+v, want delivered after 2 tries", d)
	}
	if n := depth(t, st, "media"); n != 0 {
		t.Errorf("QueueDepth after delivery = %d, want 0", n)
	}
	// The old entry's attempt, recorded late, changes nothing.
	d, err := st.RecordAttempt(bg, res.ID, "media", q.Key, attemptResult(delivery.Permanent, now, time.Time{}), p)
	if (err == nil || errors.Is(err, storage.ErrSuperseded)) && d.Status != delivery.Delivered {
		t.Errorf("a late attempt for a removed entry made the delivery %+v", d)
	}
}

// testRecordAttemptRetryPast: a RetryAt in the past is due at once.
func testRecordAttemptRetryPast(t *testing.T, s *suite) {
	st := s.open(t, "attempt-retry-past")
	b := base()
	res := ingestNew(t, st, simpleEvent("k", b, "media"), nil)
	retryAt := b.Add(time.Minute)
	d := record(t, st, res.ID, "media", res.Queued[0].Key, delivery.Retry, b.Add(time.Second), retryAt, delivery.Policy{MaxAttempts: 3})
	if d.Status != delivery.Pending || !d.NextAt.Equal(retryAt) {
		t.Fatalf("RecordAttempt Retry = %+v, want pending at %v", d, retryAt)
	}
	if r := onlyDue(t, st, "media", res.ID, time.Now()); !r.At.Equal(retryAt) {
		t.Errorf("retry due at %v, want %v", r.At, retryAt)
	}
}

// testRecordAttemptPermanent: Permanent makes the delivery dead and
// dequeues it; the event is dead.
func testRecordAttemptPermanent(t *testing.T, s *suite) {
	st := s.open(t, "attempt-permanent")
	b := base()
	res := ingestNew(t, st, simpleEvent("k", b, "media", "archive"), nil)
	d := record(t, st, res.ID, "media", res.Queued[0].Key, delivery.Permanent, b.Add(time.Second), time.Time{}, delivery.Policy{MaxAttempts: 3})
	if d.Status != delivery.Dead || d.Tries != 1 || !d.NextAt.IsZero() || len(d.Attempts) != 1 || d.Attempts[0].StatusCode != 404 {
		t.Fatalf("RecordAttempt Permanent = %+v, want dead after 1 try", d)
	}
	if n := depth(t, st, "media"); n != 0 {
		t.Errorf("QueueDepth = %d, want 0", n)
	}
	v, _ := get(t, st, res.ID)
	if v.Status != delivery.EventDead {
		t.Errorf("event status = %q, want dead (archive still pending)", v.Status)
	}
}

// testRecordAttemptMaxAttempts: a Retry that uses up the policy's attempts
// makes the delivery dead.
func testRecordAttemptMaxAttempts(t *testing.T, s *suite) {
	st := s.open(t, "attempt-max")
	b := base()
	p := delivery.Policy{MaxAttempts: 3}
	res := ingestNew(t, st, simpleEvent("k", b, "media"), nil)
	far := time.Now().Add(48 * time.Hour)
	for try := 1; try <= 3; try++ {
		q := onlyDue(t, st, "media", res.ID, far)
		retryAt := b.Add(time.Duration(try) * time.Minute)
		d := record(t, st, res.ID, "media", q.Key, delivery.Retry, retryAt.Add(-time.Second), retryAt, p)
		if d.Tries != try || len(d.Attempts) != try {
			t.Fatalf("try %d: %+v, want %d tries and attempts", try, d, try)
		}
		if try < 3 && (d.Status != delivery.Pending || !d.NextAt.Equal(retryAt)) {
			t.Fatalf("try %d: %+v, want pending at %v", try, d, retryAt)
		}
		if try == 3 && (d.Status != delivery.Dead || !d.NextAt.IsZero()) {
			t.Fatalf("try %d of max_attempts 3: %+v, want dead", try, d)
		}
	}
	if n := depth(t, st, "media"); n != 0 {
		t.Errorf("QueueDepth of a dead delivery = %d, want 0", n)
	}
	// max_attempts below 1 means 1.
	res2 := ingestNew(t, st, simpleEvent("k2", b, "media"), nil)
	if d := record(t, st, res2.ID, "media", res2.Queued[0].Key, delivery.Retry, b, b.Add(time.Minute), delivery.Policy{}); d.Status != delivery.Dead {
		t.Errorf("Retry under max_attempts 0 = %+v, want dead", d)
	}
}

// testRecordAttemptSuperseded: a replay between an attempt's start and its
// record supersedes it: the attempt is kept, the replay's state and queue
// entry stay, and the replay's entry is then deliverable.
func testRecordAttemptSuperseded(t *testing.T, s *suite) {
	st := s.open(t, "attempt-superseded")
	b := base()
	res := ingestNew(t, st, simpleEvent("k", b, "media"), nil)
	old := onlyDue(t, st, "media", res.ID, b)
	now := time.Now().Truncate(time.Millisecond)
	if err := st.Requeue(bg, res.ID, "media", now); err != nil {
		t.Fatalf("Requeue: %v", err)
	}
	for _, o := range []delivery.Outcome{delivery.Permanent, delivery.OK} {
		d, err := st.RecordAttempt(bg, res.ID, "media", old.Key, attemptResult(o, now, time.Time{}), delivery.Policy{MaxAttempts: 3})
		if !errors.Is(err, storage.ErrSuperseded) {
			t.Fatalf("RecordAttempt %v for the replaced entry = %+v, %v; want ErrSuperseded", o, d, err)
		}
		if d.Status != delivery.Pending || !d.Replay || d.Tries != 0 || !d.NextAt.Equal(now) {
			t.Errorf("superseded %v returned %+v, want the pending replay due %v", o, d, now)
		}
	}
	_, _, stored := load(t, st, res.ID, "media")
	if stored.Status != delivery.Pending || !stored.Replay || stored.Tries != 0 || !stored.NextAt.Equal(now) || len(stored.Attempts) != 2 {
		t.Errorf("stored %+v, want the pending replay with both superseded attempts", *stored)
	}
	replay := onlyDue(t, st, "media", res.ID, now)
	if !replay.At.Equal(now) {
		t.Errorf("replay due at %v, want %v", replay.At, now)
	}
	if n := depth(t, st, "media"); n != 1 {
		t.Errorf("QueueDepth = %d, want the replay's entry only", n)
	}
	d := record(t, st, res.ID, "media", replay.Key, delivery.OK, now, time.Time{}, delivery.Policy{MaxAttempts: 3})
	if d.Status != delivery.Delivered || d.Replay || d.Tries != 1 || len(d.Attempts) != 3 {
		t.Errorf("the replay's attempt = %+v, want delivered, no longer a replay, 3 attempts", d)
	}
}

// testRequeue: replaying a delivered, a dead or a never-routed delivery
// makes it a pending replay due now, queued, attempts kept.
func testRequeue(t *testing.T, s *suite) {
	st := s.open(t, "requeue")
	b := base()
	p := delivery.Policy{MaxAttempts: 3}
	res := ingestNew(t, st, simpleEvent("k", b, "delivered", "dead"), nil)
	record(t, st, res.ID, "delivered", res.Queued[0].Key, delivery.OK, b, time.Time{}, p)
	record(t, st, res.ID, "dead", res.Queued[1].Key, delivery.Permanent, b, time.Time{}, p)
	if v, _ := get(t, st, res.ID); v.Status != delivery.EventDead {
		t.Fatalf("status before replays = %q, want dead", v.Status)
	}
	now := time.Now().Truncate(time.Millisecond)
	for _, tc := range []struct {
		target   string
		attempts int
	}{{"delivered", 1}, {"dead", 1}, {"never-routed", 0}} {
		if n := depth(t, st, tc.target); n != 0 {
			t.Fatalf("QueueDepth %s before Requeue = %d, want 0", tc.target, n)
		}
		if err := st.Requeue(bg, res.ID, tc.target, now); err != nil {
			t.Fatalf("Requeue %s: %v", tc.target, err)
		}
		_, _, d := load(t, st, res.ID, tc.target)
		if d.Target != tc.target || d.Status != delivery.Pending || !d.Replay || d.Tries != 0 || !d.NextAt.Equal(now) || len(d.Attempts) != tc.attempts {
			t.Errorf("%s after Requeue = %+v, want a pending replay due %v with %d attempts", tc.target, *d, now, tc.attempts)
		}
		if n := depth(t, st, tc.target); n != 1 {
			t.Errorf("QueueDepth %s after Requeue = %d, want 1", tc.target, n)
		}
		if dues, next := due(t, st, tc.target, now.Add(-time.Millisecond)); len(dues) != 0 || !next.Equal(now) {
			t.Errorf("%s before now = %s next %v, want none, next %v", tc.target, fmtDues(dues), next, now)
		}
		q := onlyDue(t, st, tc.target, res.ID, now)
		if !q.At.Equal(now) {
			t.Errorf("%s due at %v, want %v", tc.target, q.At, now)
		}
	}
	v, _ := get(t, st, res.ID)
	if v.Status != delivery.EventPending || len(v.Deliveries) != 3 {
		t.Errorf("event after replays: status %q, %d deliveries; want pending with 3", v.Status, len(v.Deliveries))
	}
	// A replay's attempt counts tries afresh under the policy.
	q := onlyDue(t, st, "dead", res.ID, now)
	d := record(t, st, res.ID, "dead", q.Key, delivery.Retry, now, now.Add(time.Minute), delivery.Policy{MaxAttempts: 2})
	if d.Status != delivery.Pending || d.Tries != 1 || len(d.Attempts) != 2 {
		t.Errorf("Retry of a replayed dead delivery = %+v, want pending after 1 try of the replay", d)
	}
}

// testRequeuePending: replaying a pending delivery moves its queue entry
// (not a second one).
func testRequeuePending(t *testing.T, s *suite) {
	st := s.open(t, "requeue-pending")
	b := base()
	res := ingestNew(t, st, simpleEvent("k", b, "media"), nil)
	for i, at := range []time.Time{b.Add(time.Minute), b.Add(2 * time.Minute), b.Add(30 * time.Second)} {
		if err := st.Requeue(bg, res.ID, "media", at); err != nil {
			t.Fatalf("Requeue #%d: %v", i, err)
		}
		if n := depth(t, st, "media"); n != 1 {
			t.Errorf("QueueDepth after Requeue #%d = %d, want 1", i, n)
		}
		dues, _ := due(t, st, "media", b.Add(time.Hour))
		if len(dues) != 1 || !dues[0].At.Equal(at) {
			t.Errorf("queue after Requeue #%d = %s, want one entry at %v", i, fmtDues(dues), at)
		}
	}
}

// testRequeueUnknownEvent: Requeue of an unknown event is ErrNotFound and
// queues nothing.
func testRequeueUnknownEvent(t *testing.T, s *suite) {
	st := s.open(t, "requeue-unknown")
	ingestNew(t, st, simpleEvent("k", base(), "media"), nil)
	for _, id := range []string{"01AAAAAAAAAAAAAAAAAAAAAAAA", "no-such-event", ""} {
		if err := st.Requeue(bg, id, "media", time.Now()); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("Requeue(%q) = %v, want ErrNotFound", id, err)
		}
	}
	if n := depth(t, st, "media"); n != 1 {
		t.Errorf("QueueDepth = %d, want 1", n)
	}
}
