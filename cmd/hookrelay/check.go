package main

import (
	"fmt"
	"io"
	"net/url"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/hookrelay/hookrelay/relay/config"
	"github.com/urfave/cli/v2"
)

func checkCommand() *cli.Command {
	return &cli.Command{
		Name:  "check",
		Usage: "validate the config and print its sources, targets and routes",
		Description: "Errors name the file, the line and the key. Secrets are never printed.\n" +
			exitCodes("the config is valid", "it is not (one line: file:line: key: problem)"),
		Flags: []cli.Flag{configFlag()},
		Action: func(c *cli.Context) error {
			cfg, err := loadConfig(c)
			if err != nil {
				return err
			}
			printConfig(c.App.Writer, cfg)
			for _, w := range cfg.SecretWarnings(time.Now()) {
				fmt.Fprintf(c.App.ErrWriter, "warning: %s\n", w)
			}
			return nil
		},
	}
}

func printConfig(out io.Writer, cfg *config.Config) {
	fmt.Fprintf(out, "%s: OK\n\n", cfg.File)
	w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintf(w, "SOURCE\tPROVIDER\tURL PATH\tSECRETS\tDEDUPE KEY\n")
	for _, name := range cfg.SourceNames() {
		s := cfg.Sources[name]
		provider := s.Provider
		if sch, ok := s.Source().Adapter.(interface{ Scheme() string }); ok {
			provider += " (" + sch.Scheme() + ")"
		}
		dk := "default"
		if len(s.DedupeKey) > 0 {
			dk = strings.Join(s.DedupeKey, " + ")
		}
		fmt.Fprintf(w, "%s\t%s\t/webhooks/%s\t%d\t%s\n", name, provider, name, len(s.Secrets), dk)
	}
	w.Flush()
	fmt.Fprintln(out)
	fmt.Fprintf(w, "TARGET\tURL\tTIMEOUT\tMAX IN FLIGHT\tRETRY\tSIGNED\n")
	for _, name := range cfg.TargetNames() {
		t := cfg.Targets[name]
		signed := "no"
		if t.SigningSecret != "" {
			signed = "yes"
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%d\t%s, %s..%s\t%s\n", name, redactURL(t.URL), t.Timeout.D(), t.MaxInFlight,
			count(t.Retry.MaxAttempts, "attempt", "attempts"), t.Retry.InitialBackoff.D(), t.Retry.MaxBackoff.D(), signed)
	}
	w.Flush()
	fmt.Fprintln(out)
	fmt.Fprintf(w, "ROUTE\tMATCH\tTARGETS\n")
	for _, r := range cfg.Routes {
		fmt.Fprintf(w, "%s\t%s\t%s\n", r.Name, describeMatch(r.Match), strings.Join(r.Targets, ", "))
	}
	w.Flush()
	if len(cfg.Routes) == 0 {
		fmt.Fprintln(out, "(no routes: every event is stored as unrouted)")
	}
}

func describeMatch(m config.Match) string {
	var parts []string
	if len(m.Sources) > 0 {
		parts = append(parts, "sources="+strings.Join(m.Sources, ","))
	}
	if len(m.Providers) > 0 {
		parts = append(parts, "providers="+strings.Join(m.Providers, ","))
	}
	if len(m.Events) > 0 {
		parts = append(parts, "events="+strings.Join(m.Events, ","))
	}
	if len(parts) == 0 {
		return "every event"
	}
	return strings.Join(parts, " ")
}

// redactURL hides credentials a target URL may carry (userinfo, query).
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(invalid URL)"
	}
	if u.RawQuery != "" {
		u.RawQuery = "REDACTED"
	}
	return u.Redacted()
}
