// Package tlsedge terminates TLS on hookrelay's public side.
//
// Two modes, chosen by Options:
//
//   - Domains set: certificates come from an ACME CA (Let's Encrypt by
//     default) through certmagic, with a Cache and Config of our own (never
//     certmagic.Default). TLS-ALPN-01 is answered on the HTTPS listener,
//     HTTP-01 on the HTTP listener; certificates live in a FileStorage,
//     are obtained in the background (ManageAsync) and renewed by
//     certmagic's maintenance goroutine.
//   - CertFile and KeyFile set: the operator's own certificate, reloaded on
//     SIGHUP and when the files change; a failed reload keeps the previous
//     certificate.
//
// The caller binds the listeners (so it controls their hardening) and tells
// the Edge which ports they are on: ACME validation reaches the ports the
// process really listens on.
package tlsedge

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/caddyserver/certmagic"
	"github.com/mholt/acmez/v3"
)

// ErrCertificatePending is wrapped by Ready while a domain has no usable
// certificate yet.
var ErrCertificatePending = errors.New("certificate not ready")

// DefaultReloadInterval is how often certificate files are checked for
// changes when Options.ReloadInterval is zero.
const DefaultReloadInterval = 5 * time.Second

// Options configures an Edge. Exactly one of Domains or CertFile/KeyFile
// must be set.
type Options struct {
	// ACME mode.
	Domains []string
	Email   string
	CA      string // ACME directory URL; certmagic's default (Let's Encrypt) when empty
	CARoot  string // PEM file of extra roots trusted when talking to the CA
	CertDir string // certmagic storage directory (certificates, account keys)
	// Storage, when set, replaces CertDir: cluster mode shares
	// certificates, account keys and locks through JetStream.
	Storage certmagic.Storage

	// Bring-your-own certificate mode.
	CertFile, KeyFile string
	ReloadInterval    time.Duration // poll interval for file changes; 0 = DefaultReloadInterval

	// HTTPSPort and HTTPPort are the ports the caller's listeners are bound
	// to. HTTPSPort is also the port redirects point at; HTTPPort 0 means
	// there is no HTTP listener (and so no HTTP-01 challenge).
	HTTPSPort, HTTPPort int
	// ListenHost is the host the listeners are bound to ("" = all); certmagic
	// probes it to see that the challenge ports are already served.
	ListenHost string

	// DisableHTTPChallenge and DisableTLSALPNChallenge turn off one ACME
	// challenge type (both on by default).
	DisableHTTPChallenge, DisableTLSALPNChallenge bool

	Logger *slog.Logger
}

// Edge holds the TLS state of the public listeners. Build it with New, serve
// TLSConfig on the HTTPS listener and HTTPHandler on the HTTP listener, then
// Start it; Close it after the listeners have stopped.
type Edge struct {
	opts    Options
	log     *slog.Logger
	domains []string

	ctx       context.Context
	cancel    context.CancelFunc
	wg        sync.WaitGroup
	closeOnce sync.Once
	startOnce sync.Once

	// ACME mode
	cache  *certmagic.Cache
	magic  *certmagic.Config
	issuer *certmagic.ACMEIssuer

	// file mode
	files *fileCert
	sigc  chan os.Signal
}

// New validates opts and prepares the Edge. In file mode the certificate
// is loaded now: an unreadable or invalid pair is an error. Nothing is
// contacted until Start.
func New(opts Options) (*Edge, error) {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("component", "tls")
	e := &Edge{opts: opts, log: log}
	e.ctx, e.cancel = context.WithCancel(context.Background())
	var err error
	switch {
	case len(opts.Domains) > 0 && opts.CertFile != "":
		err = errors.New("tls: set either domains or cert_file/key_file, not both")
	case len(opts.Domains) > 0:
		err = e.setupACME()
	case opts.CertFile != "" && opts.KeyFile != "":
		err = e.setupFiles()
	default:
		err = errors.New("tls: no domains and no cert_file/key_file")
	}
	if err != nil {
		e.cancel()
		return nil, err
	}
	return e, nil
}

// TLSConfig returns the server TLS configuration: TLS 1.2 minimum, HTTP/2
// and HTTP/1.1, plus the ACME TLS-ALPN protocol in ACME mode.
func (e *Edge) TLSConfig() *tls.Config {
	if e.magic != nil {
		c := e.magic.TLSConfig() // GetCertificate and NextProtos ["acme-tls/1"]
		c.MinVersion = tls.VersionTLS12
		c.NextProtos = append([]string{"h2", "http/1.1"}, c.NextProtos...)
		return c
	}
	return &tls.Config{
		MinVersion:     tls.VersionTLS12,
		NextProtos:     []string{"h2", "http/1.1"},
		GetCertificate: e.files.getCertificate,
	}
}

