package server_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/valyala/fasthttp"

	"github.com/fastserve/fastserve/server"
	"github.com/fastserve/fastserve/tune"
)

// plainGet sends a raw HTTP/1.1 request to addr and reads the response.
func plainGet(t testing.TB, addr, req string) *fasthttp.Response {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	defer c.Close()
	return roundTrip(t, c, bufio.NewReader(c), req)
}

func adminGet(t testing.TB, ts *testServer, path string) *fasthttp.Response {
	t.Helper()
	return plainGet(t, ts.Plain("admin"), "GET "+path+" HTTP/1.1\r\nHost: admin\r\n\r\n")
}

// Plain is the address of the named plain listener.
func (ts *testServer) Plain(name string) string {
	return ts.ListenerAddr(name).String()
}

func TestRedirectHTTP(t *testing.T) {
	ts := start(t, server.Config{RedirectAddr: "127.0.0.1:0"}, hello)
	_, port, _ := net.SplitHostPort(ts.Addr)
	for _, tc := range []struct{ host, want string }{
		{"example.com", "https://example.com:" + port + "/a/b?c=d"},
		{"example.com:80", "https://example.com:" + port + "/a/b?c=d"},
		{"[::1]:80", "https://[::1]:" + port + "/a/b?c=d"},
	} {
		resp := plainGet(t, ts.Plain("redirect"), "GET /a/b?c=d HTTP/1.1\r\nHost: "+tc.host+"\r\n\r\n")
		assert.Equal(t, fasthttp.StatusMovedPermanently, resp.StatusCode(), tc.host)
		assert.Equal(t, tc.want, string(resp.Header.Peek("Location")), tc.host)
	}
	// A method other than GET and HEAD keeps its method and body: 308.
	for _, m := range []string{"POST", "PUT", "DELETE"} {
		resp := plainGet(t, ts.Plain("redirect"), m+" /form HTTP/1.1\r\nHost: example.com\r\nContent-Length: 0\r\n\r\n")
		assert.Equal(t, fasthttp.StatusPermanentRedirect, resp.StatusCode(), m)
		assert.Equal(t, "https://example.com:"+port+"/form", string(resp.Header.Peek("Location")), m)
	}
}

func TestHSTS(t *testing.T) {
	ts := start(t, server.Config{HSTS: 365 * 24 * time.Hour}, hello)
	resp, err := ts.HTTPClient(t).Get("https://" + ts.Addr + "/")
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, "max-age=31536000", resp.Header.Get("Strict-Transport-Security"))

	ts = start(t, server.Config{}, hello)
	resp, err = ts.HTTPClient(t).Get("https://" + ts.Addr + "/")
	require.NoError(t, err)
	resp.Body.Close()
	assert.Empty(t, resp.Header.Get("Strict-Transport-Security"), "off by default")
}

func TestAccessLog(t *testing.T) {
	for _, format := range []string{"combined", "json"} {
		t.Run(format, func(t *testing.T) {
			log := &logBuffer{}
			ts := start(t, server.Config{AccessLog: log, AccessLogFormat: format}, hello)
			c := ts.Dial(t, nil)
			br := bufio.NewReader(c)
			roundTrip(t, c, br, "GET /x?\"q\" HTTP/1.1\r\nHost: localhost\r\nUser-Agent: te\"st\xe9\r\nReferer: r\r\n\r\n")
			roundTrip(t, c, br, "POST /big HTTP/1.1\r\nHost: localhost\r\nContent-Length: 5000000\r\n\r\n")
			require.Eventually(t, func() bool { return strings.Count(log.String(), "\n") == 2 },
				2*time.Second, 10*time.Millisecond, "two lines flushed: %q", log.String())
			lines := strings.Split(strings.TrimSpace(log.String()), "\n")
			if format == "combined" {
				re := regexp.MustCompile(`^127\.0\.0\.1 - - \[\d\d/\w{3}/\d{4}:\d\d:\d\d:\d\d [+-]\d{4}\] ` +
					`"GET /x\?\\x22q\\x22 HTTP/1\.1" 200 5 "r" "te\\x22st\\xE9" \d+\.\d{3}$`)
				assert.Regexp(t, re, lines[0])
				assert.Contains(t, lines[1], `"POST /big HTTP/1.1" 413 `)
				return
			}
			var got struct {
				Remote, Method, URI, Proto, UserAgent string
				Status, Bytes                         int
			}
			require.NoError(t, json.Unmarshal([]byte(lines[0]), &got), lines[0])
			assert.Equal(t, "127.0.0.1", got.Remote)
			assert.Equal(t, `/x?"q"`, got.URI)
			assert.Equal(t, 200, got.Status)
			assert.Equal(t, 5, got.Bytes)
			require.NoError(t, json.Unmarshal([]byte(lines[1]), &got), lines[1])
			assert.Equal(t, 413, got.Status)
		})
	}
}

