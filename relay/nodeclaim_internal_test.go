package relay

import (
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"github.com/hookrelay/hookrelay/relay/config"
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
