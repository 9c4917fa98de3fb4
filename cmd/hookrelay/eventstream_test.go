package main

import (
	"context"
	"fmt"
	"testing"

	"github.com/hookrelay/hookrelay/relay/admin"
	"github.com/hookrelay/hookrelay/relay/storage"
)

// pagedAPI serves n events in pages and records how many had been
// emitted when each page was asked for.
type pagedAPI struct {
	admin.API
	n         int
	emitted   *int
	atRequest []int
	sizes     []int
}

func (p *pagedAPI) List(ctx context.Context, f storage.Filter, cursor string, limit int) (*admin.Page, error) {
	p.atRequest = append(p.atRequest, *p.emitted)
	p.sizes = append(p.sizes, limit)
	start := 0
	if cursor != "" {
		fmt.Sscanf(cursor, "ev-%d", &start)
		start++
	}
	page := &admin.Page{}
	for i := start; i < p.n && len(page.Events) < limit; i++ {
		page.Events = append(page.Events, storage.EventView{Event: storage.Event{ID: fmt.Sprintf("ev-%d", i)}})
	}
	if last := start + len(page.Events); last < p.n && len(page.Events) > 0 {
		page.NextCursor = page.Events[len(page.Events)-1].ID
	}
	return page, nil
}

// TestStreamEvents: `events list` hands on each event as its page
// arrives, the first page holding a single event, so the first line is
// printed before the rest of the scan has run; it stops at the limit.
func TestStreamEvents(t *testing.T) {
	emitted := 0
	api := &pagedAPI{n: 500, emitted: &emitted}
	var ids []string
	next, n, err := streamEvents(context.Background(), api, storage.Filter{}, "", 300, func(ev *storage.EventView) error {
		emitted++
		ids = append(ids, ev.ID)
		return nil
	})
	if err != nil || n != 300 || len(ids) != 300 || ids[0] != "ev-0" || ids[299] != "ev-299" {
		t.Fatalf("streamEvents = %q, %d, %v; ids %d", next, n, err, len(ids))
	}
	if next != "ev-299" {
		t.Errorf("next cursor = %q, want ev-299", next)
	}
	if len(api.atRequest) < 2 || api.sizes[0] != 1 || api.atRequest[1] != 1 {
		t.Errorf("pages asked %v with %v already printed: want a first page of 1, printed before the next is asked for", api.sizes, api.atRequest)
	}
	emitted = 0
	api = &pagedAPI{n: 5, emitted: &emitted}
	if next, n, err := streamEvents(context.Background(), api, storage.Filter{}, "", 50, func(*storage.EventView) error { emitted++; return nil }); err != nil || n != 5 || next != "" {
		t.Errorf("short list: %q, %d, %v", next, n, err)
	}
}
