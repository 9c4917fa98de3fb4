package natsnode

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"
)

func loopbackAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// TestJetStreamErr: a node reports when its server has turned JetStream
// off (as nats-server does on a full disk), naming store_dir, and not
// before.
func TestJetStreamErr(t *testing.T) {
	dir := t.TempDir()
	n, err := Start(context.Background(), Options{Cluster: "test", Node: "solo",
		Listen: loopbackAddr(t), ClusterListen: loopbackAddr(t), StoreDir: dir, LameDuck: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		n.Shutdown(ctx)
	})
	if err := n.JetStreamErr(); err != nil {
		t.Fatalf("JetStreamErr of a fresh node: %v", err)
	}
	n.srv.ShutdownJetStream() // what nats-server's out-of-space handler does
	err = n.JetStreamErr()
	if err == nil || !strings.Contains(err.Error(), "turned JetStream off") || !strings.Contains(err.Error(), dir) {
		t.Fatalf("JetStreamErr after JetStream was shut down: %v", err)
	}
}

// TestMaxStore: Options.MaxStore is JetStream's storage limit; without it
// nats-server picks its own (from the free space).
func TestMaxStore(t *testing.T) {
	for _, want := range []int64{123 << 20, 0} {
		n, err := Start(context.Background(), Options{Cluster: "test", Node: "solo",
			Listen: loopbackAddr(t), ClusterListen: loopbackAddr(t), StoreDir: t.TempDir(), LameDuck: time.Second, MaxStore: want})
		if err != nil {
			t.Fatal(err)
		}
		got := n.srv.JetStreamConfig().MaxStore
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		n.Shutdown(ctx)
		cancel()
		if want > 0 && got != want || want == 0 && got <= 0 {
			t.Errorf("MaxStore %d: JetStream's limit is %d", want, got)
		}
	}
}
