package jsstore

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hookrelay/hookrelay/relay/storage"
	"github.com/nats-io/nats.go/jetstream"
)

// Lease takes the cluster-wide lease of the delivery of event id to
// target for ttl: at most one holder per (target, id), and at most
// maxInFlight holders per target (maxInFlight <= 0: no bound). It returns
// an error wrapping ErrLeased when the delivery is held or no slot is
// free. ttl must exceed the attempt's timeout: there is no renewal, and a
// lease past its ttl may be taken by another node (expiry runs on the
// stream leader's clock, to about a second).
//
// Both are messages created only if their subject is empty (expected last
// subject sequence 0) with a Nats-TTL, so a dead holder's lease and slot
// free themselves. The delivery lease lives ttl; release deletes it, unless
// RecordAttempt finished the delivery meanwhile (queue entry removed):
// then nobody needs it again and it expires by itself (a replay of it
// within ttl waits for that). A slot lives ttl + slotSpare and is kept
// by this Store after release, while it has other leases of the target in
// flight (see slotPool), for its next lease of the target: a busy node pays for a slot about once per slotHold, not
// once per delivery. Cost per lease: one publish (the delivery lease),
// plus, when no kept slot fits, one publish per slot tried and one stream
// info request listing the taken slots if the first one tried is taken.
// With every slot taken, Lease waits up to slotWait for one (a slot this
// node gives back, or one found free by asking again every slotFullFor)
// before it refuses.
func (s *Store) Lease(ctx context.Context, target, id string, ttl time.Duration, maxInFlight int) (release func(), err error) {
	if err := s.check(); err != nil {
		return nil, err
	}
	if !validID(id) {
		return nil, fmt.Errorf("lease %s/%s: bad event id", target, id)
	}
	var sl *slot
	if maxInFlight > 0 {
		if sl, err = s.slots.take(ctx, s, target, ttl, maxInFlight); err != nil {
			return nil, err
		}
	}
	lseq, err := s.create(ctx, s.leaseSubj(target, id), ttl)
	if err != nil {
		if sl != nil {
			s.slots.put(s, sl)
		}
		if isConflict(err) {
			return nil, fmt.Errorf("delivery %s/%s: %w", id, target, ErrLeased)
		}
		return nil, err
	}
	h := s.held.add(target, id, lseq)
	var once sync.Once
	return func() {
		once.Do(func() {
			if sl != nil {
				s.slots.put(s, sl)
			}
			if !s.held.remove(target, id, h) {
				s.remove([]uint64{lseq})
			}
		})
	}, nil
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

// dropLease removes the delivery lease of (target, id), whoever holds it
// (Requeue of a finished delivery: its lease is a leftover). A failure
// only means the replay waits for the lease to expire.
func (s *Store) dropLease(ctx context.Context, target, id string) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := s.stream.Purge(ctx, jetstream.WithPurgeSubject(s.leaseSubj(target, id))); err != nil {
		s.log.Debug("drop a finished delivery's lease", "target", target, "id", id, "err", err)
	}
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

// ---- delivery leases held by this Store ----

// heldLease is a delivery lease this Store holds; finished is set by
// RecordAttempt once the delivery's queue entry is removed.
type heldLease struct {
	seq      uint64
	finished bool
}

// heldLeases are the delivery leases this Store holds, by target NUL id.
type heldLeases struct {
	mu sync.Mutex
	m  map[string]*heldLease
}

func (h *heldLeases) add(target, id string, seq uint64) *heldLease {
	l := &heldLease{seq: seq}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.m == nil {
		h.m = map[string]*heldLease{}
	}
	h.m[target+"\x00"+id] = l
	return l
}

// finish marks the lease of (target, id), if held, as no longer needed.
func (h *heldLeases) finish(target, id string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if l := h.m[target+"\x00"+id]; l != nil {
		l.finished = true
	}
}

// remove forgets l and reports whether its delivery was finished.
func (h *heldLeases) remove(target, id string, l *heldLease) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	k := target + "\x00" + id
	if h.m[k] == l {
		delete(h.m, k)
	}
	return l.finished
}

// ---- in-flight slots ----

