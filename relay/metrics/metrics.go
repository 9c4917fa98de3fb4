// Package metrics exposes hookrelay's Prometheus metrics. Each Metrics has
// its own registry (no global state), served by Handler on the admin
// listener.
package metrics

import (
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metrics implements the ingest and delivery observers.
type Metrics struct {
	reg         *prometheus.Registry
	received    *prometheus.CounterVec
	ingestDur   *prometheus.HistogramVec
	deliveries  *prometheus.CounterVec
	deliveryDur *prometheus.HistogramVec
	reloads     *prometheus.CounterVec
	lastReload  prometheus.Gauge
}

// New registers hookrelay's metrics, Go runtime and process collectors, and
// a queue-depth gauge read from depth at scrape time.
func New(depth func() map[string]int) *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		received: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hookrelay_webhooks_received_total",
			Help: "Webhooks received, by source and outcome (accepted, duplicate, rejected_<reason>).",
		}, []string{"source", "outcome"}),
		ingestDur: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "hookrelay_ingest_duration_seconds",
			Help:    "Time from request to answer of POST /webhooks/<source>, by source.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
		}, []string{"source"}),
		deliveries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hookrelay_deliveries_total",
			Help: "Delivery attempts, by target and outcome (delivered, retry, dead).",
		}, []string{"target", "outcome"}),
		deliveryDur: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "hookrelay_delivery_duration_seconds",
			Help:    "Latency of delivery attempts, by target.",
			Buckets: prometheus.DefBuckets,
		}, []string{"target"}),
		reloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hookrelay_config_reloads_total",
			Help: "Config reloads, by result (success, invalid, needs_restart, error).",
		}, []string{"result"}),
		lastReload: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "hookrelay_config_last_reload_success_timestamp_seconds",
			Help: "Unix time of the last config load that took effect (the start, or a reload).",
		}),
	}
	m.reg.MustRegister(m.received, m.ingestDur, m.deliveries, m.deliveryDur, m.reloads, m.lastReload,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if depth != nil {
		m.reg.MustRegister(&depthCollector{
			desc:  prometheus.NewDesc("hookrelay_queue_depth", "Deliveries waiting (pending or retrying), by target.", []string{"target"}, nil),
			depth: depth,
		})
	}
	return m
}

// ConfigLoaded records a config load that took effect at t.
func (m *Metrics) ConfigLoaded(t time.Time) { m.lastReload.Set(float64(t.UnixNano()) / 1e9) }

// Reloaded counts one reload attempt by result.
func (m *Metrics) Reloaded(result string) { m.reloads.WithLabelValues(result).Inc() }

// Received counts one webhook (ingest.Metrics).
func (m *Metrics) Received(source, outcome string, d time.Duration) {
	m.received.WithLabelValues(source, outcome).Inc()
	m.ingestDur.WithLabelValues(source).Observe(d.Seconds())
}

// Delivered counts one delivery attempt (deliver.Metrics).
func (m *Metrics) Delivered(target, outcome string, d time.Duration) {
	m.deliveries.WithLabelValues(target, outcome).Inc()
	m.deliveryDur.WithLabelValues(target).Observe(d.Seconds())
}

// Handler serves the metrics in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}

type depthCollector struct {
	desc  *prometheus.Desc
	depth func() map[string]int
}

func (c *depthCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c *depthCollector) Collect(ch chan<- prometheus.Metric) {
	for target, n := range c.depth() {
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, float64(n), target)
	}
}

// WatchTargetStates adds the gauge hookrelay_target_state{target,state},
// read from states (target -> its state) at scrape time: 1 for each
// target's current state and 0 for the other names in known.
func (m *Metrics) WatchTargetStates(known []string, states func() map[string]string) {
	m.reg.MustRegister(&stateCollector{
		desc:   prometheus.NewDesc("hookrelay_target_state", "1 for each target's current state (ok, paused), 0 for the others.", []string{"target", "state"}, nil),
		known:  known,
		states: states,
	})
}

type stateCollector struct {
	desc   *prometheus.Desc
	known  []string
	states func() map[string]string
}

func (c *stateCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c *stateCollector) Collect(ch chan<- prometheus.Metric) {
	for target, cur := range c.states() {
		for _, st := range c.known {
			v := 0.0
			if st == cur {
				v = 1
			}
			ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, v, target, st)
		}
	}
}
