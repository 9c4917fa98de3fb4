package jsstore

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/hookrelay/hookrelay/relay/jsstore/jstest"
	"github.com/nats-io/nats.go/jetstream"
)

// TestNodeClaims: two processes (Stores on different servers of one
// cluster) claiming one node name.
func TestNodeClaims(t *testing.T) {
	if testing.Short() {
		t.Skip("3-server cluster")
	}
	c := jstest.NewCluster(t, 3)
	a := open(t, []string{c.URL(0)}, "hookrelay", 3)
	b := open(t, []string{c.URL(1)}, "hookrelay", 3)
	// Short timing; Wait is generous (only a failure waits it out).
	short := NodeClaimOptions{Refresh: 200 * time.Millisecond, TTL: time.Second, Wait: 30 * time.Second}
	claim := func(t *testing.T, st *Store, node, host string, o NodeClaimOptions) (*NodeLease, error) {
		t.Helper()
		return st.ClaimNode(bg, NodeClaim{Node: node, Host: host, PID: 1234, Since: time.Now()}, o)
	}
	mustClaim := func(t *testing.T, st *Store, node, host string, o NodeClaimOptions) *NodeLease {
		t.Helper()
		l, err := claim(t, st, node, host, o)
		if err != nil {
			t.Fatalf("claim %s from %s: %v", node, host, err)
		}
		t.Cleanup(l.Release)
		return l
	}

	t.Run("held name refused, holder named", func(t *testing.T) {
		mustClaim(t, a, "n1", "host-a", short)
		_, err := claim(t, b, "n1", "host-b", short)
		var inUse *NodeInUseError
		if !errors.As(err, &inUse) {
			t.Fatalf("second claim: %v, want a NodeInUseError", err)
		}
		if inUse.Holder.Host != "host-a" || inUse.Holder.PID != 1234 || !strings.Contains(err.Error(), `"n1" is already used by a running node (host host-a, pid 1234, since `) {
			t.Errorf("error %q, holder %+v", err, inUse.Holder)
		}
		// The read-only check (before an embedded server joins) agrees.
		js, _ := jetstream.New(b.nc)
		if err := CheckNode(bg, js, "", NodeClaim{Node: "n1"}, short); !errors.As(err, &inUse) {
			t.Errorf("CheckNode: %v, want a NodeInUseError", err)
		}
		if err := CheckNode(bg, js, "", NodeClaim{Node: "free"}, short); err != nil {
			t.Errorf("CheckNode of a free name: %v", err)
		}
	})

	t.Run("dead holder's claim expires", func(t *testing.T) {
		l := mustClaim(t, a, "n2", "host-a", short)
		l.abandon() // killed: no refresh, no release
		l2 := mustClaim(t, b, "n2", "host-b", short)
		if got := currentClaim(t, b, "n2"); got.Host != "host-b" {
			t.Errorf("claim now held by %+v", got)
		}
		l2.Release()
	})

	t.Run("own earlier instance replaced at once", func(t *testing.T) {
		slow := NodeClaimOptions{Refresh: time.Hour, TTL: time.Hour, Wait: time.Hour}
		l := mustClaim(t, a, "n3", "host-a", slow)
		l.abandon()
		same := slow
		same.Same = func(h NodeClaim) bool { return h.Host == "host-a" }
		// With a one-hour TTL, only the takeover can answer.
		mustClaim(t, b, "n3", "host-a", same)
	})

	t.Run("release frees the name at once", func(t *testing.T) {
		slow := NodeClaimOptions{Refresh: time.Hour, TTL: time.Hour, Wait: time.Hour}
		l := mustClaim(t, a, "n4", "host-a", slow)
		l.Release()
		mustClaim(t, b, "n4", "host-b", slow)
	})

	t.Run("holder finds its claim taken", func(t *testing.T) {
		l := mustClaim(t, a, "n5", "host-a", short)
		// Another process took the name (as after a partition longer than
		// the TTL): its claim replaces this one.
		data, _ := json.Marshal(NodeClaim{Node: "n5", Host: "host-b", PID: 99, Since: time.Now(), Token: "other"})
		if _, err := b.js.PublishMsg(bg, newMsg(nodeSubj(b.p, "n5"), data, time.Minute)); err != nil {
			t.Fatal(err)
		}
		select {
		case <-l.Lost():
			var inUse *NodeInUseError
			if err := l.Err(); !errors.As(err, &inUse) || inUse.Holder.Host != "host-b" || inUse.Holder.PID != 99 {
				t.Errorf("lost: %v", err)
			}
		case <-time.After(30 * time.Second): // a failure guard, not a timing
			t.Fatal("the holder never noticed")
		}
		<-l.Done()
		l.Release() // must not delete the new holder's claim
		if got := currentClaim(t, b, "n5"); got.Host != "host-b" {
			t.Errorf("after the old holder's release: %+v", got)
		}
	})
}

func currentClaim(t *testing.T, st *Store, node string) NodeClaim {
	t.Helper()
	c, seq, err := readClaim(bg, st.stream, nodeSubj(st.p, node))
	if err != nil || seq == 0 {
		t.Fatalf("read claim %s: seq %d %v", node, seq, err)
	}
	return c
}
