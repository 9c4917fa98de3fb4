//go:build linux

package main

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// clockTicks is USER_HZ, the unit of utime and stime in /proc/<pid>/stat
// (100 on every Linux architecture Go supports).
const clockTicks = 100

// clusterRun is one configuration of the cluster phase: a fixed-duration
// maximum-rate run with relaying on, measured on every server process.
type clusterRun struct {
	Name     string
	Nodes    int
	Replicas int  // 0: Badger (no cluster section)
	NoRelay  bool // no target and no route: ingest alone
	LoadPre  string

	Sends []*sendStats // one per send process (one per node)

	Accepted  int
	Failed    int
	DurationS float64 // longest send process
	P50, P99  float64 // the largest of the send processes' (conservative)
	Delivered int     // distinct event ids the target received
	Extra     int     // repeated receipts of an id (at-least-once)
	Drained   bool    // every accepted event reached the target
	DrainS    float64 // from the end of sending until the last delivery
	WaitS     float64 // how long benchrun waited for deliveries after sending

	WindowS   float64   // send start to drain end: the CPU and I/O window
	SendS     float64   // send start to the end of the last sender
	AtSendEnd int       // distinct ids delivered when sending ended
	SendCPU   float64   // every server's CPU seconds while sending
	SendW     int64     // every server's write_bytes while sending
	ServerCPU []float64 // per server process, CPU seconds over the window
	ServerW   []int64   // per server process, write_bytes over the window
	GenCPU    float64   // the send processes' CPU seconds
	GenWallS  float64   // the send processes' wall time (longest)
	TargetCPU float64   // benchrun's own CPU seconds over the window (the target)
}

// Throughput is accepted events per second of the sending time.
func (c *clusterRun) Throughput() float64 {
	if c == nil || c.DurationS <= 0 {
		return 0
	}
	return float64(c.Accepted) / c.DurationS
}

// CPUPerEvent is CPU-microseconds of every server process together per
// accepted event, delivery included.
func (c *clusterRun) CPUPerEvent() float64 {
	if c == nil || c.Accepted == 0 {
		return 0
	}
	var t float64
	for _, s := range c.ServerCPU {
		t += s
	}
	return t * 1e6 / float64(c.Accepted)
}

// DeliveryRate is distinct deliveries per second, from the first request
// to the last new delivery.
func (c *clusterRun) DeliveryRate() float64 {
	if d := c.SendS + c.DrainS; d > 0 {
		return float64(c.Delivered) / d
	}
	return 0
}

// Split estimates the server CPU-µs of one event's ingest and of one
// delivery. After sending ends the servers only deliver, so the CPU of that
// stretch over the deliveries made in it is the cost of a delivery, d; the
// CPU while sending, less d for each delivery made meanwhile, over the
// accepted events is the cost of an ingest, a. ok is false when the drain
// made too few deliveries to tell.
func (c *clusterRun) Split() (ingest, deliver float64, ok bool) {
	var total float64
	for _, s := range c.ServerCPU {
		total += s
	}
	after := c.Delivered - c.AtSendEnd
	if c.Accepted == 0 || after < 100 {
		return 0, 0, false
	}
	d := (total - c.SendCPU) / float64(after)
	a := (c.SendCPU - d*float64(c.AtSendEnd)) / float64(c.Accepted)
	if a < 0 {
		return 0, 0, false
	}
	return a * 1e6, d * 1e6, true
}

// FullBytes is write_bytes per event with its delivery, split like
// FullCost.
func (c *clusterRun) FullBytes() float64 {
	after := c.Delivered - c.AtSendEnd
	if c.Drained || c.Accepted == 0 || after < 100 {
		return c.BytesPerEvent()
	}
	var total int64
	for _, w := range c.ServerW {
		total += w
	}
	d := float64(total-c.SendW) / float64(after)
	a := (float64(c.SendW) - d*float64(c.AtSendEnd)) / float64(c.Accepted)
	if a < 0 {
		return c.BytesPerEvent()
	}
	return a + d
}

// Cores is the servers' CPU over the window, in CPUs busy on average;
// DrainCores the same for the stretch after sending.
func (c *clusterRun) Cores() float64 {
	var t float64
	for _, s := range c.ServerCPU {
		t += s
	}
	if c.WindowS <= 0 {
		return 0
	}
	return t / c.WindowS
}

