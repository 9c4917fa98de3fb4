package main

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hookrelay/hookrelay/providers"
	"github.com/hookrelay/hookrelay/providers/registry"
	"github.com/hookrelay/hookrelay/relay/config"
	"github.com/hookrelay/hookrelay/verify"
)

// versionRE is the one version line of `version` and `--version`.
var versionRE = regexp.MustCompile(`^hookrelay \S+ \(commit \S+, go\d+\.\d+(\.\d+)?\S*\)\n$`)

// wantUTCTimes checks that every time in text is RFC 3339 in UTC with
// milliseconds (the CLI's one format), and that there are at least min.
func wantUTCTimes(t *testing.T, what, text string, min int) {
	t.Helper()
	any := regexp.MustCompile(`\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d\S*`).FindAllString(text, -1)
	if len(any) < min {
		t.Errorf("%s shows %d times, want at least %d:\n%s", what, len(any), min, text)
	}
	utc := regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$`)
	for _, s := range any {
		if !utc.MatchString(s) {
			t.Errorf("%s shows the time %q, want RFC 3339 UTC like 2026-01-02T15:04:05.000Z", what, s)
		}
	}
}

func TestNormalizeArgs(t *testing.T) {
	app := newApp(io.Discard, io.Discard)
	tests := []struct{ in, want string }{
		{"send URL --provider P --secret S", "send --provider P --secret S URL"},
		{"send --provider P URL --count 3 -q", "send --provider P --count 3 -q URL"},
		{"send URL --provider=P", "send --provider=P URL"},
		{"send --provider P -- -weird-url", "send --provider P -- -weird-url"},
		{"send URL --provider P -- --count", "send --provider P -- URL --count"},
		{"events show ID --config F --json", "events show --config F --json ID"},
		{"events show ID -c F", "events show -c F ID"},
		{"targets-or-typo X --y", "targets-or-typo X --y"},
		{"events lst --config F", "events lst --config F"},
		{"help", "--help"},
		{"help events list", "events list --help"},
		{"replay --id A --id B", "replay --id A --id B"},
		{"--version", "--version"},
		{"events list --generate-bash-completion", "events list --generate-bash-completion"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got := normalizeArgs(app, append([]string{"hookrelay"}, strings.Fields(tt.in)...))
			if want := append([]string{"hookrelay"}, strings.Fields(tt.want)...); !slices.Equal(got, want) {
				t.Errorf("normalizeArgs(%q) = %q, want %q", tt.in, got, want)
			}
		})
	}
}

// TestHelpEverywhere: help, help CMD, help CMD SUB and CMD --help work for
// every command, say what it does, name its exit codes, and every flag's
// placeholder says what it stands for.
func TestHelpEverywhere(t *testing.T) {
	res := cliRun(t, cliEnv(), "help")
	if res.code != 0 || !strings.Contains(res.stdout, "COMMANDS:") || !strings.Contains(res.stdout, "Exit codes:") {
		t.Fatalf("help: exit %d\n%s%s", res.code, res.stdout, res.stderr)
	}
	if got := cliRun(t, cliEnv()); got.stdout != res.stdout {
		t.Errorf("hookrelay alone prints other help than hookrelay help:\n%s", got.stdout)
	}
	var paths [][]string
	for _, c := range newApp(io.Discard, io.Discard).Commands {
		if c.Name == "help" {
			continue
		}
		if !strings.Contains(res.stdout, c.Name) {
			t.Errorf("help does not list %s", c.Name)
		}
		if len(c.Subcommands) == 0 {
			paths = append(paths, []string{c.Name})
		}
		for _, s := range c.Subcommands {
			paths = append(paths, []string{c.Name, s.Name})
		}
	}
	placeholder := regexp.MustCompile(`--[\w-]+ value\b`)
	for _, p := range paths {
		name := strings.Join(p, " ")
		t.Run(name, func(t *testing.T) {
			viaHelp := cliRun(t, cliEnv(), append([]string{"help"}, p...)...)
			viaFlag := cliRun(t, cliEnv(), append(p, "--help")...)
			if viaHelp.code != 0 || viaFlag.code != 0 {
				t.Fatalf("help %s: exit %d, %s --help: exit %d (%s%s)", name, viaHelp.code, name, viaFlag.code, viaHelp.stderr, viaFlag.stderr)
			}
			if viaHelp.stdout != viaFlag.stdout {
				t.Errorf("help %s and %s --help differ:\n%s\n---\n%s", name, name, viaHelp.stdout, viaFlag.stdout)
			}
			out := viaHelp.stdout
			if !strings.Contains(out, "hookrelay "+name+" - ") {
				t.Errorf("help of %s does not say what it does:\n%s", name, out)
			}
			if !regexp.MustCompile(`Exit codes: 0 .*1 `).MatchString(out) {
				t.Errorf("help of %s does not give its exit codes:\n%s", name, out)
			}
			if m := placeholder.FindString(out); m != "" {
				t.Errorf("help of %s has a placeholder that says nothing: %q", name, m)
			}
		})
	}
}

// TestUnknownCommand: an unknown command (or subcommand, or help topic)
// exits 1 with one line that suggests the nearest one.
func TestUnknownCommand(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"serv"}, `unknown command "serv"; did you mean "serve"?`},
		{[]string{"repaly", "--all"}, `did you mean "replay"?`},
		{[]string{"events", "lst"}, `unknown events command "lst"; did you mean "list"?`},
		{[]string{"help", "chek"}, `did you mean "check"?`},
		{[]string{"frobnicate"}, `unknown command "frobnicate" (the commands: hookrelay help)`},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			res := cliRun(t, cliEnv(), tt.args...)
			wantOneErrorLine(t, res, "hookrelay: unknown ")
			if !strings.Contains(res.stderr, tt.want) {
				t.Errorf("stderr %q does not say %q", res.stderr, tt.want)
			}
		})
	}
}

// TestFlagErrors: a bad flag is one line naming the command, in words,
// with the nearest flag and where the help is, not the whole help text.
func TestFlagErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"events", "list", "--sorce", "x"}, "hookrelay: events list: unknown flag --sorce; did you mean --source? (see hookrelay help events list)"},
		{[]string{"send", "--count"}, "hookrelay: send: flag --count needs a value (see hookrelay help send)"},
		{[]string{"--bogus"}, "hookrelay: unknown flag --bogus (see hookrelay help)"},
	} {
		wantOneErrorLine(t, cliRun(t, cliEnv(), tc.args...), tc.want+"\n")
	}
}

func TestPseudoCommit(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"v0.0.0-20261201104400-8858dc2a55f3", "8858dc2a55f3"},
		{"v1.2.3", "unknown"},
		{"v1.2.4-0.20261201104400-8858dc2a55f3", "8858dc2a55f3"},
		{"(devel)", "unknown"},
	} {
		if got := pseudoCommit(tt.in, "unknown"); got != tt.want {
			t.Errorf("pseudoCommit(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestVersionLineSame(t *testing.T) {
	a, b := cliRun(t, cliEnv(), "version"), cliRun(t, cliEnv(), "--version")
	if a.stdout != b.stdout || !versionRE.MatchString(a.stdout) {
		t.Errorf("version %q and --version %q: want the same line \"hookrelay VERSION (commit C, goX)\"", a.stdout, b.stdout)
	}
}

func TestCompletion(t *testing.T) {
	for _, sh := range []string{"bash", "zsh", "fish"} {
		res := cliRun(t, cliEnv(), "completion", sh)
		if res.code != 0 || !strings.Contains(res.stdout, "hookrelay") {
			t.Errorf("completion %s: exit %d, %q %q", sh, res.code, res.stdout, res.stderr)
		}
		if bash, err := exec.LookPath("bash"); err == nil && sh == "bash" {
			if out, err := exec.Command(bash, "-n", "-c", res.stdout).CombinedOutput(); err != nil {
				t.Errorf("the bash script does not parse: %v %s", err, out)
			}
		}
	}
	// The scripts ask the binary for the words.
	res := cliRun(t, cliEnv(), "--generate-bash-completion")
	for _, w := range []string{"serve", "events", "init", "completion"} {
		if !regexp.MustCompile(`(?m)^` + w + `$`).MatchString(res.stdout) {
			t.Errorf("completion words %q lack %s", res.stdout, w)
		}
	}
	res = cliRun(t, cliEnv(), "events", "--generate-bash-completion")
	if !strings.Contains(res.stdout, "list") || !strings.Contains(res.stdout, "show") {
		t.Errorf("events completion words = %q", res.stdout)
	}
	wantOneErrorLine(t, cliRun(t, cliEnv(), "completion", "tcsh"), `hookrelay: unknown shell "tcsh"`)
}

// TestInit: init writes a config that check accepts as written, prints the
// next commands, never overwrites, and refuses unknown providers.
func TestInit(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "hookrelay.yaml")
	res := cliRun(t, cliEnv(), "init", "--provider", "sketchpen", "--provider", "shortkit", "--provider", "standard-webhooks",
		"--provider", "hmac", "--provider", "videovector", "--provider", "videopilot", "--out", out, "--target", "http://127.0.0.1:9/in")
	if res.code != 0 {
		t.Fatalf("init: exit %d %s", res.code, res.stderr)
	}
	for _, want := range []string{"hookrelay check --config " + out, "hookrelay serve --config " + out, "hookrelay send --config " + out + " --source sketchpen"} {
		if !strings.Contains(res.stdout, want) {
			t.Errorf("init does not print %q:\n%s", want, res.stdout)
		}
	}
	written, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(out); fi.Mode().Perm() != 0o600 {
		t.Errorf("mode = %v, want 0600 (it holds secrets)", fi.Mode().Perm())
	}
	check := cliRun(t, cliEnv(), "check", "--config", out)
	if check.code != 0 {
		t.Fatalf("check of the init config: exit %d %s", check.code, check.stderr)
	}
	for _, name := range []string{"sketchpen", "shortkit", "standard-webhooks", "hmac", "videovector", "videopilot", "main", "everything"} {
		if !regexp.MustCompile(`(?m)^` + name + `\s`).MatchString(check.stdout) {
			t.Errorf("check does not list %s:\n%s", name, check.stdout)
		}
	}
	again := cliRun(t, cliEnv(), "init", "--out", out)
	wantOneErrorLine(t, again, "hookrelay: "+out+" already exists: not overwriting")
	if now, _ := os.ReadFile(out); !bytes.Equal(now, written) {
		t.Error("a second init changed the file")
	}
	bad := cliRun(t, cliEnv(), "init", "--provider", "sketchpad", "--out", filepath.Join(dir, "b.yaml"))
	wantOneErrorLine(t, bad, `hookrelay: --provider: unknown provider "sketchpad"`)
	if _, err := os.Stat(filepath.Join(dir, "b.yaml")); err == nil {
		t.Error("a refused init wrote a file")
	}
}

// fakeRelay is an HTTP server that verifies requests as source "sp" of
// cfg would, playing hookrelay for send.
type fakeRelay struct {
	mu       sync.Mutex
	verified []string // event types of verified requests
	paths    []string
}

func (f *fakeRelay) handler(ad providers.Adapter) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		f.mu.Lock()
		defer f.mu.Unlock()
		f.paths = append(f.paths, r.URL.Path)
		if err := ad.Verify(r.Header, body, time.Now()); err != nil {
			w.WriteHeader(http.StatusUnauthorized)
			fmt.Fprintf(w, `{"error":%q}`, err.Error())
			return
		}
		ev, _ := ad.Parse(r.Header, body)
		f.verified = append(f.verified, ev.Type)
		fmt.Fprintf(w, `{"status":"accepted","id":"evt-%d"}`, len(f.verified))
	}
}

// TestSendFlagsAndConfig: send takes flags after the URL, reads provider,
// secret and URL from the config with --source, lists its sample events,
// and refuses an unknown --event with the list.
func TestSendFlagsAndConfig(t *testing.T) {
	const secret = "whsec_send-from-config"
	ad, err := registry.New("sketchpen", providers.Common{Secrets: []providers.Secret{{Value: secret}}})
	if err != nil {
		t.Fatal(err)
	}
	fr := &fakeRelay{}
	srv := httptest.NewServer(fr.handler(ad))
	defer srv.Close()
	addr := strings.TrimPrefix(srv.URL, "http://")
	cfgPath := cliWriteConfig(t, fmt.Sprintf("server:\n  listen: %s\nsources:\n  sp:\n    provider: sketchpen\n    secrets: [\"${SP_SECRET}\"]\n", addr))
	env := cliEnv("SP_SECRET=" + secret)

	// Flags after the positional URL.
	res := cliRun(t, env, "send", srv.URL+"/webhooks/sp", "--provider", "sketchpen", "--secret", secret, "--event", "video.failed")
	if res.code != 0 || !strings.Contains(res.stdout, "HTTP 200 accepted") {
		t.Fatalf("send URL --flags: exit %d %q %q", res.code, res.stdout, res.stderr)
	}
	// Everything from the config.
	res = cliRun(t, env, "send", "--config", cfgPath, "--source", "sp", "--count", "2")
	if res.code != 0 {
		t.Fatalf("send --config --source: exit %d %q %q", res.code, res.stdout, res.stderr)
	}
	fr.mu.Lock()
	if got, want := fr.verified, []string{"video.failed", "video.completed", "video.completed"}; !slices.Equal(got, want) {
		t.Errorf("verified events = %q, want %q", got, want)
	}
	if got, want := fr.paths[len(fr.paths)-1], "/webhooks/sp"; got != want {
		t.Errorf("path = %q, want %q", got, want)
	}
	fr.mu.Unlock()

	res = cliRun(t, env, "send", "--list-events", "--provider", "shortkit")
	if res.code != 0 || !strings.HasPrefix(res.stdout, "content.imported\n") || !strings.Contains(res.stdout, "content.import_failed\n") {
		t.Errorf("--list-events: exit %d %q", res.code, res.stdout)
	}
	res = cliRun(t, env, "send", "--config", cfgPath, "--source", "sp", "--list-events")
	if res.code != 0 || !strings.Contains(res.stdout, "video.completed\n") {
		t.Errorf("--list-events --source: exit %d %q", res.code, res.stdout)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"send", "--config", cfgPath, "--source", "sp", "--event", "bogus.type"}, `--event: sketchpen has no sample event "bogus.type" (known: video.completed, `},
		{[]string{"send", "--config", cfgPath, "--source", "nope"}, `--source: unknown source "nope" (known: sp)`},
		{[]string{"send", "--config", cfgPath, "--source", "sp", "--secret", "x"}, "--secret: not with --source"},
		{[]string{"send", srv.URL}, "send needs --provider PROVIDER and --secret SECRET, or --config FILE --source NAME"},
		{[]string{"send", "--provider", "sketchpen", srv.URL}, "send needs --secret SECRET"},
	} {
		wantOneErrorLine(t, cliRun(t, env, tc.args...), "hookrelay: "+tc.want)
	}
	fr.mu.Lock()
	defer fr.mu.Unlock()
	if got := len(fr.verified); got != 3 {
		t.Errorf("refused sends reached the server: %d requests verified, want 3", got)
	}
}

// TestSinkConfigAndSecret: sink --config --target listens on the target's
// URL and verifies with its signing_secret; --secret is checked as config
// checks signing_secret.
func TestSinkConfigAndSecret(t *testing.T) {
	wantOneErrorLine(t, cliRun(t, cliEnv(), "sink", "--secret", "notwhsec"), "hookrelay: --secret: signing secret must start with whsec_")
	wantOneErrorLine(t, cliRun(t, cliEnv(), "sink", "--secret", "whsec_!!!"), "hookrelay: --secret: not base64 (want whsec_<base64>)")

	const signing = "whsec_c2luay1mcm9tLWNvbmZpZw=="
	addr := evFreeAddr(t)
	cfgPath := cliWriteConfig(t, fmt.Sprintf("server:\n  listen: 127.0.0.1:0\nsources:\n  sp:\n    provider: sketchpen\n    secrets: [s]\n"+
		"targets:\n  local:\n    url: http://%s/events\n    signing_secret: ${SINK_SECRET}\n", addr))
	p, err := cliStart(t, cliEnv("SINK_SECRET="+signing), []string{"sink", "--config", cfgPath, "--target", "local"}, "sink")
	if err != nil {
		t.Fatal(err)
	}
	if p.addr != addr {
		t.Errorf("sink listens on %s, want the target's %s", p.addr, addr)
	}
	key, err := config.SigningKey(signing)
	if err != nil {
		t.Fatal(err)
	}
	body := []byte(`{"specversion":"1.0","id":"evt-1","type":"sketchpen.video.completed","source":"/sources/sp"}`)
	ts := fmt.Sprint(time.Now().Unix())
	h := http.Header{"Content-Type": {"application/cloudevents+json"}, "Webhook-Id": {"evt-1"}, "Webhook-Timestamp": {ts},
		"Webhook-Signature": {verify.StandardSignature(key, "evt-1", ts, body)}}
	status, _, err := cliPost(http.DefaultClient, "http://"+addr+"/events", h, body)
	if err != nil || status != http.StatusOK {
		t.Fatalf("POST to the sink = %d, %v\n%s", status, err, p.Log())
	}
	h.Set("Webhook-Signature", "v1,"+strings.Repeat("A", 43)+"=")
	if status, _, _ := cliPost(http.DefaultClient, "http://"+addr+"/events", h, body); status != http.StatusUnauthorized {
		t.Errorf("badly signed POST = %d, want 401", status)
	}
	p.kill(t)
	if out := p.stdout.String(); !strings.Contains(out, "id=evt-1") || !strings.Contains(out, "signature ok") {
		t.Errorf("sink printed %q, want the verified event", out)
	}
}

// TestServeTraps: through the real binary, a relative storage.path is
// relative to the config file (serve run from elsewhere), the log says
// each accepted webhook, an unknown source with the name asked for (the
// 404 lists no sources) and a dead delivery at error, with no literal \n;
// a port in use names server.listen or admin.listen.
func TestServeTraps(t *testing.T) {
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusBadRequest) // permanent: the delivery goes dead
	}))
	defer target.Close()
	cfgDir, cwd := t.TempDir(), t.TempDir()
	cfgPath := filepath.Join(cfgDir, "hookrelay.yaml")
	text := fmt.Sprintf(`server:
  listen: 127.0.0.1:0
admin:
  listen: 127.0.0.1:0
storage:
  path: ./store
log:
  level: debug
sources:
  sp:
    provider: sketchpen
    secrets: ["${SECRET}"]
targets:
  t:
    url: %s/in
routes:
  - targets: [t]
`, target.URL)
	if err := os.WriteFile(cfgPath, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	env := cliEnv("SECRET=" + cliSecret)
	p, err := cliStartIn(t, cwd, env, []string{"serve", "--config", cfgPath}, "public", "admin")
	if err != nil {
		t.Fatal(err)
	}
	body := []byte(`{"event":"video.completed","video_id":"v-log","created_at":1700000000}`)
	h, err := cliSigner(t, cliSecret).Sign(body, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	status, out, err := cliPost(http.DefaultClient, "http://"+p.addr+"/webhooks/sp", h, body)
	if err != nil || status != http.StatusOK {
		t.Fatalf("POST = %d %v %v", status, out, err)
	}
	id := out["id"]
	resp, err := http.Post("http://"+p.addr+"/webhooks/sp-typo", "application/json", strings.NewReader("{}"))
	if err != nil {
		t.Fatal(err)
	}
	nf, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound || strings.Contains(string(nf), `"sp"`) || strings.Contains(string(nf), "sp,") {
		t.Errorf("unknown source: %d %s (must not list the sources)", resp.StatusCode, nf)
	}
	deadline := time.Now().Add(15 * time.Second)
	for !strings.Contains(p.Log(), "outcome=dead") && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if got := p.stop(t, syscall.SIGTERM); got != 0 {
		t.Errorf("exit code = %d, want 0", got)
	}
	log := p.Log()
	for _, re := range []string{
		`level=INFO msg="webhook accepted" source=sp id=` + id + ` type=video.completed`,
		`level=INFO msg="webhook rejected" source=sp-typo status=404 reason="unknown source"`,
		`level=ERROR msg="delivery attempt" target=t id=` + id + ` outcome=dead status=400`,
		`level=DEBUG msg="[^"]*" component=badger`,
	} {
		if !regexp.MustCompile(re).MatchString(log) {
			t.Errorf("log lacks %s:\n%s", re, log)
		}
	}
	if strings.Contains(log, `\n`) {
		t.Errorf("log shows a literal \\n:\n%s", log)
	}
	if _, err := os.Stat(filepath.Join(cfgDir, "store")); err != nil {
		t.Errorf("storage.path ./store not created next to the config: %v", err)
	}
	if ents, _ := os.ReadDir(cwd); len(ents) != 0 {
		t.Errorf("serve created %v in its working directory", ents)
	}
}

