package deliver_test

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"reflect"
	"testing"
	"time"
	"unicode/utf8"

	cloudevents "github.com/cloudevents/sdk-go/v2/event"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"
	"github.com/hookrelay/hookrelay/relay/deliver"
	"github.com/hookrelay/hookrelay/relay/storage"
	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
)

func testEvent() *storage.Event {
	return &storage.Event{
		ID: "01JQ0000000000000000000000", Source: "sketchpen-prod", Provider: "sketchpen",
		Type: "video.completed", Subject: "vid_42",
		Time:       time.Date(2025, 3, 14, 9, 26, 53, 0, time.UTC),
		ReceivedAt: time.Date(2025, 3, 14, 9, 27, 0, 500, time.UTC),
		DedupeKey:  "video.completed:vid_42:1741944413",
	}
}

// parseCE parses a structured-mode CloudEvent with the SDK's HTTP binding,
// as a target written against the SDK would.
func parseCE(t *testing.T, body []byte) *cloudevents.Event {
	t.Helper()
	req := httptest.NewRequest(http.MethodPost, "/hooks", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/cloudevents+json")
	ev, err := cehttp.NewEventFromHTTPRequest(req)
	if err != nil {
		t.Fatalf("CloudEvents SDK rejected %s: %v", body, err)
	}
	if err := ev.Validate(); err != nil {
		t.Fatalf("CloudEvents SDK: invalid event %s: %v", body, err)
	}
	return ev
}

func TestCloudEventJSONPayload(t *testing.T) {
	raw := []byte(`{"event":"video.completed","video_id":"vid_42","created_at":1741944413,"data":{"n":12345678901234567890123,"s":"\u00e9"}}` + "\n")
	ev := parseCE(t, deliver.CloudEvent(testEvent(), raw, false))
	checks := []struct{ name, got, want string }{
		{"specversion", ev.SpecVersion(), "1.0"},
		{"id", ev.ID(), "01JQ0000000000000000000000"},
		{"source", ev.Source(), "/sources/sketchpen-prod"},
		{"type", ev.Type(), "sketchpen.video.completed"},
		{"subject", ev.Subject(), "vid_42"},
		{"time", ev.Time().Format(time.RFC3339Nano), "2025-03-14T09:26:53Z"},
		{"datacontenttype", ev.DataContentType(), "application/json"},
		{"provider", extString(t, ev, "provider"), "sketchpen"},
		{"dedupekey", extString(t, ev, "dedupekey"), "video.completed:vid_42:1741944413"},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %q, want %q", c.name, c.got, c.want)
		}
	}
	if _, ok := ev.Extensions()["replay"]; ok {
		t.Errorf("first delivery carries the replay extension")
	}
	// The payload goes through byte for byte (an integer beyond float64 and an
	// escaped character included): nothing is re-encoded.
	if got, want := ev.Data(), bytes.TrimSpace(raw); !bytes.Equal(got, want) {
		t.Errorf("data = %s, want %s", got, want)
	}
}

func TestCloudEventFallbacks(t *testing.T) {
	ev := testEvent()
	ev.Subject, ev.Type, ev.Time = "", "", time.Time{}
	raw := []byte("not json \x00\xff")
	ce := parseCE(t, deliver.CloudEvent(ev, raw, true))
	if got := ce.Subject(); got != "" {
		t.Errorf("subject = %q, want none", got)
	}
	if got, want := ce.Type(), "sketchpen.unknown"; got != want {
		t.Errorf("type = %q, want %q", got, want)
	}
	if got, want := ce.Time(), ev.ReceivedAt; !got.Equal(want) {
		t.Errorf("time = %v, want the receive time %v", got, want)
	}
	if got, want := ce.DataContentType(), "application/octet-stream"; got != want {
		t.Errorf("datacontenttype = %q, want %q", got, want)
	}
	if !ce.DataBase64 || !bytes.Equal(ce.Data(), raw) {
		t.Errorf("data = %q (base64 %v), want the raw body as data_base64", ce.Data(), ce.DataBase64)
	}
	if got := ce.Extensions()["replay"]; got != true {
		t.Errorf("replay extension = %#v, want true", got)
	}
}

