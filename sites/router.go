package sites

import (
	"bytes"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/netip"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/fastserve/fastserve/compress"
	"github.com/fastserve/fastserve/internal/reqinfo"
	"github.com/fastserve/fastserve/proxy"
	"github.com/fastserve/fastserve/ratelimit"
	"github.com/fastserve/fastserve/static"
)

// Config is every site a server serves.
type Config struct {
	// Default serves the requests whose Host no site names (its Hosts
	// are ignored), unless RefuseUnknown.
	Default Site

	// Sites are the named sites; a host may be named by one site only.
	Sites []Site

	// RefuseUnknown answers a request whose Host no site names with 421
	// Misdirected Request, instead of the default site.
	RefuseUnknown bool

	// Proxy holds the reverse proxy's settings shared by every site
	// (timeouts, pool sizes, logger); its Routes are ignored.
	Proxy proxy.Config

	// Static holds the file settings shared by every site; its Root is
	// ignored.
	Static static.Config

	// ResponseHeaders and RequestHeaders (those sent upstream) apply to
	// every site; a site's and a route's add to them (see HeaderRules).
	ResponseHeaders, RequestHeaders HeaderRules
}

// A Site is a set of host names served by one set of rules.
type Site struct {
	// Hosts are the names the site serves: "example.com", or
	// "*.example.com" for one label before it (see Table).
	Hosts []string

	// Root is the directory of the site's files; empty for none (404
	// for what no route takes).
	Root string

	// Files are the site's static options (index names, dotfiles,
	// listings, a fallback, Cache-Control), over Config.Static.
	Files Files

	// Headers are set on every response of the site, those of routes
	// to upstreams and redirects included, over what the handler set:
	// ResponseHeaders.Set, written short.
	Headers map[string]string

	// ResponseHeaders change every response of the site; RequestHeaders
	// every request its routes send upstream.
	ResponseHeaders, RequestHeaders HeaderRules

	// Redirects answer their path at once, before routes and files.
	Redirects []Redirect

	// Routes send requests under a path prefix to upstreams.
	Routes []Route

	// Proxy, if set, is the route for "/": every request no other route
	// or redirect takes goes to these upstreams; Root must then be empty.
	Proxy []string

	// Handler, if set, serves what no redirect or route takes, in place
	// of Root's files (the command's built-in page, for one).
	Handler fasthttp.RequestHandler

	// Compress compresses the answers of the site's upstreams (its Proxy,
	// and its Routes but those that say otherwise) and of its Handler,
	// for the clients that accept br, zstd or gzip (see package
	// compress): textual types of 1 KiB or more, and streams as they
	// stream. Off by default: it costs several times the CPU of serving
	// the request (docs/performance.md). Never the site's files, which
	// package static compresses once per version of a file, nor the
	// errors the server or the proxy makes.
	Compress bool

	// Access says who may use the site (after its redirects).
	Access Access

	// RateLimit limits each client's requests to the site (after its
	// redirects, before Access): past it, 429 with Retry-After. The zero
	// value is no limit.
	RateLimit ratelimit.Config

	// ErrorPages are the files (absolute, or under Root) sent in place
	// of the error answers the server or the proxy makes, by status
	// (404: "/404.html"); an upstream's own error answers are left as
	// they are. Read when the sites are built, and by Reload.
	ErrorPages map[int]string
}

// A Redirect answers a path with a redirect to To.
type Redirect struct {
	// Path is the path redirected: exactly, or, if it ends with "/",
	// every path under it.
	Path string

	// To is the Location sent, exactly as given.
	To string

	// Status is 301, 302, 303, 307 or 308. If zero, 308.
	Status int
}

// A Route sends the requests under a path prefix to upstreams.
type Route struct {
	Path        string   // a prefix of the request's path, as proxy.Route.Path
	Proxy       []string // the upstreams' URLs
	StripPrefix bool     // see proxy.Route.StripPrefix
	AddPrefix   string   // see proxy.Route.AddPrefix
	Balance     string   // see proxy.Route.Balance
	HashKey     string   // see proxy.Route.HashKey
	Access      Access   // who may use the route, beside the site's Access

	// RateLimit limits each client's requests to the route, in addition
	// to the site's RateLimit: a request must pass both.
	RateLimit ratelimit.Config

	// Compress, if set, turns compression of the route's answers on or
	// off, over the site's Compress; nil keeps the site's.
	Compress *bool

	// ResponseHeaders and RequestHeaders add to the site's.
	ResponseHeaders, RequestHeaders HeaderRules
}

