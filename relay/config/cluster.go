package config

import (
	"fmt"
	"net"
	"net/url"
)

// Cluster is cluster mode: the dedupe claims, events, deliveries and
// certificates live in NATS JetStream, replicated, and several identically
// configured nodes stand behind one load balancer. Nil: one node on Badger.
type Cluster struct {
	// Name is the NATS cluster name (default hookrelay).
	Name string `yaml:"name"`
	// Node is this node's unique name (required).
	Node string `yaml:"node"`
	// Replicas is how many copies JetStream keeps of each stream and
	// bucket, 1 to 5 (default 3).
	Replicas int         `yaml:"replicas"`
	NATS     ClusterNATS `yaml:"nats"`
}

// ClusterNATS says where JetStream is: a NATS server inside this process
// (Embedded), or an existing NATS cluster (URLs); exactly one of them.
type ClusterNATS struct {
	Embedded *EmbeddedNATS `yaml:"embedded"`
	URLs     []string      `yaml:"urls"`
	// Credentials is a NATS credentials file, with URLs.
	Credentials string `yaml:"credentials"`
}

// EmbeddedNATS is the NATS server with JetStream this process runs.
type EmbeddedNATS struct {
	Listen        string   `yaml:"listen"`         // client port, default 127.0.0.1:4222
	ClusterListen string   `yaml:"cluster_listen"` // route port, default 127.0.0.1:6222
	Routes        []string `yaml:"routes"`         // the other nodes' route URLs
	StoreDir      string   `yaml:"store_dir"`      // default <storage.path>/nats
	// Secret, when set (the same on every node), is required of every
	// client and route of the embedded server: without it, anyone who
	// reaches listen or cluster_listen reads and writes everything.
	Secret string `yaml:"secret"`
}

// minNATSSecret is the shortest cluster.nats.embedded.secret taken.
const minNATSSecret = 16

// clusterDefaults fills the cluster section's omitted keys.
func (c *Config) clusterDefaults() {
	cl := c.Cluster
	if cl == nil {
		return
	}
	if cl.Name == "" {
		cl.Name = "hookrelay"
	}
	if cl.Replicas == 0 {
		cl.Replicas = 3
	}
	if e := cl.NATS.Embedded; e != nil {
		if e.Listen == "" {
			e.Listen = "127.0.0.1:4222"
		}
		if e.ClusterListen == "" {
			e.ClusterListen = "127.0.0.1:6222"
		}
		if e.StoreDir == "" && c.Storage.Path != "" {
			e.StoreDir = c.Storage.Path + "/nats"
		}
	}
}

func (c *Config) validateCluster() error {
	cl := c.Cluster
	if cl == nil {
		return nil
	}
	if cl.Node == "" {
		return verr("cluster.node", "required: a name unique among the cluster's nodes")
	}
	if !nameRE.MatchString(cl.Node) {
		return verr("cluster.node", "node names may use letters, digits, '_' and '-' only")
	}
	if !nameRE.MatchString(cl.Name) {
		return verr("cluster.name", "cluster names may use letters, digits, '_' and '-' only")
	}
	if cl.Replicas < 1 || cl.Replicas > 5 {
		return verr("cluster.replicas", "must be between 1 and 5, not %d", cl.Replicas)
	}
	n := cl.NATS
	switch {
	case n.Embedded != nil && len(n.URLs) > 0:
		return verr("cluster.nats.urls", "set either cluster.nats.embedded or cluster.nats.urls, not both")
	case n.Embedded == nil && len(n.URLs) == 0:
		return verr("cluster.nats", "set cluster.nats.embedded (a NATS server in this process) or cluster.nats.urls (an existing NATS cluster)")
	case n.Embedded != nil && n.Credentials != "":
		return verr("cluster.nats.credentials", "goes with cluster.nats.urls, not embedded")
	}
	for i, u := range n.URLs {
		if p, err := url.Parse(u); err != nil || (p.Scheme != "nats" && p.Scheme != "tls") || p.Host == "" {
			return verr(fmt.Sprintf("cluster.nats.urls[%d]", i), "must be a nats:// or tls:// URL")
		}
	}
	if e := n.Embedded; e != nil {
		for key, addr := range map[string]string{"cluster.nats.embedded.listen": e.Listen, "cluster.nats.embedded.cluster_listen": e.ClusterListen} {
			if _, _, err := net.SplitHostPort(addr); err != nil {
				return verr(key, "must be host:port, not %q", addr)
			}
		}
		if e.Listen == e.ClusterListen {
			return verr("cluster.nats.embedded.cluster_listen", "must differ from cluster.nats.embedded.listen")
		}
		for i, r := range e.Routes {
			if p, err := url.Parse(r); err != nil || p.Scheme != "nats" || p.Host == "" {
				return verr(fmt.Sprintf("cluster.nats.embedded.routes[%d]", i), "must be a nats://host:port route URL")
			}
		}
		if e.StoreDir == "" {
			return verr("cluster.nats.embedded.store_dir", "required")
		}
		if e.Secret != "" && len(e.Secret) < minNATSSecret {
			return verr("cluster.nats.embedded.secret", "must be at least %d characters (generate one: openssl rand -hex 32)", minNATSSecret)
		}
		if cl.Replicas > len(e.Routes)+1 {
			return verr("cluster.replicas", "%d replicas need at least %d nodes, but this node has %d routes", cl.Replicas, cl.Replicas, len(e.Routes))
		}
	}
	return nil
}
