package admin_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hookrelay/hookrelay/relay/admin"
	"github.com/hookrelay/hookrelay/relay/storage"
)

// fakeAPI is an admin.API whose methods are function fields; nil fields
// answer with empty results.
type fakeAPI struct {
	list      func(ctx context.Context, f storage.Filter, cursor string, limit int) (*admin.Page, error)
	get       func(ctx context.Context, id string) (*admin.EventDetail, error)
	replay    func(ctx context.Context, req admin.ReplayRequest) (*admin.ReplayReport, error)
	reloadErr error
}

var _ admin.API = (*fakeAPI)(nil)

func (f *fakeAPI) List(ctx context.Context, flt storage.Filter, cursor string, limit int) (*admin.Page, error) {
	if f.list == nil {
		return &admin.Page{Events: []storage.EventView{}}, nil
	}
	return f.list(ctx, flt, cursor, limit)
}

func (f *fakeAPI) Get(ctx context.Context, id string) (*admin.EventDetail, error) {
	if f.get == nil {
		return nil, fmt.Errorf("event %s: %w", id, storage.ErrNotFound)
	}
	return f.get(ctx, id)
}

func (f *fakeAPI) Reload(ctx context.Context) error { return f.reloadErr }

func (f *fakeAPI) ClusterStatus(ctx context.Context) (*admin.ClusterStatus, error) {
	return nil, admin.ErrNotClustered
}

func (f *fakeAPI) Targets(ctx context.Context) ([]admin.TargetInfo, error) {
	return []admin.TargetInfo{}, nil
}

func (f *fakeAPI) SetPaused(ctx context.Context, name string, paused bool) (*admin.TargetInfo, error) {
	return nil, admin.ErrUnknownTarget
}

func (f *fakeAPI) Replay(ctx context.Context, req admin.ReplayRequest, _ func(admin.Progress)) (*admin.ReplayReport, error) {
	if f.replay == nil {
		return &admin.ReplayReport{Items: []admin.ReplayItem{}}, nil
	}
	return f.replay(ctx, req)
}

const testToken = "s3cret-admin-token"

// fakeMetrics stands in for the Prometheus handler.
var fakeMetrics = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	fmt.Fprintln(w, "hookrelay_up 1")
})

// call sends one request to h and returns the status and body.
func call(t *testing.T, h http.Handler, method, target, auth, body string) (int, string, http.Header) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req := httptest.NewRequest(method, target, rd)
	req.Host = "127.0.0.1:9090" // what the CLI's client sends
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec.Code, rec.Body.String(), rec.Header()
}

func TestHandlerToken(t *testing.T) {
	api := &fakeAPI{get: func(ctx context.Context, id string) (*admin.EventDetail, error) {
		return &admin.EventDetail{EventView: storage.EventView{Event: storage.Event{ID: id}}}, nil
	}}
	h := admin.Handler(api, fakeMetrics, testToken)
	requests := []struct{ method, path, body string }{
		{http.MethodGet, "/api/events", ""},
		{http.MethodGet, "/api/events/01ABC", ""},
		{http.MethodGet, "/api/health", ""},
		{http.MethodGet, "/metrics", ""},
		{http.MethodGet, "/debug/pprof/", ""},
		{http.MethodPost, "/api/replay", `{"status":"dead"}`},
	}
	wrong := []struct{ name, auth string }{
		{"missing", ""},
		{"wrong token", "Bearer not-the-token"},
		{"token without Bearer", testToken},
		{"lower-case scheme", "bearer " + testToken},
		{"basic auth", "Basic " + testToken},
		{"token prefix", "Bearer " + testToken[:len(testToken)-1]},
		{"token with suffix", "Bearer " + testToken + "x"},
	}
	for _, rq := range requests {
		for _, w := range wrong {
			t.Run(rq.method+" "+rq.path+" "+w.name, func(t *testing.T) {
				code, body, hdr := call(t, h, rq.method, rq.path, w.auth, rq.body)
				if code != http.StatusUnauthorized {
					t.Fatalf("status = %d, want 401 (%s)", code, body)
				}
				if !strings.HasPrefix(hdr.Get("WWW-Authenticate"), "Bearer") {
					t.Errorf("WWW-Authenticate = %q, want a Bearer challenge", hdr.Get("WWW-Authenticate"))
				}
				if strings.Contains(body, testToken) {
					t.Errorf("401 body echoes the token: %s", body)
				}
			})
		}
		t.Run(rq.method+" "+rq.path+" right token", func(t *testing.T) {
			code, body, _ := call(t, h, rq.method, rq.path, "Bearer "+testToken, rq.body)
			if code != http.StatusOK {
				t.Fatalf("status = %d, want 200 (%s)", code, body)
			}
		})
	}

	// Without a token (loopback-only admin listener) nothing is asked.
	open := admin.Handler(api, fakeMetrics, "")
	for _, rq := range requests {
		if code, body, _ := call(t, open, rq.method, rq.path, "", rq.body); code != http.StatusOK {
			t.Errorf("no token configured: %s %s = %d, want 200 (%s)", rq.method, rq.path, code, body)
		}
	}
}

