package relay_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"
	"github.com/hookrelay/hookrelay/relay/delivery"
	"github.com/hookrelay/hookrelay/relay/storage"
	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
)

// The delivery tests run the real server (ingest, Badger store, delivery
// engine) against httptest targets on loopback. Their helpers start with
// "dl".

const (
	dlSketchpenSecret  = "whsec_dl_sketchpen_secret"
	dlVideopilotSecret = "dl-videopilot-secret"
)

// dlSigningSecret signs outbound requests in the conformance test.
var dlSigningSecret = "whsec_" + base64.StdEncoding.EncodeToString([]byte("dl-target-signing-key-32-bytes!!"))

// dlRequest is one request a dlTarget received.
type dlRequest struct {
	At     time.Time
	Header http.Header
	Body   []byte
	ID     string // the CloudEvent id in the body
	Status int    // what the target answered
}

// dlTarget is a target that records every request. respond decides the
// answer to the n-th request (1-based) and may block; nil answers 200.
type dlTarget struct {
	*httptest.Server
	respond func(n int, r *http.Request) (int, http.Header)

	mu   sync.Mutex
	reqs []dlRequest
}

func newDLTarget(t testing.TB, respond func(n int, r *http.Request) (int, http.Header)) *dlTarget {
	t.Helper()
	d := &dlTarget{respond: respond}
	d.Server = httptest.NewServer(http.HandlerFunc(d.serve))
	t.Cleanup(d.Close)
	return d
}

func (d *dlTarget) serve(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return
	}
	var ce struct {
		ID string `json:"id"`
	}
	_ = json.Unmarshal(body, &ce)
	d.mu.Lock()
	d.reqs = append(d.reqs, dlRequest{At: time.Now(), Header: r.Header.Clone(), Body: body, ID: ce.ID})
	n := len(d.reqs)
	d.mu.Unlock()
	status, h := http.StatusOK, http.Header(nil)
	if d.respond != nil {
		status, h = d.respond(n, r)
	}
	d.mu.Lock()
	d.reqs[n-1].Status = status
	d.mu.Unlock()
	for k, v := range h {
		w.Header()[k] = v
	}
	w.WriteHeader(status)
}

func (d *dlTarget) requests() []dlRequest {
	d.mu.Lock()
	defer d.mu.Unlock()
	return slices.Clone(d.reqs)
}

// received counts the requests per CloudEvent id.
func (d *dlTarget) received() map[string]int {
	out := map[string]int{}
	for _, r := range d.requests() {
		out[r.ID]++
	}
	return out
}

// dlPost signs body as provider with secret, posts it to source and
// returns the id of the accepted event.
func dlPost(t *testing.T, ts *testServer, source, provider, secret string, body []byte) string {
	t.Helper()
	r := post(t, ts.URL+"/webhooks/"+source, signedHeaders(t, provider, secret, body, time.Now()), body)
	if r.Status != http.StatusOK || r.Body["status"] != "accepted" || r.Body["id"] == "" {
		t.Fatalf("POST %s: %d %s, want 200 accepted", source, r.Status, r.Raw)
	}
	return r.Body["id"]
}

var dlSeq atomic.Int64

// dlSketchpen posts a new sketchpen event of type event to source.
func dlSketchpen(t *testing.T, ts *testServer, source, event string) string {
	t.Helper()
	vid := fmt.Sprintf("dl-vid-%d", dlSeq.Add(1))
	return dlPost(t, ts, source, "sketchpen", dlSketchpenSecret, sketchpenBody(event, vid, time.Now().Unix()))
}

// dlVideopilot posts a new videopilot event of type event to source.
func dlVideopilot(t *testing.T, ts *testServer, source, event string) string {
	t.Helper()
	n := dlSeq.Add(1)
	body, _ := json.Marshal(map[string]any{
		"event": event, "timestamp": time.Now().UTC().Format(time.RFC3339),
		"data": map[string]any{"video_id": fmt.Sprintf("dl-vp-%d", n), "render_job_id": fmt.Sprintf("job-%d", n)},
	})
	return dlPost(t, ts, source, "videopilot", dlVideopilotSecret, body)
}

