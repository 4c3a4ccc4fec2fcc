// Package accesslog writes a line per request, in the combined format of
// Apache and nginx, as JSON, or in a format string of nginx's variables
// ($remote_addr, $status, $upstream_response_time...; see Compile), off
// the request path: Add formats into a
// buffer and returns, and Run writes the buffer out in the background, so
// that a slow disk never holds a request up. File is a log file that
// Reopen opens again under its name, for logrotate.
//
//	f, err := accesslog.OpenFile("/var/log/fastserve/access.log")
//	if err != nil { ... }
//	log := accesslog.New(f, accesslog.Combined)
//	go log.Run()
//	defer log.Close()
//	// per request, once its answer is set: log.Add(ctx, time.Now())
//
// The engine (package server) does this itself when given
// Config.AccessLog; the package stands alone for any fasthttp server.
//
// A format is compiled once into a list of append functions, and a line
// allocates nothing (but a JSON value that needs escaping). What the
// request's site and upstreams were, package sites and the proxy record
// on the request (internal/reqinfo) for $site and $upstream_*.
//
// Limits: when the writer falls more than 1 MiB behind, lines are
// dropped and counted (Dropped), never queued without bound. A format
// string makes a text line, with unsafe bytes written \xHH as nginx does;
// there is no JSON variant of it.
package accesslog
