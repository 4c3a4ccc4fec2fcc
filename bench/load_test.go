package bench_test

import (
	"context"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/valyala/fasthttp"

	"github.com/fastserve/fastserve/bench"
)

// plainServer serves h over plain HTTP on loopback until the test ends.
func plainServer(t *testing.T, h fasthttp.RequestHandler) string {
	t.Helper()
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	require.NoError(t, err)
	s := &fasthttp.Server{Handler: h}
	go s.Serve(ln)
	t.Cleanup(func() { s.Shutdown() })
	return "http://" + ln.Addr().String()
}

func TestRunCountsExactly(t *testing.T) {
	var seen atomic.Int64
	url := plainServer(t, func(ctx *fasthttp.RequestCtx) {
		seen.Add(1)
		ctx.WriteString("ok")
	})
	for _, depth := range []int{1, 8} {
		seen.Store(0)
		r, err := bench.Run(context.Background(), bench.Config{URL: url, Conns: 7, Requests: 1003, Pipeline: depth})
		require.NoError(t, err)
		assert.Equal(t, uint64(1003), r.Requests, "pipeline %d", depth)
		assert.Equal(t, int64(1003), seen.Load(), "the server saw each request once")
		assert.Zero(t, r.Errors)
		assert.Equal(t, uint64(2*1003), r.BodyBytes)
		assert.Equal(t, int64(1003), r.Histogram.TotalCount())
		assert.Greater(t, r.RPS, 0.0)
		assert.LessOrEqual(t, r.Latency.P50, r.Latency.P99)
	}
}

func TestRunCountsErrorsByKind(t *testing.T) {
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	require.NoError(t, err)
	closed := ln.Addr().String()
	ln.Close()
	r, err := bench.Run(context.Background(), bench.Config{URL: "http://" + closed, Conns: 2, Duration: 200 * time.Millisecond})
	require.NoError(t, err)
	assert.NotZero(t, r.ByKind.Connect)
	assert.Equal(t, r.Errors, r.ByKind.Connect)
	assert.Contains(t, r.FirstError, "connection refused")

	url := plainServer(t, func(ctx *fasthttp.RequestCtx) { ctx.SetStatusCode(503) })
	r, err = bench.Run(context.Background(), bench.Config{URL: url, Conns: 2, Requests: 10})
	require.NoError(t, err)
	assert.Equal(t, uint64(10), r.ByKind.Status)
	assert.Zero(t, r.Requests)
	assert.Equal(t, "status: 503", r.FirstError)

	stall := plainServer(t, func(ctx *fasthttp.RequestCtx) { time.Sleep(300 * time.Millisecond) })
	r, err = bench.Run(context.Background(), bench.Config{URL: stall, Conns: 1, Requests: 1, Timeout: 50 * time.Millisecond})
	require.NoError(t, err)
	assert.Equal(t, uint64(1), r.ByKind.Timeout, "%+v %s", r.ByKind, r.FirstError)

	c := newCert(t)
	addr, stop := startCeiling(t, c)
	defer stop()
	r, err = bench.Run(context.Background(), bench.Config{URL: "https://" + addr + "/", Conns: 1, Duration: 100 * time.Millisecond})
	require.NoError(t, err)
	assert.NotZero(t, r.ByKind.TLS, "the certificate is not trusted")
	assert.Contains(t, r.FirstError, "certificate")
}

// TestOpenLoopSeesStalls shows coordinated omission handled: the server
// stalls once for 300 ms; a closed loop sends nothing while it waits and
// sees one slow request, the open loop counts every request due during
// the stall as late.
func TestOpenLoopSeesStalls(t *testing.T) {
	var n atomic.Int64
	url := plainServer(t, func(ctx *fasthttp.RequestCtx) {
		if n.Add(1) == 50 {
			time.Sleep(300 * time.Millisecond)
		}
	})
	r, err := bench.Run(context.Background(), bench.Config{URL: url, Conns: 1, Rate: 500, Duration: time.Second})
	require.NoError(t, err)
	assert.InDelta(t, 500, r.Requests, 25, "open loop keeps its rate")
	// About 150 requests were due during the 300 ms stall: p90 and above
	// are in it.
	assert.Greater(t, r.Latency.P90, int64(50_000), "p90 µs %+v", r.Latency)
	assert.Greater(t, r.Latency.Max, int64(290_000))

	n.Store(0)
	r, err = bench.Run(context.Background(), bench.Config{URL: url, Conns: 1, Requests: 500})
	require.NoError(t, err)
	assert.Less(t, r.Latency.P99, int64(50_000), "closed loop: one slow request of 500 %+v", r.Latency)
}

func TestCompare(t *testing.T) {
	url := plainServer(t, func(ctx *fasthttp.RequestCtx) {})
	c, err := bench.Compare(context.Background(),
		bench.Config{URL: url, Conns: 2, Duration: 50 * time.Millisecond},
		bench.Config{URL: url + "/b", Conns: 2, Duration: 50 * time.Millisecond}, 3)
	require.NoError(t, err)
	assert.Equal(t, 3, c.Rounds)
	assert.Len(t, c.A.Runs, 3)
	assert.Len(t, c.B.Runs, 3)
	assert.LessOrEqual(t, c.RPSRatio.Min, c.RPSRatio.Median)
	assert.LessOrEqual(t, c.RPSRatio.Median, c.RPSRatio.Max)
	assert.Greater(t, c.RPSRatio.Median, 0.0)
}

func TestConfigErrors(t *testing.T) {
	for _, tc := range []struct {
		cfg  bench.Config
		want string
	}{
		{bench.Config{URL: "ftp://x", Requests: 1}, `bench: URL must be http:// or https:// with a host, got "ftp://x"`},
		{bench.Config{URL: "http://x"}, "bench: give a duration or a number of requests"},
		{bench.Config{URL: "http://x", Requests: 1, Rate: 10, Pipeline: 2}, "bench: pipelining is for the closed loop; drop it or the rate"},
	} {
		_, err := bench.Run(context.Background(), tc.cfg)
		assert.EqualError(t, err, tc.want)
	}
}
