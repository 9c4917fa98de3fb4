// Package deliver relays stored events to targets: one dispatcher per
// target reads due deliveries from the store's queue and hands them to at
// most max_in_flight workers, which POST the CloudEvent, record the attempt
// and schedule retries. Targets share nothing, so a slow or failing target
// never delays another.
package deliver

import (
	"bytes"
	"container/heap"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hookrelay/hookrelay/relay/delivery"
	"github.com/hookrelay/hookrelay/relay/storage"
	"github.com/hookrelay/hookrelay/verify"
)

// Store is the part of the event store the delivery engine needs.
type Store interface {
	DueDeliveries(ctx context.Context, target string, now time.Time, limit int, skip func(id string) bool) ([]storage.Due, time.Time, error)
	LoadDelivery(ctx context.Context, id, target string) (*storage.Event, []byte, *delivery.Delivery, error)
	// RecordAttempt applies delivery.Next to the attempt's result under p
	// and returns the delivery as recorded (storage.ErrSuperseded: a replay
	// replaced the attempt's queue entry; only the attempt was recorded).
	QueueKey(target string, due time.Time, id string) []byte
	RecordAttempt(ctx context.Context, id, target string, queueKey []byte, r delivery.Result, p delivery.Policy) (delivery.Delivery, error)
	// Paused returns the paused targets (hookrelay targets pause).
	Paused(ctx context.Context) (map[string]time.Time, error)
}

// Leaser is implemented by stores that several nodes share (cluster
// mode): a delivery is attempted only under its lease, which one node at a
// time holds and which frees itself after ttl if its holder dies, and at
// most maxInFlight leases of a target are held cluster-wide. The returned
// release ends the lease early. An error wrapping storage.ErrNotHere means
// another node makes the delivery: the engine forgets it (it is still
// queued in the store, for that node); any other error, that the
// delivery is held or the target full for now: it is looked at again
// after leaseRetry.
type Leaser interface {
	Lease(ctx context.Context, target, id string, ttl time.Duration, maxInFlight int) (release func(), err error)
}

// leaseMargin is added to a target's timeout for the lease of an attempt
// (recording it takes a moment too); leaseRetry is how long a delivery
// whose lease another node holds waits before it is looked at again.
const (
	leaseMargin = 5 * time.Second
	leaseRetry  = 2 * time.Second
)

// Metrics observes delivery attempts. outcome is "delivered", "retry" or
// "dead".
type Metrics interface {
	Delivered(target, outcome string, latency time.Duration)
}

// Target is one configured target.
type Target struct {
	Name           string
	URL            string
	Timeout        time.Duration
	Headers        map[string]string
	SigningKey     []byte // nil: unsigned
	MaxInFlight    int
	MaxAttempts    int
	InitialBackoff time.Duration
	MaxBackoff     time.Duration
}

// Options configure an Engine.
type Options struct {
	Log       *slog.Logger
	Metrics   Metrics // optional
	UserAgent string
	// Rescan is how often each dispatcher rescans its whole queue in the
	// store as a safety net (default 30s).
	Rescan time.Duration
	// Memory bounds the deliveries each dispatcher holds in memory (ready,
	// scheduled and in flight); the rest wait in the store. Default:
	// max(4096, 64 x max_in_flight).
	Memory int
	// Only, when set, restricts delivery to the events it accepts (offline
	// replay delivers its own selection and leaves the rest queued).
	Only func(eventID string) bool
	// PauseRefresh, when positive, is how often the engine reads the
	// paused targets from the store again: in cluster mode, where another
	// node may pause or resume one. Without it the engine reads them at
	// Start and whenever RefreshPaused is called.
	PauseRefresh time.Duration
}

// Engine runs the dispatchers of all targets.
type Engine struct {
	store  Store
	leaser Leaser // store, if several nodes share it; else nil
	opts   Options

	mu          sync.RWMutex // guards dispatchers, ctx; Apply replaces them
	dispatchers map[string]*dispatcher
	ctx         context.Context      // of the running engine; nil before Start
	stopped     bool                 // Stop was called: Apply launches nothing
	paused      map[string]time.Time // paused targets as last read; guarded by mu
	// pauseUnknown: the paused targets could not be read at Start, so
	// every dispatcher is held paused until a read succeeds; guarded by mu.
	pauseUnknown bool
	cancel       context.CancelFunc
	stopRefresh  context.CancelFunc // ends the pause refresher, if one runs
	wg           sync.WaitGroup

	refreshMu sync.Mutex // one RefreshPaused at a time, so an older read never wins
}

