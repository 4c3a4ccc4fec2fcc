package sites

import (
	"errors"
	"fmt"
	"os"
	"reflect"
	"slices"
	"strings"

	"github.com/fastserve/fastserve/internal/field"
	"github.com/fastserve/fastserve/proxy"
)

// A ConfigError reports an invalid Config field, as a path in Config
// ("Sites[1].Redirects[0].Status", "Default.Root",
// "Sites[0].Routes[2].Proxy[1]"), the value given and what it accepts,
// so that a caller can name where the value came from.
type ConfigError = field.Error

// Validate reports every invalid field of cfg, each a *ConfigError
// (joined), as New does, without starting anything: it looks at the
// roots' directories, and contacts no upstream.
func (cfg Config) Validate() error {
	es := field.Errors{Pkg: "sites"}
	var hosts Table[struct{}]
	proxyShared := false // the shared cfg.Proxy fields are reported once
	check := func(name string, s Site, named bool) {
		if named && len(s.Hosts) == 0 {
			es.Bad(name+".Hosts", "none", "at least one host name")
		}
		if named {
			for j, h := range s.Hosts {
				if err := hosts.add(h, struct{}{}); err != nil {
					es.Add(&ConfigError{Pkg: "sites", Field: fmt.Sprintf("%s.Hosts[%d]", name, j), Value: fmt.Sprintf("%q", h), Err: err})
				}
			}
		}
		for _, h := range slices.Sorted(mapKeys(s.Headers)) {
			if !validHeaderName(h) {
				es.Bad(name+".Headers", fmt.Sprintf("%q", h), "header names (RFC 9110 tokens, such as X-Frame-Options)")
			}
		}
		for j, rd := range s.Redirects {
			at := fmt.Sprintf("%s.Redirects[%d]", name, j)
			if !strings.HasPrefix(rd.Path, "/") {
				es.Bad(at+".Path", fmt.Sprintf("%q", rd.Path), `a path starting with "/"`)
			}
			if rd.To == "" || strings.ContainsFunc(rd.To, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
				es.Bad(at+".To", fmt.Sprintf("%q", rd.To), "the Location to send, a URL or a path, without control characters")
			}
			if !validRedirect(rd.Status) {
				es.Bad(at+".Status", rd.Status, "301, 302, 303, 307 or 308")
			}
		}
		if s.Root != "" {
			if len(s.Proxy) > 0 {
				es.Bad(name+".Root", fmt.Sprintf("%q", s.Root), "empty when the site has a proxy (it takes every request)")
			} else if fi, err := os.Stat(s.Root); err != nil || !fi.IsDir() {
				es.Add(&ConfigError{Pkg: "sites", Field: name + ".Root", Value: fmt.Sprintf("%q", s.Root), Allowed: "an existing directory", Err: err})
			}
		}
		// What build finds wrong beyond the fields above, so that what
		// Validate accepts, build runs: rules, access, files, pages.
		rule := func(field string, err error) {
			if err != nil {
				es.Add(&ConfigError{Pkg: "sites", Field: name + "." + field, Err: err})
			}
		}
		var site rules
		var err error
		valued := map[string]string{} // the names are checked above: the values here
		for h, v := range s.Headers {
			if validHeaderName(h) {
				valued[h] = v
			}
		}
		_, err = rules(nil).merge("headers", HeaderRules{Set: valued})
		rule("Headers", err)
		site, err = rules(nil).merge("response-headers", s.ResponseHeaders)
		rule("ResponseHeaders", err)
		_, err = rules(nil).merge("request-headers", s.RequestHeaders)
		rule("RequestHeaders", err)
		_, err = newAccess(s.Access)
		rule("Access", err)
		filesRoot := s.Root // whose files the fallback must be
		if len(s.Proxy) > 0 || !isDir(s.Root) {
			filesRoot = "" // Root is reported, or Files below
		}
		es.Add(s.Files.check(name, filesRoot)...)
		if !reflect.DeepEqual(s.Files, Files{}) && (s.Root == "" || len(s.Proxy) > 0) {
			rule("Files", errors.New("files: options for a site's root; this site serves no files (no root, or a proxy for every path)"))
		}
		_, err = errorPages(s.ErrorPages, s.Root)
		rule("ErrorPages", err)
		checkRateLimits(&es, name, s)
		if s.Compress && len(s.Proxy) == 0 && len(s.Routes) == 0 && s.Handler == nil {
			es.Bad(name+".Compress", true, "false for a site with no upstream and no handler (its files are compressed by the file server, on its own)")
		}
		for j, r := range s.Routes {
			at := fmt.Sprintf("Routes[%d]", j)
			_, err = newAccess(r.Access)
			rule(at+".Access", err)
			_, err = site.merge("response-headers", r.ResponseHeaders)
			rule(at+".ResponseHeaders", err)
			_, err = rules(nil).merge("request-headers", r.RequestHeaders)
			rule(at+".RequestHeaders", err)
		}
		if pc, ok := proxyConfig(cfg.Proxy, s); ok {
			for _, e := range field.Leaves(pc.Validate()) {
				if e == nil {
					continue
				}
				var ce *ConfigError
				if !errors.As(e, &ce) {
					es.Add(fmt.Errorf("%s: %w", name, e))
					continue
				}
				if f, ok := routeField(name, s, ce.Field); ok {
					c := *ce
					c.Pkg, c.Field = "sites", f
					if f == name+".Proxy" && strings.HasSuffix(ce.Field, ".Path") {
						c.Value, c.Allowed = fmt.Sprint(s.Proxy), `empty when a route has the path "/" (both would take every request)`
					}
					es.Add(&c)
				} else if !proxyShared {
					c := *ce
					c.Pkg, c.Field = "sites", "Proxy."+ce.Field
					es.Add(&c)
				}
			}
			proxyShared = true
		}
	}
	check("Default", cfg.Default, false)
	for i, s := range cfg.Sites {
		check(fmt.Sprintf("Sites[%d]", i), s, true)
	}
	return es.Err()
}

