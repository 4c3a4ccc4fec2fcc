//go:build linux

package server_test

import (
	"bufio"
	"cmp"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fastserve/fastserve/server"
)

// TestIdleMemory measures what an idle keep-alive TLS connection costs the
// server, in process: bench/peers/idleconns (a separate process) holds N
// connections, each after one request, and the server's MemStats after a
// GC are compared with those before, with parking on (IdleParkAfter 1 s)
// (FASTSERVE_IDLEMEM_PARK=1s, the default) or off (-1s), at 3 s after the
// connections are ready and again after 25 s, when fasthttp's idle workers
// have stopped. Sys and RSS never shrink back, so only the first
// measurement of a process compares them: run one count and one
// IdleParkAfter per process. Slow; it runs only when FASTSERVE_IDLEMEM
// lists the counts: FASTSERVE_IDLEMEM=5000 FASTSERVE_IDLEMEM_PARK=-1s
// (FASTSERVE_IDLEMEM_STREAM=1: with StreamRequestBody, as in proxy mode).
func TestIdleMemory(t *testing.T) {
	env := os.Getenv("FASTSERVE_IDLEMEM")
	if env == "" {
		t.Skip("set FASTSERVE_IDLEMEM=5000,10000 to measure")
	}
	var lim syscall.Rlimit
	require.NoError(t, syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim))
	was := lim.Cur
	lim.Cur = lim.Max
	require.NoError(t, syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim))
	t.Logf("RLIMIT_NOFILE: soft %d (raised from %d), hard %d", lim.Cur, was, lim.Max)

	bin := filepath.Join(t.TempDir(), "idleconns")
	out, err := exec.Command("go", "build", "-o", bin, "../bench/peers/idleconns").CombinedOutput()
	require.NoError(t, err, "%s", out)

	for f := range strings.SplitSeq(env, ",") {
		n, err := strconv.Atoi(f)
		require.NoError(t, err)
		for p := range strings.SplitSeq(cmp.Or(os.Getenv("FASTSERVE_IDLEMEM_PARK"), "1s"), ",") {
			park, err := time.ParseDuration(p)
			require.NoError(t, err)
			measureIdle(t, bin, n, park)
		}
	}
}

type memSample struct {
	heapInuse, stackInuse, sys, released, rss uint64
}

func sampleMem() memSample {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	s := memSample{heapInuse: m.HeapInuse, stackInuse: m.StackInuse, sys: m.Sys, released: m.HeapReleased}
	if b, err := os.ReadFile("/proc/self/status"); err == nil {
		for line := range strings.SplitSeq(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
				kb, _ := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
				s.rss = kb << 10
			}
		}
	}
	return s
}

func measureIdle(t *testing.T, bin string, n int, park time.Duration) {
	// FASTSERVE_IDLEMEM_STREAM=1 measures with StreamRequestBody (as the
	// reverse proxy runs), where fasthttp keeps a read buffer per connection.
	stream := os.Getenv("FASTSERVE_IDLEMEM_STREAM") == "1"
	ts := start(t, server.Config{IdleParkAfter: park, MaxConns: n + 1000, StreamRequestBody: stream}, hello)
	time.Sleep(200 * time.Millisecond)
	before := sampleMem()

	cmd := exec.Command(bin, "-addr", ts.Addr, "-n", strconv.Itoa(n), "-timeout", "120s")
	stdin, err := cmd.StdinPipe()
	require.NoError(t, err)
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	cmd.Stderr = os.Stderr
	require.NoError(t, cmd.Start())
	sc := bufio.NewScanner(stdout)
	ready := false
	for sc.Scan() {
		if strings.HasPrefix(sc.Text(), "ready") {
			ready = true
			break
		}
	}
	require.True(t, ready, "idleconns ready")
	go func() { _, _ = io.Copy(io.Discard, stdout) }()

	report := func(when string) {
		a := sampleMem()
		st := ts.Stats()
		per := func(x, y uint64) float64 { return (float64(x) - float64(y)) / float64(n) / 1024 }
		t.Logf("n=%d park=%v stream=%v %s: open %d parked %d goroutines %d | KiB per conn: HeapInuse %.1f StackInuse %.1f heap+stack %.1f Sys %.1f Sys-HeapReleased %.1f RSS %.1f",
			n, park, stream, when, st.Open, st.Parked, runtime.NumGoroutine(),
			per(a.heapInuse, before.heapInuse), per(a.stackInuse, before.stackInuse),
			per(a.heapInuse+a.stackInuse, before.heapInuse+before.stackInuse),
			per(a.sys, before.sys), per(a.sys-a.released, before.sys-before.released), per(a.rss, before.rss))
	}
	time.Sleep(3 * time.Second)
	report("+3s")
	time.Sleep(22 * time.Second)
	report("+25s")

	stdin.Close()
	_ = cmd.Wait()
	ts.Stop(t)
}
