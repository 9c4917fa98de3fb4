package main

import (
	"context"
	"encoding/json"
	"fmt"
	"text/tabwriter"

	"github.com/urfave/cli/v2"
)

func targetsCommand() *cli.Command {
	return &cli.Command{
		Name:   "targets",
		Usage:  "list targets, pause and resume them (through the running server, or directly on the store)",
		Action: subcommandsOnly("targets"),
		Subcommands: []*cli.Command{
			{
				Name:  "list",
				Usage: "each target's state (ok, paused), pending deliveries and attempts in flight",
				Description: "Works with or without a running serve. Pending counts the whole cluster's queue; in\n" +
					"flight counts the attempts of the server that answers (0 when none runs).\n" +
					exitCodes("listed", "bad flags or config, or the store cannot be read"),
				Flags:  []cli.Flag{configFlag(), &cli.BoolFlag{Name: "json", Usage: "print JSON lines, one target a line"}},
				Action: targetsList,
			},
			{
				Name:  "pause",
				Usage: "stop attempts to a target: its deliveries wait, pending, until it is resumed",
				Description: "Attempts in flight finish; no new one starts. The pause is kept in the store: it\n" +
					"survives a restart and, in cluster mode, holds on every node (within a second).\n" +
					exitCodes("paused (or already paused)", "unknown target, bad flags or config, or the store cannot be written"),
				ArgsUsage: "NAME",
				Flags:     []cli.Flag{configFlag()},
				Action:    func(c *cli.Context) error { return targetsSetPaused(c, true) },
			},
			{
				Name:        "resume",
				Usage:       "resume a paused target: its pending deliveries are made",
				Description: exitCodes("resumed (or not paused)", "unknown target, bad flags or config, or the store cannot be written"),
				ArgsUsage:   "NAME",
				Flags:       []cli.Flag{configFlag()},
				Action:      func(c *cli.Context) error { return targetsSetPaused(c, false) },
			},
		},
	}
}

func targetsList(c *cli.Context) error {
	cfg, err := loadConfigForReading(c)
	if err != nil {
		return err
	}
	b, err := openReader(c, cfg, cliLogger(c))
	if err != nil {
		return err
	}
	defer b.Close(context.WithoutCancel(c.Context))
	ts, err := b.Targets(c.Context)
	if err != nil {
		return err
	}
	out := c.App.Writer
	if c.Bool("json") {
		enc := json.NewEncoder(out)
		for _, t := range ts {
			if err := enc.Encode(t); err != nil {
				return err
			}
		}
		return nil
	}
	w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintf(w, "TARGET\tSTATE\tPENDING\tIN FLIGHT\tSINCE\n")
	for _, t := range ts {
		since := "-"
		if !t.PausedAt.IsZero() {
			since = t.PausedAt.UTC().Format(cliTimeFormat)
		}
		fmt.Fprintf(w, "%s\t%s\t%d\t%d\t%s\n", t.Name, t.State, t.Pending, t.InFlight, since)
	}
	return w.Flush()
}

func targetsSetPaused(c *cli.Context, paused bool) error {
	verb := "resume"
	if paused {
		verb = "pause"
	}
	if c.NArg() != 1 {
		return fmt.Errorf("targets %s takes exactly one target NAME", verb)
	}
	cfg, err := loadConfigForReading(c)
	if err != nil {
		return err
	}
	b, err := openEvents(c, cfg, cliLogger(c))
	if err != nil {
		return err
	}
	defer b.Close(context.WithoutCancel(c.Context))
	t, err := b.SetPaused(c.Context, c.Args().First(), paused)
	if err != nil {
		return err
	}
	fmt.Fprintf(c.App.Writer, "target %s: %s, %d pending\n", t.Name, t.State, t.Pending)
	return nil
}
