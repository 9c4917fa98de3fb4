package jsstore

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hookrelay/hookrelay/relay/storage"
	"github.com/nats-io/nats.go/jetstream"
)

// # Delivery ownership
//
// Each target's deliveries are split into numShards shards by a hash of
// the event id (shardOf). A Store attempts a delivery only while it owns
// the delivery's shard of that target: the message <p>.o.<target>.<k>,
// created only if its subject is empty (expected last subject sequence 0)
// and kept by compare-and-set refreshes, with a Nats-TTL, so the shards of
// a dead node free themselves. Owning a shard is what a per-delivery lease
// used to be, paid for once per shard and refresh instead of once per
// delivery: attempts cost no lease writes at all.
//
// The cluster-wide max_in_flight bound m is split over the shards: shard
// k of a target carries capacity(k, m) = ⌊(k+1)m/16⌋ − ⌊km/16⌋ (the
// capacities add up to m), and a Store runs at most the capacity of the
// shards it owns at once. Shards are owned by one Store each, so the
// Stores' attempts together never exceed m.
//
// Timing: a Store counts a shard only while its ownership lasts at least
// an attempt's ttl more (reckoned from before the publish that created or
// refreshed it, so no later than the server's own expiry). An attempt
// started under it therefore ends before any other Store can own the
// shard, whether or not the refreshes keep succeeding.
//
// Balance: every Store that delivers publishes its presence
// (<p>.w.<id>, Nats-TTL presenceTTL) each tick. With n of them present
// (or m, when m < 16 and fewer: only shards with capacity make a holder)
// a Store takes free shards up to its share ⌈16/n⌉ per target, those with
// capacity first, and of the shards with capacity no more than its share
// of those; it takes any shard left free for two ticks in a row (a dead
// owner's, or one nobody else wants: adopted, it is not given back as
// excess until more Stores are present); it lets go of shards beyond its
// shares: it stops starting attempts under them, then deletes them once
// their attempts have ended. A Store that owns none of a target's shards
// with capacity keeps none of the others either, so no delivery waits on
// a Store that may not attempt it, and a target not scanned or leased for
// targetIdle (removed by a reload) is given up entirely.
//
// Ingest gives each new event an id whose shard this Store owns for the
// event's targets (trying up to numShards ids), so the node that accepted
// an event is the one that delivers it, from memory. The owners of the
// others (an event routed to several targets, shards that changed hands)
// find them when they scan their queues: DueDeliveries returns only the
// deliveries of owned shards, and Lease refuses the others with
// storage.ErrNotHere, so the engine of the node that accepted them
// forgets them.
const (
	numShards    = 16
	shardTick    = time.Second
	presenceTTL  = 10 * time.Second
	minLeaseTTL  = 15 * time.Second // a shard lasts at least this + shardSpare
	shardSpare   = 5 * time.Second
	budgetWait   = 2 * time.Second // how long Lease waits for in-flight room
	shardRefresh = 2 * shardTick   // refresh a shard once it has lost this much
	targetIdle   = time.Minute     // a target nobody here scanned or leased for this long is given up
	// leaseSlack: a shard counts for an attempt only while its ownership
	// outlasts the attempt's ttl by this much (clock and tick jitter).
	leaseSlack = 2 * time.Second
)

// ErrLeased is wrapped by Lease when the delivery is already being
// attempted here or the target's in-flight share is full: try again later.
var ErrLeased = errors.New("delivery leased")

// shardOf is the shard of event id's deliveries: FNV-1a of the id,
// inline (it runs per queue entry read and per id Ingest tries).
func shardOf(id string) int {
	h := uint32(2166136261)
	for i := 0; i < len(id); i++ {
		h = (h ^ uint32(id[i])) * 16777619
	}
	return int(h % numShards)
}

// capShards is how many of a target's shards carry capacity.
func capShards(m int) int {
	if m <= 0 || m >= numShards {
		return numShards
	}
	return m
}

// capacity is how many attempts shard k of a target with max_in_flight m
// allows at once (m <= 0: no bound).
func capacity(k, m int) int {
	if m <= 0 {
		return 1 << 20
	}
	return (k+1)*m/numShards - k*m/numShards
}

