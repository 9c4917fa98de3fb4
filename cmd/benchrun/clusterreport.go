//go:build linux

package main

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
)

// The cluster section of BENCHMARKS.md sits between these markers, so that
// a run of only the cluster phase replaces it and leaves the rest of the
// file as it is, and a run without it keeps the section already there.
const (
	clusterBegin = "<!-- benchrun:cluster:begin -->"
	clusterEnd   = "<!-- benchrun:cluster:end -->"
)

// machineCPU is the CPU time one 2-core machine has per second, in µs.
const machineCPU = 2_000_000

// clusterTables builds the cluster phase's tables.
func clusterTables(cr *clusterResult) []table {
	if cr == nil || len(cr.Runs) == 0 {
		return nil
	}
	cpus := cr.Machine.CPUs
	main := table{
		title: fmt.Sprintf("Cluster mode: %s at maximum rate, relaying every event to a target that answers 200", cr.Duration),
		header: []string{"run", "load avg before", "accepted", "failed", "events/s", "vs Badger", "p50 ms", "p99 ms",
			"delivered", "deliveries/s", "server CPU µs/event (window)", "ingest + delivery µs/event", "per node µs/event (window)",
			"written bytes/event (window)", "written bytes/event with delivery", "server CPUs busy (sending / after)", "generator CPU", "target CPU µs/event"},
	}
	for _, c := range cr.Runs {
		if c.NoRelay {
			continue
		}
		ratio, per := vsRun(c, cr.run(runBadger)), perNode(c)
		del := strconv.Itoa(c.Delivered)
		if c.Extra > 0 {
			del += fmt.Sprintf(" (+%d repeats)", c.Extra)
		}
		if !c.Drained {
			del += fmt.Sprintf(" (%d still due after a %.0f s wait)", c.Accepted-c.Delivered, c.WaitS)
		}
		tcpu := 0.0
		if c.Accepted > 0 {
			tcpu = c.TargetCPU * 1e6 / float64(c.Accepted)
		}
		split := "-"
		if a, d, ok := c.Split(); ok {
			split = fmt.Sprintf("%s + %s = %s", thousands(a), thousands(d), thousands(a+d))
		}
		main.rows = append(main.rows, []string{c.Name, c.LoadPre, strconv.Itoa(c.Accepted), strconv.Itoa(c.Failed),
			thousands(c.Throughput()), ratio, f2(c.P50), f2(c.P99), del, thousands(c.DeliveryRate()),
			thousands(c.CPUPerEvent()), split, per, thousands(c.BytesPerEvent()), thousands(c.FullBytes()),
			fmt.Sprintf("%.2f / %.2f", safeDiv(c.SendCPU, c.SendS), c.DrainCores()),
			fmt.Sprintf("%.0f%% of %d CPUs (%d proc)", 100*c.GenShare(cpus), cpus, len(c.Sends)), thousands(tcpu)})
	}

	proj := table{
		title:  "Projection: each node on a 2-core machine of its own (from the measured CPU per event)",
		header: []string{"layout", "cost used, µs/event", "events/s", "vs one Badger node"},
	}
	b := cr.run(runBadger)
	bOwn := 0.0
	if b != nil && b.FullCost() > 0 {
		bOwn = machineCPU / b.FullCost()
	}
	vs := func(v float64) string {
		if bOwn <= 0 {
			return "-"
		}
		return fmt.Sprintf("%.2fx", v/bOwn)
	}
	add := func(layout string, cost float64, rate float64) {
		proj.rows = append(proj.rows, []string{layout, thousands(cost), thousands(rate), vs(rate)})
	}
	if bOwn > 0 {
		add("1 node, Badger: 2,000,000 / c", b.FullCost(), bOwn)
	}
	if r1 := cr.run(runR1); r1 != nil && r1.FullCost() > 0 {
		add("1 node, JetStream R1: 2,000,000 / c", r1.FullCost(), machineCPU/r1.FullCost())
	}
	if r3 := cr.run(runR3); r3 != nil && r3.FullCost() > 0 {
		c := r3.FullCost()
		add("3 nodes, R3, even share: 2,000,000 / (c/3)", c/3, 3*machineCPU/c)
		add("3 nodes, R3, busiest node: 2,000,000 / c_max", r3.BusiestFull(), machineCPU/r3.BusiestFull())
		if a, _, ok := r3.Split(); ok && a > 0 {
			add("3 nodes, R3, ingest alone (a, no delivery): 3 × 2,000,000 / a", a, 3*machineCPU/a)
		}
		for _, n := range []int{5, 7} {
			add(fmt.Sprintf("%d nodes, R3, ceiling if the work spread evenly: %d × 2,000,000 / c", n, n), c, float64(n)*machineCPU/c)
		}
	}
	ingest := table{
		title:  fmt.Sprintf("Cluster mode: %s at maximum rate, ingest alone (no target, no route: events stored as unrouted, as in the ingest phase)", cr.Duration),
		header: []string{"run", "load avg before", "accepted", "failed", "events/s", "vs Badger", "p50 ms", "p99 ms", "server CPU µs/event", "per node µs/event", "written bytes/event", "server CPUs busy", "generator CPU"},
	}
	for _, c := range cr.Runs {
		if !c.NoRelay {
			continue
		}
		ratio, per := vsRun(c, cr.run(runBadgerIngest)), perNode(c)
		ingest.rows = append(ingest.rows, []string{c.Name, c.LoadPre, strconv.Itoa(c.Accepted), strconv.Itoa(c.Failed),
			thousands(c.Throughput()), ratio, f2(c.P50), f2(c.P99), thousands(c.CPUPerEvent()), per, thousands(c.BytesPerEvent()),
			fmt.Sprintf("%.2f", safeDiv(c.SendCPU, c.SendS)), fmt.Sprintf("%.0f%% of %d CPUs (%d proc)", 100*c.GenShare(cpus), cpus, len(c.Sends))})
	}
	out := []table{main, proj}
	if len(ingest.rows) > 0 {
		out = append(out, ingest)
	}
	return out
}

