//go:build linux

package server_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/valyala/fasthttp"

	"github.com/fastserve/fastserve/server"
)

const get = "GET / HTTP/1.1\r\nHost: localhost\r\n\r\n"

// parkCfg parks connections idle for 50 ms.
func parkCfg() server.Config {
	return server.Config{IdleParkAfter: 50 * time.Millisecond, IdleTimeout: 10 * time.Second}
}

// waitParked waits until n connections are parked.
func waitParked(t testing.TB, s *server.Server, n int64) {
	t.Helper()
	require.Eventually(t, func() bool { return s.Stats().Parked == n }, 5*time.Second, 5*time.Millisecond,
		"%d connections parked (now %d)", n, s.Stats().Parked)
}

// splitConn is a client's TCP connection whose next Write, once armed,
// goes out in two TCP writes with a pause between them.
type splitConn struct {
	net.Conn
	mu    sync.Mutex
	at    int
	pause time.Duration
}

func (c *splitConn) arm(at int, pause time.Duration) {
	c.mu.Lock()
	c.at, c.pause = at, pause
	c.mu.Unlock()
}

func (c *splitConn) Write(b []byte) (int, error) {
	c.mu.Lock()
	at, pause := c.at, c.pause
	c.at = 0
	c.mu.Unlock()
	if at == 0 || at >= len(b) {
		return c.Conn.Write(b)
	}
	n, err := c.Conn.Write(b[:at])
	if err != nil {
		return n, err
	}
	time.Sleep(pause)
	m, err := c.Conn.Write(b[at:])
	return n + m, err
}

func TestParkedConnectionServedAgain(t *testing.T) {
	ts := start(t, parkCfg(), hello)
	c := ts.Dial(t, nil)
	br := bufio.NewReader(c)

	t.Run("first request", func(t *testing.T) {
		waitParked(t, ts.Server, 1) // after the handshake, before any request
		resp := roundTrip(t, c, br, get)
		assert.Equal(t, "hello", string(resp.Body()))
	})
	t.Run("keep-alive, many times", func(t *testing.T) {
		for i := range 10 {
			waitParked(t, ts.Server, 1)
			st := ts.Stats()
			assert.Equal(t, int64(1), st.Open)
			assert.Equal(t, int64(1), st.Idle, "a parked connection is idle")
			resp := roundTrip(t, c, br, get)
			require.Equal(t, "hello", string(resp.Body()), "request %d", i)
			assert.False(t, resp.ConnectionClose())
		}
		assert.GreaterOrEqual(t, ts.Stats().Parks, uint64(11))
		var m bytes.Buffer
		waitParked(t, ts.Server, 1)
		ts.WritePrometheus(&m)
		assert.Contains(t, m.String(), "fastserve_connections_parked 1\n")
		assert.Contains(t, m.String(), "fastserve_connection_parks_total ")
	})
	t.Run("pipelined in one write", func(t *testing.T) {
		waitParked(t, ts.Server, 1)
		require.NoError(t, c.SetDeadline(time.Now().Add(5*time.Second)))
		_, err := io.WriteString(c, get+get+get)
		require.NoError(t, err)
		for i := range 3 {
			resp := &fasthttp.Response{}
			require.NoError(t, resp.Read(br), "response %d", i)
			assert.Equal(t, "hello", string(resp.Body()))
		}
	})
	t.Run("split across records", func(t *testing.T) {
		waitParked(t, ts.Server, 1)
		// Each Write is a TLS record: the server wakes for the first,
		// and reads the rest of the head under HeaderTimeout.
		_, err := io.WriteString(c, "GET / HT")
		require.NoError(t, err)
		time.Sleep(150 * time.Millisecond)
		resp := roundTrip(t, c, br, "TP/1.1\r\nHost: localhost\r\n\r\n")
		assert.Equal(t, "hello", string(resp.Body()))
	})
	assert.Equal(t, int64(1), ts.Stats().Open)
}

