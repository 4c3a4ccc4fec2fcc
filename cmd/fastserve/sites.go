package main

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/fastserve/fastserve/certs"
	"github.com/fastserve/fastserve/internal/field"
	"github.com/fastserve/fastserve/sites"
)

// fileSites are the config file's sites: key, read as sites.Site values,
// with the line of every key and value in them, to name in errors.
type fileSites struct {
	list  []sites.Site
	lines map[string]int // by path in the file: "sites[1].redirects[0].status"
	src   string         // config file F:LINE of the sites: key

	// Certificates follow sites: a site's cert and key files join the
	// server's (picked by SNI), and acme: true makes its hosts (but
	// wildcards, which need DNS-01) ACME names.
	certs     []certs.KeyPair
	acmeHosts []string
}

// siteKeys are a site's keys in the config file, the names.
const siteKeys = "hosts, root, headers, response-headers, request-headers, redirects, routes, proxy, compress, access, files, error-pages, cert, key, acme"

// routeKeys are a route's keys.
const routeKeys = "path, proxy, strip-prefix, add-prefix, compress, access, response-headers, request-headers"

// loadSites reads the config file's sites: a list of mappings, keyed as
// siteKeys says (see the README's "Sites (virtual hosts)").
func (s *settings) loadSites(v *yaml.Node) []error {
	fs := &s.sites
	fs.lines = map[string]int{}
	fs.src = fmt.Sprintf("config file %s:%d", s.configFile, v.Line)
	var errs []error
	bad := func(n *yaml.Node, path, want string) {
		errs = append(errs, fmt.Errorf("config file %s:%d: %s: %s", s.configFile, n.Line, path, want))
	}
	const wantSite = "want a list of sites, each a mapping of " + siteKeys
	if v.Kind != yaml.SequenceNode {
		bad(v, "sites", wantSite)
		return errs
	}
	// strs reads one string or a list of them (comma-separated too, as
	// --proxy takes them, if split).
	strs := func(n *yaml.Node, path string, split bool) []string {
		var out []string
		one := func(e *yaml.Node, p string) {
			if e.Kind != yaml.ScalarNode {
				bad(e, p, "want a string")
				return
			}
			fs.lines[p] = e.Line
			if split {
				out = append(out, splitList(e.Value)...)
			} else {
				out = append(out, e.Value)
			}
		}
		switch n.Kind {
		case yaml.SequenceNode:
			for j, e := range n.Content {
				one(e, fmt.Sprintf("%s[%d]", path, j))
			}
		default:
			one(n, path)
		}
		return out
	}
	// each calls f for each key and value of the mapping n, at path.
	each := func(n *yaml.Node, path, want string, f func(key string, val *yaml.Node, at string) bool) {
		if n.Kind != yaml.MappingNode {
			bad(n, path, want)
			return
		}
		seen := map[string]bool{}
		for j := 0; j+1 < len(n.Content); j += 2 {
			k, val := n.Content[j], n.Content[j+1]
			at := path + "." + k.Value
			if seen[k.Value] {
				// YAML keeps the last; a rule silently gone (a second
				// access: dropping the first's basic-auth) is worse.
				bad(k, at, "is set twice")
				continue
			}
			seen[k.Value] = true
			fs.lines[at] = k.Line
			if !f(k.Value, val, at) {
				bad(k, path, fmt.Sprintf("unknown key %q; %s", k.Value, want))
			}
		}
	}
	boolean := func(n *yaml.Node, at string) bool {
		b, err := strconv.ParseBool(scalar(n, at, bad))
		if err != nil {
			bad(n, at, n.Value+": must be true or false")
		}
		return b
	}
	strMap := func(n *yaml.Node, at, want string) map[string]string {
		m := map[string]string{}
		each(n, at, want, func(k string, v *yaml.Node, kat string) bool {
			m[k] = scalar(v, kat, bad)
			return true
		})
		return m
	}
	headerRules := func(n *yaml.Node, at string) (r sites.HeaderRules) {
		const want = "want {set: {Name: value}, add: {Name: value}, delete: [Name]}"
		each(n, at, want, func(k string, v *yaml.Node, kat string) bool {
			switch k {
			case "set":
				r.Set = strMap(v, kat, want)
			case "add":
				r.Add = strMap(v, kat, want)
			case "delete":
				r.Delete = strs(v, kat, false)
			default:
				return false
			}
			return true
		})
		return r
	}
	access := func(n *yaml.Node, at string) (a sites.Access) {
		const want = "want {allow: [CIDR], deny: [CIDR], basic-auth: {user: bcrypt-hash}, realm: name}"
		each(n, at, want, func(k string, v *yaml.Node, kat string) bool {
			switch k {
			case "allow":
				a.Allow = strs(v, kat, true)
			case "deny":
				a.Deny = strs(v, kat, true)
			case "basic-auth":
				a.BasicAuth = strMap(v, kat, want)
			case "realm":
				a.Realm = scalar(v, kat, bad)
			default:
				return false
			}
			return true
		})
		return a
	}
	files := func(n *yaml.Node, at string) (f sites.Files) {
		const want = "want {index: [index.html], dotfiles: false, listing: false, fallback: /index.html, cache-control: \"public, max-age=300\"}"
		each(n, at, want, func(k string, v *yaml.Node, kat string) bool {
			switch k {
			case "index":
				f.Index = strs(v, kat, true)
			case "dotfiles":
				b := boolean(v, kat)
				f.Dotfiles = &b
			case "listing":
				b := boolean(v, kat)
				f.Listing = &b
			case "fallback":
				f.Fallback = scalar(v, kat, bad)
			case "cache-control":
				f.CacheControl = scalar(v, kat, bad)
			default:
				return false
			}
			return true
		})
		return f
	}
	errorPages := func(n *yaml.Node, at string) map[int]string {
		const want = "want {404: /errors/404.html, 502: ...}: a status from 400 to 599, and a file"
		pages := map[int]string{}
		each(n, at, want, func(k string, v *yaml.Node, kat string) bool {
			st, err := strconv.Atoi(k)
			if err != nil || st < 400 || st > 599 {
				bad(v, kat, want)
				return true
			}
			pages[st] = scalar(v, kat, bad)
			return true
		})
		return pages
	}
	for i, e := range v.Content {
		path := fmt.Sprintf("sites[%d]", i)
		fs.lines[path] = e.Line
		var site sites.Site
		var pair certs.KeyPair
		acme := false
		each(e, path, "a site's keys are "+siteKeys, func(key string, val *yaml.Node, at string) bool {
			switch key {
			case "cert":
				pair.CertFile = scalar(val, at, bad)
			case "key":
				pair.KeyFile = scalar(val, at, bad)
			case "acme":
				acme = boolean(val, at)
			case "hosts":
				site.Hosts = strs(val, at, false)
			case "root":
				site.Root = scalar(val, at, bad)
			case "proxy":
				site.Proxy = strs(val, at, true)
			case "compress":
				site.Compress = boolean(val, at)
			case "headers":
				site.Headers = strMap(val, at, "want a mapping of header names to values")
			case "response-headers":
				site.ResponseHeaders = headerRules(val, at)
			case "request-headers":
				site.RequestHeaders = headerRules(val, at)
			case "access":
				site.Access = access(val, at)
			case "files":
				site.Files = files(val, at)
			case "error-pages":
				site.ErrorPages = errorPages(val, at)
			case "redirects":
				const want = "want a list of {path: /old/, to: https://example.com/new/, status: 308}"
				if val.Kind != yaml.SequenceNode {
					bad(val, at, want)
					break
				}
				for j, re := range val.Content {
					var rd sites.Redirect
					rat := fmt.Sprintf("%s[%d]", at, j)
					fs.lines[rat] = re.Line
					each(re, rat, want, func(k string, rv *yaml.Node, kat string) bool {
						switch k {
						case "path":
							rd.Path = scalar(rv, kat, bad)
						case "to":
							rd.To = scalar(rv, kat, bad)
						case "status":
							st := scalar(rv, kat, bad)
							n, err := strconv.Atoi(st)
							if err != nil {
								bad(rv, kat, st+": must be 301, 302, 303, 307 or 308")
							}
							rd.Status = n
						default:
							return false
						}
						return true
					})
					site.Redirects = append(site.Redirects, rd)
				}
			case "routes":
				const want = "want a list of routes, each a mapping of " + routeKeys
				if val.Kind != yaml.SequenceNode {
					bad(val, at, want)
					break
				}
				for j, re := range val.Content {
					var r sites.Route
					rat := fmt.Sprintf("%s[%d]", at, j)
					fs.lines[rat] = re.Line
					each(re, rat, want, func(k string, rv *yaml.Node, kat string) bool {
						switch k {
						case "path":
							r.Path = scalar(rv, kat, bad)
						case "proxy":
							r.Proxy = strs(rv, kat, true)
						case "strip-prefix":
							r.StripPrefix = boolean(rv, kat)
						case "add-prefix":
							r.AddPrefix = scalar(rv, kat, bad)
						case "compress":
							b := boolean(rv, kat)
							r.Compress = &b
						case "access":
							r.Access = access(rv, kat)
						case "response-headers":
							r.ResponseHeaders = headerRules(rv, kat)
						case "request-headers":
							r.RequestHeaders = headerRules(rv, kat)
						default:
							return false
						}
						return true
					})
					site.Routes = append(site.Routes, r)
				}
			default:
				return false
			}
			return true
		})
		fs.list = append(fs.list, site)
		switch {
		case pair.CertFile != "" && pair.KeyFile != "":
			fs.certs = append(fs.certs, pair)
		case pair.CertFile != "" || pair.KeyFile != "":
			bad(e, path, "cert and key come in pairs: give both, or neither")
		}
		if acme {
			if pair.CertFile != "" {
				bad(e, path, "acme: true and cert: a site's certificate comes from one of them")
			}
			n := len(fs.acmeHosts)
			for _, h := range site.Hosts {
				if !strings.HasPrefix(h, "*.") {
					fs.acmeHosts = append(fs.acmeHosts, strings.ToLower(h))
				}
			}
			if n == len(fs.acmeHosts) && len(site.Hosts) > 0 {
				bad(e, path+".acme", "true, but every host is a wildcard, which ACME's TLS-ALPN-01 and HTTP-01 cannot prove: give the site a cert and key")
			}
		}
	}
	if len(errs) == 0 {
		s.source["sites"] = fs.src
	}
	return errs
}

