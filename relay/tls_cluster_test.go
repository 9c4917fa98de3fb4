package relay_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hookrelay/hookrelay/relay"
	"github.com/hookrelay/hookrelay/relay/config"
	"github.com/hookrelay/hookrelay/relay/tlsedge/tlsedgetest"
)

// TestClusterHTTPS runs three cluster nodes (embedded NATS, replicas 3)
// with automatic HTTPS for one domain against Pebble, behind one HTTP-01
// port (and one TLS-ALPN-01 port) that spreads challenges over the nodes
// as a load balancer would: one certificate for the cluster, served by all
// three nodes, and each takes a signed webhook over HTTPS. It is the
// wiring of relay/tlsedge/jscerts (tested on its own there) into serve.
func TestClusterHTTPS(t *testing.T) {
	if testing.Short() {
		t.Skip("three-node cluster skipped in -short mode")
	}
	const domain = "hooks.example.com"
	lbLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	lbPort := lbLn.Addr().(*net.TCPAddr).Port
	tlsLn, err := net.Listen("tcp", "127.0.0.1:0") // the same for TLS-ALPN-01, at the TCP level
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tlsLn.Close() })
	pebble := tlsedgetest.Start(t, tlsedgetest.Options{HTTPPort: lbPort, TLSPort: tlsLn.Addr().(*net.TCPAddr).Port})

	var cur atomic.Pointer[[]*tlsNode] // what the load balancers send to
	nodes := newTLSNodes(t)
	cur.Store(&nodes)
	var answered [3]atomic.Int32
	var next atomic.Int32
	// Round robin over the nodes that accept connections (a load balancer
	// health-checks them: a node still starting is skipped).
	lb := &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ns := *cur.Load()
		for range ns {
			i := int(next.Add(1)) % len(ns)
			addr := "127.0.0.1:" + strconv.Itoa(ns[i].http)
			c, err := net.DialTimeout("tcp", addr, time.Second)
			if err != nil {
				continue
			}
			c.Close()
			answered[i].Add(1)
			httputil.NewSingleHostReverseProxy(&url.URL{Scheme: "http", Host: addr}).ServeHTTP(w, r)
			return
		}
		http.Error(w, "no node up", http.StatusBadGateway)
	})}
	go lb.Serve(lbLn)
	t.Cleanup(func() { lb.Close() })
	go func() {
		for {
			c, err := tlsLn.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				ns := *cur.Load()
				for range ns {
					i := int(next.Add(1)) % len(ns)
					up, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(ns[i].https), time.Second)
					if err != nil {
						continue
					}
					defer up.Close()
					answered[i].Add(1)
					go io.Copy(up, c)
					io.Copy(c, up)
					return
				}
			}()
		}
	}()

	// A port found free may be taken by another test process before a
	// node binds it: then all start again on other ports.
	for try := 1; ; try++ {
		err := startTLSNodes(t, nodes, pebble)
		if err == nil {
			break
		}
		if try == 3 || !strings.Contains(err.Error(), "address already in use") {
			t.Fatal(err)
		}
		t.Logf("starting the nodes again on other ports: %v", err)
		nodes = newTLSNodes(t)
		cur.Store(&nodes)
	}

	// Up to 150 s: a failed validation (a slow machine) is tried again by
	// certmagic after about a minute.
	serials := make([]string, len(nodes))
	for i, n := range nodes {
		addr := "127.0.0.1:" + strconv.Itoa(n.https)
		waitFor(t, 150*time.Second, fmt.Sprintf("a certificate on n%d", i), func() bool {
			serials[i] = leafSerial(addr, domain, pebble.IssuerRoots)
			return serials[i] != ""
		})
	}
	for i := range serials {
		if serials[i] != serials[0] {
			t.Errorf("n%d serves serial %s, n0 %s: want one certificate for the cluster", i, serials[i], serials[0])
		}
	}
	// One certificate for the cluster: one order finalized. (An order
	// whose challenge failed is followed by another: then there are two
	// orders, still one certificate.)
	if got := pebble.Requests(tlsedgetest.FinalizePath); got != 1 {
		t.Errorf("ACME orders finalized = %d, want 1 for the whole cluster", got)
	}
	t.Logf("ACME orders: %d", pebble.Requests(tlsedgetest.NewOrderPath))
	t.Logf("challenge connections through the load balancers per node: %d %d %d", answered[0].Load(), answered[1].Load(), answered[2].Load())

	for i, n := range nodes {
		addr := "127.0.0.1:" + strconv.Itoa(n.https)
		client := httpsClient(addr, pebble.IssuerRoots)
		waitFor(t, 30*time.Second, fmt.Sprintf("/readyz 200 on n%d", i), func() bool {
			return tlsGet(t, client, "https://"+domain+"/readyz").Status == http.StatusOK
		})
		body := sketchpenBody("video.completed", "vid_cluster_tls_"+strconv.Itoa(i), time.Now().Unix())
		r := tlsPost(t, client, "https://"+domain+"/webhooks/sketchpen-prod", body)
		if r.Status != http.StatusOK || r.Body["status"] != "accepted" {
			t.Errorf("signed webhook over HTTPS to n%d = %d %v, want 200 accepted", i, r.Status, r.Body)
		}
	}
}