// With StreamRequestBody (the reverse proxy's mode) fasthttp keeps each
// connection's read buffer between requests; an idle connection parks all
// the same, and is served again, streamed bodies included.
func TestParkWithStreamRequestBody(t *testing.T) {
	cfg := parkCfg()
	cfg.StreamRequestBody = true
	ts := start(t, cfg, func(ctx *fasthttp.RequestCtx) {
		var n int64
		if r := ctx.RequestBodyStream(); r != nil { // nil without a body
			var err error
			if n, err = io.Copy(io.Discard, r); err != nil {
				ctx.Error(err.Error(), fasthttp.StatusBadRequest)
				return
			}
		}
		ctx.SetBodyString(strconv.FormatInt(n, 10))
	})
	c := ts.Dial(t, nil)
	br := bufio.NewReader(c)
	post := "POST / HTTP/1.1\r\nHost: localhost\r\nContent-Length: 65536\r\n\r\n" + strings.Repeat("x", 65536)
	for i := range 3 {
		resp := roundTrip(t, c, br, post)
		require.Equal(t, "65536", string(resp.Body()), "round %d", i)
		waitParked(t, ts.Server, 1)
		resp = roundTrip(t, c, br, get)
		require.Equal(t, "0", string(resp.Body()), "round %d", i)
		waitParked(t, ts.Server, 1)
	}
	assert.GreaterOrEqual(t, ts.Stats().Parks, uint64(6))
	assert.Equal(t, int64(1), ts.Stats().Open)
}

// TestParkPartialRecord parks a connection whose next TLS record arrives
// in two TCP writes, 200 ms (four park times) apart: the server wakes for
// the first bytes, finds no whole record, parks again with them in the
// *tls.Conn, and serves the request when the rest comes.
func TestParkPartialRecord(t *testing.T) {
	ts := start(t, parkCfg(), hello)
	raw, err := net.Dial("tcp", ts.Addr)
	require.NoError(t, err)
	sc := &splitConn{Conn: raw}
	c := tls.Client(sc, ts.TLSConfig())
	t.Cleanup(func() { c.Close() })
	br := bufio.NewReader(c)
	resp := roundTrip(t, c, br, get)
	require.Equal(t, "hello", string(resp.Body()))

	for _, at := range []int{3, 5, 20} { // in the record header, just after, in the payload
		waitParked(t, ts.Server, 1)
		parks := ts.Stats().Parks
		sc.arm(at, 200*time.Millisecond)
		resp := roundTrip(t, c, br, get)
		assert.Equal(t, "hello", string(resp.Body()), "split at %d", at)
		assert.Greater(t, ts.Stats().Parks, parks, "parked again with part of a record")
	}
}

func TestParkedConnectionIdleTimeout(t *testing.T) {
	cfg := parkCfg()
	cfg.IdleTimeout = 1500 * time.Millisecond
	ts := start(t, cfg, hello)
	c := ts.Dial(t, nil)
	br := bufio.NewReader(c)
	resp := roundTrip(t, c, br, get)
	require.Equal(t, "hello", string(resp.Body()))
	idle := time.Now()
	waitParked(t, ts.Server, 1)

	require.NoError(t, c.SetReadDeadline(time.Now().Add(5*time.Second)))
	_, err := br.ReadByte()
	waited := time.Since(idle)
	assert.ErrorIs(t, err, io.EOF, "closed by the server")
	assert.GreaterOrEqual(t, waited, cfg.IdleTimeout)
	assert.Less(t, waited, cfg.IdleTimeout+1200*time.Millisecond, "closed within a sweep of IdleTimeout")
	require.Eventually(t, func() bool { st := ts.Stats(); return st.Open == 0 && st.Parked == 0 && st.Idle == 0 },
		time.Second, 5*time.Millisecond)
}

