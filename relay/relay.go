// Package relay wires hookrelay together: it builds the provider adapters,
// routes, store, delivery engine and listeners from a config, and runs them
// with a graceful shutdown.
package relay

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hookrelay/hookrelay/providers"
	"github.com/hookrelay/hookrelay/relay/admin"
	"github.com/hookrelay/hookrelay/relay/config"
	"github.com/hookrelay/hookrelay/relay/deliver"
	"github.com/hookrelay/hookrelay/relay/ingest"
	"github.com/hookrelay/hookrelay/relay/metrics"
	"github.com/hookrelay/hookrelay/relay/route"
	"github.com/hookrelay/hookrelay/relay/storage"
)

// Server is a running hookrelay instance.
type Server struct {
	cfg     *config.Config // as started: server, admin, storage, tls never change
	log     *slog.Logger
	version string
	rt      atomic.Pointer[runtime] // swapped whole by Reload
	// reloadMu serialises reloads; load reads the file (tests inject one).
	reloadMu sync.Mutex
	load     func(path string) (*config.Config, error)
	running  atomic.Bool // started and not shutting down: reloads are taken

	backend *backend
	engine  *deliver.Engine
	metrics *metrics.Metrics
	servers []*http.Server
	addrs   map[string]string // "public", "admin" -> bound address
	errc    chan error
	wg      sync.WaitGroup
	closers []func() error // run by Shutdown after the listeners stop (TLS edge)
	// adminCancel ends the contexts of admin requests (replay waits).
	adminCancel context.CancelFunc
}

// runtime is what one config builds for requests and deliveries: the
// sources with their adapters, the routes and the targets. It is never
// changed once built; a reload builds a new one and swaps it in, so a
// request that started on the old one finishes on it.
type runtime struct {
	cfg     *config.Config
	sources map[string]*providers.Source
	routes  *route.Table
	targets []deliver.Target
	ingest  *ingest.Routing
}

// newRuntime assembles the runtime from a loaded config, whose pipeline has
// already built the adapters and keys.
func newRuntime(cfg *config.Config) *runtime {
	rt := &runtime{cfg: cfg, sources: make(map[string]*providers.Source, len(cfg.Sources))}
	for name, sc := range cfg.Sources {
		rt.sources[name] = sc.Source()
	}
	rules := make([]route.Rule, 0, len(cfg.Routes))
	for _, r := range cfg.Routes {
		rules = append(rules, route.Rule{
			Name: r.Name, Sources: r.Match.Sources, Providers: r.Match.Providers,
			Events: r.Match.Events, Targets: r.Targets,
		})
	}
	rt.routes = route.New(rules)
	rt.ingest = &ingest.Routing{Sources: rt.sources, Router: rt.routes}
	for _, name := range cfg.TargetNames() {
		rt.targets = append(rt.targets, targetOf(name, cfg.Targets[name]))
	}
	return rt
}

func targetOf(name string, t *config.Target) deliver.Target {
	return deliver.Target{
		Name: name, URL: t.URL, Timeout: t.Timeout.D(), Headers: t.Headers, SigningKey: t.SigningKey(),
		MaxInFlight: t.MaxInFlight, MaxAttempts: t.Retry.MaxAttempts,
		InitialBackoff: t.Retry.InitialBackoff.D(), MaxBackoff: t.Retry.MaxBackoff.D(),
	}
}

// New returns a server for a loaded config that is not yet started.
// version goes into the User-Agent of deliveries.
func New(cfg *config.Config, log *slog.Logger, version string) (*Server, error) {
	s := &Server{
		cfg: cfg, log: log, version: version, load: config.Load,
		addrs: map[string]string{}, errc: make(chan error, 4),
	}
	s.rt.Store(newRuntime(cfg))
	return s, nil
}

func (s *Server) current() *runtime { return s.rt.Load() }

