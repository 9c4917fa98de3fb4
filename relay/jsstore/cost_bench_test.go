//go:build unix

package jsstore

import (
	"fmt"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/hookrelay/hookrelay/relay/jsstore/jstest"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nuid"
)

// BenchmarkReplicatedWrite measures what the stream charges for a Store's
// writes: atomic batches (commit) of new subjects on three in-process
// servers with replicas 3, from 24 writers spread over the servers, by
// message size and batch size. cpu-µs/msg is the CPU of the whole test
// process (the three servers, their RAFT, and the clients) per message
// stored; with it for two batch sizes, the cost of one RAFT proposal and
// of one message follow (c(B) = msg + proposal/B). The figures size the
// messages an event costs in cluster mode (docs/architecture.md).
func BenchmarkReplicatedWrite(b *testing.B) {
	c := jstest.NewCluster(b, 3)
	var nodes []*Store
	for i := range 3 {
		st, err := Open(bg, Options{URLs: []string{c.URL(i)}, Name: "cost", Replicas: 3})
		if err != nil {
			b.Fatalf("Open: %v", err)
		}
		b.Cleanup(func() { st.Close(bg) })
		nodes = append(nodes, st)
	}
	for _, size := range []int{64, 1024} {
		for _, batch := range []int{1, 3, 9, 27} {
			b.Run(fmt.Sprintf("size=%d/batch=%d", size, batch), func(b *testing.B) {
				body := make([]byte, size)
				b.SetParallelism(12)    // 24 writers on 2 CPUs
				var writer atomic.Int64 // spreads the writers over the servers
				c0, t0 := processCPU(b), time.Now()
				b.RunParallel(func(pb *testing.PB) {
					s := nodes[writer.Add(1)%3]
					for pb.Next() {
						msgs := make([]*nats.Msg, batch)
						for i := range msgs {
							msgs[i] = newMsg(s.p+"m."+nuid.Next(), body, time.Hour)
						}
						if _, err := s.commit(bg, msgs, nil); err != nil {
							b.Errorf("commit: %v", err)
							return
						}
					}
				})
				n := float64(b.N * batch)
				b.ReportMetric(float64((processCPU(b)-c0).Microseconds())/n, "cpu-µs/msg")
				b.ReportMetric(n/time.Since(t0).Seconds(), "msgs/s")
			})
		}
	}
}

// processCPU is the user and system CPU this process has used.
func processCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatalf("getrusage: %v", err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
