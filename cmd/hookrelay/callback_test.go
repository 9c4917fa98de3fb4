package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"
)

const (
	cbToken    = "cbtok-7f3a9c2e5d1b8a46"
	cbOldToken = "cbtok-previous-0d9e8f7a"
)

// TestShortkitCallbackToken: shortkit callbacks authenticated by a token
// in the URL, through the real binary: right token 200 (the old one too,
// until it expires), wrong 401, missing 400, an identical callback is a
// duplicate, `send` builds a valid callback, and the token never shows in
// the serve log, `events show --json` or the admin API's event JSON.
func TestShortkitCallbackToken(t *testing.T) {
	target := newEvTarget(t, http.StatusOK)
	adminAddr := evFreeAddr(t)
	path := cliWriteConfig(t, fmt.Sprintf(`server:
  listen: 127.0.0.1:0
admin:
  listen: %q
  token: %q
storage:
  path: %q
log:
  level: debug
  format: json
sources:
  sk:
    provider: shortkit
    scheme: callback-token
    secrets:
      - %q
      - {value: %q, expires: "2099-01-01T00:00:00Z"}
targets:
  main:
    url: %s
routes:
  - targets: [main]
`, adminAddr, evToken, t.TempDir(), cbToken, cbOldToken, target.URL))
	env := cliEnv()
	p := cliServe(t, env, path, "public", "admin")
	base := "http://" + p.addr + "/webhooks/sk"
	body := []byte(`{"event":"content.imported","timestamp":"2026-12-01T10:00:00Z","data":{"contentId":"cnt_1","sourceUrl":"https://example.com/a.mp4"}}`)
	post := func(url string, b []byte) (int, map[string]string) {
		t.Helper()
		resp, err := http.Post(url, "application/json", bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		raw, _ := io.ReadAll(resp.Body)
		out := map[string]string{}
		_ = jsonUnmarshal(raw, &out)
		return resp.StatusCode, out
	}

	status, first := post(base+"?token="+cbToken, body)
	if status != http.StatusOK || first["status"] != "accepted" {
		t.Fatalf("right token: %d %v, want 200 accepted", status, first)
	}
	if status, out := post(base+"?token="+cbToken, body); status != http.StatusOK || out["status"] != "duplicate" || out["id"] != first["id"] {
		t.Errorf("identical callback: %d %v, want 200 duplicate %s", status, out, first["id"])
	}
	other := bytes.Replace(body, []byte("cnt_1"), []byte("cnt_2"), 1)
	if status, out := post(base+"?token="+cbOldToken, other); status != http.StatusOK || out["status"] != "accepted" {
		t.Errorf("previous token before it expires: %d %v, want 200 accepted", status, out)
	}
	if status, _ := post(base+"?token=wrong-"+cbToken, body); status != http.StatusUnauthorized {
		t.Errorf("wrong token: %d, want 401", status)
	}
	if status, _ := post(base, body); status != http.StatusBadRequest {
		t.Errorf("no token: %d, want 400", status)
	}
	if status, _ := post(base+"?token=", body); status != http.StatusBadRequest {
		t.Errorf("empty token: %d, want 400", status)
	}
	// Repeated token parameters: any valid one verifies, whatever the order.
	if status, _ := post(base+"?token=wrong&token="+cbToken, bytes.Replace(body, []byte("cnt_1"), []byte("cnt_3"), 1)); status != http.StatusOK {
		t.Errorf("a wrong then the right token: %d, want 200", status)
	}

	// send builds such a callback, token in the URL.
	res := cliRun(t, env, "send", "--provider", "shortkit", "--scheme", "callback-token", "--secret", cbToken, base)
	if res.code != 0 || !strings.Contains(res.stdout+res.stderr, "accepted") {
		t.Errorf("send --scheme callback-token: exit %d\n%s%s", res.code, res.stdout, res.stderr)
	}
	if res := cliRun(t, env, "send", "--provider", "shortkit", "--scheme", "callback-token", "--secret", "not-the-token", base); res.code == 0 {
		t.Errorf("send with a wrong token exited 0:\n%s%s", res.stdout, res.stderr)
	}

	id := first["id"]
	evWaitDelivered(t, adminAddr, id)
	show := cliRun(t, env, "events", "show", "--config", path, "--json", id)
	if show.code != 0 {
		t.Fatalf("events show: %d %s", show.code, show.stderr)
	}
	req, _ := http.NewRequest(http.MethodGet, "http://"+adminAddr+"/api/events/"+id, nil)
	req.Header.Set("Authorization", "Bearer "+evToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	apiJSON, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(apiJSON), `"subject":"cnt_1"`) || !strings.Contains(show.stdout, "cnt_1") {
		t.Errorf("the event is not in the admin API / events show output:\n%s\n%s", apiJSON, show.stdout)
	}
	if got := target.requests(); len(got) == 0 || got[0].event["type"] != "shortkit.content.imported" && got[0].event["type"] != "content.imported" {
		t.Errorf("target got %v", got)
	}
	if code := p.stop(t, syscall.SIGTERM); code != 0 {
		t.Errorf("serve exit code = %d", code)
	}
	for where, text := range map[string]string{"serve log": p.Log(), "events show --json": show.stdout, "admin API": string(apiJSON)} {
		for _, tok := range []string{cbToken, cbOldToken, "token=" + cbToken[:6]} {
			if strings.Contains(text, tok) {
				t.Errorf("%s shows the callback token %q", where, tok)
			}
		}
	}
}

// evWaitDelivered polls the admin API until event id is delivered.
func evWaitDelivered(t *testing.T, adminAddr, id string) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		req, _ := http.NewRequest(http.MethodGet, "http://"+adminAddr+"/api/events/"+id, nil)
		req.Header.Set("Authorization", "Bearer "+evToken)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if strings.Contains(string(b), `"status":"delivered"`) {
				return
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("event %s not delivered", id)
}

func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }
