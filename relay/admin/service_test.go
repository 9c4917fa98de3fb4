package admin_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hookrelay/hookrelay/relay/admin"
	"github.com/hookrelay/hookrelay/relay/deliver"
	"github.com/hookrelay/hookrelay/relay/delivery"
	"github.com/hookrelay/hookrelay/relay/route"
	"github.com/hookrelay/hookrelay/relay/storage"
	"github.com/hookrelay/hookrelay/relay/store"
)

// recordingTarget is an HTTP target that answers with a switchable status
// and records what it receives.
type recordingTarget struct {
	*httptest.Server
	status atomic.Int32
	mu     sync.Mutex
	got    []received
}

type received struct {
	header http.Header
	event  map[string]any
}

func newRecordingTarget(t *testing.T, status int) *recordingTarget {
	t.Helper()
	rt := &recordingTarget{}
	rt.status.Store(int32(status))
	rt.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		var ev map[string]any
		if err := json.Unmarshal(b, &ev); err != nil {
			t.Errorf("target got a body that is not JSON: %q", b)
		}
		rt.mu.Lock()
		rt.got = append(rt.got, received{header: r.Header.Clone(), event: ev})
		rt.mu.Unlock()
		w.WriteHeader(int(rt.status.Load()))
	}))
	t.Cleanup(rt.Close)
	return rt
}

func (rt *recordingTarget) received() []received {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	return slices.Clone(rt.got)
}

// replayEnv is a real store with a running delivery engine for two
// targets, media and archive, and a Service wired like the server's.
type replayEnv struct {
	st             *store.Store
	svc            *admin.Service
	media, archive *recordingTarget
	engine         *deliver.Engine
	n              int // events ingested
}

