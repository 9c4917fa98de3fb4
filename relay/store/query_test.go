package store_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/hookrelay/hookrelay/relay/delivery"
	"github.com/hookrelay/hookrelay/relay/storage"
	"github.com/hookrelay/hookrelay/relay/store"
)

// openStore opens a fresh store in a temporary directory, closed at the end
// of the test.
func openStore(t *testing.T) *store.Store {
	t.Helper()
	st, err := store.Open(context.Background(), store.Options{Path: t.TempDir()})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		if err := st.Close(context.Background()); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return st
}

// fixture is one stored event: received hour hours after the base time,
// with one delivery per target that ends in the outcome given for it
// (absent: still pending).
type fixture struct {
	hour                  int
	source, provider, typ string
	targets               []string
	delivered, dead       []string
	wantStatus            delivery.EventStatus

	id         string // set by seed
	receivedAt time.Time
}

// queryFixtures spreads twelve events over twelve hours: four sources of
// three providers, several event types, and every event status.
func queryFixtures() []*fixture {
	return []*fixture{
		{hour: 0, source: "sp-prod", provider: "sketchpen", typ: "video.completed", targets: []string{"media"}, delivered: []string{"media"}, wantStatus: delivery.EventDelivered},
		{hour: 1, source: "sp-prod", provider: "sketchpen", typ: "video.failed", targets: []string{"media"}, dead: []string{"media"}, wantStatus: delivery.EventDead},
		{hour: 2, source: "vp", provider: "videopilot", typ: "render.completed", targets: []string{"media", "archive"}, delivered: []string{"media", "archive"}, wantStatus: delivery.EventDelivered},
		{hour: 3, source: "sk", provider: "shortkit", typ: "content.imported", wantStatus: delivery.EventUnrouted},
		{hour: 4, source: "sp-staging", provider: "sketchpen", typ: "video.completed", targets: []string{"media"}, wantStatus: delivery.EventPending},
		{hour: 5, source: "vp", provider: "videopilot", typ: "video.completed", targets: []string{"archive"}, dead: []string{"archive"}, wantStatus: delivery.EventDead},
		{hour: 6, source: "sk", provider: "shortkit", typ: "content.import_failed", targets: []string{"media"}, delivered: []string{"media"}, wantStatus: delivery.EventDelivered},
		{hour: 7, source: "sp-prod", provider: "sketchpen", typ: "video.completed", targets: []string{"media", "archive"}, delivered: []string{"media"}, dead: []string{"archive"}, wantStatus: delivery.EventDead},
		{hour: 8, source: "sp-staging", provider: "sketchpen", typ: "render.completed", wantStatus: delivery.EventUnrouted},
		{hour: 9, source: "vp", provider: "videopilot", typ: "render.failed", targets: []string{"media", "archive"}, delivered: []string{"archive"}, wantStatus: delivery.EventPending},
		{hour: 10, source: "sp-prod", provider: "sketchpen", typ: "video.deleted", targets: []string{"media"}, delivered: []string{"media"}, wantStatus: delivery.EventDelivered},
		{hour: 11, source: "sk", provider: "shortkit", typ: "content.imported", targets: []string{"archive"}, wantStatus: delivery.EventPending},
	}
}

// seed ingests the fixtures in receive order, hours apart from base, and
// records the attempts that give each its status.
func seed(t *testing.T, st *store.Store, base time.Time, fx []*fixture) {
	t.Helper()
	ctx := context.Background()
	for i, f := range fx {
		f.receivedAt = base.Add(time.Duration(f.hour) * time.Hour)
		ev := &storage.Event{
			Source: f.source, Provider: f.provider, Type: f.typ, Subject: fmt.Sprintf("video-%d", i),
			Time: f.receivedAt, ReceivedAt: f.receivedAt, DedupeKey: fmt.Sprintf("key-%d", i), Targets: f.targets,
		}
		res, err := st.Ingest(ctx, ev, []byte(fmt.Sprintf(`{"n":%d}`, i)))
		if err != nil || res.Duplicate {
			t.Fatalf("Ingest #%d: %+v, %v", i, res, err)
		}
		f.id = res.ID
		record := func(targets []string, o delivery.Outcome, code int) {
			for _, tg := range targets {
				r := delivery.Result{Attempt: delivery.Attempt{At: f.receivedAt.Add(time.Second), StatusCode: code, LatencyMS: 1}, Outcome: o}
				if _, err := st.RecordAttempt(ctx, f.id, tg, queueKeyOf(t, st, f.id, tg), r, delivery.Policy{MaxAttempts: 5}); err != nil {
					t.Fatalf("RecordAttempt #%d %s: %v", i, tg, err)
				}
			}
		}
		record(f.delivered, delivery.OK, 200)
		record(f.dead, delivery.Permanent, 404)
	}
}

