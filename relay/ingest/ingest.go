// Package ingest is the public side of hookrelay: the HTTP handler behind
// POST /webhooks/<source>, /healthz and /readyz.
package ingest

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/hookrelay/hookrelay/providers"
	"github.com/hookrelay/hookrelay/relay/httpx"
	"github.com/hookrelay/hookrelay/relay/storage"
	"github.com/hookrelay/hookrelay/verify"
)

// Store is the part of the event store the handler needs.
type Store interface {
	Ingest(ctx context.Context, ev *storage.Event, raw []byte) (storage.Result, error)
	// Ready fails once the store cannot take writes (for /readyz).
	Ready() error
}

// Router picks the targets of an event.
type Router interface {
	Targets(source, provider, eventType string) []string
}

// Metrics observes ingest outcomes. outcome is "accepted", "duplicate" or
// "rejected_<reason>".
type Metrics interface {
	Received(source, outcome string, d time.Duration)
}

// Outcome labels used with Metrics.
const (
	OutcomeAccepted    = "accepted"
	OutcomeDuplicate   = "duplicate"
	OutcomeBadRequest  = "rejected_bad_request"
	OutcomeBadSig      = "rejected_signature"
	OutcomeTimestamp   = "rejected_timestamp"
	OutcomeTooLarge    = "rejected_too_large"
	OutcomeUnavailable = "rejected_unavailable"
	OutcomeBusy        = "rejected_busy"
	OutcomeTimeout     = "rejected_timeout"     // 408: body too slow or late
	OutcomeLowSpace    = "rejected_disk_full"   // 503: storage nearly full
	OutcomeNoMemory    = "rejected_body_budget" // 503: server.max_buffered_bytes in use
	outcomeNoSource    = "rejected_unknown_source"
	outcomeMethod      = "rejected_method"
)

// Routing is the part of the handler's configuration that a reload
// replaces: the sources with their adapters, and the routes.
type Routing struct {
	Sources map[string]*providers.Source
	Router  Router
}

// Handler serves the public listener.
type Handler struct {
	// Routing returns the routing in force; each request reads it once and
	// finishes on it even if a reload swaps it meanwhile.
	Routing func() *Routing
	Store   Store
	MaxBody int64
	Log     *slog.Logger
	Metrics Metrics // optional
	// Enqueue, optional, hands a new event's committed deliveries to the
	// delivery engine.
	Enqueue func(dues ...storage.Due)
	Ready   func() error     // optional: readiness beyond "store open"
	Now     func() time.Time // optional, for tests
	// InFlight, when non-nil, bounds the webhooks being handled at once
	// (its capacity); past it requests get 503 with Retry-After, so a flood
	// of requests cannot exhaust the store. A request counts against it
	// only once its body is in. See NewInFlight.
	InFlight chan struct{}
	// ReadTimeout (server.read_timeout), MinBodyRate and BodyGrace
	// (server.min_body_rate, server.body_grace) and Budget
	// (server.max_buffered_bytes) govern reading bodies: see BodyLimits.
	ReadTimeout time.Duration
	MinBodyRate int64
	BodyGrace   time.Duration
	Budget      *Budget

	rejectsOnce sync.Once
	rejects     *rejectLog
}

// NewInFlight returns a limit of n concurrent webhooks for Handler.InFlight.
func NewInFlight(n int) chan struct{} { return make(chan struct{}, n) }

func (h *Handler) now() time.Time {
	if h.Now != nil {
		return h.Now()
	}
	return time.Now()
}

// ServeHTTP routes the public paths; everything else is 404.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch p := r.URL.Path; {
	case strings.HasPrefix(p, "/webhooks/"):
		h.webhook(w, r, strings.TrimPrefix(p, "/webhooks/"))
	case p == "/healthz":
		httpx.WriteJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	case p == "/readyz":
		if err := h.ready(); err != nil {
			httpx.WriteJSON(w, http.StatusServiceUnavailable, readyBody(err))
			return
		}
		httpx.WriteJSON(w, http.StatusOK, map[string]string{"status": "ready"})
	default:
		httpx.WriteError(w, http.StatusNotFound, "not found")
	}
}

// rejected logs a rejection, rate-limited per source and outcome.
func (h *Handler) rejected(source, outcome string, known bool, attrs ...any) {
	h.rejectsOnce.Do(func() {
		if h.rejects == nil {
			h.rejects = newRejectLog(h.Log, rejectBurst, rejectPeriod, time.Now)
		}
	})
	h.rejects.reject(source, outcome, known, attrs...)
}

// readyBody is the answer of /readyz when not ready.
func readyBody(err error) map[string]any {
	out := map[string]any{"status": "not ready", "reason": err.Error()}
	var lse *storage.LowSpaceError
	if errors.As(err, &lse) {
		out["free_bytes"], out["min_free_bytes"] = lse.Free, lse.Min
	}
	return out
}

// ready reports whether the store is open (if it can tell, see
// store.Store.Ready) and h.Ready holds.
func (h *Handler) ready() error {
	if err := h.Store.Ready(); err != nil {
		return err
	}
	if h.Ready != nil {
		return h.Ready()
	}
	return nil
}