// A Router serves each request by the site its Host names. Reload
// replaces every site at once while requests are served: a request is
// served entirely by the sites it started with, and a keep-alive
// connection's next request by the new ones.
type Router struct {
	cur    atomic.Pointer[tree]
	reload sync.Mutex // one Reload at a time
}

// tree is one generation of sites, built by New or Reload.
type tree struct {
	response, request rules // the server's
	hosts             Table[*site]
	def               *site
	refuse            bool
	active            atomic.Int64             // requests being served by this tree
	statics           map[string]*static.Files // by their configuration
	proxies           map[string]*proxy.Proxy  // by their site's label and configuration
	labeled           []siteProxy              // each site's proxy, for its metrics
	reg               *registry                // the sites' counts, kept across reloads
	prev              *tree                    // the tree Reload replaces: its proxies may be kept
	tunnels           *proxy.Tunnels           // Config.Proxy.Tunnels: shared by every proxy, or nil

	limiters map[string]*ratelimit.Limiter // the rate limits, by site, route and configuration
	limits   []labeledLimit                // the limiters in use, for their metrics
}

// siteProxy is a site's proxy, and the label of its metrics.
type siteProxy struct {
	label string // site="example.com", or empty for the default site
	p     *proxy.Proxy
}

// site is a Site ready to serve.
type site struct {
	response, request rules // the site's, over the server's
	redirects         []Redirect
	access            *access
	limit             *limit
	routes            []routeRules // the longest prefix first
	errorPages        map[int]errorPage
	handler           fasthttp.RequestHandler
	compress          bool         // the site's Compress: for its Proxy and its Handler
	handled           bool         // its Handler answers what no route takes
	name              reqinfo.Site // its first host; empty for the default site
	stats             *siteStats
	other             *classes // the answers no route gave (files, redirects, refusals)
}

// routeRules are a route's Access and header rules (over its site's),
// by its path prefix.
type routeRules struct {
	prefix            string
	access            *access
	limit             *limit
	response, request rules
	counts            *classes // its answers by status class
	compress          bool     // its Compress, or its site's
}

// New builds the sites of cfg. It fails, naming the site and the field,
// if any of them is invalid, or a host is named twice.
func New(cfg Config) (*Router, error) {
	t, err := build(cfg, nil)
	if err != nil {
		return nil, err
	}
	r := &Router{}
	r.cur.Store(t)
	return r, nil
}

// Reload builds the sites of cfg and puts them in use at once; the
// previous ones are closed once the requests they serve are done (or
// after drain, at most). If cfg is invalid, nothing changes and the error
// says why.
//
// A site's upstreams whose settings and routes are unchanged keep their
// proxy, with its pool of open connections and its health state.
func (r *Router) Reload(cfg Config, drain time.Duration) error {
	r.reload.Lock()
	defer r.reload.Unlock()
	old := r.cur.Load()
	if old == nil {
		return errors.New("sites: Reload after Close")
	}
	t, err := build(cfg, old)
	if err != nil {
		return err
	}
	r.cur.Store(t)
	go old.retire(t, drain)
	return nil
}

// Close closes the sites in use.
func (r *Router) Close() {
	r.reload.Lock()
	defer r.reload.Unlock()
	if t := r.cur.Swap(nil); t != nil {
		t.close(nil)
	}
}

