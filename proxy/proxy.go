package proxy

import (
	"bytes"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/fastserve/fastserve/internal/field"
	"github.com/fastserve/fastserve/internal/ratelog"
	"github.com/fastserve/fastserve/tune"
)

// Config configures a reverse proxy. The zero value of every field
// but Routes means its documented default.
type Config struct {
	// Routes send the requests whose path starts with a prefix to a set of
	// upstreams. The longest matching prefix wins; a request that no route
	// matches goes to the next handler. A route with Path "/" takes every
	// request. At least one route is needed.
	Routes []Route

	// HostHeader is the Host sent upstream: "pass" (or empty) sends the
	// client's, "upstream" sends the upstream URL's host[:port], and
	// anything else is sent as it is.
	HostHeader string

	// ConnectTimeout bounds connecting to an upstream, its TLS handshake
	// included (past it, 504), and the wait for a free connection when
	// MaxConns are busy (past it, 503). If zero, 5 s.
	ConnectTimeout time.Duration

	// ReadTimeout bounds each wait for bytes from an upstream, as nginx's
	// proxy_read_timeout: for the response head (past it, 504), and
	// between two reads of the body. If zero, 60 s.
	ReadTimeout time.Duration

	// WriteTimeout bounds each write of a request to an upstream. If zero,
	// 60 s. Both deadlines move in steps of an eighth of the timeout, so
	// a stall is cut between 7/8 of it and all of it.
	WriteTimeout time.Duration

	// MaxConns bounds the connections open to each upstream at once. If
	// zero, 512.
	MaxConns int

	// MaxConnsPerClient bounds the requests of one client address that
	// wait on an upstream, or stream an answer from one, and its tunnels
	// (WebSocket), at once: each holds an upstream connection (server
	// sent events, long polls and slow answers among them), so that one
	// client cannot take every one of MaxConns from the others, as
	// nginx's limit_conn would bound it. A request past it waits its turn
	// for one of its client's to end, up to ConnectTimeout, then gets 503
	// with Retry-After: a client sending many requests at once is slowed
	// to its share, not refused. Behind a balancer that sends no PROXY
	// header, every client has the balancer's address: raise it, or make
	// it negative. If zero, MaxConns/2 (at least 1); if negative, no
	// bound.
	MaxConnsPerClient int

	// IdleTimeout is how long a keep-alive connection to an upstream may
	// wait for its next request. If zero, 4 s: shorter than the idle
	// timeouts of common upstream servers (Node.js's 5 s), so that the
	// proxy, not the upstream, closes an idle connection, and a request is
	// not sent on a connection the upstream is closing.
	IdleTimeout time.Duration

	// BufferBodyBytes is how much of a request body is held in memory.
	// The proxy reads a request's whole body from the client before it
	// picks an upstream, as nginx's proxy_request_buffering does: in
	// memory up to this size, beyond it in a temporary file in
	// BodyTempDir. A slow upload then holds a client connection and that
	// memory or file, never one of an upstream's MaxConns connections;
	// the upstream gets the body with a Content-Length (a chunked body
	// included), at the speed of the network between them; and every such
	// request can be retried on another upstream. The server bounds the
	// body (Config.MaxBodyBytes, 413 past it) and the client's stalls
	// (Config.BodyTimeout). With StreamRequestBodies, a body up to this
	// size is still read whole, and can be retried. If the server does not
	// stream request bodies (Config.StreamRequestBody), every body is
	// already in memory, up to its Config.MaxBodyBytes. If zero, 64 KiB.
	BufferBodyBytes int

	// BodyTempDir is the directory of the temporary files that hold the
	// request bodies larger than BufferBodyBytes: each is made with mode
	// 0600, without a name on Linux (O_TMPFILE) or else removed as soon
	// as it is made, so that nothing is left behind even by a crash, and
	// closed (its space freed) when its request ends. New fails if no file
	// can be made there. If empty, os.TempDir() ($TMPDIR, or /tmp).
	BodyTempDir string

	// StreamRequestBodies sends a request body larger than
	// BufferBodyBytes, or chunked, to the upstream as it arrives from the
	// client instead of reading it whole first (nginx's
	// proxy_request_buffering off), for an upstream that must see an
	// upload while it lasts. The cost: each such upload holds one of the
	// upstream's MaxConns connections for as long as the client takes to
	// send it (a stall is cut after the server's Config.BodyTimeout, not
	// before), so MaxConns slow clients can make every other request wait
	// and get 503; and a streamed request is never retried. Off by default.
	StreamRequestBodies bool

	// MaxResponseHeaderBytes bounds an upstream's response head: its
	// status line and headers. A larger head gets 502. Each request
	// waiting for an upstream holds a buffer of this size, and at least
	// 20 KiB, which takes the head and a body of up to 16 KiB in one read.
	// If zero, 4 KiB, as nginx's proxy_buffer_size on most platforms.
	MaxResponseHeaderBytes int

	// HealthPath is the path of the active health check: a GET with the
	// upstream's host as Host. A 2xx or 3xx answer within HealthTimeout
	// marks the upstream up; anything else marks it down. If empty, "/".
	HealthPath string

	// HealthInterval is the time between two health checks of each
	// upstream. If zero, 5 s.
	HealthInterval time.Duration

	// HealthTimeout bounds a health check. If zero, 2 s or HealthInterval,
	// whichever is shorter.
	HealthTimeout time.Duration

	// ErrorDetails names the upstream and what went wrong in the body of a
	// 502, 503 or 504 the proxy answers ("502 Bad Gateway: upstream
	// 10.0.0.5:9001 refused the connection"). Off by default: clients get
	// the status line alone, since upstream addresses are internal; the
	// log always has the detail.
	ErrorDetails bool

	// PassServerHeader sends the upstream's Server header to the client.
	// By default it is dropped, and the server's own Name goes instead.
	PassServerHeader bool

	// TLS configures the connections to https:// upstreams. If nil, they
	// are verified against the system's roots, with the upstream's host as
	// the server name.
	TLS *tls.Config

	// ClientGone reports whether the client of a request has closed or
	// reset its connection. While a request waits for its upstream's
	// answer, and while the answer's body streams, the proxy asks it every
	// 250 ms of waiting (a shorter wait costs nothing); once it says so,
	// the proxy closes the request's upstream connection, as nginx does
	// when a client aborts: the upstream sees the request cancelled, and
	// its connection, one of MaxConns, is free at once rather than when
	// the upstream answers. The request is logged with status 499 and
	// counts as no upstream error. A client that half-closes its
	// connection after sending a request (shutdown(SHUT_WR)) counts as
	// gone. If nil, the kernel's TCP state of ctx.Conn() tells
	// (tune.PeerClosed: a FIN or a reset came), where it can be read
	// (Linux); elsewhere, a request waits for its upstream whatever its
	// client does.
	ClientGone func(ctx *fasthttp.RequestCtx) bool

	// Tune sets the TCP options of each connection to an upstream
	// (keep-alive, user timeout, no-delay; see tune.Apply), as a server
	// sets them on its clients': connections to upstreams cross NAT and
	// balancers too, which drop idle flows unseen. Its listener fields are
	// ignored. If it is the zero value, tune.Default()'s.
	Tune tune.Options

	// MaxFails takes an upstream out, as a failed connect does, after
	// this many requests in a row failed on it (timeouts, resets, invalid
	// answers; a 5xx answer is an answer), until a health check passes:
	// passive health checking, as nginx's max_fails. If zero, 3; if
	// negative, never.
	MaxFails int

	// UpgradeIdleTimeout closes a tunnel (an upgraded connection, such as
	// a WebSocket) through which no byte moved either way for this long,
	// as HAProxy's timeout tunnel: applications that keep a WebSocket
	// open send pings more often. If zero, 1 h.
	UpgradeIdleTimeout time.Duration

	// Labels are the labels of the proxy's metrics in its caller's
	// WritePrometheusLabeled (site="example.com"), under which Tunnels
	// counts its tunnels: a proxy that replaces this one in a reload, with
	// the same Labels, reports the tunnels this one opened.
	Labels string

	// KeepsHijacked says the server keeps a hijacked connection open when
	// its hijack handler returns (fasthttp.Server.KeepHijackedConns, which
	// the engine, server.Server, sets): a tunnel then lets the request's
	// context and the server's read buffer for it go while it lasts
	// (docs/performance.md has what that saves), and closes its
	// connection itself. Leave it false for a server that
	// does not: the tunnel then holds its hijack handler to its end.
	KeepsHijacked bool

	// Tunnels is where the proxy records its tunnels, for GoAway; a
	// server gives all its proxies the same. If nil, the proxy's own.
	Tunnels *Tunnels

	// Logger receives upstreams going down and up, and upstream errors (at
	// most 10 lines a second). If nil, slog.Default().
	Logger *slog.Logger
}