// dlView returns the stored event id with its deliveries.
func dlView(t *testing.T, ts *testServer, id string) *storage.EventView {
	t.Helper()
	v, _, err := ts.Store().Get(context.Background(), id)
	if err != nil {
		t.Fatalf("get event %s: %v", id, err)
	}
	return v
}

// dlDelivery returns the delivery of event id to target.
func dlDelivery(t *testing.T, ts *testServer, id, target string) delivery.Delivery {
	t.Helper()
	for _, d := range dlView(t, ts, id).Deliveries {
		if d.Target == target {
			return d
		}
	}
	t.Fatalf("event %s has no delivery to %s", id, target)
	return delivery.Delivery{}
}

// dlWaitSettled waits until the delivery of id to target is no longer
// pending and returns it.
func dlWaitSettled(t *testing.T, ts *testServer, id, target string) delivery.Delivery {
	t.Helper()
	var d delivery.Delivery
	waitFor(t, 20*time.Second, "delivery of "+id+" to "+target+" to settle", func() bool {
		d = dlDelivery(t, ts, id, target)
		return d.Status != delivery.Pending
	})
	return d
}

// dlCodes lists the status codes of attempts.
func dlCodes(as []delivery.Attempt) []int {
	var out []int
	for _, a := range as {
		out = append(out, a.StatusCode)
	}
	return out
}

// dlConfigHead is the part of every delivery test config before targets:
// loopbackConfig with three sources.
var dlConfigHead = loopbackConfig("", "") + `sources:
  sp-a:
    provider: sketchpen
    secrets: [` + dlSketchpenSecret + `]
  sp-b:
    provider: sketchpen
    secrets: [` + dlSketchpenSecret + `]
  vp:
    provider: videopilot
    secrets: [` + dlVideopilotSecret + `]
`

