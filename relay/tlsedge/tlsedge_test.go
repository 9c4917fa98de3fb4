package tlsedge_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/hookrelay/hookrelay/relay/tlsedge"
	"github.com/hookrelay/hookrelay/relay/tlsedge/tlsedgetest"
)

// edgeServer is an Edge behind real loopback listeners, as relay wires it.
type edgeServer struct {
	edge       *tlsedge.Edge
	httpsAddr  string
	httpAddr   string
	challenges atomic.Int32 // HTTP-01 requests seen on the HTTP port
	alpnHellos atomic.Int32 // TLS handshakes offering acme-tls/1
}

// startEdge binds 127.0.0.1:httpsPort and 127.0.0.1:httpPort (0 = no HTTP
// listener), builds the Edge for them and serves "hello" over HTTPS.
func startEdge(t *testing.T, opts tlsedge.Options, httpsPort, httpPort int) *edgeServer {
	t.Helper()
	httpsLn, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(httpsPort))
	if err != nil {
		t.Fatal(err)
	}
	es := &edgeServer{httpsAddr: httpsLn.Addr().String()}
	opts.HTTPSPort = httpsLn.Addr().(*net.TCPAddr).Port
	var httpLn net.Listener
	if httpPort > 0 {
		if httpLn, err = net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(httpPort)); err != nil {
			t.Fatal(err)
		}
		es.httpAddr = httpLn.Addr().String()
		opts.HTTPPort = httpPort
	}
	opts.ListenHost = "127.0.0.1"
	if opts.Logger == nil {
		opts.Logger = testLogger(t, nil)
	}
	edge, err := tlsedge.New(opts)
	if err != nil {
		t.Fatalf("tlsedge.New: %v", err)
	}
	es.edge = edge

	cfg := edge.TLSConfig()
	getCert := cfg.GetCertificate
	cfg.GetCertificate = func(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
		if slices.Contains(hello.SupportedProtos, tlsedge.ACMETLSProtocol) {
			es.alpnHellos.Add(1)
		}
		return getCert(hello)
	}
	httpsSrv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, "hello over "+r.Proto)
		}),
		TLSConfig:         cfg,
		ReadHeaderTimeout: 5 * time.Second,
		ErrorLog:          slog.NewLogLogger(opts.Logger.Handler(), slog.LevelDebug),
	}
	go httpsSrv.ServeTLS(httpsLn, "", "")
	var httpSrv *http.Server
	if httpLn != nil {
		next := edge.HTTPHandler()
		httpSrv = &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if strings.HasPrefix(r.URL.Path, "/.well-known/acme-challenge/") {
				es.challenges.Add(1)
			}
			next.ServeHTTP(w, r)
		})}
		go httpSrv.Serve(httpLn)
	}
	t.Cleanup(func() {
		httpsSrv.Close()
		if httpSrv != nil {
			httpSrv.Close()
		}
		edge.Close()
	})
	edge.Start()
	return es
}

// testLogger logs to t and, if buf is set, to buf as well.
func testLogger(t *testing.T, buf *syncBuffer) *slog.Logger {
	var w io.Writer = testWriter{t}
	if buf != nil {
		w = io.MultiWriter(w, buf)
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelInfo}))
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// waitFor polls cond every 20ms until it holds or timeout passes.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// handshake connects to addr with SNI serverName, trusting only roots, and
// returns the leaf the server presented.
func handshake(addr, serverName string, roots *x509.CertPool) (*x509.Certificate, tls.ConnectionState, error) {
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 2 * time.Second}, "tcp", addr, &tls.Config{
		ServerName: serverName, RootCAs: roots, NextProtos: []string{"h2", "http/1.1"},
	})
	if err != nil {
		return nil, tls.ConnectionState{}, err
	}
	defer conn.Close()
	cs := conn.ConnectionState()
	return cs.PeerCertificates[0], cs, nil
}

