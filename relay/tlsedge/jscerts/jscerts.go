// Package jscerts is a certmagic.Storage on NATS JetStream: every node of
// a hookrelay cluster points its certmagic Config at the same buckets, one
// node obtains (or renews) a certificate under a cluster-wide lock, and all
// of them load and serve it.
//
// Two key-value buckets are used:
//
//   - <Bucket> holds the certmagic files (certificates, keys, metadata, ACME
//     accounts, distributed challenge tokens), one KV key per file (see
//     keys.go for the key mapping). Values are small (a few KiB); the
//     bucket has no value-size limit of its own, so the server's
//     max_payload (1 MiB by default) bounds them. The bucket's stream is
//     created with direct gets off, so reads are answered by the stream
//     leader and Load sees the last Store of any node (a follower answering
//     a direct get may lag, and a node that just took the issue lock must
//     see the certificate the previous holder stored).
//   - <Bucket>_locks holds the locks. Its bucket-wide TTL (MaxAge) is the
//     lock lease: a holder rewrites its lock every TTL/3, and a lock whose
//     holder died is removed by the server when its last write is TTL old,
//     using the server's clock only. See lock.go.
package jscerts

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/caddyserver/certmagic"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Defaults for Options.
const (
	DefaultBucket  = "hookrelay_certs"
	DefaultLockTTL = 30 * time.Second
	// MinLockTTL is the shortest lease accepted (tests use 1–2 s).
	MinLockTTL = 500 * time.Millisecond
)

// Options configures a Storage. Every node of a cluster must use the same
// Bucket; the lock lease is the lock bucket's TTL, set by whichever node
// creates the bucket first (a node configured with another LockTTL logs a
// warning and follows the bucket).
type Options struct {
	Bucket   string        // KV bucket name ([A-Za-z0-9_-]); DefaultBucket when empty
	Replicas int           // stream replicas (1–5); 1 when zero
	LockTTL  time.Duration // lock lease; DefaultLockTTL when zero
	Logger   *slog.Logger
}

// Storage implements certmagic.Storage (with TryLocker and
// LockLeaseRenewer) on JetStream. It is safe for concurrent use.
type Storage struct {
	js       jetstream.JetStream
	bucket   string
	data     jetstream.KeyValue
	dataStrm string // stream of the data bucket, for subject purges
	locks    jetstream.KeyValue
	lockTTL  time.Duration
	log      *slog.Logger
	id       string // this Storage's identity in lock records
	node     string // hostname, for humans reading lock records

	mu   sync.Mutex
	held map[string]*heldLock // lock name -> lock this Storage holds
	seq  uint64
}

var (
	_ certmagic.Storage          = (*Storage)(nil)
	_ certmagic.TryLocker        = (*Storage)(nil)
	_ certmagic.LockLeaseRenewer = (*Storage)(nil)
)