// TestDeliverRouting: routes select by source, provider and event glob;
// an event fans out to every selected target, once per target even when
// several routes select it; an unrouted event is stored without
// deliveries and sent nowhere.
func TestDeliverRouting(t *testing.T) {
	video, render, shared, vpall := newDLTarget(t, nil), newDLTarget(t, nil), newDLTarget(t, nil), newDLTarget(t, nil)
	targets := map[string]*dlTarget{"video": video, "render": render, "shared": shared, "vpall": vpall}
	ts := startServer(t, dlConfigHead+`
targets:
  video: {url: `+video.URL+`}
  render: {url: `+render.URL+`}
  shared: {url: `+shared.URL+`}
  vpall: {url: `+vpall.URL+`}
routes:
  - name: a-videos
    match: {sources: [sp-a], events: ["video.*"]}
    targets: [video, shared]
  - name: all-videos
    match: {events: ["video.*"]}
    targets: [shared]
  - name: renders
    match: {events: [render.completed]}
    targets: [render]
  - name: videopilot
    match: {providers: [videopilot]}
    targets: [vpall, shared]
`)
	unrouted := dlSketchpen(t, ts, "sp-b", "thumbnail.created")
	e1 := dlSketchpen(t, ts, "sp-a", "video.completed")  // a-videos + all-videos
	e2 := dlSketchpen(t, ts, "sp-b", "video.failed")     // all-videos
	e3 := dlSketchpen(t, ts, "sp-a", "render.completed") // renders
	e4 := dlVideopilot(t, ts, "vp", "render.completed")  // renders + videopilot
	e5 := dlVideopilot(t, ts, "vp", "video.created")     // all-videos + videopilot
	want := map[string][]string{
		"video":  {e1},
		"shared": {e1, e2, e4, e5},
		"render": {e3, e4},
		"vpall":  {e4, e5},
	}
	wantTargets := map[string][]string{}
	for target, ids := range want {
		for _, id := range ids {
			wantTargets[id] = append(wantTargets[id], target)
		}
	}
	for _, id := range []string{e1, e2, e3, e4, e5} {
		var v *storage.EventView
		waitFor(t, 20*time.Second, "event "+id+" delivered", func() bool {
			v = dlView(t, ts, id)
			return v.Status != delivery.EventPending
		})
		var got []string
		for _, d := range v.Deliveries {
			got = append(got, d.Target)
			if d.Status != delivery.Delivered || len(d.Attempts) != 1 {
				t.Errorf("event %s to %s: %s after %d attempts, want delivered after 1", id, d.Target, d.Status, len(d.Attempts))
			}
		}
		sort.Strings(got)
		sort.Strings(wantTargets[id])
		if !slices.Equal(got, wantTargets[id]) {
			t.Errorf("event %s (%s) has deliveries to %v, want %v", id, v.Type, got, wantTargets[id])
		}
	}
	for name, tg := range targets {
		got := tg.received()
		wantIDs := map[string]int{}
		for _, id := range want[name] {
			wantIDs[id] = 1
		}
		if !mapsEqual(got, wantIDs) {
			t.Errorf("target %s received %v, want each of %v once", name, got, want[name])
		}
		if n := got[unrouted]; n != 0 {
			t.Errorf("target %s received the unrouted event %d times", name, n)
		}
	}
	// The unrouted event is kept (replayable) but has no delivery and no
	// queue entry anywhere: nothing will ever send it.
	v, raw, err := ts.Store().Get(context.Background(), unrouted)
	if err != nil {
		t.Fatal(err)
	}
	if v.Status != delivery.EventUnrouted || len(v.Deliveries) != 0 || len(v.Targets) != 0 {
		t.Errorf("unrouted event: status %s, deliveries %v, targets %v; want unrouted with none", v.Status, v.Deliveries, v.Targets)
	}
	if len(raw) == 0 || v.Type != "thumbnail.created" {
		t.Errorf("unrouted event stored as type %q with %d body bytes", v.Type, len(raw))
	}
	for name := range targets {
		if n, err := ts.Store().QueueDepth(context.Background(), name); err != nil || n != 0 {
			t.Errorf("queue of %s holds %d entries (%v), want 0", name, n, err)
		}
	}
}

func mapsEqual(a, b map[string]int) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// dlOneTarget is a config with one target "t" taking every event.
func dlOneTarget(url, extra string) string {
	return dlConfigHead + `
targets:
  t:
    url: ` + url + `
` + extra + `
routes:
  - name: all
    targets: [t]
`
}

// TestDeliverRetryThenDelivered: a 500 is retried after the backoff and
// the retry is the same CloudEvent; both attempts are recorded.
func TestDeliverRetryThenDelivered(t *testing.T) {
	tg := newDLTarget(t, func(n int, _ *http.Request) (int, http.Header) {
		if n == 1 {
			return http.StatusInternalServerError, nil
		}
		return http.StatusOK, nil
	})
	ts := startServer(t, dlOneTarget(tg.URL, `    signing_secret: `+dlSigningSecret+`
    retry: {max_attempts: 5, initial_backoff: 10ms, max_backoff: 50ms}`))
	id := dlSketchpen(t, ts, "sp-a", "video.completed")
	d := dlWaitSettled(t, ts, id, "t")
	if got, want := dlCodes(d.Attempts), []int{500, 200}; d.Status != delivery.Delivered || !slices.Equal(got, want) {
		t.Fatalf("delivery %s with attempts %v, want delivered with %v", d.Status, got, want)
	}
	if d.Attempts[0].Error != "" || d.Attempts[0].At.IsZero() || d.Attempts[1].At.Before(d.Attempts[0].At) {
		t.Errorf("attempts recorded as %+v", d.Attempts)
	}
	reqs := tg.requests()
	if len(reqs) != 2 {
		t.Fatalf("target received %d requests, want 2", len(reqs))
	}
	for i, r := range reqs {
		if r.ID != id || r.Header.Get("webhook-id") != id {
			t.Errorf("attempt %d: CloudEvent id %q, webhook-id %q, want %q", i+1, r.ID, r.Header.Get("webhook-id"), id)
		}
		if got, want := r.Header.Get("Hookrelay-Attempt"), strconv.Itoa(i+1); got != want {
			t.Errorf("attempt %d: Hookrelay-Attempt %q, want %q", i+1, got, want)
		}
	}
	var a, b map[string]any
	_ = json.Unmarshal(reqs[0].Body, &a)
	_ = json.Unmarshal(reqs[1].Body, &b)
	if fmt.Sprint(a) != fmt.Sprint(b) {
		t.Errorf("the retry carried another event:\n%s\n%s", reqs[0].Body, reqs[1].Body)
	}
	if v := dlView(t, ts, id); v.Status != delivery.EventDelivered {
		t.Errorf("event status %s, want delivered", v.Status)
	}
}