// Start opens the store and binds every listener. It returns once the
// server accepts requests; errors from listeners later arrive on Run.
func (s *Server) Start(ctx context.Context) error {
	b, err := openBackend(ctx, s.cfg, s.log, false, false)
	if err != nil {
		return err
	}
	s.backend = b
	if l := b.nodeLease; l != nil { // cluster.node taken over by another process: stop
		go func() {
			if err := nodeLost(l, b.cl.Node); err != nil {
				s.errc <- err
			}
		}()
	}
	st := b.store
	s.metrics = metrics.New(s.queueDepths)
	s.metrics.ConfigLoaded(time.Now())
	if sp, ok := st.(interface{ Space() (uint64, bool, bool) }); ok {
		s.metrics.WatchStorage(sp.Space) // Badger's free-space watch
	}
	eopts := deliver.Options{Log: s.log, Metrics: s.metrics, UserAgent: "hookrelay/" + s.version}
	if s.cfg.Cluster != nil {
		// Other nodes' deliveries (of a node that died) are found by
		// scans, and their pauses and resumes by reading them again.
		eopts.Rescan = clusterRescan
		eopts.PauseRefresh = clusterPauseRefresh
	}
	s.engine = deliver.New(st, s.current().targets, eopts)
	s.engine.Start(ctx)
	s.metrics.WatchTargetStates([]string{admin.TargetOK, admin.TargetPaused}, s.targetStates)
	h := &ingest.Handler{
		Routing: func() *ingest.Routing { return s.current().ingest },
		Store:   st, MaxBody: s.cfg.Server.MaxBodyBytes,
		Log: s.log, Enqueue: s.engine.Enqueue, Metrics: s.metrics,
		InFlight:    ingest.NewInFlight(s.cfg.Server.MaxInFlight),
		ReadTimeout: s.cfg.Server.ReadTimeout.D(), MinBodyRate: s.cfg.Server.MinBodyRate, BodyGrace: s.cfg.Server.BodyGrace.D(),
		Budget: ingest.NewBudget(s.cfg.Server.MaxBufferedBytes),
	}
	if s.cfg.Admin.Listen != "" {
		svc := &admin.Service{
			Store: st, Routing: s.adminRouting, Notify: s.engine.Notify, Reloader: s.Reload,
			PauseChanged: s.engine.SetPaused, InFlight: s.inFlight,
		}
		if s.cfg.Cluster != nil {
			svc.Clusterer = func(ctx context.Context) (*admin.ClusterStatus, error) {
				return b.clusterStatus(ctx, s.current().cfg.TargetNames())
			}
		}
		if err := s.listenAdmin(admin.Handler(svc, s.metrics.Handler(), s.cfg.Admin.Token)); err != nil {
			_ = s.Shutdown(ctx)
			return err
		}
	}
	if err := s.startPublic(ctx, h); err != nil {
		_ = s.Shutdown(ctx)
		return err
	}
	s.running.Store(true) // reloads are taken from now on
	return nil
}

// inFlight counts this node's attempts in flight to target. (In cluster
// mode a finished delivery's lease stays until it expires, so the leases
// in JetStream do not count the cluster's attempts.)
func (s *Server) inFlight(_ context.Context, target string) (int, error) {
	return s.engine.InFlight(target), nil
}

// targetStates reports each target's state (for metrics), as the delivery
// engine knows it.
func (s *Server) targetStates() map[string]string {
	out := map[string]string{}
	for _, t := range s.engine.Targets() {
		out[t.Name] = admin.TargetOK
		if t.Paused {
			out[t.Name] = admin.TargetPaused
		}
	}
	return out
}

// queueDepths reports the queued deliveries per target (for metrics).
func (s *Server) queueDepths() map[string]int {
	out := map[string]int{}
	st := s.Store()
	if st == nil {
		return out
	}
	for _, t := range s.current().cfg.TargetNames() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		n, err := st.QueueDepth(ctx, t)
		cancel()
		if err == nil {
			out[t] = n
		}
	}
	return out
}