type ownedShard struct {
	seq      uint64
	expires  time.Time // taken or refreshed + ttl, reckoned before the publish
	draining bool      // beyond this Store's share: no new attempts, deleted once idle
	inflight int
	// adopted is the number of Stores present when this Store took the
	// shard beyond its share (left free for two ticks; 0: within its
	// share). It is not given back as excess until more Stores are
	// present: a shard nobody else took stays put instead of changing
	// hands every other tick.
	adopted int
}

type targetShards struct {
	token    string
	owned    map[int]*ownedShard
	max      int // max_in_flight as last given to Lease (0: unknown or unbounded)
	inflight int
	active   map[string]bool // event ids being attempted here
	freeSeen map[int]bool    // shards free at the last tick
	used     time.Time       // last queue scan or lease (a target removed by a reload stops being used)
	maxTTL   time.Duration   // the longest attempt ttl given to Lease
}

// ttl is how long a shard of t lasts when taken or refreshed now.
func (t *targetShards) ttl(minTTL time.Duration) time.Duration {
	return max(t.maxTTL, minTTL) + shardSpare
}

// budget is the capacity of the shards t may start an attempt of ttl
// under at now.
func (t *targetShards) budget(now time.Time, ttl time.Duration) int {
	n := 0
	for k, sh := range t.owned {
		if !sh.draining && !sh.expires.Before(now.Add(ttl+leaseSlack)) {
			n += capacity(k, t.max)
		}
	}
	return n
}

// shards is the ownership this Store holds, by target.
type shards struct {
	mu      sync.Mutex
	targets map[string]*targetShards
	room    chan struct{} // closed when an attempt ends or shards are won (waiting leases look)
	minTTL  time.Duration // a shard lasts at least this + shardSpare (minLeaseTTL; shorter in tests)
	started bool
	closing bool       // Close has begun: no ticker starts
	tickMu  sync.Mutex // one tick at a time
	// owned is, per target, the bit set of shards new events may be given
	// (owned, not draining), for Ingest to read without the lock.
	owned atomic.Pointer[map[string]uint32]
}

func (p *shards) target(name string) *targetShards {
	t := p.targets[name]
	if t == nil {
		if p.targets == nil {
			p.targets = map[string]*targetShards{}
		}
		t = &targetShards{token: token(name), owned: map[int]*ownedShard{}, active: map[string]bool{}}
		p.targets[name] = t
	}
	return t
}

// wake lets the leases waiting for room look again (the lock held).
func (p *shards) wake() {
	if p.room != nil {
		close(p.room)
		p.room = nil
	}
}

// publishOwned updates the bit sets Ingest reads (the lock held).
func (p *shards) publishOwned() {
	m := make(map[string]uint32, len(p.targets))
	for name, t := range p.targets {
		var bits uint32
		for k, sh := range t.owned {
			if !sh.draining {
				bits |= 1 << k
			}
		}
		m[name] = bits
	}
	p.owned.Store(&m)
}

func (p *shards) minLeaseTTL() time.Duration {
	if p.minTTL > 0 {
		return p.minTTL
	}
	return minLeaseTTL
}

