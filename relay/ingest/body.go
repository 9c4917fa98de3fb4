package ingest

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"os"
	"runtime"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"
)

// Budget bounds the bytes of request bodies held in memory at once, over
// all requests (server.max_buffered_bytes). A request reserves its
// Content-Length before it reads a byte (a body of unknown length reserves
// as it grows); past the budget it gets 503. Bodies larger than
// smallBody may use only three quarters of it, so a crowd of large
// uploads never leaves ordinary webhooks (a few KiB) without room.
// The budget also keeps the buffers for reuse.
//
// After a burst (more than half the budget in use) has drained, the
// memory it took is handed back to the operating system once, so that
// the server's RSS follows the load back down instead of staying at its
// peak (the Go runtime alone returns it only slowly).
type Budget struct {
	max   int64
	used  atomic.Int64
	high  atomic.Bool // a burst is draining
	pools [len(bufClasses)]sync.Pool
}

// NewBudget returns a budget of max bytes.
func NewBudget(max int64) *Budget { return &Budget{max: max} }

// smallBody is the largest body that may use the last quarter of a Budget.
const smallBody = 64 << 10

// InUse returns the bytes reserved now.
func (b *Budget) InUse() int64 { return b.used.Load() }

// reserve takes n more bytes for a body that will then hold total bytes;
// false if the budget has no room.
func (b *Budget) reserve(n, total int64) bool {
	limit := b.max
	if total > smallBody {
		limit -= b.max / 4
	}
	for {
		cur := b.used.Load()
		if cur+n > limit {
			return false
		}
		if b.used.CompareAndSwap(cur, cur+n) {
			if cur+n > b.max/2 {
				b.high.Store(true)
			}
			return true
		}
	}
}

func (b *Budget) release(n int64) {
	if b.used.Add(-n) <= b.max/8 && b.high.CompareAndSwap(true, false) {
		time.AfterFunc(reclaimDelay, reclaim)
	}
}

// reclaimDelay lets a drained burst settle before reclaim runs.
const reclaimDelay = time.Second

// reclaim frees what the pools hold (they survive one collection) and
// returns the free memory to the operating system.
func reclaim() {
	runtime.GC()
	debug.FreeOSMemory()
}

// Body read errors, mapped to status codes by the handler.
var (
	// errBodyTimeout: the body was not complete within server.read_timeout (408).
	errBodyTimeout = errors.New("body not complete within server.read_timeout")
	// errBodySlow: the body arrived slower than server.min_body_rate (408).
	errBodySlow = errors.New("body arriving slower than server.min_body_rate")
	// errBudget: server.max_buffered_bytes is in use by other bodies (503).
	errBudget = errors.New("too many request bodies in memory, retry later")
)

// BodyLimits are the per-request rules of reading a body.
type BodyLimits struct {
	// MaxBytes: larger bodies are 413 (server.max_body_bytes).
	MaxBytes int64
	// Timeout: the whole body must arrive within it of the handler's
	// start (server.read_timeout); 0 leaves it to the http.Server.
	Timeout time.Duration
	// MinRate (bytes/s) and Grace: after the first Grace, every further
	// Grace must bring MinRate*Grace bytes or the end of the body.
	MinRate int64
	Grace   time.Duration
	// Budget, when non-nil, bounds the bodies in memory at once.
	Budget *Budget
}

// body is a request body read into a pooled buffer (handed on as a copy,
// see detach); release gives the budget back.
type body struct {
	data     []byte
	buf      *[]byte // backing array
	budget   *Budget // nil: no budget, no pooling
	reserved int64
}

func (b *body) release() {
	if b.budget != nil {
		b.budget.release(b.reserved)
		b.reserved = 0
		if b.buf != nil {
			b.budget.putBuf(b.buf)
		}
	}
	b.buf, b.data = nil, nil
}

// readBody reads r's body under lim. On error the body is already
// released. Deadlines are set through http.ResponseController; where the
// writer cannot (tests with a recorder), the rate is checked between reads.
func readBody(w http.ResponseWriter, r *http.Request, lim BodyLimits, now func() time.Time) (*body, error) {
	b := &body{budget: lim.Budget}
	start := now()
	rd := &rateReader{
		r: http.MaxBytesReader(w, r.Body, lim.MaxBytes), rc: http.NewResponseController(w), now: now,
		start: start, rate: lim.MinRate, grace: lim.Grace,
	}
	if lim.Timeout > 0 {
		rd.hard = start.Add(lim.Timeout)
	}
	rd.schedule()
	err := b.fill(rd, r.ContentLength, lim.MaxBytes)
	if err != nil {
		b.release()
		return nil, err
	}
	rd.done()
	b.detach()
	return b, nil
}

// detach gives the body its own exact-size copy and returns the pooled
// buffer at once: the bytes go on to the store, which may hold on to them
// after Ingest returns (a JetStream publish retried after a lost ack, say),
// so they must never be a buffer another request reuses. The reservation
// stays until release: the copy uses that memory meanwhile.
func (b *body) detach() {
	if b.budget == nil || b.buf == nil {
		return
	}
	b.data = bytes.Clone(b.data)
	b.budget.putBuf(b.buf)
	b.buf = nil
}

