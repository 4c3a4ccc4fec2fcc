package server_test

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"os"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/valyala/fasthttp"

	"github.com/fastserve/fastserve/certs"
	"github.com/fastserve/fastserve/server"
)

// serving is a server whose Serve runs in the background, for tests that
// stop it themselves and check what Serve returns.
type serving struct {
	*server.Server
	Addr   string
	Pool   *x509.CertPool
	Logs   *logBuffer
	cancel context.CancelFunc // ends Serve's context
	served chan struct{}      // closed when Serve has returned
	err    error              // what Serve returned, once served is closed
}

// startServing runs server.New(cfg, h).Serve on 127.0.0.1:0 with a
// certificate for localhost. At cleanup it ends Serve's context and
// fails the test if Serve has not returned within 10 s.
func startServing(t testing.TB, cfg server.Config, h fasthttp.RequestHandler) *serving {
	t.Helper()
	s := &serving{Logs: &logBuffer{}, served: make(chan struct{})}
	if cfg.Addr == "" {
		cfg.Addr = "127.0.0.1:0"
	}
	var files certs.KeyPair
	files, s.Pool = certPair(t, t.TempDir(), "localhost", "localhost")
	cfg.TLS.Certificates = []certs.KeyPair{files}
	cfg.Logger = slog.New(slog.NewTextHandler(s.Logs, nil))
	srv, err := server.New(cfg, h)
	require.NoError(t, err)
	s.Server = srv
	s.Addr = srv.Addrs()[0].String()
	ctx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	go func() {
		s.err = srv.Serve(ctx)
		close(s.served)
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-s.served:
		case <-time.After(10 * time.Second):
			t.Error("Serve did not return within 10s of its context ending")
		}
	})
	return s
}

// Served waits up to d for Serve to return, and returns its result.
func (s *serving) Served(t testing.TB, d time.Duration) error {
	t.Helper()
	select {
	case <-s.served:
		return s.err
	case <-time.After(d):
		t.Fatalf("Serve did not return within %v", d)
		return nil
	}
}

// keepAliveConn is a client's persistent TLS connection, on which it
// writes requests and reads responses one at a time.
type keepAliveConn struct {
	*tls.Conn
	br *bufio.Reader
	bw *bufio.Writer
}

// clientConfig is a client configuration that trusts the server.
func (s *serving) clientConfig() *tls.Config {
	return &tls.Config{RootCAs: s.Pool, ServerName: "localhost", NextProtos: []string{"http/1.1"}}
}

// dialKeepAlive opens a TLS connection to s, closed at cleanup.
func dialKeepAlive(t testing.TB, s *serving) *keepAliveConn {
	t.Helper()
	c, err := handshake(t, s.Addr, s.clientConfig())
	require.NoError(t, err)
	return &keepAliveConn{Conn: c, br: bufio.NewReader(c), bw: bufio.NewWriter(c)}
}

// send writes a GET request carrying id in X-Id.
func (c *keepAliveConn) send(id string) error {
	req := fasthttp.AcquireRequest()
	defer fasthttp.ReleaseRequest(req)
	req.SetRequestURI("/")
	req.SetHost("localhost")
	req.Header.Set("X-Id", id)
	if err := req.Write(c.bw); err != nil {
		return err
	}
	return c.bw.Flush()
}

// do sends a request carrying id and reads its response into resp, within
// the connection's deadline.
func (c *keepAliveConn) do(id string, resp *fasthttp.Response) error {
	if err := c.send(id); err != nil {
		return err
	}
	return resp.Read(c.br)
}

// waitFor waits up to d for wg, failing the test if it takes longer.
func waitFor(t testing.TB, wg *sync.WaitGroup, d time.Duration, what string) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		wg.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(d):
		t.Fatalf("%s did not end within %v", what, d)
	}
}

// receive waits up to d for a value on ch.
func receive[T any](t testing.TB, ch <-chan T, d time.Duration, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(d):
		t.Fatalf("no %s within %v", what, d)
		var zero T
		return zero
	}
}

// loadResult is what one client of TestShutdownUnderLoad saw.
type loadResult struct {
	answered   []string // IDs answered 200 with their own ID as the body
	wrong      []string // IDs answered otherwise
	unanswered []string // IDs sent with no response read
	lastErr    error    // why the client stopped, if not Connection: close
	closed     bool     // the last response said Connection: close
}