// TestDeliverPermanentFailure: a 404 is dead after exactly one attempt.
func TestDeliverPermanentFailure(t *testing.T) {
	tg := newDLTarget(t, func(int, *http.Request) (int, http.Header) { return http.StatusNotFound, nil })
	ts := startServer(t, dlOneTarget(tg.URL, `    retry: {max_attempts: 5, initial_backoff: 10ms, max_backoff: 50ms}`))
	id := dlSketchpen(t, ts, "sp-a", "video.completed")
	d := dlWaitSettled(t, ts, id, "t")
	if got, want := dlCodes(d.Attempts), []int{404}; d.Status != delivery.Dead || !slices.Equal(got, want) {
		t.Errorf("delivery %s with attempts %v, want dead with %v", d.Status, got, want)
	}
	if v := dlView(t, ts, id); v.Status != delivery.EventDead {
		t.Errorf("event status %s, want dead", v.Status)
	}
	if n, err := ts.Store().QueueDepth(context.Background(), "t"); err != nil || n != 0 {
		t.Errorf("queue holds %d entries (%v) after a dead delivery, want 0", n, err)
	}
	if got := len(tg.requests()); got != 1 {
		t.Errorf("target received %d requests, want 1", got)
	}
}

// TestDeliverRetryAfter: a 429 with Retry-After: 1 delays the retry by a
// second although the computed backoff is 10ms.
func TestDeliverRetryAfter(t *testing.T) {
	tg := newDLTarget(t, func(n int, _ *http.Request) (int, http.Header) {
		if n == 1 {
			return http.StatusTooManyRequests, http.Header{"Retry-After": {"1"}}
		}
		return http.StatusOK, nil
	})
	ts := startServer(t, dlOneTarget(tg.URL, `    retry: {max_attempts: 5, initial_backoff: 10ms, max_backoff: 20ms}`))
	id := dlSketchpen(t, ts, "sp-a", "video.completed")
	d := dlWaitSettled(t, ts, id, "t")
	if got, want := dlCodes(d.Attempts), []int{429, 200}; d.Status != delivery.Delivered || !slices.Equal(got, want) {
		t.Fatalf("delivery %s with attempts %v, want delivered with %v", d.Status, got, want)
	}
	if gap := d.Attempts[1].At.Sub(d.Attempts[0].At); gap < time.Second {
		t.Errorf("retry %v after the 429, want at least the 1s of Retry-After", gap)
	}
	reqs := tg.requests()
	if len(reqs) != 2 {
		t.Fatalf("target received %d requests, want 2", len(reqs))
	}
	if gap := reqs[1].At.Sub(reqs[0].At); gap < time.Second {
		t.Errorf("target saw the retry %v after the 429, want at least 1s", gap)
	}
}