// A Route sends the requests under a path prefix to a set of
// upstreams.
type Route struct {
	// Path is a prefix of the request's path, such as "/api/", or "/" for
	// every path. It is matched against the normalized path (no "..", no
	// percent-encoding); the request URI goes upstream as the client sent
	// it, so a request whose raw path an upstream could resolve otherwise
	// (an encoded slash, a dot segment, "..;") is refused with 400.
	Path string

	// Upstreams are the URLs of the servers that share the route's
	// requests, such as "http://127.0.0.1:9001" or
	// "https://backend.internal": a scheme and a host, with no path, query
	// or user. Balance picks one of those that are up for each request.
	Upstreams []string

	// Balance is how a request picks its upstream: "least-loaded" (or
	// empty), the one with the fewest requests in flight, ties taking
	// turns; "round-robin", each in turn; or "hash", by HashKey, so that
	// the same key goes to the same upstream while it is up (sticky
	// sessions). Hashing is rendezvous hashing with a fixed hash: an
	// upstream that goes down or comes back moves its own keys only, and
	// a restart, a hand-over or another instance moves none.
	Balance string

	// HashKey is what "hash" goes by: "addr" (or empty), the client's
	// address; "header:NAME", a request header's value; "cookie:NAME", a
	// cookie's value. A request without that header or cookie goes by its
	// client's address.
	HashKey string

	// StripPrefix sends the path without Path's prefix: with Path
	// "/api/", /api/v1/x?q=1 reaches the upstream as /v1/x?q=1. The
	// prefix must then be in the request as sent (not percent-encoded);
	// a request where it is not is refused with 400.
	StripPrefix bool

	// AddPrefix goes before the path sent upstream (after StripPrefix):
	// with "/v2", /x reaches the upstream as /v2/x. It is a path, as
	// sent: "/" first, no query.
	AddPrefix string
}

