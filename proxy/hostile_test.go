package proxy_test

// Hostile upstreams (from an adversarial review). Each case makes the one
// upstream connection (MaxConns 1) misbehave on a first request, then
// sends a second request from another client, which must get its own
// answer, promptly: bytes an upstream sends past an answer (a body to a
// HEAD, 204 or 304, bytes past a Content-Length or the last chunk) never
// become another client's answer (before: 8 of 20 cases did).

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/valyala/fasthttp"

	"github.com/fastserve/fastserve/internal/tlstest"
	"github.com/fastserve/fastserve/proxy"
)

// scriptUpstream calls script for each request it reads, with the
// request's URI and method and the raw connection to write to; script
// returns false to close the connection.
type scriptUpstream struct {
	ln    net.Listener
	mu    sync.Mutex
	conns []net.Conn
	wg    sync.WaitGroup
}

func newScriptUpstream(t testing.TB, script func(method, uri string, c net.Conn) bool) *scriptUpstream {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	u := &scriptUpstream{ln: ln}
	u.wg.Add(1)
	go func() {
		defer u.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			u.mu.Lock()
			u.conns = append(u.conns, c)
			u.mu.Unlock()
			u.wg.Add(1)
			go func() {
				defer u.wg.Done()
				defer c.Close()
				br := bufio.NewReader(c)
				for range 100 {
					_ = c.SetDeadline(time.Now().Add(20 * time.Second))
					var req fasthttp.Request
					if err := req.Read(br); err != nil {
						return
					}
					if !script(string(req.Header.Method()), string(req.RequestURI()), c) {
						return
					}
				}
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		u.mu.Lock()
		for _, c := range u.conns {
			c.Close()
		}
		u.mu.Unlock()
		u.wg.Wait()
	})
	return u
}

func (u *scriptUpstream) URL() string { return "http://" + u.ln.Addr().String() }

// exchange sends req on a new TLS connection and returns what came back
// within d, raw.
func exchange(t testing.TB, ts *tlstest.Server, req string, d time.Duration) string {
	c := ts.Dial(t)
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(d))
	_, err := io.WriteString(c, req)
	require.NoError(t, err)
	b, _ := io.ReadAll(c)
	return string(b)
}

const second = "HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nsecond"
const smuggled = "HTTP/1.1 200 OK\r\nContent-Length: 8\r\nX-Evil: 1\r\n\r\nSMUGGLED"

