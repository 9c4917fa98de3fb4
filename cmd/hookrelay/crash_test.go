package main

import (
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// crashRequest is one webhook of the crash test and what the first server
// answered to it.
type crashRequest struct {
	h    http.Header
	body []byte

	status   int    // 0: no answer (transport error)
	answer   string // "accepted", "duplicate", ...
	id       string
	errorMsg string
}

// TestCrashLosesNothingAnswered: SIGKILL the server in the middle of a
// stream of distinct webhooks; after a restart on the same directory,
// every webhook that was answered 200 is a duplicate with the same id (it
// was stored, once). Webhooks that got no answer may go either way.
func TestCrashLosesNothingAnswered(t *testing.T) {
	tests := []struct {
		name string
		sync bool
	}{
		{"sync off", false},
		{"sync on", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			crashRun(t, tt.sync)
		})
	}
}

func crashRun(t *testing.T, syncWrites bool) {
	const (
		senders     = 8
		killAfter   = 300  // accepted answers before SIGKILL
		maxRequests = 5000 // bound, should the kill not stop the stream
	)
	dataDir := t.TempDir()
	cfgPath := cliConfig(t, dataDir, "text", syncWrites)
	env := cliEnv("SECRET=" + cliSecret)
	signer := cliSigner(t, cliSecret)

	p := cliServe(t, env, cfgPath)
	url := "http://" + p.addr + "/webhooks/sp"
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: senders}, Timeout: 10 * time.Second}

	var (
		mu       sync.Mutex
		requests []*crashRequest
		next     atomic.Int64
		accepted atomic.Int64
		killed   atomic.Bool
		killOnce sync.Once
		wg       sync.WaitGroup
		// Transport errors before the kill: the server failed on its own.
		earlyErrs  atomic.Int64
		firstEarly atomic.Value // string
	)
	kill := func() {
		killOnce.Do(func() {
			killed.Store(true)
			_ = p.cmd.Process.Kill() // SIGKILL
		})
	}
	start := time.Now()
	for range senders {
		wg.Go(func() {
			for {
				n := next.Add(1)
				if n > maxRequests {
					return
				}
				body := fmt.Appendf(nil, `{"event":"video.completed","video_id":"crash-%d","created_at":%d,"data":{"n":%d}}`, n, start.Unix(), n)
				h, err := signer.Sign(body, start)
				if err != nil {
					t.Error(err)
					return
				}
				r := &crashRequest{h: h, body: body}
				mu.Lock()
				requests = append(requests, r)
				mu.Unlock()
				status, out, err := cliPost(client, url, h, body)
				if err != nil {
					r.errorMsg = err.Error()
					if !killed.Load() {
						// Not the kill's doing (killed is set before the
						// kill): the server failed under load by itself.
						if earlyErrs.Add(1) == 1 {
							firstEarly.Store(fmt.Sprintf("webhook %d: %v", n, err))
						}
					}
					return
				}
				r.status, r.answer, r.id = status, out["status"], out["id"]
				if status == http.StatusOK && r.answer == "accepted" && accepted.Add(1) == killAfter {
					kill()
				}
			}
		})
	}
	wg.Wait()
	kill() // in case the stream ended first
	<-p.done
	client.CloseIdleConnections()

	var answered, unanswered, other int
	for _, r := range requests {
		switch {
		case r.status == http.StatusOK && r.answer == "accepted":
			answered++
		case r.status == 0:
			unanswered++
		default:
			other++ // 503s while going down, if any
		}
	}
	t.Logf("before the crash: %d sent, %d accepted, %d unanswered, %d other", len(requests), answered, unanswered, other)
	if n := earlyErrs.Load(); n > 0 {
		t.Fatalf("%d requests failed before the kill (first: %s)\n%s", n, firstEarly.Load(), p.Log())
	}
	if answered < killAfter {
		t.Fatalf("only %d webhooks were accepted before the kill, want at least %d\n%s", answered, killAfter, p.Log())
	}
	for _, r := range requests {
		if r.status == http.StatusOK && r.answer != "accepted" {
			t.Errorf("distinct webhook answered %q", r.answer)
		}
	}

	p2 := cliServe(t, env, cfgPath)
	url = "http://" + p2.addr + "/webhooks/sp"
	var lost, changed, resentUnanswered int
	for _, r := range requests {
		if r.status != 0 && r.status != http.StatusOK {
			continue
		}
		status, out, err := cliPost(client, url, r.h, r.body)
		if err != nil || status != http.StatusOK {
			t.Fatalf("re-send after restart: %d %v %v\n%s", status, out, err, p2.Log())
		}
		if r.status == 0 {
			resentUnanswered++
			if out["status"] != "accepted" && out["status"] != "duplicate" {
				t.Errorf("unanswered webhook re-sent: %v", out)
			}
			continue
		}
		switch {
		case out["status"] != "duplicate":
			lost++
		case out["id"] != r.id:
			changed++
		}
	}
	if lost != 0 || changed != 0 {
		t.Errorf("of %d webhooks answered 200 before the crash, %d are new after it (lost) and %d have another id", answered, lost, changed)
	} else {
		t.Logf("after the restart: %d answered-200 webhooks all duplicates with their ids; %d unanswered re-sent", answered, resentUnanswered)
	}

	if got, want := p2.stop(t, syscall.SIGTERM), 0; got != want {
		t.Errorf("exit code after SIGTERM = %d, want %d\n%s", got, want, p2.Log())
	}
}
