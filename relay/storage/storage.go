// Package storage is the storage seam of hookrelay: the types and the
// interface that ingest, the delivery engine, the admin service and the
// CLI use, whatever holds the data. relay/store (Badger) is the embedded
// implementation; package storagetest is the conformance suite every
// implementation passes.
package storage

import (
	"context"
	"errors"
	"fmt"
	"path"
	"time"

	"github.com/hookrelay/hookrelay/relay/delivery"
)

// ErrUnavailable wraps errors that mean the store cannot take writes now
// (closed, shutting down, disk trouble). The HTTP layer answers 503.
var ErrUnavailable = errors.New("store unavailable")

// ErrNotHere is wrapped by a shared store's lease when another node makes
// the delivery: this node leaves it to that one.
var ErrNotHere = errors.New("delivery belongs to another node")

// ErrNotFound is returned for unknown event ids.
var ErrNotFound = errors.New("not found")

// Event is the stored metadata of one webhook.
type Event struct {
	ID         string            `json:"id"`
	Source     string            `json:"source"`
	Provider   string            `json:"provider"`
	Type       string            `json:"type"`
	Subject    string            `json:"subject"`
	Time       time.Time         `json:"time"`
	ReceivedAt time.Time         `json:"received_at"`
	DedupeKey  string            `json:"dedupe_key"`
	DeliveryID string            `json:"delivery_id,omitempty"`
	Headers    map[string]string `json:"headers,omitempty"`
	Targets    []string          `json:"targets,omitempty"`
}

// Result is the outcome of Ingest.
type Result struct {
	ID        string
	Duplicate bool
	// Queued are the new event's deliveries as queued (none for a
	// duplicate), for the delivery engine's in-memory hand-over.
	Queued []Due
}

// Filter selects events. Zero fields match everything.
type Filter struct {
	IDs      []string             `json:"ids,omitempty"`
	Source   string               `json:"source,omitempty"`
	Provider string               `json:"provider,omitempty"`
	Type     string               `json:"type,omitempty"` // glob, path.Match syntax
	Status   delivery.EventStatus `json:"status,omitempty"`
	Since    time.Time            `json:"since,omitzero"`
	Until    time.Time            `json:"until,omitzero"`
}

// Validate checks the filter's glob and status.
func (f *Filter) Validate() error {
	if _, err := path.Match(f.Type, ""); err != nil {
		return fmt.Errorf("bad type glob %q", f.Type)
	}
	_, err := delivery.ParseEventStatus(string(f.Status))
	return err
}

// EventView is an event with its deliveries and derived status.
type EventView struct {
	Event
	Status     delivery.EventStatus `json:"status"`
	Deliveries []delivery.Delivery  `json:"deliveries"`
}

// Match reports whether ev's metadata matches f (every field but IDs
// and Status, which need the deliveries).
func (f *Filter) Match(ev *Event) bool {
	if f.Source != "" && ev.Source != f.Source {
		return false
	}
	if f.Provider != "" && ev.Provider != f.Provider {
		return false
	}
	if f.Type != "" {
		if ok, _ := path.Match(f.Type, ev.Type); !ok {
			return false
		}
	}
	if !f.Since.IsZero() && ev.ReceivedAt.Before(f.Since) {
		return false
	}
	if !f.Until.IsZero() && !ev.ReceivedAt.Before(f.Until) {
		return false
	}
	return true
}

// Due is a queued delivery.
type Due struct {
	EventID string
	Target  string
	At      time.Time
	// Key identifies the queue entry to the store that made it; opaque to
	// everyone else.
	Key []byte
	// NotBefore, in memory only, holds the entry back until then (another
	// node holds its lease); zero: none.
	NotBefore time.Time
}

// When is when the engine may attempt d: its due time, or NotBefore if
// later.
func (d Due) When() time.Time {
	if d.NotBefore.After(d.At) {
		return d.NotBefore
	}
	return d.At
}

// ErrLocked is wrapped by Open when another process holds the store
// (Badger allows one process per directory).
var ErrLocked = errors.New("another process holds the store")

// ErrNoStore is wrapped by Open with Options.MustExist when there is no
// store at the path.
var ErrNoStore = errors.New("no store")

// LockedError says which process holds the store, when it can tell.
type LockedError struct {
	Path string
	PID  int // 0 when unknown
}

// Error names the store and the holder.
func (e *LockedError) Error() string {
	if e.PID > 0 {
		return fmt.Sprintf("another hookrelay (pid %d) holds the store at %s", e.PID, e.Path)
	}
	return fmt.Sprintf("another process holds the store at %s", e.Path)
}

