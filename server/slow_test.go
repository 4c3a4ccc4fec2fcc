package server_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/valyala/fasthttp"

	"github.com/fastserve/fastserve/server"
	"github.com/fastserve/fastserve/tune"
)

// Short timeouts, so that every slow client below is dealt with in well
// under a second.
const (
	shortHandshakeTimeout = 300 * time.Millisecond
	shortHeaderTimeout    = 500 * time.Millisecond
	shortBodyTimeout      = 500 * time.Millisecond

	// closeMargin is how late after its timeout a connection may close:
	// timers, scheduling and the race detector on a busy machine.
	closeMargin = time.Second
)

// slowConfig is a server with the short timeouts.
func slowConfig() server.Config {
	return server.Config{
		HandshakeTimeout: shortHandshakeTimeout,
		HeaderTimeout:    shortHeaderTimeout,
		BodyTimeout:      shortBodyTimeout,
	}
}

// noDeferAccept is tune.Default() without TCP_DEFER_ACCEPT, so that the
// kernel hands the server a connection whose client has sent nothing.
func noDeferAccept() tune.Options {
	o := tune.Default()
	o.DeferAccept = false
	return o
}

// echoBodyLen answers with the length of the request body.
func echoBodyLen(ctx *fasthttp.RequestCtx) {
	fmt.Fprintf(ctx, "%d", len(ctx.PostBody()))
}

// A closing is what a client saw of a connection until the server closed
// it, or until the client gave up waiting.
type closing struct {
	data  []byte        // the bytes read before the end
	after time.Duration // from the start given to readUntilClosed to the end
	err   error         // what ended it: see closedByPeer
}

// readUntilClosed reads c until the server closes it or until limit after
// start. It calls no testing function, so that it may run on any goroutine.
func readUntilClosed(c net.Conn, start time.Time, limit time.Duration) closing {
	if err := c.SetReadDeadline(start.Add(limit)); err != nil {
		return closing{err: err}
	}
	var data bytes.Buffer
	buf := make([]byte, 4096)
	for {
		n, err := c.Read(buf)
		data.Write(buf[:n])
		if err != nil {
			return closing{data: data.Bytes(), after: time.Since(start), err: err}
		}
	}
}

// closedByPeer reports whether err ends a connection that the other side
// closed, with a FIN (io.EOF; io.ErrUnexpectedEOF from TLS in mid-record)
// or a reset, rather than a timeout of the reader's own.
func closedByPeer(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

// assertClosedWithin checks that the server closed the connection, no
// sooner than lo and no later than hi.
func assertClosedWithin(t testing.TB, cl closing, lo, hi time.Duration) bool {
	t.Helper()
	if !assert.Truef(t, closedByPeer(cl.err), "server closed the connection (EOF or reset), got %v after %v", cl.err, cl.after) {
		return false
	}
	return assert.GreaterOrEqual(t, cl.after, lo, "closed too soon") &&
		assert.LessOrEqual(t, cl.after, hi, "closed too late")
}

// responseIn parses the HTTP response at the start of data, if any.
func responseIn(t testing.TB, data []byte) *fasthttp.Response {
	t.Helper()
	if len(data) == 0 {
		return nil
	}
	resp := &fasthttp.Response{}
	require.NoError(t, resp.Read(bufio.NewReader(bytes.NewReader(data))), "a response: %q", data)
	return resp
}

// assertTimeoutAnswer checks that the server sent either nothing or a 408
// with Connection: close before it closed, and reports whether it sent a
// 408.
func assertTimeoutAnswer(t testing.TB, data []byte) bool {
	t.Helper()
	resp := responseIn(t, data)
	if resp == nil {
		return false
	}
	assert.Equal(t, fasthttp.StatusRequestTimeout, resp.StatusCode(), "%q", data)
	assert.True(t, resp.ConnectionClose(), "Connection: close")
	return true
}

// dribble writes s to c one byte every interval, until all of s is written,
// a write fails or stop is closed. It writes the first byte before it
// returns, and returns when it did; done is closed when it stops. It calls
// no testing function, so that it may run on any goroutine.
func dribble(c net.Conn, s string, every time.Duration, stop <-chan struct{}) (first time.Time, done <-chan struct{}, err error) {
	if _, err := c.Write([]byte{s[0]}); err != nil {
		return time.Time{}, nil, err
	}
	first = time.Now()
	ch := make(chan struct{})
	go func() {
		defer close(ch)
		tick := time.NewTicker(every)
		defer tick.Stop()
		for i := 1; i < len(s); i++ {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			if _, err := c.Write([]byte{s[i]}); err != nil {
				return
			}
		}
	}()
	return first, ch, nil
}

// waitStopped waits for done, at most 5 s.
func waitStopped(t testing.TB, done <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Errorf("%s did not stop within 5s", what)
	}
}

