package config_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hookrelay/hookrelay/relay/config"
)

// testSecret is what ${SECRET} expands to in the testdata files; no error
// message may contain it, or the part of it yaml.v3 would quote.
const testSecret = "whsec_s3cr3t-never-print"

// envOf returns a lookup function over env only (never the process's).
func envOf(env map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) {
		v, ok := env[k]
		return v, ok
	}
}

func TestLoadExample(t *testing.T) {
	cfg, err := config.LoadWith("../../configs/example.yaml", envOf(nil))
	if err != nil {
		t.Fatalf("example config: %v", err)
	}
	if got, want := cfg.SourceNames(), []string{"shortkit-dev", "sketchpen-dev", "videopilot-dev", "videovector-dev"}; !slices.Equal(got, want) {
		t.Errorf("sources = %v, want %v", got, want)
	}
	if got, want := cfg.TargetNames(), []string{"local-sink"}; !slices.Equal(got, want) {
		t.Errorf("targets = %v, want %v", got, want)
	}
	if got, want := len(cfg.Routes), 1; got != want {
		t.Fatalf("routes = %d, want %d", got, want)
	}
	if got, want := cfg.Routes[0].Name, "everything-to-sink"; got != want {
		t.Errorf("route name = %q, want %q", got, want)
	}
	sp := cfg.Sources["sketchpen-dev"]
	if got, want := secretValues(sp), []string{"whsec_sketchpen_dev_secret"}; !slices.Equal(got, want) {
		t.Errorf("sketchpen-dev secrets = %q, want %q", got, want)
	}
	if got, want := sp.Tolerance.D(), 5*time.Minute; got != want {
		t.Errorf("sketchpen-dev tolerance = %v, want %v", got, want)
	}
	if got, want := cfg.Admin.Token, "dev-admin-token"; got != want {
		t.Errorf("admin.token = %q, want %q", got, want)
	}
	sink := cfg.Targets["local-sink"]
	if got, want := sink.Retry.MaxAttempts, 12; got != want {
		t.Errorf("retry.max_attempts = %d, want %d", got, want)
	}
	if got, want := sink.Retry.MaxBackoff.D(), time.Hour; got != want {
		t.Errorf("retry.max_backoff = %v, want %v", got, want)
	}
	if _, err := config.SigningKey(sink.SigningSecret); err != nil {
		t.Errorf("signing_secret: %v", err)
	}
	if got, want := cfg.Dedupe.Window.D(), 168*time.Hour; got != want {
		t.Errorf("dedupe.window = %v, want %v", got, want)
	}
}

// TestExampleEnvOverrides: the example's ${VAR:-default}s take the
// environment's values when set.
func TestExampleEnvOverrides(t *testing.T) {
	cfg, err := config.LoadWith("../../configs/example.yaml", envOf(map[string]string{
		"SKETCHPEN_SECRET": "whsec_from_env", "HOOKRELAY_ADMIN_TOKEN": "tok",
	}))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := cfg.Sources["sketchpen-dev"].Secrets[0].Value, "whsec_from_env"; got != want {
		t.Errorf("secret = %q, want %q", got, want)
	}
	if got, want := cfg.Admin.Token, "tok"; got != want {
		t.Errorf("admin.token = %q, want %q", got, want)
	}
}

