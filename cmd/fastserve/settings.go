package main

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/fastserve/fastserve/certs"
	"github.com/fastserve/fastserve/proxy"
	"github.com/fastserve/fastserve/ratelimit"
	"github.com/fastserve/fastserve/server"
	"github.com/fastserve/fastserve/tune"
)

// settings are what an operator sets, by flag, FASTSERVE_* variable or
// config file key, all three named alike (--keepalive-idle,
// FASTSERVE_KEEPALIVE_IDLE, keepalive-idle:). Each is a row of table.
type settings struct {
	configFile string

	flags  *pflag.FlagSet    // the command's, once loaded
	values map[string]any    // by setting name, a *T of the setting's type
	sites  fileSites         // from the config file's sites: key, and the default site's flat rule keys
	source map[string]string // where each setting that is not a default came from
	unset  map[string]bool   // settings whose value from the environment or file was refused: their other errors are noise
}

// A setting is a row of table: a flag, a FASTSERVE_* variable and a config
// file key, its default and help, the setting it takes effect only with,
// and the library field it sets.
type setting struct {
	name string // the flag, FASTSERVE_<NAME> (upper case, _ for -) and the config file key
	def  any    // the default, whose type is the setting's (see define)
	help string

	// needs is the setting this one takes effect only with: that one must
	// be on (true, or not empty) when this one is given, or both are named
	// in an error. A setting whose need is off sets nothing.
	needs string
	// routesToo: a routes: key in the config file turns this setting on
	// too (--proxy: either makes the server proxy).
	routesToo bool
	// sitesToo: a site of the config file's sites: with this setting
	// (a root; a proxy or routes) turns it on too, for the settings
	// that take effect only with it.
	sitesToo bool
	// live: a reload (SIGHUP) applies a change of it to the running
	// server; a change of any other is logged as needing a restart.
	live bool

	// field is the path of the library field the setting sets, in
	// configs: "Server.Tune.KeepAlive.Idle"; a name[] element is every
	// element of a list, one for each of the setting's values. Empty for
	// the command's own settings (the log's, --root, --access-log).
	field  string
	conv   any // func(T) V: the value as field takes it, if not as it is
	setter any // func(*configs, T): sets field itself, where that is more than one assignment
	valid  any // func(T) (want string): what the value must be, if it is not
	// allowed is what the setting takes, in the command's words, for an
	// error about field whose library wording would not do (empty: the
	// library's).
	allowed string
	// emptyIsNone: an empty value is one of the setting's choices (none),
	// not its default, so an empty FASTSERVE_* variable may give it.
	emptyIsNone bool
}

// A row of table starts with the constructor of its type, which is its
// default's type (see define), then says what it sets and needs.

func boolean(name string, def bool, help string) setting {
	return setting{name: name, def: def, help: help}
}

func integer(name string, def int, help string) setting {
	return setting{name: name, def: def, help: help}
}

func text(name, def, help string) setting {
	return setting{name: name, def: def, help: help}
}

func duration(name string, def time.Duration, help string) setting {
	return setting{name: name, def: def, help: help}
}

// repeated is a list given one value per flag (--cert a --cert b), empty
// by default.
func repeated(name, help string) setting {
	return setting{name: name, def: []string(nil), help: help}
}

// commaList is a list given comma-separated (--acme a,b) or one value per
// flag, empty by default.
func commaList(name, help string) setting {
	return setting{name: name, def: commaSeparated(nil), help: help}
}

// cidrList is a list of networks, comma-separated or one per flag, empty
// by default.
func cidrList(name, help string) setting {
	return setting{name: name, def: networks(nil), help: help}
}

// commaSeparated is the type of a commaList's default.
type commaSeparated []string

func (r setting) sets(field string) setting    { r.field = field; return r }
func (r setting) via(conv any) setting         { r.conv = conv; return r }
func (r setting) by(setter any) setting        { r.setter = setter; return r }
func (r setting) wants(valid any) setting      { r.valid = valid; return r }
func (r setting) requires(name string) setting { r.needs = name; return r }
func (r setting) orRoutes() setting            { r.routesToo = true; return r }
func (r setting) orSites() setting             { r.sitesToo = true; return r }
func (r setting) reloads() setting             { r.live = true; return r }
func (r setting) allows(what string) setting   { r.allowed = what; return r }
func (r setting) orNone() setting              { r.emptyIsNone = true; return r }

