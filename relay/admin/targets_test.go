package admin_test

import (
	"context"
	"errors"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/hookrelay/hookrelay/relay/admin"
	"github.com/hookrelay/hookrelay/relay/delivery"
	"github.com/hookrelay/hookrelay/relay/storage"
)

// TestTargetsPauseResume goes through the HTTP API with the CLI's client,
// against a real store and delivery engine: list, pause (the deliveries
// wait, pending, and a replay to the paused target is held), resume (they
// are made), and an unknown name.
func TestTargetsPauseResume(t *testing.T) {
	env := newReplayEnv(t)
	env.svc.PauseChanged = env.engine.SetPaused
	srv := httptest.NewServer(admin.Handler(env.svc, nil, testToken))
	t.Cleanup(srv.Close)
	cl := admin.NewClient(strings.TrimPrefix(srv.URL, "http://"), testToken)
	ctx := context.Background()

	ts, err := cl.Targets(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(ts) != 2 || ts[0] != (admin.TargetInfo{Name: "archive", State: "ok"}) || ts[1] != (admin.TargetInfo{Name: "media", State: "ok"}) {
		t.Fatalf("Targets = %+v, want archive and media, ok, nothing pending", ts)
	}

	ti, err := cl.SetPaused(ctx, "archive", true)
	if err != nil {
		t.Fatal(err)
	}
	if ti.Name != "archive" || ti.State != admin.TargetPaused || ti.PausedAt.IsZero() {
		t.Fatalf("pause answered %+v, want archive paused with its time", ti)
	}
	ids := []string{env.ingest(t, "render.completed", `{"n":1}`, "archive"), env.ingest(t, "render.completed", `{"n":2}`, "archive")}
	ts, err = cl.Targets(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if ts[0].State != admin.TargetPaused || ts[0].Pending != 2 || !ts[0].PausedAt.Equal(ti.PausedAt) {
		t.Fatalf("archive while paused = %+v, want paused since %v with 2 pending", ts[0], ti.PausedAt)
	}

	// A replay to a paused target requeues and does not wait for it.
	rep, err := cl.Replay(ctx, admin.ReplayRequest{Filter: storage.Filter{IDs: ids[:1]}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Items) != 1 || rep.Items[0].Outcome != admin.ReplayHeld || rep.Pending != 1 || rep.Sent != 0 {
		t.Fatalf("replay to a paused target = %+v, want one held item counted pending", rep)
	}
	if n := len(env.archive.received()); n != 0 {
		t.Fatalf("paused archive received %d requests", n)
	}

	if ti, err = cl.SetPaused(ctx, "archive", false); err != nil || ti.State != admin.TargetOK || !ti.PausedAt.IsZero() {
		t.Fatalf("resume = %+v, %v; want ok", ti, err)
	}
	for _, id := range ids {
		env.waitStatus(t, id, delivery.EventDelivered)
	}

	_, err = cl.SetPaused(ctx, "nosuch", true)
	if err == nil || !strings.Contains(err.Error(), `unknown target "nosuch" (the config has: archive, media)`) {
		t.Fatalf("pause of an unknown target = %v, want the names the config has", err)
	}
	if _, err := env.svc.SetPaused(ctx, "nosuch", false); !errors.Is(err, admin.ErrUnknownTarget) {
		t.Fatalf("Service.SetPaused(unknown) = %v, want ErrUnknownTarget", err)
	}
	if p, _ := env.st.Paused(ctx); len(p) != 0 {
		t.Fatalf("paused after the test = %v, want none (an unknown name writes nothing)", p)
	}
}
