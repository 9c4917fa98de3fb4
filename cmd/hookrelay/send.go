package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	neturl "net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hookrelay/hookrelay/providers"
	"github.com/hookrelay/hookrelay/providers/registry"
	"github.com/urfave/cli/v2"
)

func sendCommand() *cli.Command {
	return &cli.Command{
		Name:      "send",
		Usage:     "sign and send webhooks like a provider does: one test event, or a load test",
		ArgsUsage: "[URL]",
		Description: "Either --provider P --secret S URL, or --config FILE --source NAME (provider, options,\n" +
			"secret and URL from the config; a URL argument overrides the URL). --list-events --provider P\n" +
			"lists the event types of the built-in samples.\n" +
			exitCodes("every request was answered accepted or duplicate", "a request failed or was rejected, or bad flags"),
		Flags: []cli.Flag{
			configFlag(),
			&cli.StringFlag{Name: "source", Usage: "with --config: send to source `NAME` as its provider would"},
			&cli.StringFlag{Name: "provider", Usage: "sign like `PROVIDER` (" + strings.Join(registry.Names(), ", ") + ")"},
			&cli.StringFlag{Name: "secret", Usage: "signing `SECRET` (as in the source's secrets)", EnvVars: []string{"HOOKRELAY_SEND_SECRET"}},
			&cli.BoolFlag{Name: "list-events", Usage: "list the sample event types of --provider (or --source) and exit"},
			&cli.StringFlag{Name: "event", Usage: "event `TYPE` (default: a typical event of the provider; see --list-events)"},
			&cli.StringFlag{Name: "data", Usage: "body from `@FILE` or inline JSON instead of the built-in sample"},
			&cli.StringFlag{Name: "scheme", Usage: "provider variant `SCHEME` (shortkit: timestamp, body-only, callback-header, callback-token)"},
			&cli.StringFlag{Name: "header", Usage: "callback-header scheme: header `NAME`"},
			&cli.StringFlag{Name: "signature-header", Usage: "hmac provider: signature header `NAME`"},
			&cli.StringFlag{Name: "prefix", Usage: "hmac provider: signature `PREFIX` such as sha256="},
			&cli.StringFlag{Name: "encoding", Usage: "hmac provider: signature `ENCODING` (hex or base64)"},
			&cli.StringFlag{Name: "template", Usage: "hmac provider: signed content `TEMPLATE` such as {timestamp}.{body}"},
			&cli.StringFlag{Name: "timestamp-header", Usage: "hmac provider: timestamp header `NAME`"},
			&cli.IntFlag{Name: "count", Value: 1, Usage: "send `N` requests (each with a unique dedupe key)"},
			&cli.IntFlag{Name: "concurrency", Value: 1, Usage: "`C` requests in flight"},
			&cli.Float64Flag{Name: "rate", Usage: "at most `R` requests per second (0: as fast as possible)"},
			&cli.DurationFlag{Name: "duration", Usage: "send for `D` (with --count, whichever ends first)"},
			&cli.IntFlag{Name: "size", Usage: "pad built-in sample bodies to about `BYTES`"},
			&cli.BoolFlag{Name: "insecure", Usage: "skip TLS certificate verification (local testing)"},
			&cli.StringFlag{Name: "ids", Usage: "write the ids of accepted events to `FILE`, one \"<id> <accepted at, unix ns>\" a line"},
			&cli.BoolFlag{Name: "json", Usage: "print the summary as JSON"},
			&cli.BoolFlag{Name: "quiet", Aliases: []string{"q"}, Usage: "no per-request output for a single request"},
		},
		Action: send,
	}
}

type sendResult struct {
	at      time.Time // when the answer arrived
	status  int
	outcome string // accepted, duplicate, rejected, error
	id      string
	latency time.Duration
	err     string
}

// sendSummary is what `send --json` prints.
type sendSummary struct {
	Requests    int                `json:"requests"`
	DurationS   float64            `json:"duration_s"`
	RPS         float64            `json:"rps"`
	Concurrency int                `json:"concurrency"`
	Status      map[string]int     `json:"status"`
	Outcomes    map[string]int     `json:"outcomes"`
	LatencyMS   map[string]float64 `json:"latency_ms"`
	Errors      []string           `json:"errors,omitempty"`
}

