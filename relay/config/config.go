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
	"os"
	"slices"
	"strings"
	"time"

	"github.com/hookrelay/hookrelay/providers"
	"github.com/hookrelay/hookrelay/relay/storage"
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
	Cluster *Cluster           `yaml:"cluster"`
	Sources map[string]*Source `yaml:"sources"`
	Targets map[string]*Target `yaml:"targets"`
	Routes  []*Route           `yaml:"routes"`

	// File is the path the config was loaded from.
	File string `yaml:"-"`

	reading bool // loaded by LoadForReading: sources not built
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
	// MaxBufferedBytes bounds the request bodies held in memory at once,
	// across all requests (503 past it).
	MaxBufferedBytes int64 `yaml:"max_buffered_bytes"`
	// MinBodyRate (bytes/s) and BodyGrace: after the first BodyGrace, each
	// further BodyGrace of a body must bring MinBodyRate*BodyGrace bytes
	// (or its end), else 408. MinBodyRate 0 turns the check off.
	MinBodyRate int64    `yaml:"min_body_rate"`
	BodyGrace   Duration `yaml:"body_grace"`
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
	// MinFreeBytes: below this much free space on the filesystem of Path
	// the store takes no new events (503) and does not open; 0 turns the
	// watch off.
	MinFreeBytes int64 `yaml:"min_free_bytes"`
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
	Secrets   []Secret `yaml:"secrets"`
	Tolerance Duration `yaml:"tolerance"`
	DedupeKey []string `yaml:"dedupe_key"`
	// ProviderKeys are the source's other keys, the provider's own options
	// (scheme, webhook_id, ...): Parse decodes them into Options.
	ProviderKeys map[string]yaml.Node `yaml:",inline"`

	// Options are the provider's own options, decoded by Parse.
	Options providers.Options `yaml:"-"`
	built   *providers.Source
}

// Source returns the runtime source built from the config: the adapter
// with its secrets, and the parsed dedupe-key override. name is the
// source's name.
func (s *Source) Source() *providers.Source { return s.built }

// Common returns the settings every provider takes.
func (s *Source) Common() providers.Common {
	c := providers.Common{Tolerance: s.Tolerance.D(), Secrets: make([]providers.Secret, len(s.Secrets))}
	for i, sec := range s.Secrets {
		c.Secrets[i] = providers.Secret{Value: sec.Value, Expires: sec.Expires}
	}
	return c
}

// Secret is one entry of a source's secrets: a string, or {value, expires}
// for a secret refused from an instant on (rotation without a restart).
type Secret struct {
	Value   string    `yaml:"value"`
	Expires time.Time `yaml:"expires"`
}

// UnmarshalYAML reads "secret" or {value: secret, expires: RFC3339}.
func (s *Secret) UnmarshalYAML(n *yaml.Node) error {
	switch n.Kind {
	case yaml.ScalarNode:
		s.Value = n.Value
		return nil
	case yaml.MappingNode:
	default:
		return &lineError{line: n.Line, col: n.Column, msg: "a secret is a string or {value: ..., expires: RFC3339 time}"}
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if v.Kind != yaml.ScalarNode {
			return &lineError{line: v.Line, col: v.Column, msg: fmt.Sprintf("%s must be a string", k.Value)}
		}
		switch k.Value {
		case "value":
			s.Value = v.Value
		case "expires":
			t, err := time.Parse(time.RFC3339, v.Value)
			if err != nil {
				return &lineError{line: v.Line, col: v.Column, msg: fmt.Sprintf("invalid expires %q (want an RFC 3339 time such as 2026-12-01T13:00:00Z)", v.Value)}
			}
			s.Expires = t
		default:
			return &lineError{line: k.Line, col: k.Column, msg: fmt.Sprintf("unknown key %q (a secret has value and expires)", k.Value)}
		}
	}
	return nil
}

// Target is an internal HTTP service events are relayed to.
type Target struct {
	URL           string            `yaml:"url"`
	Timeout       Duration          `yaml:"timeout"`
	Headers       map[string]string `yaml:"headers"`
	SigningSecret string            `yaml:"signing_secret"`
	MaxInFlight   int               `yaml:"max_in_flight"`
	Retry         Retry             `yaml:"retry"`

	signingKey []byte // decoded SigningSecret, set by Parse
}

// SigningKey returns the HMAC key of signing_secret (nil: deliveries are
// not signed).
func (t *Target) SigningKey() []byte { return t.signingKey }

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
	return parse(file, data, lookup, false)
}

// LoadForReading loads the file at path for the commands that read events
// (events, replay, cluster status): they never need the sources'
// secrets, so an unset ${VAR} under sources is taken as empty and the
// sources' adapters are not built (Source.Source is nil). Everything else
// is loaded and checked as by Load.
func LoadForReading(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	return parse(path, data, os.LookupEnv, true)
}