// Handle serves a request by the site its Host names.
func (r *Router) Handle(ctx *fasthttp.RequestCtx) {
	t := r.acquire()
	if t == nil {
		ctx.Error("Service Unavailable\n", fasthttp.StatusServiceUnavailable)
		return
	}
	defer t.active.Add(-1)
	requestID(ctx)
	defer returnRequestID(ctx)
	if misdirectedURI(ctx) {
		ctx.Error("Bad Request: the request target names another host than Host\n", fasthttp.StatusBadRequest)
		return
	}
	sni := serverName(ctx)
	host := ctx.Request.Header.Host()
	noHost := len(host) == 0
	if noHost {
		// HTTP/1.0 may leave Host out (the engine refuses HTTP/1.1
		// without one): the server name the client made the connection
		// for names the site, as Host would have.
		host = []byte(sni)
	}
	s, ok := t.hosts.Lookup(host)
	if !ok {
		if t.refuse {
			ctx.Error("Misdirected Request\n", fasthttp.StatusMisdirectedRequest)
			return
		}
		s = t.def
	}
	reqinfo.SetSite(ctx, &s.name)
	if !noHost && t.fronted(sni, s) {
		ctx.Error("Misdirected Request\n", fasthttp.StatusMisdirectedRequest)
		return
	}
	s.serve(ctx)
}

// acquire is the tree in use, counted as serving one more request until
// its active count is decremented; nil after Close. A tree counted only
// once it is current again: else a Reload between the load and the count
// could retire it under the request.
func (r *Router) acquire() *tree {
	for {
		t := r.cur.Load()
		if t == nil {
			return nil
		}
		t.active.Add(1)
		if r.cur.Load() == t {
			return t
		}
		t.active.Add(-1)
	}
}

// WritePrometheus writes the upstream metrics of every site's proxy in
// the Prometheus text format, as proxy.Proxy.WritePrometheus does: the
// default site's as they are, a named site's with a site label (its first
// host), so that two sites may share an upstream, each counting its own
// requests. A proxy kept by a reload keeps its counts; a new one starts
// from zero. Then the sites' answers by route and status class, their
// latency, and their rate limits' decisions
// (fastserve_rate_limit_total{site,route,result}), which reloads keep
// counting; and, of the limits in use, the clients that owe something
// (fastserve_rate_limit_keys) and those that lost their place while they
// did (fastserve_rate_limit_evicted_total, from zero when a limit's
// settings change).
func (r *Router) WritePrometheus(w io.Writer) {
	t := r.cur.Load()
	if t == nil {
		return
	}
	for _, sp := range t.labeled {
		sp.p.WritePrometheusLabeled(w, sp.label)
	}
	t.reg.writePrometheus(w)
	t.writeRateLimits(w)
}

// Abort closes every connection to the upstreams of the sites in use at
// once (see proxy.Proxy.Abort), for a shutdown that must not wait.
func (r *Router) Abort() {
	if t := r.cur.Load(); t != nil {
		for _, p := range t.proxies {
			p.Abort()
		}
		if t.tunnels != nil {
			t.tunnels.Abort() // those of proxies a reload replaced too
		}
	}
}

// UpstreamConns describes the connections open to the upstreams of the
// sites in use (proxy.Proxy.Conns), for /debug/upstreams.
func (r *Router) UpstreamConns() []proxy.UpstreamConn {
	t := r.cur.Load()
	if t == nil {
		return nil
	}
	var out []proxy.UpstreamConn
	for _, p := range t.proxies {
		for _, c := range p.Conns() {
			if !c.Tunnel || t.tunnels == nil {
				out = append(out, c)
			}
		}
	}
	if t.tunnels != nil {
		// Every tunnel, those of proxies a reload replaced included.
		out = append(out, t.tunnels.Conns()...)
	}
	return out
}

// Proxies reports whether any site in use sends requests to upstreams.
func (r *Router) Proxies() bool {
	t := r.cur.Load()
	return t != nil && len(t.proxies) > 0
}

// SiteOf is the name of the site that serves ctx's request: the first of
// its Hosts, or "" for the default site (and for a request no site
// serves). The access log writes it as $site.
func SiteOf(ctx *fasthttp.RequestCtx) string { return reqinfo.SiteName(ctx) }

// tlsState is what a TLS connection (the engine's, or a *tls.Conn) says
// of its handshake.
type tlsState interface {
	ConnectionState() tls.ConnectionState
}

// serverName is the TLS server name (SNI) the request's connection was
// made for: "" for a connection made to an address, or without TLS.
func serverName(ctx *fasthttp.RequestCtx) string {
	if c, ok := ctx.Conn().(interface{ ServerName() string }); ok {
		return c.ServerName() // the engine's: no ConnectionState copied
	}
	if c, ok := ctx.Conn().(tlsState); ok {
		return c.ConnectionState().ServerName
	}
	return ""
}

