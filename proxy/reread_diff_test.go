package proxy_test

import (
	"net/http"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/fastserve/fastserve/proxy"
)

// TestRereadSameRequest: a request with a repeated line (headerlines
// reads its header anew) reaches the upstream as the same request
// without one does (fasthttp's Del): request line, Host, framing, body,
// the lines kept, bodies buffered or streamed, whatever the Host mode.
func TestRereadSameRequest(t *testing.T) {
	up := newRawUpstream(t, ok("up"))
	norm := func(s seen) string {
		var lines []string
		for _, l := range strings.Split(s.Head, "\r\n") {
			if l == "" {
				continue
			}
			l = strings.Replace(l, "X-E: 2", "X-D: 2", 1)
			lines = append(lines, l)
		}
		sort.Strings(lines)
		return s.Method + " " + s.URI + " host=" + s.Host + "\n" + strings.Join(lines, "\n") + "\nbody=" + string(s.Body)
	}
	big := strings.Repeat("v", 1900)
	reqs := []struct{ name, line, hdr, body string }{
		{"cl", "POST /p HTTP/1.1", "Host: h\r\nContent-Length: 5\r\n", "hello"},
		{"cl type", "POST /p HTTP/1.1", "Host: h\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n", "hello"},
		{"chunked", "POST /p HTTP/1.1", "Host: h\r\nTransfer-Encoding: chunked\r\n", "5\r\nhello\r\n0\r\n\r\n"},
		{"chunked trailer", "POST /p HTTP/1.1", "Host: h\r\nTransfer-Encoding: chunked\r\nTrailer: X-T\r\n", "5\r\nhello\r\n0\r\nX-T: 1\r\n\r\n"},
		{"expect", "POST /p HTTP/1.1", "Host: h\r\nExpect: 100-continue\r\nContent-Length: 5\r\n", "hello"},
		{"http10", "POST /p HTTP/1.0", "Host: h\r\nContent-Length: 5\r\n", "hello"},
		{"http10 nohost", "GET /p HTTP/1.0", "", ""},
		{"absolute", "GET http://other.example/p?q HTTP/1.1", "Host: h\r\n", ""},
		{"slashes", "GET //admin/p HTTP/1.1", "Host: h\r\n", ""},
		{"conn names", "POST /p HTTP/1.1", "Host: h\r\nContent-Length: 5\r\nConnection: Content-Length, Host, X-Hop, Cookie, User-Agent\r\nX-Hop: 1\r\nUser-Agent: ua\r\nCookie: c=1\r\n", "hello"},
		{"cookies", "GET /p HTTP/1.1", "Host: h\r\nCookie: a=\"1\"\r\nCookie: b=2; c=3\r\n", ""},
		{"xff", "GET /p HTTP/1.1", "Host: h\r\nX-Forwarded-For: 1.1.1.1\r\nX-Forwarded-For: 2.2.2.2\r\nForwarded: for=3.3.3.3\r\n", ""},
		{"big", "GET /p HTTP/1.1", "Host: h\r\nX-Big: " + big + "\r\nX-Big2: " + big + "\r\n", ""},
		{"odd names", "GET /p HTTP/1.1", "Host: h\r\nx-a.b_c!#$%&'*+^`|~: 1\r\nX Y: 2\r\n", ""},
		{"empty ua", "GET /p HTTP/1.1", "Host: h\r\nUser-Agent:\r\nX-Empty:\r\n", ""},
		{"ua", "GET /p HTTP/1.1", "Host: h\r\nUser-Agent: Mozilla\r\n", ""},
	}
	for _, cfg := range []struct {
		name string
		cfg  proxy.Config
	}{
		{"default", proxy.Config{}},
		{"stream", proxy.Config{StreamRequestBodies: true, BufferBodyBytes: 1}},
		{"host upstream", proxy.Config{HostHeader: "upstream"}},
	} {
		cfg.cfg.Routes = []proxy.Route{{Path: "/", Upstreams: []string{up.URL()}}}
		p := newProxy(t, cfg.cfg)
		ts := startProxy(t, p)
		for _, r := range reqs {
			t.Run(cfg.name+"/"+r.name, func(t *testing.T) {
				var got [2]string
				for i, dup := range []string{"X-D: 1\r\nX-E: 2\r\n", "X-D: 1\r\nX-D: 2\r\n"} {
					before := len(up.Seen())
					_, resp, body := proxyExchange(t, ts, r.line+"\r\n"+r.hdr+"Connection: keep-alive\r\n"+dup+"\r\n"+r.body)
					if resp.StatusCode != http.StatusContinue {
						require.Equal(t, http.StatusOK, resp.StatusCode, body)
					}
					require.True(t, eventually(5*time.Second, func() bool { return len(up.Seen()) > before }))
					s := up.Seen()
					got[i] = norm(s[before])
				}
				assert.Equal(t, got[0], got[1])
			})
		}
	}
}
