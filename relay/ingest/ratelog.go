package ingest

import (
	"log/slog"
	"sync"
	"time"
)

// rejectLog writes the "webhook rejected" lines, at most burst per source
// and reason in each period; past that it counts, and when the period ends
// writes one summary line with the count. Unauthenticated clients can so
// not flood the log (the metrics still count every rejection). The number
// of keys is bounded: past maxKeys, rejections share one key per reason.
type rejectLog struct {
	log    *slog.Logger
	burst  int
	period time.Duration
	now    func() time.Time

	mu   sync.Mutex
	keys map[rejectKey]*rejectWindow
}

type rejectKey struct{ source, reason string }

type rejectWindow struct {
	start      time.Time
	logged     int
	suppressed int
	timer      *time.Timer
}

// Defaults of the rejection log.
const (
	rejectBurst   = 5
	rejectPeriod  = time.Minute
	rejectMaxKeys = 1024
	anySource     = "*"
)

func newRejectLog(log *slog.Logger, burst int, period time.Duration, now func() time.Time) *rejectLog {
	return &rejectLog{log: log, burst: burst, period: period, now: now, keys: map[rejectKey]*rejectWindow{}}
}

// reject logs one rejection of source (for an unknown source the name
// asked for, which is grouped under one key) for reason, an outcome label
// such as "rejected_signature", unless its key has used up its burst.
func (l *rejectLog) reject(source, reason string, known bool, attrs ...any) {
	key := rejectKey{source: source, reason: reason}
	if !known {
		key.source = anySource
	}
	now := l.now()
	l.mu.Lock()
	w := l.keys[key]
	if w == nil && len(l.keys) >= rejectMaxKeys {
		key.source = anySource
		w = l.keys[key]
	}
	if w == nil || now.Sub(w.start) >= l.period {
		if w != nil && w.timer != nil {
			w.timer.Stop()
			l.summaryLocked(key, w)
		}
		w = &rejectWindow{start: now}
		l.keys[key] = w
	}
	if w.logged < l.burst {
		w.logged++
		l.mu.Unlock()
		l.log.Info("webhook rejected", append(append([]any{"source", source}, attrs...), "outcome", reason)...)
		return
	}
	w.suppressed++
	if w.timer == nil {
		w.timer = time.AfterFunc(w.start.Add(l.period).Sub(now), func() { l.flush(key, w) })
	}
	l.mu.Unlock()
}

// flush ends w's period: one summary line, and the key is forgotten.
func (l *rejectLog) flush(key rejectKey, w *rejectWindow) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.keys[key] != w {
		return // a newer period took over (and summarized this one)
	}
	delete(l.keys, key)
	l.summaryLocked(key, w)
}

func (l *rejectLog) summaryLocked(key rejectKey, w *rejectWindow) {
	if w.suppressed == 0 {
		return
	}
	l.log.Info("webhook rejections not logged", "source", key.source, "outcome", key.reason,
		"count", w.suppressed, "period", l.period.String(), "logged", w.logged)
	w.suppressed = 0
}

// size returns the number of keys tracked (for tests).
func (l *rejectLog) size() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.keys)
}