func TestHandlerRequests(t *testing.T) {
	var gotFilter storage.Filter
	var gotCursor string
	var gotLimit int
	var gotReplay admin.ReplayRequest
	api := &fakeAPI{
		list: func(ctx context.Context, f storage.Filter, cursor string, limit int) (*admin.Page, error) {
			gotFilter, gotCursor, gotLimit = f, cursor, limit
			return &admin.Page{Events: []storage.EventView{{Event: storage.Event{ID: "E1"}, Status: "dead"}}, NextCursor: "E1"}, nil
		},
		get: func(ctx context.Context, id string) (*admin.EventDetail, error) {
			switch id {
			case "gone":
				return nil, fmt.Errorf("event %s: %w", id, storage.ErrNotFound)
			case "closed":
				return nil, fmt.Errorf("%w: closed", storage.ErrUnavailable)
			}
			return &admin.EventDetail{EventView: storage.EventView{Event: storage.Event{ID: id}}}, nil
		},
		replay: func(ctx context.Context, req admin.ReplayRequest) (*admin.ReplayReport, error) {
			gotReplay = req
			if req.Target == "nope" {
				return nil, errors.New(`unknown target "nope"`)
			}
			return &admin.ReplayReport{Matched: 1, Sent: 1, Items: []admin.ReplayItem{{EventID: "E1", Target: "media", Outcome: "delivered"}}}, nil
		},
	}
	h := admin.Handler(api, nil, "")

	t.Run("list passes the filter", func(t *testing.T) {
		code, body, _ := call(t, h, http.MethodGet, "/api/events?source=sp&provider=sketchpen&type=video.*&status=dead&since=2025-01-02T03:04:05Z&until=2025-01-03T00:00:00.5Z&limit=7&cursor=C1&ids=A,B", "", "")
		if code != http.StatusOK {
			t.Fatalf("status = %d (%s)", code, body)
		}
		want := storage.Filter{
			IDs: []string{"A", "B"}, Source: "sp", Provider: "sketchpen", Type: "video.*", Status: "dead",
			Since: time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC), Until: time.Date(2025, 1, 3, 0, 0, 0, 5e8, time.UTC),
		}
		if !filterEqual(gotFilter, want) || gotCursor != "C1" || gotLimit != 7 {
			t.Errorf("List(%+v, %q, %d), want (%+v, C1, 7)", gotFilter, gotCursor, gotLimit, want)
		}
		var p admin.Page
		if err := json.Unmarshal([]byte(body), &p); err != nil || len(p.Events) != 1 || p.NextCursor != "E1" {
			t.Errorf("page = %s (%v)", body, err)
		}
	})
	t.Run("list default limit", func(t *testing.T) {
		if code, body, _ := call(t, h, http.MethodGet, "/api/events", "", ""); code != http.StatusOK || gotLimit != 50 {
			t.Errorf("status %d limit %d (%s), want 200 and 50", code, gotLimit, body)
		}
	})

	tests := []struct {
		name, method, path, body string
		want                     int
		wantErr                  string
	}{
		{"unknown status", http.MethodGet, "/api/events?status=failed", "", 400, "unknown status"},
		{"bad glob", http.MethodGet, "/api/events?type=%5B", "", 400, "bad type glob"},
		{"bad since", http.MethodGet, "/api/events?since=yesterday", "", 400, "since"},
		{"bad until", http.MethodGet, "/api/events?until=2h", "", 400, "until"},
		{"limit zero", http.MethodGet, "/api/events?limit=0", "", 400, "limit"},
		{"limit too large", http.MethodGet, "/api/events?limit=10001", "", 400, "limit"},
		{"limit not a number", http.MethodGet, "/api/events?limit=ten", "", 400, "limit"},
		{"unknown event", http.MethodGet, "/api/events/gone", "", 404, "not found"},
		{"store closed", http.MethodGet, "/api/events/closed", "", 503, "unavailable"},
		{"replay bad json", http.MethodPost, "/api/replay", "{", 400, "bad replay request"},
		{"replay unknown field", http.MethodPost, "/api/replay", `{"stauts":"dead"}`, 400, "unknown field"},
		{"replay bad status", http.MethodPost, "/api/replay", `{"status":"lost"}`, 400, "unknown status"},
		{"replay unknown target", http.MethodPost, "/api/replay", `{"target":"nope"}`, 400, "unknown target"},
		{"replay needs POST", http.MethodGet, "/api/replay", "", 405, ""},
		{"list needs GET", http.MethodPost, "/api/events", "{}", 405, ""},
		{"no metrics handler", http.MethodGet, "/metrics", "", 404, ""},
		{"unknown path", http.MethodGet, "/api/nothing", "", 404, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, body, _ := call(t, h, tt.method, tt.path, "", tt.body)
			if code != tt.want {
				t.Fatalf("status = %d, want %d (%s)", code, tt.want, body)
			}
			if tt.wantErr != "" {
				var e struct{ Error string }
				if err := json.Unmarshal([]byte(body), &e); err != nil || !strings.Contains(e.Error, tt.wantErr) {
					t.Errorf("body = %s, want an error containing %q", body, tt.wantErr)
				}
			}
		})
	}

	t.Run("replay decodes the request", func(t *testing.T) {
		code, body, _ := call(t, h, http.MethodPost, "/api/replay", "", `{"ids":["E1"],"type":"video.*","status":"dead","since":"2025-01-02T03:04:05Z","target":"media","dry_run":true,"wait":1000000000}`)
		if code != http.StatusOK {
			t.Fatalf("status = %d (%s)", code, body)
		}
		want := admin.ReplayRequest{
			Filter: storage.Filter{IDs: []string{"E1"}, Type: "video.*", Status: "dead", Since: time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)},
			Target: "media", DryRun: true, Wait: time.Second,
		}
		if !filterEqual(gotReplay.Filter, want.Filter) || gotReplay.Target != want.Target || gotReplay.DryRun != want.DryRun || gotReplay.Wait != want.Wait {
			t.Errorf("Replay(%+v), want %+v", gotReplay, want)
		}
		var rep admin.ReplayReport
		if err := json.Unmarshal([]byte(body), &rep); err != nil || rep.Matched != 1 || rep.Sent != 1 {
			t.Errorf("report = %s (%v)", body, err)
		}
	})
}

