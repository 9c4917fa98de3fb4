package relay

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/hookrelay/hookrelay/relay/config"
	"github.com/hookrelay/hookrelay/relay/natsnode"
)

// TestNodeIdent: an earlier run's claim is this node's own only with the
// same instance id, from the same host, while this process holds the id
// file's lock; nothing is written before the name is held.
func TestNodeIdent(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "nats")
	cfg := &config.Config{Cluster: &config.Cluster{Node: "a", NATS: config.ClusterNATS{Embedded: &config.EmbeddedNATS{StoreDir: dir}}}}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))

	first := newNodeIdent(cfg)
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Fatalf("the store dir exists before the name is held: %v", err)
	}
	if first.same(first.me) {
		t.Error("a fresh instance id counts as proof before it is kept (locked)")
	}
	first.keep(log) // the name is held
	killed := first.me
	if !first.same(killed) {
		t.Error("own claim not recognized while holding the lock")
	}
	// A second process on this state while the first runs: not the same.
	second := newNodeIdent(cfg)
	if second.same(killed) || second.me.Instance == killed.Instance {
		t.Errorf("a second live process on the same store dir counts as the first: %+v", second.me)
	}
	second.keep(log) // cannot take the lock: writes nothing
	second.close()

	first.close() // the first run is gone
	restarted := newNodeIdent(cfg)
	defer restarted.close()
	if restarted.me.Instance != killed.Instance || !restarted.same(killed) {
		t.Errorf("restart: instance %q, want %q, same %v", restarted.me.Instance, killed.Instance, restarted.same(killed))
	}
	other := killed
	other.Host = "elsewhere"
	if restarted.same(other) {
		t.Error("a claim from another host counts as this node's own")
	}
}

// TestDuplicateServerName: an embedded node whose check before joining
// found nothing (the other nodes' client ports out of reach) and whose
// NATS server carries a running node's name fails at once with that
// error, instead of waiting out quorumWait.
func TestDuplicateServerName(t *testing.T) {
	if testing.Short() {
		t.Skip("embedded servers")
	}
	ctx := context.Background()
	port := func() int {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		return ln.Addr().(*net.TCPAddr).Port
	}
	ra, rb := port(), port()
	for _, n := range []struct {
		name         string
		route, other int
	}{{"a", ra, rb}, {"b", rb, ra}} {
		node, err := natsnode.Start(ctx, natsnode.Options{Cluster: "dup", Node: n.name,
			Listen: fmt.Sprintf("127.0.0.1:%d", port()), ClusterListen: fmt.Sprintf("127.0.0.1:%d", n.route),
			Routes: []string{fmt.Sprintf("nats://127.0.0.1:%d", n.other)}, StoreDir: t.TempDir(), LameDuck: time.Second})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { node.Shutdown(ctx) })
	}
	skipNodeCheck = true
	defer func() { skipNodeCheck = false }()
	cfg := &config.Config{Storage: config.Storage{Path: t.TempDir()}, Cluster: &config.Cluster{Name: "dup", Node: "a", Replicas: 1,
		NATS: config.ClusterNATS{Embedded: &config.EmbeddedNATS{
			Listen: fmt.Sprintf("127.0.0.1:%d", port()), ClusterListen: fmt.Sprintf("127.0.0.1:%d", port()),
			Routes: []string{fmt.Sprintf("nats://127.0.0.1:%d", rb)}, StoreDir: t.TempDir()}}}}
	b, err := openBackend(ctx, cfg, slog.New(slog.DiscardHandler), false, false)
	if err == nil {
		b.close(ctx)
		t.Fatal("a second node a started")
	}
	if want := `cluster.node "a" is already used by a running node (the NATS server at 127.0.0.1 has that name); give each node its own name`; err.Error() != want {
		t.Fatalf("error %q, want %q", err, want)
	}
}
