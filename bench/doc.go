// Package bench measures long-lived HTTPS connection throughput: a load
// generator (Run), the comparison of two servers by alternating runs
// (Compare), the ceiling servers are measured against (Ceiling: crypto/tls
// with no HTTP parsing, also run by bench/peers/run.sh), and, in its
// tests, the benchmark suite run with 'go test -bench . ./bench'.
//
// Run holds Conns keep-alive connections and sends requests on them,
// either as fast as the server answers (closed loop, optionally
// pipelined) or at a fixed Rate (open loop), where each latency counts
// from the request's intended send time, so that a server that stalls
// shows in the tail instead of slowing the client down (coordinated
// omission, as wrk2 handles it). Latencies go into an HDR histogram.
// Errors are counted by kind: connect, TLS, timeout, status, I/O.
//
// On a shared, noisy machine, compare servers by ratios measured side by
// side: Compare alternates short runs A, B, A, B... and reports medians,
// spreads and the ratio A/B. SpreadOf and RatioOf are those statistics, for
// figures that other tools measure.
//
// The generator shares its machine with the server it measures, so it is
// built to cost little: one goroutine per connection, prebuilt request
// bytes, a reused response parser, and per-connection counters merged at
// the end.
package bench
