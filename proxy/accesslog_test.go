package proxy_test

import (
	"bytes"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/valyala/fasthttp"

	"github.com/fastserve/fastserve/accesslog"
	"github.com/fastserve/fastserve/internal/tlstest"
	"github.com/fastserve/fastserve/proxy"
)

// logBuffer is a writer safe for the log's writer and the test.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

// startLogged serves p as startProxy does, and logs each request in
// format as the engine does, once its answer is set; the lines are what
// the returned func gives, once every request is made.
func startLogged(t *testing.T, p *proxy.Proxy, format string) (*tlstest.Server, func() []string) {
	t.Helper()
	f, err := accesslog.Compile(format)
	require.NoError(t, err)
	out := &logBuffer{}
	l := accesslog.New(out, f)
	done := make(chan struct{})
	go func() { l.Run(); close(done) }()
	h := p.Handler(func(ctx *fasthttp.RequestCtx) { ctx.WriteString("next") })
	ts := tlstest.Start(t, &fasthttp.Server{Handler: func(ctx *fasthttp.RequestCtx) {
		h(ctx)
		l.Add(ctx, time.Now())
	}, StreamRequestBody: true, Logger: quiet{}})
	return ts, func() []string {
		l.Close()
		<-done
		out.mu.Lock()
		defer out.mu.Unlock()
		return strings.Split(strings.TrimSuffix(out.b.String(), "\n"), "\n")
	}
}

// TestAccessLogUpstream: $upstream_addr and $upstream_response_time are
// the upstream's host:port and the time to its response head, for each
// attempt; "-" for a request no upstream saw.
func TestAccessLogUpstream(t *testing.T) {
	const delay = 50 * time.Millisecond
	slow := newRawUpstream(t, func(seen) string {
		time.Sleep(delay)
		return "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
	})
	dead := closedAddr(t)
	p := newProxy(t, proxy.Config{Routes: []proxy.Route{
		{Path: "/slow", Upstreams: []string{slow.URL()}},
		{Path: "/retry", Upstreams: []string{"http://" + dead, slow.URL()}},
	}})
	ts, lines := startLogged(t, p, `$request_uri $status $upstream_addr|$upstream_response_time`)
	// The balancer takes turns on ties: one of the two /retry requests
	// goes to the dead upstream first, then to the slow one.
	for _, path := range []string{"/slow", "/retry/1", "/retry/2", "/other"} {
		_, resp, _ := proxyExchange(t, ts, "GET "+path+" HTTP/1.1\r\nHost: localhost\r\n\r\n")
		require.Equal(t, 200, resp.StatusCode, path)
	}
	got := lines()
	require.Len(t, got, 4)
	var addrs []string
	for i, line := range got {
		addr, times, _ := strings.Cut(line, "|")
		addrs = append(addrs, addr)
		if i == 3 {
			assert.Equal(t, "-", times, "no upstream")
			continue
		}
		ts := strings.Split(times, ", ")
		for j, s := range ts {
			d, err := strconv.ParseFloat(s, 64)
			require.NoError(t, err, line)
			if j == len(ts)-1 {
				assert.GreaterOrEqual(t, d, delay.Seconds(), "to the response head: %s", line)
				assert.Less(t, d, 5.0, line)
			} else {
				assert.Less(t, d, delay.Seconds(), "a refused connection: %s", line)
			}
			assert.Len(t, s, len("0.000"), "to the millisecond: %s", line)
		}
	}
	assert.Equal(t, "/slow 200 "+slow.Addr(), addrs[0])
	retried := []string{strings.TrimPrefix(addrs[1], "/retry/1 "), strings.TrimPrefix(addrs[2], "/retry/2 ")}
	assert.ElementsMatch(t, []string{"200 " + slow.Addr(), "200 " + dead + ", " + slow.Addr()}, retried)
	assert.Equal(t, "/other 200 -", addrs[3])
}
