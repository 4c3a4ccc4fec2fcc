package sites

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/fastserve/fastserve/internal/httpsyntax"
	"github.com/fastserve/fastserve/proxy"
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
}

// A Site is a set of host names served by one set of rules.
type Site struct {
	// Hosts are the names the site serves: "example.com", or
	// "*.example.com" for one label before it (see Table).
	Hosts []string

	// Root is the directory of the site's files; empty for none (404
	// for what no route takes).
	Root string

	// Headers are set on every response of the site, those of routes
	// to upstreams included, over what the handler set.
	Headers map[string]string

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
}

// A Router serves each request by the site its Host names. Reload
// replaces every site at once while requests are served: a request is
// served entirely by the sites it started with, and a keep-alive
// connection's next request by the new ones.
type Router struct {
	cur atomic.Pointer[tree]
}

// tree is one generation of sites, built by New or Reload.
type tree struct {
	hosts   Table[*site]
	def     *site
	refuse  bool
	active  atomic.Int64 // requests being served by this tree
	closers []func()
	proxies []siteProxy
}

// siteProxy is a site's proxy, and the label of its metrics.
type siteProxy struct {
	label string // site="example.com", or empty for the default site
	p     *proxy.Proxy
}

// site is a Site ready to serve.
type site struct {
	headers   [][2]string
	redirects []Redirect
	handler   fasthttp.RequestHandler
}

// New builds the sites of cfg. It fails, naming the site and the field,
// if any of them is invalid, or a host is named twice.
func New(cfg Config) (*Router, error) {
	t, err := build(cfg)
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
func (r *Router) Reload(cfg Config, drain time.Duration) error {
	t, err := build(cfg)
	if err != nil {
		return err
	}
	old := r.cur.Swap(t)
	go old.closeWhenIdle(drain)
	return nil
}

// Close closes the sites in use.
func (r *Router) Close() {
	if t := r.cur.Swap(nil); t != nil {
		t.close()
	}
}

// Handle serves a request by the site its Host names.
func (r *Router) Handle(ctx *fasthttp.RequestCtx) {
	t := r.cur.Load()
	if t == nil {
		ctx.Error("Service Unavailable\n", fasthttp.StatusServiceUnavailable)
		return
	}
	t.active.Add(1)
	defer t.active.Add(-1)
	s, ok := t.hosts.Lookup(ctx.Request.Header.Host())
	if !ok {
		if t.refuse {
			ctx.Error("Misdirected Request\n", fasthttp.StatusMisdirectedRequest)
			return
		}
		s = t.def
	}
	s.serve(ctx)
}

// WritePrometheus writes the upstream metrics of every site's proxy in
// the Prometheus text format, as proxy.Proxy.WritePrometheus does: the
// default site's as they are, a named site's with a site label (its first
// host), so that two sites may share an upstream. A reload starts the
// counts of the new sites' upstreams from zero.
func (r *Router) WritePrometheus(w io.Writer) {
	t := r.cur.Load()
	if t == nil {
		return
	}
	for _, sp := range t.proxies {
		sp.p.WritePrometheusLabeled(w, sp.label)
	}
}

// Abort closes every connection to the upstreams of the sites in use at
// once (see proxy.Proxy.Abort), for a shutdown that must not wait.
func (r *Router) Abort() {
	if t := r.cur.Load(); t != nil {
		for _, sp := range t.proxies {
			sp.p.Abort()
		}
	}
}

// Proxies reports whether any site in use sends requests to upstreams.
func (r *Router) Proxies() bool {
	t := r.cur.Load()
	return t != nil && len(t.proxies) > 0
}

func (s *site) serve(ctx *fasthttp.RequestCtx) {
	path := ctx.Path()
	for i := range s.redirects {
		rd := &s.redirects[i]
		if string(path) == rd.Path || strings.HasSuffix(rd.Path, "/") && strings.HasPrefix(string(path), rd.Path) {
			ctx.Response.Header.Set(fasthttp.HeaderLocation, rd.To)
			ctx.SetStatusCode(rd.Status)
			s.setHeaders(ctx)
			return
		}
	}
	s.handler(ctx)
	s.setHeaders(ctx)
}

// setHeaders sets the site's headers over the response's.
func (s *site) setHeaders(ctx *fasthttp.RequestCtx) {
	for _, h := range s.headers {
		ctx.Response.Header.Set(h[0], h[1])
	}
}

// closeWhenIdle closes t once no request is served by it, or after
// drain.
func (t *tree) closeWhenIdle(drain time.Duration) {
	end := time.Now().Add(drain)
	for t.active.Load() > 0 && time.Now().Before(end) {
		time.Sleep(10 * time.Millisecond)
	}
	t.close()
}

func (t *tree) close() {
	for _, c := range t.closers {
		c()
	}
}

// build makes a tree of cfg's sites, once Validate finds nothing wrong.
func build(cfg Config) (*tree, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	t := &tree{refuse: cfg.RefuseUnknown}
	var errs []error
	mk := func(name string, s Site) *site {
		st, err := t.site(cfg, name, s)
		if err != nil {
			errs = append(errs, err)
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
	if err := errors.Join(errs...); err != nil {
		t.close()
		return nil, err
	}
	return t, nil
}

// site makes one site's handler, named name in errors: redirects, then
// routes to upstreams, then files.
func (t *tree) site(cfg Config, name string, s Site) (*site, error) {
	st := &site{}
	for h, v := range s.Headers {
		st.headers = append(st.headers, [2]string{http.CanonicalHeaderKey(h), v})
	}
	for _, rd := range s.Redirects {
		if rd.Status == 0 {
			rd.Status = fasthttp.StatusPermanentRedirect
		}
		st.redirects = append(st.redirects, rd)
	}

	var next fasthttp.RequestHandler = func(ctx *fasthttp.RequestCtx) { ctx.Error("Not Found\n", fasthttp.StatusNotFound) }
	if s.Handler != nil {
		next = s.Handler
	} else if s.Root != "" && len(s.Proxy) == 0 {
		sc := cfg.Static
		sc.Root = s.Root
		files, err := static.New(sc)
		if err != nil {
			return nil, &ConfigError{Pkg: "sites", Field: name + ".Root", Value: fmt.Sprintf("%q", s.Root), Err: err}
		}
		t.closers = append(t.closers, files.Close)
		next = files.Handle
	}
	if pc, ok := proxyConfig(cfg.Proxy, s); ok {
		p, err := proxy.New(pc)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		t.closers = append(t.closers, func() { p.Close() })
		label := ""
		if name != "Default" {
			label = fmt.Sprintf("site=%q", strings.ToLower(s.Hosts[0]))
		}
		t.proxies = append(t.proxies, siteProxy{label: label, p: p})
		next = p.Handler(next)
	}
	st.handler = next
	return st, nil
}

// validHeaderName reports whether name is an HTTP token (RFC 9110).
func validHeaderName(name string) bool {
	for i := 0; i < len(name); i++ {
		if !httpsyntax.IsTokenChar(name[i]) {
			return false
		}
	}
	return name != ""
}
