package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
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

	"github.com/hookrelay/hookrelay/relay/admin"
	"github.com/nats-io/nats.go"
)

const clSecret = "whsec_cluster-test-secret"

// clNATSSecret is the nodes' cluster.nats.embedded.secret.
const clNATSSecret = "nats-cluster-secret-for-tests"

// clusterScanWait is how long a node takes at most to scan the shared
// queues again (relay's clusterRescan).
const clusterScanWait = 3 * time.Second

// clNode is one hookrelay node of the test cluster.
type clNode struct {
	name, cfgPath, admin string
	natsClient           string // the embedded NATS server's client address
	p                    *cliProc
}

func (n *clNode) url() string { return "http://" + n.p.addr + "/webhooks/sp" }

// clCluster writes the configs of three nodes with embedded NATS routed to
// each other, all relaying to target main (and target dead, which answers
// 400, for the events of type video.failed).
func clCluster(t *testing.T, mainURL, deadURL string) []*clNode {
	t.Helper()
	var client, route [3]string
	for i := range 3 {
		client[i], route[i] = evFreeAddr(t), evFreeAddr(t)
	}
	nodes := make([]*clNode, 3)
	for i := range 3 {
		var routes []string
		for j := range 3 {
			if j != i {
				routes = append(routes, fmt.Sprintf("%q", "nats://"+route[j]))
			}
		}
		n := &clNode{name: fmt.Sprintf("n%d", i), admin: evFreeAddr(t), natsClient: client[i]}
		dir := t.TempDir()
		n.cfgPath = filepath.Join(dir, "hookrelay.yaml")
		text := fmt.Sprintf(`server:
  listen: 127.0.0.1:0
  shutdown_timeout: 20s
admin:
  listen: %q
  token: %q
storage:
  path: %q
log:
  level: info
  format: json
cluster:
  node: %s
  replicas: 3
  nats:
    embedded:
      listen: %q
      cluster_listen: %q
      routes: [%s]
      secret: %q
sources:
  sp:
    provider: sketchpen
    secrets: [%q]
targets:
  main:
    url: %s
    retry: {max_attempts: 30, initial_backoff: 100ms, max_backoff: 500ms}
  dead:
    url: %s
    retry: {max_attempts: 2, initial_backoff: 50ms, max_backoff: 100ms}
routes:
  - name: ok
    match: {events: ["video.completed"]}
    targets: [main]
  - name: failing
    match: {events: ["video.failed"]}
    targets: [dead]
`, n.admin, evToken, filepath.Join(dir, "data"), n.name, client[i], route[i], strings.Join(routes, ", "), clNATSSecret, clSecret, mainURL, deadURL)
		if err := os.WriteFile(n.cfgPath, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		nodes[i] = n
	}
	return nodes
}

// clStart starts the nodes at once (each waits for a JetStream quorum).
func clStart(t *testing.T, nodes ...*clNode) {
	t.Helper()
	if err := clTryStart(t, nodes...); err != nil {
		t.Fatal(err)
	}
}

// clTryStart is clStart returning the first error.
func clTryStart(t *testing.T, nodes ...*clNode) error {
	t.Helper()
	var wg sync.WaitGroup
	errs := make([]error, len(nodes))
	for i, n := range nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p, err := cliStart(t, cliEnv(), []string{"serve", "--config", n.cfgPath}, "public", "admin")
			n.p, errs[i] = p, err
			if p != nil {
				t.Cleanup(func() {
					if t.Failed() {
						log := p.Log()
						t.Logf("log of %s (last 3000 bytes):\n%s", n.name, log[max(0, len(log)-3000):])
					}
				})
			}
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			return fmt.Errorf("node %s: %w", nodes[i].name, err)
		}
	}
	return nil
}