// A wait whose idle timeout comes with IdleParkAfter is not parked: the
// connection is closed at IdleTimeout by its own goroutine, not up to a
// sweep later by the poller.
func TestNoParkAtIdleTimeout(t *testing.T) {
	const d = 300 * time.Millisecond
	ts := start(t, server.Config{IdleParkAfter: d, IdleTimeout: d}, hello)
	for i := range 3 {
		c := ts.Dial(t, nil)
		br := bufio.NewReader(c)
		resp := roundTrip(t, c, br, get)
		require.Equal(t, "hello", string(resp.Body()))
		idle := time.Now()
		require.NoError(t, c.SetReadDeadline(time.Now().Add(5*time.Second)))
		_, err := br.ReadByte()
		waited := time.Since(idle)
		assert.ErrorIs(t, err, io.EOF, "round %d: closed by the server", i)
		assert.Less(t, waited, d+200*time.Millisecond, "round %d: closed at IdleTimeout", i)
		c.Close()
	}
	assert.Zero(t, ts.Stats().Parks)
}

func TestParkedConnectionClientCloses(t *testing.T) {
	ts := start(t, parkCfg(), hello)
	c := ts.Dial(t, nil)
	resp := roundTrip(t, c, bufio.NewReader(c), get)
	require.Equal(t, "hello", string(resp.Body()))
	waitParked(t, ts.Server, 1)
	c.Close()
	require.Eventually(t, func() bool { st := ts.Stats(); return st.Open == 0 && st.Parked == 0 && st.Idle == 0 },
		2*time.Second, 5*time.Millisecond, "the parked connection is released: %+v", ts.Stats())
}

func TestShutdownClosesParked(t *testing.T) {
	cfg := parkCfg()
	cfg.DrainIdleTimeout = 100 * time.Millisecond
	s := startServing(t, cfg, hello)
	var cs []*keepAliveConn
	for range 5 {
		ka := dialKeepAlive(t, s)
		resp := &fasthttp.Response{}
		require.NoError(t, ka.do("x", resp))
		cs = append(cs, ka)
	}
	waitParked(t, s.Server, 5)

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	begin := time.Now()
	require.NoError(t, s.Shutdown(ctx))
	assert.Less(t, time.Since(begin), 2*time.Second)
	st := s.Stats()
	assert.Equal(t, int64(0), st.Open)
	assert.Equal(t, int64(0), st.Parked)
	assert.Equal(t, int64(0), st.Idle)
	for _, ka := range cs {
		require.NoError(t, ka.SetReadDeadline(time.Now().Add(time.Second)))
		_, err := ka.br.ReadByte()
		assert.ErrorIs(t, err, io.EOF)
	}
	require.NoError(t, s.Served(t, 5*time.Second))
}

func TestParkMaxRequestsPerConn(t *testing.T) {
	cfg := parkCfg()
	cfg.MaxRequestsPerConn = 3
	ts := start(t, cfg, hello)
	c := ts.Dial(t, nil)
	br := bufio.NewReader(c)
	for i := 1; i <= 3; i++ {
		waitParked(t, ts.Server, 1)
		resp := roundTrip(t, c, br, get)
		require.Equal(t, "hello", string(resp.Body()))
		assert.Equal(t, i == 3, resp.ConnectionClose(), "request %d", i)
	}
	_, err := br.ReadByte()
	assert.ErrorIs(t, err, io.EOF)
}

// A connection whose waits are each shorter than IdleParkAfter is never
// parked, across many IdleParkAfter periods: the deadline left on the
// socket by an earlier wait fires during a later one, which waits on.
func TestBusyConnectionsDoNotPark(t *testing.T) {
	ts := start(t, server.Config{IdleParkAfter: 200 * time.Millisecond}, hello)
	c := ts.Dial(t, nil)
	br := bufio.NewReader(c)
	for range 40 { // 1.2 s
		resp := roundTrip(t, c, br, get)
		require.Equal(t, "hello", string(resp.Body()))
		time.Sleep(30 * time.Millisecond)
	}
	assert.Zero(t, ts.Stats().Parks)
}

func TestParkingOff(t *testing.T) {
	ts := start(t, server.Config{IdleParkAfter: -1}, hello)
	c := ts.Dial(t, nil)
	br := bufio.NewReader(c)
	resp := roundTrip(t, c, br, get)
	require.Equal(t, "hello", string(resp.Body()))
	time.Sleep(1500 * time.Millisecond)
	resp = roundTrip(t, c, br, get)
	require.Equal(t, "hello", string(resp.Body()))
	assert.Zero(t, ts.Stats().Parks)
}

