//go:build linux

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"
)

const (
	startTimeout = 60 * time.Second // until a server logs "listening"
	stopGrace    = 15 * time.Second // SIGTERM to SIGKILL
	scrapeEvery  = 500 * time.Millisecond
)

// sendStats is one run of `hookrelay send --json`, plus what benchrun
// measured around it.
type sendStats struct {
	Requests  int                `json:"requests"`
	DurationS float64            `json:"duration_s"`
	Outcomes  map[string]int     `json:"outcomes"`
	LatencyMS map[string]float64 `json:"latency_ms"`
	Errors    []string           `json:"errors"`

	Rate    float64 `json:"-"` // requested rate, 0: as fast as possible
	PeakRSS int64   `json:"-"` // VmHWM of the server during the run, bytes
}

// OK is the number of requests answered 200 accepted or duplicate.
func (s *sendStats) OK() int { return s.Outcomes["accepted"] + s.Outcomes["duplicate"] }

// Failed is the number of other answers and transport errors.
func (s *sendStats) Failed() int { return s.Requests - s.OK() }

// Throughput is successful requests per second.
func (s *sendStats) Throughput() float64 {
	if s == nil || s.DurationS <= 0 {
		return 0
	}
	return float64(s.OK()) / s.DurationS
}

// server is a running hookrelay serve.
type server struct {
	p      *proc
	public string // host:port
	admin  string
}

func (s *server) url() string { return "http://" + s.public + "/webhooks/bench" }

// phaseBare measures barelimit: maximum throughput, then latency at half of it.
func (b *bench) phaseBare(ctx context.Context, res *results) error {
	dir := filepath.Join(b.tmp, "bare")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	p, err := b.procs.start("barelimit", []string{b.bare, "-listen", "127.0.0.1:0", "-secret", b.secret}, dir, filepath.Join(dir, "barelimit.log"), nil)
	if err != nil {
		return err
	}
	defer p.stop(stopGrace)
	addr, err := p.waitAddr(ctx, "public", startTimeout)
	if err != nil {
		return err
	}
	res.Bare, res.BareLat, err = b.maxThenHalf(ctx, "bare", p, "http://"+addr+"/webhooks/bench")
	return err
}

// phaseIngest measures hookrelay ingest only (no route) with storage.sync
// set to sync, on a fresh data directory.
func (b *bench) phaseIngest(ctx context.Context, res *results, sync bool) error {
	ir := &ingestResult{Sync: sync}
	res.Ingest = append(res.Ingest, ir)
	srv, err := b.startRelay(ctx, fmt.Sprintf("ingest-sync-%t", sync), sync, "")
	if err != nil {
		return err
	}
	defer srv.p.stop(stopGrace)
	// Each run resets VmHWM: the phase's peak is the largest of the runs'
	// and of what is left at the end (a failed run has no stats).
	defer func() { ir.PeakRSS = max(ir.PeakRSS, peakOf(srv.p)) }()
	ir.Max, ir.Lat, err = b.maxThenHalf(ctx, fmt.Sprintf("ingest sync=%t", sync), srv.p, srv.url())
	for _, st := range []*sendStats{ir.Max, ir.Lat} {
		if st != nil {
			ir.PeakRSS = max(ir.PeakRSS, st.PeakRSS)
		}
	}
	return err
}

// maxThenHalf sends b.s.N requests as fast as possible to url, then a
// fixed-rate run at half the throughput achieved, both against the server
// p.
func (b *bench) maxThenHalf(ctx context.Context, name string, p *proc, url string) (maxRun, half *sendStats, err error) {
	if maxRun, err = b.send(ctx, name+" max", p, url, b.s.N, 0, ""); err != nil {
		return nil, nil, err
	}
	rate := math.Round(maxRun.Throughput() / 2)
	if rate < 1 {
		return maxRun, nil, errors.New("no successful request at maximum throughput")
	}
	half, err = b.send(ctx, name+" fixed rate", p, url, b.fixedCount(rate), rate, "")
	return maxRun, half, err
}

