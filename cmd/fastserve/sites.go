package main

import (
	"errors"
	"fmt"
	iofs "io/fs"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/fastserve/fastserve/certs"
	"github.com/fastserve/fastserve/internal/field"
	"github.com/fastserve/fastserve/internal/httpsyntax"
	"github.com/fastserve/fastserve/ratelimit"
	"github.com/fastserve/fastserve/server"
	"github.com/fastserve/fastserve/sites"
)

// fileSites are the sites of the config file: the default site's rules,
// given as flat keys beside the settings, and the sites: key's sites,
// read as sites.Site values alike, with the line of every key and value
// in them, to name in errors.
type fileSites struct {
	def   sites.Site // the flat keys' rules (ruleKeys); its root and proxy are the settings'
	list  []sites.Site
	lines map[string]int // by path in the file: "sites[1].redirects[0].status", "routes[0].path"
	src   string         // config file F:LINE of the sites: list (its first line)

	// Certificates follow sites: a site's cert and key files join the
	// server's (picked by SNI), and acme: true makes its hosts (but
	// wildcards, which need DNS-01) ACME names.
	certs     []certs.KeyPair
	certSites []int // the site of each of certs, by its index in list
	certsFrom int   // where certs begin in server.Config's TLS.Certificates
	acmeHosts []string
}

// ruleKeys are the keys of every site, the default site's flat keys
// included: what it serves and how, beside its names and certificate.
const ruleKeys = "headers, response-headers, request-headers, redirects, routes, compress, access, files, error-pages"

// siteKeys are a site's keys in the config file, the names. A
// named site's rate-limit is the default site's --rate-limit* settings.
const siteKeys = "hosts, root, proxy, " + ruleKeys + ", rate-limit, cert, key, acme"

// routeKeys are a route's keys.
const routeKeys = "path, proxy, strip-prefix, add-prefix, balance, hash-key, compress, access, rate-limit, response-headers, request-headers"

// isRuleKey reports whether a flat key of the config file is one of the
// default site's rules (ruleKeys), read as a site's.
func isRuleKey(key string) bool {
	return slices.Contains(strings.Split(ruleKeys, ", "), key)
}

// siteReader reads sites from the config file's YAML nodes into a
// fileSites, noting the line of each key and value, and what is wrong,
// each by file, line and path.
type siteReader struct {
	file string
	fs   *fileSites
	errs []error
}

func (s *settings) siteReader() *siteReader {
	if s.sites.lines == nil {
		s.sites.lines = map[string]int{}
	}
	return &siteReader{file: s.configFile, fs: &s.sites}
}

func (r *siteReader) bad(n *yaml.Node, path, want string) {
	r.errs = append(r.errs, fmt.Errorf("config file %s:%d: %s: %s", r.file, n.Line, path, want))
}

// loadRule reads the flat key of the default site's rules, one of
// ruleKeys, into the default site.
func (s *settings) loadRule(key string, v *yaml.Node) []error {
	r := s.siteReader()
	r.fs.lines[key] = v.Line
	r.rule(&r.fs.def, key, v, key)
	return r.errs
}

// loadSites reads the config file's sites: a list of mappings, keyed as
// siteKeys says (see the README's "Sites (virtual hosts)").
func (s *settings) loadSites(v *yaml.Node) []error {
	r := s.siteReader()
	fs := r.fs
	fs.src = fmt.Sprintf("config file %s:%d", s.configFile, v.Line)
	const wantSite = "want a list of sites, each a mapping of " + siteKeys
	if v.Kind != yaml.SequenceNode {
		r.bad(v, "sites", wantSite)
		return r.errs
	}
	for i, e := range v.Content {
		path := fmt.Sprintf("sites[%d]", i)
		fs.lines[path] = e.Line
		var site sites.Site
		var pair certs.KeyPair
		acme := false
		r.each(e, path, "a site's keys are "+siteKeys, func(key string, val *yaml.Node, at string) bool {
			switch key {
			case "cert":
				pair.CertFile = r.scalar(val, at)
			case "key":
				pair.KeyFile = r.scalar(val, at)
			case "acme":
				acme = r.boolean(val, at)
			case "hosts":
				site.Hosts = r.strs(val, at, false)
			case "root":
				site.Root = r.scalar(val, at)
			case "proxy":
				site.Proxy = r.strs(val, at, true)
			case "rate-limit":
				site.RateLimit = r.rateLimit(val, at)
			default:
				return r.rule(&site, key, val, at)
			}
			return true
		})
		fs.list = append(fs.list, site)
		switch {
		case pair.CertFile != "" && pair.KeyFile != "":
			fs.certs = append(fs.certs, pair)
			fs.certSites = append(fs.certSites, i)
		case pair.CertFile != "" || pair.KeyFile != "":
			r.bad(e, path, "cert and key come in pairs: give both, or neither")
		}
		if acme {
			if pair.CertFile != "" {
				r.bad(e, path, "acme: true and cert: a site's certificate comes from one of them")
			}
			n := len(fs.acmeHosts)
			for _, h := range site.Hosts {
				if !strings.HasPrefix(h, "*.") {
					fs.acmeHosts = append(fs.acmeHosts, strings.ToLower(h))
				}
			}
			if n == len(fs.acmeHosts) && len(site.Hosts) > 0 {
				r.bad(e, path+".acme", "true, but every host is a wildcard, which ACME's TLS-ALPN-01 and HTTP-01 cannot prove: give the site a cert and key")
			}
		}
	}
	if len(r.errs) == 0 {
		s.source["sites"] = fs.src
	}
	return r.errs
}

