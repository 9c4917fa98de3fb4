package jsstore

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/hookrelay/hookrelay/relay/delivery"
	"github.com/hookrelay/hookrelay/relay/storage"
	"github.com/nats-io/nats.go"
)

// tombstoneTTL is how long a removed queue entry's tombstone stays: it
// does its compare-and-set work inside the batch that writes it, tells the
// queue views that read within viewMaxGap that the entry is gone, and then
// expires on each server by itself (no RAFT proposal, unlike a delete).
const tombstoneTTL = 2 * time.Minute

type queued struct {
	id  string
	due time.Time
	ns  int64 // due, unix ns
	seq uint64
}

// DueDeliveries returns up to limit queued deliveries of target due at or
// before now, oldest due first, leaving out those skip reports; next is the
// due time of the first later entry not skipped.
func (s *Store) DueDeliveries(ctx context.Context, target string, now time.Time, limit int, skip func(id string) bool) ([]storage.Due, time.Time, error) {
	if err := s.check(); err != nil {
		return nil, time.Time{}, err
	}
	if err := s.deliverTo(ctx, target); err != nil {
		return nil, time.Time{}, fmt.Errorf("scan queue %s: %w", target, err)
	}
	// Only the entries due and not skipped are sorted, and of those only
	// the limit first: the queue may be long and memory holds most of it.
	var due []queued
	var later queued
	nowNS := now.UnixNano()
	err := s.syncQueue(ctx, target, func(entries map[string]queued) {
		for _, e := range entries {
			if (skip != nil && skip(e.id)) || !s.owns(target, e.id) {
				continue
			}
			if e.ns > nowNS {
				if later.id == "" || queuedLess(e, later) {
					later = e
				}
				continue
			}
			due = append(due, e)
		}
	})
	if err != nil {
		return nil, time.Time{}, fmt.Errorf("scan queue %s: %w", target, err)
	}
	var next time.Time
	if len(due) > limit {
		due = smallest(due, max(limit, 0))
	} else if later.id != "" {
		next = later.due
	}
	slices.SortFunc(due, queuedCompare)
	out := make([]storage.Due, 0, len(due))
	for _, e := range due {
		out = append(out, storage.Due{EventID: e.id, Target: target, At: e.due, Key: queueKey(target, e.id, e.due)})
	}
	return out, next, nil
}

// queuedCompare orders queue entries by due time, then event id.
func queuedCompare(a, b queued) int {
	if a.ns != b.ns {
		return cmp.Compare(a.ns, b.ns)
	}
	return strings.Compare(a.id, b.id)
}

func queuedLess(a, b queued) bool { return queuedCompare(a, b) < 0 }

// smallest returns the k first of es in queuedCompare order (in no
// particular order), reordering es: a max-heap of the k smallest so far.
func smallest(es []queued, k int) []queued {
	if k == 0 {
		return es[:0]
	}
	h := es[:k]
	down := func(i int) {
		for {
			l, big := 2*i+1, i
			if l < k && queuedLess(h[big], h[l]) {
				big = l
			}
			if r := l + 1; r < k && queuedLess(h[big], h[r]) {
				big = r
			}
			if big == i {
				return
			}
			h[i], h[big] = h[big], h[i]
			i = big
		}
	}
	for i := k/2 - 1; i >= 0; i-- {
		down(i)
	}
	for _, e := range es[k:] {
		if queuedLess(e, h[0]) {
			h[0] = e
			down(0)
		}
	}
	return h
}

// QueueDepth counts the queued deliveries of target.
func (s *Store) QueueDepth(ctx context.Context, target string) (int, error) {
	if err := s.check(); err != nil {
		return 0, err
	}
	n := 0
	err := s.syncQueue(ctx, target, func(entries map[string]queued) { n = len(entries) })
	return n, err
}

// deliveries reads ev's delivery records and the record's sequence (0 if
// none: then they are the initial ones, see initialDeliveries).
func (s *Store) deliveries(ctx context.Context, ev *storage.Event) ([]delivery.Delivery, uint64, error) {
	r, ok, err := s.last(ctx, s.delivSubj(ev.ID))
	if err != nil {
		return nil, 0, err
	}
	if !ok {
		return initialDeliveries(ev), 0, nil
	}
	ds := []delivery.Delivery{}
	if err := json.Unmarshal(r.data, &ds); err != nil {
		return nil, 0, fmt.Errorf("decode deliveries of %s: %w", ev.ID, err)
	}
	return ds, r.seq, nil
}

