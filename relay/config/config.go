// Package config loads and validates hookrelay's YAML configuration file.
//
// Loading is strict: unknown keys, unset ${VAR}s, bad durations and
// references to unknown names are errors that name the file, the line and
// the key path.
package config

import (
	"errors"
	"fmt"
	"maps"
	"net/url"
	"os"
	"path"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/hookrelay/hookrelay/providers"
	"github.com/hookrelay/hookrelay/providers/registry"
	"gopkg.in/yaml.v3"
)

// Config is the whole configuration file.
type Config struct {
	Server  Server             `yaml:"server"`
	TLS     TLS                `yaml:"tls"`
	Admin   Admin              `yaml:"admin"`
	Storage Storage            `yaml:"storage"`
	Dedupe  Dedupe             `yaml:"dedupe"`
	Log     Log                `yaml:"log"`
	Sources map[string]*Source `yaml:"sources"`
	Targets map[string]*Target `yaml:"targets"`
	Routes  []*Route           `yaml:"routes"`

	// File is the path the config was loaded from.
	File string `yaml:"-"`
}

// Server is the public listener.
type Server struct {
	Listen            string   `yaml:"listen"`
	MaxBodyBytes      int64    `yaml:"max_body_bytes"`
	ReadHeaderTimeout Duration `yaml:"read_header_timeout"`
	ReadTimeout       Duration `yaml:"read_timeout"`
	WriteTimeout      Duration `yaml:"write_timeout"`
	IdleTimeout       Duration `yaml:"idle_timeout"`
	MaxHeaderBytes    int      `yaml:"max_header_bytes"`
	// MaxInFlight bounds the webhooks handled at once (503 past it).
	MaxInFlight     int      `yaml:"max_in_flight"`
	ShutdownTimeout Duration `yaml:"shutdown_timeout"`
}

// TLS configures automatic HTTPS (certmagic) or a certificate from files.
type TLS struct {
	Domains   []string `yaml:"domains"`
	Email     string   `yaml:"email"`
	CA        string   `yaml:"ca"`
	CARoot    string   `yaml:"ca_root"`
	HTTPPort  int      `yaml:"http_port"`
	HTTPSPort int      `yaml:"https_port"`
	CertFile  string   `yaml:"cert_file"`
	KeyFile   string   `yaml:"key_file"`
	// ListenHost is the address the HTTP and HTTPS ports bind to ("" = all).
	ListenHost string `yaml:"listen_host"`
}

// Enabled reports whether the public listener serves HTTPS.
func (t TLS) Enabled() bool { return len(t.Domains) > 0 || t.CertFile != "" }

// Admin is the loopback listener for metrics and the CLI's API.
type Admin struct {
	Listen string `yaml:"listen"`
	Token  string `yaml:"token"`
}

// Storage is the Badger store.
type Storage struct {
	Path      string   `yaml:"path"`
	Retention Duration `yaml:"retention"`
	Sync      bool     `yaml:"sync"`
}

// Dedupe configures de-duplication.
type Dedupe struct {
	Window    Duration `yaml:"window"`
	CacheSize int      `yaml:"cache_size"`
}

// Log configures logging.
type Log struct {
	Level  string `yaml:"level"`  // debug, info, warn, error
	Format string `yaml:"format"` // text or json
}

// Source is one webhook endpoint: /webhooks/<name>.
type Source struct {
	Provider  string   `yaml:"provider"`
	Secrets   []string `yaml:"secrets"`
	Tolerance Duration `yaml:"tolerance"`
	DedupeKey []string `yaml:"dedupe_key"`
	Scheme    string   `yaml:"scheme"`
	WebhookID string   `yaml:"webhook_id"`
	Header    string   `yaml:"header"`
	Value     string   `yaml:"value"`

	SignatureHeader string `yaml:"signature_header"`
	Prefix          string `yaml:"prefix"`
	Encoding        string `yaml:"encoding"`
	Template        string `yaml:"template"`
	TimestampHeader string `yaml:"timestamp_header"`
	EventTypeField  string `yaml:"event_type_field"`
	SubjectField    string `yaml:"subject_field"`
}

// Options converts the source to adapter options.
func (s *Source) Options() providers.Options {
	return providers.Options{
		Secrets: s.Secrets, Tolerance: s.Tolerance.D(), Scheme: s.Scheme, WebhookID: s.WebhookID,
		Header: s.Header, Value: s.Value, SignatureHeader: s.SignatureHeader, Prefix: s.Prefix,
		Encoding: s.Encoding, Template: s.Template, TimestampHeader: s.TimestampHeader,
		EventTypeField: s.EventTypeField, SubjectField: s.SubjectField,
	}
}

