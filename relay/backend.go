package relay

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"math"
	"os"
	"strings"
	"time"

	"github.com/hookrelay/hookrelay/relay/admin"
	"github.com/hookrelay/hookrelay/relay/config"
	"github.com/hookrelay/hookrelay/relay/httpx"
	"github.com/hookrelay/hookrelay/relay/jsstore"
	"github.com/hookrelay/hookrelay/relay/natsnode"
	"github.com/hookrelay/hookrelay/relay/storage"
	"github.com/hookrelay/hookrelay/relay/store"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// backend is where a server keeps its data: Badger on one node; in cluster
// mode, NATS JetStream (an embedded NATS server, or an existing NATS
// cluster).
type backend struct {
	store storage.Store
	// Cluster mode only:
	node *natsnode.Node // the embedded NATS server, if any
	nc   *nats.Conn
	js   jetstream.JetStream
	cl   *config.Cluster
	// A serving node's cluster.node (nodeclaim.go): who it is, and its
	// claim of the name while it serves.
	ident     *nodeIdent
	nodeLease *jsstore.NodeLease
	space     *store.SpaceWatch // the embedded server's store_dir, if any
}

// quorumWait bounds how long a cluster node waits at start for JetStream
// (the other nodes may be starting too).
const quorumWait = 2 * time.Minute

