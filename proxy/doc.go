// Package proxy is a reverse proxy for fasthttp servers: it sends each
// request, by path prefix, to upstream HTTP or HTTPS servers over pools
// of keep-alive connections, balanced to the least loaded upstream that
// passes its health checks, with the forwarding headers set and the
// hop-by-hop ones dropped, a 502, 503 or 504 naming the upstream when it
// fails, and one retry when that is safe.
//
//	p, err := proxy.New(proxy.Config{Routes: []proxy.Route{
//		{Path: "/api/", Upstreams: []string{"http://127.0.0.1:9001", "http://127.0.0.1:9002"}},
//	}})
//	if err != nil { ... } // every invalid field, by name
//	defer p.Close()
//	srv, err := server.New(server.Config{StreamRequestBody: true, Metrics: p.WritePrometheus}, p.Handler(next))
//
// A Proxy is a fasthttp.RequestHandler (Handler) and knows nothing of the
// server it runs in. Served with StreamRequestBody (the engine's
// Config.StreamRequestBody), it reads each request body from the client
// whole before it picks an upstream, in memory up to
// Config.BufferBodyBytes and in an unnamed temporary file beyond, so that
// a slow upload holds no upstream connection (Config.StreamRequestBodies
// streams them instead); answers stream to the client (but small ones,
// read whole). A request whose client leaves while it waits for its
// upstream closes its upstream connection (Config.ClientGone).
// Stats and WritePrometheus report each upstream: up or down, requests,
// errors by kind, the time to the response head, tunnels.
//
// A request that asks to switch protocols (WebSocket) goes upstream with
// its Upgrade, on a connection of its own; a 101 makes the client's
// connection and that one a tunnel (fasthttp's Hijack), whose bytes flow
// both ways until either side closes or it idles
// (Config.UpgradeIdleTimeout). Tunnels records them, so that a server
// whose drain runs out of time ends them with a WebSocket close frame
// (Tunnels.GoAway), and a reload that replaces the Proxy keeps them.
// Every connection to an upstream gets Config.Tune's TCP options (Conns
// reads them back).
//
// Limits: HTTP/1.1 to the upstreams only.
package proxy
