// Package server is fastserve's connection engine: it serves HTTPS with
// fasthttp on tune listeners, so that every connection gets its TCP
// options (keep-alive, TCP_USER_TIMEOUT, ...) before TLS, with the
// timeouts, limits, graceful shutdown, reload and counters of a server
// that faces the internet with many long-lived keep-alive connections.
//
//	srv, err := server.New(server.Config{Addr: ":8443"}, handler)
//	if err != nil { ... } // every invalid field, by name
//	err = srv.Serve(ctx)  // until ctx ends; then drains
//
// The zero value of every Config field is its production default, so
// Config{Addr: "127.0.0.1:0"} is complete: with no certificate it serves
// an in-memory self-signed one, for development, and logs a warning.
//
// The engine knows no feature it serves. What a request gets is the
// handler's (a fasthttp.RequestHandler: the reverse proxy of package
// proxy, the files of package static, an application; one that hijacks a
// connection owns it, and closes it: KeepHijackedConns). Features that act
// below the request reach the engine through seams set up once: package
// certs gives each handshake its certificate (a certs.Source); package
// handover hands the listening sockets on; package proxyproto reads a
// load balancer's PROXY header, and the engine decides what a refusal
// costs; package accesslog writes the access log. None of them imports
// server.
//
// How a connection is served (admit.go, handshake.go, deadline.go,
// park.go): a tune listener accepts it and sets its TCP options; the
// server counts it against MaxConns and MaxConnsPerIP (a connection over
// a limit is reset at once, before it costs a TLS handshake), runs
// Config.OnConn, and wraps it in TLS. The handshake runs on the
// connection's first read under HandshakeTimeout, after the PROXY header
// if Config.ProxyProtocol is on; plain HTTP sent to the port gets a 400
// that says to use HTTPS. fasthttp then serves requests, with
// HeaderTimeout, BodyTimeout, WriteTimeout (between writes, as nginx's
// send_timeout) and IdleTimeout between requests. On Linux a connection
// idle for IdleParkAfter is parked: its goroutine ends and one epoll
// poller holds it until its client sends, so that an idle connection
// costs its TLS state and socket, not a goroutine's stack.
//
// The request gate (handler.go, strict.go, scan.go): a header block over
// MaxHeaderBytes gets 431, a body over MaxBodyBytes 413 (before it is
// read, and before any 100 Continue, when Content-Length announces it), a
// request not read in time 408, an unparsable one 400. Timeouts grow with
// the bytes received (MinRate), so slow clients are cut by rate and large
// uploads are not. Beyond fasthttp's parser, the gate refuses what nginx
// and RFC 9112 refuse (TRACE and CONNECT, versions other than HTTP/1.0
// and 1.1, unknown expectations, obs-fold, bad field names, control
// bytes, ambiguous Transfer-Encoding, bare-LF line endings): see
// docs/http-strictness.md. Every refusal closes its connection after a
// lingering close, is counted by its Reason in Stats and WritePrometheus,
// and is logged at a bounded rate. A handler panic is answered with a 500
// and counted, and the server goes on.
//
// Shutdown (drain.go) stops accepting, answers requests that arrive
// during the drain with Connection: close, waits for in-flight requests,
// and closes each idle keep-alive connection once it has been idle for
// DrainIdleTimeout. Reload swaps certificates and session ticket keys
// atomically. AdminHandler serves /metrics, /healthz, /readyz,
// /debug/conns and /debug/pprof/ on Config.AdminAddr.
package server