// phaseE2E relays every event to a local sink: a fixed-rate run, then a
// maximum-throughput run, each followed by waiting for the queue to drain.
func (b *bench) phaseE2E(ctx context.Context, res *results) error {
	dir := filepath.Join(b.tmp, "e2e")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	sinkPath := filepath.Join(dir, "sink.jsonl")
	sinkOut, err := os.Create(sinkPath)
	if err != nil {
		return err
	}
	defer sinkOut.Close()
	sink, err := b.procs.start("sink", []string{b.relay, "sink", "--listen", "127.0.0.1:0", "--secret", b.signing, "--json"},
		dir, filepath.Join(dir, "sink.log"), sinkOut)
	if err != nil {
		return err
	}
	defer sink.stop(stopGrace)
	sinkAddr, err := sink.waitAddr(ctx, "sink", startTimeout)
	if err != nil {
		return err
	}
	srv, err := b.startRelay(ctx, "e2e", false, "http://"+sinkAddr+"/events")
	if err != nil {
		return err
	}
	defer srv.p.stop(stopGrace)

	runs := []struct {
		name  string
		count int
		rate  float64
	}{
		{fmt.Sprintf("e2e @ %.0f/s", b.s.E2ERate), b.fixedCount(b.s.E2ERate), b.s.E2ERate},
		{"e2e max", b.s.N, 0},
	}
	var runErr error
	var done []*e2eResult
	for i, r := range runs {
		er := &e2eResult{Name: r.name, idsPath: filepath.Join(dir, fmt.Sprintf("ids-%d.txt", i))}
		res.E2E = append(res.E2E, er)
		mon := b.watchQueue(ctx, srv.admin)
		er.Send, runErr = b.send(ctx, r.name, srv.p, srv.url(), r.count, r.rate, er.idsPath)
		if runErr == nil {
			// Whatever the drain's outcome, the sink output says what arrived.
			done = append(done, er)
			er.DrainS, runErr = b.drain(ctx, srv.admin, 30*time.Second+time.Duration(er.Send.OK())*2*time.Millisecond)
			if er.Drained = runErr == nil; er.Drained {
				b.logf("    queue drained in %.1fs", er.DrainS)
			}
		}
		er.MaxQueue, er.Scrapes = mon()
		er.PeakRSS = peakOf(srv.p)
		if runErr != nil {
			break
		}
	}
	srv.p.stop(stopGrace)
	sink.stop(stopGrace)
	recv, unverified, err := readSink(sinkPath)
	if err != nil {
		return errors.Join(runErr, err)
	}
	for _, er := range done {
		ids, err := readIDs(er.idsPath)
		if err != nil {
			return errors.Join(runErr, err)
		}
		er.join(ids, recv)
		er.Unverified = unverified
		b.logf("  %s: %d accepted, %d delivered, %d missing, %d duplicates, e2e p50 %.2f ms, p99 %.2f ms, max queue %d",
			er.Name, er.Accepted, er.Delivered, er.Missing, er.Duplicates, er.P50, er.P99, er.MaxQueue)
	}
	return runErr
}