// dialTCP opens a plain TCP connection to the server, closed at cleanup.
func dialTCP(t testing.TB, addr string) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	return c
}

// TestSlowHandshake: a client that never completes its ClientHello is
// closed once HandshakeTimeout has passed, and counted as a handshake
// timeout.
//
// The default listener sets TCP_DEFER_ACCEPT (tune.Default): the kernel
// hands a connection to accept only once its first bytes have arrived, so a
// client that sends nothing is not the server's concern for a while and
// the handshake timeout cannot start. Hence two cases: with the default
// listener, the client sends one byte of a TLS record header (0x16,
// handshake) and stalls; with DeferAccept off, the client sends nothing at
// all.
func TestSlowHandshake(t *testing.T) {
	for _, tc := range []struct {
		name string
		tune tune.Options
		send []byte
	}{
		{"one byte, deferred accept", tune.Options{} /* tune.Default() */, []byte{0x16}},
		{"nothing, no deferred accept", noDeferAccept(), nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := slowConfig()
			cfg.Tune = tc.tune
			ts := start(t, cfg, hello)
			c := dialTCP(t, ts.Addr)
			if tc.send != nil {
				_, err := c.Write(tc.send)
				require.NoError(t, err)
			}
			// The server's clock starts at its first read, right after
			// accept: once the byte is in with deferred accept, at once
			// without.
			cl := readUntilClosed(c, time.Now(), shortHandshakeTimeout+closeMargin+time.Second)
			assertClosedWithin(t, cl, shortHandshakeTimeout*9/10, shortHandshakeTimeout+closeMargin)
			assert.Empty(t, cl.data, "nothing written before the close")
			t.Logf("closed after %v (HandshakeTimeout %v)", cl.after, shortHandshakeTimeout)
			assertStat(t, ts, "HandshakeFailures[server.FailTimeout]", func(st server.Stats) uint64 { return st.HandshakeFailures[server.FailTimeout] }, 1)
			assert.Zero(t, ts.Stats().Handshakes)
		})
	}
}

// assertStat waits up to 2 s for a counter to reach want, and checks that
// it is exactly want.
func assertStat(t testing.TB, ts *testServer, name string, get func(server.Stats) uint64, want uint64) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Second)
	for get(ts.Stats()) < want && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	assert.Equal(t, want, get(ts.Stats()), name)
}

// TestSlowHeaders: a client that dribbles its request line and headers,
// one byte every 100 ms, never finishing them, is closed once
// HeaderTimeout has passed, with a 408 or without an answer.
func TestSlowHeaders(t *testing.T) {
	ts := start(t, slowConfig(), hello)
	c := ts.Dial(t, nil)
	require.NoError(t, c.SetWriteDeadline(time.Now().Add(10*time.Second)))
	stop := make(chan struct{})
	first, done, err := dribble(c, "GET / HTTP/1.1\r\nHost: x\r\n", 100*time.Millisecond, stop)
	require.NoError(t, err)
	defer waitStopped(t, done, "dribble")
	defer close(stop)

	// HeaderTimeout counts from the end of the handshake, just before the
	// first byte.
	cl := readUntilClosed(c, first, shortHeaderTimeout+closeMargin+time.Second)
	assertClosedWithin(t, cl, shortHeaderTimeout*9/10, shortHeaderTimeout+closeMargin)
	sent408 := assertTimeoutAnswer(t, cl.data)
	t.Logf("closed after %v (HeaderTimeout %v), 408 sent: %v", cl.after, shortHeaderTimeout, sent408)
	if sent408 {
		assertStat(t, ts, "Rejected[server.RejectTimeout]", func(st server.Stats) uint64 { return st.Rejected[server.RejectTimeout] }, 1)
	}
}

