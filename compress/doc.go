// Package compress compresses the responses of a fasthttp handler, as a
// reverse proxy's or an application's answers leave the server: br, zstd
// or gzip, the one the client prefers, for textual types above a size.
//
//	h := compress.Config{}.Handler(p.Handler(nil)) // after the proxy answered
//	srv, err := server.New(server.Config{}, h)
//
// Config.Response does the same for a caller that decides per request
// (package sites compresses the answers of a route's upstreams and of a
// site's handler, not its files, which package static compresses once per
// version of a file).
//
// A response is compressed after its handler returns: a body held whole is
// compressed whole, and a streamed one (a proxied event stream, a large
// upstream body) as it streams, each read of its source sent on at once,
// so that an event reaches the client when its upstream sent it. Encoders
// are pooled: compressing a body allocates nothing in the steady state,
// and a response left alone costs a few header lookups.
//
// The levels are fast ones (brotli 1, or 2 for a stream; zstd's default,
// or its fastest for a stream; gzip 1) and the windows small, since
// compressing is paid per request: a 20 KB JSON body costs several times
// what serving it costs otherwise, and an open compressed stream holds an
// encoder for as long as it streams (docs/performance.md has the
// figures).
//
// Limits: a stream is compressed only if it is a Detacher (the proxy's
// are; Detachable wraps a handler's own), since fasthttp closes a body
// stream it replaces; a response's trailers are not looked at; a client's
// Accept-Encoding with no br, zstd, gzip or "*" gets the response as it
// is, never 406.
package compress
