package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/hookrelay/hookrelay/relay"
	"github.com/hookrelay/hookrelay/relay/admin"
	"github.com/hookrelay/hookrelay/relay/config"
	"github.com/hookrelay/hookrelay/relay/delivery"
	"github.com/hookrelay/hookrelay/relay/storage"
	"github.com/hookrelay/hookrelay/relay/store"
)

// The events and replay tests run the binary built by TestMain (cliBinary)
// against a serve process, and the CLI in-process (run) against a store.
const (
	evSecret = "whsec_events-test-secret"
	evToken  = "events-admin-token"
)

// evTarget is an HTTP target whose answer the test switches; it records
// every request.
type evTarget struct {
	*httptest.Server
	status atomic.Int32
	mu     sync.Mutex
	reqs   []evRequest
}

type evRequest struct {
	header http.Header
	event  map[string]any // the CloudEvent
}

func newEvTarget(t *testing.T, status int) *evTarget {
	t.Helper()
	tg := &evTarget{}
	tg.status.Store(int32(status))
	tg.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		var ev map[string]any
		if err := json.Unmarshal(b, &ev); err != nil {
			t.Errorf("target got a body that is not JSON: %q", b)
		}
		tg.mu.Lock()
		tg.reqs = append(tg.reqs, evRequest{header: r.Header.Clone(), event: ev})
		tg.mu.Unlock()
		w.WriteHeader(int(tg.status.Load()))
	}))
	t.Cleanup(tg.Close)
	return tg
}

func (tg *evTarget) requests() []evRequest {
	tg.mu.Lock()
	defer tg.mu.Unlock()
	return slices.Clone(tg.reqs)
}

// evConfig writes a config with source sp routed to target main, a second
// target other, and the admin listener on adminAddr with evToken.
func evConfig(t *testing.T, dataDir, adminAddr, token, mainURL, otherURL string) string {
	t.Helper()
	text := fmt.Sprintf(`server:
  listen: 127.0.0.1:0
  shutdown_timeout: 10s
admin:
  listen: %q
  token: %q
storage:
  path: %q
log:
  level: info
  format: json
sources:
  sp:
    provider: sketchpen
    secrets: [%q]
targets:
  main:
    url: %s
    retry:
      max_attempts: 3
      initial_backoff: 50ms
      max_backoff: 100ms
  other:
    url: %s
routes:
  - name: everything-from-sp
    match:
      sources: [sp]
    targets: [main]
`, adminAddr, token, dataDir, evSecret, mainURL, otherURL)
	return cliWriteConfig(t, text)
}

