package relay_test

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Secrets of the e2e config. No response may contain one.
const (
	e2eSecret    = "whsec_e2e_current_secret"
	e2eOldSecret = "whsec_e2e_previous_secret"
	e2eOtherKey  = "whsec_e2e_not_configured"
	e2eShortkit  = "whsec_e2e_shortkit_secret"
	e2eMaxBody   = 1024
)

// e2eConfig is the config of the ingest tests: loopbackConfig with a small
// max_body_bytes, four sources and no targets (every event is stored
// unrouted).
var e2eConfig = loopbackConfig("  max_body_bytes: "+strconv.Itoa(e2eMaxBody)+"\n", "") + `sources:
  sp:
    provider: sketchpen
    secrets: [` + e2eSecret + `, ` + e2eOldSecret + `]
    tolerance: 5m
  sp2:
    provider: sketchpen
    secrets: [` + e2eSecret + `]
  byreq:
    provider: sketchpen
    secrets: [` + e2eSecret + `]
    dedupe_key: ["header:X-Request-Id"]
  sk:
    provider: shortkit
    secrets: [` + e2eShortkit + `]
`

// e2eClient allows enough idle connections per host for the concurrent
// tests to reuse them across rounds.
var e2eClient = &http.Client{
	Transport: &http.Transport{MaxIdleConnsPerHost: 64, MaxConnsPerHost: 0},
	Timeout:   30 * time.Second,
}

// e2eBody returns a distinct sketchpen body; pad makes it exactly size
// bytes when size > 0.
func e2eBody(t *testing.T, videoID string, size int) []byte {
	t.Helper()
	b := sketchpenBody("video.completed", videoID, 1_700_000_000)
	if size <= 0 {
		return b
	}
	base, _ := json.Marshal(map[string]any{"event": "video.completed", "video_id": videoID, "created_at": 1_700_000_000, "pad": ""})
	n := size - len(base)
	if n < 0 {
		t.Fatalf("body of %d bytes cannot hold %s", size, base)
	}
	b, _ = json.Marshal(map[string]any{"event": "video.completed", "video_id": videoID, "created_at": 1_700_000_000, "pad": strings.Repeat("x", n)})
	if len(b) != size {
		t.Fatalf("padded body is %d bytes, want %d", len(b), size)
	}
	return b
}

// wantAccepted checks an "accepted" answer and returns its id.
func wantAccepted(t *testing.T, r response) string {
	t.Helper()
	if r.Status != http.StatusOK || r.Body["status"] != "accepted" || len(r.Body["id"]) != 26 {
		t.Fatalf("answer = %d %s, want 200 accepted with a 26-character id", r.Status, r.Raw)
	}
	return r.Body["id"]
}

// wantDuplicate checks a "duplicate" answer carrying id.
func wantDuplicate(t *testing.T, r response, id string) {
	t.Helper()
	if got, want := r.Status, http.StatusOK; got != want {
		t.Fatalf("status = %d, want %d (%s)", got, want, r.Raw)
	}
	if got, want := r.Body["status"], "duplicate"; got != want {
		t.Errorf("status field = %q, want %q (%s)", got, want, r.Raw)
	}
	if got, want := r.Body["id"], id; got != want {
		t.Errorf("duplicate id = %q, want the first id %q", got, want)
	}
}

