// Package dedupe remembers which webhooks have been seen.
//
// The authoritative record is a Badger key per (source, dedupe key), written
// with a TTL of the dedupe window in the same transaction that stores the
// event, so a claim and its event are committed together or not at all. An
// LRU cache of recently committed claims sits in front: it can only shortcut
// a "seen" (a key that is in the cache was committed and has not expired);
// a cache miss always goes to Badger.
package dedupe

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"time"

	"github.com/dgraph-io/badger/v4"
	lru "github.com/hashicorp/golang-lru/v2"
)

// Prefix is the Badger key prefix of dedupe claims.
const Prefix = "d/"

// Index claims dedupe keys inside Badger transactions.
type Index struct {
	window time.Duration
	cache  *lru.Cache[string, entry] // nil when disabled
}

type entry struct {
	id      string
	expires time.Time
}

// New returns an Index remembering keys for window, with an LRU of cacheSize
// entries (0 disables the cache).
func New(window time.Duration, cacheSize int) (*Index, error) {
	if window <= 0 {
		return nil, errors.New("dedupe window must be positive")
	}
	ix := &Index{window: window}
	if cacheSize > 0 {
		c, err := lru.New[string, entry](cacheSize)
		if err != nil {
			return nil, fmt.Errorf("dedupe cache: %w", err)
		}
		ix.cache = c
	}
	return ix, nil
}

// Key returns the Badger key for a source's dedupe key. The key is hashed so
// that its length is bounded whatever the provider sends.
func Key(source, dedupeKey string) []byte {
	h := sha256.New()
	h.Write([]byte(source))
	h.Write([]byte{0})
	h.Write([]byte(dedupeKey))
	return h.Sum([]byte(Prefix))
}

// Cached returns the event id of a key committed recently, if the cache
// knows it and its window has not passed.
func (ix *Index) Cached(key []byte, now time.Time) (string, bool) {
	if ix.cache == nil {
		return "", false
	}
	e, ok := ix.cache.Get(string(key))
	if !ok || !now.Before(e.expires) {
		return "", false
	}
	return e.id, true
}

// Claim is the outcome of Index.Claim.
type Claim struct {
	// ID is the event id that owns the key: the new id, or the first one.
	ID string
	// Dup is true if the key was already claimed.
	Dup bool
	// Expires is when the claim's window ends.
	Expires time.Time
}

// Claim looks key up in txn. If it is present it returns the id stored with
// it and Dup=true. Otherwise it writes key -> id with the window as TTL;
// the claim takes effect when txn commits (a concurrent claim of the same
// key then fails with badger.ErrConflict, and the caller retries and sees
// the winner).
func (ix *Index) Claim(txn *badger.Txn, key []byte, id string, now time.Time) (Claim, error) {
	item, err := txn.Get(key)
	switch {
	case err == nil:
		v, err := item.ValueCopy(nil)
		if err != nil {
			return Claim{}, fmt.Errorf("read dedupe key: %w", err)
		}
		return Claim{ID: string(v), Dup: true, Expires: time.Unix(int64(item.ExpiresAt()), 0)}, nil
	case !errors.Is(err, badger.ErrKeyNotFound):
		return Claim{}, fmt.Errorf("read dedupe key: %w", err)
	}
	if err := txn.SetEntry(badger.NewEntry(key, []byte(id)).WithTTL(ix.window)); err != nil {
		return Claim{}, fmt.Errorf("claim dedupe key: %w", err)
	}
	return Claim{ID: id, Expires: now.Add(ix.window)}, nil
}

// Remember records a committed (or observed) claim in the cache. expires is
// when the claim's TTL ends.
func (ix *Index) Remember(key []byte, id string, expires time.Time) {
	if ix.cache != nil {
		ix.cache.Add(string(key), entry{id: id, expires: expires})
	}
}
