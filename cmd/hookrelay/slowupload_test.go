package main

import (
	"bytes"
	"fmt"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// vmRSS returns the resident set size of process pid in bytes.
func vmRSS(t *testing.T, pid int) int64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Skipf("NOT RUN: cannot read /proc/%d/status (%v); the memory bound was NOT tested here", pid, err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, _ := strconv.ParseInt(f[1], 10, 64)
			return kb << 10
		}
	}
	t.Fatal("no VmRSS")
	return 0
}

// raiseNoFile lifts the soft open-files limit to at least n (children
// inherit it).
func raiseNoFile(t *testing.T, n uint64) {
	t.Helper()
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	if lim.Cur >= n {
		return
	}
	lim.Cur = min(max(n, lim.Cur), lim.Max)
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil || lim.Cur < n {
		t.Skipf("NOT RUN: cannot raise the open-files limit to %d (%v, hard limit %d)", n, err, lim.Max)
	}
}

// TestStalledUploadersDoNotStarve: 1,100 unauthenticated connections that
// send most of a 1 MiB body and stall (and come back when cut off) do not
// starve verified webhooks nor memory: of 100 signed webhooks sent
// alongside at least 95 get 200, the server's RSS stays under 600 MB, and
// after the uploaders are gone it is back near its idle size.
func TestStalledUploadersDoNotStarve(t *testing.T) {
	const (
		uploaders = 1100
		webhooks  = 100
		bodyLen   = 1 << 20
		sent      = 900 << 10
	)
	raiseNoFile(t, 3*uploaders+1024)
	cfg := cliConfigText(t.TempDir(), "text", false)
	cfg = strings.Replace(cfg, "  shutdown_timeout: 10s\n", "  shutdown_timeout: 10s\n  read_timeout: 5s\n  body_grace: 500ms\n  min_body_rate: 65536\n", 1)
	env := cliEnv("SECRET=" + cliSecret)
	p := cliServe(t, env, cliWriteConfig(t, cfg))
	pid := p.cmd.Process.Pid
	addr := p.addr
	signer := cliSigner(t, cliSecret)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 16}, Timeout: 15 * time.Second}
	post := func(n int) int {
		body := fmt.Appendf(nil, `{"event":"video.completed","video_id":"healthy-%d","created_at":%d}`, n, time.Now().Unix())
		h, _ := signer.Sign(body, time.Now())
		status, _, err := cliPost(client, "http://"+addr+"/webhooks/sp", h, body)
		if err != nil {
			return 0
		}
		return status
	}
	for i := range 20 { // warm up
		if s := post(-1 - i); s != http.StatusOK {
			t.Fatalf("warm-up webhook: %d", s)
		}
	}
	time.Sleep(200 * time.Millisecond)
	idle := vmRSS(t, pid)

	stop := make(chan struct{})
	var (
		conns   sync.Map
		started atomic.Int64
		cycles  atomic.Int64
		wg      sync.WaitGroup
	)
	head := fmt.Sprintf("POST /webhooks/sp HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n", addr, bodyLen)
	chunk := bytes.Repeat([]byte("x"), 64<<10)
	for i := range uploaders {
		wg.Go(func() {
			for first := true; ; first = false {
				select {
				case <-stop:
					return
				default:
				}
				c, err := net.DialTimeout("tcp", addr, 5*time.Second)
				if err != nil {
					time.Sleep(100 * time.Millisecond)
					continue
				}
				conns.Store(i, c)
				c.SetWriteDeadline(time.Now().Add(10 * time.Second))
				c.Write([]byte(head))
				for n := 0; n < sent; n += len(chunk) {
					if _, err := c.Write(chunk[:min(len(chunk), sent-n)]); err != nil {
						break
					}
				}
				if first {
					started.Add(1)
				}
				cycles.Add(1)
				// Stall: wait for the server to answer or cut us off.
				c.SetReadDeadline(time.Now().Add(30 * time.Second))
				buf := make([]byte, 512)
				for {
					if _, err := c.Read(buf); err != nil {
						break
					}
				}
				c.Close()
				select {
				case <-stop:
					return
				case <-time.After(200 * time.Millisecond):
				}
			}
		})
	}
	var peak atomic.Int64
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		for {
			if r := vmRSS(t, pid); r > peak.Load() {
				peak.Store(r)
			}
			select {
			case <-stop:
				return
			case <-time.After(50 * time.Millisecond):
			}
		}
	}()
	deadline := time.Now().Add(20 * time.Second)
	for started.Load() < uploaders && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	t.Logf("%d uploaders connected and stalled", started.Load())

	var ok, other atomic.Int64
	codes := sync.Map{}
	var hw sync.WaitGroup
	for g := range 10 {
		hw.Go(func() {
			for j := range webhooks / 10 {
				s := post(g*100 + j)
				if s == http.StatusOK {
					ok.Add(1)
				} else {
					other.Add(1)
					v, _ := codes.LoadOrStore(s, new(atomic.Int64))
					v.(*atomic.Int64).Add(1)
				}
				time.Sleep(20 * time.Millisecond)
			}
		})
	}
	hw.Wait()
	attack := vmRSS(t, pid)
	close(stop)
	conns.Range(func(_, c any) bool { c.(net.Conn).Close(); return true })
	wg.Wait()
	<-sampled
	var detail []string
	codes.Range(func(k, v any) bool {
		detail = append(detail, fmt.Sprintf("%v:%d", k, v.(*atomic.Int64).Load()))
		return true
	})
	t.Logf("healthy webhooks: %d of %d got 200 (others %v); uploads made: %d; RSS idle %d MB, peak %d MB, at the end of the attack %d MB",
		ok.Load(), webhooks, detail, cycles.Load(), idle>>20, peak.Load()>>20, attack>>20)
	if ok.Load() < 95 {
		t.Errorf("only %d of %d verified webhooks got 200 beside the stalled uploads, want at least 95", ok.Load(), webhooks)
	}
	if peak.Load() > 600<<20 {
		t.Errorf("server RSS peaked at %d MB, want under 600 MB", peak.Load()>>20)
	}
	near := idle + 48<<20
	var after int64
	for end := time.Now().Add(15 * time.Second); ; {
		if after = vmRSS(t, pid); after <= near || time.Now().After(end) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Logf("RSS after the uploaders are gone: %d MB (idle %d MB)", after>>20, idle>>20)
	if after > near {
		t.Errorf("RSS %d MB after the uploaders left, want back near idle (%d MB + 48 MB)", after>>20, idle>>20)
	}
	if s := post(10_000); s != http.StatusOK {
		t.Errorf("webhook after the attack: %d", s)
	}
	if got := p.stop(t, syscall.SIGTERM); got != 0 {
		t.Errorf("exit code %d after SIGTERM\n%s", got, p.Log())
	}
}
