package relay_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hookrelay/hookrelay/providers"
	"github.com/hookrelay/hookrelay/providers/registry"
	"github.com/hookrelay/hookrelay/relay/config"
)

// Credentials of the leak test: configured secrets, a secret that signs
// the forged requests, the credentials every request carries, and the
// admin token. None may appear in a log line or a response.
const (
	leakSketchpen     = "leak-sketchpen-secret-5f1c"
	leakVideopilot    = "leak-videopilot-secret-9a2e"
	leakVideovec      = "leak-videovector-secret-77d0"
	leakShortkit      = "leak-shortkit-secret-c3b1"
	leakBodyOnly      = "leak-shortkit-bodyonly-4e7a"
	leakCallback      = "leak-callback-value-0b9f"
	leakHMAC          = "leak-generic-hmac-secret-d2c8"
	leakWrong         = "leak-wrong-secret-never-configured"
	leakAuth          = "Bearer leak-authorization-credential-8e21"
	leakCookie        = "session=leak-cookie-value-31fa"
	leakQueryToken    = "leak-query-token-6b0d"
	leakCallbackToken = "leak-callback-token-5d72"
	leakAdminToken    = "leak-admin-token-aa17"
	leakAdminWrong    = "leak-wrong-admin-token-0c44"
	leakMaxBody       = 2048
)

// leakStdWebhooks is the standard-webhooks secret (whsec_ + base64); its
// decoded key is leakStdKey.
const leakStdKey = "leak-standard-webhooks-key-91e3"

var leakStdWebhooks = "whsec_" + base64.StdEncoding.EncodeToString([]byte(leakStdKey))

// leakSource is one configured source of the leak test: its secrets and
// its provider's own options (to sign right and wrong) and a body it
// parses.
type leakSource struct {
	name, provider string
	secrets        []string
	opts           map[string]string
	body           []byte
	timestamped    bool // a stale timestamp is a 401
}

func leakSources() []leakSource {
	now := time.Now().Unix()
	return []leakSource{
		{"sp", "sketchpen", []string{leakSketchpen}, nil,
			sketchpenBody("video.completed", "leak-1", now), true},
		{"vp", "videopilot", []string{leakVideopilot}, nil,
			[]byte(`{"event":"video.completed","timestamp":1700000000,"data":{"video_id":"leak-2"}}`), false},
		{"vv", "videovector", []string{leakVideovec}, map[string]string{"webhook_id": "wh_leak"},
			[]byte(`{"id":"evt_leak","created_at":1700000000,"data":{"id":"leak-3"}}`), false},
		{"sk", "shortkit", []string{leakShortkit}, nil,
			[]byte(`{"event":"content.imported","timestamp":"2026-11-23T10:00:00Z","data":{"contentId":"leak-4"}}`), true},
		{"skb", "shortkit", []string{leakBodyOnly}, map[string]string{"scheme": "body-only"},
			[]byte(`{"event":"content.imported","timestamp":"2026-11-23T10:00:00Z","data":{"contentId":"leak-5"}}`), true},
		{"cb", "shortkit", nil, map[string]string{"scheme": "callback-header", "header": "X-Callback-Token", "value": leakCallback},
			[]byte(`{"event":"content.imported","timestamp":"2026-11-23T10:00:00Z","data":{"contentId":"leak-6"}}`), false},
		{"sw", "standard-webhooks", []string{leakStdWebhooks}, nil,
			[]byte(`{"type":"video.completed","data":{"id":"leak-7"}}`), true},
		{"hm", "hmac", []string{leakHMAC}, map[string]string{"signature_header": "X-Leak-Mac", "prefix": "sha256=",
			"template": "{timestamp}.{body}", "timestamp_header": "X-Leak-Time"},
			[]byte(`{"type":"video.completed","data":{"id":"leak-8"}}`), true},
	}
}