// initialDeliveries are the delivery records of ev as ingested (pending,
// due at receipt, one per target): Ingest does not write them, the first
// recorded attempt or replay does.
func initialDeliveries(ev *storage.Event) []delivery.Delivery {
	ds := make([]delivery.Delivery, 0, len(ev.Targets))
	for _, t := range ev.Targets {
		d, _ := delivery.Next(delivery.Delivery{Target: t}, delivery.IngestedAt(ev.ReceivedAt), delivery.Policy{})
		ds = append(ds, d)
	}
	return sortDeliveries(ds)
}

// event reads event id (from the cache if it was ingested here).
func (s *Store) event(ctx context.Context, id string) (*storage.Event, bool, error) {
	ev, _, ok, err := s.eventBody(ctx, id, false)
	return ev, ok, err
}

// eventBody reads event id and, with body, its raw body: one read of its
// record, or none if it was ingested here and is still retained.
func (s *Store) eventBody(ctx context.Context, id string, body bool) (*storage.Event, []byte, bool, error) {
	if !validID(id) {
		return nil, nil, false, nil
	}
	if c, ok := s.cache.event(id); ok {
		var ev storage.Event
		if err := json.Unmarshal(c.meta, &ev); err == nil && time.Since(ev.ReceivedAt) < s.retention {
			return &ev, c.raw, true, nil
		}
	}
	r, ok, err := s.last(ctx, s.metaSubj(id))
	if err != nil || !ok {
		return nil, nil, false, err
	}
	meta, raw := r.data, []byte(nil)
	n, err := strconv.Atoi(r.hdr.Get(hdrMeta))
	inline := err == nil && n >= 0 && n <= len(r.data)
	if inline {
		meta, raw = r.data[:n], r.data[n:]
	}
	var ev storage.Event
	if err := json.Unmarshal(meta, &ev); err != nil {
		return nil, nil, false, fmt.Errorf("decode event %s: %w", id, err)
	}
	if body && !inline {
		// Written before events and bodies shared a message.
		rr, ok, err := s.last(ctx, s.rawSubj(id))
		if err != nil || !ok {
			return nil, nil, false, err
		}
		raw = rr.data
	}
	return &ev, raw, true, nil
}

func find(ds []delivery.Delivery, target string) (delivery.Delivery, int) {
	for i, d := range ds {
		if d.Target == target {
			return d, i
		}
	}
	return delivery.Delivery{Target: target}, -1
}

// LoadDelivery returns an event, its raw body and its delivery to target;
// storage.ErrNotFound once the event has expired.
func (s *Store) LoadDelivery(ctx context.Context, id, target string) (*storage.Event, []byte, *delivery.Delivery, error) {
	if err := s.check(); err != nil {
		return nil, nil, nil, err
	}
	ev, raw, ok, err := s.eventBody(ctx, id, true)
	if err != nil {
		return nil, nil, nil, err
	}
	if !ok {
		return nil, nil, nil, fmt.Errorf("event %s: %w", id, storage.ErrNotFound)
	}
	var ds []delivery.Delivery
	var seq uint64
	if s.cache.takeFresh(id) {
		ds = initialDeliveries(ev) // none written yet, as far as this Store knows (see cache)
	} else if ds, seq, err = s.deliveries(ctx, ev); err != nil {
		return nil, nil, nil, err
	}
	s.cache.putLoaded(target, id, loadedDelivery{ev: ev, ds: ds, seq: seq})
	d, i := find(ds, target)
	if i < 0 {
		d.Status = delivery.Pending
	}
	return ev, raw, &d, nil
}

// retentionLeft is how long a rewritten delivery record of ev lives: as
// long as its event (at least a minute).
func (s *Store) retentionLeft(ev *storage.Event) time.Duration {
	return max(time.Until(ev.ReceivedAt.Add(s.retention)), time.Minute)
}