// slotSpare is how much longer than the lease ttl a slot lives, so that a
// kept slot can serve later leases; slotHold is how long this Store keeps
// one slot at most before giving it back to the cluster (other nodes get
// their turn); slotIdle is how long a kept slot waits unused before it is
// given back.
const (
	slotSpare = 3 * time.Second
	slotHold  = 2 * time.Second
	slotIdle  = 200 * time.Millisecond
	// slotFullFor: after finding every slot of a target taken, a Store
	// does not ask the cluster again for this long (its leases wait for
	// its own slots meanwhile); slotWait is how long a lease waits for a
	// slot before it is refused.
	slotFullFor = 50 * time.Millisecond
	slotWait    = time.Second
)

// slot is one in-flight slot this Store holds.
type slot struct {
	target  string
	n       int
	seq     uint64
	taken   time.Time // before its publish: no later than the server's stamp
	expires time.Time // taken + its Nats-TTL
	idle    *time.Timer
}

// slotPool keeps the slots released by this Store's leases for a moment
// while the node is busy with their target, so that its next lease of the
// target takes one without a round trip. A kept slot still counts against the target's max_in_flight: the
// cluster-wide bound holds, it only stays with this node a little longer.
type slotPool struct {
	mu      sync.Mutex
	free    map[string][]*slot   // by target
	busy    map[string]int       // slots of each target in use by leases
	full    map[string]time.Time // target -> until when not to ask the cluster again
	wake    chan struct{}        // closed when a slot is kept (waiting leases look)
	waiting map[string]int       // leases waiting in take, by target
	closed  bool
}

func (p *slotPool) inUse(target string, d int) {
	if p.busy == nil {
		p.busy = map[string]int{}
	}
	if p.busy[target] += d; p.busy[target] <= 0 {
		delete(p.busy, target)
	}
}

// take returns a kept slot of target good for ttl more, or takes a free
// one. When every slot is taken it waits, up to slotWait, for one of this
// Store's own slots to come back (see put) or, once per slotFullFor, asks
// the cluster again: a worker waiting here costs nothing, where a refused
// lease sends its delivery back to the engine for a while.
func (p *slotPool) take(ctx context.Context, s *Store, target string, ttl time.Duration, maxInFlight int) (*slot, error) {
	deadline := time.Now().Add(slotWait)
	for {
		now := time.Now()
		p.mu.Lock()
		if sl := p.kept(target, ttl, maxInFlight, now); sl != nil {
			p.inUse(target, 1)
			p.mu.Unlock()
			return sl, nil
		}
		until, full := p.full[target]
		full = full && now.Before(until)
		if p.wake == nil {
			p.wake = make(chan struct{})
		}
		if p.waiting == nil {
			p.waiting = map[string]int{}
		}
		wake := p.wake
		p.mu.Unlock()
		if !full {
			sl, err := p.acquire(ctx, s, target, ttl, maxInFlight)
			if err == nil || !errors.Is(err, ErrLeased) {
				return sl, err
			}
			until = time.Now().Add(slotFullFor)
		}
		if !now.Before(deadline) {
			return nil, fmt.Errorf("target %s: all %d in-flight slots taken: %w", target, maxInFlight, ErrLeased)
		}
		p.mu.Lock()
		p.waiting[target]++
		p.mu.Unlock()
		t := time.NewTimer(min(time.Until(until), time.Until(deadline)))
		select {
		case <-ctx.Done():
		case <-wake:
		case <-t.C:
		}
		t.Stop()
		p.mu.Lock()
		if p.waiting[target]--; p.waiting[target] <= 0 {
			delete(p.waiting, target)
		}
		p.mu.Unlock()
		if ctx.Err() != nil {
			return nil, fmt.Errorf("%w: lease slot of %s: %w", storage.ErrUnavailable, target, ctx.Err())
		}
	}
}

// kept removes and returns a kept slot of target good for ttl more, if
// any (the lock held).
func (p *slotPool) kept(target string, ttl time.Duration, maxInFlight int, now time.Time) *slot {
	free := p.free[target]
	for i := len(free) - 1; i >= 0; i-- {
		sl := free[i]
		if sl.n < maxInFlight && sl.expires.Sub(now) >= ttl && sl.idle.Stop() {
			p.free[target] = append(free[:i], free[i+1:]...)
			return sl
		}
	}
	return nil
}

