package proxy_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/fastserve/fastserve/proxy"
)

func TestBalanceRoundRobin(t *testing.T) {
	ups := []*rawUpstream{newRawUpstream(t, ok("a")), newRawUpstream(t, ok("b")), newRawUpstream(t, ok("c"))}
	p := newProxy(t, proxy.Config{Routes: []proxy.Route{{Path: "/", Balance: "round-robin",
		Upstreams: []string{ups[0].URL(), ups[1].URL(), ups[2].URL()}}}})
	ts := startProxy(t, p)
	var got []string
	for range 9 {
		_, _, body := proxyExchange(t, ts, "GET / HTTP/1.1\r\nHost: a.test\r\n\r\n")
		got = append(got, body)
	}
	for i := 3; i < 9; i++ {
		assert.Equal(t, got[i-3], got[i], "in turn: %v", got)
	}
	for _, u := range ups {
		assert.Len(t, u.Seen(), 3)
	}
}

func TestBalanceHash(t *testing.T) {
	names := []string{"a", "b", "c", "d"}
	var urls []string
	for _, n := range names {
		urls = append(urls, newRawUpstream(t, ok(n)).URL())
	}
	for _, tc := range []struct{ key, send string }{
		{"header:X-User", "X-User: %d\r\n"},
		{"cookie:session", "Cookie: other=1; session=%d\r\n"},
	} {
		t.Run(tc.key, func(t *testing.T) {
			p := newProxy(t, proxy.Config{Routes: []proxy.Route{{Path: "/", Balance: "hash", HashKey: tc.key, Upstreams: urls}}})
			ts := startProxy(t, p)
			where := func(k int) string {
				_, _, body := proxyExchange(t, ts, "GET / HTTP/1.1\r\nHost: a.test\r\n"+fmt.Sprintf(tc.send, k)+"\r\n")
				return body
			}
			first := map[int]string{}
			count := map[string]int{}
			for k := range 80 {
				first[k] = where(k)
				count[first[k]]++
				assert.Equal(t, first[k], where(k), "key %d sticks", k)
			}
			for _, n := range names {
				assert.Greater(t, count["from "+n], 5, "keys spread over every upstream: %v", count)
			}
		})
	}

	// Without the header, the client's address: every request of this
	// test's one address goes to one upstream.
	p := newProxy(t, proxy.Config{Routes: []proxy.Route{{Path: "/", Balance: "hash", HashKey: "header:X-User", Upstreams: urls}}})
	ts := startProxy(t, p)
	_, _, one := proxyExchange(t, ts, "GET / HTTP/1.1\r\nHost: a.test\r\n\r\n")
	for range 10 {
		_, _, body := proxyExchange(t, ts, "GET / HTTP/1.1\r\nHost: a.test\r\n\r\n")
		assert.Equal(t, one, body)
	}
}

// TestBalanceHashMovesOnlyTheDownUpstreamsKeys: rendezvous hashing.
func TestBalanceHashMovesOnlyTheDownUpstreamsKeys(t *testing.T) {
	var ups []*rawUpstream
	var urls []string
	for _, n := range []string{"a", "b", "c"} {
		u := newRawUpstream(t, ok(n))
		ups, urls = append(ups, u), append(urls, u.URL())
	}
	p := newProxy(t, proxy.Config{Routes: []proxy.Route{{Path: "/", Balance: "hash", HashKey: "header:K", Upstreams: urls}}})
	ts := startProxy(t, p)
	where := func(k int) string {
		_, resp, body := proxyExchange(t, ts, fmt.Sprintf("GET / HTTP/1.1\r\nHost: a.test\r\nK: %d\r\n\r\n", k))
		require.Equal(t, http.StatusOK, resp.StatusCode, body)
		return body
	}
	before := map[int]string{}
	for k := range 60 {
		before[k] = where(k)
	}
	ups[1].Close() // b goes: a connect fails, b is marked down
	moved := 0
	for k := range 60 {
		now := where(k)
		if before[k] == "from b" {
			assert.NotEqual(t, "from b", now)
			moved++
		} else {
			assert.Equal(t, before[k], now, "key %d was not b's, yet moved", k)
		}
	}
	assert.Greater(t, moved, 0)
}

// TestPassiveHealth: an upstream whose requests fail MaxFails times in a
// row is taken out until a health check passes.
func TestPassiveHealth(t *testing.T) {
	bad := newRawUpstream(t, func(seen) string { return "" }) // closes without answering
	good := newRawUpstream(t, ok("good"))
	p := newProxy(t, proxy.Config{Routes: []proxy.Route{{Path: "/", Balance: "round-robin", Upstreams: []string{bad.URL(), good.URL()}}},
		MaxFails: 2})
	ts := startProxy(t, p)
	for range 6 {
		// A POST is not retried: each that lands on bad fails.
		_, _, _ = proxyExchange(t, ts, "POST / HTTP/1.1\r\nHost: a.test\r\nContent-Length: 0\r\n\r\n")
	}
	assert.Len(t, bad.Seen(), 2, "bad was tried MaxFails times, then taken out")
	assert.False(t, p.Stats().Upstreams[0].Up)
	assert.Contains(t, strings.Join(metricsText(p), "\n"), `fastserve_upstream_up{upstream="`+bad.URL()+`"} 0`)
}

func TestBalanceConfigErrors(t *testing.T) {
	for _, tc := range []struct {
		r    proxy.Route
		want string
	}{
		{proxy.Route{Balance: "random"}, `proxy: Routes[0].Balance must be "least-loaded", "round-robin" or "hash", got "random"`},
		{proxy.Route{Balance: "hash", HashKey: "query:x"}, `proxy: Routes[0].HashKey must be "addr", "header:NAME" or "cookie:NAME", got "query:x"`},
		{proxy.Route{HashKey: "header:X"}, `proxy: Routes[0].HashKey must be empty unless the route balances by "hash", got "header:X"`},
	} {
		tc.r.Path, tc.r.Upstreams = "/", []string{"http://127.0.0.1:1"}
		err := proxy.Config{Routes: []proxy.Route{tc.r}}.Validate()
		require.Error(t, err)
		assert.Contains(t, err.Error(), tc.want)
	}
}
