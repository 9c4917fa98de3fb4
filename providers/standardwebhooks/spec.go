package standardwebhooks

import (
	"fmt"
	"net/http"
	"time"

	"github.com/hookrelay/hookrelay/providers"
)

// Spec describes the Standard Webhooks adapter to the config pipeline and
// to `hookrelay send`.
var Spec = providers.Spec{
	Name: Name,
	NewOptions: func() providers.Options {
		return providers.NoOptions(func(c providers.Common) (providers.Adapter, error) { return providers.AsAdapter(New(c)) })
	},
	Events: []string{"video.completed", "video.failed"},
	Sample: func(event, uid string, now time.Time) map[string]any {
		return map[string]any{"type": event, "timestamp": now.UTC().Format(time.RFC3339), "data": map[string]any{"id": "obj_" + uid}}
	},
	// The message id derives from uid, so each sample is a new message.
	SignSample: func(a providers.Adapter, _ string, body []byte, uid string, now time.Time) ([]byte, http.Header, error) {
		sw, ok := a.(*Adapter)
		if !ok {
			return nil, nil, fmt.Errorf("%s: sign sample: adapter is a %T", Name, a)
		}
		h, err := sw.SignWithID("msg_"+uid, body, now)
		return body, h, err
	},
}
