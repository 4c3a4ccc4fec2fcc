package proxy_test

import (
	"github.com/valyala/fasthttp"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/fastserve/fastserve/proxy"
)

// TestAmbiguousPathsRefused: routes are chosen on the normalized path,
// while the request URI goes upstream as the client sent it; a path whose
// raw bytes an upstream may resolve otherwise (an encoded slash or
// backslash, a dot segment, plain, encoded or hidden behind Tomcat's ";"
// parameters) is 400, and reaches no upstream (before: /api/..%2fup/x was
// routed to /up/'s upstream, which got the raw bytes, and
// /up/..;/..;/api/secret reached /up/'s upstream, where Tomcat resolves
// it to /api/secret). Unambiguous escapes and any query go through.
func TestAmbiguousPathsRefused(t *testing.T) {
	api := newRawUpstream(t, ok("api"))
	up := newRawUpstream(t, ok("up"))
	p := newProxy(t, proxy.Config{Routes: []proxy.Route{
		{Path: "/api/", Upstreams: []string{api.URL()}},
		{Path: "/up/", Upstreams: []string{up.URL()}},
	}})
	ts := startProxy(t, p)
	for _, path := range []string{
		"/api/..%2fup/x", "/api/..%2Fup/x", "/up/..;/..;/api/secret", "/up/..;x/api", "/api/%2e%2e/up/x",
		"/api/.%2E/up/x", "/api/../up/x", "/api/./x", "/api/..%5cup", "/api/..\\up", "/api/a%2fb",
		"/api/x/..", "/api/%00", "/up/;/../api/",
	} {
		head, _, _ := proxyExchange(t, ts, "GET "+path+" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
		assert.Contains(t, head, "HTTP/1.1 400 ", path)
	}
	assert.Empty(t, up.Seen(), "no ambiguous path reached an upstream")
	assert.Empty(t, api.Seen(), "no ambiguous path reached an upstream")

	for path, want := range map[string]string{
		"/api/v1/x?q=..%2f../x": "from api", "/api/a%20b": "from api", "/api/x;v=1": "from api",
		"/up/...": "from up", "/up/.x": "from up", "/api/%7Euser": "from api",
	} {
		_, _, body := proxyExchange(t, ts, "GET "+path+" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
		assert.Equal(t, want, body, path)
	}
	var uris []string
	for _, s := range api.Seen() {
		uris = append(uris, s.URI)
	}
	assert.Contains(t, uris, "/api/v1/x?q=..%2f../x", "the URI goes as sent")

	// An absolute-form target goes in origin form, its path as sent.
	_, _, body := proxyExchange(t, ts, "GET http://x/api/abs%7E?k=v HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
	assert.Equal(t, "from api", body)
	seen := api.Seen()
	assert.Equal(t, "/api/abs%7E?k=v", seen[len(seen)-1].URI)
}

// TestStripPrefix: a route with StripPrefix sends the path without its
// prefix, the query kept, both as sent; a prefix not in the request as
// sent (percent-encoded) is 400, since it could not be stripped as
// matched.
func TestStripPrefix(t *testing.T) {
	up := newRawUpstream(t, ok("up"))
	p := newProxy(t, proxy.Config{Routes: []proxy.Route{
		{Path: "/api/", Upstreams: []string{up.URL()}, StripPrefix: true},
		{Path: "/v2", Upstreams: []string{up.URL()}, StripPrefix: true},
	}})
	ts := startProxy(t, p)
	for sent, want := range map[string]string{
		"/api/v1/x?q=1": "/v1/x?q=1", "/api/": "/", "/api/a%20b": "/a%20b", "/v2/users": "/users", "/v2": "/",
	} {
		_, _, body := proxyExchange(t, ts, "GET "+sent+" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
		assert.Equal(t, "from up", body, sent)
		seen := up.Seen()
		assert.Equal(t, want, seen[len(seen)-1].URI, sent)
	}
	head, _, _ := proxyExchange(t, ts, "GET /%61pi/v1 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
	assert.Contains(t, head, "HTTP/1.1 400 ")
}

// TestAddPrefix: AddPrefix goes before the path sent upstream, after
// StripPrefix; a prefix that is not a plain path is refused by name.
func TestAddPrefix(t *testing.T) {
	up := newRawUpstream(t, ok("up"))
	p := newProxy(t, proxy.Config{Routes: []proxy.Route{
		{Path: "/api/", Upstreams: []string{up.URL()}, StripPrefix: true, AddPrefix: "/v2/"},
		{Path: "/", Upstreams: []string{up.URL()}, AddPrefix: "/app"},
	}})
	ts := startProxy(t, p)
	for sent, want := range map[string]string{"/api/users?x=1": "/v2/users?x=1", "/api/": "/v2/", "/home": "/app/home", "/": "/app/"} {
		proxyExchange(t, ts, "GET "+sent+" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
		seen := up.Seen()
		assert.Equal(t, want, seen[len(seen)-1].URI, sent)
	}
	for _, bad := range []string{"v2", "/a/../b", "/a?b", "/a%2fb"} {
		_, err := proxy.New(proxy.Config{Routes: []proxy.Route{{Path: "/", Upstreams: []string{up.URL()}, AddPrefix: bad}}})
		assert.ErrorContains(t, err, "Routes[0].AddPrefix", bad)
	}
}

// TestLoosePathsRefused: a path that an upstream reading paths loosely
// (Tomcat's ";" parameters, IIS's case and trailing dots) would take to
// another route than the one chosen is refused, so a guarded route is
// not reached through an open one; "/admin" belongs to "/admin/".
func TestLoosePathsRefused(t *testing.T) {
	open := newRawUpstream(t, ok("open"))
	admin := newRawUpstream(t, ok("admin"))
	p := newProxy(t, proxy.Config{Routes: []proxy.Route{
		{Path: "/", Upstreams: []string{open.URL()}},
		{Path: "/admin/", Upstreams: []string{admin.URL()}},
	}})
	ts := startProxy(t, p)
	for _, path := range []string{"/admin;jsessionid=1/x", "/admin;/x", "/;/admin/x", "/admin%3b/x", "/ADMIN/x", "/admin./x", "/admin%20/x", "/Admin/"} {
		head, _, _ := proxyExchange(t, ts, "GET "+path+" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
		assert.Contains(t, head, "HTTP/1.1 400 ", path)
	}
	assert.Empty(t, open.Seen(), "none reached the open route's upstream")
	for path, want := range map[string]string{
		"/admin": "from admin", "/admin/x": "from admin", "/Docs/Index.html": "from open", "/a;v=1/b": "from open", "/file.json": "from open",
	} {
		_, _, body := proxyExchange(t, ts, "GET "+path+" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
		assert.Equal(t, want, body, path)
	}
}

// TestLooseRouteAllocatesNothing: reading a path loosely, which every
// proxied request with a dot, an escape or upper case in its path does,
// allocates nothing.
func TestLooseRouteAllocatesNothing(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector drops pooled buffers at random")
	}
	up := newRawUpstream(t, ok("up"))
	p := newProxy(t, proxy.Config{Routes: []proxy.Route{{Path: "/", Upstreams: []string{up.URL()}}, {Path: "/admin/", Upstreams: []string{up.URL()}}}})
	h := p.Handler(nil)
	var ctx fasthttp.RequestCtx
	ctx.Request.SetRequestURI("/Api/Users/7.JSON;v=1")
	ctx.Request.Header.SetHost("x")
	h(&ctx) // warm the pools; the upstream answers
	allocs := testing.AllocsPerRun(50, func() { proxy.LooseRouteForTest(p, []byte("/Api/Users/7.JSON;v=1")) })
	assert.Zero(t, allocs)
}
