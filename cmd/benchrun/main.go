//go:build linux

package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"
)

// settings are the command-line flags after -quick has been applied.
type settings struct {
	N           int           // requests per maximum-throughput run
	Concurrency int           // requests in flight, every run
	Size        int           // body size, bytes
	Duration    time.Duration // length of each fixed-rate run
	E2ERate     float64       // fixed rate of the first end-to-end run
	InFlight    int           // the sink target's max_in_flight
	Memory      bool          // run the flat-memory phase
	MemBase     int           // stored events at the first memory reading
	MemTotal    int           // stored events at the second memory reading
	Quick       bool
	Timeout     time.Duration
	Out         string
	Note        string
	Keep        bool

	Phases          map[string]bool // phases to run (-phases)
	PhasesSet       bool            // -phases was given
	ClusterDuration time.Duration   // length of each cluster-phase run
	ClusterDrain    time.Duration   // longest wait for deliveries after a cluster-phase run
	ClusterRounds   int             // rounds of the cluster phase's runs; each configuration's median is reported
}

// allPhases are the phase names -phases takes, in the order they run.
var allPhases = []string{"bare", "ingest", "e2e", "memory", "cluster"}

// defaultPhases run without -phases: everything but the cluster phase.
const defaultPhases = "bare,ingest,e2e,memory"

// parsePhases reads -phases: a comma-separated list of allPhases, or "all".
func parsePhases(v string) (map[string]bool, error) {
	out := map[string]bool{}
	for _, f := range strings.Split(v, ",") {
		f = strings.TrimSpace(f)
		switch {
		case f == "":
		case f == "all":
			for _, p := range allPhases {
				out[p] = true
			}
		case slices.Contains(allPhases, f):
			out[f] = true
		default:
			return nil, fmt.Errorf("-phases: unknown phase %q (have %s, all)", f, strings.Join(allPhases, ", "))
		}
	}
	if len(out) == 0 {
		return nil, errors.New("-phases: no phase named")
	}
	return out, nil
}

// onlyCluster reports whether the cluster phase is the only one selected.
func (s settings) onlyCluster() bool {
	for p := range s.Phases {
		if p != "cluster" {
			return false
		}
	}
	return s.Phases["cluster"]
}

func main() { os.Exit(run()) }