// httpsGet fetches https://serverName/path from addr trusting only roots.
func httpsGet(t *testing.T, addr, serverName, path string, roots *x509.CertPool) (int, string, string) {
	t.Helper()
	tr := &http.Transport{
		TLSClientConfig:   &tls.Config{ServerName: serverName, RootCAs: roots},
		ForceAttemptHTTP2: true,
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, network, addr)
		},
	}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr, Timeout: 5 * time.Second}).Get("https://" + serverName + path)
	if err != nil {
		t.Fatalf("GET https://%s%s: %v", serverName, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp.Proto
}

func TestACME(t *testing.T) {
	for _, tc := range []struct {
		name     string
		domain   string
		disable  func(*tlsedge.Options)
		wantHTTP bool // an HTTP-01 request reached the HTTP port
		wantALPN bool // a TLS-ALPN-01 handshake reached the HTTPS port
		withHTTP bool // bind the HTTP port at all
	}{
		{
			name: "http-01", domain: "http01.example.com", withHTTP: true, wantHTTP: true,
			disable: func(o *tlsedge.Options) { o.DisableTLSALPNChallenge = true },
		},
		{
			name: "tls-alpn-01", domain: "alpn.example.com", withHTTP: true, wantALPN: true,
			disable: func(o *tlsedge.Options) { o.DisableHTTPChallenge = true },
		},
		{
			// without an HTTP listener only TLS-ALPN-01 can work
			name: "tls-alpn-01 without http port", domain: "nohttp.example.com", wantALPN: true,
			disable: func(*tlsedge.Options) {},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			httpsPort, httpPort := tlsedgetest.FreePort(t), 0
			if tc.withHTTP {
				httpPort = tlsedgetest.FreePort(t)
			}
			pebble := tlsedgetest.Start(t, tlsedgetest.Options{HTTPPort: httpPort, TLSPort: httpsPort})
			opts := tlsedge.Options{
				Domains: []string{tc.domain}, Email: "ops@example.com",
				CA: pebble.DirectoryURL, CARoot: pebble.ServerRootFile, CertDir: filepath.Join(t.TempDir(), "certs"),
			}
			tc.disable(&opts)
			start := time.Now()
			es := startEdge(t, opts, httpsPort, httpPort)
			if err := es.edge.Ready(); !errors.Is(err, tlsedge.ErrCertificatePending) {
				t.Fatalf("Ready before any certificate = %v, want ErrCertificatePending", err)
			}
			waitFor(t, 30*time.Second, "certificate", func() bool { return es.edge.Ready() == nil })
			t.Logf("certificate obtained in %v", time.Since(start).Round(time.Millisecond))

			leaf, cs, err := handshake(es.httpsAddr, tc.domain, pebble.IssuerRoots)
			if err != nil {
				t.Fatalf("handshake trusting Pebble's root: %v", err)
			}
			if got, want := leaf.DNSNames, []string{tc.domain}; !slices.Equal(got, want) {
				t.Errorf("certificate names = %v, want %v", got, want)
			}
			if got, want := cs.NegotiatedProtocol, "h2"; got != want {
				t.Errorf("ALPN = %q, want %q", got, want)
			}
			if cs.Version < tls.VersionTLS12 {
				t.Errorf("TLS version %x < 1.2", cs.Version)
			}
			status, body, proto := httpsGet(t, es.httpsAddr, tc.domain, "/", pebble.IssuerRoots)
			if status != 200 || body != "hello over HTTP/2.0" || proto != "HTTP/2.0" {
				t.Errorf("GET / = %d %q over %s, want 200 over HTTP/2.0", status, body, proto)
			}
			if got := es.challenges.Load() > 0; got != tc.wantHTTP {
				t.Errorf("HTTP-01 requests seen = %d, want them: %v", es.challenges.Load(), tc.wantHTTP)
			}
			if got := es.alpnHellos.Load() > 0; got != tc.wantALPN {
				t.Errorf("TLS-ALPN-01 handshakes seen = %d, want them: %v", es.alpnHellos.Load(), tc.wantALPN)
			}
			if n := pebble.Requests(tlsedgetest.NewOrderPath); n != 1 {
				t.Errorf("new orders = %d, want 1", n)
			}
			matches, _ := filepath.Glob(filepath.Join(opts.CertDir, "certificates", "*", tc.domain, tc.domain+".crt"))
			if len(matches) != 1 {
				t.Errorf("stored certificate not found under %s", opts.CertDir)
			}
		})
	}
}

