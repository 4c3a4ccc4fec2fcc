package server_test

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/valyala/fasthttp"

	"github.com/fastserve/fastserve/server"
	"github.com/fastserve/fastserve/tune"
)

// dialFrom opens a TLS connection to the server from the local address ip
// and returns the handshake's error; a connection is closed at cleanup.
func dialFrom(t testing.TB, ts *testServer, ip string) (*tls.Conn, error) {
	t.Helper()
	d := &tls.Dialer{
		NetDialer: &net.Dialer{Timeout: 5 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}},
		Config:    ts.TLSConfig(),
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := d.DialContext(ctx, "tcp", ts.Addr)
	if err != nil {
		return nil, err
	}
	t.Cleanup(func() { c.Close() })
	return c.(*tls.Conn), nil
}

// assertRefused dials the server from ip and checks that the connection
// is closed at once, before its handshake could finish: reset, or closed.
func assertRefused(t testing.TB, ts *testServer, ip string) {
	t.Helper()
	t0 := time.Now()
	c, err := dialFrom(t, ts, ip)
	took := time.Since(t0)
	if c != nil {
		c.Close()
	}
	if assert.Error(t, err, "handshake refused") {
		assert.Truef(t, closedByPeer(err), "reset or closed, got %v", err)
	}
	assert.Less(t, took, closeMargin, "refused at once")
}

// assertOpen waits up to 2 s for Stats().Open to reach want.
func assertOpen(t testing.TB, ts *testServer, want int64) {
	t.Helper()
	assert.Eventually(t, func() bool { return ts.Stats().Open == want }, 2*time.Second, 5*time.Millisecond,
		"Stats().Open == %d", want)
}