// tuned are the tune package's defaults, the TCP settings' defaults.
var tuned = tune.Default()

// table is every setting, grouped by concern. A row is its type, name,
// default and help; then the library field it sets, how its value gets
// there if not as it is (via a conversion, or by a func of its own), what
// the command wants of the value, and the setting it requires.
var table = []setting{
	text("addr", server.DefaultAddr, "host:port to serve HTTPS on").sets("Server.Addr"),
	integer("listeners", 0, "SO_REUSEPORT listeners, each with its own accept loop (0 = GOMAXPROCS)").sets("Server.Listeners"),
	repeated("cert", "PEM certificate chain file; repeat with --key for more names (SNI; the first is the default); none = self-signed for development").
		sets("Server.TLS.Certificates[].CertFile"),
	repeated("key", "PEM private key file of the --cert at the same position").sets("Server.TLS.Certificates[].KeyFile"),
	text("tls-min-version", "1.2", "lowest TLS version accepted: 1.2 or 1.3").
		sets("Server.TLS.MinVersion").via(tlsVersion).wants(oneOf("1.2", "1.3")),
	commaList("session-ticket-keys", "session ticket key files shared by every instance (48 or 80 random bytes each: openssl rand 80); the first encrypts; re-read on SIGHUP (none = keys made in process, rotated every 12h)").
		sets("Server.TLS.SessionTicketKeyFiles"),
	boolean("strict-sni", false, "refuse a handshake whose server name matches no certificate, or that has none (unrecognized_name), instead of serving the first certificate").
		sets("Server.TLS.StrictSNI"),
	commaList("acme", "names (comma-separated) to obtain and renew certificates for from an ACME CA; it must reach --addr on port 443 (TLS-ALPN-01) or --redirect-http on port 80 (HTTP-01)").
		sets("Server.ACME.Domains").via(trimmed).orSites(),
	text("acme-email", "", "contact address for the ACME account, for the CA's expiry notices (empty = none)").
		sets("Server.ACME.Email").requires("acme"),
	text("acme-ca", certs.DefaultACMECA, "ACME directory URL; Let's Encrypt staging, to try things out: "+certs.LetsEncryptStagingCA).
		sets("Server.ACME.CA").requires("acme"),
	text("acme-ca-root", "", "PEM file of roots to trust for the ACME CA's own HTTPS, in place of the system's (a private CA such as step-ca)").
		sets("Server.ACME.CARootFile").requires("acme"),
	text("acme-storage", certs.DefaultACMEStorage(), "directory of the ACME account, keys, certificates and locks; processes sharing it obtain each certificate once").
		sets("Server.ACME.Storage").requires("acme").wants(creatableDir),

	boolean("keepalive", true, "TCP keep-alive on client connections, and on connections to upstreams").sets("Server.Tune.DisableKeepAlive").by(keepAlive),
	duration("keepalive-idle", tuned.KeepAlive.Idle, "idle time before the first keep-alive probe (whole seconds)").
		sets("Server.Tune.KeepAlive.Idle").requires("keepalive"),
	duration("keepalive-interval", tuned.KeepAlive.Interval, "time between keep-alive probes (whole seconds)").
		sets("Server.Tune.KeepAlive.Interval").requires("keepalive"),
	integer("keepalive-count", tuned.KeepAlive.Count, "unanswered probes before the connection is dropped").
		sets("Server.Tune.KeepAlive.Count").requires("keepalive"),
	duration("tcp-user-timeout", tuned.UserTimeout, "TCP_USER_TIMEOUT: how long sent data may stay unacknowledged (0 = keepalive idle + interval x count; negative = off)").
		sets("Server.Tune.UserTimeout"),
	boolean("reuseport", tuned.ReusePort, "SO_REUSEPORT, for hand-over to a new process and several listeners").sets("Server.Tune.ReusePort"),
	boolean("share-port", false, "join the listeners another process has on --addr and --redirect-http (SO_REUSEPORT: the kernel spreads connections over both), for deliberate multi-process serving; off, an address in use is refused (to replace a running server, use --handover)").
		sets("Server.SharePort").requires("reuseport"),
	boolean("defer-accept", tuned.DeferAccept, "TCP_DEFER_ACCEPT: accept a connection once its first bytes arrive").sets("Server.Tune.DeferAccept"),
	boolean("fastopen", tuned.FastOpen, "TCP Fast Open (needs net.ipv4.tcp_fastopen with bit 0x2)").sets("Server.Tune.FastOpen"),
	integer("backlog", tuned.Backlog, "accept queue length (0 = net.core.somaxconn)").sets("Server.Tune.Backlog"),
	integer("tcp-read-buffer", tuned.ReadBuffer, "SO_RCVBUF in bytes (0 = kernel autotuning)").sets("Server.Tune.ReadBuffer"),
	integer("tcp-write-buffer", tuned.WriteBuffer, "SO_SNDBUF in bytes (0 = kernel autotuning)").sets("Server.Tune.WriteBuffer"),

	duration("handshake-timeout", server.DefaultHandshakeTimeout, "bound on the TLS handshake").sets("Server.HandshakeTimeout"),
	duration("header-timeout", server.DefaultHeaderTimeout, "bound on reading a request's headers").sets("Server.HeaderTimeout"),
	duration("body-timeout", server.DefaultBodyTimeout, "bound on reading a request's body").sets("Server.BodyTimeout"),
	duration("write-timeout", server.DefaultWriteTimeout, "bound on each write of a response (between writes, as nginx's send_timeout)").
		sets("Server.WriteTimeout"),
	duration("idle-timeout", server.DefaultIdleTimeout, "how long a keep-alive connection may wait for its next request").sets("Server.IdleTimeout"),
	duration("idle-park-after", 0, "how long a connection waits for a request on a goroutine of its own before it is parked, holding no goroutine (0: 1s on Linux, off elsewhere; negative: never)").
		sets("Server.IdleParkAfter"),
	duration("drain-timeout", server.DefaultDrainTimeout, "bound on the graceful drain at SIGTERM/SIGINT or after a hand-over").sets("Server.DrainTimeout"),
	duration("drain-idle-timeout", server.DefaultDrainIdleTimeout, "during a drain, how long an idle keep-alive connection may bring its next request (answered with Connection: close) before it is closed").
		sets("Server.DrainIdleTimeout"),
	text("handover", "", "Unix socket path for zero-downtime restarts: a new process started with the same path takes this one's listening sockets, and this one drains and exits (empty = none)").
		sets("Server.Handover"),
	integer("min-rate", server.DefaultMinRate, "minimum request transfer rate in bytes/s: the header and body timeouts grow 1 s per this many bytes received").
		sets("Server.MinRate"),

	boolean("proxy-protocol", false, "read a PROXY protocol v1/v2 header from the load balancer before TLS: its client address is the one logged, limited and shown").
		sets("Server.ProxyProtocol"),
	cidrList("proxy-protocol-from", "networks of the balancers that must send a PROXY header, as `CIDR[,CIDR...]`, required with --proxy-protocol; other peers are direct clients; any: every peer must send one (dangerous: a client that reaches the port directly chooses its address)").
		sets("Server.ProxyProtocolFrom").requires("proxy-protocol").
		allows("the load balancers' networks, as CIDR[,CIDR...] (10.0.0.0/8,192.168.1.10), or any to trust every peer (dangerous: a client that reaches the port directly chooses the address it is logged and limited by)"),
	duration("proxy-protocol-timeout", server.DefaultProxyProtocolTimeout, "bound on reading the PROXY header").
		sets("Server.ProxyProtocolTimeout").requires("proxy-protocol"),

	integer("max-conns", 0, "connections open at once (0 = 7/8 of the file descriptor limit)").sets("Server.MaxConns"),
	integer("max-conns-per-ip", 0, "connections open at once from one client address, an IPv6 one by its /64 (0 = no bound)").sets("Server.MaxConnsPerIP"),
	integer("max-header-bytes", server.DefaultMaxHeaderBytes, "bound on a request's headers (larger gets 431)").sets("Server.MaxHeaderBytes"),
	integer("max-body-bytes", server.DefaultMaxBodyBytes, "bound on a request's body (larger gets 413)").sets("Server.MaxBodyBytes"),
	integer("max-requests-per-conn", 0, "requests served on one connection before it is closed (0 = no bound)").sets("Server.MaxRequestsPerConn"),
	boolean("reduce-memory", true, "release each connection's buffers while it waits for its next request (--reduce-memory=false keeps them)").
		sets("Server.KeepIdleBuffers").via(not),

	text("root", "", "directory of static files to serve: the default site's, for the hosts no site of the config file's sites: names (empty = the built-in page)").
		wants(existingDir).orSites().reloads(),
	boolean("dotfiles", false, "serve files and directories whose name begins with a dot (.env, .git/); by default they are 404, but for /.well-known/").
		sets("Sites.Static.Dotfiles").requires("root").reloads(),
	text("unknown-hosts", "default", "a request whose Host no site of the config file's sites: names: default (the default site serves it: --root, --proxy, routes:) or refuse (421 Misdirected Request)").
		sets("Sites.RefuseUnknown").via(isRefuse).wants(oneOf("default", "refuse")).reloads(),
	text("rate-limit", "", "each client's rate of requests to the default site, as 10/s, 600/m or 1/h: past it and --rate-limit-burst, 429 with Retry-After (empty = none; a site of sites: has its own rate-limit:)").
		sets("Sites.Default.RateLimit.Rate").via(rateOf).wants(validRate).reloads(),
	integer("rate-limit-burst", 0, "requests past --rate-limit a client may send at once, as nginx's limit_req burst with nodelay").
		sets("Sites.Default.RateLimit.Burst").wants(validBurst).requires("rate-limit").reloads(),
	text("rate-limit-key", "addr", "the client of --rate-limit: addr (its address, PROXY-protocol aware; IPv6 by /64) or header:NAME (a request header's value; the address without it)").
		sets("Sites.Default.RateLimit.Header").via(rateKeyHeader).wants(validRateKey).requires("rate-limit").reloads(),
	boolean("rate-limit-dry-run", false, "count what --rate-limit would refuse (fastserve_rate_limit_total{result=\"dry_run_limited\"}), and refuse nothing").
		sets("Sites.Default.RateLimit.DryRun").requires("rate-limit").reloads(),
	text("redirect-http", "", "host:port of a plain-HTTP listener that redirects to HTTPS (empty = none)").sets("Server.RedirectAddr"),
	duration("hsts", 0, "Strict-Transport-Security max-age, such as 8760h (0 = none)").sets("Server.HSTS"),
	text("access-log", "", "access log file, or - for standard output (empty = none); reopened on SIGHUP").wants(logPath),
	text("access-log-format", "combined", "access log format: combined, json, or a format string of nginx variables, such as '$remote_addr \"$request\" $status $request_time $site $upstream_addr' (see the README)").
		sets("Server.AccessLogFormat").requires("access-log").
		allows("combined, json, or a format string of $variables, such as '$remote_addr \"$request\" $status' (see the README)"),
	text("admin", "127.0.0.1:9090", "host:port of the admin listener: /metrics, /healthz, /readyz, /debug/conns (empty = none)").sets("Server.AdminAddr").orNone(),
	boolean("admin-profiles", false, "serve Go's profiles at /debug/pprof/ on the admin listener (off: they show memory and cost CPU)").
		sets("Server.AdminProfiles").requires("admin"),
	text("log-format", "text", "log format: text or json").wants(oneOf("text", "json")),
	text("log-level", "info", "log level: debug, info, warn or error").wants(oneOf("debug", "info", "warn", "error")),

	repeated("proxy", "upstream URL(s), comma-separated or repeated, to reverse-proxy every request to (http:// or https://); per-path routes go in the config file's routes:").
		sets("Proxy.Routes").by(routeForRoot).orRoutes().orSites().reloads(),
	text("proxy-host-header", "pass", "Host sent upstream: pass (the client's), upstream (the upstream URL's), or a fixed host[:port]").
		sets("Proxy.HostHeader").requires("proxy").reloads(),
	duration("proxy-connect-timeout", proxy.DefaultConnectTimeout, "bound on connecting to an upstream, TLS included (past it, 504)").
		sets("Proxy.ConnectTimeout").requires("proxy").reloads(),
	duration("proxy-timeout", proxy.DefaultReadTimeout, "bound on each wait for an upstream's bytes: its response head (past it, 504) and between two reads of its body").
		sets("Proxy.ReadTimeout").requires("proxy").reloads(),
	boolean("proxy-error-details", false, "name the upstream and what failed in the body of a 502, 503 or 504 (off: the status line alone; the log has the detail)").
		sets("Proxy.ErrorDetails").requires("proxy").reloads(),
	integer("proxy-max-conns", proxy.DefaultMaxConns, "connections open to each upstream at once").sets("Proxy.MaxConns").requires("proxy").reloads(),
	integer("proxy-max-conns-per-client", 0, "requests of one client address waiting on or streaming from upstreams at once; past it a request waits its turn, up to --proxy-connect-timeout, then 503 (0 = half of --proxy-max-conns; negative = no bound: behind a balancer that sends no PROXY header every client has its address)").
		sets("Proxy.MaxConnsPerClient").requires("proxy").reloads(),
	boolean("proxy-request-buffering", true, "read each request body whole before it goes upstream, as nginx does: a slow upload then holds no upstream connection, and any request can be retried (false: stream bodies over --proxy-body-buffer-bytes as they arrive; each slow upload then holds an upstream connection for as long as --body-timeout lets it stall)").
		sets("Proxy.StreamRequestBodies").via(not).requires("proxy").reloads(),
	integer("proxy-body-buffer-bytes", proxy.DefaultBufferBodyBytes, "request body held in memory, per request; a larger one goes to a file in --proxy-body-temp-dir").
		sets("Proxy.BufferBodyBytes").requires("proxy").reloads(),
	text("proxy-body-temp-dir", "", "directory of the files that hold request bodies over --proxy-body-buffer-bytes, up to --max-body-bytes each: unnamed (O_TMPFILE) or removed at once, closed when the request ends (empty = $TMPDIR, or /tmp)").
		sets("Proxy.BodyTempDir").requires("proxy").reloads(),
	integer("proxy-max-header-bytes", proxy.DefaultMaxResponseHeaderBytes, "bound on an upstream's response head, status line and headers (larger gets 502); each request waiting for an upstream holds a buffer this size, and at least 20 KiB").
		sets("Proxy.MaxResponseHeaderBytes").requires("proxy").reloads(),
	text("proxy-health-path", proxy.DefaultHealthPath, "path of the upstreams' health check (GET; 2xx or 3xx = up)").
		sets("Proxy.HealthPath").requires("proxy").reloads(),
	duration("proxy-health-interval", proxy.DefaultHealthInterval, "time between two health checks of an upstream").
		sets("Proxy.HealthInterval").requires("proxy").reloads(),
	integer("proxy-max-fails", proxy.DefaultMaxFails, "requests in a row that may fail on an upstream (timeouts, resets, invalid answers) before it is taken out until a health check passes, as nginx's max_fails; negative: never").
		sets("Proxy.MaxFails").requires("proxy").reloads().wants(notZero("1 or more, or negative for never")),
	duration("proxy-upgrade-idle-timeout", proxy.DefaultUpgradeIdleTimeout, "closes an upgraded connection (WebSocket) through which no byte moved either way for this long").
		sets("Proxy.UpgradeIdleTimeout").requires("proxy").reloads(),
}

