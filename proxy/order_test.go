package proxy_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/fastserve/fastserve/proxy"
)

// TestHeaderOrderKept: the lines of one name keep their order both ways
// while the proxy deletes hop-by-hop and forwarding lines around them
// (fasthttp's Del moves the header's last line into the hole it leaves).
func TestHeaderOrderKept(t *testing.T) {
	for _, tc := range []struct {
		name, hop string
	}{
		{"Connection", "Connection: keep-alive\r\n"},
		{"Keep-Alive", "Keep-Alive: timeout=5\r\n"},
		{"forwarding", "X-Forwarded-For: 1.2.3.4\r\n"},
		{"none", ""},
	} {
		t.Run("hop="+tc.name, func(t *testing.T) {
			up := newRawUpstream(t, func(seen) string {
				return "HTTP/1.1 200 OK\r\n" + tc.hop + "Transfer-Encoding: chunked\r\nlink: <a>\r\nCache-Control: no-store\r\nLink: <b>\r\n" +
					"Set-Cookie: s=1\r\nX-Dup: 1\r\nCache-Control: private\r\nSet-Cookie: s=2\r\nX-Dup: 2\r\nlink: <c>\r\n\r\n2\r\nok\r\n0\r\n\r\n"
			})
			p := newProxy(t, proxy.Config{Routes: []proxy.Route{{Path: "/", Upstreams: []string{up.URL()}}}})
			ts := startProxy(t, p)
			head, resp, body := proxyExchange(t, ts, "GET / HTTP/1.1\r\nHost: x\r\n"+tc.hop+"Accept: a\r\nCookie: k=\"1\"\r\nX-A: 1\r\n"+
				"Accept: b\r\nX-B: 1\r\nCookie: k=2\r\nX-A: 2\r\nAccept: c\r\nX-A: 3\r\n\r\n")
			assert.Equal(t, http.StatusOK, resp.StatusCode, body)
			assert.Equal(t, "ok", body)

			s := up.Seen()[0]
			assert.Equal(t, []string{"a", "b", "c"}, s.header("Accept"), s.Head)
			assert.Equal(t, []string{"1", "2", "3"}, s.header("X-A"), s.Head)
			assert.Equal(t, []string{`k="1"`, "k=2"}, s.header("Cookie"), s.Head)
			if tc.name == "forwarding" {
				assert.Equal(t, []string{"1.2.3.4, 127.0.0.1"}, s.header("X-Forwarded-For"), s.Head)
			}
			assert.Empty(t, s.header("Connection"), s.Head)
			assert.Empty(t, s.header("Keep-Alive"), s.Head)

			got := seen{Head: head}
			assert.Equal(t, []string{"<a>", "<b>", "<c>"}, got.header("Link"), head)
			assert.Equal(t, []string{"no-store", "private"}, got.header("Cache-Control"), head)
			assert.Equal(t, []string{"1", "2"}, got.header("X-Dup"), head)
			assert.Equal(t, []string{"s=1", "s=2"}, got.header("Set-Cookie"), head)
			assert.Empty(t, got.header("Keep-Alive"), head)
			assert.NotContains(t, strings.ToLower(head), "connection: keep-alive", head)
		})
	}
}

// TestConnectionTokensBounded: the headers Connection names are deleted,
// the first maxConnectionTokens (16) of them: past that, a client pays
// for its own lookups no more (nginx and HAProxy delete none).
func TestConnectionTokensBounded(t *testing.T) {
	up := newRawUpstream(t, func(seen) string { return "HTTP/1.1 204 No Content\r\n\r\n" })
	p := newProxy(t, proxy.Config{Routes: []proxy.Route{{Path: "/", Upstreams: []string{up.URL()}}}})
	ts := startProxy(t, p)
	var conn, lines strings.Builder
	for i := range 20 {
		fmt.Fprintf(&conn, "X-H%d, ", i)
		fmt.Fprintf(&lines, "X-H%d: %d\r\n", i, i)
	}
	_, resp, _ := proxyExchange(t, ts, "GET / HTTP/1.1\r\nHost: x\r\nConnection: "+conn.String()+"content-length\r\n"+lines.String()+"\r\n")
	assert.Equal(t, http.StatusNoContent, resp.StatusCode)
	s := up.Seen()[0]
	for i := range 20 {
		if i < 16 {
			assert.Empty(t, s.header(fmt.Sprintf("X-H%d", i)), s.Head)
		} else {
			assert.Equal(t, []string{fmt.Sprint(i)}, s.header(fmt.Sprintf("X-H%d", i)), s.Head)
		}
	}
}
