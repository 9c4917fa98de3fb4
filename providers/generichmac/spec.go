package generichmac

import (
	"time"

	"github.com/hookrelay/hookrelay/providers"
)

// Spec describes the generic hmac adapter to the config pipeline and to
// `hookrelay send`.
var Spec = providers.Spec{
	Name:       Name,
	NewOptions: func() providers.Options { return &Options{} },
	Events:     []string{"video.completed", "video.failed"},
	Sample: func(event, uid string, now time.Time) map[string]any {
		return map[string]any{"type": event, "timestamp": now.UTC().Format(time.RFC3339), "data": map[string]any{"id": "obj_" + uid}}
	},
}
