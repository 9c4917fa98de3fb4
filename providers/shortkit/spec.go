package shortkit

import (
	"fmt"
	"net/http"
	"time"

	"github.com/hookrelay/hookrelay/providers"
)

// Spec describes shortkit to the config pipeline and to `hookrelay send`.
var Spec = providers.Spec{
	Name:       Name,
	NewOptions: func() providers.Options { return &Options{} },
	Events:     []string{"content.imported", "content.import_failed", "tiktok_import.completed", "content.playback_id_updated"},
	Sample: func(event, uid string, now time.Time) map[string]any {
		if event == "content.playback_id_updated" {
			// The organization-level Live VOD webhook: snake_case, unix seconds.
			return map[string]any{"event": event, "timestamp": now.Unix(),
				"data": map[string]any{"content_id": "cnt_" + uid, "playback_id": "pb_" + uid}}
		}
		return map[string]any{"event": event, "timestamp": now.UTC().Format(time.RFC3339),
			"data": map[string]any{"contentId": "cnt_" + uid, "status": "imported", "sourceUrl": "https://example.com/in/" + uid}}
	},
	// The delivery id is not signed: Sign leaves it to the caller.
	SignSample: func(a providers.Adapter, _ string, body []byte, uid string, now time.Time) ([]byte, http.Header, error) {
		sk, ok := a.(*Adapter)
		if !ok {
			return nil, nil, fmt.Errorf("%s: sign sample: adapter is a %T", Name, a)
		}
		h, err := sk.Sign(body, now)
		if err == nil && sk.scheme != SchemeCallbackHeader && sk.scheme != SchemeCallbackToken {
			h.Set(DeliveryIDHeader, "dl_"+uid)
		}
		return body, h, err
	},
}