func (c *clusterRun) DrainCores() float64 {
	var t float64
	for _, s := range c.ServerCPU {
		t += s
	}
	if d := c.WindowS - c.SendS; d > 0 {
		return (t - c.SendCPU) / d
	}
	return 0
}

// BusiestFull is the busiest node's cost per event with its delivery: its
// share of the window's CPU applied to FullCost.
func (c *clusterRun) BusiestFull() float64 {
	if c.CPUPerEvent() == 0 {
		return 0
	}
	return c.BusiestNode() / c.CPUPerEvent() * c.FullCost()
}

// FullCost is the server CPU-µs of one event with its delivery: the
// measured window when every event was delivered in it, else ingest plus
// delivery from Split (the window alone would miss the deliveries still
// due).
func (c *clusterRun) FullCost() float64 {
	if c.Drained {
		return c.CPUPerEvent()
	}
	if a, d, ok := c.Split(); ok {
		return a + d
	}
	return c.CPUPerEvent()
}

// NodeCPUPerEvent is each server's CPU-microseconds per accepted event (of
// the whole cluster).
func (c *clusterRun) NodeCPUPerEvent() []float64 {
	out := make([]float64, len(c.ServerCPU))
	for i, s := range c.ServerCPU {
		if c.Accepted > 0 {
			out[i] = s * 1e6 / float64(c.Accepted)
		}
	}
	return out
}

// BusiestNode is the largest per-node CPU cost per event.
func (c *clusterRun) BusiestNode() float64 {
	m := 0.0
	for _, v := range c.NodeCPUPerEvent() {
		m = max(m, v)
	}
	return m
}

// BytesPerEvent is write_bytes of every server process per accepted event.
func (c *clusterRun) BytesPerEvent() float64 {
	if c == nil || c.Accepted == 0 {
		return 0
	}
	var t int64
	for _, w := range c.ServerW {
		t += w
	}
	return float64(t) / float64(c.Accepted)
}

// GenShare is the load generator's CPU as a share of the machine's CPUs
// over its running time.
func (c *clusterRun) GenShare(cpus int) float64 {
	if c.GenWallS <= 0 || cpus <= 0 {
		return 0
	}
	return c.GenCPU / (c.GenWallS * float64(cpus))
}

// clusterResult is the cluster phase.
type clusterResult struct {
	Date     time.Time
	Command  string
	Machine  machine
	Elapsed  time.Duration
	Duration time.Duration
	Runs     []*clusterRun // each configuration's median run
	Rounds   int
	All      []*clusterRun // every run, in the order run
	Errors   []string
}

func (r *clusterResult) run(name string) *clusterRun {
	if r == nil {
		return nil
	}
	for _, c := range r.Runs {
		if c.Name == name {
			return c
		}
	}
	return nil
}

const (
	runBadger = "single node, Badger"
	runR1     = "single node, JetStream R1"
	runR3     = "three nodes, JetStream R3"
	// The same without targets: ingest alone, as in the ingest phase.
	runBadgerIngest = "single node, Badger, ingest only"
	runR3Ingest     = "three nodes, JetStream R3, ingest only"
)

