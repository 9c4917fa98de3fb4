package jscerts

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Lock design.
//
// A lock is one key in the lock bucket (the lock name, mapped as storage
// keys are). Its value is a lockRecord naming the acquisition (owner
// token). Every write is a compare-and-set:
//
//   - acquire a missing key: kv.Create (expected last sequence 0: the first
//     writer wins, the others get ErrKeyExists);
//   - acquire a released (or long-stale) key: kv.Update at the revision just
//     read, so of several nodes that saw the same record one wins;
//   - refresh (every TTL/3, by a goroutine per held lock) and release:
//     kv.Update at the revision this Storage wrote last. A mismatch means
//     the lock expired and was taken by someone else: it is lost, and
//     RenewLockLease and Unlock report ErrLockLost.
//
// Nothing ever deletes or purges a lock key, so the bucket holds no delete
// markers and kv.Create never takes its non-atomic "update at the marker's
// revision" path (nats-server#5162). Release writes a record marked
// Released, which the next acquirer replaces at its revision.
//
// Expiry is the lock bucket's TTL (MaxAge): a record not rewritten for TTL
// (its holder died, or lost JetStream) is removed by the server, on the
// server's clock, and the key is then free for kv.Create. As a second
// guard, for a bucket whose TTL was raised by hand, a record whose stored
// expiry is more than one TTL in the past may be taken over by Update.
//
// Waiting is polling (TTL/10, 50 ms–1 s, with jitter), honouring ctx: a
// server-side expiry produces no event to watch.

// ErrLockLost is wrapped by RenewLockLease and Unlock when this Storage's
// lock expired and may have been taken by another node.
var ErrLockLost = errors.New("lock lost (expired or taken over)")

// ErrNotHeld is wrapped by Unlock and RenewLockLease for a lock this
// Storage does not hold.
var ErrNotHeld = errors.New("lock not held by this storage")

type lockRecord struct {
	Owner    string    `json:"owner,omitempty"` // acquisition token; empty once released
	Node     string    `json:"node,omitempty"`
	Acquired time.Time `json:"acquired,omitzero"`
	Expires  time.Time `json:"expires,omitzero"`
	Released bool      `json:"released,omitempty"`
}

type heldLock struct {
	name, key, token string
	acquired         time.Time
	stop             chan struct{}
	stopOnce         sync.Once
	done             chan struct{}

	mu     sync.Mutex
	rev    uint64
	lost   error
	lastOK time.Time
}

// halt stops the refresher and waits for it.
func (h *heldLock) halt() {
	h.stopOnce.Do(func() { close(h.stop) })
	<-h.done
}

func (s *Storage) lockKey(name string) (string, error) {
	k, err := encodeKey(name)
	if err != nil {
		return "", fmt.Errorf("jscerts: lock name %q: %w", name, err)
	}
	return k, nil
}

func (s *Storage) newToken() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.seq++
	return fmt.Sprintf("%s-%d", s.id, s.seq)
}

func (s *Storage) pollInterval() time.Duration {
	p := min(max(s.lockTTL/10, 50*time.Millisecond), time.Second)
	return p/2 + rand.N(p) // p ± 50%
}

// Lock blocks until this Storage holds the lock name, or ctx ends.
func (s *Storage) Lock(ctx context.Context, name string) error {
	key, err := s.lockKey(name)
	if err != nil {
		return err
	}
	token := s.newToken()
	var logged string
	for {
		ok, err := s.tryAcquire(ctx, name, key, token)
		if ok {
			return nil
		}
		if err != nil {
			if ctx.Err() != nil {
				return fmt.Errorf("jscerts: lock %q: %w", name, ctx.Err())
			}
			if errors.Is(err, jetstream.ErrBucketNotFound) || errors.Is(err, jetstream.ErrInvalidKey) {
				return fmt.Errorf("jscerts: lock %q: %w", name, err)
			}
			if msg := err.Error(); msg != logged {
				s.log.Warn("acquiring lock; retrying", "lock", name, "err", err)
				logged = msg
			}
		}
		t := time.NewTimer(s.pollInterval())
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("jscerts: lock %q: %w", name, ctx.Err())
		case <-t.C:
		}
	}
}

// TryLock makes one attempt at the lock name.
func (s *Storage) TryLock(ctx context.Context, name string) (bool, error) {
	key, err := s.lockKey(name)
	if err != nil {
		return false, err
	}
	ok, err := s.tryAcquire(ctx, name, key, s.newToken())
	if err != nil {
		return false, fmt.Errorf("jscerts: lock %q: %w", name, err)
	}
	return ok, nil
}