// fronted reports whether sni, the TLS server name the connection was
// made for, names a site other than s, the one its Host names: domain
// fronting (a certificate got for one site, requests sent to another),
// which gets 421 as in Caddy's strict SNI-Host check. A server name no
// site names stands for the default site (its certificate was given); a
// connection made with no server name (to an address) is not checked.
func (t *tree) fronted(sni string, s *site) bool {
	if sni == "" {
		return false
	}
	byName, ok := t.hosts.Lookup([]byte(sni))
	if !ok {
		if _, err := netip.ParseAddr(sni); err == nil {
			return false // an address is no server name (RFC 6066), though clients such as wrk send one
		}
		byName = t.def // a name no site names was given the default site's certificate
	}
	return byName != s
}

func (s *site) serve(ctx *fasthttp.RequestCtx) {
	path := ctx.Path()
	for i := range s.redirects {
		rd := &s.redirects[i]
		if string(path) == rd.Path || strings.HasSuffix(rd.Path, "/") && strings.HasPrefix(string(path), rd.Path) {
			ctx.Response.Header.Set(fasthttp.HeaderLocation, rd.To)
			ctx.SetStatusCode(rd.Status)
			s.response.apply(&ctx.Response.Header)
			s.stats.count(s.other, ctx)
			return
		}
	}
	response, request, ac, rl, counts, compressing, handled := s.response, s.request, (*access)(nil), (*limit)(nil), s.other, s.compress, s.handled
	if r := s.route(path); r != nil {
		response, request, ac, rl, counts, compressing, handled = r.response, r.request, r.access, r.limit, r.counts, r.compress, false
	}
	defer s.stats.count(counts, ctx)
	admitted := !s.limited(ctx, rl) && s.access.admit(ctx) && ac.admit(ctx)
	if admitted {
		request.apply(&ctx.Request.Header)
		s.handler(ctx)
	}
	if s.errorPages != nil {
		s.replaceError(ctx)
	}
	response.apply(&ctx.Response.Header)
	// Last, so that the header rules' Cache-Control: no-transform and
	// Vary count.
	if compressing && admitted && (handled || proxy.FromUpstream(ctx)) {
		compress.Config{}.Response(ctx)
	}
	if !ctx.Request.Header.IsHTTP11() {
		closeDelimited(ctx)
	}
}

// closeDelimited sends an answer whose length is unknown (a stream) to an
// HTTP/1.0 client, which cannot read chunks (RFC 9112 section 6.1), as
// HTTP/1.0 frames it: no length, and the connection's close ends it, as
// nginx sends it. fasthttp would send it chunked, whatever the client's
// version. The answer goes from a hijack of the connection; fasthttp
// closes the body stream after it, as it would have.
func closeDelimited(ctx *fasthttp.RequestCtx) {
	if !ctx.Response.IsBodyStream() || ctx.Response.Header.ContentLength() >= 0 || ctx.Hijacked() || ctx.IsHead() {
		return
	}
	h := &ctx.Response.Header
	h.SetContentLength(-2) // neither a length nor chunks
	h.Del(fasthttp.HeaderTransferEncoding)
	h.SetConnectionClose()
	ctx.HijackSetNoResponse(true)
	ctx.Hijack(func(c net.Conn) {
		defer c.Close() // a server that keeps hijacked connections leaves it to us
		if _, err := c.Write(h.Header()); err == nil {
			_, _ = io.Copy(c, ctx.Response.BodyStream())
		}
	})
}

// route is the route the proxy will choose for path (the same longest
// prefix of the same normalized path), or nil.
func (s *site) route(path []byte) *routeRules {
	for i := range s.routes {
		p := s.routes[i].prefix
		if strings.HasPrefix(string(path), p) || len(p) > 1 && p[len(p)-1] == '/' && string(path) == p[:len(p)-1] {
			return &s.routes[i]
		}
	}
	return nil
}