// openBackend opens cfg's store. mustExist is the CLI's: never create a
// Badger store, never start an embedded NATS server. readOnlyWhenLow is
// the readers' (events list/show): a Badger store on a disk too full to
// open it for writing (storage.min_free_bytes) is opened read-only.
func openBackend(ctx context.Context, cfg *config.Config, log *slog.Logger, mustExist, readOnlyWhenLow bool) (*backend, error) {
	if cfg.Cluster == nil {
		st, err := store.Open(ctx, store.Options{
			Path: cfg.Storage.Path, Sync: cfg.Storage.Sync, Retention: cfg.Storage.Retention.D(),
			DedupeWindow: cfg.Dedupe.Window.D(), CacheSize: cfg.Dedupe.CacheSize, Logger: log, MustExist: mustExist,
			MinFreeBytes: uint64(cfg.Storage.MinFreeBytes), ReadOnlyWhenLow: readOnlyWhenLow,
		})
		var pe *fs.PathError
		if errors.As(err, &pe) {
			// The directory cannot be made or opened: name the key.
			return nil, fmt.Errorf("storage.path %s: %w", cfg.Storage.Path, err)
		}
		if err != nil {
			return nil, err
		}
		return &backend{store: st}, nil
	}
	cl := cfg.Cluster
	b := &backend{cl: cl}
	if !mustExist { // a server, not a CLI command: it holds cluster.node
		b.ident = newNodeIdent(cfg)
	}
	var urls []string
	var opts []nats.Option
	switch e := cl.NATS.Embedded; {
	case e != nil && mustExist:
		return nil, errors.New("cluster mode with cluster.nats.embedded: this command needs a running node, and none answered at admin.listen")
	case e != nil:
		// A live node with this name: refuse before joining its cluster.
		if err := checkNodeFree(ctx, cfg, b.ident, log); err != nil {
			b.close(ctx)
			return nil, err
		}
		node, err := natsnode.Start(ctx, natsnode.Options{
			Cluster: cl.Name, Node: cl.Node, Listen: e.Listen, ClusterListen: e.ClusterListen,
			Routes: e.Routes, StoreDir: e.StoreDir, Secret: e.Secret, Logger: log,
			MaxStore: embeddedMaxStore(e.StoreDir, cfg.Storage.MinFreeBytes),
		})
		if err != nil {
			b.close(ctx)
			return nil, err
		}
		b.node = node
		b.space = store.WatchSpace(e.StoreDir, uint64(cfg.Storage.MinFreeBytes), nil, 0, log.With("key", "cluster.nats.embedded.store_dir"))
		urls = []string{node.ClientURL()}
		if e.Secret != "" {
			opts = append(opts, nats.Token(e.Secret))
		} else if !httpx.IsLoopback(e.Listen) || !httpx.IsLoopback(e.ClusterListen) {
			log.Warn("the embedded NATS server takes anyone who reaches its ports: set cluster.nats.embedded.secret",
				"listen", e.Listen, "cluster_listen", e.ClusterListen)
		}
	default:
		urls = cl.NATS.URLs
		if cl.NATS.Credentials != "" {
			opts = append(opts, nats.UserCredentials(cl.NATS.Credentials))
		}
	}
	opts = append(opts, nats.Name("hookrelay "+cl.Node), nats.MaxReconnects(-1), nats.ReconnectWait(250*time.Millisecond))
	nc, err := nats.Connect(strings.Join(urls, ","), opts...)
	if err != nil {
		b.close(ctx)
		return nil, fmt.Errorf("connect to NATS (cluster.nats): %w", err)
	}
	b.nc = nc
	if b.js, err = jetstream.New(nc); err != nil {
		b.close(ctx)
		return nil, fmt.Errorf("jetstream: %w", err)
	}
	// JetStream answers once a quorum of the cluster is up: wait for it.
	wctx, cancel := context.WithTimeout(ctx, quorumWait)
	defer cancel()
	var dupName <-chan string // a server with our name: no quorum will come
	if b.node != nil {
		dupName = b.node.DuplicateName()
	}
	for attempt := 0; ; attempt++ {
		// Each try gets its own deadline: a request sent before the meta
		// leader is elected gets no answer at all.
		actx, acancel := context.WithTimeout(wctx, 2*time.Second)
		jo := jsstore.Options{
			Conn: nc, Replicas: cl.Replicas, Retention: cfg.Storage.Retention.D(),
			DedupeWindow: cfg.Dedupe.Window.D(), Logger: log,
		}
		if b.space != nil {
			jo.Space = b.space
		}
		if b.node != nil {
			jo.Health = b.node.JetStreamErr
		}
		st, err := jsstore.Open(actx, jo)
		acancel()
		if err == nil {
			b.store = st
			if b.ident != nil {
				if err := b.claimNode(ctx, b.ident, log); err != nil {
					b.close(context.WithoutCancel(ctx))
					return nil, err
				}
			}
			return b, nil
		}
		if attempt%10 == 2 {
			log.Warn("waiting for JetStream (a quorum of the cluster's nodes must be up)", "node", cl.Node, "err", err)
		}
		select {
		case <-wctx.Done():
			b.close(context.WithoutCancel(ctx))
			if ctx.Err() != nil {
				return nil, fmt.Errorf("open JetStream store: %w", ctx.Err())
			}
			return nil, fmt.Errorf("open JetStream store: %w (no quorum within %s: are the other nodes up and cluster.nats.embedded.routes right?)", err, quorumWait)
		case host := <-dupName:
			b.close(context.WithoutCancel(ctx))
			return nil, fmt.Errorf("cluster.node %q is already used by a running node (the NATS server at %s has that name); give each node its own name", cl.Node, host)
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// embeddedMaxStore is the JetStream storage limit of the embedded server.
// With the free-space watch on (minFree > 0), the watch is what stops
// writes before the disk fills, cluster-wide and with 503s (jsstore's
// space.go), so JetStream's own limit is lifted to the filesystem's size:
// nats-server's default (75% of the space free when it starts, plus what
// it stores) is fixed at the start, ignores what else uses the disk, and
// when reached makes the stream lose its leader. Without the watch,
// nats-server's default stays.
func embeddedMaxStore(dir string, minFree int64) int64 {
	if minFree <= 0 {
		return 0
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return 0 // natsnode reports it
	}
	size, err := store.FilesystemSize(dir)
	if err != nil || size == 0 || size > math.MaxInt64 {
		return 0
	}
	return int64(size)
}

// close closes the store, the NATS connection and the embedded server (in
// lame-duck mode, handing its leaderships over).
func (b *backend) close(ctx context.Context) error {
	var err error
	if b.nodeLease != nil {
		b.nodeLease.Release() // the name is free at once: a restart need not wait
		b.nodeLease = nil
	}
	if b.store != nil {
		err = b.store.Close(ctx)
		b.store = nil
	}
	if b.nc != nil {
		b.nc.Close() // the store has finished with it
		b.nc = nil
	}
	if b.node != nil {
		b.node.Shutdown(ctx)
		b.node = nil
	}
	if b.space != nil {
		b.space.Stop()
		b.space = nil
	}
	b.ident.close() // unlocked last: the store dir is not in use any more
	b.ident = nil
	return err
}

// clusterStatus reports the cluster as this node sees it: the meta group
// (from the embedded server; not visible to a client of an existing NATS
// cluster), hookrelay's streams and the pending deliveries per target.
func (b *backend) clusterStatus(ctx context.Context, targets []string) (*admin.ClusterStatus, error) {
	if b.cl == nil {
		return nil, admin.ErrNotClustered
	}
	st := &admin.ClusterStatus{Node: b.cl.Node, Cluster: b.cl.Name, Nodes: []admin.ClusterNode{}, Streams: []admin.ClusterStream{}, Targets: []admin.TargetPending{}}
	if b.node != nil {
		ns, err := b.node.Status()
		if err != nil {
			return nil, err
		}
		st.MetaLeader = ns.MetaLeader
		for _, p := range ns.Peers {
			st.Nodes = append(st.Nodes, admin.ClusterNode{Name: p.Name, Current: p.Current, Offline: p.Offline, Active: p.Active, Lag: p.Lag})
		}
	}
	st.Holders = []admin.NodeHolder{}
	if js, ok := b.store.(*jsstore.Store); ok {
		claims, err := js.NodeClaims(ctx)
		if err != nil {
			return nil, err
		}
		for _, c := range claims {
			h := admin.NodeHolder{Node: c.Node, Host: c.Host, PID: c.PID, Since: c.Since}
			if c.LowSpace != nil {
				h.LowSpace = c.LowSpace.Error()
			}
			st.Holders = append(st.Holders, h)
		}
	}
	lister := b.js.ListStreams(ctx)
	for info := range lister.Info() {
		cs := admin.ClusterStream{Name: info.Config.Name, Replicas: info.Config.Replicas, Messages: info.State.Msgs,
			Bytes: info.State.Bytes, Consumers: info.State.Consumers}
		if c := info.Cluster; c != nil {
			cs.Leader = c.Leader
			for _, p := range c.Replicas {
				cs.Peers = append(cs.Peers, admin.ClusterNode{Name: p.Name, Current: p.Current, Offline: p.Offline, Active: p.Active.Seconds(), Lag: p.Lag})
			}
		}
		st.Streams = append(st.Streams, cs)
	}
	if err := lister.Err(); err != nil {
		return nil, fmt.Errorf("list streams: %w", err)
	}
	for _, t := range targets {
		n, err := b.store.QueueDepth(ctx, t)
		if err != nil {
			return nil, err
		}
		st.Targets = append(st.Targets, admin.TargetPending{Target: t, Pending: n})
	}
	return st, nil
}