// TestWebhookResponses walks the rows of SPEC §3 that a single request
// decides.
func TestWebhookResponses(t *testing.T) {
	ts := startServer(t, e2eConfig)
	now := time.Now()
	body := func(id string) []byte { return e2eBody(t, id, 0) }
	signed := func(b []byte) http.Header { return signedHeaders(t, "sketchpen", e2eSecret, b, now) }
	with := func(h http.Header, k, v string) http.Header {
		h = h.Clone()
		if v == "" {
			h.Del(k)
		} else {
			h.Set(k, v)
		}
		return h
	}
	big := e2eBody(t, "big", e2eMaxBody+1)
	exact := e2eBody(t, "exact", e2eMaxBody)
	exactChunked := e2eBody(t, "exact-chunked", e2eMaxBody)
	tests := []struct {
		name    string
		method  string
		path    string
		h       http.Header
		body    []byte
		chunked bool
		status  int
		want    string // "accepted", "error" or "" (status only)
	}{
		{"accepted", "POST", "/webhooks/sp", signed(body("ok-1")), body("ok-1"), false, 200, "accepted"},
		{"accepted chunked", "POST", "/webhooks/sp", signed(body("ok-2")), body("ok-2"), true, 200, "accepted"},
		{"body of exactly max_body_bytes", "POST", "/webhooks/sp", signed(exact), exact, false, 200, "accepted"},
		{"chunked body of exactly max_body_bytes", "POST", "/webhooks/sp", signed(exactChunked), exactChunked, true, 200, "accepted"},
		{"body not JSON", "POST", "/webhooks/sp", signed([]byte("not json")), []byte("not json"), false, 400, "error"},
		{"body JSON but not an object", "POST", "/webhooks/sp", signed([]byte(`[1,2]`)), []byte(`[1,2]`), false, 400, "error"},
		{"empty body", "POST", "/webhooks/sp", signed(nil), nil, false, 400, "error"},
		{"signature header missing", "POST", "/webhooks/sp", with(signed(body("m1")), "X-Sketchpen-Signature", ""), body("m1"), false, 400, "error"},
		{"timestamp header missing", "POST", "/webhooks/sp", with(signed(body("m2")), "X-Sketchpen-Timestamp", ""), body("m2"), false, 400, "error"},
		{"signature not hex", "POST", "/webhooks/sp", with(signed(body("m3")), "X-Sketchpen-Signature", "sha256=zz"), body("m3"), false, 400, "error"},
		{"signature without sha256= prefix", "POST", "/webhooks/sp", with(signed(body("m4")), "X-Sketchpen-Signature", strings.Repeat("ab", 32)), body("m4"), false, 400, "error"},
		{"timestamp malformed", "POST", "/webhooks/sp", with(signed(body("m5")), "X-Sketchpen-Timestamp", "yesterday"), body("m5"), false, 400, "error"},
		{"signature mismatch (body changed)", "POST", "/webhooks/sp", signed(body("s1")), body("s1-tampered"), false, 401, "error"},
		{"signature mismatch (timestamp changed)", "POST", "/webhooks/sp", with(signed(body("s2")), "X-Sketchpen-Timestamp", strconv.FormatInt(now.Unix()-1, 10)), body("s2"), false, 401, "error"},
		{"stale timestamp", "POST", "/webhooks/sp", signedHeaders(t, "sketchpen", e2eSecret, body("t1"), now.Add(-time.Hour)), body("t1"), false, 401, "error"},
		{"future timestamp", "POST", "/webhooks/sp", signedHeaders(t, "sketchpen", e2eSecret, body("t2"), now.Add(time.Hour)), body("t2"), false, 401, "error"},
		{"unknown source", "POST", "/webhooks/nope", signed(body("u1")), body("u1"), false, 404, "error"},
		{"no source name", "POST", "/webhooks/", signed(body("u2")), body("u2"), false, 404, "error"},
		{"source path with a suffix", "POST", "/webhooks/sp/extra", signed(body("u3")), body("u3"), false, 404, "error"},
		{"GET on a webhook", "GET", "/webhooks/sp", nil, nil, false, 405, "error"},
		{"PUT on a webhook", "PUT", "/webhooks/sp", signed(body("p1")), body("p1"), false, 405, "error"},
		{"body over max_body_bytes (Content-Length)", "POST", "/webhooks/sp", signed(big), big, false, 413, "error"},
		{"body over max_body_bytes (chunked)", "POST", "/webhooks/sp", signed(big), big, true, 413, "error"},
		{"healthz", "GET", "/healthz", nil, nil, false, 200, ""},
		{"readyz", "GET", "/readyz", nil, nil, false, 200, ""},
		{"root is not served", "GET", "/", nil, nil, false, 404, ""},
		{"metrics are not public", "GET", "/metrics", nil, nil, false, 404, ""},
		{"pprof is not public", "GET", "/debug/pprof/", nil, nil, false, 404, ""},
		{"pprof profile is not public", "GET", "/debug/pprof/heap", nil, nil, false, 404, ""},
		{"admin API is not public", "GET", "/api/events", nil, nil, false, 404, ""},
		{"admin API POST is not public", "POST", "/api/replay", nil, []byte(`{}`), false, 404, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, hdr := mustDo(t, e2eClient, tt.method, ts.URL+tt.path, tt.h, tt.body, tt.chunked)
			if got, want := r.Status, tt.status; got != want {
				t.Fatalf("status = %d, want %d (%s)", got, want, r.Raw)
			}
			switch tt.want {
			case "accepted":
				wantAccepted(t, r)
			case "error":
				if r.Body["error"] == "" {
					t.Errorf("body %q has no error", r.Raw)
				}
			}
			if got, want := hdr.Get("Content-Type"), "application/json"; r.Status != 404 && got != want {
				t.Errorf("Content-Type = %q, want %q", got, want)
			}
			if tt.status == http.StatusMethodNotAllowed {
				if got, want := hdr.Get("Allow"), "POST"; got != want {
					t.Errorf("Allow = %q, want %q", got, want)
				}
			}
			for _, s := range []string{e2eSecret, e2eOldSecret, e2eShortkit} {
				if strings.Contains(r.Raw, s) {
					t.Errorf("answer %q contains a secret", r.Raw)
				}
			}
		})
	}
}

