package proxy_test

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/valyala/fasthttp"

	"github.com/fastserve/fastserve/internal/tlstest"
	"github.com/fastserve/fastserve/proxy"
)

// TestMaxConnsPerClient: a client's streaming answers hold its share of
// the upstream connections until they end; past the share a request
// waits ConnectTimeout for its turn, then gets 503 with Retry-After; a
// request that waits is served as soon as one of its client's ends.
func TestMaxConnsPerClient(t *testing.T) {
	// Streams: the head and a first chunk, then nothing until closed.
	hold := make(chan struct{})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/fast" {
			io.WriteString(w, "fast")
			return
		}
		io.WriteString(w, "first\n")
		w.(http.Flusher).Flush()
		select {
		case <-hold:
		case <-r.Context().Done():
		}
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { close(hold); srv.Close() })

	p := newProxy(t, proxy.Config{Routes: []proxy.Route{{Path: "/", Upstreams: []string{"http://" + ln.Addr().String()}}},
		MaxConnsPerClient: 2, ConnectTimeout: 300 * time.Millisecond})
	// Clients are told apart by the address the server gives them.
	next := func(ctx *fasthttp.RequestCtx) {}
	ts := tlstest.Start(t, &fasthttp.Server{Handler: p.Handler(next), StreamRequestBody: true, Logger: quiet{}})

	stream := func() net.Conn {
		c := ts.Dial(t)
		require.NoError(t, c.SetDeadline(time.Now().Add(10*time.Second)))
		_, err := io.WriteString(c, "GET /s HTTP/1.1\r\nHost: a.test\r\n\r\n")
		require.NoError(t, err)
		br := bufio.NewReader(c)
		resp, err := http.ReadResponse(br, nil)
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, resp.StatusCode)
		line, err := bufio.NewReader(resp.Body).ReadString('\n')
		require.NoError(t, err)
		require.Equal(t, "first\n", line)
		t.Cleanup(func() { c.Close() })
		return c
	}
	first := stream()
	second := stream()
	start := time.Now()
	head, resp, body := proxyExchange(t, ts, "GET /fast HTTP/1.1\r\nHost: a.test\r\n\r\n")
	assert.Equal(t, http.StatusServiceUnavailable, resp.StatusCode, body)
	assert.GreaterOrEqual(t, time.Since(start), 250*time.Millisecond, "it waited its turn first")
	assert.Contains(t, head, "\r\nRetry-After: 1\r\n")
	assert.True(t, strings.Contains(body, "too many requests of this client"), body)

	// A stream whose client leaves gives its share back.
	first.Close()
	assert.True(t, eventually(5*time.Second, func() bool {
		_, resp, _ := proxyExchange(t, ts, "GET /fast HTTP/1.1\r\nHost: a.test\r\n\r\n")
		return resp.StatusCode == http.StatusOK
	}), "the share came back")

	// Both places held again: a request waits, and is served when one
	// of them ends within its wait.
	stream()
	done := make(chan int, 1)
	go func() {
		_, resp, _ := proxyExchange(t, ts, "GET /fast HTTP/1.1\r\nHost: a.test\r\n\r\n")
		done <- resp.StatusCode
	}()
	time.Sleep(100 * time.Millisecond)
	second.Close()
	select {
	case st := <-done:
		assert.Equal(t, http.StatusOK, st, "handed the place of the stream that ended")
	case <-time.After(5 * time.Second):
		t.Fatal("the waiting request was never served")
	}
}

// TestTunnelsCountAgainstClientShare: a tunnel holds an upstream
// connection for as long as it lasts, so it counts against its client's
// share until it ends.
func TestTunnelsCountAgainstClientShare(t *testing.T) {
	up := newWSEcho(t)
	var tunnels proxy.Tunnels
	_, ts := startTunnelProxy(t, proxy.Config{Routes: []proxy.Route{{Path: "/", Upstreams: []string{up.url}}},
		Tunnels: &tunnels, MaxConnsPerClient: 2}, true)
	a, b := wsDial(t, ts, "/"), wsDial(t, ts, "/")
	echo(t, a, "a")
	echo(t, b, "b")
	d := websocket.Dialer{TLSClientConfig: ts.TLSConfig(), HandshakeTimeout: 10 * time.Second}
	_, resp, err := d.Dial("wss://"+ts.Addr+"/", nil)
	require.Error(t, err, "a third tunnel past the client's share")
	require.NotNil(t, resp)
	assert.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)
	a.Close()
	require.True(t, eventually(5*time.Second, func() bool { return tunnels.Open() == 1 }))
	c := wsDial(t, ts, "/")
	echo(t, c, "c")
}
