package relay

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"time"

	"github.com/hookrelay/hookrelay/relay/admin"
	"github.com/hookrelay/hookrelay/relay/config"
)

// ErrNeedsRestart is wrapped by Reload when the new file changes a section
// that is read only at start.
var ErrNeedsRestart = errors.New("needs a restart")

// ErrNotRunning is returned by Reload while the server starts or shuts
// down: nothing is reloaded.
var ErrNotRunning = errors.New("the server is starting or shutting down: nothing reloaded")

// restartOnly are the sections a reload refuses to change: the listeners,
// the store and the logger are made once, at start.
var restartOnly = []string{"server", "admin", "storage", "tls", "dedupe", "log", "cluster"}

// Reload re-reads the config file the server was started with and, if it
// is valid and changes only what can change live (sources, secrets,
// targets, routes), swaps the new runtime in atomically. Requests already
// running finish on the old one; deliveries in flight are not disturbed
// (see deliver.Engine.Apply). On any error nothing changes: an invalid file
// returns its *config.Error, a change of a restart-only key an error
// wrapping ErrNeedsRestart that names the key.
func (s *Server) Reload(ctx context.Context) error {
	s.reloadMu.Lock()
	defer s.reloadMu.Unlock()
	if !s.running.Load() {
		return ErrNotRunning
	}
	old := s.current()
	cfg, err := s.load(s.cfg.File)
	if err == nil {
		if key := changedKey(old.cfg, cfg); key != "" {
			err = fmt.Errorf("%w: %s", ErrNeedsRestart, key)
		}
	}
	if err != nil {
		result := "invalid"
		if errors.Is(err, ErrNeedsRestart) {
			result = "needs_restart"
		}
		s.countReload(result)
		s.log.Error("config reload refused; the running config stays", "file", s.cfg.File, "err", err)
		return err
	}
	rt := newRuntime(cfg)
	if s.engine != nil {
		for _, t := range s.engine.Apply(rt.targets) {
			pending := -1
			if st := s.Store(); st != nil {
				pending, _ = st.QueueDepth(ctx, t)
			}
			s.log.Warn("target removed from the config: its pending deliveries stay in the store and resume if it comes back",
				"target", t, "pending", pending)
		}
	}
	s.rt.Store(rt)
	s.countReload("success")
	if s.metrics != nil {
		s.metrics.ConfigLoaded(time.Now())
	}
	s.log.Info("config reloaded", "file", s.cfg.File, "sources", len(cfg.Sources), "targets", len(cfg.Targets), "routes", len(cfg.Routes))
	return nil
}

func (s *Server) countReload(result string) {
	if s.metrics != nil {
		s.metrics.Reloaded(result)
	}
}

// adminRouting gives the admin service the routes and target names in
// force.
func (s *Server) adminRouting() (admin.Router, []string) {
	rt := s.current()
	return rt.routes, rt.cfg.TargetNames()
}

// changedKey returns the first key path of a restart-only section whose
// value differs between a and b ("server.listen"), or "".
func changedKey(a, b *config.Config) string {
	va, vb := reflect.ValueOf(a).Elem(), reflect.ValueOf(b).Elem()
	for i := 0; i < va.NumField(); i++ {
		name := yamlName(va.Type().Field(i))
		for _, section := range restartOnly {
			if name == section {
				if key := diff(name, va.Field(i), vb.Field(i)); key != "" {
					return key
				}
			}
		}
	}
	return ""
}

// diff walks two values of one struct type and names the first field that
// differs, by its yaml key path.
func diff(path string, a, b reflect.Value) string {
	if a.Kind() != reflect.Struct {
		if reflect.DeepEqual(a.Interface(), b.Interface()) {
			return ""
		}
		return path
	}
	for i := 0; i < a.NumField(); i++ {
		f := a.Type().Field(i)
		if !f.IsExported() {
			continue
		}
		if key := diff(path+"."+yamlName(f), a.Field(i), b.Field(i)); key != "" {
			return key
		}
	}
	return ""
}

func yamlName(f reflect.StructField) string {
	name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
	if name == "" {
		return strings.ToLower(f.Name)
	}
	return name
}
