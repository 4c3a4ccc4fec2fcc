package proxy_test

import (
	"bufio"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/fastserve/fastserve/proxy"
)

// TestUpgradeAnswerHead: the 101 the client reads says Connection:
// Upgrade and nothing else, whatever the request's Connection said
// besides (fasthttp marks the answer to "Connection: close, Upgrade"
// close, and the hijack wrote that mark: "Connection: close" on a 101
// whose connection stays open). An HTTP/1.0 request's Upgrade is ignored
// (RFC 9110 section 7.8: a server MUST ignore it; the proxy sends
// HTTP/1.1 upstream, which switched, and the 101 said Connection: close).
func TestUpgradeAnswerHead(t *testing.T) {
	up := newRawUpstream(t, func(s seen) string {
		if len(s.header("Upgrade")) > 0 {
			return "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: foo/1\r\n\r\n"
		}
		return "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
	})
	p := newProxy(t, proxy.Config{Routes: []proxy.Route{{Path: "/", Upstreams: []string{up.URL()}}}})
	ts := startProxy(t, p)
	for _, tc := range []struct {
		name, req, status string
	}{
		{"close, Upgrade", "GET /a HTTP/1.1\r\nHost: a.test\r\nConnection: close, Upgrade\r\nUpgrade: foo/1\r\n\r\n", "HTTP/1.1 101 "},
		{"Upgrade, close", "GET /b HTTP/1.1\r\nHost: a.test\r\nConnection: Upgrade\r\nConnection: close\r\nUpgrade: foo/1\r\n\r\n", "HTTP/1.1 101 "},
		{"keep-alive, Upgrade", "GET /c HTTP/1.1\r\nHost: a.test\r\nConnection: keep-alive, Upgrade\r\nUpgrade: foo/1\r\n\r\n", "HTTP/1.1 101 "},
		{"HTTP/1.0", "GET /d HTTP/1.0\r\nHost: a.test\r\nConnection: Upgrade\r\nUpgrade: foo/1\r\n\r\n", "HTTP/1.1 200 "},
		{"HTTP/1.0 keep-alive", "GET /e HTTP/1.0\r\nHost: a.test\r\nConnection: keep-alive, Upgrade\r\nUpgrade: foo/1\r\n\r\n", "HTTP/1.1 200 "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := ts.Dial(t)
			require.NoError(t, c.SetDeadline(time.Now().Add(10*time.Second)))
			_, err := io.WriteString(c, tc.req)
			require.NoError(t, err)
			br := bufio.NewReader(c)
			var head strings.Builder
			for {
				line, err := br.ReadString('\n')
				require.NoError(t, err, "head so far: %q", head.String())
				head.WriteString(line)
				if line == "\r\n" {
					break
				}
			}
			h := head.String()
			require.True(t, strings.HasPrefix(h, tc.status), h)
			if tc.status == "HTTP/1.1 101 " {
				assert.Equal(t, []string{"Upgrade"}, headLines(h, "Connection"), h)
				assert.Equal(t, []string{"foo/1"}, headLines(h, "Upgrade"), h)
			} else {
				assert.Empty(t, headLines(h, "Upgrade"), h)
			}
		})
	}
	for _, s := range up.Seen() {
		if strings.HasPrefix(s.URI, "/d") || strings.HasPrefix(s.URI, "/e") {
			assert.Empty(t, s.header("Upgrade"), "an HTTP/1.0 request's Upgrade went upstream: %q", s.Head)
		}
	}
}