// Target is an internal HTTP service events are relayed to.
type Target struct {
	URL           string            `yaml:"url"`
	Timeout       Duration          `yaml:"timeout"`
	Headers       map[string]string `yaml:"headers"`
	SigningSecret string            `yaml:"signing_secret"`
	MaxInFlight   int               `yaml:"max_in_flight"`
	Retry         Retry             `yaml:"retry"`
}

// Retry is a target's retry policy.
type Retry struct {
	MaxAttempts    int      `yaml:"max_attempts"`
	InitialBackoff Duration `yaml:"initial_backoff"`
	MaxBackoff     Duration `yaml:"max_backoff"`
}

// Route selects targets for events.
type Route struct {
	Name    string   `yaml:"name"`
	Match   Match    `yaml:"match"`
	Targets []string `yaml:"targets"`
}

// Match selects events by source or provider and event-type globs. Empty
// lists match everything.
type Match struct {
	Sources   []string `yaml:"sources"`
	Providers []string `yaml:"providers"`
	Events    []string `yaml:"events"`
}

// Duration is a time.Duration written as "5m", "168h", ... in YAML.
type Duration time.Duration

// D returns the duration as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// UnmarshalYAML parses a Go duration string.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return &lineError{line: n.Line, col: n.Column, msg: "expected a duration such as 30s or 5m"}
	}
	v, err := time.ParseDuration(n.Value)
	if err != nil || v < 0 {
		return &lineError{line: n.Line, col: n.Column, msg: fmt.Sprintf("invalid duration %q (use units such as 30s, 5m, 168h)", n.Value)}
	}
	*d = Duration(v)
	return nil
}

// Error is a configuration error. Its message is one line:
// "file:line: key.path: problem".
type Error struct {
	File string
	Line int
	Key  string
	Msg  string
}

// Error formats the error as "file:line: key: problem".
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d", e.Line)
	}
	b.WriteString(": ")
	if e.Key != "" {
		b.WriteString(e.Key)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

type lineError struct {
	line, col int // of the offending node
	msg       string
}

func (e *lineError) Error() string { return e.msg }

// Load reads, expands, decodes and validates the file at path, using
// os.LookupEnv for ${VAR}s.
func Load(path string) (*Config, error) {
	return LoadWith(path, os.LookupEnv)
}

// LoadWith is Load with a custom environment lookup.
func LoadWith(path string, lookup func(string) (string, bool)) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	return Parse(path, data, lookup)
}

// Parse decodes and validates config data; file names it in errors.
func Parse(file string, data []byte, lookup func(string) (string, bool)) (*Config, error) {
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil, yamlError(file, &root, &root, err)
	}
	if len(root.Content) == 0 {
		return nil, &Error{File: file, Msg: "empty config file"}
	}
	if err := duplicateKey(file, &root, ""); err != nil {
		return nil, err
	}
	if err := expandEnv(&root, nil, lookup); err != nil {
		var le *envError
		if errors.As(err, &le) {
			return nil, &Error{File: file, Line: le.line, Key: le.key, Msg: le.msg}
		}
		return nil, err
	}
	cfg := Default()
	cfg.File = file
	if err := decodeStrict(file, &root, cfg); err != nil {
		return nil, err
	}
	if err := cfg.validate(); err != nil {
		var ve *Error
		if errors.As(err, &ve) {
			ve.File = file
			ve.Line = lineOf(&root, ve.Key)
		}
		return nil, err
	}
	return cfg, nil
}

// Default returns the configuration used for keys the file leaves out.
func Default() *Config {
	return &Config{
		Server: Server{
			Listen: ":8080", MaxBodyBytes: 1 << 20,
			ReadHeaderTimeout: Duration(5 * time.Second), ReadTimeout: Duration(30 * time.Second),
			WriteTimeout: Duration(30 * time.Second), IdleTimeout: Duration(120 * time.Second),
			MaxHeaderBytes: 64 << 10, ShutdownTimeout: Duration(30 * time.Second), MaxInFlight: 1024,
		},
		TLS:     TLS{CA: "https://acme-v02.api.letsencrypt.org/directory", HTTPPort: 80, HTTPSPort: 443},
		Admin:   Admin{Listen: "127.0.0.1:9090"},
		Storage: Storage{Path: "./data", Retention: Duration(720 * time.Hour)},
		Dedupe:  Dedupe{Window: Duration(168 * time.Hour), CacheSize: 100000},
		Log:     Log{Level: "info", Format: "text"},
	}
}

// DefaultTarget holds the values a target's omitted keys take.
var defaultTarget = Target{
	Timeout: Duration(10 * time.Second), MaxInFlight: 16,
	Retry: Retry{MaxAttempts: 12, InitialBackoff: Duration(time.Second), MaxBackoff: Duration(time.Hour)},
}

var nameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_-]*$`)

func verr(key, format string, args ...any) error {
	return &Error{Key: key, Msg: fmt.Sprintf(format, args...)}
}

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
	for key, d := range map[string]Duration{
		"server.read_header_timeout": c.Server.ReadHeaderTimeout, "server.read_timeout": c.Server.ReadTimeout,
		"server.write_timeout": c.Server.WriteTimeout, "server.idle_timeout": c.Server.IdleTimeout,
		"server.shutdown_timeout": c.Server.ShutdownTimeout,
	} {
		if d <= 0 {
			return verr(key, "must be positive (a listener without timeouts can be held open forever)")
		}
	}
	if err := c.TLS.validate(); err != nil {
		return err
	}
	if c.Admin.Listen != "" && c.Admin.Token == "" && !isLoopback(c.Admin.Listen) {
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
		if err := c.Sources[name].validate("sources."+name, name); err != nil {
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
	seen := map[string]bool{}
	for i, r := range c.Routes {
		key := fmt.Sprintf("routes[%d]", i)
		if r == nil {
			return verr(key, "empty route")
		}
		if r.Name == "" {
			r.Name = fmt.Sprintf("route-%d", i+1)
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
			if !slices.Contains(registry.Names(), p) {
				return verr(fmt.Sprintf("%s.match.providers[%d]", key, j), "unknown provider %q (known: %s)", p, strings.Join(registry.Names(), ", "))
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

func (s *Source) validate(key, name string) error {
	if s == nil {
		return verr(key, "empty source")
	}
	if !nameRE.MatchString(name) {
		return verr(key, "source names may use letters, digits, '_' and '-' only")
	}
	if s.Provider == "" {
		return verr(key+".provider", "required (one of: %s)", strings.Join(registry.Names(), ", "))
	}
	if !slices.Contains(registry.Names(), s.Provider) {
		return verr(key+".provider", "unknown provider %q (known: %s)", s.Provider, strings.Join(registry.Names(), ", "))
	}
	if !(s.Provider == "shortkit" && s.Scheme == "callback-header") {
		if len(s.Secrets) == 0 {
			return verr(key+".secrets", "at least one secret is required")
		}
		for i, sec := range s.Secrets {
			if sec == "" {
				return verr(fmt.Sprintf("%s.secrets[%d]", key, i), "empty secret (is its variable set to an empty string?)")
			}
		}
	}
	if _, err := providers.ParseKeyExprs(s.DedupeKey); err != nil {
		return verr(key+".dedupe_key", "%v", err)
	}
	if _, err := registry.New(s.Provider, s.Options()); err != nil {
		return verr(key, "%s", redact(err.Error(), s.Secrets, s.Value))
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
	if t.Timeout == 0 {
		t.Timeout = defaultTarget.Timeout
	}
	if t.MaxInFlight == 0 {
		t.MaxInFlight = defaultTarget.MaxInFlight
	}
	if t.MaxInFlight < 0 || t.MaxInFlight > 10000 {
		return verr(key+".max_in_flight", "must be between 1 and 10000")
	}
	if t.Retry.MaxAttempts == 0 {
		t.Retry.MaxAttempts = defaultTarget.Retry.MaxAttempts
	}
	if t.Retry.MaxAttempts < 0 {
		return verr(key+".retry.max_attempts", "must be positive")
	}
	if t.Retry.InitialBackoff == 0 {
		t.Retry.InitialBackoff = defaultTarget.Retry.InitialBackoff
	}
	if t.Retry.MaxBackoff == 0 {
		t.Retry.MaxBackoff = defaultTarget.Retry.MaxBackoff
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
		if h == "" || strings.ContainsAny(h, " :\r\n") {
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

// SigningKey decodes a whsec_<base64> secret into the HMAC key.
func SigningKey(secret string) ([]byte, error) {
	b64, ok := strings.CutPrefix(secret, "whsec_")
	if !ok {
		return nil, errors.New("signing secret must start with whsec_")
	}
	key, err := decodeB64(b64)
	if err != nil || len(key) == 0 {
		return nil, errors.New("signing secret is not valid base64 after whsec_")
	}
	return key, nil
}

// SourceNames returns the source names, sorted.
func (c *Config) SourceNames() []string { return slices.Sorted(maps.Keys(c.Sources)) }

// TargetNames returns the target names, sorted.
func (c *Config) TargetNames() []string { return slices.Sorted(maps.Keys(c.Targets)) }

// redact removes secrets from a message.
func redact(msg string, secrets []string, more ...string) string {
	for _, s := range append(append([]string(nil), secrets...), more...) {
		if len(s) >= 4 {
			msg = strings.ReplaceAll(msg, s, "[redacted]")
		}
	}
	return msg
}
