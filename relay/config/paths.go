package config

import "path/filepath"

// resolvePaths makes the relative paths of the file (storage.path,
// tls.cert_file, tls.key_file, tls.ca_root) relative to the directory of
// the config file, not to the current directory: `hookrelay events list
// --config /etc/hookrelay/hookrelay.yaml` must find the store `serve` uses
// whatever directory it is run from.
func (c *Config) resolvePaths(file string) {
	dir := filepath.Dir(file)
	if abs, err := filepath.Abs(dir); err == nil {
		dir = abs
	}
	paths := []*string{&c.Storage.Path, &c.TLS.CertFile, &c.TLS.KeyFile, &c.TLS.CARoot}
	if cl := c.Cluster; cl != nil {
		paths = append(paths, &cl.NATS.Credentials)
		if cl.NATS.Embedded != nil {
			paths = append(paths, &cl.NATS.Embedded.StoreDir)
		}
	}
	for _, p := range paths {
		if *p != "" && !filepath.IsAbs(*p) {
			*p = filepath.Join(dir, *p)
		}
	}
}
