package admin

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/pprof"
	"strconv"
	"strings"
	"time"

	"github.com/hookrelay/hookrelay/relay/delivery"
	"github.com/hookrelay/hookrelay/relay/httpx"
	"github.com/hookrelay/hookrelay/relay/storage"
)

// API is the part of Service the HTTP API serves; Client implements it too.
type API interface {
	List(ctx context.Context, f storage.Filter, cursor string, limit int) (*Page, error)
	Get(ctx context.Context, id string) (*EventDetail, error)
	Replay(ctx context.Context, req ReplayRequest, progress func(Progress)) (*ReplayReport, error)
	// Reload asks the running server to re-read its config file.
	Reload(ctx context.Context) error
	// ClusterStatus reports the cluster as this node sees it; ErrNotClustered
	// on one node.
	ClusterStatus(ctx context.Context) (*ClusterStatus, error)
	// Targets reports the configured targets: state, pending, in flight.
	Targets(ctx context.Context) ([]TargetInfo, error)
	// SetPaused pauses or resumes a target; ErrUnknownTarget for a name
	// the config does not have.
	SetPaused(ctx context.Context, name string, paused bool) (*TargetInfo, error)
}

var _ API = (*Service)(nil)

// Handler serves the admin listener:
//
//	GET  /metrics                 Prometheus metrics
//	GET  /api/health              {"status":"ok"}
//	GET  /api/events?source=&provider=&type=&status=&since=&until=&limit=&cursor=
//	GET  /api/events/{id}
//	POST /api/replay              ReplayRequest as JSON -> ReplayReport
//	GET  /api/cluster             cluster mode: nodes, meta leader, streams, pending per target
//	POST /api/reload              re-read the config file: 200, or 422 {"error"} and nothing changes
//	GET  /api/targets             {"targets": [TargetInfo...]}
//	POST /api/targets/{name}/pause   pause a target -> TargetInfo (400: unknown target)
//	POST /api/targets/{name}/resume  resume it -> TargetInfo
//	GET  /debug/pprof/...         Go profiling
//
// With a non-empty token every request needs "Authorization: Bearer <token>".
func Handler(api API, metrics http.Handler, token string) http.Handler {
	mux := http.NewServeMux()
	if metrics != nil {
		mux.Handle("GET /metrics", metrics)
	}
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	mux.HandleFunc("GET /api/health", func(w http.ResponseWriter, r *http.Request) {
		httpx.WriteJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("GET /api/events", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		f, err := filterFromQuery(q)
		if err != nil {
			httpx.WriteError(w, http.StatusBadRequest, err.Error())
			return
		}
		limit := 50
		if v := q.Get("limit"); v != "" {
			if limit, err = strconv.Atoi(v); err != nil || limit < 1 || limit > 10000 {
				httpx.WriteError(w, http.StatusBadRequest, "limit must be between 1 and 10000")
				return
			}
		}
		page, err := api.List(r.Context(), f, q.Get("cursor"), limit)
		if err != nil {
			httpx.WriteError(w, statusOf(err), err.Error())
			return
		}
		httpx.WriteJSON(w, http.StatusOK, page)
	})
	mux.HandleFunc("GET /api/events/{id}", func(w http.ResponseWriter, r *http.Request) {
		d, err := api.Get(r.Context(), r.PathValue("id"))
		if err != nil {
			httpx.WriteError(w, statusOf(err), err.Error())
			return
		}
		httpx.WriteJSON(w, http.StatusOK, d)
	})
	mux.HandleFunc("POST /api/replay", func(w http.ResponseWriter, r *http.Request) {
		var req ReplayRequest
		dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&req); err != nil {
			httpx.WriteError(w, http.StatusBadRequest, "bad replay request: "+err.Error())
			return
		}
		if err := req.Filter.Validate(); err != nil {
			httpx.WriteError(w, http.StatusBadRequest, err.Error())
			return
		}
		rep, err := api.Replay(r.Context(), req, nil)
		if err != nil {
			httpx.WriteError(w, statusOf(err), err.Error())
			return
		}
		httpx.WriteJSON(w, http.StatusOK, rep)
	})
	mux.HandleFunc("GET /api/cluster", func(w http.ResponseWriter, r *http.Request) {
		st, err := api.ClusterStatus(r.Context())
		if err != nil {
			status := http.StatusServiceUnavailable
			if errors.Is(err, ErrNotClustered) {
				status = http.StatusNotFound
			}
			httpx.WriteError(w, status, err.Error())
			return
		}
		httpx.WriteJSON(w, http.StatusOK, st)
	})
	mux.HandleFunc("POST /api/reload", func(w http.ResponseWriter, r *http.Request) {
		if err := api.Reload(r.Context()); err != nil {
			status := http.StatusUnprocessableEntity
			if errors.Is(err, ErrNoReload) {
				status = http.StatusNotImplemented
			}
			httpx.WriteError(w, status, err.Error())
			return
		}
		httpx.WriteJSON(w, http.StatusOK, map[string]string{"status": "reloaded"})
	})
	mux.HandleFunc("GET /api/targets", func(w http.ResponseWriter, r *http.Request) {
		ts, err := api.Targets(r.Context())
		if err != nil {
			httpx.WriteError(w, statusOf(err), err.Error())
			return
		}
		httpx.WriteJSON(w, http.StatusOK, map[string]any{"targets": ts})
	})
	for verb, paused := range map[string]bool{"pause": true, "resume": false} {
		mux.HandleFunc("POST /api/targets/{name}/"+verb, func(w http.ResponseWriter, r *http.Request) {
			ti, err := api.SetPaused(r.Context(), r.PathValue("name"), paused)
			if err != nil {
				httpx.WriteError(w, statusOf(err), err.Error())
				return
			}
			httpx.WriteJSON(w, http.StatusOK, ti)
		})
	}
	return requireToken(token, sameHostOnly(token == "", mux))
}

