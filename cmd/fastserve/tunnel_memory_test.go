package main

import (
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fastserve/fastserve/proxy"
	"github.com/fastserve/fastserve/server"
)

// serverHeap is the heap in use allocated under the engine, fasthttp's
// server and the proxy (not the test's clients and upstreams), by the
// memory profile.
func serverHeap() int64 { s, _ := serverHeapBy(); return s }

func serverHeapBy() (int64, map[string]int64) {
	by := map[string]int64{}
	runtime.GC()
	runtime.GC()
	var recs []runtime.MemProfileRecord
	n, _ := runtime.MemProfile(nil, false)
	for {
		recs = make([]runtime.MemProfileRecord, n+100)
		var ok bool
		if n, ok = runtime.MemProfile(recs, false); ok {
			recs = recs[:n]
			break
		}
	}
	var sum int64
	for _, r := range recs {
		frames := runtime.CallersFrames(r.Stack())
		ours, theirs := false, false
		site := ""
		for {
			f, more := frames.Next()
			switch {
			case strings.Contains(f.Function, "fastserve/fastserve/cmd/fastserve.") && strings.Contains(f.Function, "Test"),
				strings.Contains(f.Function, "fooUpstream"), strings.Contains(f.Function, "gorilla/websocket"):
				theirs = true
			case strings.Contains(f.Function, "fastserve/fastserve/server."), strings.Contains(f.Function, "fastserve/fastserve/proxy."),
				strings.Contains(f.Function, "valyala/fasthttp."):
				ours = true
			}
			if site == "" && !strings.HasPrefix(f.Function, "runtime.") && !strings.HasPrefix(f.Function, "bytes.") && !strings.HasPrefix(f.Function, "bufio.New") {
				site = f.Function
			}
			if !more {
				break
			}
		}
		if ours && !theirs {
			sum += r.InUseBytes()
			by[site] += r.InUseBytes()
		}
	}
	return sum, by
}

// TestIdleTunnelMemory measures what an idle tunnel holds in the server
// and the proxy after a busy moment: about 40 KiB (fasthttp's read buffer
// of the hijacked connection, --max-header-bytes, which it keeps until the
// hijack handler returns; the TLS read buffer grown to a full record; the
// copies' two 1 KiB buffers; the request context), and two goroutines.
// The README said two 1 KiB buffers.
func TestIdleTunnelMemory(t *testing.T) {
	if raceEnabledCmd {
		t.Skip("the race detector changes allocations")
	}
	old := runtime.MemProfileRate
	runtime.MemProfileRate = 1
	defer func() { runtime.MemProfileRate = old }()
	up, _ := fooUpstream(t, 0, false)
	e := startEngineProxy(t, up, server.Config{IdleParkAfter: 100 * time.Millisecond}, proxy.Config{})
	e.openFoo(t) // warm
	time.Sleep(200 * time.Millisecond)
	before, g0 := serverHeap(), runtime.NumGoroutine()
	_, byBefore := serverHeapBy()
	const n = 200
	for range n {
		c, _ := e.openFoo(t)
		_, err := c.Write([]byte(strings.Repeat("x", 20000))) // a busy moment: TLS records of 16 KiB
		require.NoError(t, err)
	}
	require.True(t, eventually(5*time.Second, func() bool { return e.tunnels.Open() == n+1 }))
	time.Sleep(500 * time.Millisecond) // idle
	after, g1 := serverHeap(), runtime.NumGoroutine()
	_, byAfter := serverHeapBy()
	for k, v := range byAfter {
		if d := (v - byBefore[k]) / n; d >= 256 {
			t.Logf("%6d B/tunnel  %s", d, k)
		}
	}
	per := (after - before) / n
	t.Logf("an idle tunnel holds %d bytes of heap in the server and proxy, and %.1f goroutines (the test's peers' included)",
		per, float64(g1-g0)/n)
	require.Less(t, per, int64(48<<10), "what an idle tunnel holds grew")
}
