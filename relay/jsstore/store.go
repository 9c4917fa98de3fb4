// Package jsstore is the NATS JetStream implementation of storage.Store,
// for cluster mode: every node of a cluster opens the same stream and sees
// the same claims, events, deliveries and queues.
//
// # Layout
//
// One stream (Options.Name, default "hookrelay") holds every record, one
// message per subject (MaxMsgsPerSubject 1, so a subject is a key and a
// publish replaces its value), replicated Options.Replicas times, with
// atomic batch publish (AllowAtomicPublish) and per-message TTLs
// (AllowMsgTTL, nats-server 2.11+). <p> is the stream name:
//
//	<p>.d.<hex sha256(source, 0, dedupe key)> -> event id        Nats-TTL: dedupe window
//	<p>.m.<event id>                   -> storage.Event JSON, then the raw body (Hr-Meta: JSON length)  Nats-TTL: retention
//	<p>.a.<event id>                   -> []delivery.Delivery    Nats-TTL: rest of retention
//	<p>.q.<target>.<event id>          -> due (unix ns), or a tombstone (Hr-Op: del, Nats-TTL 2m)
//	<p>.o.<target>.<shard>             -> a delivery shard's owner (lease.go)  Nats-TTL: attempt ttl + 5s, at least 20s
//	<p>.w.<nuid>                       -> a delivering Store's presence (lease.go)  Nats-TTL: 10s
//	<p>.t.<target>                     -> paused since, or a tombstone once resumed (targets.go)
//	<p>.n.<node>                       -> the claim of a running node's name (nodes.go)
//	<p>.z.<nuid>                       -> a queue scan's barrier (one per Store)  Nats-TTL: 1m
//
// <p>.a.<event id> is written by the first recorded attempt or replay;
// until then the event's deliveries are the initial ones (pending, due at
// receipt, one per target), derived from the event. Events stored before
// the body moved into <p>.m (no Hr-Meta header) have it in <p>.r.<event id>,
// which is still read.
//
// Targets that are not plain subject tokens are written "~" + base64url.
// Queue entries are keyed without their due time, so a delivery has at
// most one entry per target and a rewrite is never a second entry.
// Claims are never deleted: they expire by TTL (a deleted subject would
// invite nats-server#5162-style races; an expired one is simply absent).
//
// # Ingest: one step
//
// Ingest publishes ONE atomic batch (Nats-Batch-Id/-Sequence/-Commit)
// holding, per event: the claim (with Nats-Expected-Last-Subject-Sequence:
// 0, so the first claim of a key wins cluster-wide), the event with its
// body (one message) and one queue entry per target: 2 + targets messages. The server stages the
// batch and applies all of it or none of it; in a cluster the commit is one
// RAFT proposal, and the commit's publish ack (which Ingest waits for
// before answering) comes only once a quorum has stored it.
//
// Calls are group-committed: Options.MaxInflight committer goroutines
// (default 8, 2 with replicas 1) each take the calls waiting at that
// moment (up to 128 events, 900 messages, 512 KiB) into one batch. Two calls with the same
// claim never share a batch (the later one goes alone, after). A batch
// refused for a claim (wrong last subject sequence) is split in halves
// until the refused event is alone; then it is a duplicate: Ingest reads
// the claim and answers with the first id. If the claim holds the event's
// own id, an earlier try of the same batch committed (its ack was lost or
// timed out) and the answer is "accepted". If the claim is absent (the
// competing batch failed, or the claim just expired), the batch is tried
// again. Retries of one batch stop after 15 s (a leader election takes up
// to 9 s) with storage.ErrUnavailable: nothing acknowledged.
//
// What a crash costs, by the point the node dies at (test hook points in
// brackets; TestCrashPoints and TestLostAck inject each):
//   - before the batch's first message [claim]: nothing stored, nothing
//     answered; the provider's retry is a new event.
//   - after some batch messages, before the commit [batch]: the server
//     holds the uncommitted batch in its staging area and drops it after
//     10 s (streamMaxBatchTimeout); nothing is stored, the claim is free,
//     the retry is a new event.
//   - after the commit, before the ack reaches the node [ack], or before
//     the node answers 200 [commit]: the event, its claim and its queued
//     deliveries are stored; the provider's retry (or this node's own
//     retry of the batch) is answered with the first id, and the
//     deliveries are made by whichever node takes them.
//   - a stream leader dying during the commit: RAFT either commits the
//     proposal (as above) or not (as before the commit); the ack only
//     comes after a quorum stored it, so an acknowledged event is never
//     lost (TestKillOne kills the leader's server under load).
//
// There is no step between the claim and the event: a claim without its
// event cannot exist, so no duplicate ever answers with an id that has no
// event behind it.
//
// # Deliveries
//
// RecordAttempt and Requeue read the delivery record and the queue entry,
// apply delivery.Next, and write both back in one atomic batch, each
// message carrying Nats-Expected-Last-Subject-Sequence of what was read:
// a compare-and-set on both, retried on conflict. A removed queue entry is
// a tombstone, the batch's last message, that expires after 2 s on each
// server by itself (a delete would be one more RAFT proposal). These writes
// are group-committed (records.go): the writes waiting at one moment go in
// one atomic batch, split on a refused compare-and-set until the refused
// write is alone (it then reads and tries again by itself).
//
// Which Store attempts a delivery is decided by the ownership of its
// shard (lease.go): Lease costs no writes. A delivery on the node that
// ingested its event (Ingest picks an id in one of its own shards) costs
// one get in LoadDelivery (the delivery record: the event and its body
// come from the node's cache) and one atomic batch in RecordAttempt,
// whose first try writes from what LoadDelivery read and the queue
// entry's sequence this node wrote, without reading (see cache). On
// another node, LoadDelivery reads the event record too and RecordAttempt
// the queue entry. Stale guesses fail the compare-and-set and are read
// again.
//
// # Reads and their cost
//
// Reads go to the stream leader (the stream has no AllowDirect, so the
// JetStream message-get API answers from the leader): a node reads its own
// writes and every other node's acknowledged ones. Get is two gets (one
// for an event ingested through this Store, from its cache). A queue read
// (DueDeliveries, QueueDepth) goes through this Store's view of the
// target's queue (see queueView): a barrier publish, then one round trip
// per 1000 queue messages written since the last read (the whole queue
// when the view is built: first read, or unread for 45 s), then work in
// memory over the queue's entries. List and Each take the event ids from
// one stream info request with a subject filter (every retained event's
// subject, paged by the server) and then cost two gets per event visited.
// Fine for thousands of events per query; an index is the next step
// beyond that.
//
// # Limits
//
// A body is one message with its event's JSON: both must fit the server's
// max_payload (1 MiB by default; set server.max_body_bytes a few KiB below
// that, or raise max_payload).
// A server keeps at most 50 atomic batches in flight per stream (all nodes
// together); Ingest retries a batch refused for that. With replicas 1 on
// file storage the server stages every atomic batch in a file store of its
// own (nats-server newBatchStore), so each batch costs file creation and
// an fsync: group commit is what makes replicas 1 usable (measured on a
// 2-core box with TestThroughput, 32 writers, 1 KiB bodies, no -race:
// ~1,800 events/s with replicas 1 and 2 committers, ~13,400/s with
// replicas 3 and 8 committers on three in-process servers).
package jsstore

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hookrelay/hookrelay/relay/delivery"
	"github.com/hookrelay/hookrelay/relay/storage"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"
)

