package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/hookrelay/hookrelay/relay"
	"github.com/hookrelay/hookrelay/relay/admin"
	"github.com/hookrelay/hookrelay/relay/config"
	"github.com/hookrelay/hookrelay/relay/delivery"
	"github.com/hookrelay/hookrelay/relay/storage"
	"github.com/urfave/cli/v2"
)

func eventsCommand() *cli.Command {
	return &cli.Command{
		Name:   "events",
		Usage:  "inspect stored events (through the running server, or directly on the store)",
		Action: subcommandsOnly("events"),
		Subcommands: []*cli.Command{
			{
				Name:  "list",
				Usage: "list events, newest first",
				Description: "Times are RFC 3339 in UTC. Works with or without a running serve.\n" +
					exitCodes("listed (maybe none)", "bad flags or config, or the store cannot be read"),
				Flags: append(filterFlags(),
					&cli.IntFlag{Name: "limit", Value: 50, Usage: "at most `N` events"},
					&cli.StringFlag{Name: "cursor", Usage: "continue after event `ID` (pagination)"},
					&cli.BoolFlag{Name: "json", Usage: "print JSON lines, one event a line"},
				),
				Action: eventsList,
			},
			{
				Name:  "show",
				Usage: "show one event: headers, payload and every delivery attempt",
				Description: "Signature and credential headers are redacted. Times are RFC 3339 in UTC.\n" +
					exitCodes("shown", "no such event, bad flags or config, or the store cannot be read"),
				ArgsUsage: "ID",
				Flags:     []cli.Flag{configFlag(), &cli.BoolFlag{Name: "json", Usage: "print one JSON object"}},
				Action:    eventsShow,
			},
		},
	}
}

func filterFlags() []cli.Flag {
	return []cli.Flag{
		configFlag(),
		&cli.StringFlag{Name: "source", Usage: "only events of source `S`"},
		&cli.StringFlag{Name: "provider", Usage: "only events of provider `P`"},
		&cli.StringFlag{Name: "type", Usage: "only event types matching `GLOB` (video.*)"},
		&cli.StringFlag{Name: "status", Usage: "only events in status `ST` (pending, delivered, dead, unrouted)"},
		&cli.StringFlag{Name: "since", Usage: "received at or after `DUR|RFC3339` (2h = two hours ago)"},
		&cli.StringFlag{Name: "until", Usage: "received before `DUR|RFC3339`"},
	}
}

func filterFromFlags(c *cli.Context, now time.Time) (storage.Filter, error) {
	f := storage.Filter{Source: c.String("source"), Provider: c.String("provider"), Type: c.String("type")}
	var err error
	if f.Status, err = delivery.ParseEventStatus(c.String("status")); err != nil {
		return f, fmt.Errorf("--status: %w", err)
	}
	if f.Since, err = parseWhen(c.String("since"), now); err != nil {
		return f, fmt.Errorf("--since: %w", err)
	}
	if f.Until, err = parseWhen(c.String("until"), now); err != nil {
		return f, fmt.Errorf("--until: %w", err)
	}
	return f, f.Validate()
}

// parseWhen reads a duration before now ("2h", "90m", "7d") or an RFC 3339 time.
func parseWhen(v string, now time.Time) (time.Time, error) {
	if v == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
		return t, nil
	}
	if days, ok := strings.CutSuffix(v, "d"); ok {
		if d, err := time.ParseDuration(days + "h"); err == nil && d >= 0 {
			return now.Add(-24 * d), nil
		}
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < 0 {
		return time.Time{}, fmt.Errorf("%q is neither a duration (2h, 30m, 7d) nor an RFC 3339 time", v)
	}
	return now.Add(-d), nil
}

// openEvents reaches cfg's events through the core (the running server's
// admin API, else the store itself).
func openEvents(c *cli.Context, cfg *config.Config, log *slog.Logger) (*relay.Events, error) {
	return relay.OpenEvents(c.Context, cfg, log, versionString())
}

// openReader is openEvents for commands that only read: on a disk too
// full to open the store for writing, the store is opened read-only.
func openReader(c *cli.Context, cfg *config.Config, log *slog.Logger) (*relay.Events, error) {
	return relay.OpenEventsForReading(c.Context, cfg, log, versionString())
}

