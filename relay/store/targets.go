package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/dgraph-io/badger/v4"
)

// pausePrefix keys the paused targets: t/<target> -> the time it was
// paused (RFC 3339), no TTL. A running target has no key.
const pausePrefix = "t/"

// SetPaused pauses or resumes target (storage.Store).
func (s *Store) SetPaused(ctx context.Context, target string, paused bool) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	k := []byte(pausePrefix + target)
	err := s.write(func(txn *badger.Txn) error {
		_, err := txn.Get(k)
		switch {
		case !paused:
			return txn.Delete(k)
		case err == nil: // paused already: keep the first time
			return nil
		case errors.Is(err, badger.ErrKeyNotFound):
			return txn.Set(k, time.Now().UTC().AppendFormat(nil, time.RFC3339Nano))
		default:
			return err
		}
	})
	if err != nil {
		return fmt.Errorf("set target %q paused=%v: %w", target, paused, err)
	}
	return nil
}

// Paused returns the paused targets (storage.Store).
func (s *Store) Paused(ctx context.Context) (map[string]time.Time, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	out := map[string]time.Time{}
	err := s.read(func(txn *badger.Txn) error {
		o := badger.DefaultIteratorOptions
		o.Prefix = []byte(pausePrefix)
		it := txn.NewIterator(o)
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			item := it.Item()
			v, err := item.ValueCopy(nil)
			if err != nil {
				return err
			}
			at, err := time.Parse(time.RFC3339Nano, string(v))
			if err != nil {
				return fmt.Errorf("paused target %q: %w", item.Key()[len(pausePrefix):], err)
			}
			out[string(item.Key()[len(pausePrefix):])] = at
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read paused targets: %w", err)
	}
	return out, nil
}
