package main

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"

	"github.com/hookrelay/hookrelay/providers"
	"github.com/hookrelay/hookrelay/providers/registry"
	"github.com/hookrelay/hookrelay/relay"
	"github.com/hookrelay/hookrelay/relay/config"
	"github.com/urfave/cli/v2"
)

// sendTo is what `send` signs like and where it posts.
type sendTo struct {
	url  string // "" when not known (--list-events needs none)
	spec *providers.Spec
	ad   providers.Adapter // nil with --list-events and no --source
}

// sendTarget reads the provider, its adapter and the URL of `send` from
// the flags, or from the config's source with --config and --source.
func sendTarget(c *cli.Context) (sendTo, error) {
	var t sendTo
	if c.NArg() > 1 {
		return t, fmt.Errorf("send takes at most one URL, not %d arguments", c.NArg())
	}
	t.url = c.Args().First()
	if name := c.String("source"); name != "" {
		for _, f := range []string{"provider", "secret", "scheme", "header", "signature-header", "prefix", "encoding", "template", "timestamp-header"} {
			if f == "secret" && c.String(f) == os.Getenv("HOOKRELAY_SEND_SECRET") {
				continue // set from the environment only: the config wins
			}
			if c.IsSet(f) {
				return t, fmt.Errorf("--%s: not with --source (the source's config says it)", f)
			}
		}
		cfg, err := loadConfig(c)
		if err != nil {
			return t, err
		}
		sc, ok := cfg.Sources[name]
		if !ok {
			return t, fmt.Errorf("--source: unknown source %q (known: %s)", name, strings.Join(cfg.SourceNames(), ", "))
		}
		if t.spec, err = registry.Lookup(sc.Provider); err != nil {
			return t, err
		}
		t.ad = sc.Source().Adapter
		if t.url == "" {
			if t.url, err = sourceURL(cfg, name); err != nil {
				return t, err
			}
		}
		return t, nil
	}
	provider := c.String("provider")
	if provider == "" {
		return t, errors.New("send needs --provider PROVIDER and --secret SECRET, or --config FILE --source NAME")
	}
	var err error
	if t.spec, err = registry.Lookup(provider); err != nil {
		return t, fmt.Errorf("--provider: %w", err)
	}
	if c.Bool("list-events") {
		return t, nil
	}
	if !c.IsSet("secret") {
		return t, errors.New("send needs --secret SECRET (the secret the source is configured with), or --config FILE --source NAME")
	}
	common := providers.Common{Secrets: []providers.Secret{{Value: c.String("secret")}}}
	opts := t.spec.NewOptions()
	// Flags named like a provider's own keys set them (--scheme, --header,
	// --signature-header, ...); the others are not this provider's.
	for _, key := range providers.OptionKeys(opts) {
		flag := strings.ReplaceAll(key, "_", "-")
		if key == "value" || !c.IsSet(flag) {
			continue
		}
		if err := providers.SetOption(opts, key, c.String(flag)); err != nil {
			return t, fmt.Errorf("--%s: %w", flag, err)
		}
	}
	if c.String("scheme") == "callback-header" {
		// The callback scheme sends a configured header value, not a signature.
		common.Secrets = nil
		if err := providers.SetOption(opts, "value", c.String("secret")); err != nil {
			return t, err
		}
	}
	if t.ad, err = opts.New(common); err != nil {
		return t, err
	}
	return t, nil
}

// sourceURL is the URL of source name on this config's public listener,
// as seen from this machine.
func sourceURL(cfg *config.Config, name string) (string, error) {
	path := "/webhooks/" + url.PathEscape(name)
	if !cfg.TLS.Enabled() {
		host, port, err := net.SplitHostPort(cfg.Server.Listen)
		if err != nil || port == "0" {
			return "", fmt.Errorf("server.listen %q has no fixed port: pass the URL to send to", cfg.Server.Listen)
		}
		return "http://" + relay.DialAddr(net.JoinHostPort(host, port)) + path, nil
	}
	host := "localhost"
	if len(cfg.TLS.Domains) > 0 {
		host = cfg.TLS.Domains[0]
	}
	if cfg.TLS.HTTPSPort != 443 {
		host = net.JoinHostPort(host, strconv.Itoa(cfg.TLS.HTTPSPort))
	}
	return "https://" + host + path, nil
}

// sinkFromConfig returns the listen address and signing secret of the
// config's target name: `sink --config F --target NAME` plays that target.
func sinkFromConfig(c *cli.Context, name string) (listen, secret string, err error) {
	cfg, err := loadConfig(c)
	if err != nil {
		return "", "", err
	}
	t, ok := cfg.Targets[name]
	if !ok {
		return "", "", fmt.Errorf("--target: unknown target %q (known: %s)", name, strings.Join(cfg.TargetNames(), ", "))
	}
	u, err := url.Parse(t.URL)
	if err != nil {
		return "", "", fmt.Errorf("targets.%s.url: %w", name, err)
	}
	if u.Scheme == "https" {
		return "", "", fmt.Errorf("targets.%s.url is https: the sink speaks plain HTTP only", name)
	}
	port := u.Port()
	if port == "" {
		port = "80"
	}
	return net.JoinHostPort(u.Hostname(), port), t.SigningSecret, nil
}