// isDir reports whether dir is an existing directory.
func isDir(dir string) bool {
	fi, err := os.Stat(dir)
	return err == nil && fi.IsDir()
}

func validRedirect(status int) bool {
	switch status {
	case 0, 301, 302, 303, 307, 308:
		return true
	}
	return false
}

func mapKeys(m map[string]string) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// proxyConfig is the proxy of site s: its routes, then its Proxy as the
// route for "/", with the shared settings of shared; false if s proxies
// nothing.
func proxyConfig(shared proxy.Config, s Site) (proxy.Config, bool) {
	routes := make([]proxy.Route, 0, len(s.Routes)+1)
	for _, r := range s.Routes {
		routes = append(routes, proxy.Route{Path: r.Path, Upstreams: r.Proxy, StripPrefix: r.StripPrefix, AddPrefix: r.AddPrefix,
			Balance: r.Balance, HashKey: r.HashKey})
	}
	if len(s.Proxy) > 0 {
		routes = append(routes, proxy.Route{Path: "/", Upstreams: s.Proxy})
	}
	shared.Routes = routes
	return shared, len(routes) > 0
}

// routeField is the field of site name that the proxy's field f
// ("Routes[1].Upstreams[0]") is: one of its Routes, or its Proxy, the
// last route; false for a field of the shared settings.
func routeField(name string, s Site, f string) (string, bool) {
	var k int
	if n, _ := fmt.Sscanf(f, "Routes[%d]", &k); n != 1 {
		return "", false
	}
	rest := f[strings.Index(f, "]")+1:]
	if k < len(s.Routes) {
		return fmt.Sprintf("%s.Routes[%d]%s", name, k, strings.Replace(rest, ".Upstreams", ".Proxy", 1)), true
	}
	if rest == ".Path" { // "/", which a route has already
		return name + ".Proxy", true
	}
	return name + ".Proxy" + strings.TrimPrefix(rest, ".Upstreams"), true
}
