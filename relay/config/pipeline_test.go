package config_test

import (
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hookrelay/hookrelay/providers/shortkit"
	"github.com/hookrelay/hookrelay/providers/videovector"
	"github.com/hookrelay/hookrelay/relay/config"
)

const pipelineConfig = `server:
  listen: 127.0.0.1:0
sources:
  sp:
    provider: sketchpen
    secrets:
      - current-secret
      - {value: old-secret, expires: "2026-12-01T13:00:00Z"}
      - {value: older-secret, expires: "2026-11-20T00:00:00Z"}
  vv:
    provider: videovector
    secrets: [vv-secret]
    webhook_id: wh_42
  sk:
    provider: shortkit
    scheme: callback-header
    header: X-Callback-Token
    value: callback-token-value
targets:
  t:
    url: http://127.0.0.1:9/hooks
routes:
  - targets: [t]
`

func TestPipelineBuildsOnce(t *testing.T) {
	cfg, err := config.Parse("p.yaml", []byte(pipelineConfig), envOf(nil))
	if err != nil {
		t.Fatal(err)
	}
	sp := cfg.Sources["sp"]
	if got, want := sp.Secrets[1].Expires, time.Date(2026, 12, 1, 13, 0, 0, 0, time.UTC); !got.Equal(want) {
		t.Errorf("secrets[1].expires = %v, want %v", got, want)
	}
	if !sp.Secrets[0].Expires.IsZero() {
		t.Errorf("a plain secret expires at %v", sp.Secrets[0].Expires)
	}
	// The provider's own keys land in its options struct.
	if o, ok := cfg.Sources["vv"].Options.(*videovector.Options); !ok || o.WebhookID != "wh_42" {
		t.Errorf("videovector options = %#v, want WebhookID wh_42", cfg.Sources["vv"].Options)
	}
	if o, ok := cfg.Sources["sk"].Options.(*shortkit.Options); !ok || o.Scheme != "callback-header" || o.Header != "X-Callback-Token" {
		t.Errorf("shortkit options = %#v", cfg.Sources["sk"].Options)
	}
	// Built once: every source has its adapter and the sensitive headers.
	for name, s := range cfg.Sources {
		if s.Source() == nil || s.Source().Adapter == nil || s.Source().Name != name {
			t.Fatalf("source %s not built: %#v", name, s.Source())
		}
	}
	if got := cfg.Sources["sk"].Source().Adapter.SensitiveHeaders(); !slices.Contains(got, "X-Callback-Token") {
		t.Errorf("shortkit callback sensitive headers = %v", got)
	}
	if got, want := cfg.Routes[0].Name, "route-1"; got != want {
		t.Errorf("default route name = %q, want %q", got, want)
	}
}

func TestSecretWarnings(t *testing.T) {
	cfg, err := config.Parse("p.yaml", []byte(pipelineConfig), envOf(nil))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		now  time.Time
		want []string // substrings, in order
	}{
		{time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC), nil},
		{time.Date(2026, 11, 15, 0, 0, 0, 0, time.UTC), []string{"sources.sp.secrets[2] expires at 2026-11-20T00:00:00Z"}},
		{time.Date(2026, 11, 25, 0, 0, 0, 0, time.UTC), []string{"sources.sp.secrets[1] expires at 2026-12-01T13:00:00Z", "sources.sp.secrets[2] expired at 2026-11-20T00:00:00Z"}},
		{time.Date(2026, 12, 1, 13, 0, 0, 0, time.UTC), []string{"sources.sp.secrets[1] expired", "sources.sp.secrets[2] expired"}},
	}
	for _, tt := range tests {
		t.Run(tt.now.Format(time.DateOnly), func(t *testing.T) {
			got := cfg.SecretWarnings(tt.now)
			if len(got) != len(tt.want) {
				t.Fatalf("warnings = %q, want %d like %q", got, len(tt.want), tt.want)
			}
			for i, w := range tt.want {
				if !strings.Contains(got[i], w) {
					t.Errorf("warning %d = %q, want it to contain %q", i, got[i], w)
				}
				if strings.Contains(got[i], "secret-") || strings.Contains(got[i], "old-secret") {
					t.Errorf("warning %q shows a secret", got[i])
				}
			}
		})
	}
}

// TestParseIsRepeatable: the pipeline's validation changes nothing, so
// parsing the same text twice gives equal configs.
func TestParseIsRepeatable(t *testing.T) {
	a, err := config.Parse("p.yaml", []byte(pipelineConfig), envOf(nil))
	if err != nil {
		t.Fatal(err)
	}
	b, err := config.Parse("p.yaml", []byte(pipelineConfig), envOf(nil))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(a.Targets, b.Targets) || !reflect.DeepEqual(a.Routes, b.Routes) || !reflect.DeepEqual(a.Server, b.Server) {
		t.Error("two parses of one text differ")
	}
}

// TestCallbackValueNeverInErrors: the callback header's value (a secret
// option) is redacted from the adapter's errors.
func TestCallbackValueNeverInErrors(t *testing.T) {
	text := strings.Replace(pipelineConfig, "    header: X-Callback-Token\n", "    header: \"X Callback\"\n", 1)
	_, err := config.Parse("p.yaml", []byte(text), envOf(nil))
	if err == nil {
		t.Fatal("parsed a bad header name")
	}
	if !strings.Contains(err.Error(), "sources.sk.header") {
		t.Errorf("error %q does not name sources.sk.header", err)
	}
	if strings.Contains(err.Error(), "callback-token-value") {
		t.Errorf("error %q shows the callback value", err)
	}
}

func TestLoadAdmin(t *testing.T) {
	path := t.TempDir() + "/bad.yaml"
	text := "admin:\n  listen: 127.0.0.1:9999\n  token: ${HOOKRELAY_TEST_ADMIN_TOKEN:-tok}\nsources:\n  sp:\n    provider: nope\n"
	if err := writeFile(path, text); err != nil {
		t.Fatal(err)
	}
	a, err := config.LoadAdmin(path)
	if err != nil {
		t.Fatal(err)
	}
	if a.Listen != "127.0.0.1:9999" || a.Token != "tok" {
		t.Errorf("admin = %+v", a)
	}
}

func writeFile(path, text string) error { return os.WriteFile(path, []byte(text), 0o600) }

// TestClusterExamples: the three-node configs of docs/cluster.md load,
// route to each other and differ only where they must.
func TestClusterExamples(t *testing.T) {
	listens := map[string]bool{}
	for _, n := range []string{"a", "b", "c"} {
		cfg, err := config.LoadWith("../../configs/cluster/"+n+".yaml", envOf(nil))
		if err != nil {
			t.Fatal(err)
		}
		cl := cfg.Cluster
		if cl == nil || cl.Node != n || cl.Replicas != 3 || cl.NATS.Embedded == nil || len(cl.NATS.Embedded.Routes) != 2 {
			t.Fatalf("%s: cluster = %+v", n, cl)
		}
		for _, addr := range []string{cfg.Server.Listen, cfg.Admin.Listen, cl.NATS.Embedded.Listen, cl.NATS.Embedded.ClusterListen} {
			if listens[addr] {
				t.Errorf("%s: %s used by two nodes", n, addr)
			}
			listens[addr] = true
		}
		if !strings.HasSuffix(cl.NATS.Embedded.StoreDir, "configs/cluster/data-"+n+"/nats") {
			t.Errorf("%s: store_dir = %s, want under the config's directory", n, cl.NATS.Embedded.StoreDir)
		}
	}
}
