// Package admin is hookrelay's operator interface: a Service that lists,
// shows and replays stored events, the token-protected HTTP API that serves
// it on the admin listener, and the Client the CLI uses to reach a running
// server. The CLI uses the Service directly when no server is running.
package admin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"
	"unicode/utf8"

	"github.com/hookrelay/hookrelay/relay/deliver"
	"github.com/hookrelay/hookrelay/relay/delivery"
	"github.com/hookrelay/hookrelay/relay/storage"
)

// Router picks the targets of an event (used to replay unrouted events).
type Router interface {
	Targets(source, provider, eventType string) []string
}

// Service answers inspection and replay requests against an open store.
type Service struct {
	Store storage.Store
	// Routing returns the routes and the configured target names in force
	// (a reload changes them).
	Routing func() (Router, []string)
	Notify  func(targets ...string) // wakes the delivery engine
	// Reloader, optional, re-reads the server's config (POST /api/reload).
	Reloader func(ctx context.Context) error
	// Clusterer, optional (cluster mode), reports the cluster.
	Clusterer func(ctx context.Context) (*ClusterStatus, error)
	// InFlight, optional, counts a target's attempts running now.
	InFlight func(ctx context.Context, target string) (int, error)
	// PauseChanged, optional, tells the delivery engine that target was
	// just paused (since at) or resumed in the store.
	PauseChanged func(target string, paused bool, at time.Time)
	// Poll is how often Replay checks progress (default 50ms).
	Poll time.Duration
}

// ErrNotClustered is returned by ClusterStatus on a single node.
var ErrNotClustered = errors.New("not in cluster mode (the config has no cluster section)")

// ClusterStatus is what `hookrelay cluster status` shows.
type ClusterStatus struct {
	Node       string        `json:"node"`
	Cluster    string        `json:"cluster"`
	MetaLeader string        `json:"meta_leader,omitempty"`
	Nodes      []ClusterNode `json:"nodes"`
	// Holders are the hookrelay nodes running now, by the cluster.node
	// each holds (with urls, the only list of nodes there is).
	Holders []NodeHolder    `json:"holders"`
	Streams []ClusterStream `json:"streams"`
	Targets []TargetPending `json:"targets"`
}

// ClusterNode is one member of the JetStream cluster.
type ClusterNode struct {
	Name    string  `json:"name"`
	Current bool    `json:"current"`
	Offline bool    `json:"offline,omitempty"`
	Active  float64 `json:"active_seconds_ago,omitempty"`
	Lag     uint64  `json:"lag,omitempty"`
}

// NodeHolder is a running hookrelay node: the cluster.node it holds, and
// where it runs.
type NodeHolder struct {
	Node  string    `json:"node"`
	Host  string    `json:"host"`
	PID   int       `json:"pid"`
	Since time.Time `json:"since"`
	// LowSpace, when set, says the node's disk is nearly full (every node
	// refuses new events meanwhile).
	LowSpace string `json:"low_space,omitempty"`
}

// ClusterStream is one JetStream stream (or bucket) hookrelay uses.
type ClusterStream struct {
	Name      string        `json:"name"`
	Replicas  int           `json:"replicas"`
	Leader    string        `json:"leader,omitempty"`
	Peers     []ClusterNode `json:"peers,omitempty"`
	Messages  uint64        `json:"messages"`
	Bytes     uint64        `json:"bytes"`
	Consumers int           `json:"consumers"`
}

// TargetPending is a target's queued deliveries.
type TargetPending struct {
	Target  string `json:"target"`
	Pending int    `json:"pending"`
}

// ClusterStatus reports the cluster (see Clusterer).
func (s *Service) ClusterStatus(ctx context.Context) (*ClusterStatus, error) {
	if s.Clusterer == nil {
		return nil, ErrNotClustered
	}
	return s.Clusterer(ctx)
}

// ErrNoReload is returned by Reload where there is no server to reload.
var ErrNoReload = errors.New("no running server to reload")

