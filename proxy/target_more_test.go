package proxy_test

import (
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/fastserve/fastserve/proxy"
)

// TestTargetsSound: what reaches the upstream for odd targets that
// fasthttp's server accepts (checks that passed).
func TestTargetsSound(t *testing.T) {
	up := newRawUpstream(t, ok("up"))
	p := newProxy(t, proxy.Config{Routes: []proxy.Route{{Path: "/", Upstreams: []string{up.URL()}}}})
	ts := startProxy(t, p)
	for target, want := range map[string]string{
		"*":                "*",
		"/a#frag?x":        "/a",
		"/a?q=1#f":         "/a?q=1",
		"/a?x=%zz&y=/../b": "/a?x=%zz&y=/../b",
		"http://x/a//b?c":  "/a//b?c",
		"HTTP://X/p%41th":  "/p%41th",
		"/caf\xc3\xa9":     "/caf\xc3\xa9",
		"/a//b":            "/a//b",
	} {
		method := "GET"
		if target == "*" {
			method = "OPTIONS"
		}
		before := len(up.Seen())
		head, _, _ := proxyExchange(t, ts, method+" "+target+" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
		s := up.Seen()
		if assert.Len(t, s, before+1, "%q: %s", target, head) {
			assert.Equal(t, want, s[len(s)-1].URI, target)
		}
	}
}