// keepAlive turns TCP keep-alive on or off: the --keepalive-* settings
// set the rest of Tune.KeepAlive.
func keepAlive(c *configs, on bool) {
	c.Server.Tune.KeepAlive.Enable = on
	c.Server.Tune.DisableKeepAlive = !on
}

// routeForRoot makes the --proxy upstreams the route for "/", after the
// config file's routes.
func routeForRoot(c *configs, urls []string) {
	if len(urls) > 0 {
		c.Proxy.Routes = append(c.Proxy.Routes, proxyRoute{Path: "/", Upstreams: splitList(strings.Join(urls, ","))})
	}
}

func tlsVersion(v string) uint16 {
	if v == "1.3" {
		return tls.VersionTLS13
	}
	return tls.VersionTLS12
}

func not(b bool) bool { return !b }

func isRefuse(v string) bool { return v == "refuse" }

// validRate wants a rate, or empty for none.
func validRate(v string) string {
	if _, err := ratelimit.ParseRate(v); v != "" && err != nil {
		if re, ok := errors.AsType[*ratelimit.RateError](err); ok {
			return re.Allowed
		}
		return err.Error()
	}
	return ""
}

// rateOf is the rate v, which validRate accepted; none for empty.
func rateOf(v string) ratelimit.Rate {
	r, _ := ratelimit.ParseRate(v)
	return r
}