// load sends requests back to back on c, each with a new ID, until a
// response says Connection: close, the connection fails, or the deadline.
func load(c *keepAliveConn, client int, deadline time.Time) loadResult {
	defer c.Close()
	var r loadResult
	if err := c.SetDeadline(deadline); err != nil {
		r.lastErr = err
		return r
	}
	resp := fasthttp.AcquireResponse()
	defer fasthttp.ReleaseResponse(resp)
	for i := 0; ; i++ {
		id := fmt.Sprintf("%d-%d", client, i)
		if err := c.do(id, resp); err != nil {
			r.unanswered = append(r.unanswered, id)
			r.lastErr = err
			return r
		}
		if resp.StatusCode() == fasthttp.StatusOK && string(resp.Body()) == id {
			r.answered = append(r.answered, id)
		} else {
			r.wrong = append(r.wrong, fmt.Sprintf("%s: %d %q", id, resp.StatusCode(), resp.Body()))
		}
		if resp.ConnectionClose() {
			r.closed = true
			return r
		}
	}
}

func TestShutdownUnderLoad(t *testing.T) {
	const clients = 200
	var (
		mu      sync.Mutex
		started = map[string]bool{}
	)
	ts := startServing(t, server.Config{}, func(ctx *fasthttp.RequestCtx) {
		id := string(ctx.Request.Header.Peek("X-Id"))
		mu.Lock()
		started[id] = true
		mu.Unlock()
		time.Sleep(time.Duration(20+rand.IntN(31)) * time.Millisecond)
		ctx.WriteString(id)
	})

	conns := make([]*keepAliveConn, clients)
	errs := make([]error, clients)
	var dialed sync.WaitGroup
	for i := range conns {
		dialed.Go(func() {
			var c *tls.Conn
			if c, errs[i] = handshake(t, ts.Addr, ts.clientConfig()); errs[i] == nil {
				conns[i] = &keepAliveConn{Conn: c, br: bufio.NewReader(c), bw: bufio.NewWriter(c)}
			}
		})
	}
	waitFor(t, &dialed, 30*time.Second, "dialling")
	for _, err := range errs {
		require.NoError(t, err)
	}

	deadline := time.Now().Add(5 * time.Second)
	results := make([]loadResult, clients)
	var clientsDone sync.WaitGroup
	for i, c := range conns {
		clientsDone.Go(func() { results[i] = load(c, i, deadline) })
	}
	time.Sleep(300 * time.Millisecond)

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	t0 := time.Now()
	require.NoError(t, ts.Shutdown(ctx))
	took := time.Since(t0)
	waitFor(t, &clientsDone, 10*time.Second, "the clients")
	assert.NoError(t, ts.Served(t, 5*time.Second))

	answered := map[string]bool{}
	var wrong, unanswered []string
	closes := 0
	for _, r := range results {
		for _, id := range r.answered {
			answered[id] = true
		}
		wrong = append(wrong, r.wrong...)
		unanswered = append(unanswered, r.unanswered...)
		if r.closed {
			closes++
		}
		assert.True(t, r.closed || r.lastErr != nil, "a client stopped by its deadline, not by the server")
	}
	mu.Lock()
	defer mu.Unlock()
	var lost []string
	for id := range started {
		if !answered[id] {
			lost = append(lost, id)
		}
	}
	assert.Empty(t, lost, "requests the handler started without a complete response")
	assert.Empty(t, wrong, "responses other than 200 with the request's ID")
	for id := range answered {
		assert.True(t, started[id], "answered %s without running the handler", id)
	}
	for _, id := range unanswered {
		assert.False(t, started[id], "request %s started but not answered", id)
	}
	assert.Positive(t, closes, "responses during the drain say Connection: close")
	t.Logf("Shutdown took %v; %d requests answered; %d connections ended by Connection: close; "+
		"%d requests unanswered, never started (connection closed while idle)",
		took, len(answered), closes, len(unanswered))

	st := ts.Stats()
	assert.Equal(t, uint64(len(started)), st.Requests)
	assert.Equal(t, uint64(len(started)), st.Responses[2])
	assert.Equal(t, uint64(clients), st.Handshakes)
	assert.True(t, ts.Draining())
	assert.Eventually(t, func() bool { return ts.Stats().Open == 0 }, time.Second, 5*time.Millisecond,
		"open connections: %d", ts.Stats().Open)

	// Nothing listens any more.
	_, err := net.DialTimeout("tcp", ts.Addr, time.Second)
	assert.ErrorIs(t, err, syscall.ECONNREFUSED)
}