// TestWrongSecretLeaksNothing: a request signed with another secret is 401,
// and the answer shows neither a configured secret nor the signature the
// server computed.
func TestWrongSecretLeaksNothing(t *testing.T) {
	ts := startServer(t, e2eConfig)
	now := time.Now()
	b := e2eBody(t, "wrong-secret", 0)
	h := signedHeaders(t, "sketchpen", e2eOtherKey, b, now)
	r, _ := mustDo(t, e2eClient, "POST", ts.URL+"/webhooks/sp", h, b, false)
	if got, want := r.Status, http.StatusUnauthorized; got != want {
		t.Fatalf("status = %d, want %d (%s)", got, want, r.Raw)
	}
	if r.Body["error"] == "" {
		t.Errorf("body %q has no error", r.Raw)
	}
	var forbidden []string
	for _, secret := range []string{e2eSecret, e2eOldSecret} {
		want := signedHeaders(t, "sketchpen", secret, b, now).Get("X-Sketchpen-Signature")
		hexSig := strings.TrimPrefix(want, "sha256=")
		forbidden = append(forbidden, secret, hexSig, strings.ToUpper(hexSig), hexSig[:16])
		if sig, err := hex.DecodeString(hexSig); err == nil {
			forbidden = append(forbidden, string(sig))
		}
	}
	for _, s := range forbidden {
		if strings.Contains(r.Raw, s) {
			t.Errorf("answer %q contains %q (a secret or the expected signature)", r.Raw, s)
		}
	}
}

// TestDuplicateAnswersFirstID: a retry of a stored webhook is 200
// "duplicate" with the first id, whatever its (fresh) signature.
func TestDuplicateAnswersFirstID(t *testing.T) {
	ts := startServer(t, e2eConfig)
	now := time.Now()
	b := e2eBody(t, "dup", 0)
	id := wantAccepted(t, post(t, ts.URL+"/webhooks/sp", signedHeaders(t, "sketchpen", e2eSecret, b, now), b))
	tests := []struct {
		name string
		h    http.Header
	}{
		{"same request", signedHeaders(t, "sketchpen", e2eSecret, b, now)},
		{"provider retry, re-signed later", signedHeaders(t, "sketchpen", e2eSecret, b, now.Add(2*time.Minute))},
		{"signed with the rotated-out secret", signedHeaders(t, "sketchpen", e2eOldSecret, b, now)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wantDuplicate(t, post(t, ts.URL+"/webhooks/sp", tt.h, b), id)
		})
	}
}