func send(c *cli.Context) error {
	tgt, err := sendTarget(c)
	if err != nil {
		return err
	}
	url, spec, ad := tgt.url, tgt.spec, tgt.ad
	if c.Bool("list-events") {
		fmt.Fprintln(c.App.Writer, strings.Join(spec.Events, "\n"))
		return nil
	}
	if url == "" {
		return errors.New("send needs the URL to post to (e.g. http://127.0.0.1:8080/webhooks/sketchpen-dev), or --config FILE --source NAME")
	}
	event := c.String("event")
	if event == "" {
		event = spec.Events[0]
	} else if !c.IsSet("data") && !slices.Contains(spec.Events, event) {
		return fmt.Errorf("--event: %s has no sample event %q (known: %s; or pass the body with --data)",
			spec.Name, event, strings.Join(spec.Events, ", "))
	}
	var custom []byte
	if d := c.String("data"); d != "" {
		if file, ok := strings.CutPrefix(d, "@"); ok {
			if custom, err = os.ReadFile(file); err != nil {
				return fmt.Errorf("--data: %w", err)
			}
		} else {
			custom = []byte(d)
		}
	}
	if qs, ok := ad.(providers.QuerySigner); ok {
		// The credential travels in the URL (shortkit callback-token).
		u, err := neturl.Parse(url)
		if err != nil {
			return fmt.Errorf("bad URL: %w", err)
		}
		q := u.Query()
		qs.SignQuery(q, time.Now())
		u.RawQuery = q.Encode()
		url = u.String()
	}
	count, conc := c.Int("count"), c.Int("concurrency")
	if count < 1 || conc < 1 {
		return errors.New("--count and --concurrency must be at least 1")
	}
	if c.IsSet("duration") && !c.IsSet("count") {
		count = unbounded
	}
	var runID [4]byte
	_, _ = rand.Read(runID[:])
	run := hex.EncodeToString(runID[:])

	tr := &http.Transport{MaxIdleConns: conc, MaxIdleConnsPerHost: conc, MaxConnsPerHost: conc, IdleConnTimeout: 30 * time.Second,
		TLSClientConfig: &tls.Config{InsecureSkipVerify: c.Bool("insecure")}, ForceAttemptHTTP2: true}
	client := &http.Client{Transport: tr, Timeout: 30 * time.Second}
	defer tr.CloseIdleConnections()

	ctx := c.Context
	if d := c.Duration("duration"); d > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, d)
		defer cancel()
	}
	jobs := make(chan int, conc)
	go pace(ctx, jobs, count, c.Float64("rate"))

	var (
		mu      sync.Mutex
		results = make([]sendResult, 0, min(count, 1<<20))
		done    atomic.Int64
		failed  atomic.Int64
		wg      sync.WaitGroup
	)
	size := c.Int("size")
	start := time.Now()
	for w := 0; w < conc; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := range jobs {
				r := sendOne(ctx, client, url, ad, spec, event, run, n, size, custom)
				if r.outcome != "accepted" && r.outcome != "duplicate" {
					failed.Add(1)
				}
				done.Add(1)
				mu.Lock()
				results = append(results, r)
				mu.Unlock()
			}
		}()
	}
	stopProgress := progressLine(c.App.ErrWriter, &done, &failed, count)
	wg.Wait()
	stopProgress()
	elapsed := time.Since(start)

	if ids := c.String("ids"); ids != "" {
		if err := writeIDs(ids, results); err != nil {
			return err
		}
	}
	sum := summarizeSend(results, elapsed, conc)
	out := c.App.Writer
	switch {
	case c.Bool("json"):
		enc := json.NewEncoder(out)
		if err := enc.Encode(sum); err != nil {
			return err
		}
	case len(results) == 1 && !c.Bool("quiet"):
		r := results[0]
		if r.err != "" {
			fmt.Fprintf(out, "%s %s: %s\n", spec.Name, event, r.err)
		} else {
			fmt.Fprintf(out, "%s %s -> HTTP %d %s %s (%s)\n", spec.Name, event, r.status, r.outcome, r.id, r.latency.Round(time.Microsecond))
		}
	default:
		printSummary(out, sum)
	}
	if failed.Load() > 0 {
		return cli.Exit("", 1)
	}
	return nil
}

// unbounded is the request count of a --duration run without --count.
const unbounded = 1 << 62

// pace feeds request numbers to the workers, at most rate per second.
func pace(ctx context.Context, jobs chan<- int, count int, rate float64) {
	defer close(jobs)
	start := time.Now()
	for n := 0; n < count; n++ {
		if rate > 0 {
			due := start.Add(time.Duration(float64(n) / rate * float64(time.Second)))
			if d := time.Until(due); d > 0 {
				select {
				case <-ctx.Done():
					return
				case <-time.After(d):
				}
			}
		}
		select {
		case <-ctx.Done():
			return
		case jobs <- n:
		}
	}
}