// phaseCluster runs the configurations one after another, each on fresh
// data directories: single-node Badger (sync off), single-node cluster
// mode (embedded NATS, replicas 1), three nodes (replicas 3), each
// relaying every event; then Badger and three nodes again with no target
// (ingest alone).
func (b *bench) phaseCluster(ctx context.Context, res *results) error {
	cr := &clusterResult{Date: time.Now().UTC(), Command: res.Command, Machine: res.Machine, Duration: b.s.ClusterDuration}
	cr.Machine.LoadStart = loadAvg()
	res.Cluster = cr
	start := time.Now()
	defer func() {
		cr.Elapsed = time.Since(start)
		cr.Machine.LoadEnd = loadAvg()
	}()
	tgt, err := startTarget()
	if err != nil {
		return err
	}
	defer tgt.close()
	var errs []error
	configs := []struct {
		name            string
		nodes, replicas int
		noRelay         bool
	}{{runBadger, 1, 0, false}, {runR1, 1, 1, false}, {runR3, 3, 3, false}, {runBadgerIngest, 1, 0, true}, {runR3Ingest, 3, 3, true}}
	all := map[string][]*clusterRun{}
	for round := range b.s.ClusterRounds {
		for _, c := range configs {
			if ctx.Err() != nil {
				errs = append(errs, fmt.Errorf("%s: not run: %w", c.name, ctx.Err()))
				continue
			}
			run := &clusterRun{Name: c.name, Nodes: c.nodes, Replicas: c.replicas, NoRelay: c.noRelay}
			b.logf("  cluster, round %d of %d: %s", round+1, b.s.ClusterRounds, c.name)
			if err := b.clusterOne(ctx, run, tgt); err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", c.name, err))
				cr.Errors = append(cr.Errors, fmt.Sprintf("%s: %v", c.name, err))
				b.logf("    FAILED: %v", err)
			}
			if run.Accepted > 0 {
				all[c.name] = append(all[c.name], run)
				cr.All = append(cr.All, run)
			}
		}
	}
	cr.Rounds = b.s.ClusterRounds
	for _, c := range configs {
		if runs := all[c.name]; len(runs) > 0 {
			cr.Runs = append(cr.Runs, medianRun(runs))
		}
	}
	return errors.Join(errs...)
}

// medianRun is the run of median throughput (the lower middle one of an
// even count).
func medianRun(runs []*clusterRun) *clusterRun {
	sorted := slices.Clone(runs)
	slices.SortFunc(sorted, func(a, b *clusterRun) int { return cmp.Compare(a.Throughput(), b.Throughput()) })
	return sorted[(len(sorted)-1)/2]
}

