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
// and an invalid configuration changes nothing.
//
// Limits, today: a wildcard matches exactly one label, and names are
// ASCII (IDNs in their A-label form); headers are set (not added or
// deleted), per site only; a reload builds new upstream pools, so the
// old ones' idle connections close, and their counters start anew.
package sites
