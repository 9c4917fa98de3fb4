package config

import (
	"errors"
	"fmt"
	"maps"
	"net/url"
	"path"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/hookrelay/hookrelay/providers"
	"github.com/hookrelay/hookrelay/providers/registry"
	"github.com/hookrelay/hookrelay/relay/httpx"
	"github.com/hookrelay/hookrelay/verify"
	"gopkg.in/yaml.v3"
)

// defaultTarget holds the values a target's omitted keys take.
var defaultTarget = Target{
	Timeout: Duration(10 * time.Second), MaxInFlight: 16,
	Retry: Retry{MaxAttempts: 12, InitialBackoff: Duration(time.Second), MaxBackoff: Duration(time.Hour)},
}

var nameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_-]*$`)

func verr(key, format string, args ...any) error {
	return &Error{Key: key, Msg: fmt.Sprintf(format, args...)}
}

// decodeProviderOptions decodes each source's provider-specific keys into
// its provider's options struct. A source whose provider is unknown is
// left to validate, which names the provider key.
func (c *Config) decodeProviderOptions() error {
	for _, name := range c.SourceNames() {
		s := c.Sources[name]
		if s == nil {
			continue
		}
		spec, err := registry.Lookup(s.Provider)
		if err != nil {
			continue
		}
		s.Options = spec.NewOptions()
		for _, k := range slices.Sorted(maps.Keys(s.ProviderKeys)) {
			key := "sources." + name + "." + k
			n := s.ProviderKeys[k]
			switch {
			case !slices.Contains(providers.OptionKeys(s.Options), k):
				return verr(key, "unknown key %q for provider %s%s (a source takes provider, secrets, tolerance, dedupe_key%s)", k, s.Provider,
					didYouMean(k, append([]string{"provider", "secrets", "tolerance", "dedupe_key"}, providers.OptionKeys(s.Options)...)), ownKeys(s.Options))
			case n.Kind != yaml.ScalarNode:
				return verr(key, "must be a single value, not a list or mapping")
			}
			if err := providers.SetOption(s.Options, k, n.Value); err != nil {
				return verr(key, "%v", err)
			}
		}
	}
	return nil
}

func ownKeys(o providers.Options) string {
	keys := providers.OptionKeys(o)
	if len(keys) == 0 {
		return ""
	}
	return ", and for this provider " + strings.Join(keys, ", ")
}

// applyDefaults fills what the file leaves out below the top-level
// sections (whose defaults Default sets before decoding): targets' timeouts,
// concurrency and retry policy, and the names of unnamed routes.
func (c *Config) applyDefaults() error {
	for _, t := range c.Targets {
		if t == nil {
			continue
		}
		if t.Timeout == 0 {
			t.Timeout = defaultTarget.Timeout
		}
		if t.MaxInFlight == 0 {
			t.MaxInFlight = defaultTarget.MaxInFlight
		}
		if t.Retry.MaxAttempts == 0 {
			t.Retry.MaxAttempts = defaultTarget.Retry.MaxAttempts
		}
		if t.Retry.InitialBackoff == 0 {
			t.Retry.InitialBackoff = defaultTarget.Retry.InitialBackoff
		}
		if t.Retry.MaxBackoff == 0 {
			t.Retry.MaxBackoff = defaultTarget.Retry.MaxBackoff
		}
	}
	for i, r := range c.Routes {
		if r != nil && r.Name == "" {
			r.Name = fmt.Sprintf("route-%d", i+1)
		}
	}
	c.clusterDefaults()
	return nil
}

// validate checks the decoded config with its defaults. It changes nothing.
func (c *Config) validate() error {
	if c.Server.Listen == "" && !c.TLS.Enabled() {
		return verr("server.listen", "required when tls.domains is empty")
	}
	if c.Server.MaxBodyBytes <= 0 {
		return verr("server.max_body_bytes", "must be positive")
	}
	if c.Server.MaxInFlight <= 0 {
		return verr("server.max_in_flight", "must be positive")
	}
	for _, f := range []struct {
		key string
		d   Duration
	}{
		{"server.read_header_timeout", c.Server.ReadHeaderTimeout}, {"server.read_timeout", c.Server.ReadTimeout},
		{"server.write_timeout", c.Server.WriteTimeout}, {"server.idle_timeout", c.Server.IdleTimeout},
		{"server.shutdown_timeout", c.Server.ShutdownTimeout},
	} {
		if f.d <= 0 {
			return verr(f.key, "must be positive (a listener without timeouts can be held open forever)")
		}
	}
	if c.Server.MaxBufferedBytes < c.Server.MaxBodyBytes {
		return verr("server.max_buffered_bytes", "must be at least server.max_body_bytes (%d)", c.Server.MaxBodyBytes)
	}
	if c.Server.MinBodyRate < 0 {
		return verr("server.min_body_rate", "must not be negative (0 turns the check off)")
	}
	if c.Server.MinBodyRate > 0 && c.Server.BodyGrace <= 0 {
		return verr("server.body_grace", "must be positive when server.min_body_rate is set")
	}
	if c.Storage.MinFreeBytes < 0 {
		return verr("storage.min_free_bytes", "must not be negative (0 turns the check off)")
	}
	if err := c.TLS.validate(); err != nil {
		return err
	}
	if err := c.validateCluster(); err != nil {
		return err
	}
	if c.Admin.Listen != "" && c.Admin.Token == "" && !httpx.IsLoopback(c.Admin.Listen) {
		return verr("admin.token", "required when admin.listen (%s) is not a loopback address", c.Admin.Listen)
	}
	if c.Storage.Path == "" {
		return verr("storage.path", "required")
	}
	if c.Storage.Retention.D() <= 0 {
		return verr("storage.retention", "must be positive")
	}
	if c.Dedupe.Window.D() <= 0 {
		return verr("dedupe.window", "must be positive")
	}
	if c.Dedupe.CacheSize < 0 {
		return verr("dedupe.cache_size", "must not be negative")
	}
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		return verr("log.level", "must be debug, info, warn or error, not %q", c.Log.Level)
	}
	if c.Log.Format != "text" && c.Log.Format != "json" {
		return verr("log.format", "must be text or json, not %q", c.Log.Format)
	}
	if len(c.Sources) == 0 {
		return verr("sources", "at least one source is required")
	}
	for _, name := range c.SourceNames() {
		if err := c.Sources[name].validate("sources."+name, name, c.reading); err != nil {
			return err
		}
	}
	for _, name := range c.TargetNames() {
		if err := c.Targets[name].validate("targets."+name, name); err != nil {
			return err
		}
	}
	for _, name := range c.TargetNames() {
		// A delivery still retrying when its event expires would be dropped.
		if span := c.Targets[name].retrySpan(); span >= c.Storage.Retention.D() {
			return verr("storage.retention", "%s is shorter than target %s can keep retrying (%s): raise it or lower retry.max_attempts/max_backoff",
				c.Storage.Retention.D(), name, span)
		}
	}
	return c.validateRoutes()
}

func (c *Config) validateRoutes() error {
	seen := map[string]bool{}
	for i, r := range c.Routes {
		key := fmt.Sprintf("routes[%d]", i)
		if r == nil {
			return verr(key, "empty route")
		}
		if seen[r.Name] {
			return verr(key+".name", "duplicate route name %q", r.Name)
		}
		seen[r.Name] = true
		if len(r.Targets) == 0 {
			return verr(key+".targets", "at least one target is required")
		}
		for j, t := range r.Targets {
			if _, ok := c.Targets[t]; !ok {
				return verr(fmt.Sprintf("%s.targets[%d]", key, j), "unknown target %q (known: %s)", t, strings.Join(c.TargetNames(), ", "))
			}
		}
		for j, s := range r.Match.Sources {
			if _, ok := c.Sources[s]; !ok {
				return verr(fmt.Sprintf("%s.match.sources[%d]", key, j), "unknown source %q (known: %s)", s, strings.Join(c.SourceNames(), ", "))
			}
		}
		for j, p := range r.Match.Providers {
			if _, err := registry.Lookup(p); err != nil {
				return verr(fmt.Sprintf("%s.match.providers[%d]", key, j), "%v", err)
			}
		}
		for j, g := range r.Match.Events {
			if _, err := path.Match(g, ""); err != nil {
				return verr(fmt.Sprintf("%s.match.events[%d]", key, j), "bad glob %q", g)
			}
		}
	}
	return nil
}

func (t *TLS) validate() error {
	if len(t.Domains) > 0 && t.CertFile != "" {
		return verr("tls.cert_file", "set either tls.domains (automatic certificates) or tls.cert_file/key_file, not both")
	}
	if (t.CertFile == "") != (t.KeyFile == "") {
		return verr("tls.key_file", "tls.cert_file and tls.key_file go together")
	}
	if len(t.Domains) > 0 {
		for i, d := range t.Domains {
			if d == "" || strings.ContainsAny(d, "/: ") {
				return verr(fmt.Sprintf("tls.domains[%d]", i), "invalid domain %q", d)
			}
		}
		if u, err := url.Parse(t.CA); err != nil || u.Scheme != "https" || u.Host == "" {
			return verr("tls.ca", "must be an https:// ACME directory URL")
		}
	}
	if t.Enabled() {
		if t.HTTPSPort <= 0 || t.HTTPSPort > 65535 {
			return verr("tls.https_port", "must be a port number")
		}
		if t.HTTPPort < 0 || t.HTTPPort > 65535 {
			return verr("tls.http_port", "must be a port number (0 disables the HTTP listener)")
		}
	}
	return nil
}

func (s *Source) validate(key, name string, reading bool) error {
	if s == nil {
		return verr(key, "empty source")
	}
	if !nameRE.MatchString(name) {
		return verr(key, "source names may use letters, digits, '_' and '-' only")
	}
	if s.Provider == "" {
		return verr(key+".provider", "required (one of: %s)", strings.Join(registry.Names(), ", "))
	}
	if _, err := registry.Lookup(s.Provider); err != nil {
		return verr(key+".provider", "%v", err)
	}
	for i, sec := range s.Secrets {
		if sec.Value == "" && !reading {
			return verr(fmt.Sprintf("%s.secrets[%d]", key, i), "empty secret (is its variable set to an empty string?)")
		}
	}
	return nil
}

func (t *Target) validate(key, name string) error {
	if t == nil {
		return verr(key, "empty target")
	}
	if !nameRE.MatchString(name) {
		return verr(key, "target names may use letters, digits, '_' and '-' only")
	}
	u, err := url.Parse(t.URL)
	if t.URL == "" || err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return verr(key+".url", "must be an http:// or https:// URL")
	}
	if t.Timeout <= 0 {
		return verr(key+".timeout", "must be positive")
	}
	if t.MaxInFlight < 1 || t.MaxInFlight > 10000 {
		return verr(key+".max_in_flight", "must be between 1 and 10000")
	}
	if t.Retry.MaxAttempts < 1 {
		return verr(key+".retry.max_attempts", "must be positive")
	}
	if t.Retry.MaxBackoff < t.Retry.InitialBackoff {
		return verr(key+".retry.max_backoff", "must not be smaller than initial_backoff")
	}
	if t.SigningSecret != "" {
		if _, err := SigningKey(t.SigningSecret); err != nil {
			return verr(key+".signing_secret", "must be whsec_<base64>")
		}
	}
	for h, v := range t.Headers {
		if !verify.ValidHeaderName(h) {
			return verr(key+".headers", "invalid header name %q", h)
		}
		if strings.ContainsAny(v, "\r\n\x00") {
			return verr(key+".headers."+h, "header values may not contain line breaks")
		}
	}
	return nil
}

// retrySpan bounds how long a delivery to t can stay pending when every
// backoff reaches max_backoff. (A target answering Retry-After can stretch
// each wait to one hour.)
func (t *Target) retrySpan() time.Duration {
	return time.Duration(t.Retry.MaxAttempts) * t.Retry.MaxBackoff.D()
}

// build makes what the runtime uses, once: each source's adapter (with its
// secrets) and dedupe-key override, and each target's signing key.
func (c *Config) build() error {
	for _, name := range c.SourceNames() {
		if c.reading {
			break // the events commands need no adapters (nor secrets)
		}
		s := c.Sources[name]
		key := "sources." + name
		exprs, err := providers.ParseKeyExprs(s.DedupeKey)
		if err != nil {
			return verr(key+".dedupe_key", "%v", err)
		}
		ad, err := s.Options.New(s.Common())
		if err != nil {
			var oe *providers.OptionError
			if errors.As(err, &oe) {
				key += "." + oe.Option
				err = oe.Err
			}
			return verr(key, "%s", redact(err.Error(), s))
		}
		s.built = &providers.Source{Name: name, Provider: s.Provider, Adapter: ad, DedupeKey: exprs, Sensitive: ad.SensitiveHeaders()}
	}
	for _, name := range c.TargetNames() {
		t := c.Targets[name]
		if t.SigningSecret != "" {
			k, err := SigningKey(t.SigningSecret)
			if err != nil {
				return verr("targets."+name+".signing_secret", "must be whsec_<base64>")
			}
			t.signingKey = k
		}
	}
	return nil
}

// SigningKey decodes a whsec_<base64> signing secret (the prefix is
// required here) into the HMAC key.
func SigningKey(secret string) ([]byte, error) {
	if !strings.HasPrefix(secret, verify.WebhookSecretPrefix) {
		return nil, errors.New("signing secret must start with whsec_")
	}
	return verify.DecodeWebhookSecret(secret)
}

// SecretWarnings lists, by key, the source secrets that have expired at now
// or expire within the next week: `check` prints them.
func (c *Config) SecretWarnings(now time.Time) []string {
	var out []string
	for _, name := range c.SourceNames() {
		for i, sec := range c.Sources[name].Secrets {
			key := fmt.Sprintf("sources.%s.secrets[%d]", name, i)
			switch {
			case sec.Expires.IsZero():
			case !now.Before(sec.Expires):
				out = append(out, fmt.Sprintf("%s expired at %s and is refused; remove it", key, sec.Expires.UTC().Format(time.RFC3339)))
			case sec.Expires.Sub(now) <= 7*24*time.Hour:
				out = append(out, fmt.Sprintf("%s expires at %s (in %s)", key, sec.Expires.UTC().Format(time.RFC3339), sec.Expires.Sub(now).Round(time.Minute)))
			}
		}
	}
	return out
}

// redact removes a source's secrets from a message.
func redact(msg string, s *Source) string {
	vals := make([]string, 0, len(s.Secrets)+len(s.ProviderKeys))
	for _, sec := range s.Secrets {
		vals = append(vals, sec.Value)
	}
	if s.Options != nil {
		vals = append(vals, providers.SecretOptions(s.Options)...)
	}
	for _, v := range vals {
		if len(v) >= 4 {
			msg = strings.ReplaceAll(msg, v, "[redacted]")
		}
	}
	return msg
}