// clusterOne starts the servers of run, loads them for ClusterDuration,
// waits for every accepted event to be delivered and stops them.
func (b *bench) clusterOne(ctx context.Context, run *clusterRun, tgt *sink200) error {
	tgt.reset()
	slug := strings.NewReplacer(" ", "", ",", "-").Replace(strings.ToLower(run.Name))
	var client, route []string
	for range run.Nodes {
		c, err := freeAddr()
		if err != nil {
			return err
		}
		r, err := freeAddr()
		if err != nil {
			return err
		}
		client, route = append(client, c), append(route, r)
	}
	srvs := make([]*server, run.Nodes)
	defer func() {
		var wg sync.WaitGroup
		for _, s := range srvs {
			if s != nil {
				wg.Add(1)
				go func() { defer wg.Done(); s.p.stop(stopGrace) }()
			}
		}
		wg.Wait()
	}()
	// Start every node at once: each waits for a JetStream quorum.
	for i := range run.Nodes {
		dir := filepath.Join(b.tmp, fmt.Sprintf("%s-n%d", slug, i))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
		url := tgt.url
		if run.NoRelay {
			url = ""
		}
		text := b.config(filepath.Join(dir, "data"), false, url)
		if run.Replicas > 0 {
			var routes []string
			for j := range run.Nodes {
				if j != i {
					routes = append(routes, strconv.Quote("nats://"+route[j]))
				}
			}
			text += fmt.Sprintf(`cluster:
  node: n%d
  replicas: %d
  nats:
    embedded:
      listen: %q
      cluster_listen: %q
      routes: [%s]
`, i, run.Replicas, client[i], route[i], strings.Join(routes, ", "))
		}
		cfg := filepath.Join(dir, "hookrelay.yaml")
		if err := os.WriteFile(cfg, []byte(text), 0o600); err != nil {
			return err
		}
		p, err := b.procs.start(fmt.Sprintf("hookrelay %s n%d", slug, i), []string{b.relay, "serve", "--config", cfg}, dir, filepath.Join(dir, "hookrelay.log"), nil)
		if err != nil {
			return err
		}
		srvs[i] = &server{p: p}
	}
	for _, s := range srvs {
		var err error
		if s.public, err = s.p.waitAddr(ctx, "public", 2*startTimeout); err == nil {
			s.admin, err = s.p.waitAddr(ctx, "admin", startTimeout)
		}
		if err != nil {
			return err
		}
	}
	for _, s := range srvs {
		if err := waitReady(ctx, "http://"+s.public+"/readyz", startTimeout); err != nil {
			return fmt.Errorf("%s: %w", s.p.name, err)
		}
	}

	// The window: from just before the first request to the last delivery.
	run.LoadPre = loadAvg()
	cpu0, w0 := make([]float64, len(srvs)), make([]int64, len(srvs))
	for i, s := range srvs {
		var err error
		if cpu0[i], err = procCPU(s.p.pid()); err != nil {
			return err
		}
		if w0[i], err = procWriteBytes(s.p.pid()); err != nil {
			return fmt.Errorf("/proc/%d/io: %w", s.p.pid(), err)
		}
	}
	self0, _ := procCPU(os.Getpid())
	t0 := time.Now()

	// One send process per node, the concurrency split between them.
	type sender struct {
		p   *proc
		out *bytes.Buffer
	}
	var senders []sender
	for i, s := range srvs {
		conc := b.s.Concurrency / len(srvs)
		if i < b.s.Concurrency%len(srvs) {
			conc++
		}
		conc = max(conc, 1)
		count := max(1000, int(b.s.ClusterDuration.Seconds()*50000))
		args := []string{b.relay, "send", "--provider", "sketchpen", "--secret", b.secret,
			"--size", strconv.Itoa(b.s.Size), "--concurrency", strconv.Itoa(conc),
			"--count", strconv.Itoa(count), "--duration", b.s.ClusterDuration.String(), "--json", s.url()}
		out := &bytes.Buffer{}
		p, err := b.procs.start(fmt.Sprintf("send %d", i), args, b.tmp, filepath.Join(b.tmp, fmt.Sprintf("send-%s-%d.log", slug, i)), out)
		if err != nil {
			return err
		}
		senders = append(senders, sender{p, out})
	}
	b.logf("    %d send process(es), %d in flight in all, for %s", len(senders), b.s.Concurrency, b.s.ClusterDuration)
	var sendErr error
	for _, sd := range senders {
		waitErr := sd.p.wait(ctx, b.s.ClusterDuration+time.Minute)
		st := &sendStats{}
		if err := json.Unmarshal(sd.out.Bytes(), st); err != nil {
			sendErr = errors.Join(sendErr, fmt.Errorf("%s: %v (summary: %v); last output:\n%s", sd.p.name, waitErr, err, sd.p.out.tail()))
			continue
		}
		run.Sends = append(run.Sends, st)
		if ps := sd.p.cmd.ProcessState; ps != nil {
			run.GenCPU += (ps.UserTime() + ps.SystemTime()).Seconds()
		}
		run.GenWallS = max(run.GenWallS, st.DurationS)
		run.Accepted += st.Outcomes["accepted"]
		run.Failed += st.Failed()
		run.DurationS = max(run.DurationS, st.DurationS)
		run.P50 = max(run.P50, st.LatencyMS["p50"])
		run.P99 = max(run.P99, st.LatencyMS["p99"])
	}
	sendEnd := time.Now()
	run.SendS = sendEnd.Sub(t0).Seconds()
	run.AtSendEnd, _ = tgt.counts()
	for _, s := range srvs {
		c, err := procCPU(s.p.pid())
		if err == nil {
			run.SendCPU += c
		}
	}
	for _, c := range cpu0 {
		run.SendCPU -= c
	}
	for i, s := range srvs {
		if w, err := procWriteBytes(s.p.pid()); err == nil {
			run.SendW += w - w0[i]
		}
	}
	if sendErr != nil {
		return sendErr
	}
	b.logf("    %d accepted, %d failed, %.0f/s, p50 %.2f ms, p99 %.2f ms (largest of the senders')", run.Accepted, run.Failed, run.Throughput(), run.P50, run.P99)

	// Delivery: wait until the target has every accepted event.
	deadline := sendEnd.Add(b.s.ClusterDrain)
	run.Drained = run.NoRelay // nothing to deliver
	for !run.NoRelay {
		run.Delivered, run.Extra = tgt.counts()
		if run.Drained = run.Delivered >= run.Accepted; run.Drained || time.Now().After(deadline) || ctx.Err() != nil {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	run.WaitS = time.Since(sendEnd).Seconds()
	last := tgt.lastAt()
	if last.Before(sendEnd) {
		last = sendEnd
	}
	run.DrainS = last.Sub(sendEnd).Seconds()
	run.WindowS = time.Since(t0).Seconds()
	for i, s := range srvs {
		c, err := procCPU(s.p.pid())
		if err != nil {
			return err
		}
		w, err := procWriteBytes(s.p.pid())
		if err != nil {
			return err
		}
		run.ServerCPU = append(run.ServerCPU, c-cpu0[i])
		run.ServerW = append(run.ServerW, w-w0[i])
	}
	self1, _ := procCPU(os.Getpid())
	run.TargetCPU = self1 - self0
	node := ""
	if len(srvs) > 1 {
		node = fmt.Sprintf(" (per node %s)", joinF(run.NodeCPUPerEvent(), "/"))
	}
	b.logf("    delivered %d of %d (%d when sending ended; drained %t, %.1fs after sending; %.0f deliveries/s); server CPU %.0f us/event in the window%s, written %.0f bytes/event; generator %.0f%% of %d CPUs",
		run.Delivered, run.Accepted, run.AtSendEnd, run.Drained, run.DrainS, run.DeliveryRate(), run.CPUPerEvent(), node, run.BytesPerEvent(), 100*run.GenShare(b.cpus()), b.cpus())
	if a, d, ok := run.Split(); ok {
		b.logf("    estimated: ingest %.0f us/event, delivery %.0f us/event", a, d)
	}
	// Deliveries still due when benchrun stops waiting are a finding (see
	// clusterNotes), not a failure of the benchmark.
	return nil
}

// cpus is the number of CPUs benchrun may use (nproc).
func (b *bench) cpus() int { return runtime.NumCPU() }

// sink200 is the delivery target of the cluster phase: an HTTP server in
// benchrun that answers 200 at once and counts distinct webhook-ids.
type sink200 struct {
	url string
	srv *http.Server
	mu  sync.Mutex
	ids map[string]int
	at  time.Time // last receipt of a new id
}

func startTarget() (*sink200, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	t := &sink200{url: "http://" + ln.Addr().String() + "/events", ids: map[string]int{}}
	t.srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		id := r.Header.Get("webhook-id")
		t.mu.Lock()
		if t.ids[id] == 0 {
			t.at = time.Now()
		}
		t.ids[id]++
		t.mu.Unlock()
		w.WriteHeader(http.StatusOK)
	}), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = t.srv.Serve(ln) }()
	return t, nil
}

