package storagetest

import (
	"errors"
	"fmt"
	"path"
	"slices"
	"testing"
	"time"

	"github.com/hookrelay/hookrelay/relay/delivery"
	"github.com/hookrelay/hookrelay/relay/storage"
)

// testGetUnknown: Get and LoadDelivery of an unknown id are ErrNotFound.
func testGetUnknown(t *testing.T, s *suite) {
	st := s.open(t, "get-unknown")
	ingestNew(t, st, simpleEvent("k", base(), "media"), nil)
	for _, id := range []string{"01AAAAAAAAAAAAAAAAAAAAAAAA", "no-such-event"} {
		if v, _, err := st.Get(bg, id); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("Get(%q) = %+v, %v; want ErrNotFound", id, v, err)
		}
		if _, _, _, err := st.LoadDelivery(bg, id, "media"); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("LoadDelivery(%q) = %v, want ErrNotFound", id, err)
		}
	}
}

// fixture is one event of the query fixtures.
type fixture struct {
	source, provider, typ string
	at                    time.Time
	status                delivery.EventStatus
	id                    string
}

// seedQuery ingests n events a minute apart, oldest first, cycling through
// sources, providers, types and every event status, and records the
// attempts that give each its status.
func seedQuery(t *testing.T, st storage.Store, n int) ([]*fixture, time.Time) {
	t.Helper()
	b := base().Add(-time.Duration(n) * time.Minute)
	sources := []string{"sp-prod", "vp", "sk"}
	providers := map[string]string{"sp-prod": "sketchpen", "vp": "videopilot", "sk": "shortkit"}
	types := []string{"video.completed", "video.failed", "render.completed", "content.imported"}
	p := delivery.Policy{MaxAttempts: 3}
	var fx []*fixture
	for i := range n {
		f := &fixture{source: sources[i%3], typ: types[i%4], at: b.Add(time.Duration(i) * time.Minute)}
		f.provider = providers[f.source]
		ev := &storage.Event{Source: f.source, Provider: f.provider, Type: f.typ, Subject: fmt.Sprint(i),
			Time: f.at, ReceivedAt: f.at, DedupeKey: fmt.Sprintf("q-%d", i)}
		// i%5: 0 pending, 1 delivered, 2 dead, 3 unrouted, 4 one delivered
		// and one dead (dead).
		switch i % 5 {
		case 0, 1, 2:
			ev.Targets = []string{"media"}
		case 4:
			ev.Targets = []string{"media", "archive"}
		}
		res := ingestNew(t, st, ev, fmt.Appendf(nil, `{"n":%d}`, i))
		f.id = res.ID
		switch i % 5 {
		case 0:
			f.status = delivery.EventPending
		case 1:
			record(t, st, f.id, "media", res.Queued[0].Key, delivery.OK, f.at, time.Time{}, p)
			f.status = delivery.EventDelivered
		case 2:
			record(t, st, f.id, "media", res.Queued[0].Key, delivery.Permanent, f.at, time.Time{}, p)
			f.status = delivery.EventDead
		case 3:
			f.status = delivery.EventUnrouted
		case 4:
			record(t, st, f.id, "media", res.Queued[0].Key, delivery.OK, f.at, time.Time{}, p)
			record(t, st, f.id, "archive", res.Queued[1].Key, delivery.Permanent, f.at, time.Time{}, p)
			f.status = delivery.EventDead
		}
		fx = append(fx, f)
	}
	return fx, b
}

// matching returns the ids of the fixtures f selects, oldest first,
// computed here (not with Filter.Match) as the reference.
func matching(fx []*fixture, f storage.Filter) []string {
	var out []string
	for _, x := range fx {
		if f.Source != "" && x.source != f.Source || f.Provider != "" && x.provider != f.Provider ||
			f.Status != "" && x.status != f.Status ||
			!f.Since.IsZero() && x.at.Before(f.Since) || !f.Until.IsZero() && !x.at.Before(f.Until) {
			continue
		}
		if f.Type != "" {
			if ok, _ := path.Match(f.Type, x.typ); !ok {
				continue
			}
		}
		if len(f.IDs) > 0 && !slices.Contains(f.IDs, x.id) {
			continue
		}
		out = append(out, x.id)
	}
	return out
}

func reversed(s []string) []string {
	r := slices.Clone(s)
	slices.Reverse(r)
	return r
}

