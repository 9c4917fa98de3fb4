package jsstore

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/hookrelay/hookrelay/relay/delivery"
	"github.com/hookrelay/hookrelay/relay/storage"
	"github.com/nats-io/nats.go/jetstream"
)

// Get returns one event with its deliveries and raw body.
func (s *Store) Get(ctx context.Context, id string) (*storage.EventView, []byte, error) {
	if err := s.check(); err != nil {
		return nil, nil, err
	}
	ev, raw, ok, err := s.eventBody(ctx, id, true)
	if err != nil {
		return nil, nil, err
	}
	if !ok {
		return nil, nil, fmt.Errorf("event %s: %w", id, storage.ErrNotFound)
	}
	ds, _, err := s.deliveries(ctx, ev)
	if err != nil {
		return nil, nil, err
	}
	return &storage.EventView{Event: *ev, Deliveries: ds, Status: delivery.EventStatusOf(ds)}, raw, nil
}

// List returns up to limit events matching f, newest first, after the
// cursor; next is the following page's cursor ("" at the end).
func (s *Store) List(ctx context.Context, f storage.Filter, cursor string, limit int) ([]storage.EventView, string, error) {
	return storage.CollectPage(limit, func(fn func(*storage.EventView) bool) error {
		return s.walk(ctx, f, cursor, true, fn)
	})
}

// Each calls fn for every event matching f, oldest first, until fn
// returns false.
func (s *Store) Each(ctx context.Context, f storage.Filter, fn func(*storage.EventView) bool) error {
	return s.walk(ctx, f, "", false, fn)
}

// eventIDs lists the ids of every stored event, ascending (one stream info
// request, paged by the server).
func (s *Store) eventIDs(ctx context.Context) ([]string, error) {
	info, err := s.stream.Info(ctx, jetstream.WithSubjectFilter(s.metaSubj("*")))
	if err != nil {
		if errors.Is(err, jetstream.ErrStreamNotFound) {
			return nil, fmt.Errorf("%w: stream %s gone", storage.ErrUnavailable, s.name)
		}
		return nil, fmt.Errorf("%w: list events: %w", storage.ErrUnavailable, err)
	}
	ids := make([]string, 0, len(info.State.Subjects))
	pre := s.metaSubj("")
	for subj := range info.State.Subjects {
		ids = append(ids, strings.TrimPrefix(subj, pre))
	}
	slices.Sort(ids)
	return ids, nil
}

func (s *Store) walk(ctx context.Context, f storage.Filter, cursor string, newestFirst bool, fn func(*storage.EventView) bool) error {
	if err := s.check(); err != nil {
		return err
	}
	if err := f.Validate(); err != nil {
		return err
	}
	var ids []string
	if len(f.IDs) > 0 {
		ids = slices.Compact(slices.Sorted(slices.Values(f.IDs)))
	} else {
		all, err := s.eventIDs(ctx)
		if err != nil {
			return err
		}
		// Ids sort by receive time: keep the window (a second of slack,
		// the exact bounds are checked on the events).
		lo, hi := 0, len(all)
		if !f.Since.IsZero() {
			lo, _ = slices.BinarySearch(all, storage.IDAt(f.Since.Add(-time.Second)))
		}
		if !f.Until.IsZero() {
			hi, _ = slices.BinarySearch(all, storage.IDAt(f.Until.Add(time.Second)))
		}
		ids = all[lo:max(lo, hi)]
	}
	if newestFirst {
		ids = slices.Clone(ids)
		slices.Reverse(ids)
	}
	for _, id := range ids {
		if err := ctx.Err(); err != nil {
			return err
		}
		if cursor != "" && id >= cursor {
			continue
		}
		ev, ok, err := s.event(ctx, id)
		if err != nil {
			return err
		}
		if !ok || !f.Match(ev) {
			continue
		}
		ds, _, err := s.deliveries(ctx, ev)
		if err != nil {
			return err
		}
		v := &storage.EventView{Event: *ev, Deliveries: ds, Status: delivery.EventStatusOf(ds)}
		if f.Status != "" && v.Status != f.Status {
			continue
		}
		if !fn(v) {
			return nil
		}
	}
	return nil
}
