package proxy_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/fastserve/fastserve/proxy"
)

// TestHopByHopSound: checks that passed (sound): framing never
// goes with a Connection token, duplicate Connection lines all count,
// odd case and whitespace, the close flag, forwarded headers.
func TestHopByHopSound(t *testing.T) {
	up := newRawUpstream(t, func(s seen) string {
		return "HTTP/1.1 200 OK\r\nConnection: close\r\nCONNECTION: X-A\r\nconnection: \t x-b ,Set-Cookie\r\nx-a: 1\r\nX-B: 2\r\nSet-Cookie: a=1\r\nTransfer-Encoding: chunked\r\nTrailer: X-T\r\n\r\n2\r\nok\r\n0\r\nX-T: 1\r\n\r\n"
	})
	p := newProxy(t, proxy.Config{Routes: []proxy.Route{{Path: "/", Upstreams: []string{up.URL()}}}})
	ts := startProxy(t, p)
	head, resp, body := proxyExchange(t, ts, "POST / HTTP/1.1\r\nHost: x\r\nConnection: close\r\nConnection: X-One\r\nConnection: transfer-encoding, Host, content-length, cookie\r\n"+
		"X-One: 1\r\nCookie: c=1\r\nx-forwarded-for: 1.2.3.4\r\nX-Forwarded-For: 5.6.7.8\r\nforwarded: for=evil\r\nX-Forwarded-Host: evil\r\nX-Forwarded-Proto: http\r\nTransfer-Encoding: chunked\r\nTrailer: X-T\r\n\r\n2\r\nhi\r\n0\r\nX-T: 1\r\n\r\n")
	assert.Equal(t, http.StatusOK, resp.StatusCode, body)
	assert.Equal(t, "ok", body)
	l := strings.ToLower(head)
	for _, n := range []string{"\r\nx-a:", "\r\nx-b:", "\r\nset-cookie:", "\r\ntrailer:", "\r\nconnection: x"} {
		assert.NotContains(t, l, n, head)
	}
	s := up.Seen()[0]
	h := strings.ToLower(s.Head)
	t.Logf("upstream got %q %q", s.URI, s.Head)
	for _, n := range []string{"\r\nx-one:", "\r\ncookie:", "\r\nconnection:", "\r\ntrailer:", "\r\ntransfer-encoding:", "\r\nx-t:"} {
		assert.NotContains(t, "\r\n"+h, n)
	}
	assert.Equal(t, "hi", string(s.Body))
	assert.Equal(t, []string{"1.2.3.4, 5.6.7.8, 127.0.0.1"}, s.header("X-Forwarded-For"))
	assert.Equal(t, []string{"for=evil, for=127.0.0.1;proto=https;host=x"}, s.header("Forwarded"))
	assert.Equal(t, []string{"x"}, s.header("X-Forwarded-Host"))
	assert.Equal(t, []string{"https"}, s.header("X-Forwarded-Proto"))
}