func sendOne(ctx context.Context, client *http.Client, url string, ad providers.Adapter, provider *providers.Spec, event, run string, n, size int, custom []byte) sendResult {
	body, h, err := sample(ad, provider, event, run, n, size, custom, time.Now())
	if err != nil {
		return sendResult{outcome: "error", err: "build request: " + err.Error()}
	}
	req, err := http.NewRequestWithContext(context.WithoutCancel(ctx), http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return sendResult{outcome: "error", err: "bad URL"}
	}
	req.Header = h
	if req.Header.Get("Content-Type") == "" {
		req.Header.Set("Content-Type", "application/json")
	}
	t0 := time.Now()
	resp, err := client.Do(req)
	if err != nil {
		// Not the *url.Error's text: the URL may carry a callback token.
		var ue *neturl.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return sendResult{outcome: "error", err: err.Error(), latency: time.Since(t0)}
	}
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	resp.Body.Close()
	r := sendResult{status: resp.StatusCode, at: time.Now(), outcome: "rejected"}
	r.latency = r.at.Sub(t0)
	var ans struct{ Status, ID, Error string }
	_ = json.Unmarshal(data, &ans)
	if resp.StatusCode == http.StatusOK && (ans.Status == "accepted" || ans.Status == "duplicate") {
		r.outcome, r.id = ans.Status, ans.ID
	} else {
		r.err = fmt.Sprintf("HTTP %d %s", resp.StatusCode, strings.TrimSpace(ans.Error))
	}
	return r
}

// progressLine prints a live progress line on a terminal; the returned
// func stops it.
func progressLine(w io.Writer, done, failed *atomic.Int64, total int) func() {
	if !isTerminal(w) {
		return func() {}
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(250 * time.Millisecond)
		defer t.Stop()
		start := time.Now()
		for {
			select {
			case <-stop:
				fmt.Fprint(w, "\r\033[K")
				return
			case <-t.C:
				n := done.Load()
				fmt.Fprintf(w, "\r\033[Ksent %d", n)
				if total != unbounded {
					fmt.Fprintf(w, "/%d", total)
				}
				fmt.Fprintf(w, "  failed %d  %.0f req/s", failed.Load(), float64(n)/time.Since(start).Seconds())
			}
		}
	}()
	return func() { close(stop); wg.Wait() }
}

func summarizeSend(results []sendResult, elapsed time.Duration, conc int) sendSummary {
	s := sendSummary{Requests: len(results), DurationS: elapsed.Seconds(), Concurrency: conc,
		Status: map[string]int{}, Outcomes: map[string]int{}, LatencyMS: map[string]float64{}}
	if elapsed > 0 {
		s.RPS = float64(len(results)) / elapsed.Seconds()
	}
	lat := make([]time.Duration, 0, len(results))
	errs := map[string]int{}
	for _, r := range results {
		s.Outcomes[r.outcome]++
		if r.status != 0 {
			s.Status[fmt.Sprint(r.status)]++
			lat = append(lat, r.latency)
		}
		if r.err != "" {
			errs[r.err]++
		}
	}
	slices.Sort(lat)
	if len(lat) > 0 {
		for _, p := range []struct {
			name string
			q    float64
		}{{"p50", .50}, {"p90", .90}, {"p99", .99}} {
			s.LatencyMS[p.name] = ms(lat[int(p.q*float64(len(lat)-1))])
		}
		s.LatencyMS["max"] = ms(lat[len(lat)-1])
	}
	for e, n := range errs {
		s.Errors = append(s.Errors, fmt.Sprintf("%dx %s", n, e))
	}
	slices.Sort(s.Errors)
	if len(s.Errors) > 10 {
		s.Errors = s.Errors[:10]
	}
	return s
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func printSummary(out io.Writer, s sendSummary) {
	fmt.Fprintf(out, "sent %s in %.2fs: %.0f req/s (concurrency %d)\n", count(s.Requests, "request", "requests"), s.DurationS, s.RPS, s.Concurrency)
	for _, k := range slices.Sorted(maps.Keys(s.Outcomes)) {
		fmt.Fprintf(out, "  %-10s %d\n", k, s.Outcomes[k])
	}
	if len(s.LatencyMS) > 0 {
		fmt.Fprintf(out, "  latency    p50 %.2fms  p90 %.2fms  p99 %.2fms  max %.2fms\n",
			s.LatencyMS["p50"], s.LatencyMS["p90"], s.LatencyMS["p99"], s.LatencyMS["max"])
	}
	for _, e := range s.Errors {
		fmt.Fprintf(out, "  error: %s\n", e)
	}
}

func writeIDs(path string, results []sendResult) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("--ids: %w", err)
	}
	w := bufio.NewWriter(f)
	for _, r := range results {
		if r.outcome == "accepted" {
			fmt.Fprintf(w, "%s %d\n", r.id, r.at.UnixNano())
		}
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return fmt.Errorf("--ids: %w", err)
	}
	return f.Close()
}