// tlsNode is one node of TestClusterHTTPS: its ports and its server.
type tlsNode struct {
	https, http, client, route int
	srv                        *relay.Server
}

func newTLSNodes(t *testing.T) []*tlsNode {
	nodes := make([]*tlsNode, 3)
	for i := range nodes {
		nodes[i] = &tlsNode{https: tlsedgetest.FreePort(t), http: tlsedgetest.FreePort(t), client: tlsedgetest.FreePort(t), route: tlsedgetest.FreePort(t)}
	}
	return nodes
}

// startTLSNodes starts the nodes at once (each waits for a JetStream
// quorum) and runs them until the test ends. If one fails, the others'
// start is cancelled, those started are stopped, and the error returned.
func startTLSNodes(t *testing.T, nodes []*tlsNode, pebble *tlsedgetest.CA) error {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	errs := make([]error, len(nodes))
	for i, n := range nodes {
		var routes []string
		for j, o := range nodes {
			if j != i {
				routes = append(routes, fmt.Sprintf(`"nats://127.0.0.1:%d"`, o.route))
			}
		}
		text := fmt.Sprintf(`server:
  listen: 127.0.0.1:0
  shutdown_timeout: 10s
admin:
  listen: 127.0.0.1:0
storage:
  path: %s
log:
  level: warn
tls:
  domains: [hooks.example.com]
  email: ops@example.com
  ca: %s
  ca_root: %s
  https_port: %d
  http_port: %d
  listen_host: 127.0.0.1
cluster:
  node: n%d
  replicas: 3
  nats:
    embedded:
      listen: 127.0.0.1:%d
      cluster_listen: 127.0.0.1:%d
      routes: [%s]
      store_dir: %s
sources:
  sketchpen-prod:
    provider: sketchpen
    secrets: [%s]
`, t.TempDir(), pebble.DirectoryURL, pebble.ServerRootFile, n.https, n.http, i, n.client, n.route, strings.Join(routes, ", "), t.TempDir(), tlsSecret)
		cfg, err := config.Parse(fmt.Sprintf("n%d.yaml", i), []byte(text), func(string) (string, bool) { return "", false })
		if err != nil {
			t.Fatalf("config of n%d: %v", i, err)
		}
		log := slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelError})).With("node", i)
		if n.srv, err = relay.New(cfg, log, "test"); err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if errs[i] = n.srv.Start(ctx); errs[i] != nil {
				cancel() // the others would wait for a quorum that cannot come
			}
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		for i, n := range nodes {
			if errs[i] == nil {
				sctx, scancel := context.WithTimeout(context.Background(), 30*time.Second)
				_ = n.srv.Shutdown(sctx)
				scancel()
			}
		}
		return err
	}
	for i, n := range nodes {
		rctx, rcancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- n.srv.Run(rctx) }()
		t.Cleanup(func() {
			rcancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("n%d Run: %v", i, err)
				}
			case <-time.After(30 * time.Second):
				t.Errorf("n%d did not stop within 30s", i)
			}
		})
	}
	return nil
}
