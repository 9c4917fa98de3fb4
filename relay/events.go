package relay

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"time"

	"github.com/hookrelay/hookrelay/relay/admin"
	"github.com/hookrelay/hookrelay/relay/config"
	"github.com/hookrelay/hookrelay/relay/deliver"
	"github.com/hookrelay/hookrelay/relay/storage"
)

// Events is how the CLI reaches the stored events of a config: the running
// server's admin API when one answers at admin.listen, otherwise the store
// opened directly (Badger allows one process per directory). Offline, a
// Replay delivers in this process.
type Events struct {
	admin.API
	// Remote reports whether the API is a running server's.
	Remote bool

	cfg     *config.Config
	log     *slog.Logger
	version string
	backend *backend
	svc     *admin.Service
}

// OpenEvents opens the way to cfg's events. It never creates a store: with
// no server answering and no store at storage.path it fails with an error
// wrapping storage.ErrNoStore; a store held by a process whose admin API did
// not answer is an error wrapping storage.ErrLocked. It needs no source
// secrets beyond what loading cfg needed.
func OpenEvents(ctx context.Context, cfg *config.Config, log *slog.Logger, version string) (*Events, error) {
	return openEvents(ctx, cfg, log, version, false)
}

// OpenEventsForReading is OpenEvents for commands that only read (`events
// list`, `events show`): on a disk too full to open the store for writing
// (storage.min_free_bytes), it opens it read-only instead of failing.
func OpenEventsForReading(ctx context.Context, cfg *config.Config, log *slog.Logger, version string) (*Events, error) {
	return openEvents(ctx, cfg, log, version, true)
}

func openEvents(ctx context.Context, cfg *config.Config, log *slog.Logger, version string, readOnlyWhenLow bool) (*Events, error) {
	if cfg.Admin.Listen != "" {
		cl := admin.NewClient(DialAddr(cfg.Admin.Listen), cfg.Admin.Token)
		err := cl.Ping(ctx)
		if err == nil {
			return &Events{API: cl, Remote: true, cfg: cfg}, nil
		}
		if !errors.Is(err, admin.ErrNoServer) {
			return nil, err
		}
	}
	b, err := openBackend(ctx, cfg, log, true, readOnlyWhenLow)
	switch {
	case errors.Is(err, storage.ErrLocked):
		return nil, fmt.Errorf("%w; its admin API (admin.listen %q) did not answer, so the events cannot be read now", err, cfg.Admin.Listen)
	case err != nil:
		return nil, err
	}
	rt := newRuntime(cfg)
	svc := &admin.Service{Store: b.store, Routing: func() (admin.Router, []string) { return rt.routes, cfg.TargetNames() }}
	if cfg.Cluster != nil {
		svc.Clusterer = func(ctx context.Context) (*admin.ClusterStatus, error) {
			return b.clusterStatus(ctx, cfg.TargetNames())
		}
	}
	return &Events{API: svc, cfg: cfg, log: log, version: version, backend: b, svc: svc}, nil
}

// Close closes the store if Events opened it.
func (e *Events) Close(ctx context.Context) error {
	if e.backend == nil {
		return nil
	}
	return e.backend.close(ctx)
}

// Replay replays through the running server, or, offline, plans the
// replay, runs a delivery engine restricted to the planned events and
// stops it after the first attempt of each (retries continue when serve
// next runs).
func (e *Events) Replay(ctx context.Context, req admin.ReplayRequest, progress func(admin.Progress)) (*admin.ReplayReport, error) {
	if e.Remote {
		return e.API.Replay(ctx, req, progress)
	}
	plan := req
	plan.DryRun = true
	planned, err := e.svc.Replay(ctx, plan, nil)
	if err != nil || req.DryRun || len(planned.Items) == 0 {
		return planned, err
	}
	ids := map[string]bool{}
	for _, it := range planned.Items {
		ids[it.EventID] = true
	}
	engine := deliver.New(e.backend.store, newRuntime(e.cfg).targets, deliver.Options{
		Log: e.log, UserAgent: "hookrelay/" + e.version, Only: func(id string) bool { return ids[id] },
	})
	engine.Start(ctx)
	e.svc.Notify = engine.Notify
	rep, err := e.svc.Replay(ctx, req, progress)
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	if serr := engine.Stop(sctx); serr != nil && err == nil {
		err = serr
	}
	return rep, err
}

// DialAddr turns a listen address into one to connect to: an unspecified
// host becomes 127.0.0.1.
func DialAddr(listen string) string {
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return listen
	}
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, port)
}
