package jsstore

import (
	"context"
	"fmt"
	"time"

	"github.com/hookrelay/hookrelay/relay/storage"
	"github.com/nats-io/nats.go"
)

// Delivery writes (RecordAttempt, Requeue) are group-committed like
// ingest: every write is a compare-and-set batch of one to three messages,
// and recordCommitters goroutines each put the writes waiting at that
// moment into one atomic batch, one RAFT proposal instead of one per
// write. A batch refused for a compare-and-set is split in halves until
// the refused write is alone; it then gets the refusal and tries again
// itself, as it would have alone. Two writes of one subject (two targets
// of one event both rewrite its delivery record) never share a batch.

// recordCommitters is how many delivery-write batches a Store has in
// flight at most.
const recordCommitters = 2

type recordReq struct {
	msgs []*nats.Msg
	done chan recordResp
}

type recordResp struct {
	seq uint64 // of the request's last message
	err error
}

// commitRecord commits msgs (one compare-and-set write) as part of the next
// group and returns the sequence of its last message.
func (s *Store) commitRecord(ctx context.Context, msgs []*nats.Msg) (uint64, error) {
	r := &recordReq{msgs: msgs, done: make(chan recordResp, 1)}
	select {
	case s.recordCh <- r:
	case <-s.stop:
		return 0, fmt.Errorf("%w: store closed", storage.ErrUnavailable)
	case <-ctx.Done():
		return 0, ctx.Err()
	}
	resp := <-r.done // bounded by the commit's own timeout
	return resp.seq, resp.err
}

func (s *Store) recordLoop() {
	defer s.wg.Done()
	var later []*recordReq // a subject already in the group: in a later one
	for {
		var group []*recordReq
		subjects := map[string]bool{}
		add := func(r *recordReq) bool {
			for _, m := range r.msgs {
				if subjects[m.Subject] {
					return false
				}
			}
			for _, m := range r.msgs {
				subjects[m.Subject] = true
			}
			group = append(group, r)
			return true
		}
		pending := later
		later = nil
		for _, r := range pending {
			if !add(r) {
				later = append(later, r)
			}
		}
		if len(group) == 0 {
			select {
			case r := <-s.recordCh:
				add(r)
			case <-s.stop:
				s.drainRecords(later)
				return
			}
		}
		msgs := 0
		for _, r := range group {
			msgs += len(r.msgs)
		}
	gather:
		for msgs < maxGroupMsgs {
			select {
			case r := <-s.recordCh:
				if !add(r) {
					later = append(later, r)
					continue
				}
				msgs += len(r.msgs)
			default:
				break gather
			}
		}
		s.commitRecords(group)
	}
}

func (s *Store) drainRecords(later []*recordReq) {
	closed := recordResp{err: fmt.Errorf("%w: store closed", storage.ErrUnavailable)}
	for _, r := range later {
		r.done <- closed
	}
	for {
		select {
		case r := <-s.recordCh:
			r.done <- closed
		default:
			return
		}
	}
}

// commitRecords commits group as one atomic batch and answers each write:
// the sequence of its last message, or the batch's error (a refused
// compare-and-set only to the write it belongs to, found by splitting).
func (s *Store) commitRecords(group []*recordReq) {
	var msgs []*nats.Msg
	for _, r := range group {
		msgs = append(msgs, r.msgs...)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	ack, err := s.commit(ctx, msgs, nil)
	cancel()
	switch {
	case err == nil:
		// A batch's messages get consecutive sequences, in batch order.
		seq := ack.Seq
		for i := len(group) - 1; i >= 0; i-- {
			group[i].done <- recordResp{seq: seq}
			seq -= uint64(len(group[i].msgs))
		}
	case isConflict(err) && len(group) > 1:
		half := len(group) / 2
		s.commitRecords(group[:half])
		s.commitRecords(group[half:])
	default:
		for _, r := range group {
			r.done <- recordResp{err: err}
		}
	}
}
