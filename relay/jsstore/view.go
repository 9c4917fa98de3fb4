package jsstore

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hookrelay/hookrelay/relay/storage"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// A queueView is this Store's copy of one target's queue entries, kept up
// to date through a pull consumer of the target's queue subjects (acks
// none, in memory, one replica) that stays between reads: a read of the
// queue (DueDeliveries, QueueDepth) fetches only what was written since
// the last one, not the whole queue.
//
// Reads are read-your-writes although the consumer may be on a follower
// that lags the leader: a read first publishes a barrier message on this
// Store's own subject (<p>.z.<nuid>, in the consumer's filter) and fetches
// until the barrier arrives; the consumer delivers in stream order, so its
// copy of the stream then holds every message stored before the barrier.
//
// A removed entry is a tombstone that expires (tombstoneTTL): the view
// sees it only if it fetches before then. So a view not read for
// viewMaxGap (well under tombstoneTTL) is dropped and built again from
// the start of the stream, as is one whose consumer failed. A rebuild
// costs one round trip per scanBatch entries; an incremental read one
// per scanBatch new queue messages, plus the barrier publish.
//
// The consumer acks nothing, so a message lost on the way (a reconnect
// during a fetch) is never sent again: the view checks that consumer
// sequences follow each other and is built again at a gap, and in any
// case every viewMaxAge.
type queueView struct {
	mu      sync.Mutex
	cons    jetstream.Consumer
	name    string
	built   time.Time         // when cons was made
	cseq    uint64            // consumer sequence of the last message applied
	read    time.Time         // last complete read
	entries map[string]queued // by event id
}

// errViewGap: the view missed a message of its consumer.
var errViewGap = errors.New("queue view missed a message")

// viewMaxGap is how long a view may go unread and still be brought up to
// date; viewIdle is when the server drops the consumer of a view no
// longer read.
const (
	viewMaxGap = 45 * time.Second
	viewIdle   = 2 * time.Minute
	viewMaxAge = 5 * time.Minute
)

func (s *Store) queueView(target string) *queueView {
	s.viewsMu.Lock()
	defer s.viewsMu.Unlock()
	if s.views == nil {
		s.views = map[string]*queueView{}
	}
	v := s.views[target]
	if v == nil {
		v = &queueView{}
		s.views[target] = v
	}
	// Forget the views nobody reads any more (a target removed by a
	// reload): the server drops their consumers after viewIdle.
	for t, o := range s.views {
		if o != v && o.mu.TryLock() {
			if !o.read.IsZero() && time.Since(o.read) > viewIdle {
				delete(s.views, t)
			}
			o.mu.Unlock()
		}
	}
	return v
}

// drop forgets v's consumer and entries (the lock held).
func (v *queueView) drop(s *Store) {
	if v.cons != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_ = s.stream.DeleteConsumer(ctx, v.name)
		cancel()
	}
	v.cons, v.name, v.entries, v.cseq = nil, "", nil, 0
}

// sync brings the view of target up to date with every write acknowledged
// before it and calls fn with its entries (the lock held: fn must not keep
// the map).
func (s *Store) syncQueue(ctx context.Context, target string, fn func(map[string]queued)) error {
	v := s.queueView(target)
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.cons != nil && (time.Since(v.read) > viewMaxGap || time.Since(v.built) > viewMaxAge) {
		v.drop(s)
	}
	err := v.sync(ctx, s, target)
	if errors.Is(err, errViewGap) {
		s.log.Warn("queue view missed a message: building it again", "target", target)
		v.drop(s)
		err = v.sync(ctx, s, target)
	}
	if err != nil {
		v.drop(s)
		return err
	}
	fn(v.entries)
	return nil
}

