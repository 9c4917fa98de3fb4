package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// mountTmpfs mounts a tmpfs of size bytes on a fresh directory (unmounted
// at the end of the test), or skips the test, loudly, when it cannot.
func mountTmpfs(t *testing.T, size int64) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("NOT RUN: this test mounts a small tmpfs and needs root (CI runs it as root); the full-disk behaviour was NOT tested here")
	}
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", fmt.Sprintf("size=%d", size), "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("NOT RUN: cannot mount a tmpfs (%v: %s); the full-disk behaviour was NOT tested here", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", dir, err, out)
		}
	})
	return dir
}

func freeBytes(t *testing.T, dir string) int64 {
	t.Helper()
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		t.Fatal(err)
	}
	return int64(st.Bavail) * int64(st.Bsize)
}

// fillTo writes zeros to path until dir has at most free bytes left.
func fillTo(t *testing.T, dir, path string, free int64) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	chunk := make([]byte, 256<<10)
	for freeBytes(t, dir) > free+int64(len(chunk)) {
		if _, err := f.Write(chunk); err != nil {
			t.Fatalf("fill: %v", err)
		}
	}
}

// TestDiskFullTmpfs: on a 64 MiB tmpfs that another process fills up
// while webhooks arrive, the real binary answers 200 or 503 (with
// Retry-After), never crashes or drops a connection; /readyz says 503
// with the reason and figures and the metric shows it; once space is
// freed it answers 200 again within 30s by itself; on a clean stop every
// acknowledged event is still there. Then, with the disk full again,
// `serve` refuses to start with one clear line and `events list` still
// reads the store.
func TestDiskFullTmpfs(t *testing.T) {
	const minFree = 24 << 20
	mnt := mountTmpfs(t, 64<<20)
	dataDir := filepath.Join(mnt, "data")
	filler := filepath.Join(mnt, "filler")
	cfgPath := cliWriteConfig(t, strings.Replace(cliConfigText(dataDir, "text", false),
		"  sync: false\n", fmt.Sprintf("  sync: false\n  min_free_bytes: %d\n", minFree), 1))
	env := cliEnv("SECRET=" + cliSecret)
	p := cliServe(t, env, cfgPath, "public", "admin")
	base := "http://" + p.addr
	signer := cliSigner(t, cliSecret)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 8}, Timeout: 10 * time.Second}

	pad := strings.Repeat("p", 2000)
	load := startAckLoad(t, 4, func(n int64) (int, map[string]string, error) {
		body := fmt.Appendf(nil, `{"event":"video.completed","video_id":"full-%d","created_at":%d,"pad":%q}`, n, time.Now().Unix(), pad)
		h, _ := signer.Sign(body, time.Now())
		return cliPost(client, base+"/webhooks/sp", h, body)
	})
	readyz := func() (int, map[string]any) {
		resp, err := client.Get(base + "/readyz")
		if err != nil {
			t.Fatalf("/readyz: %v\n%s", err, p.Log())
		}
		defer resp.Body.Close()
		var m map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&m)
		return resp.StatusCode, m
	}
	waitCond := func(what string, d time.Duration, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(d)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("timed out after %v waiting for %s\n%s", d, what, p.Log())
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	waitCond("some events accepted", 10*time.Second, func() bool { return load.n200.Load() >= 100 })

	// Another process fills the disk to between the hard floor (half the
	// minimum) and the minimum: the store must stop taking events.
	fillTo(t, mnt, filler, minFree*2/3)
	waitCond("/readyz 503", 10*time.Second, func() bool { code, _ := readyz(); return code == http.StatusServiceUnavailable })
	code, ready := readyz()
	if !strings.Contains(fmt.Sprint(ready["reason"]), "disk nearly full") || ready["free_bytes"] == nil || ready["min_free_bytes"] != float64(minFree) {
		t.Errorf("/readyz = %d %v, want the reason and the figures", code, ready)
	}
	was503 := load.n503.Load()
	waitCond("webhooks answered 503", 10*time.Second, func() bool { return load.n503.Load() > was503+20 })
	body := []byte(`{"event":"video.completed","video_id":"full-probe","created_at":1}`)
	h, _ := signer.Sign(body, time.Now())
	req, _ := http.NewRequest(http.MethodPost, base+"/webhooks/sp", bytes.NewReader(body))
	req.Header = h
	if resp, err := client.Do(req); err != nil || resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Errorf("webhook on the full disk: %v %v, want 503 with Retry-After", resp, err)
	} else {
		resp.Body.Close()
	}
	if m := scrape(t, client, "http://"+p.addrs["admin"]+"/metrics"); !strings.Contains(m, "hookrelay_storage_low_space 1") || !strings.Contains(m, "hookrelay_storage_free_bytes ") {
		t.Errorf("metrics do not show the low space:\n%s", grepLines(m, "hookrelay_storage"))
	}
	if !strings.Contains(p.Log(), "storage nearly full") {
		t.Errorf("no error line about the full disk:\n%s", p.Log())
	}
	time.Sleep(500 * time.Millisecond) // keep sending into the full disk

	// Space comes back: 200 again within 30s, by itself.
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	freed := time.Now()
	waitCond("200 again after space came back", 30*time.Second, func() bool { return load.lastOK.Load() > freed.UnixNano() })
	t.Logf("200 again %v after the space came back", time.Since(freed).Round(time.Millisecond))
	waitCond("/readyz 200", 30*time.Second, func() bool { code, _ := readyz(); return code == http.StatusOK })
	acked, bad := load.result()
	client.CloseIdleConnections()
	if len(bad) > 0 {
		t.Errorf("%d answers other than 200/503 (first: %s)", len(bad), bad[0])
	}
	t.Logf("%d accepted, %d answered 503", len(acked), load.n503.Load())
	if got := p.stop(t, syscall.SIGTERM); got != 0 {
		t.Fatalf("serve exit code %d after SIGTERM\n%s", got, p.Log())
	}

	// Full again: serve refuses to open the store with one clear line;
	// events list reads it (read-only) and finds every acknowledged event.
	fillTo(t, mnt, filler, minFree/2)
	res := cliRun(t, env, "serve", "--config", cfgPath)
	if res.code != 1 || !strings.Contains(res.stderr, "disk nearly full") || !strings.Contains(res.stderr, "storage.min_free_bytes") ||
		strings.Contains(res.stderr, "SIGBUS") || strings.Contains(res.stderr, "goroutine") {
		t.Errorf("serve on a full disk: exit %d, stderr %q; want exit 1 with a clear message", res.code, res.stderr)
	}
	res = cliRun(t, env, "events", "list", "--config", cfgPath, "--json", "--limit", "1000000")
	if res.code != 0 {
		t.Fatalf("events list on a full disk: exit %d: %s", res.code, res.stderr)
	}
	seen := map[string]bool{}
	sc := bufio.NewScanner(strings.NewReader(res.stdout))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var ev struct{ ID string }
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			t.Fatalf("events list line %q: %v", sc.Text(), err)
		}
		seen[ev.ID] = true
	}
	missing := 0
	for id := range acked {
		if !seen[id] {
			missing++
		}
	}
	if missing > 0 {
		t.Errorf("%d of %d acknowledged events are missing", missing, len(acked))
	}

	// Killed (not stopped) and then the disk fills: Badger must replay its
	// log to open the store, which needs space. Reading fails with one
	// clear line, never a crash; with space back everything is there.
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	p = cliServe(t, env, cfgPath)
	p.kill(t)
	fillTo(t, mnt, filler, minFree/2)
	res = cliRun(t, env, "events", "list", "--config", cfgPath, "--json", "--limit", "1")
	if res.code != 1 || !strings.Contains(res.stderr, "not closed cleanly") || strings.Contains(res.stderr, "goroutine") {
		t.Errorf("events list on a full disk after a kill: exit %d, stderr %q; want exit 1 with a clear message", res.code, res.stderr)
	}
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	res = cliRun(t, env, "events", "list", "--config", cfgPath, "--json", "--limit", "1000000")
	if got := strings.Count(res.stdout, "\n"); res.code != 0 || got < len(acked) {
		t.Errorf("events list with space back: exit %d, %d events, want at least %d: %s", res.code, got, len(acked), res.stderr)
	}
}