// rule reads key, one of ruleKeys, into site; false for another key.
func (r *siteReader) rule(site *sites.Site, key string, val *yaml.Node, at string) bool {
	switch key {
	case "headers":
		site.Headers = r.strMap(val, at, "want a mapping of header names to values")
	case "response-headers":
		site.ResponseHeaders = r.headerRules(val, at)
	case "request-headers":
		site.RequestHeaders = r.headerRules(val, at)
	case "compress":
		site.Compress = r.boolean(val, at)
	case "access":
		site.Access = r.access(val, at)
	case "files":
		site.Files = r.files(val, at)
	case "error-pages":
		site.ErrorPages = r.errorPages(val, at)
	case "redirects":
		const want = "want a list of {path: /old/, to: https://example.com/new/, status: 308}"
		r.list(val, at, want, func(e *yaml.Node, rat string) {
			var rd sites.Redirect
			r.each(e, rat, want, func(k string, v *yaml.Node, kat string) bool {
				switch k {
				case "path":
					rd.Path = r.scalar(v, kat)
				case "to":
					rd.To = r.scalar(v, kat)
				case "status":
					st := r.scalar(v, kat)
					n, err := strconv.Atoi(st)
					if err != nil {
						r.bad(v, kat, st+": must be 301, 302, 303, 307 or 308")
					}
					rd.Status = n
				default:
					return false
				}
				return true
			})
			site.Redirects = append(site.Redirects, rd)
		})
	case "routes":
		const want = "want a list of routes, each a mapping of " + routeKeys
		r.list(val, at, want, func(e *yaml.Node, rat string) {
			var rt sites.Route
			r.each(e, rat, want, func(k string, v *yaml.Node, kat string) bool {
				switch k {
				case "path":
					rt.Path = r.scalar(v, kat)
				case "proxy":
					rt.Proxy = r.strs(v, kat, true)
				case "strip-prefix":
					rt.StripPrefix = r.boolean(v, kat)
				case "add-prefix":
					rt.AddPrefix = r.scalar(v, kat)
				case "balance":
					rt.Balance = r.scalar(v, kat)
				case "hash-key":
					rt.HashKey = r.scalar(v, kat)
				case "compress":
					b := r.boolean(v, kat)
					rt.Compress = &b
				case "access":
					rt.Access = r.access(v, kat)
				case "rate-limit":
					rt.RateLimit = r.rateLimit(v, kat)
				case "response-headers":
					rt.ResponseHeaders = r.headerRules(v, kat)
				case "request-headers":
					rt.RequestHeaders = r.headerRules(v, kat)
				default:
					return false
				}
				return true
			})
			site.Routes = append(site.Routes, rt)
		})
	default:
		return false
	}
	return true
}

// list calls item for each element of the list n, at path[i].
func (r *siteReader) list(n *yaml.Node, path, want string, item func(e *yaml.Node, at string)) {
	if n.Kind != yaml.SequenceNode {
		r.bad(n, path, want)
		return
	}
	for j, e := range n.Content {
		at := fmt.Sprintf("%s[%d]", path, j)
		r.fs.lines[at] = e.Line
		item(e, at)
	}
}