func TestEnvDefaults(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		// wants
		listen  string
		maxBody int64
		token   string
		sync    bool
		secrets []string
	}{
		{
			name:   "unset variables take their defaults",
			env:    map[string]string{"SECRET": testSecret},
			listen: "127.0.0.1:0", maxBody: 2048, token: "dev-token", sync: true,
			secrets: []string{testSecret, "whsec_old"},
		},
		{
			name:   "empty variables take their defaults",
			env:    map[string]string{"SECRET": testSecret, "MAX_BODY": "", "ADMIN_TOKEN": "", "OLD_SECRET": ""},
			listen: "127.0.0.1:0", maxBody: 2048, token: "dev-token", sync: true,
			secrets: []string{testSecret, "whsec_old"},
		},
		{
			name:   "set variables win, and resolve to ints and bools",
			env:    map[string]string{"SECRET": testSecret, "MAX_BODY": "4096", "ADMIN_TOKEN": "t0k", "SYNC": "false", "OLD_SECRET": "whsec_prev", "LISTEN": "127.0.0.1:8081"},
			listen: "127.0.0.1:8081", maxBody: 4096, token: "t0k", sync: false,
			secrets: []string{testSecret, "whsec_prev"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := config.LoadWith("testdata/good/defaults.yaml", envOf(tt.env))
			if err != nil {
				t.Fatal(err)
			}
			if got, want := cfg.Server.Listen, tt.listen; got != want {
				t.Errorf("server.listen = %q, want %q", got, want)
			}
			if got, want := cfg.Server.MaxBodyBytes, tt.maxBody; got != want {
				t.Errorf("server.max_body_bytes = %d, want %d", got, want)
			}
			if got, want := cfg.Admin.Token, tt.token; got != want {
				t.Errorf("admin.token = %q, want %q", got, want)
			}
			if got, want := cfg.Storage.Sync, tt.sync; got != want {
				t.Errorf("storage.sync = %v, want %v", got, want)
			}
			if got, want := secretValues(cfg.Sources["sp"]), tt.secrets; !slices.Equal(got, want) {
				t.Errorf("secrets = %q, want %q", got, want)
			}
			if got, want := cfg.Targets["media"].URL, "http://127.0.0.1:9/hooks?tag=${literal}"; got != want {
				t.Errorf("target url = %q, want %q", got, want)
			}
			if got, want := cfg.Routes[0].Name, "route-1"; got != want {
				t.Errorf("unnamed route = %q, want %q", got, want)
			}
			if got, want := cfg.Targets["media"].Timeout.D(), 10*time.Second; got != want {
				t.Errorf("default target timeout = %v, want %v", got, want)
			}
		})
	}
}

// TestBadConfig: every error is one line "file:line: key: problem" naming
// the line of the offending key as written, and never shows a secret.
func TestBadConfig(t *testing.T) {
	tests := []struct {
		file string
		line int
		key  string
		msg  string // part of the problem text
	}{
		{"unknown_key_top", 6, "serverz", `unknown key "serverz"`},
		{"unknown_key_nested", 10, "sources.sp2.secretz", `unknown key "secretz"`},
		{"unknown_provider", 6, "sources.sp.provider", `unknown provider "sketchpad"`},
		{"unset_var", 8, "sources.sp.secrets[1]", "environment variable HOOKRELAY_TEST_UNSET_VAR is not set"},
		{"bad_duration", 7, "sources.sp.tolerance", `invalid duration "5 minutes"`},
		{"bad_duration_days", 5, "dedupe.window", `invalid duration "7d"`},
		{"bad_duration_flow", 10, "targets.media.retry.initial_backoff", `invalid duration "1x"`},
		{"bad_int_flow", 10, "targets.media.retry.max_attempts", "expected a whole number, found a single value"},
		{"empty_secrets", 6, "sources.sp.secrets", "at least one secret is required"},
		{"empty_env_secret", 6, "sources.sp.secrets[1]", "empty secret"},
		{"route_unknown_target", 14, "routes[0].targets[1]", `unknown target "medai"`},
		{"route_unknown_source", 13, "routes[0].match.sources[1]", `unknown source "ps"`},
		{"duplicate_route_names", 14, "routes[1].name", `duplicate route name "videos"`},
		{"duplicate_source_names", 9, "sources.sp", `mapping key "sp" already defined at line 4`},
		{"duplicate_nested_key", 8, "sources.sp.tolerance", `mapping key "tolerance" already defined at line 7`},
		{"admin_without_token", 3, "admin.token", "not a loopback address"},
		{"secrets_scalar", 6, "sources.sp.secrets", "expected a list of secrets, found a single value"},
		{"secret_in_int", 3, "server.max_body_bytes", "expected a whole number"},
		{"retention_shorter_than_retries", 5, "storage.retention", "shorter than target media can keep retrying (48h0m0s)"},
		{"header_value_newline", 11, "targets.media.headers.X-Team", "may not contain line breaks"},
		{"zero_timeout", 3, "server.read_timeout", "must be positive"},
		{"secret_bad_expires", 8, "sources.sp.secrets[1].expires", `invalid expires "tomorrow"`},
		{"secret_unknown_key", 8, "sources.sp.secrets[0].expire", `unknown key "expire"`},
		{"provider_option_unknown", 8, "sources.vv.scheme", `unknown key "scheme" for provider videovector`},
		{"provider_option_bad", 8, "sources.sk.scheme", `unknown scheme "signed-somehow"`},
		{"provider_option_list", 7, "sources.vv.webhook_id", "must be a single value"},
		{"cluster_both", 8, "cluster.nats.urls", "not both"},
		{"cluster_no_node", 3, "cluster.node", "required"},
		{"cluster_replicas", 5, "cluster.replicas", "between 1 and 5"},
		{"cluster_replicas_routes", 5, "cluster.replicas", "3 replicas need at least 3 nodes"},
		{"cluster_short_secret", 8, "cluster.nats.embedded.secret", "at least 16 characters"},
		{"small_body_budget", 3, "server.max_buffered_bytes", "at least server.max_body_bytes"},
		{"negative_min_free", 4, "storage.min_free_bytes", "must not be negative"},
		{"zero_body_grace", 4, "server.body_grace", "must be positive when server.min_body_rate is set"},
	}
	env := envOf(map[string]string{"SECRET": testSecret, "EMPTY": ""})
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			path := filepath.Join("testdata", "bad", tt.file+".yaml")
			_, err := config.LoadWith(path, env)
			if err == nil {
				t.Fatal("loaded, want an error")
			}
			msg := err.Error()
			var ce *config.Error
			if !errors.As(err, &ce) {
				t.Fatalf("error %q is a %T, want *config.Error", msg, err)
			}
			if got, want := ce.Line, tt.line; got != want {
				t.Errorf("line = %d, want %d (%s)", got, want, msg)
			}
			if got, want := ce.Key, tt.key; got != want {
				t.Errorf("key = %q, want %q (%s)", got, want, msg)
			}
			if prefix := fmt.Sprintf("%s:%d: %s: ", path, tt.line, tt.key); !strings.HasPrefix(msg, prefix) {
				t.Errorf("error %q does not start with %q", msg, prefix)
			}
			if !strings.Contains(msg, tt.msg) {
				t.Errorf("error %q does not mention %q", msg, tt.msg)
			}
			if strings.ContainsAny(msg, "\r\n") {
				t.Errorf("error %q spans several lines", msg)
			}
			if strings.Contains(msg, testSecret[:7]) || strings.Contains(msg, "s3cr3t") {
				t.Errorf("error %q shows the secret", msg)
			}
		})
	}
}