// Reload re-reads the server's config file (see Reloader).
func (s *Service) Reload(ctx context.Context) error {
	if s.Reloader == nil {
		return ErrNoReload
	}
	return s.Reloader(ctx)
}

// Page is one page of events.
type Page struct {
	Events     []storage.EventView `json:"events"`
	NextCursor string              `json:"next_cursor,omitempty"`
}

// EventDetail is one event with everything known about it.
type EventDetail struct {
	storage.EventView
	// Payload is the raw body as received, when it is valid UTF-8 JSON.
	Payload json.RawMessage `json:"payload,omitempty"`
	// PayloadBase64 holds the exact bytes of any other body (not valid
	// UTF-8, or not JSON), so the answer is always valid JSON.
	PayloadBase64 []byte `json:"payload_base64,omitempty"`
	// CloudEvent is what targets receive.
	CloudEvent json.RawMessage `json:"cloudevent"`
}

// ReplayRequest selects deliveries to send again.
type ReplayRequest struct {
	storage.Filter
	// Target sends to this target instead of the event's own targets.
	Target string `json:"target,omitempty"`
	DryRun bool   `json:"dry_run,omitempty"`
	// Wait bounds how long Replay waits for the first attempt of each
	// delivery (default 60s).
	Wait time.Duration `json:"wait,omitempty"`
}

// ReplayOutcome is what became of one delivery of a replay.
type ReplayOutcome string

// Replay outcomes.
const (
	ReplayPlanned   ReplayOutcome = "planned"   // dry run
	ReplayDelivered ReplayOutcome = "delivered" // the first attempt was delivered
	ReplayFailed    ReplayOutcome = "failed"    // requeueing or the first attempt failed
	ReplayPending   ReplayOutcome = "pending"   // no attempt within the wait
	ReplayHeld      ReplayOutcome = "held"      // requeued; its target is paused, so sent on resume
)

// ReplayItem is one (event, target) delivery of a replay.
type ReplayItem struct {
	EventID    string        `json:"event_id"`
	Target     string        `json:"target"`
	Outcome    ReplayOutcome `json:"outcome"`
	StatusCode int           `json:"status_code,omitempty"`
	Error      string        `json:"error,omitempty"`
}

// ReplayReport summarises a replay.
type ReplayReport struct {
	Matched int          `json:"matched"`
	Sent    int          `json:"sent"`
	Failed  int          `json:"failed"`
	Pending int          `json:"pending"`
	DryRun  bool         `json:"dry_run,omitempty"`
	Items   []ReplayItem `json:"items"`
}

// maxReplayWait caps ReplayRequest.Wait.
const maxReplayWait = 15 * time.Minute

// Progress is reported while a replay runs.
type Progress struct {
	Done, Total, Sent, Failed int
}

// List returns one page of matching events, newest first.
func (s *Service) List(ctx context.Context, f storage.Filter, cursor string, limit int) (*Page, error) {
	evs, next, err := s.Store.List(ctx, f, cursor, limit)
	if err != nil {
		return nil, err
	}
	return &Page{Events: evs, NextCursor: next}, nil
}

// Get returns one event in detail.
func (s *Service) Get(ctx context.Context, id string) (*EventDetail, error) {
	v, raw, err := s.Store.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	d := &EventDetail{EventView: *v, CloudEvent: deliver.CloudEvent(&v.Event, raw, false)}
	if json.Valid(raw) && utf8.Valid(raw) {
		d.Payload = raw
	} else {
		d.PayloadBase64 = raw
	}
	return d, nil
}

