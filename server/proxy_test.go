package server_test

import (
	"bufio"
	"io"
	"net"
	"net/http"
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

// seen is a request as an upstream received it.
type seen struct {
	Method, URI, Host string
	Head              string // the header lines, as on the wire
	Body              []byte
}

// header returns the values of the header lines named name, in order.
func (s seen) header(name string) []string {
	var vs []string
	for _, line := range strings.Split(s.Head, "\r\n") {
		k, v, ok := strings.Cut(line, ":")
		if ok && strings.EqualFold(k, name) {
			vs = append(vs, strings.TrimSpace(v))
		}
	}
	return vs
}

// rawUpstream is an upstream on 127.0.0.1:0 that records each request
// it reads, with its header lines as they came on the wire, and writes
// the answer its respond returns, bytes as they are.
type rawUpstream struct {
	ln      net.Listener
	respond func(seen) string // the whole response; "" closes without answering
	mu      sync.Mutex
	reqs    []seen
	wg      sync.WaitGroup
	conns   sync.Map
}

func newRawUpstream(t testing.TB, respond func(seen) string) *rawUpstream {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	u := &rawUpstream{ln: ln, respond: respond}
	u.wg.Add(1)
	go u.accept()
	t.Cleanup(u.Close)
	return u
}

func (u *rawUpstream) URL() string  { return "http://" + u.ln.Addr().String() }
func (u *rawUpstream) Addr() string { return u.ln.Addr().String() }

func (u *rawUpstream) Close() {
	u.ln.Close()
	u.conns.Range(func(c, _ any) bool { c.(net.Conn).Close(); return true })
	u.wg.Wait()
}

func (u *rawUpstream) accept() {
	defer u.wg.Done()
	for {
		c, err := u.ln.Accept()
		if err != nil {
			return
		}
		u.conns.Store(c, true)
		u.wg.Add(1)
		go u.serve(c)
	}
}

func (u *rawUpstream) serve(c net.Conn) {
	defer u.wg.Done()
	defer c.Close()
	defer u.conns.Delete(c)
	br := bufio.NewReader(c)
	for range 1000 {
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		var req fasthttp.Request
		if err := req.Read(br); err != nil {
			return
		}
		s := seen{
			Method: string(req.Header.Method()), URI: string(req.Header.RequestURI()),
			Host: string(req.Header.Host()), Head: string(req.Header.RawHeaders()),
			Body: append([]byte(nil), req.Body()...),
		}
		u.mu.Lock()
		u.reqs = append(u.reqs, s)
		u.mu.Unlock()
		resp := u.respond(s)
		if resp == "" {
			return
		}
		if _, err := io.WriteString(c, resp); err != nil {
			return
		}
	}
}

// Seen returns the requests received so far.
func (u *rawUpstream) Seen() []seen {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]seen(nil), u.reqs...)
}

// ok answers 200 with body "from NAME".
func ok(name string) func(seen) string {
	body := "from " + name
	return func(seen) string {
		return "HTTP/1.1 200 OK\r\nContent-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n" + body
	}
}

// newProxy makes a proxy, closed at cleanup.
func newProxy(t testing.TB, cfg server.ProxyConfig) *server.Proxy {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = slogTo(io.Discard)
	}
	if cfg.HealthInterval == 0 {
		cfg.HealthInterval = time.Hour // no health check unless a test asks for one
	}
	p, err := server.NewProxy(cfg)
	require.NoError(t, err)
	t.Cleanup(func() { p.Close() })
	return p
}

// startProxy serves p behind a server that streams request bodies, with
// next serving "next" for what no route takes.
func startProxy(t testing.TB, p *server.Proxy) *testServer {
	t.Helper()
	next := func(ctx *fasthttp.RequestCtx) { ctx.WriteString("next") }
	return start(t, server.Config{StreamRequestBody: true, Metrics: p.WritePrometheus}, p.Handler(next))
}

// proxyExchange writes a raw request on a new TLS connection to ts and returns
// the response's head as on the wire and its body.
func proxyExchange(t testing.TB, ts *testServer, req string) (head string, resp *http.Response, body string) {
	t.Helper()
	c := ts.Dial(t, nil)
	require.NoError(t, c.SetDeadline(time.Now().Add(10*time.Second)))
	_, err := io.WriteString(c, req)
	require.NoError(t, err)
	br := bufio.NewReader(c)
	var h strings.Builder
	for {
		line, err := br.ReadString('\n')
		require.NoError(t, err, "response head so far: %q", h.String())
		h.WriteString(line)
		if line == "\r\n" {
			break
		}
	}
	method, _, _ := strings.Cut(req, " ")
	resp, err = http.ReadResponse(bufio.NewReader(io.MultiReader(strings.NewReader(h.String()), br)), &http.Request{Method: method})
	require.NoError(t, err)
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return h.String(), resp, string(b)
}

