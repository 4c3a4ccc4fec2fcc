package proxy_test

import (
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/fastserve/fastserve/proxy"
)

// TestOddUpstreamAnswers: answers nginx refuses are 502, and the
// connection that carried them is not used again.
func TestOddUpstreamAnswers(t *testing.T) {
	for _, tc := range []struct{ name, answer string }{
		{"status 000", "HTTP/1.1 000 Zero\r\nContent-Length: 2\r\n\r\nno"},
		{"status 099", "HTTP/1.1 099 Low\r\nContent-Length: 2\r\n\r\nno"},
		{"status 600", "HTTP/1.1 600 High\r\nContent-Length: 2\r\n\r\nno"},
		{"length and chunked", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nno\r\n0\r\n\r\n"},
		{"chunked and length", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 2\r\n\r\n2\r\nno\r\n0\r\n\r\n"},
		{"first chunk size not hexadecimal", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nno\r\n0\r\n\r\n"},
		{"first chunk size empty", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n\r\nno\r\n0\r\n\r\n"},
		{"first chunk size too long", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n00000000000000002\r\nno\r\n0\r\n\r\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			up := newRawUpstream(t, func(s seen) string {
				if s.URI == "/first" {
					return tc.answer
				}
				return "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
			})
			p := newProxy(t, proxy.Config{Routes: []proxy.Route{{Path: "/", Upstreams: []string{up.URL()}}}})
			ts := startProxy(t, p)
			_, resp, body := proxyExchange(t, ts, "GET /first HTTP/1.1\r\nHost: a.test\r\n\r\n")
			assert.Equal(t, http.StatusBadGateway, resp.StatusCode, body)
			_, resp, body = proxyExchange(t, ts, "GET /second HTTP/1.1\r\nHost: a.test\r\n\r\n")
			assert.Equal(t, http.StatusOK, resp.StatusCode)
			assert.Equal(t, "ok", body)
			assert.Equal(t, int64(2), up.accepted.Load(), "the connection was used again")
		})
	}
}
