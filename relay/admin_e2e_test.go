package relay_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hookrelay/hookrelay/relay/admin"
	"github.com/hookrelay/hookrelay/relay/config"
	"github.com/hookrelay/hookrelay/relay/delivery"
	"github.com/hookrelay/hookrelay/relay/storage"
)

// The admin tests run a server with a token-protected admin listener and
// two targets: media takes video.* events, archive render.* events.
const (
	admToken  = "admin-e2e-token"
	admSecret = "whsec_admin_e2e_secret"
)

func admConfig(mediaURL, archiveURL string) string {
	return loopbackConfig("", "  token: "+admToken+"\n") + `sources:
  sp:
    provider: sketchpen
    secrets: [` + admSecret + `]
  vp:
    provider: videopilot
    secrets: [` + admSecret + `]
targets:
  media:
    url: ` + mediaURL + `
    retry:
      max_attempts: 1000
      initial_backoff: 20ms
      max_backoff: 50ms
  archive:
    url: ` + archiveURL + `
routes:
  - name: videos
    match:
      events: ["video.*"]
    targets: [media]
  - name: renders
    match:
      events: ["render.*"]
    targets: [archive]
`
}

// admTarget answers every request with a status that the test can switch,
// and counts the requests.
type admTarget struct {
	*httptest.Server
	status atomic.Int32
	hits   atomic.Int32
}

func newAdmTarget(t *testing.T, status int) *admTarget {
	t.Helper()
	at := &admTarget{}
	at.status.Store(int32(status))
	at.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		at.hits.Add(1)
		w.WriteHeader(int(at.status.Load()))
	}))
	t.Cleanup(at.Close)
	return at
}

// admSend signs body as sketchpen and posts it to source sp.
func admSend(t *testing.T, ts *testServer, body []byte) response {
	t.Helper()
	return post(t, ts.URL+"/webhooks/sp", signedHeaders(t, "sketchpen", admSecret, body, time.Now()), body)
}

// admGet sends method path to base with the Authorization header auth
// ("" for none) and returns the status and body.
func admGet(t *testing.T, method, url, auth, body string) (int, string) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestAdminAPIAuth checks SPEC §6/§7: the admin API and metrics answer only
// with the token, and never on the public listener.
func TestAdminAPIAuth(t *testing.T) {
	media, archive := newAdmTarget(t, http.StatusOK), newAdmTarget(t, http.StatusOK)
	ts := startServer(t, admConfig(media.URL, archive.URL))
	r := admSend(t, ts, sketchpenBody("video.completed", "auth-1", 1_700_000_000))
	id := wantAccepted(t, r)
	adminURL := "http://" + ts.Addr("admin")
	if ts.Addr("admin") == "" || adminURL == ts.URL {
		t.Fatalf("admin listener %q must be its own listener (public %s)", ts.Addr("admin"), ts.URL)
	}

	requests := []struct{ method, path, body string }{
		{http.MethodGet, "/api/events", ""},
		{http.MethodGet, "/api/events?status=delivered&limit=5", ""},
		{http.MethodGet, "/api/events/" + id, ""},
		{http.MethodGet, "/api/health", ""},
		{http.MethodGet, "/metrics", ""},
		{http.MethodGet, "/debug/pprof/", ""},
		{http.MethodPost, "/api/replay", `{"status":"dead","dry_run":true}`},
	}
	for _, rq := range requests {
		name := rq.method + " " + rq.path
		for _, auth := range []string{"", "Bearer wrong-token", "Bearer " + admToken + "x", admToken} {
			if code, body := admGet(t, rq.method, adminURL+rq.path, auth, rq.body); code != http.StatusUnauthorized {
				t.Errorf("admin %s with Authorization %q = %d, want 401 (%.200s)", name, auth, code, body)
			}
		}
		if code, body := admGet(t, rq.method, adminURL+rq.path, "Bearer "+admToken, rq.body); code != http.StatusOK {
			t.Errorf("admin %s with the token = %d, want 200 (%.200s)", name, code, body)
		}
		// The public listener knows none of these, token or not.
		for _, auth := range []string{"", "Bearer " + admToken} {
			if code, body := admGet(t, rq.method, ts.URL+rq.path, auth, rq.body); code != http.StatusNotFound {
				t.Errorf("public %s = %d, want 404 (%.200s)", name, code, body)
			}
		}
	}

	// The CLI's client works with the token and fails clearly without.
	ctx := context.Background()
	cl := admin.NewClient(ts.Addr("admin"), admToken)
	d, err := cl.Get(ctx, id)
	if err != nil {
		t.Fatalf("client Get: %v", err)
	}
	if d.ID != id || d.Source != "sp" || d.Type != "video.completed" {
		t.Errorf("client Get = %+v", d.Event)
	}
	if err := admin.NewClient(ts.Addr("admin"), "wrong").Ping(ctx); err == nil || !strings.Contains(err.Error(), "401") {
		t.Errorf("Ping with a wrong token = %v, want HTTP 401", err)
	}
}

