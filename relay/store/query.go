package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/hookrelay/hookrelay/relay/delivery"
	"github.com/hookrelay/hookrelay/relay/storage"
)

// Get returns one event with its deliveries and raw body.
func (s *Store) Get(ctx context.Context, id string) (*storage.EventView, []byte, error) {
	var v *storage.EventView
	var raw []byte
	err := s.read(func(txn *badger.Txn) error {
		var err error
		if v, err = s.view(txn, id); err != nil {
			return err
		}
		item, err := txn.Get(rawKey(id))
		if err != nil {
			return err
		}
		raw, err = item.ValueCopy(nil)
		return err
	})
	if errors.Is(err, badger.ErrKeyNotFound) {
		return nil, nil, fmt.Errorf("event %s: %w", id, storage.ErrNotFound)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("get event %s: %w", id, err)
	}
	return v, raw, nil
}

func (s *Store) view(txn *badger.Txn, id string) (*storage.EventView, error) {
	v := &storage.EventView{}
	if err := getJSON(txn, eventKey(id), &v.Event); err != nil {
		return nil, err
	}
	ds, err := deliveries(txn, id)
	if err != nil {
		return nil, err
	}
	v.Deliveries = ds
	v.Status = delivery.EventStatusOf(ds)
	return v, nil
}

func deliveries(txn *badger.Txn, id string) ([]delivery.Delivery, error) {
	o := badger.DefaultIteratorOptions
	o.Prefix = []byte("a/" + id + "/")
	it := txn.NewIterator(o)
	defer it.Close()
	out := []delivery.Delivery{}
	for it.Rewind(); it.Valid(); it.Next() {
		var d delivery.Delivery
		if err := it.Item().Value(func(b []byte) error { return json.Unmarshal(b, &d) }); err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	return out, nil
}

// List returns up to limit events matching f, newest first, starting after
// the event id cursor (""= from the newest). next is the cursor of the
// following page, "" when there is none.
func (s *Store) List(ctx context.Context, f storage.Filter, cursor string, limit int) (events []storage.EventView, next string, err error) {
	return storage.CollectPage(limit, func(fn func(*storage.EventView) bool) error {
		return s.scan(ctx, f, cursor, true, fn)
	})
}

// Each calls fn for every event matching f, oldest first, until fn returns
// false.
func (s *Store) Each(ctx context.Context, f storage.Filter, fn func(*storage.EventView) bool) error {
	return s.scan(ctx, f, "", false, fn)
}

func (s *Store) scan(ctx context.Context, f storage.Filter, cursor string, newestFirst bool, fn func(*storage.EventView) bool) error {
	if err := f.Validate(); err != nil {
		return err
	}
	if len(f.IDs) > 0 {
		// Ids are time-sortable: visit them in scan order, each once,
		// resuming after the cursor (which only newest-first scans use).
		ids := slices.Compact(slices.Sorted(slices.Values(f.IDs)))
		if newestFirst {
			slices.Reverse(ids)
		}
		return s.read(func(txn *badger.Txn) error {
			for _, id := range ids {
				if cursor != "" && id >= cursor {
					continue
				}
				v, err := s.view(txn, id)
				if errors.Is(err, badger.ErrKeyNotFound) {
					continue
				}
				if err != nil {
					return err
				}
				if f.Match(&v.Event) && (f.Status == "" || f.Status == v.Status) && !fn(v) {
					return nil
				}
			}
			return nil
		})
	}
	return s.read(func(txn *badger.Txn) error {
		o := badger.DefaultIteratorOptions
		o.Prefix = []byte("m/")
		o.Reverse = newestFirst
		it := txn.NewIterator(o)
		defer it.Close()
		// Ids are time-sortable: seek to the window's edge.
		var start []byte
		switch {
		case newestFirst && cursor != "":
			start = eventKey(cursor)
		case newestFirst && !f.Until.IsZero():
			start = eventKey(storage.IDAt(f.Until.Add(time.Second)))
		case newestFirst:
			start = []byte("m/\xff")
		case !f.Since.IsZero():
			start = eventKey(storage.IDAt(f.Since.Add(-time.Second)))
		default:
			start = []byte("m/")
		}
		for it.Seek(start); it.Valid(); it.Next() {
			if err := ctx.Err(); err != nil {
				return err
			}
			id := strings.TrimPrefix(string(it.Item().Key()), "m/")
			if id == cursor {
				continue
			}
			var ev storage.Event
			if err := it.Item().Value(func(b []byte) error { return json.Unmarshal(b, &ev) }); err != nil {
				return err
			}
			// Stop once past the time window (ids sort by receive time).
			if newestFirst && !f.Since.IsZero() && ev.ReceivedAt.Before(f.Since.Add(-time.Second)) {
				return nil
			}
			if !newestFirst && !f.Until.IsZero() && !ev.ReceivedAt.Before(f.Until.Add(time.Second)) {
				return nil
			}
			if !f.Match(&ev) {
				continue
			}
			ds, err := deliveries(txn, ev.ID)
			if err != nil {
				return err
			}
			v := &storage.EventView{Event: ev, Deliveries: ds, Status: delivery.EventStatusOf(ds)}
			if f.Status != "" && v.Status != f.Status {
				continue
			}
			if !fn(v) {
				return nil
			}
		}
		return nil
	})
}
