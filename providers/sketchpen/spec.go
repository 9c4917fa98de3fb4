package sketchpen

import (
	"time"

	"github.com/hookrelay/hookrelay/providers"
)

// Spec describes Sketchpen to the config pipeline and to `hookrelay send`.
var Spec = providers.Spec{
	Name: Name,
	NewOptions: func() providers.Options {
		return providers.NoOptions(func(c providers.Common) (providers.Adapter, error) { return providers.AsAdapter(New(c)) })
	},
	Events: []string{"video.completed", "video.failed", "video.started"},
	Sample: func(event, uid string, now time.Time) map[string]any {
		return map[string]any{"event": event, "video_id": "vid_" + uid, "created_at": now.Unix(),
			"data": map[string]any{"title": "Quarterly update", "duration_seconds": 93.4, "status": "completed",
				"url": "https://cdn.sketchpen.example/v/vid_" + uid + ".mp4"}}
	},
}
