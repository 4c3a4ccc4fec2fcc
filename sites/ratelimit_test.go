package sites_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/valyala/fasthttp"

	"github.com/fastserve/fastserve/internal/field"
	"github.com/fastserve/fastserve/internal/tlstest"
	"github.com/fastserve/fastserve/ratelimit"
	"github.com/fastserve/fastserve/sites"
)

// perHour is n requests an hour: nothing comes back during a test.
func perHour(n int) ratelimit.Rate { return ratelimit.Rate{Count: n, Per: time.Hour} }

// metricLines are the lines of r's /metrics that start with prefix.
func metricLines(r *sites.Router, prefix string) []string {
	var b bytes.Buffer
	r.WritePrometheus(&b)
	var out []string
	for _, l := range strings.Split(b.String(), "\n") {
		if strings.HasPrefix(l, prefix) {
			out = append(out, l)
		}
	}
	return out
}

// dialFrom opens a TLS connection to ts from the local address ip.
func dialFrom(t *testing.T, ts *tlstest.Server, ip string) (*tls.Conn, *bufio.Reader) {
	t.Helper()
	d := &tls.Dialer{
		NetDialer: &net.Dialer{Timeout: 5 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}},
		Config:    &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"http/1.1"}},
	}
	c, err := d.DialContext(context.Background(), "tcp", ts.Addr)
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	return c.(*tls.Conn), bufio.NewReader(c)
}

// TestRateLimit: a site's limit and its route's both apply; past one, a
// client gets 429 with Retry-After, the site's header rules and its 429
// page, before the upstream is asked; a request the route refuses costs
// nothing of the site's budget; another client has its own; /metrics
// counts each decision.
func TestRateLimit(t *testing.T) {
	api := upstream(t, "api")
	cfg := sites.Config{
		Sites: []sites.Site{{
			Hosts:      []string{"a.test"},
			Root:       root(t, map[string]string{"index.html": "a", "429.html": "slow down"}),
			Headers:    map[string]string{"X-Frame-Options": "DENY"},
			ErrorPages: map[int]string{429: "429.html"},
			RateLimit:  ratelimit.Config{Rate: perHour(1), Burst: 2},
			Routes: []sites.Route{{
				Path: "/api/", Proxy: []string{api},
				RateLimit:       ratelimit.Config{Rate: perHour(1)},
				ResponseHeaders: sites.HeaderRules{Set: map[string]string{"X-Route": "api"}},
			}},
		}},
		Proxy: quietProxy(),
	}
	r, err := sites.New(cfg)
	require.NoError(t, err)
	t.Cleanup(r.Close)
	ts := tlstest.Handler(t, r.Handle)
	c, br := dialFrom(t, ts, "127.0.0.1")
	get := func(path string) *fasthttp.Response {
		return tlstest.RoundTrip(t, c, br, "GET "+path+" HTTP/1.1\r\nHost: a.test\r\n\r\n")
	}

	resp := get("/api/x")
	assert.Equal(t, 200, resp.StatusCode())
	assert.Equal(t, "api /api/x", string(resp.Body()))

	resp = get("/api/x")
	assert.Equal(t, 429, resp.StatusCode(), "past the route's limit")
	assert.Equal(t, "3600", string(resp.Header.Peek("Retry-After")))
	assert.Equal(t, "DENY", string(resp.Header.Peek("X-Frame-Options")), "the site's headers")
	assert.Equal(t, "api", string(resp.Header.Peek("X-Route")), "the route's headers")
	assert.Equal(t, "slow down", string(resp.Body()), "the site's page for 429")

	for i := range 2 {
		resp = get("/")
		assert.Equal(t, 200, resp.StatusCode(), "request %d to the site: the refused one cost nothing of its budget", i)
		assert.Equal(t, "a", string(resp.Body()))
	}
	resp = get("/")
	assert.Equal(t, 429, resp.StatusCode(), "past the site's limit")
	assert.Equal(t, "3600", string(resp.Header.Peek("Retry-After")))
	assert.Equal(t, "DENY", string(resp.Header.Peek("X-Frame-Options")))
	assert.Empty(t, resp.Header.Peek("X-Route"))

	other, obr := dialFrom(t, ts, "127.0.0.2")
	resp = tlstest.RoundTrip(t, other, obr, "GET /api/x HTTP/1.1\r\nHost: a.test\r\n\r\n")
	assert.Equal(t, 200, resp.StatusCode(), "another client has its own budgets")

	assert.Equal(t, []string{
		`fastserve_rate_limit_total{site="a.test",route="",result="passed"} 5`,
		`fastserve_rate_limit_total{site="a.test",route="",result="limited"} 1`,
		`fastserve_rate_limit_total{site="a.test",route="",result="dry_run_limited"} 0`,
		`fastserve_rate_limit_total{site="a.test",route="/api/",result="passed"} 2`,
		`fastserve_rate_limit_total{site="a.test",route="/api/",result="limited"} 1`,
		`fastserve_rate_limit_total{site="a.test",route="/api/",result="dry_run_limited"} 0`,
	}, metricLines(r, "fastserve_rate_limit_total"))
	assert.Equal(t, []string{
		`fastserve_rate_limit_keys{site="a.test",route=""} 2`,
		`fastserve_rate_limit_keys{site="a.test",route="/api/"} 2`,
	}, metricLines(r, "fastserve_rate_limit_keys"))
	assert.Contains(t, metricLines(r, "fastserve_site_requests_total"), `fastserve_site_requests_total{site="a.test",route="/api/",code="4xx"} 1`)
	assert.Contains(t, metricLines(r, "fastserve_site_requests_total"), `fastserve_site_requests_total{site="a.test",route="",code="4xx"} 1`)
}

