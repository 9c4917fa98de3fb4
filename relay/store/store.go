// Package store keeps events, their dedupe claims and their deliveries in
// one Badger directory.
//
// Key layout (all values JSON unless noted):
//
//	d/<sha256(source, dedupe key)>  -> event id          TTL: dedupe window
//	m/<event id>                    -> Event             TTL: retention
//	r/<event id>                    -> raw body (bytes)  TTL: retention
//	a/<event id>/<target>           -> Delivery          TTL: retention
//	q/<target>/<due ns, 8 bytes BE><event id> -> ""      the delivery queue
//
// An event, its dedupe claim, its deliveries and their queue entries are
// written in one transaction: an acknowledged event always has its pending
// deliveries.
package store

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/hookrelay/hookrelay/dedupe"
)

// ErrUnavailable wraps errors that mean the store cannot take writes now
// (closed, shutting down, disk trouble). The HTTP layer answers 503.
var ErrUnavailable = errors.New("store unavailable")

// ErrNotFound is returned for unknown event ids.
var ErrNotFound = errors.New("not found")

// Delivery statuses, and the extra event status "unrouted".
const (
	StatusPending   = "pending"
	StatusDelivered = "delivered"
	StatusDead      = "dead"
	StatusUnrouted  = "unrouted"
)

// Event is the stored metadata of one webhook.
type Event struct {
	ID         string            `json:"id"`
	Source     string            `json:"source"`
	Provider   string            `json:"provider"`
	Type       string            `json:"type"`
	Subject    string            `json:"subject,omitempty"`
	Time       time.Time         `json:"time"`
	ReceivedAt time.Time         `json:"received_at"`
	DedupeKey  string            `json:"dedupe_key"`
	DeliveryID string            `json:"delivery_id,omitempty"`
	Headers    map[string]string `json:"headers,omitempty"`
	Targets    []string          `json:"targets,omitempty"`
}

// Attempt is one delivery attempt.
type Attempt struct {
	At         time.Time `json:"at"`
	StatusCode int       `json:"status_code,omitempty"`
	Error      string    `json:"error,omitempty"`
	LatencyMS  float64   `json:"latency_ms"`
	Replay     bool      `json:"replay,omitempty"`
}

// Delivery is the state of one event's delivery to one target.
type Delivery struct {
	Target   string    `json:"target"`
	Status   string    `json:"status"`
	Attempts []Attempt `json:"attempts"`
	NextAt   time.Time `json:"next_at,omitzero"`
	// Tries counts attempts since the delivery was created or last replayed;
	// the retry policy's max_attempts applies to it.
	Tries int `json:"tries"`
	// Replay is set while a replay of this delivery is pending.
	Replay bool `json:"replay,omitempty"`
}

// Options configure a Store.
type Options struct {
	Path         string
	Sync         bool
	Retention    time.Duration
	DedupeWindow time.Duration
	CacheSize    int
	Logger       *slog.Logger
	// ReadOnly opens the directory without writing (inspection).
	ReadOnly bool
}

// Store is the Badger-backed event store. It is safe for concurrent use.
type Store struct {
	db        *badger.DB
	dedupe    *dedupe.Index
	ids       idGen
	retention time.Duration
	log       *slog.Logger

	stop chan struct{}
	wg   sync.WaitGroup
	once sync.Once
}

// Open opens (creating if needed) the store at opts.Path.
func Open(ctx context.Context, opts Options) (*Store, error) {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Retention <= 0 {
		opts.Retention = 720 * time.Hour
	}
	if opts.DedupeWindow <= 0 {
		opts.DedupeWindow = 168 * time.Hour
	}
	ix, err := dedupe.New(opts.DedupeWindow, opts.CacheSize)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(opts.Path, 0o700); err != nil {
		return nil, fmt.Errorf("open store: %w", err)
	}
	bo := badger.DefaultOptions(opts.Path).
		WithSyncWrites(opts.Sync).
		WithLogger(badgerLogger{opts.Logger}).
		WithMemTableSize(32 << 20).
		WithNumMemtables(3).
		WithBlockCacheSize(32 << 20).
		WithIndexCacheSize(16 << 20).
		WithValueThreshold(8 << 10).
		WithValueLogFileSize(256 << 20).
		WithNumCompactors(2).
		WithDetectConflicts(true).
		WithReadOnly(opts.ReadOnly)
	db, err := badger.Open(bo)
	if err != nil {
		return nil, fmt.Errorf("open store %s: %w", opts.Path, err)
	}
	s := &Store{db: db, dedupe: ix, retention: opts.Retention, log: opts.Logger, stop: make(chan struct{})}
	if !opts.ReadOnly {
		s.wg.Add(1)
		go s.gcLoop()
	}
	return s, nil
}

// Close stops background work and closes Badger cleanly.
func (s *Store) Close(ctx context.Context) error {
	var err error
	s.once.Do(func() {
		close(s.stop)
		s.wg.Wait()
		err = s.db.Close()
	})
	if err != nil {
		return fmt.Errorf("close store: %w", err)
	}
	return nil
}

