package relay

import (
	"testing"
	"time"

	"github.com/hookrelay/hookrelay/relay/config"
)

func TestChangedKey(t *testing.T) {
	base := func() *config.Config {
		c := config.Default()
		c.Sources = map[string]*config.Source{"a": {Provider: "sketchpen"}}
		return c
	}
	tests := []struct {
		name   string
		change func(*config.Config)
		want   string
	}{
		{"nothing", func(*config.Config) {}, ""},
		{"sources, targets and routes reload", func(c *config.Config) {
			c.Sources["b"] = &config.Source{Provider: "videopilot"}
			c.Targets = map[string]*config.Target{"t": {URL: "http://127.0.0.1:1"}}
			c.Routes = []*config.Route{{Name: "r", Targets: []string{"t"}}}
		}, ""},
		{"server.listen", func(c *config.Config) { c.Server.Listen = ":9999" }, "server.listen"},
		{"server.read_timeout", func(c *config.Config) { c.Server.ReadTimeout = config.Duration(time.Minute) }, "server.read_timeout"},
		{"admin.token", func(c *config.Config) { c.Admin.Token = "x" }, "admin.token"},
		{"storage.path", func(c *config.Config) { c.Storage.Path = "/elsewhere" }, "storage.path"},
		{"storage.sync", func(c *config.Config) { c.Storage.Sync = true }, "storage.sync"},
		{"tls.domains", func(c *config.Config) { c.TLS.Domains = []string{"x.example"} }, "tls.domains"},
		{"dedupe.window", func(c *config.Config) { c.Dedupe.Window = config.Duration(time.Hour) }, "dedupe.window"},
		{"log.level", func(c *config.Config) { c.Log.Level = "debug" }, "log.level"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, b := base(), base()
			tt.change(b)
			if got := changedKey(a, b); got != tt.want {
				t.Errorf("changedKey = %q, want %q", got, tt.want)
			}
		})
	}
}
