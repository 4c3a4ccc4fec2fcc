package sites_test

import (
	"bufio"
	"bytes"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/valyala/fasthttp"

	"github.com/fastserve/fastserve/internal/tlstest"
	"github.com/fastserve/fastserve/sites"
)

// TestHeaderRules: rules merge from the server to the site to the route
// and never drop a wider level's (nginx's add_header inheritance does):
// a route with rules of its own still sends the site's and the server's;
// a name set narrower wins; requests to upstreams get theirs.
func TestHeaderRules(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	echo := &fasthttp.Server{Handler: func(ctx *fasthttp.RequestCtx) {
		ctx.Response.Header.Set("X-Upstream", "1")
		ctx.Response.Header.Set("X-Powered-By", "php")
		ctx.WriteString("team=" + string(ctx.Request.Header.Peek("X-Team")) + " cookie=" + string(ctx.Request.Header.Peek("Cookie")) +
			" tag=" + string(ctx.Request.Header.Peek("X-Tag")))
	}}
	go echo.Serve(ln)
	t.Cleanup(func() { echo.Shutdown() })
	up := "http://" + ln.Addr().String()

	r, err := sites.New(sites.Config{
		ResponseHeaders: sites.HeaderRules{Set: map[string]string{"Strict-Transport-Security": "max-age=31536000"}},
		RequestHeaders:  sites.HeaderRules{Set: map[string]string{"X-Tag": "server"}},
		Sites: []sites.Site{{
			Hosts:           []string{"a.test"},
			Root:            root(t, map[string]string{"index.html": "home"}),
			Headers:         map[string]string{"X-Frame-Options": "DENY"},
			ResponseHeaders: sites.HeaderRules{Set: map[string]string{"Cache-Control": "no-store"}, Delete: []string{"X-Powered-By"}},
			RequestHeaders:  sites.HeaderRules{Delete: []string{"Cookie"}, Set: map[string]string{"X-Team": "web"}},
			Routes: []sites.Route{{
				Path: "/api/", Proxy: []string{up},
				ResponseHeaders: sites.HeaderRules{Set: map[string]string{"Cache-Control": "max-age=5"}, Add: map[string]string{"Vary": "Origin"}},
				RequestHeaders:  sites.HeaderRules{Set: map[string]string{"X-Team": "api"}},
			}},
		}},
		Proxy: quietProxy(),
	})
	require.NoError(t, err)
	t.Cleanup(r.Close)
	ts := tlstest.Handler(t, r.Handle)
	c := dialNoSNI(t, ts)
	br := bufio.NewReader(c)

	resp := tlstest.RoundTrip(t, c, br, "GET /api/x HTTP/1.1\r\nHost: a.test\r\nCookie: s=1\r\n\r\n")
	assert.Equal(t, "team=api cookie= tag=server", string(resp.Body()), "to the upstream: the route's, the site's, the server's")
	assert.Equal(t, "max-age=5", string(resp.Header.Peek("Cache-Control")), "the route's wins")
	assert.Equal(t, "DENY", string(resp.Header.Peek("X-Frame-Options")), "the site's, kept under a route with rules")
	assert.Equal(t, "max-age=31536000", string(resp.Header.Peek("Strict-Transport-Security")), "the server's, kept")
	assert.Empty(t, resp.Header.Peek("X-Powered-By"), "deleted by the site")
	assert.Equal(t, "1", string(resp.Header.Peek("X-Upstream")))
	assert.Equal(t, "Origin", string(resp.Header.Peek("Vary")))

	resp = tlstest.RoundTrip(t, c, br, "GET / HTTP/1.1\r\nHost: a.test\r\n\r\n")
	assert.Equal(t, "no-store", string(resp.Header.Peek("Cache-Control")))
	assert.Equal(t, "DENY", string(resp.Header.Peek("X-Frame-Options")))
	assert.Equal(t, "max-age=31536000", string(resp.Header.Peek("Strict-Transport-Security")))

	_, err = sites.New(sites.Config{Sites: []sites.Site{{Hosts: []string{"x.test"}, Routes: []sites.Route{{
		Path: "/", Proxy: []string{up}, RequestHeaders: sites.HeaderRules{Set: map[string]string{"X-A": "a\r\nEvil: 1"}},
	}}}}})
	assert.ErrorContains(t, err, "Sites[0].Routes[0].RequestHeaders: request-headers: X-A: a value may not hold line breaks")
}