// each calls f for each key and value of the mapping n, at path; a key f
// does not take (it returns false) is reported with want.
func (r *siteReader) each(n *yaml.Node, path, want string, f func(key string, val *yaml.Node, at string) bool) {
	if n.Kind != yaml.MappingNode {
		r.bad(n, path, want)
		return
	}
	seen := map[string]bool{}
	for j := 0; j+1 < len(n.Content); j += 2 {
		k, val := n.Content[j], n.Content[j+1]
		at := path + "." + k.Value
		if seen[k.Value] {
			// YAML keeps the last; a rule silently gone (a second
			// access: dropping the first's basic-auth) is worse.
			r.bad(k, at, "is set twice")
			continue
		}
		seen[k.Value] = true
		r.fs.lines[at] = k.Line
		if !f(k.Value, val, at) {
			r.bad(k, path, fmt.Sprintf("unknown key %q; %s", k.Value, want))
		}
	}
}

// strs reads one string or a list of them (comma-separated too, as
// --proxy takes them, if split). A split list is of names, none of which
// may be empty: an empty one would be dropped, the key taking no effect.
func (r *siteReader) strs(n *yaml.Node, path string, split bool) []string {
	var out []string
	one := func(e *yaml.Node, p string) {
		if e.Kind != yaml.ScalarNode {
			r.bad(e, p, "want a string")
			return
		}
		r.fs.lines[p] = e.Line
		if !split {
			out = append(out, e.Value)
			return
		}
		items := splitList(e.Value)
		if len(items) == 0 {
			what := "item"
			if p == path {
				what = "key"
			}
			r.bad(e, p, "empty: give a value, or leave the "+what+" out")
		}
		out = append(out, items...)
	}
	switch n.Kind {
	case yaml.SequenceNode:
		if split && len(n.Content) == 0 {
			r.bad(n, path, "an empty list: give at least one value, or leave the key out")
		}
		for j, e := range n.Content {
			one(e, fmt.Sprintf("%s[%d]", path, j))
		}
	default:
		one(n, path)
	}
	return out
}

// scalar is the string of a scalar node; another is reported.
func (r *siteReader) scalar(n *yaml.Node, at string) string {
	if n.Kind != yaml.ScalarNode {
		r.bad(n, at, "want a single value")
		return ""
	}
	return n.Value
}

func (r *siteReader) boolean(n *yaml.Node, at string) bool {
	b, err := strconv.ParseBool(r.scalar(n, at))
	if err != nil {
		r.bad(n, at, n.Value+": must be true or false")
	}
	return b
}

func (r *siteReader) strMap(n *yaml.Node, at, want string) map[string]string {
	m := map[string]string{}
	r.each(n, at, want, func(k string, v *yaml.Node, kat string) bool {
		m[k] = r.scalar(v, kat)
		return true
	})
	return m
}

// rateLimit reads a rate-limit: mapping.
func (r *siteReader) rateLimit(n *yaml.Node, at string) (c ratelimit.Config) {
	const want = `want {rate: 10/s, burst: 5, key: addr or "header:X-Api-Key", dry-run: false, max-keys: 65536, ipv6-prefix: 64}`
	whole := func(v *yaml.Node, kat string) int {
		val := r.scalar(v, kat)
		i, err := strconv.Atoi(val)
		if err != nil {
			r.bad(v, kat, val+": must be a whole number")
		}
		return i
	}
	r.each(n, at, want, func(k string, v *yaml.Node, kat string) bool {
		switch k {
		case "rate":
			val := r.scalar(v, kat)
			rate, err := ratelimit.ParseRate(val)
			if re, ok := errors.AsType[*ratelimit.RateError](err); ok {
				r.bad(v, kat, val+": must be "+re.Allowed)
				rate = ratelimit.Rate{Count: 1, Per: time.Second} // reported: Validate need not say it again
			}
			c.Rate = rate
		case "burst":
			c.Burst = whole(v, kat)
		case "key":
			val := r.scalar(v, kat)
			if name, ok := strings.CutPrefix(val, "header:"); ok && isToken(name) {
				c.Header = name
			} else if val != "addr" {
				r.bad(v, kat, val+": must be addr (the client's address) or header:NAME (a request header's value, the address without it), such as header:X-Api-Key")
			}
		case "dry-run":
			c.DryRun = r.boolean(v, kat)
		case "max-keys":
			c.MaxKeys = whole(v, kat)
		case "ipv6-prefix":
			c.IPv6Prefix = whole(v, kat)
		default:
			return false
		}
		return true
	})
	return c
}

