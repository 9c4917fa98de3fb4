package store

import (
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hookrelay/hookrelay/relay/storage"
)

// FreeSpaceFunc returns the bytes available to the process on the
// filesystem holding path (statfs f_bavail * f_bsize on Unix).
type FreeSpaceFunc func(path string) (uint64, error)

// Space-watch pacing: the committer re-reads the free space before a
// commit once this much was written or this much time passed since the
// last reading; a ticker re-reads it every spaceTick regardless (that is
// how the store notices space coming back while it refuses writes).
const (
	spaceEveryBytes = 1 << 20
	spaceEveryTime  = 100 * time.Millisecond
	spaceTick       = time.Second
)

// spaceWatch caches the free space of the store's filesystem. Below min
// the store refuses new events; below min/2 (the hard floor, kept for
// Badger's own writes: flushes, compactions) it refuses every write.
// It recovers at min + min/16, so that a filesystem hovering at the
// threshold does not flap.
type spaceWatch struct {
	path string
	min  uint64
	fn   FreeSpaceFunc // nil: unknown, never low
	log  *slog.Logger

	free  atomic.Uint64
	known atomic.Bool
	low   atomic.Bool

	mu      sync.Mutex
	at      time.Time // of the last reading
	written int64     // bytes committed since then
}

func newSpaceWatch(path string, min uint64, fn FreeSpaceFunc, log *slog.Logger) *spaceWatch {
	if min == 0 {
		fn = nil
	}
	w := &spaceWatch{path: path, min: min, fn: fn, log: log}
	w.refresh()
	return w
}

// refresh reads the free space now and logs a change of state (once per
// transition: at error level when it goes low, at warn when it recovers).
func (w *spaceWatch) refresh() {
	if w.fn == nil {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.at, w.written = time.Now(), 0
	free, err := w.fn(w.path)
	if err != nil {
		if w.known.Swap(false) {
			w.log.Warn("cannot read free disk space; not watching it", "path", w.path, "err", err)
		}
		return
	}
	w.free.Store(free)
	w.known.Store(true)
	wasLow := w.low.Load()
	switch {
	case !wasLow && free < w.min:
		w.low.Store(true)
		w.log.Error("storage nearly full: refusing new events (503) until space is freed",
			"path", w.path, "free_bytes", free, "min_free_bytes", w.min)
	case wasLow && free >= w.min+w.min/16:
		w.low.Store(false)
		w.log.Warn("storage free space is back: taking events again",
			"path", w.path, "free_bytes", free, "min_free_bytes", w.min)
	}
}

// wrote records n bytes about to be committed and re-reads the free space
// if enough was written or enough time passed since the last reading.
func (w *spaceWatch) wrote(n int) {
	if w.fn == nil {
		return
	}
	w.mu.Lock()
	w.written += int64(n)
	due := w.written >= spaceEveryBytes || time.Since(w.at) >= spaceEveryTime
	w.mu.Unlock()
	if due {
		w.refresh()
	}
}

// err returns a *storage.LowSpaceError while the store takes no new events.
func (w *spaceWatch) err() error {
	if !w.low.Load() {
		return nil
	}
	return &storage.LowSpaceError{Path: w.path, Free: w.free.Load(), Min: w.min}
}

// hardErr returns a *LowSpaceError below the hard floor (min/2), where no
// write of any kind is made.
func (w *spaceWatch) hardErr() error {
	if !w.low.Load() || w.free.Load() >= w.min/2 {
		return nil
	}
	return &storage.LowSpaceError{Path: w.path, Free: w.free.Load(), Min: w.min}
}

// checkFree returns a *LowSpaceError if fn says path has less than min
// free; an unreadable figure is not an error (nothing to go by).
func checkFree(path string, min uint64, fn FreeSpaceFunc) error {
	if min == 0 || fn == nil {
		return nil
	}
	free, err := fn(path)
	if err != nil || free >= min {
		return nil
	}
	return &storage.LowSpaceError{Path: path, Free: free, Min: min}
}

// space is the last reading (known false: unreadable or not watched) and
// whether it is low.
func (w *spaceWatch) space() (free uint64, low, known bool) {
	return w.free.Load(), w.low.Load(), w.known.Load()
}

// loop re-reads the free space every tick until stop is closed.
func (w *spaceWatch) loop(stop <-chan struct{}, tick time.Duration) {
	t := time.NewTicker(tick)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
			w.refresh()
		}
	}
}

// Space reports the last reading of the free space on the store's
// filesystem (known is false when it cannot be read or is not watched)
// and whether the store refuses new events because of it.
func (s *Store) Space() (free uint64, low, known bool) { return s.space.space() }

func (s *Store) spaceLoop() {
	defer s.wg.Done()
	s.space.loop(s.stop, s.spaceTick)
}

// SpaceWatch watches the free space of the filesystem under a directory
// that something else writes (in cluster mode, the embedded NATS server's
// store_dir), with the rules of the store's own watch: Err reports a
// *storage.LowSpaceError from when the free space falls below min until it
// is back above min + min/16, re-read every tick.
type SpaceWatch struct {
	w        *spaceWatch
	stop     chan struct{}
	done     chan struct{}
	stopOnce sync.Once
}

// WatchSpace starts a SpaceWatch of path (fn nil: StatFS; min 0: never
// low; tick 0: every second; log nil: none). Stop ends it.
func WatchSpace(path string, min uint64, fn FreeSpaceFunc, tick time.Duration, log *slog.Logger) *SpaceWatch {
	if fn == nil {
		fn = StatFS
	}
	if tick <= 0 {
		tick = spaceTick
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	sw := &SpaceWatch{w: newSpaceWatch(path, min, fn, log), stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(sw.done)
		sw.w.loop(sw.stop, tick)
	}()
	return sw
}

// Err returns a *storage.LowSpaceError while the free space is low.
func (sw *SpaceWatch) Err() error { return sw.w.err() }

// Space reports the last reading (known false: unreadable or not
// watched) and whether it is low.
func (sw *SpaceWatch) Space() (free uint64, low, known bool) { return sw.w.space() }

// Stop ends the watch.
func (sw *SpaceWatch) Stop() {
	sw.stopOnce.Do(func() { close(sw.stop) })
	<-sw.done
}