// vsRun is c's throughput as a ratio to base's ("-" without base).
func vsRun(c, base *clusterRun) string {
	if base == nil || base.Throughput() <= 0 {
		return "-"
	}
	return fmt.Sprintf("%.2fx", c.Throughput()/base.Throughput())
}

// perNode lists the CPU per event of each server process ("-" for one).
func perNode(c *clusterRun) string {
	if len(c.ServerCPU) < 2 {
		return "-"
	}
	return joinF(c.NodeCPUPerEvent(), " / ")
}

// clusterTargets are the goal for the cluster phase, judged with
// relaying on and on ingest alone.
func clusterTargets(cr *clusterResult) []target {
	return []target{
		clusterTarget(cr, runBadger, runR3, "relaying every event"),
		clusterTarget(cr, runBadgerIngest, runR3Ingest, "ingest alone"),
	}
}

func clusterTarget(cr *clusterResult, badger, three, what string) target {
	t := target{name: "three nodes R3 >= 0.5x single-node Badger throughput, same 2 CPUs, " + what, value: "-", result: "not measured"}
	b, r3 := cr.run(badger), cr.run(three)
	if b == nil || r3 == nil || b.Throughput() <= 0 {
		return t
	}
	ratio := r3.Throughput() / b.Throughput()
	t.value = fmt.Sprintf("%.2fx (%s vs %s events/s)", ratio, thousands(r3.Throughput()), thousands(b.Throughput()))
	t.result = verdict(ratio >= 0.5)
	return t
}

// spread lists every run's throughput, grouped by configuration (in the
// order of the report's rows).
func spread(cr *clusterResult) string {
	var out []string
	for _, median := range cr.Runs {
		var rates []string
		for _, r := range cr.All {
			if r.Name == median.Name {
				rates = append(rates, thousands(r.Throughput()))
			}
		}
		out = append(out, fmt.Sprintf("%s %s", median.Name, strings.Join(rates, " / ")))
	}
	return strings.Join(out, "; ")
}

// printCluster prints the cluster phase as text.
func printCluster(w io.Writer, cr *clusterResult) {
	if cr == nil {
		return
	}
	fmt.Fprintf(w, "\ncluster phase: load average %s at start, %s at end; took %s\n", cr.Machine.LoadStart, cr.Machine.LoadEnd, cr.Elapsed.Round(time.Second))
	if cr.Rounds > 1 {
		fmt.Fprintf(w, "%d rounds, median runs shown; every run's events/s: %s\n", cr.Rounds, spread(cr))
	}
	for _, t := range clusterTables(cr) {
		t.text(w)
	}
	if b, r1 := cr.run(runBadger), cr.run(runR1); b != nil && r1 != nil && b.Throughput() > 0 {
		fmt.Fprintf(w, "JetStream R1 / Badger: %.2fx\n", r1.Throughput()/b.Throughput())
	}
	for _, t := range clusterTargets(cr) {
		fmt.Fprintf(w, "target: %s: %s (%s)\n", t.name, t.value, t.result)
	}
	for _, e := range cr.Errors {
		fmt.Fprintf(w, "ERROR (cluster): %s\n", e)
	}
}

