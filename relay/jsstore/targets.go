package jsstore

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/hookrelay/hookrelay/relay/storage"
)

// Paused targets: <p>.t.<target> holds {"target", "paused_at"} while the
// target is paused (no TTL) and a tombstone (Hr-Op: del) for a minute once
// it is resumed. Writes are compare-and-set on what was read; a pause and a
// resume at once end in one of the two states.

type pauseRec struct {
	Target   string    `json:"target"`
	PausedAt time.Time `json:"paused_at"`
}

func (s *Store) pauseSubj(t string) string { return s.p + "t." + token(t) }

// SetPaused pauses or resumes target (storage.Store). The write is a
// compare-and-set on the record read, tried again on a conflict, so of two
// pauses at once the first keeps its time.
func (s *Store) SetPaused(ctx context.Context, target string, paused bool) error {
	if err := s.check(); err != nil {
		return err
	}
	subj := s.pauseSubj(target)
	for try := 0; ; try++ {
		cur, ok, err := s.last(ctx, subj)
		if err != nil {
			return err
		}
		if paused == (ok && !cur.del) {
			return nil
		}
		m := newMsg(subj, nil, 0)
		if paused {
			if m.Data, err = json.Marshal(pauseRec{Target: target, PausedAt: time.Now().UTC()}); err != nil {
				return err
			}
		} else {
			m = newMsg(subj, nil, pauseTombstoneTTL) // gone after a while: Paused reads only live pauses
			m.Header.Set(hdrOp, opDel)
		}
		var seq uint64
		if ok {
			seq = cur.seq
		}
		_, err = s.js.PublishMsg(ctx, expect(m, seq))
		if isConflict(err) && try < 5 {
			continue // someone else wrote it meanwhile: look again
		}
		if err != nil {
			return fmt.Errorf("%w: set target %q paused=%v: %w", storage.ErrUnavailable, target, paused, err)
		}
		return nil
	}
}

// pauseTombstoneTTL is how long a resume's tombstone stays.
const pauseTombstoneTTL = time.Minute

// Paused returns the paused targets (storage.Store): one read per target
// ever paused.
func (s *Store) Paused(ctx context.Context) (map[string]time.Time, error) {
	if err := s.check(); err != nil {
		return nil, err
	}
	out := map[string]time.Time{}
	var bad error
	err := s.scanByGet(ctx, s.p+"t.*", func(subj string, r rec) bool {
		if r.del {
			return true
		}
		var p pauseRec
		if err := json.Unmarshal(r.data, &p); err != nil {
			bad = fmt.Errorf("paused target record %s: %w", subj, err)
			return false
		}
		out[p.Target] = p.PausedAt
		return true
	})
	if err == nil {
		err = bad
	}
	if err != nil {
		return nil, err
	}
	return out, nil
}
