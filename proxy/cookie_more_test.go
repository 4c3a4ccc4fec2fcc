package proxy_test

import (
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/fastserve/fastserve/proxy"
)

// TestCookieAsSent: the Cookie header goes upstream as the client
// sent it.
func TestCookieAsSent(t *testing.T) {
	up := newRawUpstream(t, ok("up"))
	p := newProxy(t, proxy.Config{Routes: []proxy.Route{{Path: "/", Upstreams: []string{up.URL()}}}})
	ts := startProxy(t, p)
	const cookie = `a=1;b=2;  c; =d; e="q"; f=x=y; a=3`
	for _, extra := range []string{"", "Connection: keep-alive\r\n"} {
		proxyExchange(t, ts, "GET / HTTP/1.1\r\nHost: x\r\n"+extra+"Cookie: "+cookie+"\r\n\r\n")
		s := up.Seen()
		assert.Equal(t, []string{cookie}, s[len(s)-1].header("Cookie"), "with %q", extra)
	}
}