// TestAdminListenNeedsToken: a non-loopback admin listener without a token
// is a config error; loopback addresses may go without.
func TestAdminListenNeedsToken(t *testing.T) {
	cfg := func(listen, token string) string {
		return `
server:
  listen: 127.0.0.1:0
admin:
  listen: "` + listen + `"
  token: "` + token + `"
storage:
  path: ` + t.TempDir() + `
sources:
  sp:
    provider: sketchpen
    secrets: [` + admSecret + `]
`
	}
	env := func(string) (string, bool) { return "", false }
	for _, listen := range []string{"0.0.0.0:9090", ":9090", "[::]:9090", "192.0.2.10:9090", "hooks.example.com:9090"} {
		_, err := config.Parse("admin.yaml", []byte(cfg(listen, "")), env)
		if err == nil || !strings.Contains(err.Error(), "admin.token") {
			t.Errorf("admin.listen %s without a token: err = %v, want an admin.token error", listen, err)
		}
		if _, err := config.Parse("admin.yaml", []byte(cfg(listen, admToken)), env); err != nil {
			t.Errorf("admin.listen %s with a token: %v", listen, err)
		}
	}
	for _, listen := range []string{"127.0.0.1:9090", "localhost:9090", "[::1]:9090", "127.0.0.1:0"} {
		if _, err := config.Parse("admin.yaml", []byte(cfg(listen, "")), env); err != nil {
			t.Errorf("loopback admin.listen %s without a token: %v", listen, err)
		}
	}
}

// TestAdminListFilters lists events of a live server through the admin
// client: filters select the right events and small pages return each
// event once, newest first.
func TestAdminListFilters(t *testing.T) {
	media, archive := newAdmTarget(t, http.StatusOK), newAdmTarget(t, http.StatusNotFound)
	ts := startServer(t, admConfig(media.URL, archive.URL))
	type sent struct{ id, source, typ string }
	var all []sent
	send := func(source, typ, video string) {
		var r response
		if source == "sp" {
			r = admSend(t, ts, sketchpenBody(typ, video, 1_700_000_000))
		} else {
			body := []byte(fmt.Sprintf(`{"event":%q,"timestamp":"2024-01-02T03:04:05Z","data":{"video_id":%q}}`, typ, video))
			r = post(t, ts.URL+"/webhooks/"+source, signedHeaders(t, "videopilot", admSecret, body, time.Now()), body)
		}
		all = append(all, sent{wantAccepted(t, r), source, typ})
	}
	send("sp", "video.completed", "f1")
	send("vp", "render.completed", "f2") // archive answers 404: dead
	send("sp", "video.failed", "f3")
	send("vp", "video.completed", "f4")
	send("sp", "thumbnail.ready", "f5") // no route: unrouted
	send("vp", "render.failed", "f6")   // dead

	ctx := context.Background()
	cl := admin.NewClient(ts.Addr("admin"), admToken)
	waitFor(t, 20*time.Second, "deliveries to finish", func() bool {
		p, err := cl.List(ctx, storage.Filter{Status: delivery.EventPending}, "", 10)
		return err == nil && len(p.Events) == 0
	})

	pick := func(keep func(s sent) bool) []string {
		var out []string
		for i := len(all) - 1; i >= 0; i-- { // newest first
			if keep(all[i]) {
				out = append(out, all[i].id)
			}
		}
		return out
	}
	tests := []struct {
		name string
		f    storage.Filter
		want []string
	}{
		{"all", storage.Filter{}, pick(func(sent) bool { return true })},
		{"source", storage.Filter{Source: "vp"}, pick(func(s sent) bool { return s.source == "vp" })},
		{"provider", storage.Filter{Provider: "sketchpen"}, pick(func(s sent) bool { return s.source == "sp" })},
		{"type glob", storage.Filter{Type: "video.*"}, pick(func(s sent) bool { return strings.HasPrefix(s.typ, "video.") })},
		{"status dead", storage.Filter{Status: delivery.EventDead}, pick(func(s sent) bool { return strings.HasPrefix(s.typ, "render.") })},
		{"status unrouted", storage.Filter{Status: delivery.EventUnrouted}, pick(func(s sent) bool { return s.typ == "thumbnail.ready" })},
		{"status delivered", storage.Filter{Status: delivery.EventDelivered}, pick(func(s sent) bool { return strings.HasPrefix(s.typ, "video.") })},
		{"source and type", storage.Filter{Source: "sp", Type: "video.*"}, pick(func(s sent) bool { return s.source == "sp" && strings.HasPrefix(s.typ, "video.") })},
		{"since the future", storage.Filter{Since: time.Now().Add(time.Hour)}, nil},
		{"until the past", storage.Filter{Until: time.Now().Add(-time.Hour)}, nil},
		{"ids", storage.Filter{IDs: []string{all[4].id, all[1].id}}, []string{all[4].id, all[1].id}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, limit := range []int{1, 2, 100} {
				var got []string
				cursor := ""
				for pages := 0; ; pages++ {
					if pages > len(all)+1 {
						t.Fatalf("limit %d: too many pages", limit)
					}
					p, err := cl.List(ctx, tt.f, cursor, limit)
					if err != nil {
						t.Fatalf("List: %v", err)
					}
					got = append(got, viewIDsOf(p.Events)...)
					if cursor = p.NextCursor; cursor == "" {
						break
					}
				}
				if !slices.Equal(got, tt.want) {
					t.Errorf("limit %d: got %v, want %v", limit, got, tt.want)
				}
			}
		})
	}
}

