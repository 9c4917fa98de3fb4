package main

import (
	"errors"
	"fmt"

	"github.com/hookrelay/hookrelay/relay"
	"github.com/hookrelay/hookrelay/relay/admin"
	"github.com/hookrelay/hookrelay/relay/config"
	"github.com/urfave/cli/v2"
)

func reloadCommand() *cli.Command {
	return &cli.Command{
		Name:  "reload",
		Usage: "ask the running server to re-read its config file",
		Description: "Asks the server behind admin.listen (with admin.token) to re-read the config file it was\n" +
			"started with, as SIGHUP does. Sources, secrets, targets and routes change without a restart;\n" +
			"a change to server, admin, storage, tls, dedupe, log or cluster is refused (\"needs a restart: KEY\"), and\n" +
			"an invalid file is refused with its error: in both cases the running config stays.\n\n" +
			"Exit codes: 0 reloaded, 1 refused or no server answering.",
		Flags: []cli.Flag{configFlag()},
		Action: func(c *cli.Context) error {
			path, err := configPath(c)
			if err != nil {
				return err
			}
			// The server re-reads and judges the file; only the admin section
			// is read here, so that an invalid file still reaches the server
			// (which logs and counts the refusal) and its verdict is printed.
			ac, err := config.LoadAdmin(path)
			if err != nil {
				return err
			}
			if ac.Listen == "" {
				return errors.New("admin.listen is empty: reload needs the admin API (or send SIGHUP to the server)")
			}
			cl := admin.NewClient(relay.DialAddr(ac.Listen), ac.Token)
			if err := cl.Reload(c.Context); err != nil {
				if errors.Is(err, admin.ErrNoServer) {
					return fmt.Errorf("no hookrelay answers at admin.listen %s: %w", ac.Listen, err)
				}
				return fmt.Errorf("reload refused: %w", err)
			}
			fmt.Fprintf(c.App.Writer, "reloaded %s\n", path)
			return nil
		},
	}
}
