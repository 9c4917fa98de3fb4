// Package storagetest is the conformance suite of the storage seam: the
// contract of storage.Store stated as tests. Every implementation runs it
// from its own tests:
//
//	func TestConformance(t *testing.T) {
//		storagetest.Run(t, storagetest.Harness{Open: ...})
//	}
//
// The suite uses real time only where the contract does (Ingest queues at
// ev.ReceivedAt, Requeue at the given now): receive times are an hour or
// more in the past, retry times explicitly in the past or future, and the
// retention and dedupe windows it asks for are long enough that nothing
// expires while it runs. It never sleeps.
package storagetest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/hookrelay/hookrelay/relay/delivery"
	"github.com/hookrelay/hookrelay/relay/storage"
)

// Options are the settings the suite opens a store with.
type Options struct {
	// Retention is how long events, bodies and deliveries are kept.
	Retention time.Duration
	// DedupeWindow is how long a dedupe claim lasts.
	DedupeWindow time.Duration
}

// Harness opens stores of the implementation under test.
type Harness struct {
	// Open opens the store called name with o, failing t if it cannot.
	// A name not opened before in this Run is a new, empty store,
	// independent of every other; opening a name again after its store was
	// closed reopens the same data. The suite closes every store it opens
	// (Close may be called more than once); the harness removes the data
	// (t.TempDir, say) when the test ends. Names are unique within one
	// Run, so a harness keeps a name -> location map per Run call.
	Open func(t *testing.T, name string, o Options) storage.Store
}

// The windows the suite opens stores with: far longer than a run.
const (
	retention    = 48 * time.Hour
	dedupeWindow = 24 * time.Hour
)

// Run runs the conformance suite against h. Subtests are sequential: each
// opens its own stores.
func Run(t *testing.T, h Harness) {
	if h.Open == nil {
		t.Fatal("storagetest: Harness.Open is nil")
	}
	s := &suite{h: h}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { c.fn(t, s) })
	}
}

type suite struct{ h Harness }

type testCase struct {
	name string
	fn   func(t *testing.T, s *suite)
}

// cases is every subtest, in the order Run runs them.
var cases = []testCase{
	// ingest.go
	{"IngestNew", testIngestNew},
	{"IngestDuplicate", testIngestDuplicate},
	{"IngestSameKeyOtherSource", testIngestSameKeyOtherSource},
	{"IngestUnrouted", testIngestUnrouted},
	{"ConcurrentClaims", testConcurrentClaims},
	// queue.go
	{"DueDeliveries", testDueDeliveries},
	{"QueueDepth", testQueueDepth},
	{"RecordAttemptOK", testRecordAttemptOK},
	{"RecordAttemptRetry", testRecordAttemptRetry},
	{"RecordAttemptRetryInThePast", testRecordAttemptRetryPast},
	{"RecordAttemptPermanent", testRecordAttemptPermanent},
	{"RecordAttemptMaxAttempts", testRecordAttemptMaxAttempts},
	{"RecordAttemptSuperseded", testRecordAttemptSuperseded},
	{"Requeue", testRequeue},
	{"RequeuePending", testRequeuePending},
	{"RequeueUnknownEvent", testRequeueUnknownEvent},
	// query.go
	{"GetUnknown", testGetUnknown},
	{"ListPagination", testListPagination},
	{"Filters", testFilters},
	{"FilterIDs", testFilterIDs},
	{"EachStops", testEachStops},
	// targets.go
	{"Pause", testPause},
	{"PausePersists", testPausePersists},
	// lifecycle.go
	{"Ready", testReady},
	{"Persistence", testPersistence},
	{"Closed", testClosed},
}

// open opens the store name for t's test and closes it when the test ends.
func (s *suite) open(t *testing.T, name string) storage.Store {
	t.Helper()
	st := s.h.Open(t, name, Options{Retention: retention, DedupeWindow: dedupeWindow})
	if st == nil {
		t.Fatalf("Harness.Open(%q) returned nil", name)
	}
	t.Cleanup(func() {
		if err := st.Close(context.Background()); err != nil && !errors.Is(err, storage.ErrUnavailable) {
			t.Errorf("Close %s: %v", name, err)
		}
	})
	return st
}

var bg = context.Background()

// base is a receive time an hour in the past, at millisecond precision.
func base() time.Time { return time.Now().UTC().Add(-time.Hour).Truncate(time.Millisecond) }

