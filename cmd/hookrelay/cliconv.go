package main

import (
	"fmt"
	"runtime"
	"runtime/debug"
	"strings"
	"time"

	"github.com/urfave/cli/v2"
	"github.com/xrash/smetrics"
)

// This file holds the command-line conventions every command shares: flags
// before or after positional arguments, `help [CMD...]`, suggestions for
// unknown commands and the one version line.

// completionFlag is the hidden flag urfave/cli answers with completions
// (EnableBashCompletion); it must stay the last argument.
const completionFlag = "--generate-bash-completion"

// normalizeArgs rewrites args (args[0] is the program) so that urfave/cli,
// which stops parsing flags at the first positional argument, sees every
// flag of the command first: "send URL --provider P" becomes
// "send --provider P URL". A flag that takes a value keeps the word after
// it; everything after "--" stays positional, behind a "--". "help CMD..."
// becomes "CMD... --help" and a bare "help" becomes "--help".
func normalizeArgs(app *cli.App, args []string) []string {
	if len(args) < 2 {
		return args
	}
	if args[len(args)-1] == completionFlag {
		return args // urfave/cli completes the words as typed
	}
	if args[1] == "help" {
		out := append([]string{args[0]}, args[2:]...)
		return append(out, "--help")
	}
	out := []string{args[0]}
	i := 1
	cmds := app.Commands
	var cmd *cli.Command
	// The command path: global flags (no values) and command names.
	for ; i < len(args); i++ {
		a := args[i]
		if strings.HasPrefix(a, "-") {
			if cmd != nil {
				break
			}
			out = append(out, a)
			continue
		}
		next := findCommand(cmds, a)
		if next == nil {
			break
		}
		cmd, cmds = next, next.Subcommands
		out = append(out, a)
		if len(cmds) == 0 {
			i++
			break
		}
	}
	if cmd == nil || len(cmd.Subcommands) > 0 {
		return append(out, args[i:]...)
	}
	var flags, positional []string
	dashdash := false
	for ; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--":
			dashdash = true
			positional = append(positional, args[i+1:]...)
			i = len(args)
		case len(a) > 1 && strings.HasPrefix(a, "-"):
			flags = append(flags, a)
			if !strings.Contains(a, "=") && takesValue(cmd, strings.TrimLeft(a, "-")) && i+1 < len(args) {
				i++
				flags = append(flags, args[i])
			}
		default:
			positional = append(positional, a)
		}
	}
	out = append(out, flags...)
	if dashdash {
		out = append(out, "--")
	}
	return append(out, positional...)
}

// findCommand returns the command of cmds called name (or aliased so).
func findCommand(cmds []*cli.Command, name string) *cli.Command {
	for _, c := range cmds {
		if c.HasName(name) {
			return c
		}
	}
	return nil
}

// takesValue reports whether cmd's flag called name expects a value in the
// next word.
func takesValue(cmd *cli.Command, name string) bool {
	for _, f := range cmd.Flags {
		for _, n := range f.Names() {
			if n != name {
				continue
			}
			if _, ok := f.(*cli.BoolFlag); ok {
				return false
			}
			if tv, ok := f.(interface{ TakesValue() bool }); ok {
				return tv.TakesValue()
			}
			return true
		}
	}
	return false
}

// subcommandsOnly is the action of a command that only groups
// subcommands (events, targets, cluster): its help, or an unknown
// subcommand refused with the nearest one.
func subcommandsOnly(parent string) cli.ActionFunc {
	return func(c *cli.Context) error {
		if c.NArg() > 0 {
			return unknownCommand(c.Command.Subcommands, parent, c.Args().First())
		}
		return cli.ShowSubcommandHelp(c)
	}
}

// unknownCommand is the error for a command name that is not among cmds,
// suggesting the nearest one. parent is "" at the top level, else the
// command the name was given to ("events").
func unknownCommand(cmds []*cli.Command, parent, name string) error {
	what, helpCmd := "command", "hookrelay help"
	if parent != "" {
		what, helpCmd = parent+" command", "hookrelay help "+parent
	}
	msg := fmt.Sprintf("unknown %s %q", what, name)
	if s := nearestCommand(cmds, name); s != "" {
		msg += fmt.Sprintf("; did you mean %q?", s)
	}
	return fmt.Errorf("%s (the commands: %s)", msg, helpCmd)
}

