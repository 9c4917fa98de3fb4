package videovector

import (
	"fmt"
	"net/http"
	"time"

	"github.com/hookrelay/hookrelay/providers"
	"github.com/hookrelay/hookrelay/verify"
)

// Spec describes VideoVector to the config pipeline and to `hookrelay
// send`.
var Spec = providers.Spec{
	Name:       Name,
	NewOptions: func() providers.Options { return &Options{} },
	Events:     []string{"video.ready", "video.failed", "test"},
	Sample: func(event, uid string, now time.Time) map[string]any {
		return map[string]any{"id": "evt_" + uid, "event": event, "created_at": now.UTC().Format(time.RFC3339),
			"data": map[string]any{"id": "vid_" + uid, "status": "ready", "title": "Démo vidéo", "duration": 42.0}}
	},
	// The wire carries the canonical form VideoVector signs, with the event
	// type and a delivery id in headers.
	SignSample: func(a providers.Adapter, event string, body []byte, uid string, now time.Time) ([]byte, http.Header, error) {
		vv, ok := a.(*Adapter)
		if !ok {
			return nil, nil, fmt.Errorf("%s: sign sample: adapter is a %T", Name, a)
		}
		canon, err := verify.CanonicalJSON(body)
		if err != nil {
			return nil, nil, err
		}
		h, err := vv.SignDelivery(canon, now, Delivery{EventType: event, DeliveryID: "dlv_" + uid})
		return canon, h, err
	},
}
