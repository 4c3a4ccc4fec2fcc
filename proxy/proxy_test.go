package proxy_test

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/valyala/fasthttp"

	"github.com/fastserve/fastserve/internal/tlstest"
	"github.com/fastserve/fastserve/proxy"
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

	accepted atomic.Int64 // connections accepted so far
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
		u.accepted.Add(1)
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
func newProxy(t testing.TB, cfg proxy.Config) *proxy.Proxy {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = slogTo(io.Discard)
	}
	if cfg.HealthInterval == 0 {
		cfg.HealthInterval = time.Hour // no health check unless a test asks for one
	}
	p, err := proxy.New(cfg)
	require.NoError(t, err)
	t.Cleanup(func() { p.Close() })
	return p
}

// startProxy serves p over TLS from a fasthttp server that streams
// request bodies, as the engine does for a proxy, with next serving
// "next" for what no route takes.
func startProxy(t testing.TB, p *proxy.Proxy) *tlstest.Server {
	t.Helper()
	next := func(ctx *fasthttp.RequestCtx) { ctx.WriteString("next") }
	return tlstest.Start(t, &fasthttp.Server{Handler: p.Handler(next), StreamRequestBody: true, Name: "fastserve", Logger: quiet{}})
}

type quiet struct{}

func (quiet) Printf(string, ...any) {}

func slogTo(w io.Writer) *slog.Logger { return slog.New(slog.NewTextHandler(w, nil)) }