func TestSecretRotation(t *testing.T) {
	ts := startServer(t, e2eConfig)
	now := time.Now()
	tests := []struct {
		name   string
		secret string
		status int
	}{
		{"current secret", e2eSecret, 200},
		{"previous secret", e2eOldSecret, 200},
		{"unconfigured secret", e2eOtherKey, 401},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := e2eBody(t, "rot-"+tt.name, 0)
			r := post(t, ts.URL+"/webhooks/sp", signedHeaders(t, "sketchpen", tt.secret, b, now), b)
			if got, want := r.Status, tt.status; got != want {
				t.Fatalf("status = %d, want %d (%s)", got, want, r.Raw)
			}
			if tt.status == 200 {
				wantAccepted(t, r)
			}
		})
	}
}

// TestTimestampTolerance: sketchpen-prod with tolerance 5m, and shortkit's
// default of 300 s, in both directions. The margins (a minute either side)
// keep the test independent of how long a request takes.
func TestTimestampTolerance(t *testing.T) {
	ts := startServer(t, e2eConfig)
	tests := []struct {
		name     string
		source   string
		provider string
		secret   string
		skew     time.Duration
		status   int
	}{
		{"sketchpen 5m: 4m old passes", "sp", "sketchpen", e2eSecret, -4 * time.Minute, 200},
		{"sketchpen 5m: 6m old fails", "sp", "sketchpen", e2eSecret, -6 * time.Minute, 401},
		{"sketchpen 5m: 4m ahead passes", "sp", "sketchpen", e2eSecret, 4 * time.Minute, 200},
		{"sketchpen 5m: 6m ahead fails", "sp", "sketchpen", e2eSecret, 6 * time.Minute, 401},
		{"sketchpen default: 4m old passes", "sp2", "sketchpen", e2eSecret, -4 * time.Minute, 200},
		{"sketchpen default: 6m old fails", "sp2", "sketchpen", e2eSecret, -6 * time.Minute, 401},
		{"shortkit 300s default: 4m old passes", "sk", "shortkit", e2eShortkit, -4 * time.Minute, 200},
		{"shortkit 300s default: 6m old fails", "sk", "shortkit", e2eShortkit, -6 * time.Minute, 401},
		{"shortkit 300s default: 6m ahead fails", "sk", "shortkit", e2eShortkit, 6 * time.Minute, 401},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, _ := json.Marshal(map[string]any{"event": "content.imported", "video_id": fmt.Sprint("tol-", i),
				"created_at": 1_700_000_000, "data": map[string]any{"contentId": fmt.Sprint("c-", i)}})
			h := signedHeaders(t, tt.provider, tt.secret, b, time.Now().Add(tt.skew))
			r := post(t, ts.URL+"/webhooks/"+tt.source, h, b)
			if got, want := r.Status, tt.status; got != want {
				t.Fatalf("status = %d, want %d (%s)", got, want, r.Raw)
			}
			if tt.status == 200 {
				wantAccepted(t, r)
			} else if !strings.Contains(r.Body["error"], "timestamp") {
				t.Errorf("error %q does not name the timestamp", r.Body["error"])
			}
		})
	}
}

// TestConcurrentDuplicates: 50 identical deliveries at once are stored
// once; the 49 others answer "duplicate" with the winner's id.
func TestConcurrentDuplicates(t *testing.T) {
	ts := startServer(t, e2eConfig)
	const clients, rounds = 50, 6
	seen := map[string]bool{}
	for round := range rounds {
		t.Run(fmt.Sprint("round-", round), func(t *testing.T) {
			b := e2eBody(t, fmt.Sprint("race-", round), 0)
			h := signedHeaders(t, "sketchpen", e2eSecret, b, time.Now())
			results := make([]response, clients)
			errs := make([]error, clients)
			start := make(chan struct{})
			var wg sync.WaitGroup
			for i := range clients {
				wg.Go(func() {
					<-start
					results[i], _, errs[i] = doRequest(e2eClient, "POST", ts.URL+"/webhooks/sp", h, b, false)
				})
			}
			close(start)
			wg.Wait()
			var accepted []string
			ids := map[string]int{}
			for i, r := range results {
				if errs[i] != nil {
					t.Fatalf("client %d: %v", i, errs[i])
				}
				if r.Status != http.StatusOK {
					t.Fatalf("client %d: status %d (%s)", i, r.Status, r.Raw)
				}
				if r.Body["status"] == "accepted" {
					accepted = append(accepted, r.Body["id"])
				} else if r.Body["status"] != "duplicate" {
					t.Fatalf("client %d: %s", i, r.Raw)
				}
				ids[r.Body["id"]]++
			}
			if got, want := len(accepted), 1; got != want {
				t.Fatalf("%d answers were accepted (%v), want %d", got, accepted, want)
			}
			if got, want := ids[accepted[0]], clients; got != want {
				t.Errorf("%d answers carry the accepted id, want %d (ids: %v)", got, want, ids)
			}
			if seen[accepted[0]] {
				t.Errorf("round %d reused id %s", round, accepted[0])
			}
			seen[accepted[0]] = true
			if _, raw, _, err := ts.Store().LoadDelivery(context.Background(), accepted[0], "none"); err != nil || !bytes.Equal(raw, b) {
				t.Errorf("stored body = %q, %v; want the delivery", raw, err)
			}
		})
	}
}

