package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/hookrelay/hookrelay/providers"
	"github.com/hookrelay/hookrelay/providers/shortkit"
	"github.com/hookrelay/hookrelay/providers/standardwebhooks"
	"github.com/hookrelay/hookrelay/providers/videovector"
	"github.com/hookrelay/hookrelay/verify"
)

// defaultEvent is the event type `send` uses when --event is not given.
var defaultEvent = map[string]string{
	"sketchpen":         "video.completed",
	"videopilot":        "render.completed",
	"videovector":       "video.ready",
	"shortkit":          "content.imported",
	"standard-webhooks": "video.completed",
	"hmac":              "video.completed",
}

// sample builds request n of a run: a realistic payload for the provider
// whose dedupe key is unique to (run, n), padded to about size bytes, and
// the headers the provider would send with it.
func sample(ad providers.Adapter, provider, event, run string, n int, size int, custom []byte, now time.Time) ([]byte, http.Header, error) {
	uid := fmt.Sprintf("%s%06d", run, n)
	iso := now.UTC().Format(time.RFC3339)
	var payload map[string]any
	switch provider {
	case "sketchpen":
		payload = map[string]any{"event": event, "video_id": "vid_" + uid, "created_at": now.Unix(),
			"data": map[string]any{"title": "Quarterly update", "duration_seconds": 93.4, "status": "completed",
				"url": "https://cdn.sketchpen.example/v/vid_" + uid + ".mp4"}}
	case "videopilot":
		payload = map[string]any{"event": event, "timestamp": iso,
			"data": map[string]any{"render_job_id": "rj_" + uid, "video_id": "vid_" + uid, "status": "completed",
				"output_url": "https://videopilot.example/renders/rj_" + uid + ".mp4"}}
	case "videovector":
		payload = map[string]any{"id": "evt_" + uid, "event": event, "created_at": iso,
			"data": map[string]any{"id": "vid_" + uid, "status": "ready", "title": "Démo vidéo", "duration": 42.0}}
	case "shortkit":
		payload = map[string]any{"event": event, "timestamp": iso,
			"data": map[string]any{"contentId": "cnt_" + uid, "status": "imported", "sourceUrl": "https://example.com/in/" + uid}}
	default: // standard-webhooks, hmac
		payload = map[string]any{"type": event, "timestamp": iso, "data": map[string]any{"id": "obj_" + uid}}
	}
	body := custom
	if body == nil {
		b, err := json.Marshal(payload)
		if err != nil {
			return nil, nil, err
		}
		if pad := size - len(b) - len(`,"padding":""`); size > 0 && pad > 0 {
			payload["padding"] = strings.Repeat("x", pad)
			if b, err = json.Marshal(payload); err != nil {
				return nil, nil, err
			}
		}
		body = b
	}
	var h http.Header
	var err error
	switch a := ad.(type) {
	case *videovector.Adapter:
		// The wire carries the canonical form VideoVector signs.
		if body, err = verify.CanonicalJSON(body); err != nil {
			return nil, nil, err
		}
		h, err = a.SignDelivery(body, now, videovector.Delivery{EventType: event, DeliveryID: "dlv_" + uid})
	case *standardwebhooks.Adapter:
		h, err = a.SignWithID("msg_"+uid, body, now)
	case *shortkit.Adapter:
		// The delivery id is not signed: Sign leaves it to the caller.
		if h, err = a.Sign(body, now); err == nil {
			h.Set(shortkit.DeliveryIDHeader, "dl_"+uid)
		}
	default:
		h, err = ad.Sign(body, now)
	}
	if err != nil {
		return nil, nil, err
	}
	return body, h, nil
}