func (h *Handler) webhook(w http.ResponseWriter, r *http.Request, name string) {
	start := h.now()
	rt := h.Routing()
	src, ok := rt.Sources[name]
	if !ok {
		// The most common provider-side mistake: log the name asked for
		// (cut short, it is the sender's text), never the configured ones.
		h.rejected(clip(name, 128), outcomeNoSource, false, "status", http.StatusNotFound,
			"reason", "unknown source", "remote", r.RemoteAddr)
		httpx.WriteError(w, http.StatusNotFound, "unknown source")
		return
	}
	if r.Method != http.MethodPost {
		h.rejected(name, outcomeMethod, true, "status", http.StatusMethodNotAllowed, "method", clip(r.Method, 32), "remote", r.RemoteAddr)
		w.Header().Set("Allow", http.MethodPost)
		httpx.WriteError(w, http.StatusMethodNotAllowed, "method not allowed: use POST")
		return
	}
	observe := func(outcome string) {
		if h.Metrics != nil {
			h.Metrics.Received(name, outcome, h.now().Sub(start))
		}
	}
	reject := func(status int, outcome, msg string) {
		observe(outcome)
		h.rejected(name, outcome, true, "status", status, "reason", msg, "remote", r.RemoteAddr)
		httpx.WriteError(w, status, msg)
	}
	tooLarge := "body larger than " + strconv.FormatInt(h.MaxBody, 10) + " bytes"
	if r.ContentLength > h.MaxBody {
		reject(http.StatusRequestEntityTooLarge, OutcomeTooLarge, tooLarge)
		return
	}
	bd, err := readBody(w, r, BodyLimits{MaxBytes: h.MaxBody, Timeout: h.ReadTimeout, MinRate: h.MinBodyRate, Grace: h.BodyGrace, Budget: h.Budget}, h.now)
	if err != nil {
		// The body is not all read: the connection closes after the
		// answer, which may come late enough to need more write time.
		w.Header().Set("Connection", "close")
		_ = http.NewResponseController(w).SetWriteDeadline(time.Now().Add(10 * time.Second))
		var mbe *http.MaxBytesError
		switch {
		case errors.As(err, &mbe):
			reject(http.StatusRequestEntityTooLarge, OutcomeTooLarge, tooLarge)
		case errors.Is(err, errBodyTimeout), errors.Is(err, errBodySlow):
			reject(http.StatusRequestTimeout, OutcomeTimeout, err.Error())
		case errors.Is(err, errBudget):
			w.Header().Set("Retry-After", "1")
			reject(http.StatusServiceUnavailable, OutcomeNoMemory, err.Error())
		default:
			reject(http.StatusBadRequest, OutcomeBadRequest, "could not read body")
		}
		return
	}
	defer bd.release()
	body := bd.data
	if h.InFlight != nil {
		select {
		case h.InFlight <- struct{}{}:
			defer func() { <-h.InFlight }()
		default:
			w.Header().Set("Retry-After", "1")
			reject(http.StatusServiceUnavailable, OutcomeBusy, "too many webhooks in flight, retry later")
			return
		}
	}
	received := h.now()
	pev, err := src.Accept(r.URL.RawQuery, r.Header, body, received)
	if err != nil {
		status, outcome := classify(err)
		reject(status, outcome, err.Error())
		return
	}
	ev := &storage.Event{
		Source: name, Provider: src.Provider, Type: pev.Type, Subject: pev.Subject,
		Time: pev.Time, ReceivedAt: received.UTC(), DedupeKey: pev.DedupeKey, DeliveryID: pev.DeliveryID,
		Headers: auditHeaders(r.Header, src.Sensitive),
	}
	if ev.Time.IsZero() {
		ev.Time = ev.ReceivedAt
	}
	ev.Targets = rt.Router.Targets(name, src.Provider, pev.Type)
	res, err := h.Store.Ingest(r.Context(), ev, body)
	if errors.Is(err, storage.ErrLowSpace) {
		w.Header().Set("Retry-After", "30")
		reject(http.StatusServiceUnavailable, OutcomeLowSpace, "disk nearly full, retry later")
		return
	}
	if err != nil {
		observe(OutcomeUnavailable)
		h.Log.Error("store event", "source", name, "err", err)
		w.Header().Set("Retry-After", "5")
		httpx.WriteError(w, http.StatusServiceUnavailable, "store unavailable, retry later")
		return
	}
	if res.Duplicate {
		observe(OutcomeDuplicate)
		if h.Log.Enabled(r.Context(), slog.LevelDebug) {
			h.Log.Debug("duplicate webhook", "source", name, "id", res.ID, "type", pev.Type)
		}
		httpx.WriteJSON(w, http.StatusOK, map[string]string{"status": "duplicate", "id": res.ID})
		return
	}
	observe(OutcomeAccepted)
	if h.Enqueue != nil && len(res.Queued) > 0 {
		h.Enqueue(res.Queued...)
	}
	h.Log.Info("webhook accepted", "source", name, "id", res.ID, "type", pev.Type, "targets", len(ev.Targets))
	httpx.WriteJSON(w, http.StatusOK, map[string]string{"status": "accepted", "id": res.ID})
}

// classify maps a verification error to a status code and metrics outcome.
func classify(err error) (int, string) {
	switch {
	case verify.IsBadRequest(err):
		return http.StatusBadRequest, OutcomeBadRequest
	case errors.Is(err, verify.ErrTooOld), errors.Is(err, verify.ErrTooNew):
		return http.StatusUnauthorized, OutcomeTimestamp
	default:
		return http.StatusUnauthorized, OutcomeBadSig
	}
}

// sensitive headers are stored with their value redacted.
var sensitive = []string{"Authorization", "Proxy-Authorization", "Cookie"}

// auditHeaders copies the request headers worth keeping with the event,
// redacting credentials and signatures.
func auditHeaders(h http.Header, redact []string) map[string]string {
	out := make(map[string]string, len(h))
	for k, v := range h {
		if len(v) == 0 {
			continue
		}
		val := strings.Join(v, ", ")
		lk := strings.ToLower(k)
		if strings.Contains(lk, "signature") || slices.Contains(sensitive, k) || slices.Contains(redact, k) {
			val = "[redacted]"
		}
		out[k] = val
	}
	return out
}

// clip cuts s to at most n bytes (on a rune boundary), marking the cut.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "..."
}
