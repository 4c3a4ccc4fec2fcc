package proxy_test

import (
	"sort"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/fastserve/fastserve/proxy"
)

// TestRepeatSameAnswer: an upstream's answer with a repeated line
// (headerlines deletes and adds its lines again) reaches the client as
// the same answer without one does, hop-by-hop lines gone: framing,
// cookies, names in odd case, 304, 204, HEAD.
func TestRepeatSameAnswer(t *testing.T) {
	var variant atomic.Value
	up := newRawUpstream(t, func(s seen) string { return variant.Load().(string) })
	p := newProxy(t, proxy.Config{Routes: []proxy.Route{{Path: "/", Upstreams: []string{up.URL()}}}})
	ts := startProxy(t, p)
	norm := func(head string) string {
		var lines []string
		for _, l := range strings.Split(head, "\r\n")[1:] {
			if l == "" || strings.HasPrefix(strings.ToLower(l), "date:") {
				continue
			}
			lines = append(lines, strings.Replace(l, "X-E: 2", "X-D: 2", 1))
		}
		sort.Strings(lines)
		return strings.Split(head, "\r\n")[0] + "\n" + strings.Join(lines, "\n")
	}
	for _, tc := range []struct{ name, method, status, hdr, body string }{
		{"chunked", "GET", "200 OK", "Transfer-Encoding: chunked\r\nContent-Type: text/plain\r\nTrailer: X-T\r\n", "2\r\nok\r\n0\r\nX-T: 1\r\n\r\n"},
		{"cl", "GET", "200 OK", "Content-Length: 2\r\ncontent-type: text/plain\r\ncontent-encoding: gzip\r\n", "ok"},
		{"304", "GET", "304 Not Modified", "ETag: \"x\"\r\nContent-Length: 10\r\n", ""},
		{"204", "GET", "204 No Content", "", ""},
		{"head", "HEAD", "200 OK", "Content-Length: 1234\r\nContent-Type: text/html\r\n", ""},
		{"cookies", "GET", "200 OK", "Set-Cookie: a=\"1\"; Path=/\r\nset-cookie: b=2\r\nContent-Length: 0\r\n", ""},
		{"odd case", "GET", "200 OK", "x-Odd: 1\r\nX-ODD: 2\r\nContent-Length: 0\r\nconnection: x-odd, keep-alive\r\n", ""},
		{"close", "GET", "200 OK", "Connection: close\r\nContent-Length: 0\r\n", ""},
		{"upstream 1.0", "GET", "200 OK", "Content-Length: 0\r\n", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got [2]string
			for i, dup := range []string{"X-D: 1\r\nX-E: 2\r\n", "X-D: 1\r\nX-D: 2\r\n"} {
				variant.Store("HTTP/1.1 " + tc.status + "\r\nKeep-Alive: timeout=5\r\nX-Hop: h\r\nConnection: X-Hop\r\n" + dup + tc.hdr + "\r\n" + tc.body)
				head, _, _ := proxyExchange(t, ts, tc.method+" / HTTP/1.1\r\nHost: h\r\n\r\n")
				got[i] = norm(head)
			}
			assert.Equal(t, got[0], got[1])
			assert.NotContains(t, strings.ToLower(got[1]), "x-hop")
			assert.NotContains(t, strings.ToLower(got[1]), "keep-alive")
		})
	}
}
