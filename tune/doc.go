// Package tune builds tuned TCP listeners whose accepted connections carry
// their TCP options before anything is layered on top of them, and reads
// back what the kernel holds for a connection.
//
// In Go, a *tls.Conn hides its *net.TCPConn, so an HTTPS server cannot set
// keep-alive, TCP_USER_TIMEOUT or buffer sizes on its connections from
// http.Server.ConnState or a fasthttp handler, and fasthttp's own
// TCPKeepalive settings do nothing under ServeTLS. tune sets them one layer
// down, in the listener: wrap a tune listener in crypto/tls.NewListener
// and serve on that.
//
//	ln, err := tune.Listen("tcp", ":8443", tune.Default())
//	if err != nil { ... }
//	srv := &fasthttp.Server{Handler: h}
//	err = srv.Serve(tls.NewListener(ln, tlsConfig))
//
// The listening socket comes from github.com/valyala/tcplisten
// (SO_REUSEPORT, TCP_DEFER_ACCEPT, TCP_FASTOPEN, backlog). Options that
// Linux copies from a listening socket to the sockets it accepts are set
// once on the listener; keep-alive, which Go's Accept overwrites, is set on
// each connection. [ListenGroup] opens several SO_REUSEPORT listeners on one
// address for as many accept loops. [Apply] sets the per-connection options
// on a connection from a listener of the caller's own, and [Inspect] reads
// back what the kernel holds, through a *tls.Conn.
//
// A [Listener] does not return from Accept on an error that concerns one
// connection or a passing shortage (EMFILE and its kind): it waits and
// retries, so a server built on it (fasthttp's Serve returns on such
// errors) keeps serving through descriptor exhaustion. Its [Stats] count
// accepted connections, option failures and retried errors.
//
// Every option takes effect or Listen fails and says which field, with
// what value, and what is allowed (*[OptionError]). Linux gets everything.
// On macOS and the BSDs, UserTimeout, DeferAccept and FastOpen are refused
// as unsupported, and on other systems (Windows) so are ReusePort and
// Backlog; Inspect works on Linux only.
package tune