// scalar is the string of a scalar node; another is reported.
func scalar(n *yaml.Node, at string, bad func(*yaml.Node, string, string)) string {
	if n.Kind != yaml.ScalarNode {
		bad(n, at, "want a single value")
		return ""
	}
	return n.Value
}

// proxies reports whether a site of the config file sends requests to
// upstreams (a route, or its proxy).
func (fs *fileSites) proxies() bool {
	for _, s := range fs.list {
		if len(s.Routes) > 0 || len(s.Proxy) > 0 {
			return true
		}
	}
	return false
}

// roots reports whether a site of the config file serves files.
func (fs *fileSites) roots() bool {
	for _, s := range fs.list {
		if s.Root != "" {
			return true
		}
	}
	return false
}

// fileKeys are the config file's names of sites.Config's fields.
var fileKeys = map[string]string{
	"Sites": "sites", "Hosts": "hosts", "Root": "root", "Headers": "headers", "Redirects": "redirects",
	"Path": "path", "To": "to", "Status": "status", "Routes": "routes", "Proxy": "proxy", "StripPrefix": "strip-prefix",
	"AddPrefix": "add-prefix", "Access": "access", "Files": "files", "ErrorPages": "error-pages", "Compress": "compress",
	"ResponseHeaders": "response-headers", "RequestHeaders": "request-headers",
}