func filterEqual(a, b storage.Filter) bool {
	return slices.Equal(a.IDs, b.IDs) && a.Source == b.Source && a.Provider == b.Provider && a.Type == b.Type &&
		a.Status == b.Status && a.Since.Equal(b.Since) && a.Until.Equal(b.Until)
}

// TestClient runs the Client against the Handler over real HTTP: what the
// CLI sends is what the API receives.
func TestClient(t *testing.T) {
	var gotFilter storage.Filter
	var gotCursor string
	var gotLimit int
	var gotReplay admin.ReplayRequest
	api := &fakeAPI{
		list: func(ctx context.Context, f storage.Filter, cursor string, limit int) (*admin.Page, error) {
			gotFilter, gotCursor, gotLimit = f, cursor, limit
			return &admin.Page{Events: []storage.EventView{{Event: storage.Event{ID: "E2", Source: "sp"}, Status: "dead"}}, NextCursor: "E2"}, nil
		},
		get: func(ctx context.Context, id string) (*admin.EventDetail, error) {
			if id != "E/1" {
				return nil, fmt.Errorf("event %s: %w", id, storage.ErrNotFound)
			}
			return &admin.EventDetail{EventView: storage.EventView{Event: storage.Event{ID: id}, Status: "delivered"}, Payload: json.RawMessage(`{"a":1}`)}, nil
		},
		replay: func(ctx context.Context, req admin.ReplayRequest) (*admin.ReplayReport, error) {
			gotReplay = req
			return &admin.ReplayReport{Matched: 2, Sent: 1, Failed: 1, Items: []admin.ReplayItem{
				{EventID: "E1", Target: "media", Outcome: "delivered", StatusCode: 200},
				{EventID: "E2", Target: "media", Outcome: "failed", StatusCode: 404},
			}}, nil
		},
	}
	srv := httptest.NewServer(admin.Handler(api, fakeMetrics, testToken))
	defer srv.Close()
	ctx := context.Background()
	cl := admin.NewClient(strings.TrimPrefix(srv.URL, "http://"), testToken)

	if err := cl.Ping(ctx); err != nil {
		t.Fatalf("Ping: %v", err)
	}
	f := storage.Filter{
		IDs: []string{"A", "B"}, Source: "sp", Provider: "sketchpen", Type: "video.*", Status: "dead",
		Since: time.Date(2025, 1, 2, 3, 4, 5, 123456789, time.UTC), Until: time.Date(2025, 1, 3, 0, 0, 0, 0, time.FixedZone("X", 3600)),
	}
	page, err := cl.List(ctx, f, "C9", 25)
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	if !filterEqual(gotFilter, f) || gotCursor != "C9" || gotLimit != 25 {
		t.Errorf("server got List(%+v, %q, %d), want (%+v, C9, 25)", gotFilter, gotCursor, gotLimit, f)
	}
	if len(page.Events) != 1 || page.Events[0].ID != "E2" || page.Events[0].Status != "dead" || page.NextCursor != "E2" {
		t.Errorf("page = %+v", page)
	}

	d, err := cl.Get(ctx, "E/1")
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	if d.ID != "E/1" || d.Status != "delivered" || string(d.Payload) != `{"a":1}` {
		t.Errorf("detail = %+v", d)
	}
	if _, err := cl.Get(ctx, "E2"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("Get(unknown) = %v, want ErrNotFound", err)
	}

	req := admin.ReplayRequest{Filter: storage.Filter{Status: "dead", Type: "video.*"}, Target: "media", DryRun: true, Wait: 3 * time.Second}
	rep, err := cl.Replay(ctx, req, nil)
	if err != nil {
		t.Fatalf("Replay: %v", err)
	}
	if !filterEqual(gotReplay.Filter, req.Filter) || gotReplay.Target != "media" || !gotReplay.DryRun || gotReplay.Wait != req.Wait {
		t.Errorf("server got Replay(%+v), want %+v", gotReplay, req)
	}
	if rep.Matched != 2 || rep.Sent != 1 || rep.Failed != 1 || len(rep.Items) != 2 || rep.Items[1].StatusCode != 404 {
		t.Errorf("report = %+v", rep)
	}

	// A wrong token is an error that says so, and is not "no server".
	bad := admin.NewClient(strings.TrimPrefix(srv.URL, "http://"), "wrong")
	for name, err := range map[string]error{
		"Ping": bad.Ping(ctx),
		"List": func() error { _, err := bad.List(ctx, storage.Filter{}, "", 0); return err }(),
	} {
		if err == nil || !strings.Contains(err.Error(), "401") || errors.Is(err, admin.ErrNoServer) {
			t.Errorf("%s with a wrong token = %v, want an HTTP 401 error", name, err)
		}
		if err != nil && strings.Contains(err.Error(), testToken) {
			t.Errorf("%s error shows the token: %v", name, err)
		}
	}
}

