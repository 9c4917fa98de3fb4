// Package natsnode runs the NATS server with JetStream that a cluster-mode
// hookrelay node embeds: its client port, its cluster routes to the other
// nodes, its store directory, and a lame-duck shutdown that hands its RAFT
// leaderships over before it stops (a rolling restart loses nothing).
package natsnode

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// Options configure the embedded server.
type Options struct {
	Cluster       string   // NATS cluster name
	Node          string   // server name: unique in the cluster
	Listen        string   // client host:port
	ClusterListen string   // route host:port
	Routes        []string // the other nodes' nats://host:port route URLs
	StoreDir      string   // JetStream's files
	// Secret, when set, is required of every client (as its token) and of
	// every route (as the password of routeUser), and sent on the routes
	// this server opens: only the cluster's own nodes get in.
	Secret string
	Logger *slog.Logger
	// LameDuck bounds the lame-duck phase of Shutdown (default 5s).
	LameDuck time.Duration
	// MaxStore, if positive, is JetStream's limit on what it stores in
	// StoreDir; 0 leaves nats-server's own: 75% of the space free when it
	// starts, plus what it already stores.
	MaxStore int64
}

// routeUser is the user name routes authenticate with (Options.Secret is
// the password).
const routeUser = "hookrelay"

// Node is a running embedded NATS server.
type Node struct {
	srv  *server.Server
	opts Options
	dup  chan string
}

// DuplicateName gets the host of another server that has this server's
// name, when its route is refused for that ("Remote server has a duplicate
// name"): another node runs with this cluster.node. Only the first is kept
// until it is read.
func (n *Node) DuplicateName() <-chan string { return n.dup }

// Start starts the server and returns once it accepts client connections.
// JetStream may still be waiting for a quorum of the cluster: callers wait
// for their streams (and /readyz stays 503) until it has one.
func Start(ctx context.Context, o Options) (*Node, error) {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.LameDuck <= 0 {
		o.LameDuck = 5 * time.Second
	}
	host, port, err := splitHostPort(o.Listen)
	if err != nil {
		return nil, fmt.Errorf("cluster.nats.embedded.listen: %w", err)
	}
	chost, cport, err := splitHostPort(o.ClusterListen)
	if err != nil {
		return nil, fmt.Errorf("cluster.nats.embedded.cluster_listen: %w", err)
	}
	var routes []*url.URL
	for _, r := range o.Routes {
		u, err := url.Parse(r)
		if err != nil {
			return nil, fmt.Errorf("cluster.nats.embedded.routes: %w", err)
		}
		if o.Secret != "" {
			u.User = url.UserPassword(routeUser, o.Secret)
		}
		routes = append(routes, u)
	}
	sopts := &server.Options{
		ServerName: o.Node,
		Host:       host, Port: port,
		Cluster: server.ClusterOpts{Name: o.Cluster, Host: chost, Port: cport},
		Routes:  routes,
		// JetStream needs the cluster name on single-node setups too.
		JetStream: true, StoreDir: o.StoreDir, JetStreamMaxStore: o.MaxStore,
		NoSigs: true, // the process owns its signals
		// Nothing but the client and route ports: no HTTP monitoring.
		LameDuckDuration:    o.LameDuck,
		LameDuckGracePeriod: o.LameDuck / 5,
		MaxPayload:          8 << 20,
	}
	if o.Secret != "" {
		sopts.Authorization = o.Secret
		sopts.Cluster.Username, sopts.Cluster.Password = routeUser, o.Secret
	}
	if len(routes) == 0 {
		// A single node with no routes: no route listener is needed.
		sopts.Cluster = server.ClusterOpts{}
	}
	srv, err := server.NewServer(sopts)
	if err != nil {
		return nil, fmt.Errorf("embedded nats: %w", err)
	}
	dup := make(chan string, 1)
	srv.SetLoggerV2(slogLogger{l: o.Logger, dup: dup}, false, false, false)
	go srv.Start()
	deadline := 30 * time.Second
	if d, ok := ctx.Deadline(); ok {
		deadline = time.Until(d)
	}
	if !srv.ReadyForConnections(deadline) {
		srv.Shutdown()
		return nil, errors.New("embedded nats: not accepting connections (is cluster.nats.embedded.listen or cluster_listen in use?)")
	}
	maxStore := int64(-1) // JetStream not up yet
	if c := srv.JetStreamConfig(); c != nil {
		maxStore = c.MaxStore
	}
	o.Logger.Info("embedded nats listening", "client", srv.ClientURL(), "node", o.Node, "routes", len(routes), "max_store_bytes", maxStore)
	return &Node{srv: srv, opts: o, dup: dup}, nil
}

// ClientURL is the URL clients of this process connect to.
func (n *Node) ClientURL() string { return n.srv.ClientURL() }

