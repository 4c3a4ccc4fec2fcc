package proxy_test

import (
	"net/url"
	"path"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/fastserve/fastserve/proxy"
)

// TestTargetNoHost10 (pre-existing, in 496137a too): an HTTP/1.0
// request without Host has its target split by fasthttp's URI parser
// whatever it holds ("//admin/secret" is host "admin", path "/secret"),
// so routing sees /secret; the upstream gets "//admin/secret", which
// nginx (merge_slashes) or Tomcat read as /admin/secret.
func TestTargetNoHost10(t *testing.T) {
	admin := newRawUpstream(t, ok("admin"))
	open := newRawUpstream(t, ok("open"))
	p := newProxy(t, proxy.Config{Routes: []proxy.Route{
		{Path: "/admin/", Upstreams: []string{admin.URL()}},
		{Path: "/", Upstreams: []string{open.URL()}},
	}})
	ts := startProxy(t, p)
	_, _, body := proxyExchange(t, ts, "GET //admin/secret HTTP/1.0\r\n\r\n")
	if body != "from open" {
		return
	}
	got := open.Seen()[0].URI
	u, err := url.ParseRequestURI(got)
	if assert.NoError(t, err) {
		assert.NotRegexp(t, "^/admin/", path.Clean(u.Path), "routed as /secret to the / upstream, which got %q", got)
	}
}