// assertServes checks that c serves a request.
func assertServes(t testing.TB, c net.Conn) {
	t.Helper()
	resp := roundTrip(t, c, bufio.NewReader(c), "GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
	assert.Equal(t, fasthttp.StatusOK, resp.StatusCode())
	assert.Equal(t, "hello", string(resp.Body()))
}

// TestLimitMaxConns: past MaxConns a connection is reset before TLS, and
// once a connection closes a new one is served.
func TestLimitMaxConns(t *testing.T) {
	ts := start(t, server.Config{MaxConns: 2}, hello)
	c1 := ts.Dial(t, nil)
	c2 := ts.Dial(t, nil)
	assertOpen(t, ts, 2)

	assertRefused(t, ts, "127.0.0.1")
	// The server counts a handshake once it has the client's Finished,
	// which may be just after the client's Dial returns.
	assertStat(t, ts, "Handshakes", func(st server.Stats) uint64 { return st.Handshakes }, 2)
	st := ts.Stats()
	assert.Equal(t, uint64(1), st.Rejected[server.RejectMaxConns])
	assert.Equal(t, int64(2), st.Open)
	assertServes(t, c1)
	assertServes(t, c2)

	require.NoError(t, c1.Close())
	assertOpen(t, ts, 1)
	c4 := ts.Dial(t, nil)
	assertServes(t, c4)
	assert.Equal(t, uint64(1), ts.Stats().Rejected[server.RejectMaxConns])
}

// TestLimitMaxConnsFreedSlot: once a connection has closed and
// Stats().Open is below MaxConns, the next connection is served. fasthttp
// must not refuse it with a limit of its own (Server.Concurrency, one
// worker per connection) in the moment between the close, which frees the
// server's slot, and the return of the connection's worker to fasthttp's
// pool. It dials as soon as Open drops, 300 times over.
func TestLimitMaxConnsFreedSlot(t *testing.T) {
	ts := start(t, server.Config{MaxConns: 1, Listeners: 1}, hello)
	const rounds = 300
	var refused []error
	for range rounds {
		c, err := dialFrom(t, ts, "127.0.0.1")
		if err != nil {
			refused = append(refused, err)
			continue
		}
		c.Close()
		deadline := time.Now().Add(2 * time.Second)
		for ts.Stats().Open != 0 && time.Now().Before(deadline) {
			runtime.Gosched()
		}
		require.Zero(t, ts.Stats().Open, "the connection closed on the server")
	}
	st := ts.Stats()
	if !assert.Empty(t, refused, "connections refused with Open 0 < MaxConns 1") {
		t.Logf("%d of %d refused, the first with %v; Rejected %+v", len(refused), rounds, refused[0], st.Rejected)
	}
	assert.Zero(t, st.Rejected[server.RejectMaxConns])
	assert.Equal(t, uint64(rounds-len(refused)), st.Handshakes)
}

// TestLimitMaxConnsPerIP: past MaxConnsPerIP a second connection from
// 127.0.0.1 is reset, while one from 127.0.0.2 (which also reaches the
// server's 127.0.0.1 on Linux) is served.
func TestLimitMaxConnsPerIP(t *testing.T) {
	ts := start(t, server.Config{MaxConnsPerIP: 1}, hello)
	c1, err := dialFrom(t, ts, "127.0.0.1")
	require.NoError(t, err)

	assertRefused(t, ts, "127.0.0.1")
	assert.Equal(t, uint64(1), ts.Stats().Rejected[server.RejectMaxConnsPerIP])

	other, err := dialFrom(t, ts, "127.0.0.2")
	require.NoError(t, err, "a connection from another address")
	assert.Equal(t, "127.0.0.2", other.LocalAddr().(*net.TCPAddr).IP.String())
	assertServes(t, other)
	assertServes(t, c1)

	// Closing the first frees its address's slot.
	require.NoError(t, c1.Close())
	assertOpen(t, ts, 1)
	c3, err := dialFrom(t, ts, "127.0.0.1")
	require.NoError(t, err)
	assertServes(t, c3)
	st := ts.Stats()
	assert.Equal(t, uint64(1), st.Rejected[server.RejectMaxConnsPerIP])
	assert.Zero(t, st.Rejected[server.RejectMaxConns])
	assert.Contains(t, ts.Logs.String(), `msg="connection refused" reason=max_conns_per_ip remote=127.0.0.1`, "logged, not only counted")
}

// getOfSize returns a GET whose request line and headers, the blank line
// that ends them included, are n bytes.
func getOfSize(t testing.TB, n int) string {
	t.Helper()
	const head, tail = "GET / HTTP/1.1\r\nHost: localhost\r\nX-Pad: ", "\r\n\r\n"
	pad := n - len(head) - len(tail)
	require.GreaterOrEqual(t, pad, 0)
	req := head + strings.Repeat("a", pad) + tail
	require.Len(t, req, n)
	return req
}

// wholeRecords is the server's client configuration with dynamic record
// sizing off, so that each request below goes out in one TLS record.
// Otherwise crypto/tls sends the first kilobytes after a handshake in
// records of about 1 KiB, then growing: a request of a few KiB takes
// several records, the server stops reading at its limit, answers and
// closes with records unread, and the kernel resets the connection, which
// fails the client's next write: the client can still read the answer on
// Linux, but roundTrip, which requires its write to succeed, fails. In one
// record, the server reads all of it and its close is a FIN.
func wholeRecords(ts *testServer) *tls.Config {
	cfg := ts.TLSConfig()
	cfg.DynamicRecordSizingDisabled = true
	return cfg
}

// TestLimitHeaderBytes: a header block up to MaxHeaderBytes is served, a
// larger one gets 431 and the connection closes.
//
// The edge is exact: fasthttp reads the request line and headers into the
// connection's read buffer, of MaxHeaderBytes bytes, and needs the whole
// block, from the request line to the blank line, in it at once (it peeks
// at the buffer, it does not consume it line by line). So a block of 4096
// bytes is served and one of 4097 is not (*fasthttp.ErrSmallBuffer).
func TestLimitHeaderBytes(t *testing.T) {
	const limit = 4096
	ts := start(t, server.Config{MaxHeaderBytes: limit}, hello)
	rejected := uint64(0)
	for _, tc := range []struct {
		size int
		want int
	}{
		{4000, fasthttp.StatusOK},
		{limit, fasthttp.StatusOK},
		{limit + 1, fasthttp.StatusRequestHeaderFieldsTooLarge},
		{8 << 10, fasthttp.StatusRequestHeaderFieldsTooLarge},
	} {
		t.Run(fmt.Sprintf("bytes=%d", tc.size), func(t *testing.T) {
			c := ts.Dial(t, wholeRecords(ts))
			br := bufio.NewReader(c)
			resp := roundTrip(t, c, br, getOfSize(t, tc.size))
			assert.Equal(t, tc.want, resp.StatusCode())
			if tc.want == fasthttp.StatusOK {
				assert.False(t, resp.ConnectionClose(), "%s", resp.Header.String())
				assertServes(t, c) // and the connection goes on
				return
			}
			rejected++
			assert.True(t, resp.ConnectionClose(), "Connection: close")
			cl := readUntilClosed(c, time.Now(), 2*time.Second)
			assertClosedWithin(t, cl, 0, closeMargin)
			assert.Zero(t, br.Buffered()+len(cl.data), "nothing after the 431")
		})
	}
	st := ts.Stats()
	assert.Equal(t, rejected, st.Rejected[server.RejectHeaderTooLarge])
	assert.Equal(t, rejected, st.Responses[4])
}

// chunkedBody encodes body in chunks of at most 1000 bytes.
func chunkedBody(body string) string {
	var b strings.Builder
	for len(body) > 0 {
		n := min(len(body), 1000)
		fmt.Fprintf(&b, "%x\r\n%s\r\n", n, body[:n])
		body = body[n:]
	}
	b.WriteString("0\r\n\r\n")
	return b.String()
}

// TestLimitBodyBytes: a body of MaxBodyBytes is served, one byte more gets
// 413 and the connection closes, with Content-Length or chunked.
func TestLimitBodyBytes(t *testing.T) {
	t.Run("buffered", func(t *testing.T) { testLimitBodyBytes(t, server.Config{}, echoBodyLen) })
	// A streamed body is read by the handler, after fasthttp's checks.
	t.Run("streamed", func(t *testing.T) {
		testLimitBodyBytes(t, server.Config{StreamRequestBody: true}, func(ctx *fasthttp.RequestCtx) {
			n, err := io.Copy(io.Discard, ctx.RequestBodyStream())
			fmt.Fprintf(ctx, "%d", n)
			if err != nil {
				fmt.Fprintf(ctx, " %v", err) // answered 200: the server must make it a 413
			}
		})
	})
}

func testLimitBodyBytes(t *testing.T, cfg server.Config, h fasthttp.RequestHandler) {
	const limit = 1024
	cfg.MaxBodyBytes = limit
	ts := start(t, cfg, h)
	rejected := uint64(0)
	for _, tc := range []struct {
		name string
		req  string
		want int
	}{
		{"length=1024", postOfLength(limit), fasthttp.StatusOK},
		{"length=1025", postOfLength(limit + 1), fasthttp.StatusRequestEntityTooLarge},
		{"chunked=1024", postChunkedOfLength(limit), fasthttp.StatusOK},
		{"chunked=1025", postChunkedOfLength(limit + 1), fasthttp.StatusRequestEntityTooLarge},
		{"chunked=4096", postChunkedOfLength(4 * limit), fasthttp.StatusRequestEntityTooLarge},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := ts.Dial(t, wholeRecords(ts))
			br := bufio.NewReader(c)
			resp := roundTrip(t, c, br, tc.req)
			assert.Equal(t, tc.want, resp.StatusCode())
			if tc.want == fasthttp.StatusOK {
				assert.Equal(t, strconv.Itoa(limit), string(resp.Body()))
				assert.False(t, resp.ConnectionClose(), "%s", resp.Header.String())
				return
			}
			rejected++
			assert.True(t, resp.ConnectionClose(), "Connection: close")
			cl := readUntilClosed(c, time.Now(), 2*time.Second)
			assertClosedWithin(t, cl, 0, closeMargin)
			assert.Zero(t, br.Buffered()+len(cl.data), "nothing after the 413")
		})
	}
	st := ts.Stats()
	assert.Equal(t, rejected, st.Rejected[server.RejectBodyTooLarge])
	assert.Equal(t, rejected, st.Responses[4])
	assert.Equal(t, uint64(2), st.Responses[2])
}

