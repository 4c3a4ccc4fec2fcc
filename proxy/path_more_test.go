package proxy_test

import (
	"net/url"
	"path"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/fastserve/fastserve/proxy"
)

// TestTargetRoutedAsSent: the target that reaches an upstream must
// name the path the route was chosen on. A target starting with "//" that
// holds "://" is split by fasthttp's URI parser ("//admin/secret://x" is
// host "admin", path "/secret://x"), so routing (and a site's access rules,
// on ctx.Path()) see /secret:/x, while the target, now sent unparsed,
// reaches the "/" upstream as "//admin/secret://x", which nginx or Go
// resolve to /admin/secret:/x: the /admin/ route's content, through
// another route.
func TestTargetRoutedAsSent(t *testing.T) {
	admin := newRawUpstream(t, ok("admin"))
	open := newRawUpstream(t, ok("open"))
	p := newProxy(t, proxy.Config{Routes: []proxy.Route{
		{Path: "/admin/", Upstreams: []string{admin.URL()}},
		{Path: "/", Upstreams: []string{open.URL()}},
	}})
	ts := startProxy(t, p)
	_, _, body := proxyExchange(t, ts, "GET //admin/secret://x HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n")
	if body != "from open" {
		return // refused or routed to /admin/: no confusion
	}
	got := open.Seen()[0].URI
	u, err := url.ParseRequestURI(got)
	if assert.NoError(t, err) {
		assert.NotRegexp(t, "^/admin/", path.Clean(u.Path),
			"routed as /secret:/x to the / upstream, which got %q", got)
	}
}