// TestDeliverMaxAttempts: a target that keeps failing is dead after
// max_attempts attempts and is not called again.
func TestDeliverMaxAttempts(t *testing.T) {
	tg := newDLTarget(t, func(int, *http.Request) (int, http.Header) { return http.StatusServiceUnavailable, nil })
	ts := startServer(t, dlOneTarget(tg.URL, `    retry: {max_attempts: 3, initial_backoff: 10ms, max_backoff: 20ms}`))
	id := dlSketchpen(t, ts, "sp-a", "video.completed")
	d := dlWaitSettled(t, ts, id, "t")
	if got, want := dlCodes(d.Attempts), []int{503, 503, 503}; d.Status != delivery.Dead || !slices.Equal(got, want) {
		t.Errorf("delivery %s with attempts %v, want dead with %v", d.Status, got, want)
	}
	if n, err := ts.Store().QueueDepth(context.Background(), "t"); err != nil || n != 0 {
		t.Errorf("queue holds %d entries (%v) after a dead delivery, want 0", n, err)
	}
	if got := len(tg.requests()); got != 3 {
		t.Errorf("target received %d requests, want 3", got)
	}
}

// TestDeliverHangingTargetDoesNotDelayOthers: a target that never answers
// (long timeout, two requests in flight) and one that times out over and
// over do not hold up a healthy target, which receives every event while
// the others still hang.
func TestDeliverHangingTargetDoesNotDelayOthers(t *testing.T) {
	const events = 20
	release := make(chan struct{})
	hangFor := func(counter *atomic.Int64) func(int, *http.Request) (int, http.Header) {
		return func(_ int, r *http.Request) (int, http.Header) {
			counter.Add(1)
			defer counter.Add(-1)
			select {
			case <-release:
			case <-r.Context().Done():
			}
			return http.StatusOK, nil
		}
	}
	var hanging, timingOut atomic.Int64
	hang := newDLTarget(t, hangFor(&hanging))
	short := newDLTarget(t, hangFor(&timingOut))
	healthy := newDLTarget(t, nil)
	ts := startServer(t, dlConfigHead+`
targets:
  hang:
    url: `+hang.URL+`
    timeout: 30s
    max_in_flight: 2
  short:
    url: `+short.URL+`
    timeout: 200ms
    max_in_flight: 1
    retry: {max_attempts: 1000, initial_backoff: 10ms, max_backoff: 50ms}
  healthy:
    url: `+healthy.URL+`
    max_in_flight: 4
routes:
  - name: all
    targets: [hang, short, healthy]
`)
	defer close(release) // before the server stops: its shutdown waits for attempts in flight
	var ids []string
	for range events {
		ids = append(ids, dlSketchpen(t, ts, "sp-a", "video.completed"))
	}
	waitFor(t, 20*time.Second, "the healthy target to receive every event", func() bool {
		return len(healthy.received()) == events
	})
	waitFor(t, 20*time.Second, "two requests hanging at the slow target (its max_in_flight)", func() bool {
		return hanging.Load() == 2
	})
	if got := len(hang.requests()); got != 2 {
		t.Errorf("the hanging target received %d requests, want 2 (its max_in_flight)", got)
	}
	for _, id := range ids {
		if n := healthy.received()[id]; n != 1 {
			t.Errorf("healthy target received %s %d times, want once", id, n)
		}
		d := dlWaitSettled(t, ts, id, "healthy")
		if d.Status != delivery.Delivered {
			t.Errorf("delivery of %s to healthy: %s", id, d.Status)
		}
		if d := dlDelivery(t, ts, id, "hang"); d.Status != delivery.Pending || len(d.Attempts) != 0 {
			t.Errorf("delivery of %s to hang: %s with %d attempts, want pending with none finished", id, d.Status, len(d.Attempts))
		}
	}
	// Meanwhile the short-timeout target keeps timing out and retrying.
	waitFor(t, 20*time.Second, "a timed-out attempt at the short-timeout target", func() bool {
		for _, id := range ids {
			if as := dlDelivery(t, ts, id, "short").Attempts; len(as) > 0 {
				return true
			}
		}
		return false
	})
	for _, id := range ids {
		d := dlDelivery(t, ts, id, "short")
		if d.Status != delivery.Pending {
			t.Errorf("delivery of %s to short: %s, want pending (retrying)", id, d.Status)
		}
		for _, a := range d.Attempts {
			if a.StatusCode != 0 || a.Error == "" {
				t.Errorf("attempt of %s at short recorded as %d %q, want a timeout", id, a.StatusCode, a.Error)
			}
		}
	}
}

