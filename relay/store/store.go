// Package store keeps events, their dedupe claims and their deliveries in
// one Badger directory.
//
// Key layout (all values JSON unless noted):
//
//	d/<sha256(source, dedupe key)>  -> event id          TTL: dedupe window
//	m/<event id>                    -> storage.Event             TTL: retention
//	r/<event id>                    -> raw body (bytes)  TTL: retention
//	a/<event id>/<target>           -> Delivery          TTL: retention
//	q/<target>/<due ns, 8 bytes BE><event id> -> ""      the delivery queue
//	t/<target>                      -> paused since (RFC 3339)   no TTL
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
	"strings"
	"sync"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/dgraph-io/badger/v4/options"
	"github.com/hookrelay/hookrelay/dedupe"
	"github.com/hookrelay/hookrelay/relay/delivery"
	"github.com/hookrelay/hookrelay/relay/storage"
)

// Options configure a Store.
type Options struct {
	Path         string
	Sync         bool
	Retention    time.Duration
	DedupeWindow time.Duration
	CacheSize    int
	Logger       *slog.Logger
	// MustExist makes Open fail with storage.ErrNoStore instead of creating a
	// store (the CLI reads stores, never makes them).
	MustExist bool
	// MinFreeBytes: below this much free space on the filesystem of Path
	// the store takes no new events (storage.ErrLowSpace) and Open fails;
	// 0 turns the watch off. See diskspace.go.
	MinFreeBytes uint64
	// FreeSpace reads the free space (default StatFS; tests inject one).
	FreeSpace FreeSpaceFunc
	// SpaceTick is how often the free space is re-read while idle
	// (default 1s).
	SpaceTick time.Duration
	// ReadOnly opens Badger read-only (no space needed, no writes).
	// ReadOnlyWhenLow does so only when the disk is too full to open it
	// for writing: for readers such as `events list`.
	ReadOnly, ReadOnlyWhenLow bool
}

// Store is the Badger-backed event store. It is safe for concurrent use.
type Store struct {
	db        *badger.DB
	lock      *os.File // held while open (see lockDir)
	dedupe    *dedupe.Index
	ids       storage.IDGen
	retention time.Duration
	log       *slog.Logger
	space     *spaceWatch
	spaceTick time.Duration

	closeMu sync.RWMutex // held for reading around every transaction
	closed  bool

	ingestCh chan *ingestReq
	loopDone chan struct{} // closed when the committer has exited
	stop     chan struct{}
	wg       sync.WaitGroup
	once     sync.Once
}

// Open opens (creating if needed) the store at opts.Path.
func Open(ctx context.Context, opts Options) (*Store, error) {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Retention <= 0 {
		opts.Retention = storage.DefaultRetention
	}
	if opts.DedupeWindow <= 0 {
		opts.DedupeWindow = storage.DefaultDedupeWindow
	}
	ix, err := dedupe.New(opts.DedupeWindow, opts.CacheSize)
	if err != nil {
		return nil, err
	}
	if opts.MustExist && !hasStore(opts.Path) {
		return nil, fmt.Errorf("%w at %s", storage.ErrNoStore, opts.Path)
	}
	if err := os.MkdirAll(opts.Path, 0o700); err != nil {
		return nil, fmt.Errorf("open store: %w", err)
	}
	if opts.FreeSpace == nil {
		opts.FreeSpace = StatFS
	}
	if opts.SpaceTick <= 0 {
		opts.SpaceTick = spaceTick
	}
	readOnly := opts.ReadOnly
	if !readOnly {
		// Badger replays and flushes memtables through writable mmaps at
		// open: on a full disk that is a SIGBUS, not an error.
		if err := checkFree(opts.Path, opts.MinFreeBytes, opts.FreeSpace); err != nil {
			if !opts.ReadOnlyWhenLow {
				return nil, fmt.Errorf("open store %s: %w (free some space, or lower storage.min_free_bytes)", opts.Path, err)
			}
			opts.Logger.Warn("opening the store read-only", "reason", err.Error())
			readOnly = true
		}
	}
	lock, err := lockDir(opts.Path)
	if err != nil {
		return nil, err
	}
	bo := badger.DefaultOptions(opts.Path).
		WithSyncWrites(opts.Sync).
		WithLogger(badgerLogger{opts.Logger}).
		WithMemTableSize(16 << 20).
		WithNumMemtables(3).
		WithBlockCacheSize(32 << 20).
		WithIndexCacheSize(16 << 20).
		WithValueThreshold(256).
		WithBaseTableSize(4 << 20).
		WithValueLogFileSize(valueLogFileSize).
		WithReadOnly(readOnly).
		WithNumCompactors(2).
		WithCompression(options.None).
		WithDetectConflicts(true)
	// Equal-sized tables on every level bound the table builders' buffers
	// (2x the table size each) whatever the amount of data stored.
	bo.TableSizeMultiplier = 1
	db, err := badger.Open(bo)
	if err != nil {
		lock.Close()
		// Badger wraps its errors without %w.
		if readOnly && (errors.Is(err, badger.ErrTruncateNeeded) || strings.Contains(err.Error(), badger.ErrTruncateNeeded.Error())) {
			return nil, fmt.Errorf("open store %s: the disk is nearly full and the store was not closed cleanly (killed?): "+
				"recovering it needs free space, so it cannot be read now; retry once at least %s is free",
				opts.Path, storage.FormatBytes(opts.MinFreeBytes))
		}
		return nil, fmt.Errorf("open store %s: %w", opts.Path, err)
	}
	s := &Store{db: db, lock: lock, dedupe: ix, retention: opts.Retention, log: opts.Logger,
		ingestCh: make(chan *ingestReq, maxBatchEvents), loopDone: make(chan struct{}), stop: make(chan struct{}),
		spaceTick: opts.SpaceTick}
	space := opts.FreeSpace
	if readOnly {
		space = nil
	}
	s.space = newSpaceWatch(opts.Path, opts.MinFreeBytes, space, opts.Logger)
	s.wg.Add(3)
	go s.gcLoop()
	go s.commitLoop()
	go s.spaceLoop()
	return s, nil
}