// phaseMemory stores MemBase events, reads the RSS, stores up to MemTotal
// and reads it again; ingest only, sync off.
func (b *bench) phaseMemory(ctx context.Context, res *results) error {
	mr := &memResult{Base: b.s.MemBase, Total: b.s.MemTotal}
	res.Memory = mr
	srv, err := b.startRelay(ctx, "memory", false, "")
	if err != nil {
		return err
	}
	defer srv.p.stop(stopGrace)
	read := func(stored int) (memPoint, error) {
		// Let background work (memtable flushes, GC) settle first.
		select {
		case <-ctx.Done():
			return memPoint{}, ctx.Err()
		case <-time.After(3 * time.Second):
		}
		pt := memPoint{Stored: stored}
		var err error
		if pt.RSS, err = procStatus(srv.p.pid(), "VmRSS"); err != nil {
			return pt, err
		}
		pt.Anon, _ = procStatus(srv.p.pid(), "RssAnon")
		pt.File, _ = procStatus(srv.p.pid(), "RssFile")
		if m, err := b.scrape(ctx, srv.admin); err == nil {
			pt.HeapInuse = int64(m["go_memstats_heap_inuse_bytes"])
		}
		return pt, nil
	}
	for i, n := range []int{mr.Base, mr.Total - mr.Base} {
		st, err := b.send(ctx, fmt.Sprintf("memory: %d events", n), nil, srv.url(), n, 0, "")
		if err != nil {
			return err
		}
		mr.Sends = append(mr.Sends, st)
		mr.stored += st.Outcomes["accepted"]
		pt, err := read(mr.stored)
		if err != nil {
			return err
		}
		mr.Points = append(mr.Points, pt)
		b.logf("  %d events stored: VmRSS %.1f MB (anon %.1f, file %.1f), Go heap in use %.1f MB", pt.Stored, mb(pt.RSS), mb(pt.Anon), mb(pt.File), mb(pt.HeapInuse))
		if i == 0 && st.Failed() > 0 {
			return fmt.Errorf("%d requests failed", st.Failed())
		}
	}
	mr.PeakRSS = peakOf(srv.p)
	return nil
}

// fixedCount is the request count of a fixed-rate run at rate.
func (b *bench) fixedCount(rate float64) int {
	return max(1, int(math.Ceil(rate*b.s.Duration.Seconds())))
}

