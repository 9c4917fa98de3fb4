package relay_test

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"
)

// TestOddBytesEndToEnd: a signed body with invalid UTF-8 inside a JSON
// string is accepted, relayed as data_base64 with its exact bytes, and the
// admin API shows it as valid JSON (payload_base64); a dedupe key made of a
// 500 kB number is stored and relayed as its SHA-256 hex.
func TestOddBytesEndToEnd(t *testing.T) {
	var mu sync.Mutex
	var got [][]byte
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		got = append(got, b)
		mu.Unlock()
	}))
	defer target.Close()
	ts := startServer(t, admConfig(target.URL, target.URL))
	bad := []byte("{\"event\":\"video.completed\",\"video_id\":\"v-odd\",\"created_at\":1717243200,\"title\":\"caf\xe9 \xff\"}")
	huge := []byte(`{"event":"video.completed","video_id":"v-huge","created_at":` + strings.Repeat("7", 500_000) + `}`)
	ids := map[string][]byte{}
	for _, body := range [][]byte{bad, huge} {
		r := admSend(t, ts, body)
		if r.Status != http.StatusOK || r.Body["status"] != "accepted" {
			t.Fatalf("post: %d %s", r.Status, r.Raw)
		}
		ids[r.Body["id"]] = body
	}
	waitFor(t, 10*time.Second, "two deliveries", func() bool { mu.Lock(); defer mu.Unlock(); return len(got) >= 2 })
	mu.Lock()
	for _, ce := range got {
		if !json.Valid(ce) || !utf8.Valid(ce) {
			t.Errorf("CloudEvent is not valid UTF-8 JSON: %.200q", ce)
			continue
		}
		var m map[string]any
		json.Unmarshal(ce, &m)
		raw := ids[m["id"].(string)]
		if bytes.Equal(raw, bad) {
			if d, err := base64.StdEncoding.DecodeString(m["data_base64"].(string)); err != nil || !bytes.Equal(d, bad) || m["data"] != nil {
				t.Errorf("CloudEvent of the invalid UTF-8 body: data_base64 %q (%v), data %v", d, err, m["data"])
			}
		} else if k := m["dedupekey"].(string); len(k) != 64 {
			t.Errorf("dedupekey of the huge key is %d bytes, want 64 hex digits", len(k))
		}
	}
	mu.Unlock()
	for id, raw := range ids {
		code, body := admGet(t, http.MethodGet, "http://"+ts.Addr("admin")+"/api/events/"+id, "Bearer "+admToken, "")
		if code != http.StatusOK || !json.Valid([]byte(body)) || !utf8.ValidString(body) {
			t.Fatalf("GET /api/events/%s: %d, valid UTF-8 JSON %v", id, code, json.Valid([]byte(body)))
		}
		var d struct {
			DedupeKey     string          `json:"dedupe_key"`
			Payload       json.RawMessage `json:"payload"`
			PayloadBase64 []byte          `json:"payload_base64"`
		}
		json.Unmarshal([]byte(body), &d)
		if bytes.Equal(raw, bad) {
			if !bytes.Equal(d.PayloadBase64, bad) || d.Payload != nil {
				t.Errorf("detail of the invalid UTF-8 body: payload %s, payload_base64 %q", d.Payload, d.PayloadBase64)
			}
		} else if len(d.DedupeKey) != 64 || len(body) > 600_000*2 {
			t.Errorf("stored dedupe key is %d bytes (answer %d bytes), want 64 hex digits", len(d.DedupeKey), len(body))
		}
	}
}