func parse(file string, data []byte, lookup func(string) (string, bool), reading bool) (*Config, error) {
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil, explainSyntax(data, yamlError(file, &root, &root, err))
	}
	if len(root.Content) == 0 {
		return nil, &Error{File: file, Msg: "empty config file"}
	}
	if err := duplicateKey(file, &root, ""); err != nil {
		return nil, err
	}
	if err := expandRoot(&root, lookup, reading); err != nil {
		var le *envError
		if errors.As(err, &le) {
			return nil, &Error{File: file, Line: le.line, Key: le.key, Msg: le.msg}
		}
		return nil, err
	}
	cfg := Default()
	cfg.File, cfg.reading = file, reading
	if err := decodeStrict(file, &root, cfg); err != nil {
		return nil, err
	}
	cfg.resolvePaths(file)
	// The pipeline after decoding: the providers' own options, defaults,
	// validation (which changes nothing), then building the adapters and
	// keys once. Each step's *Error names a key; its line is looked up here.
	for _, step := range []func() error{cfg.decodeProviderOptions, cfg.applyDefaults, cfg.validate, cfg.build} {
		if err := step(); err != nil {
			var ve *Error
			if errors.As(err, &ve) {
				ve.File = file
				ve.Line = lineOf(&root, ve.Key)
			}
			return nil, err
		}
	}
	return cfg, nil
}

// DefaultMinFreeBytes is storage.min_free_bytes when the file sets none:
// what Badger may still write after the store stops taking events (three
// 16 MiB memtables flushed, one 64 MiB value-log file, an L0 compaction's
// output before its inputs go) plus room for the requests in flight.
const DefaultMinFreeBytes = 256 << 20

// Default returns the configuration used for keys the file leaves out.
func Default() *Config {
	return &Config{
		Server: Server{
			Listen: ":8080", MaxBodyBytes: 1 << 20,
			ReadHeaderTimeout: Duration(5 * time.Second), ReadTimeout: Duration(30 * time.Second),
			WriteTimeout: Duration(30 * time.Second), IdleTimeout: Duration(120 * time.Second),
			MaxHeaderBytes: 64 << 10, ShutdownTimeout: Duration(30 * time.Second), MaxInFlight: 1024,
			MaxBufferedBytes: 64 << 20, MinBodyRate: 16 << 10, BodyGrace: Duration(5 * time.Second),
		},
		TLS:     TLS{CA: "https://acme-v02.api.letsencrypt.org/directory", HTTPPort: 80, HTTPSPort: 443},
		Admin:   Admin{Listen: "127.0.0.1:9090"},
		Storage: Storage{Path: "./data", Retention: Duration(storage.DefaultRetention), MinFreeBytes: DefaultMinFreeBytes},
		Dedupe:  Dedupe{Window: Duration(storage.DefaultDedupeWindow), CacheSize: 100000},
		Log:     Log{Level: "info", Format: "text"},
	}
}

// SourceNames returns the source names, sorted.
func (c *Config) SourceNames() []string { return slices.Sorted(maps.Keys(c.Sources)) }

// TargetNames returns the target names, sorted.
func (c *Config) TargetNames() []string { return slices.Sorted(maps.Keys(c.Targets)) }

// LoadAdmin reads only the admin section of the file at path (with its
// ${VAR}s expanded and its defaults): enough for `hookrelay reload` to
// reach the running server even when the rest of the file is invalid, so
// that the server itself refuses it, logs and counts the refusal.
func LoadAdmin(path string) (Admin, error) {
	a := Default().Admin
	data, err := os.ReadFile(path)
	if err != nil {
		return a, fmt.Errorf("read config: %w", err)
	}
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil || len(root.Content) == 0 || root.Content[0].Kind != yaml.MappingNode {
		return a, &Error{File: path, Msg: "not a YAML mapping"}
	}
	m := root.Content[0]
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value != "admin" {
			continue
		}
		n := m.Content[i+1]
		if err := expandEnv(n, []string{"admin"}, os.LookupEnv); err != nil {
			return a, &Error{File: path, Line: n.Line, Key: "admin", Msg: err.Error()}
		}
		if err := n.Decode(&a); err != nil {
			return a, &Error{File: path, Line: n.Line, Key: "admin", Msg: "cannot read the admin section"}
		}
	}
	return a, nil
}

// expandRoot expands the ${VAR}s of the document. With lenient set, an
// unset variable under sources is taken as empty (see LoadForReading).
func expandRoot(root *yaml.Node, lookup func(string) (string, bool), lenient bool) error {
	if !lenient || len(root.Content) == 0 || root.Content[0].Kind != yaml.MappingNode {
		return expandEnv(root, nil, lookup)
	}
	orEmpty := func(k string) (string, bool) {
		if v, ok := lookup(k); ok {
			return v, true
		}
		return "", true
	}
	m := root.Content[0]
	for i := 0; i+1 < len(m.Content); i += 2 {
		l := lookup
		if m.Content[i].Value == "sources" {
			l = orEmpty
		}
		if err := expandEnv(m.Content[i+1], []string{m.Content[i].Value}, l); err != nil {
			return err
		}
	}
	return nil
}