// run parses flags, runs the benchmark and writes the report; it returns
// the exit code. Every deferred cleanup runs before main exits.
func run() int {
	var s settings
	fs := flag.NewFlagSet("benchrun", flag.ContinueOnError)
	fs.IntVar(&s.N, "n", 50000, "requests per maximum-throughput run (-quick: 3000)")
	fs.IntVar(&s.Concurrency, "concurrency", 32, "requests in flight in every run")
	fs.IntVar(&s.Size, "size", 1024, "sketchpen body size in `bytes`")
	fs.DurationVar(&s.Duration, "duration", 10*time.Second, "length of each fixed-rate run (-quick: 2s)")
	fs.Float64Var(&s.E2ERate, "e2e-rate", 2000, "events/s of the fixed-rate end-to-end run")
	fs.IntVar(&s.InFlight, "inflight", 16, "max_in_flight of the sink target (16 is the config default)")
	fs.BoolVar(&s.Memory, "memory", true, "measure RSS after -memory-base and -memory-total stored events (minutes; off with -quick unless set)")
	fs.IntVar(&s.MemBase, "memory-base", 100000, "stored events at the first RSS reading")
	fs.IntVar(&s.MemTotal, "memory-total", 1000000, "stored events at the second RSS reading")
	fs.BoolVar(&s.Quick, "quick", false, "short smoke run: smaller counts, 2s fixed-rate runs, no memory phase")
	fs.DurationVar(&s.Timeout, "timeout", 45*time.Minute, "stop everything after this long (-quick: 3m)")
	fs.StringVar(&s.Out, "out", "BENCHMARKS.md", "write the report to `FILE` (\"\": print only)")
	fs.StringVar(&s.Note, "note", "", "a remark printed at the top of the report (e.g. about the machine's load)")
	fs.BoolVar(&s.Keep, "keep", false, "keep the temporary directory (configs, logs, data, sink output)")
	phases := fs.String("phases", defaultPhases, "comma-separated `PHASES` to run: "+strings.Join(allPhases, ", ")+", or all; cluster alone rewrites only the \"Cluster mode\" section of -out")
	fs.DurationVar(&s.ClusterDuration, "cluster-duration", 15*time.Second, "length of each cluster-phase run (-quick: 3s)")
	fs.DurationVar(&s.ClusterDrain, "cluster-drain", 20*time.Second, "longest wait for deliveries after each cluster-phase run")
	fs.IntVar(&s.ClusterRounds, "cluster-rounds", 3, "rounds of the cluster phase (every configuration once per round, interleaved); the report shows each configuration's median-throughput run (-quick: 1)")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: go run ./cmd/benchrun [flags]   (from the repository root, Linux)")
		fs.PrintDefaults()
	}
	if err := fs.Parse(os.Args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	var err error
	if s.Phases, err = parsePhases(*phases); err != nil {
		fmt.Fprintf(os.Stderr, "benchrun: %v\n", err)
		return 2
	}
	s.PhasesSet = set["phases"]
	if s.Quick {
		if !set["n"] {
			s.N = 3000
		}
		if !set["duration"] {
			s.Duration = 2 * time.Second
		}
		if !set["memory"] {
			s.Memory = false
		}
		if !set["timeout"] {
			s.Timeout = 3 * time.Minute
		}
		if !set["cluster-duration"] {
			s.ClusterDuration = 3 * time.Second
		}
		if !set["cluster-rounds"] {
			s.ClusterRounds = 1
		}
	}
	if s.N < 1 || s.Concurrency < 1 || s.Size < 1 || s.Duration <= 0 || s.E2ERate <= 0 || s.InFlight < 1 ||
		s.MemBase < 1 || s.MemTotal <= s.MemBase || s.Timeout <= 0 || s.ClusterDuration <= 0 || s.ClusterDrain <= 0 || s.ClusterRounds < 1 {
		fmt.Fprintln(os.Stderr, "benchrun: -n, -concurrency, -size, -duration, -e2e-rate, -inflight, -timeout, -cluster-duration, -cluster-drain must be positive and -memory-total larger than -memory-base")
		return 2
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, s.Timeout)
	defer cancel()

	b, err := newBench(s)
	if err != nil {
		fmt.Fprintf(os.Stderr, "benchrun: %v\n", err)
		return 1
	}
	defer b.cleanup()
	res := b.run(ctx)

	printReport(os.Stdout, res)
	if s.Out != "" {
		old, err := os.ReadFile(s.Out)
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			fmt.Fprintf(os.Stderr, "benchrun: %v\n", err)
			return 1
		}
		var doc string
		switch {
		case s.onlyCluster() && res.Cluster == nil:
			// The phase never started (e.g. the build failed): keep the file.
			fmt.Fprintf(os.Stderr, "benchrun: the cluster phase did not run; %s left as it was\n", s.Out)
			return 1
		case s.onlyCluster():
			// Only the cluster section changes; the rest stays as it is.
			doc = spliceCluster(string(old), clusterMarkdown(res.Cluster, s))
		case res.Cluster != nil:
			doc = markdown(res) + "\n" + clusterMarkdown(res.Cluster, s)
		default:
			// Keep the cluster section of the previous file, if any.
			doc = markdown(res)
			if sec := extractCluster(string(old)); sec != "" {
				doc += "\n" + sec
			}
		}
		if err := os.WriteFile(s.Out, []byte(doc), 0o644); err != nil {
			fmt.Fprintf(os.Stderr, "benchrun: %v\n", err)
			return 1
		}
		fmt.Fprintf(os.Stderr, "benchrun: wrote %s\n", s.Out)
	}
	if len(res.Errors) > 0 {
		return 1
	}
	return 0
}

// bench holds what every phase shares.
type bench struct {
	s       settings
	root    string // module root: where go build runs
	tmp     string // temporary directory for binaries, configs, data, logs
	goBin   string
	relay   string // the hookrelay binary
	bare    string // the barelimit binary
	secret  string // the sketchpen source secret
	signing string // the sink target's whsec_ signing secret
	token   string // admin token
	procs   procs
	started time.Time
}

