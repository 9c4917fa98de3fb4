package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hookrelay/hookrelay/relay/admin"
	"github.com/hookrelay/hookrelay/relay/delivery"
)

// tgList runs `targets list --json` and returns the targets by name.
func tgList(t *testing.T, cfgPath string) map[string]admin.TargetInfo {
	t.Helper()
	res := cliRun(t, cliEnv(), "targets", "list", "--config", cfgPath, "--json")
	if res.code != 0 {
		t.Fatalf("targets list: exit %d: %s", res.code, res.stderr)
	}
	out := map[string]admin.TargetInfo{}
	for _, line := range strings.Split(strings.TrimSpace(res.stdout), "\n") {
		var ti admin.TargetInfo
		if err := json.Unmarshal([]byte(line), &ti); err != nil {
			t.Fatalf("targets list --json line %q: %v", line, err)
		}
		out[ti.Name] = ti
	}
	return out
}

// adminMetrics returns the /metrics text of the admin listener at
// adminAddr, asked with token.
func adminMetrics(t *testing.T, adminAddr, token string) string {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, "http://"+adminAddr+"/metrics", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// TestTargetsPauseResumeThroughBinary: `targets pause` stops deliveries to
// one target (they wait, pending, as `targets list` and /metrics show),
// the pause survives a restart and is read and written offline too, and
// `targets resume` has every waiting delivery made. An unknown name is
// refused with the names the config has.
func TestTargetsPauseResumeThroughBinary(t *testing.T) {
	mainT, otherT := newEvTarget(t, http.StatusOK), newEvTarget(t, http.StatusOK)
	dataDir := t.TempDir()
	adminAddr := evFreeAddr(t)
	cfgPath := evConfig(t, dataDir, adminAddr, evToken, mainT.URL, otherT.URL)
	srv := cliServe(t, cliEnv(), cfgPath, "public", "admin")
	cl := admin.NewClient(srv.addrs["admin"], evToken)
	run := func(args ...string) cliResult {
		t.Helper()
		return cliRun(t, cliEnv(), append(args, "--config", cfgPath)...)
	}

	ts := tgList(t, cfgPath)
	if len(ts) != 2 || ts["main"].State != "ok" || ts["other"].State != "ok" {
		t.Fatalf("targets list = %+v, want main and other, ok", ts)
	}
	if res := run("targets", "pause", "main"); res.code != 0 || !strings.Contains(res.stdout, "target main: paused") {
		t.Fatalf("targets pause main: exit %d: %s%s", res.code, res.stdout, res.stderr)
	}
	var ids []string
	for i := range 3 {
		id, _ := evPost(t, srv.addr, fmt.Appendf(nil, `{"event":"video.completed","video_id":"p%d","created_at":1700000000}`, i))
		ids = append(ids, id)
	}
	// A control event sent after the paused ones, to a running target
	// (through a replay to "other"), shows the engine was working.
	if res := run("replay", "--id", ids[0], "--target", "other"); res.code != 0 {
		t.Fatalf("replay to other: exit %d: %s", res.code, res.stderr)
	}
	if n := len(otherT.requests()); n != 1 {
		t.Fatalf("other received %d requests, want 1", n)
	}
	time.Sleep(200 * time.Millisecond)
	if n := len(mainT.requests()); n != 0 {
		t.Fatalf("paused main received %d requests", n)
	}
	ts = tgList(t, cfgPath)
	if m := ts["main"]; m.State != "paused" || m.Pending != 3 || m.PausedAt.IsZero() {
		t.Fatalf("main while paused = %+v, want paused with 3 pending", m)
	}
	table := run("targets", "list")
	if !strings.Contains(table.stdout, "main") || !strings.Contains(table.stdout, "paused") || table.code != 0 {
		t.Fatalf("targets list table: exit %d:\n%s", table.code, table.stdout)
	}
	m := adminMetrics(t, srv.addrs["admin"], evToken)
	for _, want := range []string{`hookrelay_target_state{state="paused",target="main"} 1`, `hookrelay_target_state{state="ok",target="main"} 0`, `hookrelay_target_state{state="ok",target="other"} 1`} {
		if !strings.Contains(m, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	if !strings.Contains(srv.Log(), `"msg":"target paused"`) {
		t.Errorf("serve log lacks the pause:\n%s", srv.Log())
	}

	// Offline: the state is in the store; resume and pause again there.
	if code := srv.stop(t, syscall.SIGTERM); code != 0 {
		t.Fatalf("serve exited %d", code)
	}
	if m := tgList(t, cfgPath)["main"]; m.State != "paused" || m.Pending != 3 {
		t.Fatalf("main offline = %+v, want paused with 3 pending", m)
	}
	for _, verb := range []string{"resume", "pause"} {
		if res := run("targets", verb, "main"); res.code != 0 {
			t.Fatalf("offline targets %s: exit %d: %s", verb, res.code, res.stderr)
		}
	}

	// Restarted, it stays paused; resumed, everything waiting is made.
	srv = cliServe(t, cliEnv(), cfgPath, "public", "admin")
	cl = admin.NewClient(srv.addrs["admin"], evToken)
	time.Sleep(200 * time.Millisecond)
	if n := len(mainT.requests()); n != 0 {
		t.Fatalf("main received %d requests after a restart while paused", n)
	}
	if res := run("targets", "resume", "main"); res.code != 0 || !strings.Contains(res.stdout, "target main: ok") {
		t.Fatalf("targets resume main: exit %d: %s%s", res.code, res.stdout, res.stderr)
	}
	for _, id := range ids {
		evWaitStatus(t, cl, id, delivery.EventDelivered)
	}
	if n := len(mainT.requests()); n != 3 {
		t.Fatalf("main received %d requests after resume, want 3", n)
	}
	if m := tgList(t, cfgPath)["main"]; m.State != "ok" || m.Pending != 0 {
		t.Fatalf("main after resume = %+v, want ok, nothing pending", m)
	}

	res := run("targets", "pause", "nosuch")
	if res.code != 1 || !strings.Contains(res.stderr, `unknown target "nosuch" (the config has: main, other)`) {
		t.Fatalf("pause of an unknown target: exit %d: %s", res.code, res.stderr)
	}
	if res := run("targets", "pause"); res.code != 1 || !strings.Contains(res.stderr, "exactly one target NAME") {
		t.Fatalf("pause without a name: exit %d: %s", res.code, res.stderr)
	}
}
