package relay_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hookrelay/hookrelay/relay/tlsedge"
	"github.com/hookrelay/hookrelay/relay/tlsedge/tlsedgetest"
)

const tlsSecret = "whsec_tls_test_secret"

// tlsConfig is a config with automatic HTTPS for two domains against a
// Pebble CA on loopback.
func tlsConfig(pebble *tlsedgetest.CA, httpsPort, httpPort int) string {
	return loopbackConfig("", "") + `tls:
  domains: [hooks.example.com, slow.example.com]
  email: ops@example.com
  ca: ` + pebble.DirectoryURL + `
  ca_root: ` + pebble.ServerRootFile + `
  https_port: ` + strconv.Itoa(httpsPort) + `
  http_port: ` + strconv.Itoa(httpPort) + `
  listen_host: 127.0.0.1
sources:
  sketchpen-prod:
    provider: sketchpen
    secrets: [` + tlsSecret + `]
`
}

// httpsClient reaches host names on addr, trusting only roots.
func httpsClient(addr string, roots *x509.CertPool) *http.Client {
	return &http.Client{
		Timeout: 10 * time.Second,
		Transport: &http.Transport{
			TLSClientConfig:   &tls.Config{RootCAs: roots},
			ForceAttemptHTTP2: true,
			DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
				return (&net.Dialer{}).DialContext(ctx, network, addr)
			},
		},
	}
}

// leafSerial handshakes with addr for serverName and returns the serial of
// the presented certificate ("" if the handshake fails).
func leafSerial(addr, serverName string, roots *x509.CertPool) string {
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 2 * time.Second}, "tcp", addr, &tls.Config{ServerName: serverName, RootCAs: roots})
	if err != nil {
		return ""
	}
	defer conn.Close()
	return conn.ConnectionState().PeerCertificates[0].SerialNumber.String()
}

// tlsGet GETs url with client.
func tlsGet(t *testing.T, client *http.Client, url string) response {
	t.Helper()
	r, _ := mustDo(t, client, http.MethodGet, url, nil, nil, false)
	return r
}

// tlsPost posts body to url with client, signed as sketchpen does with
// tlsSecret.
func tlsPost(t *testing.T, client *http.Client, url string, body []byte) response {
	t.Helper()
	r, _ := mustDo(t, client, http.MethodPost, url, signedHeaders(t, "sketchpen", tlsSecret, body, time.Now()), body, false)
	return r
}

