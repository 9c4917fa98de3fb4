package natsnode

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/url"
	"strings"
	"sync"
	"time"
)

// RoutePeer is what a route port says about its server in the INFO line it
// sends to every connection it accepts.
type RoutePeer struct {
	Name       string   `json:"server_name"`
	ClientURLs []string `json:"connect_urls"` // host:port of its client port(s)
}

// ProbeRoutes dials each route URL, reads its server's INFO and hangs up,
// within timeout: it joins nothing and writes nothing. The routes that do
// not answer are left out. A node uses it to reach the cluster as a plain
// client before its own server joins (see relay's node name check).
func ProbeRoutes(ctx context.Context, routes []string, timeout time.Duration) []RoutePeer {
	var (
		mu  sync.Mutex
		out []RoutePeer
		wg  sync.WaitGroup
	)
	for _, r := range routes {
		u, err := url.Parse(r)
		if err != nil || u.Host == "" {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if p, ok := probe(ctx, u.Host, timeout); ok {
				mu.Lock()
				out = append(out, p)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return out
}

func probe(ctx context.Context, addr string, timeout time.Duration) (RoutePeer, bool) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	conn, err := (&net.Dialer{}).DialContext(ctx, "tcp", addr)
	if err != nil {
		return RoutePeer{}, false
	}
	defer conn.Close()
	if d, ok := ctx.Deadline(); ok {
		_ = conn.SetReadDeadline(d)
	}
	line, err := bufio.NewReaderSize(io.LimitReader(conn, 64<<10), 64<<10).ReadString('\n') // an INFO line is a few hundred bytes
	if err != nil {
		return RoutePeer{}, false
	}
	js, ok := strings.CutPrefix(strings.TrimSpace(line), "INFO ")
	if !ok {
		return RoutePeer{}, false
	}
	var p RoutePeer
	if json.Unmarshal([]byte(js), &p) != nil {
		return RoutePeer{}, false
	}
	return p, true
}
