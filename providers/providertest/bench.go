package providertest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/hookrelay/hookrelay/verify"
)

// benchPayload returns a webhook payload of about size bytes in two
// encodings: canonical (Python's json.dumps(payload, sort_keys=True), what
// VideoVector signs and sends) and compact (Go's json.Marshal: sorted keys,
// no spaces), which only the canonical fallback verifies. No string holds
// ',' or ':', so the canonical form is the compact one with spaces added.
func benchPayload(b *testing.B, size int) (canonical, compact []byte) {
	b.Helper()
	type item struct {
		Index int      `json:"index"`
		Label string   `json:"label"`
		Score float64  `json:"score"`
		Tags  []string `json:"tags"`
	}
	doc := map[string]any{
		"event": "video.completed", "type": "video.completed", "id": "evt_1", "video_id": "vid_1",
		"created_at": 1717243200, "timestamp": 1717243200,
	}
	data := map[string]any{"id": "vid_1", "video_id": "vid_1", "contentId": "vid_1", "title": "Crème brûlée"}
	var items []item
	for {
		data["items"] = items
		doc["data"] = data
		var err error
		if compact, err = json.Marshal(doc); err != nil {
			b.Fatal(err)
		}
		if len(compact) >= size-size/8 {
			break
		}
		items = append(items, item{Index: len(items), Label: fmt.Sprintf("item-%04d", len(items)), Score: 0.5, Tags: []string{"promo", "summer"}})
	}
	canonical = bytes.ReplaceAll(bytes.ReplaceAll(compact, []byte(","), []byte(", ")), []byte(":"), []byte(": "))
	canonical = bytes.ReplaceAll(canonical, []byte("Crème brûlée"), []byte(`Cr\u00e8me br\u00fbl\u00e9e`))
	return canonical, compact
}

// BenchmarkVerify measures Verify of a correctly signed request per source
// of provider and body size. videovector-raw gets the canonical body (the
// raw check matches); videovector-canonical gets the compact body, so the
// raw check fails and the body is re-serialized.
func BenchmarkVerify(b *testing.B, provider string) {
	now := time.Unix(1717243200, 0)
	type bench struct {
		name, source string
		compact      bool
	}
	var benches []bench
	for _, s := range Sources(b, provider) {
		switch s.Name {
		case "videovector":
			benches = append(benches, bench{"videovector-raw", s.Name, false}, bench{"videovector-canonical", s.Name, true})
		default:
			benches = append(benches, bench{s.Name, s.Name, false})
		}
	}
	for _, bc := range benches {
		for _, size := range []struct {
			name string
			n    int
		}{{"1KiB", 1 << 10}, {"64KiB", 64 << 10}} {
			b.Run(bc.name+"/"+size.name, func(b *testing.B) {
				canonical, compact := benchPayload(b, size.n)
				body := canonical
				if bc.compact {
					body = compact
				}
				a := NewSource(b, bc.source)
				h, err := a.Sign(body, now)
				if err != nil {
					b.Fatal(err)
				}
				if err := a.Verify(h, body, now); err != nil {
					b.Fatal(err)
				}
				if bc.compact {
					if c, _ := verify.CanonicalJSON(compact); !bytes.Equal(c, canonical) {
						b.Fatal("the compact body does not canonicalize to the canonical one")
					}
				}
				b.ReportAllocs()
				b.SetBytes(int64(len(body)))
				b.ResetTimer()
				for b.Loop() {
					if err := a.Verify(h, body, now); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}