// leakSigner builds provider's adapter with secrets (none for the
// callback-header scheme) and its own options, for signing.
func leakSigner(t *testing.T, provider string, secrets []string, opts map[string]string) providers.Adapter {
	t.Helper()
	spec, err := registry.Lookup(provider)
	if err != nil {
		t.Fatal(err)
	}
	o := spec.NewOptions()
	for k, v := range opts {
		if err := providers.SetOption(o, k, v); err != nil {
			t.Fatal(err)
		}
	}
	var c providers.Common
	for _, s := range secrets {
		c.Secrets = append(c.Secrets, providers.Secret{Value: s})
	}
	a, err := o.New(c)
	if err != nil {
		t.Fatalf("new %s adapter: %v", provider, err)
	}
	return a
}

const leakConfig = `
server:
  listen: 127.0.0.1:0
  max_body_bytes: 2048
  max_in_flight: 1
  read_timeout: 2s
admin:
  listen: 127.0.0.1:0
  token: ` + leakAdminToken + `
storage:
  path: {{DATA}}
sources:
  sp: {provider: sketchpen, secrets: [` + leakSketchpen + `]}
  vp: {provider: videopilot, secrets: [` + leakVideopilot + `]}
  vv: {provider: videovector, secrets: [` + leakVideovec + `], webhook_id: wh_leak}
  sk: {provider: shortkit, secrets: [` + leakShortkit + `]}
  skb: {provider: shortkit, scheme: body-only, secrets: [` + leakBodyOnly + `]}
  cb: {provider: shortkit, scheme: callback-header, header: X-Callback-Token, value: ` + leakCallback + `}
  sw: {provider: standard-webhooks, secrets: ["{{SW}}"]}
  ct: {provider: shortkit, scheme: callback-token, secrets: [` + leakCallbackToken + `]}
  hm:
    provider: hmac
    secrets: [` + leakHMAC + `]
    signature_header: X-Leak-Mac
    prefix: sha256=
    template: "{timestamp}.{body}"
    timestamp_header: X-Leak-Time
`

// lockedBuffer is a log sink safe for concurrent writes.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// startLoggedServer is startServer with every log line, debug included,
// kept in the returned buffer instead of the test log.
func startLoggedServer(t *testing.T, yamlText string) (*testServer, *lockedBuffer) {
	t.Helper()
	yamlText = strings.ReplaceAll(yamlText, "{{DATA}}", t.TempDir())
	cfg, err := config.Parse("test.yaml", []byte(yamlText), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	logs := &lockedBuffer{}
	return runServer(t, cfg, slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))), logs
}

// credentials collects the strings that must never be logged or echoed:
// whole values and their long pieces (the hex or base64 part of
// "sha256=<hex>" or "v1,<base64>").
type credentials map[string]string // value -> what it is

func (c credentials) add(what string, values ...string) {
	for _, v := range values {
		c[v] = what
		for _, part := range strings.FieldsFunc(v, func(r rune) bool { return r == ',' || r == '=' || r == ' ' }) {
			if len(part) >= 12 {
				c[part] = what
			}
		}
	}
}

// addSignatures adds the values of h's credential headers.
func (c credentials) addSignatures(what string, h http.Header) {
	for k, v := range h {
		lk := strings.ToLower(k)
		if strings.Contains(lk, "signature") || lk == "x-leak-mac" || lk == "x-callback-token" {
			c.add(what+" "+k, v...)
		}
	}
}

// scan fails the test for every credential found in text.
func (c credentials) scan(t *testing.T, where, text string) {
	t.Helper()
	for _, v := range slices.Sorted(func(yield func(string) bool) {
		for v := range c {
			if !yield(v) {
				return
			}
		}
	}) {
		if strings.Contains(text, v) {
			t.Errorf("%s contains %s (%q)", where, c[v], v)
		}
	}
}

// withCreds returns h plus the Authorization and Cookie headers every
// leak-test request carries.
func withCreds(h http.Header) http.Header {
	h = h.Clone()
	if h == nil {
		h = http.Header{}
	}
	h.Set("Authorization", leakAuth)
	h.Set("Cookie", leakCookie)
	if h.Get("Content-Type") == "" {
		h.Set("Content-Type", "application/json")
	}
	return h
}