// TestDeliverPendingSurviveRestart: events accepted while the target is
// down are delivered by the next server on the same data directory.
func TestDeliverPendingSurviveRestart(t *testing.T) {
	const events = 10
	var down atomic.Bool
	down.Store(true)
	tg := newDLTarget(t, func(int, *http.Request) (int, http.Header) {
		if down.Load() {
			return http.StatusServiceUnavailable, nil
		}
		return http.StatusOK, nil
	})
	dir := t.TempDir()
	cfg := dlOneTarget(tg.URL, `    retry: {max_attempts: 1000, initial_backoff: 10ms, max_backoff: 200ms}`)
	ts := startServer(t, cfg, dir)
	var ids []string
	for range events {
		ids = append(ids, dlSketchpen(t, ts, "sp-a", "video.completed"))
	}
	for _, id := range ids {
		waitFor(t, 20*time.Second, "a failed attempt of "+id, func() bool {
			return len(dlDelivery(t, ts, id, "t").Attempts) > 0
		})
	}
	ts.Stop(t)

	down.Store(false)
	ts = startServer(t, cfg, dir)
	for _, id := range ids {
		d := dlWaitSettled(t, ts, id, "t")
		codes := dlCodes(d.Attempts)
		if d.Status != delivery.Delivered || codes[0] != 503 || codes[len(codes)-1] != 200 {
			t.Errorf("delivery of %s: %s with attempts %v, want 503s then 200", id, d.Status, codes)
		}
	}
	delivered := map[string]int{}
	for _, r := range tg.requests() {
		if r.Status == http.StatusOK {
			delivered[r.ID]++
		}
	}
	for _, id := range ids {
		if delivered[id] != 1 {
			t.Errorf("event %s answered 200 %d times, want once", id, delivered[id])
		}
	}
}