func TestHostileUpstreamNeverAnswersAnotherClient(t *testing.T) {
	later := func(c net.Conn, s string) {
		time.Sleep(50 * time.Millisecond)
		io.WriteString(c, s)
	}
	cases := []struct {
		name   string
		method string
		first  func(c net.Conn) bool
	}{
		{"HEAD with a body sent late", "HEAD", func(c net.Conn) bool {
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 63\r\n\r\n")
			later(c, smuggled)
			return true
		}},
		{"HEAD with a 20 KB body at once", "HEAD", func(c net.Conn) bool {
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 20000\r\n\r\n"+strings.Repeat("x", 20000-len(smuggled))+smuggled)
			return true
		}},
		{"204 with a body sent late", "GET", func(c net.Conn) bool {
			io.WriteString(c, "HTTP/1.1 204 No Content\r\n\r\n")
			later(c, smuggled)
			return true
		}},
		{"304 with a body sent late", "GET", func(c net.Conn) bool {
			io.WriteString(c, "HTTP/1.1 304 Not Modified\r\nContent-Length: 63\r\n\r\n")
			later(c, smuggled)
			return true
		}},
		{"small body longer than its length, late", "GET", func(c net.Conn) bool {
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
			later(c, smuggled)
			return true
		}},
		{"large body longer than its length, late", "GET", func(c net.Conn) bool {
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 20000\r\n\r\n"+strings.Repeat("y", 20000))
			later(c, smuggled)
			return true
		}},
		{"chunked with bytes after the last chunk, late", "GET", func(c net.Conn) bool {
			io.WriteString(c, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n")
			later(c, smuggled)
			return true
		}},
		{"Content-Length 0 then bytes, late", "GET", func(c net.Conn) bool {
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
			later(c, smuggled)
			return true
		}},
		{"100 Continue then 200 with a body, then more", "GET", func(c net.Conn) bool {
			io.WriteString(c, "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
			later(c, smuggled)
			return true
		}},
		{"101 to a request that asked no upgrade", "GET", func(c net.Conn) bool {
			io.WriteString(c, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\nRAW-TUNNEL-BYTES")
			return false
		}},
		{"CL and TE both (CL first)", "GET", func(c net.Conn) bool {
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n")
			return true
		}},
		{"duplicate Content-Length", "GET", func(c net.Conn) bool {
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 30\r\n\r\nok")
			later(c, smuggled)
			return true
		}},
		{"negative Content-Length", "GET", func(c net.Conn) bool {
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\nok")
			return true
		}},
		{"huge Content-Length", "GET", func(c net.Conn) bool {
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999999\r\n\r\nok")
			return true
		}},
		{"HTTP/0.9 garbage", "GET", func(c net.Conn) bool {
			io.WriteString(c, "<html>hello</html>\n")
			return false
		}},
		{"status 042", "GET", func(c net.Conn) bool {
			io.WriteString(c, "HTTP/1.1 042 Odd\r\nContent-Length: 2\r\n\r\nokHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nOK")
			return true
		}},
		{"nine 1xx", "GET", func(c net.Conn) bool {
			io.WriteString(c, strings.Repeat("HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n", 9)+"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
			return true
		}},
		{"short small body then close", "GET", func(c net.Conn) bool {
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nok")
			return false
		}},
		{"short large body then close", "GET", func(c net.Conn) bool {
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 30000\r\n\r\n"+strings.Repeat("z", 20000))
			return false
		}},
		{"head split into 1-byte packets", "GET", func(c net.Conn) bool {
			s := "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
			for i := range len(s) {
				io.WriteString(c, s[i:i+1])
				time.Sleep(2 * time.Millisecond)
			}
			return true
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var n sync.Mutex
			count := 0
			up := newScriptUpstream(t, func(method, uri string, c net.Conn) bool {
				n.Lock()
				count++
				n.Unlock()
				if uri == "/first" {
					return tc.first(c)
				}
				io.WriteString(c, second)
				return true
			})
			p := newProxy(t, proxy.Config{
				Routes:         []proxy.Route{{Path: "/", Upstreams: []string{up.URL()}}},
				MaxConns:       1,
				ConnectTimeout: time.Second,
				ReadTimeout:    2 * time.Second,
			})
			ts := startProxy(t, p)
			got1 := exchange(t, ts, tc.method+" /first HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", 3*time.Second)
			t.Logf("first client got: %q", trunc(got1))
			time.Sleep(150 * time.Millisecond) // the late bytes arrive
			start := time.Now()
			got2 := exchange(t, ts, "GET /second HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", 3*time.Second)
			t.Logf("second client got after %v: %q", time.Since(start).Round(time.Millisecond), trunc(got2))
			if !strings.HasSuffix(got2, "second") {
				t.Errorf("second client did not get its answer: %q", trunc(got2))
			}
			if strings.Contains(got2, "SMUGGLED") {
				t.Errorf("RESPONSE SMUGGLED to another client")
			}
			if time.Since(start) > time.Second {
				t.Errorf("second request slow: %v", time.Since(start))
			}
		})
	}
}

func trunc(s string) string {
	if len(s) > 300 {
		return s[:150] + "..." + s[len(s)-150:]
	}
	return s
}

// TestClientGoneWhileHeadDribbles: an upstream that sends its head one
// byte every 100 ms (under the 250 ms check) keeps its connection, and
// MaxConns 1's only slot, long after the client left.
func TestClientGoneWhileHeadDribbles(t *testing.T) {
	closed := make(chan time.Duration, 1)
	var sent time.Time
	up := newScriptUpstream(t, func(method, uri string, c net.Conn) bool {
		if uri != "/dribble" {
			io.WriteString(c, second)
			return true
		}
		sent = time.Now()
		head := "HTTP/1.1 200 OK\r\nX-Pad: " + strings.Repeat("p", 3000) + "\r\nContent-Length: 2\r\n\r\nok"
		for i := range min(len(head), 80) { // 8 s of dribbling, bounded
			if _, err := io.WriteString(c, head[i:i+1]); err != nil {
				closed <- time.Since(sent)
				return false
			}
			time.Sleep(100 * time.Millisecond)
		}
		closed <- -1
		return false
	})
	p := newProxy(t, proxy.Config{
		Routes:         []proxy.Route{{Path: "/", Upstreams: []string{up.URL()}}},
		MaxConns:       1,
		ConnectTimeout: time.Second,
		ReadTimeout:    5 * time.Second,
	})
	ts := startProxy(t, p)
	c := ts.Dial(t)
	_, err := io.WriteString(c, "GET /dribble HTTP/1.1\r\nHost: x\r\n\r\n")
	require.NoError(t, err)
	time.Sleep(500 * time.Millisecond)
	c.Close()
	time.Sleep(time.Second)
	got2 := exchange(t, ts, "GET /second HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", 3*time.Second)
	t.Logf("another client, 1 s after the first left: %q", trunc(got2))
	select {
	case d := <-closed:
		if d < 0 {
			t.Errorf("the upstream connection was never cut: the whole 8 s dribble was read for a client that had left")
		} else {
			t.Logf("upstream connection cut %v after the request", d)
			if d > 2*time.Second {
				t.Errorf("cut late: %v", d)
			}
		}
	case <-time.After(10 * time.Second):
		t.Errorf("no news from the upstream")
	}
}

// TestUnasked101Refused: the upstream answers 101 with a protocol
// the request did not ask for: the client gets no 101, and its
// connection goes on as HTTP.
func TestUnasked101Refused(t *testing.T) {
	up := newScriptUpstream(t, func(method, uri string, c net.Conn) bool {
		if uri == "/first" {
			io.WriteString(c, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\nConnection: Upgrade\r\n\r\n")
			return false
		}
		io.WriteString(c, second)
		return true
	})
	p := newProxy(t, proxy.Config{Routes: []proxy.Route{{Path: "/", Upstreams: []string{up.URL()}}}, MaxConns: 1})
	ts := startProxy(t, p)
	c := ts.Dial(t)
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(3 * time.Second))
	io.WriteString(c, "GET /first HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
	time.Sleep(300 * time.Millisecond)
	io.WriteString(c, "GET /second HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
	b, _ := io.ReadAll(c)
	t.Logf("client connection got: %q", b)
	if strings.HasPrefix(string(b), "HTTP/1.1 101") {
		t.Errorf("a 101 reached the client")
	}
}

// TestAbortUnderLoad: many clients streaming endless bodies, some
// leaving, some waiting on a head, then Abort: no race, no panic, every
// client ends, goroutines come back.
func TestAbortUnderLoad(t *testing.T) {
	stop := make(chan struct{})
	up := newScriptUpstream(t, func(method, uri string, c net.Conn) bool {
		switch {
		case strings.HasPrefix(uri, "/hang"):
			select {
			case <-stop:
			case <-time.After(15 * time.Second):
			}
			return false
		case strings.HasPrefix(uri, "/big"):
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 100000000\r\n\r\n")
		default:
			io.WriteString(c, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
		}
		chunk := "400\r\n" + strings.Repeat("e", 1024) + "\r\n"
		for range 3000 {
			if strings.HasPrefix(uri, "/big") {
				chunk = strings.Repeat("b", 1024)
			}
			if _, err := io.WriteString(c, chunk); err != nil {
				return false
			}
			select {
			case <-stop:
				return false
			case <-time.After(5 * time.Millisecond):
			}
		}
		return false
	})
	defer close(stop)
	p := newProxy(t, proxy.Config{Routes: []proxy.Route{{Path: "/", Upstreams: []string{up.URL()}}}, MaxConns: 64, ReadTimeout: 5 * time.Second})
	ts := startProxy(t, p)
	time.Sleep(100 * time.Millisecond)
	before := runtimeNumGoroutine()
	var wg sync.WaitGroup
	for i := range 24 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := ts.Dial(t)
			defer c.Close()
			_ = c.SetDeadline(time.Now().Add(8 * time.Second))
			path := []string{"/endless", "/big", "/hang"}[i%3]
			defer func(t0 time.Time) {
				if d := time.Since(t0); d > 3*time.Second {
					t.Logf("%s client %d ended after %v", path, i, d)
				}
			}(time.Now())
			io.WriteString(c, "GET "+path+" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
			buf := make([]byte, 4096)
			for j := 0; ; j++ {
				if i%4 == 0 && j == 20 {
					return // leaves mid-body
				}
				if _, err := c.Read(buf); err != nil {
					return
				}
			}
		}()
	}
	time.Sleep(700 * time.Millisecond)
	start := time.Now()
	p.Abort()
	wg.Wait()
	t.Logf("all clients ended %v after Abort", time.Since(start))
	if time.Since(start) > 3*time.Second {
		t.Errorf("clients still served long after Abort")
	}
	ok := eventually(5*time.Second, func() bool { return proxyGoroutines() == 0 })
	t.Logf("goroutines before %d, after %d; in proxy/fasthttp client code: %d", before, runtimeNumGoroutine(), proxyGoroutines())
	if !ok {
		buf := make([]byte, 1<<20)
		t.Errorf("proxy goroutines left:\n%s", buf[:runtime.Stack(buf, true)])
	}
}

func runtimeNumGoroutine() int { return runtime.NumGoroutine() }

// proxyGoroutines counts goroutines in the proxy's request path.
func proxyGoroutines() int {
	buf := make([]byte, 1<<20)
	n := 0
	for _, g := range strings.Split(string(buf[:runtime.Stack(buf, true)]), "\n\n") {
		if strings.Contains(g, "proxy.(*Proxy).serve") || strings.Contains(g, "proxy.(*upstreamBody)") || strings.Contains(g, "serveConn") {
			n++
		}
	}
	return n
}

// TestHopByHopAnyCase: an upstream's hop-by-hop headers, and the headers
// its Connection names, go whatever the case of their names (the answer
// keeps its names' case, and a delete by canonical name missed
// "keep-alive: timeout=5"); a client's go too, but the framing headers a
// Connection token names.
func TestHopByHopAnyCase(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { ln.Close() })
	sent := make(chan string, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		var req fasthttp.Request
		if err := req.Read(bufio.NewReader(c)); err != nil {
			return
		}
		sent <- req.Header.String()
		io.WriteString(c, "HTTP/1.1 200 OK\r\nconnection: keep-alive, x-Hop\r\nkeep-alive: timeout=5\r\nproxy-connection: keep-alive\r\n"+
			"x-hop: 1\r\nX-Kept: 2\r\ncontent-length: 2\r\n\r\nok")
		time.Sleep(time.Second)
	}()
	p := newProxy(t, proxy.Config{Routes: []proxy.Route{{Path: "/", Upstreams: []string{"http://" + ln.Addr().String()}}}})
	ts := startProxy(t, p)
	head, resp, body := proxyExchange(t, ts, "POST / HTTP/1.1\r\nHost: x\r\nConnection: keep-alive, X-Client-Hop, Content-Length\r\n"+
		"X-Client-Hop: 1\r\nkeep-alive: 300\r\nTE: trailers\r\nX-Forwarded-For: 203.0.113.9\r\nContent-Length: 2\r\n\r\nhi")
	require.Equal(t, http.StatusOK, resp.StatusCode, body)
	lower := strings.ToLower(head)
	for _, name := range []string{"\r\nkeep-alive:", "\r\nproxy-connection:", "\r\nx-hop:"} {
		assert.NotContains(t, lower, name, "the upstream's hop-by-hop header went through")
	}
	assert.Contains(t, head, "\r\nX-Kept: 2\r\n")
	assert.Equal(t, "ok", body)

	upstream := strings.ToLower(<-sent)
	for _, name := range []string{"\r\nkeep-alive:", "\r\nte:", "\r\nx-client-hop:"} {
		assert.NotContains(t, upstream, name, "the client's header went upstream")
	}
	assert.Contains(t, upstream, "\r\ncontent-length: 2\r\n", "a Connection token does not drop the framing")
	assert.Contains(t, upstream, "\r\nx-forwarded-for: 203.0.113.9, 127.0.0.1\r\n")
	assert.Contains(t, upstream, "\r\nx-forwarded-proto: https\r\n")
}

// TestStreamedHeadAtOnce: a large answer from a slow upstream (its head
// and 6,000 bytes of 100,000, then a stall) reaches the client with its
// head at once, not when the server's 16 KiB write buffer has filled.
func TestStreamedHeadAtOnce(t *testing.T) {
	release := make(chan struct{})
	up := newScriptUpstream(t, func(method, uri string, c net.Conn) bool {
		io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n"+strings.Repeat("x", 6000))
		select {
		case <-release:
		case <-time.After(5 * time.Second):
		}
		return false
	})
	p := newProxy(t, proxy.Config{Routes: []proxy.Route{{Path: "/", Upstreams: []string{up.URL()}}}})
	ts := startProxy(t, p)
	t.Cleanup(func() { close(release) }) // first: the servers' stops wait for the stalled answer
	c := ts.Dial(t)
	defer c.Close()
	_, err := io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	require.NoError(t, err)
	require.NoError(t, c.SetReadDeadline(time.Now().Add(2*time.Second)))
	line, err := bufio.NewReader(c).ReadString('\n')
	require.NoError(t, err, "no status line within 2 s, with 6,000 bytes of the answer ready")
	assert.Equal(t, "HTTP/1.1 200 OK\r\n", line)
}