// handle sends GET path for host from the client address ip through r,
// and returns the status and Retry-After.
func handle(r *sites.Router, host, path, ip string) (int, string) {
	var ctx fasthttp.RequestCtx
	ctx.SetRemoteAddr(&net.TCPAddr{IP: net.ParseIP(ip), Port: 40000})
	ctx.Request.SetRequestURI(path)
	ctx.Request.Header.SetHost(host)
	r.Handle(&ctx)
	return ctx.Response.StatusCode(), string(ctx.Response.Header.Peek("Retry-After"))
}

func okHandler(ctx *fasthttp.RequestCtx) { ctx.SetBodyString("ok") }

// TestRateLimitDryRun: a dry run refuses nothing, and counts what it
// would have refused.
func TestRateLimitDryRun(t *testing.T) {
	r, err := sites.New(sites.Config{Default: sites.Site{Handler: okHandler, RateLimit: ratelimit.Config{Rate: perHour(1), DryRun: true}}})
	require.NoError(t, err)
	t.Cleanup(r.Close)
	for range 3 {
		code, retry := handle(r, "x.test", "/", "192.0.2.1")
		assert.Equal(t, 200, code)
		assert.Empty(t, retry)
	}
	assert.Equal(t, []string{
		`fastserve_rate_limit_total{site="default",route="",result="passed"} 1`,
		`fastserve_rate_limit_total{site="default",route="",result="limited"} 0`,
		`fastserve_rate_limit_total{site="default",route="",result="dry_run_limited"} 2`,
	}, metricLines(r, "fastserve_rate_limit_total"))
}

