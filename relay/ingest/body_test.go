package ingest_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hookrelay/hookrelay/providers"
	"github.com/hookrelay/hookrelay/providers/providertest"
	"github.com/hookrelay/hookrelay/relay/ingest"
	"github.com/hookrelay/hookrelay/relay/storage"
)

const testSecret = "whsec_body_test"

// fakeStore keeps copies of what it is given; block, when set, holds
// Ingest until it is closed; err fails it.
type fakeStore struct {
	mu      sync.Mutex
	bodies  map[string][]byte
	n       int
	block   chan struct{}
	entered chan struct{} // with block: told when an Ingest waits
	err     error
	ready   error
	retain  bool // keep raw itself, as a store may after Ingest returns
}

// hold makes Ingest wait until the returned func is called.
func (f *fakeStore) hold() (entered <-chan struct{}, release func()) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.block, f.entered = make(chan struct{}), make(chan struct{}, 100)
	block := f.block
	return f.entered, func() {
		f.mu.Lock()
		f.block = nil
		f.mu.Unlock()
		close(block)
	}
}

func (f *fakeStore) Ingest(ctx context.Context, ev *storage.Event, raw []byte) (storage.Result, error) {
	f.mu.Lock()
	block, entered := f.block, f.entered
	f.mu.Unlock()
	if block != nil {
		entered <- struct{}{}
		<-block
	}
	if f.err != nil {
		return storage.Result{}, f.err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.n++
	id := fmt.Sprint("ev-", f.n)
	if f.bodies == nil {
		f.bodies = map[string][]byte{}
	}
	f.bodies[id] = bytes.Clone(raw)
	if f.retain {
		f.bodies[id] = raw
	}
	return storage.Result{ID: id}, nil
}

func (f *fakeStore) Ready() error { return f.ready }

type noRoutes struct{}

func (noRoutes) Targets(string, string, string) []string { return nil }

type countMetrics struct {
	mu sync.Mutex
	n  map[string]int
}

func (m *countMetrics) Received(source, outcome string, d time.Duration) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.n == nil {
		m.n = map[string]int{}
	}
	m.n[outcome]++
}

func (m *countMetrics) get(outcome string) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.n[outcome]
}

type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// serve runs h behind a real http.Server on 127.0.0.1 with the given
// server-level read/write timeouts and returns its address.
func serve(t *testing.T, h *ingest.Handler, readTimeout, writeTimeout time.Duration) string {
	t.Helper()
	if h.Routing == nil {
		rt := &ingest.Routing{
			Sources: map[string]*providers.Source{"sp": {Name: "sp", Provider: "sketchpen", Adapter: sketchpenAdapter(t)}},
			Router:  noRoutes{},
		}
		h.Routing = func() *ingest.Routing { return rt }
	}
	if h.Log == nil {
		h.Log = slog.New(slog.DiscardHandler)
	}
	if h.MaxBody == 0 {
		h.MaxBody = 1 << 20
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second, ReadTimeout: readTimeout, WriteTimeout: writeTimeout}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String()
}

func sketchpenAdapter(t *testing.T) providers.Adapter {
	return providertest.NewAdapter(t, "sketchpen", providertest.Config{Common: providers.Common{Secrets: providertest.SecretsOf(testSecret)}})
}

// signed returns a signed sketchpen body and its headers.
func signed(t *testing.T, n int) ([]byte, http.Header) {
	t.Helper()
	a := sketchpenAdapter(t)
	body := []byte(fmt.Sprintf(`{"event":"video.completed","video_id":"v-%d","created_at":%d,"pad":%q}`, n, time.Now().Unix(), strings.Repeat("x", n%700)))
	h, err := a.Sign(body, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return body, h
}

func postSigned(t *testing.T, addr string, n int) (int, http.Header) {
	t.Helper()
	body, h := signed(t, n)
	req, _ := http.NewRequest(http.MethodPost, "http://"+addr+"/webhooks/sp", bytes.NewReader(body))
	req.Header = h
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("post: %v", err)
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, resp.Header
}

// slowUpload opens a connection, sends the headers of a POST with
// Content-Length length and the first sent bytes of its body, and leaves
// the rest unsent.
func slowUpload(t *testing.T, addr string, length, sent int) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	fmt.Fprintf(c, "POST /webhooks/sp HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n", addr, length)
	c.Write(bytes.Repeat([]byte("x"), sent))
	return c
}

// readAnswer reads one HTTP response from c (within 5s) and checks that
// the server then closes the connection.
func readAnswer(t *testing.T, c net.Conn) (*http.Response, map[string]string) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("no answer before the connection closed: %v", err)
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var m map[string]string
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Errorf("answer %d body %q is not JSON", resp.StatusCode, raw)
	}
	if _, err := br.ReadByte(); err != io.EOF {
		t.Errorf("connection still open after the answer (err %v)", err)
	}
	return resp, m
}