func newBench(s settings) (*bench, error) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		return nil, errors.New("the go command is not on PATH")
	}
	out, err := exec.Command(goBin, "env", "GOMOD").Output()
	if err != nil {
		return nil, fmt.Errorf("go env GOMOD: %w", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return nil, errors.New("run benchrun inside the hookrelay module (go run ./cmd/benchrun)")
	}
	tmp, err := os.MkdirTemp("", "benchrun-")
	if err != nil {
		return nil, err
	}
	var sk, sg, tk [18]byte
	for _, b := range [][]byte{sk[:], sg[:], tk[:]} {
		if _, err := rand.Read(b); err != nil {
			return nil, err
		}
	}
	return &bench{
		s: s, root: filepath.Dir(gomod), tmp: tmp, goBin: goBin,
		relay: filepath.Join(tmp, "bin", "hookrelay"), bare: filepath.Join(tmp, "bin", "barelimit"),
		secret:  "whsec_bench_" + hex.EncodeToString(sk[:]),
		signing: "whsec_" + base64.StdEncoding.EncodeToString(sg[:]),
		token:   hex.EncodeToString(tk[:]),
		started: time.Now(),
	}, nil
}

// cleanup stops every child and removes the temporary directory (unless
// -keep).
func (b *bench) cleanup() {
	b.procs.killAll(15 * time.Second)
	if b.s.Keep {
		fmt.Fprintf(os.Stderr, "benchrun: kept %s\n", b.tmp)
		return
	}
	_ = os.RemoveAll(b.tmp)
}

// logf prints progress to stderr.
func (b *bench) logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "[%6.1fs] %s\n", time.Since(b.started).Seconds(), fmt.Sprintf(format, args...))
}

// run builds the binaries and runs every phase; a failed phase is recorded
// and the next one runs, unless the time is up or benchrun was interrupted.
func (b *bench) run(ctx context.Context) *results {
	res := &results{Settings: b.s, Date: time.Now().UTC(), Command: commandLine(), Machine: describeMachine(b.goBin)}
	defer func() {
		res.Elapsed = time.Since(b.started)
		res.Machine.LoadEnd = loadAvg()
	}()
	fail := func(phase string, err error) {
		msg := fmt.Sprintf("%s: %v", phase, err)
		if ctx.Err() != nil {
			msg = fmt.Sprintf("%s: %v (benchmark stopped: %v)", phase, err, context.Cause(ctx))
		}
		b.logf("FAILED %s", msg)
		res.Errors = append(res.Errors, msg)
	}
	b.logf("building hookrelay and barelimit into %s", b.tmp)
	if err := b.build(ctx); err != nil {
		fail("build", err)
		return res
	}
	phases := []struct {
		key, name string
		run       func(context.Context, *results) error
	}{
		{"bare", "bare limit", b.phaseBare},
		{"ingest", "ingest sync=false", func(ctx context.Context, r *results) error { return b.phaseIngest(ctx, r, false) }},
		{"ingest", "ingest sync=true", func(ctx context.Context, r *results) error { return b.phaseIngest(ctx, r, true) }},
		{"e2e", "end to end", b.phaseE2E},
		{"memory", "memory", b.phaseMemory},
		{"cluster", "cluster", b.phaseCluster},
	}
	for _, p := range phases {
		if !b.s.Phases[p.key] {
			continue
		}
		// Without -phases, -memory decides (as before -phases existed).
		if p.key == "memory" && !b.s.Memory && !b.s.PhasesSet {
			continue
		}
		if ctx.Err() != nil {
			fail(p.name, errors.New("not run"))
			continue
		}
		b.logf("phase: %s", p.name)
		if err := p.run(ctx, res); err != nil {
			fail(p.name, err)
		}
	}
	return res
}

// build compiles hookrelay and barelimit from the working tree.
func (b *bench) build(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	for _, t := range []struct{ out, pkg string }{{b.relay, "./cmd/hookrelay"}, {b.bare, "./cmd/barelimit"}} {
		cmd := exec.CommandContext(ctx, b.goBin, "build", "-o", t.out, t.pkg)
		cmd.Dir = b.root
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("go build %s: %v\n%s", t.pkg, err, out)
		}
	}
	return nil
}

// commandLine is the command the user ran, as they would type it.
func commandLine() string {
	parts := []string{"go run ./cmd/benchrun"}
	for _, a := range os.Args[1:] {
		if a == "" || strings.ContainsAny(a, " \t\"'$\\") {
			a = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
		}
		parts = append(parts, a)
	}
	return strings.Join(parts, " ")
}