// Close stops background work and closes Badger cleanly. Reads and
// writes after Close fail with storage.ErrUnavailable.
func (s *Store) Close(ctx context.Context) error {
	var err error
	s.once.Do(func() {
		close(s.stop)
		s.wg.Wait()
		s.closeMu.Lock()
		s.closed = true
		s.closeMu.Unlock()
		err = s.db.Close()
		s.lock.Close() // releases the lock
	})
	if err != nil {
		return fmt.Errorf("close store: %w", err)
	}
	return nil
}

// read runs fn in a read-only transaction unless the store is closed
// (Badger panics on iterators of a closed DB).
func (s *Store) read(fn func(txn *badger.Txn) error) error {
	s.closeMu.RLock()
	defer s.closeMu.RUnlock()
	if s.closed {
		return fmt.Errorf("%w: store closed", storage.ErrUnavailable)
	}
	return s.db.View(fn)
}

// write runs fn in a read-write transaction unless the store is closed.
func (s *Store) write(fn func(txn *badger.Txn) error) error {
	s.closeMu.RLock()
	defer s.closeMu.RUnlock()
	if s.closed {
		return fmt.Errorf("%w: store closed", storage.ErrUnavailable)
	}
	if err := s.space.hardErr(); err != nil {
		return err
	}
	return s.db.Update(fn)
}

// SyncWrites reports whether Badger was opened with synchronous writes
// (storage.sync: every commit fsynced before Ingest returns). It reads
// Badger's own options back, not the Options given to Open.
func (s *Store) SyncWrites() bool { return s.db.Opts().SyncWrites }

// Ready returns storage.ErrUnavailable once the store is closed, and a
// *storage.LowSpaceError while the disk is too full to take events (for
// /readyz).
func (s *Store) Ready() error {
	if s.db.IsClosed() {
		return storage.ErrUnavailable
	}
	return s.space.err()
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
			// GC rewrites live values before it frees a file: not when
			// the disk is nearly full.
			for s.space.err() == nil && s.db.RunValueLogGC(0.5) == nil {
				select {
				case <-s.stop:
					return
				default:
				}
			}
		}
	}
}

// valueLogFileSize is the size of one value-log file. Badger maps it (twice
// over) sparsely and writes through the mapping, so it is kept small: the
// space it may still claim is part of what storage.min_free_bytes covers,
// and a small volume can hold a store at all.
const valueLogFileSize = 64 << 20

// Group-commit limits: one ingest transaction holds at most this many
// events and bytes of bodies.
const (
	maxBatchEvents = 256
	maxBatchBytes  = 2 << 20
)

// ingestReq is one Ingest call waiting for the committer.
type ingestReq struct {
	ev   *storage.Event
	meta []byte // ev as JSON, encoded by the caller (not the committer)
	raw  []byte
	key  []byte
	done chan ingestResp
}

