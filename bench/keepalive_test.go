package bench_test

import (
	"context"
	"crypto/tls"
	"fmt"
	"testing"
	"time"

	"github.com/fastserve/fastserve/bench"
)

// BenchmarkKeepAlive drives real HTTPS over loopback through persistent
// keep-alive connections (TLS 1.3, ECDSA P-256), the server and the load
// generator in one process on separate goroutines. Each op is one
// request; the connections are open before the timer starts. Metrics:
// req/s, latency percentiles in µs, MB/s of response body, and allocs/op.
// allocs/op counts both sides: Go's crypto/tls allocates one object per
// TLS record it reads (an atLeastReader in Conn.readFromUntil, Go 1.26),
// so a request and its response cost 2 allocations in TLS alone, one on
// each side; the load generator allocates nothing else per request, so
// allocs/op above 2 is the server's own (the ceiling server shows the
// floor).
//
// -short runs conns=16, body=13B, pipeline=1 for each server.
func BenchmarkKeepAlive(b *testing.B) {
	c := newCert(b)
	conns := []int{1, 16, 256, 1024}
	depths := []int{1, 8}
	sizes := bodies
	if testing.Short() {
		conns, depths, sizes = []int{16}, []int{1}, bodies[:1]
	}
	for _, p := range peers {
		b.Run("server="+p.name, func(b *testing.B) {
			addr, stop := p.start(b, c)
			defer stop()
			for _, n := range conns {
				for _, body := range sizes {
					for _, depth := range depths {
						name := fmt.Sprintf("conns=%d/body=%s/pipeline=%d", n, body.name, depth)
						b.Run(name, func(b *testing.B) {
							runLoad(b, bench.Config{
								URL:      "https://" + addr + "/" + body.name,
								Conns:    min(n, b.N),
								Pipeline: depth,
								TLS:      c.clientTLS(),
								Timeout:  30 * time.Second,
							}, len(body.body))
						})
					}
				}
			}
		})
	}
}

// BenchmarkHandshake measures connection set-up: each op is a new TLS
// connection carrying one request, with a full handshake or a resumed one
// (TLS 1.3 session tickets).
func BenchmarkHandshake(b *testing.B) {
	c := newCert(b)
	for _, p := range peers {
		b.Run("server="+p.name, func(b *testing.B) {
			addr, stop := p.start(b, c)
			defer stop()
			for _, mode := range []string{"full", "resumed"} {
				b.Run("handshake="+mode, func(b *testing.B) {
					cfg := bench.Config{
						URL:               "https://" + addr + "/13B",
						Conns:             min(16, b.N),
						DisableKeepAlive:  true,
						DisableResumption: mode == "full",
						TLS:               c.clientTLS(),
						Timeout:           30 * time.Second,
					}
					if mode == "resumed" {
						// One untimed connection fills the session cache.
						cfg.TLS.ClientSessionCache = tls.NewLRUClientSessionCache(64)
						warm := cfg
						warm.Conns, warm.Requests = 1, 1
						if _, err := bench.Run(context.Background(), warm); err != nil {
							b.Fatal(err)
						}
					}
					r := runLoad(b, cfg, 13)
					b.ReportMetric(float64(r.Handshakes)/r.Seconds, "handshakes/s")
					if mode == "resumed" && r.Handshakes > 0 && float64(r.Resumed) < 0.9*float64(r.Handshakes) {
						b.Errorf("only %d of %d handshakes resumed", r.Resumed, r.Handshakes)
					}
					if testing.Verbose() {
						b.Logf("%d handshakes, %d resumed", r.Handshakes, r.Resumed)
					}
				})
			}
		})
	}
}

// runLoad runs b.N requests and reports the suite's metrics.
func runLoad(b *testing.B, cfg bench.Config, bodySize int) bench.Result {
	b.Helper()
	cfg.Requests = int64(b.N)
	cfg.OnReady = b.ResetTimer
	b.ReportAllocs()
	b.SetBytes(int64(bodySize))
	r, err := bench.Run(context.Background(), cfg)
	if err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
	if r.Errors > 0 {
		b.Fatalf("%d errors: %+v", r.Errors, r.ByKind)
	}
	if r.Requests != uint64(b.N) {
		b.Fatalf("%d of %d requests answered", r.Requests, b.N)
	}
	b.ReportMetric(r.RPS, "req/s")
	b.ReportMetric(float64(r.Latency.P50), "p50-µs")
	b.ReportMetric(float64(r.Latency.P99), "p99-µs")
	b.ReportMetric(float64(r.Latency.P999), "p99.9-µs")
	b.ReportMetric(0, "ns/op") // req/s says it; ns/op would mix in the clients' parallelism
	return r
}