// Options configure a Store.
type Options struct {
	// Conn is an open connection to use (not closed by Close). Without
	// it, Open connects to URLs and Close closes that connection.
	Conn *nats.Conn
	URLs []string
	// NATSOptions are extra options for the connection Open makes.
	NATSOptions []nats.Option
	// Replicas of the stream (default 1).
	Replicas int
	// Retention of events, bodies and deliveries (default 720h).
	Retention time.Duration
	// DedupeWindow is how long a claim lasts (default 168h).
	DedupeWindow time.Duration
	// Name of the stream and root of its subjects (default "hookrelay").
	Name string
	// MaxInflight is the number of group committers, each with at most
	// one Ingest batch in flight (default 8, 2 with Replicas 1). A server refuses more than
	// 50 atomic batches in flight per stream, across all nodes (Ingest
	// and RecordAttempt retry a batch refused for that).
	MaxInflight int
	// Space, if set, watches the disk under this node's replicas of the
	// stream (an embedded NATS server's store_dir): see space.go.
	Space SpaceSource
	// Health, if set, is a check of this node's own NATS server that
	// Ready reports (nil: fine).
	Health func() error
	Logger *slog.Logger
}

// Store is the JetStream-backed storage.Store. It is safe for concurrent use.
type Store struct {
	nc        *nats.Conn
	ownConn   bool
	js        jetstream.JetStream
	stream    jetstream.Stream
	name      string
	p         string // subject prefix: name + "."
	retention time.Duration
	window    time.Duration
	log       *slog.Logger
	ingestCh  chan *ingestReq
	recordCh  chan *recordReq // delivery writes (records.go)
	stop      chan struct{}
	dead      chan struct{} // closed once the committers have exited
	wg        sync.WaitGroup
	ids       storage.IDGen
	barrier   string // this Store's scan barrier subject
	presence  string // this Store's presence subject, while it delivers (lease.go)
	shards    shards
	cache     cache
	space     SpaceSource
	health    func() error
	lowNode   atomic.Pointer[error] // another node whose disk is low (space.go)
	viewsMu   sync.Mutex
	views     map[string]*queueView // by target
	closed    atomic.Bool
	closeOnce sync.Once

	// hook, when set (tests), is called at each step of Ingest; an error
	// stops Ingest there, as if the node died.
	hook func(point string) error
}