// writeDeliveries builds the message that replaces id's delivery records
// with ds (d put in), expecting sequence seq.
func (s *Store) deliveriesMsg(id string, ds []delivery.Delivery, d delivery.Delivery, seq uint64, ttl time.Duration) (*nats.Msg, error) {
	ds = slices.Clone(ds)
	if _, i := find(ds, d.Target); i >= 0 {
		ds[i] = d
	} else {
		ds = append(ds, d)
	}
	b, err := json.Marshal(sortDeliveries(ds))
	if err != nil {
		return nil, err
	}
	return expect(newMsg(s.delivSubj(id), b, ttl), seq), nil
}

// queueMsgs builds the queue change of op for the entry read as q (ok:
// present), expecting its sequence.
func (s *Store) queueMsg(target, id string, op delivery.QueueOp, q rec, ok bool) *nats.Msg {
	seq := uint64(0)
	if ok {
		seq = q.seq
	}
	switch {
	case !op.Add.IsZero():
		return expect(newMsg(s.queueSubj(target, id), []byte(strconv.FormatInt(op.Add.UnixNano(), 10)), 0), seq)
	case !op.Remove.IsZero() && ok && !q.del:
		m := newMsg(s.queueSubj(target, id), nil, tombstoneTTL)
		m.Header.Set(hdrOp, opDel)
		return expect(m, seq)
	}
	return nil
}

const maxCASTries = 50

// busyWait paces the tries of a write the server refused because the
// stream has too many atomic batches in flight (its limit is shared by
// every node's ingest and deliveries): those are waited out for up to
// about 20 s without using up the compare-and-set tries.
type busyWait struct{ n int }

func (b *busyWait) wait(ctx context.Context, err error) bool {
	var ae *apiError
	if !errors.As(err, &ae) || ae.ErrCode != errBatchTooManyInflight || b.n >= 200 {
		return false
	}
	b.n++
	return sleep(ctx, time.Duration(50+rand.N(50))*time.Millisecond) == nil
}

// queueWritten notes the last message m of a committed batch (sequence
// seq): a queue entry's new sequence and due time for the next
// compare-and-set, or, for a tombstone, that the delivery is finished.
func (s *Store) queueWritten(target, id string, m *nats.Msg, seq uint64) {
	if m.Subject != s.queueSubj(target, id) {
		s.cache.dropQueue(target, id) // the entry did not change
		return
	}
	if m.Header.Get(hdrOp) == opDel {
		s.cache.dropQueue(target, id)
		return
	}
	if ns, err := strconv.ParseInt(string(m.Data), 10, 64); err == nil {
		s.cache.putQueue(target, id, queueState{seq: seq, ns: ns})
	}
}

