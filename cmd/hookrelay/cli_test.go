package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hookrelay/hookrelay/providers"
	"github.com/hookrelay/hookrelay/providers/registry"
	"github.com/hookrelay/hookrelay/relay/config"
)

// cliBinary is the hookrelay binary built once by TestMain.
var cliBinary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "hookrelay-cli-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	cliBinary = filepath.Join(dir, "hookrelay")
	gobin := filepath.Join(runtime.GOROOT(), "bin", "go")
	if _, err := os.Stat(gobin); err != nil {
		gobin = "go"
	}
	build := exec.Command(gobin, "build", "-o", cliBinary, ".")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build hookrelay:", err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// cliSecret is what ${SECRET} expands to in the config testdata.
const cliSecret = "whsec_cli-secret-never-shown"

// cliEnv is the environment of a child process: the test's, without any
// HOOKRELAY_ variable, plus extra ("K=V").
func cliEnv(extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "HOOKRELAY_") {
			env = append(env, kv)
		}
	}
	return append(env, extra...)
}

// cliResult is the outcome of one run of the binary.
type cliResult struct {
	code           int
	stdout, stderr string
}

// cliRun runs the binary to completion.
func cliRun(t *testing.T, env []string, args ...string) cliResult {
	t.Helper()
	cmd := exec.Command(cliBinary, args...)
	cmd.Env = env
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	res := cliResult{stdout: stdout.String(), stderr: stderr.String()}
	if ee, ok := err.(*exec.ExitError); ok {
		res.code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("run %v: %v", args, err)
	}
	return res
}

// wantOneErrorLine checks that stderr is exactly one line starting with
// prefix and that the output shows no crash and no secret.
func wantOneErrorLine(t *testing.T, res cliResult, prefix string) {
	t.Helper()
	if got, want := res.code, 1; got != want {
		t.Errorf("exit code = %d, want %d (stderr %q)", got, want, res.stderr)
	}
	lines := strings.Split(strings.TrimSuffix(res.stderr, "\n"), "\n")
	if got, want := len(lines), 1; got != want || !strings.HasSuffix(res.stderr, "\n") {
		t.Errorf("stderr has %d lines, want %d newline-terminated: %q", got, want, res.stderr)
	}
	if !strings.HasPrefix(res.stderr, prefix) {
		t.Errorf("stderr %q does not start with %q", res.stderr, prefix)
	}
	all := res.stdout + res.stderr
	for _, bad := range []string{"goroutine", "panic", cliSecret[:7], "cli-secret"} {
		if strings.Contains(all, bad) {
			t.Errorf("output contains %q: %q", bad, all)
		}
	}
}

const badConfigs = "../../relay/config/testdata/bad/"

func TestCheckBadConfig(t *testing.T) {
	tests := []struct {
		file string
		line int
	}{
		{"unknown_key_top.yaml", 6},
		{"unknown_key_nested.yaml", 10},
		{"unknown_provider.yaml", 6},
		{"unset_var.yaml", 8},
		{"bad_duration.yaml", 7},
		{"empty_env_secret.yaml", 6},
		{"route_unknown_target.yaml", 14},
		{"route_unknown_source.yaml", 13},
		{"duplicate_source_names.yaml", 9},
		{"admin_without_token.yaml", 3},
		{"secrets_scalar.yaml", 6},
	}
	env := cliEnv("SECRET="+cliSecret, "EMPTY=")
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			path := badConfigs + tt.file
			res := cliRun(t, env, "check", "--config", path)
			wantOneErrorLine(t, res, fmt.Sprintf("hookrelay: %s:%d: ", path, tt.line))
			if res.stdout != "" {
				t.Errorf("stdout = %q, want nothing", res.stdout)
			}
		})
	}
}

func TestCheckWithoutUsableConfig(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "missing.yaml")
	tests := []struct {
		name   string
		env    []string
		args   []string
		prefix string
	}{
		{"no --config", cliEnv(), []string{"check"}, "hookrelay: no config file"},
		{"missing file", cliEnv(), []string{"check", "--config", missing}, "hookrelay: "},
		{"missing file from HOOKRELAY_CONFIG", cliEnv("HOOKRELAY_CONFIG=" + missing), []string{"check"}, "hookrelay: "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := cliRun(t, tt.env, tt.args...)
			wantOneErrorLine(t, res, tt.prefix)
			if tt.name != "no --config" && !strings.Contains(res.stderr, "missing.yaml") {
				t.Errorf("stderr %q does not name the file", res.stderr)
			}
		})
	}
}

const exampleConfig = "../../configs/example.yaml"