// ids returns the ids of the fixtures at the given indexes.
func ids(fx []*fixture, idx ...int) []string {
	out := make([]string, 0, len(idx))
	for _, i := range idx {
		out = append(out, fx[i].id)
	}
	return out
}

func viewIDs(vs []storage.EventView) []string {
	out := make([]string, 0, len(vs))
	for _, v := range vs {
		out = append(out, v.ID)
	}
	return out
}

// label names fixture ids in failure messages.
func label(fx []*fixture, list []string) []string {
	out := make([]string, 0, len(list))
	for _, id := range list {
		name := id
		for i, f := range fx {
			if f.id == id {
				name = fmt.Sprintf("#%d", i)
			}
		}
		out = append(out, name)
	}
	return out
}

func TestFilters(t *testing.T) {
	st := openStore(t)
	base := time.Now().UTC().Add(-24 * time.Hour).Truncate(time.Hour)
	fx := queryFixtures()
	seed(t, st, base, fx)
	at := func(h float64) time.Time { return base.Add(time.Duration(h * float64(time.Hour))) }

	tests := []struct {
		name string
		f    storage.Filter
		want []int // oldest first
	}{
		{"everything", storage.Filter{}, []int{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11}},
		{"type glob video.*", storage.Filter{Type: "video.*"}, []int{0, 1, 4, 5, 7, 10}},
		{"type glob render.*", storage.Filter{Type: "render.*"}, []int{2, 8, 9}},
		{"type glob *.completed", storage.Filter{Type: "*.completed"}, []int{0, 2, 4, 5, 7, 8}},
		{"exact type", storage.Filter{Type: "video.completed"}, []int{0, 4, 5, 7}},
		{"type glob matching nothing", storage.Filter{Type: "nothing.*"}, nil},
		{"source", storage.Filter{Source: "sp-prod"}, []int{0, 1, 7, 10}},
		{"unknown source", storage.Filter{Source: "sp"}, nil},
		{"provider", storage.Filter{Provider: "sketchpen"}, []int{0, 1, 4, 7, 8, 10}},
		{"provider and type", storage.Filter{Provider: "videopilot", Type: "render.*"}, []int{2, 9}},
		{"status dead", storage.Filter{Status: delivery.EventDead}, []int{1, 5, 7}},
		{"status delivered", storage.Filter{Status: delivery.EventDelivered}, []int{0, 2, 6, 10}},
		{"status pending", storage.Filter{Status: delivery.EventPending}, []int{4, 9, 11}},
		{"status unrouted", storage.Filter{Status: delivery.EventUnrouted}, []int{3, 8}},
		{"since inclusive, until exclusive", storage.Filter{Since: at(3), Until: at(6)}, []int{3, 4, 5}},
		{"since only", storage.Filter{Since: at(9)}, []int{9, 10, 11}},
		{"until only", storage.Filter{Until: at(2)}, []int{0, 1}},
		{"window between events", storage.Filter{Since: at(2.5), Until: at(7.5)}, []int{3, 4, 5, 6, 7}},
		{"window a millisecond wide", storage.Filter{Since: at(5), Until: at(5).Add(time.Millisecond)}, []int{5}},
		{"empty window", storage.Filter{Since: at(5.1), Until: at(5.9)}, nil},
		{"window after everything", storage.Filter{Since: at(12)}, nil},
		{"window before everything", storage.Filter{Until: at(-1)}, nil},
		{"source, status and since", storage.Filter{Source: "sp-prod", Status: delivery.EventDelivered, Since: at(5)}, []int{10}},
		{"everything combined", storage.Filter{Source: "vp", Provider: "videopilot", Type: "video.*", Status: delivery.EventDead, Since: at(1), Until: at(11)}, []int{5}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			oldest := ids(fx, tt.want...)
			newest := slices.Clone(oldest)
			slices.Reverse(newest)

			var each []string
			if err := st.Each(context.Background(), tt.f, func(v *storage.EventView) bool {
				each = append(each, v.ID)
				return true
			}); err != nil {
				t.Fatalf("Each: %v", err)
			}
			if !slices.Equal(each, oldest) {
				t.Errorf("Each = %v, want %v (oldest first)", label(fx, each), label(fx, oldest))
			}

			// Every page size returns each event exactly once, newest first.
			for _, limit := range []int{1, 2, 3, 5, 50} {
				got, pages := listAll(t, st, tt.f, limit)
				if !slices.Equal(got, newest) {
					t.Errorf("List limit %d = %v, want %v (newest first)", limit, label(fx, got), label(fx, newest))
				}
				if want := max(1, (len(newest)+limit-1)/limit); pages != want {
					t.Errorf("List limit %d took %d pages, want %d", limit, pages, want)
				}
			}
		})
	}

	t.Run("statuses and views", func(t *testing.T) {
		for i, f := range fx {
			v, raw, err := st.Get(context.Background(), f.id)
			if err != nil {
				t.Fatalf("Get #%d: %v", i, err)
			}
			if got, want := v.Status, f.wantStatus; got != want {
				t.Errorf("#%d status = %q, want %q", i, got, want)
			}
			if got, want := len(v.Deliveries), len(f.targets); got != want {
				t.Errorf("#%d has %d deliveries, want %d", i, got, want)
			}
			if got, want := string(raw), fmt.Sprintf(`{"n":%d}`, i); got != want {
				t.Errorf("#%d raw = %s, want %s", i, got, want)
			}
			if !v.ReceivedAt.Equal(f.receivedAt) {
				t.Errorf("#%d received_at = %v, want %v", i, v.ReceivedAt, f.receivedAt)
			}
		}
	})

	t.Run("each stops when fn returns false", func(t *testing.T) {
		var got []string
		err := st.Each(context.Background(), storage.Filter{Type: "video.*"}, func(v *storage.EventView) bool {
			got = append(got, v.ID)
			return len(got) < 2
		})
		if err != nil {
			t.Fatal(err)
		}
		if want := ids(fx, 0, 1); !slices.Equal(got, want) {
			t.Errorf("Each = %v, want %v", label(fx, got), label(fx, want))
		}
	})

	t.Run("ids", func(t *testing.T) {
		f := storage.Filter{IDs: ids(fx, 7, 2, 11, 2)}
		f.IDs = append(f.IDs, "01AAAAAAAAAAAAAAAAAAAAAAAA") // unknown: skipped
		var each []string
		if err := st.Each(context.Background(), f, func(v *storage.EventView) bool {
			each = append(each, v.ID)
			return true
		}); err != nil {
			t.Fatal(err)
		}
		if want := ids(fx, 2, 7, 11); !slices.Equal(each, want) {
			t.Errorf("Each(ids) = %v, want %v (oldest first, each once)", label(fx, each), label(fx, want))
		}
		for _, limit := range []int{1, 2, 50} {
			got, _ := listAll(t, st, f, limit)
			if want := ids(fx, 11, 7, 2); !slices.Equal(got, want) {
				t.Errorf("List(ids) limit %d = %v, want %v (newest first, each once)", limit, label(fx, got), label(fx, want))
			}
		}
		f.Status = delivery.EventDead
		got, _ := listAll(t, st, f, 50)
		if want := ids(fx, 7); !slices.Equal(got, want) {
			t.Errorf("List(ids, dead) = %v, want %v", label(fx, got), label(fx, want))
		}
	})

	t.Run("cursor with a time window", func(t *testing.T) {
		f := storage.Filter{Since: at(2), Until: at(9)}
		page, next, err := st.List(context.Background(), f, "", 3)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := viewIDs(page), ids(fx, 8, 7, 6); !slices.Equal(got, want) {
			t.Fatalf("page 1 = %v, want %v", label(fx, got), label(fx, want))
		}
		if got, want := next, fx[6].id; got != want {
			t.Fatalf("next = %s, want %s", got, want)
		}
		page, next, err = st.List(context.Background(), f, next, 3)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := viewIDs(page), ids(fx, 5, 4, 3); !slices.Equal(got, want) {
			t.Fatalf("page 2 = %v, want %v", label(fx, got), label(fx, want))
		}
		page, next, err = st.List(context.Background(), f, next, 3)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := viewIDs(page), ids(fx, 2); !slices.Equal(got, want) || next != "" {
			t.Fatalf("page 3 = %v next %q, want %v and no next", label(fx, got), next, label(fx, want))
		}
	})
}