// Lease starts an attempt of the delivery of event id to target that
// must end within ttl: ttl must exceed the attempt's timeout. It returns
// an error wrapping storage.ErrNotHere when another Store owns the
// delivery's shard (that Store makes the delivery), and one wrapping
// ErrLeased when this Store is attempting the delivery already or the
// target's in-flight share stays full for budgetWait. maxInFlight is the
// target's cluster-wide bound (<= 0: none). Leases cost no writes.
func (s *Store) Lease(ctx context.Context, target, id string, ttl time.Duration, maxInFlight int) (release func(), err error) {
	if err := s.check(); err != nil {
		return nil, err
	}
	if !validID(id) {
		return nil, fmt.Errorf("lease %s/%s: bad event id", target, id)
	}
	p := &s.shards
	p.mu.Lock()
	t0 := p.target(target) // the bound and ttl known before a first tick takes shards
	t0.max, t0.maxTTL = max(maxInFlight, 0), max(t0.maxTTL, ttl)
	p.mu.Unlock()
	if err := s.deliverTo(ctx, target); err != nil {
		return nil, err
	}
	k := shardOf(id)
	deadline := time.Now().Add(budgetWait)
	p.mu.Lock()
	for {
		t := p.target(target)
		t.max = max(maxInFlight, 0)
		t.maxTTL = max(t.maxTTL, ttl)
		now := time.Now()
		sh := t.owned[k]
		switch {
		case sh == nil || sh.draining:
			p.mu.Unlock()
			return nil, fmt.Errorf("delivery %s/%s: shard %d: %w", id, target, k, storage.ErrNotHere)
		case sh.expires.Before(now.Add(ttl + leaseSlack)):
			// Owned, but not for long enough (ttl grew, or refreshes fail).
			p.mu.Unlock()
			return nil, fmt.Errorf("delivery %s/%s: shard %d expires too soon: %w", id, target, k, ErrLeased)
		case t.active[id]:
			p.mu.Unlock()
			return nil, fmt.Errorf("delivery %s/%s: being attempted: %w", id, target, ErrLeased)
		case t.inflight < t.budget(now, ttl):
			t.inflight++
			sh.inflight++
			t.active[id] = true
			p.mu.Unlock()
			var once sync.Once
			return func() { once.Do(func() { s.endAttempt(t, sh, id) }) }, nil
		}
		if !now.Before(deadline) {
			p.mu.Unlock()
			return nil, fmt.Errorf("target %s: in-flight share full: %w", target, ErrLeased)
		}
		if p.room == nil {
			p.room = make(chan struct{})
		}
		room := p.room
		p.mu.Unlock()
		timer := time.NewTimer(time.Until(deadline))
		select {
		case <-ctx.Done():
		case <-room:
		case <-timer.C:
		}
		timer.Stop()
		if ctx.Err() != nil {
			return nil, fmt.Errorf("%w: lease %s/%s: %w", storage.ErrUnavailable, id, target, ctx.Err())
		}
		p.mu.Lock()
	}
}

// endAttempt ends an attempt under sh (still counted there, whether or
// not t still owns it).
func (s *Store) endAttempt(t *targetShards, sh *ownedShard, id string) {
	p := &s.shards
	p.mu.Lock()
	defer p.mu.Unlock()
	t.inflight--
	delete(t.active, id)
	sh.inflight--
	p.wake()
}

// deliverTo makes this Store take part in delivering target: the first
// call runs a tick at once (so a lone Store owns every shard when it
// returns) and starts the ticker.
func (s *Store) deliverTo(ctx context.Context, target string) error {
	p := &s.shards
	p.mu.Lock()
	if p.closing {
		p.mu.Unlock()
		return fmt.Errorf("%w: store closed", storage.ErrUnavailable)
	}
	t := p.target(target)
	known := !t.used.IsZero()
	t.used = time.Now()
	if !p.started {
		// Whatever the first tick does: a failed one is tried again.
		p.started = true
		s.wg.Add(1) // before Close waits (it sets closing under p.mu first)
		go s.shardLoop()
	}
	p.mu.Unlock()
	if known {
		return nil
	}
	return s.tick(ctx)
}

func (s *Store) shardLoop() {
	defer s.wg.Done()
	t := time.NewTicker(shardTick)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		if err := s.tick(ctx); err != nil {
			s.log.Warn("delivery shards", "err", err)
		}
		cancel()
	}
}

// ownSubj is the subject of shard k of the target with subject token tok.
func (s *Store) ownSubj(tok string, k int) string { return s.p + "o." + tok + "." + strconv.Itoa(k) }