// startRelay writes a config and starts hookrelay serve with a fresh data
// directory. With target set, one route sends every event there.
func (b *bench) startRelay(ctx context.Context, name string, sync bool, target string) (*server, error) {
	dir := filepath.Join(b.tmp, name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	cfg := filepath.Join(dir, "hookrelay.yaml")
	if err := os.WriteFile(cfg, []byte(b.config(filepath.Join(dir, "data"), sync, target)), 0o600); err != nil {
		return nil, err
	}
	p, err := b.procs.start("hookrelay "+name, []string{b.relay, "serve", "--config", cfg}, dir, filepath.Join(dir, "hookrelay.log"), nil)
	if err != nil {
		return nil, err
	}
	srv := &server{p: p}
	if srv.public, err = p.waitAddr(ctx, "public", startTimeout); err == nil {
		srv.admin, err = p.waitAddr(ctx, "admin", startTimeout)
	}
	if err != nil {
		p.stop(stopGrace)
		return nil, err
	}
	return srv, nil
}

// config is the hookrelay config of a benchmark server: one sketchpen
// source, defaults elsewhere, JSON logs so that the listening addresses can
// be read, and optionally a target with a route taking every event.
func (b *bench) config(data string, sync bool, target string) string {
	var c bytes.Buffer
	fmt.Fprintf(&c, `# generated by benchrun
server:
  listen: "127.0.0.1:0"
admin:
  listen: "127.0.0.1:0"
  token: %q
storage:
  path: %q
  sync: %t
log:
  level: info
  format: json
sources:
  bench:
    provider: sketchpen
    secrets: [%q]
    tolerance: 5m
`, b.token, data, sync, b.secret)
	if target != "" {
		fmt.Fprintf(&c, `targets:
  sink:
    url: %q
    signing_secret: %q
    max_in_flight: %d
routes:
  - name: everything-to-sink
    targets: [sink]
`, target, b.signing, b.s.InFlight)
	}
	return c.String()
}

// send runs `hookrelay send` against url and returns its summary. With srv
// set, the server's VmHWM is reset before and read after the run.
func (b *bench) send(ctx context.Context, name string, srv *proc, url string, count int, rate float64, ids string) (*sendStats, error) {
	args := []string{b.relay, "send", "--provider", "sketchpen", "--secret", b.secret,
		"--size", strconv.Itoa(b.s.Size), "--concurrency", strconv.Itoa(b.s.Concurrency),
		"--count", strconv.Itoa(count), "--json"}
	// A bound for the run: generous, as a loaded machine may be slow.
	timeout := time.Minute + time.Duration(count)*5*time.Millisecond
	if rate > 0 {
		d := time.Duration(float64(count) / rate * float64(time.Second))
		timeout = 2*d + time.Minute
		args = append(args, "--rate", strconv.FormatFloat(rate, 'f', -1, 64), "--duration", (2*d + 30*time.Second).String())
	}
	if ids != "" {
		args = append(args, "--ids", ids)
	}
	args = append(args, url)
	what := "as fast as possible"
	if rate > 0 {
		what = fmt.Sprintf("at %.0f/s", rate)
	}
	b.logf("  %s: %d requests %s, concurrency %d", name, count, what, b.s.Concurrency)
	if srv != nil {
		resetPeak(srv.pid())
	}
	var out bytes.Buffer
	p, err := b.procs.start("send", args, b.tmp, filepath.Join(b.tmp, "send.log"), &out)
	if err != nil {
		return nil, err
	}
	waitErr := p.wait(ctx, timeout)
	st := &sendStats{Rate: rate}
	if err := json.Unmarshal(out.Bytes(), st); err != nil {
		if waitErr != nil {
			if t := p.out.tail(); t != "" {
				return nil, fmt.Errorf("%s: %v; last output:\n%s", name, waitErr, t)
			}
			return nil, fmt.Errorf("%s: %w", name, waitErr)
		}
		return nil, fmt.Errorf("%s: read summary: %v", name, err)
	}
	if srv != nil {
		st.PeakRSS = peakOf(srv)
	}
	b.logf("    %d ok, %d failed, %.0f/s, p50 %.2f ms, p99 %.2f ms", st.OK(), st.Failed(), st.Throughput(), st.LatencyMS["p50"], st.LatencyMS["p99"])
	for _, e := range st.Errors {
		b.logf("    error: %s", e)
	}
	return st, nil
}

// peakOf returns the VmHWM of p, 0 if unknown.
func peakOf(p *proc) int64 {
	n, _ := procStatus(p.pid(), "VmHWM")
	return n
}

// scrape reads hookrelay's Prometheus metrics and sums each metric over its
// labels.
func (b *bench) scrape(ctx context.Context, admin string) (map[string]float64, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	return scrapeMetrics(ctx, "http://"+admin+"/metrics", b.token)
}

// watchQueue scrapes hookrelay_queue_depth every scrapeEvery until the
// returned function is called; that returns the largest depth seen and the
// number of successful scrapes.
func (b *bench) watchQueue(ctx context.Context, admin string) func() (maxDepth, scrapes int) {
	ctx, cancel := context.WithCancel(ctx)
	var maxDepth, scrapes int // written by the goroutine, read after wg.Wait
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(scrapeEvery)
		defer t.Stop()
		for {
			if m, err := b.scrape(ctx, admin); err == nil {
				scrapes++
				maxDepth = max(maxDepth, int(m["hookrelay_queue_depth"]))
			}
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
	return func() (int, int) {
		cancel()
		wg.Wait()
		return maxDepth, scrapes
	}
}

// drain waits until hookrelay's queue is empty and returns how long that
// took.
func (b *bench) drain(ctx context.Context, admin string, timeout time.Duration) (float64, error) {
	start := time.Now()
	for {
		m, err := b.scrape(ctx, admin)
		if d, ok := m["hookrelay_queue_depth"]; err == nil && ok && d == 0 {
			return time.Since(start).Seconds(), nil
		}
		if time.Since(start) > timeout {
			return time.Since(start).Seconds(), fmt.Errorf("queue not empty after %s (depth %v, scrape error %v)", timeout, m["hookrelay_queue_depth"], err)
		}
		select {
		case <-ctx.Done():
			return time.Since(start).Seconds(), ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}
