package route_test

import (
	"slices"
	"testing"

	"github.com/hookrelay/hookrelay/relay/route"
)

func TestTargets(t *testing.T) {
	tab := route.New([]route.Rule{
		{Name: "videos", Sources: []string{"sp"}, Events: []string{"video.*", "render.completed"}, Targets: []string{"media", "audit"}},
		{Name: "by-provider", Providers: []string{"shortkit"}, Targets: []string{"media"}},
		{Name: "all-audit", Targets: []string{"audit"}},
	})
	tests := []struct {
		name, source, provider, typ string
		want                        []string
	}{
		{"glob match fans out", "sp", "sketchpen", "video.completed", []string{"media", "audit"}},
		{"exact match", "sp", "sketchpen", "render.completed", []string{"media", "audit"}},
		{"glob does not match prefix only", "sp", "sketchpen", "videos.x", []string{"audit"}},
		{"other source falls to catch-all", "other", "sketchpen", "video.completed", []string{"audit"}},
		{"provider match, target once", "sk", "shortkit", "content.imported", []string{"media", "audit"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tab.Targets(tt.source, tt.provider, tt.typ); !slices.Equal(got, tt.want) {
				t.Errorf("Targets = %v, want %v", got, tt.want)
			}
		})
	}
	if got := route.New(nil).Targets("a", "b", "c"); got != nil {
		t.Errorf("empty table routed to %v, want unrouted", got)
	}
}
