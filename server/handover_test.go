//go:build linux

package server_test

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/valyala/fasthttp"
	"golang.org/x/sys/unix"

	"github.com/fastserve/fastserve/server"
)

// listeningSockets counts the IPv4 sockets listening on port, from
// /proc/net/tcp: a hand-over must not add any.
func listeningSockets(t *testing.T, port int) int {
	t.Helper()
	b, err := os.ReadFile("/proc/net/tcp")
	require.NoError(t, err)
	suffix := fmt.Sprintf(":%04X", port)
	n := 0
	for _, line := range strings.Split(string(b), "\n")[1:] {
		f := strings.Fields(line)
		if len(f) > 3 && strings.HasSuffix(f[1], suffix) && f[3] == "0A" {
			n++
		}
	}
	return n
}

func port(t *testing.T, a net.Addr) int {
	t.Helper()
	_, p, err := net.SplitHostPort(a.String())
	require.NoError(t, err)
	n, err := strconv.Atoi(p)
	require.NoError(t, err)
	return n
}

// TestHandover hands the sockets of a serving server to a new one: the new
// one serves on the same sockets (none is bound), the old one answers its
// kept-alive connection with Connection: close and its Serve returns, and
// a connection that was queued on the socket, not yet accepted, when the
// old one closed it is served by the new one.
func TestHandover(t *testing.T) {
	cfg := server.Config{
		Addr:             "127.0.0.1:0",
		Listeners:        2,
		AdminAddr:        "127.0.0.1:0",
		Handover:         filepath.Join(t.TempDir(), "handover.sock"),
		DrainIdleTimeout: 2 * time.Second,
	}
	a := startServing(t, cfg, hello)
	require.Eventually(t, func() bool {
		_, err := os.Stat(cfg.Handover)
		return err == nil
	}, 2*time.Second, 5*time.Millisecond, "A listens for a hand-over")
	p := port(t, a.Addrs()[0])
	require.Equal(t, 2, listeningSockets(t, p))

	ka := dialKeepAlive(t, a)
	resp := &fasthttp.Response{}
	require.NoError(t, ka.do("before", resp))
	require.Equal(t, "hello", string(resp.Body()))
	require.False(t, resp.ConnectionClose())

	// A connection that completes TCP's handshake but sends nothing waits
	// in the socket (deferred accept): nobody accepts it across the
	// hand-over.
	queued, err := net.DialTimeout("tcp", a.Addr, time.Second)
	require.NoError(t, err)
	defer queued.Close()

	b := startServing(t, cfg, func(ctx *fasthttp.RequestCtx) { ctx.WriteString("B") })
	assert.Equal(t, a.Addrs(), b.Addrs(), "B serves on A's sockets")
	assert.Equal(t, a.ListenerAddr("admin"), b.ListenerAddr("admin"))
	assert.Equal(t, 2, listeningSockets(t, p), "B bound no socket of its own")

	// A drains: its kept-alive connection's next answer closes it.
	require.NoError(t, ka.do("after", resp))
	assert.Equal(t, "hello", string(resp.Body()))
	assert.True(t, resp.ConnectionClose(), "A answers with Connection: close once handed over")
	require.NoError(t, a.Served(t, 5*time.Second), "A's Serve returns once drained")
	assert.Contains(t, a.Logs.String(), "handed the listeners over")
	assert.Contains(t, b.Logs.String(), "took the listeners over")
	assert.Equal(t, 2, listeningSockets(t, p), "A's exit closed no socket")

	// The queued connection is served by B.
	tc := tls.Client(queued, b.clientConfig())
	resp2 := roundTrip(t, tc, bufio.NewReader(tc), "GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
	assert.Equal(t, "B", string(resp2.Body()), "the connection queued across the hand-over")
	tc.Close() // else B's drain waits DrainIdleTimeout for it

	// And a third server takes over from B, through the socket B made.
	c := startServing(t, cfg, func(ctx *fasthttp.RequestCtx) { ctx.WriteString("C") })
	assert.Equal(t, a.Addrs(), c.Addrs())
	require.NoError(t, b.Served(t, 5*time.Second))
	kc := dialKeepAlive(t, c)
	require.NoError(t, kc.do("C", resp))
	assert.Equal(t, "C", string(resp.Body()))
}

// TestNoHandoverResetsQueued is the control: a server that closes its
// socket without handing it on loses the connection queued on it, even
// with a successor listening in the same SO_REUSEPORT group, unless the
// kernel migrates the queue (net.ipv4.tcp_migrate_req).
func TestNoHandoverResetsQueued(t *testing.T) {
	if b, err := os.ReadFile("/proc/sys/net/ipv4/tcp_migrate_req"); err != nil || strings.TrimSpace(string(b)) != "0" {
		t.Skipf("needs net.ipv4.tcp_migrate_req=0 (read %q, %v)", b, err)
	}
	a := startServing(t, server.Config{Listeners: 1}, hello)
	queued, err := net.DialTimeout("tcp", a.Addr, time.Second)
	require.NoError(t, err)
	defer queued.Close()

	b := startServing(t, server.Config{Addr: a.Addr, Listeners: 1, SharePort: true}, func(ctx *fasthttp.RequestCtx) { ctx.WriteString("B") })
	a.cancel()
	require.NoError(t, a.Served(t, 5*time.Second))

	tc := tls.Client(queued, b.clientConfig())
	require.NoError(t, tc.SetDeadline(time.Now().Add(5*time.Second)))
	err = tc.Handshake()
	require.Error(t, err, "the connection queued on the closed socket is lost")
	t.Logf("queued connection after its socket closed: %v", err)
}

// TestHandoverNothingToTake: a stale socket file (a process that crashed)
// is replaced, and the new process binds its own sockets.
func TestHandoverNothingToTake(t *testing.T) {
	cfg := server.Config{Handover: filepath.Join(t.TempDir(), "h.sock")}
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: cfg.Handover, Net: "unix"})
	require.NoError(t, err)
	ln.SetUnlinkOnClose(false)
	ln.Close()
	a := startServing(t, cfg, hello)
	kc := dialKeepAlive(t, a)
	resp := &fasthttp.Response{}
	require.NoError(t, kc.do("x", resp))
	assert.Equal(t, "hello", string(resp.Body()))
	assert.NotContains(t, a.Logs.String(), "took the listeners over")
	require.Eventually(t, func() bool {
		c, err := net.Dial("unix", cfg.Handover)
		if err == nil {
			c.Close()
		}
		return err == nil
	}, 2*time.Second, 5*time.Millisecond, "the stale socket file is replaced")
}