func newReplayEnv(t *testing.T) *replayEnv {
	t.Helper()
	ctx := context.Background()
	st, err := store.Open(ctx, store.Options{Path: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	env := &replayEnv{st: st, media: newRecordingTarget(t, http.StatusNotFound), archive: newRecordingTarget(t, http.StatusOK)}
	target := func(name, url string) deliver.Target {
		return deliver.Target{Name: name, URL: url, Timeout: 5 * time.Second, MaxInFlight: 2, MaxAttempts: 3, InitialBackoff: 10 * time.Millisecond, MaxBackoff: 20 * time.Millisecond}
	}
	engine := deliver.New(st, []deliver.Target{target("archive", env.archive.URL), target("media", env.media.URL)}, deliver.Options{})
	engine.Start(ctx)
	env.engine = engine
	t.Cleanup(func() {
		if err := engine.Stop(ctx); err != nil {
			t.Errorf("engine.Stop: %v", err)
		}
		if err := st.Close(ctx); err != nil {
			t.Errorf("store.Close: %v", err)
		}
	})
	routes := route.New([]route.Rule{
		{Name: "videos", Events: []string{"video.*"}, Targets: []string{"media"}},
		{Name: "renders", Events: []string{"render.*"}, Targets: []string{"archive"}},
	})
	env.svc = &admin.Service{
		Store:   st,
		Routing: func() (admin.Router, []string) { return routes, []string{"archive", "media"} },
		Notify:  engine.Notify,
		Poll:    5 * time.Millisecond,
	}
	return env
}

// ingest stores an event routed to targets, received now.
func (env *replayEnv) ingest(t *testing.T, typ, raw string, targets ...string) string {
	t.Helper()
	env.n++
	ev := &storage.Event{
		Source: "sp", Provider: "sketchpen", Type: typ, Subject: "v1", ReceivedAt: time.Now().UTC(),
		DedupeKey: fmt.Sprintf("%s-%d", typ, env.n), Targets: targets,
	}
	res, err := env.st.Ingest(context.Background(), ev, []byte(raw))
	if err != nil {
		t.Fatal(err)
	}
	env.svc.Notify(targets...) // as the ingest handler does
	return res.ID
}

// waitStatus polls the store until event id has status.
func (env *replayEnv) waitStatus(t *testing.T, id string, status delivery.EventStatus) *storage.EventView {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		v, _, err := env.st.Get(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		if v.Status == status {
			return v
		}
		if time.Now().After(deadline) {
			t.Fatalf("event %s is %s, want %s", id, v.Status, status)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func attemptsOf(v *storage.EventView, target string) []delivery.Attempt {
	for _, d := range v.Deliveries {
		if d.Target == target {
			return d.Attempts
		}
	}
	return nil
}

func TestServiceReplay(t *testing.T) {
	env := newReplayEnv(t)
	ctx := context.Background()

	// dead: media answered 404 (permanent). unrouted: no route matched when
	// it arrived. delivered: to archive.
	dead := env.ingest(t, "video.completed", `{"event":"video.completed"}`, "media")
	env.waitStatus(t, dead, delivery.EventDead)
	unrouted := env.ingest(t, "render.completed", `{"event":"render.completed"}`)
	done := env.ingest(t, "video.created", `not json`, "archive")
	env.waitStatus(t, done, delivery.EventDelivered)
	if got := len(env.media.received()); got != 1 {
		t.Fatalf("media received %d requests before any replay, want 1", got)
	}
	archiveBefore := len(env.archive.received())

	t.Run("get", func(t *testing.T) {
		d, err := env.svc.Get(ctx, dead)
		if err != nil {
			t.Fatal(err)
		}
		if d.ID != dead || d.Status != delivery.EventDead || string(d.Payload) != `{"event":"video.completed"}` {
			t.Errorf("detail = %+v", d)
		}
		if a := attemptsOf(&d.EventView, "media"); len(a) != 1 || a[0].StatusCode != 404 {
			t.Errorf("media attempts = %+v, want one 404", a)
		}
		var ce map[string]any
		if err := json.Unmarshal(d.CloudEvent, &ce); err != nil || ce["id"] != dead || ce["replay"] != nil {
			t.Errorf("cloudevent = %s (%v), want id %s and no replay mark", d.CloudEvent, err, dead)
		}
		// A body that is not JSON is given as its exact bytes in base64.
		d, err = env.svc.Get(ctx, done)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := string(d.PayloadBase64), "not json"; got != want || d.Payload != nil {
			t.Errorf("payload = %s, payload_base64 = %q, want none and %q", d.Payload, got, want)
		}
	})

	t.Run("list", func(t *testing.T) {
		p, err := env.svc.List(ctx, storage.Filter{}, "", 2)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := viewIDs(p.Events), []string{done, unrouted}; !slices.Equal(got, want) || p.NextCursor != unrouted {
			t.Fatalf("page 1 = %v next %q, want %v next %s", got, p.NextCursor, want, unrouted)
		}
		p, err = env.svc.List(ctx, storage.Filter{}, p.NextCursor, 2)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := viewIDs(p.Events), []string{dead}; !slices.Equal(got, want) || p.NextCursor != "" {
			t.Fatalf("page 2 = %v next %q, want %v and no next", got, p.NextCursor, want)
		}
	})

	t.Run("unknown target", func(t *testing.T) {
		if _, err := env.svc.Replay(ctx, admin.ReplayRequest{Target: "nowhere"}, nil); err == nil {
			t.Fatal("Replay to an unknown target succeeded")
		}
	})

	t.Run("dry run changes nothing", func(t *testing.T) {
		rep, err := env.svc.Replay(ctx, admin.ReplayRequest{Filter: storage.Filter{Status: delivery.EventDead}, DryRun: true}, nil)
		if err != nil {
			t.Fatal(err)
		}
		want := []admin.ReplayItem{{EventID: dead, Target: "media", Outcome: "planned"}}
		if rep.Matched != 1 || rep.Sent != 0 || rep.Failed != 0 || !rep.DryRun || !slices.Equal(rep.Items, want) {
			t.Errorf("report = %+v, want 1 matched, planned %v", rep, want)
		}
		v, _, err := env.st.Get(ctx, dead)
		if err != nil {
			t.Fatal(err)
		}
		if v.Status != delivery.EventDead || len(attemptsOf(v, "media")) != 1 {
			t.Errorf("after a dry run the event is %s with %d attempts, want dead with 1", v.Status, len(attemptsOf(v, "media")))
		}
		if got := len(env.media.received()); got != 1 {
			t.Errorf("media received %d requests, want still 1", got)
		}
	})

	t.Run("failing replay", func(t *testing.T) {
		rep, err := env.svc.Replay(ctx, admin.ReplayRequest{Filter: storage.Filter{Status: delivery.EventDead}}, nil)
		if err != nil {
			t.Fatal(err)
		}
		want := []admin.ReplayItem{{EventID: dead, Target: "media", Outcome: "failed", StatusCode: 404}}
		if rep.Matched != 1 || rep.Sent != 0 || rep.Failed != 1 || rep.Pending != 0 || !slices.Equal(rep.Items, want) {
			t.Errorf("report = %+v, want failed %v", rep, want)
		}
	})

	t.Run("replay delivers", func(t *testing.T) {
		env.media.status.Store(http.StatusOK)
		var last admin.Progress
		rep, err := env.svc.Replay(ctx, admin.ReplayRequest{Filter: storage.Filter{Status: delivery.EventDead}}, func(p admin.Progress) { last = p })
		if err != nil {
			t.Fatal(err)
		}
		want := []admin.ReplayItem{{EventID: dead, Target: "media", Outcome: "delivered", StatusCode: 200}}
		if rep.Matched != 1 || rep.Sent != 1 || rep.Failed != 0 || !slices.Equal(rep.Items, want) {
			t.Errorf("report = %+v, want delivered %v", rep, want)
		}
		if last != (admin.Progress{Done: 1, Total: 1, Sent: 1}) {
			t.Errorf("last progress = %+v, want 1/1 sent", last)
		}
		got := env.media.received()
		r := got[len(got)-1]
		if r.event["id"] != dead || r.event["replay"] != true || r.header.Get("Hookrelay-Replay") != "true" {
			t.Errorf("media got %v with Hookrelay-Replay %q, want id %s marked as a replay", r.event, r.header.Get("Hookrelay-Replay"), dead)
		}
		v := env.waitStatus(t, dead, delivery.EventDelivered)
		a := attemptsOf(v, "media")
		if len(a) != 3 || !a[2].Replay || a[2].StatusCode != 200 {
			t.Errorf("media attempts = %+v, want 3 with the last a 200 replay", a)
		}
		for _, d := range v.Deliveries {
			if d.Replay {
				t.Errorf("delivery %s still marked as a pending replay", d.Target)
			}
		}
	})

	t.Run("unrouted goes where today's routes say", func(t *testing.T) {
		rep, err := env.svc.Replay(ctx, admin.ReplayRequest{Filter: storage.Filter{Status: delivery.EventUnrouted}}, nil)
		if err != nil {
			t.Fatal(err)
		}
		want := []admin.ReplayItem{{EventID: unrouted, Target: "archive", Outcome: "delivered", StatusCode: 200}}
		if rep.Matched != 1 || rep.Sent != 1 || !slices.Equal(rep.Items, want) {
			t.Errorf("report = %+v, want %v", rep, want)
		}
		env.waitStatus(t, unrouted, delivery.EventDelivered)
	})

	t.Run("to another target", func(t *testing.T) {
		rep, err := env.svc.Replay(ctx, admin.ReplayRequest{Filter: storage.Filter{IDs: []string{dead}}, Target: "archive"}, nil)
		if err != nil {
			t.Fatal(err)
		}
		want := []admin.ReplayItem{{EventID: dead, Target: "archive", Outcome: "delivered", StatusCode: 200}}
		if rep.Sent != 1 || !slices.Equal(rep.Items, want) {
			t.Errorf("report = %+v, want %v", rep, want)
		}
		got := env.archive.received()
		if len(got) != archiveBefore+2 {
			t.Fatalf("archive received %d requests, want %d", len(got), archiveBefore+2)
		}
		if r := got[len(got)-1]; r.event["id"] != dead || r.event["replay"] != true {
			t.Errorf("archive got %v, want %s as a replay", r.event, dead)
		}
	})

	t.Run("no attempt within the wait", func(t *testing.T) {
		// A service whose engine is not told: the delivery stays queued.
		quiet := *env.svc
		quiet.Notify = nil
		router, targets := quiet.Routing()
		quiet.Routing = func() (admin.Router, []string) { return router, append(slices.Clone(targets), "offline") }
		rep, err := quiet.Replay(ctx, admin.ReplayRequest{Filter: storage.Filter{IDs: []string{done}}, Target: "offline", Wait: 50 * time.Millisecond}, nil)
		if err != nil {
			t.Fatal(err)
		}
		want := []admin.ReplayItem{{EventID: done, Target: "offline", Outcome: "pending"}}
		if rep.Pending != 1 || rep.Sent != 0 || rep.Failed != 0 || !slices.Equal(rep.Items, want) {
			t.Errorf("report = %+v, want %v", rep, want)
		}
	})

	t.Run("nothing matched", func(t *testing.T) {
		rep, err := env.svc.Replay(ctx, admin.ReplayRequest{Filter: storage.Filter{Type: "nothing.*"}}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if rep.Matched != 0 || len(rep.Items) != 0 {
			t.Errorf("report = %+v, want nothing", rep)
		}
	})
}

func viewIDs(vs []storage.EventView) []string {
	out := make([]string, 0, len(vs))
	for _, v := range vs {
		out = append(out, v.ID)
	}
	return out
}