// listAll pages through List with limit and returns every id in order and
// the number of pages.
func listAll(t *testing.T, st *store.Store, f storage.Filter, limit int) ([]string, int) {
	t.Helper()
	var out []string
	seen := map[string]bool{}
	cursor := ""
	for pages := 1; ; pages++ {
		if pages > 100 {
			t.Fatalf("List limit %d: more than 100 pages (cursor loop?)", limit)
		}
		page, next, err := st.List(context.Background(), f, cursor, limit)
		if err != nil {
			t.Fatalf("List: %v", err)
		}
		if len(page) > limit {
			t.Fatalf("List returned %d events, limit %d", len(page), limit)
		}
		for _, v := range page {
			if seen[v.ID] {
				t.Fatalf("List limit %d returned %s twice", limit, v.ID)
			}
			seen[v.ID] = true
			out = append(out, v.ID)
		}
		if next == "" {
			return out, pages
		}
		if len(page) == 0 {
			t.Fatalf("List limit %d: empty page with next cursor %q", limit, next)
		}
		cursor = next
	}
}

func TestFilterValidate(t *testing.T) {
	st := openStore(t)
	tests := []struct {
		name string
		f    storage.Filter
		ok   bool
	}{
		{"zero", storage.Filter{}, true},
		{"glob", storage.Filter{Type: "video.*"}, true},
		{"every status", storage.Filter{Status: delivery.EventUnrouted}, true},
		{"bad glob", storage.Filter{Type: "video.["}, false},
		{"unknown status", storage.Filter{Status: "failed"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.f.Validate()
			if got := err == nil; got != tt.ok {
				t.Fatalf("Validate = %v, want ok=%v", err, tt.ok)
			}
			if _, _, err := st.List(context.Background(), tt.f, "", 10); (err == nil) != tt.ok {
				t.Errorf("List = %v, want ok=%v", err, tt.ok)
			}
			if err := st.Each(context.Background(), tt.f, func(*storage.EventView) bool { return true }); (err == nil) != tt.ok {
				t.Errorf("Each = %v, want ok=%v", err, tt.ok)
			}
		})
	}
}

