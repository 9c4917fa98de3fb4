package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sort"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// rcTarget is the target of the relay crash test. It records, per
// CloudEvent id, how often the event arrived (outside of down mode) and
// how often it was processed (answered 200 after the work), and behaves
// by mode: slow (work takes a while), down (503) or up (200 at once).
type rcTarget struct {
	*httptest.Server
	mode     atomic.Value // string
	inflight atomic.Int64

	mu        sync.Mutex
	received  map[string]int // arrived while slow or up
	processed map[string]int // answered 200
	cut       int            // slow requests abandoned by the relay mid-way
	refused   map[string]int // answered 503
}

const rcSlowWork = 150 * time.Millisecond

func newRCTarget(t *testing.T) *rcTarget {
	tg := &rcTarget{received: map[string]int{}, processed: map[string]int{}, refused: map[string]int{}}
	tg.mode.Store("slow")
	tg.Server = httptest.NewServer(http.HandlerFunc(tg.serve))
	t.Cleanup(tg.Close)
	return tg
}

func (tg *rcTarget) serve(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body) // read first: then net/http notices a dead client
	if err != nil {
		return
	}
	var ce struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal(body, &ce); err != nil || ce.ID == "" {
		http.Error(w, "not a CloudEvent", http.StatusBadRequest)
		return
	}
	mode := tg.mode.Load().(string)
	if mode == "down" {
		tg.mu.Lock()
		tg.refused[ce.ID]++
		tg.mu.Unlock()
		w.WriteHeader(http.StatusServiceUnavailable)
		return
	}
	tg.mu.Lock()
	tg.received[ce.ID]++
	tg.mu.Unlock()
	if mode == "slow" {
		tg.inflight.Add(1)
		defer tg.inflight.Add(-1)
		select {
		case <-time.After(rcSlowWork):
		case <-r.Context().Done():
			tg.mu.Lock()
			tg.cut++
			tg.mu.Unlock()
			return
		}
	}
	tg.mu.Lock()
	tg.processed[ce.ID]++
	tg.mu.Unlock()
}

// counts returns how many distinct ids were processed and refused.
func (tg *rcTarget) counts() (processed, refused int) {
	tg.mu.Lock()
	defer tg.mu.Unlock()
	return len(tg.processed), len(tg.refused)
}

