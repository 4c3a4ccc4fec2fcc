package server_test

import (
	"bufio"
	"bytes"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/valyala/fasthttp"

	"github.com/fastserve/fastserve/server"
)

// upload sends a body of size bytes at about rate bytes per second, in
// 1 KiB pieces, and returns the status of the answer (0 if the
// connection ended first) and how long it took.
func upload(t *testing.T, ts *testServer, size, rate int) (int, time.Duration) {
	t.Helper()
	c := ts.Dial(t, nil)
	require.NoError(t, c.SetDeadline(time.Now().Add(20*time.Second)))
	start := time.Now()
	_, err := fmt.Fprintf(c, "POST / HTTP/1.1\r\nHost: localhost\r\nContent-Length: %d\r\n\r\n", size)
	require.NoError(t, err)
	piece := bytes.Repeat([]byte("x"), 1024)
	for sent := 0; sent < size; sent += len(piece) {
		if _, err := c.Write(piece[:min(len(piece), size-sent)]); err != nil {
			break
		}
		time.Sleep(time.Duration(len(piece)) * time.Second / time.Duration(rate))
	}
	resp := &fasthttp.Response{}
	if err := resp.Read(bufio.NewReader(c)); err != nil {
		return 0, time.Since(start)
	}
	return resp.StatusCode(), time.Since(start)
}

// TestMinRate: with a 1 s body timeout and a minimum rate of 8 KiB/s, an
// upload at 20 KiB/s lasting 2.5 s (past the body timeout) completes, and
// one at 2 KiB/s is cut soon after the body timeout.
func TestMinRate(t *testing.T) {
	ts := start(t, server.Config{BodyTimeout: time.Second, MinRate: 8 << 10, MaxBodyBytes: 1 << 20},
		func(ctx *fasthttp.RequestCtx) { ctx.WriteString(strconv.Itoa(len(ctx.PostBody()))) })

	status, took := upload(t, ts, 50<<10, 20<<10)
	assert.Equal(t, 200, status, "an upload above the rate is never cut")
	assert.Greater(t, took, 2*time.Second, "it outlasted the body timeout")

	status, took = upload(t, ts, 50<<10, 2<<10)
	assert.Contains(t, []int{0, 408}, status, "an upload below the rate is cut")
	// Deadline: 1 s + (bytes received)/8 KiB; at 2 KiB/s that is passed
	// at about 1.3 s; the client then goes on writing through the server's
	// lingering close (up to 1 s) before it reads the answer.
	assert.Less(t, took, 4*time.Second, "cut long before its 25 s")
	assert.Greater(t, took, time.Second)
	t.Logf("slow upload cut after %v", took.Round(time.Millisecond))
}

// TestStalledUploadClosed: an upload that sends much at full speed, then
// stops, is closed within the body timeout of its stop: the rate credit
// it earned does not outlast the stall (before: 2 MiB earned 4,096 s at
// 512 bytes/s, and the connection and its body were held that long).
func TestStalledUploadClosed(t *testing.T) {
	const bodyTimeout = 2 * time.Second
	ts := start(t, server.Config{BodyTimeout: bodyTimeout, MinRate: 512, MaxBodyBytes: 8 << 20},
		func(ctx *fasthttp.RequestCtx) { ctx.WriteString(strconv.Itoa(len(ctx.PostBody()))) })
	c := ts.Dial(t, nil)
	require.NoError(t, c.SetDeadline(time.Now().Add(20*time.Second)))
	_, err := fmt.Fprintf(c, "POST / HTTP/1.1\r\nHost: localhost\r\nContent-Length: %d\r\n\r\n", 4<<20)
	require.NoError(t, err)
	_, err = c.Write(bytes.Repeat([]byte("x"), 2<<20))
	require.NoError(t, err)
	stalled := time.Now()
	resp := &fasthttp.Response{}
	err = resp.Read(bufio.NewReader(c))
	took := time.Since(stalled)
	if err == nil {
		assert.Equal(t, 408, resp.StatusCode())
	}
	assert.Less(t, took, bodyTimeout+time.Second, "closed within the body timeout of the stall")
	t.Logf("stalled upload answered %v after it stopped (err %v)", took.Round(time.Millisecond), err)
}