// proxyExchange writes a raw request on a new TLS connection to ts and returns
// the response's head as on the wire and its body.
func proxyExchange(t testing.TB, ts *tlstest.Server, req string) (head string, resp *http.Response, body string) {
	t.Helper()
	c := ts.Dial(t)
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
	p := newProxy(t, proxy.Config{Routes: []proxy.Route{{Path: "/", Upstreams: []string{up.URL()}}}})
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
	p := newProxy(t, proxy.Config{Routes: []proxy.Route{{Path: "/", Upstreams: []string{up.URL()}}}})
	if ln, err := net.Listen("tcp6", "[::1]:0"); err != nil {
		t.Skipf("no IPv6 loopback: %v", err)
	} else {
		ln.Close()
	}
	ts := tlstest.StartOn(t, "[::1]:0", &fasthttp.Server{Handler: p.Handler(nil), StreamRequestBody: true, Logger: quiet{}})
	c := ts.Dial(t)
	resp := tlstest.RoundTrip(t, c, bufio.NewReader(c), "GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
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
			p := newProxy(t, proxy.Config{
				Routes:     []proxy.Route{{Path: "/", Upstreams: []string{up.URL()}}},
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

// metricsText is what the proxy adds to /metrics.
func metricsText(p *proxy.Proxy) []string {
	var b strings.Builder
	p.WritePrometheus(&b)
	return strings.Split(b.String(), "\n")
}

func TestProxyRefused(t *testing.T) {
	addr := closedAddr(t)
	p := newProxy(t, proxy.Config{Routes: []proxy.Route{{Path: "/", Upstreams: []string{"http://" + addr}}}})
	ts := startProxy(t, p)
	for range 2 { // the second finds the upstream down, and tries it all the same
		_, resp, body := proxyExchange(t, ts, "GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
		assert.Equal(t, http.StatusBadGateway, resp.StatusCode)
		assert.Equal(t, "502 Bad Gateway\n", body, "no internal address to the client")
		assert.Equal(t, "fastserve", resp.Header.Get("Server"))
	}
	st := p.Stats().Upstreams
	require.Len(t, st, 1)
	assert.False(t, st[0].Up)
	assert.Equal(t, uint64(2), st[0].Errors.Refused)
	lines := metricsText(p)
	assert.Contains(t, lines, `fastserve_upstream_up{upstream="http://`+addr+`"} 0`)
	assert.Contains(t, lines, `fastserve_upstream_errors_total{upstream="http://`+addr+`",kind="refused"} 2`)
}

func TestProxyTimeout(t *testing.T) {
	release := make(chan struct{})
	stalled := newRawUpstream(t, func(seen) string {
		<-release // read the request, answer nothing
		return ""
	})
	t.Cleanup(func() { close(release) }) // runs before the upstream's Close
	p := newProxy(t, proxy.Config{
		Routes:       []proxy.Route{{Path: "/", Upstreams: []string{stalled.URL()}}},
		ReadTimeout:  300 * time.Millisecond,
		ErrorDetails: true,
	})
	ts := startProxy(t, p)
	begin := time.Now()
	_, resp, body := proxyExchange(t, ts, "GET /slow HTTP/1.1\r\nHost: localhost\r\n\r\n")
	took := time.Since(begin)
	assert.Equal(t, http.StatusGatewayTimeout, resp.StatusCode)
	assert.Equal(t, "504 Gateway Timeout: upstream "+stalled.Addr()+" did not answer within 300ms\n", body, "with ErrorDetails")
	assert.GreaterOrEqual(t, took, 300*time.Millisecond)
	assert.Less(t, took, 3*time.Second)
	assert.Len(t, stalled.Seen(), 1, "a timeout is not retried")
	st := p.Stats().Upstreams[0]
	assert.Equal(t, uint64(1), st.Errors.Timeout)
	assert.True(t, st.Up, "a slow upstream is not marked down")
}

func TestProxyRoutes(t *testing.T) {
	api, v2 := newRawUpstream(t, ok("api")), newRawUpstream(t, ok("v2"))
	p := newProxy(t, proxy.Config{Routes: []proxy.Route{
		{Path: "/api/", Upstreams: []string{api.URL()}},
		{Path: "/api/v2/", Upstreams: []string{v2.URL()}},
	}})
	ts := startProxy(t, p)
	for _, tc := range []struct{ path, want string }{
		{"/api/users", "from api"},
		{"/api/", "from api"},
		{"/api/v2/users", "from v2"},
		{"/api/v2", "from v2"}, // a prefix ending in "/" takes the path without it
		{"/api", "from api"},
		{"/", "next"},
		{"/api/../etc", "next"}, // matched as normalized: no route takes /etc
	} {
		_, resp, body := proxyExchange(t, ts, "GET "+tc.path+" HTTP/1.1\r\nHost: localhost\r\n\r\n")
		assert.Equal(t, http.StatusOK, resp.StatusCode, tc.path)
		assert.Equal(t, tc.want, body, tc.path)
	}
	// A route would take it as normalized, but its upstream would get
	// the dot segment: refused (TestAmbiguousPathsRefused).
	_, resp, _ := proxyExchange(t, ts, "GET /static/../api/x HTTP/1.1\r\nHost: localhost\r\n\r\n")
	assert.Equal(t, http.StatusBadRequest, resp.StatusCode)
	assert.Len(t, api.Seen(), 3)
	assert.Len(t, v2.Seen(), 2)
}

func TestProxyRetry(t *testing.T) {
	t.Run("refused", func(t *testing.T) {
		dead := "http://" + closedAddr(t)
		good := newRawUpstream(t, ok("good"))
		p := newProxy(t, proxy.Config{Routes: []proxy.Route{{Path: "/", Upstreams: []string{dead, good.URL()}}}})
		ts := startProxy(t, p)
		// The balancer takes turns on ties: one of the first two requests
		// goes to the dead upstream first, which is then marked down.
		for i, req := range []string{
			"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n",
			"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n",
			"POST / HTTP/1.1\r\nHost: localhost\r\nContent-Length: 3\r\n\r\nabc", // not sent: retried too
			"POST / HTTP/1.1\r\nHost: localhost\r\nContent-Length: 3\r\n\r\nabc",
		} {
			_, resp, body := proxyExchange(t, ts, req)
			assert.Equal(t, http.StatusOK, resp.StatusCode, "request %d", i)
			assert.Equal(t, "from good", body, "request %d", i)
		}
		st := p.Stats().Upstreams
		require.Len(t, st, 2)
		assert.Equal(t, uint64(1), st[0].Errors.Refused, "tried once, then down")
		assert.False(t, st[0].Up)
		assert.Equal(t, uint64(4), st[1].Requests)
		assert.Len(t, good.Seen(), 4)
	})
	t.Run("reset", func(t *testing.T) {
		// closer reads each request and closes the connection unanswered.
		closer := newRawUpstream(t, func(seen) string { return "" })
		good := newRawUpstream(t, ok("good"))
		p := newProxy(t, proxy.Config{Routes: []proxy.Route{{Path: "/", Upstreams: []string{closer.URL(), good.URL()}}}})
		ts := startProxy(t, p)
		for i := range 2 {
			_, resp, body := proxyExchange(t, ts, "GET /get HTTP/1.1\r\nHost: localhost\r\n\r\n")
			assert.Equal(t, http.StatusOK, resp.StatusCode, "GET %d", i)
			assert.Equal(t, "from good", body, "GET %d", i)
		}
		var statuses []int
		for range 2 {
			_, resp, body := proxyExchange(t, ts, "POST /post HTTP/1.1\r\nHost: localhost\r\nContent-Length: 3\r\n\r\nabc")
			statuses = append(statuses, resp.StatusCode)
			if resp.StatusCode == http.StatusBadGateway {
				assert.Equal(t, "502 Bad Gateway\n", body)
			}
		}
		assert.ElementsMatch(t, []int{http.StatusOK, http.StatusBadGateway}, statuses, "the POST that reached closer is not retried")
		var closerGot, goodGot []string
		for _, s := range closer.Seen() {
			closerGot = append(closerGot, s.Method+" "+s.URI)
		}
		for _, s := range good.Seen() {
			goodGot = append(goodGot, s.Method+" "+s.URI)
		}
		assert.Equal(t, []string{"GET /get", "POST /post"}, closerGot)
		assert.Equal(t, []string{"GET /get", "GET /get", "POST /post"}, goodGot)
		st := p.Stats().Upstreams
		assert.Equal(t, uint64(2), st[0].Errors.Reset)
		assert.True(t, st[0].Up, "a broken connection does not mark the upstream down")
	})
}

func TestProxyHealthCheck(t *testing.T) {
	var checks atomic.Int64
	var paths sync.Map
	handler := func(ctx *fasthttp.RequestCtx) {
		if string(ctx.Path()) == "/healthz" {
			checks.Add(1)
			paths.Store(string(ctx.Request.Header.UserAgent()), true)
		}
		ctx.WriteString("up")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	serveOn := func(ln net.Listener) (stop func()) {
		srv := &fasthttp.Server{Handler: handler, CloseOnShutdown: true}
		done := make(chan error, 1)
		go func() { done <- srv.Serve(ln) }()
		return func() {
			require.NoError(t, srv.Shutdown())
			require.NoError(t, <-done)
		}
	}
	stop := serveOn(ln)

	p := newProxy(t, proxy.Config{
		Routes:         []proxy.Route{{Path: "/", Upstreams: []string{"http://" + addr}}},
		HealthPath:     "/healthz",
		HealthInterval: 50 * time.Millisecond,
	})
	ts := startProxy(t, p)
	up := func() bool { return p.Stats().Upstreams[0].Up }
	require.True(t, eventually(2*time.Second, func() bool { return checks.Load() >= 2 }), "health checks reach /healthz")
	_, found := paths.Load("fastserve-health-check")
	assert.True(t, found)

	stop()
	require.True(t, eventually(2*time.Second, func() bool { return !up() }), "marked down within 2s of the upstream stopping")
	assert.Contains(t, metricsText(p), `fastserve_upstream_up{upstream="http://`+addr+`"} 0`)

	ln, err = net.Listen("tcp", addr)
	require.NoError(t, err, "the same port again")
	stop = serveOn(ln)
	defer stop()
	require.True(t, eventually(2*time.Second, up), "marked up within 2s of the upstream coming back")
	assert.Contains(t, metricsText(p), `fastserve_upstream_up{upstream="http://`+addr+`"} 1`)
	_, resp, body := proxyExchange(t, ts, "GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, "up", body)
	st := p.Stats().Upstreams[0]
	assert.NotZero(t, st.HealthCheckFailures)
	assert.Greater(t, st.HealthChecks, st.HealthCheckFailures)
}

// eventually polls cond every 10 ms for up to d.
func eventually(d time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(10 * time.Millisecond)
	}
	return true
}

// TestProxyStreamsBodies: with StreamRequestBodies, an 8 MiB upload
// reaches the upstream while the client is still sending it, and an 8
// MiB download reaches the client while the upstream is still sending it. A proxy that held either whole
// would stall each side waiting for the other, and fail within 5 s.
func TestProxyStreamsBodies(t *testing.T) {
	const size = 8 << 20
	var received, delivered atomic.Int64
	wait := func(n *atomic.Int64, atLeast int64) bool {
		return eventually(5*time.Second, func() bool { return n.Load() >= atLeast })
	}
	upstream := &fasthttp.Server{
		StreamRequestBody: true,
		Handler: func(ctx *fasthttp.RequestCtx) {
			switch string(ctx.Path()) {
			case "/upload":
				h := sha256.New()
				n, err := io.Copy(io.MultiWriter(h, writerFunc(func(b []byte) { received.Add(int64(len(b))) })), ctx.RequestBodyStream())
				fmt.Fprintf(ctx, "%d %x %v", n, h.Sum(nil), err)
			case "/download":
				ctx.SetBodyStreamWriter(func(w *bufio.Writer) {
					half := bytes.Repeat([]byte("d"), size/2)
					w.Write(half)
					w.Flush()
					if !wait(&delivered, 1<<20) {
						return // the client got nothing: the proxy is buffering
					}
					w.Write(half)
				})
			}
		},
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	done := make(chan error, 1)
	go func() { done <- upstream.Serve(ln) }()
	t.Cleanup(func() {
		require.NoError(t, upstream.Shutdown())
		require.NoError(t, <-done)
	})
	p := newProxy(t, proxy.Config{Routes: []proxy.Route{{Path: "/", Upstreams: []string{"http://" + ln.Addr().String()}}}, StreamRequestBodies: true})
	ts := tlstest.Start(t, &fasthttp.Server{Handler: p.Handler(nil), StreamRequestBody: true, MaxRequestBodySize: 16 << 20, Logger: quiet{}})

	t.Run("upload", func(t *testing.T) {
		c := ts.Dial(t)
		require.NoError(t, c.SetDeadline(time.Now().Add(20*time.Second)))
		body := bytes.Repeat([]byte("u"), size)
		_, err := fmt.Fprintf(c, "POST /upload HTTP/1.1\r\nHost: localhost\r\nContent-Length: %d\r\n\r\n", size)
		require.NoError(t, err)
		_, err = c.Write(body[:size/2])
		require.NoError(t, err)
		require.True(t, wait(&received, 1<<20), "the upstream got %d bytes of the first half: the proxy holds the body", received.Load())
		_, err = c.Write(body[size/2:])
		require.NoError(t, err)
		resp := &fasthttp.Response{}
		require.NoError(t, resp.Read(bufio.NewReader(c)))
		assert.Equal(t, fasthttp.StatusOK, resp.StatusCode())
		assert.Equal(t, fmt.Sprintf("%d %x <nil>", size, sha256.Sum256(body)), string(resp.Body()))
	})
	t.Run("download", func(t *testing.T) {
		c := ts.Dial(t)
		require.NoError(t, c.SetDeadline(time.Now().Add(20*time.Second)))
		_, err := io.WriteString(c, "GET /download HTTP/1.1\r\nHost: localhost\r\n\r\n")
		require.NoError(t, err)
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		require.NoError(t, err)
		defer resp.Body.Close()
		assert.Equal(t, []string{"chunked"}, resp.TransferEncoding)
		n, err := io.Copy(writerFunc(func(b []byte) { delivered.Add(int64(len(b))) }), resp.Body)
		require.NoError(t, err)
		assert.Equal(t, int64(size), n)
	})
}

type writerFunc func([]byte)

func (f writerFunc) Write(b []byte) (int, error) { f(b); return len(b), nil }

func TestProxyMetrics(t *testing.T) {
	up := newRawUpstream(t, func(s seen) string {
		if s.URI == "/fail" {
			return "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n"
		}
		return "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
	})
	p := newProxy(t, proxy.Config{Routes: []proxy.Route{{Path: "/", Upstreams: []string{up.URL()}}}})
	ts := startProxy(t, p)
	for _, path := range []string{"/", "/", "/fail"} {
		proxyExchange(t, ts, "GET "+path+" HTTP/1.1\r\nHost: localhost\r\n\r\n")
	}
	l := `upstream="` + up.URL() + `"`
	lines := metricsText(p)
	for _, want := range []string{
		"fastserve_upstream_up{" + l + "} 1",
		"fastserve_upstream_requests_total{" + l + "} 3",
		"fastserve_upstream_errors_total{" + l + `,kind="status5xx"} 1`,
		"fastserve_upstream_errors_total{" + l + `,kind="refused"} 0`,
		"fastserve_upstream_errors_total{" + l + `,kind="timeout"} 0`,
		"fastserve_upstream_errors_total{" + l + `,kind="reset"} 0`,
		"fastserve_upstream_response_seconds_bucket{" + l + `,le="+Inf"} 3`,
		"fastserve_upstream_response_seconds_count{" + l + "} 3",
		"fastserve_upstream_connections{" + l + "} 1",
	} {
		assert.Contains(t, lines, want)
	}
	assert.Len(t, p.Stats().Upstreams[0].Latency.Counts, 12)
}

func TestProxyConfigErrors(t *testing.T) {
	for _, tc := range []struct {
		name  string
		cfg   proxy.Config
		field string
		text  string
	}{
		{"no routes", proxy.Config{}, "Routes", "proxy: Routes must be at least one route, got none"},
		{"relative path", proxy.Config{Routes: []proxy.Route{{Path: "api/", Upstreams: []string{"http://a"}}}},
			"Routes[0].Path", `proxy: Routes[0].Path must be a path prefix starting with "/", such as "/api/", got "api/"`},
		{"no upstreams", proxy.Config{Routes: []proxy.Route{{Path: "/"}}},
			"Routes[0].Upstreams", "proxy: Routes[0].Upstreams must be at least one http:// or https:// URL, got none"},
		{"ftp", proxy.Config{Routes: []proxy.Route{{Path: "/", Upstreams: []string{"ftp://a"}}}},
			"Routes[0].Upstreams[0]", `proxy: Routes[0].Upstreams[0] must be an http:// or https:// URL with a host and no path, such as "http://127.0.0.1:9001", got "ftp://a"`},
		{"path in URL", proxy.Config{Routes: []proxy.Route{{Path: "/", Upstreams: []string{"http://a/v1"}}}},
			"Routes[0].Upstreams[0]", ""},
		{"duplicate route", proxy.Config{Routes: []proxy.Route{{Path: "/", Upstreams: []string{"http://a"}}, {Path: "/", Upstreams: []string{"http://b"}}}},
			"Routes[1].Path", ""},
		{"host header", proxy.Config{Routes: []proxy.Route{{Path: "/", Upstreams: []string{"http://a"}}}, HostHeader: "a b"},
			"HostHeader", `proxy: HostHeader must be "pass", "upstream" or a host[:port] to send, got "a b"`},
		{"timeout", proxy.Config{Routes: []proxy.Route{{Path: "/", Upstreams: []string{"http://a"}}}, ReadTimeout: -time.Second},
			"ReadTimeout", "proxy: ReadTimeout must be 1ms or more, or 0 for 1m0s, got -1s"},
		{"max conns", proxy.Config{Routes: []proxy.Route{{Path: "/", Upstreams: []string{"http://a"}}}, MaxConns: -1},
			"MaxConns", "proxy: MaxConns must be 1 or more, or 0 for 512, got -1"},
		{"health path", proxy.Config{Routes: []proxy.Route{{Path: "/", Upstreams: []string{"http://a"}}}, HealthPath: "healthz"},
			"HealthPath", `proxy: HealthPath must be a path starting with "/", such as "/healthz", got "healthz"`},
		{"body temp dir", proxy.Config{Routes: []proxy.Route{{Path: "/", Upstreams: []string{"http://a"}}}, BodyTempDir: "/nonexistent/fastserve"},
			"BodyTempDir", `proxy: BodyTempDir must be a directory the server can make files in (no such file or directory), got "/nonexistent/fastserve"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := proxy.New(tc.cfg)
			var ce *proxy.ConfigError
			require.ErrorAs(t, err, &ce)
			assert.Equal(t, tc.field, ce.Field)
			if tc.text != "" {
				assert.EqualError(t, err, tc.text)
			}
			assert.Equal(t, err.Error(), tc.cfg.Validate().Error())
		})
	}
}

// BenchmarkProxy measures a GET through the proxy over real loopback
// sockets: a keep-alive TLS client, the server, the proxy, a plain
// fasthttp upstream. via=none is the same client and server answering
// by itself: the difference is the proxy's cost. allocs/op counts every
// goroutine of the process (client, TLS, server, upstream).
func BenchmarkProxy(b *testing.B) {
	body := []byte("hello, world!")
	upstream := &fasthttp.Server{Handler: func(ctx *fasthttp.RequestCtx) { ctx.SetBody(body) }}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(b, err)
	done := make(chan error, 1)
	go func() { done <- upstream.Serve(ln) }()
	b.Cleanup(func() {
		upstream.Shutdown()
		<-done
	})
	p := newProxy(b, proxy.Config{Routes: []proxy.Route{{Path: "/", Upstreams: []string{"http://" + ln.Addr().String()}}}})

	for _, bc := range []struct {
		via string
		h   fasthttp.RequestHandler
	}{
		{"none", func(ctx *fasthttp.RequestCtx) { ctx.SetBody(body) }},
		{"proxy", p.Handler(nil)},
	} {
		b.Run("via="+bc.via+"/body=13B", func(b *testing.B) {
			ts := tlstest.Start(b, &fasthttp.Server{Handler: bc.h, StreamRequestBody: true, Logger: quiet{}})
			client := &fasthttp.HostClient{Addr: ts.Addr, IsTLS: true, TLSConfig: ts.TLSConfig(), MaxConns: 1}
			b.Cleanup(client.CloseIdleConnections)
			req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
			defer fasthttp.ReleaseRequest(req)
			defer fasthttp.ReleaseResponse(resp)
			req.SetRequestURI("https://localhost/")
			for range 100 { // warm the pools and the upstream connection
				require.NoError(b, client.Do(req, resp))
			}
			b.ReportAllocs()
			b.SetBytes(int64(len(body)))
			start := time.Now()
			n := 0
			for b.Loop() {
				if err := client.Do(req, resp); err != nil || resp.StatusCode() != 200 || !bytes.Equal(resp.Body(), body) {
					b.Fatalf("status %d, body %q, err %v", resp.StatusCode(), resp.Body(), err)
				}
				n++
			}
			b.ReportMetric(float64(n)/time.Since(start).Seconds(), "req/s")
		})
	}
}

// TestProxyHead: a HEAD's answer keeps the upstream's Content-Length and
// has no body; the connection serves the next request.
func TestProxyHead(t *testing.T) {
	up := newRawUpstream(t, func(s seen) string {
		return "HTTP/1.1 200 OK\r\nContent-Length: 1234\r\n\r\n" + map[bool]string{true: "", false: strings.Repeat("x", 1234)}[s.Method == "HEAD"]
	})
	p := newProxy(t, proxy.Config{Routes: []proxy.Route{{Path: "/", Upstreams: []string{up.URL()}}}})
	ts := startProxy(t, p)
	c := ts.Dial(t)
	br := bufio.NewReader(c)
	require.NoError(t, c.SetDeadline(time.Now().Add(5*time.Second)))
	_, err := io.WriteString(c, "HEAD / HTTP/1.1\r\nHost: localhost\r\n\r\n")
	require.NoError(t, err)
	resp, err := http.ReadResponse(br, &http.Request{Method: "HEAD"})
	require.NoError(t, err)
	assert.Equal(t, int64(1234), resp.ContentLength)
	assert.Equal(t, 0, br.Buffered(), "no body after a HEAD's head")
	get := tlstest.RoundTrip(t, c, br, "GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
	assert.Equal(t, 1234, len(get.Body()))
}

// TestProxyForwardingLinesOnce: a client that sends the forwarding
// headers on several lines cannot have the upstream read a value placed
// after fastserve's: each reaches it as one line, the client's values
// first, fastserve's last; Proto and Host are fastserve's alone.
func TestProxyForwardingLinesOnce(t *testing.T) {
	up := newRawUpstream(t, ok("up"))
	p := newProxy(t, proxy.Config{Routes: []proxy.Route{{Path: "/", Upstreams: []string{up.URL()}}}})
	ts := startProxy(t, p)
	proxyExchange(t, ts, "GET / HTTP/1.1\r\nHost: example.com\r\n"+
		"X-Forwarded-For: 198.51.100.1\r\n"+
		"X-Forwarded-For: 6.6.6.6\r\n"+
		"X-Forwarded-Proto: http\r\n"+
		"X-Forwarded-Proto: http\r\n"+
		"X-Forwarded-Host: evil.example\r\n"+
		"Forwarded: for=1.1.1.1\r\n"+
		"Forwarded: for=6.6.6.6\r\n\r\n")
	got := up.Seen()[0]
	assert.Equal(t, []string{"198.51.100.1, 6.6.6.6, 127.0.0.1"}, got.header("X-Forwarded-For"))
	assert.Equal(t, []string{"https"}, got.header("X-Forwarded-Proto"))
	assert.Equal(t, []string{"example.com"}, got.header("X-Forwarded-Host"))
	assert.Equal(t, []string{"for=1.1.1.1, for=6.6.6.6, for=127.0.0.1;proto=https;host=example.com"}, got.header("Forwarded"))
}

// TestProxyConnectionNamesFraming: a Connection header that names
// Content-Length or Host does not make the proxy drop them, and with them
// the body (before: the upstream got Content-Length: 0 and no body).
func TestProxyConnectionNamesFraming(t *testing.T) {
	up := newRawUpstream(t, func(s seen) string {
		return "HTTP/1.1 200 OK\r\nConnection: Content-Length\r\nContent-Length: 4\r\n\r\npong"
	})
	p := newProxy(t, proxy.Config{Routes: []proxy.Route{{Path: "/", Upstreams: []string{up.URL()}}}})
	ts := startProxy(t, p)
	_, resp, body := proxyExchange(t, ts, "POST / HTTP/1.1\r\nHost: localhost\r\nConnection: Content-Length, Host, X-Hop\r\nX-Hop: 1\r\nContent-Length: 5\r\n\r\nhello")
	got := up.Seen()[0]
	assert.Equal(t, "hello", string(got.Body), "the body reached the upstream")
	assert.Equal(t, []string{"5"}, got.header("Content-Length"))
	assert.Equal(t, "localhost", got.Host)
	assert.Empty(t, got.header("X-Hop"), "a true hop-by-hop option is still dropped")
	assert.Equal(t, 200, resp.StatusCode)
	assert.Equal(t, "pong", body, "the answer keeps its length too")
}

// TestProxyHTTP10Upstream: an HTTP/1.0 upstream that closes its connection
// after each answer gets the client an HTTP/1.1 answer on a connection kept
// alive (before: the client got the upstream's HTTP/1.0 status line).
func TestProxyHTTP10Upstream(t *testing.T) {
	up := newRawUpstream(t, func(seen) string {
		return "HTTP/1.0 404 File not found\r\nConnection: close\r\nContent-Length: 2\r\n\r\nno"
	})
	p := newProxy(t, proxy.Config{Routes: []proxy.Route{{Path: "/", Upstreams: []string{up.URL()}}}})
	ts := startProxy(t, p)
	c := ts.Dial(t)
	br := bufio.NewReader(c)
	for i := range 2 {
		resp := tlstest.RoundTrip(t, c, br, "GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
		assert.Equal(t, "HTTP/1.1", string(resp.Header.Protocol()), "answer %d", i)
		assert.Equal(t, 404, resp.StatusCode())
		assert.False(t, resp.ConnectionClose(), "the client's connection is its own")
		assert.Equal(t, "no", string(resp.Body()))
	}
}