// An unreachable CA is logged and retried; the Edge keeps serving and is
// not ready.
func TestACMEUnreachableCA(t *testing.T) {
	httpsPort := tlsedgetest.FreePort(t)
	pebble := tlsedgetest.Start(t, tlsedgetest.Options{TLSPort: httpsPort})
	pebble.SetDown(true)
	var logs syncBuffer
	opts := tlsedge.Options{
		Domains: []string{"down.example.com"}, CA: pebble.DirectoryURL, CARoot: pebble.ServerRootFile,
		CertDir: filepath.Join(t.TempDir(), "certs"), Logger: testLogger(t, &logs),
	}
	es := startEdge(t, opts, httpsPort, 0)
	waitFor(t, 20*time.Second, "an error logged", func() bool { return strings.Contains(logs.String(), "level=ERROR") })
	if err := es.edge.Ready(); !errors.Is(err, tlsedge.ErrCertificatePending) {
		t.Errorf("Ready with the CA down = %v, want ErrCertificatePending", err)
	}
	if _, _, err := handshake(es.httpsAddr, "down.example.com", pebble.IssuerRoots); err == nil {
		t.Error("handshake succeeded without any certificate")
	}
}

func TestNewErrors(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := writePair(t, dir, "a", "files.example.test", 1)
	for _, tc := range []struct {
		name string
		opts tlsedge.Options
		want string
	}{
		{"nothing", tlsedge.Options{}, "no domains"},
		{"both", tlsedge.Options{Domains: []string{"a.example.com"}, CertFile: certFile, KeyFile: keyFile, CertDir: dir, HTTPSPort: 1}, "not both"},
		{"missing cert", tlsedge.Options{CertFile: filepath.Join(dir, "nope.crt"), KeyFile: keyFile}, "read cert_file"},
		{"key mismatch", tlsedge.Options{CertFile: certFile, KeyFile: writeFile(t, dir, "other.key", genKeyPEM(t))}, "private key does not match"},
		{"bad ca_root", tlsedge.Options{Domains: []string{"a.example.com"}, CertDir: dir, HTTPSPort: 1, CARoot: keyFile}, "no PEM certificates"},
		{"missing ca_root", tlsedge.Options{Domains: []string{"a.example.com"}, CertDir: dir, HTTPSPort: 1, CARoot: filepath.Join(dir, "nope.pem")}, "read ca_root"},
		{"wildcard", tlsedge.Options{Domains: []string{"*.example.com"}, CertDir: dir, HTTPSPort: 1}, "DNS-01"},
		{"no challenge port", tlsedge.Options{Domains: []string{"a.example.com"}, CertDir: dir, HTTPSPort: 1, DisableTLSALPNChallenge: true}, "no ACME challenge"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e, err := tlsedge.New(tc.opts)
			if err == nil {
				e.Close()
				t.Fatalf("New succeeded, want an error containing %q", tc.want)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("New error = %q, want it to contain %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "PRIVATE KEY") {
				t.Errorf("error leaks key material: %q", err)
			}
		})
	}
}

func TestCertFiles(t *testing.T) {
	dir := t.TempDir()
	const name = "files.example.test"
	certFile, keyFile := writePair(t, dir, "live", name, 1)
	roots := x509.NewCertPool()
	addRoot := func() { roots.AppendCertsFromPEM(mustRead(t, certFile)) }
	addRoot()
	var logs syncBuffer
	es := startEdge(t, tlsedge.Options{
		CertFile: certFile, KeyFile: keyFile, ReloadInterval: 20 * time.Millisecond, Logger: testLogger(t, &logs),
	}, 0, 0)
	if err := es.edge.Ready(); err != nil {
		t.Fatalf("Ready = %v", err)
	}
	serial := func() int64 {
		leaf, _, err := handshake(es.httpsAddr, name, roots)
		if err != nil {
			t.Fatalf("handshake: %v", err)
		}
		return leaf.SerialNumber.Int64()
	}
	if got := serial(); got != 1 {
		t.Fatalf("serial = %d, want 1", got)
	}
	status, body, _ := httpsGet(t, es.httpsAddr, name, "/", roots)
	if status != 200 || !strings.HasPrefix(body, "hello") {
		t.Fatalf("GET / = %d %q", status, body)
	}

	// the files change: the new pair is served without a restart
	writePair(t, dir, "live", name, 2)
	addRoot()
	waitFor(t, 5*time.Second, "certificate 2", func() bool { return serial() == 2 })

	// a broken file is logged and the last good certificate stays
	logged := len(logs.String())
	if err := os.WriteFile(certFile, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "reload error logged", func() bool { return strings.Contains(logs.String()[logged:], "reload failed") })
	if got := serial(); got != 2 {
		t.Errorf("serial after a failed reload = %d, want 2", got)
	}
	if err := es.edge.Ready(); err != nil {
		t.Errorf("Ready after a failed reload = %v", err)
	}
	if strings.Contains(logs.String(), "PRIVATE KEY") {
		t.Error("logs contain key material")
	}

	// fixed again
	writePair(t, dir, "live", name, 3)
	addRoot()
	waitFor(t, 5*time.Second, "certificate 3", func() bool { return serial() == 3 })
}