// TestStoredEvent: what the store keeps of an accepted webhook.
func TestStoredEvent(t *testing.T) {
	ts := startServer(t, e2eConfig)
	const created = 1_700_000_123
	b := sketchpenBody("video.completed", "vid-42", created)
	now := time.Now()
	h := signedHeaders(t, "sketchpen", e2eSecret, b, now)
	h.Set("X-Custom", "kept")
	h.Set("Authorization", "Bearer do-not-store")
	before := time.Now().UTC()
	id := wantAccepted(t, post(t, ts.URL+"/webhooks/sp", h, b))
	after := time.Now().UTC()

	ev, raw, _, err := ts.Store().LoadDelivery(context.Background(), id, "none")
	if err != nil {
		t.Fatalf("LoadDelivery(%s): %v", id, err)
	}
	for _, c := range []struct{ field, got, want string }{
		{"id", ev.ID, id},
		{"source", ev.Source, "sp"},
		{"provider", ev.Provider, "sketchpen"},
		{"type", ev.Type, "video.completed"},
		{"subject", ev.Subject, "vid-42"},
		{"dedupe key", ev.DedupeKey, "video.completed:vid-42:" + strconv.Itoa(created)},
		{"time", ev.Time.UTC().Format(time.RFC3339), time.Unix(created, 0).UTC().Format(time.RFC3339)},
	} {
		if c.got != c.want {
			t.Errorf("%s = %q, want %q", c.field, c.got, c.want)
		}
	}
	if ev.ReceivedAt.Before(before.Truncate(time.Microsecond)) || ev.ReceivedAt.After(after) {
		t.Errorf("received_at %v is not within the request [%v, %v]", ev.ReceivedAt, before, after)
	}
	if !bytes.Equal(raw, b) {
		t.Errorf("raw body = %q, want %q", raw, b)
	}
	if len(ev.Targets) != 0 {
		t.Errorf("targets = %v, want none (unrouted)", ev.Targets)
	}
	for _, c := range []struct{ header, want string }{
		{"X-Sketchpen-Signature", "[redacted]"},
		{"Authorization", "[redacted]"},
		{"X-Sketchpen-Timestamp", h.Get("X-Sketchpen-Timestamp")},
		{"X-Custom", "kept"},
		{"Content-Type", "application/json"},
	} {
		if got := ev.Headers[c.header]; got != c.want {
			t.Errorf("stored header %s = %q, want %q", c.header, got, c.want)
		}
	}
	sig := strings.TrimPrefix(h.Get("X-Sketchpen-Signature"), "sha256=")
	for k, v := range ev.Headers {
		if strings.Contains(v, sig[:16]) || strings.Contains(v, "do-not-store") {
			t.Errorf("stored header %s = %q keeps a credential", k, v)
		}
	}
}

// TestDedupeSurvivesRestart: the claim is in Badger, not only in memory.
func TestDedupeSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	b := e2eBody(t, "restart", 0)
	h := signedHeaders(t, "sketchpen", e2eSecret, b, time.Now())

	first := startServer(t, e2eConfig, dir)
	id := wantAccepted(t, post(t, first.URL+"/webhooks/sp", h, b))
	first.Stop(t)

	second := startServer(t, e2eConfig, dir)
	wantDuplicate(t, post(t, second.URL+"/webhooks/sp", h, b), id)
	// The other sources never saw it.
	wantAccepted(t, post(t, second.URL+"/webhooks/sp2", h, b))
}

