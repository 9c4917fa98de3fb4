package main

import (
	"context"

	"github.com/hookrelay/hookrelay/relay/admin"
	"github.com/hookrelay/hookrelay/relay/storage"
)

// pageSizes are the sizes of the pages `events list` asks for: the first
// small, so that the first event is printed as soon as it is found, then
// larger ones (the store and the admin API are paged, newest first).
var pageSizes = [...]int{1, 10, 100, 1000}

// streamEvents hands up to limit events matching f, newest first after
// cursor, to emit as each page arrives, and returns the cursor to
// continue from ("" when nothing is left) and the number emitted.
func streamEvents(ctx context.Context, api admin.API, f storage.Filter, cursor string, limit int, emit func(*storage.EventView) error) (string, int, error) {
	n := 0
	for page := 0; n < limit; page++ {
		size := pageSizes[min(page, len(pageSizes)-1)]
		p, err := api.List(ctx, f, cursor, min(limit-n, size))
		if err != nil {
			return "", n, err
		}
		for i := range p.Events {
			if err := emit(&p.Events[i]); err != nil {
				return "", n, err
			}
			n++
		}
		cursor = p.NextCursor
		if cursor == "" {
			break
		}
	}
	return cursor, n, nil
}
