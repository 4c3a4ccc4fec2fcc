package proxy_test

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/valyala/fasthttp"

	"github.com/fastserve/fastserve/internal/tlstest"
	"github.com/fastserve/fastserve/proxy"
)

// wsEcho is a WebSocket echo server on 127.0.0.1:0 (gorilla/websocket,
// over net/http), recording the upgrade requests it took and the close
// codes its connections ended with.
type wsEcho struct {
	srv    *http.Server
	url    string
	mu     sync.Mutex
	heads  []http.Header
	closes []int
	open   atomic.Int64
}

func newWSEcho(t testing.TB) *wsEcho {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	e := &wsEcho{url: "http://" + ln.Addr().String()}
	up := websocket.Upgrader{}
	e.srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		e.mu.Lock()
		e.heads = append(e.heads, r.Header.Clone())
		e.mu.Unlock()
		c, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		e.open.Add(1)
		defer e.open.Add(-1)
		defer c.Close()
		for {
			mt, msg, err := c.ReadMessage()
			if err != nil {
				code := -1
				if ce, ok := err.(*websocket.CloseError); ok {
					code = ce.Code
				}
				e.mu.Lock()
				e.closes = append(e.closes, code)
				e.mu.Unlock()
				return
			}
			if err := c.WriteMessage(mt, msg); err != nil {
				return
			}
		}
	})}
	go e.srv.Serve(ln)
	t.Cleanup(func() { e.srv.Close() })
	return e
}

func (e *wsEcho) closeCodes() []int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]int(nil), e.closes...)
}

// wsDial opens a WebSocket through the proxy served by ts.
func wsDial(t testing.TB, ts *tlstest.Server, path string) *websocket.Conn {
	t.Helper()
	d := websocket.Dialer{TLSClientConfig: ts.TLSConfig(), HandshakeTimeout: 10 * time.Second}
	c, resp, err := d.Dial("wss://"+ts.Addr+path, nil)
	require.NoError(t, err)
	require.Equal(t, http.StatusSwitchingProtocols, resp.StatusCode)
	t.Cleanup(func() { c.Close() })
	return c
}

func echo(t testing.TB, c *websocket.Conn, msg string) {
	t.Helper()
	require.NoError(t, c.SetWriteDeadline(time.Now().Add(10*time.Second)))
	require.NoError(t, c.SetReadDeadline(time.Now().Add(10*time.Second)))
	require.NoError(t, c.WriteMessage(websocket.TextMessage, []byte(msg)))
	_, got, err := c.ReadMessage()
	require.NoError(t, err)
	require.Equal(t, msg, string(got))
}

// startTunnelProxy serves p as startProxy does, from a server that keeps
// hijacked connections (as the engine does) if keeps.
func startTunnelProxy(t testing.TB, cfg proxy.Config, keeps bool) (*proxy.Proxy, *tlstest.Server) {
	t.Helper()
	cfg.KeepsHijacked = keeps
	p := newProxy(t, cfg)
	next := func(ctx *fasthttp.RequestCtx) { ctx.WriteString("next") }
	return p, tlstest.Start(t, &fasthttp.Server{Handler: p.Handler(next), StreamRequestBody: true, Name: "fastserve",
		Logger: quiet{}, KeepHijackedConns: keeps, ReduceMemoryUsage: keeps})
}

// bothWays runs f for a server that keeps hijacked connections, and for
// one that does not.
func bothWays(t *testing.T, f func(t *testing.T, keeps bool)) {
	for _, keeps := range []bool{false, true} {
		t.Run(fmt.Sprintf("keeps=%v", keeps), func(t *testing.T) { f(t, keeps) })
	}
}

func TestUpgradeWebSocketEcho(t *testing.T) { bothWays(t, testUpgradeWebSocketEcho) }

func testUpgradeWebSocketEcho(t *testing.T, keeps bool) {
	up := newWSEcho(t)
	var tunnels proxy.Tunnels
	p, ts := startTunnelProxy(t, proxy.Config{Routes: []proxy.Route{{Path: "/", Upstreams: []string{up.url}}}, Tunnels: &tunnels}, keeps)

	// 50 connections, each used, held idle, and used again.
	const n = 50
	conns := make([]*websocket.Conn, n)
	for i := range conns {
		conns[i] = wsDial(t, ts, "/ws")
		echo(t, conns[i], fmt.Sprintf("hello %d", i))
	}
	assert.Equal(t, n, tunnels.Open())
	time.Sleep(200 * time.Millisecond)
	var wg sync.WaitGroup
	for i, c := range conns {
		wg.Go(func() {
			echo(t, c, strings.Repeat(fmt.Sprint(i), 100<<10)) // large: many reads and TLS records
			echo(t, c, "again")
		})
	}
	wg.Wait()

	h := up.heads[0]
	assert.Equal(t, "websocket", h.Get("Upgrade"))
	assert.Equal(t, "Upgrade", h.Get("Connection"))
	assert.NotEmpty(t, h.Get("Sec-WebSocket-Key"))
	assert.Equal(t, "127.0.0.1", h.Get("X-Forwarded-For"))
	assert.Contains(t, strings.Join(metricsText(p), "\n"), fmt.Sprintf(`fastserve_upstream_tunnels_total{upstream=%q} %d`, up.url, n))

	// A client that leaves closes its tunnel, both ways.
	for _, c := range conns {
		c.Close()
	}
	require.True(t, eventually(5*time.Second, func() bool { return tunnels.Open() == 0 && up.open.Load() == 0 }),
		"open tunnels %d, upstream connections %d", tunnels.Open(), up.open.Load())
}

