// Command benchrun is hookrelay's one-command benchmark. Run it from the
// repository root on a quiet Linux machine:
//
//	go run ./cmd/benchrun                 # full run, writes BENCHMARKS.md
//	go run ./cmd/benchrun -quick -out ""  # smoke run, prints the table only
//	go run ./cmd/benchrun -phases cluster # cluster mode only: rewrites the
//	                                      # "Cluster mode" section of BENCHMARKS.md
//
// It builds `hookrelay` and `barelimit` into a temporary directory and, on
// 127.0.0.1 only, drives every server with the same load generator
// (`hookrelay send --provider sketchpen --size 1024`) at the same
// concurrency:
//
//  1. bare: cmd/barelimit, which only reads the body and checks one
//     Sketchpen HMAC; the ceiling everything else is compared to;
//  2. ingest with storage.sync false and 3. with storage.sync true, each on
//     a fresh data directory, ingest only (one sketchpen source, no target
//     and no route, so events are stored as unrouted and no delivery work
//     competes): maximum throughput at a fixed request count, then p50/p99
//     latency at a fixed rate of half that maximum;
//  4. end to end: hookrelay (sync false) relaying every event to
//     `hookrelay sink --json` with a signing secret, at a fixed rate and at
//     maximum throughput; latency from acceptance (`send --ids`) to sink
//     receipt, the largest hookrelay_queue_depth scraped from the admin
//     /metrics, and whether every accepted id reached the sink;
//  5. memory: peak RSS (VmHWM) of hookrelay during every run and, with
//     -memory, RSS after 100k and after 1M stored events;
//  6. cluster (only with -phases cluster or all): a fixed-duration
//     maximum-rate run, relaying to a target in benchrun that answers 200,
//     against single-node Badger (sync off), a single cluster-mode node
//     (embedded NATS, replicas 1) and three nodes (replicas 3, one send
//     process per node); throughput, p50/p99, server CPU-µs and bytes
//     written per event (/proc/<pid>/stat and io), the load generator's CPU
//     share, and a projection to nodes on machines of their own; then
//     Badger and three nodes again with no target (ingest alone). The runs
//     are repeated -cluster-rounds times (default 3), interleaved, and
//     each configuration's median run is reported.
//
// -phases selects phases (bare, ingest, e2e, memory, cluster, all); the
// default is every phase but cluster. The cluster section of BENCHMARKS.md
// sits between markers: a cluster-only run replaces just that section, and
// a run without the cluster phase keeps the section already in the file.
//
// Every child runs in its own process group and is stopped when benchrun
// ends, fails or is interrupted; every step has a time limit.
package main