// TestParkedConnectionsHoldNoGoroutine parks 1,000 connections and
// counts the process's goroutines: those of the server, not 1,000 more.
func TestParkedConnectionsHoldNoGoroutine(t *testing.T) {
	const n = 1000
	cfg := parkCfg()
	ts := start(t, cfg, hello)
	time.Sleep(50 * time.Millisecond) // Serve's goroutines start
	base := runtime.NumGoroutine()
	_, _, baseOthers := goroutines()
	conns := make([]*tls.Conn, n)
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for w := range 16 {
		wg.Go(func() {
			for i := w; i < n; i += 16 {
				d := &tls.Dialer{Config: ts.TLSConfig()}
				nc, err := d.DialContext(context.Background(), "tcp", ts.Addr)
				if err != nil {
					errs <- err
					return
				}
				c := nc.(*tls.Conn)
				conns[i] = c
				if _, err := io.WriteString(c, get); err != nil {
					errs <- err
					return
				}
				resp := &fasthttp.Response{}
				if err := resp.Read(bufio.NewReader(c)); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	t.Cleanup(func() {
		for _, c := range conns {
			c.Close()
		}
	})
	waitParked(t, ts.Server, n)
	// fasthttp's idle workers wait for new connections in its pool, for
	// a second or two (MaxIdleWorkerDuration): a pool for the accept
	// rate, not a goroutine per connection. Count the others.
	reading, pooled, others := goroutines()
	t.Logf("goroutines: %d before (%d not in a worker pool); with %d parked connections %d: %d idle in fasthttp's worker pool, %d others, %d in a read",
		base, baseOthers, n, runtime.NumGoroutine(), pooled, others, reading)
	assert.Zero(t, reading, "no goroutine waits on a parked connection")
	assert.Less(t, others-baseOthers, 20, "the server's own goroutines")

	// Once the parks stop, the idle workers go (MaxIdleWorkerDuration is
	// 1 s with parking), and the server returns the freed memory, once.
	require.Eventually(t, func() bool { _, pooled, _ := goroutines(); return pooled < 10 }, 5*time.Second, 100*time.Millisecond,
		"fasthttp's idle workers have gone")
	require.Eventually(t, func() bool { return ts.Stats().MemoryReleases == 1 }, 8*time.Second, 50*time.Millisecond,
		"freed memory returned after the burst of parks")
	time.Sleep(2500 * time.Millisecond)
	assert.Equal(t, uint64(1), ts.Stats().MemoryReleases, "once per burst")
}

// goroutines counts the goroutines in a read of a request's first byte,
// those idle in a fasthttp worker pool, and the others.
func goroutines() (reading, pooled, others int) {
	var buf []byte
	for size := 1 << 20; ; size *= 2 {
		buf = make([]byte, size)
		if m := runtime.Stack(buf, true); m < size {
			buf = buf[:m]
			break
		}
	}
	for _, g := range strings.Split(string(buf), "\n\n") {
		switch {
		case strings.Contains(g, "acquireByteReader"):
			reading++
		case strings.Contains(g, "[chan receive") && strings.Contains(g, "(*workerPool).workerFunc"):
			pooled++
		default:
			others++
		}
	}
	return reading, pooled, others
}

func TestIdleParkAfterRejected(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  server.Config
		want string
	}{
		{"tiny", server.Config{IdleParkAfter: time.Microsecond},
			"server: IdleParkAfter must be 1ms or more, 0 for 1s, or negative for never, got 1µs"},
		{"with idle buffers", server.Config{IdleParkAfter: time.Second, KeepIdleBuffers: true},
			"server: IdleParkAfter must be 0 or negative with KeepIdleBuffers, got 1s"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := server.New(tc.cfg, hello)
			assert.EqualError(t, err, tc.want)
		})
	}
}

// TestParkedRequestAfterIdleTimeout: a parked connection past IdleTimeout
// that the poller has not closed yet (it closes them once a second) still
// looks open to its client, which may send on it: the request is served,
// not dropped. Without parking, fasthttp closes at IdleTimeout itself.
func TestParkedRequestAfterIdleTimeout(t *testing.T) {
	for _, park := range []time.Duration{50 * time.Millisecond, -1} {
		t.Run("park="+park.String(), func(t *testing.T) {
			t.Parallel()
			cfg := server.Config{IdleParkAfter: park, IdleTimeout: 1500 * time.Millisecond}
			ts := start(t, cfg, hello)
			for i := range 6 {
				c := ts.Dial(t, nil)
				br := bufio.NewReader(c)
				resp := roundTrip(t, c, br, get)
				require.Equal(t, "hello", string(resp.Body()))
				wait := cfg.IdleTimeout + time.Duration(100+i*150)*time.Millisecond
				time.Sleep(wait)
				// A client sends only on a connection that looks open.
				require.NoError(t, c.SetReadDeadline(time.Now().Add(20*time.Millisecond)))
				if _, err := br.Peek(1); !isTimeoutErr(err) {
					c.Close()
					continue
				}
				require.NoError(t, c.SetDeadline(time.Now().Add(3*time.Second)))
				_, err := io.WriteString(c, get)
				require.NoError(t, err)
				resp = &fasthttp.Response{}
				assert.NoError(t, resp.Read(br), "after %v idle, the connection looked open: its request is served", wait)
				c.Close()
			}
		})
	}
}

func isTimeoutErr(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// TestStreamWriterSetsWriteDeadline: a handler's stream writer runs on
// its own goroutine and may move the write deadline (fasthttp's
// RequestCtx.SetWriteDeadline) while the connection's goroutine writes;
// the race detector watches the lazy write deadline.
func TestStreamWriterSetsWriteDeadline(t *testing.T) {
	const chunk = "chunk of data\n"
	h := func(ctx *fasthttp.RequestCtx) {
		ctx.SetBodyStreamWriter(func(w *bufio.Writer) {
			for range 200 {
				_ = ctx.SetWriteDeadline(time.Now().Add(30 * time.Second))
				w.WriteString(chunk)
				w.Flush()
			}
		})
	}
	ts := start(t, server.Config{}, h)
	c := ts.Dial(t, nil)
	resp := roundTrip(t, c, bufio.NewReader(c), get)
	assert.Equal(t, 200*len(chunk), len(resp.Body()))
}

// TestForcedShutdownWhileParking: a Shutdown out of time (a second
// signal) closes idle connections from its own goroutine while their
// goroutines are parking them; each is released once, and none is served
// again after: Stats().Open ends at 0, never below (found by review: the
// closed phase was overwritten by parking's).
func TestForcedShutdownWhileParking(t *testing.T) {
	for iter := range 8 {
		ts := startServing(t, server.Config{IdleParkAfter: 30 * time.Millisecond}, hello)
		var conns []*tls.Conn
		for range 200 {
			c, err := tls.Dial("tcp", ts.Addr, &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"http/1.1"}})
			require.NoError(t, err)
			t.Cleanup(func() { c.Close() })
			_, err = io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
			require.NoError(t, err)
			conns = append(conns, c)
		}
		for _, c := range conns {
			require.NoError(t, c.SetReadDeadline(time.Now().Add(5*time.Second)))
			resp := &fasthttp.Response{}
			require.NoError(t, resp.Read(bufio.NewReader(c)))
		}
		time.Sleep(25*time.Millisecond + time.Duration(iter%10)*time.Millisecond/2)
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		_ = ts.Shutdown(ctx)
		require.Eventually(t, func() bool { return ts.Stats().Open == 0 }, 2*time.Second, 10*time.Millisecond,
			"iteration %d: open %d after a forced shutdown", iter, ts.Stats().Open)
		time.Sleep(100 * time.Millisecond)
		require.Equal(t, int64(0), ts.Stats().Open, "iteration %d: released twice", iter)
	}
}
