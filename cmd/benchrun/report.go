//go:build linux

package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// machine describes where the benchmark ran.
type machine struct {
	CPUs      int
	CPUModel  string
	Memory    string
	Kernel    string
	GoVersion string
	LoadStart string // /proc/loadavg
	LoadEnd   string
}

func describeMachine(goBin string) machine {
	m := machine{CPUs: runtime.NumCPU(), CPUModel: "unknown", Memory: "unknown", LoadStart: loadAvg()}
	if out, err := exec.Command("nproc").Output(); err == nil {
		if n, err := strconv.Atoi(strings.TrimSpace(string(out))); err == nil {
			m.CPUs = n
		}
	}
	if v := procField("/proc/cpuinfo", "model name"); v != "" {
		m.CPUModel = v
	}
	if v := procField("/proc/meminfo", "MemTotal"); v != "" {
		if kb, err := strconv.ParseInt(strings.TrimSuffix(v, " kB"), 10, 64); err == nil {
			m.Memory = fmt.Sprintf("%.1f GiB", float64(kb)/(1<<20))
		}
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = "Linux " + strings.TrimSpace(string(b)) + " " + runtime.GOARCH
	}
	if out, err := exec.Command(goBin, "version").Output(); err == nil {
		m.GoVersion = strings.TrimPrefix(strings.TrimSpace(string(out)), "go version ")
	}
	return m
}

// procField returns the value of the first "key: value" line of a /proc
// file.
func procField(path, key string) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if ok && strings.TrimSpace(k) == key {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// loadAvg is the 1, 5 and 15 minute load average.
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}

// table is a result table, rendered as text or Markdown.
type table struct {
	title  string
	header []string
	rows   [][]string
}

func (t table) text(w io.Writer) {
	fmt.Fprintf(w, "\n%s\n", t.title)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, strings.Join(t.header, "\t"))
	for _, r := range t.rows {
		fmt.Fprintln(tw, strings.Join(r, "\t"))
	}
	tw.Flush()
}

func (t table) markdown(w io.Writer) {
	fmt.Fprintf(w, "### %s\n\n| %s |\n|", t.title, strings.Join(t.header, " | "))
	for range t.header {
		fmt.Fprint(w, "---|")
	}
	fmt.Fprintln(w)
	for _, r := range t.rows {
		fmt.Fprintf(w, "| %s |\n", strings.Join(r, " | "))
	}
	fmt.Fprintln(w)
}

