package metrics

import "github.com/prometheus/client_golang/prometheus"

// WatchStorage adds hookrelay_storage_free_bytes (free space on the
// store's filesystem, as last read) and hookrelay_storage_low_space (1
// while the store refuses new events because of it), read from space at
// scrape time; known false leaves the free-space gauge out.
func (m *Metrics) WatchStorage(space func() (free uint64, low, known bool)) {
	m.reg.MustRegister(&storageCollector{
		free: prometheus.NewDesc("hookrelay_storage_free_bytes", "Free space on the filesystem of storage.path (in cluster mode with embedded NATS, of its store_dir), in bytes (as last read).", nil, nil),
		low:  prometheus.NewDesc("hookrelay_storage_low_space", "1 while free space is below storage.min_free_bytes and new events are refused (503).", nil, nil),
		read: space,
	})
}

type storageCollector struct {
	free, low *prometheus.Desc
	read      func() (uint64, bool, bool)
}

func (c *storageCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.free; ch <- c.low }

func (c *storageCollector) Collect(ch chan<- prometheus.Metric) {
	free, low, known := c.read()
	if known {
		ch <- prometheus.MustNewConstMetric(c.free, prometheus.GaugeValue, float64(free))
	}
	v := 0.0
	if low {
		v = 1
	}
	ch <- prometheus.MustNewConstMetric(c.low, prometheus.GaugeValue, v)
}
