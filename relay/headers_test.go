package relay_test

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// headerLimitsConfig: a small header size limit and a short header
// timeout, with a read timeout far longer than the test waits.
var headerLimitsConfig = loopbackConfig(`  max_header_bytes: 8192
  read_header_timeout: 300ms
  read_timeout: 30s
`, "") + `sources:
  sp:
    provider: sketchpen
    secrets: [s3cr3t]
`

// TestPublicHeaderSizeLimit: past server.max_header_bytes the public
// listener answers 431; a header well inside the limit is read.
func TestPublicHeaderSizeLimit(t *testing.T) {
	ts := startServer(t, headerLimitsConfig)
	for _, tt := range []struct {
		name   string
		size   int
		status int
	}{
		// net/http allows 4096 bytes of slack over MaxHeaderBytes.
		{"4 KiB header", 4 << 10, http.StatusOK},
		{"24 KiB header", 24 << 10, http.StatusRequestHeaderFieldsTooLarge},
	} {
		t.Run(tt.name, func(t *testing.T) {
			h := http.Header{"X-Padding": {strings.Repeat("p", tt.size)}}
			r, _ := mustDo(t, &http.Client{Timeout: 10 * time.Second}, http.MethodGet, ts.URL+"/healthz", h, nil, false)
			if got, want := r.Status, tt.status; got != want {
				t.Errorf("GET /healthz with a %d-byte header: status %d, want %d", tt.size, got, want)
			}
		})
	}
}

// TestPublicHeaderTimeout: a client that sends half a request header and
// stops is cut off after server.read_header_timeout (300ms here), not
// after read_timeout (30s); one that sends it whole in time is answered.
func TestPublicHeaderTimeout(t *testing.T) {
	ts := startServer(t, headerLimitsConfig)
	addr := ts.Addr("public")

	start := time.Now() // before the server can start its header clock
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := fmt.Fprintf(conn, "POST /webhooks/sp HTTP/1.1\r\nHost: %s\r\nX-Half: ", addr); err != nil {
		t.Fatal(err)
	}
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, err := io.Copy(io.Discard, conn) // until the server closes
	elapsed := time.Since(start)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("the connection with half a header was still open after %v", elapsed.Round(time.Millisecond))
	}
	if elapsed < 250*time.Millisecond || elapsed > 3*time.Second {
		t.Errorf("half a header was cut off after %v (read %d bytes, %v), want about 300ms", elapsed.Round(time.Millisecond), n, err)
	}

	// The same request completed in time gets an answer.
	conn2, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn2.Close()
	if _, err := fmt.Fprintf(conn2, "GET /healthz HTTP/1.1\r\nHost: %s\r\nX-Half: ", addr); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)
	if _, err := fmt.Fprint(conn2, "whole\r\nConnection: close\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	_ = conn2.SetReadDeadline(time.Now().Add(5 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(conn2), nil)
	if err != nil {
		t.Fatalf("header completed in time: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("header completed in time: status %d, want 200", resp.StatusCode)
	}
}