// tables builds every result table.
func tables(r *results) []table {
	bare := r.Bare.Throughput()
	ingest := table{
		title:  "Ingest: throughput and latency seen by the load generator",
		header: []string{"run", "requests", "failed", "events/s", "vs bare", "p50 ms", "p99 ms", "max ms", "peak RSS MB"},
	}
	row := func(name string, s *sendStats) {
		if s == nil {
			return
		}
		ratio := ""
		if s.Rate == 0 && bare > 0 {
			ratio = fmt.Sprintf("%.2fx", s.Throughput()/bare)
		}
		rss := "-"
		if s.PeakRSS > 0 {
			rss = fmt.Sprintf("%.0f", mb(s.PeakRSS))
		}
		ingest.rows = append(ingest.rows, []string{name, strconv.Itoa(s.Requests), strconv.Itoa(s.Failed()),
			thousands(s.Throughput()), ratio, f2(s.LatencyMS["p50"]), f2(s.LatencyMS["p99"]), f2(s.LatencyMS["max"]), rss})
	}
	label := func(prefix string, s *sendStats) string {
		if s == nil || s.Rate == 0 {
			return prefix + ", max"
		}
		return fmt.Sprintf("%s @ %s/s", prefix, thousands(s.Rate))
	}
	row(label("bare limit", r.Bare), r.Bare)
	row(label("bare limit", r.BareLat), r.BareLat)
	for _, ir := range r.Ingest {
		p := fmt.Sprintf("hookrelay sync=%t", ir.Sync)
		row(label(p, ir.Max), ir.Max)
		row(label(p, ir.Lat), ir.Lat)
	}
	for _, er := range r.E2E {
		row(er.Name+" (ingest side)", er.Send)
	}
	out := []table{ingest}

	if len(r.E2E) > 0 {
		e2e := table{
			title: "End to end: acceptance (send --ids) to receipt by `hookrelay sink --json`",
			header: []string{"run", "accepted", "delivered", "missing", "duplicates", "relay events/s",
				"p50 ms", "p99 ms", "max ms", "max queue depth", "drain s", "peak RSS MB"},
		}
		for _, er := range r.E2E {
			if er.Send == nil {
				continue
			}
			missing := strconv.Itoa(er.Missing)
			if !er.Drained {
				missing += " (queue not drained)"
			}
			e2e.rows = append(e2e.rows, []string{er.Name, strconv.Itoa(er.Accepted), strconv.Itoa(er.Delivered),
				missing, strconv.Itoa(er.Duplicates), thousands(er.RelayRate), f2(er.P50), f2(er.P99), f2(er.Max),
				fmt.Sprintf("%d (%d scrapes)", er.MaxQueue, er.Scrapes), fmt.Sprintf("%.1f", er.DrainS), fmt.Sprintf("%.0f", mb(er.PeakRSS))})
		}
		out = append(out, e2e)
	}

	if m := r.Memory; m != nil && len(m.Points) > 0 {
		mem := table{title: "Memory: hookrelay RSS by stored events (ingest only, sync=false)",
			header: []string{"stored events", "VmRSS MB", "RssAnon MB", "RssFile MB", "Go heap in use MB", "ingest events/s"}}
		for i, p := range m.Points {
			rate := ""
			if i < len(m.Sends) {
				rate = thousands(m.Sends[i].Throughput())
			}
			mem.rows = append(mem.rows, []string{strconv.Itoa(p.Stored), fmt.Sprintf("%.1f", mb(p.RSS)), fmt.Sprintf("%.1f", mb(p.Anon)),
				fmt.Sprintf("%.1f", mb(p.File)), fmt.Sprintf("%.1f", mb(p.HeapInuse)), rate})
		}
		if p0, p1, ok := m.readings(); ok {
			mem.rows = append(mem.rows, []string{"growth", fmt.Sprintf("%+.1f", mb(p1.RSS-p0.RSS)), fmt.Sprintf("%+.1f", mb(p1.Anon-p0.Anon)),
				fmt.Sprintf("%+.1f", mb(p1.File-p0.File)), fmt.Sprintf("%+.1f", mb(p1.HeapInuse-p0.HeapInuse)), ""})
		}
		out = append(out, mem)
	}

	peaks := table{title: "Peak RSS (VmHWM) of hookrelay by phase", header: []string{"phase", "peak RSS MB"}}
	for _, ir := range r.Ingest {
		peaks.rows = append(peaks.rows, []string{fmt.Sprintf("ingest sync=%t", ir.Sync), fmt.Sprintf("%.0f", mb(ir.PeakRSS))})
	}
	var e2ePeak int64
	for _, er := range r.E2E {
		e2ePeak = max(e2ePeak, er.PeakRSS)
	}
	if len(r.E2E) > 0 {
		peaks.rows = append(peaks.rows, []string{"end to end", fmt.Sprintf("%.0f", mb(e2ePeak))})
	}
	if r.Memory != nil {
		peaks.rows = append(peaks.rows, []string{fmt.Sprintf("memory (%d events)", r.Memory.stored), fmt.Sprintf("%.0f", mb(r.Memory.PeakRSS))})
	}
	if len(peaks.rows) > 0 {
		out = append(out, peaks)
	}

	tt := table{title: "Targets", header: []string{"target", "measured", "result"}}
	for _, t := range targets(r) {
		tt.rows = append(tt.rows, []string{t.name, t.value, t.result})
	}
	return append(out, tt)
}

// target is one goal of issue #7 and whether this run met it.
type target struct{ name, value, result string }

func verdict(ok bool) string {
	if ok {
		return "met"
	}
	return "**missed**"
}

