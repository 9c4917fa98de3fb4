package config_test

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hookrelay/hookrelay/relay/config"
)

// TestBareVariable: $VAR without braces is an error naming the key and the
// ${VAR} form, never a secret taken literally; $$ is a literal $.
func TestBareVariable(t *testing.T) {
	tests := []struct {
		name, value string
		want        string // in the error; "" = loads
		secret      string // the secret loaded
	}{
		{"bare upper-case variable", "$MY_SP_SECRET", "$MY_SP_SECRET is not expanded: write ${MY_SP_SECRET}", ""},
		{"bare variable inside a value", "whsec_$SUFFIX", "write ${SUFFIX}", ""},
		{"bare lower-case name is not echoed", "pa$sword", "a bare $ before a name is not expanded", ""},
		{"unclosed brace", "${SECRET", "unclosed ${", ""},
		{"not a name", "${1X}", "does not hold a variable name", ""},
		{"dollar dollar", "pa$$sword", "", "pa$sword"},
		{"dollar dollar brace", "$${SECRET}", "", "${SECRET}"},
		{"dollar before a digit", "cost$5", "", "cost$5"},
		{"expanded value is not expanded again", "${DOLLAR}", "", "$HOME"},
		{"default", "${NOPE:-whsec_dev}", "", "whsec_dev"},
	}
	env := envOf(map[string]string{"SECRET": testSecret, "DOLLAR": "$HOME"})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data := fmt.Sprintf("server:\n  listen: 127.0.0.1:0\nsources:\n  sp:\n    provider: sketchpen\n    secrets: [%q]\n", tt.value)
			cfg, err := config.Parse("inline.yaml", []byte(data), env)
			if tt.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				if got := cfg.Sources["sp"].Secrets[0].Value; got != tt.secret {
					t.Errorf("secret = %q, want %q", got, tt.secret)
				}
				return
			}
			var ce *config.Error
			if !errors.As(err, &ce) {
				t.Fatalf("error = %v, want a *config.Error", err)
			}
			if got, want := ce.Key, "sources.sp.secrets[0]"; got != want {
				t.Errorf("key = %q, want %q (%v)", got, want, err)
			}
			if got, want := ce.Line, 6; got != want {
				t.Errorf("line = %d, want %d", got, want)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not say %q", err, tt.want)
			}
			if strings.Contains(err.Error(), "sword") {
				t.Errorf("error %q shows part of a literal secret", err)
			}
		})
	}
}

// TestRelativePaths: storage.path, tls.cert_file, key_file and ca_root are
// relative to the config file's directory, not to the current directory.
func TestRelativePaths(t *testing.T) {
	cfg, err := config.LoadWith("testdata/good/paths.yaml", envOf(map[string]string{"SECRET": "s"}))
	if err != nil {
		t.Fatal(err)
	}
	dir, err := filepath.Abs("testdata/good")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ key, got, want string }{
		{"storage.path", cfg.Storage.Path, filepath.Join(dir, "store")},
		{"tls.cert_file", cfg.TLS.CertFile, filepath.Join(dir, "certs/edge.pem")},
		{"tls.key_file", cfg.TLS.KeyFile, "/etc/hookrelay/edge.key"},
	} {
		if c.got != c.want {
			t.Errorf("%s = %q, want %q", c.key, c.got, c.want)
		}
	}
	if got, want := cfg.Sources["sp"].Secrets[0].Value, "pa$word-s"; got != want {
		t.Errorf("secret = %q, want %q", got, want)
	}
	// The default ./data is relative to the file too.
	cfg, err = config.Parse(filepath.Join(dir, "x.yaml"), []byte("sources: {sp: {provider: sketchpen, secrets: [s]}}\n"), envOf(nil))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := cfg.Storage.Path, filepath.Join(dir, "data"); got != want {
		t.Errorf("default storage.path = %q, want %q", got, want)
	}
}

// TestLayoutErrors: YAML layout mistakes are told in words, with how to
// write it, on the line that is wrong, never as the parser's raw text.
func TestLayoutErrors(t *testing.T) {
	tests := []struct {
		file string
		line int
		want string
	}{
		{"indent_less", 6, "lines up with no key above it"},
		{"item_indent_more", 8, `indented more than the list item above it`},
		{"item_on_key_line", 6, `put each "- item" on its own line`},
		{"key_without_colon", 5, `a key without ":": write "provider: ..."`},
		{"key_typo", 6, `sources.sp.secretz: unknown key "secretz" for provider sketchpen; did you mean "secrets"?`},
		{"routes_mapping", 7, `routes: expected a list of routes, found a mapping (key: value lines): start each item with "- "`},
		{"section_not_indented", 2, `unknown key "listen" (indent it under "server:" above, which is empty)`},
		{"source_scalar", 4, `sources.sp: expected a source (a mapping: "key: value" lines), found a single value: put the source's keys on the lines below "sp:"`},
		{"sources_list", 3, `sources: expected a mapping of names to sources, found a list: remove the "- "`},
		{"tab", 7, "a tab in the indentation: YAML indents with spaces only"},
		{"two_colons", 10, `a second ": " on one line: quote the value`},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			path := filepath.Join("testdata", "layout", tt.file+".yaml")
			_, err := config.LoadWith(path, envOf(nil))
			var ce *config.Error
			if !errors.As(err, &ce) {
				t.Fatalf("error = %v, want a *config.Error", err)
			}
			msg := err.Error()
			if got, want := ce.Line, tt.line; got != want {
				t.Errorf("line = %d, want %d (%s)", got, want, msg)
			}
			if !strings.HasPrefix(msg, fmt.Sprintf("%s:%d: ", path, tt.line)) || !strings.Contains(msg, tt.want) {
				t.Errorf("error %q, want %s:%d: ...%s", msg, path, tt.line, tt.want)
			}
			for _, raw := range []string{"did not find expected", "cannot unmarshal", "config.", "!!", "in this context", "cannot start any token"} {
				if strings.Contains(msg, raw) {
					t.Errorf("error %q shows the parser's text %q", msg, raw)
				}
			}
		})
	}
}