// TestRateLimitReload: a reload that leaves a limit as it was keeps its
// clients' budgets (a reload does not forgive anyone); one that changes
// it starts afresh; the counts go on either way.
func TestRateLimitReload(t *testing.T) {
	cfg := func(burst int, header string) sites.Config {
		return sites.Config{Sites: []sites.Site{{
			Hosts:     []string{"a.test"},
			Handler:   okHandler,
			Headers:   map[string]string{"X-Version": header},
			RateLimit: ratelimit.Config{Rate: perHour(1), Burst: burst},
		}}}
	}
	r, err := sites.New(cfg(0, "1"))
	require.NoError(t, err)
	t.Cleanup(r.Close)
	code, _ := handle(r, "a.test", "/", "192.0.2.1")
	require.Equal(t, 200, code)
	code, _ = handle(r, "a.test", "/", "192.0.2.1")
	require.Equal(t, 429, code)

	require.NoError(t, r.Reload(cfg(0, "2"), time.Second))
	code, _ = handle(r, "a.test", "/", "192.0.2.1")
	assert.Equal(t, 429, code, "the same limit after a reload: the client's budget is kept")

	require.NoError(t, r.Reload(cfg(1, "2"), time.Second))
	code, _ = handle(r, "a.test", "/", "192.0.2.1")
	assert.Equal(t, 200, code, "a changed limit starts afresh")
	assert.Equal(t, []string{
		`fastserve_rate_limit_total{site="a.test",route="",result="passed"} 2`,
		`fastserve_rate_limit_total{site="a.test",route="",result="limited"} 2`,
		`fastserve_rate_limit_total{site="a.test",route="",result="dry_run_limited"} 0`,
	}, metricLines(r, "fastserve_rate_limit_total"), "counted across reloads")
}

// TestRateLimitByHeader: a limit keyed by a header gives each value its
// budget, and a request without it is limited by its address.
func TestRateLimitByHeader(t *testing.T) {
	r, err := sites.New(sites.Config{Default: sites.Site{Handler: okHandler, RateLimit: ratelimit.Config{Rate: perHour(1), Header: "X-Api-Key"}}})
	require.NoError(t, err)
	t.Cleanup(r.Close)
	req := func(key string) int {
		var ctx fasthttp.RequestCtx
		ctx.SetRemoteAddr(&net.TCPAddr{IP: net.ParseIP("192.0.2.1")})
		ctx.Request.SetRequestURI("/")
		if key != "" {
			ctx.Request.Header.Set("X-Api-Key", key)
		}
		r.Handle(&ctx)
		return ctx.Response.StatusCode()
	}
	assert.Equal(t, 200, req("k1"))
	assert.Equal(t, 200, req("k2"), "another key, the same address")
	assert.Equal(t, 200, req(""), "no key: the address")
	assert.Equal(t, 429, req("k1"))
	assert.Equal(t, 429, req(""))
}

// TestRateLimitRefuses: each invalid rate limit is named by its path in
// Config, and a limit with no rate is an error, not silently no limit.
func TestRateLimitRefuses(t *testing.T) {
	ok := perHour(1)
	cfg := sites.Config{
		Default: sites.Site{RateLimit: ratelimit.Config{Rate: ok, Header: "X Api"}},
		Sites: []sites.Site{
			{Hosts: []string{"a.test"}, RateLimit: ratelimit.Config{Burst: 3}},
			{Hosts: []string{"b.test"}, Routes: []sites.Route{{Path: "/api/", Proxy: []string{"http://127.0.0.1:1"}, RateLimit: ratelimit.Config{Rate: ok, Burst: -1, IPv6Prefix: 200}}}},
		},
		Proxy: quietProxy(),
	}
	err := cfg.Validate()
	require.Error(t, err)
	var fields []string
	for _, e := range field.Leaves(err) {
		var ce *sites.ConfigError
		if assert.ErrorAs(t, e, &ce) {
			fields = append(fields, ce.Field)
		}
	}
	assert.Equal(t, []string{
		"Default.RateLimit.Header", "Sites[0].RateLimit.Rate",
		"Sites[1].Routes[0].RateLimit.Burst", "Sites[1].Routes[0].RateLimit.IPv6Prefix",
	}, fields)
	assert.ErrorContains(t, err, "sites: Sites[1].Routes[0].RateLimit.Burst must be from 0 to 1000000, got -1")
	_, err = sites.New(cfg)
	assert.Error(t, err)
}

