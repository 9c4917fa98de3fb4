package natsnode

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
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
// before; RestartJetStream brings it back, with what was stored, to a
// client that stayed connected.
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
	if restarted, err := n.RestartJetStream(context.Background()); restarted || err != nil {
		t.Fatalf("RestartJetStream with JetStream on: %v %v, want nothing done", restarted, err)
	}
	nc, err := nats.Connect(n.ClientURL(), nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var st jetstream.Stream
	for st == nil {
		if st, err = js.CreateStream(ctx, jetstream.StreamConfig{Name: "T", Subjects: []string{"t.>"}}); err != nil && ctx.Err() != nil {
			t.Fatalf("create stream: %v", err)
		}
	}
	if _, err := js.Publish(ctx, "t.1", []byte("one")); err != nil {
		t.Fatal(err)
	}
	n.srv.ShutdownJetStream() // what nats-server's out-of-space handler does
	err = n.JetStreamErr()
	if err == nil || !strings.Contains(err.Error(), "turned JetStream off") || !strings.Contains(err.Error(), dir) || !strings.Contains(err.Error(), "once there is room") {
		t.Fatalf("JetStreamErr after JetStream was shut down: %v", err)
	}

	restarted, err := n.RestartJetStream(ctx)
	if !restarted || err != nil {
		t.Fatalf("RestartJetStream: %v %v", restarted, err)
	}
	if err := n.JetStreamErr(); err != nil {
		t.Fatalf("JetStreamErr after the restart: %v", err)
	}
	for {
		m, err := st.GetMsg(ctx, 1)
		if err == nil {
			if string(m.Data) != "one" {
				t.Fatalf("message after the restart: %q", m.Data)
			}
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("the stream after the restart: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