// TestPortInUse: a listener that cannot bind names its config key.
func TestPortInUse(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	taken := ln.Addr().String()
	for _, tc := range []struct{ key, server, admin string }{
		{"server.listen", taken, "127.0.0.1:0"},
		{"admin.listen", "127.0.0.1:0", taken},
	} {
		t.Run(tc.key, func(t *testing.T) {
			cfgPath := cliWriteConfig(t, fmt.Sprintf("server:\n  listen: %s\nadmin:\n  listen: %s\nstorage:\n  path: %q\n"+
				"sources:\n  sp:\n    provider: sketchpen\n    secrets: [s]\n", tc.server, tc.admin, t.TempDir()))
			res := cliRun(t, cliEnv(), "serve", "--config", cfgPath)
			if res.code != 1 {
				t.Fatalf("exit %d, want 1:\n%s", res.code, res.stderr)
			}
			if want := "hookrelay: " + tc.key + " " + taken + " is taken by another process"; !strings.Contains(res.stderr, want) {
				t.Errorf("stderr does not say %q:\n%s", want, res.stderr)
			}
		})
	}
}

// TestBareVariableCheck: through the binary, check refuses $VAR without
// braces, naming the key and the ${VAR} form.
func TestBareVariableCheck(t *testing.T) {
	path := badConfigs + "bare_var.yaml"
	res := cliRun(t, cliEnv("MY_SP_SECRET="+cliSecret), "check", "--config", path)
	wantOneErrorLine(t, res, "hookrelay: "+path+":6: sources.sp.secrets[0]: $MY_SP_SECRET is not expanded: write ${MY_SP_SECRET}")
}

// TestCheckLayoutErrors: through the binary, YAML layout mistakes are one
// line in words, on the line that is wrong.
func TestCheckLayoutErrors(t *testing.T) {
	for _, tc := range []struct {
		file string
		line int
		want string
	}{
		{"indent_less.yaml", 6, "lines up with no key above it"},
		{"source_scalar.yaml", 4, `sources.sp: expected a source`},
		{"tab.yaml", 7, "YAML indents with spaces only"},
	} {
		t.Run(tc.file, func(t *testing.T) {
			path := "../../relay/config/testdata/layout/" + tc.file
			res := cliRun(t, cliEnv(), "check", "--config", path)
			wantOneErrorLine(t, res, fmt.Sprintf("hookrelay: %s:%d: ", path, tc.line))
			if !strings.Contains(res.stderr, tc.want) {
				t.Errorf("stderr %q does not say %q", res.stderr, tc.want)
			}
		})
	}
}
