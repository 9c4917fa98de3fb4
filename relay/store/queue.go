package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/dgraph-io/badger/v4"
)

// maxAttemptsKept bounds the attempt history of one delivery.
const maxAttemptsKept = 100

// Due is a queued delivery.
type Due struct {
	EventID string
	Target  string
	At      time.Time
	Key     []byte
}

// DueDeliveries returns up to limit queued deliveries of target that are
// due at or before now, oldest due first, leaving out those skip reports
// (already in flight). next is the due time of the first entry after now that skip does not
// report, or zero if none: the caller already holds the ones it skips, so
// they are no reason to scan again.
func (s *Store) DueDeliveries(target string, now time.Time, limit int, skip func(id string) bool) ([]Due, time.Time, error) {
	var out []Due
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
			out = append(out, Due{EventID: id, Target: target, At: due, Key: k})
		}
		return nil
	})
	if err != nil {
		return nil, time.Time{}, fmt.Errorf("scan queue %s: %w", target, err)
	}
	return out, next, nil
}

// QueueDepth counts the queued deliveries of target.
func (s *Store) QueueDepth(target string) (int, error) {
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
// It returns ErrNotFound if the event has expired.
func (s *Store) LoadDelivery(id, target string) (*Event, []byte, *Delivery, error) {
	var ev Event
	var raw []byte
	var d Delivery
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
			d = Delivery{Target: target, Status: StatusPending}
			return nil
		}
		return err
	})
	if errors.Is(err, badger.ErrKeyNotFound) {
		return nil, nil, nil, fmt.Errorf("event %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return nil, nil, nil, fmt.Errorf("load delivery %s/%s: %w", id, target, err)
	}
	return &ev, raw, &d, nil
}

// ErrSuperseded is returned by RecordAttempt when a replay replaced the
// delivery's queue entry while the attempt ran: the attempt is recorded,
// but the replay's entry, not this attempt's outcome, decides what happens
// next.
var ErrSuperseded = errors.New("delivery superseded by a replay")

// RecordAttempt appends a to the delivery of event id to target and moves it
// to status: StatusPending (retry at next), StatusDelivered or StatusDead.
// queueKey is the queue entry the attempt was made for; if a replay has
// replaced it meanwhile, only the attempt is recorded, the replay's queue
// entry stays, and the error is ErrSuperseded.
func (s *Store) RecordAttempt(ctx context.Context, id, target string, queueKey []byte, a Attempt, status string, next time.Time) error {
	superseded := false
	err := s.update(func(txn *badger.Txn) error {
		superseded = false
		evItem, err := txn.Get(eventKey(id))
		if errors.Is(err, badger.ErrKeyNotFound) {
			return txn.Delete(queueKey) // expired: drop the queue entry
		} else if err != nil {
			return err
		}
		var d Delivery
		if err := getJSON(txn, deliveryKey(id, target), &d); err != nil && !errors.Is(err, badger.ErrKeyNotFound) {
			return err
		}
		d.Target = target
		d.Attempts = append(d.Attempts, a)
		if n := len(d.Attempts); n > maxAttemptsKept {
			d.Attempts = d.Attempts[n-maxAttemptsKept:]
		}
		_, err = txn.Get(queueKey)
		switch {
		case errors.Is(err, badger.ErrKeyNotFound):
			superseded = true // keep the replay's status and queue entry
		case err != nil:
			return err
		default:
			if err := txn.Delete(queueKey); err != nil {
				return err
			}
			d.Tries++
			d.Status = status
			d.NextAt = time.Time{}
			if status == StatusPending {
				d.NextAt = next
				if err := txn.Set(QueueKey(target, next, id), nil); err != nil {
					return err
				}
			} else {
				d.Replay = false
			}
		}
		return s.putDeliveryUntil(txn, id, &d, evItem.ExpiresAt())
	})
	if err == nil && superseded {
		return ErrSuperseded
	}
	return err
}

// Requeue makes the delivery of event id to target pending again, due now,
// and marks it as a replay. target need not be one the event was routed to.
func (s *Store) Requeue(ctx context.Context, id, target string, now time.Time) error {
	return s.update(func(txn *badger.Txn) error {
		var ev Event
		if err := getJSON(txn, eventKey(id), &ev); errors.Is(err, badger.ErrKeyNotFound) {
			return fmt.Errorf("event %s: %w", id, ErrNotFound)
		} else if err != nil {
			return err
		}
		var d Delivery
		err := getJSON(txn, deliveryKey(id, target), &d)
		switch {
		case errors.Is(err, badger.ErrKeyNotFound):
			d = Delivery{Target: target, Attempts: []Attempt{}}
		case err != nil:
			return err
		case d.Status == StatusPending && !d.NextAt.IsZero():
			if err := txn.Delete(QueueKey(target, d.NextAt, id)); err != nil {
				return err
			}
		}
		d.Status, d.Replay, d.NextAt, d.Tries = StatusPending, true, now, 0
		if err := txn.Set(QueueKey(target, now, id), nil); err != nil {
			return err
		}
		return s.putDelivery(txn, id, &d, ev.ReceivedAt)
	})
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
	if err != nil && !errors.Is(err, ErrNotFound) {
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
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