// retire closes t, replaced by next, once no request is served by it,
// or after drain: its files, and the proxies next did not keep.
func (t *tree) retire(next *tree, drain time.Duration) {
	end := time.Now().Add(drain)
	for t.active.Load() > 0 && time.Now().Before(end) {
		time.Sleep(10 * time.Millisecond)
	}
	t.close(next)
}

// close closes t's files and proxies, but those kept holds.
func (t *tree) close(kept *tree) {
	for key, f := range t.statics {
		if kept == nil || kept.statics[key] != f {
			f.Close()
		}
	}
	for key, p := range t.proxies {
		if kept == nil || kept.proxies[key] != p {
			p.Close()
		}
	}
}

// build makes a tree of cfg's sites.
func build(cfg Config, prev *tree) (*tree, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	t := &tree{refuse: cfg.RefuseUnknown, tunnels: cfg.Proxy.Tunnels, statics: map[string]*static.Files{}, proxies: map[string]*proxy.Proxy{}, prev: prev, reg: &registry{}}
	if prev != nil {
		t.reg = prev.reg
	}
	var errs []error
	var err error
	if t.response, err = rules(nil).merge("response-headers", cfg.ResponseHeaders); err != nil {
		errs = append(errs, fmt.Errorf("sites: %w", err))
	}
	if t.request, err = rules(nil).merge("request-headers", cfg.RequestHeaders); err != nil {
		errs = append(errs, fmt.Errorf("sites: %w", err))
	}
	mk := func(name string, s Site) *site {
		st, err := t.site(cfg, name, s)
		if err != nil {
			if _, ok := errors.AsType[*ConfigError](err); ok {
				errs = append(errs, err)
			} else {
				errs = append(errs, fmt.Errorf("sites: %s: %w", name, err))
			}
		}
		return st
	}
	t.def = mk("Default", cfg.Default)
	for i, s := range cfg.Sites {
		st := mk(fmt.Sprintf("Sites[%d]", i), s)
		for _, h := range s.Hosts {
			_ = t.hosts.Add(h, st) // Validate checked them
		}
	}
	t.prev = nil // kept only while building
	if err := errors.Join(errs...); err != nil {
		t.close(prev) // what prev serves with stays open
		return nil, err
	}
	return t, nil
}