// TestHandoverAbandoned: a process that takes the offer and goes away
// before it serves leaves the server serving, and shutting down promptly:
// passing the sockets must not switch them to blocking mode (os.File.Fd
// does that to the shared open file description; a blocking accept(2)
// is one Close cannot end).
func TestHandoverAbandoned(t *testing.T) {
	cfg := server.Config{Listeners: 1, Handover: filepath.Join(t.TempDir(), "h.sock")}
	a := startServing(t, cfg, hello)
	require.Eventually(t, func() bool { _, err := os.Stat(cfg.Handover); return err == nil }, 2*time.Second, 5*time.Millisecond)

	c, err := net.Dial("unix", cfg.Handover)
	require.NoError(t, err)
	_, err = c.Write([]byte("fastserve-handover 1\n"))
	require.NoError(t, err)
	buf, oob := make([]byte, 4096), make([]byte, 4096)
	_, oobn, _, _, err := c.(*net.UnixConn).ReadMsgUnix(buf, oob)
	require.NoError(t, err)
	msgs, err := syscall.ParseSocketControlMessage(oob[:oobn])
	require.NoError(t, err)
	var fds []int
	for _, m := range msgs {
		got, err := syscall.ParseUnixRights(&m)
		require.NoError(t, err)
		fds = append(fds, got...)
	}
	require.Len(t, fds, 1)
	flags, err := unix.FcntlInt(uintptr(fds[0]), unix.F_GETFL, 0)
	require.NoError(t, err)
	assert.NotZero(t, flags&unix.O_NONBLOCK, "the listening socket is still non-blocking")
	syscall.Close(fds[0]) // the new process dies before it serves
	c.Close()
	require.Eventually(t, func() bool { return strings.Contains(a.Logs.String(), "hand-over abandoned") }, 2*time.Second, 5*time.Millisecond)

	// It serves on; its accept loop goes round once more, then it shuts down.
	kc := dialKeepAlive(t, a)
	resp := &fasthttp.Response{}
	require.NoError(t, kc.do("after", resp))
	assert.Equal(t, "hello", string(resp.Body()))
	kc.Close()
	time.Sleep(50 * time.Millisecond)
	a.cancel()
	require.NoError(t, a.Served(t, 3*time.Second), "Serve returns promptly")
}

// openFDs counts the process's open descriptors.
func openFDs(t *testing.T) int {
	t.Helper()
	fds, err := os.ReadDir("/proc/self/fd")
	require.NoError(t, err)
	return len(fds)
}

// TestHandoverNewFailsGivesBack: a new process that took the sockets and
// then fails in New (here the poller of parked connections cannot be
// made) gives back what it took: it holds no copy of the sockets, and the
// old process, told nothing, serves on and hands over to the next
// successor at once, instead of waiting for a "serving" that never comes.
func TestHandoverNewFailsGivesBack(t *testing.T) {
	cfg := server.Config{
		Addr:      "127.0.0.1:0",
		Listeners: 2,
		Handover:  filepath.Join(t.TempDir(), "handover.sock"),
	}
	a := startServing(t, cfg, hello)
	require.Eventually(t, func() bool {
		_, err := os.Stat(cfg.Handover)
		return err == nil
	}, 2*time.Second, 5*time.Millisecond, "A listens for a hand-over")

	before := openFDs(t)
	restore := server.FailPoller(t)
	cfg.Logger = slogTo(io.Discard)
	_, err := server.New(cfg, hello)
	restore()
	require.ErrorContains(t, err, "epoll_create1")
	assert.Equal(t, before, openFDs(t), "the failed New closed every socket it was given")

	// A serves on, and hands over to the next successor at once: the
	// failed one left it waiting for nothing.
	start := time.Now()
	cfg.Logger = nil
	b := startServing(t, cfg, func(ctx *fasthttp.RequestCtx) { ctx.WriteString("B") })
	assert.Less(t, time.Since(start), 3*time.Second, "B took over without waiting out a stuck hand-over")
	assert.Equal(t, a.Addrs(), b.Addrs(), "B serves on A's sockets")
	require.NoError(t, a.Served(t, 5*time.Second), "A drains once B serves")
}
