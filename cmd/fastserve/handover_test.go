//go:build linux

package main

import (
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/fastserve/fastserve/bench"
)

// TestHandoverUnderLoad: a steady open-loop load over hundreds of
// keep-alive connections, through three successive hand-overs, gets every
// answer: no failed request, no connection error.
func TestHandoverUnderLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a 12 s load")
	}
	const (
		conns    = 300
		rate     = 1500
		duration = 12 * time.Second
	)
	sock := filepath.Join(t.TempDir(), "handover.sock")
	args := []string{"serve", "--handover", sock, "--addr", "127.0.0.1:0", "--admin", "127.0.0.1:0"}
	env := childEnv(t)
	first := started(start(t, env, args...))
	first.waitLog(`msg="serving HTTPS"`, 0)

	ctx, cancel := context.WithTimeout(context.Background(), 2*duration)
	defer cancel()
	ready := make(chan struct{})
	resc := make(chan bench.Result, 1)
	errc := make(chan error, 1)
	go func() {
		r, err := bench.Run(ctx, bench.Config{
			URL: "https://" + first.https + "/", Conns: conns, Rate: rate, Duration: duration,
			TLS: insecure, Timeout: 5 * time.Second, OnReady: func() { close(ready) },
		})
		resc <- r
		errc <- err
	}()
	<-ready

	// The first process is the one the load connected to; three
	// successors follow it.
	env2 := childEnv(t)
	cur := first
	for i := range 3 {
		time.Sleep(2 * time.Second)
		next := started(start(t, env2, args...))
		require.Equal(t, cur.https, next.https, "hand-over %d: same address", i+1)
		next.waitLog(`took the listeners over`, 0)
		cur.waitLog(`handed the listeners over; draining`, 0)
		require.Equal(t, 0, cur.wait(exitTimeout+5*time.Second), "hand-over %d: the old process exits 0 once drained", i+1)
		m := cur.waitLog(`msg=stopped uptime=(\S+)`, 0)
		t.Logf("hand-over %d done; the old process stopped (ran %s)", i+1, m[1])
		cur = next
	}
	last := cur
	defer func() { last.signal(15); last.wait(exitTimeout) }()

	r := <-resc
	require.NoError(t, <-errc)
	t.Logf("%d requests in %.1fs (%.0f/s), %d errors %+v, %d handshakes; p50 %dus p99 %dus max %dus",
		r.Requests, r.Seconds, r.RPS, r.Errors, r.ByKind, r.Handshakes, r.Latency.P50, r.Latency.P99, r.Latency.Max)
	assert.Zero(t, r.Errors, "failed requests or connections: %+v; first: %s", r.ByKind, r.FirstError)
	assert.GreaterOrEqual(t, float64(r.Requests), 0.97*rate*duration.Seconds(), "the load kept its rate")
	assert.GreaterOrEqual(t, r.Handshakes, uint64(3*conns), "every connection moved at each hand-over")
}

// TestHandoverUnderWrk: the same under wrk's closed loop, which keeps the
// server saturated.
func TestHandoverUnderWrk(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a 9 s load")
	}
	wrk, err := exec.LookPath("wrk")
	if err != nil {
		t.Skip("wrk is not installed (Debian package wrk; .ci/run installs it)")
	}
	sock := filepath.Join(t.TempDir(), "handover.sock")
	args := []string{"serve", "--handover", sock, "--addr", "127.0.0.1:0", "--admin", "127.0.0.1:0"}
	first := started(start(t, childEnv(t), args...))

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, wrk, "-t1", "-c200", "-d9s", "--timeout", "5s", "https://"+first.https+"/")
	outc := make(chan []byte, 1)
	go func() {
		out, _ := cmd.CombinedOutput()
		outc <- out
	}()

	env := childEnv(t)
	cur := first
	for i := range 3 {
		time.Sleep(2 * time.Second)
		next := started(start(t, env, args...))
		cur.waitLog(`handed the listeners over; draining`, 0)
		require.Equal(t, 0, cur.wait(exitTimeout+5*time.Second), "hand-over %d", i+1)
		cur = next
	}
	last := cur
	defer func() { last.signal(15); last.wait(exitTimeout) }()

	out := string(<-outc)
	t.Logf("wrk:\n%s", out)
	m := regexp.MustCompile(`(\d+) requests in`).FindStringSubmatch(out)
	require.NotNil(t, m, "wrk's summary")
	n, _ := strconv.Atoi(m[1])
	assert.Positive(t, n)
	assert.NotContains(t, out, "Socket errors", "connect/read/write/timeout errors")
	assert.NotContains(t, out, "Non-2xx")
}

// TestHandoverSocketRemoved: the hand-over socket file goes with the
// process that made it (before: left behind at exit), but not with one
// that handed its sockets over, whose successor's file is at the path.
func TestHandoverSocketRemoved(t *testing.T) {
	t.Parallel()
	sock := filepath.Join(t.TempDir(), "handover.sock")
	args := []string{"serve", "--handover", sock, "--addr", "127.0.0.1:0", "--admin", "127.0.0.1:0", "--drain-idle-timeout", "200ms"}
	a := started(start(t, childEnv(t), args...))
	require.True(t, eventually(logTimeout, func() bool { _, err := os.Lstat(sock); return err == nil }), "the socket file is made")
	b := started(start(t, childEnv(t), args...))
	a.waitLog(`handed the listeners over; draining`, 0)
	require.Equal(t, 0, a.wait(exitTimeout))
	b.waitLog(`took the listeners over`, 0)
	require.True(t, eventually(logTimeout, func() bool {
		c, err := net.Dial("unix", sock)
		if err == nil {
			c.Close()
		}
		return err == nil
	}), "the successor's socket file is at the path")

	b.signal(15)
	require.Equal(t, 0, b.wait(exitTimeout))
	_, err := os.Lstat(sock)
	assert.ErrorIs(t, err, os.ErrNotExist, "the socket file is gone with the process that made it")
}