// A ConfigError reports an invalid Config field (as in "ConnectTimeout"
// or "Routes[1].Upstreams[0]"), the value given and what it accepts.
type ConfigError = field.Error

// Defaults.
const (
	DefaultConnectTimeout         = 5 * time.Second
	DefaultReadTimeout            = 60 * time.Second
	DefaultWriteTimeout           = 60 * time.Second
	DefaultMaxConns               = 512
	DefaultIdleTimeout            = 4 * time.Second
	DefaultBufferBodyBytes        = 64 << 10
	DefaultMaxResponseHeaderBytes = 4 << 10
	DefaultHealthPath             = "/"
	DefaultHealthInterval         = 5 * time.Second
	DefaultUpgradeIdleTimeout     = time.Hour
	DefaultMaxFails               = 3
	defaultHealthTimeout          = 2 * time.Second
)

// A Proxy is a reverse proxy: it sends requests to upstream HTTP or HTTPS
// servers over pools of keep-alive connections, and their answers back.
// Make one with New; serve with Handler; Close it when done.
type Proxy struct {
	cfg       Config
	routes    []*proxyRoute // the longest prefix first
	upstreams []*upstream
	hostMode  hostMode
	fixedHost []byte
	log       *slog.Logger
	errLog    ratelog.Limiter
	conns     connSet      // every connection open to an upstream, for Abort
	clients   *clientSlots // Config.MaxConnsPerClient, or nil

	stop      chan struct{}
	wg        sync.WaitGroup
	closeOnce sync.Once
}

type proxyRoute struct {
	prefix    []byte
	strip     bool   // Route.StripPrefix
	add       []byte // Route.AddPrefix, without a trailing slash
	upstreams []*upstream
	next      uint32 // where the balancer starts its scan, in turn
	balance   string // Route.Balance
	keyKind   hashKeyKind
	keyName   []byte // the header's or cookie's name
}

type hostMode int

const (
	hostPass hostMode = iota
	hostUpstream
	hostFixed
)