// rawUpgrade sends an upgrade request on a new TLS connection to ts and
// returns the connection and the answer's head.
func rawUpgrade(t testing.TB, ts *tlstest.Server, early ...string) (*tls.Conn, *bufio.Reader, string) {
	t.Helper()
	c := ts.Dial(t)
	require.NoError(t, c.SetDeadline(time.Now().Add(10*time.Second)))
	_, err := io.WriteString(c, "GET /x HTTP/1.1\r\nHost: a.test\r\nConnection: keep-alive, Upgrade\r\nUpgrade: foo/1\r\n\r\n"+strings.Join(early, ""))
	require.NoError(t, err)
	br := bufio.NewReader(c)
	var h strings.Builder
	for {
		line, err := br.ReadString('\n')
		require.NoError(t, err, "head so far: %q", h.String())
		h.WriteString(line)
		if line == "\r\n" {
			return c, br, h.String()
		}
	}
}

func TestUpgradeOtherProtocol(t *testing.T) { bothWays(t, testUpgradeOtherProtocol) }

func testUpgradeOtherProtocol(t *testing.T, keeps bool) {
	// An upstream that switches, sends its first bytes with the 101, then
	// echoes in upper case until it reads "bye".
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { ln.Close() })
	got := make(chan string, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		br := bufio.NewReader(c)
		var head strings.Builder
		for {
			line, err := br.ReadString('\n')
			if err != nil {
				return
			}
			head.WriteString(line)
			if line == "\r\n" {
				break
			}
		}
		got <- head.String()
		io.WriteString(c, "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: foo/1\r\nX-Up: 1\r\n\r\nready\n")
		for {
			line, err := br.ReadString('\n')
			if err != nil || line == "bye\n" {
				return
			}
			io.WriteString(c, strings.ToUpper(line))
		}
	}()
	_, ts := startTunnelProxy(t, proxy.Config{Routes: []proxy.Route{{Path: "/", Upstreams: []string{"http://" + ln.Addr().String()}}}}, keeps)
	// The client sends its first bytes with its request, before the 101:
	// they reach the upstream, after it.
	c, br, head := rawUpgrade(t, ts, "early\n")
	assert.Contains(t, head, "HTTP/1.1 101 Switching Protocols\r\n")
	assert.Contains(t, head, "\r\nConnection: Upgrade\r\n")
	assert.Contains(t, head, "\r\nUpgrade: foo/1\r\n")
	assert.Contains(t, head, "\r\nX-Up: 1\r\n")
	assert.NotContains(t, strings.ToLower(head), "content-length")
	upHead := <-got
	assert.Contains(t, upHead, "\r\nConnection: Upgrade\r\n")
	assert.Contains(t, upHead, "\r\nUpgrade: foo/1\r\n")

	line, err := br.ReadString('\n')
	require.NoError(t, err)
	assert.Equal(t, "ready\n", line)
	line, err = br.ReadString('\n')
	require.NoError(t, err)
	assert.Equal(t, "EARLY\n", line)
	for _, s := range []string{"abc\n", "hello there\n"} {
		_, err := io.WriteString(c, s)
		require.NoError(t, err)
		line, err := br.ReadString('\n')
		require.NoError(t, err)
		assert.Equal(t, strings.ToUpper(s), line)
	}
	// The upstream closing ends the tunnel: the client reads its end.
	_, err = io.WriteString(c, "bye\n")
	require.NoError(t, err)
	_, err = br.ReadByte()
	assert.ErrorIs(t, err, io.EOF)
}