func viewIDsOf(vs []storage.EventView) []string {
	var out []string
	for _, v := range vs {
		out = append(out, v.ID)
	}
	return out
}

// TestMetricsMove scrapes /metrics while webhooks arrive and targets fail
// and recover: every counter, histogram count and the queue depth move.
func TestMetricsMove(t *testing.T) {
	media, archive := newAdmTarget(t, http.StatusServiceUnavailable), newAdmTarget(t, http.StatusNotFound)
	ts := startServer(t, admConfig(media.URL, archive.URL))
	scrape := func() admSamples { return admScrape(t, "http://"+ts.Addr("admin")+"/metrics") }

	before := scrape()
	if got := before.get("hookrelay_queue_depth", "target", "media"); got != 0 {
		t.Errorf("queue depth before any webhook = %v, want 0", got)
	}
	if !before.has("go_goroutines") || !before.has("process_cpu_seconds_total") {
		t.Errorf("runtime and process metrics missing")
	}

	body := sketchpenBody("video.completed", "m1", 1_700_000_000)
	first := wantAccepted(t, admSend(t, ts, body))                                           // media is down: retries
	wantDuplicate(t, admSend(t, ts, body), first)                                            // same dedupe key
	wantAccepted(t, admSend(t, ts, sketchpenBody("render.completed", "m2", 1_700_000_000)))  // archive: 404, dead
	wantAccepted(t, admSend(t, ts, sketchpenBody("thumbnail.created", "m3", 1_700_000_000))) // unrouted
	bad := signedHeaders(t, "sketchpen", "whsec_not_the_secret", body, time.Now())           // wrong secret
	if r := post(t, ts.URL+"/webhooks/sp", bad, body); r.Status != http.StatusUnauthorized {
		t.Fatalf("wrong secret = %d, want 401", r.Status)
	}
	stale := signedHeaders(t, "sketchpen", admSecret, body, time.Now().Add(-time.Hour)) // outside the 5m tolerance
	if r := post(t, ts.URL+"/webhooks/sp", stale, body); r.Status != http.StatusUnauthorized {
		t.Fatalf("stale timestamp = %d, want 401", r.Status)
	}
	if r := post(t, ts.URL+"/webhooks/sp", http.Header{}, []byte("{")); r.Status != http.StatusBadRequest {
		t.Fatalf("no headers = %d, want 400", r.Status)
	}

	var m admSamples
	waitFor(t, 20*time.Second, "a retry to media and the dead delivery to archive", func() bool {
		m = scrape()
		return m.get("hookrelay_deliveries_total", "target", "media", "outcome", "retry") >= 2 &&
			m.get("hookrelay_deliveries_total", "target", "archive", "outcome", "dead") == 1
	})
	received := []struct {
		outcome string
		want    float64
	}{
		{"accepted", 3}, {"duplicate", 1}, {"rejected_signature", 1}, {"rejected_timestamp", 1}, {"rejected_bad_request", 1},
	}
	for _, r := range received {
		if got := m.get("hookrelay_webhooks_received_total", "source", "sp", "outcome", r.outcome); got != r.want {
			t.Errorf("received_total{source=sp,outcome=%s} = %v, want %v", r.outcome, got, r.want)
		}
	}
	if got := m.get("hookrelay_ingest_duration_seconds_count", "source", "sp"); got != 7 {
		t.Errorf("ingest_duration_seconds_count{source=sp} = %v, want 7 (every answered webhook)", got)
	}
	if got := m.get("hookrelay_queue_depth", "target", "media"); got != 1 {
		t.Errorf("queue depth of media while it is down = %v, want 1", got)
	}
	if got := m.get("hookrelay_queue_depth", "target", "archive"); got != 0 {
		t.Errorf("queue depth of archive after its dead delivery = %v, want 0", got)
	}
	if got := m.get("hookrelay_deliveries_total", "target", "media", "outcome", "delivered"); got != 0 {
		t.Errorf("delivered to media while it is down = %v, want 0", got)
	}

	media.status.Store(http.StatusOK)
	waitFor(t, 20*time.Second, "the delivery to media once it is back", func() bool {
		m = scrape()
		return m.get("hookrelay_deliveries_total", "target", "media", "outcome", "delivered") == 1
	})
	if got := m.get("hookrelay_queue_depth", "target", "media"); got != 0 {
		t.Errorf("queue depth of media after delivery = %v, want 0", got)
	}
	attempts := m.get("hookrelay_deliveries_total", "target", "media", "outcome", "retry") + 1
	if got := m.get("hookrelay_delivery_duration_seconds_count", "target", "media"); got != attempts {
		t.Errorf("delivery_duration_seconds_count{target=media} = %v, want %v (one per attempt)", got, attempts)
	}
	if got, want := float64(media.hits.Load()), attempts; got != want {
		t.Errorf("media saw %v requests, metrics count %v attempts", got, want)
	}
	if got := m.get("hookrelay_delivery_duration_seconds_count", "target", "archive"); got != 1 {
		t.Errorf("delivery_duration_seconds_count{target=archive} = %v, want 1", got)
	}
	if got := m.get("hookrelay_delivery_duration_seconds_bucket", "target", "archive", "le", "+Inf"); got != 1 {
		t.Errorf("delivery_duration_seconds_bucket{target=archive,le=+Inf} = %v, want 1", got)
	}
	if got := m.get("hookrelay_deliveries_total", "target", "archive", "outcome", "retry"); got != 0 {
		t.Errorf("archive's 404 was retried %v times, want 0 (permanent)", got)
	}
}

