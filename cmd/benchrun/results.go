//go:build linux

package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"
)

// results is everything one benchmark run measured.
type results struct {
	Settings settings
	Machine  machine
	Command  string
	Date     time.Time
	Elapsed  time.Duration

	Bare, BareLat *sendStats
	Ingest        []*ingestResult // sync false, then sync true
	E2E           []*e2eResult    // fixed rate, then maximum
	Memory        *memResult
	Cluster       *clusterResult // the cluster phase (-phases cluster)
	Errors        []string
}

// ingestResult is one ingest-only phase.
type ingestResult struct {
	Sync    bool
	Max     *sendStats // fixed count, as fast as possible
	Lat     *sendStats // half of Max's throughput
	PeakRSS int64      // hookrelay's VmHWM over the phase
}

// e2eResult is one end-to-end run: ingest side from send, delivery side
// from the sink's output.
type e2eResult struct {
	Name     string
	Send     *sendStats
	DrainS   float64 // from the end of send until the queue was empty
	Drained  bool    // the queue emptied; else Missing may still have been on their way
	MaxQueue int     // largest hookrelay_queue_depth scraped
	Scrapes  int
	PeakRSS  int64

	Accepted   int     // ids send recorded as accepted
	Delivered  int     // of those, ids the sink received
	Missing    int     // accepted, never received
	Duplicates int     // extra receipts of accepted ids
	Unverified int     // sink lines without a verified signature (whole sink)
	P50, P99   float64 // acceptance to sink receipt, ms
	Max        float64
	RelayRate  float64 // delivered / (last receipt - first acceptance), events/s

	idsPath string
}

// memResult is the flat-memory phase.
type memResult struct {
	Base, Total int
	Points      []memPoint
	Sends       []*sendStats
	PeakRSS     int64
	stored      int
}

// memPoint is one memory reading.
type memPoint struct {
	Stored    int   // events accepted so far
	RSS       int64 // VmRSS, bytes
	Anon      int64 // RssAnon: memory the process owns (heap, stacks, Badger's buffers)
	File      int64 // RssFile: resident pages of mapped files (Badger's value log and tables)
	HeapInuse int64 // go_memstats_heap_inuse_bytes
}

// readings returns the two memory readings, if both exist.
func (m *memResult) readings() (first, second memPoint, ok bool) {
	if m == nil || len(m.Points) < 2 {
		return memPoint{}, memPoint{}, false
	}
	return m.Points[0], m.Points[1], true
}

// idAt is one line of `send --ids`.
type idAt struct {
	id string
	at time.Time
}

// readIDs reads a `send --ids` file: "<id> <accepted at, unix ns>" lines.
func readIDs(path string) ([]idAt, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []idAt
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		id, ns, ok := strings.Cut(sc.Text(), " ")
		n, err := strconv.ParseInt(ns, 10, 64)
		if !ok || err != nil {
			return nil, fmt.Errorf("%s: bad line %q", path, sc.Text())
		}
		out = append(out, idAt{id: id, at: time.Unix(0, n)})
	}
	return out, sc.Err()
}

// receipt is what the sink saw of one event id.
type receipt struct {
	first time.Time
	n     int
}

// readSink reads `hookrelay sink --json` output: one
// {"received_at","attempt","verified","event":{...}} line per delivery.
func readSink(path string) (map[string]*receipt, int, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, 0, err
	}
	defer f.Close()
	out := map[string]*receipt{}
	unverified := 0
	r := bufio.NewReaderSize(f, 1<<20)
	for {
		line, err := r.ReadBytes('\n')
		if len(line) > 0 {
			var l struct {
				ReceivedAt time.Time `json:"received_at"`
				Verified   bool      `json:"verified"`
				Event      struct {
					ID string `json:"id"`
				} `json:"event"`
			}
			if jerr := json.Unmarshal(line, &l); jerr != nil || l.Event.ID == "" {
				return nil, 0, fmt.Errorf("%s: unexpected line %.200q", path, line)
			}
			if !l.Verified {
				unverified++
			}
			rc := out[l.Event.ID]
			if rc == nil {
				rc = &receipt{first: l.ReceivedAt}
				out[l.Event.ID] = rc
			} else if l.ReceivedAt.Before(rc.first) {
				rc.first = l.ReceivedAt
			}
			rc.n++
		}
		if err == io.EOF {
			return out, unverified, nil
		}
		if err != nil {
			return nil, 0, err
		}
	}
}

// join matches accepted ids with sink receipts. A delivery can reach the
// sink before send has read the 200; such negative latencies count as 0.
func (e *e2eResult) join(ids []idAt, recv map[string]*receipt) {
	e.Accepted = len(ids)
	lat := make([]time.Duration, 0, len(ids))
	var first, last time.Time
	for _, x := range ids {
		if first.IsZero() || x.at.Before(first) {
			first = x.at
		}
		rc := recv[x.id]
		if rc == nil {
			e.Missing++
			continue
		}
		e.Delivered++
		e.Duplicates += rc.n - 1
		lat = append(lat, max(0, rc.first.Sub(x.at)))
		if rc.first.After(last) {
			last = rc.first
		}
	}
	if len(lat) == 0 {
		return
	}
	slices.Sort(lat)
	q := func(p float64) float64 { return msOf(lat[int(p*float64(len(lat)-1))]) }
	e.P50, e.P99, e.Max = q(.50), q(.99), msOf(lat[len(lat)-1])
	if d := last.Sub(first).Seconds(); d > 0 {
		e.RelayRate = float64(e.Delivered) / d
	}
}

func msOf(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// scrapeMetrics GETs a Prometheus text endpoint with a bearer token and
// returns every sample summed over its labels, by metric name.
func scrapeMetrics(ctx context.Context, url, token string) (map[string]float64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET /metrics: HTTP %d", resp.StatusCode)
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		name := line
		if i := strings.IndexAny(line, "{ "); i >= 0 {
			name = line[:i]
		}
		rest := line[len(name):]
		if strings.HasPrefix(rest, "{") {
			if i := strings.LastIndexByte(rest, '}'); i >= 0 {
				rest = rest[i+1:]
			}
		}
		f := strings.Fields(rest) // value [timestamp]
		if len(f) == 0 {
			continue
		}
		v, err := strconv.ParseFloat(f[0], 64)
		if err != nil {
			continue
		}
		out[name] += v
	}
	return out, sc.Err()
}