// New validates cfg, reporting every invalid field as a
// *ConfigError (all of them, joined), and starts the health checks.
func New(cfg Config) (*Proxy, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	p := &Proxy{cfg: cfg, log: cfg.Logger, stop: make(chan struct{})}
	if cfg.MaxConnsPerClient > 0 {
		p.clients = &clientSlots{max: int32(min(cfg.MaxConnsPerClient, math.MaxInt32)), wait: cfg.ConnectTimeout}
	}
	switch cfg.HostHeader {
	case "pass":
		p.hostMode = hostPass
	case "upstream":
		p.hostMode = hostUpstream
	default:
		p.hostMode, p.fixedHost = hostFixed, []byte(cfg.HostHeader)
	}
	byURL := map[string]*upstream{}
	for _, r := range cfg.Routes {
		pr := &proxyRoute{prefix: []byte(r.Path), strip: r.StripPrefix, add: []byte(strings.TrimSuffix(r.AddPrefix, "/"))}
		pr.balance, pr.keyKind, pr.keyName = r.Balance, hashKeyAddr, nil
		if r.Balance == "hash" {
			kind, name, _ := parseHashKey(r.HashKey)
			pr.keyKind, pr.keyName = kind, []byte(name)
		}
		for _, raw := range r.Upstreams {
			u, _ := parseUpstream(raw) // withDefaults checked it
			if byURL[u.url] == nil {
				byURL[u.url] = p.newUpstream(u)
				p.upstreams = append(p.upstreams, byURL[u.url])
			}
			if !slices.Contains(pr.upstreams, byURL[u.url]) {
				pr.upstreams = append(pr.upstreams, byURL[u.url])
			}
		}
		p.routes = append(p.routes, pr)
	}
	slices.SortStableFunc(p.routes, func(a, b *proxyRoute) int { return len(b.prefix) - len(a.prefix) })
	for _, u := range p.upstreams {
		p.wg.Add(1)
		go p.watch(u)
	}
	return p, nil
}

// Close stops the health checks and closes the idle connections to the
// upstreams. Requests in flight finish on their connections.
func (p *Proxy) Close() error {
	p.closeOnce.Do(func() {
		close(p.stop)
		p.wg.Wait()
		for _, u := range p.upstreams {
			u.hc.CloseIdleConnections()
			u.health.CloseIdleConnections()
		}
	})
	return nil
}

// Abort closes every connection to the upstreams at once, those that
// requests in flight are using included, and fails every connection
// tried from then on: the requests waiting for an upstream end at once
// (their clients, if still there, get 502). It is for a shutdown that
// must not wait, such as a second signal: the server's drain waits for
// its handlers, and a proxied request can wait up to ReadTimeout for its
// upstream. Close is still needed to stop the health checks.
func (p *Proxy) Abort() {
	p.conns.abort()
}

// Handler returns a handler that proxies the requests a route matches and
// passes the others to next (if next is nil, they get 404).
func (p *Proxy) Handler(next fasthttp.RequestHandler) fasthttp.RequestHandler {
	return func(ctx *fasthttp.RequestCtx) {
		if r := p.route(ctx.Path()); r != nil {
			raw := ctx.URI().PathOriginal()
			if r.strip && len(raw)+1 == len(r.prefix) && bytes.HasPrefix(r.prefix, raw) {
				// /api for a route /api/ that strips it: the path the
				// upstream would get is empty; the client is sent to /api/,
				// as nginx sends it for a location /api/.
				redirectSlash(ctx, r.prefix)
				return
			}
			if ambiguous(raw) || r.strip && !bytes.HasPrefix(raw, r.prefix) || loose(raw) && p.looseRoute(raw) != r {
				ctx.Error("Bad Request: ambiguous path\n", fasthttp.StatusBadRequest)
				return
			}
			p.serve(ctx, r)
			return
		}
		if next == nil {
			ctx.Error("Not Found\n", fasthttp.StatusNotFound)
			return
		}
		next(ctx)
	}
}

// route returns the route with the longest prefix of path, or nil. A
// prefix that ends with "/" takes the path without it too (/admin for
// "/admin/"): an application mounted there answers it (Express's
// app.use("/admin")), so it is the route's, under its rules.
func (p *Proxy) route(path []byte) *proxyRoute {
	for _, r := range p.routes {
		if bytes.HasPrefix(path, r.prefix) || len(r.prefix) > 1 && r.prefix[len(r.prefix)-1] == '/' && string(path) == string(r.prefix[:len(r.prefix)-1]) {
			return r
		}
	}
	return nil
}