// targets evaluates the goals; a goal whose phase did not run is "not measured".
func targets(r *results) []target {
	var out []target
	add := func(name string, have bool, value string, ok bool) {
		t := target{name: name, value: "-", result: "not measured"}
		if have {
			t.value, t.result = value, verdict(ok)
		}
		out = append(out, t)
	}
	ingest := func(sync bool) *ingestResult {
		for _, ir := range r.Ingest {
			if ir.Sync == sync {
				return ir
			}
		}
		return nil
	}
	off, on := ingest(false), ingest(true)
	bare := r.Bare.Throughput()
	if off != nil && off.Max != nil && bare > 0 {
		ratio := off.Max.Throughput() / bare
		add("ingest throughput, sync off >= 0.6x bare", true,
			fmt.Sprintf("%.2fx (%s vs %s events/s)", ratio, thousands(off.Max.Throughput()), thousands(bare)), ratio >= 0.6)
	} else {
		add("ingest throughput, sync off >= 0.6x bare", false, "", false)
	}
	if on != nil && on.Max != nil {
		add("ingest throughput, sync on >= 10,000 events/s", true, thousands(on.Max.Throughput())+" events/s", on.Max.Throughput() >= 10000)
	} else {
		add("ingest throughput, sync on >= 10,000 events/s", false, "", false)
	}
	for _, ir := range []*ingestResult{off, on} {
		name := "ingest p99 < 5 ms at half max rate, sync "
		if ir == on {
			name += "on"
		} else {
			name += "off"
		}
		if ir != nil && ir.Lat != nil {
			p99 := ir.Lat.LatencyMS["p99"]
			add(name, true, fmt.Sprintf("%.2f ms @ %s/s", p99, thousands(ir.Lat.Rate)), p99 < 5)
		} else {
			add(name, false, "", false)
		}
	}
	name := fmt.Sprintf("end-to-end p99 < 20 ms at %s events/s", thousands(r.Settings.E2ERate))
	if len(r.E2E) > 0 && r.E2E[0].Delivered > 0 {
		add(name, true, fmt.Sprintf("%.2f ms", r.E2E[0].P99), r.E2E[0].P99 < 20)
	} else {
		add(name, false, "", false)
	}
	lost, dup, runs, drained := 0, 0, 0, true
	for _, er := range r.E2E {
		if er.Accepted > 0 {
			lost += er.Missing
			dup += er.Duplicates
			runs++
			drained = drained && er.Drained
		}
	}
	value := fmt.Sprintf("%d missing, %d duplicates", lost, dup)
	if !drained {
		value += " (the queue had not drained)"
	}
	add("end to end: every accepted event reached the sink", runs > 0, value, lost == 0)
	p0, p1, ok := r.Memory.readings()
	span := fmt.Sprintf("from %s to %s stored events", short(r.Settings.MemBase), short(r.Settings.MemTotal))
	g := p1.Anon - p0.Anon
	add("RSS growth < 100 MB "+span+" (anonymous memory)", ok,
		fmt.Sprintf("%+.1f MB RssAnon (%.1f -> %.1f MB)", mb(g), mb(p0.Anon), mb(p1.Anon)), g < 100<<20)
	g = p1.RSS - p0.RSS
	add("VmRSS growth < 100 MB "+span+" (incl. mapped value log)", ok,
		fmt.Sprintf("%+.1f MB (%.1f -> %.1f MB)", mb(g), mb(p0.RSS), mb(p1.RSS)), g < 100<<20)
	return out
}

// notes are warnings about the validity of this run's numbers.
func notes(r *results) []string {
	var out []string
	check := func(name string, s *sendStats) {
		if s == nil {
			return
		}
		if n := s.Failed(); n > 0 {
			out = append(out, fmt.Sprintf("%s: %d of %d requests failed (%s)", name, n, s.Requests, strings.Join(s.Errors, "; ")))
		}
		if s.Rate > 0 && s.Throughput() < 0.9*s.Rate {
			out = append(out, fmt.Sprintf("%s: asked for %s/s, achieved %s/s: the fixed-rate latency is not at the intended load",
				name, thousands(s.Rate), thousands(s.Throughput())))
		}
	}
	check("bare limit, max", r.Bare)
	check("bare limit, fixed rate", r.BareLat)
	for _, ir := range r.Ingest {
		check(fmt.Sprintf("hookrelay sync=%t, max", ir.Sync), ir.Max)
		check(fmt.Sprintf("hookrelay sync=%t, fixed rate", ir.Sync), ir.Lat)
	}
	for _, er := range r.E2E {
		check(er.Name, er.Send)
		if er.Unverified > 0 {
			out = append(out, fmt.Sprintf("%s: the sink saw %d deliveries without a verified signature", er.Name, er.Unverified))
		}
	}
	if r.Memory != nil {
		for i, s := range r.Memory.Sends {
			check(fmt.Sprintf("memory send %d", i+1), s)
		}
	}
	return out
}

