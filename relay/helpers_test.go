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

// startServer parses yamlText (with {{DATA}} replaced by a fresh storage
// directory unless dataDir is given), starts the server and stops it at the
// end of the test.
func startServer(t *testing.T, yamlText string, dataDir ...string) *testServer {
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
func (ts *testServer) Stop(t *testing.T) {
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
type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// signer returns the adapter of provider built with opts, for signing.
func signer(t *testing.T, provider string, opts providers.Options) providers.Adapter {
	t.Helper()
	a, err := registry.New(provider, opts)
	if err != nil {
		t.Fatalf("registry.New(%s): %v", provider, err)
	}
	return a
}

// signedHeaders signs body as provider would with secret at now.
func signedHeaders(t *testing.T, provider, secret string, body []byte, now time.Time) http.Header {
	t.Helper()
	h, err := signer(t, provider, providers.Options{Secrets: []string{secret}}).Sign(body, now)
	if err != nil {
		t.Fatalf("sign: %v", err)
	}
	return h
}

// response is a decoded JSON answer of the public listener.
type response struct {
	Status int
	Body   map[string]string
	Raw    string
}

// post sends body with headers h to url.
func post(t *testing.T, url string, h http.Header, body []byte) response {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range h {
		req.Header[k] = v
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("POST %s: %v", url, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	r := response{Status: resp.StatusCode, Raw: string(raw)}
	_ = json.Unmarshal(raw, &r.Body)
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