// New opens (creating them if needed) the data and lock buckets and
// returns a Storage on them.
func New(ctx context.Context, js jetstream.JetStream, opts Options) (*Storage, error) {
	if js == nil {
		return nil, errors.New("jscerts: no JetStream context")
	}
	if opts.Bucket == "" {
		opts.Bucket = DefaultBucket
	}
	if opts.Replicas == 0 {
		opts.Replicas = 1
	}
	if opts.Replicas < 1 || opts.Replicas > 5 {
		return nil, fmt.Errorf("jscerts: replicas %d: must be 1–5", opts.Replicas)
	}
	if opts.LockTTL == 0 {
		opts.LockTTL = DefaultLockTTL
	}
	if opts.LockTTL < MinLockTTL {
		return nil, fmt.Errorf("jscerts: lock TTL %v: must be at least %v", opts.LockTTL, MinLockTTL)
	}
	lockBucket := opts.Bucket + "_locks"
	for _, b := range []string{opts.Bucket, lockBucket} {
		if !validBucket(b) {
			return nil, fmt.Errorf("jscerts: bucket name %q: only letters, digits, '-' and '_'", b)
		}
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("component", "jscerts", "bucket", opts.Bucket)

	s := &Storage{
		js: js, bucket: opts.Bucket, dataStrm: "KV_" + opts.Bucket, log: log,
		id: randomID(), held: map[string]*heldLock{},
	}
	s.node, _ = os.Hostname()

	var err error
	if s.data, err = openBucket(ctx, js, opts.Bucket, opts.Replicas, 0, "hookrelay certmagic storage"); err != nil {
		return nil, err
	}
	if s.locks, err = openBucket(ctx, js, lockBucket, opts.Replicas, opts.LockTTL, "hookrelay certmagic locks"); err != nil {
		return nil, err
	}
	if st, err := s.data.Status(ctx); err == nil {
		if bs, ok := st.(*jetstream.KeyValueBucketStatus); ok && bs.StreamInfo().Config.AllowDirect {
			log.Warn("bucket has direct gets on (not created by jscerts): a read may miss another node's latest store")
		}
	}
	st, err := s.locks.Status(ctx)
	if err != nil {
		return nil, fmt.Errorf("jscerts: lock bucket %s status: %w", lockBucket, err)
	}
	s.lockTTL = st.TTL()
	switch {
	case s.lockTTL <= 0:
		return nil, fmt.Errorf("jscerts: lock bucket %s has no TTL: a dead node's lock would never expire", lockBucket)
	case s.lockTTL != opts.LockTTL:
		log.Warn("lock bucket exists with another TTL; using the bucket's", "bucket_ttl", s.lockTTL, "configured", opts.LockTTL)
	}
	return s, nil
}

// openBucket creates the KV bucket's stream, as nats.go's CreateKeyValue
// lays it out but with direct gets off (reads go to the stream leader), or
// opens it if it exists already (whatever its configuration).
func openBucket(ctx context.Context, js jetstream.JetStream, bucket string, replicas int, ttl time.Duration, desc string) (jetstream.KeyValue, error) {
	kv, err := js.KeyValue(ctx, bucket)
	if err == nil {
		return kv, nil
	}
	if !errors.Is(err, jetstream.ErrBucketNotFound) {
		return nil, fmt.Errorf("jscerts: open bucket %s: %w", bucket, err)
	}
	dup := 2 * time.Minute
	if ttl > 0 && ttl < dup {
		dup = ttl
	}
	_, err = js.CreateStream(ctx, jetstream.StreamConfig{
		Name:              "KV_" + bucket,
		Description:       desc,
		Subjects:          []string{"$KV." + bucket + ".>"},
		MaxMsgsPerSubject: 1,
		MaxBytes:          -1,
		MaxAge:            ttl,
		MaxMsgSize:        -1,
		MaxMsgs:           -1,
		MaxConsumers:      -1,
		Storage:           jetstream.FileStorage,
		Replicas:          replicas,
		AllowRollup:       true,
		DenyDelete:        true,
		Duplicates:        dup,
		Discard:           jetstream.DiscardNew,
		AllowDirect:       false,
	})
	if err != nil && !errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
		return nil, fmt.Errorf("jscerts: create bucket %s: %w", bucket, err)
	}
	// created now, or by another node a moment ago
	if kv, err = js.KeyValue(ctx, bucket); err != nil {
		return nil, fmt.Errorf("jscerts: open bucket %s: %w", bucket, err)
	}
	return kv, nil
}

func validBucket(b string) bool {
	if b == "" {
		return false
	}
	for i := 0; i < len(b); i++ {
		if !keptByte(b[i]) {
			return false
		}
	}
	return true
}

func randomID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// String identifies the storage in certmagic's logs.
func (s *Storage) String() string { return "jscerts:" + s.bucket }

// LockTTL is the lock lease in force (the lock bucket's TTL).
func (s *Storage) LockTTL() time.Duration { return s.lockTTL }

func notExist(op, key string) error {
	return fmt.Errorf("jscerts: %s %q: %w", op, key, fs.ErrNotExist)
}

// Store puts value at key, replacing what was there.
func (s *Storage) Store(ctx context.Context, key string, value []byte) error {
	k, err := encodeKey(key)
	if err != nil {
		return err
	}
	if _, err := s.data.Put(ctx, k, value); err != nil {
		return fmt.Errorf("jscerts: store %q: %w", key, err)
	}
	return nil
}

// Load returns the value at key, or an error wrapping fs.ErrNotExist.
func (s *Storage) Load(ctx context.Context, key string) ([]byte, error) {
	e, err := s.get(ctx, "load", key)
	if err != nil {
		return nil, err
	}
	return e.Value(), nil
}

func (s *Storage) get(ctx context.Context, op, key string) (jetstream.KeyValueEntry, error) {
	k, err := encodeKey(key)
	if err != nil {
		return nil, err
	}
	// A read that gets no answer (a stream leader being elected, a
	// replica catching up right after the cluster formed) is asked again
	// for up to readRetry: certmagic does not retry a failed load when it
	// starts managing a domain, so one lost read would leave the node
	// without its certificate until a restart.
	deadline := time.Now().Add(readRetry)
	for wait := 100 * time.Millisecond; ; wait = min(2*wait, 2*time.Second) {
		tctx, cancel := context.WithTimeout(ctx, readTry) // a request lost in a reconnect is never answered
		e, err := s.data.Get(tctx, k)
		cancel()
		switch {
		case errors.Is(err, jetstream.ErrKeyNotFound):
			return nil, notExist(op, key)
		case err == nil:
			return e, nil
		case ctx.Err() != nil || !unanswered(err) || time.Now().Add(wait).After(deadline):
			return nil, fmt.Errorf("jscerts: %s %q: %w", op, key, err)
		}
		s.log.Debug("read again", "op", op, "key", key, "err", err)
		select {
		case <-ctx.Done():
		case <-time.After(wait):
		}
	}
}

// unanswered reports an error of a request that got no answer (timeout,
// no responders: a leader being elected, a reconnect), which asking again
// may cure; any other error is final.
func unanswered(err error) bool {
	return errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nats.ErrTimeout) ||
		errors.Is(err, nats.ErrNoResponders) || errors.Is(err, jetstream.ErrNoStreamResponse)
}

