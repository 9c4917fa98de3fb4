package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

const (
	rlOldSecret = "whsec_reload-old-secret"
	rlNewSecret = "whsec_reload-new-secret"
	rlToken     = "reload-admin-token"
)

// rlConfig is the text of a reload-test config. secrets are the source's;
// extra is appended to the file (routes, another section); header is a
// header value of target main (a change makes the engine replace its
// dispatcher).
func rlConfig(dataDir, adminAddr, listen, mainURL, otherURL, header, routes string, secrets ...string) string {
	return fmt.Sprintf(`server:
  listen: %s
  shutdown_timeout: 10s
admin:
  listen: %q
  token: %q
storage:
  path: %q
log:
  level: info
  format: json
sources:
  sp:
    provider: sketchpen
    secrets: [%s]
targets:
  main:
    url: %s
    headers: {X-Rev: %q}
    retry: {max_attempts: 20, initial_backoff: 50ms, max_backoff: 200ms}
  other:
    url: %s
    retry: {max_attempts: 20, initial_backoff: 50ms, max_backoff: 200ms}
routes:
  - name: to-main
    match: {sources: [sp]}
    targets: [main]
%s`, listen, adminAddr, rlToken, dataDir, strings.Join(quoteAll(secrets), ", "), mainURL, header, otherURL, routes)
}

func quoteAll(ss []string) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = fmt.Sprintf("%q", s)
	}
	return out
}

const rlOtherRoute = `  - name: to-other
    match: {sources: [sp]}
    targets: [other]
`