var fieldPart = regexp.MustCompile(`^([A-Za-z]+)(\[\d+\])?$`)

// filePath is the path in the config file of a sites.Config field:
// "Sites[1].Redirects[0].Status" is "sites[1].redirects[0].status".
func filePath(f string) string {
	parts := strings.Split(f, ".")
	for i, p := range parts {
		if m := fieldPart.FindStringSubmatch(p); m != nil && fileKeys[m[1]] != "" {
			parts[i] = fileKeys[m[1]] + m[2]
		}
	}
	return strings.Join(parts, ".")
}

// line is the line of path in the config file, or of the nearest key
// that holds it.
func (fs *fileSites) line(path string) int {
	for p := path; p != ""; {
		if n, ok := fs.lines[p]; ok {
			return n
		}
		i := strings.LastIndexAny(p, ".[")
		if i < 0 {
			break
		}
		p = p[:i]
	}
	return 0
}

// explainSites rewrites the errors of sites.Config.Validate about the
// config file's sites in its words, each with its file and line:
// config file F:12: sites[1].redirects[0].status: 200: must be 301,
// 302, 303, 307 or 308. The default site's fields are the flags',
// reported by their own checks (dropped here); the shared proxy settings
// are reported as their flags, unless proxied is set (then the default
// site's proxy reported them).
func (s *settings) explainSites(err error, proxied bool) error {
	var lines []error
	for _, e := range field.Leaves(err) {
		var ce *sites.ConfigError
		if !errors.As(e, &ce) {
			lines = append(lines, e)
			continue
		}
		switch {
		case strings.HasPrefix(ce.Field, "Default."):
			continue
		case strings.HasPrefix(ce.Field, "Proxy."):
			if !proxied {
				pe := *ce
				pe.Pkg, pe.Field = "proxy", strings.TrimPrefix(ce.Field, "Proxy.")
				lines = append(lines, s.explain(&pe, "Proxy"))
			}
			continue
		}
		path := filePath(ce.Field)
		what := ce.Allowed
		if what == "" {
			what = "invalid"
			if ce.Err != nil {
				what = ce.Err.Error()
			}
		} else {
			what = "must be " + what
		}
		if ce.Value == nil { // a rule's error says what is wrong in it
			lines = append(lines, fmt.Errorf("config file %s:%d: %s: %s", s.configFile, s.sites.line(path), path, what))
			continue
		}
		v := unquote(ce.Value)
		if v == "" {
			v = `""`
		}
		lines = append(lines, fmt.Errorf("config file %s:%d: %s: %v: %s", s.configFile, s.sites.line(path), path, v, what))
	}
	return errors.Join(lines...)
}