// admSamples maps a sample's name and sorted labels to its value.
type admSamples map[string]float64

func admKey(name string, labels ...string) string {
	pairs := make([]string, 0, len(labels)/2)
	for i := 0; i+1 < len(labels); i += 2 {
		pairs = append(pairs, labels[i]+"="+labels[i+1])
	}
	sort.Strings(pairs)
	return name + "{" + strings.Join(pairs, ",") + "}"
}

// get returns the sample with exactly these labels (0 if absent, as an
// unobserved counter is).
func (s admSamples) get(name string, labels ...string) float64 { return s[admKey(name, labels...)] }

// has reports whether any sample of the metric name exists.
func (s admSamples) has(name string) bool {
	for k := range s {
		if strings.HasPrefix(k, name+"{") {
			return true
		}
	}
	return false
}

// admScrape reads the Prometheus text format: `name{k="v",...} value`.
func admScrape(t *testing.T, url string) admSamples {
	t.Helper()
	code, body := admGet(t, http.MethodGet, url, "Bearer "+admToken, "")
	if code != http.StatusOK {
		t.Fatalf("GET /metrics = %d: %.200s", code, body)
	}
	out := admSamples{}
	sc := bufio.NewScanner(strings.NewReader(body))
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		name, labels, rest := line, []string(nil), ""
		if i := strings.IndexByte(line, '{'); i >= 0 {
			name = line[:i]
			var ok bool
			labels, rest, ok = admLabels(line[i+1:])
			if !ok {
				t.Fatalf("bad metrics line %q", line)
			}
		} else {
			name, rest, _ = strings.Cut(line, " ")
		}
		fields := strings.Fields(rest)
		if len(fields) == 0 {
			t.Fatalf("bad metrics line %q", line)
		}
		v, err := strconv.ParseFloat(fields[0], 64)
		if err != nil {
			t.Fatalf("bad value in metrics line %q: %v", line, err)
		}
		out[admKey(name, labels...)] = v
	}
	return out
}

// admLabels parses `k="v",k2="v2"} rest` into k, v, k2, v2 and rest.
func admLabels(s string) ([]string, string, bool) {
	var out []string
	for {
		s = strings.TrimLeft(s, ", ")
		if strings.HasPrefix(s, "}") {
			return out, s[1:], true
		}
		k, v, ok := strings.Cut(s, `="`)
		if !ok {
			return nil, "", false
		}
		var val strings.Builder
		i := 0
		for ; i < len(v) && v[i] != '"'; i++ {
			if v[i] == '\\' && i+1 < len(v) {
				i++
				if v[i] == 'n' {
					val.WriteByte('\n')
					continue
				}
			}
			val.WriteByte(v[i])
		}
		if i == len(v) {
			return nil, "", false
		}
		out = append(out, k, val.String())
		s = v[i+1:]
	}
}