// postOfLength is a POST with a body of n bytes and Content-Length.
func postOfLength(n int) string {
	return fmt.Sprintf("POST / HTTP/1.1\r\nHost: localhost\r\nContent-Length: %d\r\n\r\n%s", n, strings.Repeat("b", n))
}

// postChunkedOfLength is a POST with a chunked body of n bytes.
func postChunkedOfLength(n int) string {
	return "POST / HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n" + chunkedBody(strings.Repeat("b", n))
}

// TestLimitRequestsPerConn: with MaxRequestsPerConn 3, the third response
// on a connection says Connection: close and the server closes it.
func TestLimitRequestsPerConn(t *testing.T) {
	ts := start(t, server.Config{MaxRequestsPerConn: 3}, hello)
	c := ts.Dial(t, nil)
	br := bufio.NewReader(c)
	for i := 1; i <= 3; i++ {
		resp := roundTrip(t, c, br, "GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
		assert.Equal(t, fasthttp.StatusOK, resp.StatusCode(), "response %d", i)
		assert.Equal(t, i == 3, resp.ConnectionClose(), "response %d: Connection: close", i)
	}
	cl := readUntilClosed(c, time.Now(), 2*time.Second)
	assertClosedWithin(t, cl, 0, closeMargin)
	assert.Zero(t, br.Buffered()+len(cl.data), "nothing after the third response")
	st := ts.Stats()
	assert.Equal(t, uint64(3), st.Responses[2])
	assert.Equal(t, uint64(1), st.Handshakes)
}

// TestOnConn: OnConn runs on the TCP socket under TLS, before the
// handshake; an error from it closes the connection before TLS.
func TestOnConn(t *testing.T) {
	t.Run("sets the socket", func(t *testing.T) {
		ports := make(chan int, 1)
		cfg := server.Config{OnConn: func(tc *net.TCPConn) error {
			select { // never block the accept loop
			case ports <- tc.RemoteAddr().(*net.TCPAddr).Port:
			default:
			}
			return tc.SetReadBuffer(32 << 10)
		}}
		ts := start(t, cfg, func(ctx *fasthttp.RequestCtx) {
			st, err := tune.Inspect(ctx.Conn())
			if err != nil {
				ctx.Error(err.Error(), fasthttp.StatusInternalServerError)
				return
			}
			fmt.Fprintf(ctx, "%d %d", st.ReadBuffer, ctx.RemoteAddr().(*net.TCPAddr).Port)
		})
		c := ts.Dial(t, nil)
		resp := roundTrip(t, c, bufio.NewReader(c), "GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
		require.Equal(t, fasthttp.StatusOK, resp.StatusCode(), "%s", resp.Body())
		port := c.LocalAddr().(*net.TCPAddr).Port
		// The kernel doubles SO_RCVBUF for its bookkeeping.
		assert.Equal(t, fmt.Sprintf("%d %d", 64<<10, port), string(resp.Body()))
		select {
		case p := <-ports:
			assert.Equal(t, port, p, "OnConn saw the client's port")
		default:
			t.Error("OnConn did not run")
		}
	})
	t.Run("error refuses", func(t *testing.T) {
		ts := start(t, server.Config{OnConn: func(*net.TCPConn) error {
			return errors.New("refused by the test")
		}}, hello)
		assertRefused(t, ts, "127.0.0.1")
		assertStat(t, ts, "Rejected[server.RejectOnConn]", func(st server.Stats) uint64 { return st.Rejected[server.RejectOnConn] }, 1)
		assertOpen(t, ts, 0)
		st := ts.Stats()
		assert.Zero(t, st.Handshakes)
		assert.Equal(t, uint64(1), st.Accepted)
	})
}

// TestDiscardBodies: for a handler that takes no body, a request's body is
// neither read into memory nor waited for: the handler answers at once,
// with an empty body, and the connection closes after the answer.
func TestDiscardBodies(t *testing.T) {
	var seen atomic.Int64
	seen.Store(-1)
	ts := start(t, server.Config{DiscardBodies: true, MaxBodyBytes: 8 << 20}, func(ctx *fasthttp.RequestCtx) {
		seen.Store(int64(len(ctx.PostBody())))
		ctx.Error("Method Not Allowed", fasthttp.StatusMethodNotAllowed)
	})
	c := ts.Dial(t, nil)
	start := time.Now()
	_, err := io.WriteString(c, "POST / HTTP/1.1\r\nHost: localhost\r\nContent-Length: 4000000\r\n\r\nonly the start of it")
	require.NoError(t, err)
	wire := readWire(t, c, 3*time.Second)
	assert.Less(t, time.Since(start), 2*time.Second, "answered without waiting for the body")
	assert.True(t, strings.HasPrefix(wire, "HTTP/1.1 405 "), wire)
	assert.Contains(t, wire, "Connection: close")
	assert.Equal(t, int64(0), seen.Load(), "the handler got no body")

	// A request without a body keeps its connection.
	c2 := ts.Dial(t, nil)
	br := bufio.NewReader(c2)
	resp := roundTrip(t, c2, br, "GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
	assert.False(t, resp.ConnectionClose(), "%s", resp.Header.String())

	_, err = server.New(server.Config{DiscardBodies: true, StreamRequestBody: true}, hello)
	assert.ErrorContains(t, err, "DiscardBodies must be false with StreamRequestBody")
}