// ingest ingests ev and fails t on error.
func ingest(t *testing.T, st storage.Store, ev *storage.Event, raw []byte) storage.Result {
	t.Helper()
	res, err := st.Ingest(bg, ev, raw)
	if err != nil {
		t.Fatalf("Ingest %s/%s: %v", ev.Source, ev.DedupeKey, err)
	}
	return res
}

// ingestNew ingests ev and fails t unless it is accepted.
func ingestNew(t *testing.T, st storage.Store, ev *storage.Event, raw []byte) storage.Result {
	t.Helper()
	res := ingest(t, st, ev, raw)
	if res.Duplicate || res.ID == "" {
		t.Fatalf("Ingest %s/%s = %+v, want a new event with an id", ev.Source, ev.DedupeKey, res)
	}
	return res
}

// simpleEvent is an event of source "src" with key, received at, routed to
// targets.
func simpleEvent(key string, at time.Time, targets ...string) *storage.Event {
	return &storage.Event{Source: "src", Provider: "sketchpen", Type: "video.completed", Subject: "s-" + key,
		Time: at, ReceivedAt: at, DedupeKey: key, Targets: targets}
}

// due returns the queued deliveries of target due at or before now, at
// most 100, failing t on error.
func due(t *testing.T, st storage.Store, target string, now time.Time) ([]storage.Due, time.Time) {
	t.Helper()
	dues, next, err := st.DueDeliveries(bg, target, now, 100, nil)
	if err != nil {
		t.Fatalf("DueDeliveries %s: %v", target, err)
	}
	return dues, next
}

// onlyDue returns the one queued delivery of target due at or before now,
// failing t unless there is exactly one and it is of event id.
func onlyDue(t *testing.T, st storage.Store, target, id string, now time.Time) storage.Due {
	t.Helper()
	dues, _ := due(t, st, target, now)
	if len(dues) != 1 || dues[0].EventID != id || dues[0].Target != target {
		t.Fatalf("DueDeliveries %s at %v = %s, want only event %s", target, now, fmtDues(dues), id)
	}
	return dues[0]
}

func depth(t *testing.T, st storage.Store, target string) int {
	t.Helper()
	n, err := st.QueueDepth(bg, target)
	if err != nil {
		t.Fatalf("QueueDepth %s: %v", target, err)
	}
	return n
}

func load(t *testing.T, st storage.Store, id, target string) (*storage.Event, []byte, *delivery.Delivery) {
	t.Helper()
	ev, raw, d, err := st.LoadDelivery(bg, id, target)
	if err != nil {
		t.Fatalf("LoadDelivery %s/%s: %v", id, target, err)
	}
	if ev == nil || d == nil {
		t.Fatalf("LoadDelivery %s/%s returned a nil event or delivery", id, target)
	}
	return ev, raw, d
}

func get(t *testing.T, st storage.Store, id string) (*storage.EventView, []byte) {
	t.Helper()
	v, raw, err := st.Get(bg, id)
	if err != nil {
		t.Fatalf("Get %s: %v", id, err)
	}
	if v == nil {
		t.Fatalf("Get %s returned a nil view", id)
	}
	return v, raw
}

// deliveryOf returns v's delivery to target.
func deliveryOf(t *testing.T, v *storage.EventView, target string) delivery.Delivery {
	t.Helper()
	for _, d := range v.Deliveries {
		if d.Target == target {
			return d
		}
	}
	t.Fatalf("event %s has no delivery to %s (deliveries %+v)", v.ID, target, v.Deliveries)
	return delivery.Delivery{}
}

// record records attempt outcome o at at for queue entry key under p.
func record(t *testing.T, st storage.Store, id, target string, key []byte, o delivery.Outcome, at, retryAt time.Time, p delivery.Policy) delivery.Delivery {
	t.Helper()
	d, err := st.RecordAttempt(bg, id, target, key, attemptResult(o, at, retryAt), p)
	if err != nil {
		t.Fatalf("RecordAttempt %s/%s %v: %v", id, target, o, err)
	}
	return d
}

func attemptResult(o delivery.Outcome, at, retryAt time.Time) delivery.Result {
	code := map[delivery.Outcome]int{delivery.OK: 200, delivery.Retry: 503, delivery.Permanent: 404}[o]
	return delivery.Result{Attempt: delivery.Attempt{At: at, StatusCode: code, LatencyMS: 1.5}, Outcome: o, RetryAt: retryAt}
}

func fmtDues(ds []storage.Due) string {
	s := "["
	for i, d := range ds {
		if i > 0 {
			s += " "
		}
		s += d.EventID + "/" + d.Target + "@" + d.At.UTC().Format(time.RFC3339Nano)
	}
	return s + "]"
}
