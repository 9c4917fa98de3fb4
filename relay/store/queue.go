package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/hookrelay/hookrelay/relay/delivery"
	"github.com/hookrelay/hookrelay/relay/storage"
)

// DueDeliveries returns up to limit queued deliveries of target that are
// due at or before now, oldest due first, leaving out those skip reports
// (already in flight). next is the due time of the first entry after now that skip does not
// report, or zero if none: the caller already holds the ones it skips, so
// they are no reason to scan again.
func (s *Store) DueDeliveries(ctx context.Context, target string, now time.Time, limit int, skip func(id string) bool) ([]storage.Due, time.Time, error) {
	if s.space.hardErr() != nil {
		// Below the hard floor no attempt could be recorded: hand out
		// nothing (a target would get the same delivery again and again)
		// and look again in a second.
		return nil, now.Add(time.Second), nil
	}
	var out []storage.Due
	var next time.Time
	err := s.read(func(txn *badger.Txn) error {
		o := badger.DefaultIteratorOptions
		o.PrefetchValues = false
		o.Prefix = queuePrefix(target)
		it := txn.NewIterator(o)
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			k := it.Item().KeyCopy(nil)
			due, id, ok := parseQueueKey(target, k)
			if !ok {
				continue
			}
			if skip != nil && skip(id) {
				continue
			}
			if due.After(now) {
				next = due
				return nil
			}
			if len(out) >= limit {
				return nil
			}
			out = append(out, storage.Due{EventID: id, Target: target, At: due, Key: k})
		}
		return nil
	})
	if err != nil {
		return nil, time.Time{}, fmt.Errorf("scan queue %s: %w", target, err)
	}
	return out, next, nil
}

// QueueDepth counts the queued deliveries of target.
func (s *Store) QueueDepth(ctx context.Context, target string) (int, error) {
	n := 0
	err := s.read(func(txn *badger.Txn) error {
		o := badger.DefaultIteratorOptions
		o.PrefetchValues = false
		o.Prefix = queuePrefix(target)
		it := txn.NewIterator(o)
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			n++
		}
		return nil
	})
	return n, err
}

// LoadDelivery returns an event, its raw body and its delivery to target.
// It returns storage.ErrNotFound if the event has expired.
func (s *Store) LoadDelivery(ctx context.Context, id, target string) (*storage.Event, []byte, *delivery.Delivery, error) {
	var ev storage.Event
	var raw []byte
	var d delivery.Delivery
	err := s.read(func(txn *badger.Txn) error {
		if err := getJSON(txn, eventKey(id), &ev); err != nil {
			return err
		}
		item, err := txn.Get(rawKey(id))
		if err != nil {
			return err
		}
		if raw, err = item.ValueCopy(nil); err != nil {
			return err
		}
		err = getJSON(txn, deliveryKey(id, target), &d)
		if errors.Is(err, badger.ErrKeyNotFound) {
			d = delivery.Delivery{Target: target, Status: delivery.Pending}
			return nil
		}
		return err
	})
	if errors.Is(err, badger.ErrKeyNotFound) {
		return nil, nil, nil, fmt.Errorf("event %s: %w", id, storage.ErrNotFound)
	}
	if err != nil {
		return nil, nil, nil, fmt.Errorf("load delivery %s/%s: %w", id, target, err)
	}
	return &ev, raw, &d, nil
}

