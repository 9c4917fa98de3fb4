package tlsedge

import (
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/caddyserver/certmagic"
)

// setupACME builds certmagic's cache, config and ACME issuer. Nothing is
// contacted here.
func (e *Edge) setupACME() error {
	o := e.opts
	storage := o.Storage
	if storage == nil {
		if o.CertDir == "" {
			return errors.New("tls: certificate storage directory is required")
		}
		storage = &certmagic.FileStorage{Path: o.CertDir}
	}
	for _, d := range o.Domains {
		d = strings.ToLower(strings.TrimSuffix(strings.TrimSpace(d), "."))
		if strings.HasPrefix(d, "*.") {
			return fmt.Errorf("tls: %s: wildcard certificates need the DNS-01 challenge, which hookrelay does not configure", d)
		}
		if !certmagic.SubjectQualifiesForCert(d) {
			return fmt.Errorf("tls: %q is not a valid certificate name", d)
		}
		e.domains = append(e.domains, d)
	}
	httpOK := !o.DisableHTTPChallenge && o.HTTPPort > 0
	alpnOK := !o.DisableTLSALPNChallenge && o.HTTPSPort > 0
	if !httpOK && !alpnOK {
		return errors.New("tls: no ACME challenge can be answered (need the HTTP or the HTTPS port)")
	}
	var roots *x509.CertPool
	if o.CARoot != "" {
		var err error
		if roots, err = loadRoots(o.CARoot); err != nil {
			return err
		}
	}
	zl := zapLogger(e.log)
	var magic *certmagic.Config
	cache := certmagic.NewCache(certmagic.CacheOptions{
		// one Config manages every certificate in this cache
		GetConfigForCert: func(certmagic.Certificate) (*certmagic.Config, error) { return magic, nil },
		Logger:           zl.Named("cache"),
	})
	magic = certmagic.New(cache, certmagic.Config{
		Storage:           storage,
		DefaultServerName: e.domains[0], // clients without SNI get the first domain's certificate
		Logger:            zl,
	})
	issuer := certmagic.NewACMEIssuer(magic, certmagic.ACMEIssuer{
		CA:                      o.CA,
		Email:                   o.Email,
		Agreed:                  true,
		TrustedRoots:            roots,
		DisableHTTPChallenge:    !httpOK,
		DisableTLSALPNChallenge: !alpnOK,
		// Our listeners already hold these ports: certmagic's solvers find
		// them taken, see that they answer, and leave the challenges to
		// HTTPHandler (HTTP-01) and TLSConfig's GetCertificate (TLS-ALPN-01).
		ListenHost:     o.ListenHost,
		AltHTTPPort:    o.HTTPPort,
		AltTLSALPNPort: o.HTTPSPort,
		Logger:         zl.Named("acme"),
	})
	magic.Issuers = []certmagic.Issuer{issuer}
	e.cache, e.magic, e.issuer = cache, magic, issuer
	return nil
}

// loadRoots returns the system roots plus the certificates in the PEM file
// at path.
func loadRoots(path string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("tls: read ca_root: %w", err)
	}
	pool, err := x509.SystemCertPool()
	if err != nil || pool == nil {
		pool = x509.NewCertPool()
	}
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("tls: ca_root %s: no PEM certificates found", path)
	}
	return pool, nil
}