var _ storage.Store = (*Store)(nil)

var nameRE = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)

// Open connects (unless opts.Conn is set) and creates or updates the stream.
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
	if opts.Replicas <= 0 {
		opts.Replicas = 1
	}
	if opts.Name == "" {
		opts.Name = "hookrelay"
	}
	if opts.MaxInflight <= 0 {
		// Replicas 1 stages each batch on disk with an fsync: fewer,
		// larger batches. Replicated streams stage in memory, and more
		// batches in flight hide the RAFT round trip (measured, 2 cores,
		// 32 writers: replicas 1 1,800/s with 2 committers, 640/s with 8;
		// replicas 3 12,900/s with 4, 13,400/s with 8).
		opts.MaxInflight = 8
		if opts.Replicas == 1 {
			opts.MaxInflight = 2
		}
	}
	if !nameRE.MatchString(opts.Name) {
		return nil, fmt.Errorf("jsstore: bad stream name %q (letters, digits, _ and - only)", opts.Name)
	}
	s := &Store{nc: opts.Conn, name: opts.Name, p: opts.Name + ".", retention: opts.Retention,
		window: opts.DedupeWindow, log: opts.Logger, ingestCh: make(chan *ingestReq, maxGroupEvents), recordCh: make(chan *recordReq, maxGroupEvents), stop: make(chan struct{}), dead: make(chan struct{}),
		barrier: opts.Name + ".z." + nuid.Next(), space: opts.Space, health: opts.Health}
	s.presence = s.p + "w." + s.barrier[len(s.p)+2:]
	if s.nc == nil {
		if len(opts.URLs) == 0 {
			return nil, errors.New("jsstore: no NATS connection or URLs")
		}
		no := append([]nats.Option{nats.Name("hookrelay"), nats.MaxReconnects(-1), nats.ReconnectWait(250 * time.Millisecond)}, opts.NATSOptions...)
		nc, err := nats.Connect(strings.Join(opts.URLs, ","), no...)
		if err != nil {
			return nil, fmt.Errorf("%w: connect to NATS: %w", storage.ErrUnavailable, err)
		}
		s.nc, s.ownConn = nc, true
	}
	js, err := jetstream.New(s.nc)
	if err != nil {
		s.closeConn()
		return nil, err
	}
	s.js = js
	cfg := jetstream.StreamConfig{
		Name:               opts.Name,
		Subjects:           []string{s.p + ">"},
		Storage:            jetstream.FileStorage,
		Replicas:           opts.Replicas,
		MaxMsgsPerSubject:  1,
		Discard:            jetstream.DiscardOld,
		AllowMsgTTL:        true,
		AllowAtomicPublish: true,
		AllowDirect:        false, // reads from the leader: read-your-writes
		Duplicates:         time.Minute,
	}
	var st jetstream.Stream
	for try := 0; ; try++ {
		st, err = js.CreateOrUpdateStream(ctx, cfg)
		if err == nil || try >= 20 || ctx.Err() != nil {
			break
		}
		// A fresh cluster may still be electing leaders.
		time.Sleep(250 * time.Millisecond)
	}
	if err != nil {
		s.closeConn()
		return nil, fmt.Errorf("%w: create stream %s: %w", storage.ErrUnavailable, opts.Name, err)
	}
	s.stream = st
	// Another node's disk may be nearly full already (space.go).
	if claims, err := s.NodeClaims(ctx); err == nil || len(claims) > 0 {
		s.noteLowNode(claims)
	}
	s.wg.Add(1)
	go s.watchNodesSpace()
	for range recordCommitters {
		s.wg.Add(1)
		go s.recordLoop()
	}
	for range opts.MaxInflight {
		s.wg.Add(1)
		go s.commitLoop()
	}
	return s, nil
}