// TestSlowBody: a client that sends 10 bytes of a 1000-byte body and
// stalls is closed once BodyTimeout has passed since its headers, with a
// 408 or without an answer.
func TestSlowBody(t *testing.T) {
	ts := start(t, slowConfig(), echoBodyLen)
	c := ts.Dial(t, nil)
	require.NoError(t, c.SetWriteDeadline(time.Now().Add(5*time.Second)))
	_, err := io.WriteString(c, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n0123456789")
	require.NoError(t, err)
	cl := readUntilClosed(c, time.Now(), shortBodyTimeout+closeMargin+time.Second)
	assertClosedWithin(t, cl, shortBodyTimeout*9/10, shortBodyTimeout+closeMargin)
	sent408 := assertTimeoutAnswer(t, cl.data)
	t.Logf("closed after %v (BodyTimeout %v), 408 sent: %v", cl.after, shortBodyTimeout, sent408)
	if sent408 {
		assertStat(t, ts, "Rejected[server.RejectTimeout]", func(st server.Stats) uint64 { return st.Rejected[server.RejectTimeout] }, 1)
	}
	assert.Zero(t, ts.Stats().Responses[2], "the handler never ran")
}

// TestIdleTimeout: a keep-alive connection that served a request and then
// stays silent is closed after IdleTimeout, which is independent of
// HeaderTimeout both ways.
func TestIdleTimeout(t *testing.T) {
	t.Run("short idle, long header timeout", func(t *testing.T) {
		const idle = 500 * time.Millisecond
		cfg := slowConfig()
		cfg.IdleTimeout = idle
		cfg.HeaderTimeout = 3 * time.Second
		ts := start(t, cfg, hello)
		c := ts.Dial(t, nil)
		br := bufio.NewReader(c)
		resp := roundTrip(t, c, br, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
		require.Equal(t, fasthttp.StatusOK, resp.StatusCode())
		require.False(t, resp.ConnectionClose())
		require.Zero(t, br.Buffered())

		cl := readUntilClosed(c, time.Now(), idle+closeMargin+time.Second)
		assertClosedWithin(t, cl, idle*9/10, idle+closeMargin)
		assert.Less(t, cl.after, cfg.HeaderTimeout, "closed by IdleTimeout, not HeaderTimeout")
		assert.Empty(t, cl.data, "an idle connection is closed without an answer")
		t.Logf("idle connection closed after %v (IdleTimeout %v)", cl.after, idle)
		assert.Zero(t, ts.Stats().Rejected[server.RejectTimeout])
	})
	t.Run("long idle, short header timeout", func(t *testing.T) {
		cfg := slowConfig()
		cfg.IdleTimeout = 10 * time.Second
		cfg.HeaderTimeout = 300 * time.Millisecond
		ts := start(t, cfg, hello)
		c := ts.Dial(t, nil)
		br := bufio.NewReader(c)
		resp := roundTrip(t, c, br, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
		require.Equal(t, fasthttp.StatusOK, resp.StatusCode())

		// Silent for three header timeouts: the connection stays open.
		wait := 3 * cfg.HeaderTimeout
		cl := readUntilClosed(c, time.Now(), wait)
		var ne net.Error
		assert.Truef(t, errors.As(cl.err, &ne) && ne.Timeout(), "still open after %v, got %v after %v", wait, cl.err, cl.after)
		assert.Empty(t, cl.data)

		resp = roundTrip(t, c, br, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
		assert.Equal(t, fasthttp.StatusOK, resp.StatusCode())
		assert.Equal(t, "hello", string(resp.Body()))
		st := ts.Stats()
		assert.Equal(t, uint64(1), st.Handshakes, "both requests on one connection")
		assert.Equal(t, uint64(2), st.Responses[2])
	})
}

// TestSlowClientsDoNotStallOthers: while clients stall in the handshake,
// in their headers and in their body, a normal client's requests, each on
// a new connection, are all served before any of the stalled ones times
// out; then each stalled one is closed on its own timeout.
func TestSlowClientsDoNotStallOthers(t *testing.T) {
	const timeout = time.Second
	cfg := server.Config{
		Tune:             noDeferAccept(),
		HandshakeTimeout: timeout,
		HeaderTimeout:    timeout,
		BodyTimeout:      timeout,
	}
	ts := start(t, cfg, hello)

	type stalled struct {
		name string
		c    net.Conn
		from time.Time // when the server's timeout started, or just before
		done <-chan struct{}
	}
	stop := make(chan struct{})
	var slow []stalled
	for range 3 {
		c := dialTCP(t, ts.Addr) // sends nothing
		slow = append(slow, stalled{name: "handshake", c: c, from: time.Now()})

		c = ts.Dial(t, nil)
		require.NoError(t, c.SetWriteDeadline(time.Now().Add(10*time.Second)))
		first, done, err := dribble(c, "GET / HTTP/1.1\r\nHost: x\r\n", 100*time.Millisecond, stop)
		require.NoError(t, err)
		slow = append(slow, stalled{name: "headers", c: c, from: first, done: done})

		c = ts.Dial(t, nil)
		_, err = io.WriteString(c, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n0123456789")
		require.NoError(t, err)
		slow = append(slow, stalled{name: "body", c: c, from: time.Now()})
	}
	defer func() {
		close(stop)
		for _, s := range slow {
			if s.done != nil {
				waitStopped(t, s.done, "dribble")
			}
		}
	}()
	results := make([]chan closing, len(slow))
	for i, s := range slow {
		results[i] = make(chan closing, 1)
		go func() { results[i] <- readUntilClosed(s.c, s.from, timeout+closeMargin+time.Second) }()
	}
	stalledSince := slow[0].from

	client := ts.HTTPClient(t)
	client.Transport.(*http.Transport).DisableKeepAlives = true
	for i := range 10 {
		resp, err := client.Get("https://" + ts.Addr + "/")
		require.NoError(t, err, "request %d", i)
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		require.NoError(t, err)
		assert.Equal(t, http.StatusOK, resp.StatusCode)
		assert.Equal(t, "hello", string(body))
	}
	served := time.Since(stalledSince)
	t.Logf("10 requests on new connections served %v after the slow clients stalled", served)
	assert.Less(t, served, timeout*9/10, "served while the slow clients were stalled")
	ended := make([]*closing, len(slow))
	for i, s := range slow {
		select {
		case cl := <-results[i]:
			ended[i] = &cl
			t.Errorf("%s client %d ended after %v, before the normal client was done: %v", s.name, i, cl.after, cl.err)
		default:
		}
	}

	for i, s := range slow {
		t.Run(fmt.Sprintf("%s/%d", s.name, i), func(t *testing.T) {
			if ended[i] != nil {
				return // reported above; its result was taken
			}
			cl := <-results[i] // bounded by readUntilClosed's limit
			assertClosedWithin(t, cl, timeout*9/10, timeout+closeMargin)
		})
	}
	st := ts.Stats()
	assert.Equal(t, uint64(10), st.Responses[2])
	assert.Equal(t, uint64(3), st.HandshakeFailures[server.FailTimeout])
}

// TestGarbageHandshake: random bytes instead of a ClientHello close the
// connection at once (not on the handshake timeout), counted as a failed
// handshake of no particular reason.
func TestGarbageHandshake(t *testing.T) {
	cfg := slowConfig()
	cfg.HandshakeTimeout = 5 * time.Second
	ts := start(t, cfg, hello)
	garbage := make([]byte, 1024)
	_, _ = rand.Read(garbage)
	// crypto/tls reads on past a first record header of type handshake
	// (0x16) or alert (0x15) and would then wait for the body, so that
	// the handshake would time out instead: keep the type out of those.
	if garbage[0] == 0x15 || garbage[0] == 0x16 {
		garbage[0] |= 0x80
	}
	c := dialTCP(t, ts.Addr)
	_, err := c.Write(garbage)
	require.NoError(t, err)
	cl := readUntilClosed(c, time.Now(), 5*time.Second)
	assertClosedWithin(t, cl, 0, closeMargin)
	t.Logf("closed after %v: %v", cl.after, cl.err)
	assertStat(t, ts, "HandshakeFailures[server.FailOther]", func(st server.Stats) uint64 { return st.HandshakeFailures[server.FailOther] }, 1)
	hf := ts.Stats().HandshakeFailures
	assert.Zero(t, hf[server.FailPlaintext])
	assert.Zero(t, hf[server.FailTimeout])
}

// TestLegacyVersionAndSuitesRefused: TLS 1.0 and 1.1, and TLS 1.2 with
// only CBC suites, get a handshake alert; the first counts as a version
// failure.
func TestLegacyVersionAndSuitesRefused(t *testing.T) {
	for _, tc := range []struct {
		name    string
		client  func(*tls.Config)
		alert   tls.AlertError
		version uint64 // HandshakeFailures[server.FailVersion] expected
		other   uint64 // HandshakeFailures[server.FailOther] expected
	}{
		{
			name:    "TLS 1.0 and 1.1",
			client:  func(c *tls.Config) { c.MinVersion, c.MaxVersion = tls.VersionTLS10, tls.VersionTLS11 },
			alert:   70, // protocol_version
			version: 1,
		},
		{
			name: "TLS 1.2 CBC only",
			client: func(c *tls.Config) {
				c.MaxVersion = tls.VersionTLS12
				c.CipherSuites = []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA}
			},
			alert: 40, // handshake_failure
			other: 1,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ts := start(t, slowConfig(), hello)
			cfg := ts.TLSConfig()
			tc.client(cfg)
			d := &tls.Dialer{NetDialer: &net.Dialer{Timeout: 5 * time.Second}, Config: cfg}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			c, err := d.DialContext(ctx, "tcp", ts.Addr)
			if err == nil {
				c.Close()
			}
			require.Error(t, err, "handshake refused")
			// crypto/tls reports an alert from the server as a
			// *net.OpError "remote error" around its unexported alert
			// type, which prints as tls.AlertError does.
			var op *net.OpError
			if assert.ErrorAs(t, err, &op) && assert.Equal(t, "remote error", op.Op, "%v", err) {
				assert.Equal(t, tc.alert.Error(), op.Err.Error(), "alert")
			}
			assertStat(t, ts, "HandshakeFailures[server.FailVersion]", func(st server.Stats) uint64 { return st.HandshakeFailures[server.FailVersion] }, tc.version)
			assertStat(t, ts, "HandshakeFailures[server.FailOther]", func(st server.Stats) uint64 { return st.HandshakeFailures[server.FailOther] }, tc.other)
			assert.Zero(t, ts.Stats().Handshakes)
		})
	}
}