// clStartNew starts the nodes mk configures, with new ports up to three
// times: a port found free may be taken by another test process before a
// node binds it.
func clStartNew(t *testing.T, mk func() []*clNode) []*clNode {
	t.Helper()
	for try := 1; ; try++ {
		nodes := mk()
		err := clTryStart(t, nodes...)
		if err == nil {
			return nodes
		}
		for _, n := range nodes {
			if n.p != nil {
				n.p.kill(t)
			}
		}
		if try == 3 || !strings.Contains(err.Error(), "address already in use") {
			t.Fatal(err)
		}
		t.Logf("starting the cluster again on other ports: %v", err)
	}
}

// clPost sends a signed sketchpen webhook about vid of type typ.
func clPost(t *testing.T, client *http.Client, url, typ, vid string, created int64) (int, map[string]string, error) {
	body := fmt.Appendf(nil, `{"event":%q,"video_id":%q,"created_at":%d}`, typ, vid, created)
	h, err := cliSigner(t, clSecret).Sign(body, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return cliPost(client, url, h, body)
}

// clEvents lists the events through node n's CLI (its admin API).
func clEvents(t *testing.T, n *clNode, args ...string) []map[string]any {
	t.Helper()
	res := cliRun(t, cliEnv(), append([]string{"events", "list", "--config", n.cfgPath, "--json", "--limit", "100000"}, args...)...)
	if res.code != 0 {
		t.Fatalf("events list on %s: exit %d: %s", n.name, res.code, res.stderr)
	}
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(res.stdout), "\n") {
		if line == "" {
			continue
		}
		var ev map[string]any
		if err := json.Unmarshal([]byte(line), &ev); err != nil {
			t.Fatalf("events list line %q: %v", line, err)
		}
		out = append(out, ev)
	}
	return out
}

// clLoad sends unique webhooks round-robin to the nodes until stop is
// closed, and returns the subjects answered "accepted", and what the
// nodes other than skip answered otherwise.
type clLoad struct {
	mu       sync.Mutex
	accepted []string
	bad      []string // answers of nodes that were up (not 200)
	down     atomic.Pointer[clNode]
	wg       sync.WaitGroup
	stop     chan struct{}
}

func clStartLoad(t *testing.T, nodes []*clNode, prefix string) *clLoad {
	l := &clLoad{stop: make(chan struct{})}
	client := &http.Client{Timeout: 30 * time.Second}
	for w := range 4 {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			for i := 0; ; i++ {
				select {
				case <-l.stop:
					return
				default:
				}
				n := nodes[(i+w)%len(nodes)]
				if n == l.down.Load() || n.p == nil {
					continue
				}
				vid := fmt.Sprintf("%s-%d-%d", prefix, w, i)
				status, out, err := clPost(t, client, n.url(), "video.completed", vid, 1)
				l.mu.Lock()
				switch {
				case err == nil && status == http.StatusOK && out["status"] == "accepted":
					l.accepted = append(l.accepted, vid)
				case n == l.down.Load():
					// the node is going down: any answer but a lie is fine
				default:
					l.bad = append(l.bad, fmt.Sprintf("%s: %d %v %v", n.name, status, out, err))
				}
				l.mu.Unlock()
				time.Sleep(5 * time.Millisecond)
			}
		}()
	}
	return l
}

func (l *clLoad) finish() ([]string, []string) {
	close(l.stop)
	l.wg.Wait()
	return l.accepted, l.bad
}

