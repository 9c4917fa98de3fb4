// Package tlsedgetest runs Let's Encrypt's Pebble ACME test CA in-process
// for tests of automatic HTTPS: Pebble's CA, database, validation authority
// and web front end behind an httptest TLS server, with a loopback DNS
// resolver that answers 127.0.0.1 for every name. Nothing but 127.0.0.1 is
// ever contacted. Import it from tests only.
package tlsedgetest

import (
	"bytes"
	"crypto/x509"
	"encoding/pem"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/letsencrypt/pebble/v2/ca"
	"github.com/letsencrypt/pebble/v2/db"
	"github.com/letsencrypt/pebble/v2/va"
	"github.com/letsencrypt/pebble/v2/wfe"
	"github.com/miekg/dns"
)

// Paths of Pebble's ACME endpoints, for Requests.
const (
	NewAccountPath = "/sign-me-up"
	NewOrderPath   = "/order-plz"
	FinalizePath   = "/finalize-order/"
)

// Options configures a CA.
type Options struct {
	// HTTPPort and TLSPort are where the validation authority connects for
	// HTTP-01 and TLS-ALPN-01 challenges: the ports the server under test
	// listens on (on 127.0.0.1). Zero picks a free port (see FreePort).
	HTTPPort, TLSPort int
}

// CA is a running Pebble.
type CA struct {
	// DirectoryURL is the ACME directory (https://127.0.0.1:port/dir).
	DirectoryURL string
	// ServerRootFile is a PEM file with the certificate of the CA's own
	// HTTPS endpoint: what an ACME client must trust (hookrelay's ca_root).
	ServerRootFile string
	// IssuerRoots holds Pebble's issuing root: what a client of the
	// certificates Pebble issues must trust.
	IssuerRoots *x509.CertPool
	// IssuerRootPEM is the same root, PEM-encoded.
	IssuerRootPEM []byte
	// HTTPPort and TLSPort are the validation ports in use.
	HTTPPort, TLSPort int

	t      testing.TB
	srv    *httptest.Server
	dnsSrv *dns.Server
	log    *lockedBuffer

	mu     sync.Mutex
	counts map[string]int
	holds  map[string]chan struct{}
	down   bool
}

// Start runs a Pebble for the test and stops it at its end. It sets
// PEBBLE_VA_NOSLEEP=1 and PEBBLE_WFE_NONCEREJECT=0 (fast, deterministic)
// with t.Setenv, so the test must not be parallel.
func Start(t testing.TB, opts Options) *CA {
	t.Helper()
	t.Setenv("PEBBLE_VA_NOSLEEP", "1")
	t.Setenv("PEBBLE_WFE_NONCEREJECT", "0")
	t.Setenv("PEBBLE_VA_ALWAYS_VALID", "0") // validations are real
	t.Setenv("PEBBLE_AUTHZREUSE", "0")      // every order is validated again
	if opts.HTTPPort == 0 {
		opts.HTTPPort = FreePort(t)
	}
	if opts.TLSPort == 0 {
		opts.TLSPort = FreePort(t)
	}
	c := &CA{
		HTTPPort: opts.HTTPPort, TLSPort: opts.TLSPort, t: t, log: &lockedBuffer{},
		counts: map[string]int{}, holds: map[string]chan struct{}{},
	}
	logger := log.New(c.log, "pebble ", log.Lmicroseconds)

	// DNS over TCP on loopback, as Pebble's VA asks a custom resolver.
	dnsLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("dns listener: %v", err)
	}
	started := make(chan struct{})
	c.dnsSrv = &dns.Server{Listener: dnsLn, Net: "tcp", Handler: dns.HandlerFunc(c.answer), NotifyStartedFunc: func() { close(started) }}
	go func() { _ = c.dnsSrv.ActivateAndServe() }()
	<-started

	store := db.NewMemoryStore()
	authority := ca.New(logger, store, "", "ecdsa", 0, 1, map[string]ca.Profile{"default": {Description: "default"}})
	validator := va.New(logger, c.HTTPPort, c.TLSPort, false, dnsLn.Addr().String(), store)
	front := wfe.New(logger, store, validator, authority, []string{"pebble.letsencrypt.org"}, false, false, 0, 0)
	h := front.Handler()
	c.srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c.mu.Lock()
		c.counts[r.URL.Path]++
		down := c.down
		c.mu.Unlock()
		if down {
			http.Error(w, "pebble is down", http.StatusServiceUnavailable)
			return
		}
		h.ServeHTTP(w, r)
	}))
	c.srv.Config.ErrorLog = logger
	c.srv.StartTLS()
	c.DirectoryURL = c.srv.URL + wfe.DirectoryPath

	dir := t.TempDir()
	c.ServerRootFile = filepath.Join(dir, "pebble-server-root.pem")
	serverPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.srv.Certificate().Raw})
	if err := os.WriteFile(c.ServerRootFile, serverPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	root := authority.GetRootCert(0)
	c.IssuerRoots = x509.NewCertPool()
	c.IssuerRoots.AddCert(root.Cert)
	c.IssuerRootPEM = root.PEM()

	t.Cleanup(func() {
		c.Close()
		if t.Failed() {
			t.Logf("pebble log:\n%s", c.log.String())
		}
	})
	return c
}

// Close stops the CA's HTTPS endpoint and the DNS resolver. Idempotent.
func (c *CA) Close() {
	c.mu.Lock()
	for name, ch := range c.holds {
		close(ch)
		delete(c.holds, name)
	}
	c.mu.Unlock()
	c.srv.Close()
	_ = c.dnsSrv.Shutdown()
}

// SetDown makes the CA answer 503 to every request (true) or serve again.
func (c *CA) SetDown(down bool) {
	c.mu.Lock()
	c.down = down
	c.mu.Unlock()
}

// Requests returns how many requests the CA received on paths starting
// with prefix (NewOrderPath, NewAccountPath, ...).
func (c *CA) Requests(prefix string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for p, k := range c.counts {
		if strings.HasPrefix(p, prefix) {
			n += k
		}
	}
	return n
}

// Hold makes DNS answers for name wait until release is called (or 10s
// pass), so validations of that name stay pending.
func (c *CA) Hold(name string) (release func()) {
	name = strings.ToLower(strings.TrimSuffix(name, "."))
	ch := make(chan struct{})
	c.mu.Lock()
	c.holds[name] = ch
	c.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			c.mu.Lock()
			if c.holds[name] == ch {
				delete(c.holds, name)
				close(ch)
			}
			c.mu.Unlock()
		})
	}
}

// Log returns what Pebble logged so far.
func (c *CA) Log() string { return c.log.String() }

// answer resolves every A question to 127.0.0.1 and every other question
// to nothing.
func (c *CA) answer(w dns.ResponseWriter, req *dns.Msg) {
	m := new(dns.Msg)
	m.SetReply(req)
	m.Authoritative = true
	for _, q := range req.Question {
		name := strings.ToLower(strings.TrimSuffix(q.Name, "."))
		c.mu.Lock()
		ch := c.holds[name]
		c.mu.Unlock()
		if ch != nil {
			select {
			case <-ch:
			case <-time.After(10 * time.Second):
			}
		}
		if q.Qtype == dns.TypeA && q.Qclass == dns.ClassINET {
			m.Answer = append(m.Answer, &dns.A{
				Hdr: dns.RR_Header{Name: q.Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 0},
				A:   net.IPv4(127, 0, 0, 1),
			})
		}
	}
	_ = w.WriteMsg(m)
}

// FreePort returns a TCP port that was free on 127.0.0.1 a moment ago.
func FreePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("free port: %v", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