// clusterMarkdown renders the "Cluster mode" section, markers included.
func clusterMarkdown(cr *clusterResult, s settings) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s\n## Cluster mode\n\n", clusterBegin)
	fmt.Fprintf(&b, "Generated by `go run ./cmd/benchrun -phases cluster` (cmd/benchrun/cluster.go); rerun it rather than editing this section. It is measured separately from the sections above, on its own date.\n\n")
	if s.Quick {
		fmt.Fprintf(&b, "> **SMOKE RUN (`-quick`).** Short runs: the numbers show that the phase works, not what hookrelay does.\n\n")
	}
	if s.Note != "" {
		fmt.Fprintf(&b, "> **Note:** %s\n\n", s.Note)
	}
	m := cr.Machine
	fmt.Fprintf(&b, "- Command: `%s` (from the repository root)\n", cr.Command)
	fmt.Fprintf(&b, "- Date: %s, the phase took %s\n", cr.Date.Format("2006-01-02 15:04 MST"), cr.Elapsed.Round(time.Second))
	fmt.Fprintf(&b, "- Machine: %d CPUs (`nproc`), %s; %s memory; %s; %s\n", m.CPUs, m.CPUModel, m.Memory, m.Kernel, m.GoVersion)
	fmt.Fprintf(&b, "- Load average (1/5/15 min): %s at the start of the phase, %s at the end; before each run in the table\n", m.LoadStart, m.LoadEnd)
	fmt.Fprintf(&b, "- Load: `hookrelay send --provider sketchpen --size %d --duration %s`, %d requests in flight in all: one send process for a single node, three (one per node's public URL, the concurrency split between them) for three nodes; target `max_in_flight: %d`\n\n",
		s.Size, cr.Duration, s.Concurrency, s.InFlight)
	if cr.Rounds > 1 {
		fmt.Fprintf(&b, "- Rounds: %d, every configuration once per round, interleaved; each row below is that configuration's median-throughput run, so each ratio compares medians. Every run's events/s: %s\n\n", cr.Rounds, spread(cr))
	}
	for _, t := range clusterTables(cr) {
		t.markdown(&b)
	}
	b.WriteString("### Ratios and target\n\n")
	bd, r1, r3 := cr.run(runBadger), cr.run(runR1), cr.run(runR3)
	if bd != nil && bd.Throughput() > 0 {
		if r1 != nil {
			fmt.Fprintf(&b, "- JetStream R1 / Badger throughput: **%.2fx**; CPU per event %.2fx, bytes written per event %.2fx\n",
				r1.Throughput()/bd.Throughput(), safeDiv(r1.FullCost(), bd.FullCost()), safeDiv(r1.FullBytes(), bd.FullBytes()))
		}
		if r3 != nil {
			fmt.Fprintf(&b, "- 3 nodes R3 / Badger throughput: **%.2fx**; CPU per event %.2fx, bytes written per event %.2fx\n",
				r3.Throughput()/bd.Throughput(), safeDiv(r3.FullCost(), bd.FullCost()), safeDiv(r3.FullBytes(), bd.FullBytes()))
		}
	}
	for _, t := range clusterTargets(cr) {
		fmt.Fprintf(&b, "- Target (issue 13), %s: %s, %s\n", t.name, t.value, t.result)
	}
	b.WriteString("\n")
	warn := clusterNotes(cr)
	if len(warn) > 0 {
		b.WriteString("Warnings about this run:\n\n")
		for _, w := range warn {
			fmt.Fprintf(&b, "- %s\n", w)
		}
		b.WriteString("\n")
	}
	if len(cr.Errors) > 0 {
		b.WriteString("Errors:\n\n")
		for _, e := range cr.Errors {
			fmt.Fprintf(&b, "- %s\n", strings.ReplaceAll(e, "\n", " "))
		}
		b.WriteString("\n")
	}
	b.WriteString(clusterMethod)
	fmt.Fprintf(&b, "%s\n", clusterEnd)
	return b.String()
}

