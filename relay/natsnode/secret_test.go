package natsnode_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// TestSecret: with Options.Secret the nodes that share it form the
// cluster; a client without it is refused, and a server with another
// secret never joins (its routes are refused both ways).
func TestSecret(t *testing.T) {
	ctx := context.Background()
	const right, wrong = "cluster-secret-0123456789", "another-secret-0123456789"
	nodes := startNodes(t, right, right, wrong)

	if nc, err := nats.Connect(nodes[0].ClientURL(), nats.Timeout(2*time.Second), nats.NoReconnect()); err == nil {
		nc.Close()
		t.Fatal("a client without the secret was let in")
	} else if !strings.Contains(strings.ToLower(err.Error()), "authorization") {
		t.Fatalf("client without the secret: %v, want an authorization error", err)
	}
	if nc, err := nats.Connect(nodes[0].ClientURL(), nats.Token(wrong), nats.Timeout(2*time.Second), nats.NoReconnect()); err == nil {
		nc.Close()
		t.Fatal("a client with another node's secret was let in")
	}

	nc, err := nats.Connect(nodes[1].ClientURL(), nats.Token(right))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	// Two of three configured peers are a quorum: an R2 stream on n0 and
	// n1 proves their routes work with the secret.
	sctx, cancel := context.WithTimeout(ctx, 40*time.Second)
	defer cancel()
	createStream(t, sctx, js, jetstream.StreamConfig{Name: "S", Subjects: []string{"s.>"}, Replicas: 2})
	st, err := nodes[0].Status()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range st.Peers {
		if p.Name == "n2" {
			t.Fatalf("n2, with another secret, is a peer of n0: %+v", st.Peers)
		}
	}
	if st2, err := nodes[2].Status(); err == nil && st2.MetaLeader != "" {
		t.Fatalf("n2, alone with another secret, has meta leader %q", st2.MetaLeader)
	}
}
