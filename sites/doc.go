// Package sites serves virtual hosts: for each request, the site its Host
// header names, with that site's files, headers, redirects and routes to
// upstreams, as nginx's server blocks, Caddy's site blocks and HAProxy's
// Host ACLs do.
//
//	r, err := sites.New(sites.Config{
//		Default: sites.Site{Root: "/srv/default"},
//		Sites: []sites.Site{{
//			Hosts:  []string{"example.com", "*.example.com"},
//			Root:   "/srv/example",
//			Routes: []sites.Route{{Path: "/api/", Proxy: []string{"http://127.0.0.1:9001"}, StripPrefix: true}},
//		}},
//	})
//	srv, err := server.New(server.Config{}, r.Handle)
//	...
//	err = r.Reload(newConfig, 30*time.Second) // SIGHUP: nothing open is closed
//
// A Table maps host names, exact ("example.com") or wildcard
// ("*.example.com", one label), to sites; choosing the site is one map
// lookup with no allocation, whatever the number of sites. Reload swaps
// every site at once: a request is served entirely by the sites it
// started with, a keep-alive connection's next request by the new ones,
// and an invalid configuration changes nothing; a site whose routes and
// proxy settings are unchanged keeps its proxy, with its pool of upstream
// connections and their health.
//
// Access (address rules, then HTTP basic authentication with bcrypt
// hashes, each credential checked once) guards a site or a route; a
// route's is judged on the path the proxy routes on, and the paths an
// upstream could resolve otherwise are refused by the proxy (400), so a
// guarded route cannot be reached through an open one.
//
// A rate limit (Site.RateLimit, Route.RateLimit: see package ratelimit)
// holds each client of a site or a route to a rate with a burst, as
// nginx's limit_req does with nodelay; a route's applies in addition to
// its site's. It is judged after the site's redirects and before access
// rules, routes and files: a request past it gets 429 with Retry-After,
// the site's header rules and its 429 page, and reaches no upstream. A
// reload that leaves a site's or route's limit as it was keeps its
// clients' budgets. WritePrometheus counts each limit's decisions by
// site, route and result. Limits are the process's own: two processes
// serving one address each allow the rate.
//
// A request whose Host names another site than the TLS server name its
// connection was made for gets 421 Misdirected Request (domain
// fronting); so does a Host no site names, when Config.RefuseUnknown. An
// HTTP/1.0 request without a Host is served by the site its TLS server
// name names.
//
// Every request has an X-Request-ID (the client's when valid, else one
// the server makes), sent upstream, on the response and in the access
// log (JSON's request_id, a format string's $request_id). SiteOf names
// the site that served a request, its first host, for the access log's
// $site. Header rules (delete, set, add; responses and requests to upstreams)
// merge from the server to the site to the route, and never drop a wider
// level's. Compress (a site's, over which a route's wins) compresses the
// answers of upstreams and of a site's Handler with package compress,
// streams as they stream; a site's files are left to package static,
// which compresses them itself.
//
// Limits, today: a wildcard matches exactly one label, and names are
// ASCII (IDNs in their A-label form); a kept proxy logs to the logger it
// was made with; each site has a proxy of its own (its pools, health
// checks and counts), even when another's routes and settings are the
// same. The
// command reads Config from the configuration file's sites: key (the
// fields the file takes are in the README).
package sites