// clusterNotes are warnings about the validity of the cluster figures.
func clusterNotes(cr *clusterResult) []string {
	var out []string
	for _, c := range cr.Runs {
		if c.Failed > 0 {
			var errs []string
			for _, s := range c.Sends {
				errs = append(errs, s.Errors...)
			}
			out = append(out, fmt.Sprintf("%s: %d requests failed (%s)", c.Name, c.Failed, strings.Join(errs, "; ")))
		}
		if !c.Drained {
			out = append(out, fmt.Sprintf("%s: only %d of %d accepted events had been delivered %.0f s after sending ended (%s deliveries/s against %s accepted/s): delivery, not ingest, limits the sustained rate; the window figures miss the deliveries still due, so the projection uses ingest + delivery", c.Name, c.Delivered, c.Accepted, c.WaitS, thousands(c.DeliveryRate()), thousands(c.Throughput())))
		}
		if share := c.GenShare(cr.Machine.CPUs); share > 0.4 {
			out = append(out, fmt.Sprintf("%s: the load generator used %.0f%% of the machine: it competes with the servers for the CPUs", c.Name, 100*share))
		}
	}
	return out
}

func safeDiv(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b
}

// spliceCluster puts section into doc: in place of an existing cluster
// section, else at the end.
func spliceCluster(doc, section string) string {
	if old := extractCluster(doc); old != "" {
		return strings.Replace(doc, old, section, 1)
	}
	if doc != "" && !strings.HasSuffix(doc, "\n") {
		doc += "\n"
	}
	if doc != "" {
		doc += "\n"
	}
	return doc + section
}

// extractCluster returns the cluster section of doc, markers and the end
// marker's newline included, or "".
func extractCluster(doc string) string {
	i := strings.Index(doc, clusterBegin)
	if i < 0 {
		return ""
	}
	j := strings.Index(doc[i:], clusterEnd)
	if j < 0 {
		return ""
	}
	end := i + j + len(clusterEnd)
	if end < len(doc) && doc[end] == '\n' {
		end++
	}
	return doc[i:end]
}