// TestCheckExample: check prints every source, target and route by name,
// with --config and with HOOKRELAY_CONFIG.
func TestCheckExample(t *testing.T) {
	cfg, err := config.LoadWith(exampleConfig, func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	names = append(names, cfg.SourceNames()...)
	names = append(names, cfg.TargetNames()...)
	for _, r := range cfg.Routes {
		names = append(names, r.Name)
	}
	if len(names) < 6 {
		t.Fatalf("example has only %v", names)
	}
	tests := []struct {
		name string
		env  []string
		args []string
	}{
		{"--config", cliEnv(), []string{"check", "--config", exampleConfig}},
		{"-c", cliEnv(), []string{"check", "-c", exampleConfig}},
		{"HOOKRELAY_CONFIG", cliEnv("HOOKRELAY_CONFIG=" + exampleConfig), []string{"check"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := cliRun(t, tt.env, tt.args...)
			if got, want := res.code, 0; got != want {
				t.Fatalf("exit code = %d, want %d (stderr %q)", got, want, res.stderr)
			}
			if res.stderr != "" {
				t.Errorf("stderr = %q, want nothing", res.stderr)
			}
			for _, n := range names {
				if !regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(n) + `\s`).MatchString(res.stdout) {
					t.Errorf("output does not list %q:\n%s", n, res.stdout)
				}
			}
			for _, s := range cfg.Sources {
				for _, sec := range s.Secrets {
					if strings.Contains(res.stdout, sec.Value) {
						t.Errorf("output shows a secret: %s", res.stdout)
					}
				}
			}
		})
	}
}

func TestVersion(t *testing.T) {
	tests := []struct {
		name string
		args []string
	}{
		{"command", []string{"version"}},
		{"flag", []string{"--version"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := cliRun(t, cliEnv(), tt.args...)
			if got, want := res.code, 0; got != want {
				t.Fatalf("exit code = %d, want %d (stderr %q)", got, want, res.stderr)
			}
			if !versionRE.MatchString(res.stdout) {
				t.Errorf("stdout = %q, want \"hookrelay VERSION (commit C, goX)\"", res.stdout)
			}
		})
	}
}

// cliProc is a running hookrelay process (serve or sink) started by
// cliStart.
type cliProc struct {
	cmd   *exec.Cmd
	addrs map[string]string // listener name (public, admin, sink, ...) -> host:port
	addr  string            // the first listener waited for: serve's public one
	done  chan struct{}     // closed when the process has exited
	err   error             // of Wait, valid after done

	log    syncBuffer // all of stderr
	stdout syncBuffer
}

// syncBuffer is a bytes.Buffer that the process's output and the test
// may use at once.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// Log returns stderr so far.
func (p *cliProc) Log() string { return p.log.String() }

// listenerREs match the stderr lines in which hookrelay names a listener
// and its address: serve's "listening" log line (text or JSON) and the
// sink's banner.
var listenerREs = []*regexp.Regexp{
	regexp.MustCompile(`msg=listening listener=(\w+) addr=([^\s"]+)`),
	regexp.MustCompile(`"msg":"listening","listener":"(\w+)","addr":"([^"]+)"`),
	regexp.MustCompile(`(sink) listening on http://(\S+)`),
}

// listenerAddr returns the listener and address that line names, if any.
func listenerAddr(line string) (name, addr string, ok bool) {
	for _, re := range listenerREs {
		if m := re.FindStringSubmatch(line); m != nil {
			return m[1], m[2], true
		}
	}
	return "", "", false
}

// cliStart starts the binary with args and env and returns once stderr
// has named the address of every listener in want, or an error with the
// log if the process exits first (a test may retry, say when a port was
// taken). The process is killed at the end of the test if it is still
// running.
func cliStart(t *testing.T, env []string, args []string, want ...string) (*cliProc, error) {
	t.Helper()
	return cliStartIn(t, "", env, args, want...)
}

// cliStartIn is cliStart with the process's working directory set to dir
// ("" = the test's).
func cliStartIn(t *testing.T, dir string, env []string, args []string, want ...string) (*cliProc, error) {
	t.Helper()
	p := &cliProc{cmd: exec.Command(cliBinary, args...), addrs: map[string]string{}, done: make(chan struct{})}
	p.cmd.Env = env
	p.cmd.Dir = dir
	p.cmd.Stdout = &p.stdout
	stderr, err := p.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	ready := make(chan struct{})
	go func() {
		listening := false
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			line := sc.Text()
			p.log.Write([]byte(line + "\n"))
			if name, addr, ok := listenerAddr(line); ok && !listening {
				p.addrs[name] = addr
				if listening = hasAll(p.addrs, want); listening {
					p.addr = p.addrs[want[0]]
					close(ready)
				}
			}
		}
		_, _ = io.Copy(io.Discard, stderr)
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			_ = p.cmd.Process.Kill()
			<-p.done
		}
	})
	select {
	case <-ready:
		return p, nil
	case <-p.done:
		return nil, fmt.Errorf("%s exited before listening: %v\n%s", args[0], p.err, p.Log())
	case <-time.After(30 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
		return nil, fmt.Errorf("%s did not log the addresses of %v within 30s (killed):\n%s", args[0], want, p.Log())
	}
}

// hasAll reports whether addrs has an address for every name.
func hasAll(addrs map[string]string, names []string) bool {
	for _, n := range names {
		if addrs[n] == "" {
			return false
		}
	}
	return true
}

