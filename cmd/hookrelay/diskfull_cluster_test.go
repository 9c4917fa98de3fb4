package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// TestClusterDiskFullTmpfs: three `serve` processes with embedded NATS,
// node n1's store_dir on a 64 MiB tmpfs that another process fills up
// while webhooks arrive at all three. Every node then answers 503 with
// Retry-After (n1's disk holds a replica of every event), never a
// dropped connection; /readyz on every node says 503 and names n1's
// disk; n1's metrics show it; reads go on. Once the space is freed every
// node answers 200 again within 30 s by itself, and every acknowledged
// event is listed.
func TestClusterDiskFullTmpfs(t *testing.T) {
	if testing.Short() {
		t.Skip("cluster test skipped in -short mode")
	}
	const minFree = 24 << 20
	mnt := mountTmpfs(t, 64<<20)
	filler := filepath.Join(mnt, "filler")
	target := newEvTarget(t, http.StatusOK)
	nodes := clDiskCluster(t, mnt, target.URL, minFree, false)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 8}, Timeout: 20 * time.Second}

	load := startAckLoad(t, 3, func(n int64) (int, map[string]string, error) {
		return clPost(t, client, nodes[n%3].url(), "video.completed", fmt.Sprintf("full-%d", n), 1)
	})
	waitCond := func(what string, d time.Duration, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(d)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("timed out after %v waiting for %s", d, what)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	readyz := func(n *clNode) (int, string) { return clReadyz(t, client, n) }
	probe := func(n *clNode, vid string) *http.Response {
		body := fmt.Appendf(nil, `{"event":"video.completed","video_id":%q,"created_at":1}`, vid)
		h, err := cliSigner(t, clSecret).Sign(body, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		req, _ := http.NewRequest(http.MethodPost, n.url(), bytes.NewReader(body))
		req.Header = h
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("webhook to %s: %v", n.name, err)
		}
		resp.Body.Close()
		return resp
	}
	waitCond("some events accepted", 20*time.Second, func() bool { return load.n200.Load() >= 100 })

	// Another process fills n1's disk below storage.min_free_bytes.
	fillTo(t, mnt, filler, minFree*2/3)
	filled := time.Now()
	for i, n := range nodes {
		waitCond(n.name+" answering 503", 15*time.Second, func() bool {
			return probe(n, fmt.Sprintf("probe-%d-%d", i, time.Now().UnixNano())).StatusCode == http.StatusServiceUnavailable
		})
	}
	t.Logf("every node refused new events %v after n1's disk filled", time.Since(filled).Round(time.Millisecond))
	for i, n := range nodes {
		if resp := probe(n, fmt.Sprintf("probe-ra-%d", i)); resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
			t.Errorf("webhook to %s while n1's disk is full: %d, Retry-After %q; want 503 with Retry-After", n.name, resp.StatusCode, resp.Header.Get("Retry-After"))
		}
		code, reason := readyz(n)
		if code != http.StatusServiceUnavailable || !strings.Contains(reason, "disk nearly full") || n.name != "n1" && !strings.Contains(reason, "node n1") {
			t.Errorf("/readyz of %s: %d %s, want 503 naming n1's disk", n.name, code, reason)
		}
	}
	if m := adminMetrics(t, nodes[1].p.addrs["admin"], evToken); !strings.Contains(m, "hookrelay_storage_low_space 1") {
		t.Errorf("n1's metrics do not show the low space:\n%s", grepLines(m, "hookrelay_storage"))
	}
	// With the watch on, JetStream's own limit is the tmpfs's size, not
	// nats-server's 75% of the free space.
	if !strings.Contains(nodes[1].p.Log(), fmt.Sprintf(`"max_store_bytes":%d`, 64<<20)) {
		t.Errorf("n1's JetStream limit is not the filesystem's size:\n%s", grepLines(nodes[1].p.Log(), "embedded nats listening"))
	}
	if !strings.Contains(nodes[0].p.Log(), "a node's disk is nearly full: refusing new events") {
		t.Errorf("no error line on n0 about n1's disk")
	}
	res := cliRun(t, cliEnv(), "cluster", "status", "--config", nodes[0].cfgPath)
	if res.code != 0 || !regexp.MustCompile(`(?m)^n1\s.*\sdisk nearly full: [0-9.]+ MiB free on the filesystem of \S+/nats-[0-9], storage.min_free_bytes is 24.0 MiB$`).MatchString(res.stdout) {
		t.Errorf("cluster status on n0 does not show n1's disk: exit %d\n%s%s", res.code, res.stdout, res.stderr)
	}
	if evs := clEvents(t, nodes[2]); len(evs) < 100 {
		t.Errorf("events list on n2 while n1's disk is full: %d events", len(evs))
	}

	// Space comes back: every node takes events again by itself.
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	freed := time.Now()
	for i, n := range nodes {
		waitCond(n.name+" answering 200 again", 30*time.Second, func() bool {
			return probe(n, fmt.Sprintf("back-%d-%d", i, time.Now().UnixNano())).StatusCode == http.StatusOK
		})
	}
	t.Logf("every node took events again %v after the space came back", time.Since(freed).Round(time.Millisecond))
	waitCond("a sender's 200 after the space came back", 10*time.Second, func() bool { return load.lastOK.Load() > freed.UnixNano() })
	acked, bad := load.result()
	if len(bad) > 0 {
		t.Errorf("%d answers neither 200 nor 503, first: %v", len(bad), bad[:min(len(bad), 5)])
	}
	clCheckListed(t, nodes[0], acked)
	t.Logf("%d accepted, %d refused with 503 while the disk was full", load.n200.Load(), load.n503.Load())
}