func (s *Store) closeConn() {
	if s.ownConn {
		s.nc.Close()
	}
}

// Close closes the connection Open made; the data stays in JetStream.
func (s *Store) Close(ctx context.Context) error {
	s.closeOnce.Do(func() {
		s.closed.Store(true)
		s.shards.mu.Lock()
		s.shards.closing = true // no shard ticker starts after this
		s.shards.mu.Unlock()
		close(s.stop)
		s.wg.Wait()
		close(s.dead)
		s.releaseShards()
		s.closeViews()
		if s.ownConn {
			_ = s.nc.Drain()
			s.nc.Close()
		}
	})
	return nil
}

func (s *Store) check() error {
	if s.closed.Load() {
		return fmt.Errorf("%w: store closed", storage.ErrUnavailable)
	}
	return nil
}

// Ready fails unless the stream has a leader that answers through this
// node's connection (no quorum, no leader, disconnected: unavailable),
// while this node's or another node's disk is nearly full (space.go), and
// while Options.Health fails.
func (s *Store) Ready() error {
	if err := s.check(); err != nil {
		return err
	}
	if err := s.spaceErr(); err != nil {
		return err
	}
	if s.health != nil {
		if err := s.health(); err != nil {
			return fmt.Errorf("%w: %w", storage.ErrUnavailable, err)
		}
	}
	if st := s.nc.Status(); st != nats.CONNECTED {
		return fmt.Errorf("%w: NATS connection %v", storage.ErrUnavailable, st)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	info, err := s.stream.Info(ctx)
	if err != nil {
		return fmt.Errorf("%w: stream %s: %w", storage.ErrUnavailable, s.name, err)
	}
	if info.Cluster != nil {
		if info.Cluster.Leader == "" {
			return fmt.Errorf("%w: stream %s has no leader", storage.ErrUnavailable, s.name)
		}
		// The leader keeps its role up to 10 s after losing its quorum:
		// count the replicas it heard from lately.
		alive := 1
		for _, p := range info.Cluster.Replicas {
			if !p.Offline && p.Active < peerSilence {
				alive++
			}
		}
		if quorum := info.Config.Replicas/2 + 1; alive < quorum {
			return fmt.Errorf("%w: stream %s: %d of %d replicas reachable, %d needed", storage.ErrUnavailable, s.name, alive, info.Config.Replicas, quorum)
		}
	}
	return nil
}

// peerSilence: a replica the leader has not heard from for this long
// (RAFT heartbeats are every second) counts as gone for Ready.
const peerSilence = 4 * time.Second

// ---- subjects ----

func claimToken(source, key string) string {
	h := sha256.New()
	h.Write([]byte(source))
	h.Write([]byte{0})
	h.Write([]byte(key))
	return hex.EncodeToString(h.Sum(nil))
}

var tokenRE = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)

