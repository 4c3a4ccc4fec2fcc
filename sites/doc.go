// Package sites chooses, for each request, the site that serves it: the
// unit of configuration of virtual hosting, as nginx's server blocks,
// Caddy's site blocks and HAProxy's Host ACLs.
//
// This first part is the choice itself: a Table maps host names, exact
// ("example.com") or wildcard ("*.example.com", one label), to a value,
// and Lookup finds the value for a request's Host header with the port
// stripped, case-insensitively, in one map lookup and no allocation,
// whatever the number of sites.
//
// Limits: a wildcard matches exactly one label ("*.example.com" matches
// "a.example.com", not "a.b.example.com" nor "example.com"), as in Caddy
// and in TLS certificates; names are ASCII (IDNs in their A-label
// form, "xn--...").
package sites
