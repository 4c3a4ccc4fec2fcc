package sites_test

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/valyala/fasthttp"

	"github.com/fastserve/fastserve/internal/field"
	"github.com/fastserve/fastserve/internal/tlstest"
	"github.com/fastserve/fastserve/proxy"
	"github.com/fastserve/fastserve/sites"
)

// upstream answers each request with its name and the URI it got.
func upstream(t *testing.T, name string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	srv := &fasthttp.Server{Handler: func(ctx *fasthttp.RequestCtx) {
		ctx.WriteString(name + " " + string(ctx.RequestURI()))
	}}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Shutdown() })
	return "http://" + ln.Addr().String()
}

func root(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, body := range files {
		require.NoError(t, os.MkdirAll(filepath.Dir(filepath.Join(dir, name)), 0o755))
		require.NoError(t, os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644))
	}
	return dir
}

func quietProxy() proxy.Config {
	return proxy.Config{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), HealthInterval: time.Hour}
}

// TestTwoSites: each host gets its own root, headers, redirects and
// routes (strip-prefix included); a host no site names gets the default
// site, or 421 when unknown hosts are refused.
func TestTwoSites(t *testing.T) {
	api := upstream(t, "api")
	other := upstream(t, "other")
	cfg := sites.Config{
		Default: sites.Site{Root: root(t, map[string]string{"index.html": "default"})},
		Sites: []sites.Site{{
			Hosts:     []string{"example.com", "www.example.com", "*.example.com"},
			Root:      root(t, map[string]string{"index.html": "example"}),
			Headers:   map[string]string{"X-Frame-Options": "DENY", "cache-control": "public, max-age=300"},
			Redirects: []sites.Redirect{{Path: "/old/", To: "https://example.com/new/", Status: 308}},
			Routes:    []sites.Route{{Path: "/api/", Proxy: []string{api}, StripPrefix: true}},
		}, {
			Hosts: []string{"api.example.org"},
			Proxy: []string{other},
		}},
		Proxy: quietProxy(),
	}
	r, err := sites.New(cfg)
	require.NoError(t, err)
	t.Cleanup(r.Close)
	ts := tlstest.Handler(t, r.Handle)
	c := dialNoSNI(t, ts)
	br := bufio.NewReader(c)
	get := func(host, path string) *fasthttp.Response {
		return tlstest.RoundTrip(t, c, br, "GET "+path+" HTTP/1.1\r\nHost: "+host+"\r\n\r\n")
	}

	resp := get("example.com", "/")
	assert.Equal(t, "example", string(resp.Body()))
	assert.Equal(t, "DENY", string(resp.Header.Peek("X-Frame-Options")))
	assert.Equal(t, "public, max-age=300", string(resp.Header.Peek("Cache-Control")))
	assert.Equal(t, "example", string(get("WWW.Example.COM:8443", "/").Body()))
	assert.Equal(t, "example", string(get("blog.example.com", "/").Body()))

	resp = get("example.com", "/old/page?x=1")
	assert.Equal(t, 308, resp.StatusCode())
	assert.Equal(t, "https://example.com/new/", string(resp.Header.Peek("Location")), "Location is To, exactly")
	assert.Equal(t, "DENY", string(resp.Header.Peek("X-Frame-Options")), "on redirects too")

	resp = get("example.com", "/api/v1/x?q=1")
	assert.Equal(t, "api /v1/x?q=1", string(resp.Body()), "strip-prefix")
	assert.Equal(t, "DENY", string(resp.Header.Peek("X-Frame-Options")), "on proxied answers too")

	assert.Equal(t, "other /anything", string(get("api.example.org", "/anything").Body()))
	assert.Equal(t, "default", string(get("unknown.test", "/").Body()))
	assert.Equal(t, "default", string(get("a.b.example.com", "/").Body()), "a wildcard is one label")
	assert.Empty(t, get("unknown.test", "/").Header.Peek("X-Frame-Options"))

	cfg.RefuseUnknown = true
	refusing, err := sites.New(cfg)
	require.NoError(t, err)
	t.Cleanup(refusing.Close)
	ts2 := tlstest.Handler(t, refusing.Handle)
	c2 := dialNoSNI(t, ts2)
	assert.Equal(t, 421, tlstest.RoundTrip(t, c2, bufio.NewReader(c2), "GET / HTTP/1.1\r\nHost: unknown.test\r\n\r\n").StatusCode())
}