// sameHostOnly refuses what a web page could make a browser send to a
// loopback admin API: cross-origin requests (an Origin header), POSTs that
// are not JSON (no CORS preflight), and, without a token, requests naming
// a non-loopback Host (DNS rebinding).
func sameHostOnly(checkHost bool, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Origin") != "" {
			httpx.WriteError(w, http.StatusForbidden, "cross-origin requests are refused")
			return
		}
		if r.Method == http.MethodPost && !strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") {
			httpx.WriteError(w, http.StatusUnsupportedMediaType, "send Content-Type: application/json")
			return
		}
		if checkHost && !httpx.IsLoopback(r.Host) {
			httpx.WriteError(w, http.StatusForbidden, "the admin API answers only to loopback host names")
			return
		}
		next.ServeHTTP(w, r)
	})
}

func requireToken(token string, next http.Handler) http.Handler {
	if token == "" {
		return next
	}
	want := []byte("Bearer " + token)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got := []byte(r.Header.Get("Authorization"))
		if subtle.ConstantTimeCompare(got, want) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="hookrelay admin"`)
			httpx.WriteError(w, http.StatusUnauthorized, "missing or wrong admin token")
			return
		}
		next.ServeHTTP(w, r)
	})
}

func filterFromQuery(q map[string][]string) (storage.Filter, error) {
	get := func(k string) string {
		if v := q[k]; len(v) > 0 {
			return v[0]
		}
		return ""
	}
	f := storage.Filter{Source: get("source"), Provider: get("provider"), Type: get("type")}
	var err error
	if f.Status, err = delivery.ParseEventStatus(get("status")); err != nil {
		return f, err
	}
	if f.Since, err = parseTime(get("since")); err != nil {
		return f, fmt.Errorf("since: %w", err)
	}
	if f.Until, err = parseTime(get("until")); err != nil {
		return f, fmt.Errorf("until: %w", err)
	}
	if ids := get("ids"); ids != "" {
		f.IDs = strings.Split(ids, ",")
	}
	return f, f.Validate()
}

func parseTime(v string) (time.Time, error) {
	if v == "" {
		return time.Time{}, nil
	}
	return time.Parse(time.RFC3339Nano, v)
}

func statusOf(err error) int {
	switch {
	case errors.Is(err, storage.ErrNotFound):
		return http.StatusNotFound
	case errors.Is(err, storage.ErrUnavailable):
		return http.StatusServiceUnavailable
	case errors.Is(err, context.Canceled):
		return http.StatusServiceUnavailable
	}
	return http.StatusBadRequest
}