func TestClientNoServer(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now
	cl := admin.NewClient(addr, testToken)
	if err := cl.Ping(context.Background()); !errors.Is(err, admin.ErrNoServer) {
		t.Errorf("Ping = %v, want ErrNoServer", err)
	}
	if _, err := cl.List(context.Background(), storage.Filter{}, "", 10); !errors.Is(err, admin.ErrNoServer) {
		t.Errorf("List = %v, want ErrNoServer", err)
	}
}

// TestHandlerRefusesBrowsers: what a web page can make a browser send to a
// loopback admin API is refused: cross-origin requests, non-JSON POSTs
// (no CORS preflight) and, without a token, foreign Host names (DNS
// rebinding).
func TestHandlerRefusesBrowsers(t *testing.T) {
	api := &fakeAPI{}
	h := admin.Handler(api, fakeMetrics, "")
	tests := []struct {
		name   string
		mutate func(r *http.Request)
		want   int
	}{
		{"cross-origin", func(r *http.Request) { r.Header.Set("Origin", "https://evil.example") }, http.StatusForbidden},
		{"text/plain POST", func(r *http.Request) { r.Header.Set("Content-Type", "text/plain") }, http.StatusUnsupportedMediaType},
		{"rebound host name", func(r *http.Request) { r.Host = "evil.example:9090" }, http.StatusForbidden},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := httptest.NewRequest(http.MethodPost, "/api/replay", strings.NewReader(`{"status":"dead","dry_run":true}`))
			req.Host = "localhost:9090"
			req.Header.Set("Content-Type", "application/json")
			tt.mutate(req)
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if got := rec.Code; got != tt.want {
				t.Errorf("status = %d, want %d (%s)", got, tt.want, rec.Body.String())
			}
		})
	}
	// The same request, well-formed, is answered.
	req := httptest.NewRequest(http.MethodGet, "/api/health", nil)
	req.Host = "[::1]:9090"
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK {
		t.Errorf("loopback GET /api/health = %d, want 200", rec.Code)
	}
}