// evFreeAddr returns a loopback address nothing listens on right now.
func evFreeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// evPost sends a signed sketchpen webhook and returns the accepted id.
func evPost(t *testing.T, publicAddr string, body []byte) (string, http.Header) {
	t.Helper()
	h, err := cliSigner(t, evSecret).Sign(body, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	status, out, err := cliPost(http.DefaultClient, "http://"+publicAddr+"/webhooks/sp", h, body)
	if err != nil {
		t.Fatal(err)
	}
	if status != http.StatusOK || out["status"] != "accepted" || out["id"] == "" {
		t.Fatalf("POST webhook = %d %v, want 200 accepted", status, out)
	}
	return out["id"], h
}

// evWaitStatus polls the admin API until event id has status.
func evWaitStatus(t *testing.T, cl *admin.Client, id string, status delivery.EventStatus) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		d, err := cl.Get(context.Background(), id)
		if err == nil && d.Status == status {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("event %s did not become %s within 20s (last: %+v, %v)", id, status, d, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// evShow runs `events show --json id` and decodes it.
func evShow(t *testing.T, cfgPath, id string) admin.EventDetail {
	t.Helper()
	res := cliRun(t, cliEnv(), "events", "show", "--config", cfgPath, "--json", id)
	if res.code != 0 {
		t.Fatalf("events show: exit %d: %s", res.code, res.stderr)
	}
	var d admin.EventDetail
	if err := json.Unmarshal([]byte(res.stdout), &d); err != nil {
		t.Fatalf("events show --json: %v\n%s", err, res.stdout)
	}
	return d
}

// attempts returns the attempts of d's delivery to target.
func attempts(d admin.EventDetail, target string) []delivery.Attempt {
	for _, dl := range d.Deliveries {
		if dl.Target == target {
			return dl.Attempts
		}
	}
	return nil
}

// evWantReplay checks that r is event id sent again, marked as a replay.
func evWantReplay(t *testing.T, r evRequest, id string, body []byte) {
	t.Helper()
	if r.event["id"] != id || r.event["replay"] != true || r.header.Get("Hookrelay-Replay") != "true" {
		t.Errorf("target got id %v replay %v Hookrelay-Replay %q, want %s marked as a replay",
			r.event["id"], r.event["replay"], r.header.Get("Hookrelay-Replay"), id)
	}
	if r.event["type"] != "sketchpen.video.completed" || r.event["source"] != "/sources/sp" {
		t.Errorf("replayed CloudEvent = %v", r.event)
	}
	var want any
	_ = json.Unmarshal(body, &want)
	if got, _ := json.Marshal(r.event["data"]); string(got) != string(mustJSON(want)) {
		t.Errorf("replayed data = %s, want the original payload %s", got, body)
	}
}

func mustJSON(v any) []byte {
	b, _ := json.Marshal(v)
	return b
}

// TestEventsAndReplayEndToEnd drives SPEC §6's events and replay commands
// through the binary: online through a running serve's admin API, then
// offline on the store.
func TestEventsAndReplayEndToEnd(t *testing.T) {
	mainT, otherT := newEvTarget(t, http.StatusNotFound), newEvTarget(t, http.StatusOK)
	dataDir := t.TempDir()

	var cfgPath string
	var srv *cliProc
	for try := 0; srv == nil; try++ {
		adminAddr := evFreeAddr(t)
		cfgPath = evConfig(t, dataDir, adminAddr, evToken, mainT.URL, otherT.URL)
		p, err := cliStart(t, cliEnv(), []string{"serve", "--config", cfgPath}, "public", "admin")
		if err != nil {
			if try < 3 && strings.Contains(err.Error(), "address already in use") {
				continue // the free port was taken meanwhile
			}
			t.Fatal(err)
		}
		if p.addrs["admin"] != adminAddr {
			t.Fatalf("admin listener on %s, configured %s", p.addrs["admin"], adminAddr)
		}
		srv = p
	}
	cl := admin.NewClient(srv.addrs["admin"], evToken)
	run := func(args ...string) cliResult {
		t.Helper()
		return cliRun(t, cliEnv(), args...)
	}

	// A webhook whose delivery dies: main answers 404 (permanent).
	bodyA := []byte(`{"event":"video.completed","video_id":"vid-A","created_at":1700000000,"data":{"duration":12.5}}`)
	idA, headersA := evPost(t, srv.addr, bodyA)
	evWaitStatus(t, cl, idA, delivery.EventDead)

	// events list --status dead --json: one JSON line, the spec's fields.
	res := run("events", "list", "--config", cfgPath, "--status", "dead", "--json")
	if res.code != 0 {
		t.Fatalf("events list: exit %d: %s", res.code, res.stderr)
	}
	lines := strings.Split(strings.TrimSpace(res.stdout), "\n")
	if len(lines) != 1 {
		t.Fatalf("events list --status dead printed %d lines, want 1:\n%s", len(lines), res.stdout)
	}
	var line map[string]any
	if err := json.Unmarshal([]byte(lines[0]), &line); err != nil {
		t.Fatalf("events list --json line: %v: %s", err, lines[0])
	}
	for _, k := range []string{"id", "source", "provider", "type", "subject", "status", "received_at", "deliveries"} {
		if _, ok := line[k]; !ok {
			t.Errorf("events list --json line lacks %q: %s", k, lines[0])
		}
	}
	if line["id"] != idA || line["status"] != "dead" || line["source"] != "sp" || line["provider"] != "sketchpen" ||
		line["type"] != "video.completed" || line["subject"] != "vid-A" {
		t.Errorf("events list --json = %s", lines[0])
	}

	// events show --json: headers with the signature redacted, the 404.
	d := evShow(t, cfgPath, idA)
	if got := d.Headers["X-Sketchpen-Signature"]; got != "[redacted]" {
		t.Errorf("stored X-Sketchpen-Signature = %q, want [redacted]", got)
	}
	if got, want := d.Headers["X-Sketchpen-Timestamp"], headersA.Get("X-Sketchpen-Timestamp"); got != want {
		t.Errorf("stored X-Sketchpen-Timestamp = %q, want %q", got, want)
	}
	sigHex := strings.TrimPrefix(headersA.Get("X-Sketchpen-Signature"), "sha256=")
	if res := run("events", "show", "--config", cfgPath, "--json", idA); strings.Contains(res.stdout, sigHex) {
		t.Errorf("events show prints the signature")
	}
	if a := attempts(d, "main"); len(a) != 1 || a[0].StatusCode != 404 || d.Status != "dead" {
		t.Fatalf("event A: status %s, attempts %+v; want dead after one 404", d.Status, a)
	}
	var compact bytes.Buffer
	if err := json.Compact(&compact, d.Payload); err != nil || compact.String() != string(bodyA) {
		t.Errorf("payload = %s, want %s", d.Payload, bodyA)
	}
	// The human form shows the same.
	res = run("events", "show", idA, "--config", cfgPath) // flags after the ID work too
	for _, want := range []string{idA, "X-Sketchpen-Signature: [redacted]", "main: dead", "HTTP 404", `"video_id": "vid-A"`} {
		if !strings.Contains(res.stdout, want) {
			t.Errorf("events show does not show %q:\n%s", want, res.stdout)
		}
	}
	wantUTCTimes(t, "events show", res.stdout, 3)

	// A dry run, online, sends nothing.
	res = run("replay", "--config", cfgPath, "--status", "dead", "--dry-run")
	if res.code != 0 || !strings.Contains(res.stdout, "dry run: 1 event matched") || !strings.Contains(res.stdout, idA) {
		t.Errorf("replay --dry-run: exit %d, stdout %q, stderr %q", res.code, res.stdout, res.stderr)
	}
	if got := len(mainT.requests()); got != 1 {
		t.Errorf("main received %d requests after the dry run, want still 1", got)
	}
	if a := attempts(evShow(t, cfgPath, idA), "main"); len(a) != 1 {
		t.Errorf("attempts after the dry run = %d, want still 1", len(a))
	}

	// Fixed target: replay online delivers, marked as a replay.
	mainT.status.Store(http.StatusOK)
	res = run("replay", "--config", cfgPath, "--status", "dead")
	if res.code != 0 {
		t.Fatalf("replay: exit %d\nstdout: %s\nstderr: %s", res.code, res.stdout, res.stderr)
	}
	for _, want := range []string{"through the running server", "matched 1 event,", "sent 1, failed 0"} {
		if !strings.Contains(res.stdout, want) {
			t.Errorf("replay report %q does not say %q", res.stdout, want)
		}
	}
	reqs := mainT.requests()
	if len(reqs) != 2 {
		t.Fatalf("main received %d requests, want 2 (the 404, the replay)", len(reqs))
	}
	evWantReplay(t, reqs[1], idA, bodyA)
	if reqs[0].event["replay"] != nil || reqs[0].header.Get("Hookrelay-Replay") != "" {
		t.Errorf("the first delivery is marked as a replay")
	}
	d = evShow(t, cfgPath, idA)
	if a := attempts(d, "main"); d.Status != "delivered" || len(a) != 2 || !a[1].Replay || a[1].StatusCode != 200 {
		t.Errorf("after replay: status %s attempts %+v, want delivered with a 200 replay attempt (the dry run added none)", d.Status, a)
	}

	// --target sends to another configured target.
	res = run("replay", "--config", cfgPath, "--id", idA, "--target", "other", "--json")
	var rep admin.ReplayReport
	if err := json.Unmarshal([]byte(res.stdout), &rep); err != nil || res.code != 0 {
		t.Fatalf("replay --target other --json: exit %d, %v\n%s%s", res.code, err, res.stdout, res.stderr)
	}
	if rep.Matched != 1 || rep.Sent != 1 || rep.Failed != 0 || len(rep.Items) != 1 || rep.Items[0].Target != "other" {
		t.Errorf("replay --target other report = %+v", rep)
	}
	if reqs := otherT.requests(); len(reqs) != 1 {
		t.Errorf("other received %d requests, want 1", len(reqs))
	} else {
		evWantReplay(t, reqs[0], idA, bodyA)
	}
	if got := len(mainT.requests()); got != 2 {
		t.Errorf("main received %d requests, want still 2", got)
	}

	// The table shows id and status.
	res = run("events", "list", "--config", cfgPath)
	if res.code != 0 || !strings.Contains(res.stdout, "STATUS") {
		t.Fatalf("events list: exit %d\n%s%s", res.code, res.stdout, res.stderr)
	}
	if !evTableHas(res.stdout, idA, "delivered") {
		t.Errorf("events list table has no row with %s and delivered:\n%s", idA, res.stdout)
	}
	wantUTCTimes(t, "events list", res.stdout, 1)

	// Bad input while online: exit 1 with a message.
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"events", "show", "--config", cfgPath, "01AAAAAAAAAAAAAAAAAAAAAAAA"}, "not found"},
		{[]string{"replay", "--config", cfgPath, "--target", "nowhere"}, "unknown target"},
		{[]string{"events", "list", "--config", cfgPath, "--status", "lost"}, "unknown status"},
		{[]string{"events", "list", "--config", cfgPath, "--since", "yesterday"}, "--since"},
	} {
		if res := run(tc.args...); res.code != 1 || !strings.Contains(res.stderr, tc.want) {
			t.Errorf("%v: exit %d stderr %q, want 1 and %q", tc.args[:2], res.code, res.stderr, tc.want)
		}
	}
	// A config with the wrong token gets 401, not the store.
	wrongCfg := evConfig(t, dataDir, srv.addrs["admin"], "wrong-token", mainT.URL, otherT.URL)
	if res := run("events", "list", "--config", wrongCfg); res.code != 1 || !strings.Contains(res.stderr, "401") {
		t.Errorf("events list with a wrong token: exit %d stderr %q, want 1 and HTTP 401", res.code, res.stderr)
	}

	// Offline: another dead event, then stop the server.
	mainT.status.Store(http.StatusNotFound)
	bodyB := []byte(`{"event":"video.completed","video_id":"vid-B","created_at":1700000100}`)
	idB, _ := evPost(t, srv.addr, bodyB)
	evWaitStatus(t, cl, idB, delivery.EventDead)
	if code := srv.stop(t, syscall.SIGTERM); code != 0 {
		t.Fatalf("serve exit code after SIGTERM = %d, want 0\n%s", code, srv.Log())
	}
	mainBefore := len(mainT.requests())

	res = run("events", "list", "--config", cfgPath, "--status", "dead", "--json")
	if res.code != 0 || strings.Count(res.stdout, "\n") != 1 || !strings.Contains(res.stdout, idB) {
		t.Fatalf("offline events list --status dead: exit %d\n%s%s", res.code, res.stdout, res.stderr)
	}

	// Offline dry run: nothing sent, nothing changed.
	res = run("replay", "--config", cfgPath, "--status", "dead", "--dry-run")
	if res.code != 0 || !strings.Contains(res.stdout, "dry run: 1 event matched") || !strings.Contains(res.stdout, idB) {
		t.Errorf("offline replay --dry-run: exit %d, stdout %q, stderr %q", res.code, res.stdout, res.stderr)
	}
	if got := len(mainT.requests()); got != mainBefore {
		t.Errorf("main received %d requests during the offline dry run", got-mainBefore)
	}
	if d := evShow(t, cfgPath, idB); len(attempts(d, "main")) != 1 || d.Status != "dead" {
		t.Errorf("after the offline dry run: %s with %d attempts, want dead with 1", d.Status, len(attempts(d, "main")))
	}

	// Offline replay that fails: non-zero exit, the failure reported.
	res = run("replay", "--config", cfgPath, "--status", "dead")
	if res.code == 0 {
		t.Errorf("offline replay to a failing target exited 0:\n%s", res.stdout)
	}
	for _, want := range []string{"directly on the store", "matched 1 event,", "sent 0, failed 1", "HTTP 404"} {
		if !strings.Contains(res.stdout, want) {
			t.Errorf("offline replay report %q does not say %q", res.stdout, want)
		}
	}
	if got := len(mainT.requests()); got != mainBefore+1 {
		t.Fatalf("main received %d requests during the failing offline replay, want 1", got-mainBefore)
	}

	// Offline replay that delivers.
	mainT.status.Store(http.StatusOK)
	res = run("replay", "--config", cfgPath, "--status", "dead")
	if res.code != 0 {
		t.Fatalf("offline replay: exit %d\nstdout: %s\nstderr: %s", res.code, res.stdout, res.stderr)
	}
	for _, want := range []string{"directly on the store", "matched 1 event,", "sent 1, failed 0"} {
		if !strings.Contains(res.stdout, want) {
			t.Errorf("offline replay report %q does not say %q", res.stdout, want)
		}
	}
	reqs = mainT.requests()
	if len(reqs) != mainBefore+2 {
		t.Fatalf("main received %d requests offline, want 2", len(reqs)-mainBefore)
	}
	evWantReplay(t, reqs[len(reqs)-1], idB, bodyB)
	d = evShow(t, cfgPath, idB)
	if a := attempts(d, "main"); d.Status != "delivered" || len(a) != 3 || !a[2].Replay {
		t.Errorf("after the offline replay: %s with attempts %+v, want delivered after 3", d.Status, a)
	}

	// Offline --target.
	res = run("replay", "--config", cfgPath, "--id", idB, "--target", "other")
	if res.code != 0 || !strings.Contains(res.stdout, "sent 1, failed 0") {
		t.Errorf("offline replay --target other: exit %d\n%s%s", res.code, res.stdout, res.stderr)
	}
	if reqs := otherT.requests(); len(reqs) != 2 {
		t.Errorf("other received %d requests, want 2", len(reqs))
	} else {
		evWantReplay(t, reqs[1], idB, bodyB)
	}
	if got := len(mainT.requests()); got != mainBefore+2 {
		t.Errorf("main received %d more requests, want none", got-mainBefore-2)
	}
}

