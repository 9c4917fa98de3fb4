package relay_test

import (
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestInFlightLimit: server.max_in_flight counts webhooks being verified
// and stored, not bodies still arriving: with the only slot's worth of
// clients sending their bodies slowly, signed webhooks keep getting 200.
// (The 503 past the limit is tested in relay/ingest.)
func TestInFlightLimit(t *testing.T) {
	ts := startServer(t, loopbackConfig("  max_in_flight: 1\n", "")+`
sources:
  sp:
    provider: sketchpen
    secrets: ["whsec_inflight"]
`)
	addr := strings.TrimPrefix(ts.URL, "http://")
	for range 3 {
		slow, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer slow.Close()
		fmt.Fprintf(slow, "POST /webhooks/sp HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"event\":", addr)
	}
	time.Sleep(100 * time.Millisecond)
	for i := range 5 {
		body := sketchpenBody("video.completed", fmt.Sprint("v-inflight-", i), time.Now().Unix())
		r, _ := mustDo(t, http.DefaultClient, http.MethodPost, ts.URL+"/webhooks/sp", signedHeaders(t, "sketchpen", "whsec_inflight", body, time.Now()), body, false)
		if r.Status != http.StatusOK {
			t.Fatalf("webhook %d beside slow uploads: %d %s, want 200", i, r.Status, r.Raw)
		}
	}
}
