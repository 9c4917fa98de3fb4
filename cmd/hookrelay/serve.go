package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/hookrelay/hookrelay/relay"
	"github.com/urfave/cli/v2"
)

func serveCommand() *cli.Command {
	return &cli.Command{
		Name:  "serve",
		Usage: "run the webhook gateway",
		Description: "Serves POST /webhooks/<source>, /healthz and /readyz on server.listen (or HTTPS with tls),\n" +
			"the admin API and metrics on admin.listen, and delivers events to the targets.\n" +
			exitCodes("after a clean shutdown (SIGINT or SIGTERM)", "bad config, a listener or the store cannot be opened, or a listener failed"),
		Flags: []cli.Flag{configFlag()},
		Action: func(c *cli.Context) error {
			cfg, err := loadConfig(c)
			if err != nil {
				return err
			}
			log := newLogger(c.App.ErrWriter, cfg.Log)
			srv, err := relay.New(cfg, log, versionString())
			if err != nil {
				return err
			}
			ctx, cancel := context.WithCancel(c.Context)
			defer cancel()
			// SIGHUP reloads the config (and, with tls.cert_file, the
			// certificate: the TLS edge listens for it too).
			hup := make(chan os.Signal, 1)
			signal.Notify(hup, syscall.SIGHUP)
			defer signal.Stop(hup)
			go func() {
				for range hup {
					log.Info("SIGHUP: reloading the config", "file", cfg.File)
					_ = srv.Reload(ctx) // logs and counts its outcome
				}
			}()
			sigs := make(chan os.Signal, 2)
			signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
			defer signal.Stop(sigs)
			go func() {
				s, ok := <-sigs
				if !ok {
					return
				}
				log.Info("signal received, shutting down (send again to force)", "signal", s.String())
				cancel()
				if _, ok := <-sigs; ok {
					log.Error("second signal, exiting now")
					os.Exit(1)
				}
			}()
			if err := srv.Start(ctx); err != nil {
				return err
			}
			return srv.Run(ctx)
		},
	}
}