// TestAccessLogFormatString: a format string reads the TLS state of the
// engine's connection, and the request's size on the wire.
func TestAccessLogFormatString(t *testing.T) {
	log := &logBuffer{}
	ts := start(t, server.Config{AccessLog: log, AccessLogFormat: `$ssl_protocol $ssl_session_reused $host $request_length "$request" $status $body_bytes_sent $site`}, hello)
	c := ts.Dial(t, nil)
	br := bufio.NewReader(c)
	get, post := "GET /x HTTP/1.1\r\nHost: LocalHost:443\r\n\r\n", "POST /y HTTP/1.1\r\nHost: localhost\r\nContent-Length: 3\r\n\r\nabc"
	roundTrip(t, c, br, get)
	roundTrip(t, c, br, post)
	require.Eventually(t, func() bool { return strings.Count(log.String(), "\n") == 2 },
		2*time.Second, 10*time.Millisecond, "two lines flushed: %q", log.String())
	assert.Equal(t, fmt.Sprintf("TLSv1.3 . localhost %d \"GET /x HTTP/1.1\" 200 5 -\n"+
		"TLSv1.3 . localhost %d \"POST /y HTTP/1.1\" 200 5 -\n", len(get), len(post)), log.String())
}

// TestAccessLogRefusedRequest: a request the server refuses while
// reading it (431, 408, 413) is logged at the time it was answered, with
// a duration of about nothing (before: the year 1, and 292 years, since
// fasthttp sets a request's time only before its handler).
func TestAccessLogRefusedRequest(t *testing.T) {
	log := &logBuffer{}
	ts := start(t, server.Config{AccessLog: log, AccessLogFormat: "$time_iso8601 $status $request_time", MaxHeaderBytes: 4096}, hello)
	c := ts.Dial(t, nil)
	_, err := io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\nX-Big: "+strings.Repeat("a", 8000)+"\r\n\r\n")
	require.NoError(t, err)
	readWire(t, c, time.Second)
	require.Eventually(t, func() bool { return strings.Count(log.String(), "\n") == 1 }, 2*time.Second, 10*time.Millisecond)
	var when string
	var status int
	var took float64
	_, err = fmt.Sscanf(log.String(), "%s %d %f", &when, &status, &took)
	require.NoError(t, err, log.String())
	at, err := time.Parse("2006-01-02T15:04:05-07:00", when)
	require.NoError(t, err)
	assert.Equal(t, 431, status)
	assert.WithinDuration(t, time.Now(), at, time.Minute, log.String())
	assert.Less(t, took, 60.0, log.String())
}