// acquire takes a free slot of target from the cluster: one publish on a
// random slot, and if that is taken one stream info request listing the
// taken ones and a publish per slot left. Finding none free, it marks
// the target full for slotFullFor.
func (p *slotPool) acquire(ctx context.Context, s *Store, target string, ttl time.Duration, maxInFlight int) (*slot, error) {
	try := func(n int) (*slot, error) {
		taken := time.Now()
		life := ttl + slotSpare
		seq, err := s.create(ctx, s.slotSubj(target, n), life)
		if err != nil {
			return nil, err
		}
		sec, _ := strconv.ParseInt(ttlSeconds(life), 10, 64)
		p.mu.Lock()
		p.inUse(target, 1)
		p.mu.Unlock()
		return &slot{target: target, n: n, seq: seq, taken: taken, expires: taken.Add(time.Duration(sec) * time.Second)}, nil
	}
	first := rand.N(maxInFlight)
	sl, err := try(first)
	if err == nil || !isConflict(err) {
		return sl, err
	}
	// Taken: list the taken slots (one request) and try the others.
	info, err := s.stream.Info(ctx, jetstream.WithSubjectFilter(s.slotFilter(target)))
	if err != nil {
		return nil, fmt.Errorf("%w: slots of %s: %w", storage.ErrUnavailable, target, err)
	}
	busy := map[int]bool{first: true}
	for subj := range info.State.Subjects {
		if n, err := strconv.Atoi(subj[strings.LastIndexByte(subj, '.')+1:]); err == nil {
			busy[n] = true
		}
	}
	start := rand.N(maxInFlight)
	for k := range maxInFlight {
		n := (start + k) % maxInFlight
		if busy[n] {
			continue
		}
		sl, err := try(n)
		if err == nil || !isConflict(err) {
			return sl, err
		}
	}
	p.mu.Lock()
	if p.full == nil {
		p.full = map[string]time.Time{}
	}
	p.full[target] = time.Now().Add(slotFullFor)
	p.mu.Unlock()
	return nil, fmt.Errorf("target %s: all %d in-flight slots taken: %w", target, maxInFlight, ErrLeased)
}

// put keeps sl for the next lease of its target while other leases of the
// target are in flight or waiting here (the node is busy with it: more are
// coming), and gives it back when the node is not, when it was held for slotHold,
// or when the Store is closing.
func (p *slotPool) put(s *Store, sl *slot) {
	p.mu.Lock()
	p.inUse(sl.target, -1)
	if p.closed || p.busy[sl.target]+p.waiting[sl.target] == 0 || time.Since(sl.taken) >= slotHold {
		p.mu.Unlock()
		s.remove([]uint64{sl.seq})
		return
	}
	if p.free == nil {
		p.free = map[string][]*slot{}
	}
	p.free[sl.target] = append(p.free[sl.target], sl)
	sl.idle = time.AfterFunc(slotIdle, func() { p.expire(s, sl) })
	if p.wake != nil {
		close(p.wake) // a lease waiting for a slot may take this one
		p.wake = nil
	}
	p.mu.Unlock()
}

// expire gives back sl after it stayed unused for slotIdle.
func (p *slotPool) expire(s *Store, sl *slot) {
	p.mu.Lock()
	free := p.free[sl.target]
	i := -1
	for j, f := range free {
		if f == sl {
			i = j
		}
	}
	if i < 0 {
		p.mu.Unlock()
		return // taken meanwhile
	}
	p.free[sl.target] = append(free[:i], free[i+1:]...)
	p.mu.Unlock()
	s.remove([]uint64{sl.seq})
}

// close gives back every kept slot; later puts give theirs back at once.
func (p *slotPool) close(s *Store) {
	p.mu.Lock()
	p.closed = true
	var seqs []uint64
	for _, free := range p.free {
		for _, sl := range free {
			// Whether or not its idle timer has fired: with p.free gone,
			// the timer's own give-back finds nothing to do. Deleting by
			// sequence twice is harmless.
			sl.idle.Stop()
			seqs = append(seqs, sl.seq)
		}
	}
	p.free = nil
	p.mu.Unlock()
	s.remove(seqs)
}