// cliServe starts `hookrelay serve --config cfgPath` and returns once the
// listeners named in want (the public one if none) have logged their
// addresses; it fails the test if serve exits first.
func cliServe(t *testing.T, env []string, cfgPath string, want ...string) *cliProc {
	t.Helper()
	if len(want) == 0 {
		want = []string{"public"}
	}
	p, err := cliStart(t, env, []string{"serve", "--config", cfgPath}, want...)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// wait waits for the process to exit and returns its exit code.
func (p *cliProc) wait(t *testing.T) int {
	t.Helper()
	select {
	case <-p.done:
	case <-time.After(30 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
		t.Fatalf("process did not exit within 30s:\n%s", p.Log())
	}
	if ee, ok := p.err.(*exec.ExitError); ok {
		return ee.ExitCode()
	}
	if p.err != nil {
		t.Fatalf("wait: %v", p.err)
	}
	return 0
}

// stop sends sig to the process and returns its exit code.
func (p *cliProc) stop(t *testing.T, sig syscall.Signal) int {
	t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		t.Fatal(err)
	}
	return p.wait(t)
}

// kill SIGKILLs the process and waits for it to be gone.
func (p *cliProc) kill(t *testing.T) {
	t.Helper()
	if err := p.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-p.done
}

// cliWriteConfig writes a config file with text and returns its path.
func cliWriteConfig(t *testing.T, text string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "hookrelay.yaml")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// cliConfig writes a serve config for one sketchpen source "sp" on
// ephemeral loopback ports with data in dataDir, and returns its path.
func cliConfig(t *testing.T, dataDir, logFormat string, sync bool) string {
	t.Helper()
	return cliWriteConfig(t, cliConfigText(dataDir, logFormat, sync))
}

// cliConfigText is the text of cliConfig; more sections may follow it.
func cliConfigText(dataDir, logFormat string, sync bool) string {
	return fmt.Sprintf(`server:
  listen: 127.0.0.1:0
  shutdown_timeout: 10s
admin:
  listen: 127.0.0.1:0
storage:
  path: %q
  sync: %v
log:
  level: info
  format: %s
sources:
  sp:
    provider: sketchpen
    secrets: ["${SECRET}"]
`, dataDir, sync, logFormat)
}

// cliSigner signs sketchpen webhooks with secret.
func cliSigner(t testing.TB, secret string) providers.Adapter {
	t.Helper()
	a, err := registry.New("sketchpen", providers.Common{Secrets: []providers.Secret{{Value: secret}}})
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// cliPost posts body to url with h; it returns the status and decoded
// answer, or the transport error.
func cliPost(client *http.Client, url string, h http.Header, body []byte) (int, map[string]string, error) {
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	for k, v := range h {
		req.Header[k] = v
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return resp.StatusCode, nil, err
	}
	var out map[string]string
	_ = json.Unmarshal(raw, &out)
	return resp.StatusCode, out, nil
}

// TestServeCleanShutdown: serve answers webhooks and exits 0 after SIGTERM
// (and after SIGINT), logging its shutdown; it is ready to take the same
// data directory again afterwards.
func TestServeCleanShutdown(t *testing.T) {
	tests := []struct {
		name   string
		format string
		sig    syscall.Signal
	}{
		{"text log, SIGTERM", "text", syscall.SIGTERM},
		{"json log, SIGTERM", "json", syscall.SIGTERM},
		{"text log, SIGINT", "text", syscall.SIGINT},
	}
	signer := cliSigner(t, cliSecret)
	dataDir := t.TempDir()
	var firstID string
	body := []byte(`{"event":"video.completed","video_id":"v-clean","created_at":1700000000}`)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfgPath := cliConfig(t, dataDir, tt.format, false)
			p := cliServe(t, cliEnv("SECRET="+cliSecret), cfgPath)
			h, err := signer.Sign(body, time.Now())
			if err != nil {
				t.Fatal(err)
			}
			status, out, err := cliPost(http.DefaultClient, "http://"+p.addr+"/webhooks/sp", h, body)
			if err != nil || status != http.StatusOK {
				t.Fatalf("POST = %d %v, %v", status, out, err)
			}
			if firstID == "" {
				if got, want := out["status"], "accepted"; got != want {
					t.Fatalf("status = %q, want %q", got, want)
				}
				firstID = out["id"]
			} else if out["status"] != "duplicate" || out["id"] != firstID {
				t.Errorf("after a restart: %v, want duplicate of %s", out, firstID)
			}
			if got, want := p.stop(t, tt.sig), 0; got != want {
				t.Errorf("exit code = %d, want %d\n%s", got, want, p.Log())
			}
			log := p.Log()
			for _, bad := range []string{"goroutine", "panic", cliSecret, "level=ERROR", `"level":"ERROR"`} {
				if strings.Contains(log, bad) {
					t.Errorf("log contains %q:\n%s", bad, log)
				}
			}
			if !strings.Contains(log, "stopped") {
				t.Errorf("log does not say the server stopped:\n%s", log)
			}
		})
	}
}