// HTTPHandler serves the plain HTTP port: ACME HTTP-01 challenges (ACME
// mode) and a 308 redirect to HTTPS for everything else.
func (e *Edge) HTTPHandler() http.Handler {
	h := http.HandlerFunc(e.redirect)
	if e.issuer != nil {
		return e.issuer.HTTPChallengeHandler(h)
	}
	return h
}

func (e *Edge) redirect(w http.ResponseWriter, r *http.Request) {
	host := r.Host
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.Trim(host, "[]"), ".")
	if host == "" && len(e.domains) > 0 {
		host = e.domains[0]
	}
	if !validHost(host) {
		http.Error(w, "bad host", http.StatusBadRequest)
		return
	}
	hostport := host
	if strings.Contains(host, ":") {
		hostport = "[" + host + "]"
	}
	if p := e.opts.HTTPSPort; p != 443 && p != 0 {
		hostport = net.JoinHostPort(host, strconv.Itoa(p))
	}
	w.Header().Set("Location", "https://"+hostport+r.URL.RequestURI())
	w.WriteHeader(http.StatusPermanentRedirect)
}

// validHost accepts DNS names and IP literals only, so a Host header cannot
// smuggle a path or userinfo into the Location.
func validHost(h string) bool {
	if h == "" || len(h) > 253 {
		return false
	}
	if net.ParseIP(h) != nil {
		return true
	}
	for _, c := range h {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '-', c == '.', c == '_':
		default:
			return false
		}
	}
	return true
}

// Start begins certificate management: in ACME mode certificates are loaded
// from storage or obtained in the background (errors are logged and
// retried by certmagic); in file mode the files are watched and SIGHUP
// reloads them. Start returns at once.
func (e *Edge) Start() {
	e.startOnce.Do(func() {
		if e.magic != nil {
			e.log.Info("managing certificates", "domains", e.domains, "ca", e.issuer.CA, "storage", e.opts.CertDir)
			if err := e.magic.ManageAsync(e.ctx, e.domains); err != nil {
				e.log.Error("manage certificates", "err", err)
			}
			return
		}
		e.sigc = make(chan os.Signal, 1)
		signal.Notify(e.sigc, syscall.SIGHUP)
		e.wg.Add(1)
		go e.watchFiles()
	})
}

// Ready reports whether every domain has a usable certificate (ACME mode)
// or the loaded certificate has not expired (file mode). The error wraps
// ErrCertificatePending.
func (e *Edge) Ready() error {
	now := time.Now()
	if e.magic != nil {
		var missing []string
		for _, d := range e.domains {
			ok := false
			for _, c := range e.cache.AllMatchingCertificates(d) {
				if c.Leaf != nil && now.Before(c.Leaf.NotAfter) && !now.Before(c.Leaf.NotBefore) {
					ok = true
					break
				}
			}
			if !ok {
				missing = append(missing, d)
			}
		}
		if len(missing) > 0 {
			return fmt.Errorf("%w: no certificate yet for %s", ErrCertificatePending, strings.Join(missing, ", "))
		}
		return nil
	}
	c := e.files.current()
	if c == nil || c.Leaf == nil {
		return fmt.Errorf("%w: no certificate loaded", ErrCertificatePending)
	}
	if now.After(c.Leaf.NotAfter) {
		return fmt.Errorf("%w: certificate from %s expired at %s", ErrCertificatePending, e.opts.CertFile, c.Leaf.NotAfter.UTC().Format(time.RFC3339))
	}
	return nil
}

// Close stops certificate management: in-flight ACME operations are
// cancelled, certmagic's cache maintenance is stopped and the file watcher
// ends. Close the listeners first. It is safe to call more than once.
func (e *Edge) Close() error {
	e.closeOnce.Do(func() {
		e.cancel()
		if e.sigc != nil {
			signal.Stop(e.sigc)
		}
		e.wg.Wait()
		if e.cache != nil {
			e.cache.Stop()
		}
	})
	return nil
}

// ACMETLSProtocol is the ALPN protocol of the TLS-ALPN-01 challenge, kept
// in TLSConfig's NextProtos in ACME mode.
const ACMETLSProtocol = acmez.ACMETLS1Protocol