// TestShutdownIdleConnections shows the drain of idle keep-alive
// connections: one that brings a request during DrainIdleTimeout gets its
// answer with Connection: close; one that stays idle is closed once the
// wait is over, not before.
func TestShutdownIdleConnections(t *testing.T) {
	const clients = 20
	const wait = 2 * time.Second // long enough for a loaded machine to send the first half's requests within it
	ts := startServing(t, server.Config{DrainIdleTimeout: wait}, hello)
	conns := make([]*keepAliveConn, clients)
	resp := &fasthttp.Response{}
	for i := range conns {
		conns[i] = dialKeepAlive(t, ts)
		require.NoError(t, conns[i].SetDeadline(time.Now().Add(5*time.Second)))
		require.NoError(t, conns[i].do("idle", resp))
		require.Equal(t, "hello", string(resp.Body()))
		require.False(t, resp.ConnectionClose())
	}
	require.Eventually(t, func() bool { return ts.Stats().Idle == clients }, 2*time.Second, 5*time.Millisecond)

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	t0 := time.Now()
	done := make(chan error, 1)
	go func() { done <- ts.Shutdown(ctx) }()
	require.Eventually(t, ts.Draining, time.Second, time.Millisecond)

	// Half the clients send their next request well within the wait.
	time.Sleep(wait / 10)
	for i, c := range conns[:clients/2] {
		require.NoError(t, c.do("during the drain", resp), "client %d", i)
		assert.Equal(t, "hello", string(resp.Body()))
		assert.True(t, resp.ConnectionClose(), "client %d: the answer during a drain closes", i)
	}
	// The other half are still open until the wait is over.
	for i, c := range conns[clients/2:] {
		require.NoError(t, c.SetReadDeadline(time.Now().Add(10*time.Millisecond)))
		_, err := c.Read(make([]byte, 1))
		require.ErrorIs(t, err, os.ErrDeadlineExceeded, "idle client %d closed before the wait was over", i)
	}
	var closedAt []time.Duration
	for i, c := range conns {
		require.NoError(t, c.SetReadDeadline(time.Now().Add(2*time.Second)))
		_, err := c.Read(make([]byte, 1))
		assert.ErrorIs(t, err, io.EOF, "connection %d closed, with close_notify", i)
		closedAt = append(closedAt, time.Since(t0))
	}
	require.NoError(t, <-done)
	took := time.Since(t0)
	t.Logf("Shutdown took %v; idle connections closed by %v", took, closedAt[len(closedAt)-1])
	assert.GreaterOrEqual(t, took, wait)
	assert.Less(t, took, wait+500*time.Millisecond)
	assert.Equal(t, int64(0), ts.Stats().Open)
	assert.NoError(t, ts.Served(t, 2*time.Second))
	assert.Eventually(t, func() bool { return ts.Stats().Idle == 0 }, time.Second, 5*time.Millisecond)
}

func TestShutdownDeadlineClosesInFlight(t *testing.T) {
	entered := make(chan struct{}, 1)
	release := make(chan struct{})
	var releaseOnce sync.Once
	unblock := func() { releaseOnce.Do(func() { close(release) }) }
	ts := startServing(t, server.Config{}, func(ctx *fasthttp.RequestCtx) {
		entered <- struct{}{}
		select {
		case <-release:
		case <-time.After(2 * time.Second):
		}
		ctx.WriteString("late")
	})
	t.Cleanup(unblock) // before Serve's cleanup, which runs later

	c := dialKeepAlive(t, ts)
	require.NoError(t, c.send("slow"))
	receive(t, entered, 5*time.Second, "request in the handler")

	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	t0 := time.Now()
	err := ts.Shutdown(ctx)
	took := time.Since(t0)
	assert.ErrorIs(t, err, context.DeadlineExceeded)
	assert.GreaterOrEqual(t, took, 200*time.Millisecond)
	assert.Less(t, took, time.Second)

	// The connection is closed under the request, before the handler ends.
	require.NoError(t, c.SetReadDeadline(time.Now().Add(time.Second)))
	_, err = c.Read(make([]byte, 1))
	assert.ErrorIs(t, err, io.EOF)
	assert.NoError(t, ts.Served(t, time.Second))

	unblock()
	assert.Eventually(t, func() bool { return ts.Stats().Open == 0 }, 2*time.Second, 5*time.Millisecond)
}

