package providers_test

import (
	"errors"
	"testing"
	"time"

	"github.com/hookrelay/hookrelay/providers"
	"github.com/hookrelay/hookrelay/providers/sketchpen"
	"github.com/hookrelay/hookrelay/verify"
)

// TestAcceptDedupeOverride: a source's dedupe_key override reads headers
// and body fields; a body that is not JSON fails as the adapter's Parse does.
func TestAcceptDedupeOverride(t *testing.T) {
	a, err := sketchpen.New(providers.Common{Secrets: []providers.Secret{{Value: "whsec_override"}}})
	if err != nil {
		t.Fatal(err)
	}
	exprs, err := providers.ParseKeyExprs([]string{"header:X-Request-Id", "json:data.n"})
	if err != nil {
		t.Fatal(err)
	}
	src := providers.Source{Name: "o", Provider: "sketchpen", Adapter: a, DedupeKey: exprs}
	now := time.Unix(1717243200, 0)
	body := []byte(`{"event": "video.completed", "video_id": "vid_1", "created_at": 1717243200, "data": {"n": 7}}`)
	h, err := a.Sign(body, now)
	if err != nil {
		t.Fatal(err)
	}
	h.Set("X-Request-Id", "req_1")
	ev, err := src.Accept("", h, body, now)
	if err != nil || ev.DedupeKey != "req_1:7" || ev.Type != "video.completed" || ev.Subject != "vid_1" {
		t.Fatalf("Accept = %+v, %v; want key req_1:7", ev, err)
	}

	bad := []byte(`{"event": "video.completed"`)
	if h, err = a.Sign(bad, now); err != nil {
		t.Fatal(err)
	}
	_, err = src.Accept("", h, bad, now)
	_, perr := a.Parse(h, bad)
	if !errors.Is(err, verify.ErrInvalidJSON) || perr == nil || err.Error() != perr.Error() {
		t.Fatalf("Accept(not JSON) = %v, want Parse's error %v", err, perr)
	}
}