func validBurst(n int) string {
	if n < 0 || n > ratelimit.MaxBurst {
		return fmt.Sprintf("from 0 to %d", ratelimit.MaxBurst)
	}
	return ""
}

// validRateKey wants addr or header:NAME, the keys of a rate limit.
func validRateKey(v string) string {
	if name, ok := strings.CutPrefix(v, "header:"); v == "addr" || ok && isToken(name) {
		return ""
	}
	return "addr (the client's address) or header:NAME (a request header's value, the address without it), such as header:X-Api-Key"
}

// rateKeyHeader is the header of a rate limit's key (validRateKey's), or
// empty for the address.
func rateKeyHeader(v string) string {
	name, _ := strings.CutPrefix(v, "header:")
	if v == "addr" {
		return ""
	}
	return name
}

func trimmed(vs []string) []string {
	out := make([]string, 0, len(vs))
	for _, v := range vs {
		out = append(out, strings.TrimSpace(v))
	}
	return out
}

// oneOf wants one of choices: "text or json".
func oneOf(choices ...string) func(string) string {
	want := strings.Join(choices[:len(choices)-1], ", ") + " or " + choices[len(choices)-1]
	return func(v string) string {
		if slices.Contains(choices, v) {
			return ""
		}
		return want
	}
}

// logPath wants a file in an existing directory, or - for standard
// output: what serve opens, check looks for.
func logPath(v string) string {
	if v == "" || v == "-" {
		return ""
	}
	const want = "a file in an existing directory, or - for standard output"
	if fi, err := os.Stat(filepath.Dir(v)); err != nil || !fi.IsDir() {
		return want
	}
	// Open it as serve does (appending), or make it and take it back.
	f, err := os.OpenFile(v, os.O_WRONLY|os.O_APPEND, 0)
	if errors.Is(err, fs.ErrNotExist) {
		if f, err = os.OpenFile(v, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644); err == nil {
			defer os.Remove(v)
		}
	}
	if err != nil {
		return "a file this user can write, in an existing directory, or - for standard output"
	}
	f.Close()
	return ""
}