// site makes one site's handler: redirects, then routes to upstreams,
// then files.
func (t *tree) site(cfg Config, name string, s Site) (*site, error) {
	st := &site{compress: s.Compress, handled: s.Handler != nil && len(s.Proxy) == 0}
	label := "default"
	if len(s.Hosts) > 0 {
		st.name.Name = s.Hosts[0]
		label = strings.ToLower(s.Hosts[0])
	}
	st.stats = t.reg.stats(label)
	st.other = t.reg.route(st.stats, "")
	var err error
	resp := s.ResponseHeaders
	if len(s.Headers) > 0 {
		resp.Set = maps.Clone(resp.Set)
		if resp.Set == nil {
			resp.Set = map[string]string{}
		}
		for name, v := range s.Headers {
			resp.Set[name] = v
		}
	}
	if st.response, err = t.response.merge("headers", resp); err != nil {
		return nil, err
	}
	if st.request, err = t.request.merge("request-headers", s.RequestHeaders); err != nil {
		return nil, err
	}
	for i, rd := range s.Redirects {
		if rd.Status == 0 {
			rd.Status = fasthttp.StatusPermanentRedirect
		}
		switch {
		case !strings.HasPrefix(rd.Path, "/"):
			return nil, fmt.Errorf("redirects[%d].path: %q must start with /", i, rd.Path)
		case rd.To == "":
			return nil, fmt.Errorf("redirects[%d].to: empty", i)
		case rd.Status != 301 && rd.Status != 302 && rd.Status != 303 && rd.Status != 307 && rd.Status != 308:
			return nil, fmt.Errorf("redirects[%d].status: %d; must be 301, 302, 303, 307 or 308", i, rd.Status)
		}
		st.redirects = append(st.redirects, rd)
	}

	var next fasthttp.RequestHandler = func(ctx *fasthttp.RequestCtx) { ctx.Error("Not Found\n", fasthttp.StatusNotFound) }
	if s.Handler != nil {
		next = s.Handler
	} else if s.Root != "" && len(s.Proxy) == 0 {
		h, err := s.Files.handler(t, cfg.Static, s.Root)
		if err != nil {
			return nil, err
		}
		next = h
	}
	if st.errorPages, err = errorPages(s.ErrorPages, s.Root); err != nil {
		return nil, err
	}
	if st.access, err = newAccess(s.Access); err != nil {
		return nil, err
	}
	if st.limit, err = t.limit(st, "", s.RateLimit); err != nil {
		return nil, fmt.Errorf("rate-limit: %w", err)
	}
	for i, r := range s.Routes {
		rr := routeRules{prefix: r.Path, counts: t.reg.route(st.stats, r.Path), compress: s.Compress} // every route: the longest prefix must be the proxy's
		if r.Compress != nil {
			rr.compress = *r.Compress
		}
		if rr.access, err = newAccess(r.Access); err != nil {
			return nil, fmt.Errorf("routes[%d].%w", i, err)
		}
		if rr.limit, err = t.limit(st, r.Path, r.RateLimit); err != nil {
			return nil, fmt.Errorf("routes[%d].rate-limit: %w", i, err)
		}
		if rr.response, err = st.response.merge(fmt.Sprintf("routes[%d].response-headers", i), r.ResponseHeaders); err != nil {
			return nil, err
		}
		if rr.request, err = st.request.merge(fmt.Sprintf("routes[%d].request-headers", i), r.RequestHeaders); err != nil {
			return nil, err
		}
		st.routes = append(st.routes, rr)
	}
	sort.SliceStable(st.routes, func(i, j int) bool { return len(st.routes[i].prefix) > len(st.routes[j].prefix) })
	if pc, ok := proxyConfig(cfg.Proxy, s); ok {
		label := ""
		if name != "Default" {
			label = fmt.Sprintf("site=%q", strings.ToLower(s.Hosts[0]))
		}
		pc.Labels = label // its tunnels are counted under it, across reloads
		p, err := t.proxy(label, pc)
		if err != nil {
			return nil, fmt.Errorf("routes: %w", err)
		}
		t.labeled = append(t.labeled, siteProxy{label: label, p: p})
		next = p.Handler(next)
	}
	st.handler = next
	return st, nil
}

// proxy is the proxy of the site whose metrics label is label, for pc:
// the previous tree's if it had one for the same site and configuration
// (its pools, health and counts kept), else a new one. Each site has its
// own, even when another has the same routes and settings: its counts
// are its own requests', written once, under its label.
func (t *tree) proxy(label string, pc proxy.Config) (*proxy.Proxy, error) {
	k := pc
	k.Logger = nil // a logger made again by the caller keeps the proxy; it logs on to the first
	key := fmt.Sprintf("%s %+v", label, k)
	if t.prev != nil {
		if p := t.prev.proxies[key]; p != nil {
			t.proxies[key] = p
			return p, nil
		}
	}
	p, err := proxy.New(pc)
	if err != nil {
		return nil, err
	}
	t.proxies[key] = p
	return p, nil
}

// files is the static.Files for sc: this tree's or the previous one's if
// it had one for the same configuration, else a new one.
func (t *tree) files(sc static.Config) (*static.Files, error) {
	key := fmt.Sprintf("%+v", sc)
	if f := t.statics[key]; f != nil {
		return f, nil
	}
	if t.prev != nil {
		if f := t.prev.statics[key]; f != nil {
			t.statics[key] = f
			return f, nil
		}
	}
	f, err := static.New(sc)
	if err != nil {
		return nil, err
	}
	t.statics[key] = f
	return f, nil
}

// misdirectedURI reports whether the request target is in absolute form
// ("GET https://b.test/ HTTP/1.1") with another host than the Host
// header's. RFC 9112 section 3.2.2 has the target's authority win, but
// the site, the proxy's Host and the log all go by the Host header: such
// a request is refused rather than served by one host and named by
// another.
func misdirectedURI(ctx *fasthttp.RequestCtx) bool {
	uri := ctx.Request.Header.RequestURI()
	if len(uri) == 0 || uri[0] == '/' || uri[0] == '*' {
		return false // origin form, the usual case
	}
	return !bytes.EqualFold(ctx.URI().Host(), ctx.Request.Header.Host())
}