// JetStreamErr is non-nil once the embedded server has turned its
// JetStream off while running: nats-server does that when a write to
// store_dir fails for lack of space, and it stays off until the server
// restarts (the other nodes carry on with their replicas).
func (n *Node) JetStreamErr() error {
	if n.srv.JetStreamEnabled() || !n.srv.Running() {
		return nil
	}
	return fmt.Errorf("the embedded NATS server has turned JetStream off (nats-server does so when store_dir's disk is full): free space under %s and restart this node", n.opts.StoreDir)
}

// Shutdown enters lame-duck mode (client listener closed, RAFT leaders
// transferred to other nodes, clients drained) and stops the server.
func (n *Node) Shutdown(ctx context.Context) {
	done := make(chan struct{})
	go func() {
		n.srv.LameDuckShutdown()
		close(done)
	}()
	select {
	case <-done:
	case <-ctx.Done():
		n.srv.Shutdown()
		<-done
	}
	n.srv.WaitForShutdown()
}

// Status is what `hookrelay cluster status` shows of the embedded server.
type Status struct {
	Node       string   `json:"node"`
	Cluster    string   `json:"cluster"`
	MetaLeader string   `json:"meta_leader"`
	Peers      []Peer   `json:"peers"`
	Streams    int      `json:"streams"`
	Consumers  int      `json:"consumers"`
	Routes     []string `json:"routes"`
}

// Peer is one known member of the JetStream meta group.
type Peer struct {
	Name    string  `json:"name"`
	Current bool    `json:"current"`
	Offline bool    `json:"offline,omitempty"`
	Active  float64 `json:"active_seconds_ago"`
	Lag     uint64  `json:"lag,omitempty"`
}

// Status reports the meta group and JetStream figures as this server sees
// them.
func (n *Node) Status() (Status, error) {
	st := Status{Node: n.opts.Node, Cluster: n.opts.Cluster, Routes: n.opts.Routes}
	info, err := n.srv.Jsz(&server.JSzOptions{})
	if err != nil {
		return st, fmt.Errorf("jetstream status: %w", err)
	}
	st.Streams, st.Consumers = info.Streams, info.Consumers
	if m := info.Meta; m != nil {
		// Replicas are the other peers as this server sees them; this
		// server is current for itself.
		st.MetaLeader = m.Leader
		st.Peers = append(st.Peers, Peer{Name: n.opts.Node, Current: true})
		for _, p := range m.Replicas {
			if p.Name != n.opts.Node {
				st.Peers = append(st.Peers, Peer{Name: p.Name, Current: p.Current, Offline: p.Offline, Active: p.Active.Seconds(), Lag: p.Lag})
			}
		}
		slices.SortFunc(st.Peers, func(a, b Peer) int { return strings.Compare(a.Name, b.Name) })
	} else {
		st.MetaLeader = n.opts.Node // a single server is its own leader
		st.Peers = []Peer{{Name: n.opts.Node, Current: true}}
	}
	return st, nil
}

func splitHostPort(addr string) (string, int, error) {
	h, p, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, err
	}
	port, err := strconv.Atoi(p)
	if err != nil {
		return "", 0, fmt.Errorf("bad port %q", p)
	}
	return h, port, nil
}

// slogLogger adapts slog to the NATS server's logger, one level down: the
// server is chatty while a cluster forms (routes refused until the other
// nodes are up, "waiting for a meta leader"), which is normal there.
type slogLogger struct {
	l   *slog.Logger
	dup chan string // see Node.DuplicateName
}

func (s slogLogger) Noticef(f string, a ...any) { s.l.Debug(fmt.Sprintf(f, a...), "component", "nats") }
func (s slogLogger) Warnf(f string, a ...any)   { s.l.Info(fmt.Sprintf(f, a...), "component", "nats") }
func (s slogLogger) Fatalf(f string, a ...any)  { s.l.Error(fmt.Sprintf(f, a...), "component", "nats") }
func (s slogLogger) Errorf(f string, a ...any) {
	msg := fmt.Sprintf(f, a...)
	s.l.Warn(msg, "component", "nats")
	// nats-server 2.15 logs, for a route from a server with this server's
	// name, "<ip:port> - rid:<n> - Remote server has a duplicate name: ..."
	// (route.go, closed with DuplicateServerName). Pinned by
	// TestDuplicateName.
	if before, _, ok := strings.Cut(msg, " - Remote server has a duplicate name"); ok {
		addr, _, _ := strings.Cut(before, " - rid:")
		host, _, err := net.SplitHostPort(addr)
		if err != nil {
			host = addr
		}
		select {
		case s.dup <- host:
		default:
		}
	}
}
func (s slogLogger) Debugf(f string, a ...any) {}
func (s slogLogger) Tracef(f string, a ...any) {}