// token makes a target name a subject token.
func token(target string) string {
	if tokenRE.MatchString(target) {
		return target
	}
	return "~" + base64.RawURLEncoding.EncodeToString([]byte(target))
}

// validID reports whether id can be an event id subject token.
func validID(id string) bool { return tokenRE.MatchString(id) }

func (s *Store) claimSubj(tok string) string   { return s.p + "d." + tok }
func (s *Store) metaSubj(id string) string     { return s.p + "m." + id }
func (s *Store) rawSubj(id string) string      { return s.p + "r." + id }
func (s *Store) delivSubj(id string) string    { return s.p + "a." + id }
func (s *Store) queueSubj(t, id string) string { return s.p + "q." + token(t) + "." + id }
func (s *Store) queueFilter(t string) string   { return s.p + "q." + token(t) + ".*" }

// Queue keys (Due.Key): target NUL id NUL due-ns.
// QueueKey implements storage.Store.
func (s *Store) QueueKey(target string, due time.Time, id string) []byte {
	return queueKey(target, id, due)
}

func queueKey(target, id string, due time.Time) []byte {
	return []byte(target + "\x00" + id + "\x00" + strconv.FormatInt(due.UnixNano(), 10))
}

func parseQueueKey(k []byte) (target, id string, due time.Time, ok bool) {
	parts := strings.Split(string(k), "\x00")
	if len(parts) != 3 {
		return "", "", time.Time{}, false
	}
	ns, err := strconv.ParseInt(parts[2], 10, 64)
	if err != nil {
		return "", "", time.Time{}, false
	}
	return parts[0], parts[1], time.Unix(0, ns), true
}

// ---- headers ----

const (
	hdrMeta = "Hr-Meta" // on an event record: length of its JSON, the body follows
	hdrOp   = "Hr-Op"
	hdrTTL  = "Nats-TTL"
	hdrExpS = "Nats-Expected-Last-Subject-Sequence"
	opDel   = "del"
)

func ttlSeconds(d time.Duration) string {
	sec := int64((d + time.Second - 1) / time.Second)
	return strconv.FormatInt(max(sec, 1), 10)
}

func newMsg(subj string, data []byte, ttl time.Duration) *nats.Msg {
	m := nats.NewMsg(subj)
	m.Data = data
	if ttl > 0 {
		m.Header.Set(hdrTTL, ttlSeconds(ttl))
	}
	return m
}

func expect(m *nats.Msg, seq uint64) *nats.Msg {
	m.Header.Set(hdrExpS, strconv.FormatUint(seq, 10))
	return m
}

// ---- atomic batches ----

type apiError struct {
	Code        int    `json:"code"`
	ErrCode     int    `json:"err_code"`
	Description string `json:"description"`
}

func (e *apiError) Error() string {
	return fmt.Sprintf("jetstream: %s (%d/%d)", e.Description, e.Code, e.ErrCode)
}

type pubAck struct {
	Stream   string    `json:"stream"`
	Seq      uint64    `json:"seq"`
	BatchID  string    `json:"batch,omitempty"`
	Count    int       `json:"count,omitempty"`
	APIError *apiError `json:"error,omitempty"`
}

// Error codes of nats-server (jetstream_errors_generated.go).
const (
	errWrongLastSeq         = 10071
	errWrongLastSeqConstant = 10164
	errBatchIncomplete      = 10176
	errBatchTooManyInflight = 10210
)

