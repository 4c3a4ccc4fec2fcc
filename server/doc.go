// Package server serves HTTPS with fasthttp on tune listeners: every
// connection gets its TCP options (keep-alive, TCP_USER_TIMEOUT, ...)
// before TLS, and TLS, timeouts, limits, graceful shutdown, certificate
// reload and counters come configured for a server that faces the
// internet with many long-lived keep-alive connections.
//
//	srv, err := server.New(server.Config{Addr: ":8443"}, handler)
//	if err != nil { ... } // every invalid field, by name
//	err = srv.Serve(ctx)  // until ctx ends; then drains
//
// The zero value of every Config field is its production default, so
// Config{Addr: "127.0.0.1:0"} is complete: with no certificate it serves
// an in-memory self-signed one, for development, and logs a warning.
//
// How a connection is served: a tune listener accepts it and sets its TCP
// options; the server counts it against MaxConns and MaxConnsPerIP (a
// connection over a limit is reset at once, before it costs a TLS
// handshake), runs Config.OnConn, and wraps it in TLS. The handshake runs
// on the connection's first read under HandshakeTimeout; plain HTTP sent
// to the port gets a 400 that says to use HTTPS. Behind a load balancer
// that sends the PROXY protocol (Config.ProxyProtocol), the handshake
// starts by reading its header, under ProxyProtocolTimeout; the client
// address it gives is then the connection's RemoteAddr, and the one
// MaxConnsPerIP counts. fasthttp then serves requests, with
// HeaderTimeout, BodyTimeout, WriteTimeout (between writes, as nginx's
// send_timeout) and IdleTimeout between requests. On Linux a connection
// idle for IdleParkAfter (1 s) is parked: its goroutine ends and one
// epoll poller holds it until its client sends, so that an idle
// connection costs its TLS state and socket, not a goroutine's stack.
//
// Limits: a header block over MaxHeaderBytes gets 431, a body over
// MaxBodyBytes 413 (before it is read, when Content-Length announces it),
// a request not read in time 408, an unparsable one 400. Timeouts grow
// with the bytes received (MinRate), so slow clients are cut by rate and
// large uploads are not. Beyond fasthttp's parser, a request gate refuses
// what nginx and RFC 9112 refuse (TRACE and CONNECT, versions other than
// HTTP/1.0 and 1.1, unknown expectations, obs-fold, bad field names,
// control bytes, ambiguous Transfer-Encoding, bare-LF line endings): see
// docs/http-strictness.md. Every error answer closes its connection after
// a lingering close, is counted by reason in Stats and WritePrometheus,
// and is logged at a bounded rate. A handler panic is answered with a 500
// and counted, and the server goes on.
//
// A Proxy (NewProxy) is a handler that sends requests, by path prefix, to
// upstream HTTP or HTTPS servers over keep-alive pools, balanced to the
// least loaded upstream that passes its health checks, with the
// forwarding headers set and the hop-by-hop ones dropped, a 502, 503 or
// 504 naming the upstream when it fails, and one retry when that is
// safe. With Config.StreamRequestBody, large uploads stream upstream.
//
// Shutdown stops accepting, closes idle keep-alive connections, answers
// requests that arrive during the drain with Connection: close, and waits
// for in-flight requests. Reload swaps certificates atomically.
//
// Config.ACME obtains and renews certificates from an ACME CA (Let's
// Encrypt by default) with certmagic, answering the challenges on the
// server's own listeners (TLS-ALPN-01 on Addr, HTTP-01 on RedirectAddr);
// processes that share its Storage order each certificate once.
package server