// tick announces this Store, refreshes the shards it keeps, lets go of
// those beyond its share and takes free ones (see the comment above).
func (s *Store) tick(ctx context.Context) error {
	p := &s.shards
	p.tickMu.Lock()
	defer p.tickMu.Unlock()
	if err := s.check(); err != nil {
		return err // closed: releaseShards gave everything back
	}
	if _, err := s.js.PublishMsg(ctx, newMsg(s.presence, nil, presenceTTL)); err != nil {
		return fmt.Errorf("%w: presence: %w", storage.ErrUnavailable, err)
	}
	present, err := s.subjects(ctx, s.p+"w.*")
	if err != nil {
		return err
	}
	taken, err := s.subjects(ctx, s.p+"o.>")
	if err != nil {
		return err
	}
	nPresent := max(len(present), 1)

	type op struct {
		target, token string
		k             int
		seq           uint64 // 0: take; else refresh
		ttl           time.Duration
		adopted       int
	}
	var ops []op
	var drop []uint64
	p.mu.Lock()
	now := time.Now()
	for name, t := range p.targets {
		ttl := t.ttl(p.minLeaseTTL())
		// The share: the shards over the Stores present, or over the
		// shards with capacity when fewer (a Store owning none of those
		// keeps no shard of the target).
		holders := nPresent
		if t.max > 0 && t.max < numShards {
			holders = min(holders, t.max)
		}
		share := (numShards + holders - 1) / holders
		idle := now.Sub(t.used) > targetIdle
		if idle && len(t.owned) == 0 {
			delete(p.targets, name)
			continue
		}
		keep := 0
		withCap := false
		for k, sh := range t.owned {
			if sh.expires.Before(now) {
				delete(t.owned, k) // expired: another Store may own it now
				continue
			}
			if !sh.draining {
				keep++
				withCap = withCap || capacity(k, t.max) > 0
			}
		}
		// Let go of shards beyond the share (not those adopted while as
		// many Stores were present), or of every shard when none carries
		// capacity or the target is no longer used: those with the least
		// capacity first. Shards with capacity beyond their own share go
		// first of all, so that each holder gets some.
		releasable := func(sh *ownedShard) bool { return !sh.draining && (sh.adopted == 0 || sh.adopted < nPresent) }
		excess := keep - share
		if !withCap || idle {
			excess = keep
			releasable = func(sh *ownedShard) bool { return !sh.draining }
		}
		// The releasable shards, least capacity first.
		candidates := func() []int {
			ks := sortedShards(t.owned, releasable)
			slices.SortStableFunc(ks, func(a, b int) int { return capacity(a, t.max) - capacity(b, t.max) })
			return ks
		}
		ks := candidates()
		if withCap && !idle {
			var withC []int
			for _, k := range ks {
				if capacity(k, t.max) > 0 {
					withC = append(withC, k)
				}
			}
			if extra := len(withC) - (capShards(t.max)+holders-1)/holders; extra > 0 {
				for _, k := range withC[len(withC)-extra:] {
					t.owned[k].draining = true
				}
				keep -= extra
				excess -= extra
				ks = candidates()
			}
		}
		if excess > 0 {
			excess = min(excess, len(ks))
			for _, k := range ks[:excess] {
				t.owned[k].draining = true
			}
			keep -= excess
		}
		for _, k := range sortedShards(t.owned, func(*ownedShard) bool { return true }) {
			sh := t.owned[k]
			switch {
			case sh.draining && sh.inflight == 0 && t.inflight <= t.budget(now, t.maxTTL):
				delete(t.owned, k)
				drop = append(drop, sh.seq)
			case !sh.draining && sh.expires.Sub(now) < ttl-shardRefresh:
				ops = append(ops, op{name, t.token, k, sh.seq, ttl, 0})
			}
		}
		// Take free shards: up to the share, and any left free since the
		// last tick (an owner gone). Shards with capacity first, and
		// shards without only alongside one with.
		free := []int{}
		for k := range numShards {
			if _, mine := t.owned[k]; !mine && !taken[s.ownSubj(t.token, k)] {
				free = append(free, k)
			}
		}
		rand.Shuffle(len(free), func(i, j int) { free[i], free[j] = free[j], free[i] })
		slices.SortStableFunc(free, func(a, b int) int { return capacity(b, t.max) - capacity(a, t.max) })
		seen := map[int]bool{}
		for _, k := range free {
			seen[k] = true
			if capacity(k, t.max) == 0 && !withCap {
				continue
			}
			if !idle && (keep < share || t.freeSeen[k]) {
				adopted := 0
				if keep >= share {
					adopted = nPresent
				}
				ops = append(ops, op{name, t.token, k, 0, ttl, adopted})
				keep++
				withCap = withCap || capacity(k, t.max) > 0
			}
		}
		t.freeSeen = seen
	}
	p.mu.Unlock()
	s.remove(drop)

	// Publish the takes and refreshes together, then apply the answers.
	before := time.Now()
	futs := make([]jetstream.PubAckFuture, len(ops))
	errs := make([]error, len(ops))
	for i, o := range ops {
		futs[i], errs[i] = s.js.PublishMsgAsync(expect(newMsg(s.ownSubj(o.token, o.k), nil, o.ttl), o.seq))
	}
	acks := make([]uint64, len(ops))
	for i := range ops {
		if errs[i] != nil {
			continue
		}
		select {
		case a := <-futs[i].Ok():
			acks[i] = a.Sequence
		case errs[i] = <-futs[i].Err():
		case <-ctx.Done():
			errs[i] = ctx.Err()
		}
	}
	var firstErr error
	p.mu.Lock()
	defer p.mu.Unlock()
	won := false
	for i, o := range ops {
		t := p.target(o.target)
		switch {
		case errs[i] == nil && o.seq == 0:
			t.owned[o.k] = &ownedShard{seq: acks[i], expires: before.Add(o.ttl), adopted: o.adopted}
			won = true
		case errs[i] == nil:
			if sh := t.owned[o.k]; sh != nil && sh.seq == o.seq {
				sh.seq, sh.expires = acks[i], before.Add(o.ttl)
			}
		case isConflict(errs[i]):
			if o.seq != 0 {
				delete(t.owned, o.k) // lost it (it expired): another Store may own it
			}
		case firstErr == nil:
			firstErr = fmt.Errorf("%w: shard %d of %s: %w", storage.ErrUnavailable, o.k, o.target, errs[i])
		}
	}
	p.publishOwned()
	if won {
		p.wake()
	}
	return firstErr
}