// evTableHas reports whether a row of the events table holds id and status.
func evTableHas(table, id, status string) bool {
	for _, row := range strings.Split(table, "\n") {
		f := strings.Fields(row)
		if len(f) > 0 && f[0] == id && slices.Contains(f, status) {
			return true
		}
	}
	return false
}

func TestParseWhen(t *testing.T) {
	now := time.Date(2025, 6, 15, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		in   string
		want time.Time
	}{
		{"", time.Time{}},
		{"2h", now.Add(-2 * time.Hour)},
		{"90m", now.Add(-90 * time.Minute)},
		{"1h30m", now.Add(-90 * time.Minute)},
		{"0s", now},
		{"7d", now.Add(-7 * 24 * time.Hour)},
		{"1.5d", now.Add(-36 * time.Hour)},
		{"2025-01-02T03:04:05Z", time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)},
		{"2025-01-02T03:04:05.25+02:00", time.Date(2025, 1, 2, 1, 4, 5, 25e7, time.UTC)},
	}
	for _, tt := range tests {
		got, err := parseWhen(tt.in, now)
		if err != nil || !got.Equal(tt.want) {
			t.Errorf("parseWhen(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
		}
	}
	for _, bad := range []string{"yesterday", "2h ago", "7", "d", "-2h", "-7d", "2025-01-02", "2025-13-01T00:00:00Z", "1d12h", "now"} {
		if got, err := parseWhen(bad, now); err == nil {
			t.Errorf("parseWhen(%q) = %v, want an error", bad, got)
		}
	}
}