// printReport prints the tables to w.
func printReport(w io.Writer, r *results) {
	fmt.Fprintf(w, "\nhookrelay benchmark, %s, %d CPUs (%s), %s, %s\n", r.Date.Format("2006-01-02 15:04 MST"),
		r.Machine.CPUs, r.Machine.CPUModel, r.Machine.Memory, r.Machine.GoVersion)
	fmt.Fprintf(w, "load average at start %s, at end %s; took %s\n", r.Machine.LoadStart, r.Machine.LoadEnd, r.Elapsed.Round(time.Second))
	if !r.Settings.onlyCluster() {
		for _, t := range tables(r) {
			t.text(w)
		}
	}
	printCluster(w, r.Cluster)
	for _, n := range notes(r) {
		fmt.Fprintf(w, "note: %s\n", n)
	}
	for _, e := range r.Errors {
		fmt.Fprintf(w, "ERROR: %s\n", e)
	}
}

// markdown renders BENCHMARKS.md.
func markdown(r *results) string {
	var b strings.Builder
	s := r.Settings
	fmt.Fprintf(&b, "# hookrelay benchmarks\n\n")
	fmt.Fprintf(&b, "Generated by `go run ./cmd/benchrun` (cmd/benchrun); rerun it rather than editing this file.\n\n")
	if s.Quick {
		fmt.Fprintf(&b, "> **SMOKE RUN (`-quick`).** Small counts and 2 s fixed-rate runs: this run shows that the benchmark works end to end. Its numbers are not a measurement of hookrelay.\n\n")
	}
	if s.Note != "" {
		fmt.Fprintf(&b, "> **Note:** %s\n\n", s.Note)
	}
	fmt.Fprintf(&b, "## Run\n\n")
	fmt.Fprintf(&b, "- Command: `%s` (from the repository root)\n", r.Command)
	fmt.Fprintf(&b, "- Date: %s, took %s\n", r.Date.Format("2006-01-02 15:04 MST"), r.Elapsed.Round(time.Second))
	fmt.Fprintf(&b, "- Machine: %d CPUs (`nproc`), %s; %s memory; %s; %s\n", r.Machine.CPUs, r.Machine.CPUModel, r.Machine.Memory, r.Machine.Kernel, r.Machine.GoVersion)
	fmt.Fprintf(&b, "- Load average (1/5/15 min): %s at start, %s at end\n", r.Machine.LoadStart, r.Machine.LoadEnd)
	fmt.Fprintf(&b, "- Load: `hookrelay send --provider sketchpen --size %d --concurrency %d`; maximum-throughput runs send %d requests; fixed-rate runs last %s; end-to-end fixed rate %s events/s; sink target `max_in_flight: %d`",
		s.Size, s.Concurrency, s.N, s.Duration, thousands(s.E2ERate), s.InFlight)
	if s.Memory {
		fmt.Fprintf(&b, "; memory phase %d then %d stored events", s.MemBase, s.MemTotal)
	} else {
		fmt.Fprintf(&b, "; memory phase not run (`-memory`)")
	}
	fmt.Fprintf(&b, "\n\n## Results\n\n")
	for _, t := range tables(r) {
		t.markdown(&b)
	}
	if n := notes(r); len(n) > 0 {
		fmt.Fprintf(&b, "Warnings about this run:\n\n")
		for _, x := range n {
			fmt.Fprintf(&b, "- %s\n", x)
		}
		fmt.Fprintln(&b)
	}
	if len(r.Errors) > 0 {
		fmt.Fprintf(&b, "Errors:\n\n")
		for _, e := range r.Errors {
			fmt.Fprintf(&b, "- %s\n", strings.ReplaceAll(e, "\n", " "))
		}
		fmt.Fprintln(&b)
	}
	b.WriteString(method)
	return b.String()
}