// isConflict reports a refused compare-and-set (wrong last subject
// sequence), from a batch ack or from a jetstream publish.
func isConflict(err error) bool {
	var ae *apiError
	if errors.As(err, &ae) {
		return ae.ErrCode == errWrongLastSeq || ae.ErrCode == errWrongLastSeqConstant
	}
	var je *jetstream.APIError
	return errors.As(err, &je) && (je.ErrorCode == errWrongLastSeq || je.ErrorCode == errWrongLastSeqConstant)
}

func isRetryable(err error) bool {
	var ae *apiError
	if errors.As(err, &ae) {
		return ae.ErrCode == errBatchIncomplete || ae.ErrCode == errBatchTooManyInflight || ae.Code == 503
	}
	return errors.Is(err, nats.ErrTimeout) || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nats.ErrNoResponders)
}

// commit publishes msgs as one atomic batch and waits for its ack. mid,
// if set, is called after the first message (tests: a crash mid-batch).
func (s *Store) commit(ctx context.Context, msgs []*nats.Msg, mid func() error) (*pubAck, error) {
	id := nuid.Next()
	for i, m := range msgs {
		m.Header.Set("Nats-Batch-Id", id)
		m.Header.Set("Nats-Batch-Sequence", strconv.Itoa(i+1))
		if i == len(msgs)-1 {
			m.Header.Set("Nats-Batch-Commit", "1")
			break
		}
		m.Header.Del("Nats-Batch-Commit") // a message may be reused in a smaller batch
		if err := s.nc.PublishMsg(m); err != nil {
			return nil, err
		}
		if i == 0 && mid != nil {
			if err := mid(); err != nil {
				return nil, err
			}
		}
	}
	rctx, cancel := ctx, context.CancelFunc(func() {})
	if _, ok := ctx.Deadline(); !ok {
		rctx, cancel = context.WithTimeout(ctx, 10*time.Second)
	}
	defer cancel()
	resp, err := s.nc.RequestMsgWithContext(rctx, msgs[len(msgs)-1])
	if err != nil {
		return nil, err
	}
	var ack pubAck
	if err := json.Unmarshal(resp.Data, &ack); err != nil {
		return nil, fmt.Errorf("jetstream: bad publish ack %q: %w", resp.Data, err)
	}
	if ack.APIError != nil {
		return nil, ack.APIError
	}
	return &ack, nil
}

// ---- reads ----

type rec struct {
	seq  uint64
	data []byte
	del  bool
	hdr  nats.Header
}

// last returns the message on subj (leader read); ok false if none.
func (s *Store) last(ctx context.Context, subj string) (rec, bool, error) {
	m, err := s.stream.GetLastMsgForSubject(ctx, subj)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return rec{}, false, nil
	}
	if err != nil {
		return rec{}, false, fmt.Errorf("%w: get %s: %w", storage.ErrUnavailable, subj, err)
	}
	return rec{seq: m.Sequence, data: m.Data, del: m.Header.Get(hdrOp) == opDel, hdr: m.Header}, true, nil
}

// scanBatch is how many messages one queue read brings a round trip at
// most (see queueView).
const scanBatch = 1000

// scanByGet is scan with one request per message (next message by
// subject), for when no consumer can be made.
func (s *Store) scanByGet(ctx context.Context, filter string, fn func(subj string, r rec) bool) error {
	seq := uint64(1)
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		m, err := s.stream.GetMsg(ctx, seq, jetstream.WithGetMsgSubject(filter))
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("%w: scan %s (by get): %w", storage.ErrUnavailable, filter, err)
		}
		if !fn(m.Subject, rec{seq: m.Sequence, data: m.Data, del: m.Header.Get(hdrOp) == opDel}) {
			return nil
		}
		seq = m.Sequence + 1
	}
}

// ---- ingest ----

// Group-commit limits: one atomic batch holds at most this many events,
// messages and bytes (a server takes up to 1000 messages per batch; the
// byte bound keeps one RAFT proposal well under a route's max payload).
const (
	maxGroupEvents = 128
	maxGroupMsgs   = 900
	maxGroupBytes  = 512 << 10
)

