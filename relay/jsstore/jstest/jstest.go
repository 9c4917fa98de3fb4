// Package jstest starts in-process NATS servers with JetStream for tests:
// one server (Single) or a cluster of n servers routed on loopback
// (Cluster). Every server listens on 127.0.0.1 only, keeps its store in a
// t.TempDir and is shut down in t.Cleanup; startup waits are bounded.
package jstest

import (
	"context"
	"fmt"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// StartTimeout bounds how long a server (or a cluster's JetStream meta
// group) may take to come up.
const StartTimeout = 20 * time.Second

// Single starts one JetStream server and returns its client URLs.
func Single(t testing.TB) []string {
	t.Helper()
	c := start(t, 1)
	return c.URLs()
}

// Cluster is n in-process servers forming one JetStream cluster.
type Cluster struct {
	t       testing.TB
	mu      sync.Mutex
	name    string
	opts    []*server.Options
	servers []*server.Server // nil while killed
}

// NewCluster starts an n-server cluster (n >= 1; 3 for replicas 3) and
// waits until its JetStream has a meta leader.
func NewCluster(t testing.TB, n int) *Cluster {
	t.Helper()
	return start(t, n)
}

func start(t testing.TB, n int) *Cluster {
	t.Helper()
	// A port found free may be taken by another test process before the
	// server binds it: then start again on other ports.
	for try := 1; ; try++ {
		c, err := tryStart(t, n)
		if err == nil {
			return c
		}
		c.shutdown()
		if try == 3 {
			t.Fatalf("jstest: %v", err)
		}
		t.Logf("jstest: %v; starting again on other ports", err)
	}
}

func tryStart(t testing.TB, n int) (*Cluster, error) {
	t.Helper()
	c := &Cluster{t: t, name: fmt.Sprintf("jstest-%d", time.Now().UnixNano()%1e9)}
	clientPorts, routePorts := freePorts(t, n), freePorts(t, n)
	for i := range n {
		o := &server.Options{
			ServerName: fmt.Sprintf("n%d", i),
			Host:       "127.0.0.1",
			Port:       clientPorts[i],
			JetStream:  true,
			StoreDir:   t.TempDir(),
			NoLog:      true,
			NoSigs:     true,
			// Small limits: tests share a small machine.
			JetStreamMaxMemory: 256 << 20,
			JetStreamMaxStore:  1 << 30,
		}
		if n > 1 {
			o.Cluster = server.ClusterOpts{Name: c.name, Host: "127.0.0.1", Port: routePorts[i]}
			for j := range n {
				if j != i {
					o.Routes = append(o.Routes, server.RoutesFromStr(fmt.Sprintf("nats://127.0.0.1:%d", routePorts[j]))...)
				}
			}
		}
		c.opts = append(c.opts, o)
		c.servers = append(c.servers, nil)
	}
	t.Cleanup(c.shutdown)
	for i := range n {
		if err := c.startServer(i); err != nil {
			return c, err
		}
	}
	if err := c.WaitReady(StartTimeout); err != nil {
		return c, err
	}
	return c, nil
}

func (c *Cluster) startServer(i int) error {
	o := *c.opts[i]
	s, err := server.NewServer(&o)
	if err != nil {
		return fmt.Errorf("server %d: %w", i, err)
	}
	go s.Start()
	if !s.ReadyForConnections(readyWait) {
		s.Shutdown()
		return fmt.Errorf("server %d not ready for connections after %v", i, readyWait)
	}
	c.mu.Lock()
	c.servers[i] = s
	c.mu.Unlock()
	return nil
}

// WaitReady waits until JetStream answers through every running server.
func (c *Cluster) WaitReady(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for i, u := range c.allURLs() {
		if !c.running(i) {
			continue
		}
		nc, err := nats.Connect(u, nats.Timeout(2*time.Second))
		if err != nil {
			return fmt.Errorf("connect %s: %w", u, err)
		}
		js, _ := jetstream.New(nc)
		for {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			_, err = js.AccountInfo(ctx)
			cancel()
			if err == nil || time.Now().After(deadline) {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		nc.Close()
		if err != nil {
			return fmt.Errorf("JetStream through %s not ready after %v: %w", u, timeout, err)
		}
	}
	return nil
}

func (c *Cluster) running(i int) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.servers[i] != nil
}

func (c *Cluster) allURLs() []string {
	out := make([]string, len(c.opts))
	for i, o := range c.opts {
		out[i] = fmt.Sprintf("nats://127.0.0.1:%d", o.Port)
	}
	return out
}

// URLs returns every server's client URL (killed ones included: a client
// given them all reconnects to a live one).
func (c *Cluster) URLs() []string { return c.allURLs() }

// URL returns server i's client URL.
func (c *Cluster) URL(i int) string { return c.allURLs()[i] }

// Server returns server i (nil while killed).
func (c *Cluster) Server(i int) *server.Server {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.servers[i]
}

// Kill shuts server i down at once (no lame duck); its store stays.
func (c *Cluster) Kill(i int) {
	c.mu.Lock()
	s := c.servers[i]
	c.servers[i] = nil
	c.mu.Unlock()
	if s != nil {
		s.Shutdown()
		s.WaitForShutdown()
	}
}

// Restart starts killed server i again on the same ports and store.
func (c *Cluster) Restart(i int) {
	c.t.Helper()
	if c.running(i) {
		return
	}
	if err := c.startServer(i); err != nil {
		c.t.Fatalf("jstest: restart: %v", err)
	}
	if err := c.WaitReady(StartTimeout); err != nil {
		c.t.Fatalf("jstest: restart: %v", err)
	}
}

func (c *Cluster) shutdown() {
	for i := range c.servers {
		c.Kill(i)
	}
}

// freePorts returns n distinct free loopback TCP ports.
func freePorts(t testing.TB, n int) []int {
	t.Helper()
	var ls []net.Listener
	var ports []int
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatalf("jstest: free port: %v", err)
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	for _, l := range ls {
		l.Close()
	}
	return ports
}

// readyWait bounds how long a server may take to accept connections: it
// takes milliseconds, unless its port was taken meanwhile.
const readyWait = 5 * time.Second