// RecordAttempt applies delivery.Next for the attempt made for queueKey
// and performs its queue operation, in one compare-and-set batch.
func (s *Store) RecordAttempt(ctx context.Context, id, target string, queueKey []byte, r delivery.Result, p delivery.Policy) (delivery.Delivery, error) {
	if err := s.check(); err != nil {
		return delivery.Delivery{}, err
	}
	s.cache.takeFresh(id) // it writes the delivery record
	kt, kid, entry, ok := parseQueueKey(queueKey)
	if !ok || kid != id || kt != target || !validID(id) {
		return delivery.Delivery{}, fmt.Errorf("record attempt %s/%s: queue key %q is not one of this delivery's", id, target, queueKey)
	}
	// The first try writes what this Store last wrote or read (see cache),
	// without reading; the server refuses it if that is stale, and every
	// later try reads from the leader.
	loaded, guess := s.cache.takeLoaded(target, id)
	if qs, ok := s.cache.queued(target, id); guess && ok && qs.ns == entry.UnixNano() {
		loaded.qseq = qs.seq
	} else {
		guess = false
	}
	var busy busyWait
	for try := 0; try < maxCASTries; try++ {
		if try > 1 || try == 1 && !guess { // a stale guess needs no backoff
			if err := sleep(ctx, backoff(try)); err != nil {
				return delivery.Delivery{}, fmt.Errorf("%w: %w", storage.ErrUnavailable, err)
			}
		}
		var q rec
		var qok, current, evok bool
		var ev *storage.Event
		var ds []delivery.Delivery
		var aseq uint64
		if try == 0 && guess {
			q, qok, current = rec{seq: loaded.qseq, data: []byte(strconv.FormatInt(entry.UnixNano(), 10))}, true, true
			ev, evok, ds, aseq = loaded.ev, true, loaded.ds, loaded.seq
		} else {
			var err error
			if q, qok, err = s.last(ctx, s.queueSubj(target, id)); err != nil {
				return delivery.Delivery{}, err
			}
			current = qok && !q.del && string(q.data) == strconv.FormatInt(entry.UnixNano(), 10)
			if ev, evok, err = s.event(ctx, id); err != nil {
				return delivery.Delivery{}, err
			}
			if evok {
				if ds, aseq, err = s.deliveries(ctx, ev); err != nil {
					return delivery.Delivery{}, err
				}
			}
		}
		var msgs []*nats.Msg
		var d delivery.Delivery
		if !evok {
			// Expired: drop the queue entry; the delivery expired with it.
			r.Outcome = delivery.Expired
			var op delivery.QueueOp
			d, op = delivery.Next(delivery.Delivery{Target: target}, delivery.AttemptedFor(r, entry, current), p)
			if m := s.queueMsg(target, id, op, q, qok); m != nil {
				msgs = append(msgs, m)
			}
		} else {
			d, _ = find(ds, target)
			var op delivery.QueueOp
			d, op = delivery.Next(d, delivery.AttemptedFor(r, entry, current), p)
			am, err := s.deliveriesMsg(id, ds, d, aseq, s.retentionLeft(ev))
			if err != nil {
				return delivery.Delivery{}, err
			}
			msgs = append(msgs, am)
			m := s.queueMsg(target, id, op, q, qok)
			if m == nil && try == 0 && guess {
				continue // the guessed queue entry would go unchecked: read it
			}
			if m != nil {
				msgs = append(msgs, m)
			}
		}
		if len(msgs) > 0 {
			seq, err := s.commitRecord(ctx, msgs)
			if err != nil {
				if busy.wait(ctx, err) {
					try-- // the server's batch limit, not a conflict: no try used up
					continue
				}
				if isConflict(err) || isRetryable(err) {
					continue
				}
				return delivery.Delivery{}, fmt.Errorf("%w: record attempt %s/%s: %w", storage.ErrUnavailable, id, target, err)
			}
			s.queueWritten(target, id, msgs[len(msgs)-1], seq)
		}
		if !current && evok {
			return d, storage.ErrSuperseded
		}
		return d, nil
	}
	return delivery.Delivery{}, fmt.Errorf("%w: record attempt %s/%s: too many conflicts", storage.ErrUnavailable, id, target)
}

// Requeue replays the delivery of event id to target: pending, due now,
// marked as a replay, its queue entry moved.
func (s *Store) Requeue(ctx context.Context, id, target string, now time.Time) error {
	if err := s.check(); err != nil {
		return err
	}
	s.cache.takeFresh(id) // it writes the delivery record
	var busy busyWait
	for try := 0; try < maxCASTries; try++ {
		if try > 0 {
			if err := sleep(ctx, backoff(try)); err != nil {
				return fmt.Errorf("%w: %w", storage.ErrUnavailable, err)
			}
		}
		ev, ok, err := s.event(ctx, id)
		if err != nil {
			return err
		}
		if !ok {
			return fmt.Errorf("event %s: %w", id, storage.ErrNotFound)
		}
		ds, aseq, err := s.deliveries(ctx, ev)
		if err != nil {
			return err
		}
		q, qok, err := s.last(ctx, s.queueSubj(target, id))
		if err != nil {
			return err
		}
		d, _ := find(ds, target)
		d, op := delivery.Next(d, delivery.ReplayedAt(now), delivery.Policy{})
		am, err := s.deliveriesMsg(id, ds, d, aseq, s.retentionLeft(ev))
		if err != nil {
			return err
		}
		msgs := []*nats.Msg{am}
		if m := s.queueMsg(target, id, op, q, qok); m != nil {
			msgs = append(msgs, m)
		}
		seq, err := s.commitRecord(ctx, msgs)
		if err != nil {
			if busy.wait(ctx, err) {
				try-- // the server's batch limit, not a conflict: no try used up
				continue
			}
			if isConflict(err) || isRetryable(err) {
				continue
			}
			return fmt.Errorf("%w: requeue %s/%s: %w", storage.ErrUnavailable, id, target, err)
		}
		s.queueWritten(target, id, msgs[len(msgs)-1], seq)
		return nil
	}
	return fmt.Errorf("%w: requeue %s/%s: too many conflicts", storage.ErrUnavailable, id, target)
}
