package natsnode_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/hookrelay/hookrelay/relay/natsnode"
)

// TestDuplicateName: a server started with the name of a running one, and
// routes to the cluster, hears of it (the running one dials it, learning
// its route from the others, and is refused for its name); ProbeRoutes
// reads a route port's name and client URL without joining.
func TestDuplicateName(t *testing.T) {
	ctx := context.Background()
	start := func(name string, route int, routes ...int) *natsnode.Node {
		t.Helper()
		var rs []string
		for _, r := range routes {
			rs = append(rs, fmt.Sprintf("nats://127.0.0.1:%d", r))
		}
		n, err := natsnode.Start(ctx, natsnode.Options{
			Cluster: "test", Node: name, Listen: fmt.Sprintf("127.0.0.1:%d", freePort(t)),
			ClusterListen: fmt.Sprintf("127.0.0.1:%d", route), Routes: rs, StoreDir: t.TempDir(), LameDuck: time.Second,
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			defer cancel()
			n.Shutdown(sctx)
		})
		return n
	}
	ra, rb, rdup := freePort(t), freePort(t), freePort(t)
	a := start("a", ra, rb)
	b := start("b", rb, ra)

	peers := natsnode.ProbeRoutes(ctx, []string{fmt.Sprintf("nats://127.0.0.1:%d", rb), "nats://127.0.0.1:1"}, 2*time.Second)
	if len(peers) != 1 || peers[0].Name != "b" || len(peers[0].ClientURLs) == 0 ||
		!strings.HasSuffix(b.ClientURL(), peers[0].ClientURLs[0]) {
		t.Errorf("ProbeRoutes = %+v, want b at %s", peers, b.ClientURL())
	}

	dup := start("a", rdup, rb)
	select {
	case host := <-dup.DuplicateName():
		if host != "127.0.0.1" {
			t.Errorf("duplicate at %q, want 127.0.0.1", host)
		}
	case <-time.After(30 * time.Second): // a failure guard, not a timing
		t.Fatal("the second server named a never heard of the first")
	}
	_ = a
}