// TestDeliverConformance: what a target receives is a structured-mode
// CloudEvent 1.0 that the CloudEvents SDK parses, with the configured
// headers and a Standard Webhooks signature that the Standard Webhooks
// library verifies.
func TestDeliverConformance(t *testing.T) {
	tg := newDLTarget(t, nil)
	ts := startServer(t, dlOneTarget(tg.URL, `    headers: {Authorization: "Bearer dl-media-token", X-Team: media}
    signing_secret: `+dlSigningSecret))
	wh, err := standardwebhooks.NewWebhook(dlSigningSecret)
	if err != nil {
		t.Fatal(err)
	}
	created := time.Date(2025, 3, 14, 9, 26, 53, 0, time.UTC)
	body := sketchpenBody("video.completed", "dl-conf-1", created.Unix())
	id := dlPost(t, ts, "sp-a", "sketchpen", dlSketchpenSecret, body)
	// No created_at: the event time is the receive time.
	before := time.Now().Add(-time.Second)
	noTimeBody := []byte(`{"event":"video.created","video_id":"dl-conf-2","data":{"title":"caf\u00e9"}}`)
	noTimeID := dlPost(t, ts, "sp-a", "sketchpen", dlSketchpenSecret, noTimeBody)
	after := time.Now().Add(time.Second)
	waitFor(t, 20*time.Second, "both events at the target", func() bool { return len(tg.received()) == 2 })

	for _, r := range tg.requests() {
		if got, want := r.Header.Get("Content-Type"), "application/cloudevents+json"; got != want {
			t.Errorf("Content-Type = %q, want %q", got, want)
		}
		if got, want := r.Header.Get("Authorization"), "Bearer dl-media-token"; got != want {
			t.Errorf("Authorization = %q, want the configured %q", got, want)
		}
		if got, want := r.Header.Get("X-Team"), "media"; got != want {
			t.Errorf("X-Team = %q, want the configured %q", got, want)
		}
		if err := wh.Verify(r.Body, r.Header); err != nil {
			t.Errorf("standard-webhooks Verify: %v", err)
		}
		if got := r.Header.Get("webhook-id"); got != r.ID {
			t.Errorf("webhook-id = %q, want the event id %q", got, r.ID)
		}
		tampered := bytes.Replace(r.Body, []byte("dl-conf"), []byte("dl-conF"), 1)
		if err := wh.Verify(tampered, r.Header); err == nil {
			t.Error("standard-webhooks Verify accepted a modified body")
		}

		req := httptest.NewRequest(http.MethodPost, "/hooks", bytes.NewReader(r.Body))
		req.Header = r.Header.Clone()
		ev, err := cehttp.NewEventFromHTTPRequest(req)
		if err != nil {
			t.Fatalf("CloudEvents SDK: %v\n%s", err, r.Body)
		}
		if err := ev.Validate(); err != nil {
			t.Errorf("CloudEvents SDK: invalid event: %v", err)
		}
		stored := dlView(t, ts, r.ID)
		wantBody, wantSubject, wantType := body, "dl-conf-1", "sketchpen.video.completed"
		if r.ID == noTimeID {
			wantBody, wantSubject, wantType = noTimeBody, "dl-conf-2", "sketchpen.video.created"
			if ev.Time().Before(before) || ev.Time().After(after) || !ev.Time().Equal(stored.ReceivedAt) {
				t.Errorf("time = %v, want the receive time %v", ev.Time(), stored.ReceivedAt)
			}
		} else {
			if r.ID != id {
				t.Fatalf("unexpected event %s", r.ID)
			}
			if !ev.Time().Equal(created) {
				t.Errorf("time = %v, want created_at %v", ev.Time(), created)
			}
		}
		checks := []struct{ name, got, want string }{
			{"specversion", ev.SpecVersion(), "1.0"},
			{"id", ev.ID(), r.ID},
			{"source", ev.Source(), "/sources/sp-a"},
			{"type", ev.Type(), wantType},
			{"subject", ev.Subject(), wantSubject},
			{"datacontenttype", ev.DataContentType(), "application/json"},
			{"provider", dlExtension(t, ev.Extensions(), "provider"), "sketchpen"},
			{"dedupekey", dlExtension(t, ev.Extensions(), "dedupekey"), stored.DedupeKey},
		}
		for _, c := range checks {
			if c.got != c.want {
				t.Errorf("event %s: %s = %q, want %q", r.ID, c.name, c.got, c.want)
			}
		}
		if stored.DedupeKey == "" {
			t.Errorf("event %s has no dedupe key", r.ID)
		}
		if !bytes.Equal(ev.Data(), wantBody) {
			t.Errorf("data = %s, want the provider payload %s unchanged", ev.Data(), wantBody)
		}
		var gotData, wantData any
		if err := ev.DataAs(&gotData); err != nil {
			t.Errorf("DataAs: %v", err)
		}
		_ = json.Unmarshal(wantBody, &wantData)
		if fmt.Sprint(gotData) != fmt.Sprint(wantData) {
			t.Errorf("decoded data = %v, want %v", gotData, wantData)
		}
	}
	if got, want := dlView(t, ts, id).DedupeKey, fmt.Sprintf("video.completed:dl-conf-1:%d", created.Unix()); got != want {
		t.Errorf("dedupe key = %q, want sketchpen's default %q", got, want)
	}
}

func dlExtension(t *testing.T, ext map[string]any, name string) string {
	t.Helper()
	s, ok := ext[name].(string)
	if !ok {
		t.Errorf("extension %s = %#v, want a string", name, ext[name])
	}
	return s
}