func (t *sink200) reset() {
	t.mu.Lock()
	t.ids, t.at = map[string]int{}, time.Time{}
	t.mu.Unlock()
}

// counts returns the distinct ids received and the repeated receipts.
func (t *sink200) counts() (distinct, extra int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, n := range t.ids {
		distinct++
		extra += n - 1
	}
	return distinct, extra
}

func (t *sink200) lastAt() time.Time {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.at
}

func (t *sink200) close() { _ = t.srv.Close() }

// freeAddr returns a 127.0.0.1 port that was free a moment ago.
func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// waitReady polls url until it answers 200.
func waitReady(ctx context.Context, url string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		rctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		req, _ := http.NewRequestWithContext(rctx, http.MethodGet, url, nil)
		resp, err := http.DefaultClient.Do(req)
		cancel()
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("HTTP %d", resp.StatusCode)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not ready after %s: %v", url, timeout, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// procCPU is utime+stime of every thread of pid, in seconds.
func procCPU(pid int) (float64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name may hold spaces and parentheses: fields count from
	// after its last ')'. utime and stime are fields 14 and 15.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, errors.New("bad /proc stat")
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0, errors.New("short /proc stat")
	}
	u, err1 := strconv.ParseInt(f[11], 10, 64)
	s, err2 := strconv.ParseInt(f[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, err
	}
	return float64(u+s) / clockTicks, nil
}

// procWriteBytes is write_bytes of /proc/<pid>/io: bytes this process
// caused to be sent to the storage layer (page-cache writes count when
// dirtied).
func procWriteBytes(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/io", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "write_bytes:"); ok {
			return strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		}
	}
	return 0, errors.New("no write_bytes in /proc io")
}

func joinF(v []float64, sep string) string {
	s := make([]string, len(v))
	for i, x := range v {
		s[i] = thousands(x)
	}
	return strings.Join(s, sep)
}
