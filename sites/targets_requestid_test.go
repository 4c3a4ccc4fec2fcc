package sites_test

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"path"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/bcrypt"

	"github.com/fastserve/fastserve/internal/tlstest"
	"github.com/fastserve/fastserve/sites"
)

// TestAccessBypassDoubleSlashTarget: a route guarded by basic auth
// ("/admin/") beside an open proxied site. The target
// "//admin/secret://x" is split by fasthttp's URI parser into host
// "admin" and path "/secret://x", so the access rules and the proxy's
// routing see /secret:/x (open); the proxy now sends the target unparsed,
// and an upstream that merges slashes (nginx's merge_slashes, Tomcat,
// Spring; here a handler that cleans the path) serves /admin/secret:/x
// without credentials. Before 43197a9 the upstream got "/secret://x".
func TestAccessBypassDoubleSlashTarget(t *testing.T) {
	hash, err := bcrypt.GenerateFromPassword([]byte("s3cret"), bcrypt.MinCost)
	require.NoError(t, err)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := path.Clean(r.URL.Path) // as nginx (merge_slashes) or Tomcat resolve it
		if strings.HasPrefix(p, "/admin/") {
			io.WriteString(w, "ADMIN SECRET "+p)
			return
		}
		io.WriteString(w, "open "+p)
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	up := "http://" + ln.Addr().String()
	r, err := sites.New(sites.Config{Sites: []sites.Site{{
		Hosts:  []string{"p.test"},
		Proxy:  []string{up},
		Routes: []sites.Route{{Path: "/admin/", Proxy: []string{up}, Access: sites.Access{BasicAuth: map[string]string{"ops": string(hash)}}}},
	}}, Proxy: quietProxy()})
	require.NoError(t, err)
	t.Cleanup(r.Close)
	ts := tlstest.Handler(t, r.Handle)
	c := dialNoSNI(t, ts)
	br := bufio.NewReader(c)
	assert.Equal(t, 401, tlstest.RoundTrip(t, c, br, "GET /admin/secret HTTP/1.1\r\nHost: p.test\r\n\r\n").StatusCode(), "guarded")
	resp := tlstest.RoundTrip(t, c, br, "GET //admin/secret://x HTTP/1.1\r\nHost: p.test\r\n\r\n")
	assert.NotContains(t, string(resp.Body()), "ADMIN SECRET", "status %d: the guarded route reached without credentials", resp.StatusCode())
}

// TestRequestIDOneLine: an upstream that echoes the request's ID as
// "X-Request-ID" (the case it was sent in; Express, Rails, Django keep a
// name's case) gets its line replaced by the site's, as before 758b7d5;
// now the site adds "X-Request-Id" beside it: the client gets two lines.
func TestRequestIDOneLine(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				br := bufio.NewReader(c)
				for {
					req, err := http.ReadRequest(br)
					if err != nil {
						return
					}
					io.Copy(io.Discard, req.Body)
					id := req.Header.Get("X-Request-Id")
					io.WriteString(c, "HTTP/1.1 200 OK\r\nX-Request-ID: "+id+"\r\nContent-Length: "+strconv.Itoa(len(id))+"\r\n\r\n"+id)
				}
			}()
		}
	}()
	r, err := sites.New(sites.Config{Default: sites.Site{Proxy: []string{"http://" + ln.Addr().String()}}, Proxy: quietProxy()})
	require.NoError(t, err)
	t.Cleanup(r.Close)
	ts := tlstest.Handler(t, r.Handle)
	c := dialNoSNI(t, ts)
	br := bufio.NewReader(c)
	for _, id := range []string{"", "abc-1"} {
		req := "GET / HTTP/1.1\r\nHost: x\r\n"
		if id != "" {
			req += "X-Request-ID: " + id + "\r\n"
		}
		resp := tlstest.RoundTrip(t, c, br, req+"\r\n")
		assert.Len(t, resp.Header.PeekAll("X-Request-ID"), 1, "one X-Request-ID line to the client: %q", resp.Header.String())
	}
}