func TestUpgradeAnswers(t *testing.T) {
	for _, tc := range []struct {
		name, answer string
		status       int
	}{
		// Any answer but a 101 is relayed as an answer.
		{"refused", "HTTP/1.1 403 Forbidden\r\nContent-Length: 2\r\n\r\nno", 403},
		// A 101 that names no protocol is the upstream's error.
		{"101 without Upgrade", "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\n\r\n", 502},
	} {
		t.Run(tc.name, func(t *testing.T) {
			up := newRawUpstream(t, func(seen) string { return tc.answer })
			p := newProxy(t, proxy.Config{Routes: []proxy.Route{{Path: "/", Upstreams: []string{up.URL()}}}})
			ts := startProxy(t, p)
			c, br, head := rawUpgrade(t, ts)
			resp, err := http.ReadResponse(bufio.NewReader(io.MultiReader(strings.NewReader(head), br)), nil)
			require.NoError(t, err)
			assert.Equal(t, tc.status, resp.StatusCode)
			// The client's connection serves on; the upstream's does not.
			_, err = io.WriteString(c, "GET /y HTTP/1.1\r\nHost: a.test\r\n\r\n")
			require.NoError(t, err)
			resp.Body.Close()
			resp, err = http.ReadResponse(br, nil)
			require.NoError(t, err)
			resp.Body.Close()
			assert.Equal(t, int64(2), up.accepted.Load(), "the upgrade's upstream connection was used again")
		})
	}
}

func TestUpgradeIdleTimeout(t *testing.T) {
	up := newWSEcho(t)
	var tunnels proxy.Tunnels
	p := newProxy(t, proxy.Config{Routes: []proxy.Route{{Path: "/", Upstreams: []string{up.url}}}, Tunnels: &tunnels,
		UpgradeIdleTimeout: 400 * time.Millisecond})
	ts := startProxy(t, p)
	busy, idle := wsDial(t, ts, "/"), wsDial(t, ts, "/")
	echo(t, idle, "x")
	// Bytes one way keep a tunnel open: the client's pings, answered
	// here by nothing but the upstream's pongs.
	start := time.Now()
	for time.Since(start) < 1200*time.Millisecond {
		echo(t, busy, "ping")
		time.Sleep(100 * time.Millisecond)
	}
	echo(t, busy, "still here")
	require.NoError(t, idle.SetReadDeadline(time.Now().Add(5*time.Second)))
	_, _, err := idle.ReadMessage()
	require.Error(t, err, "the idle tunnel is still open")
	var ne net.Error
	assert.False(t, errorsAs(err, &ne) && ne.Timeout(), "the idle tunnel was not closed: %v", err)
}

func errorsAs(err error, target *net.Error) bool {
	ne, ok := err.(net.Error)
	if ok {
		*target = ne
	}
	return ok
}

func TestTunnelsGoAway(t *testing.T) { bothWays(t, testTunnelsGoAway) }

func testTunnelsGoAway(t *testing.T, keeps bool) {
	up := newWSEcho(t)
	var tunnels proxy.Tunnels
	_, ts := startTunnelProxy(t, proxy.Config{Routes: []proxy.Route{{Path: "/", Upstreams: []string{up.url}}}, Tunnels: &tunnels}, keeps)
	c := wsDial(t, ts, "/")
	echo(t, c, "before")

	done := make(chan struct{})
	go func() {
		tunnels.GoAway(2 * time.Second)
		close(done)
	}()
	require.NoError(t, c.SetReadDeadline(time.Now().Add(5*time.Second)))
	_, _, err := c.ReadMessage()
	var ce *websocket.CloseError
	require.ErrorAs(t, err, &ce)
	assert.Equal(t, websocket.CloseGoingAway, ce.Code)
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("GoAway did not return")
	}
	require.True(t, eventually(5*time.Second, func() bool { return len(up.closeCodes()) == 1 }))
	assert.Equal(t, []int{websocket.CloseGoingAway}, up.closeCodes())
	assert.Equal(t, 0, tunnels.Open())
}

// TestUnasked101: a 101 to a request that asked for no upgrade is 502,
// and its connection is not used again.
func TestUnasked101(t *testing.T) {
	up := newRawUpstream(t, func(s seen) string {
		if s.URI == "/first" {
			return "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n"
		}
		return "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
	})
	p := newProxy(t, proxy.Config{Routes: []proxy.Route{{Path: "/", Upstreams: []string{up.URL()}}}})
	ts := startProxy(t, p)
	_, resp, _ := proxyExchange(t, ts, "GET /first HTTP/1.1\r\nHost: a.test\r\n\r\n")
	assert.Equal(t, http.StatusBadGateway, resp.StatusCode)
	_, resp, body := proxyExchange(t, ts, "GET /second HTTP/1.1\r\nHost: a.test\r\n\r\n")
	assert.Equal(t, "ok", body)
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, int64(2), up.accepted.Load(), "the connection that answered 101 was used again")
}
