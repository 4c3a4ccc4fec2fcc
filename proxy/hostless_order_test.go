package proxy_test

import (
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/fastserve/fastserve/proxy"
)

// TestHostlessHTTP10KeepsOrder: an HTTP/1.0 request without Host keeps
// the order of its lines too. The proxy made it HTTP/1.1 before deleting
// its hop-by-hop lines, and fasthttp will not read back an HTTP/1.1 head
// without Host: headerlines fell back to fasthttp's Del, which swaps.
func TestHostlessHTTP10KeepsOrder(t *testing.T) {
	up := newRawUpstream(t, ok("up"))
	p := newProxy(t, proxy.Config{Routes: []proxy.Route{{Path: "/", Upstreams: []string{up.URL()}}}})
	ts := startProxy(t, p)
	_, resp, body := proxyExchange(t, ts, "GET / HTTP/1.0\r\nConnection: keep-alive\r\nCookie: a=1\r\nAccept: 1\r\nCookie: a=2\r\nAccept: 2\r\n\r\n")
	require.Equal(t, http.StatusOK, resp.StatusCode, body)
	got := up.Seen()[0]
	assert.Equal(t, []string{"1", "2"}, got.header("Accept"), got.Head)
	assert.Equal(t, []string{"a=1", "a=2"}, got.header("Cookie"), got.Head)
	assert.Empty(t, got.header("Connection"), got.Head)
}