// subjects lists the stored subjects matching filter.
func (s *Store) subjects(ctx context.Context, filter string) (map[string]bool, error) {
	info, err := s.stream.Info(ctx, jetstream.WithSubjectFilter(filter))
	if err != nil {
		return nil, fmt.Errorf("%w: list %s: %w", storage.ErrUnavailable, filter, err)
	}
	out := make(map[string]bool, len(info.State.Subjects))
	for subj := range info.State.Subjects {
		out[subj] = true
	}
	return out, nil
}

// sortedShards lists the shards of owned that keep reports, in order.
func sortedShards(owned map[int]*ownedShard, keep func(*ownedShard) bool) []int {
	ks := make([]int, 0, len(owned))
	for k, sh := range owned {
		if keep(sh) {
			ks = append(ks, k)
		}
	}
	slices.Sort(ks)
	return ks
}

// owns reports whether this Store may start attempts of the deliveries
// of event id to target now (for queue reads).
func (s *Store) owns(target, id string) bool {
	m := s.shards.owned.Load()
	return m != nil && (*m)[target]&(1<<shardOf(id)) != 0
}

// pickID gives ev a new id whose shard this Store owns for as many of its
// targets as it can find in numShards tries.
func (s *Store) pickID(ev *storage.Event) {
	ev.ID = s.ids.New(ev.ReceivedAt)
	m := s.shards.owned.Load()
	if m == nil || len(ev.Targets) == 0 {
		return
	}
	score := func(id string) int {
		n := 0
		for _, t := range ev.Targets {
			if (*m)[t]&(1<<shardOf(id)) != 0 {
				n++
			}
		}
		return n
	}
	best, bestN := ev.ID, score(ev.ID)
	for i := 1; i < numShards && bestN < len(ev.Targets); i++ {
		id := s.ids.New(ev.ReceivedAt)
		if n := score(id); n > bestN {
			best, bestN = id, n
		}
	}
	ev.ID = best
}

// releaseShards deletes the shards and the presence of this Store (Close):
// the other Stores take the shards at their next ticks.
func (s *Store) releaseShards() {
	p := &s.shards
	p.tickMu.Lock() // after any tick in progress; later ones see the Store closed
	defer p.tickMu.Unlock()
	p.mu.Lock()
	var seqs []uint64
	for _, t := range p.targets {
		for k, sh := range t.owned {
			seqs = append(seqs, sh.seq)
			delete(t.owned, k)
		}
	}
	started := p.started
	p.publishOwned()
	p.mu.Unlock()
	s.remove(seqs)
	if started {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = s.stream.Purge(ctx, jetstream.WithPurgeSubject(s.presence))
	}
}

// remove deletes messages by sequence (a shard deleted by sequence is
// left alone if it expired and another Store took it meanwhile: that is
// another sequence).
func (s *Store) remove(seqs []uint64) {
	if len(seqs) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, seq := range seqs {
		_ = s.stream.DeleteMsg(ctx, seq)
	}
}