// method explains what the numbers mean; it goes at the end of BENCHMARKS.md.
const method = `## Method

Everything runs on 127.0.0.1, and the load generator shares the CPUs with the
server under test; the ratio to the bare limit is the figure to compare across
machines.

- **Load generator.** The same ` + "`hookrelay send`" + ` binary (built by benchrun with
  ` + "`go build`" + `) drives every server: Sketchpen-signed JSON bodies padded to the
  chosen size, each with a unique dedupe key, over keep-alive connections, with
  a fixed number of requests in flight. Only a 200 with status accepted or
  duplicate counts as success. Latency is per request, from sending to reading
  the answer. With ` + "`--rate`" + ` requests are paced and held back when all workers
  are busy, so an overloaded server shows as a lower achieved rate (flagged
  under the tables) rather than as higher latency.
- **Bare limit.** ` + "`cmd/barelimit`" + `: Go's HTTP server with hookrelay's default
  server timeouts and body limit; it reads the body, checks one Sketchpen HMAC
  in constant time and answers ` + "`{\"status\":\"accepted\",\"id\":...}`" + `. No JSON
  parsing, no dedupe, no storage: the floor of the HTTP and HMAC work.
- **Ingest.** ` + "`hookrelay serve`" + ` with a generated config: one sketchpen source, no
  targets and no routes (events are stored as unrouted, so no delivery work
  competes), a fresh data directory per phase, ` + "`storage.sync`" + ` false or true,
  every other key at its default. Maximum throughput at a fixed count first,
  then latency at a fixed rate of half that maximum, against the same process.
- **End to end.** The same config with ` + "`sync: false`" + `, plus a target
  ` + "`hookrelay sink --json`" + ` with a signing secret (the sink verifies every
  signature) and one route taking every event. Latency runs from the moment
  ` + "`send`" + ` read the 200 (` + "`--ids`" + `) to the sink's ` + "`received_at`" + `; both clocks are the
  same machine's, and a delivery that beats the 200 to its client counts as 0.
  "Relay events/s" is delivered events over the time from the first acceptance
  to the last receipt. After each run benchrun waits for
  ` + "`hookrelay_queue_depth`" + ` to reach 0; the queue depth is scraped from the admin
  ` + "`/metrics`" + ` every 0.5 s during the run. Every accepted id is looked up in the
  sink's output: "missing" were accepted but never delivered, "duplicates"
  are extra deliveries (allowed by at-least-once, counted to show them).
- **Memory.** Peak RSS is VmHWM from ` + "`/proc/<pid>/status`" + `, reset before each run
  with ` + "`echo 5 > /proc/<pid>/clear_refs`" + `. The flat-memory check stores the
  first batch, waits 3 s, reads VmRSS, RssAnon and RssFile (and the Go heap
  in use from ` + "`/metrics`" + `), stores up to the total and reads again.
  RssFile is the resident part of files hookrelay maps, chiefly Badger's
  value log: it grows with the data stored and is page cache the kernel
  reclaims under pressure. RssAnon is the memory hookrelay itself holds; the
  flat-memory target is judged on it, and VmRSS is reported beside it.
- **Processes.** Every child runs in its own process group and gets SIGTERM,
  then SIGKILL, when benchrun ends, fails, times out (` + "`-timeout`" + `) or is
  interrupted.
`

// thousands formats v rounded, with thousands separators.
func thousands(v float64) string {
	s := strconv.FormatInt(int64(v+0.5), 10)
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}

// short writes 100000 as 100k and 1000000 as 1M.
func short(n int) string {
	switch {
	case n%1000000 == 0:
		return fmt.Sprintf("%dM", n/1000000)
	case n%1000 == 0:
		return fmt.Sprintf("%dk", n/1000)
	}
	return strconv.Itoa(n)
}

func f2(v float64) string { return fmt.Sprintf("%.2f", v) }

func mb(n int64) float64 { return float64(n) / (1 << 20) }
