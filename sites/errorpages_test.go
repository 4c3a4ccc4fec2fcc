package sites_test

import (
	"bufio"
	"net"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/valyala/fasthttp"

	"github.com/fastserve/fastserve/internal/tlstest"
	"github.com/fastserve/fastserve/sites"
)

// TestErrorPages: a site's pages replace the error answers the server and
// the proxy make (a file not found, an upstream down), keeping the
// status; an upstream's own error answer (a JSON API's 404) is left as it
// is.
func TestErrorPages(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	api := &fasthttp.Server{Handler: func(ctx *fasthttp.RequestCtx) {
		ctx.SetStatusCode(404)
		ctx.SetContentType("application/json")
		ctx.WriteString(`{"error":"no such user"}`)
	}}
	go api.Serve(ln)
	t.Cleanup(func() { api.Shutdown() })
	dead, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	deadURL := "http://" + dead.Addr().String()
	dead.Close()

	dir := root(t, map[string]string{"index.html": "home", "errors/404.html": "<h1>not here</h1>", "errors/502.html": "<h1>back soon</h1>"})
	r, err := sites.New(sites.Config{Sites: []sites.Site{{
		Hosts:      []string{"a.test"},
		Root:       dir,
		ErrorPages: map[int]string{404: "errors/404.html", 502: "errors/502.html"},
		Routes: []sites.Route{
			{Path: "/api/", Proxy: []string{"http://" + ln.Addr().String()}},
			{Path: "/down/", Proxy: []string{deadURL}},
		},
	}}, Proxy: quietProxy()})
	require.NoError(t, err)
	t.Cleanup(r.Close)
	ts := tlstest.Handler(t, r.Handle)
	c := dialNoSNI(t, ts)
	br := bufio.NewReader(c)
	get := func(path string) *fasthttp.Response {
		return tlstest.RoundTrip(t, c, br, "GET "+path+" HTTP/1.1\r\nHost: a.test\r\n\r\n")
	}

	resp := get("/nope")
	assert.Equal(t, 404, resp.StatusCode())
	assert.Equal(t, "<h1>not here</h1>", string(resp.Body()))
	assert.Equal(t, "text/html; charset=utf-8", string(resp.Header.ContentType()))

	resp = get("/api/users/7")
	assert.Equal(t, 404, resp.StatusCode())
	assert.Equal(t, `{"error":"no such user"}`, string(resp.Body()), "the upstream's own error body")
	assert.Equal(t, "application/json", string(resp.Header.ContentType()))

	resp = get("/down/x")
	assert.Equal(t, 502, resp.StatusCode())
	assert.Equal(t, "<h1>back soon</h1>", string(resp.Body()), "the proxy's own 502")

	_, err = sites.New(sites.Config{Sites: []sites.Site{{Hosts: []string{"x.test"}, Root: dir, ErrorPages: map[int]string{404: "missing.html", 200: "errors/404.html"}}}})
	assert.ErrorContains(t, err, "Sites[0].ErrorPages: error-pages[200]: a status from 400 to 599")
}