// The rendering is plain JSON too: a target that does not use the SDK sees
// the documented fields.
func TestCloudEventShape(t *testing.T) {
	body := deliver.CloudEvent(testEvent(), []byte(`{"a":[1,2]}`), false)
	var got map[string]any
	if err := json.Unmarshal(body, &got); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, body)
	}
	want := map[string]any{
		"specversion": "1.0", "id": "01JQ0000000000000000000000", "source": "/sources/sketchpen-prod",
		"type": "sketchpen.video.completed", "subject": "vid_42", "time": "2025-03-14T09:26:53Z",
		"datacontenttype": "application/json", "provider": "sketchpen",
		"dedupekey": "video.completed:vid_42:1741944413", "data": map[string]any{"a": []any{1.0, 2.0}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("CloudEvent =\n%v\nwant\n%v", got, want)
	}
}

func TestSignRequestVerifiesWithStandardWebhooks(t *testing.T) {
	key := []byte("0123456789abcdef0123456789abcdef")
	secret := "whsec_" + base64.StdEncoding.EncodeToString(key)
	wh, err := standardwebhooks.NewWebhook(secret)
	if err != nil {
		t.Fatal(err)
	}
	body := deliver.CloudEvent(testEvent(), []byte(`{"x":1}`), false)
	h := http.Header{}
	deliver.SignRequest(h, key, "01JQ0000000000000000000000", time.Now(), body)
	if err := wh.Verify(body, h); err != nil {
		t.Fatalf("standard-webhooks Verify: %v (headers %v)", err, h)
	}
	// The library's own signature for the same message is ours.
	ts := time.Unix(1741944413, 0)
	deliver.SignRequest(h, key, "msg_1", ts, body)
	want, err := wh.Sign("msg_1", ts, body)
	if err != nil {
		t.Fatal(err)
	}
	if got := h.Get("webhook-signature"); got != want {
		t.Errorf("webhook-signature = %q, want %q", got, want)
	}
	if got, want := h.Get("webhook-timestamp"), "1741944413"; got != want {
		t.Errorf("webhook-timestamp = %q, want %q", got, want)
	}
	// Tampering is detected.
	deliver.SignRequest(h, key, "msg_1", time.Now(), body)
	if err := wh.Verify(append(bytes.Clone(body), ' '), h); err == nil {
		t.Error("Verify accepted a modified body")
	}
	other, _ := standardwebhooks.NewWebhook("whsec_" + base64.StdEncoding.EncodeToString([]byte("another key, another key, 32 b!")))
	if err := other.Verify(body, h); err == nil {
		t.Error("Verify accepted a signature made with another key")
	}
}

func extString(t *testing.T, ev *cloudevents.Event, name string) string {
	t.Helper()
	var s string
	if err := ev.ExtensionAs(name, &s); err != nil {
		t.Errorf("extension %s: %v", name, err)
	}
	return s
}

// TestCloudEventInvalidUTF8: a signed JSON body with bytes that are not
// UTF-8 inside a string is relayed as data_base64 with its exact bytes, so
// the CloudEvent is valid JSON (and UTF-8) and the SDK reads the payload.
func TestCloudEventInvalidUTF8(t *testing.T) {
	raw := []byte("{\"event\":\"video.completed\",\"title\":\"caf\xe9 \xff\xfe\"}")
	ce := deliver.CloudEvent(testEvent(), raw, false)
	if !json.Valid(ce) || !utf8.Valid(ce) {
		t.Fatalf("CloudEvent is not valid UTF-8 JSON: %q", ce)
	}
	var m map[string]any
	if err := json.Unmarshal(ce, &m); err != nil {
		t.Fatal(err)
	}
	if _, ok := m["data"]; ok {
		t.Errorf("CloudEvent has data beside data_base64: %s", ce)
	}
	got, err := base64.StdEncoding.DecodeString(m["data_base64"].(string))
	if err != nil || !bytes.Equal(got, raw) {
		t.Errorf("data_base64 = %q (%v), want the exact bytes %q", got, err, raw)
	}
	if ev := parseCE(t, ce); !bytes.Equal(ev.Data(), raw) {
		t.Errorf("SDK data = %q, want %q", ev.Data(), raw)
	}
}