// TestAutomaticHTTPS runs hookrelay against Pebble: certificates for two
// domains, /readyz 503 until both exist, a signed webhook over HTTPS, the
// HTTP port's redirect, and a restart that reuses the stored certificates
// without the CA.
func TestAutomaticHTTPS(t *testing.T) {
	start := time.Now()
	httpsPort, httpPort := tlsedgetest.FreePort(t), tlsedgetest.FreePort(t)
	pebble := tlsedgetest.Start(t, tlsedgetest.Options{HTTPPort: httpPort, TLSPort: httpsPort})
	release := pebble.Hold("slow.example.com") // its validation waits until released
	defer release()
	cfg := tlsConfig(pebble, httpsPort, httpPort)
	dir := t.TempDir()
	ts := startServer(t, cfg, dir)

	httpsAddr := "127.0.0.1:" + strconv.Itoa(httpsPort)
	httpAddr := "127.0.0.1:" + strconv.Itoa(httpPort)
	if got := ts.Addr("https"); got != httpsAddr {
		t.Errorf(`Addr("https") = %q, want %q`, got, httpsAddr)
	}
	if got := ts.Addr("public"); got != httpsAddr {
		t.Errorf(`Addr("public") = %q, want %q`, got, httpsAddr)
	}
	if got := ts.Addr("http"); got != httpAddr {
		t.Errorf(`Addr("http") = %q, want %q`, got, httpAddr)
	}

	// The HTTP port answers every non-challenge request with 308 to HTTPS.
	plain := &http.Client{Timeout: 5 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	for _, path := range []string{"/webhooks/sketchpen-prod?x=1", "/readyz", "/"} {
		req, _ := http.NewRequest(http.MethodPost, "http://"+httpAddr+path, strings.NewReader(`{}`))
		req.Host = "hooks.example.com"
		resp, err := plain.Do(req)
		if err != nil {
			t.Fatalf("POST http %s: %v", path, err)
		}
		resp.Body.Close()
		want := "https://hooks.example.com:" + strconv.Itoa(httpsPort) + path
		if resp.StatusCode != http.StatusPermanentRedirect || resp.Header.Get("Location") != want {
			t.Errorf("POST http %s = %d %q, want 308 %q", path, resp.StatusCode, resp.Header.Get("Location"), want)
		}
	}

	// The first domain's certificate arrives; the second is held back, so
	// the relay is not ready yet.
	waitFor(t, 30*time.Second, "certificate for hooks.example.com", func() bool {
		return leafSerial(httpsAddr, "hooks.example.com", pebble.IssuerRoots) != ""
	})
	client := httpsClient(httpsAddr, pebble.IssuerRoots)
	readyz := func() response { return tlsGet(t, client, "https://hooks.example.com/readyz") }
	if r := readyz(); r.Status != http.StatusServiceUnavailable || !strings.Contains(r.Body["reason"], "slow.example.com") {
		t.Errorf("/readyz before every certificate = %d %v, want 503 naming slow.example.com", r.Status, r.Body)
	}
	release()
	waitFor(t, 30*time.Second, "/readyz 200", func() bool { return readyz().Status == http.StatusOK })
	if leafSerial(httpsAddr, "slow.example.com", pebble.IssuerRoots) == "" {
		t.Error("no certificate for slow.example.com after ready")
	}
	t.Logf("ready with two certificates after %v", time.Since(start).Round(time.Millisecond))

	// A signed webhook over HTTPS (HTTP/2), trusting only Pebble's root.
	body := sketchpenBody("video.completed", "vid_tls_1", time.Now().Unix())
	r := tlsPost(t, client, "https://hooks.example.com/webhooks/sketchpen-prod", body)
	if r.Status != http.StatusOK || r.Body["status"] != "accepted" || r.Body["id"] == "" {
		t.Fatalf("signed webhook = %d %v, want 200 accepted", r.Status, r.Body)
	}
	if r.Proto != "HTTP/2.0" {
		t.Errorf("webhook served over %s, want HTTP/2.0", r.Proto)
	}
	firstID := r.Body["id"]
	serial := leafSerial(httpsAddr, "hooks.example.com", pebble.IssuerRoots)
	orders, accounts := pebble.Requests(tlsedgetest.NewOrderPath), pebble.Requests(tlsedgetest.NewAccountPath)
	if orders != 2 {
		t.Errorf("new orders = %d, want 2 (one per domain)", orders)
	}

	// Restart on the same storage with the CA unreachable: the stored
	// certificates are served at once and no order is placed.
	ts.Stop(t)
	pebble.SetDown(true)
	restart := time.Now()
	ts = startServer(t, cfg, dir)
	client = httpsClient(httpsAddr, pebble.IssuerRoots)
	waitFor(t, 10*time.Second, "/readyz 200 after restart", func() bool {
		return leafSerial(httpsAddr, "hooks.example.com", pebble.IssuerRoots) != "" && readyz().Status == http.StatusOK
	})
	t.Logf("ready after restart in %v", time.Since(restart).Round(time.Millisecond))
	if got := leafSerial(httpsAddr, "hooks.example.com", pebble.IssuerRoots); got != serial {
		t.Errorf("certificate serial after restart = %s, want the stored %s", got, serial)
	}
	if got := pebble.Requests(tlsedgetest.NewOrderPath); got != orders {
		t.Errorf("new orders after restart = %d, want %d", got, orders)
	}
	if got := pebble.Requests(tlsedgetest.NewAccountPath); got != accounts {
		t.Errorf("new-account requests after restart = %d, want %d", got, accounts)
	}
	r = tlsPost(t, client, "https://hooks.example.com/webhooks/sketchpen-prod", body)
	if r.Status != http.StatusOK || r.Body["status"] != "duplicate" || r.Body["id"] != firstID {
		t.Errorf("same webhook after restart = %d %v, want 200 duplicate of %s", r.Status, r.Body, firstID)
	}
	t.Logf("whole test: %v", time.Since(start).Round(time.Millisecond))
}

// TestHTTPSCertFiles serves an operator-provided certificate (tls.cert_file
// and tls.key_file) and picks up a replaced one without a restart.
func TestHTTPSCertFiles(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := writeSelfSigned(t, dir, "files.example.test", 1)
	httpsPort, httpPort := tlsedgetest.FreePort(t), tlsedgetest.FreePort(t)
	ts := startServer(t, `
tls:
  cert_file: `+certFile+`
  key_file: `+keyFile+`
  https_port: `+strconv.Itoa(httpsPort)+`
  http_port: `+strconv.Itoa(httpPort)+`
  listen_host: 127.0.0.1
admin:
  listen: 127.0.0.1:0
storage:
  path: {{DATA}}
sources:
  sketchpen-prod:
    provider: sketchpen
    secrets: [`+tlsSecret+`]
`)
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(readFile(t, certFile))
	addr := ts.Addr("https")
	client := httpsClient(addr, roots)
	if r := tlsGet(t, client, "https://files.example.test/readyz"); r.Status != http.StatusOK {
		t.Fatalf("/readyz = %d %v, want 200", r.Status, r.Body)
	}
	body := sketchpenBody("video.completed", "vid_files_1", time.Now().Unix())
	if r := tlsPost(t, client, "https://files.example.test/webhooks/sketchpen-prod", body); r.Status != http.StatusOK || r.Body["status"] != "accepted" {
		t.Fatalf("signed webhook = %d %v, want 200 accepted", r.Status, r.Body)
	}
	// SIGHUP reloads a replaced pair at once. The files are polled too
	// (package tlsedge tests that), but a poll installs a change only once
	// two polls tlsedge.DefaultReloadInterval apart have seen it, never
	// sooner than that interval after the write: a swap well within it is
	// the signal's doing.
	writeSelfSigned(t, dir, "files.example.test", 2)
	roots.AppendCertsFromPEM(readFile(t, certFile))
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitFor(t, tlsedge.DefaultReloadInterval/2, "the replaced certificate after SIGHUP", func() bool { return leafSerial(addr, "files.example.test", roots) == "2" })

	// the HTTP port redirects to HTTPS here too
	plain := &http.Client{Timeout: 5 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := plain.Get("http://" + ts.Addr("http") + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if want := "https://127.0.0.1:" + strconv.Itoa(httpsPort) + "/healthz"; resp.StatusCode != http.StatusPermanentRedirect || resp.Header.Get("Location") != want {
		t.Errorf("GET http /healthz = %d %q, want 308 %q", resp.StatusCode, resp.Header.Get("Location"), want)
	}
}

// writeSelfSigned writes a self-signed certificate for name with serial and
// its key to dir/tls.crt and dir/tls.key.
func writeSelfSigned(t *testing.T, dir, name string, serial int64) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: name}, DNSNames: []string{name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
