package proxy_test

import (
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/fastserve/fastserve/proxy"
)

// TestNoContentTypeAdded: a request with a body and no Content-Type goes
// upstream without one (fasthttp writes application/octet-stream by
// default), whether its body has a length or is chunked.
func TestNoContentTypeAdded(t *testing.T) {
	up := newRawUpstream(t, func(seen) string { return "HTTP/1.1 204 No Content\r\n\r\n" })
	p := newProxy(t, proxy.Config{Routes: []proxy.Route{{Path: "/", Upstreams: []string{up.URL()}}}})
	ts := startProxy(t, p)
	for i, req := range []string{
		"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc",
		"PUT / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
		"POST / HTTP/1.1\r\nHost: x\r\nConnection: keep-alive\r\nX-A: 1\r\nX-A: 2\r\nContent-Length: 3\r\n\r\nabc", // read anew (headerlines)
	} {
		_, resp, _ := proxyExchange(t, ts, req)
		assert.Equal(t, http.StatusNoContent, resp.StatusCode)
		s := up.Seen()[i]
		assert.Empty(t, s.header("Content-Type"), s.Head)
		assert.Equal(t, "abc", string(s.Body))
	}
}
