//go:build probe

// The hostile-conditions probe of issue 12, rerun on demand (not in CI):
//
//	go test -tags probe -run TestProbe -v -timeout 20m ./cmd/hookrelay/
//
// Everything runs on 127.0.0.1 against the real binary; each part logs
// its figures.
package main

import (
	"bytes"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// TestProbeKillLoop: kills per sync mode with SIGKILL under load, then
// every webhook answered 200 before a kill is re-sent: each must be a
// duplicate with its first id (else it was lost).
func TestProbeKillLoop(t *testing.T) {
	for _, syncOn := range []bool{false, true} {
		t.Run(fmt.Sprintf("sync=%v", syncOn), func(t *testing.T) {
			const kills = 5
			dataDir := t.TempDir()
			cfgPath := cliConfig(t, dataDir, "text", syncOn)
			env := cliEnv("SECRET=" + cliSecret)
			signer := cliSigner(t, cliSecret)
			type sentReq struct {
				h    http.Header
				body []byte
				id   string
			}
			var (
				mu     sync.Mutex
				acked  []sentReq
				next   atomic.Int64
				failed atomic.Int64
			)
			start := time.Now()
			for round := range kills {
				p := cliServe(t, env, cfgPath)
				url := "http://" + p.addr + "/webhooks/sp"
				client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 8}, Timeout: 10 * time.Second}
				var dead atomic.Bool
				var wg sync.WaitGroup
				for range 8 {
					wg.Go(func() {
						for !dead.Load() {
							n := next.Add(1)
							body := fmt.Appendf(nil, `{"event":"video.completed","video_id":"kill-%d","created_at":%d}`, n, start.Unix())
							h, _ := signer.Sign(body, start)
							status, out, err := cliPost(client, url, h, body)
							if err != nil {
								failed.Add(1)
								continue
							}
							if status == http.StatusOK && out["status"] == "accepted" {
								mu.Lock()
								acked = append(acked, sentReq{h, body, out["id"]})
								mu.Unlock()
							}
						}
					})
				}
				time.Sleep(time.Duration(300+rand.IntN(700)) * time.Millisecond)
				dead.Store(true)
				p.kill(t)
				wg.Wait()
				client.CloseIdleConnections()
				mu.Lock()
				t.Logf("round %d: %d acknowledged so far", round+1, len(acked))
				mu.Unlock()
			}
			p := cliServe(t, env, cfgPath)
			url := "http://" + p.addr + "/webhooks/sp"
			client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 8}, Timeout: 10 * time.Second}
			lost, changed := 0, 0
			var lmu sync.Mutex
			var wg sync.WaitGroup
			work := make(chan sentReq)
			for range 8 {
				wg.Go(func() {
					for r := range work {
						status, out, err := cliPost(client, url, r.h, r.body)
						lmu.Lock()
						switch {
						case err != nil || status != http.StatusOK:
							t.Errorf("re-send: %d %v %v", status, out, err)
						case out["status"] != "duplicate":
							lost++
						case out["id"] != r.id:
							changed++
						}
						lmu.Unlock()
					}
				})
			}
			for _, r := range acked {
				work <- r
			}
			close(work)
			wg.Wait()
			t.Logf("FIGURE kill-9 sync=%v: %d kills, %d acknowledged events, %d lost, %d with another id (%d requests cut by the kills)",
				syncOn, kills, len(acked), lost, changed, failed.Load())
			if lost+changed > 0 {
				t.Errorf("lost %d, changed %d", lost, changed)
			}
			p.stop(t, syscall.SIGTERM)
		})
	}
}