// tryAcquire makes one attempt; token is the same across the attempts of
// one Lock call, so a Create whose reply was lost is recognised as ours.
func (s *Storage) tryAcquire(ctx context.Context, name, key, token string) (bool, error) {
	now := time.Now()
	val, err := json.Marshal(lockRecord{Owner: token, Node: s.node, Acquired: now, Expires: now.Add(s.lockTTL)})
	if err != nil {
		return false, err
	}
	var rev uint64
	e, err := s.locks.Get(ctx, key)
	switch {
	case errors.Is(err, jetstream.ErrKeyNotFound):
		rev, err = s.locks.Create(ctx, key, val)
		if errors.Is(err, jetstream.ErrKeyExists) || errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
			return false, nil
		}
		if err != nil {
			return false, err
		}
	case err != nil:
		return false, err
	default:
		var cur lockRecord
		if err := json.Unmarshal(e.Value(), &cur); err != nil {
			// not ours to interpret: held until the bucket's TTL removes it
			s.log.Warn("unreadable lock record; waiting for it to expire", "lock", name)
			return false, nil
		}
		switch {
		case cur.Owner == token:
			rev = e.Revision() // our Create went through but its reply was lost
		case cur.Released || (!cur.Expires.IsZero() && now.After(cur.Expires.Add(s.lockTTL))):
			rev, err = s.locks.Update(ctx, key, val, e.Revision())
			if errors.Is(err, jetstream.ErrKeyRevisionMismatch) || errors.Is(err, jetstream.ErrKeyExists) {
				return false, nil
			}
			if err != nil {
				return false, err
			}
			if !cur.Released {
				s.log.Warn("took over a stale lock", "lock", name, "holder", cur.Node, "expired", cur.Expires)
			}
		default:
			return false, nil
		}
	}

	h := &heldLock{
		name: name, key: key, token: token, acquired: now, rev: rev, lastOK: now,
		stop: make(chan struct{}), done: make(chan struct{}),
	}
	s.mu.Lock()
	old := s.held[name]
	s.held[name] = h
	s.mu.Unlock()
	if old != nil {
		// a lock of ours that expired and was taken again by another
		// caller of this same Storage
		old.halt()
		old.mu.Lock()
		if old.lost == nil {
			old.lost = fmt.Errorf("jscerts: lock %q: %w", name, ErrLockLost)
		}
		old.mu.Unlock()
	}
	go s.keepFresh(h)
	s.log.Debug("lock acquired", "lock", name, "revision", rev)
	return true, nil
}

// keepFresh rewrites the lock every TTL/3 until it is released or lost.
func (s *Storage) keepFresh(h *heldLock) {
	defer close(h.done)
	t := time.NewTicker(s.lockTTL / 3)
	defer t.Stop()
	for {
		select {
		case <-h.stop:
			return
		case <-t.C:
		}
		ctx, cancel := context.WithTimeout(context.Background(), s.lockTTL/3)
		err := s.refresh(ctx, h)
		cancel()
		if errors.Is(err, ErrLockLost) {
			return
		}
	}
}

// refresh rewrites h's record at the revision it holds.
func (s *Storage) refresh(ctx context.Context, h *heldLock) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.lost != nil {
		return h.lost
	}
	now := time.Now()
	val, err := json.Marshal(lockRecord{Owner: h.token, Node: s.node, Acquired: h.acquired, Expires: now.Add(s.lockTTL)})
	if err != nil {
		return err
	}
	rev, err := s.locks.Update(ctx, h.key, val, h.rev)
	switch {
	case err == nil:
		h.rev, h.lastOK = rev, now
		return nil
	case errors.Is(err, jetstream.ErrKeyRevisionMismatch):
		h.lost = fmt.Errorf("jscerts: lock %q: %w", h.name, ErrLockLost)
		s.log.Error("lock lost: it expired or another node took it over", "lock", h.name, "held_for", now.Sub(h.acquired).Round(time.Millisecond))
		return h.lost
	default:
		s.log.Warn("refreshing lock", "lock", h.name, "err", err, "last_refresh", h.lastOK)
		return err
	}
}

// RenewLockLease refreshes the lock name at once and reports whether it is
// still held (certmagic calls it before each obtain or renew attempt). The
// lease itself is the bucket's TTL, kept alive by the refresher for as
// long as the lock is held, so leaseDuration is not used.
func (s *Storage) RenewLockLease(ctx context.Context, name string, _ time.Duration) error {
	s.mu.Lock()
	h := s.held[name]
	s.mu.Unlock()
	if h == nil {
		return fmt.Errorf("jscerts: renew lock %q: %w", name, ErrNotHeld)
	}
	err := s.refresh(ctx, h)
	if errors.Is(err, ErrLockLost) {
		return err
	}
	return nil // a transient error: the refresher keeps trying
}

// Unlock releases the lock name, which this Storage must hold. A lock
// that was lost gives an error wrapping ErrLockLost and is left to its new
// holder.
func (s *Storage) Unlock(ctx context.Context, name string) error {
	s.mu.Lock()
	h := s.held[name]
	delete(s.held, name)
	s.mu.Unlock()
	if h == nil {
		return fmt.Errorf("jscerts: unlock %q: %w", name, ErrNotHeld)
	}
	return s.release(ctx, h)
}

func (s *Storage) release(ctx context.Context, h *heldLock) error {
	h.halt()
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.lost != nil {
		return h.lost
	}
	val, err := json.Marshal(lockRecord{Node: s.node, Released: true})
	if err != nil {
		return err
	}
	_, err = s.locks.Update(ctx, h.key, val, h.rev)
	switch {
	case err == nil:
		h.lost = fmt.Errorf("jscerts: lock %q: %w", h.name, ErrNotHeld)
		s.log.Debug("lock released", "lock", h.name)
		return nil
	case errors.Is(err, jetstream.ErrKeyRevisionMismatch):
		h.lost = fmt.Errorf("jscerts: lock %q: %w", h.name, ErrLockLost)
		return h.lost
	default:
		return fmt.Errorf("jscerts: unlock %q (it expires within %v): %w", h.name, s.lockTTL, err)
	}
}

// Close releases every lock this Storage holds (for a clean shutdown; a
// crash is covered by expiry). The JetStream connection is the caller's.
func (s *Storage) Close(ctx context.Context) error {
	s.mu.Lock()
	held := s.held
	s.held = map[string]*heldLock{}
	s.mu.Unlock()
	var errs []error
	for _, h := range held {
		if err := s.release(ctx, h); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