// Replay requeues the selected deliveries (marked as replays: the
// CloudEvent carries "replay": true and the request a Hookrelay-Replay
// header) and waits for the first attempt of each. With DryRun it only
// reports what it would send.
func (s *Service) Replay(ctx context.Context, req ReplayRequest, progress func(Progress)) (*ReplayReport, error) {
	router, targets := s.Routing()
	if req.Target != "" && !slices.Contains(targets, req.Target) {
		return nil, fmt.Errorf("unknown target %q", req.Target)
	}
	rep := &ReplayReport{DryRun: req.DryRun, Items: []ReplayItem{}}
	err := s.Store.Each(ctx, req.Filter, func(v *storage.EventView) bool {
		rep.Matched++
		for _, t := range replayTargets(v, req, router, targets) {
			rep.Items = append(rep.Items, ReplayItem{EventID: v.ID, Target: t, Outcome: ReplayPlanned})
		}
		return true
	})
	if err != nil {
		return nil, err
	}
	if req.DryRun || len(rep.Items) == 0 {
		return rep, nil
	}
	paused, err := s.Store.Paused(ctx)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	touched := map[string]bool{}
	for i := range rep.Items {
		it := &rep.Items[i]
		if err := s.Store.Requeue(ctx, it.EventID, it.Target, now); err != nil {
			it.Outcome, it.Error = ReplayFailed, err.Error()
			continue
		}
		it.Outcome = ReplayPending
		if _, ok := paused[it.Target]; ok {
			it.Outcome = ReplayHeld // no attempt to wait for
		}
		touched[it.Target] = true
	}
	if s.Notify != nil {
		for t := range touched {
			s.Notify(t)
		}
	}
	s.wait(ctx, req.Wait, rep, progress)
	return rep, nil
}

// replayTargets decides where an event is sent again: the requested
// target; else its deliveries (only those in the requested status, when a
// delivery status is asked for); else, for an unrouted event, the targets
// today's routes select.
func replayTargets(v *storage.EventView, req ReplayRequest, router Router, targets []string) []string {
	if req.Target != "" {
		return []string{req.Target}
	}
	var out []string
	want, byStatus := req.Status.Delivery()
	for _, d := range v.Deliveries {
		if !byStatus || d.Status == want {
			out = append(out, d.Target)
		}
	}
	if len(v.Deliveries) == 0 && router != nil {
		for _, t := range router.Targets(v.Source, v.Provider, v.Type) {
			if slices.Contains(targets, t) {
				out = append(out, t)
			}
		}
	}
	return out
}

// wait polls the store until every pending item has had an attempt.
func (s *Service) wait(ctx context.Context, wait time.Duration, rep *ReplayReport, progress func(Progress)) {
	if wait <= 0 {
		wait = 60 * time.Second
	}
	wait = min(wait, maxReplayWait)
	poll := s.Poll
	if poll <= 0 {
		poll = 50 * time.Millisecond
	}
	deadline := time.Now().Add(wait)
	for {
		left := 0
		for i := range rep.Items {
			it := &rep.Items[i]
			if it.Outcome != ReplayPending {
				continue
			}
			_, _, d, err := s.Store.LoadDelivery(ctx, it.EventID, it.Target)
			switch {
			case errors.Is(err, storage.ErrNotFound):
				it.Outcome, it.Error = ReplayFailed, "event expired"
			case err != nil:
				left++
			case d.Tries > 0 && len(d.Attempts) > 0:
				last := d.Attempts[len(d.Attempts)-1]
				it.StatusCode, it.Error = last.StatusCode, last.Error
				it.Outcome = ReplayFailed
				if d.Status == delivery.Delivered {
					it.Outcome = ReplayDelivered
				}
			default:
				left++
			}
		}
		rep.Sent, rep.Failed, rep.Pending = 0, 0, 0
		for _, it := range rep.Items {
			switch it.Outcome {
			case ReplayDelivered:
				rep.Sent++
			case ReplayFailed:
				rep.Failed++
			case ReplayPending, ReplayHeld:
				rep.Pending++
			}
		}
		if progress != nil {
			progress(Progress{Done: len(rep.Items) - left, Total: len(rep.Items), Sent: rep.Sent, Failed: rep.Failed})
		}
		if left == 0 || time.Now().After(deadline) || ctx.Err() != nil {
			return
		}
		select {
		case <-ctx.Done():
		case <-time.After(poll):
		}
	}
}