// isToken reports whether s is an HTTP token (RFC 9110): a header name.
func isToken(s string) bool {
	for i := 0; i < len(s); i++ {
		if !httpsyntax.IsTokenChar(s[i]) {
			return false
		}
	}
	return s != ""
}

func (r *siteReader) headerRules(n *yaml.Node, at string) (h sites.HeaderRules) {
	const want = "want {set: {Name: value}, add: {Name: value}, delete: [Name]}"
	r.each(n, at, want, func(k string, v *yaml.Node, kat string) bool {
		switch k {
		case "set":
			h.Set = r.strMap(v, kat, want)
		case "add":
			h.Add = r.strMap(v, kat, want)
		case "delete":
			h.Delete = r.strs(v, kat, false)
		default:
			return false
		}
		return true
	})
	return h
}

func (r *siteReader) access(n *yaml.Node, at string) (a sites.Access) {
	const want = "want {allow: [CIDR], deny: [CIDR], basic-auth: {user: bcrypt-hash}, realm: name}"
	r.each(n, at, want, func(k string, v *yaml.Node, kat string) bool {
		switch k {
		case "allow":
			a.Allow = r.strs(v, kat, true)
		case "deny":
			a.Deny = r.strs(v, kat, true)
		case "basic-auth":
			a.BasicAuth = r.strMap(v, kat, want)
		case "realm":
			a.Realm = r.scalar(v, kat)
		default:
			return false
		}
		return true
	})
	return a
}

func (r *siteReader) files(n *yaml.Node, at string) (f sites.Files) {
	const want = "want {index: [index.html], dotfiles: false, listing: false, fallback: /index.html, cache-control: \"public, max-age=300\"}"
	r.each(n, at, want, func(k string, v *yaml.Node, kat string) bool {
		switch k {
		case "index":
			f.Index = r.strs(v, kat, true)
		case "dotfiles":
			b := r.boolean(v, kat)
			f.Dotfiles = &b
		case "listing":
			b := r.boolean(v, kat)
			f.Listing = &b
		case "fallback":
			f.Fallback = r.scalar(v, kat)
		case "cache-control":
			f.CacheControl = r.scalar(v, kat)
		default:
			return false
		}
		return true
	})
	return f
}

func (r *siteReader) errorPages(n *yaml.Node, at string) map[int]string {
	const want = "want {404: /errors/404.html, 502: ...}: a status from 400 to 599, and a file"
	pages := map[int]string{}
	r.each(n, at, want, func(k string, v *yaml.Node, kat string) bool {
		st, err := strconv.Atoi(k)
		if err != nil || st < 400 || st > 599 {
			r.bad(v, kat, want)
			return true
		}
		pages[st] = r.scalar(v, kat)
		return true
	})
	return pages
}

// certError is an error of the server's TLS.Certificates[i] field that
// is about a site's certificate, in the config file's words: the site's
// cert or key (the file that could not be opened, else its cert), by
// file and line. False for a field about a --cert.
func (s *settings) certError(ce *server.ConfigError) (error, bool) {
	var i int
	if n, _ := fmt.Sscanf(ce.Field, "TLS.Certificates[%d]", &i); n != 1 {
		return nil, false
	}
	fs := &s.sites
	k := i - fs.certsFrom
	if k < 0 || k >= len(fs.certs) {
		return nil, false
	}
	pair := fs.certs[k]
	key, file, why := "cert", pair.CertFile, ce.Err
	var pe *iofs.PathError
	if errors.As(ce.Err, &pe) {
		why = pe // the file and what is wrong with it
		if pe.Path == pair.KeyFile && pe.Path != pair.CertFile {
			key, file = "key", pair.KeyFile
		}
	}
	if why == nil {
		why = ce
	}
	path := fmt.Sprintf("sites[%d].%s", fs.certSites[k], key)
	return fmt.Errorf("config file %s:%d: %s: %s: %w", s.configFile, fs.line(path), path, file, why), true
}