// TestClusterDiskENOSPCTmpfs: node n1's store_dir on a 64 MiB tmpfs,
// with storage.min_free_bytes 0 (no watch), filled up completely under
// load: its NATS server turns JetStream off. Every node, n1 included (its
// NATS server passes the writes on to the others), goes on answering 200;
// n1's /readyz says 503 and why. With the space back, a restart of n1 (the
// documented remedy) makes it ready again, and every event accepted at any
// time is delivered and listed.
func TestClusterDiskENOSPCTmpfs(t *testing.T) {
	if testing.Short() {
		t.Skip("cluster test skipped in -short mode")
	}
	mnt := mountTmpfs(t, 64<<20)
	filler := filepath.Join(mnt, "filler")
	target := newEvTarget(t, http.StatusOK)
	nodes := clDiskCluster(t, mnt, target.URL, 0, true)
	// The senders read each node's URL here: n1's changes when it restarts
	// (public listen 127.0.0.1:0), and while it is down its share goes to n0.
	var urls [3]atomic.Pointer[string]
	for i, n := range nodes {
		u := n.url()
		urls[i].Store(&u)
	}
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 8}, Timeout: 20 * time.Second}
	var (
		vmu     sync.Mutex
		vids    []string // of the accepted webhooks
		perNode [3]atomic.Int64
	)
	load := startAckLoad(t, 3, func(n int64) (int, map[string]string, error) {
		i := n % 3
		u := urls[i].Load()
		if u == nil {
			i, u = 0, urls[0].Load()
		}
		vid := fmt.Sprintf("nospc-%d", n)
		status, out, err := clPost(t, client, *u, "video.completed", vid, 1)
		if err == nil && status == http.StatusOK && out["status"] == "accepted" {
			perNode[i].Add(1)
			vmu.Lock()
			vids = append(vids, vid)
			vmu.Unlock()
		}
		return status, out, err
	})
	var lastReady string // n1's last /readyz answer, for a timeout's message
	readyz := func(n *clNode) (int, string) { return clReadyz(t, client, n) }
	waitCond := func(what string, d time.Duration, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(d)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("timed out after %v waiting for %s (n1's last /readyz: %s; %d accepted, %d refused)", d, what, lastReady, load.n200.Load(), load.n503.Load())
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	waitCond("some events accepted", 20*time.Second, func() bool { return load.n200.Load() >= 100 })

	fillAll(t, filler)
	// The next write to n1's disk fails; nats-server then turns JetStream off.
	waitCond("n1's /readyz naming JetStream off", 60*time.Second, func() bool {
		code, reason := readyz(nodes[1])
		lastReady = fmt.Sprint(code, " ", reason)
		return code == http.StatusServiceUnavailable && strings.Contains(reason, "turned JetStream off")
	})
	t.Logf("n1's /readyz: %s", lastReady)
	var before [3]int64
	for i := range before {
		before[i] = perNode[i].Load()
	}
	waitCond("every node answering 200 with n1's JetStream off", 30*time.Second, func() bool {
		for i := range before {
			if perNode[i].Load() < before[i]+20 {
				return false
			}
		}
		return true
	})
	for _, i := range []int{0, 2} {
		if code, reason := readyz(nodes[i]); code != http.StatusOK {
			t.Errorf("/readyz of %s while n1's JetStream is off: %d %s", nodes[i].name, code, reason)
		}
	}

	// Space back, n1 restarted: ready again.
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	urls[1].Store(nil)
	if code := nodes[1].p.stop(t, syscall.SIGTERM); code != 0 {
		t.Errorf("n1 exit code %d after SIGTERM", code)
	}
	clStart(t, nodes[1])
	waitCond("n1 ready again after its restart", 60*time.Second, func() bool {
		code, reason := readyz(nodes[1])
		lastReady = fmt.Sprint(code, " ", reason)
		return code == http.StatusOK
	})
	u := nodes[1].url()
	urls[1].Store(&u)
	was := perNode[1].Load()
	waitCond("n1 answering 200 after its restart", 30*time.Second, func() bool { return perNode[1].Load() > was+20 })
	acked, bad := load.result()
	if len(bad) > 0 {
		t.Errorf("%d answers neither 200 nor 503, first: %v", len(bad), bad[:min(len(bad), 5)])
	}
	vmu.Lock()
	clWaitDelivered(t, target, vids)
	vmu.Unlock()
	clCheckListed(t, nodes[1], acked)
	t.Logf("%d accepted (%d / %d / %d by node), %d refused with 503", len(acked), perNode[0].Load(), perNode[1].Load(), perNode[2].Load(), load.n503.Load())
}

