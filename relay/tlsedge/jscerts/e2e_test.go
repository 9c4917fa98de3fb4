package jscerts

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddyserver/certmagic"
	"github.com/hookrelay/hookrelay/relay/tlsedge/tlsedgetest"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"
)

// certNode is one hookrelay node's certmagic, as relay/tlsedge sets it up,
// on a jscerts.Storage of its own connection.
type certNode struct {
	storage   *Storage
	cache     *certmagic.Cache
	magic     *certmagic.Config
	issuer    *certmagic.ACMEIssuer
	httpsAddr string
	answered  atomic.Int32 // HTTP-01 challenges this node answered
}

// Three nodes on a three-server cluster (replicas 3), each with its own
// connection to its own server, all manage the same domain at once
// against Pebble: one ACME order, and all three serve the same certificate.
// The HTTP-01 port is a load balancer spreading requests over the three
// nodes, so the challenge may be answered by a node that did not order.
func TestThreeNodesOneOrder(t *testing.T) {
	orders := threeNodes(t, nil, nil)
	if orders != 1 {
		t.Errorf("ACME orders = %d, want 1", orders)
	}
}

// A fourth node took the issue lock and died before the others started:
// its lock expires and the three nodes still obtain one certificate.
func TestDeadNodeLockDoesNotBlockObtain(t *testing.T) {
	var died time.Time
	orders := threeNodes(t, nil, func(urls []string) {
		dead := newStorage(t, urls[0], Options{Bucket: "certs", Replicas: 3, LockTTL: 2 * time.Second})
		if err := dead.Lock(ctxT(t, 10*time.Second), "issue_cert_"+e2eDomain); err != nil {
			t.Fatal(err)
		}
		dead.js.Conn().Close()
		died = time.Now()
	})
	t.Logf("certificate on all nodes %v after the lock holder died", time.Since(died).Round(time.Millisecond))
	if orders != 1 {
		t.Errorf("ACME orders = %d, want 1", orders)
	}
}

const e2eDomain = "cluster.example.com"

// threeNodes runs the three nodes (their storage wrapped by wrap, if set;
// before, if set, runs once the cluster is up) and returns how many ACME
// orders Pebble received.
func threeNodes(t *testing.T, wrap func(*Storage) certmagic.Storage, before func(urls []string)) int {
	urls := startServers(t, 3)
	// The load balancer in front of the nodes' HTTP ports binds first, so
	// Pebble's validation port cannot be taken by another test meanwhile.
	lbLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	httpPort := lbLn.Addr().(*net.TCPAddr).Port
	pebble := tlsedgetest.Start(t, tlsedgetest.Options{HTTPPort: httpPort})
	caPEM, err := os.ReadFile(pebble.ServerRootFile)
	if err != nil {
		t.Fatal(err)
	}
	caRoots := x509.NewCertPool()
	caRoots.AppendCertsFromPEM(caPEM)
	const domain = e2eDomain

	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	zl := zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel))

	nodes := make([]*certNode, 3)
	for i := range nodes {
		n := &certNode{storage: newStorage(t, urls[i], Options{Bucket: "certs", Replicas: 3, LockTTL: 2 * time.Second})}
		var magic *certmagic.Config
		n.cache = certmagic.NewCache(certmagic.CacheOptions{
			GetConfigForCert: func(certmagic.Certificate) (*certmagic.Config, error) { return magic, nil },
			Logger:           zl.Named("cache" + strconv.Itoa(i)),
		})
		t.Cleanup(n.cache.Stop)
		var st certmagic.Storage = n.storage
		if wrap != nil {
			st = wrap(n.storage)
		}
		magic = certmagic.New(n.cache, certmagic.Config{Storage: st, DefaultServerName: domain, Logger: zl.Named("node" + strconv.Itoa(i))})
		n.issuer = certmagic.NewACMEIssuer(magic, certmagic.ACMEIssuer{
			CA: pebble.DirectoryURL, Email: "ops@example.com", Agreed: true, TrustedRoots: caRoots,
			DisableTLSALPNChallenge: true,
			ListenHost:              "127.0.0.1", AltHTTPPort: httpPort, // held by the load balancer below
			Logger: zl.Named("acme" + strconv.Itoa(i)),
		})
		magic.Issuers = []certmagic.Issuer{n.issuer}
		n.magic = magic

		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		n.httpsAddr = ln.Addr().String()
		srv := &http.Server{Handler: http.NotFoundHandler(), TLSConfig: magic.TLSConfig(), ReadHeaderTimeout: 5 * time.Second}
		go srv.ServeTLS(ln, "", "")
		t.Cleanup(func() { srv.Close() })
		nodes[i] = n
	}

	var next atomic.Int32
	lb := &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := nodes[int(next.Add(1))%len(nodes)]
		n.issuer.HTTPChallengeHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			http.Error(w, "no such challenge", http.StatusNotFound)
		})).ServeHTTP(&countingWriter{ResponseWriter: w, ok: &n.answered}, r)
	})}
	go lb.Serve(lbLn)
	t.Cleanup(func() { lb.Close() })

	if before != nil {
		before(urls)
	}
	start := time.Now()
	var wg sync.WaitGroup
	for _, n := range nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := n.magic.ManageAsync(ctx, []string{domain}); err != nil {
				t.Errorf("ManageAsync: %v", err)
			}
		}()
	}
	wg.Wait()

	deadline := time.Now().Add(30 * time.Second)
	for i, n := range nodes {
		for len(n.cache.AllMatchingCertificates(domain)) == 0 {
			if time.Now().After(deadline) {
				t.Fatalf("node %d has no certificate after 30s (orders: %d)", i, pebble.Requests(tlsedgetest.NewOrderPath))
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	t.Logf("all three nodes have the certificate after %v", time.Since(start).Round(time.Millisecond))

	var serials []string
	for i, n := range nodes {
		conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 2 * time.Second}, "tcp", n.httpsAddr, &tls.Config{ServerName: domain, RootCAs: pebble.IssuerRoots})
		if err != nil {
			t.Fatalf("node %d handshake: %v", i, err)
		}
		leaf := conn.ConnectionState().PeerCertificates[0]
		conn.Close()
		serials = append(serials, leaf.SerialNumber.String())
	}
	t.Logf("serials served: %v; challenges answered per node: %d %d %d", serials,
		nodes[0].answered.Load(), nodes[1].answered.Load(), nodes[2].answered.Load())
	if serials[0] != serials[1] || serials[1] != serials[2] {
		t.Errorf("nodes serve different certificates: serials %v", serials)
	}
	orders := pebble.Requests(tlsedgetest.NewOrderPath)
	if n := pebble.Requests(tlsedgetest.FinalizePath); n != orders {
		t.Errorf("finalize requests = %d, orders %d", n, orders)
	}
	// the certificate and the account are in JetStream, and no lock is left held
	lctx, lcancel := context.WithTimeout(ctx, 5*time.Second)
	defer lcancel()
	certs, err := nodes[0].storage.List(lctx, "certificates", true)
	if err != nil || len(certs) == 0 {
		t.Errorf("List(certificates) = %v, %v", certs, err)
	}
	for i, n := range nodes {
		n.storage.mu.Lock()
		held := len(n.storage.held)
		n.storage.mu.Unlock()
		if held != 0 {
			t.Errorf("node %d still holds %d locks", i, held)
		}
	}
	return orders
}

type countingWriter struct {
	http.ResponseWriter
	ok     *atomic.Int32
	status int
}

func (w *countingWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
		if code == http.StatusOK {
			w.ok.Add(1)
		}
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *countingWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	return w.ResponseWriter.Write(b)
}
