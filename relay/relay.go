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
	"time"

	"github.com/hookrelay/hookrelay/providers"
	"github.com/hookrelay/hookrelay/providers/registry"
	"github.com/hookrelay/hookrelay/relay/admin"
	"github.com/hookrelay/hookrelay/relay/config"
	"github.com/hookrelay/hookrelay/relay/deliver"
	"github.com/hookrelay/hookrelay/relay/ingest"
	"github.com/hookrelay/hookrelay/relay/metrics"
	"github.com/hookrelay/hookrelay/relay/route"
	"github.com/hookrelay/hookrelay/relay/store"
)

// Server is a running hookrelay instance.
type Server struct {
	cfg     *config.Config
	log     *slog.Logger
	version string
	sources map[string]*providers.Source
	routes  *route.Table

	store   *store.Store
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

// New validates what the config alone cannot (adapters) and returns a
// server that is not yet started. version goes into the User-Agent of
// deliveries.
func New(cfg *config.Config, log *slog.Logger, version string) (*Server, error) {
	sources, err := BuildSources(cfg)
	if err != nil {
		return nil, err
	}
	return &Server{
		cfg: cfg, log: log, version: version, sources: sources, routes: BuildRoutes(cfg),
		addrs: map[string]string{}, errc: make(chan error, 4),
	}, nil
}

// BuildSources constructs one adapter per configured source.
func BuildSources(cfg *config.Config) (map[string]*providers.Source, error) {
	out := make(map[string]*providers.Source, len(cfg.Sources))
	for name, sc := range cfg.Sources {
		ad, err := registry.New(sc.Provider, sc.Options())
		if err != nil {
			return nil, fmt.Errorf("source %s: %w", name, err)
		}
		exprs, err := providers.ParseKeyExprs(sc.DedupeKey)
		if err != nil {
			return nil, fmt.Errorf("source %s: %w", name, err)
		}
		out[name] = &providers.Source{Name: name, Provider: sc.Provider, Adapter: ad, DedupeKey: exprs}
	}
	return out, nil
}

// BuildRoutes compiles the config's routes.
func BuildRoutes(cfg *config.Config) *route.Table {
	rules := make([]route.Rule, 0, len(cfg.Routes))
	for _, r := range cfg.Routes {
		rules = append(rules, route.Rule{
			Name: r.Name, Sources: r.Match.Sources, Providers: r.Match.Providers,
			Events: r.Match.Events, Targets: r.Targets,
		})
	}
	return route.New(rules)
}

// OpenStore opens the configured store.
func OpenStore(ctx context.Context, cfg *config.Config, log *slog.Logger) (*store.Store, error) {
	return store.Open(ctx, store.Options{
		Path: cfg.Storage.Path, Sync: cfg.Storage.Sync, Retention: cfg.Storage.Retention.D(),
		DedupeWindow: cfg.Dedupe.Window.D(), CacheSize: cfg.Dedupe.CacheSize, Logger: log,
	})
}

// Start opens the store and binds every listener. It returns once the
// server accepts requests; errors from listeners later arrive on Run.
func (s *Server) Start(ctx context.Context) error {
	st, err := OpenStore(ctx, s.cfg, s.log)
	if err != nil {
		return err
	}
	s.store = st
	targets, err := BuildTargets(s.cfg)
	if err != nil {
		s.closeAll(ctx)
		return err
	}
	s.metrics = metrics.New(s.queueDepths)
	s.engine = deliver.New(st, targets, deliver.Options{Log: s.log, Metrics: s.metrics, UserAgent: "hookrelay/" + s.version})
	s.engine.Start(ctx)
	h := &ingest.Handler{
		Sources: s.sources, Store: st, Router: s.routes, MaxBody: s.cfg.Server.MaxBodyBytes,
		Log: s.log, RedactHeaders: redactHeaders(s.cfg), Enqueue: s.engine.Enqueue, Metrics: s.metrics,
		InFlight: ingest.NewInFlight(s.cfg.Server.MaxInFlight),
	}
	if s.cfg.Admin.Listen != "" {
		svc := &admin.Service{Store: st, Router: s.routes, Targets: s.cfg.TargetNames(), Notify: s.engine.Notify}
		if err := s.listenAdmin(admin.Handler(svc, s.metrics.Handler(), s.cfg.Admin.Token)); err != nil {
			s.Shutdown(ctx)
			return err
		}
	}
	if err := s.startPublic(ctx, h); err != nil {
		_ = s.Shutdown(ctx)
		return err
	}
	return nil
}

// queueDepths reports the queued deliveries per target (for metrics).
func (s *Server) queueDepths() map[string]int {
	out := map[string]int{}
	st := s.store
	if st == nil {
		return out
	}
	for _, t := range s.cfg.TargetNames() {
		if n, err := st.QueueDepth(t); err == nil {
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
		return fmt.Errorf("admin listener: %w", err)
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

func redactHeaders(cfg *config.Config) map[string][]string {
	out := map[string][]string{}
	for name, sc := range cfg.Sources {
		// The callback header's value is a shared secret; a generic hmac
		// source's signature header may not say "signature" in its name.
		for _, h := range []string{sc.Header, sc.SignatureHeader} {
			if h != "" {
				out[name] = append(out[name], http.CanonicalHeaderKey(h))
			}
		}
	}
	return out
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
func (s *Server) Store() *store.Store { return s.store }

// Run blocks until ctx is cancelled or a listener fails, then shuts down
// gracefully: listeners stop accepting and finish requests in flight,
// delivery workers stop, and the store is closed.
func (s *Server) Run(ctx context.Context) error {
	var runErr error
	select {
	case <-ctx.Done():
	case runErr = <-s.errc:
		s.log.Error("listener failed", "err", runErr)
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
	for _, c := range s.closers {
		if err := c(); err != nil {
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
	if s.store == nil {
		return nil
	}
	err := s.store.Close(ctx)
	s.store = nil
	return err
}

// BuildTargets converts the config's targets for the delivery engine.
func BuildTargets(cfg *config.Config) ([]deliver.Target, error) {
	var out []deliver.Target
	for _, name := range cfg.TargetNames() {
		t := cfg.Targets[name]
		var key []byte
		if t.SigningSecret != "" {
			k, err := config.SigningKey(t.SigningSecret)
			if err != nil {
				return nil, fmt.Errorf("target %s: %w", name, err)
			}
			key = k
		}
		out = append(out, deliver.Target{
			Name: name, URL: t.URL, Timeout: t.Timeout.D(), Headers: t.Headers, SigningKey: key,
			MaxInFlight: t.MaxInFlight, MaxAttempts: t.Retry.MaxAttempts,
			InitialBackoff: t.Retry.InitialBackoff.D(), MaxBackoff: t.Retry.MaxBackoff.D(),
		})
	}
	return out, nil
}