// snapshot copies one of the target's maps.
func (tg *rcTarget) snapshot(m map[string]int) map[string]int {
	tg.mu.Lock()
	defer tg.mu.Unlock()
	out := make(map[string]int, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// rcDuplicates counts the extra deliveries in m and names their ids.
func rcDuplicates(m map[string]int) (int, []string) {
	n := 0
	var ids []string
	for id, c := range m {
		if c > 1 {
			n += c - 1
			ids = append(ids, fmt.Sprintf("%s×%d", id, c))
		}
	}
	sort.Strings(ids)
	return n, ids
}

// rcConfig writes the crash test's config: cliConfig's with JSON logs, and
// one target taking every event with fast retries and a long timeout.
func rcConfig(t *testing.T, dataDir, targetURL string) string {
	t.Helper()
	return cliWriteConfig(t, cliConfigText(dataDir, "json", false)+fmt.Sprintf(`targets:
  t:
    url: %s
    timeout: 30s
    max_in_flight: 4
    retry: {max_attempts: 10000, initial_backoff: 20ms, max_backoff: 200ms}
routes:
  - name: all
    targets: [t]
`, targetURL))
}

// rcWait polls cond every 10ms for up to 30s.
func rcWait(t *testing.T, p *cliProc, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s\n%s", what, p.Log())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestRelayCrashDeliversEverything: SIGKILL the server while deliveries
// are in flight to a slow target, and again while the target is down;
// after the last restart every accepted event reaches the target
// (at-least-once). Duplicates caused by the crashes are counted and logged.
func TestRelayCrashDeliversEverything(t *testing.T) {
	const (
		beforeFirstKill  = 40 // events accepted while the target is slow
		beforeSecondKill = 20 // events accepted while the target is down
	)
	tg := newRCTarget(t)
	cfgPath := rcConfig(t, t.TempDir(), tg.URL)
	env := cliEnv("SECRET=" + cliSecret)
	signer := cliSigner(t, cliSecret)
	client := &http.Client{Timeout: 10 * time.Second}
	var accepted []string
	seq := 0
	send := func(p *cliProc, n int) {
		t.Helper()
		for range n {
			seq++
			body := fmt.Appendf(nil, `{"event":"video.completed","video_id":"rc-%d","created_at":%d}`, seq, time.Now().Unix())
			h, err := signer.Sign(body, time.Now())
			if err != nil {
				t.Fatal(err)
			}
			status, out, err := cliPost(client, "http://"+p.addr+"/webhooks/sp", h, body)
			if err != nil || status != http.StatusOK || out["status"] != "accepted" {
				t.Fatalf("POST: %d %v %v\n%s", status, out, err, p.Log())
			}
			accepted = append(accepted, out["id"])
		}
	}

	// 1. Slow target: kill while deliveries are in flight.
	p := cliServe(t, env, cfgPath)
	send(p, beforeFirstKill)
	rcWait(t, p, "some deliveries done and others in flight", func() bool {
		n, _ := tg.counts()
		return n >= 8 && tg.inflight.Load() > 0
	})
	inflightAtKill := tg.inflight.Load()
	p.kill(t)
	processedAtKill, _ := tg.counts()

	// 2. Target down: accept more, kill while they are being retried.
	tg.mode.Store("down")
	p = cliServe(t, env, cfgPath)
	send(p, beforeSecondKill)
	newIDs := accepted[beforeFirstKill:]
	rcWait(t, p, "a refused attempt of every event accepted while down", func() bool {
		tg.mu.Lock()
		defer tg.mu.Unlock()
		for _, id := range newIDs {
			if tg.refused[id] == 0 {
				return false
			}
		}
		return true
	})
	p.kill(t)
	_, refusedIDs := tg.counts()

	// 3. Target up: the next server delivers everything.
	tg.mode.Store("up")
	p = cliServe(t, env, cfgPath)
	rcWait(t, p, "every accepted event processed by the target", func() bool {
		got := tg.snapshot(tg.processed)
		for _, id := range accepted {
			if got[id] == 0 {
				return false
			}
		}
		return true
	})
	if code := p.stop(t, syscall.SIGTERM); code != 0 {
		t.Errorf("exit code after SIGTERM = %d, want 0\n%s", code, p.Log())
	}

	processed, received := tg.snapshot(tg.processed), tg.snapshot(tg.received)
	lost := 0
	for _, id := range accepted {
		if processed[id] == 0 {
			lost++
			t.Errorf("accepted event %s was never processed (lost)", id)
		}
	}
	want := map[string]bool{}
	for _, id := range accepted {
		want[id] = true
	}
	for id := range received {
		if !want[id] {
			t.Errorf("target received %s, which was never accepted", id)
		}
	}
	tg.mu.Lock()
	cut := tg.cut
	tg.mu.Unlock()
	dupReceived, dupReceivedIDs := rcDuplicates(received)
	dupProcessed, dupProcessedIDs := rcDuplicates(processed)
	t.Logf("accepted %d events; first kill with %d requests in flight at the slow target (%d events processed by then); "+
		"second kill after %d distinct events were refused (503) while down", len(accepted), inflightAtKill, processedAtKill, refusedIDs)
	t.Logf("after the restarts %d of %d accepted events were processed, %d lost. Duplicates caused by the crashes: "+
		"%d received twice or more %v (%d slow requests were cut by the first kill and re-sent), %d processed twice %v",
		len(accepted)-lost, len(accepted), lost, dupReceived, dupReceivedIDs, cut, dupProcessed, dupProcessedIDs)
}