// describe is a site as check prints it: its hosts, root or proxy, and
// routes.
func describe(st sites.Site) string {
	var b strings.Builder
	fmt.Fprintf(&b, "hosts=%s", strings.Join(st.Hosts, ","))
	if st.Root != "" {
		fmt.Fprintf(&b, " root=%s", st.Root)
	}
	if len(st.Proxy) > 0 {
		fmt.Fprintf(&b, " proxy=%s", strings.Join(st.Proxy, ","))
	}
	if st.Compress {
		b.WriteString(" compress=true")
	}
	for _, r := range st.Routes {
		var opts []string
		if r.StripPrefix {
			opts = append(opts, "strip-prefix")
		}
		if r.Compress != nil {
			opts = append(opts, "compress="+strconv.FormatBool(*r.Compress))
		}
		with := ""
		if len(opts) > 0 {
			with = " (" + strings.Join(opts, ", ") + ")"
		}
		fmt.Fprintf(&b, " route=%s->%s%s", r.Path, strings.Join(r.Proxy, ","), with)
	}
	if len(st.Redirects) > 0 {
		fmt.Fprintf(&b, " redirects=%d", len(st.Redirects))
	}
	if len(st.Headers) > 0 {
		fmt.Fprintf(&b, " headers=%d", len(st.Headers))
	}
	return b.String()
}