// maxRetryAfter caps a target's Retry-After.
const maxRetryAfter = time.Hour

// New returns an engine for targets; call Start to run it.
func New(st Store, targets []Target, opts Options) *Engine {
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	if opts.Rescan <= 0 {
		opts.Rescan = 30 * time.Second
	}
	if opts.UserAgent == "" {
		opts.UserAgent = "hookrelay"
	}
	e := &Engine{store: st, opts: opts, dispatchers: map[string]*dispatcher{}}
	e.leaser, _ = st.(Leaser)
	for _, t := range targets {
		e.dispatchers[t.Name] = newDispatcher(e, t)
	}
	return e
}

// Start runs every dispatcher until Stop. It first reads which targets
// are paused, so a paused target gets no attempt after a restart; if the
// store cannot say, every target waits (fail closed) and the read is tried
// again every second until it succeeds.
func (e *Engine) Start(ctx context.Context) {
	rctx, cancel := context.WithTimeout(ctx, pauseReadTimeout)
	err := e.RefreshPaused(rctx)
	cancel()
	if err != nil {
		e.opts.Log.Warn("cannot read the paused targets: no target gets attempts until they are read", "err", err)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.ctx, e.cancel = context.WithCancel(context.WithoutCancel(ctx))
	if err != nil {
		e.pauseUnknown = true
		for _, d := range e.dispatchers {
			d.paused.Store(true)
		}
	}
	for _, d := range e.dispatchers {
		e.launch(d, nil)
	}
	if e.opts.PauseRefresh > 0 || err != nil {
		var refreshCtx context.Context
		refreshCtx, e.stopRefresh = context.WithCancel(e.ctx)
		e.wg.Add(1)
		go e.refreshPausedLoop(refreshCtx)
	}
}

// pauseReadTimeout bounds one read of the paused targets.
const pauseReadTimeout = 5 * time.Second

// RefreshPaused reads the paused targets from the store and applies them:
// a paused target's dispatcher starts no attempt (those in flight finish),
// its deliveries wait, pending; a resumed one picks up where it stopped.
// Changes are logged. On error nothing changes.
func (e *Engine) RefreshPaused(ctx context.Context) error {
	e.refreshMu.Lock()
	defer e.refreshMu.Unlock()
	p, err := e.store.Paused(ctx)
	if err != nil {
		return fmt.Errorf("read paused targets: %w", err)
	}
	e.mu.Lock()
	var changed []string
	for name, d := range e.dispatchers {
		_, on := p[name]
		if _, was := e.paused[name]; on != was {
			changed = append(changed, name)
		}
		d.setPaused(on)
	}
	e.paused, e.pauseUnknown = p, false
	e.mu.Unlock()
	slices.Sort(changed)
	for _, name := range changed { // logged outside e.mu: ingest hands over under it
		e.logPause(name, p)
	}
	return nil
}

// SetPaused applies a pause (paused since at) or a resume of target that
// was just written to the store, without reading the store again.
func (e *Engine) SetPaused(target string, paused bool, at time.Time) {
	e.refreshMu.Lock() // after any read that began before the write
	defer e.refreshMu.Unlock()
	e.mu.Lock()
	next := maps.Clone(e.paused)
	if next == nil {
		next = map[string]time.Time{}
	}
	_, was := next[target]
	if paused {
		next[target] = at
	} else {
		delete(next, target)
	}
	e.paused = next
	if d, ok := e.dispatchers[target]; ok && !e.pauseUnknown {
		d.setPaused(paused)
	}
	e.mu.Unlock()
	if was != paused {
		e.logPause(target, next)
	}
}

func (e *Engine) logPause(target string, paused map[string]time.Time) {
	if _, on := paused[target]; on {
		e.opts.Log.Info("target paused", "target", target)
	} else {
		e.opts.Log.Info("target resumed", "target", target)
	}
}

// refreshPausedLoop reads the paused targets every PauseRefresh (every
// second, and only until a read succeeds, when the first read failed and
// there is no PauseRefresh).
func (e *Engine) refreshPausedLoop(ctx context.Context) {
	defer e.wg.Done()
	every := e.opts.PauseRefresh
	if every <= 0 {
		every = time.Second
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			rctx, cancel := context.WithTimeout(ctx, pauseReadTimeout)
			err := e.RefreshPaused(rctx)
			cancel()
			switch {
			case err != nil && ctx.Err() == nil:
				e.opts.Log.Warn("refresh paused targets", "err", err)
			case err == nil && e.opts.PauseRefresh <= 0:
				return // known now; on one node nobody else pauses
			}
		}
	}
}

