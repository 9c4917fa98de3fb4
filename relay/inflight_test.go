package relay_test

import (
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestInFlightLimit: with server.max_in_flight webhooks being handled (here
// one, held by a client that sends its body slowly), the next one gets 503
// with Retry-After (the provider retries) instead of piling up; once the
// slow request ends, webhooks are accepted again.
func TestInFlightLimit(t *testing.T) {
	ts := startServer(t, loopbackConfig("  max_in_flight: 1\n", "")+`
sources:
  sp:
    provider: sketchpen
    secrets: ["whsec_inflight"]
`)
	addr := strings.TrimPrefix(ts.URL, "http://")
	slow, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer slow.Close()
	fmt.Fprintf(slow, "POST /webhooks/sp HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"event\":", addr)

	n := 0
	send := func() (response, http.Header) {
		n++
		body := sketchpenBody("video.completed", fmt.Sprint("v-inflight-", n), time.Now().Unix())
		return mustDo(t, http.DefaultClient, http.MethodPost, ts.URL+"/webhooks/sp", signedHeaders(t, "sketchpen", "whsec_inflight", body, time.Now()), body, false)
	}
	// Until the server has read the slow request's headers, ours may pass.
	waitFor(t, 10*time.Second, "a 503 while the slow request holds the only slot", func() bool {
		r, hdr := send()
		if r.Status == http.StatusServiceUnavailable {
			if r.Body["error"] == "" || hdr.Get("Retry-After") == "" {
				t.Errorf("503 without error body or Retry-After: %q", r.Raw)
			}
			return true
		}
		if r.Status != http.StatusOK {
			t.Fatalf("status %d, want 503 (or 200 before the slot is taken): %s", r.Status, r.Raw)
		}
		return false
	})
	slow.Close()
	waitFor(t, 10*time.Second, "the slot to be released", func() bool {
		r, _ := send()
		return r.Status == http.StatusOK
	})
}