// TestBadConfigLinesMatchFile cross-checks the table above against the
// files: the reported line holds a segment of the key (the last one, or
// for a key that is missing, like admin.token, its closest ancestor), or an
// item of the list the key indexes.
func TestBadConfigLinesMatchFile(t *testing.T) {
	files, err := filepath.Glob("testdata/bad/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no testdata: %v", err)
	}
	env := envOf(map[string]string{"SECRET": testSecret, "EMPTY": ""})
	for _, path := range files {
		t.Run(filepath.Base(path), func(t *testing.T) {
			_, err := config.LoadWith(path, env)
			var ce *config.Error
			if !errors.As(err, &ce) {
				t.Fatalf("error = %v, want *config.Error", err)
			}
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			lines := strings.Split(string(data), "\n")
			if ce.Line < 1 || ce.Line > len(lines) {
				t.Fatalf("line %d outside the file (%s)", ce.Line, ce)
			}
			text := lines[ce.Line-1]
			if strings.HasPrefix(strings.TrimSpace(text), "- ") && strings.Contains(ce.Key, "[") {
				return
			}
			for _, seg := range strings.Split(ce.Key, ".") {
				if i := strings.Index(seg, "["); i >= 0 {
					seg = seg[:i]
				}
				if strings.Contains(text, seg+":") {
					return
				}
			}
			t.Errorf("line %d %q holds no segment of key %q (%s)", ce.Line, text, ce.Key, ce)
		})
	}
}

func TestLoadMissingFile(t *testing.T) {
	_, err := config.Load(filepath.Join(t.TempDir(), "nope.yaml"))
	if err == nil {
		t.Fatal("loaded a missing file")
	}
	if got, want := err.Error(), "nope.yaml"; !strings.Contains(got, want) {
		t.Errorf("error %q does not name %q", got, want)
	}
}

// TestParseSyntaxError: a YAML syntax error names the file and a line too.
func TestParseSyntaxError(t *testing.T) {
	_, err := config.Parse("inline.yaml", []byte("server:\n  listen: [127.0.0.1\nsources: {}\n"), envOf(nil))
	if err == nil {
		t.Fatal("parsed, want an error")
	}
	if got, want := err.Error(), "inline.yaml:"; !strings.HasPrefix(got, want) {
		t.Errorf("error %q does not start with %q", got, want)
	}
	var ce *config.Error
	if !errors.As(err, &ce) || ce.Line == 0 {
		t.Errorf("error %q has no line", err)
	}
}

// secretValues returns the values of a source's secrets.
func secretValues(s *config.Source) []string {
	out := make([]string, len(s.Secrets))
	for i, sec := range s.Secrets {
		out[i] = sec.Value
	}
	return out
}