// fillAll writes zeros to path until the filesystem is full.
func fillAll(t *testing.T, path string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	chunk := make([]byte, 64<<10)
	for {
		if _, err := f.Write(chunk); err != nil {
			if errors.Is(err, syscall.ENOSPC) {
				return
			}
			t.Fatalf("fill: %v", err)
		}
	}
}

// clDiskCluster starts three nodes relaying to targetURL, n1 with its
// store_dir on mnt (a new directory for each try at starting them) and
// storage.min_free_bytes minFree: on n1 alone with n1Only, else on all.
func clDiskCluster(t *testing.T, mnt, targetURL string, minFree int64, n1Only bool) []*clNode {
	t.Helper()
	try := 0
	return clStartNew(t, func() []*clNode {
		try++
		nodes := clCluster(t, targetURL, targetURL)
		for i, n := range nodes {
			if n1Only && i != 1 {
				continue
			}
			text, err := os.ReadFile(n.cfgPath)
			if err != nil {
				t.Fatal(err)
			}
			cfg := regexp.MustCompile(`(?m)^  path: "[^"]*"$`).ReplaceAllStringFunc(string(text), func(l string) string {
				return l + fmt.Sprintf("\n  min_free_bytes: %d", minFree)
			})
			if i == 1 {
				cfg = strings.Replace(cfg, "    embedded:\n", fmt.Sprintf("    embedded:\n      store_dir: %q\n", filepath.Join(mnt, fmt.Sprintf("nats-%d", try))), 1)
			}
			if !strings.Contains(cfg, "min_free_bytes") || i == 1 && !strings.Contains(cfg, "store_dir") {
				t.Fatalf("config of %s not changed:\n%s", n.name, cfg)
			}
			if err := os.WriteFile(n.cfgPath, []byte(cfg), 0o600); err != nil {
				t.Fatal(err)
			}
		}
		return nodes
	})
}

// clReadyz returns the status of n's /readyz and its reason.
func clReadyz(t *testing.T, client *http.Client, n *clNode) (int, string) {
	t.Helper()
	resp, err := client.Get("http://" + n.p.addr + "/readyz")
	if err != nil {
		t.Fatalf("/readyz of %s: %v", n.name, err)
	}
	defer resp.Body.Close()
	var m map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&m)
	return resp.StatusCode, fmt.Sprint(m["reason"])
}

// clCheckListed fails t unless `events list` through n lists every id
// in acked.
func clCheckListed(t *testing.T, n *clNode, acked map[string]bool) {
	t.Helper()
	listed := map[string]bool{}
	for _, ev := range clEvents(t, n) {
		listed[fmt.Sprint(ev["id"])] = true
	}
	lost := 0
	for id := range acked {
		if !listed[id] {
			lost++
		}
	}
	if lost > 0 {
		t.Errorf("%d of %d acknowledged events are not listed", lost, len(acked))
	}
}
