package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const ssSinkSecret = "whsec_c2luay1zZWNyZXQtZm9yLXRlc3Rz" // base64("sink-secret-for-tests")

// ssSink is a running `hookrelay sink --json`.
type ssSink struct{ *cliProc }

func startSSSink(t *testing.T) *ssSink {
	t.Helper()
	p, err := cliStart(t, cliEnv(), []string{"sink", "--listen", "127.0.0.1:0", "--json", "--secret", ssSinkSecret}, "sink")
	if err != nil {
		t.Fatal(err)
	}
	return &ssSink{p}
}

// received returns the sink's complete JSON lines so far, decoded.
func (s *ssSink) received(t *testing.T) []sinkLine {
	t.Helper()
	lines := strings.Split(s.stdout.String(), "\n")
	lines = lines[:len(lines)-1] // the last is empty or still being written
	out := make([]sinkLine, 0, len(lines))
	for _, l := range lines {
		var sl sinkLine
		if err := json.Unmarshal([]byte(l), &sl); err != nil {
			t.Fatalf("sink printed a line that is not JSON: %q", l)
		}
		out = append(out, sl)
	}
	return out
}

type sinkLine struct {
	ReceivedAt time.Time `json:"received_at"`
	Verified   bool      `json:"verified"`
	Event      struct {
		ID, Type, Source, Provider string
	} `json:"event"`
}

// ssSecrets are the sources' signing secrets, by provider.
var ssSecrets = map[string]string{
	"sketchpen":         "whsec_sketchpen-test",
	"videopilot":        "videopilot-test",
	"videovector":       "videovector-test",
	"shortkit":          "whsec_shortkit-test",
	"standard-webhooks": "whsec_c3RhbmRhcmQtdGVzdA==",
}

func ssConfig(t *testing.T, sinkAddr string) string {
	t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "server:\n  listen: 127.0.0.1:0\nadmin:\n  listen: \"\"\nstorage:\n  path: %q\nlog:\n  format: json\nsources:\n", t.TempDir())
	for p, sec := range ssSecrets {
		fmt.Fprintf(&b, "  %s-src:\n    provider: %s\n    secrets: [%q]\n", p, p, sec)
	}
	fmt.Fprintf(&b, "targets:\n  sink:\n    url: http://%s/events\n    signing_secret: %s\n    retry: {initial_backoff: 50ms}\nroutes:\n  - targets: [sink]\n", sinkAddr, ssSinkSecret)
	return cliWriteConfig(t, b.String())
}

// TestSendThroughRelayToSink: for every provider, `send` signs like the
// provider, hookrelay verifies and relays, and `sink` verifies hookrelay's
// signature; every accepted id arrives, each once.
func TestSendThroughRelayToSink(t *testing.T) {
	sink := startSSSink(t)
	srv := cliServe(t, cliEnv(), ssConfig(t, sink.addr))
	const perProvider = 25
	accepted := map[string]bool{}
	for p, sec := range ssSecrets {
		idsFile := filepath.Join(t.TempDir(), "ids")
		res := cliRun(t, cliEnv(), "send", "--provider", p, "--secret", sec, "--count", fmt.Sprint(perProvider),
			"--concurrency", "4", "--size", "1024", "--json", "--ids", idsFile, "http://"+srv.addr+"/webhooks/"+p+"-src")
		if res.code != 0 {
			t.Fatalf("send %s: exit %d\n%s%s", p, res.code, res.stdout, res.stderr)
		}
		var sum sendSummary
		if err := json.Unmarshal([]byte(res.stdout), &sum); err != nil {
			t.Fatalf("send --json output %q: %v", res.stdout, err)
		}
		if got, want := sum.Outcomes["accepted"], perProvider; got != want {
			t.Errorf("%s: %d accepted, want %d (unique dedupe keys): %+v", p, got, want, sum)
		}
		if sum.LatencyMS["p99"] <= 0 || sum.LatencyMS["max"] < sum.LatencyMS["p50"] {
			t.Errorf("%s: implausible latency summary %v", p, sum.LatencyMS)
		}
		data, err := os.ReadFile(idsFile)
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
			id, _, _ := strings.Cut(line, " ")
			accepted[id] = true
		}
	}
	if got, want := len(accepted), perProvider*len(ssSecrets); got != want {
		t.Fatalf("%d distinct accepted ids, want %d", got, want)
	}
	deadline := time.Now().Add(20 * time.Second)
	for len(sink.received(t)) < len(accepted) && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	seen := map[string]int{}
	for _, l := range sink.received(t) {
		if !l.Verified {
			t.Errorf("sink line for %s not verified", l.Event.ID)
		}
		seen[l.Event.ID]++
		if !strings.HasPrefix(l.Event.Type, l.Event.Provider+".") {
			t.Errorf("event %s type %q does not start with provider %q", l.Event.ID, l.Event.Type, l.Event.Provider)
		}
	}
	for id := range accepted {
		if seen[id] != 1 {
			t.Errorf("accepted id %s reached the sink %d times, want 1", id, seen[id])
		}
	}
}

// TestSinkRejectsBadSignature: the sink answers 401 to an unsigned or
// wrongly signed delivery and prints no event for it.
func TestSinkRejectsBadSignature(t *testing.T) {
	sink := startSSSink(t)
	body := `{"specversion":"1.0","id":"x","type":"t","source":"/s"}`
	for name, h := range map[string]http.Header{
		"unsigned": {},
		"wrong":    {"Webhook-Id": {"x"}, "Webhook-Timestamp": {fmt.Sprint(time.Now().Unix())}, "Webhook-Signature": {"v1,AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="}},
	} {
		req, _ := http.NewRequest(http.MethodPost, "http://"+sink.addr+"/", strings.NewReader(body))
		req.Header = h
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode/100 != 4 {
			t.Errorf("%s: status %d, want 4xx", name, resp.StatusCode)
		}
	}
	if got := len(sink.received(t)); got != 0 {
		t.Errorf("sink printed %d events for rejected deliveries", got)
	}
}

// TestSendRejectedCountsAsFailure: a wrong secret makes send exit 1 and
// report the rejections.
func TestSendRejectedCountsAsFailure(t *testing.T) {
	sink := startSSSink(t)
	srv := cliServe(t, cliEnv(), ssConfig(t, sink.addr))
	res := cliRun(t, cliEnv(), "send", "--provider", "sketchpen", "--secret", "whsec_wrong", "--count", "3", "--json",
		"http://"+srv.addr+"/webhooks/sketchpen-src")
	if res.code != 1 {
		t.Fatalf("exit %d, want 1\n%s%s", res.code, res.stdout, res.stderr)
	}
	var sum sendSummary
	if err := json.Unmarshal([]byte(res.stdout), &sum); err != nil {
		t.Fatal(err)
	}
	if sum.Outcomes["rejected"] != 3 || sum.Status["401"] != 3 {
		t.Errorf("summary %+v, want 3 rejected with 401", sum)
	}
	if strings.Contains(res.stdout+res.stderr, "whsec_wrong") {
		t.Error("output echoes the secret")
	}
}