// Validate reports every invalid field of cfg, as New does, without
// starting anything.
func (cfg Config) Validate() error {
	_, err := cfg.withDefaults()
	return err
}

// Effective is cfg as New would use it: every zero field set to its
// default (what a check of the settings prints), or Validate's error.
func (cfg Config) Effective() (Config, error) { return cfg.withDefaults() }

// withDefaults returns cfg with every zero field set to its default, and
// every invalid field reported.
func (cfg Config) withDefaults() (Config, error) {
	es := field.Errors{Pkg: "proxy"}
	bad := es.Bad
	if len(cfg.Routes) == 0 {
		bad("Routes", "none", "at least one route")
	}
	seen := map[string]bool{}
	for i, r := range cfg.Routes {
		if !strings.HasPrefix(r.Path, "/") || strings.ContainsAny(r.Path, "?# \t\r\n") {
			bad(fmt.Sprintf("Routes[%d].Path", i), fmt.Sprintf("%q", r.Path), `a path prefix starting with "/", such as "/api/"`)
		} else if seen[r.Path] {
			bad(fmt.Sprintf("Routes[%d].Path", i), fmt.Sprintf("%q", r.Path), "a prefix no other route has")
		}
		seen[r.Path] = true
		if a := r.AddPrefix; a != "" && (!strings.HasPrefix(a, "/") || strings.ContainsAny(a, "?# \t\r\n") || ambiguous([]byte(a))) {
			bad(fmt.Sprintf("Routes[%d].AddPrefix", i), fmt.Sprintf("%q", a), `a path starting with "/", such as "/v2", without dot segments or encoded slashes`)
		}
		switch r.Balance {
		case "", "least-loaded", "round-robin", "hash":
		default:
			bad(fmt.Sprintf("Routes[%d].Balance", i), fmt.Sprintf("%q", r.Balance), `"least-loaded", "round-robin" or "hash"`)
		}
		if _, _, ok := parseHashKey(r.HashKey); !ok {
			bad(fmt.Sprintf("Routes[%d].HashKey", i), fmt.Sprintf("%q", r.HashKey), `"addr", "header:NAME" or "cookie:NAME"`)
		} else if r.HashKey != "" && r.Balance != "hash" {
			bad(fmt.Sprintf("Routes[%d].HashKey", i), fmt.Sprintf("%q", r.HashKey), `empty unless the route balances by "hash"`)
		}
		if len(r.Upstreams) == 0 {
			bad(fmt.Sprintf("Routes[%d].Upstreams", i), "none", "at least one http:// or https:// URL")
		}
		for j, raw := range r.Upstreams {
			if _, err := parseUpstream(raw); err != nil {
				es.Add(&field.Error{Pkg: "proxy",
					Field: fmt.Sprintf("Routes[%d].Upstreams[%d]", i, j), Value: fmt.Sprintf("%q", raw),
					Allowed: `an http:// or https:// URL with a host and no path, such as "http://127.0.0.1:9001"`, Err: err,
				})
			}
		}
	}
	switch h := cfg.HostHeader; {
	case h == "":
		cfg.HostHeader = "pass"
	case h == "pass" || h == "upstream":
	case strings.ContainsAny(h, " \t\r\n/\\@,;\"") || !validHostChars(h):
		bad("HostHeader", fmt.Sprintf("%q", h), `"pass", "upstream" or a host[:port] to send`)
	}

	es.Duration("ConnectTimeout", &cfg.ConnectTimeout, DefaultConnectTimeout)
	es.Duration("ReadTimeout", &cfg.ReadTimeout, DefaultReadTimeout)
	es.Duration("WriteTimeout", &cfg.WriteTimeout, DefaultWriteTimeout)
	es.Duration("IdleTimeout", &cfg.IdleTimeout, DefaultIdleTimeout)
	es.Duration("HealthInterval", &cfg.HealthInterval, DefaultHealthInterval)
	es.Duration("UpgradeIdleTimeout", &cfg.UpgradeIdleTimeout, DefaultUpgradeIdleTimeout)
	if cfg.MaxFails == 0 {
		cfg.MaxFails = DefaultMaxFails
	}
	if cfg.Tune == (tune.Options{}) {
		cfg.Tune = tune.Default()
	}
	if err := cfg.Tune.Validate(); err != nil {
		es.Add(&field.Error{Pkg: "proxy", Field: "Tune", Value: cfg.Tune, Allowed: "valid socket options", Err: err})
	}
	if cfg.Tunnels == nil {
		cfg.Tunnels = &Tunnels{}
	}
	switch {
	case cfg.HealthTimeout < 0 || (cfg.HealthTimeout > 0 && cfg.HealthTimeout < time.Millisecond):
		bad("HealthTimeout", cfg.HealthTimeout, "1ms or more, or 0 for the shorter of 2s and HealthInterval")
	case cfg.HealthTimeout == 0:
		cfg.HealthTimeout = min(defaultHealthTimeout, cfg.HealthInterval)
	}
	es.Int("MaxConns", &cfg.MaxConns, 1, 0, DefaultMaxConns, "")
	if cfg.MaxConnsPerClient == 0 {
		cfg.MaxConnsPerClient = max(cfg.MaxConns/2, 1)
	}
	es.Int("BufferBodyBytes", &cfg.BufferBodyBytes, 1, 1<<30, DefaultBufferBodyBytes, " bytes")
	es.Int("MaxResponseHeaderBytes", &cfg.MaxResponseHeaderBytes, 1<<10, 1<<20, DefaultMaxResponseHeaderBytes, " bytes")
	if cfg.BodyTempDir == "" {
		cfg.BodyTempDir = os.TempDir()
	}
	if !cfg.StreamRequestBodies {
		if err := probeTempDir(cfg.BodyTempDir); err != nil {
			cause := err
			if pe, ok := errors.AsType[*os.PathError](err); ok {
				cause = pe.Err
			}
			es.Add(&field.Error{Pkg: "proxy", Field: "BodyTempDir", Value: fmt.Sprintf("%q", cfg.BodyTempDir),
				Allowed: fmt.Sprintf("a directory the server can make files in (%v)", cause), Err: err})
		}
	}
	switch {
	case cfg.HealthPath == "":
		cfg.HealthPath = DefaultHealthPath
	case !strings.HasPrefix(cfg.HealthPath, "/") || strings.ContainsAny(cfg.HealthPath, " \t\r\n#"):
		bad("HealthPath", fmt.Sprintf("%q", cfg.HealthPath), `a path starting with "/", such as "/healthz"`)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.ClientGone == nil {
		cfg.ClientGone = peerClosed
	}
	return cfg, es.Err()
}

// validHostChars reports whether h is printable ASCII, as a Host value
// must be.
func validHostChars(h string) bool {
	for i := 0; i < len(h); i++ {
		if h[i] <= ' ' || h[i] >= 0x7f {
			return false
		}
	}
	return true
}

// upstreamURL is a parsed upstream URL.
type upstreamURL struct {
	url  string // scheme://host[:port], as in the metrics' labels
	addr string // host:port, to dial
	host string // host[:port] as the URL has it, for "Host: upstream"
	name string // the host without the port, for TLS
	tls  bool
}

func parseUpstream(raw string) (upstreamURL, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return upstreamURL{}, err
	}
	var out upstreamURL
	switch u.Scheme {
	case "http":
	case "https":
		out.tls = true
	default:
		return out, fmt.Errorf("scheme %q is not http or https", u.Scheme)
	}
	if u.Host == "" || u.Hostname() == "" {
		return out, errors.New("no host")
	}
	if (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" || u.User != nil || u.Opaque != "" {
		return out, errors.New("a path, query, fragment or user is not supported")
	}
	port := u.Port()
	if port == "" {
		port = "80"
		if out.tls {
			port = "443"
		}
	}
	out.name = u.Hostname()
	out.addr = net.JoinHostPort(out.name, port)
	out.host = u.Host
	out.url = u.Scheme + "://" + u.Host
	return out, nil
}

// redirectSlash answers 301 to path, with the request's query.
func redirectSlash(ctx *fasthttp.RequestCtx, path []byte) {
	loc := append([]byte(nil), path...)
	if q := ctx.URI().QueryString(); len(q) > 0 {
		loc = append(append(loc, '?'), q...)
	}
	ctx.Response.Header.SetBytesV(fasthttp.HeaderLocation, loc)
	ctx.SetStatusCode(fasthttp.StatusMovedPermanently)
}