// RecordAttempt records attempt result r of the delivery of event id to
// target, made for the queue entry queueKey, by applying delivery.Next
// under policy p, and returns the delivery as recorded. If a replay has
// replaced queueKey meanwhile, only the attempt is recorded, the replay's
// queue entry stays, and the error is storage.ErrSuperseded. If the event has
// expired, the queue entry is dropped and nothing else is written.
func (s *Store) RecordAttempt(ctx context.Context, id, target string, queueKey []byte, r delivery.Result, p delivery.Policy) (delivery.Delivery, error) {
	entry, kid, ok := parseQueueKey(target, queueKey)
	if !ok || kid != id {
		return delivery.Delivery{}, fmt.Errorf("record attempt %s/%s: queue key %q is not one of this delivery's", id, target, queueKey)
	}
	var d delivery.Delivery
	current, expired := false, false
	err := s.update(func(txn *badger.Txn) error {
		d, current, expired = delivery.Delivery{Target: target}, false, false
		_, err := txn.Get(queueKey)
		switch {
		case err == nil:
			current = true
		case !errors.Is(err, badger.ErrKeyNotFound):
			return err
		}
		evItem, err := txn.Get(eventKey(id))
		if errors.Is(err, badger.ErrKeyNotFound) {
			// Expired: drop the queue entry; the delivery expired with it.
			expired = true
			r.Outcome = delivery.Expired
			var op delivery.QueueOp
			d, op = delivery.Next(d, delivery.AttemptedFor(r, entry, current), p)
			return applyQueueOp(txn, target, id, op)
		} else if err != nil {
			return err
		}
		if err := getJSON(txn, deliveryKey(id, target), &d); err != nil && !errors.Is(err, badger.ErrKeyNotFound) {
			return err
		}
		d.Target = target
		var op delivery.QueueOp
		d, op = delivery.Next(d, delivery.AttemptedFor(r, entry, current), p)
		if err := applyQueueOp(txn, target, id, op); err != nil {
			return err
		}
		return s.putDeliveryUntil(txn, id, &d, evItem.ExpiresAt())
	})
	if err != nil {
		return delivery.Delivery{}, err
	}
	if !current && !expired {
		return d, storage.ErrSuperseded
	}
	return d, nil
}

// Requeue replays the delivery of event id to target (delivery.Next with a
// replay): pending again, due now, marked as a replay, its queue entry
// moved. target need not be one the event was routed to.
func (s *Store) Requeue(ctx context.Context, id, target string, now time.Time) error {
	return s.update(func(txn *badger.Txn) error {
		var ev storage.Event
		if err := getJSON(txn, eventKey(id), &ev); errors.Is(err, badger.ErrKeyNotFound) {
			return fmt.Errorf("event %s: %w", id, storage.ErrNotFound)
		} else if err != nil {
			return err
		}
		d := delivery.Delivery{Target: target}
		if err := getJSON(txn, deliveryKey(id, target), &d); err != nil && !errors.Is(err, badger.ErrKeyNotFound) {
			return err
		}
		d, op := delivery.Next(d, delivery.ReplayedAt(now), delivery.Policy{})
		if err := applyQueueOp(txn, target, id, op); err != nil {
			return err
		}
		return s.putDelivery(txn, id, &d, ev.ReceivedAt)
	})
}

// applyQueueOp performs a transition's change to target's queue.
func applyQueueOp(txn *badger.Txn, target, id string, op delivery.QueueOp) error {
	if !op.Remove.IsZero() {
		if err := txn.Delete(QueueKey(target, op.Remove, id)); err != nil {
			return err
		}
	}
	if !op.Add.IsZero() {
		return txn.Set(QueueKey(target, op.Add, id), nil)
	}
	return nil
}

// update runs fn in a read-write transaction, retrying on conflicts.
func (s *Store) update(fn func(txn *badger.Txn) error) error {
	var err error
	for try := 0; try < 20; try++ {
		err = s.write(fn)
		if !errors.Is(err, badger.ErrConflict) {
			break
		}
	}
	if err != nil && !errors.Is(err, storage.ErrNotFound) {
		return fmt.Errorf("%w: %w", storage.ErrUnavailable, err)
	}
	return err
}

func getJSON(txn *badger.Txn, key []byte, v any) error {
	item, err := txn.Get(key)
	if err != nil {
		return err
	}
	return item.Value(func(b []byte) error { return json.Unmarshal(b, v) })
}