// TestReload: a reload reaches an open keep-alive connection's next
// request; an invalid configuration changes nothing and says why.
func TestReload(t *testing.T) {
	v1 := sites.Config{Sites: []sites.Site{{Hosts: []string{"a.test"}, Root: root(t, map[string]string{"index.html": "one"})}}}
	r, err := sites.New(v1)
	require.NoError(t, err)
	t.Cleanup(r.Close)
	ts := tlstest.Handler(t, r.Handle)
	c := dialNoSNI(t, ts)
	br := bufio.NewReader(c)
	get := func() string {
		return string(tlstest.RoundTrip(t, c, br, "GET / HTTP/1.1\r\nHost: a.test\r\n\r\n").Body())
	}
	assert.Equal(t, "one", get())

	v2 := sites.Config{Sites: []sites.Site{{Hosts: []string{"a.test"}, Root: root(t, map[string]string{"index.html": "two"})}}}
	require.NoError(t, r.Reload(v2, time.Second))
	assert.Equal(t, "two", get(), "the same connection's next request")

	bad := sites.Config{Sites: []sites.Site{
		{Hosts: []string{"a.test"}, Root: root(t, map[string]string{"index.html": "three"})},
		{Hosts: []string{"A.test"}, Redirects: []sites.Redirect{{Path: "x", To: "/"}}},
	}}
	err = r.Reload(bad, time.Second)
	assert.ErrorContains(t, err, `sites: Sites[1].Redirects[0].Path must be a path starting with "/", got "x"`)
	assert.ErrorContains(t, err, `sites: Sites[1].Hosts[0]: named twice`)
	assert.Equal(t, "two", get(), "a broken configuration changes nothing")
}

// TestNewRefuses: every invalid field is reported, as a ConfigError
// naming it by its path in Config.
func TestNewRefuses(t *testing.T) {
	cfg := sites.Config{Sites: []sites.Site{
		{Root: t.TempDir()},
		{Hosts: []string{"b.test"}, Root: "/nonexistent/dir"},
		{Hosts: []string{"c.test"}, Headers: map[string]string{"Bad Header": "x"}},
		{Hosts: []string{"d.test"}, Redirects: []sites.Redirect{{Path: "/x", To: "/y", Status: 200}}},
		{Hosts: []string{"e.test"}, Routes: []sites.Route{{Path: "/api/", Proxy: []string{"ftp://x"}}}},
		{Hosts: []string{"f.test", "B.test"}, Proxy: []string{"http://127.0.0.1:1"}, Root: t.TempDir()},
		{Hosts: []string{"g.test"}, Routes: []sites.Route{{Path: "/", Proxy: []string{"http://127.0.0.1:1"}}}, Proxy: []string{"http://127.0.0.1:2"}},
	}}
	_, err := sites.New(cfg)
	require.Error(t, err)
	assert.Equal(t, err.Error(), cfg.Validate().Error(), "New reports what Validate does")
	var fields []string
	for _, e := range field.Leaves(err) {
		var ce *sites.ConfigError
		if assert.ErrorAs(t, e, &ce) {
			fields = append(fields, ce.Field)
		}
	}
	assert.Equal(t, []string{
		"Sites[0].Hosts", "Sites[1].Root", "Sites[2].Headers", "Sites[3].Redirects[0].Status",
		"Sites[4].Routes[0].Proxy[0]", "Sites[5].Hosts[1]", "Sites[5].Root", "Sites[6].Proxy",
	}, fields)
	assert.ErrorContains(t, err, "sites: Sites[3].Redirects[0].Status must be 301, 302, 303, 307 or 308, got 200")
}