// InFlight counts the engine's attempts in flight to target (0 for a
// target it does not have).
func (e *Engine) InFlight(target string) int {
	e.mu.RLock()
	defer e.mu.RUnlock()
	if d, ok := e.dispatchers[target]; ok {
		return int(d.inflight.Load())
	}
	return 0
}

// TargetStatus is what the engine knows of a target now (Paused also
// while the paused targets could not be read yet: it is held).
type TargetStatus struct {
	Name     string
	Paused   bool
	PausedAt time.Time
	InFlight int // attempts this engine has in flight
}

// Targets reports the engine's targets, sorted by name.
func (e *Engine) Targets() []TargetStatus {
	e.mu.RLock()
	defer e.mu.RUnlock()
	out := make([]TargetStatus, 0, len(e.dispatchers))
	for name, d := range e.dispatchers {
		at, paused := e.paused[name]
		out = append(out, TargetStatus{Name: name, Paused: paused || e.pauseUnknown, PausedAt: at, InFlight: int(d.inflight.Load())})
	}
	slices.SortFunc(out, func(a, b TargetStatus) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// launch runs d once after (if not nil) is closed. e.mu must be held.
func (e *Engine) launch(d *dispatcher, after <-chan struct{}) {
	e.wg.Add(1)
	go func() {
		defer e.wg.Done()
		defer close(d.finished)
		if after != nil {
			select {
			case <-after:
			case <-d.stopping:
				// Replaced again before it ran: whoever waits for this one
				// must still wait for the one it was waiting for.
				<-after
				return
			}
		}
		d.run(e.ctx)
	}()
}

// Notify tells the dispatchers of targets to look in the store: deliveries
// were queued there by someone else (a replay, a restart).
func (e *Engine) Notify(targets ...string) {
	e.mu.RLock()
	defer e.mu.RUnlock()
	for _, t := range targets {
		if d, ok := e.dispatchers[t]; ok {
			d.purge.Store(true)
			d.scanReq.Store(true)
			d.poke()
		}
	}
}

// Enqueue hands freshly committed deliveries (storage.Result.Queued) to
// their targets' dispatchers without a store scan. If a dispatcher's
// memory is full it falls back to scanning the store.
func (e *Engine) Enqueue(dues ...storage.Due) {
	e.mu.RLock()
	defer e.mu.RUnlock()
	for _, due := range dues {
		d, ok := e.dispatchers[due.Target]
		if !ok {
			continue
		}
		select {
		case d.fresh <- due:
		default:
			d.scanReq.Store(true)
		}
		d.poke()
	}
}

// Stop stops dispatching. Attempts in flight get until ctx's deadline to
// finish and be recorded; any still running then are abandoned and stay
// queued (they are retried after a restart: at-least-once).
func (e *Engine) Stop(ctx context.Context) error {
	e.mu.Lock()
	if e.cancel == nil {
		e.mu.Unlock()
		return nil
	}
	e.stopped = true
	if e.stopRefresh != nil {
		e.stopRefresh()
	}
	for _, d := range e.dispatchers {
		d.stop()
	}
	e.mu.Unlock()
	done := make(chan struct{})
	go func() { e.wg.Wait(); close(done) }()
	select {
	case <-done:
		e.cancel()
		return nil
	case <-ctx.Done():
		e.cancel()
		<-done
		return fmt.Errorf("stop deliveries: %w", ctx.Err())
	}
}

type dispatcher struct {
	e        *Engine
	cfg      Target // as configured (Apply compares it)
	t        Target // cfg with MaxInFlight at least 1
	client   *http.Client
	wake     chan struct{}
	fresh    chan storage.Due // committed deliveries handed over by ingest
	scanReq  atomic.Bool      // the store holds deliveries memory does not
	purge    atomic.Bool      // scheduled retries in memory may be stale (a replay)
	work     chan storage.Due
	done     chan completion
	stopping chan struct{}
	stopOnce sync.Once
	finished chan struct{} // closed when run and its workers have returned
	capacity int           // deliveries held in memory (ready, scheduled, in flight)
	policy   delivery.Policy
	paused   atomic.Bool  // the target is paused: no attempt starts
	inflight atomic.Int32 // attempts in flight, for Targets
}

// setPaused pauses or resumes the dispatcher; a resumed one is woken.
func (d *dispatcher) setPaused(on bool) {
	if d.paused.Swap(on) && !on {
		d.poke()
	}
}

// completion is a worker's report on one delivery.
type completion struct {
	id     string
	retry  *storage.Due // the retry's queue entry, if one was scheduled
	rescan bool         // the store decides what is next (outcome not recorded, or a replay's entry): scan it
}

func newDispatcher(e *Engine, t Target) *dispatcher {
	cfg := t
	if t.MaxInFlight <= 0 {
		t.MaxInFlight = 1
	}
	tr := &http.Transport{
		Proxy:                 nil, // internal targets: never through a proxy
		DialContext:           (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:          t.MaxInFlight,
		MaxIdleConnsPerHost:   t.MaxInFlight,
		MaxConnsPerHost:       t.MaxInFlight,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ResponseHeaderTimeout: t.Timeout,
		ForceAttemptHTTP2:     true,
	}
	capacity := max(4096, 64*t.MaxInFlight)
	if e.opts.Memory > 0 {
		capacity = max(e.opts.Memory, 2*t.MaxInFlight)
	}
	d := &dispatcher{
		e: e, cfg: cfg, t: t,
		client: &http.Client{
			Transport:     tr,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
		wake:     make(chan struct{}, 1),
		fresh:    make(chan storage.Due, capacity),
		work:     make(chan storage.Due, t.MaxInFlight),
		done:     make(chan completion, t.MaxInFlight),
		stopping: make(chan struct{}),
		finished: make(chan struct{}),
		capacity: capacity,
		policy:   delivery.Policy{MaxAttempts: t.MaxAttempts},
	}
	d.scanReq.Store(true) // pick up what an earlier run left queued
	return d
}

func (d *dispatcher) poke() {
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

// run owns the dispatcher's memory (a runState): deliveries ready now,
// retries scheduled for later, and those in flight. Ingest hands new
// deliveries over through d.fresh; the store is scanned only at start, when
// memory overflowed, when told to (replays), and every Rescan as a safety
// net. Only this goroutine scans and only it forgets finished deliveries,
// so a delivery is never handed out twice.
//
// Each turn of the loop takes the fresh hand-overs, forgets a stale
// schedule after a replay, promotes retries that fell due, scans the store
// if it must and memory has room, hands ready deliveries to the workers,
// then sleeps until something happens (recording the completions that
// wake it).
func (d *dispatcher) run(ctx context.Context) {
	defer d.startWorkers(ctx)()
	s := &runState{d: d, only: d.e.opts.Only, known: map[string]bool{}}
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		now := time.Now()
		s.takeFresh(now)
		s.purgeStale()
		s.promoteDue(now)
		s.maybeScan(ctx, now)
		s.dispatchReady()
		if !s.sleep(ctx, timer, now) {
			return
		}
	}
}

// startWorkers starts the target's MaxInFlight workers. The function it
// returns stops them and waits for them to finish.
func (d *dispatcher) startWorkers(ctx context.Context) (stop func()) {
	var workers sync.WaitGroup
	for range d.t.MaxInFlight {
		workers.Add(1)
		go func() {
			defer workers.Done()
			for due := range d.work {
				d.done <- d.deliver(ctx, due)
			}
		}()
	}
	return func() {
		close(d.work)
		// Drain completions so workers never block on d.done.
		go func() {
			for range d.done {
			}
		}()
		workers.Wait()
		close(d.done)
	}
}

// runState is the memory of one dispatcher's run loop; only that goroutine
// touches it. Everything in ready, later or in flight is in known, and
// known never holds more than d.capacity ids: the rest wait in the store.
type runState struct {
	d        *dispatcher
	only     func(eventID string) bool // Options.Only
	ready    []storage.Due             // due now, oldest first
	later    dueHeap                   // scheduled retries
	known    map[string]bool           // ids in ready, later or in flight
	inflight int
	lastScan time.Time
	scanAt   time.Time // a queued entry in the store falls due then
}

// add takes due into memory if it is new, accepted by Only, and fits.
func (s *runState) add(due storage.Due, now time.Time) {
	if s.known[due.EventID] || (s.only != nil && !s.only(due.EventID)) {
		return
	}
	if len(s.known) >= s.d.capacity {
		s.d.scanReq.Store(true) // safe in the store; fetched when there is room
		return
	}
	if due.When().After(now) {
		if s.later.Len() >= s.d.capacity/2 {
			// Keep room for fresh deliveries: this retry waits in the
			// store, and a scan at its due time fetches it.
			if s.scanAt.IsZero() || due.When().Before(s.scanAt) {
				s.scanAt = due.When()
			}
			return
		}
		s.known[due.EventID] = true
		heap.Push(&s.later, due)
	} else {
		s.known[due.EventID] = true
		s.ready = append(s.ready, due)
	}
}

// takeFresh adds the deliveries ingest has handed over since the last turn.
func (s *runState) takeFresh(now time.Time) {
	for {
		select {
		case due := <-s.d.fresh:
			s.add(due, now)
		default:
			return
		}
	}
}

// purgeStale forgets the scheduled retries when told to: a replay may
// have moved one. The store has them all, and the scan that Notify also
// requests decides.
func (s *runState) purgeStale() {
	if s.d.purge.Swap(false) {
		s.forgetScheduled()
	}
}

// forgetScheduled drops the retries scheduled in memory; the store still
// has their queue entries.
func (s *runState) forgetScheduled() {
	for _, due := range s.later {
		delete(s.known, due.EventID)
	}
	s.later = s.later[:0]
}

// promoteDue moves the scheduled retries that are due by now to ready.
func (s *runState) promoteDue(now time.Time) {
	for s.later.Len() > 0 && !s.later[0].When().After(now) {
		s.ready = append(s.ready, heap.Pop(&s.later).(storage.Due))
	}
}

// maybeScan reads due deliveries from the store when a scan is needed
// (requested, Rescan elapsed, or a delivery left in the store fell due) and
// memory has room for it.
func (s *runState) maybeScan(ctx context.Context, now time.Time) {
	d := s.d
	needScan := d.scanReq.Load() || now.Sub(s.lastScan) >= d.e.opts.Rescan || (!s.scanAt.IsZero() && !now.Before(s.scanAt))
	// Refill in bulk: a scan walks the queue from its start (past the
	// entries memory already holds), so scanning for a few free slots
	// at a time would cost a whole queue per handful of deliveries.
	room := d.capacity - len(s.known)
	canScan := room > 0 && (room >= d.capacity/4 || len(s.ready) < d.t.MaxInFlight)
	if !canScan && !s.scanAt.IsZero() && !now.Before(s.scanAt) {
		// Due, but no room: scan once completions free some (no spinning).
		d.scanReq.Store(true)
		s.scanAt = time.Time{}
	}
	if !needScan || !canScan {
		return
	}
	if d.e.leaser != nil && now.Sub(s.lastScan) >= d.e.opts.Rescan {
		// Shared store: a replay on another node reaches only that node's
		// engine, and may have moved a retry scheduled here. The periodic
		// scan decides.
		s.forgetScheduled()
	}
	d.scanReq.Store(false)
	s.lastScan, s.scanAt = now, time.Time{}
	skip := func(id string) bool { return s.known[id] || (s.only != nil && !s.only(id)) }
	dues, next, err := d.e.store.DueDeliveries(ctx, d.t.Name, now, room, skip)
	switch {
	case err != nil:
		d.e.opts.Log.Error("scan delivery queue", "target", d.t.Name, "err", err)
		s.scanAt = now.Add(time.Second)
	case len(dues) == room:
		d.scanReq.Store(true) // more than fits: scan again when there is room
	}
	for _, due := range dues {
		s.add(due, now)
	}
	if !next.IsZero() {
		s.scanAt = next
	}
}

// dispatchReady hands ready deliveries to idle workers, oldest first,
// unless the target is paused.
func (s *runState) dispatchReady() {
	if s.d.paused.Load() {
		return
	}
	for s.inflight < s.d.t.MaxInFlight && len(s.ready) > 0 {
		s.d.work <- s.ready[0] // never blocks: at most MaxInFlight outstanding
		s.ready[0] = storage.Due{}
		s.ready = s.ready[1:]
		s.inflight++
		s.d.inflight.Add(1)
	}
}

// sleep waits until the next retry, the next scan, Rescan at most, a poke
// or a completion, and handles the completions. It returns false when the
// dispatcher must stop.
func (s *runState) sleep(ctx context.Context, timer *time.Timer, now time.Time) bool {
	wake := now.Add(s.d.e.opts.Rescan)
	if s.later.Len() > 0 && s.later[0].When().Before(wake) {
		wake = s.later[0].When()
	}
	if !s.scanAt.IsZero() && s.scanAt.Before(wake) {
		wake = s.scanAt
	}
	resetTimer(timer, time.Until(wake))
	select {
	case <-ctx.Done():
		return false
	case <-s.d.stopping:
		return false
	case <-s.d.wake:
	case <-timer.C:
	case c := <-s.d.done:
		s.handleCompletions(c)
	}
	return true
}

// handleCompletions forgets finished deliveries (c and any other
// completions waiting), schedules their retries, and asks for a scan when
// the store decides what is next.
func (s *runState) handleCompletions(c completion) {
	for {
		s.inflight--
		s.d.inflight.Add(-1)
		delete(s.known, c.id)
		if c.retry != nil {
			s.add(*c.retry, time.Now())
		}
		if c.rescan {
			s.d.scanReq.Store(true)
		}
		var ok bool
		if c, ok = tryRecv(s.d.done); !ok {
			return
		}
	}
}

func tryRecv(ch chan completion) (completion, bool) {
	select {
	case c := <-ch:
		return c, true
	default:
		return completion{}, false
	}
}

// dueHeap orders scheduled deliveries by due time.
type dueHeap []storage.Due

func (h dueHeap) Len() int           { return len(h) }
func (h dueHeap) Less(i, j int) bool { return h[i].When().Before(h[j].When()) }
func (h dueHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *dueHeap) Push(x any)        { *h = append(*h, x.(storage.Due)) }
func (h *dueHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

func resetTimer(t *time.Timer, d time.Duration) {
	if d < 0 {
		d = 0
	}
	t.Reset(d)
}

// deliver makes one attempt and records it. It decides only the attempt's
// outcome and, for a retry, when; the store applies delivery.Next.
func (d *dispatcher) deliver(ctx context.Context, due storage.Due) completion {
	log := d.e.opts.Log
	c := completion{id: due.EventID}
	if d.paused.Load() {
		// Paused since it was handed out: back to memory, ready for when
		// the target is resumed.
		c.retry = &due
		return c
	}
	actx := ctx // loading and attempting; under a lease, bounded by it
	if l := d.e.leaser; l != nil {
		// Several nodes share the store: attempt only under the lease.
		ttl := d.t.Timeout + leaseMargin
		release, err := l.Lease(ctx, d.t.Name, due.EventID, ttl, d.t.MaxInFlight)
		if errors.Is(err, storage.ErrNotHere) {
			return c
		}
		if err != nil {
			// Held already, or this node's share of the target's
			// in-flight bound is full: look again in a moment.
			held := due
			held.NotBefore = time.Now().Add(leaseRetry)
			c.retry = &held
			return c
		}
		defer release()
		// The lease holds for ttl: loading and attempting must end within
		// it (recording after it is safe, by compare-and-set).
		var cancel context.CancelFunc
		actx, cancel = context.WithTimeout(ctx, ttl)
		defer cancel()
	}
	ev, raw, del, err := d.e.store.LoadDelivery(actx, due.EventID, d.t.Name)
	if errors.Is(err, storage.ErrNotFound) {
		// Expired before delivery: drop the queue entry.
		r := delivery.Result{Attempt: delivery.Attempt{At: time.Now(), Error: "event expired"}, Outcome: delivery.Expired}
		_, _ = d.e.store.RecordAttempt(ctx, due.EventID, d.t.Name, due.Key, r, d.policy)
		return c
	}
	if err != nil {
		log.Error("load delivery", "target", d.t.Name, "id", due.EventID, "err", err)
		c.rescan = true // still queued in the store; a scan finds it again
		return c
	}
	if del.Status != delivery.Pending || (!del.NextAt.IsZero() && del.NextAt.UnixNano() != due.At.UnixNano()) {
		// Stale: a replay (or a scan racing a hand-over) moved this delivery
		// to another queue entry meanwhile. That entry decides.
		c.rescan = true
		return c
	}
	start := time.Now()
	res := d.attempt(actx, ev, raw, del.Replay, del.Tries+1)
	latency := time.Since(start)
	if ctx.Err() != nil {
		return c // shutting down: the attempt was cut short, leave it queued
	}
	if actx.Err() != nil {
		c.rescan = true // the lease ran out first: cut short, still queued
		return c
	}
	r := delivery.Result{
		Attempt: delivery.Attempt{At: start.UTC(), StatusCode: res.status, Error: res.err, LatencyMS: float64(latency.Microseconds()) / 1000, Replay: del.Replay},
		Outcome: res.outcome,
	}
	if r.Outcome == delivery.Retry {
		r.RetryAt = time.Now().Add(d.backoff(del.Tries+1, res.retryAfter))
	}
	rec, err := d.e.store.RecordAttempt(context.WithoutCancel(ctx), due.EventID, d.t.Name, due.Key, r, d.policy)
	switch {
	case errors.Is(err, storage.ErrSuperseded):
		// A replay queued this delivery again meanwhile (its scan skipped it
		// as in flight): its entry decides, so look at the store again.
		c.rescan = true
	case err != nil:
		log.Error("record attempt", "target", d.t.Name, "id", due.EventID, "err", err)
		c.rescan = true
	case rec.Status == delivery.Pending:
		c.retry = &storage.Due{EventID: due.EventID, Target: d.t.Name, At: rec.NextAt, Key: d.e.store.QueueKey(d.t.Name, rec.NextAt, due.EventID)}
	}
	outcome := outcomeLabel(r.Outcome, rec.Status, err == nil)
	if d.e.opts.Metrics != nil {
		d.e.opts.Metrics.Delivered(d.t.Name, outcome, latency)
	}
	lvl := slog.LevelDebug
	switch {
	case outcome == "dead":
		lvl = slog.LevelError // a delivery gone dead is an error
	case res.outcome != delivery.OK:
		lvl = slog.LevelWarn
	}
	if !log.Enabled(ctx, lvl) {
		return c // spare the hot path building a record nobody reads
	}
	log.Log(ctx, lvl, "delivery attempt", "target", d.t.Name, "id", due.EventID, "outcome", outcome,
		"status", res.status, "error", res.err, "attempt", del.Tries+1, "latency", latency.Round(time.Microsecond))
	return c
}

// outcomeLabel names an attempt for metrics and logs ("delivered", "retry"
// or "dead"): by the status it left its delivery in when it was recorded as
// the delivery's current attempt, else by what the target answered.
func outcomeLabel(o delivery.Outcome, st delivery.Status, recorded bool) string {
	if recorded {
		switch st {
		case delivery.Delivered:
			return "delivered"
		case delivery.Pending:
			return "retry"
		}
		return "dead"
	}
	switch o {
	case delivery.OK:
		return "delivered"
	case delivery.Retry:
		return "retry"
	}
	return "dead"
}

// result is what one request to the target said.
type result struct {
	outcome    delivery.Outcome // OK, Retry or Permanent
	status     int
	err        string
	retryAfter time.Duration
}

func (d *dispatcher) attempt(ctx context.Context, ev *storage.Event, raw []byte, replay bool, n int) result {
	body := CloudEvent(ev, raw, replay)
	actx, cancel := context.WithTimeout(ctx, d.t.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(actx, http.MethodPost, d.t.URL, bytes.NewReader(body))
	if err != nil {
		return result{outcome: delivery.Permanent, err: "build request: " + err.Error()}
	}
	for k, v := range d.t.Headers {
		req.Header.Set(k, v)
	}
	req.Header.Set("Content-Type", "application/cloudevents+json")
	req.Header.Set("User-Agent", d.e.opts.UserAgent)
	req.Header.Set("Hookrelay-Attempt", strconv.Itoa(n))
	if replay {
		req.Header.Set("Hookrelay-Replay", "true")
	}
	if d.t.SigningKey != nil {
		SignRequest(req.Header, d.t.SigningKey, ev.ID, time.Now(), body)
	}
	resp, err := d.client.Do(req)
	if err != nil {
		return result{outcome: delivery.Retry, err: attemptError(err, actx)}
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	r := result{outcome: delivery.Permanent, status: resp.StatusCode}
	switch c := resp.StatusCode; {
	case c >= 200 && c < 300:
		r.outcome = delivery.OK
	case c == http.StatusRequestTimeout, c == http.StatusTooManyRequests, c >= 500:
		r.outcome = delivery.Retry
		r.retryAfter = parseRetryAfter(resp.Header.Get("Retry-After"), time.Now())
	}
	return r
}

// SignRequest adds Standard Webhooks headers: webhook-id, webhook-timestamp
// and webhook-signature "v1,<base64 HMAC-SHA256 of id.timestamp.body>".
// It signs with the same code the standard-webhooks adapter verifies with.
func SignRequest(h http.Header, key []byte, id string, now time.Time, body []byte) {
	ts := strconv.FormatInt(now.Unix(), 10)
	h.Set("webhook-id", id)
	h.Set("webhook-timestamp", ts)
	h.Set("webhook-signature", verify.StandardSignature(key, id, ts, body))
}

// attemptError describes a failed request without the URL (which may carry
// credentials in its query or userinfo).
func attemptError(err error, ctx context.Context) string {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return "timeout"
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	var ne *net.OpError
	if errors.As(err, &ne) && ne.Err != nil {
		return ne.Op + ": " + ne.Err.Error()
	}
	return err.Error()
}

// backoff returns the wait before retry number n (n >= 1): exponential from
// InitialBackoff, capped at MaxBackoff, with equal jitter. A Retry-After
// from the target wins (up to one hour).
func (d *dispatcher) backoff(n int, retryAfter time.Duration) time.Duration {
	if retryAfter > 0 {
		return min(retryAfter, maxRetryAfter)
	}
	b := d.t.InitialBackoff
	for i := 1; i < n && b < d.t.MaxBackoff; i++ {
		if b > d.t.MaxBackoff/2 {
			b = d.t.MaxBackoff // doubling would pass the cap (or overflow)
			break
		}
		b *= 2
	}
	b = min(b, d.t.MaxBackoff)
	half := b / 2
	return half + rand.N(half+1)
}

// parseRetryAfter reads delay-seconds or an HTTP-date; 0 if absent/invalid.
func parseRetryAfter(v string, now time.Time) time.Duration {
	if v == "" {
		return 0
	}
	if s, err := strconv.ParseInt(v, 10, 64); err == nil || errors.Is(err, strconv.ErrRange) {
		// Out of range: s is the int64 bound of the right sign.
		switch {
		case s <= 0:
			return 0
		case s >= int64(maxRetryAfter/time.Second):
			return maxRetryAfter // before multiplying: s*time.Second may overflow
		}
		return time.Duration(s) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		if d := t.Sub(now); d > 0 {
			return min(d, maxRetryAfter)
		}
	}
	return 0
}