// readRetry bounds how long a read is tried again (a leader election
// takes a few seconds).
const readRetry = 30 * time.Second

// readTry bounds one read.
const readTry = 5 * time.Second

// Delete removes key and, if key is a directory, every key below it. A
// missing key is not an error. Keys are purged from the stream (no delete
// markers are left).
func (s *Storage) Delete(ctx context.Context, key string) error {
	k, err := encodeKey(key)
	if err != nil {
		return err
	}
	strm, err := s.js.Stream(ctx, s.dataStrm)
	if err != nil {
		return fmt.Errorf("jscerts: delete %q: %w", key, err)
	}
	subj := "$KV." + s.bucket + "." + k
	for _, f := range []string{subj, subj + ".>"} {
		if err := strm.Purge(ctx, jetstream.WithPurgeSubject(f)); err != nil {
			return fmt.Errorf("jscerts: delete %q: %w", key, err)
		}
	}
	return nil
}

// Exists reports whether key is a file or a directory.
func (s *Storage) Exists(ctx context.Context, key string) bool {
	if _, err := s.get(ctx, "exists", key); err == nil {
		return true
	}
	k, err := encodeKey(key)
	if err != nil {
		return false
	}
	keys, err := s.listEncoded(ctx, subtreeFilter(k))
	return err == nil && len(keys) > 0
}

// Stat describes key: a file (IsTerminal, with size and the time of its
// last Store) or a directory. Missing keys give an error wrapping
// fs.ErrNotExist.
func (s *Storage) Stat(ctx context.Context, key string) (certmagic.KeyInfo, error) {
	e, err := s.get(ctx, "stat", key)
	if err == nil {
		return certmagic.KeyInfo{Key: canonical(key), Modified: e.Created(), Size: int64(len(e.Value())), IsTerminal: true}, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return certmagic.KeyInfo{}, err
	}
	k, _ := encodeKey(key)
	keys, lerr := s.listEncoded(ctx, subtreeFilter(k))
	if lerr != nil {
		return certmagic.KeyInfo{}, fmt.Errorf("jscerts: stat %q: %w", key, lerr)
	}
	if len(keys) == 0 {
		return certmagic.KeyInfo{}, err
	}
	return certmagic.KeyInfo{Key: canonical(key), IsTerminal: false}, nil
}

// List returns the keys below prefix ("" = the root), as FileStorage does:
// with recursive false the direct children of prefix (files and
// directories), with recursive true every descendant (directories
// included). A prefix that is neither a file nor a directory gives an
// error wrapping fs.ErrNotExist; a file gives an empty list. Listing reads
// through a consumer, which may lag the latest Store by a moment.
func (s *Storage) List(ctx context.Context, prefix string, recursive bool) ([]string, error) {
	prefix = canonical(prefix)
	var enc string
	if prefix != "" {
		var err error
		if enc, err = encodeKey(prefix); err != nil {
			return nil, err
		}
	}
	encKeys, err := s.listEncoded(ctx, subtreeFilter(enc))
	if err != nil {
		return nil, fmt.Errorf("jscerts: list %q: %w", prefix, err)
	}
	if len(encKeys) == 0 {
		if prefix != "" {
			if _, err := s.get(ctx, "list", prefix); err == nil {
				return []string{}, nil
			}
		}
		return nil, notExist("list", prefix)
	}
	seen := map[string]bool{}
	for _, ek := range encKeys {
		full, err := decodeKey(ek)
		if err != nil {
			s.log.Warn("skipping foreign key", "key", ek, "err", err)
			continue
		}
		rel := full
		if prefix != "" {
			rel = strings.TrimPrefix(full, prefix+"/")
		}
		parts := strings.Split(rel, "/")
		if !recursive {
			parts = parts[:1]
		}
		for i := range parts {
			k := strings.Join(parts[:i+1], "/")
			if prefix != "" {
				k = prefix + "/" + k
			}
			seen[k] = true
		}
	}
	out := make([]string, 0, len(seen))
	for k := range seen {
		out = append(out, k)
	}
	sort.Strings(out)
	return out, nil
}

// listEncoded returns the encoded keys matching filter. It always reads
// the listing to its end: nats.go's lister goroutine blocks on a full
// channel, so stopping early would leak it.
func (s *Storage) listEncoded(ctx context.Context, filter string) ([]string, error) {
	lister, err := s.data.ListKeysFiltered(ctx, filter)
	if err != nil {
		if errors.Is(err, jetstream.ErrNoKeysFound) {
			return nil, nil
		}
		return nil, err
	}
	var keys []string
	for {
		select {
		case k, ok := <-lister.Keys():
			if !ok {
				if err := ctx.Err(); err != nil {
					return nil, err // the lister stopped on ctx, the listing is partial
				}
				return keys, nil
			}
			keys = append(keys, k)
		case <-ctx.Done():
			go func() {
				for range lister.Keys() {
				}
			}()
			return nil, ctx.Err()
		}
	}
}