// TestStalledBodyGets408: a body that stops arriving is cut off once a
// window after the grace period brings less than min_body_rate, with a
// 408 sent before the connection closes.
func TestStalledBodyGets408(t *testing.T) {
	m := &countMetrics{}
	addr := serve(t, &ingest.Handler{Store: &fakeStore{}, Metrics: m, ReadTimeout: 10 * time.Second,
		MinBodyRate: 64 << 10, BodyGrace: 200 * time.Millisecond}, 10*time.Second, 10*time.Second)
	start := time.Now()
	c := slowUpload(t, addr, 5000, 100)
	resp, body := readAnswer(t, c)
	if resp.StatusCode != http.StatusRequestTimeout || !strings.Contains(body["error"], "min_body_rate") {
		t.Fatalf("answer %d %v, want 408 naming min_body_rate", resp.StatusCode, body)
	}
	if el := time.Since(start); el > 2*time.Second {
		t.Errorf("cut after %v, want about two grace periods", el)
	}
	if got := m.get(ingest.OutcomeTimeout); got != 1 {
		t.Errorf("timeout outcomes = %d, want 1", got)
	}
	// A client keeping the rate is not cut: 1 KiB every 50ms is 20 KiB/s
	// against a required 8 KiB/s.
	addr = serve(t, &ingest.Handler{Store: &fakeStore{}, ReadTimeout: 10 * time.Second,
		MinBodyRate: 8 << 10, BodyGrace: 200 * time.Millisecond}, 10*time.Second, 10*time.Second)
	body2, h := signed(t, 1)
	pr, pw := io.Pipe()
	go func() {
		for i := 0; i < len(body2); i += 100 {
			pw.Write(body2[i:min(i+100, len(body2))])
			time.Sleep(50 * time.Millisecond)
		}
		pw.Close()
	}()
	req, _ := http.NewRequest(http.MethodPost, "http://"+addr+"/webhooks/sp", pr)
	req.Header = h
	req.ContentLength = int64(len(body2))
	r2, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	r2.Body.Close()
	if r2.StatusCode != http.StatusOK {
		t.Errorf("steady slow body: %d, want 200", r2.StatusCode)
	}
}

// TestBodyPastReadTimeoutGets408: a body still arriving (fast enough for
// the rate) when server.read_timeout ends is answered 408 before the
// connection closes, even with the http.Server's own read and write
// timeouts set to the same value as in production.
func TestBodyPastReadTimeoutGets408(t *testing.T) {
	const rt = 700 * time.Millisecond
	addr := serve(t, &ingest.Handler{Store: &fakeStore{}, ReadTimeout: rt}, rt, rt)
	for _, chunked := range []bool{false, true} {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if chunked {
			fmt.Fprintf(c, "POST /webhooks/sp HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
		} else {
			fmt.Fprintf(c, "POST /webhooks/sp HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n")
		}
		stop := make(chan struct{})
		go func() {
			for {
				select {
				case <-stop:
					return
				case <-time.After(50 * time.Millisecond):
				}
				if chunked {
					c.Write([]byte("1\r\nx\r\n"))
				} else {
					c.Write([]byte("x"))
				}
			}
		}()
		start := time.Now()
		resp, body := readAnswer(t, c)
		close(stop)
		if resp.StatusCode != http.StatusRequestTimeout || !strings.Contains(body["error"], "read_timeout") {
			t.Errorf("chunked=%v: answer %d %v, want 408 naming read_timeout", chunked, resp.StatusCode, body)
		}
		if el := time.Since(start); el < rt/2 || el > 3*rt {
			t.Errorf("chunked=%v: answered after %v, want about %v", chunked, el, rt)
		}
	}
}

// TestBodyBudget: bodies reserve their length in server.max_buffered_bytes
// before they are read; past it the answer is 503 with Retry-After, large
// bodies never take the last quarter (small webhooks still get in), and
// the budget is back to zero once the connections are gone.
func TestBodyBudget(t *testing.T) {
	budget := ingest.NewBudget(256 << 10)
	st := &fakeStore{}
	addr := serve(t, &ingest.Handler{Store: st, Budget: budget, ReadTimeout: 2 * time.Second}, 10*time.Second, 10*time.Second)
	first := slowUpload(t, addr, 100<<10, 10)
	waitFor(t, "the first upload to reserve", func() bool { return budget.InUse() > 0 })
	second := slowUpload(t, addr, 100<<10, 10)
	resp, body := readAnswer(t, second)
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" || body["error"] == "" {
		t.Fatalf("second large upload: %d %v (Retry-After %q), want 503 with Retry-After", resp.StatusCode, body, resp.Header.Get("Retry-After"))
	}
	for i := range 20 {
		if code, _ := postSigned(t, addr, i); code != http.StatusOK {
			t.Fatalf("small webhook %d with the large share in use: %d", i, code)
		}
	}
	first.Close()
	waitFor(t, "the budget to be free again", func() bool { return budget.InUse() == 0 })
	// Bodies came through the pooled buffers intact.
	st.mu.Lock()
	defer st.mu.Unlock()
	for id, b := range st.bodies {
		if !json.Valid(b) {
			t.Errorf("%s: stored body %q is not the JSON sent", id, b)
		}
	}
}