// headLines returns the values of the head's lines named name.
func headLines(head, name string) []string {
	return seen{Head: head}.header(name)
}

func TestProxyForwarding(t *testing.T) {
	up := newRawUpstream(t, func(seen) string {
		return "HTTP/1.1 201 Created\r\n" +
			"Server: upstream/1.0\r\n" +
			"Connection: keep-alive, X-Resp-Hop\r\n" +
			"Keep-Alive: timeout=5\r\n" +
			"X-Resp-Hop: secret\r\n" +
			"Proxy-Authenticate: Basic realm=up\r\n" +
			"Upgrade: h2c\r\n" +
			"Trailer: X-Sum\r\n" +
			"X-Resp-Kept: yes\r\n" +
			"Content-Type: text/plain\r\n" +
			"Transfer-Encoding: chunked\r\n\r\n" +
			"5\r\nhello\r\n0\r\nX-Sum: 1\r\n\r\n"
	})
	p := newProxy(t, server.ProxyConfig{Routes: []server.ProxyRoute{{Path: "/", Upstreams: []string{up.URL()}}}})
	ts := startProxy(t, p)

	head, resp, body := proxyExchange(t, ts, "POST /a/b?q=1&r=%2F HTTP/1.1\r\n"+
		"Host: example.com:8443\r\n"+
		"Connection: keep-alive, X-Hop, x-other-hop\r\n"+
		"Keep-Alive: timeout=5\r\n"+
		"TE: trailers\r\n"+
		"Proxy-Authorization: Basic Zm9vOmJhcg==\r\n"+
		"Proxy-Connection: keep-alive\r\n"+
		"Upgrade: websocket\r\n"+
		"X-Hop: 1\r\n"+
		"X-Other-Hop: 2\r\n"+
		"X-Kept: yes\r\n"+
		"X-Forwarded-For: 203.0.113.7\r\n"+
		"Forwarded: for=203.0.113.7\r\n"+
		"Content-Length: 5\r\n\r\n"+
		"hello")

	seen := up.Seen()
	require.Len(t, seen, 1)
	got := seen[0]
	assert.Equal(t, "POST", got.Method)
	assert.Equal(t, "/a/b?q=1&r=%2F", got.URI, "the request URI as the client sent it")
	assert.Equal(t, "example.com:8443", got.Host, "Host passed through")
	assert.Equal(t, "hello", string(got.Body))
	assert.Equal(t, []string{"5"}, got.header("Content-Length"))
	assert.Equal(t, []string{"yes"}, got.header("X-Kept"))
	assert.Equal(t, []string{"203.0.113.7, 127.0.0.1"}, got.header("X-Forwarded-For"))
	assert.Equal(t, []string{"https"}, got.header("X-Forwarded-Proto"))
	assert.Equal(t, []string{"example.com:8443"}, got.header("X-Forwarded-Host"))
	assert.Equal(t, []string{`for=203.0.113.7, for=127.0.0.1;proto=https;host="example.com:8443"`}, got.header("Forwarded"))
	for _, name := range []string{"Connection", "Keep-Alive", "TE", "Trailer", "Transfer-Encoding", "Upgrade",
		"Proxy-Connection", "Proxy-Authorization", "X-Hop", "X-Other-Hop", "Expect"} {
		assert.Empty(t, got.header(name), "request header %s reached the upstream; head:\n%s", name, got.Head)
	}

	assert.Equal(t, http.StatusCreated, resp.StatusCode)
	assert.Equal(t, "hello", body)
	assert.Equal(t, []string{"fastserve"}, headLines(head, "Server"), "the server's own Server header")
	assert.Equal(t, []string{"yes"}, headLines(head, "X-Resp-Kept"))
	assert.Equal(t, []string{"text/plain"}, headLines(head, "Content-Type"))
	assert.Len(t, headLines(head, "Date"), 1, "one Date; head:\n%s", head)
	for _, name := range []string{"Connection", "Keep-Alive", "X-Resp-Hop", "Proxy-Authenticate", "Upgrade", "Trailer"} {
		assert.Empty(t, headLines(head, name), "response header %s reached the client; head:\n%s", name, head)
	}
}