// TestRequestID: a valid X-Request-ID from the client is kept, sent
// upstream and returned; an invalid or missing one is replaced by one the
// server makes, different for each request.
func TestRequestID(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	echo := &fasthttp.Server{Handler: func(ctx *fasthttp.RequestCtx) {
		ctx.Write(bytes.Join(ctx.Request.Header.PeekAll("X-Request-ID"), []byte(",")))
	}}
	go echo.Serve(ln)
	t.Cleanup(func() { echo.Shutdown() })
	r, err := sites.New(sites.Config{Default: sites.Site{Proxy: []string{"http://" + ln.Addr().String()}}, Proxy: quietProxy()})
	require.NoError(t, err)
	t.Cleanup(r.Close)
	ts := tlstest.Handler(t, r.Handle)
	c := dialNoSNI(t, ts)
	br := bufio.NewReader(c)
	get := func(id string) (upstream, returned string) {
		req := "GET / HTTP/1.1\r\nHost: x\r\n"
		if id != "" {
			req += "X-Request-ID: " + id + "\r\n"
		}
		resp := tlstest.RoundTrip(t, c, br, req+"\r\n")
		return string(resp.Body()), string(resp.Header.Peek("X-Request-ID"))
	}
	up, ret := get("4bf92f3577b34da6a3ce929d0e0e4736")
	assert.Equal(t, "4bf92f3577b34da6a3ce929d0e0e4736", up)
	assert.Equal(t, up, ret)
	resp := tlstest.RoundTrip(t, c, br, "GET / HTTP/1.1\r\nHost: x\r\nX-Request-ID: good-1\r\nX-Request-ID: evil \"injected\"\r\n\r\n")
	assert.Equal(t, "good-1", string(resp.Body()), "one line upstream: the first, valid")
	seen := map[string]bool{}
	for _, id := range []string{"", "has space", strings.Repeat("a", 129), "<script>"} {
		up, ret := get(id)
		assert.Regexp(t, `^[0-9a-f]{32}$`, up, "%q replaced", id)
		assert.Equal(t, up, ret)
		assert.False(t, seen[up], "unique")
		seen[up] = true
	}
}

// TestSiteMetrics: answers are counted by site, route and status class,
// with the site's latency; labels come from the configuration only, and
// a reload keeps counting where it was.
func TestSiteMetrics(t *testing.T) {
	cfg := sites.Config{Sites: []sites.Site{{
		Hosts:  []string{"A.test"},
		Root:   root(t, map[string]string{"index.html": "a"}),
		Routes: []sites.Route{{Path: "/api/", Proxy: []string{upstream(t, "api")}}},
	}}, Proxy: quietProxy()}
	r, err := sites.New(cfg)
	require.NoError(t, err)
	t.Cleanup(r.Close)
	ts := tlstest.Handler(t, r.Handle)
	c := dialNoSNI(t, ts)
	br := bufio.NewReader(c)
	get := func(host, path string) {
		tlstest.RoundTrip(t, c, br, "GET "+path+" HTTP/1.1\r\nHost: "+host+"\r\n\r\n")
	}
	get("a.test", "/")
	get("a.test", "/nope")
	get("a.test", "/api/x")
	get("evil-"+strings.Repeat("x", 20)+".test", "/") // the default site: no label of its own
	require.NoError(t, r.Reload(cfg, time.Second))
	get("a.test", "/api/y")

	var b strings.Builder
	r.WritePrometheus(&b)
	out := b.String()
	for _, want := range []string{
		`fastserve_site_requests_total{site="a.test",route="",code="2xx"} 1`,
		`fastserve_site_requests_total{site="a.test",route="",code="4xx"} 1`,
		`fastserve_site_requests_total{site="a.test",route="/api/",code="2xx"} 2`,
		`fastserve_site_requests_total{site="default",route="",code="4xx"} 1`,
		`fastserve_site_request_duration_seconds_count{site="a.test"} 4`,
		`fastserve_site_request_duration_seconds_bucket{site="a.test",le="+Inf"} 4`,
	} {
		assert.Contains(t, out, want)
	}
	assert.NotContains(t, out, "evil", "labels come from the configuration")
}

// TestValidateRules: a redirect's Location with control characters, and
// a rule that would change a message's framing (Content-Length upstream:
// the body silently dropped), are refused by Validate, as New.
func TestValidateRules(t *testing.T) {
	cfg := sites.Config{Sites: []sites.Site{{
		Hosts:     []string{"a.test"},
		Redirects: []sites.Redirect{{Path: "/x", To: "/y\x00z"}},
		Routes: []sites.Route{{Path: "/api/", Proxy: []string{"http://127.0.0.1:1"},
			RequestHeaders: sites.HeaderRules{Set: map[string]string{"content-length": "0"}}}},
	}}}
	err := cfg.Validate()
	assert.ErrorContains(t, err, "Sites[0].Redirects[0].To must be the Location to send")
	assert.ErrorContains(t, err, "Content-Length frames the message")
	_, err = sites.New(cfg)
	assert.Error(t, err)

	// files: options on a site that serves no files do nothing: refused.
	err = sites.Config{Sites: []sites.Site{{Hosts: []string{"p.test"}, Proxy: []string{"http://127.0.0.1:1"},
		Files: sites.Files{Fallback: "/index.html"}}}}.Validate()
	assert.ErrorContains(t, err, "this site serves no files")
}