// BenchmarkHandle: a request to a site's file, with 1 site or 1,000
// (half exact, half wildcard names): the choice of site costs the same,
// and nothing is allocated.
func BenchmarkHandle(b *testing.B) {
	dir := b.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "index.html"), []byte("hello"), 0o644); err != nil {
		b.Fatal(err)
	}
	time.Sleep(1100 * time.Millisecond) // a version a second old is kept in memory
	for _, n := range []int{1, 1000} {
		cfg := sites.Config{Default: sites.Site{Root: dir}}
		for i := range n {
			host := fmt.Sprintf("site%d.example.com", i)
			if i%2 == 1 {
				host = fmt.Sprintf("*.site%d.example.net", i)
			}
			cfg.Sites = append(cfg.Sites, sites.Site{Hosts: []string{host}, Root: dir})
		}
		r, err := sites.New(cfg)
		if err != nil {
			b.Fatal(err)
		}
		for _, host := range []string{"site0.example.com", "www.site1.example.net"} {
			b.Run(fmt.Sprintf("sites=%d/host=%s", n, host), func(b *testing.B) {
				var ctx fasthttp.RequestCtx
				b.ReportAllocs()
				for b.Loop() {
					ctx.Request.Reset()
					ctx.Response.Reset()
					ctx.Request.SetRequestURI("/index.html")
					ctx.Request.Header.SetHost(host)
					r.Handle(&ctx)
					if ctx.Response.StatusCode() != 200 {
						b.Fatal(ctx.Response.StatusCode())
					}
				}
			})
		}
		r.Close()
	}
}

// TestDomainFronting: a request whose Host names another site than the
// TLS server name its connection was made for gets 421, the default site
// standing for a name no site names (it was given the default site's
// certificate); a connection made with no name is not checked.
func TestDomainFronting(t *testing.T) {
	r, err := sites.New(sites.Config{Sites: []sites.Site{
		{Hosts: []string{"a.test"}, Root: root(t, map[string]string{"index.html": "a"})},
		{Hosts: []string{"b.test"}, Root: root(t, map[string]string{"index.html": "b"})},
	}})
	require.NoError(t, err)
	t.Cleanup(r.Close)
	ts := tlstest.Handler(t, r.Handle)
	for _, tc := range []struct {
		sni, host string
		status    int
	}{
		{"a.test", "a.test", 200}, {"a.test", "A.TEST:443", 200}, {"b.test", "a.test", 421},
		{"localhost", "a.test", 421},                            // a name no site names: the default site's, not a.test's
		{"localhost", "unknown.test", 404}, {"", "b.test", 200}, // 404: the default site, which has no root
	} {
		c, err := tls.Dial("tcp", ts.Addr, &tls.Config{ServerName: tc.sni, InsecureSkipVerify: true, NextProtos: []string{"http/1.1"}})
		require.NoError(t, err)
		resp := tlstest.RoundTrip(t, c, bufio.NewReader(c), "GET / HTTP/1.1\r\nHost: "+tc.host+"\r\n\r\n")
		assert.Equal(t, tc.status, resp.StatusCode(), "SNI %q, Host %q", tc.sni, tc.host)
		c.Close()
	}
}

// TestReloadKeepsUpstreamPools: a reload that leaves a site's routes and
// settings as they were keeps its proxy, with its open connections: the
// upstream sees no new connection; a changed route gets a new one.
func TestReloadKeepsUpstreamPools(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	var conns atomic.Int64
	up := &fasthttp.Server{
		Handler: func(ctx *fasthttp.RequestCtx) { ctx.WriteString("up") },
		ConnState: func(_ net.Conn, st fasthttp.ConnState) {
			if st == fasthttp.StateNew {
				conns.Add(1)
			}
		},
	}
	go up.Serve(ln)
	t.Cleanup(func() { up.Shutdown() })
	url := "http://" + ln.Addr().String()
	cfg := func(root string, strip bool) sites.Config {
		return sites.Config{Sites: []sites.Site{{
			Hosts: []string{"a.test"}, Root: root,
			Routes: []sites.Route{{Path: "/api/", Proxy: []string{url}, StripPrefix: strip}},
		}}, Proxy: quietProxy()}
	}
	r, err := sites.New(cfg(t.TempDir(), false))
	require.NoError(t, err)
	t.Cleanup(r.Close)
	ts := tlstest.Handler(t, r.Handle)
	c := dialNoSNI(t, ts)
	br := bufio.NewReader(c)
	get := func() string {
		return string(tlstest.RoundTrip(t, c, br, "GET /api/x HTTP/1.1\r\nHost: a.test\r\n\r\n").Body())
	}
	assert.Equal(t, "up", get())
	require.NoError(t, r.Reload(cfg(t.TempDir(), false), time.Second)) // another root, the same routes
	assert.Equal(t, "up", get())
	assert.Equal(t, int64(1), conns.Load(), "the pool's connection was kept")
	require.NoError(t, r.Reload(cfg(t.TempDir(), true), time.Second)) // the route changed
	assert.Equal(t, "up", get())
	assert.Equal(t, int64(2), conns.Load(), "a new proxy, a new connection")
}