func TestGetUnknown(t *testing.T) {
	st := openStore(t)
	if _, _, err := st.Get(context.Background(), "01AAAAAAAAAAAAAAAAAAAAAAAA"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("Get(unknown) = %v, want ErrNotFound", err)
	}
	if err := st.Requeue(context.Background(), "01AAAAAAAAAAAAAAAAAAAAAAAA", "media", time.Now()); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("Requeue(unknown) = %v, want ErrNotFound", err)
	}
}

// TestRequeue replays a dead delivery and sends an event to a target it was
// not routed to: both become pending replays, due now, in the queue.
func TestRequeue(t *testing.T) {
	st := openStore(t)
	ctx := context.Background()
	received := time.Now().UTC().Add(-time.Hour)
	res, err := st.Ingest(ctx, &storage.Event{Source: "sp", Provider: "sketchpen", Type: "video.completed", ReceivedAt: received, DedupeKey: "k", Targets: []string{"media"}}, []byte(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	id := res.ID
	depth := func(target string) int {
		t.Helper()
		n, err := st.QueueDepth(context.Background(), target)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	if got := depth("media"); got != 1 {
		t.Fatalf("queue depth after ingest = %d, want 1", got)
	}
	r := delivery.Result{Attempt: delivery.Attempt{At: received, StatusCode: 404}, Outcome: delivery.Permanent}
	if _, err := st.RecordAttempt(ctx, id, "media", queueKeyOf(t, st, id, "media"), r, delivery.Policy{MaxAttempts: 5}); err != nil {
		t.Fatal(err)
	}
	if got := depth("media"); got != 0 {
		t.Fatalf("queue depth of a dead delivery = %d, want 0", got)
	}

	now := time.Now()
	for _, target := range []string{"media", "archive"} {
		if err := st.Requeue(ctx, id, target, now); err != nil {
			t.Fatalf("Requeue %s: %v", target, err)
		}
		if got := depth(target); got != 1 {
			t.Errorf("queue depth of %s after Requeue = %d, want 1", target, got)
		}
		_, _, d, err := st.LoadDelivery(context.Background(), id, target)
		if err != nil {
			t.Fatal(err)
		}
		if d.Status != delivery.Pending || !d.Replay || d.Tries != 0 || !d.NextAt.Equal(now) {
			t.Errorf("%s after Requeue = %+v, want a pending replay due now with no tries", target, d)
		}
		due, _, err := st.DueDeliveries(context.Background(), target, now, 10, nil)
		if err != nil || len(due) != 1 || due[0].EventID != id {
			t.Errorf("DueDeliveries(%s) = %v, %v; want the replay", target, due, err)
		}
	}
	// The dead delivery keeps its history.
	v, _, err := st.Get(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := v.Status, delivery.EventPending; got != want {
		t.Errorf("event status = %q, want %q", got, want)
	}
	for _, d := range v.Deliveries {
		if d.Target == "media" && len(d.Attempts) != 1 {
			t.Errorf("media attempts = %d, want the 1 before the replay", len(d.Attempts))
		}
	}
	// Requeueing a pending replay again moves its queue entry, not doubles it.
	if err := st.Requeue(ctx, id, "media", now.Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	if got := depth("media"); got != 1 {
		t.Errorf("queue depth after a second Requeue = %d, want 1", got)
	}
}

// queueKeyOf returns the queue entry of a pending delivery (due at commit
// time, which the store chooses).
func queueKeyOf(t *testing.T, st *store.Store, id, target string) []byte {
	t.Helper()
	_, _, d, err := st.LoadDelivery(context.Background(), id, target)
	if err != nil {
		t.Fatalf("LoadDelivery %s/%s: %v", id, target, err)
	}
	return store.QueueKey(target, d.NextAt, id)
}
