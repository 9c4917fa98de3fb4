package natsnode_test

import (
	"context"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/hookrelay/hookrelay/relay/natsnode"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// TestThreeNodes: three embedded servers routed to each other form one
// JetStream cluster (a meta leader, three peers), take a replicated
// stream, and keep it writable when one leaves by lame-duck shutdown.
func TestThreeNodes(t *testing.T) {
	ctx := context.Background()
	nodes := startNodes(t, "", "", "")
	deadline := time.Now().Add(60 * time.Second) // a loaded machine (CI) may take long
	for {
		st, err := nodes[0].Status()
		if err == nil && st.MetaLeader != "" && len(st.Peers) == 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no 3-peer meta group: %+v %v", st, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	nc, err := nats.Connect(nodes[1].ClientURL() + "," + nodes[2].ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	sctx, cancel := context.WithTimeout(ctx, 40*time.Second)
	defer cancel()
	createStream(t, sctx, js, jetstream.StreamConfig{Name: "T", Subjects: []string{"t.>"}, Replicas: 3})
	if _, err := js.Publish(sctx, "t.1", []byte("one")); err != nil {
		t.Fatal(err)
	}
	// Node 0 leaves in lame duck; the stream stays writable with 2 of 3.
	lctx, lcancel := context.WithTimeout(ctx, 10*time.Second)
	nodes[0].Shutdown(lctx)
	lcancel()
	for {
		if _, err := js.Publish(sctx, "t.2", []byte("two")); err == nil {
			break
		} else if sctx.Err() != nil {
			t.Fatalf("stream not writable after one node left: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	s, err := js.Stream(sctx, "T")
	if err != nil {
		t.Fatal(err)
	}
	if info, err := s.Info(sctx); err != nil || info.State.Msgs != 2 {
		t.Fatalf("stream state = %+v, %v; want 2 messages", info, err)
	}
}

// createStream creates a stream, asking again (each try bounded) until
// ctx ends: a meta group that has just formed may drop the first requests
// (a leader still catching up).
func createStream(t *testing.T, ctx context.Context, js jetstream.JetStream, cfg jetstream.StreamConfig) {
	t.Helper()
	for {
		tctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		_, err := js.CreateStream(tctx, cfg)
		cancel()
		if err == nil {
			return
		}
		if ctx.Err() != nil {
			t.Fatalf("create stream %s (replicas %d): %v", cfg.Name, cfg.Replicas, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// startNodes starts one embedded server per secret (n0, n1, ...), routed
// to each other on loopback, and shuts them down when the test ends.
func startNodes(t *testing.T, secrets ...string) []*natsnode.Node {
	t.Helper()
	n := len(secrets)
	client, route := make([]int, n), make([]int, n)
	for i := range n {
		client[i], route[i] = freePort(t), freePort(t)
	}
	nodes := make([]*natsnode.Node, n)
	for i, secret := range secrets {
		var routes []string
		for j := range n {
			if j != i {
				routes = append(routes, fmt.Sprintf("nats://127.0.0.1:%d", route[j]))
			}
		}
		node, err := natsnode.Start(context.Background(), natsnode.Options{
			Cluster: "test", Node: fmt.Sprintf("n%d", i), Secret: secret,
			Listen: fmt.Sprintf("127.0.0.1:%d", client[i]), ClusterListen: fmt.Sprintf("127.0.0.1:%d", route[i]),
			Routes: routes, StoreDir: t.TempDir(), LameDuck: 2 * time.Second,
		})
		if err != nil {
			t.Fatal(err)
		}
		nodes[i] = node
		t.Cleanup(func() {
			sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			node.Shutdown(sctx)
		})
	}
	return nodes
}