func TestServeContextDrains(t *testing.T) {
	dir := t.TempDir()
	files, pool := certPair(t, dir, "localhost", "localhost")
	entered := make(chan struct{}, 1)
	finished := make(chan time.Time, 1)
	srv, err := server.New(server.Config{
		Addr:   "127.0.0.1:0",
		TLS:    server.TLS{Certificates: []certs.KeyPair{files}},
		Logger: slogTo(io.Discard),
	}, func(ctx *fasthttp.RequestCtx) {
		entered <- struct{}{}
		time.Sleep(300 * time.Millisecond)
		ctx.WriteString("done")
		finished <- time.Now()
	})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ctx) }()

	c, err := handshake(t, srv.Addrs()[0].String(), &tls.Config{RootCAs: pool, ServerName: "localhost"})
	if err != nil {
		cancel()
		receive(t, served, 10*time.Second, "return from Serve")
		require.NoError(t, err)
	}
	kc := &keepAliveConn{Conn: c, br: bufio.NewReader(c), bw: bufio.NewWriter(c)}
	require.NoError(t, kc.SetDeadline(time.Now().Add(5*time.Second)))
	require.NoError(t, kc.send("slow"))
	receive(t, entered, 5*time.Second, "request in the handler")
	assert.False(t, srv.Draining())

	cancel()
	resp := &fasthttp.Response{}
	require.NoError(t, resp.Read(kc.br))
	assert.Equal(t, fasthttp.StatusOK, resp.StatusCode())
	assert.Equal(t, "done", string(resp.Body()))
	assert.True(t, resp.ConnectionClose())

	assert.NoError(t, receive(t, served, 5*time.Second, "return from Serve"))
	returned := time.Now()
	assert.False(t, returned.Before(receive(t, finished, time.Second, "end of the handler")),
		"Serve returned after the request it drained")
	assert.True(t, srv.Draining())
	assert.Eventually(t, func() bool { return srv.Stats().Open == 0 }, time.Second, 5*time.Millisecond)
}

func TestDraining(t *testing.T) {
	entered := make(chan struct{}, 1)
	release := make(chan struct{})
	var releaseOnce sync.Once
	unblock := func() { releaseOnce.Do(func() { close(release) }) }
	ts := startServing(t, server.Config{}, func(ctx *fasthttp.RequestCtx) {
		entered <- struct{}{}
		select {
		case <-release:
		case <-time.After(5 * time.Second):
		}
		ctx.WriteString("done")
	})
	t.Cleanup(unblock)
	assert.False(t, ts.Draining(), "before Shutdown")

	c := dialKeepAlive(t, ts)
	require.NoError(t, c.SetDeadline(time.Now().Add(5*time.Second)))
	require.NoError(t, c.send("slow"))
	receive(t, entered, 5*time.Second, "request in the handler")
	assert.False(t, ts.Draining(), "serving a request")

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	shutdown := make(chan error, 1)
	go func() { shutdown <- ts.Shutdown(ctx) }()
	assert.Eventually(t, ts.Draining, time.Second, time.Millisecond, "once Shutdown has begun")
	// Draining turns true a moment before fasthttp's own stop flag, which
	// makes responses say Connection: close; give Shutdown more than one
	// of fasthttp's 100 ms polls.
	time.Sleep(150 * time.Millisecond)
	select {
	case err := <-shutdown:
		t.Fatalf("Shutdown returned %v with a request in flight", err)
	default:
	}
	select {
	case <-ts.served:
		t.Log("Serve returned while Shutdown was still draining")
	default:
	}

	unblock()
	resp := &fasthttp.Response{}
	require.NoError(t, resp.Read(c.br))
	assert.Equal(t, "done", string(resp.Body()))
	assert.True(t, resp.ConnectionClose())
	assert.NoError(t, receive(t, shutdown, 2*time.Second, "return from Shutdown"))
	assert.True(t, ts.Draining(), "after Shutdown")
	assert.NoError(t, ts.Served(t, time.Second))
}

func TestShutdownWithStalledHandshake(t *testing.T) {
	// A client that starts a ClientHello and stops is cut off by
	// HandshakeTimeout, so it holds Shutdown no longer than that.
	ts := startServing(t, server.Config{HandshakeTimeout: 200 * time.Millisecond}, hello)
	c, err := net.DialTimeout("tcp", ts.Addr, time.Second)
	require.NoError(t, err)
	defer c.Close()
	_, err = c.Write([]byte{0x16}) // the first byte of a handshake record, and no more
	require.NoError(t, err)
	require.Eventually(t, func() bool { return ts.Stats().Open == 1 }, time.Second, 5*time.Millisecond)

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	t0 := time.Now()
	err = ts.Shutdown(ctx)
	took := time.Since(t0)
	assert.NoError(t, err)
	assert.Less(t, took, time.Second)
	assert.Equal(t, uint64(1), ts.Stats().HandshakeFailures[server.FailTimeout])
	assert.Equal(t, int64(0), ts.Stats().Open)
	require.NoError(t, c.SetReadDeadline(time.Now().Add(time.Second)))
	_, err = c.Read(make([]byte, 1))
	assert.ErrorIs(t, err, io.EOF, "closed by the server")
}