func scrape(t *testing.T, c *http.Client, url string) string {
	t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// ackLoad sends webhooks from a few goroutines until stopped and keeps
// the answers: the ids accepted, the count of 503s, anything else.
type ackLoad struct {
	n200, n503 atomic.Int64
	lastOK     atomic.Int64 // unix nanos of the last 200

	mu    sync.Mutex
	acked map[string]bool
	bad   []string

	stopc chan struct{}
	once  sync.Once
	wg    sync.WaitGroup
}

// startAckLoad runs senders goroutines, each calling post with the next
// request number (from 1) until the load is stopped (at the end of the
// test at the latest) or more than 20 answers were neither 200 nor 503.
func startAckLoad(t *testing.T, senders int, post func(n int64) (int, map[string]string, error)) *ackLoad {
	l := &ackLoad{acked: map[string]bool{}, stopc: make(chan struct{})}
	var next atomic.Int64
	for range senders {
		l.wg.Go(func() {
			for {
				select {
				case <-l.stopc:
					return
				default:
				}
				status, out, err := post(next.Add(1))
				l.mu.Lock()
				switch {
				case err != nil:
					l.bad = append(l.bad, "transport: "+err.Error())
				case status == http.StatusOK && out["status"] == "accepted":
					l.acked[out["id"]] = true
					l.n200.Add(1)
					l.lastOK.Store(time.Now().UnixNano())
				case status == http.StatusServiceUnavailable:
					l.n503.Add(1)
				default:
					l.bad = append(l.bad, fmt.Sprintf("status %d %v", status, out))
				}
				nbad := len(l.bad)
				l.mu.Unlock()
				if nbad > 20 {
					return
				}
				time.Sleep(time.Millisecond)
			}
		})
	}
	t.Cleanup(l.stop)
	return l
}

func (l *ackLoad) stop() {
	l.once.Do(func() { close(l.stopc) })
	l.wg.Wait()
}

// result stops the load and returns the ids accepted and the answers
// that were neither 200 nor 503.
func (l *ackLoad) result() (acked map[string]bool, bad []string) {
	l.stop()
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.acked, l.bad
}
