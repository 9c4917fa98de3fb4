package main

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"slices"
	"strings"

	"github.com/hookrelay/hookrelay/providers/registry"
	"github.com/urfave/cli/v2"
)

func initCommand() *cli.Command {
	return &cli.Command{
		Name:  "init",
		Usage: "write a starter config that `check` accepts (never overwrites a file)",
		Description: "One source per --provider (default sketchpen), named after the provider, and one target\n" +
			"\"main\" at --target that every event is routed to. Each secret is written as\n" +
			"${NAME_SECRET:-<random>}: a random secret made for this file, which the environment variable\n" +
			"replaces when set (set it to the secret the provider shows you). The file is created 0600.\n" +
			exitCodes("written", "the file exists (nothing is changed), or bad flags"),
		Flags: []cli.Flag{
			&cli.StringSliceFlag{Name: "provider", Usage: "add a source for `PROVIDER` (repeatable; " + strings.Join(registry.Names(), ", ") + ")"},
			&cli.StringFlag{Name: "target", Value: "http://127.0.0.1:9000/events", Usage: "relay events to `URL` (by default a local hookrelay sink)"},
			&cli.StringFlag{Name: "out", Aliases: []string{"o"}, Value: "hookrelay.yaml", Usage: "write the config to `FILE`"},
		},
		Action: initConfig,
	}
}

func initConfig(c *cli.Context) error {
	if c.NArg() > 0 {
		return fmt.Errorf("init takes no arguments, not %q (use --out FILE)", c.Args().First())
	}
	provs := c.StringSlice("provider")
	if len(provs) == 0 {
		provs = []string{"sketchpen"}
	}
	seen := map[string]bool{}
	for _, p := range provs {
		if !slices.Contains(registry.Names(), p) {
			return fmt.Errorf("--provider: unknown provider %q (known: %s)", p, strings.Join(registry.Names(), ", "))
		}
		if seen[p] {
			return fmt.Errorf("--provider: %s given twice", p)
		}
		seen[p] = true
	}
	target := c.String("target")
	if u, err := url.Parse(target); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("--target: %q is not an http:// or https:// URL", target)
	}
	text, err := starterConfig(provs, target)
	if err != nil {
		return err
	}
	out := c.String("out")
	f, err := os.OpenFile(out, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("%s already exists: not overwriting it (remove it or pass --out FILE)", out)
	}
	if err != nil {
		return fmt.Errorf("write config: %w", err)
	}
	if _, err := f.WriteString(text); err != nil {
		f.Close()
		return fmt.Errorf("write config %s: %w", out, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write config %s: %w", out, err)
	}
	w := c.App.Writer
	fmt.Fprintf(w, "wrote %s (%d %s, target main -> %s)\n\nnext:\n", out, len(provs), plural(len(provs), "source", "sources"), target)
	cfgArg := shellQuote(out)
	fmt.Fprintf(w, "  hookrelay check --config %s\n", cfgArg)
	fmt.Fprintf(w, "  hookrelay serve --config %s\n", cfgArg)
	if u, _ := url.Parse(target); u.Scheme == "http" && isLocalHost(u.Hostname()) {
		fmt.Fprintf(w, "  hookrelay sink --config %s --target main     # in a second terminal\n", cfgArg)
	}
	fmt.Fprintf(w, "  hookrelay send --config %s --source %s   # in a third\n", cfgArg, provs[0])
	fmt.Fprintf(w, "  hookrelay events list --config %s\n", cfgArg)
	fmt.Fprintf(w, "\nProviders call https://<your host>/webhooks/<source>; set each *_SECRET variable to the\nsecret the provider gives you (docs/providers.md, docs/config.md).\n")
	return nil
}

// starterConfig is the text `init` writes.
func starterConfig(provs []string, target string) (string, error) {
	var b strings.Builder
	b.WriteString(`# hookrelay config written by "hookrelay init". Reference: docs/config.md.
#
# Each ${NAME:-value} takes the environment variable NAME when it is set and
# the value after ":-" otherwise. The values here are random secrets made
# for this file: set the variables to your providers' secrets.
server:
  listen: 127.0.0.1:8080       # ":8080" for every interface; see tls for HTTPS
admin:
  listen: 127.0.0.1:9090       # metrics and the API the CLI uses; keep it private
  token: ${HOOKRELAY_ADMIN_TOKEN:-` + randHex(16) + `}
storage:
  path: ./data                 # relative to this file's directory
  retention: 720h
log:
  level: info
  format: text
sources:
`)
	for _, p := range provs {
		env := strings.ToUpper(strings.ReplaceAll(p, "-", "_")) + "_SECRET"
		secret := randHex(24)
		switch p {
		case "sketchpen", "shortkit":
			secret = "whsec_" + randHex(24)
		case "standard-webhooks":
			secret = "whsec_" + randB64(24)
		}
		fmt.Fprintf(&b, "  %s:                  # URL path /webhooks/%s\n    provider: %s\n    secrets: [\"${%s:-%s}\"]\n", p, p, p, env, secret)
		switch p {
		case "sketchpen", "shortkit", "standard-webhooks":
			b.WriteString("    tolerance: 5m\n")
		case "hmac":
			b.WriteString("    signature_header: X-Signature\n    prefix: \"sha256=\"\n    encoding: hex\n    template: \"{body}\"\n")
		}
	}
	fmt.Fprintf(&b, `targets:
  main:
    url: %q
    timeout: 10s
    signing_secret: ${HOOKRELAY_SIGNING_SECRET:-whsec_%s}
    retry: {max_attempts: 12, initial_backoff: 1s, max_backoff: 1h}
routes:
  - name: everything
    targets: [main]
`, target, randB64(24))
	return b.String(), nil
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never fails (Go 1.24+)
	return hex.EncodeToString(b)
}

func randB64(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return base64.StdEncoding.EncodeToString(b)
}

// isLocalHost reports whether host names this machine.
func isLocalHost(host string) bool {
	return host == "localhost" || host == "127.0.0.1" || host == "::1"
}

// shellQuote quotes s for a POSIX shell when it needs it.
func shellQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// plural picks the singular or plural form for n.
func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