// fill reads everything from rd: at once into a buffer of the announced
// length, or growing through the buffer classes when it is unknown.
func (b *body) fill(rd io.Reader, length, max int64) error {
	if length >= 0 {
		if !b.reserve(int64(bufSize(int(length))), length) {
			return errBudget
		}
		b.buf = b.budget.getBuf(int(length))
		b.data = (*b.buf)[:length]
		if _, err := io.ReadFull(rd, b.data); err != nil {
			if errors.Is(err, io.ErrUnexpectedEOF) {
				return io.ErrUnexpectedEOF
			}
			return err
		}
		return nil
	}
	n := 0
	for {
		if b.buf == nil || n == cap(*b.buf) {
			size := bufClasses[0]
			if b.buf != nil {
				size = 2 * cap(*b.buf)
			}
			size = bufSize(int(min(int64(size), max+1)))
			if !b.reserve(int64(size)-b.reserved, int64(size)) {
				return errBudget
			}
			nb := b.budget.getBuf(size)
			if b.buf != nil {
				copy(*nb, (*b.buf)[:n])
				b.budget.putBuf(b.buf)
			}
			b.buf = nb
		}
		m, err := rd.Read((*b.buf)[n:cap(*b.buf)])
		n += m
		if err != nil {
			if errors.Is(err, io.EOF) {
				b.data = (*b.buf)[:n]
				return nil
			}
			return err
		}
	}
}

func (b *body) reserve(n, total int64) bool {
	if b.budget == nil || n <= 0 {
		return true
	}
	if !b.budget.reserve(n, total) {
		return false
	}
	b.reserved += n
	return true
}

// rateReader enforces the read timeout and the minimum rate with read
// deadlines on the connection, so that the handler, not net/http, answers
// a stalled body (408, sent before the connection closes).
//
// Time after start is cut into windows of length grace. The first is
// free; each later one must bring rate*grace bytes. The connection's read
// deadline is the end of the first window that would fall short if
// nothing more arrived, or the hard deadline, whichever comes first.
type rateReader struct {
	r     io.Reader
	rc    *http.ResponseController
	now   func() time.Time
	start time.Time
	hard  time.Time // zero: none of ours
	rate  int64
	grace time.Duration

	win      int   // index of the current window
	winBytes int64 // bytes received in it
	deadline time.Time
	noDL     bool // the writer cannot set deadlines
	err      error
}

func (rr *rateReader) Read(p []byte) (int, error) {
	if rr.err != nil {
		return 0, rr.err
	}
	n, err := rr.r.Read(p)
	t := rr.now()
	if rr.rate > 0 && rr.grace > 0 {
		if cur := int(t.Sub(rr.start) / rr.grace); cur > rr.win {
			// Windows ended since the last read: the one we were in must
			// have had its share, and any passed without a read had none.
			if (rr.win > 0 && rr.winBytes < rr.need()) || cur > rr.win+1 {
				rr.err = errBodySlow
			}
			rr.win, rr.winBytes = cur, 0
		}
		rr.winBytes += int64(n)
	}
	if err != nil && errors.Is(err, os.ErrDeadlineExceeded) {
		rr.err = errBodySlow
		if !rr.hard.IsZero() && !t.Before(rr.hard) {
			rr.err = errBodyTimeout
		}
	}
	if rr.err == nil && !rr.hard.IsZero() && !t.Before(rr.hard) && err == nil {
		rr.err = errBodyTimeout
	}
	if rr.err != nil {
		if errors.Is(err, io.EOF) {
			rr.err = nil // complete after all
			return n, err
		}
		return n, rr.err
	}
	if err == nil {
		rr.schedule()
	}
	return n, err
}

func (rr *rateReader) need() int64 {
	return int64(float64(rr.rate) * rr.grace.Seconds())
}

// done lifts the read deadline once the body is in: net/http's background
// read (which watches for the client going away while the handler runs)
// would otherwise hit it and cancel the request's context.
func (rr *rateReader) done() {
	if !rr.noDL && !rr.deadline.IsZero() {
		_ = rr.rc.SetReadDeadline(time.Time{})
	}
}

// schedule sets the connection's read deadline for the next read.
func (rr *rateReader) schedule() {
	if rr.noDL {
		return
	}
	dl := rr.hard
	if rr.rate > 0 && rr.grace > 0 {
		end := rr.win + 1 // the current window must be filled by its end...
		if rr.win == 0 || rr.winBytes >= rr.need() {
			end++ // ...unless free or already filled: then the next one
		}
		if wdl := rr.start.Add(time.Duration(end) * rr.grace); dl.IsZero() || wdl.Before(dl) {
			dl = wdl
		}
	}
	if dl.IsZero() || dl.Equal(rr.deadline) {
		return
	}
	if err := rr.rc.SetReadDeadline(dl); err != nil {
		rr.noDL = true
		return
	}
	rr.deadline = dl
}

// Buffer classes for bodies: a body is read into the smallest class that
// holds it; larger bodies get a buffer of their own.
// Powers of two: a buffer is at most twice its body.
var bufClasses = [...]int{4 << 10, 8 << 10, 16 << 10, 32 << 10, 64 << 10, 128 << 10, 256 << 10,
	512 << 10, 1 << 20, 2 << 20, 4 << 20, 8 << 20, 16 << 20}

func classOf(n int) int {
	for i, c := range bufClasses {
		if n <= c {
			return i
		}
	}
	return -1
}

// bufSize is the capacity of the buffer getBuf returns for n bytes.
func bufSize(n int) int {
	if c := classOf(n); c >= 0 {
		return bufClasses[c]
	}
	return n
}

// getBuf returns a buffer of bufSize(n) bytes (len = cap), reused when b
// has one (b may be nil: no reuse).
func (b *Budget) getBuf(n int) *[]byte {
	if c := classOf(n); c >= 0 && b != nil {
		if p, ok := b.pools[c].Get().(*[]byte); ok {
			return p
		}
	}
	buf := make([]byte, bufSize(n))
	return &buf
}

func (b *Budget) putBuf(p *[]byte) {
	if c := classOf(cap(*p)); c >= 0 && cap(*p) == bufClasses[c] {
		*p = (*p)[:cap(*p)]
		b.pools[c].Put(p)
	}
}