// TestReloadUnderLoad: 1,000 sites reloaded ten times while clients keep
// sending requests on open keep-alive connections: no request fails, and
// each is answered wholly by one generation.
func TestReloadUnderLoad(t *testing.T) {
	dir := root(t, map[string]string{"index.html": "page"})
	gen := func(g string) sites.Config {
		cfg := sites.Config{Default: sites.Site{Root: dir}}
		for i := range 1000 {
			cfg.Sites = append(cfg.Sites, sites.Site{
				Hosts: []string{fmt.Sprintf("site%d.test", i)}, Root: dir,
				Headers: map[string]string{"X-Gen": g},
			})
		}
		return cfg
	}
	r, err := sites.New(gen("0"))
	require.NoError(t, err)
	t.Cleanup(r.Close)
	ts := tlstest.Handler(t, r.Handle)

	stop := make(chan struct{})
	var wg sync.WaitGroup
	var served atomic.Int64
	errs := make(chan error, 8)
	for w := range 4 {
		c := dialNoSNI(t, ts)
		br := bufio.NewReader(c)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 2000; i++ {
				select {
				case <-stop:
					return
				default:
				}
				host := fmt.Sprintf("site%d.test", (i*7+w*131)%1000)
				c.SetDeadline(time.Now().Add(5 * time.Second))
				if _, err := io.WriteString(c, "GET / HTTP/1.1\r\nHost: "+host+"\r\n\r\n"); err != nil {
					errs <- err
					return
				}
				var resp fasthttp.Response
				if err := resp.Read(br); err != nil {
					errs <- err
					return
				}
				if resp.StatusCode() != 200 || string(resp.Body()) != "page" || len(resp.Header.Peek("X-Gen")) != 1 {
					errs <- fmt.Errorf("%s: %d %q X-Gen=%q", host, resp.StatusCode(), resp.Body(), resp.Header.Peek("X-Gen"))
					return
				}
				served.Add(1)
			}
		}()
	}
	for g := 1; g <= 10; g++ {
		time.Sleep(20 * time.Millisecond)
		require.NoError(t, r.Reload(gen(fmt.Sprint(g%10)), time.Second))
	}
	close(stop)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	assert.Positive(t, served.Load())
	t.Logf("%d requests across 10 reloads of 1,000 sites", served.Load())
}

// dialNoSNI opens a TLS connection to ts that names no server (as a
// client that connects by address does), so that a test may send any
// Host on it: a server name would bind the connection to one site
// (TestDomainFronting).
func dialNoSNI(t *testing.T, ts *tlstest.Server) *tls.Conn {
	t.Helper()
	c, err := tls.Dial("tcp", ts.Addr, &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"http/1.1"}})
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	return c
}

// TestAbsoluteFormTarget: a request target in absolute form naming
// another host than Host is refused (400) rather than served by one host
// and named by another; one that agrees is served.
func TestAbsoluteFormTarget(t *testing.T) {
	r, err := sites.New(sites.Config{Sites: []sites.Site{
		{Hosts: []string{"a.test"}, Root: root(t, map[string]string{"index.html": "a"})},
		{Hosts: []string{"b.test"}, Root: root(t, map[string]string{"index.html": "b"})},
	}})
	require.NoError(t, err)
	t.Cleanup(r.Close)
	ts := tlstest.Handler(t, r.Handle)
	c := dialNoSNI(t, ts)
	br := bufio.NewReader(c)
	resp := tlstest.RoundTrip(t, c, br, "GET https://b.test/ HTTP/1.1\r\nHost: a.test\r\n\r\n")
	assert.Equal(t, 400, resp.StatusCode())
	c = dialNoSNI(t, ts)
	br = bufio.NewReader(c)
	resp = tlstest.RoundTrip(t, c, br, "GET https://B.test/ HTTP/1.1\r\nHost: b.test\r\n\r\n")
	assert.Equal(t, 200, resp.StatusCode())
	assert.Equal(t, "b", string(resp.Body()))
}