// TestProbeIdenticalBursts: 10 rounds of 50 identical requests at once:
// one accepted, 49 duplicates with its id, one relay each.
func TestProbeIdenticalBursts(t *testing.T) {
	var hits sync.Map
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		v, _ := hits.LoadOrStore(r.Header.Get("webhook-id")+r.Header.Get("Hookrelay-Attempt"), new(atomic.Int64))
		v.(*atomic.Int64).Add(1)
	}))
	defer target.Close()
	cfg := cliConfigText(t.TempDir(), "text", false) + fmt.Sprintf("targets:\n  t1:\n    url: %s\n    signing_secret: whsec_cHJvYmU=\nroutes:\n  - targets: [t1]\n", target.URL)
	env := cliEnv("SECRET=" + cliSecret)
	p := cliServe(t, env, cliWriteConfig(t, cfg))
	url := "http://" + p.addr + "/webhooks/sp"
	signer := cliSigner(t, cliSecret)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}, Timeout: 10 * time.Second}
	var okRounds int
	var ids []string
	for round := range 10 {
		body := fmt.Appendf(nil, `{"event":"video.completed","video_id":"burst-%d","created_at":%d}`, round, time.Now().Unix())
		h, _ := signer.Sign(body, time.Now())
		var mu sync.Mutex
		counts := map[string]int{}
		seen := map[string]bool{}
		var wg sync.WaitGroup
		gate := make(chan struct{})
		for range 50 {
			wg.Go(func() {
				<-gate
				status, out, err := cliPost(client, url, h, body)
				mu.Lock()
				defer mu.Unlock()
				if err != nil {
					counts["error"]++
					return
				}
				counts[fmt.Sprintf("%d %s", status, out["status"])]++
				seen[out["id"]] = true
			})
		}
		close(gate)
		wg.Wait()
		if counts["200 accepted"] == 1 && counts["200 duplicate"] == 49 && len(seen) == 1 {
			okRounds++
		} else {
			t.Errorf("round %d: %v, %d ids", round, counts, len(seen))
		}
		for id := range seen {
			ids = append(ids, id)
		}
	}
	time.Sleep(2 * time.Second)
	relays := 0
	hits.Range(func(k, v any) bool { relays += int(v.(*atomic.Int64).Load()); return true })
	t.Logf("FIGURE identical bursts: %d of 10 rounds gave exactly 1 accepted + 49 duplicates with one id; %d relays for %d events", okRounds, relays, len(ids))
	if relays != len(ids) {
		t.Errorf("%d relays, want %d", relays, len(ids))
	}
	p.stop(t, syscall.SIGTERM)
}

// TestProbeSlowloris: 2,000 connections that trickle their headers and
// 500 that trickle a body, while healthy webhooks measure latency; the
// slow ones are cut by read_header_timeout / min_body_rate.
func TestProbeSlowloris(t *testing.T) {
	raiseNoFile(t, 8000)
	env := cliEnv("SECRET=" + cliSecret)
	p := cliServe(t, env, cliConfig(t, t.TempDir(), "text", false))
	addr := p.addr
	signer := cliSigner(t, cliSecret)
	stop := make(chan struct{})
	var (
		cutHeaders, cutBodies atomic.Int64
		hdrTimes, bodyTimes   []time.Duration
		mu                    sync.Mutex
		wg                    sync.WaitGroup
		body408               atomic.Int64
	)
	for i := range 2500 {
		wg.Go(func() {
			c, err := net.Dial("tcp", addr)
			if err != nil {
				return
			}
			defer c.Close()
			begin := time.Now()
			slowBody := i >= 2000
			if slowBody {
				fmt.Fprintf(c, "POST /webhooks/sp HTTP/1.1\r\nHost: x\r\nContent-Length: 10000\r\n\r\n")
			} else {
				fmt.Fprintf(c, "POST /webhooks/sp HTTP/1.1\r\nHost: x\r\n")
			}
			go func() {
				for {
					select {
					case <-stop:
						return
					case <-time.After(time.Second):
					}
					if slowBody {
						c.Write([]byte("x"))
					} else {
						c.Write([]byte("X-A: b\r\n"))
					}
				}
			}()
			c.SetReadDeadline(time.Now().Add(40 * time.Second))
			buf, _ := io.ReadAll(c)
			el := time.Since(begin)
			mu.Lock()
			defer mu.Unlock()
			if slowBody {
				cutBodies.Add(1)
				bodyTimes = append(bodyTimes, el)
				if bytes.HasPrefix(buf, []byte("HTTP/1.1 408")) {
					body408.Add(1)
				}
			} else {
				cutHeaders.Add(1)
				hdrTimes = append(hdrTimes, el)
			}
		})
	}
	time.Sleep(time.Second)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4}, Timeout: 10 * time.Second}
	var lat []time.Duration
	okN := 0
	for n := range 500 {
		body := fmt.Appendf(nil, `{"event":"video.completed","video_id":"loris-%d","created_at":%d}`, n, time.Now().Unix())
		h, _ := signer.Sign(body, time.Now())
		t0 := time.Now()
		status, _, err := cliPost(client, "http://"+addr+"/webhooks/sp", h, body)
		lat = append(lat, time.Since(t0))
		if err == nil && status == http.StatusOK {
			okN++
		}
		time.Sleep(10 * time.Millisecond)
	}
	wg.Wait()
	close(stop)
	slices.Sort(lat)
	slices.Sort(hdrTimes)
	slices.Sort(bodyTimes)
	q := func(d []time.Duration, f float64) time.Duration {
		if len(d) == 0 {
			return 0
		}
		return d[min(len(d)-1, int(f*float64(len(d))))].Round(10 * time.Millisecond)
	}
	t.Logf("FIGURE slowloris: %d slow-header conns cut after median %v (max %v); %d slow-body conns cut after median %v (max %v), %d with a 408; healthy: %d/500 200, p50 %v p99 %v max %v",
		cutHeaders.Load(), q(hdrTimes, .5), q(hdrTimes, 1), cutBodies.Load(), q(bodyTimes, .5), q(bodyTimes, 1), body408.Load(),
		okN, lat[len(lat)/2].Round(10*time.Microsecond), lat[len(lat)*99/100].Round(10*time.Microsecond), lat[len(lat)-1].Round(10*time.Microsecond))
	if okN < 500 {
		t.Errorf("healthy webhooks: %d of 500 got 200", okN)
	}
	p.stop(t, syscall.SIGTERM)
}

