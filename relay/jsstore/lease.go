package jsstore

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/hookrelay/hookrelay/relay/storage"
	"github.com/nats-io/nats.go/jetstream"
)

// Lease takes the cluster-wide lease of the delivery of event id to
// target for ttl: at most one holder per (target, id), and at most
// maxInFlight holders per target (maxInFlight <= 0: no bound). A lease is a
// message created only if its subject is empty (expected last subject
// sequence 0) with a Nats-TTL of ttl (rounded up to whole seconds), so a
// dead holder's lease frees itself; release deletes it. It returns an
// error wrapping ErrLeased when the delivery is held or no slot is free.
// ttl must exceed the attempt's timeout: there is no renewal, and a lease
// past its ttl may be taken by another node (expiry runs on the stream
// leader's clock, to about a second). Cost: 2 publishes plus one per slot
// found taken; release is one delete per message.
func (s *Store) Lease(ctx context.Context, target, id string, ttl time.Duration, maxInFlight int) (release func(), err error) {
	if err := s.check(); err != nil {
		return nil, err
	}
	if !validID(id) {
		return nil, fmt.Errorf("lease %s/%s: bad event id", target, id)
	}
	lseq, err := s.create(ctx, s.leaseSubj(target, id), ttl)
	if err != nil {
		if isConflict(err) {
			return nil, fmt.Errorf("delivery %s/%s: %w", id, target, ErrLeased)
		}
		return nil, err
	}
	seqs := []uint64{lseq}
	if maxInFlight > 0 {
		start := rand.N(maxInFlight)
		got := false
		for k := range maxInFlight {
			seq, err := s.create(ctx, s.slotSubj(target, (start+k)%maxInFlight), ttl)
			if err == nil {
				seqs, got = append(seqs, seq), true
				break
			}
			if !isConflict(err) {
				s.remove(seqs)
				return nil, err
			}
		}
		if !got {
			s.remove(seqs)
			return nil, fmt.Errorf("target %s: all %d in-flight slots taken: %w", target, maxInFlight, ErrLeased)
		}
	}
	var once sync.Once
	return func() { once.Do(func() { s.remove(seqs) }) }, nil
}

// create publishes an empty message on subj only if subj holds none.
func (s *Store) create(ctx context.Context, subj string, ttl time.Duration) (uint64, error) {
	m := expect(newMsg(subj, nil, max(ttl, time.Second)), 0)
	ack, err := s.js.PublishMsg(ctx, m)
	if err != nil {
		var ae *jetstream.APIError
		if errors.As(err, &ae) && (ae.ErrorCode == errWrongLastSeq || ae.ErrorCode == errWrongLastSeqConstant) {
			return 0, &apiError{Code: ae.Code, ErrCode: int(ae.ErrorCode), Description: ae.Description}
		}
		return 0, fmt.Errorf("%w: lease %s: %w", storage.ErrUnavailable, subj, err)
	}
	return ack.Sequence, nil
}

// remove deletes lease messages by sequence: a lease that expired and was
// taken by another holder has another sequence and stays.
func (s *Store) remove(seqs []uint64) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, seq := range seqs {
		_ = s.stream.DeleteMsg(ctx, seq)
	}
}
