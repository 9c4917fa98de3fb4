// Package deliver relays stored events to targets: one dispatcher per
// target reads due deliveries from the store's queue and hands them to at
// most max_in_flight workers, which POST the CloudEvent, record the attempt
// and schedule retries. Targets share nothing, so a slow or failing target
// never delays another.
package deliver

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"

	"github.com/hookrelay/hookrelay/relay/store"
)

// Store is the part of the event store the delivery engine needs.
type Store interface {
	DueDeliveries(target string, from, now time.Time, limit int, skip func(id string) bool) ([]store.Due, time.Time, error)
	LoadDelivery(id, target string) (*store.Event, []byte, *store.Delivery, error)
	RecordAttempt(ctx context.Context, id, target string, queueKey []byte, a store.Attempt, status string, next time.Time) error
}

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
	// Rescan is how often each dispatcher rescans its whole queue as a
	// safety net (default 10s).
	Rescan time.Duration
	// Only, when set, restricts delivery to the events it accepts (offline
	// replay delivers its own selection and leaves the rest queued).
	Only func(eventID string) bool
}

// Engine runs the dispatchers of all targets.
type Engine struct {
	store       Store
	opts        Options
	dispatchers map[string]*dispatcher
	cancel      context.CancelFunc
	wg          sync.WaitGroup
}

// maxRetryAfter caps a target's Retry-After.
const maxRetryAfter = time.Hour

// New returns an engine for targets; call Start to run it.
func New(st Store, targets []Target, opts Options) *Engine {
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	if opts.Rescan <= 0 {
		opts.Rescan = 10 * time.Second
	}
	if opts.UserAgent == "" {
		opts.UserAgent = "hookrelay"
	}
	e := &Engine{store: st, opts: opts, dispatchers: map[string]*dispatcher{}}
	for _, t := range targets {
		e.dispatchers[t.Name] = newDispatcher(e, t)
	}
	return e
}

// Start runs every dispatcher until Stop.
func (e *Engine) Start(ctx context.Context) {
	ctx, e.cancel = context.WithCancel(context.WithoutCancel(ctx))
	for _, d := range e.dispatchers {
		e.wg.Add(1)
		go func() {
			defer e.wg.Done()
			d.run(ctx)
		}()
	}
}

// Notify wakes the dispatchers of targets: new deliveries are queued.
func (e *Engine) Notify(targets ...string) {
	for _, t := range targets {
		if d, ok := e.dispatchers[t]; ok {
			select {
			case d.wake <- struct{}{}:
			default:
			}
		}
	}
}

// NotifyAll wakes every dispatcher.
func (e *Engine) NotifyAll() {
	for name := range e.dispatchers {
		e.Notify(name)
	}
}

// Stop stops dispatching. Attempts in flight get until ctx's deadline to
// finish and be recorded; any still running then are abandoned and stay
// queued (they are retried after a restart: at-least-once).
func (e *Engine) Stop(ctx context.Context) error {
	if e.cancel == nil {
		return nil
	}
	for _, d := range e.dispatchers {
		d.stopOnce.Do(func() { close(d.stopping) })
	}
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
	t        Target
	client   *http.Client
	wake     chan struct{}
	work     chan store.Due
	done     chan string
	stopping chan struct{}
	stopOnce sync.Once
}