// ingestReq is one Ingest call waiting for a committer.
type ingestReq struct {
	ev   *storage.Event
	tok  string
	meta []byte // ev's JSON
	raw  []byte
	msgs []*nats.Msg
	size int
	res  storage.Result // the answer if the batch commits
	done chan ingestResp
}

type ingestResp struct {
	res storage.Result
	err error
}

// Ingest claims the dedupe key and stores the event, body, deliveries and
// queue entries in one atomic batch (see the package comment). Calls are
// group-committed: a few committer goroutines each gather the calls
// waiting at that moment into one atomic batch; a batch refused for a
// claim is split until the duplicate is alone.
func (s *Store) Ingest(ctx context.Context, ev *storage.Event, raw []byte) (storage.Result, error) {
	if err := s.check(); err != nil {
		return storage.Result{}, err
	}
	if err := s.spaceErr(); err != nil {
		return storage.Result{}, err
	}
	r, err := s.newReq(ev, raw)
	if err != nil {
		return storage.Result{}, err
	}
	resp, err := storage.HandOff(ctx, s.ingestCh, r, r.done, s.stop, s.dead)
	if err != nil {
		return storage.Result{}, err
	}
	return resp.res, resp.err
}

func (s *Store) newReq(ev *storage.Event, raw []byte) (*ingestReq, error) {
	tok := claimToken(ev.Source, ev.DedupeKey)
	s.pickID(ev)
	meta, err := json.Marshal(ev)
	if err != nil {
		return nil, fmt.Errorf("encode event: %w", err)
	}
	res := storage.Result{ID: ev.ID}
	for _, t := range ev.Targets {
		res.Queued = append(res.Queued, storage.Due{EventID: ev.ID, Target: t, At: ev.ReceivedAt, Key: queueKey(t, ev.ID, ev.ReceivedAt)})
	}
	// The event and its body are one message; the delivery records are
	// not written yet (initialDeliveries stands for them until the first
	// attempt is recorded).
	data := make([]byte, 0, len(meta)+len(raw))
	data = append(append(data, meta...), raw...)
	rm := newMsg(s.metaSubj(ev.ID), data, s.retention)
	rm.Header.Set(hdrMeta, strconv.Itoa(len(meta)))
	msgs := []*nats.Msg{
		expect(newMsg(s.claimSubj(tok), []byte(ev.ID), s.window), 0),
		rm,
	}
	for _, t := range ev.Targets {
		msgs = append(msgs, newMsg(s.queueSubj(t, ev.ID), []byte(strconv.FormatInt(ev.ReceivedAt.UnixNano(), 10)), 0))
	}
	size := 0
	for _, m := range msgs {
		size += len(m.Subject) + len(m.Data) + 64
	}
	return &ingestReq{ev: ev, tok: tok, meta: meta, raw: raw, msgs: msgs, size: size, res: res, done: make(chan ingestResp, 1)}, nil
}

// commitLoop is one group committer.
func (s *Store) commitLoop() {
	defer s.wg.Done()
	for {
		var first *ingestReq
		select {
		case first = <-s.ingestCh:
		case <-s.stop:
			s.drainIngest()
			return
		}
		group := []*ingestReq{first}
		toks := map[string]bool{first.tok: true}
		var later []*ingestReq // same claim as one in the group: after it
		msgs, size := len(first.msgs), first.size
	gather:
		for len(group) < maxGroupEvents && msgs < maxGroupMsgs && size < maxGroupBytes {
			select {
			case r := <-s.ingestCh:
				if toks[r.tok] {
					later = append(later, r)
					continue
				}
				toks[r.tok] = true
				group = append(group, r)
				msgs += len(r.msgs)
				size += r.size
			default:
				break gather
			}
		}
		s.commitGroup(group)
		for _, r := range later {
			s.commitGroup([]*ingestReq{r})
		}
	}
}

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

