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
	"io"
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
// with cluster.nats.urls), holds a random id of this node's state, and a
// running node holds an exclusive lock on it (flock, released by the
// kernel when the process dies). A claim that carries this id, from this
// host, while this process holds the lock, is provably this node's own,
// left by a run that was killed: it is taken over at once.
const nodeIDFile = "hookrelay-node-id"

// skipNodeCheck (tests) skips checkNodeFree, as when the other nodes'
// client ports are not reachable from this host.
var skipNodeCheck bool

// nodeClaimOpts are the claim's timing (tests shorten them).
var nodeClaimOpts = jsstore.NodeClaimOptions{Refresh: jsstore.DefaultNodeRefresh, TTL: jsstore.DefaultNodeTTL}

// nodeIdent is this process's identity as cluster.node.
type nodeIdent struct {
	me     jsstore.NodeClaim
	path   string   // the instance id file ("": no directory to keep it in)
	locked *os.File // the id file, locked: no other live process has this state
}

// newNodeIdent reads (never creates: a node refused its name writes
// nothing) the instance id file and locks it; keep writes it once the
// name is held.
func newNodeIdent(cfg *config.Config) *nodeIdent {
	host, _ := os.Hostname()
	id := &nodeIdent{me: jsstore.NodeClaim{Node: cfg.Cluster.Node, Host: host, PID: os.Getpid(), Since: time.Now().UTC().Truncate(time.Second)}}
	dir := cfg.Storage.Path
	if e := cfg.Cluster.NATS.Embedded; e != nil {
		dir = e.StoreDir
	}
	if dir == "" {
		return id
	}
	id.path = filepath.Join(dir, nodeIDFile)
	if f, err := os.OpenFile(id.path, os.O_RDWR, 0); err == nil {
		b, _ := io.ReadAll(io.LimitReader(f, 256))
		if v := strings.TrimSpace(string(b)); v != "" && lockFile(f) {
			id.me.Instance, id.locked = v, f
			return id
		}
		f.Close() // empty, or another live process here has this state
	}
	var r [16]byte
	_, _ = rand.Read(r[:])
	id.me.Instance = hex.EncodeToString(r[:])
	return id
}

// same reports whether holder is provably an earlier run of this node that
// is no longer running: its state (instance id, locked by this process)
// and its host.
func (id *nodeIdent) same(h jsstore.NodeClaim) bool {
	return id.locked != nil && h.Instance == id.me.Instance && h.Host == id.me.Host
}

// keep writes and locks a new instance id file (the name is held now).
func (id *nodeIdent) keep(log *slog.Logger) {
	if id.locked != nil || id.path == "" {
		return
	}
	err := os.MkdirAll(filepath.Dir(id.path), 0o700)
	var f *os.File
	if err == nil {
		f, err = os.OpenFile(id.path, os.O_RDWR|os.O_CREATE, 0o600)
	}
	if err == nil {
		if !lockFile(f) {
			f.Close()
			log.Warn("this node's instance id file is locked by another running process (do two nodes share a store directory?)", "path", id.path)
			return
		}
		if err = f.Truncate(0); err == nil {
			_, err = f.WriteAt([]byte(id.me.Instance+"\n"), 0)
		}
		if err == nil {
			id.locked = f
			return
		}
		f.Close()
	}
	log.Warn("could not keep this node's instance id (a restart after a crash waits for its old claim to expire)", "path", id.path, "err", err)
}

func (id *nodeIdent) close() {
	if id != nil && id.locked != nil {
		id.locked.Close()
		id.locked = nil
	}
}

func (id *nodeIdent) opts(log *slog.Logger) jsstore.NodeClaimOptions {
	o := nodeClaimOpts
	o.Logger, o.Same = log, id.same
	return o
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
// until close (see nodeLost).
func (b *backend) claimNode(ctx context.Context, id *nodeIdent, log *slog.Logger) error {
	st, ok := b.store.(*jsstore.Store)
	if !ok {
		return nil
	}
	o := id.opts(log)
	lease, err := st.ClaimNode(ctx, id.me, o)
	if err != nil {
		return nodeInUse(err)
	}
	b.nodeLease = lease
	id.keep(log)
	log.Info("holding this node's name", "node", id.me.Node, "host", id.me.Host, "pid", id.me.PID, "refresh", o.Refresh, "ttl", o.TTL)
	return nil
}

// checkNodeFree runs before the embedded server starts: an embedded server
// takes cluster.node as its NATS server name, and JetStream identifies
// RAFT peers by a hash of that name, so a second server with a live node's
// name must not join at all. Through the other nodes' route ports it finds
// their client ports, and reads the name's claim as a plain client,
// writing nothing. Only a live holder is an error: a cluster not reachable
// (yet) or without a quorum is left to the claim after the store opens.
func checkNodeFree(ctx context.Context, cfg *config.Config, id *nodeIdent, log *slog.Logger) error {
	if skipNodeCheck {
		return nil
	}
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
	copts := []nats.Option{nats.Name("hookrelay " + cfg.Cluster.Node + " (name check)"), nats.Timeout(2 * time.Second), nats.NoReconnect()}
	if e.Secret != "" {
		copts = append(copts, nats.Token(e.Secret))
	}
	nc, err := nats.Connect(strings.Join(urls, ","), copts...)
	if err != nil {
		log.Debug("node name check: no other node answered", "err", err)
		return nil
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return nil
	}
	o := id.opts(log)
	cctx, cancel := context.WithTimeout(ctx, o.TTL+o.Refresh+5*time.Second)
	defer cancel()
	err = jsstore.CheckNode(cctx, js, "", id.me, o)
	var inUse *jsstore.NodeInUseError
	if errors.As(err, &inUse) {
		return nodeInUse(err)
	}
	if err != nil {
		log.Debug("node name check before joining: no answer (checked again once the store opens)", "err", err)
	}
	return nil
}

// nodeLost waits until a node's name claim l ends and returns why, if
// another process took the name over (nil after a release).
func nodeLost(l *jsstore.NodeLease, node string) error {
	<-l.Done()
	if err := l.Err(); err != nil {
		return fmt.Errorf("cluster.node %q: %w", node, err)
	}
	return nil
}