// clusterMethod explains the cluster figures and the projection.
const clusterMethod = `### How the cluster figures are measured

- **Runs.** One after another, each on fresh data directories and fresh
  processes, everything on 127.0.0.1 of this one 2-CPU machine, so every
  server process, the load generator and the target share the same 2 CPUs:
  (1) one ` + "`hookrelay serve`" + ` on Badger with ` + "`storage.sync: false`" + `; (2) one node in
  cluster mode, ` + "`cluster.nats.embedded`" + ` with no routes, ` + "`replicas: 1`" + `; (3) three
  nodes n0, n1, n2, each with an embedded NATS server routed to the other two,
  ` + "`replicas: 3`" + `. Each node's config is the ingest config of the sections
  above (one sketchpen source) plus one target and a route taking every event,
  so **the cost includes delivery**; then (4) Badger and (5) three nodes
  again with no target and no route (events stored as unrouted, as in the
  ingest phase above): the cost of ingest alone, the public URL's capacity
  when nothing competes with it. JetStream's file store keeps its default
  sync (an fsync every 2 minutes), comparable to Badger with sync off.
- **Load.** ` + "`hookrelay send`" + ` as fast as it can for a fixed duration, with a fixed
  number of requests in flight in all; for three nodes three send processes,
  one per node's public URL (what a load balancer would do). Events/s is
  accepted events over the longest sender's duration. p50 and p99 are the
  largest of the senders' own percentiles (send reports no raw latencies, so
  the three cannot be merged exactly); the three-node p99 is therefore an
  upper bound of the pooled p99.
- **Target.** An HTTP server inside benchrun that reads the body, answers 200
  at once and counts distinct ` + "`webhook-id`" + `s. After sending, benchrun waits until
  every accepted event has arrived, at most ` + "`-cluster-drain`" + ` ("delivered" says
  how many were still due). Its CPU is benchrun's own (/proc/self/stat),
  reported apart and not counted as server CPU.
- **Costs.** The window runs from just before the first request to the last
  delivery or the end of the wait. Server CPU is utime+stime from /proc/<pid>/stat (all threads;
  the embedded NATS server runs inside the hookrelay process) summed over the
  server processes, divided by accepted events. Bytes written are
  ` + "`write_bytes`" + ` from /proc/<pid>/io (bytes the process sent, or dirtied for, the
  block layer: page-cache and mmap writes count when dirtied, so sync off does
  not hide them), summed over the servers, per accepted event; with R3 that is
  three copies. Writes after the window (Badger compaction, JetStream
  compaction of replaced subjects) are not counted. When deliveries are
  still due at the end of the wait, the window misses their cost, so benchrun
  also splits it: after sending ends the servers only deliver, so the CPU
  (and bytes) of that stretch over the deliveries made in it is the cost d
  of a delivery, and the sending stretch less d per delivery made in it,
  over the accepted events, is the cost a of an ingest ("ingest + delivery"
  is a + d, linear by assumption; idle polling counts as delivery cost).
  d is measured with the backlog the run left behind: if a delivery costs
  more the longer the queue (cluster-mode figures from runs with different
  backlogs suggest so; not profiled), d overstates what a cluster that keeps
  up pays, and a is understated by the same CPU; the "ingest alone" row of
  the projection is the ceiling of the ingest path with delivery left out.
  The generator's CPU is the send processes' rusage as a share of the
  machine's CPUs over the sending time: when it is large, the generator, not
  the server, may be what limits the rate.
- **JetStream R1.** nats-server (v2.15.3, as go.mod pins it) stages every
  atomic batch of a replicas-1 file-storage stream in a temporary file store
  of its own on disk (` + "`newBatchStore`" + ` in server/jetstream_batching.go: a
  directory, a block file flushed with fsync, then removal), where a
  replicated stream stages it in memory. A 6 s CPU profile of the R1 node
  under this load (admin ` + "`/debug/pprof/profile`" + `, 2026-12-01) put a quarter of
  the process's CPU in ` + "`newAtomicBatch`" + ` and 44% in system calls (write,
  mkdir, fsync, unlink); a profile while the backlog was being delivered
  put 41% in it (delivery writes its state as atomic batches too), with the
  process using only 0.28 of a CPU: each batch waits on its own fsync. That,
  not replication, is why R1 is slower than R3 here and writes so many bytes
  per event. The R3 nodes were not profiled.
- **What the stream charges.** ` + "`go test -run '^$' -bench ReplicatedWrite ./relay/jsstore/`" + `
  commits atomic batches of new subjects on three in-process servers
  (replicas 3) and reports the CPU of all three per message. On this machine
  (2026-12-01) a 64 B message cost 63 µs alone in its batch and 22 µs in a
  batch of 27, a 1 KiB one 77 and 42 µs: about 40 µs per RAFT proposal, 20 µs
  per small message and 20 µs more per KiB, for the three replicas together.
  A relayed event is five messages (claim, event with its body, queue entry;
  then the delivery record and the queue entry's removal) in two proposals:
  about 200 µs of nats-server CPU when each proposal carries one event, more
  than a whole Badger event with its delivery in the table above. The store
  path alone (` + "`JSSTORE_BENCH=1 go test -run TestThroughput ./relay/jsstore/`" + `,
  three in-process servers, 64 writers) ingested 17,600 events/s; the
  three-node runs add HTTP, three processes' runtimes and delivery on the
  same 2 CPUs. Tried on the
  three-node runs and not kept, each within this machine's run-to-run
  spread: 2 or 3 ingest committers instead of 8 (batches of 3 events instead
  of 1, no less CPU per event), GOGC=400, S2 compression of the stream,
  GOMAXPROCS=1, and 64 requests in flight instead of 32 (Badger gained as
  much: 0.42x relaying, 0.43x ingest alone).
- **Projection.** A 2-core machine has 2,000,000 CPU-µs per second. With c the
  server CPU per event with its delivery (the window when every event was
  delivered in it, else ingest + delivery), summed over every process (for R3
  the three replicas' work is all in c), N nodes on machines of their own and
  with the work spread evenly do about N × 2,000,000 / c events/s; for three
  nodes that is 2,000,000 / (c/3), c/3 being each node's share of one event.
  Because every R3 event costs every replica work, c already counts the
  replication; dividing by 3 only spreads it. Limits: (a) the work is not
  spread evenly: hookrelay keeps everything in one stream, so its RAFT leader
  takes every proposal, sends it to the followers and answers the acks, and
  the busiest node (c_max: the largest per-node share of the window's CPU,
  applied to c) sets the three-node rate; that row is the one to trust;
  (b) beyond three nodes with R3 the one stream still lives on three of them, so extra nodes take only HTTP, dedupe
  lookups and delivery off the stream's nodes: the 5 and 7 node rows are
  ceilings, not expectations; (c) on real machines RAFT adds a network round
  trip (0.1–1 ms in one region instead of loopback's microseconds) to every
  acknowledgement: that raises latency more than CPU, but with a fixed number
  of requests in flight throughput is at most in-flight / latency, so
  providers need enough concurrency; (d) here the load generator and the
  target run on the same CPUs, and the measured c includes contention, cache
  sharing and the noise of other work on the machine; (e) disks: at the
  written bytes per event shown, a machine's disk bandwidth can bind before
  its CPUs; (f) the projection is a CPU ceiling: where deliveries/s stays
  far below accepted/s while the servers leave CPU idle after sending (the
  "CPUs busy" column), delivery is bound by the latency of each delivery's
  store writes times the target's ` + "`max_in_flight`" + ` (cluster-wide in cluster
  mode), not by CPU, and more machines do not raise it.
`
