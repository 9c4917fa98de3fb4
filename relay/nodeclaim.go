package relay

// The cluster.node claim: a serving node holds its name in JetStream for
// as long as it runs (jsstore.ClaimNode), so that a second process started
// with the same cluster.node (a copy-pasted config) refuses to start
// instead of running as the same node.

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/hookrelay/hookrelay/relay/config"
	"github.com/hookrelay/hookrelay/relay/jsstore"
	"github.com/hookrelay/hookrelay/relay/natsnode"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// nodeIDFile, in the embedded server's store directory (or storage.path
// with cluster.nats.urls), holds a random id of this node's state: a claim
// that carries it, from this host, by a process no longer running, is this
// node's own, left by a run that was killed, and is taken over at once.
const nodeIDFile = "hookrelay-node-id"

// nodeClaimOpts are the claim's timing (tests shorten them).
var nodeClaimOpts = jsstore.NodeClaimOptions{Refresh: jsstore.DefaultNodeRefresh, TTL: jsstore.DefaultNodeTTL}

// nodeIdentity is what this process's claim of cl.Node says, and the
// instance id file to write once the name is held (none if it exists).
func nodeIdentity(cfg *config.Config) (me jsstore.NodeClaim, writeID string) {
	host, _ := os.Hostname()
	me = jsstore.NodeClaim{Node: cfg.Cluster.Node, Host: host, PID: os.Getpid(), Since: time.Now().UTC().Truncate(time.Second)}
	dir := cfg.Storage.Path
	if e := cfg.Cluster.NATS.Embedded; e != nil {
		dir = e.StoreDir
	}
	if dir == "" {
		return me, ""
	}
	path := filepath.Join(dir, nodeIDFile)
	if b, err := os.ReadFile(path); err == nil && len(strings.TrimSpace(string(b))) > 0 {
		me.Instance = strings.TrimSpace(string(b))
		return me, ""
	}
	var r [16]byte
	_, _ = rand.Read(r[:])
	me.Instance = hex.EncodeToString(r[:])
	return me, path
}

// sameInstance reports whether holder is provably an earlier run of this
// node that is no longer running: same state (instance id), same host,
// and its pid is not a live process here (or is this very process: a
// container restarted with pid 1 again).
func sameInstance(me jsstore.NodeClaim) func(jsstore.NodeClaim) bool {
	return func(h jsstore.NodeClaim) bool {
		return me.Instance != "" && h.Instance == me.Instance && h.Host == me.Host &&
			(h.PID == me.PID || !processAlive(h.PID))
	}
}

// nodeInUse words the error a node refused its name exits with.
func nodeInUse(err error) error {
	var inUse *jsstore.NodeInUseError
	if !errors.As(err, &inUse) {
		return err
	}
	h := inUse.Holder
	return fmt.Errorf("cluster.node %q is already used by a running node (host %s, pid %d, since %s); give each node its own name",
		h.Node, h.Host, h.PID, h.Since.UTC().Format(time.RFC3339))
}

// claimNode takes cl.Node for this process on the open store, and keeps it
// until close; b.lost gets the error if another process takes it over.
func (b *backend) claimNode(ctx context.Context, cfg *config.Config, log *slog.Logger) error {
	st, ok := b.store.(*jsstore.Store)
	if !ok {
		return nil
	}
	me, writeID := nodeIdentity(cfg)
	o := nodeClaimOpts
	o.Logger, o.Same = log, sameInstance(me)
	b.lost = make(chan error, 1)
	o.OnLost = func(err error) {
		select {
		case b.lost <- fmt.Errorf("cluster.node %q: %w", me.Node, err):
		default:
		}
	}
	lease, err := st.ClaimNode(ctx, me, o)
	if err != nil {
		return nodeInUse(err)
	}
	b.nodeLease = lease
	if writeID != "" {
		if err := os.MkdirAll(filepath.Dir(writeID), 0o700); err == nil {
			err = os.WriteFile(writeID, []byte(me.Instance+"\n"), 0o600)
		}
		if err != nil {
			log.Warn("could not keep this node's instance id (a restart after a crash waits for its old claim to expire)", "path", writeID, "err", err)
		}
	}
	log.Info("holding this node's name", "node", me.Node, "host", me.Host, "pid", me.PID, "refresh", o.Refresh, "ttl", o.TTL)
	return nil
}

// checkNodeFree runs before the embedded server starts: an embedded server
// takes cluster.node as its NATS server name, and JetStream identifies
// RAFT peers by a hash of that name, so a second server with a live node's
// name must not join at all. Through the other nodes' route ports it finds
// their client ports, and reads the name's claim as a plain client,
// writing nothing. Only a live holder is an error: a cluster not reachable
// (yet) or without a quorum is left to the claim after the store opens.
func checkNodeFree(ctx context.Context, cfg *config.Config, log *slog.Logger) error {
	e := cfg.Cluster.NATS.Embedded
	var urls []string
	for _, p := range natsnode.ProbeRoutes(ctx, e.Routes, 2*time.Second) {
		for _, u := range p.ClientURLs {
			if !strings.Contains(u, "://") {
				u = "nats://" + u
			}
			urls = append(urls, u)
		}
	}
	if len(urls) == 0 {
		return nil
	}
	nc, err := nats.Connect(strings.Join(urls, ","), nats.Name("hookrelay "+cfg.Cluster.Node+" (name check)"),
		nats.Timeout(2*time.Second), nats.NoReconnect())
	if err != nil {
		log.Debug("node name check: no other node answered", "err", err)
		return nil
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return nil
	}
	me, _ := nodeIdentity(cfg)
	o := nodeClaimOpts
	o.Logger, o.Same = log, sameInstance(me)
	cctx, cancel := context.WithTimeout(ctx, o.TTL+o.Refresh+5*time.Second)
	defer cancel()
	err = jsstore.CheckNode(cctx, js, "", me, o)
	var inUse *jsstore.NodeInUseError
	if errors.As(err, &inUse) {
		return nodeInUse(err)
	}
	if err != nil {
		log.Debug("node name check before joining: no answer (checked again once the store opens)", "err", err)
	}
	return nil
}