// Is makes errors.Is(err, ErrLocked) true.
func (e *LockedError) Is(target error) bool { return target == ErrLocked }

// ErrSuperseded is returned by RecordAttempt when a replay replaced the
// delivery's queue entry while the attempt ran: the attempt is recorded,
// but the replay's entry, not this attempt's outcome, decides what happens
// next.
var ErrSuperseded = errors.New("delivery superseded by a replay")

// The windows a store keeps things for when none is given (and the config
// defaults of storage.retention and dedupe.window).
const (
	DefaultRetention    = 720 * time.Hour
	DefaultDedupeWindow = 168 * time.Hour
)

// Store is what hookrelay keeps: dedupe claims, events with their raw
// bodies, deliveries, their queue and attempts. Implementations are safe
// for concurrent use; the conformance suite (package storagetest) states
// the contract in tests.
type Store interface {
	// Ingest claims ev's dedupe key (ev.Source, ev.DedupeKey) and, if it is
	// new, stores the event, its raw body and one pending delivery per
	// ev.Targets, queued as due at ev.ReceivedAt, atomically; only then does
	// it return. It assigns ev.ID. A duplicate returns the first event's
	// id. Errors wrap ErrUnavailable. An implementation may keep raw after
	// it returns (a group commit still in flight): callers must not reuse it.
	Ingest(ctx context.Context, ev *Event, raw []byte) (Result, error)
	// DueDeliveries returns up to limit queued deliveries of target due at
	// or before now, oldest first, leaving out those skip reports; next is
	// the due time of the first later entry skip does not report (zero if
	// none).
	DueDeliveries(ctx context.Context, target string, now time.Time, limit int, skip func(id string) bool) (dues []Due, next time.Time, err error)
	// LoadDelivery returns an event, its raw body and its delivery to
	// target; ErrNotFound once the event has expired.
	LoadDelivery(ctx context.Context, id, target string) (*Event, []byte, *delivery.Delivery, error)
	// RecordAttempt applies delivery.Next to the delivery for the attempt
	// made for queue entry queueKey, and performs its queue operation. If a
	// replay replaced the entry meanwhile it records only the attempt and
	// returns ErrSuperseded.
	RecordAttempt(ctx context.Context, id, target string, queueKey []byte, r delivery.Result, p delivery.Policy) (delivery.Delivery, error)
	// Requeue makes the delivery of event id to target pending again, due
	// now, as a replay (delivery.ReplayedAt); target need not be one the
	// event was routed to.
	Requeue(ctx context.Context, id, target string, now time.Time) error
	// QueueKey is the key of the queue entry of the delivery of event id to
	// target due at due, as this store makes them (Due.Key).
	QueueKey(target string, due time.Time, id string) []byte
	// QueueDepth counts the queued deliveries of target.
	QueueDepth(ctx context.Context, target string) (int, error)
	// Get returns one event with its deliveries and raw body.
	Get(ctx context.Context, id string) (*EventView, []byte, error)
	// List returns up to limit events matching f, newest first, after the
	// event id cursor; next is the cursor of the following page ("" at the
	// end). Paging returns every event once.
	List(ctx context.Context, f Filter, cursor string, limit int) (events []EventView, next string, err error)
	// Each calls fn for every event matching f, oldest first, until fn
	// returns false.
	Each(ctx context.Context, f Filter, fn func(*EventView) bool) error
	// SetPaused pauses target (paused) or resumes it. The state survives
	// a restart and holds for every node that shares the store; pausing a
	// paused target keeps its first pause time.
	SetPaused(ctx context.Context, target string, paused bool) error
	// Paused returns the paused targets, each with the time it was paused.
	Paused(ctx context.Context) (map[string]time.Time, error)
	// Ready fails once the store cannot take writes (for /readyz).
	Ready() error
	// Close stops background work and closes the store; later calls fail
	// with ErrUnavailable.
	Close(ctx context.Context) error
}

// CollectPage gathers a page of List: up to limit events (default 50) from
// walk, which visits the matching events newest first after the cursor;
// next is the id to continue after, "" when the walk ended.
func CollectPage(limit int, walk func(fn func(*EventView) bool) error) (events []EventView, next string, err error) {
	if limit <= 0 {
		limit = 50
	}
	events = []EventView{}
	err = walk(func(v *EventView) bool {
		if len(events) == limit {
			next = events[len(events)-1].ID
			return false
		}
		events = append(events, *v)
		return true
	})
	return events, next, err
}