func (v *queueView) sync(ctx context.Context, s *Store, target string) error {
	filter := s.queueFilter(target)
	started := time.Now()
	ack, err := s.js.PublishMsg(ctx, newMsg(s.barrier, nil, time.Minute))
	if err != nil {
		return fmt.Errorf("%w: scan %s: barrier: %w", storage.ErrUnavailable, filter, err)
	}
	if v.cons == nil {
		c, err := s.stream.CreateConsumer(ctx, jetstream.ConsumerConfig{
			FilterSubjects: []string{filter, s.barrier}, DeliverPolicy: jetstream.DeliverAllPolicy,
			AckPolicy: jetstream.AckNonePolicy, MemoryStorage: true, Replicas: 1, InactiveThreshold: viewIdle,
		})
		if err != nil {
			// No consumer right now: read the queue one entry a request.
			s.log.Debug("scan: no consumer, reading one by one", "filter", filter, "err", err)
			entries := map[string]queued{}
			err := s.scanByGet(ctx, filter, func(subj string, r rec) bool {
				apply(entries, subj, r)
				return true
			})
			if err == nil {
				v.entries = entries
			}
			return err
		}
		v.cons, v.name, v.entries, v.cseq, v.built = c, c.CachedInfo().Name, map[string]queued{}, 0, time.Now()
	}
	pending := uint64(1)
	for try := 0; ; {
		if err := ctx.Err(); err != nil {
			return err
		}
		// Ask for no more than is pending (Fetch returns when it has
		// them), or for one when the barrier is still to come.
		wait := 5 * time.Second // Fetch takes no context: keep within ctx's deadline
		if d, ok := ctx.Deadline(); ok {
			wait = max(min(wait, time.Until(d)), 10*time.Millisecond)
		}
		batch, err := v.cons.Fetch(int(min(max(pending, 1), scanBatch)), jetstream.FetchMaxWait(wait))
		if err != nil {
			return fmt.Errorf("%w: scan %s: %w", storage.ErrUnavailable, filter, err)
		}
		n, done := 0, false
		for m := range batch.Messages() {
			n++
			md, err := m.Metadata()
			if err != nil {
				return fmt.Errorf("%w: scan %s: %w", storage.ErrUnavailable, filter, err)
			}
			if md.Sequence.Consumer != v.cseq+1 {
				return fmt.Errorf("%w: consumer sequence %d after %d", errViewGap, md.Sequence.Consumer, v.cseq)
			}
			v.cseq = md.Sequence.Consumer
			pending = md.NumPending
			if m.Subject() == s.barrier {
				done = done || md.Sequence.Stream >= ack.Sequence
				continue
			}
			// Every message fetched is applied, also past the barrier:
			// the consumer does not bring it again.
			apply(v.entries, m.Subject(), rec{seq: md.Sequence.Stream, data: m.Data(), del: m.Headers().Get(hdrOp) == opDel})
		}
		if err := batch.Error(); n == 0 && errors.Is(err, nats.ErrNoResponders) && try < 20 {
			// A new consumer on another server whose interest has not
			// reached this one yet (it propagates over the routes apart
			// from the creation's answer): ask again shortly.
			try++
			if err := sleep(ctx, time.Duration(try)*5*time.Millisecond); err != nil {
				return err
			}
			continue
		} else if err != nil && (n == 0 || !errors.Is(err, nats.ErrTimeout)) {
			return fmt.Errorf("%w: scan %s: %w", storage.ErrUnavailable, filter, err)
		}
		if done {
			v.read = started
			return nil
		}
		if n == 0 {
			return fmt.Errorf("%w: scan %s: the barrier did not arrive", storage.ErrUnavailable, filter)
		}
	}
}

// apply puts the queue message r of subject subj into entries: a newer
// value replaces an older one, a tombstone removes the entry.
func apply(entries map[string]queued, subj string, r rec) {
	id := subj[strings.LastIndexByte(subj, '.')+1:]
	if old, ok := entries[id]; ok && old.seq > r.seq {
		return
	}
	ns, err := strconv.ParseInt(string(r.data), 10, 64)
	if r.del || err != nil {
		delete(entries, id)
		return
	}
	entries[id] = queued{id: id, due: time.Unix(0, ns), ns: ns, seq: r.seq}
}

// closeViews deletes the views' consumers.
func (s *Store) closeViews() {
	s.viewsMu.Lock()
	views := s.views
	s.views = nil
	s.viewsMu.Unlock()
	for _, v := range views {
		v.mu.Lock()
		v.drop(s)
		v.mu.Unlock()
	}
}