// TestNoHostBySNI: an HTTP/1.0 request without a Host header is served by
// the site its connection's TLS server name names, and is not domain
// fronting; with no server name, or one no site names, it is the default
// site's (or 421 when unknown hosts are refused).
func TestNoHostBySNI(t *testing.T) {
	cfg := sites.Config{
		Default: sites.Site{Root: root(t, map[string]string{"index.html": "default"})},
		Sites: []sites.Site{
			{Hosts: []string{"a.test"}, Root: root(t, map[string]string{"index.html": "a"})},
			{Hosts: []string{"*.b.test"}, Root: root(t, map[string]string{"index.html": "b"})},
		},
	}
	for _, refuse := range []bool{false, true} {
		t.Run(fmt.Sprintf("refuse=%v", refuse), func(t *testing.T) {
			cfg.RefuseUnknown = refuse
			r, err := sites.New(cfg)
			require.NoError(t, err)
			t.Cleanup(r.Close)
			ts := tlstest.Handler(t, r.Handle)
			for _, tc := range []struct {
				sni    string
				status int
				body   string
			}{
				{"a.test", 200, "a"}, {"A.Test", 200, "a"}, {"www.b.test", 200, "b"},
				{"other.test", 200, "default"}, {"", 200, "default"},
			} {
				if refuse && tc.body == "default" {
					tc.status, tc.body = 421, "Misdirected Request\n"
				}
				c, err := tls.Dial("tcp", ts.Addr, &tls.Config{ServerName: tc.sni, InsecureSkipVerify: true, NextProtos: []string{"http/1.1"}})
				require.NoError(t, err)
				resp := tlstest.RoundTrip(t, c, bufio.NewReader(c), "GET / HTTP/1.0\r\n\r\n")
				assert.Equal(t, tc.status, resp.StatusCode(), "SNI %q, no Host", tc.sni)
				assert.Equal(t, tc.body, string(resp.Body()), "SNI %q, no Host", tc.sni)
				c.Close()
			}
		})
	}
}

// TestSharedUpstreamMetrics: two sites with the same routes to the same
// upstream each count their own requests, under their own label: each
// site has its own proxy (before, they shared one, whose counts were
// written under both labels).
func TestSharedUpstreamMetrics(t *testing.T) {
	up := upstream(t, "up")
	cfg := sites.Config{
		Default: sites.Site{Proxy: []string{up}},
		Sites: []sites.Site{
			{Hosts: []string{"a.test"}, Proxy: []string{up}},
			{Hosts: []string{"b.test"}, Proxy: []string{up}},
		},
		Proxy: quietProxy(),
	}
	r, err := sites.New(cfg)
	require.NoError(t, err)
	t.Cleanup(r.Close)
	ts := tlstest.Handler(t, r.Handle)
	c := dialNoSNI(t, ts)
	br := bufio.NewReader(c)
	get := func(host string) {
		resp := tlstest.RoundTrip(t, c, br, "GET /x HTTP/1.1\r\nHost: "+host+"\r\n\r\n")
		require.Equal(t, 200, resp.StatusCode())
	}
	for range 3 {
		get("a.test")
	}
	get("b.test")
	get("other.test")
	get("other.test")
	require.NoError(t, r.Reload(cfg, time.Second)) // kept, counts and all
	get("a.test")

	var b strings.Builder
	r.WritePrometheus(&b)
	var counts []string
	for _, l := range strings.Split(b.String(), "\n") {
		if strings.HasPrefix(l, "fastserve_upstream_requests_total{") {
			counts = append(counts, l)
		}
	}
	assert.ElementsMatch(t, []string{
		`fastserve_upstream_requests_total{upstream="` + up + `"} 2`, // the default site's, unlabelled
		`fastserve_upstream_requests_total{site="a.test",upstream="` + up + `"} 4`,
		`fastserve_upstream_requests_total{site="b.test",upstream="` + up + `"} 1`,
	}, counts, "each site's own requests, once")
}