// Ready returns ErrUnavailable once the store is closed (for /readyz).
func (s *Store) Ready() error {
	if s.db.IsClosed() {
		return ErrUnavailable
	}
	return nil
}

func (s *Store) gcLoop() {
	defer s.wg.Done()
	t := time.NewTicker(5 * time.Minute)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
			for s.db.RunValueLogGC(0.5) == nil {
				select {
				case <-s.stop:
					return
				default:
				}
			}
		}
	}
}

// Retention returns how long events are kept.
func (s *Store) Retention() time.Duration { return s.retention }

// Result is the outcome of Ingest.
type Result struct {
	ID        string
	Duplicate bool
}

// Ingest claims the event's dedupe key and, if it is new, stores the event,
// its raw body and one pending delivery per target, all in one transaction.
// ev.ID is assigned here. A duplicate returns the first event's id.
func (s *Store) Ingest(ctx context.Context, ev *Event, raw []byte) (Result, error) {
	key := dedupe.Key(ev.Source, ev.DedupeKey)
	now := ev.ReceivedAt
	if id, ok := s.dedupe.Cached(key, now); ok {
		return Result{ID: id, Duplicate: true}, nil
	}
	for try := 0; ; try++ {
		if err := ctx.Err(); err != nil {
			return Result{}, fmt.Errorf("%w: %w", ErrUnavailable, err)
		}
		ev.ID = s.ids.New(now)
		claim, err := s.ingestTxn(ev, raw, key, now)
		if errors.Is(err, badger.ErrConflict) && try < 20 {
			continue // a concurrent claim of the same key (or a queue key) won: look again
		}
		if err != nil {
			return Result{}, fmt.Errorf("%w: store event: %w", ErrUnavailable, err)
		}
		s.dedupe.Remember(key, claim.ID, claim.Expires)
		return Result{ID: claim.ID, Duplicate: claim.Dup}, nil
	}
}

func (s *Store) ingestTxn(ev *Event, raw, key []byte, now time.Time) (dedupe.Claim, error) {
	txn := s.db.NewTransaction(true)
	defer txn.Discard()
	claim, err := s.dedupe.Claim(txn, key, ev.ID, now)
	if err != nil || claim.Dup {
		return claim, err
	}
	meta, err := json.Marshal(ev)
	if err != nil {
		return claim, err
	}
	ttl := s.retention
	if err := txn.SetEntry(badger.NewEntry(eventKey(ev.ID), meta).WithTTL(ttl)); err != nil {
		return claim, err
	}
	if err := txn.SetEntry(badger.NewEntry(rawKey(ev.ID), raw).WithTTL(ttl)); err != nil {
		return claim, err
	}
	for _, t := range ev.Targets {
		d := Delivery{Target: t, Status: StatusPending, Attempts: []Attempt{}, NextAt: now}
		if err := s.putDelivery(txn, ev.ID, &d, ev.ReceivedAt); err != nil {
			return claim, err
		}
		if err := txn.Set(QueueKey(t, now, ev.ID), nil); err != nil {
			return claim, err
		}
	}
	return claim, txn.Commit()
}

func (s *Store) putDelivery(txn *badger.Txn, id string, d *Delivery, received time.Time) error {
	b, err := json.Marshal(d)
	if err != nil {
		return err
	}
	ttl := time.Until(received.Add(s.retention))
	if ttl < time.Minute {
		ttl = time.Minute
	}
	return txn.SetEntry(badger.NewEntry(deliveryKey(id, d.Target), b).WithTTL(ttl))
}

func eventKey(id string) []byte { return []byte("m/" + id) }
func rawKey(id string) []byte   { return []byte("r/" + id) }
func deliveryKey(id, target string) []byte {
	return []byte("a/" + id + "/" + target)
}

// QueueKey is the queue entry of a delivery due at due.
func QueueKey(target string, due time.Time, id string) []byte {
	k := make([]byte, 0, 2+len(target)+1+8+len(id))
	k = append(k, "q/"...)
	k = append(k, target...)
	k = append(k, '/')
	k = binary.BigEndian.AppendUint64(k, uint64(due.UnixNano()))
	return append(k, id...)
}

func queuePrefix(target string) []byte { return []byte("q/" + target + "/") }

// parseQueueKey splits a queue key of target into due time and event id.
func parseQueueKey(target string, k []byte) (time.Time, string, bool) {
	p := len("q/") + len(target) + 1
	if len(k) < p+8 {
		return time.Time{}, "", false
	}
	due := int64(binary.BigEndian.Uint64(k[p : p+8]))
	return time.Unix(0, due), string(k[p+8:]), true
}

type badgerLogger struct{ l *slog.Logger }

func (b badgerLogger) Errorf(f string, a ...any) {
	b.l.Error(fmt.Sprintf(f, a...), "component", "badger")
}
func (b badgerLogger) Warningf(f string, a ...any) {
	b.l.Warn(fmt.Sprintf(f, a...), "component", "badger")
}
func (b badgerLogger) Infof(f string, a ...any) {
	b.l.Debug(fmt.Sprintf(f, a...), "component", "badger")
}
func (b badgerLogger) Debugf(f string, a ...any) {}
