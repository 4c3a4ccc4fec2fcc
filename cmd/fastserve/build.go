package main

import (
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"

	"github.com/fastserve/fastserve/proxy"
	"github.com/fastserve/fastserve/server"
	"github.com/fastserve/fastserve/sites"
	"github.com/fastserve/fastserve/static"
)

// configs are the library structs the settings fill: a setting's field is
// a path in it, such as "Server.Tune.KeepAlive.Idle".
type configs struct {
	Server server.Config
	Proxy  proxy.Config
	Sites  sites.Config // Default is the flat keys' rules, --root and --proxy; Proxy is Proxy's shared settings
}

// proxyRoute is a route of configs.Proxy: --proxy's, for "/" (the
// config file's routes are the default site's).
type proxyRoute = proxy.Route

// build fills the library's configs from the settings, with the errors
// that are the command's own: a setting given without the one it takes
// effect with, a value the command does not take, --cert without --key.
func (s *settings) build() (configs, error) {
	var c configs
	c.Server.Tune.NoDelay = true
	var errs []error
	for _, r := range table {
		v := s.value(r.name)
		if r.needs != "" {
			if need := row(r.needs); !s.on(need) {
				if s.given(r.name) {
					errs = append(errs, s.needsError(r, need))
				}
				continue
			}
		}
		if r.valid != nil {
			if want := call(r.valid, v).String(); want != "" {
				errs = append(errs, fmt.Errorf("--%s=%s%s: invalid value: want %s", r.name, s.flags.Lookup(r.name).Value, s.from(r.name), want))
				continue
			}
		}
		switch {
		case r.setter != nil:
			call(r.setter, reflect.ValueOf(&c), v)
		case r.field != "":
			if r.conv != nil {
				v = call(r.conv, v)
			}
			assign(reflect.ValueOf(&c).Elem(), r.field, v)
		}
	}
	if nc, nk := len(valueOf[[]string](s, "cert")), len(valueOf[[]string](s, "key")); nc != nk {
		errs = append(errs, fmt.Errorf("--cert and --key come in pairs, got %d --cert and %d --key", nc, nk))
		c.Server.TLS.Certificates = nil // that is the one error about them
	}
	// Files serve what no route takes: a route for "/" takes every path.
	if root := valueOf[string](s, "root"); root != "" {
		if len(c.Proxy.Routes) > 0 || slices.ContainsFunc(s.sites.def.Routes, func(r sites.Route) bool { return r.Path == "/" }) {
			errs = append(errs, fmt.Errorf("--root=%s%s: takes no effect, since a proxy route for \"/\" takes every request (--proxy, or the config file's routes:)", root, s.from("root")))
		}
	}
	s.sites.certsFrom = len(c.Server.TLS.Certificates)
	c.Server.TLS.Certificates = append(c.Server.TLS.Certificates, s.sites.certs...)
	for _, h := range s.sites.acmeHosts {
		if !slices.Contains(c.Server.ACME.Domains, h) {
			c.Server.ACME.Domains = append(c.Server.ACME.Domains, h)
		}
	}
	limit := c.Sites.Default.RateLimit // --rate-limit's
	c.Sites.Default = s.defaultSite(valueOf[string](s, "root"), c.Proxy.Routes)
	c.Sites.Default.RateLimit = limit
	c.Sites.Sites = s.sites.list
	c.Proxy.Tune = c.Server.Tune // connections to upstreams cross NAT and balancers too
	c.Sites.Proxy = c.Proxy
	return c, errors.Join(errs...)
}

// defaultSite is the site of the hosts no site names: the config file's
// flat keys of a site's rules (headers, redirects, routes, access, ...),
// with --root (or the built-in page), and --proxy as its proxy, the route
// for "/".
func (s *settings) defaultSite(root string, proxied []proxyRoute) sites.Site {
	d := s.sites.def
	d.Root = root
	if root == "" {
		d.Handler = static.Welcome
	}
	for _, r := range proxied {
		d.Proxy = append(d.Proxy, r.Upstreams...)
	}
	return d
}

// needsError says that r was given while need, which it takes effect
// only with, is off.
func (s *settings) needsError(r, need setting) error {
	with := "--" + need.name
	if need.routesToo {
		with += " or a routes: key in the config file"
	}
	if need.sitesToo {
		with += " or a site of sites: with one"
	}
	state := "empty"
	if _, ok := need.def.(bool); ok {
		state = "false"
	}
	return fmt.Errorf("--%s=%s%s: takes effect only with %s, which is %s%s",
		r.name, s.flags.Lookup(r.name).Value, s.from(r.name), with, state, s.from(need.name))
}

// assign sets the field at path in dst to v. A path element name[] is a
// list: v's elements go to the list's elements, which are added as needed.
func assign(dst reflect.Value, path string, v reflect.Value) {
	name, rest, _ := strings.Cut(path, ".")
	if list, ok := strings.CutSuffix(name, "[]"); ok {
		l := dst.FieldByName(list)
		for i := range v.Len() {
			if i == l.Len() {
				l.Set(reflect.Append(l, reflect.Zero(l.Type().Elem())))
			}
			assign(l.Index(i), rest, v.Index(i))
		}
		return
	}
	f := dst.FieldByName(name)
	if rest != "" {
		assign(f, rest, v)
		return
	}
	f.Set(v)
}

// call calls f, a func of a setting's row, and returns its one result.
func call(f any, args ...reflect.Value) reflect.Value {
	out := reflect.ValueOf(f).Call(args)
	if len(out) == 0 {
		return reflect.Value{}
	}
	return out[0]
}