func answer(group []*ingestReq, err error) {
	for _, r := range group {
		if err != nil {
			r.done <- ingestResp{err: err}
		} else {
			r.done <- ingestResp{res: r.res}
		}
	}
}

// groupDeadline bounds the retries of one group (a leader election takes
// up to 9 s).
const groupDeadline = 15 * time.Second

// commitGroup commits group as one atomic batch (splitting it when a
// claim is refused) and answers every request in it.
func (s *Store) commitGroup(group []*ingestReq) {
	ctx, cancel := context.WithTimeout(context.Background(), groupDeadline)
	defer cancel()
	var lastErr error
	for try := 0; ; try++ {
		if try > 0 {
			if err := sleep(ctx, backoff(try)); err != nil {
				answer(group, fmt.Errorf("%w: store event: %w", storage.ErrUnavailable, lastErr))
				return
			}
		}
		if s.closed.Load() {
			answer(group, fmt.Errorf("%w: store closed", storage.ErrUnavailable))
			return
		}
		if err := s.step("claim"); err != nil {
			answer(group, err)
			return
		}
		var msgs []*nats.Msg
		for _, r := range group {
			msgs = append(msgs, r.msgs...)
		}
		cctx, ccancel := context.WithTimeout(ctx, 5*time.Second)
		ack, err := s.commit(cctx, msgs, func() error { return s.step("batch") })
		ccancel()
		if err == nil {
			s.remember(group, ack.Seq, len(msgs))
		}
		if err == nil {
			// Tests: "ack" makes a stored batch look unacknowledged (a
			// lost ack or a timeout), so that it is tried again.
			err = s.step("ack")
		}
		if err == nil {
			if err := s.step("commit"); err != nil {
				answer(group, err)
				return
			}
			answer(group, nil)
			return
		}
		lastErr = err
		if isConflict(err) {
			if len(group) > 1 {
				// Some claim is taken: split until it is alone.
				h := len(group) / 2
				s.commitGroup(group[:h])
				s.commitGroup(group[h:])
				return
			}
			r := group[0]
			c, ok, rerr := s.last(ctx, s.claimSubj(r.tok))
			if rerr != nil {
				lastErr = rerr
				continue
			}
			if !ok {
				continue // the other claim was in flight and failed, or just expired: try again
			}
			if id := string(c.data); id == r.ev.ID {
				answer(group, nil) // an earlier try committed
			} else {
				r.done <- ingestResp{res: storage.Result{ID: id, Duplicate: true}}
			}
			return
		}
		if !isRetryable(err) {
			answer(group, fmt.Errorf("%w: store event: %w", storage.ErrUnavailable, err))
			return
		}
	}
}

// remember caches the events and queue entries of group, committed as
// one batch of n messages whose last got sequence last. The batch's
// messages are stored in order with consecutive sequences (one RAFT
// entry applied at once); were they not, a queue sequence guessed here
// would only make one compare-and-set fail (see cache).
func (s *Store) remember(group []*ingestReq, last uint64, n int) {
	seq := last - uint64(n) // before the first message
	for _, r := range group {
		s.cache.putEvent(r.ev.ID, r.meta, r.raw)
		s.cache.putFresh(r.ev.ID)
		first := len(r.msgs) - len(r.ev.Targets) // the queue entries come last
		for i, t := range r.ev.Targets {
			s.cache.putQueue(t, r.ev.ID, queueState{seq: seq + uint64(first+i) + 1, ns: r.ev.ReceivedAt.UnixNano()})
		}
		seq += uint64(len(r.msgs))
	}
}

func (s *Store) step(point string) error {
	if s.hook == nil {
		return nil
	}
	return s.hook(point)
}

func backoff(try int) time.Duration {
	d := time.Duration(min(try, 10)) * 5 * time.Millisecond
	return d/2 + rand.N(d/2+1)
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

func sortDeliveries(ds []delivery.Delivery) []delivery.Delivery {
	slices.SortFunc(ds, func(a, b delivery.Delivery) int { return strings.Compare(a.Target, b.Target) })
	return ds
}