// listenAdmin binds the admin listener. It gets its own limits: replay
// requests wait for deliveries, so writes may take minutes.
func (s *Server) listenAdmin(h http.Handler) error {
	ln, err := net.Listen("tcp", s.cfg.Admin.Listen)
	if err != nil {
		return listenError("admin.listen", s.cfg.Admin.Listen, fmt.Errorf("admin listener: %w", err))
	}
	base, cancel := context.WithCancel(context.Background())
	s.adminCancel = cancel
	srv := &http.Server{
		BaseContext: func(net.Listener) context.Context { return base },
		Handler:     h, ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 30 * time.Second,
		WriteTimeout: 15 * time.Minute, IdleTimeout: 2 * time.Minute, MaxHeaderBytes: 64 << 10,
		ErrorLog: slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	s.serve("admin", ln, srv)
	return nil
}

// listen binds addr and serves h on it with the configured limits.
func (s *Server) listen(name, addr string, h http.Handler) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("%s listener: %w", name, err)
	}
	s.serve(name, ln, s.httpServer(h))
	return nil
}

// serve runs srv on ln until Shutdown.
func (s *Server) serve(name string, ln net.Listener, srv *http.Server) {
	s.servers = append(s.servers, srv)
	s.addrs[name] = ln.Addr().String()
	s.log.Info("listening", "listener", name, "addr", ln.Addr().String())
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.errc <- fmt.Errorf("%s listener: %w", name, err)
		}
	}()
}

func (s *Server) httpServer(h http.Handler) *http.Server {
	c := s.cfg.Server
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: c.ReadHeaderTimeout.D(),
		ReadTimeout:       c.ReadTimeout.D(),
		WriteTimeout:      c.WriteTimeout.D(),
		IdleTimeout:       c.IdleTimeout.D(),
		MaxHeaderBytes:    c.MaxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
}

// Addr returns the bound address of a listener ("public", "admin").
func (s *Server) Addr(name string) string { return s.addrs[name] }

// Store returns the open store (nil before Start).
func (s *Server) Store() storage.Store {
	if s.backend == nil {
		return nil
	}
	return s.backend.store
}

// Run blocks until ctx is cancelled, a listener fails or (cluster mode)
// another process took this node's name, then shuts down
// gracefully: listeners stop accepting and finish requests in flight,
// delivery workers stop, and the store is closed.
func (s *Server) Run(ctx context.Context) error {
	var runErr error
	select {
	case <-ctx.Done():
	case runErr = <-s.errc:
		s.log.Error("stopping", "err", runErr)
	}
	sctx, cancel := context.WithTimeout(context.Background(), s.cfg.Server.ShutdownTimeout.D())
	defer cancel()
	if err := s.Shutdown(sctx); err != nil && runErr == nil {
		runErr = err
	}
	return runErr
}

// Shutdown stops the server gracefully within ctx's deadline.
func (s *Server) Shutdown(ctx context.Context) error {
	s.log.Info("shutting down")
	// No reload from now on; one in progress finishes first.
	s.running.Store(false)
	s.reloadMu.Lock()
	s.reloadMu.Unlock()
	// Every listener stops accepting at once and drains in parallel; admin
	// requests that wait (replays) are told to give up.
	if s.adminCancel != nil {
		s.adminCancel()
	}
	var (
		mu   sync.Mutex
		errs []error
		wg   sync.WaitGroup
	)
	for _, srv := range s.servers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := srv.Shutdown(ctx); err != nil {
				mu.Lock()
				errs = append(errs, fmt.Errorf("shutdown listener: %w", err))
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	s.wg.Wait()
	for i := len(s.closers) - 1; i >= 0; i-- { // last opened, first closed
		if err := s.closers[i](); err != nil {
			errs = append(errs, err)
		}
	}
	s.closers = nil
	if s.engine != nil {
		if err := s.engine.Stop(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	errs = append(errs, s.closeAll(ctx))
	s.log.Info("stopped")
	return errors.Join(errs...)
}

func (s *Server) closeAll(ctx context.Context) error {
	if s.backend == nil {
		return nil
	}
	err := s.backend.close(ctx)
	s.backend = nil
	return err
}

// clusterRescan is how often a cluster node scans the shared queues, so
// that the deliveries of a node that died are taken over soon.
const clusterRescan = 3 * time.Second

// clusterPauseRefresh is how often a cluster node reads the paused targets
// again: a pause or resume through any node holds on every node within it.
const clusterPauseRefresh = time.Second