// TestProbeHugeAndMalformed: a 100 MiB body (announced and chunked), 1 MB
// of headers, a 100,000-deep JSON body (signed): clean 4xx answers, and
// the server is still fine afterwards.
func TestProbeHugeAndMalformed(t *testing.T) {
	env := cliEnv("SECRET=" + cliSecret)
	p := cliServe(t, env, cliConfig(t, t.TempDir(), "text", false))
	url := "http://" + p.addr + "/webhooks/sp"
	signer := cliSigner(t, cliSecret)
	client := &http.Client{Timeout: 60 * time.Second}
	results := map[string]string{}
	do := func(name string, req *http.Request) {
		t0 := time.Now()
		resp, err := client.Do(req)
		if err != nil {
			results[name] = "error: " + err.Error()
			return
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		results[name] = fmt.Sprintf("%d in %v", resp.StatusCode, time.Since(t0).Round(time.Millisecond))
	}
	big := bytes.Repeat([]byte("a"), 100<<20)
	req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(big))
	do("100 MiB body with Content-Length", req)
	req, _ = http.NewRequest(http.MethodPost, url, io.MultiReader(bytes.NewReader(big)))
	req.ContentLength = -1
	do("100 MiB body chunked", req)
	req, _ = http.NewRequest(http.MethodPost, url, strings.NewReader("{}"))
	req.Header.Set("X-Big", strings.Repeat("h", 1<<20))
	do("1 MB header", req)
	deep := []byte(`{"event":"video.completed","video_id":"deep","created_at":1,"x":` + strings.Repeat("[", 100_000) + strings.Repeat("]", 100_000) + `}`)
	h, _ := signer.Sign(deep, time.Now())
	req, _ = http.NewRequest(http.MethodPost, url, bytes.NewReader(deep))
	req.Header = h
	do("100,000-deep JSON, signed", req)
	deepObj := []byte(strings.Repeat(`{"a":`, 100_000) + "1" + strings.Repeat("}", 100_000))
	h, _ = signer.Sign(deepObj, time.Now())
	req, _ = http.NewRequest(http.MethodPost, url, bytes.NewReader(deepObj))
	req.Header = h
	do("100,000-deep objects, signed", req)
	invalid := []byte("{\"event\":\"video.completed\",\"video_id\":\"utf\",\"created_at\":1,\"t\":\"\xff\xfe\"}")
	h, _ = signer.Sign(invalid, time.Now())
	req, _ = http.NewRequest(http.MethodPost, url, bytes.NewReader(invalid))
	req.Header = h
	do("invalid UTF-8, signed", req)
	for _, k := range slices.Sorted(func(yield func(string) bool) {
		for k := range results {
			if !yield(k) {
				return
			}
		}
	}) {
		t.Logf("FIGURE huge/malformed: %s -> %s", k, results[k])
	}
	body := []byte(`{"event":"video.completed","video_id":"after","created_at":1}`)
	h, _ = signer.Sign(body, time.Now())
	if status, _, err := cliPost(client, url, h, body); err != nil || status != http.StatusOK {
		t.Errorf("webhook afterwards: %d %v", status, err)
	}
	if rss := vmRSS(t, p.cmd.Process.Pid); rss > 0 {
		t.Logf("FIGURE huge/malformed: server RSS afterwards %d MB", rss>>20)
	}
	if strings.Contains(p.Log(), "panic") || strings.Contains(p.Log(), "goroutine ") {
		t.Errorf("server log shows a crash:\n%s", p.Log())
	}
	p.stop(t, syscall.SIGTERM)
}