// has reports whether a site of the config file, the default site's flat
// keys included, turns the setting name on: serves files (root), sends
// requests to upstreams (proxy: a route, or its proxy), or has ACME names
// (acme).
func (fs *fileSites) has(name string) bool {
	switch name {
	case "acme":
		return len(fs.acmeHosts) > 0
	case "root", "proxy":
		for _, st := range append([]sites.Site{fs.def}, fs.list...) {
			if name == "root" && st.Root != "" || name == "proxy" && (len(st.Routes) > 0 || len(st.Proxy) > 0) {
				return true
			}
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
	"Index": "index", "Fallback": "fallback", "CacheControl": "cache-control",
	"RateLimit": "rate-limit", "Rate": "rate", "Burst": "burst", "Header": "key", "DryRun": "dry-run",
	"MaxKeys": "max-keys", "IPv6Prefix": "ipv6-prefix", "Balance": "balance", "HashKey": "hash-key",
}

var fieldPart = regexp.MustCompile(`^([A-Za-z][A-Za-z0-9]*)(\[\d+\])?$`)

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
// 302, 303, 307 or 308. The default site's rules are the file's flat
// keys (routes[0].access); its root is --root's, reported by its own
// check (dropped here), and its proxy --proxy's; the shared proxy
// settings are reported as their flags.
func (s *settings) explainSites(err error) error {
	var lines []error
	for _, e := range field.Leaves(err) {
		var ce *sites.ConfigError
		if !errors.As(e, &ce) {
			lines = append(lines, e)
			continue
		}
		f := ce.Field
		switch {
		case f == "Default.Root":
			continue
		case f == "Default.Proxy":
			lines = append(lines, fmt.Errorf("--proxy=%s%s: invalid value: a route of the config file has the path \"/\" already", strings.Join(valueOf[[]string](s, "proxy"), ","), s.from("proxy")))
			continue
		case strings.HasPrefix(f, "Default.Proxy"):
			lines = append(lines, fmt.Errorf("--proxy=%v%s: invalid value: must be %s", unquote(ce.Value), s.from("proxy"), ce.Allowed))
			continue
		case strings.HasPrefix(f, "Proxy."):
			pe := *ce
			pe.Pkg, pe.Field = "proxy", strings.TrimPrefix(f, "Proxy.")
			lines = append(lines, s.explain(&pe, "Proxy"))
			continue
		}
		path := filePath(strings.TrimPrefix(f, "Default."))
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
		fmt.Fprintf(&b, " route=%s->%s%s", r.Path, strings.Join(r.Proxy, ","), routeOptions(r))
	}
	if st.RateLimit != (ratelimit.Config{}) {
		fmt.Fprintf(&b, " rate-limit=%s", describeLimit(st.RateLimit))
	}
	if len(st.Redirects) > 0 {
		fmt.Fprintf(&b, " redirects=%d", len(st.Redirects))
	}
	if len(st.Headers) > 0 {
		fmt.Fprintf(&b, " headers=%d", len(st.Headers))
	}
	return b.String()
}

// routeOptions are a route's settings as check prints them, those not at
// their defaults: " (balance=hash, compress=true)", or "".
func routeOptions(r sites.Route) string {
	var opts []string
	if r.StripPrefix {
		opts = append(opts, "strip-prefix")
	}
	if r.AddPrefix != "" {
		opts = append(opts, "add-prefix="+r.AddPrefix)
	}
	if r.Balance != "" {
		opts = append(opts, "balance="+r.Balance)
	}
	if r.HashKey != "" {
		opts = append(opts, "hash-key="+r.HashKey)
	}
	if a := r.Access; len(a.Allow)+len(a.Deny)+len(a.BasicAuth) > 0 {
		opts = append(opts, fmt.Sprintf("access=allow:%d,deny:%d,users:%d", len(a.Allow), len(a.Deny), len(a.BasicAuth)))
	}
	if r.RateLimit != (ratelimit.Config{}) {
		opts = append(opts, "rate-limit="+describeLimit(r.RateLimit))
	}
	if r.Compress != nil {
		opts = append(opts, "compress="+strconv.FormatBool(*r.Compress))
	}
	if len(opts) == 0 {
		return ""
	}
	return " (" + strings.Join(opts, ", ") + ")"
}

// describeLimit is a rate limit as check prints it: 10/s,burst=5, and the
// key, a dry run, max-keys and ipv6-prefix when they are not the defaults.
func describeLimit(c ratelimit.Config) string {
	out := fmt.Sprintf("%v,burst=%d", c.Rate, c.Burst)
	if c.Header != "" {
		out += ",key=header:" + c.Header
	}
	if c.DryRun {
		out += ",dry-run"
	}
	if c.MaxKeys != 0 {
		out += fmt.Sprintf(",max-keys=%d", c.MaxKeys)
	}
	if c.IPv6Prefix != 0 {
		out += fmt.Sprintf(",ipv6-prefix=%d", c.IPv6Prefix)
	}
	return out
}
