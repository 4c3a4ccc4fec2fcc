package proxy_test

import (
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/fastserve/fastserve/proxy"
)

// TestOddUpstreamHeads: heads however they arrive are answered at once
// (not after ReadTimeout); interim answers are passed over; a head too
// large or a status of four digits is 502. (fasthttp v1.78 waits for
// CRLFCRLF: a head with bare LFs waits for ReadTimeout, before and after
// peekHead, so it is not here.)
func TestOddUpstreamHeads(t *testing.T) {
	for _, tc := range []struct {
		name, answer string
		split        int // write the answer in pieces of this many bytes, 0 whole
		status       int
		body         string
	}{
		{"no reason phrase", "HTTP/1.1 200\r\nContent-Length: 2\r\n\r\nok", 0, 200, "ok"},
		{"100 then 200", "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", 0, 200, "ok"},
		{"103 then 200", "HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", 0, 200, "ok"},
		{"split byte by byte", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", 1, 200, "ok"},
		{"head over MaxResponseHeaderBytes", "HTTP/1.1 200 OK\r\nX-Big: " + strings.Repeat("b", 5000) + "\r\nContent-Length: 2\r\n\r\nok", 0, 502, ""},
		{"big head split", "HTTP/1.1 200 OK\r\nX-Big: " + strings.Repeat("b", 3000) + "\r\nContent-Length: 2\r\n\r\nok", 1000, 200, "ok"},
		{"status 1000", "HTTP/1.1 1000 OK\r\nContent-Length: 2\r\n\r\nok", 0, 502, ""},
		{"split in threes", "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", 3, 200, "ok"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			up := newScriptUpstream(t, func(_, _ string, c net.Conn) bool {
				if tc.split == 0 {
					_, err := c.Write([]byte(tc.answer))
					return err == nil
				}
				for s := tc.answer; len(s) > 0; {
					n := min(tc.split, len(s))
					if _, err := c.Write([]byte(s[:n])); err != nil {
						return false
					}
					s = s[n:]
					time.Sleep(time.Millisecond)
				}
				return true
			})
			p := newProxy(t, proxy.Config{Routes: []proxy.Route{{Path: "/", Upstreams: []string{up.URL()}}},
				ReadTimeout: 3 * time.Second})
			ts := startProxy(t, p)
			start := time.Now()
			_, resp, body := proxyExchange(t, ts, "GET / HTTP/1.1\r\nHost: a.test\r\n\r\n")
			took := time.Since(start)
			assert.Equal(t, tc.status, resp.StatusCode, body)
			if tc.status == http.StatusOK {
				assert.Equal(t, tc.body, strings.TrimSpace(body))
			}
			assert.Less(t, took, 2*time.Second, "the answer waited for ReadTimeout")
		})
	}
}