// TestRateLimitAllocs: a request judged by a site's limit, and a
// route's, passed or refused, allocates nothing.
func TestRateLimitAllocs(t *testing.T) {
	fast, slow := ratelimit.Rate{Count: 1e9, Per: time.Second}, perHour(1)
	api := upstream(t, "api")
	for _, tc := range []struct {
		name        string
		site, route ratelimit.Rate
		path        string
		want        int
	}{
		{"site-passed", fast, slow, "/x", 200},
		{"site-limited", slow, slow, "/x", 429},
		{"route-limited", fast, slow, "/api/x", 429},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := limitedRouter(t, tc.site, tc.route, api)
			var ctx fasthttp.RequestCtx
			ctx.SetRemoteAddr(&net.TCPAddr{IP: net.ParseIP("192.0.2.1")})
			serve := func() {
				ctx.Request.Reset()
				ctx.Response.Reset()
				ctx.Request.SetRequestURI(tc.path)
				ctx.Request.Header.SetHost("a.test")
				r.Handle(&ctx)
			}
			serve()
			allocs := testing.AllocsPerRun(100, serve)
			assert.Zero(t, allocs)
			assert.Equal(t, tc.want, ctx.Response.StatusCode())
		})
	}
}

// limitedRouter is a site a.test served by okHandler, with a limit of
// site (a burst of 1,000 at most) and a route /api/ to api with a limit
// of route.
func limitedRouter(t testing.TB, site, route ratelimit.Rate, api string) *sites.Router {
	limit := func(r ratelimit.Rate) ratelimit.Config {
		if r == (ratelimit.Rate{}) {
			return ratelimit.Config{}
		}
		return ratelimit.Config{Rate: r, Burst: min(r.Count, 1000) - 1}
	}
	r, err := sites.New(sites.Config{
		Sites: []sites.Site{{
			Hosts: []string{"a.test"}, Handler: okHandler, RateLimit: limit(site),
			Headers: map[string]string{"X-Frame-Options": "DENY"},
			Routes:  []sites.Route{{Path: "/api/", Proxy: []string{api}, RateLimit: limit(route)}},
		}},
		Proxy: quietProxy(),
	})
	require.NoError(t, err)
	t.Cleanup(r.Close)
	return r
}

// BenchmarkHandleRateLimit: a request to a site with a rate limit, that
// passes or is refused (429 with Retry-After), or to one without
// (result=none), from one client or from clients spread over many
// addresses, serially and in parallel: nothing is allocated.
func BenchmarkHandleRateLimit(b *testing.B) {
	for _, tc := range []struct {
		result string
		rate   ratelimit.Rate
	}{
		{"none", ratelimit.Rate{}},
		{"passed", ratelimit.Rate{Count: 1e9, Per: time.Second}},
		{"limited", perHour(1)},
	} {
		for _, parallel := range []bool{false, true} {
			b.Run(fmt.Sprintf("result=%s/parallel=%t", tc.result, parallel), func(b *testing.B) {
				r := limitedRouter(b, tc.rate, tc.rate, "http://127.0.0.1:1")
				serve := func(ctx *fasthttp.RequestCtx) {
					ctx.Request.Reset()
					ctx.Response.Reset()
					ctx.Request.SetRequestURI("/index.html")
					ctx.Request.Header.SetHost("a.test")
					r.Handle(ctx)
				}
				b.ReportAllocs()
				if !parallel {
					var ctx fasthttp.RequestCtx
					ctx.SetRemoteAddr(&net.TCPAddr{IP: net.ParseIP("192.0.2.1")})
					serve(&ctx)
					b.ResetTimer()
					for b.Loop() {
						serve(&ctx)
					}
					return
				}
				var next atomic.Uint32
				b.RunParallel(func(pb *testing.PB) {
					var ctx fasthttp.RequestCtx
					n := next.Add(1)
					ctx.SetRemoteAddr(&net.TCPAddr{IP: net.IPv4(10, 0, byte(n>>8), byte(n))})
					for pb.Next() {
						serve(&ctx)
					}
				})
			})
		}
	}
}