func clWaitDelivered(t *testing.T, target *evTarget, subjects []string) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		got := rlReceived(target)
		var missing []string
		for _, s := range subjects {
			if got[s] == 0 {
				missing = append(missing, s)
			}
		}
		if len(missing) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d acknowledged events never delivered, e.g. %v", len(missing), len(subjects), missing[:min(5, len(missing))])
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestClusterThroughBinary: three `serve` processes with embedded NATS
// (replicas 3): any node accepts; 50 identical webhooks across the nodes
// give one accepted and 49 duplicates with its id, and one delivery; a
// SIGKILL of one node under load loses no acknowledged event, the others
// make its deliveries and keep answering 200, and the node rejoins and
// catches up; replay and dead letters work from any node; a rolling
// restart under load loses nothing.
func TestClusterThroughBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("cluster test skipped in -short mode")
	}
	mainT := newEvTarget(t, http.StatusOK)
	deadT := newEvTarget(t, http.StatusBadRequest)
	top := t // processes restarted in subtests live as long as the test
	nodes := clStartNew(top, func() []*clNode { return clCluster(t, mainT.URL, deadT.URL) })

	t.Run("any node accepts", func(t *testing.T) {
		for _, n := range nodes {
			status, out, err := clPost(t, http.DefaultClient, n.url(), "video.completed", "any-"+n.name, 1)
			if err != nil || status != http.StatusOK || out["status"] != "accepted" {
				t.Errorf("%s: %d %v %v", n.name, status, out, err)
			}
		}
	})

	t.Run("a second node with a running node's name", func(t *testing.T) {
		// n1's config copied, with its own ports and directory (as on
		// another machine): the same cluster.node.
		text, err := os.ReadFile(nodes[1].cfgPath)
		if err != nil {
			t.Fatal(err)
		}
		dir := t.TempDir()
		data := filepath.Join(dir, "data")
		cfg := string(text)
		for re, v := range map[string]string{
			`(?m)^  listen: "[^"]*"$`:             fmt.Sprintf("  listen: %q", evFreeAddr(t)),
			`(?m)^      listen: "[^"]*"$`:         fmt.Sprintf("      listen: %q", evFreeAddr(t)),
			`(?m)^      cluster_listen: "[^"]*"$`: fmt.Sprintf("      cluster_listen: %q", evFreeAddr(t)),
			`(?m)^  path: "[^"]*"$`:               fmt.Sprintf("  path: %q", data),
		} {
			if !regexp.MustCompile(re).MatchString(cfg) {
				t.Fatalf("no %s in %s", re, cfg)
			}
			cfg = regexp.MustCompile(re).ReplaceAllLiteralString(cfg, v)
		}
		dup := filepath.Join(dir, "hookrelay.yaml")
		if err := os.WriteFile(dup, []byte(cfg), 0o600); err != nil {
			t.Fatal(err)
		}
		res := cliRun(t, cliEnv(), "serve", "--config", dup)
		if res.code != 1 || !strings.Contains(res.stderr, `cluster.node "n1" is already used by a running node (host `) ||
			!strings.Contains(res.stderr, "; give each node its own name") {
			t.Fatalf("second n1: exit %d, want 1 and the holder named\n%s", res.code, res.stderr)
		}
		t.Logf("refused: %s", strings.TrimSpace(res.stderr[strings.LastIndex(strings.TrimSpace(res.stderr), "\n")+1:]))
		if _, err := os.Stat(data); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("the refused node wrote %s (%v)", data, err)
		}
		status, out, err := clPost(t, http.DefaultClient, nodes[1].url(), "video.completed", "after-dup", 1)
		if err != nil || status != http.StatusOK || out["status"] != "accepted" {
			t.Errorf("n1 after the refused duplicate: %d %v %v", status, out, err)
		}
	})

	t.Run("embedded NATS refuses clients without the secret", func(t *testing.T) {
		nc, err := nats.Connect("nats://"+nodes[0].natsClient, nats.Timeout(2*time.Second), nats.NoReconnect())
		if err == nil {
			nc.Close()
			t.Fatal("a client without cluster.nats.embedded.secret was let in")
		}
		for _, n := range nodes {
			if strings.Contains(n.p.Log(), clNATSSecret) {
				t.Errorf("%s logged the NATS secret", n.name)
			}
		}
	})

	t.Run("50 identical webhooks across three nodes", func(t *testing.T) {
		body := []byte(`{"event":"video.completed","video_id":"same-one","created_at":7}`)
		h, err := cliSigner(t, clSecret).Sign(body, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		outs := make([]map[string]string, 50)
		start := make(chan struct{})
		for i := range 50 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				req, _ := http.NewRequest(http.MethodPost, nodes[i%3].url(), bytes.NewReader(body))
				req.Header = h.Clone()
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Errorf("request %d: %v", i, err)
					return
				}
				defer resp.Body.Close()
				var out map[string]string
				_ = json.NewDecoder(resp.Body).Decode(&out)
				if resp.StatusCode != http.StatusOK {
					t.Errorf("request %d: %d %v", i, resp.StatusCode, out)
				}
				outs[i] = out
			}()
		}
		close(start)
		wg.Wait()
		accepted, dup, ids := 0, 0, map[string]bool{}
		for _, o := range outs {
			switch o["status"] {
			case "accepted":
				accepted++
			case "duplicate":
				dup++
			}
			ids[o["id"]] = true
		}
		if accepted != 1 || dup != 49 || len(ids) != 1 {
			t.Fatalf("accepted %d, duplicate %d, ids %v; want 1, 49, one id", accepted, dup, ids)
		}
		clWaitDelivered(t, mainT, []string{"same-one"})
		time.Sleep(500 * time.Millisecond)
		if n := rlReceived(mainT)["same-one"]; n != 1 {
			t.Errorf("same-one delivered %d times, want 1", n)
		}
	})

	t.Run("SIGKILL of one node under load", func(t *testing.T) {
		load := clStartLoad(t, nodes, "kill")
		time.Sleep(1500 * time.Millisecond)
		victim := nodes[0]
		load.down.Store(victim)
		victim.p.kill(t)
		time.Sleep(3 * time.Second) // the survivors keep answering
		accepted, bad := load.finish()
		if len(bad) > 0 {
			t.Errorf("the survivors answered %d requests with something other than 200 accepted, e.g. %v", len(bad), bad[:min(5, len(bad))])
		}
		if len(accepted) < 50 {
			t.Fatalf("only %d webhooks accepted under load", len(accepted))
		}
		clWaitDelivered(t, mainT, accepted)
		t.Logf("%d acknowledged webhooks under load, all delivered", len(accepted))

		// The killed node rejoins and catches up: its admin API lists them.
		clStart(top, victim)
		load.down.Store(nil)
		deadline := time.Now().Add(30 * time.Second)
		for {
			seen := map[string]bool{}
			for _, ev := range clEvents(t, victim) {
				seen[fmt.Sprint(ev["subject"])] = true
			}
			missing := 0
			for _, s := range accepted {
				if !seen[s] {
					missing++
				}
			}
			if missing == 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("the rejoined node lists %d of %d events", len(accepted)-missing, len(accepted))
			}
			time.Sleep(200 * time.Millisecond)
		}
	})

	t.Run("replay and dead letters from any node", func(t *testing.T) {
		_, out, err := clPost(t, http.DefaultClient, nodes[1].url(), "video.completed", "replay-me", 1)
		if err != nil || out["status"] != "accepted" {
			t.Fatalf("post: %v %v", out, err)
		}
		clWaitDelivered(t, mainT, []string{"replay-me"})
		res := cliRun(t, cliEnv(), "replay", "--config", nodes[2].cfgPath, "--id", out["id"])
		if res.code != 0 {
			t.Fatalf("replay from another node: exit %d\n%s%s", res.code, res.stdout, res.stderr)
		}
		deadline := time.Now().Add(20 * time.Second)
		for rlReceived(mainT)["replay-me"] < 2 {
			if time.Now().After(deadline) {
				t.Fatal("the replay from node n2 never arrived")
			}
			time.Sleep(50 * time.Millisecond)
		}
		_, dead, err := clPost(t, http.DefaultClient, nodes[0].url(), "video.failed", "dead-one", 1)
		if err != nil || dead["status"] != "accepted" {
			t.Fatalf("post: %v %v", dead, err)
		}
		for _, n := range nodes {
			deadline := time.Now().Add(20 * time.Second)
			for {
				found := false
				for _, ev := range clEvents(t, n, "--status", "dead") {
					found = found || ev["id"] == dead["id"]
				}
				if found {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("%s does not list the dead letter %s", n.name, dead["id"])
				}
				time.Sleep(100 * time.Millisecond)
			}
		}
		res = cliRun(t, cliEnv(), "cluster", "status", "--config", nodes[1].cfgPath, "--json")
		var cs admin.ClusterStatus
		if err := json.Unmarshal([]byte(res.stdout), &cs); res.code != 0 || err != nil || cs.MetaLeader == "" {
			t.Fatalf("cluster status: exit %d (%v)\n%s%s", res.code, err, res.stdout, res.stderr)
		}
		held := map[string]int{}
		for _, h := range cs.Holders {
			held[h.Node] = h.PID
		}
		for _, n := range nodes {
			if held[n.name] != n.p.cmd.Process.Pid {
				t.Errorf("cluster status holders = %+v, want %s held by pid %d", cs.Holders, n.name, n.p.cmd.Process.Pid)
			}
		}
	})

	t.Run("pause on one node holds on all", func(t *testing.T) {
		if res := cliRun(t, cliEnv(), "targets", "pause", "main", "--config", nodes[0].cfgPath); res.code != 0 {
			t.Fatalf("targets pause on n0: exit %d: %s", res.code, res.stderr)
		}
		// Every node's engine has taken the pause (its metric says so)
		// before the webhooks are sent.
		paused := `hookrelay_target_state{state="paused",target="main"} 1`
		for _, n := range nodes {
			deadline := time.Now().Add(15 * time.Second)
			for !strings.Contains(adminMetrics(t, n.admin, evToken), paused) {
				if time.Now().After(deadline) {
					t.Fatalf("%s never showed main paused", n.name)
				}
				time.Sleep(50 * time.Millisecond)
			}
		}
		var subjects []string
		for i := range 6 {
			vid := fmt.Sprintf("paused-%d", i)
			if _, out, err := clPost(t, http.DefaultClient, nodes[1+i%2].url(), "video.completed", vid, 1); err != nil || out["status"] != "accepted" {
				t.Fatalf("post to a node while main is paused: %v %v", out, err)
			}
			subjects = append(subjects, vid)
		}
		time.Sleep(2 * clusterScanWait)
		got := rlReceived(mainT)
		for _, vid := range subjects {
			if got[vid] != 0 {
				t.Fatalf("%s was delivered to main while it was paused", vid)
			}
		}
		m := tgList(t, nodes[2].cfgPath)["main"]
		if m.State != "paused" || m.Pending < len(subjects) {
			t.Fatalf("main seen from n2 = %+v, want paused with at least %d pending", m, len(subjects))
		}
		if res := cliRun(t, cliEnv(), "targets", "resume", "main", "--config", nodes[2].cfgPath); res.code != 0 {
			t.Fatalf("targets resume on n2: exit %d: %s", res.code, res.stderr)
		}
		clWaitDelivered(t, mainT, subjects)
	})

	t.Run("rolling restart under load", func(t *testing.T) {
		load := clStartLoad(t, nodes, "roll")
		for _, n := range nodes {
			time.Sleep(500 * time.Millisecond)
			load.down.Store(n)
			if code := n.p.stop(t, syscall.SIGTERM); code != 0 {
				t.Errorf("%s exit code %d after SIGTERM", n.name, code)
			}
			clStart(top, n)
			load.down.Store(nil)
		}
		time.Sleep(500 * time.Millisecond)
		accepted, bad := load.finish()
		if len(bad) > 0 {
			t.Errorf("%d answers other than 200 from nodes that were up, e.g. %v", len(bad), bad[:min(5, len(bad))])
		}
		clWaitDelivered(t, mainT, accepted)
		t.Logf("%d acknowledged webhooks during a rolling restart, all delivered", len(accepted))
	})

	for _, n := range nodes {
		if code := n.p.stop(t, syscall.SIGTERM); code != 0 {
			t.Errorf("%s exit code %d", n.name, code)
		}
	}
}
