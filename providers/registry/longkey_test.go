package registry_test

import (
	"strings"
	"testing"
	"time"

	"github.com/hookrelay/hookrelay/providers"
	"github.com/hookrelay/hookrelay/providers/providertest"
)

// TestLongDedupeKey: a dedupe key longer than 200 bytes (here a huge
// number in a body field picked by an override) is replaced by its hex
// SHA-256; shorter keys stay as they are.
func TestLongDedupeKey(t *testing.T) {
	a := providertest.NewAdapter(t, "sketchpen", providertest.Config{Common: providers.Common{Secrets: providertest.SecretsOf("whsec_long")}})
	exprs, err := providers.ParseKeyExprs([]string{"json:data.n"})
	if err != nil {
		t.Fatal(err)
	}
	src := &providers.Source{Name: "sp", Provider: "sketchpen", Adapter: a, DedupeKey: exprs}
	now := time.Unix(1717243200, 0)
	for _, n := range []int{5, 200, 201, 1 << 20} {
		num := strings.Repeat("7", n)
		body := []byte(`{"event":"video.completed","video_id":"v","data":{"n":` + num + `}}`)
		h, err := a.Sign(body, now)
		if err != nil {
			t.Fatal(err)
		}
		ev, err := src.Accept("", h, body, now)
		if err != nil {
			t.Fatalf("Accept: %v", err)
		}
		if n <= 200 {
			if ev.DedupeKey != providers.ShortKey(ev.DedupeKey) || len(ev.DedupeKey) > 200 || !strings.Contains(ev.DedupeKey, num) {
				t.Errorf("key of a %d-digit number = %.40q..., want it unchanged", n, ev.DedupeKey)
			}
			continue
		}
		if len(ev.DedupeKey) != 64 || strings.Trim(ev.DedupeKey, "0123456789abcdef") != "" {
			t.Errorf("key of a %d-digit number = %.80q, want 64 hex digits", n, ev.DedupeKey)
		}
	}
}