// TestRejectionsLeakNoSecrets sends every kind of rejected webhook (each
// 400, 401, 404, 405, 413, 503 reason, for every adapter, and the stalled
// body of read_timeout) and every kind of refused admin request, each
// carrying Authorization and Cookie values and a token in the query
// string; then it scans the server's whole log output (debug level) and
// every response body for a configured secret, a computed or received
// signature, the callback value, those credentials and the admin token.
func TestRejectionsLeakNoSecrets(t *testing.T) {
	ts, logs := startLoggedServer(t, strings.ReplaceAll(leakConfig, "{{SW}}", leakStdWebhooks))
	creds := credentials{}
	creds.add("a configured secret", leakSketchpen, leakVideopilot, leakVideovec, leakShortkit, leakBodyOnly,
		leakHMAC, leakStdWebhooks, strings.TrimPrefix(leakStdWebhooks, "whsec_"), leakStdKey)
	creds.add("the callback value", leakCallback)
	creds.add("the forging secret", leakWrong)
	creds.add("the Authorization value", leakAuth, strings.TrimPrefix(leakAuth, "Bearer "))
	creds.add("the Cookie value", leakCookie, strings.TrimPrefix(leakCookie, "session="))
	creds.add("the query token", leakQueryToken)
	creds.add("the callback token", leakCallbackToken)
	creds.add("the admin token", leakAdminToken)
	creds.add("a presented admin token", leakAdminWrong)

	client := &http.Client{Timeout: 10 * time.Second}
	var bodies []string
	send := func(what, method, url string, h http.Header, body []byte, chunked bool, want ...int) {
		t.Helper()
		r, _, err := doRequest(client, method, url, h, body, chunked)
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		if !slices.Contains(want, r.Status) {
			t.Errorf("%s: status %d (%s), want one of %v", what, r.Status, r.Raw, want)
		}
		bodies = append(bodies, what+": "+r.Raw)
	}
	q := "?token=" + leakQueryToken
	now := time.Now()
	for _, src := range leakSources() {
		url := ts.URL + "/webhooks/" + src.name + q
		right := leakSigner(t, src.provider, src.secrets, src.opts)
		wrongSecrets, wrongOpts := []string{leakWrong}, src.opts
		switch {
		case src.provider == "standard-webhooks":
			wrongSecrets = []string{"whsec_" + base64.StdEncoding.EncodeToString([]byte(leakWrong))}
		case src.secrets == nil:
			wrongSecrets, wrongOpts = nil, maps.Clone(src.opts)
			wrongOpts["value"] = leakWrong
		}
		good, err := right.Sign(src.body, now)
		if err != nil {
			t.Fatal(err)
		}
		forged, err := leakSigner(t, src.provider, wrongSecrets, wrongOpts).Sign(src.body, now)
		if err != nil {
			t.Fatal(err)
		}
		creds.addSignatures(src.name+": the computed signature", good)
		creds.addSignatures(src.name+": a received signature", forged)

		send(src.name+" wrong secret", "POST", url, withCreds(forged), src.body, false, http.StatusUnauthorized)
		// Malformed: the valid signature with one byte more.
		malformed := good.Clone()
		for k, v := range malformed {
			if lk := strings.ToLower(k); strings.Contains(lk, "signature") || lk == "x-leak-mac" {
				malformed.Set(k, v[0]+"!")
			}
		}
		if src.name != "cb" {
			send(src.name+" malformed signature", "POST", url, withCreds(malformed), src.body, false, http.StatusBadRequest)
			notJSON := []byte("not json " + leakCookie)
			h, err := right.Sign(notJSON, now)
			if err != nil {
				// Adapters that sign canonical JSON cannot sign a non-JSON body.
				h = good
			}
			creds.addSignatures(src.name+": the computed signature", h)
			send(src.name+" body not JSON", "POST", url, withCreds(h), notJSON, false, http.StatusBadRequest, http.StatusUnauthorized)
		}
		missing := good.Clone()
		for k := range missing {
			if lk := strings.ToLower(k); strings.Contains(lk, "signature") || lk == "x-leak-mac" || lk == "x-callback-token" {
				missing.Del(k)
			}
		}
		send(src.name+" signature missing", "POST", url, withCreds(missing), src.body, false, http.StatusBadRequest)
		if src.timestamped {
			stale, err := right.Sign(src.body, now.Add(-time.Hour))
			if err != nil {
				t.Fatal(err)
			}
			creds.addSignatures(src.name+": the computed signature", stale)
			send(src.name+" stale timestamp", "POST", url, withCreds(stale), src.body, false, http.StatusUnauthorized)
		}
		if src.provider == "videovector" {
			other := good.Clone()
			other.Set("X-Webhook-ID", "wh_someone_else")
			send(src.name+" webhook id mismatch", "POST", url, withCreds(other), src.body, false, http.StatusUnauthorized)
		}
	}

	// The callback token travels in the URL query.
	ct := ts.URL + "/webhooks/ct"
	ctBody := []byte(`{"event":"content.imported","timestamp":1700000000,"data":{"contentId":"leak-9"}}`)
	send("ct wrong token", "POST", ct+"?token="+leakWrong, withCreds(nil), ctBody, false, http.StatusUnauthorized)
	send("ct no token", "POST", ct, withCreds(nil), ctBody, false, http.StatusBadRequest)
	send("ct body not JSON", "POST", ct+"?token="+leakCallbackToken, withCreds(nil), []byte("not json"), false, http.StatusBadRequest)
	send("ct GET", "GET", ct+"?token="+leakCallbackToken, withCreds(nil), nil, false, http.StatusMethodNotAllowed)

	sp := leakSources()[0]
	spSigner := leakSigner(t, sp.provider, sp.secrets, sp.opts)
	big := e2eBody(t, "leak-big", leakMaxBody+100)
	bigH, err := spSigner.Sign(big, now)
	if err != nil {
		t.Fatal(err)
	}
	creds.addSignatures("sp: the computed signature", bigH)
	spURL := ts.URL + "/webhooks/sp" + q
	send("unknown source", "POST", ts.URL+"/webhooks/nope"+q, withCreds(bigH), sp.body, false, http.StatusNotFound)
	send("unknown path", "GET", ts.URL+"/api/events"+q, withCreds(nil), nil, false, http.StatusNotFound)
	send("GET on a source", "GET", spURL, withCreds(nil), nil, false, http.StatusMethodNotAllowed)
	send("Content-Length too large", "POST", spURL, withCreds(bigH), big, false, http.StatusRequestEntityTooLarge)
	send("chunked body too large", "POST", spURL, withCreds(bigH), big, true, http.StatusRequestEntityTooLarge)

	// A stalled upload does not hold the one in-flight slot (a request
	// counts once its body is in): the next webhook gets 200; the stalled
	// one is cut off with 408.
	spH, err := spSigner.Sign(sp.body, now)
	if err != nil {
		t.Fatal(err)
	}
	creds.addSignatures("sp: the computed signature", spH)
	stalled := stallUpload(t, ts.Addr("public"), "/webhooks/sp"+q, withCreds(spH), sp.body)
	time.Sleep(100 * time.Millisecond) // let the server read the stalled request's headers
	r, _, err := doRequest(client, "POST", spURL, withCreds(spH), sp.body, false)
	if err != nil {
		t.Fatal(err)
	}
	bodies = append(bodies, "beside a stalled upload: "+r.Raw)
	if r.Status != http.StatusOK {
		t.Errorf("webhook beside a stalled upload: %d %s, want 200", r.Status, r.Raw)
	}
	status, raw := stalled()
	if status != http.StatusRequestTimeout {
		t.Errorf("stalled upload: status %d (%s), want 408", status, raw)
	}
	bodies = append(bodies, "stalled: "+raw)

	// The admin API refuses, and its error bodies hold no credential.
	admin := "http://" + ts.Addr("admin")
	wrongAdmin := http.Header{"Authorization": {"Bearer " + leakAdminWrong}, "Cookie": {leakCookie}}
	goodAdmin := http.Header{"Authorization": {"Bearer " + leakAdminToken}, "Cookie": {leakCookie}}
	send("admin without token", "GET", admin+"/api/events"+q, http.Header{"Cookie": {leakCookie}}, nil, false, http.StatusUnauthorized)
	send("admin wrong token", "GET", admin+"/api/events"+q, wrongAdmin, nil, false, http.StatusUnauthorized)
	send("admin wrong token, replay", "POST", admin+"/api/replay", withContentType(wrongAdmin), []byte(`{"all":true}`), false, http.StatusUnauthorized)
	send("admin bad limit", "GET", admin+"/api/events?limit=0&token="+leakQueryToken, goodAdmin, nil, false, http.StatusBadRequest)
	send("admin bad since", "GET", admin+"/api/events?since=yesterday&token="+leakQueryToken, goodAdmin, nil, false, http.StatusBadRequest)
	send("admin unknown event", "GET", admin+"/api/events/01M8NOSUCHEVENT0000000000"+q, goodAdmin, nil, false, http.StatusNotFound)
	send("admin bad replay", "POST", admin+"/api/replay", withContentType(goodAdmin), []byte(`{"filter":{"ids":[1]}}`), false, http.StatusBadRequest)
	send("admin not JSON", "POST", admin+"/api/replay", goodAdmin, []byte("all"), false, http.StatusUnsupportedMediaType)
	send("admin cross-origin", "GET", admin+"/api/events", withOrigin(goodAdmin), nil, false, http.StatusForbidden)

	// Last: the store goes away under the server (503, logged as an error).
	if err := ts.Store().Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	fresh := sketchpenBody("video.completed", "leak-after-close", now.Unix())
	freshH, err := spSigner.Sign(fresh, now)
	if err != nil {
		t.Fatal(err)
	}
	creds.addSignatures("sp: the computed signature", freshH)
	send("store unavailable", "POST", spURL, withCreds(freshH), fresh, false, http.StatusServiceUnavailable)
	ts.Stop(t)

	out := logs.String()
	for _, want := range []string{"webhook rejected", "store event"} {
		if !strings.Contains(out, want) {
			t.Errorf("the log has no %q line: the scan would miss what it should check\n%s", want, out)
		}
	}
	creds.scan(t, "the server log", out)
	creds.scan(t, "a response body", strings.Join(bodies, "\n"))
	if t.Failed() {
		t.Logf("server log:\n%s", out)
	}
}

func withContentType(h http.Header) http.Header {
	h = h.Clone()
	h.Set("Content-Type", "application/json")
	return h
}

func withOrigin(h http.Header) http.Header {
	h = h.Clone()
	h.Set("Origin", "https://evil.example")
	return h
}

// stallUpload sends a request whose body stops half-way and returns a
// function that waits for the server's answer (status, raw response).
func stallUpload(t *testing.T, addr, path string, h http.Header, body []byte) func() (int, string) {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	var req bytes.Buffer
	fmt.Fprintf(&req, "POST %s HTTP/1.1\r\nHost: %s\r\nContent-Length: %d\r\n", path, addr, len(body))
	for k, v := range h {
		for _, x := range v {
			fmt.Fprintf(&req, "%s: %s\r\n", k, x)
		}
	}
	req.WriteString("\r\n")
	req.Write(body[:len(body)/2])
	if _, err := conn.Write(req.Bytes()); err != nil {
		t.Fatal(err)
	}
	return func() (int, string) {
		t.Helper()
		_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			t.Fatalf("stalled upload: no answer: %v", err)
		}
		defer resp.Body.Close()
		var b bytes.Buffer
		_, _ = b.ReadFrom(resp.Body)
		return resp.StatusCode, b.String()
	}
}
