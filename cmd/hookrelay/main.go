// Command hookrelay is a self-hosted inbound webhook gateway: it verifies,
// de-duplicates and stores provider webhooks and relays them as CloudEvents
// to internal services.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime/debug"

	"github.com/hookrelay/hookrelay/relay/config"
	"github.com/urfave/cli/v2"
)

// version and commit are set with -ldflags "-X main.version=... -X
// main.commit=..." by release builds; commit is otherwise read from the
// build's VCS stamp (vcs.revision).
var (
	version = ""
	commit  = ""
)

func main() {
	os.Exit(run(context.Background(), os.Args, os.Stdout, os.Stderr))
}

// run executes the CLI and returns the process exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	app := newApp(stdout, stderr)
	if err := app.RunContext(ctx, normalizeArgs(app, args)); err != nil {
		var ec cli.ExitCoder
		if errors.As(err, &ec) && ec.Error() == "" {
			return ec.ExitCode()
		}
		fmt.Fprintf(stderr, "hookrelay: %v\n", err)
		return 1 // SPEC: 0 success, 1 failure or bad input
	}
	return 0
}

func newApp(stdout, stderr io.Writer) *cli.App {
	app := &cli.App{
		Name:  "hookrelay",
		Usage: "verify, de-duplicate, store and relay provider webhooks",
		Description: "Flags may stand before or after a command's arguments. \"hookrelay help CMD\" or\n" +
			"\"hookrelay CMD --help\" describes one command. HOOKRELAY_CONFIG may stand in for --config.\n" +
			exitCodes("success", "failure or bad input"),
		Version:              versionString(),
		HideVersion:          true, // --version is ours: the same line as `version`
		Writer:               stdout,
		ErrWriter:            stderr,
		HideHelpCommand:      true, // `help` is ours (normalizeArgs): it works for subcommands too
		EnableBashCompletion: true,
		ExitErrHandler:       func(*cli.Context, error) {}, // run() prints errors and picks exit codes
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "version", Aliases: []string{"v"}, Usage: "print the version line and exit"},
			// Our own help command keeps urfave/cli from adding its flag.
			&cli.BoolFlag{Name: "help", Aliases: []string{"h"}, Usage: "show help"},
		},
		Commands: []*cli.Command{
			initCommand(),
			serveCommand(),
			checkCommand(),
			reloadCommand(),
			clusterCommand(),
			eventsCommand(),
			replayCommand(),
			targetsCommand(),
			sendCommand(),
			sinkCommand(),
			completionCommand(),
			versionCommand(),
			{
				Name: "help", Usage: "show the commands, or one command's help", ArgsUsage: "[COMMAND [SUBCOMMAND]]",
				// normalizeArgs turns "help X" into "X --help" before parsing.
				Action: func(c *cli.Context) error { return cli.ShowAppHelp(c) },
			},
		},
	}
	usageErrors(app)
	app.Action = func(c *cli.Context) error {
		if c.Bool("version") {
			fmt.Fprintln(c.App.Writer, versionLine())
			return nil
		}
		if c.NArg() > 0 {
			return unknownCommand(c.App.Commands, "", c.Args().First())
		}
		return cli.ShowAppHelp(c)
	}
	return app
}

func versionString() string {
	if version != "" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "dev"
}

func versionCommand() *cli.Command {
	return &cli.Command{
		Name:        "version",
		Usage:       "print the version line: version, commit and Go version (as --version does)",
		Description: exitCodes("always", "never"),
		Action: func(c *cli.Context) error {
			fmt.Fprintln(c.App.Writer, versionLine())
			return nil
		},
	}
}

// configFlag is --config, also read from HOOKRELAY_CONFIG.
func configFlag() *cli.StringFlag {
	return &cli.StringFlag{
		Name: "config", Aliases: []string{"c"}, Usage: "read the config from `FILE` (YAML)",
		EnvVars: []string{"HOOKRELAY_CONFIG"},
	}
}

// loadConfig loads the config named by --config.
func loadConfig(c *cli.Context) (*config.Config, error) {
	path, err := configPath(c)
	if err != nil {
		return nil, err
	}
	return config.Load(path)
}

// configPath is --config (or HOOKRELAY_CONFIG), which must be set.
func configPath(c *cli.Context) (string, error) {
	if path := c.String("config"); path != "" {
		return path, nil
	}
	return "", errors.New("no config file: pass --config FILE or set HOOKRELAY_CONFIG")
}

// loadConfigForReading loads the config named by --config for the
// commands that read events: they never need the sources' secrets.
func loadConfigForReading(c *cli.Context) (*config.Config, error) {
	path, err := configPath(c)
	if err != nil {
		return nil, err
	}
	return config.LoadForReading(path)
}

// newLogger builds the process logger from the config's log section.
func newLogger(w io.Writer, lc config.Log) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(lc.Level))
	opts := &slog.HandlerOptions{Level: level}
	if lc.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// isTerminal reports whether w is a terminal (progress output goes there
// only).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}
