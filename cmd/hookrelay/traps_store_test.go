package main

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
)

// TestEventsWithoutSecretsAndStoreTraps, through the real binary:
// `events` never needs the sources' secrets (their variable unset), with
// and without a server; with neither a server nor a store it says "no
// store at PATH" and creates nothing; a second serve on the same directory
// names the hookrelay (and pid) that holds it; a storage.path that cannot
// be made names storage.path.
func TestEventsWithoutSecretsAndStoreTraps(t *testing.T) {
	dir := t.TempDir()
	dataDir := filepath.Join(dir, "store")
	adminAddr := evFreeAddr(t)
	text := fmt.Sprintf(`server:
  listen: 127.0.0.1:0
admin:
  listen: %q
  token: %q
storage:
  path: %q
log:
  format: json
sources:
  sp:
    provider: sketchpen
    secrets: ["${HRT_SP_SECRET}"]
`, adminAddr, evToken, dataDir)
	path := cliWriteConfig(t, text)
	noSecret := cliEnv()

	t.Run("no server, no store", func(t *testing.T) {
		res := cliRun(t, noSecret, "events", "list", "--config", path)
		if res.code != 1 || !strings.Contains(res.stderr, "no store at "+dataDir) {
			t.Errorf("events list: exit %d, stderr %q; want 1 and \"no store at %s\"", res.code, res.stderr, dataDir)
		}
		if _, err := os.Stat(dataDir); !os.IsNotExist(err) {
			t.Errorf("events list created %s (%v)", dataDir, err)
		}
		if res := cliRun(t, noSecret, "check", "--config", path); res.code != 1 || !strings.Contains(res.stderr, "HRT_SP_SECRET") {
			t.Errorf("check without the secret: exit %d %q; want it refused naming the variable", res.code, res.stderr)
		}
	})

	withSecret := cliEnv("HRT_SP_SECRET=" + evSecret)
	p := cliServe(t, withSecret, path, "public", "admin")
	id, _ := evPost(t, p.addr, []byte(`{"event":"video.completed","video_id":"v1","created_at":1}`))

	t.Run("through the server, without the secret", func(t *testing.T) {
		res := cliRun(t, noSecret, "events", "list", "--config", path)
		if res.code != 0 || !strings.Contains(res.stdout, id) {
			t.Errorf("events list: exit %d\n%s%s", res.code, res.stdout, res.stderr)
		}
	})

	t.Run("second serve on the same directory", func(t *testing.T) {
		other := cliWriteConfig(t, strings.Replace(text, adminAddr, evFreeAddr(t), 1))
		res := cliRun(t, withSecret, "serve", "--config", other)
		want := regexp.MustCompile(`another hookrelay \(pid ` + fmt.Sprint(p.cmd.Process.Pid) + `\) holds the store at ` + regexp.QuoteMeta(dataDir))
		if res.code != 1 || !want.MatchString(res.stderr) {
			t.Errorf("second serve: exit %d, stderr %q; want %s", res.code, res.stderr, want)
		}
	})

	if code := p.stop(t, syscall.SIGTERM); code != 0 {
		t.Fatalf("serve exit %d", code)
	}

	t.Run("offline, without the secret", func(t *testing.T) {
		res := cliRun(t, noSecret, "events", "show", "--config", path, "--json", id)
		if res.code != 0 || !strings.Contains(res.stdout, id) {
			t.Errorf("events show offline: exit %d\n%s%s", res.code, res.stdout, res.stderr)
		}
		res = cliRun(t, noSecret, "replay", "--config", path, "--id", id, "--dry-run")
		if res.code != 0 {
			t.Errorf("replay --dry-run offline: exit %d\n%s%s", res.code, res.stdout, res.stderr)
		}
	})

	t.Run("storage.path that cannot be made", func(t *testing.T) {
		file := filepath.Join(dir, "a-file")
		if err := os.WriteFile(file, []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
		bad := cliWriteConfig(t, strings.Replace(text, dataDir, filepath.Join(file, "store"), 1))
		res := cliRun(t, withSecret, "serve", "--config", bad)
		if res.code != 1 || !strings.Contains(res.stderr, "storage.path") {
			t.Errorf("serve on an impossible storage.path: exit %d, stderr %q; want it to name storage.path", res.code, res.stderr)
		}
	})
}
