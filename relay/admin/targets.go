package admin

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
)

// Target states.
const (
	TargetOK     = "ok"
	TargetPaused = "paused"
)

// TargetInfo is one configured target as `hookrelay targets list` shows
// it.
type TargetInfo struct {
	Name     string    `json:"name"`
	State    string    `json:"state"` // ok or paused
	PausedAt time.Time `json:"paused_at,omitzero"`
	// Pending counts the queued deliveries (waiting or retrying).
	Pending int `json:"pending"`
	// InFlight counts the attempts running now on the node that answers
	// (0 when no server runs).
	InFlight int `json:"in_flight"`
}

// ErrUnknownTarget is wrapped by SetPaused for a name the config does not
// have.
var ErrUnknownTarget = errors.New("unknown target")

// Targets reports every configured target, sorted by name.
func (s *Service) Targets(ctx context.Context) ([]TargetInfo, error) {
	_, names := s.Routing()
	paused, err := s.Store.Paused(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]TargetInfo, 0, len(names))
	for _, name := range names {
		ti, err := s.target(ctx, name, paused)
		if err != nil {
			return nil, err
		}
		out = append(out, ti)
	}
	slices.SortFunc(out, func(a, b TargetInfo) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

func (s *Service) target(ctx context.Context, name string, paused map[string]time.Time) (TargetInfo, error) {
	ti := TargetInfo{Name: name, State: TargetOK}
	if at, ok := paused[name]; ok {
		ti.State, ti.PausedAt = TargetPaused, at
	}
	var err error
	if ti.Pending, err = s.Store.QueueDepth(ctx, name); err != nil {
		return ti, fmt.Errorf("target %s: %w", name, err)
	}
	if s.InFlight != nil {
		if ti.InFlight, err = s.InFlight(ctx, name); err != nil {
			return ti, fmt.Errorf("target %s: %w", name, err)
		}
	}
	return ti, nil
}

// SetPaused pauses (or resumes) the configured target name: its
// deliveries wait, pending, until it is resumed; attempts in flight
// finish. The state is kept in the store, so it survives a restart and, in
// cluster mode, holds on every node.
func (s *Service) SetPaused(ctx context.Context, name string, paused bool) (*TargetInfo, error) {
	_, names := s.Routing()
	if !slices.Contains(names, name) {
		return nil, fmt.Errorf("%w %q (the config has: %s)", ErrUnknownTarget, name, strings.Join(names, ", "))
	}
	if err := s.Store.SetPaused(ctx, name, paused); err != nil {
		return nil, err
	}
	all, err := s.Store.Paused(ctx)
	if s.PauseChanged != nil {
		// Told whatever happens next: the store has the new state.
		at, ok := all[name]
		if paused && !ok {
			at = time.Now()
		}
		s.PauseChanged(name, paused, at)
	}
	if err != nil {
		return nil, err
	}
	ti, err := s.target(ctx, name, all)
	return &ti, err
}

// Targets lists the running server's targets.
func (c *Client) Targets(ctx context.Context) ([]TargetInfo, error) {
	var out struct {
		Targets []TargetInfo `json:"targets"`
	}
	if err := c.do(ctx, http.MethodGet, "/api/targets", nil, &out); err != nil {
		return nil, err
	}
	return out.Targets, nil
}

// SetPaused pauses or resumes a target of the running server.
func (c *Client) SetPaused(ctx context.Context, name string, paused bool) (*TargetInfo, error) {
	verb := "resume"
	if paused {
		verb = "pause"
	}
	var ti TargetInfo
	err := c.do(ctx, http.MethodPost, "/api/targets/"+url.PathEscape(name)+"/"+verb, struct{}{}, &ti)
	var re *RemoteError
	if errors.As(err, &re) && re.Status == http.StatusBadRequest {
		return nil, errors.New(re.Msg) // the server's own words, as offline
	}
	if err != nil {
		return nil, err
	}
	return &ti, nil
}