// nearestCommand returns the visible command name closest to name in edit
// distance, or "" when none is close (more than half the name differs).
func nearestCommand(cmds []*cli.Command, name string) string {
	best, bestD := "", len(name)/2+1
	for _, c := range cmds {
		if c.Hidden {
			continue
		}
		for _, n := range c.Names() {
			d := smetrics.WagnerFischer(name, n, 1, 1, 1)
			if strings.HasPrefix(n, name) && d > 0 {
				d = 1 // a prefix ("rep") is as good as one typo
			}
			if d < bestD {
				best, bestD = c.Name, d
			}
		}
	}
	return best
}

// versionLine is what `version` and `--version` print:
// "hookrelay VERSION (commit C, goX.Y.Z)".
func versionLine() string {
	rev := commit
	if rev == "" {
		rev = "unknown"
	}
	if bi, ok := debug.ReadBuildInfo(); ok {
		var vcsRev, modified string
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				vcsRev = s.Value
			case "vcs.modified":
				modified = s.Value
			}
		}
		switch {
		case vcsRev != "":
			rev = vcsRev[:min(len(vcsRev), 12)]
			if modified == "true" {
				rev += "-dirty"
			}
		case rev == "unknown":
			// `go install ...@<commit>` stamps no VCS settings, but a
			// pseudo-version ends with the commit.
			rev = pseudoCommit(bi.Main.Version, rev)
		}
	}
	return fmt.Sprintf("hookrelay %s (commit %s, %s)", versionString(), rev, runtime.Version())
}

// exitCodes is the last paragraph of every command's help.
func exitCodes(success, failure string) string {
	return "Exit codes: 0 " + success + "; 1 " + failure + "."
}

// cliTimeFormat is the one format of times the CLI prints: RFC 3339 in
// UTC with milliseconds.
const cliTimeFormat = "2006-01-02T15:04:05.000Z07:00"

// cliTime formats t for the CLI's tables and details ("-" for none).
func cliTime(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(cliTimeFormat)
}

// count is "1 event" or "2 events".
func count(n int, one, many string) string {
	return fmt.Sprintf("%d %s", n, plural(n, one, many))
}

// usageErrors makes every command's flag errors one line that names the
// command, says what is wrong in words and where its help is, instead of
// urfave/cli's "Incorrect Usage" followed by the whole help text.
func usageErrors(app *cli.App) {
	app.OnUsageError = func(_ *cli.Context, err error, _ bool) error {
		return usageError(app.Flags, "", err)
	}
	var walk func(path string, cmds []*cli.Command)
	walk = func(path string, cmds []*cli.Command) {
		for _, c := range cmds {
			p := strings.TrimSpace(path + " " + c.Name)
			flags := c.Flags
			c.OnUsageError = func(_ *cli.Context, err error, _ bool) error {
				return usageError(flags, p, err)
			}
			walk(p, c.Subcommands)
		}
	}
	walk("", app.Commands)
}

// usageError rewrites the flag package's message for command path (""
// for the top level).
func usageError(flags []cli.Flag, path string, err error) error {
	msg := err.Error()
	if name, ok := strings.CutPrefix(msg, "flag provided but not defined: "); ok {
		name = strings.TrimLeft(name, "-")
		msg = fmt.Sprintf("unknown flag --%s", name)
		var names []*cli.Command
		for _, f := range flags {
			names = append(names, &cli.Command{Name: f.Names()[0]})
		}
		if s := nearestCommand(names, name); s != "" {
			msg += fmt.Sprintf("; did you mean --%s?", s)
		}
	} else if name, ok := strings.CutPrefix(msg, "flag needs an argument: "); ok {
		msg = fmt.Sprintf("flag --%s needs a value", strings.TrimLeft(name, "-"))
	}
	where := "hookrelay help"
	if path != "" {
		where += " " + path
		msg = path + ": " + msg
	}
	return fmt.Errorf("%s (see %s)", msg, where)
}

// pseudoCommit returns the commit of a Go pseudo-version
// ("v0.0.0-20261201104400-8858dc2a55f3"), else def.
func pseudoCommit(version, def string) string {
	i := strings.LastIndexByte(version, '-')
	if i < 0 || len(version)-i-1 != 12 {
		return def
	}
	c := version[i+1:]
	if strings.Trim(c, "0123456789abcdef") != "" {
		return def
	}
	return c
}