func TestProxyForwardedIPv6(t *testing.T) {
	up := newRawUpstream(t, ok("up"))
	p := newProxy(t, server.ProxyConfig{Routes: []server.ProxyRoute{{Path: "/", Upstreams: []string{up.URL()}}}})
	if ln, err := net.Listen("tcp6", "[::1]:0"); err != nil {
		t.Skipf("no IPv6 loopback: %v", err)
	} else {
		ln.Close()
	}
	ts := start(t, server.Config{Addr: "[::1]:0"}, p.Handler(nil))
	c := ts.Dial(t, nil)
	resp := roundTrip(t, c, bufio.NewReader(c), "GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
	assert.Equal(t, "from up", string(resp.Body()))
	require.Len(t, up.Seen(), 1)
	got := up.Seen()[0]
	assert.Equal(t, []string{"::1"}, got.header("X-Forwarded-For"))
	assert.Equal(t, []string{`for="[::1]";proto=https;host=localhost`}, got.header("Forwarded"))
}

func TestProxyHostHeader(t *testing.T) {
	up := newRawUpstream(t, ok("up"))
	for _, tc := range []struct {
		mode string
		want string
	}{
		{"", "client.example"},
		{"pass", "client.example"},
		{"upstream", up.Addr()},
		{"backend.internal:8080", "backend.internal:8080"},
	} {
		t.Run("mode="+tc.mode, func(t *testing.T) {
			before := len(up.Seen())
			p := newProxy(t, server.ProxyConfig{
				Routes:     []server.ProxyRoute{{Path: "/", Upstreams: []string{up.URL()}}},
				HostHeader: tc.mode,
			})
			ts := startProxy(t, p)
			_, resp, body := proxyExchange(t, ts, "GET / HTTP/1.1\r\nHost: client.example\r\n\r\n")
			assert.Equal(t, http.StatusOK, resp.StatusCode)
			assert.Equal(t, "from up", body)
			got := up.Seen()[before:]
			require.Len(t, got, 1)
			assert.Equal(t, []string{tc.want}, got[0].header("Host"))
			assert.Equal(t, []string{"client.example"}, got[0].header("X-Forwarded-Host"))
		})
	}
}

// closedAddr returns a loopback address that was bound and closed:
// connecting to it is refused.
func closedAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	return addr
}

// metricsText is what the server's /metrics would say.
func metricsText(ts *testServer) []string {
	var b strings.Builder
	ts.WritePrometheus(&b)
	return strings.Split(b.String(), "\n")
}

func TestProxyRefused(t *testing.T) {
	addr := closedAddr(t)
	p := newProxy(t, server.ProxyConfig{Routes: []server.ProxyRoute{{Path: "/", Upstreams: []string{"http://" + addr}}}})
	ts := startProxy(t, p)
	for range 2 { // the second finds the upstream down, and tries it all the same
		_, resp, body := proxyExchange(t, ts, "GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
		assert.Equal(t, http.StatusBadGateway, resp.StatusCode)
		assert.Equal(t, "502 Bad Gateway: upstream "+addr+" refused the connection\n", body)
		assert.Equal(t, "fastserve", resp.Header.Get("Server"))
	}
	st := p.Stats().Upstreams
	require.Len(t, st, 1)
	assert.False(t, st[0].Up)
	assert.Equal(t, uint64(2), st[0].Errors.Refused)
	lines := metricsText(ts)
	assert.Contains(t, lines, `fastserve_upstream_up{upstream="http://`+addr+`"} 0`)
	assert.Contains(t, lines, `fastserve_upstream_errors_total{upstream="http://`+addr+`",kind="refused"} 2`)
	assert.Contains(t, lines, `fastserve_responses_total{class="5xx"} 2`)
}

func TestProxyTimeout(t *testing.T) {
	release := make(chan struct{})
	stalled := newRawUpstream(t, func(seen) string {
		<-release // read the request, answer nothing
		return ""
	})
	t.Cleanup(func() { close(release) }) // runs before the upstream's Close
	p := newProxy(t, server.ProxyConfig{
		Routes:      []server.ProxyRoute{{Path: "/", Upstreams: []string{stalled.URL()}}},
		ReadTimeout: 300 * time.Millisecond,
	})
	ts := startProxy(t, p)
	begin := time.Now()
	_, resp, body := proxyExchange(t, ts, "GET /slow HTTP/1.1\r\nHost: localhost\r\n\r\n")
	took := time.Since(begin)
	assert.Equal(t, http.StatusGatewayTimeout, resp.StatusCode)
	assert.Equal(t, "504 Gateway Timeout: upstream "+stalled.Addr()+" did not answer within 300ms\n", body)
	assert.GreaterOrEqual(t, took, 300*time.Millisecond)
	assert.Less(t, took, 3*time.Second)
	assert.Len(t, stalled.Seen(), 1, "a timeout is not retried")
	st := p.Stats().Upstreams[0]
	assert.Equal(t, uint64(1), st.Errors.Timeout)
	assert.True(t, st.Up, "a slow upstream is not marked down")
}