// listAll pages through List with limit: every id in order and the number
// of pages, failing t on repeats, oversized pages or a cursor loop.
func listAll(t *testing.T, st storage.Store, f storage.Filter, limit int) ([]string, int) {
	t.Helper()
	var out []string
	seen := map[string]bool{}
	cursor := ""
	for pages := 1; ; pages++ {
		if pages > 200 {
			t.Fatalf("List %+v limit %d: more than 200 pages (cursor loop?)", f, limit)
		}
		page, next, err := st.List(bg, f, cursor, limit)
		if err != nil {
			t.Fatalf("List %+v: %v", f, err)
		}
		if len(page) > limit {
			t.Fatalf("List limit %d returned %d events", limit, len(page))
		}
		for _, v := range page {
			if seen[v.ID] {
				t.Fatalf("List %+v limit %d returned %s twice", f, limit, v.ID)
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

// testListPagination: 25 events, newest first, every page size returns
// each once, in full pages, and next is "" after the last.
func testListPagination(t *testing.T, s *suite) {
	st := s.open(t, "list-pages")
	fx, _ := seedQuery(t, st, 25)
	want := reversed(matching(fx, storage.Filter{}))
	for _, limit := range []int{7, 5, 1, 24, 25, 26, 100} {
		got, pages := listAll(t, st, storage.Filter{}, limit)
		if !slices.Equal(got, want) {
			t.Errorf("List limit %d = %v, want %v (newest first)", limit, label(fx, got), label(fx, want))
		}
		if wantPages := (len(want) + limit - 1) / limit; pages != wantPages {
			t.Errorf("List limit %d took %d pages, want %d", limit, pages, wantPages)
		}
	}
	// The pages of 7 one by one: 7, 7, 7, 4, each cursor the page's last.
	cursor := ""
	for i, n := range []int{7, 7, 7, 4} {
		page, next, err := st.List(bg, storage.Filter{}, cursor, 7)
		if err != nil {
			t.Fatal(err)
		}
		if len(page) != n {
			t.Fatalf("page %d has %d events, want %d", i, len(page), n)
		}
		for j, v := range page {
			if w := want[i*7+j]; v.ID != w {
				t.Errorf("page %d[%d] = %s, want %s", i, j, v.ID, w)
			}
			if f := fx[slices.IndexFunc(fx, func(f *fixture) bool { return f.id == v.ID })]; v.Status != f.status || v.Source != f.source {
				t.Errorf("listed %s: status %q source %q, want %q %q", v.ID, v.Status, v.Source, f.status, f.source)
			}
		}
		if (next == "") != (i == 3) {
			t.Fatalf("page %d next = %q", i, next)
		}
		cursor = next
	}
	// Each: oldest first.
	if got, w := ids(t, st, storage.Filter{}), matching(fx, storage.Filter{}); !slices.Equal(got, w) {
		t.Errorf("Each = %v, want %v (oldest first)", label(fx, got), label(fx, w))
	}
	// An empty store lists nothing.
	empty := s.open(t, "list-empty")
	if page, next, err := empty.List(bg, storage.Filter{}, "", 10); err != nil || len(page) != 0 || next != "" {
		t.Errorf("List of an empty store = %d events, next %q, %v", len(page), next, err)
	}
}

// testFilters: each filter field and combinations, through List (pages of
// 3 and 50) and Each.
func testFilters(t *testing.T, s *suite) {
	st := s.open(t, "filters")
	fx, b := seedQuery(t, st, 25)
	at := func(i int) time.Time { return b.Add(time.Duration(i) * time.Minute) }
	tests := []struct {
		name string
		f    storage.Filter
		want int // expected number of matches, a check on the reference
	}{
		{"everything", storage.Filter{}, 25},
		{"source", storage.Filter{Source: "vp"}, 8},
		{"unknown source", storage.Filter{Source: "v"}, 0},
		{"provider", storage.Filter{Provider: "shortkit"}, 8},
		{"exact type", storage.Filter{Type: "video.failed"}, 6},
		{"type glob prefix", storage.Filter{Type: "video.*"}, 13},
		{"type glob suffix", storage.Filter{Type: "*.completed"}, 13},
		{"type glob matching nothing", storage.Filter{Type: "nothing.*"}, 0},
		{"status pending", storage.Filter{Status: delivery.EventPending}, 5},
		{"status delivered", storage.Filter{Status: delivery.EventDelivered}, 5},
		{"status dead", storage.Filter{Status: delivery.EventDead}, 10},
		{"status unrouted", storage.Filter{Status: delivery.EventUnrouted}, 5},
		{"since inclusive", storage.Filter{Since: at(20)}, 5},
		{"until exclusive", storage.Filter{Until: at(5)}, 5},
		{"since and until", storage.Filter{Since: at(3), Until: at(10)}, 7},
		{"window between events", storage.Filter{Since: at(3).Add(30 * time.Second), Until: at(10).Add(30 * time.Second)}, 7},
		{"window a millisecond wide", storage.Filter{Since: at(12), Until: at(12).Add(time.Millisecond)}, 1},
		{"empty window", storage.Filter{Since: at(12).Add(time.Millisecond), Until: at(13)}, 0},
		{"window after everything", storage.Filter{Since: at(25)}, 0},
		{"window before everything", storage.Filter{Until: at(0)}, 0},
		{"source and status", storage.Filter{Source: "sp-prod", Status: delivery.EventDead}, 3},
		{"everything combined", storage.Filter{Source: "sk", Provider: "shortkit", Type: "*.completed", Status: delivery.EventDead, Since: at(1), Until: at(24)}, 2},
	}
	for _, tt := range tests {
		oldest := matching(fx, tt.f)
		if len(oldest) != tt.want {
			t.Fatalf("%s: reference matches %d, the table says %d (fixture changed?)", tt.name, len(oldest), tt.want)
		}
		if got := ids(t, st, tt.f); !slices.Equal(got, oldest) {
			t.Errorf("%s: Each = %v, want %v (oldest first)", tt.name, label(fx, got), label(fx, oldest))
		}
		for _, limit := range []int{3, 50} {
			if got, _ := listAll(t, st, tt.f, limit); !slices.Equal(got, reversed(oldest)) {
				t.Errorf("%s: List limit %d = %v, want %v (newest first)", tt.name, limit, label(fx, got), label(fx, reversed(oldest)))
			}
		}
	}
}

// testFilterIDs: an id filter visits the known ids among them, each once,
// in scan order, combined with the other fields.
func testFilterIDs(t *testing.T, s *suite) {
	st := s.open(t, "filter-ids")
	fx, _ := seedQuery(t, st, 10)
	f := storage.Filter{IDs: []string{fx[7].id, fx[2].id, fx[9].id, fx[2].id, "01AAAAAAAAAAAAAAAAAAAAAAAA"}}
	want := []string{fx[2].id, fx[7].id, fx[9].id}
	if got := ids(t, st, f); !slices.Equal(got, want) {
		t.Errorf("Each(ids) = %v, want %v", label(fx, got), label(fx, want))
	}
	for _, limit := range []int{1, 2, 50} {
		if got, _ := listAll(t, st, f, limit); !slices.Equal(got, reversed(want)) {
			t.Errorf("List(ids) limit %d = %v, want %v", limit, label(fx, got), label(fx, reversed(want)))
		}
	}
	f.Status = delivery.EventDead // #2 and #7 (i%5 == 2 and 4... #7 is 2 mod 5)
	if got, w := ids(t, st, f), matching(fx, f); !slices.Equal(got, w) {
		t.Errorf("Each(ids, dead) = %v, want %v", label(fx, got), label(fx, w))
	}
}

// testEachStops: Each stops as soon as fn returns false.
func testEachStops(t *testing.T, s *suite) {
	st := s.open(t, "each-stops")
	fx, _ := seedQuery(t, st, 10)
	var got []string
	if err := st.Each(bg, storage.Filter{}, func(v *storage.EventView) bool {
		got = append(got, v.ID)
		return len(got) < 3
	}); err != nil {
		t.Fatal(err)
	}
	if want := []string{fx[0].id, fx[1].id, fx[2].id}; !slices.Equal(got, want) {
		t.Errorf("Each = %v, want the 3 oldest %v", label(fx, got), label(fx, want))
	}
	calls := 0
	if err := st.Each(bg, storage.Filter{Source: "vp"}, func(*storage.EventView) bool { calls++; return false }); err != nil || calls != 1 {
		t.Errorf("Each returning false at once: %d calls, %v; want 1", calls, err)
	}
}

// label names fixture ids (#index) in failure messages.
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