// TestRulesOnProxiedAnswerAnyCase: a site's response rules reach an
// upstream's headers whatever their case (a proxied answer keeps its
// names as sent): Set replaces x-frame-options instead of standing
// beside it, Delete takes x-powered-by away.
func TestRulesOnProxiedAnswerAnyCase(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				br := bufio.NewReader(c)
				for {
					req, err := http.ReadRequest(br)
					if err != nil {
						return
					}
					io.Copy(io.Discard, req.Body)
					io.WriteString(c, "HTTP/1.1 200 OK\r\nx-frame-options: SAMEORIGIN\r\nX-POWERED-BY: express\r\nx-powered-by: again\r\nContent-Length: 2\r\n\r\nok")
				}
			}()
		}
	}()
	r, err := sites.New(sites.Config{Default: sites.Site{Proxy: []string{"http://" + ln.Addr().String()},
		ResponseHeaders: sites.HeaderRules{Set: map[string]string{"X-Frame-Options": "DENY"}, Delete: []string{"X-Powered-By"}}},
		Proxy: quietProxy()})
	require.NoError(t, err)
	t.Cleanup(r.Close)
	ts := tlstest.Handler(t, r.Handle)
	c := dialNoSNI(t, ts)
	resp := tlstest.RoundTrip(t, c, bufio.NewReader(c), "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	head := strings.ToLower(resp.Header.String())
	assert.Equal(t, 1, strings.Count(head, "\r\nx-frame-options:"), head)
	assert.Contains(t, head, "\r\nx-frame-options: deny\r\n")
	assert.NotContains(t, head, "x-powered-by", head)
}

// TestRulesKeepOrder: a rule's delete leaves the lines of another name in
// their order, on the request sent upstream and on the answer
// (fasthttp's Del moves the header's last line into the hole: the
// request's last is its X-Request-Id until the first delete, hence two).
func TestRulesKeepOrder(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				br := bufio.NewReader(c)
				for {
					req, err := http.ReadRequest(br)
					if err != nil {
						return
					}
					io.Copy(io.Discard, req.Body)
					got := strings.Join(req.Header.Values("Accept"), ",")
					io.WriteString(c, "HTTP/1.1 200 OK\r\nX-Powered-By: express\r\nLink: <a>\r\nlink: <b>\r\nVary: A\r\nLink: <c>\r\nVary: B\r\n"+
						"Content-Length: "+strconv.Itoa(len(got))+"\r\n\r\n"+got)
				}
			}()
		}
	}()
	r, err := sites.New(sites.Config{Default: sites.Site{Proxy: []string{"http://" + ln.Addr().String()},
		RequestHeaders:  sites.HeaderRules{Delete: []string{"X-Debug", "X-Trace"}},
		ResponseHeaders: sites.HeaderRules{Delete: []string{"X-Powered-By"}}},
		Proxy: quietProxy()})
	require.NoError(t, err)
	t.Cleanup(r.Close)
	ts := tlstest.Handler(t, r.Handle)
	c := dialNoSNI(t, ts)
	resp := tlstest.RoundTrip(t, c, bufio.NewReader(c), "GET / HTTP/1.1\r\nHost: x\r\nX-Debug: 1\r\nX-Trace: 1\r\nAccept: 1\r\nAccept: 2\r\nX-Other: o\r\nAccept: 3\r\n\r\n")
	assert.Equal(t, "1,2,3", string(resp.Body()))
	var links, vary []string
	for k, v := range resp.Header.All() {
		switch strings.ToLower(string(k)) {
		case "link":
			links = append(links, string(v))
		case "vary":
			vary = append(vary, string(v))
		}
	}
	assert.Equal(t, []string{"<a>", "<b>", "<c>"}, links, resp.Header.String())
	assert.Equal(t, []string{"A", "B"}, vary, resp.Header.String())
	assert.NotContains(t, strings.ToLower(resp.Header.String()), "x-powered-by")
}

// TestRequestIDKeepsOrder: a client's two X-Request-Id lines become one,
// and the lines of other names keep their order on the way upstream
// (fasthttp's Del filled the holes with the header's last lines: Cookie
// and Accept reached the upstream back to front).
func TestRequestIDKeepsOrder(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				br := bufio.NewReader(c)
				for {
					req, err := http.ReadRequest(br)
					if err != nil {
						return
					}
					io.Copy(io.Discard, req.Body)
					got := strings.Join(req.Header.Values("Accept"), ",") + "|" + strings.Join(req.Header.Values("Cookie"), ",") +
						"|" + strings.Join(req.Header.Values("X-Request-Id"), ",")
					io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: "+strconv.Itoa(len(got))+"\r\n\r\n"+got)
				}
			}()
		}
	}()
	r, err := sites.New(sites.Config{Default: sites.Site{Proxy: []string{"http://" + ln.Addr().String()}}, Proxy: quietProxy()})
	require.NoError(t, err)
	t.Cleanup(r.Close)
	ts := tlstest.Handler(t, r.Handle)
	c := dialNoSNI(t, ts)
	resp := tlstest.RoundTrip(t, c, bufio.NewReader(c), "GET / HTTP/1.1\r\nHost: x\r\nX-Request-Id: abc-1\r\nX-Request-Id: abc-2\r\n"+
		"Accept: 1\r\nCookie: a=1\r\nAccept: 2\r\nCookie: a=2\r\n\r\n")
	assert.Equal(t, "1,2|a=1,a=2|abc-1", string(resp.Body()))
}