func TestCertFilesSIGHUP(t *testing.T) {
	dir := t.TempDir()
	const name = "hup.example.test"
	certFile, keyFile := writePair(t, dir, "live", name, 10)
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(mustRead(t, certFile))
	es := startEdge(t, tlsedge.Options{CertFile: certFile, KeyFile: keyFile, ReloadInterval: time.Hour}, 0, 0)
	writePair(t, dir, "live", name, 11)
	roots.AppendCertsFromPEM(mustRead(t, certFile))
	time.Sleep(50 * time.Millisecond)
	if leaf, _, err := handshake(es.httpsAddr, name, roots); err != nil || leaf.SerialNumber.Int64() != 10 {
		t.Fatalf("before SIGHUP: serial %v, err %v; want 10 (no poll within an hour)", leaf.SerialNumber, err)
	}
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "certificate 11 after SIGHUP", func() bool {
		leaf, _, err := handshake(es.httpsAddr, name, roots)
		return err == nil && leaf.SerialNumber.Int64() == 11
	})
}

func TestRedirect(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := writePair(t, dir, "r", "redirect.example.test", 1)
	for _, tc := range []struct {
		httpsPort int
		host      string
		target    string
		want      string
		status    int
	}{
		{443, "hooks.example.com", "/webhooks/sp?x=1", "https://hooks.example.com/webhooks/sp?x=1", 308},
		{443, "hooks.example.com:80", "/", "https://hooks.example.com/", 308},
		{8443, "hooks.example.com:8080", "/readyz", "https://hooks.example.com:8443/readyz", 308},
		{8443, "[::1]:8080", "/a", "https://[::1]:8443/a", 308},
		{443, "[::1]", "/a", "https://[::1]/a", 308},
		{443, "evil.example.com@other", "/", "", 400},
	} {
		e, err := tlsedge.New(tlsedge.Options{CertFile: certFile, KeyFile: keyFile, HTTPSPort: tc.httpsPort})
		if err != nil {
			t.Fatal(err)
		}
		req := httptest.NewRequest(http.MethodPost, tc.target, strings.NewReader(`{"a":1}`))
		req.Host = tc.host
		rec := httptest.NewRecorder()
		e.HTTPHandler().ServeHTTP(rec, req)
		e.Close()
		if rec.Code != tc.status || rec.Header().Get("Location") != tc.want {
			t.Errorf("POST %s Host %s (https port %d) = %d %q, want %d %q",
				tc.target, tc.host, tc.httpsPort, rec.Code, rec.Header().Get("Location"), tc.status, tc.want)
		}
	}
}

// writePair writes a self-signed certificate for name with serial to
// dir/<base>.crt and dir/<base>.key, replacing them atomically.
func writePair(t *testing.T, dir, base, name string, serial int64) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: name}, DNSNames: []string{name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true, IsCA: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	// key first, then cert: each replaced by a rename, as deploy tools do
	keyFile = writeFile(t, dir, base+".key", pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}))
	certFile = writeFile(t, dir, base+".crt", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
	return certFile, keyFile
}

func writeFile(t *testing.T, dir, name string, data []byte) string {
	t.Helper()
	path := filepath.Join(dir, name)
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
	return path
}

func genKeyPEM(t *testing.T) []byte {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, _ := x509.MarshalPKCS8PrivateKey(key)
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