// TestInFlightCountsStoredOnly: a client that sends its body slowly does
// not hold a max_in_flight slot; webhooks being verified and stored do,
// and past the limit the answer is 503 with Retry-After.
func TestInFlightCountsStoredOnly(t *testing.T) {
	st := &fakeStore{}
	m := &countMetrics{}
	addr := serve(t, &ingest.Handler{Store: st, Metrics: m, InFlight: ingest.NewInFlight(1)}, 10*time.Second, 10*time.Second)
	slowUpload(t, addr, 1000, 10)
	time.Sleep(50 * time.Millisecond)
	if code, _ := postSigned(t, addr, 1); code != http.StatusOK {
		t.Fatalf("webhook beside a slow upload: %d, want 200", code)
	}
	entered, release := st.hold()
	held := make(chan int, 1)
	go func() { c, _ := postSigned(t, addr, 2); held <- c }()
	<-entered
	code, h := postSigned(t, addr, 3)
	if code != http.StatusServiceUnavailable || h.Get("Retry-After") == "" {
		t.Errorf("webhook while the only slot is storing: %d (Retry-After %q), want 503 with Retry-After", code, h.Get("Retry-After"))
	}
	release()
	if code := <-held; code != http.StatusOK {
		t.Errorf("held webhook: %d", code)
	}
	if m.get(ingest.OutcomeBusy) < 1 {
		t.Error("busy outcome not counted")
	}
}

// TestRejectionsCountedNotAllLogged: a flood of bad signatures is counted
// in full by the metrics but logs only the first few lines.
func TestRejectionsCountedNotAllLogged(t *testing.T) {
	var logs syncBuf
	m := &countMetrics{}
	addr := serve(t, &ingest.Handler{Store: &fakeStore{}, Metrics: m, Log: slog.New(slog.NewTextHandler(&logs, nil))}, 10*time.Second, 10*time.Second)
	for i := range 30 {
		body, h := signed(t, i)
		h.Set("X-Sketchpen-Signature", "sha256="+strings.Repeat("0", 64))
		req, _ := http.NewRequest(http.MethodPost, "http://"+addr+"/webhooks/sp", bytes.NewReader(body))
		req.Header = h
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("status %d, want 401", resp.StatusCode)
		}
	}
	if got := m.get(ingest.OutcomeBadSig); got != 30 {
		t.Errorf("counted %d rejections, want 30", got)
	}
	if got := strings.Count(logs.String(), "webhook rejected"); got != 5 {
		t.Errorf("%d rejection lines, want 5:\n%s", got, logs.String())
	}
}

// TestLowSpaceAnswers: with the store refusing for lack of disk space,
// webhooks get 503 with Retry-After and /readyz 503 with the reason and
// the figures.
func TestLowSpaceAnswers(t *testing.T) {
	lse := &storage.LowSpaceError{Path: "/data", Free: 5 << 20, Min: 256 << 20}
	m := &countMetrics{}
	addr := serve(t, &ingest.Handler{Store: &fakeStore{err: lse, ready: lse}, Metrics: m}, 10*time.Second, 10*time.Second)
	code, h := postSigned(t, addr, 1)
	if code != http.StatusServiceUnavailable || h.Get("Retry-After") == "" {
		t.Errorf("webhook on a full disk: %d (Retry-After %q), want 503 with Retry-After", code, h.Get("Retry-After"))
	}
	if m.get(ingest.OutcomeLowSpace) != 1 {
		t.Error("low-space outcome not counted")
	}
	resp, err := http.Get("http://" + addr + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var ready map[string]any
	json.NewDecoder(resp.Body).Decode(&ready)
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(fmt.Sprint(ready["reason"]), "disk nearly full") ||
		ready["free_bytes"] != float64(5<<20) || ready["min_free_bytes"] != float64(256<<20) {
		t.Errorf("/readyz = %d %v, want 503 with reason and figures", resp.StatusCode, ready)
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestBodiesNotReused: the bytes handed to the store are its own: a store
// that keeps them after Ingest returns (a retried publish) never sees them
// overwritten by a later request reusing a pooled buffer.
func TestBodiesNotReused(t *testing.T) {
	st := &fakeStore{retain: true}
	addr := serve(t, &ingest.Handler{Store: st, Budget: ingest.NewBudget(1 << 20)}, 10*time.Second, 10*time.Second)
	for i := range 50 {
		if code, _ := postSigned(t, addr, i); code != http.StatusOK {
			t.Fatalf("webhook %d: %d", i, code)
		}
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	seen := map[string]bool{}
	for id, b := range st.bodies {
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatalf("%s: kept body %.80q is not the JSON sent: %v", id, b, err)
		}
		seen[fmt.Sprint(m["video_id"])] = true
	}
	if len(seen) != 50 {
		t.Errorf("kept bodies name %d distinct videos, want 50 (a buffer was reused under the store)", len(seen))
	}
}
