package videopilot

import (
	"time"

	"github.com/hookrelay/hookrelay/providers"
)

// Spec describes VideoPilot to the config pipeline and to `hookrelay send`.
var Spec = providers.Spec{
	Name: Name,
	NewOptions: func() providers.Options {
		return providers.NoOptions(func(c providers.Common) (providers.Adapter, error) { return providers.AsAdapter(New(c)) })
	},
	Events: []string{"render.completed", "render.failed", "video.created"},
	Sample: func(event, uid string, now time.Time) map[string]any {
		return map[string]any{"event": event, "timestamp": now.UTC().Format("2006-01-02T15:04:05.000Z"),
			"data": map[string]any{"render_job_id": "rj_" + uid, "video_id": "vid_" + uid, "status": "completed",
				"output_url": "https://videopilot.example/renders/rj_" + uid + ".mp4"}}
	},
}