func TestAdmin(t *testing.T) {
	o := tune.Default()
	o.KeepAlive = net.KeepAliveConfig{Enable: true, Idle: 21 * time.Second, Interval: 3 * time.Second, Count: 4}
	ts := start(t, server.Config{AdminAddr: "127.0.0.1:0", Tune: o}, hello)
	c := ts.Dial(t, nil)
	roundTrip(t, c, bufio.NewReader(c), "GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")

	assert.Equal(t, "ok\n", string(adminGet(t, ts, "/healthz").Body()))
	assert.Equal(t, "ready\n", string(adminGet(t, ts, "/readyz").Body()))
	assert.Contains(t, string(adminGet(t, ts, "/metrics").Body()), "fastserve_requests_total 1\n")
	assert.Equal(t, fasthttp.StatusNotFound, adminGet(t, ts, "/nope").StatusCode())
	assert.Equal(t, fasthttp.StatusNotFound, adminGet(t, ts, "/debug/pprof/heap").StatusCode(), "profiles are opt-in")
	prof := start(t, server.Config{AdminAddr: "127.0.0.1:0", AdminProfiles: true}, hello)
	heap := adminGet(t, prof, "/debug/pprof/heap")
	assert.Equal(t, fasthttp.StatusOK, heap.StatusCode())
	assert.Equal(t, []byte{0x1f, 0x8b}, heap.Body()[:2], "a gzipped profile")
	assert.Contains(t, string(adminGet(t, prof, "/debug/pprof/").Body()), "goroutine", "the index of profiles")

	var conns struct {
		Open  int
		Conns []server.ConnInfo
	}
	// fasthttp marks the connection idle just after the response is out.
	require.Eventually(t, func() bool {
		require.NoError(t, json.Unmarshal(adminGet(t, ts, "/debug/conns").Body(), &conns))
		return len(conns.Conns) == 1 && conns.Conns[0].Idle
	}, 2*time.Second, 10*time.Millisecond)
	require.Equal(t, 1, conns.Open)
	require.Len(t, conns.Conns, 1)
	ci := conns.Conns[0]
	assert.Equal(t, c.LocalAddr().String(), ci.Remote)
	assert.Equal(t, uint64(1), ci.Requests)
	assert.True(t, ci.Idle)
	assert.Equal(t, "TLS 1.3", ci.TLSVersion)
	assert.Equal(t, "http/1.1", ci.ALPN)
	require.NotNil(t, ci.Socket, ci.SocketError)
	thirtyThree := 33.0
	assert.Equal(t, server.SocketInfo{
		State: "ESTABLISHED", KeepAlive: true, KeepAliveIdleSeconds: 21, KeepAliveIntervalSeconds: 3,
		// The user timeout follows the keep-alive that replaced the
		// default's: 21 + 3 x 4 s, not the default's 110 s.
		KeepAliveCount: 4, UserTimeoutSeconds: 33, DeadPeerAfterSeconds: &thirtyThree,
	}, server.SocketInfo{
		State: ci.Socket.State, KeepAlive: ci.Socket.KeepAlive, KeepAliveIdleSeconds: ci.Socket.KeepAliveIdleSeconds,
		KeepAliveIntervalSeconds: ci.Socket.KeepAliveIntervalSeconds, KeepAliveCount: ci.Socket.KeepAliveCount,
		UserTimeoutSeconds: ci.Socket.UserTimeoutSeconds, DeadPeerAfterSeconds: ci.Socket.DeadPeerAfterSeconds,
	}, "the kernel's view of the client connection")
	assert.Equal(t, fasthttp.StatusBadRequest, adminGet(t, ts, "/debug/conns?limit=x").StatusCode())

	// A drain fails readiness at once, while the admin listener still answers.
	block := make(chan struct{})
	ts2 := start(t, server.Config{AdminAddr: "127.0.0.1:0"}, func(ctx *fasthttp.RequestCtx) { <-block })
	busy := ts2.Dial(t, nil)
	_, err := io.WriteString(busy, "GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
	require.NoError(t, err)
	require.Eventually(t, func() bool { return ts2.Stats().Open == 1 && ts2.Stats().Handshakes == 1 }, 2*time.Second, 5*time.Millisecond)
	done := make(chan error, 1)
	go func() { done <- ts2.Shutdown(context.Background()) }()
	require.Eventually(t, ts2.Draining, 2*time.Second, 5*time.Millisecond)
	resp := adminGet(t, ts2, "/readyz")
	assert.Equal(t, fasthttp.StatusServiceUnavailable, resp.StatusCode())
	assert.Equal(t, "draining\n", string(resp.Body()))
	close(block)
	require.NoError(t, <-done)
}

// TestPlainListenerFloodSparesHTTPS: connections flooding the redirect
// listener (port 80 is public) are bounded by a budget of their own, so
// the HTTPS listener keeps its descriptors and answers (before: the flood
// took every descriptor of the process).
func TestPlainListenerFloodSparesHTTPS(t *testing.T) {
	ts := start(t, server.Config{RedirectAddr: "127.0.0.1:0", MaxConns: 28 * 16}, hello) // a budget of 16
	var flood []net.Conn
	t.Cleanup(func() {
		for _, c := range flood {
			c.Close()
		}
	})
	refused := 0
	for range 40 {
		c, err := net.Dial("tcp", ts.Plain("redirect"))
		require.NoError(t, err)
		flood = append(flood, c)
	}
	for _, c := range flood {
		require.NoError(t, c.SetReadDeadline(time.Now().Add(300*time.Millisecond)))
		if b, err := io.ReadAll(c); err == nil && (strings.HasPrefix(string(b), "HTTP/1.1 503") || strings.HasPrefix(string(b), "HTTP/1.1 429")) {
			refused++ // past the budget (or the per-client share): answered and closed at once
		}
	}
	assert.GreaterOrEqual(t, refused, 40-16, "connections past the plain listener's budget are closed at once")
	c := ts.Dial(t, nil)
	resp := roundTrip(t, c, bufio.NewReader(c), "GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
	assert.Equal(t, 200, resp.StatusCode(), "HTTPS still serves")
}