type ingestResp struct {
	res storage.Result
	err error
}

// Ingest claims the event's dedupe key and, if it is new, stores the event,
// its raw body and one pending delivery per target (queued as due at
// ev.ReceivedAt), atomically. ev.ID is assigned here; a duplicate returns
// the first event's id instead.
//
// Calls are group-committed: one goroutine gathers the requests waiting at
// that moment into one Badger transaction, so concurrent webhooks share a
// commit (and, with sync on, one fsync). Ingest returns only after the
// transaction holding its event has committed.
func (s *Store) Ingest(ctx context.Context, ev *storage.Event, raw []byte) (storage.Result, error) {
	select {
	case <-s.stop:
		// Closed: not even a cached duplicate is answered (the caller must
		// not take a closed store for a working one).
		return storage.Result{}, fmt.Errorf("%w: store closed", storage.ErrUnavailable)
	default:
	}
	key := dedupe.Key(ev.Source, ev.DedupeKey)
	if id, ok := s.dedupe.Cached(key, ev.ReceivedAt); ok {
		return storage.Result{ID: id, Duplicate: true}, nil
	}
	if err := s.space.err(); err != nil {
		// A provider's retry of a stored event needs no write: answer it.
		var claim dedupe.Claim
		_ = s.read(func(txn *badger.Txn) error {
			claim, _ = s.dedupe.Claim(txn, key, "", ev.ReceivedAt)
			return nil
		})
		if claim.Dup {
			return storage.Result{ID: claim.ID, Duplicate: true}, nil
		}
		return storage.Result{}, err
	}
	// Id and JSON are made here, in the caller's goroutine, so that the
	// single committer only touches Badger. An id of a duplicate is dropped.
	ev.ID = s.ids.New(ev.ReceivedAt)
	meta, err := json.Marshal(ev)
	if err != nil {
		return storage.Result{}, fmt.Errorf("encode event: %w", err)
	}
	req := &ingestReq{ev: ev, meta: meta, raw: raw, key: key, done: make(chan ingestResp, 1)}
	// The committer answers even if ctx ends once it has the request (see
	// storage.HandOff).
	r, err := storage.HandOff(ctx, s.ingestCh, req, req.done, s.stop, s.loopDone)
	if err != nil {
		return storage.Result{}, err
	}
	return r.res, r.err
}

// commitLoop is the single ingest committer.
func (s *Store) commitLoop() {
	defer s.wg.Done()
	defer close(s.loopDone)
	batch := make([]*ingestReq, 0, maxBatchEvents)
	for {
		var first *ingestReq
		select {
		case first = <-s.ingestCh:
		case <-s.stop:
			s.drainIngest()
			return
		}
		batch = append(batch[:0], first)
		size := len(first.raw)
	gather:
		for len(batch) < maxBatchEvents && size < maxBatchBytes {
			select {
			case r := <-s.ingestCh:
				batch = append(batch, r)
				size += len(r.raw)
			default:
				break gather
			}
		}
		s.commitBatch(batch)
	}
}

// drainIngest fails the requests still queued when the store closes.
func (s *Store) drainIngest() {
	for {
		select {
		case r := <-s.ingestCh:
			r.done <- ingestResp{err: fmt.Errorf("%w: store closed", storage.ErrUnavailable)}
		default:
			return
		}
	}
}

// commitBatch writes a batch in as few transactions as Badger's size limit
// allows. Within a transaction a later request sees an earlier one's claim,
// so identical deliveries in one batch are recognised as duplicates.
func (s *Store) commitBatch(batch []*ingestReq) {
	size := 0
	for _, r := range batch {
		size += len(r.raw) + len(r.meta)
	}
	s.space.wrote(size)
	if err := s.space.err(); err != nil {
		for _, r := range batch {
			r.done <- ingestResp{err: err}
		}
		return
	}
	for len(batch) > 0 {
		n, results, err := s.commitSome(batch)
		for i := 0; i < n; i++ {
			r := batch[i]
			if err != nil {
				r.done <- ingestResp{err: fmt.Errorf("%w: store event: %w", storage.ErrUnavailable, err)}
				continue
			}
			s.dedupe.Remember(r.key, results[i].claim.ID, results[i].claim.Expires)
			res := storage.Result{ID: results[i].claim.ID, Duplicate: results[i].claim.Dup}
			if !res.Duplicate {
				res.Queued = make([]storage.Due, len(r.ev.Targets))
				for j, t := range r.ev.Targets {
					at := r.ev.ReceivedAt
					res.Queued[j] = storage.Due{EventID: res.ID, Target: t, At: at, Key: QueueKey(t, at, res.ID)}
				}
			}
			r.done <- ingestResp{res: res}
		}
		batch = batch[n:]
	}
}