// evRun runs the CLI in-process and returns exit code, stdout, stderr.
func evRun(args ...string) (int, string, string) {
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), append([]string{"hookrelay"}, args...), &stdout, &stderr)
	return code, stdout.String(), stderr.String()
}

// TestEventsOffline runs events list and show in-process on a store seeded
// with events received hours apart, with no server: --since and --until
// windows relative to now select exactly the right events.
func TestEventsOffline(t *testing.T) {
	t.Setenv("HOOKRELAY_CONFIG", "")
	target := newEvTarget(t, http.StatusOK)
	dataDir := t.TempDir()
	// No admin listener answers on this address: the CLI opens the store.
	cfgPath := evConfig(t, dataDir, evFreeAddr(t), evToken, target.URL, target.URL)
	cfg, err := config.Load(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(context.Background(), store.Options{
		Path: cfg.Storage.Path, Retention: cfg.Storage.Retention.D(), DedupeWindow: cfg.Dedupe.Window.D(),
	})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	type seeded struct {
		id, typ string
		ago     int // hours
	}
	var evs []seeded
	for i, s := range []seeded{
		{typ: "video.completed", ago: 50},
		{typ: "video.failed", ago: 5},
		{typ: "render.completed", ago: 4},
		{typ: "video.completed", ago: 3},
		{typ: "video.deleted", ago: 2},
		{typ: "render.failed", ago: 1},
	} {
		at := now.Add(-time.Duration(s.ago) * time.Hour)
		res, err := st.Ingest(context.Background(), &storage.Event{
			Source: "sp", Provider: "sketchpen", Type: s.typ, Subject: fmt.Sprintf("v%d", i), Time: at, ReceivedAt: at,
			DedupeKey: strconv.Itoa(i), Headers: map[string]string{"X-Sketchpen-Signature": "[redacted]"},
		}, []byte(fmt.Sprintf(`{"event":%q,"n":%d}`, s.typ, i)))
		if err != nil {
			t.Fatal(err)
		}
		s.id = res.ID
		evs = append(evs, s)
	}
	if err := st.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	idsOf := func(keep func(s seeded) bool) []string {
		var out []string
		for i := len(evs) - 1; i >= 0; i-- {
			if keep(evs[i]) {
				out = append(out, evs[i].id)
			}
		}
		return out
	}
	tests := []struct {
		name string
		args []string
		want []string
	}{
		{"all", nil, idsOf(func(seeded) bool { return true })},
		{"since 3h30m", []string{"--since", "3h30m"}, idsOf(func(s seeded) bool { return s.ago < 4 })},
		{"until 2h30m", []string{"--until", "2h30m"}, idsOf(func(s seeded) bool { return s.ago > 2 })},
		{"window", []string{"--since", "4h30m", "--until", "1h30m"}, idsOf(func(s seeded) bool { return s.ago >= 2 && s.ago <= 4 })},
		{"since 2d", []string{"--since", "2d"}, idsOf(func(s seeded) bool { return s.ago < 48 })},
		{"since rfc3339", []string{"--since", now.Add(-150 * time.Minute).Format(time.RFC3339)}, idsOf(func(s seeded) bool { return s.ago <= 2 })},
		{"type glob and window", []string{"--type", "video.*", "--since", "6h"}, idsOf(func(s seeded) bool { return s.ago <= 5 && strings.HasPrefix(s.typ, "video.") })},
		{"status unrouted", []string{"--status", "unrouted", "--type", "render.*"}, idsOf(func(s seeded) bool { return strings.HasPrefix(s.typ, "render.") })},
		{"source", []string{"--source", "other"}, nil},
		{"provider", []string{"--provider", "sketchpen", "--limit", "2"}, idsOf(func(s seeded) bool { return s.ago <= 2 })},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := append([]string{"events", "list", "--config", cfgPath, "--json"}, tt.args...)
			code, stdout, stderr := evRun(args...)
			if code != 0 {
				t.Fatalf("exit %d: %s", code, stderr)
			}
			var got []string
			dec := json.NewDecoder(strings.NewReader(stdout))
			for dec.More() {
				var v storage.EventView
				if err := dec.Decode(&v); err != nil {
					t.Fatal(err)
				}
				got = append(got, v.ID)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}

	t.Run("table pages with --limit and --cursor", func(t *testing.T) {
		code, stdout, stderr := evRun("events", "list", "--config", cfgPath, "--limit", "4")
		if code != 0 {
			t.Fatalf("exit %d: %s", code, stderr)
		}
		for i, s := range evs {
			if got, want := evTableHas(stdout, s.id, "unrouted"), i >= 2; got != want {
				t.Errorf("first page shows %s: %v, want %v\n%s", s.id, got, want, stdout)
			}
		}
		want := "more events: --cursor " + evs[2].id
		if !strings.Contains(stderr, want) {
			t.Fatalf("stderr %q does not offer %q", stderr, want)
		}
		code, stdout, stderr = evRun("events", "list", "--config", cfgPath, "--limit", "4", "--cursor", evs[2].id)
		if code != 0 || !evTableHas(stdout, evs[1].id, "unrouted") || !evTableHas(stdout, evs[0].id, "unrouted") || strings.Contains(stdout, evs[2].id) {
			t.Errorf("second page: exit %d\n%s%s", code, stdout, stderr)
		}
		if stderr != "" {
			t.Errorf("last page offers more: %q", stderr)
		}
	})

	t.Run("show", func(t *testing.T) {
		code, stdout, stderr := evRun("events", "show", "--config", cfgPath, evs[3].id)
		if code != 0 {
			t.Fatalf("exit %d: %s", code, stderr)
		}
		for _, want := range []string{"id:          " + evs[3].id, "source:      sp (sketchpen)", "type:        video.completed",
			"status:      unrouted", "X-Sketchpen-Signature: [redacted]", "(none: unrouted)", `"n": 3`} {
			if !strings.Contains(stdout, want) {
				t.Errorf("events show lacks %q:\n%s", want, stdout)
			}
		}
	})

	t.Run("replay unrouted offline", func(t *testing.T) {
		// The route takes every sp event to main: replaying the unrouted
		// events of the last 90 minutes sends exactly one.
		code, stdout, stderr := evRun("replay", "--config", cfgPath, "--status", "unrouted", "--since", "90m", "--dry-run")
		if code != 0 || !strings.Contains(stdout, "dry run: 1 event matched, 1 delivery") || len(target.requests()) != 0 {
			t.Fatalf("dry run: exit %d, %d requests\n%s%s", code, len(target.requests()), stdout, stderr)
		}
		code, stdout, stderr = evRun("replay", "--config", cfgPath, "--status", "unrouted", "--since", "90m")
		if code != 0 || !strings.Contains(stdout, "sent 1, failed 0") {
			t.Fatalf("replay: exit %d\n%s%s", code, stdout, stderr)
		}
		reqs := target.requests()
		if len(reqs) != 1 || reqs[0].event["id"] != evs[5].id || reqs[0].event["replay"] != true {
			t.Errorf("target got %d requests (%v), want %s as a replay", len(reqs), reqs, evs[5].id)
		}
	})

	t.Run("bad input", func(t *testing.T) {
		for _, tc := range []struct {
			args []string
			want string
		}{
			{[]string{"events", "list", "--config", cfgPath, "--limit", "0"}, "--limit"},
			{[]string{"events", "list", "--config", cfgPath, "--until", "-3h"}, "--until"},
			{[]string{"events", "list", "--config", cfgPath, "--type", "video.["}, "glob"},
			{[]string{"events", "show", "--config", cfgPath}, "exactly one event ID"},
			{[]string{"events", "show", "--config", cfgPath, "01AAAAAAAAAAAAAAAAAAAAAAAA"}, "not found"},
			{[]string{"events", "list"}, "no config file"},
			{[]string{"replay", "--config", cfgPath, evs[0].id}, "--id"},
			{[]string{"replay", "--config", cfgPath, "--status", "gone"}, "unknown status"},
			{[]string{"replay", "--config", cfgPath, "--target", "nowhere"}, "unknown target"},
		} {
			code, stdout, stderr := evRun(tc.args...)
			if code != 1 || !strings.Contains(stderr, tc.want) {
				t.Errorf("%v: exit %d stderr %q stdout %q, want 1 and %q", tc.args, code, stderr, stdout, tc.want)
			}
		}
	})
}

func TestDialAddr(t *testing.T) {
	tests := []struct{ listen, want string }{
		{"127.0.0.1:9090", "127.0.0.1:9090"},
		{":9090", "127.0.0.1:9090"},
		{"0.0.0.0:9090", "127.0.0.1:9090"},
		{"[::]:9090", "127.0.0.1:9090"},
		{"[::1]:9090", "[::1]:9090"},
		{"localhost:9090", "localhost:9090"},
		{"not an address", "not an address"},
	}
	for _, tt := range tests {
		if got := relay.DialAddr(tt.listen); got != tt.want {
			t.Errorf("dialAddr(%q) = %q, want %q", tt.listen, got, tt.want)
		}
	}
}