// cliLogger logs warnings and errors of the store to stderr.
func cliLogger(c *cli.Context) *slog.Logger {
	return slog.New(slog.NewTextHandler(c.App.ErrWriter, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

func eventsList(c *cli.Context) error {
	cfg, err := loadConfigForReading(c)
	if err != nil {
		return err
	}
	f, err := filterFromFlags(c, time.Now())
	if err != nil {
		return err
	}
	if c.Int("limit") < 1 {
		return errors.New("--limit must be at least 1")
	}
	b, err := openReader(c, cfg, cliLogger(c))
	if err != nil {
		return err
	}
	defer b.Close(context.WithoutCancel(c.Context))
	out := c.App.Writer
	if c.Bool("json") {
		// One line per event as soon as its page arrives.
		enc := json.NewEncoder(out)
		_, _, err := streamEvents(c.Context, b, f, c.String("cursor"), c.Int("limit"), func(ev *storage.EventView) error { return enc.Encode(ev) })
		return err
	}
	var events []storage.EventView
	cursor, _, err := streamEvents(c.Context, b, f, c.String("cursor"), c.Int("limit"), func(ev *storage.EventView) error {
		events = append(events, *ev)
		return nil
	})
	if err != nil {
		return err
	}
	w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintf(w, "ID\tRECEIVED\tSOURCE\tTYPE\tSUBJECT\tSTATUS\tDELIVERIES\n")
	for _, ev := range events {
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", ev.ID, cliTime(ev.ReceivedAt),
			ev.Source, ev.Type, dash(ev.Subject), ev.Status, summarize(ev.Deliveries))
	}
	w.Flush()
	if cursor != "" && len(events) > 0 {
		fmt.Fprintf(c.App.ErrWriter, "more events: --cursor %s\n", events[len(events)-1].ID)
	}
	return nil
}

func summarize(ds []delivery.Delivery) string {
	if len(ds) == 0 {
		return "-"
	}
	parts := make([]string, len(ds))
	for i, d := range ds {
		parts[i] = fmt.Sprintf("%s:%s(%d)", d.Target, d.Status, len(d.Attempts))
	}
	return strings.Join(parts, " ")
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func eventsShow(c *cli.Context) error {
	if c.NArg() != 1 {
		return errors.New("events show takes exactly one event ID")
	}
	cfg, err := loadConfigForReading(c)
	if err != nil {
		return err
	}
	b, err := openReader(c, cfg, cliLogger(c))
	if err != nil {
		return err
	}
	defer b.Close(context.WithoutCancel(c.Context))
	d, err := b.Get(c.Context, c.Args().First())
	if err != nil {
		return err
	}
	if c.Bool("json") {
		enc := json.NewEncoder(c.App.Writer)
		enc.SetIndent("", "  ")
		return enc.Encode(d)
	}
	printDetail(c.App.Writer, d)
	return nil
}

func printDetail(out io.Writer, d *admin.EventDetail) {
	fmt.Fprintf(out, "id:          %s\n", d.ID)
	fmt.Fprintf(out, "source:      %s (%s)\n", d.Source, d.Provider)
	fmt.Fprintf(out, "type:        %s\n", d.Type)
	fmt.Fprintf(out, "subject:     %s\n", dash(d.Subject))
	fmt.Fprintf(out, "time:        %s\n", cliTime(d.Time))
	fmt.Fprintf(out, "received:    %s\n", cliTime(d.ReceivedAt))
	fmt.Fprintf(out, "dedupe key:  %s\n", d.DedupeKey)
	if d.DeliveryID != "" {
		fmt.Fprintf(out, "delivery id: %s\n", d.DeliveryID)
	}
	fmt.Fprintf(out, "status:      %s\n", d.Status)
	fmt.Fprintf(out, "\nheaders:\n")
	keys := make([]string, 0, len(d.Headers))
	for k := range d.Headers {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(out, "  %s: %s\n", k, d.Headers[k])
	}
	fmt.Fprintf(out, "\ndeliveries:\n")
	if len(d.Deliveries) == 0 {
		fmt.Fprintf(out, "  (none: unrouted)\n")
	}
	for _, dl := range d.Deliveries {
		fmt.Fprintf(out, "  %s: %s", dl.Target, dl.Status)
		if dl.Status == delivery.Pending && !dl.NextAt.IsZero() {
			fmt.Fprintf(out, " (next attempt %s)", cliTime(dl.NextAt))
		}
		fmt.Fprintln(out)
		for i, a := range dl.Attempts {
			result := fmt.Sprintf("HTTP %d", a.StatusCode)
			if a.Error != "" {
				result = a.Error
				if a.StatusCode != 0 {
					result = fmt.Sprintf("HTTP %d %s", a.StatusCode, a.Error)
				}
			}
			replay := ""
			if a.Replay {
				replay = " (replay)"
			}
			fmt.Fprintf(out, "    #%d %s  %s  %.1f ms%s\n", i+1, cliTime(a.At), result, a.LatencyMS, replay)
		}
	}
	fmt.Fprintf(out, "\npayload:\n")
	var pretty any
	if d.Payload == nil && d.PayloadBase64 != nil {
		// Not valid UTF-8 JSON: escaped for the terminal, exact in base64.
		fmt.Fprintf(out, "  (not valid UTF-8; escaped)\n  %s\n  (exact bytes, base64)\n  %s\n",
			strconv.QuoteToASCII(string(d.PayloadBase64)), base64.StdEncoding.EncodeToString(d.PayloadBase64))
	} else if json.Unmarshal(d.Payload, &pretty) == nil {
		b, _ := json.MarshalIndent(pretty, "  ", "  ")
		fmt.Fprintf(out, "  %s\n", b)
	} else {
		fmt.Fprintf(out, "  %s\n", d.Payload)
	}
}

func replayCommand() *cli.Command {
	return &cli.Command{
		Name:  "replay",
		Usage: "send stored events again (marked as replays) and report matched / sent / failed",
		Description: "A selector (--id, --source, --provider, --type, --status, --since, --until) or --all is required.\n" +
			exitCodes("every delivery was sent (or --dry-run)", "a delivery failed or got no attempt, or bad flags or config"),
		Flags: append(filterFlags(),
			&cli.StringSliceFlag{Name: "id", Usage: "replay event `ID` (repeatable)"},
			&cli.StringFlag{Name: "target", Usage: "send to target `NAME` instead of the events' own targets"},
			&cli.BoolFlag{Name: "dry-run", Usage: "list what would be sent; send nothing"},
			&cli.BoolFlag{Name: "all", Usage: "replay every stored event (required when no other selector is given)"},
			&cli.DurationFlag{Name: "wait", Value: 60 * time.Second, Usage: "wait up to `DURATION` for the first attempt of each delivery"},
			&cli.BoolFlag{Name: "json", Usage: "print the report as JSON"},
		),
		Action: replay,
	}
}

func replay(c *cli.Context) error {
	if c.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q (use --id ID)", c.Args().First())
	}
	cfg, err := loadConfigForReading(c)
	if err != nil {
		return err
	}
	f, err := filterFromFlags(c, time.Now())
	if err != nil {
		return err
	}
	f.IDs = c.StringSlice("id")
	req := admin.ReplayRequest{Filter: f, Target: c.String("target"), DryRun: c.Bool("dry-run"), Wait: c.Duration("wait")}
	if req.Target != "" {
		if _, ok := cfg.Targets[req.Target]; !ok {
			return fmt.Errorf("--target: unknown target %q (known: %s)", req.Target, strings.Join(cfg.TargetNames(), ", "))
		}
	}
	if len(f.IDs) == 0 && f.Source == "" && f.Provider == "" && f.Type == "" && f.Status == "" &&
		f.Since.IsZero() && f.Until.IsZero() && !c.Bool("all") {
		return errors.New("replay needs a selector (--id, --source, --provider, --type, --status, --since, --until), or --all to replay every stored event")
	}
	log := cliLogger(c)
	b, err := openEvents(c, cfg, log)
	if err != nil {
		return err
	}
	defer b.Close(context.WithoutCancel(c.Context))
	var progress func(admin.Progress)
	if !b.Remote && !req.DryRun {
		progress = progressPrinter(c.App.ErrWriter)
	}
	rep, err := b.Replay(c.Context, req, progress)
	if progress != nil {
		progress(admin.Progress{Done: -1})
	}
	if err != nil {
		return err
	}
	if c.Bool("json") {
		enc := json.NewEncoder(c.App.Writer)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rep); err != nil {
			return err
		}
	} else {
		printReport(c.App.Writer, rep, b.Remote)
	}
	if rep.Failed > 0 || rep.Pending > 0 {
		return cli.Exit("", 1)
	}
	return nil
}

// progressPrinter draws a progress bar on a terminal; elsewhere nothing.
func progressPrinter(w io.Writer) func(admin.Progress) {
	if !isTerminal(w) {
		return nil
	}
	return func(p admin.Progress) {
		if p.Done < 0 {
			fmt.Fprintln(w)
			return
		}
		const width = 30
		filled := 0
		if p.Total > 0 {
			filled = width * p.Done / p.Total
		}
		fmt.Fprintf(w, "\r[%s%s] %d/%d sent %d failed %d", strings.Repeat("#", filled), strings.Repeat(".", width-filled), p.Done, p.Total, p.Sent, p.Failed)
	}
}

func printReport(out io.Writer, rep *admin.ReplayReport, remote bool) {
	via := "directly on the store"
	if remote {
		via = "through the running server"
	}
	if rep.DryRun {
		fmt.Fprintf(out, "dry run: %s matched, %s would be sent (nothing sent)\n", count(rep.Matched, "event", "events"), count(len(rep.Items), "delivery", "deliveries"))
		w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
		for _, it := range rep.Items {
			fmt.Fprintf(w, "  %s\t-> %s\n", it.EventID, it.Target)
		}
		w.Flush()
		return
	}
	fmt.Fprintf(out, "replayed %s: matched %s, %s: sent %d, failed %d", via, count(rep.Matched, "event", "events"), count(len(rep.Items), "delivery", "deliveries"), rep.Sent, rep.Failed)
	if rep.Pending > 0 {
		fmt.Fprintf(out, ", no attempt yet %d", rep.Pending)
	}
	fmt.Fprintln(out)
	for _, it := range rep.Items {
		if it.Outcome == admin.ReplayDelivered {
			continue
		}
		detail := it.Error
		if it.Outcome == admin.ReplayHeld {
			detail = "(the target is paused: sent when it is resumed)"
		}
		if it.StatusCode != 0 {
			detail = strings.TrimSpace(fmt.Sprintf("HTTP %d %s", it.StatusCode, it.Error))
		}
		fmt.Fprintf(out, "  %s -> %s: %s %s\n", it.EventID, it.Target, it.Outcome, detail)
	}
}