// TestDedupeKeys: the key is per source, and a dedupe_key override decides
// what counts as the same delivery. Steps run in order on one server.
func TestDedupeKeys(t *testing.T) {
	ts := startServer(t, e2eConfig)
	now := time.Now()
	bodyA, bodyB := e2eBody(t, "key-a", 0), e2eBody(t, "key-b", 0)
	steps := []struct {
		name      string
		source    string
		body      []byte
		requestID string
		dupOf     string // "" = accepted, else the name of the step it repeats
	}{
		{"A on sp", "sp", bodyA, "r1", ""},
		{"A on sp2: another source, another key", "sp2", bodyA, "r1", ""},
		{"A on byreq: another source again", "byreq", bodyA, "r1", ""},
		{"A on sp with another request id: default key ignores it", "sp", bodyA, "r2", "A on sp"},
		{"A on sp2 again", "sp2", bodyA, "r9", "A on sp2: another source, another key"},
		{"B on byreq with r1: same override key", "byreq", bodyB, "r1", "A on byreq: another source again"},
		{"A on byreq with r2: new override key", "byreq", bodyA, "r2", ""},
		{"B on byreq with r2", "byreq", bodyB, "r2", "A on byreq with r2: new override key"},
		{"B on sp: new default key", "sp", bodyB, "r1", ""},
	}
	ids := map[string]string{}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			h := signedHeaders(t, "sketchpen", e2eSecret, st.body, now)
			h.Set("X-Request-Id", st.requestID)
			r := post(t, ts.URL+"/webhooks/"+st.source, h, st.body)
			if st.dupOf == "" {
				id := wantAccepted(t, r)
				if slices.Contains(slices.Collect(maps.Values(ids)), id) {
					t.Errorf("id %s was given out before", id)
				}
				ids[st.name] = id
				return
			}
			wantDuplicate(t, r, ids[st.dupOf])
		})
	}
}

// TestStoreUnavailable: with the store closed, a new webhook is 503 with
// Retry-After, /readyz says not ready, and nothing was written: after a
// restart on the same directory the same webhook is new.
func TestStoreUnavailable(t *testing.T) {
	dir := t.TempDir()
	now := time.Now()
	stored := e2eBody(t, "before-close", 0)
	storedH := signedHeaders(t, "sketchpen", e2eSecret, stored, now)
	refused := e2eBody(t, "after-close", 0)
	refusedH := signedHeaders(t, "sketchpen", e2eSecret, refused, now)

	ts := startServer(t, e2eConfig, dir)
	id := wantAccepted(t, post(t, ts.URL+"/webhooks/sp", storedH, stored))
	if err := ts.Store().Close(context.Background()); err != nil {
		t.Fatalf("close store: %v", err)
	}
	r, hdr := mustDo(t, e2eClient, "POST", ts.URL+"/webhooks/sp", refusedH, refused, false)
	if got, want := r.Status, http.StatusServiceUnavailable; got != want {
		t.Fatalf("status = %d, want %d (%s)", got, want, r.Raw)
	}
	if hdr.Get("Retry-After") == "" {
		t.Errorf("503 without Retry-After")
	}
	if r.Body["error"] == "" {
		t.Errorf("body %q has no error", r.Raw)
	}
	if r, _ := mustDo(t, e2eClient, "GET", ts.URL+"/readyz", nil, nil, false); r.Status != http.StatusServiceUnavailable {
		t.Errorf("/readyz = %d %s with the store closed, want 503", r.Status, r.Raw)
	}
	if r, _ := mustDo(t, e2eClient, "GET", ts.URL+"/healthz", nil, nil, false); r.Status != http.StatusOK {
		t.Errorf("/healthz = %d %s, want 200 (the process is up)", r.Status, r.Raw)
	}
	ts.Stop(t)

	again := startServer(t, e2eConfig, dir)
	wantAccepted(t, post(t, again.URL+"/webhooks/sp", refusedH, refused))
	wantDuplicate(t, post(t, again.URL+"/webhooks/sp", storedH, stored), id)
}