// rlPost sends a sketchpen webhook about video vid signed with secret and
// returns the status and answer.
func rlPost(t *testing.T, addr, secret, vid string) (int, map[string]string) {
	t.Helper()
	body := fmt.Appendf(nil, `{"event":"video.completed","video_id":%q,"created_at":%d}`, vid, time.Now().Unix())
	h, err := cliSigner(t, secret).Sign(body, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	status, out, err := cliPost(http.DefaultClient, "http://"+addr+"/webhooks/sp", h, body)
	if err != nil {
		t.Fatalf("POST: %v", err)
	}
	return status, out
}

// rlReceived returns how many CloudEvents about each subject tg got.
func rlReceived(tg *evTarget) map[string]int {
	out := map[string]int{}
	for _, r := range tg.requests() {
		if s, ok := r.event["subject"].(string); ok {
			out[s]++
		}
	}
	return out
}

func rlWaitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// rlMetric returns the value of the first /metrics line starting with
// prefix, or "".
func rlMetric(t *testing.T, adminAddr, prefix string) string {
	t.Helper()
	for _, line := range strings.Split(adminMetrics(t, adminAddr, rlToken), "\n") {
		if strings.HasPrefix(line, prefix) {
			return strings.TrimSpace(strings.TrimPrefix(line, prefix))
		}
	}
	return ""
}

// TestReloadThroughBinary: a secret added by SIGHUP is accepted, a route
// added by `hookrelay reload` delivers, an invalid file and a changed
// server.listen are refused with the key named while the old config keeps
// serving, reloads are counted, and 500 webhooks sent during 20 reloads
// (each replacing a target's dispatcher) are all answered 200 and all
// delivered.
func TestReloadThroughBinary(t *testing.T) {
	mainT, otherT := newEvTarget(t, http.StatusOK), newEvTarget(t, http.StatusOK)
	dataDir, adminAddr := t.TempDir(), evFreeAddr(t)
	// Files are replaced atomically (write, then rename), as editors and
	// config tools do: a SIGHUP still being handled never reads half a file.
	write := func(path, text string) {
		t.Helper()
		tmp := path + ".tmp"
		if err := os.WriteFile(tmp, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, path); err != nil {
			t.Fatal(err)
		}
	}
	conf := func(listen, header, routes string, secrets ...string) string {
		return rlConfig(dataDir, adminAddr, listen, mainT.URL, otherT.URL, header, routes, secrets...)
	}
	path := cliWriteConfig(t, conf("127.0.0.1:0", "1", "", rlOldSecret))
	env := cliEnv()
	p := cliServe(t, env, path, "public", "admin")
	reload := func() cliResult { return cliRun(t, env, "reload", "--config", path) }

	if status, _ := rlPost(t, p.addr, rlNewSecret, "before-rotation"); status != http.StatusUnauthorized {
		t.Fatalf("new secret before the reload: %d, want 401", status)
	}

	t.Run("secret added by SIGHUP", func(t *testing.T) {
		write(path, conf("127.0.0.1:0", "1", "", rlOldSecret, rlNewSecret))
		if err := p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
		rlWaitFor(t, "the new secret to be accepted", func() bool {
			status, _ := rlPost(t, p.addr, rlNewSecret, "after-sighup-"+time.Now().Format("150405.000000"))
			return status == http.StatusOK
		})
		if status, _ := rlPost(t, p.addr, rlOldSecret, "old-still-valid"); status != http.StatusOK {
			t.Errorf("old secret after the reload: %d, want 200 (still configured)", status)
		}
		if !strings.Contains(p.Log(), `"msg":"config reloaded"`) {
			t.Errorf("no reload logged:\n%s", p.Log())
		}
	})

	t.Run("route added by hookrelay reload delivers", func(t *testing.T) {
		write(path, conf("127.0.0.1:0", "1", rlOtherRoute, rlOldSecret, rlNewSecret))
		res := reload()
		if res.code != 0 || !strings.Contains(res.stdout, "reloaded") {
			t.Fatalf("reload: exit %d, stdout %q, stderr %q", res.code, res.stdout, res.stderr)
		}
		if status, out := rlPost(t, p.addr, rlNewSecret, "new-route"); status != http.StatusOK || out["status"] != "accepted" {
			t.Fatalf("POST after reload: %d %v", status, out)
		}
		rlWaitFor(t, "target other to get the event", func() bool { return rlReceived(otherT)["new-route"] > 0 })
	})

	t.Run("invalid file refused, old config serves", func(t *testing.T) {
		bad := strings.Replace(conf("127.0.0.1:0", "1", rlOtherRoute, rlNewSecret), "    provider: sketchpen\n", "    provider: sketchpen\n    secretz: [x]\n", 1)
		write(path, bad)
		res := reload()
		if res.code != 1 {
			t.Fatalf("reload of an invalid file: exit %d, want 1 (stderr %q)", res.code, res.stderr)
		}
		for _, want := range []string{path + ":", "sources.sp.secretz", `unknown key "secretz"`} {
			if !strings.Contains(res.stderr, want) {
				t.Errorf("stderr %q does not name %q", res.stderr, want)
			}
		}
		// The running config still has both secrets and both routes.
		if status, _ := rlPost(t, p.addr, rlOldSecret, "after-invalid"); status != http.StatusOK {
			t.Errorf("old secret after a refused reload: %d, want 200", status)
		}
		rlWaitFor(t, "the old routes to deliver", func() bool {
			return rlReceived(otherT)["after-invalid"] > 0 && rlReceived(mainT)["after-invalid"] > 0
		})
	})

	t.Run("changed server.listen needs a restart", func(t *testing.T) {
		write(path, conf("127.0.0.1:1", "1", rlOtherRoute, rlOldSecret, rlNewSecret))
		res := reload()
		if res.code != 1 || !strings.Contains(res.stderr, "needs a restart: server.listen") {
			t.Fatalf("reload with a new server.listen: exit %d, stderr %q; want 1 and \"needs a restart: server.listen\"", res.code, res.stderr)
		}
		if status, _ := rlPost(t, p.addr, rlOldSecret, "after-restart-refusal"); status != http.StatusOK {
			t.Errorf("POST after a refused reload: %d, want 200", status)
		}
	})

	t.Run("reloads are counted", func(t *testing.T) {
		for result, want := range map[string]string{"success": "2", "invalid": "1", "needs_restart": "1"} {
			if got := rlMetric(t, adminAddr, `hookrelay_config_reloads_total{result="`+result+`"} `); got != want {
				t.Errorf("reloads_total{%s} = %q, want %s", result, got, want)
			}
		}
		if got := rlMetric(t, adminAddr, "hookrelay_config_last_reload_success_timestamp_seconds "); got == "" || got == "0" {
			t.Errorf("last reload timestamp = %q, want set", got)
		}
	})

	t.Run("500 webhooks during 20 reloads", func(t *testing.T) {
		logFrom := len(p.Log())
		write(path, conf("127.0.0.1:0", "1", "", rlOldSecret))
		if res := reload(); res.code != 0 {
			t.Fatalf("reload: %q", res.stderr)
		}
		const n, workers = 500, 8
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		reloadsDone := make(chan error, 1)
		go func() {
			// Each reload changes target main's headers, so the engine
			// replaces its dispatcher while deliveries are in flight;
			// SIGHUP and `hookrelay reload` alternate.
			for i := range 20 {
				write(path, conf("127.0.0.1:0", fmt.Sprint(i+2), "", rlOldSecret))
				if i%2 == 0 {
					if err := p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
						reloadsDone <- err
						return
					}
				} else if res := reload(); res.code != 0 {
					reloadsDone <- fmt.Errorf("reload %d: %s", i, res.stderr)
					return
				}
				select {
				case <-ctx.Done():
				case <-time.After(25 * time.Millisecond):
				}
			}
			reloadsDone <- nil
		}()
		var wg sync.WaitGroup
		errs := make(chan string, n)
		for w := range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := w; i < n; i += workers {
					if status, out := rlPost(t, p.addr, rlOldSecret, fmt.Sprintf("load-%03d", i)); status != http.StatusOK || out["status"] != "accepted" {
						errs <- fmt.Sprintf("webhook %d: %d %v", i, status, out)
					}
				}
			}()
		}
		wg.Wait()
		close(errs)
		for e := range errs {
			t.Error(e)
		}
		if err := <-reloadsDone; err != nil {
			t.Fatal(err)
		}
		rlWaitFor(t, "all 500 webhooks to be delivered", func() bool {
			got := rlReceived(mainT)
			for i := range n {
				if got[fmt.Sprintf("load-%03d", i)] == 0 {
					return false
				}
			}
			return true
		})
		if log := p.Log()[logFrom:]; strings.Contains(log, "config reload refused") {
			t.Errorf("a reload was refused:\n%s", log)
		}
	})
	if code := p.stop(t, syscall.SIGTERM); code != 0 {
		t.Errorf("serve exit code = %d, want 0", code)
	}
}
