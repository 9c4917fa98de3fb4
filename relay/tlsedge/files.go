package tlsedge

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// fileCert is an operator-provided certificate and key, swapped atomically
// on reload.
type fileCert struct {
	certFile, keyFile string
	cert              atomic.Pointer[tls.Certificate]

	mu      sync.Mutex   // serializes reloads and guards the stamps
	seen    [2]fileStamp // what the last reload attempt read
	pending [2]fileStamp // a change seen by the last poll, not yet stable
}

// fileStamp identifies a version of a file: a replaced (renamed-over,
// re-linked) or rewritten file gets a new stamp.
type fileStamp struct {
	info os.FileInfo
}

func stampOf(path string) fileStamp {
	fi, err := os.Stat(path)
	if err != nil {
		return fileStamp{}
	}
	return fileStamp{info: fi}
}

func (s fileStamp) same(o fileStamp) bool {
	if s.info == nil || o.info == nil {
		return s.info == nil && o.info == nil
	}
	return os.SameFile(s.info, o.info) && s.info.ModTime().Equal(o.info.ModTime()) && s.info.Size() == o.info.Size()
}

func (c *fileCert) current() *tls.Certificate { return c.cert.Load() }

func (c *fileCert) getCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	if cert := c.cert.Load(); cert != nil {
		return cert, nil
	}
	return nil, errors.New("no certificate loaded")
}

// load reads and parses the pair. It does not touch the current
// certificate.
func (c *fileCert) load() (*tls.Certificate, error) {
	certPEM, err := os.ReadFile(c.certFile)
	if err != nil {
		return nil, fmt.Errorf("read cert_file: %w", err)
	}
	keyPEM, err := os.ReadFile(c.keyFile)
	if err != nil {
		return nil, fmt.Errorf("read key_file: %w", err)
	}
	// X509KeyPair's errors describe the PEM structure, never key material.
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("load %s and %s: %w", c.certFile, c.keyFile, err)
	}
	if cert.Leaf == nil {
		if cert.Leaf, err = x509.ParseCertificate(cert.Certificate[0]); err != nil {
			return nil, fmt.Errorf("parse %s: %w", c.certFile, err)
		}
	}
	return &cert, nil
}

func (e *Edge) setupFiles() error {
	e.files = &fileCert{certFile: e.opts.CertFile, keyFile: e.opts.KeyFile}
	if err := e.reload(true); err != nil {
		return fmt.Errorf("tls: %w", err)
	}
	return nil
}

// reload loads the files and installs the result if it is valid; on error
// the previous certificate stays in use. SIGHUP forces it. Without
// force it only does so for a change that has been stable for one poll, so
// a deploy that writes the certificate and the key one after the other is
// not caught half-way.
func (e *Edge) reload(force bool) error {
	c := e.files
	c.mu.Lock()
	defer c.mu.Unlock()
	stamps := [2]fileStamp{stampOf(c.certFile), stampOf(c.keyFile)}
	if !force {
		if stamps[0].same(c.seen[0]) && stamps[1].same(c.seen[1]) {
			return nil // unchanged
		}
		if !stamps[0].same(c.pending[0]) || !stamps[1].same(c.pending[1]) {
			c.pending = stamps // changed: wait for the next poll
			return nil
		}
	}
	// Remember what was tried, so a broken file is reported once, not on
	// every poll; the next change is tried again.
	c.seen, c.pending = stamps, stamps
	cert, err := c.load()
	if err != nil {
		return err
	}
	prev := c.cert.Swap(cert)
	leaf := cert.Leaf
	attrs := []any{"cert_file", c.certFile, "names", leaf.DNSNames, "not_after", leaf.NotAfter.UTC().Format(time.RFC3339)}
	if prev == nil {
		e.log.Info("tls certificate loaded", attrs...)
	} else {
		e.log.Info("tls certificate reloaded", attrs...)
	}
	if time.Now().After(leaf.NotAfter) {
		e.log.Warn("tls certificate has expired", "cert_file", c.certFile, "not_after", leaf.NotAfter.UTC().Format(time.RFC3339))
	}
	return nil
}

// watchFiles reloads on SIGHUP and when the files change, until Close.
func (e *Edge) watchFiles() {
	defer e.wg.Done()
	every := e.opts.ReloadInterval
	if every <= 0 {
		every = DefaultReloadInterval
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		force := false
		select {
		case <-e.ctx.Done():
			return
		case <-e.sigc:
			e.log.Info("SIGHUP: reloading tls certificate")
			force = true
		case <-t.C:
		}
		if err := e.reload(force); err != nil {
			e.log.Error("tls certificate reload failed; keeping the previous certificate", "err", err)
		}
	}
}