func existingDir(v string) string {
	if v == "" {
		return ""
	}
	if fi, err := os.Stat(v); err != nil || !fi.IsDir() {
		return "an existing directory"
	}
	return ""
}

// register defines a flag for each setting, with its default.
func (s *settings) register(fs *pflag.FlagSet) {
	fs.StringVar(&s.configFile, "config", "", "YAML file of settings, keyed by flag name (unknown keys are errors)")
	s.values = map[string]any{}
	for _, r := range table {
		s.values[r.name] = r.define(fs)
	}
}

// define adds the setting's flag to fs, and returns where its value is.
func (r setting) define(fs *pflag.FlagSet) any {
	switch def := r.def.(type) {
	case bool:
		p := new(bool)
		fs.BoolVar(p, r.name, def, r.help)
		return p
	case int:
		p := new(int)
		fs.IntVar(p, r.name, def, r.help)
		return p
	case string:
		p := new(string)
		fs.StringVar(p, r.name, def, r.help)
		return p
	case time.Duration:
		p := new(time.Duration)
		fs.DurationVar(p, r.name, def, r.help)
		return p
	case []string:
		p := new([]string)
		fs.StringArrayVar(p, r.name, def, r.help)
		return p
	case commaSeparated:
		p := new([]string)
		fs.StringSliceVar(p, r.name, def, r.help)
		return p
	case networks:
		p := new(networks)
		*p = slices.Clone(def)
		fs.Var(p, r.name, r.help)
		return p
	}
	panic("fastserve: setting " + r.name + " has a default of no setting type")
}

// valueOf is the value of the setting name, whose type is T.
func valueOf[T any](s *settings, name string) T { return *s.values[name].(*T) }

// value is the value of the setting name.
func (s *settings) value(name string) reflect.Value { return reflect.ValueOf(s.values[name]).Elem() }

// given reports whether the setting name was given (by flag, environment
// or file), not left to its default.
func (s *settings) given(name string) bool {
	_, ok := s.source[name]
	return ok
}

// row is the setting name's row of table.
func row(name string) setting {
	i := slices.IndexFunc(table, func(r setting) bool { return r.name == name })
	return table[i]
}

// on reports whether the setting r is on: true, or not empty.
func (s *settings) on(r setting) bool {
	if (r.routesToo || r.sitesToo) && s.sites.has(r.name) {
		return true
	}
	v := s.value(r.name)
	if v.Kind() == reflect.Slice {
		return v.Len() > 0
	}
	return !v.IsZero()
}

// notZero is a setting's check that refuses 0, which the library would
// read as its default: the value given would not be the one used.
func notZero(want string) func(int) string {
	return func(v int) string {
		if v == 0 {
			return want
		}
		return ""
	}
}
