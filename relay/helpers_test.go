package relay_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/hookrelay/hookrelay/providers"
	"github.com/hookrelay/hookrelay/providers/registry"
	"github.com/hookrelay/hookrelay/relay"
	"github.com/hookrelay/hookrelay/relay/config"
)

// testServer is a relay.Server running on loopback for one test.
type testServer struct {
	*relay.Server
	URL    string // http://127.0.0.1:port of the public listener
	cfg    *config.Config
	cancel context.CancelFunc
	done   chan error
}

// loopbackConfig returns the start of an end-to-end test config: the
// public and admin listeners on ephemeral loopback ports, storage in
// {{DATA}} (see startServer) and warn-level logs. serverLines and
// adminLines add settings to those sections ("" for none); the test
// appends its sources, targets and routes.
func loopbackConfig(serverLines, adminLines string) string {
	return `
server:
  listen: 127.0.0.1:0
` + serverLines + `admin:
  listen: 127.0.0.1:0
` + adminLines + `storage:
  path: {{DATA}}
log:
  level: warn
`
}

// startServer parses yamlText (with {{DATA}} replaced by a fresh storage
// directory unless dataDir is given), starts the server and stops it at the
// end of the test or benchmark.
func startServer(t testing.TB, yamlText string, dataDir ...string) *testServer {
	t.Helper()
	dir := t.TempDir()
	if len(dataDir) > 0 {
		dir = dataDir[0]
	}
	yamlText = strings.ReplaceAll(yamlText, "{{DATA}}", dir)
	cfg, err := config.Parse("test.yaml", []byte(yamlText), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	log := slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
	if os.Getenv("HOOKRELAY_TEST_DEBUG") != "" {
		log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return runServer(t, cfg, log)
}

// runServer starts a server for cfg that logs to log and stops it at the
// end of the test.
func runServer(t testing.TB, cfg *config.Config, log *slog.Logger) *testServer {
	t.Helper()
	srv, err := relay.New(cfg, log, "test")
	if err != nil {
		t.Fatalf("relay.New: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	if err := srv.Start(ctx); err != nil {
		cancel()
		t.Fatalf("Start: %v", err)
	}
	ts := &testServer{Server: srv, URL: "http://" + srv.Addr("public"), cfg: cfg, cancel: cancel, done: make(chan error, 1)}
	go func() { ts.done <- srv.Run(ctx) }()
	t.Cleanup(func() { ts.Stop(t) })
	return ts
}

// Stop shuts the server down (idempotent).
func (ts *testServer) Stop(t testing.TB) {
	t.Helper()
	if ts.cancel == nil {
		return
	}
	ts.cancel()
	ts.cancel = nil
	select {
	case err := <-ts.done:
		if err != nil {
			t.Errorf("Run: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("server did not stop within 30s")
	}
}

// testWriter sends log output to t.Log.
type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// signer returns the adapter of provider built with opts, for signing.
// signer builds the adapter of provider with secret and the provider's
// own options (config keys and values).
func signer(t testing.TB, provider, secret string, opts map[string]string) providers.Adapter {
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
	a, err := o.New(providers.Common{Secrets: []providers.Secret{{Value: secret}}})
	if err != nil {
		t.Fatalf("new %s adapter: %v", provider, err)
	}
	return a
}

// signedHeaders signs body as provider would with secret at now.
func signedHeaders(t *testing.T, provider, secret string, body []byte, now time.Time) http.Header {
	t.Helper()
	h, err := signer(t, provider, secret, nil).Sign(body, now)
	if err != nil {
		t.Fatalf("sign: %v", err)
	}
	return h
}

// response is a decoded JSON answer of the relay.
type response struct {
	Status int
	Proto  string // HTTP/1.1, HTTP/2.0
	Body   map[string]string
	Raw    string
}

// doRequest sends a request with client and returns the decoded answer and
// its headers, or an error; it may run on any goroutine. chunked sends the
// body with chunked transfer encoding instead of a Content-Length.
func doRequest(client *http.Client, method, url string, h http.Header, body []byte, chunked bool) (response, http.Header, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		return response{}, nil, err
	}
	for k, v := range h {
		req.Header[k] = v
	}
	if chunked {
		req.ContentLength = -1
		req.TransferEncoding = []string{"chunked"}
		req.Body = io.NopCloser(bytes.NewReader(body))
	}
	resp, err := client.Do(req)
	if err != nil {
		return response{}, nil, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return response{}, nil, err
	}
	r := response{Status: resp.StatusCode, Proto: resp.Proto, Raw: string(raw)}
	_ = json.Unmarshal(raw, &r.Body)
	return r, resp.Header, nil
}

// mustDo is doRequest on the test's goroutine: an error ends the test.
func mustDo(t *testing.T, client *http.Client, method, url string, h http.Header, body []byte, chunked bool) (response, http.Header) {
	t.Helper()
	r, hdr, err := doRequest(client, method, url, h, body, chunked)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	return r, hdr
}

// post sends body with headers h and Content-Type application/json to url.
func post(t *testing.T, url string, h http.Header, body []byte) response {
	t.Helper()
	h = h.Clone()
	if h == nil {
		h = http.Header{}
	}
	h.Set("Content-Type", "application/json")
	r, _ := mustDo(t, http.DefaultClient, http.MethodPost, url, h, body, false)
	return r
}

// sketchpenBody returns a sketchpen webhook body for video id.
func sketchpenBody(event, videoID string, createdAt int64) []byte {
	b, _ := json.Marshal(map[string]any{"event": event, "video_id": videoID, "created_at": createdAt, "data": map[string]any{"duration": 12.5}})
	return b
}

// waitFor polls cond every 10ms until it holds or timeout passes.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