func newDispatcher(e *Engine, t Target) *dispatcher {
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
	return &dispatcher{
		e: e, t: t,
		client: &http.Client{
			Transport:     tr,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
		wake:     make(chan struct{}, 1),
		work:     make(chan store.Due, t.MaxInFlight),
		done:     make(chan string, t.MaxInFlight),
		stopping: make(chan struct{}),
	}
}

// run owns the in-flight set: only this goroutine scans the queue and
// removes finished deliveries from the set, so a delivery is never handed
// out twice.
func (d *dispatcher) run(ctx context.Context) {
	var workers sync.WaitGroup
	for i := 0; i < d.t.MaxInFlight; i++ {
		workers.Add(1)
		go func() {
			defer workers.Done()
			for due := range d.work {
				d.deliver(ctx, due)
				d.done <- due.EventID
			}
		}()
	}
	defer func() {
		close(d.work)
		// Drain completions so workers never block on d.done.
		go func() {
			for range d.done {
			}
		}()
		workers.Wait()
		close(d.done)
	}()

	inflight := map[string]time.Time{} // event id -> due time of its queue entry
	only := d.e.opts.Only
	skip := func(id string) bool {
		_, ok := inflight[id]
		return ok || (only != nil && !only(id))
	}
	timer := time.NewTimer(0)
	defer timer.Stop()
	// cursor: no queue entry due before it is waiting, except entries being
	// committed right now (hence the margin) and those in flight. Scans start
	// there to skip the tombstones of finished deliveries.
	var cursor time.Time
	lastFull := time.Now()
	const margin = 2 * time.Second
	for {
		now := time.Now()
		if free := d.t.MaxInFlight - len(inflight); free > 0 {
			from := cursor.Add(-margin)
			if now.Sub(lastFull) > d.e.opts.Rescan {
				from, lastFull = time.Time{}, now
			}
			dues, next, err := d.e.store.DueDeliveries(d.t.Name, from, now, free, skip)
			if err != nil {
				d.e.opts.Log.Error("scan delivery queue", "target", d.t.Name, "err", err)
				next = now.Add(time.Second)
			}
			for _, due := range dues {
				inflight[due.EventID] = due.At
				d.work <- due // never blocks: at most MaxInFlight outstanding
			}
			if err == nil {
				cursor = now
				for _, at := range inflight {
					if at.Before(cursor) {
						cursor = at
					}
				}
			}
			// Wake for the next due entry, and at least every Rescan for the
			// full scan that catches anything the cursor skipped.
			wait := d.e.opts.Rescan
			if !next.IsZero() && time.Until(next) < wait {
				wait = time.Until(next)
			}
			resetTimer(timer, wait)
		}
		select {
		case <-ctx.Done():
			return
		case <-d.stopping:
			return
		case <-d.wake:
		case <-timer.C:
		case id := <-d.done:
			delete(inflight, id)
			for more := true; more; {
				select {
				case id := <-d.done:
					delete(inflight, id)
				default:
					more = false
				}
			}
		}
	}
}

func resetTimer(t *time.Timer, d time.Duration) {
	if d < 0 {
		d = 0
	}
	t.Reset(d)
}

// deliver makes one attempt and records it.
func (d *dispatcher) deliver(ctx context.Context, due store.Due) {
	log := d.e.opts.Log
	ev, raw, del, err := d.e.store.LoadDelivery(due.EventID, d.t.Name)
	if errors.Is(err, store.ErrNotFound) {
		// Expired before delivery: drop the queue entry.
		_ = d.e.store.RecordAttempt(ctx, due.EventID, d.t.Name, due.Key, store.Attempt{At: time.Now(), Error: "event expired"}, store.StatusDead, time.Time{})
		return
	}
	if err != nil {
		log.Error("load delivery", "target", d.t.Name, "id", due.EventID, "err", err)
		return // stays queued; the next scan retries
	}
	start := time.Now()
	res := d.attempt(ctx, ev, raw, del.Replay, del.Tries+1)
	latency := time.Since(start)
	if ctx.Err() != nil {
		return // shutting down: the attempt was cut short, leave it queued
	}
	a := store.Attempt{At: start.UTC(), StatusCode: res.status, Error: res.err, LatencyMS: float64(latency.Microseconds()) / 1000, Replay: del.Replay}
	status, next := store.StatusDelivered, time.Time{}
	outcome := "delivered"
	switch {
	case res.ok:
	case !res.retry || del.Tries+1 >= d.t.MaxAttempts:
		status, outcome = store.StatusDead, "dead"
	default:
		status, outcome = store.StatusPending, "retry"
		next = time.Now().Add(d.backoff(del.Tries+1, res.retryAfter))
	}
	if err := d.e.store.RecordAttempt(context.WithoutCancel(ctx), due.EventID, d.t.Name, due.Key, a, status, next); err != nil {
		log.Error("record attempt", "target", d.t.Name, "id", due.EventID, "err", err)
	}
	if d.e.opts.Metrics != nil {
		d.e.opts.Metrics.Delivered(d.t.Name, outcome, latency)
	}
	lvl := slog.LevelDebug
	if !res.ok {
		lvl = slog.LevelWarn
	}
	log.Log(ctx, lvl, "delivery attempt", "target", d.t.Name, "id", due.EventID, "outcome", outcome,
		"status", res.status, "error", res.err, "attempt", del.Tries+1, "latency", latency.Round(time.Microsecond))
}

type result struct {
	ok, retry  bool
	status     int
	err        string
	retryAfter time.Duration
}

func (d *dispatcher) attempt(ctx context.Context, ev *store.Event, raw []byte, replay bool, n int) result {
	body := CloudEvent(ev, raw, replay)
	actx, cancel := context.WithTimeout(ctx, d.t.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(actx, http.MethodPost, d.t.URL, bytesReader(body))
	if err != nil {
		return result{err: "build request: " + err.Error()}
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
		return result{retry: true, err: attemptError(err, actx)}
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	r := result{status: resp.StatusCode}
	switch c := resp.StatusCode; {
	case c >= 200 && c < 300:
		r.ok = true
	case c == http.StatusRequestTimeout, c == http.StatusTooManyRequests, c >= 500:
		r.retry = true
		r.retryAfter = parseRetryAfter(resp.Header.Get("Retry-After"), time.Now())
	}
	return r
}

// SignRequest adds Standard Webhooks headers: webhook-id, webhook-timestamp
// and webhook-signature "v1,<base64 HMAC-SHA256 of id.timestamp.body>".
func SignRequest(h http.Header, key []byte, id string, now time.Time, body []byte) {
	ts := strconv.FormatInt(now.Unix(), 10)
	m := hmac.New(sha256.New, key)
	m.Write([]byte(id))
	m.Write([]byte{'.'})
	m.Write([]byte(ts))
	m.Write([]byte{'.'})
	m.Write(body)
	h.Set("webhook-id", id)
	h.Set("webhook-timestamp", ts)
	h.Set("webhook-signature", "v1,"+base64.StdEncoding.EncodeToString(m.Sum(nil)))
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
