package relay

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/caddyserver/certmagic"
	"github.com/hookrelay/hookrelay/relay/ingest"
	"github.com/hookrelay/hookrelay/relay/tlsedge"
	"github.com/hookrelay/hookrelay/relay/tlsedge/jscerts"
)

// startPublic binds the public listener(s) for h. Without tls.domains or
// tls.cert_file it serves plain HTTP on server.listen. With them it serves
// HTTPS on tls.https_port ("https", also "public" in Addr) and, unless
// tls.http_port is 0, ACME HTTP-01 challenges and a 308 redirect to HTTPS on
// tls.http_port ("http"), both bound to tls.listen_host. /readyz then also
// waits for a certificate for every domain.
func (s *Server) startPublic(ctx context.Context, h *ingest.Handler) error {
	t := s.cfg.TLS
	if !t.Enabled() {
		return listenError("server.listen", s.cfg.Server.Listen, s.listen("public", s.cfg.Server.Listen, h))
	}
	// Bind first: ACME validation must reach the ports we really hold.
	httpsLn, err := net.Listen("tcp", net.JoinHostPort(t.ListenHost, strconv.Itoa(t.HTTPSPort)))
	if err != nil {
		return listenError("tls.https_port", strconv.Itoa(t.HTTPSPort), fmt.Errorf("https listener: %w", err))
	}
	var httpLn net.Listener
	if t.HTTPPort > 0 {
		if httpLn, err = net.Listen("tcp", net.JoinHostPort(t.ListenHost, strconv.Itoa(t.HTTPPort))); err != nil {
			httpsLn.Close()
			return listenError("tls.http_port", strconv.Itoa(t.HTTPPort), fmt.Errorf("http listener: %w", err))
		}
	}
	var certStore certmagic.Storage
	if b := s.backend; b != nil && b.js != nil {
		cs, err := s.openCertStorage(ctx, b)
		if err != nil {
			closeListeners(httpsLn, httpLn)
			return fmt.Errorf("certificate storage in JetStream: %w", err)
		}
		certStore = cs
		s.closers = append(s.closers, func() error { return cs.Close(context.Background()) })
	}
	edge, err := tlsedge.New(tlsedge.Options{
		Storage: certStore,
		Domains: t.Domains, Email: t.Email, CA: t.CA, CARoot: t.CARoot,
		CertDir:  filepath.Join(s.cfg.Storage.Path, "certs"),
		CertFile: t.CertFile, KeyFile: t.KeyFile,
		HTTPSPort: portOf(httpsLn), HTTPPort: portOf(httpLn), ListenHost: t.ListenHost,
		Logger: s.log,
	})
	if err != nil {
		closeListeners(httpsLn, httpLn)
		return err
	}
	s.closers = append(s.closers, edge.Close)
	h.Ready = allReady(h.Ready, edge.Ready)

	srv := s.httpServer(h)
	srv.ErrorLog = slog.NewLogLogger(quietHandshakes{s.log.Handler()}, slog.LevelWarn)
	// net/http serves HTTP/2 on *tls.Conn connections that negotiate "h2".
	s.serve("https", tls.NewListener(httpsLn, edge.TLSConfig()), srv)
	s.addrs["public"] = s.addrs["https"]
	if httpLn != nil {
		s.serve("http", httpLn, s.httpServer(edge.HTTPHandler()))
	}
	edge.Start()
	return nil
}

// quietHandshakes logs net/http's "TLS handshake error" lines at debug
// level: scanners, clients that distrust the certificate and handshakes
// before the first certificate would otherwise flood the log.
type quietHandshakes struct{ slog.Handler }

func (h quietHandshakes) Handle(ctx context.Context, r slog.Record) error {
	if strings.HasPrefix(r.Message, "http: TLS handshake error") {
		if !h.Handler.Enabled(ctx, slog.LevelDebug) {
			return nil
		}
		r.Level = slog.LevelDebug
	}
	return h.Handler.Handle(ctx, r)
}

// portOf returns the TCP port ln is bound to, 0 for none.
func portOf(ln net.Listener) int {
	if ln == nil {
		return 0
	}
	if a, ok := ln.Addr().(*net.TCPAddr); ok {
		return a.Port
	}
	return 0
}

// allReady combines readiness checks; the first failure wins.
func allReady(checks ...func() error) func() error {
	return func() error {
		for _, c := range checks {
			if c == nil {
				continue
			}
			if err := c(); err != nil {
				return err
			}
		}
		return nil
	}
}

// listenError names the config key behind a listener that could not be
// bound (nil stays nil), and says why when the port is taken.
func listenError(key, value string, err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, syscall.EADDRINUSE):
		return fmt.Errorf("%s %s is taken by another process (another hookrelay?): stop it or change %s: %w", key, value, key, err)
	case errors.Is(err, syscall.EACCES):
		return fmt.Errorf("%s %s: not allowed (ports below 1024 need root or CAP_NET_BIND_SERVICE): %w", key, value, err)
	}
	return fmt.Errorf("%s %s: %w", key, value, err)
}

// closeListeners closes the listeners that are not nil.
func closeListeners(lns ...net.Listener) {
	for _, ln := range lns {
		if ln != nil {
			ln.Close()
		}
	}
}

// openCertStorage opens the certificate buckets in JetStream. Right after
// the store opened, a cluster that has just formed may still leave a
// bucket request unanswered (its meta leader catching up): each try gets
// its own deadline, and tries go on for quorumWait.
func (s *Server) openCertStorage(ctx context.Context, b *backend) (*jscerts.Storage, error) {
	wctx, cancel := context.WithTimeout(ctx, quorumWait)
	defer cancel()
	for attempt := 1; ; attempt++ {
		tctx, tcancel := context.WithTimeout(wctx, 5*time.Second)
		cs, err := jscerts.New(tctx, b.js, jscerts.Options{Replicas: b.cl.Replicas, Logger: s.log})
		tcancel()
		if err == nil {
			return cs, nil
		}
		if attempt%5 == 1 {
			s.log.Warn("waiting for JetStream to open the certificate buckets", "err", err)
		}
		select {
		case <-wctx.Done():
			return nil, err
		case <-time.After(500 * time.Millisecond):
		}
	}
}
