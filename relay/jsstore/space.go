package jsstore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/hookrelay/hookrelay/relay/storage"
)

// Disk space in cluster mode. A node with an embedded NATS server keeps a
// replica of the stream on its own disk (store_dir), and with replicas 3
// every event any node takes is written there too: one node's disk
// filling up is the whole cluster's problem. nats-server disables
// JetStream on a server whose disk is full (until it restarts), so
// hookrelay stops taking events before that:
//
//   - Options.Space watches the disk under this node's replicas
//     (storage.min_free_bytes on the filesystem of store_dir). While it is
//     low, this node refuses new events at once (*storage.LowSpaceError,
//     503) and says so in its node claim (NodeClaim.LowSpace), within
//     spacePoll.
//   - Every Store reads the claims every spacePoll (the first time in
//     Open) and refuses new events while any node's claim says its disk is
//     low; the error names the node.
//
// Deliveries, replays and reads go on. They write too (attempt records,
// queue entries and their removals, RAFT's log), less than new events
// but not nothing: a large replay can still use up the space that is
// left. A node that dies while low stops counting when its claim expires.

// spacePoll is how often a node's disk state reaches its claim and the
// claims are read.
const spacePoll = time.Second

// SpaceSource reports whether the disk under this node's replicas of the
// stream is too full to take events (a *storage.LowSpaceError), and its
// last reading for the metrics.
type SpaceSource interface {
	Err() error
	Space() (free uint64, low, known bool)
}

// localLowSpace is this node's low-space error, or nil.
func (s *Store) localLowSpace() *storage.LowSpaceError {
	if s.space == nil {
		return nil
	}
	var lse *storage.LowSpaceError
	if errors.As(s.space.Err(), &lse) {
		return lse
	}
	return nil
}

// spaceErr is why no new event may be taken now: this node's disk, or
// another node's, is nearly full.
func (s *Store) spaceErr() error {
	if lse := s.localLowSpace(); lse != nil {
		return lse
	}
	if p := s.lowNode.Load(); p != nil {
		return *p
	}
	return nil
}

// Space reports the free space under this node's replicas, as last read
// (all zero without Options.Space), for hookrelay_storage_* metrics.
func (s *Store) Space() (free uint64, low, known bool) {
	if s.space == nil {
		return 0, false, false
	}
	return s.space.Space()
}

// watchNodesSpace reads the node claims every spacePoll (Open has read
// them once already) and keeps the first node whose disk is low in
// s.lowNode (this node's own state is also checked directly, by
// spaceErr). A claim that cannot be decoded is passed over; when the
// claims cannot be read at all, what was known is kept for DefaultNodeTTL
// (a claim's own lifetime), then forgotten.
func (s *Store) watchNodesSpace() {
	defer s.wg.Done()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-s.stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	t := time.NewTicker(spacePoll)
	defer t.Stop()
	lastRead := time.Now()
	failing := false
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		rctx, rcancel := context.WithTimeout(ctx, readWait)
		claims, err := s.NodeClaims(rctx)
		rcancel()
		switch {
		case ctx.Err() != nil:
			return
		case err != nil && len(claims) == 0:
			if !failing {
				s.log.Warn("cannot read the node claims: other nodes' disk space is not known", "err", err)
				failing = true
			}
			if time.Since(lastRead) > DefaultNodeTTL {
				s.lowNode.Store(nil)
			}
		default:
			if failing {
				s.log.Info("node claims readable again")
				failing = false
			}
			lastRead = time.Now()
			s.noteLowNode(claims)
		}
	}
}

// noteLowNode keeps the first claim saying its disk is low in s.lowNode,
// logging the changes.
func (s *Store) noteLowNode(claims []NodeClaim) {
	var low error
	for _, c := range claims {
		if c.LowSpace != nil {
			low = fmt.Errorf("node %s: %w", c.Node, c.LowSpace)
			break
		}
	}
	switch prev := s.lowNode.Load(); {
	case low != nil && prev == nil:
		s.log.Error("a node's disk is nearly full: refusing new events (503) until it has space again", "err", low)
	case low == nil && prev != nil:
		s.log.Warn("no node's disk is nearly full any more: taking events again")
	}
	if low == nil {
		s.lowNode.Store(nil)
	} else {
		s.lowNode.Store(&low)
	}
}