type batchResult struct{ claim dedupe.Claim }

// commitSome commits a prefix of batch in one transaction and returns its
// length (at least 1) and the claims. If Badger finds the transaction too
// big, the transaction is discarded and the prefix that fitted is committed
// alone, so no event is ever half-written.
func (s *Store) commitSome(batch []*ingestReq) (int, []batchResult, error) {
	limit := len(batch)
	for try := 0; ; try++ {
		txn := s.db.NewTransaction(true)
		results := make([]batchResult, 0, limit)
		var err error
		for _, r := range batch[:limit] {
			var br batchResult
			if br, err = s.stage(txn, r); err != nil {
				break
			}
			results = append(results, br)
		}
		if errors.Is(err, badger.ErrTxnTooBig) && len(results) > 0 {
			txn.Discard()
			limit = len(results)
			continue
		}
		if err == nil {
			err = txn.Commit()
		}
		txn.Discard()
		if errors.Is(err, badger.ErrConflict) && try < 5 {
			continue
		}
		return max(len(results), 1), results, err
	}
}

// stage adds one event to txn: its claim and, if new, its entries.
func (s *Store) stage(txn *badger.Txn, r *ingestReq) (batchResult, error) {
	ev := r.ev
	claim, err := s.dedupe.Claim(txn, r.key, ev.ID, ev.ReceivedAt)
	if err != nil || claim.Dup {
		return batchResult{claim: claim}, err
	}
	ttl := s.retention
	if err := txn.SetEntry(badger.NewEntry(eventKey(ev.ID), r.meta).WithTTL(ttl)); err != nil {
		return batchResult{claim: claim}, err
	}
	if err := txn.SetEntry(badger.NewEntry(rawKey(ev.ID), r.raw).WithTTL(ttl)); err != nil {
		return batchResult{claim: claim}, err
	}
	for _, t := range ev.Targets {
		d, op := delivery.Next(delivery.Delivery{Target: t}, delivery.IngestedAt(ev.ReceivedAt), delivery.Policy{})
		if err := s.putDelivery(txn, ev.ID, &d, ev.ReceivedAt); err != nil {
			return batchResult{claim: claim}, err
		}
		if err := applyQueueOp(txn, t, ev.ID, op); err != nil {
			return batchResult{claim: claim}, err
		}
	}
	return batchResult{claim: claim}, nil
}

func (s *Store) putDelivery(txn *badger.Txn, id string, d *delivery.Delivery, received time.Time) error {
	return s.putDeliveryUntil(txn, id, d, uint64(received.Add(s.retention).Unix()))
}

// putDeliveryUntil writes a delivery record that expires with its event
// (expiresAt in unix seconds, as Badger keeps it).
func (s *Store) putDeliveryUntil(txn *badger.Txn, id string, d *delivery.Delivery, expiresAt uint64) error {
	b, err := json.Marshal(d)
	if err != nil {
		return err
	}
	e := badger.NewEntry(deliveryKey(id, d.Target), b)
	e.ExpiresAt = max(expiresAt, uint64(time.Now().Add(time.Minute).Unix()))
	return txn.SetEntry(e)
}

func eventKey(id string) []byte { return []byte("m/" + id) }
func rawKey(id string) []byte   { return []byte("r/" + id) }
func deliveryKey(id, target string) []byte {
	return []byte("a/" + id + "/" + target)
}

// QueueKey implements storage.Store (see the package function QueueKey).
func (s *Store) QueueKey(target string, due time.Time, id string) []byte {
	return QueueKey(target, due, id)
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

// Badger's own lines go out cleaned (badgerLine); only its errors show
// above debug level.
func (b badgerLogger) Errorf(f string, a ...any)   { b.line(slog.LevelError, f, a) }
func (b badgerLogger) Warningf(f string, a ...any) { b.line(slog.LevelDebug, f, a) }
func (b badgerLogger) Infof(f string, a ...any)    { b.line(slog.LevelDebug, f, a) }
func (b badgerLogger) Debugf(f string, a ...any)   {}
