package main

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/spf13/pflag"
	"go.yaml.in/yaml/v3"

	"github.com/fastserve/fastserve/certs"
	"github.com/fastserve/fastserve/proxy"
	"github.com/fastserve/fastserve/server"
	"github.com/fastserve/fastserve/tune"
)

// settings are what an operator sets, by flag, FASTSERVE_* variable or
// config file key, all three named alike (--keepalive-idle,
// FASTSERVE_KEEPALIVE_IDLE, keepalive-idle:).
type settings struct {
	configFile string

	addr      string
	listeners int
	certs     []string
	keys      []string
	tlsMin    string

	sessionTicketKeys []string
	strictSNI         bool

	acmeDomains []string
	acmeEmail   string
	acmeCA      string
	acmeCARoot  string
	acmeStorage string

	keepAlive         bool
	keepAliveIdle     time.Duration
	keepAliveInterval time.Duration
	keepAliveCount    int
	userTimeout       time.Duration
	reusePort         bool
	deferAccept       bool
	fastOpen          bool
	backlog           int
	readBuffer        int
	writeBuffer       int

	handshakeTimeout time.Duration
	headerTimeout    time.Duration
	bodyTimeout      time.Duration
	writeTimeout     time.Duration
	idleTimeout      time.Duration
	idleParkAfter    time.Duration
	drainTimeout     time.Duration
	drainIdleTimeout time.Duration
	handover         string
	minRate          int

	proxyProtocol        bool
	proxyProtocolFrom    networks
	proxyProtocolTimeout time.Duration

	maxConns           int
	maxConnsPerIP      int
	maxHeaderBytes     int
	maxBodyBytes       int
	maxRequestsPerConn int
	reduceMemory       bool

	root            string
	redirectHTTP    string
	hsts            time.Duration
	accessLog       string
	accessLogFormat string
	admin           string
	logFormat       string
	logLevel        string

	proxy               []string
	proxyHostHeader     string
	proxyConnectTimeout time.Duration
	proxyTimeout        time.Duration
	proxyMaxConns       int
	proxyHealthPath     string
	proxyHealthInterval time.Duration
	routes              []fileRoute // from the config file's routes: key

	// source says where each setting that is not a default came from.
	source map[string]string
}

// register defines the flags, with the library's defaults.
func (s *settings) register(fs *pflag.FlagSet) {
	d := tune.Default()
	fs.StringVar(&s.configFile, "config", "", "YAML file of settings, keyed by flag name (unknown keys are errors)")

	fs.StringVar(&s.addr, "addr", server.DefaultAddr, "host:port to serve HTTPS on")
	fs.IntVar(&s.listeners, "listeners", 0, "SO_REUSEPORT listeners, each with its own accept loop (0 = GOMAXPROCS)")
	fs.StringArrayVar(&s.certs, "cert", nil, "PEM certificate chain file; repeat with --key for more names (SNI; the first is the default); none = self-signed for development")
	fs.StringArrayVar(&s.keys, "key", nil, "PEM private key file of the --cert at the same position")
	fs.StringVar(&s.tlsMin, "tls-min-version", "1.2", "lowest TLS version accepted: 1.2 or 1.3")
	fs.StringSliceVar(&s.sessionTicketKeys, "session-ticket-keys", nil, "session ticket key files shared by every instance (48 or 80 random bytes each: openssl rand 80); the first encrypts; re-read on SIGHUP (none = keys made in process, rotated every 12h)")
	fs.BoolVar(&s.strictSNI, "strict-sni", false, "refuse a handshake whose server name matches no certificate, or that has none (unrecognized_name), instead of serving the first certificate")
	fs.StringSliceVar(&s.acmeDomains, "acme", nil, "names (comma-separated) to obtain and renew certificates for from an ACME CA; it must reach --addr on port 443 (TLS-ALPN-01) or --redirect-http on port 80 (HTTP-01)")
	fs.StringVar(&s.acmeEmail, "acme-email", "", "contact address for the ACME account, for the CA's expiry notices (empty = none)")
	fs.StringVar(&s.acmeCA, "acme-ca", certs.DefaultACMECA, "ACME directory URL; Let's Encrypt staging, to try things out: "+certs.LetsEncryptStagingCA)
	fs.StringVar(&s.acmeCARoot, "acme-ca-root", "", "PEM file of roots to trust for the ACME CA's own HTTPS, in place of the system's (a private CA such as step-ca)")
	fs.StringVar(&s.acmeStorage, "acme-storage", certs.DefaultACMEStorage(), "directory of the ACME account, keys, certificates and locks; processes sharing it obtain each certificate once")

	fs.BoolVar(&s.keepAlive, "keepalive", true, "TCP keep-alive on client connections")
	fs.DurationVar(&s.keepAliveIdle, "keepalive-idle", d.KeepAlive.Idle, "idle time before the first keep-alive probe (whole seconds)")
	fs.DurationVar(&s.keepAliveInterval, "keepalive-interval", d.KeepAlive.Interval, "time between keep-alive probes (whole seconds)")
	fs.IntVar(&s.keepAliveCount, "keepalive-count", d.KeepAlive.Count, "unanswered probes before the connection is dropped")
	fs.DurationVar(&s.userTimeout, "tcp-user-timeout", d.UserTimeout, "TCP_USER_TIMEOUT: how long sent data may stay unacknowledged (0 = kernel default)")
	fs.BoolVar(&s.reusePort, "reuseport", d.ReusePort, "SO_REUSEPORT, for hand-over to a new process and several listeners")
	fs.BoolVar(&s.deferAccept, "defer-accept", d.DeferAccept, "TCP_DEFER_ACCEPT: accept a connection once its first bytes arrive")
	fs.BoolVar(&s.fastOpen, "fastopen", d.FastOpen, "TCP Fast Open (needs net.ipv4.tcp_fastopen with bit 0x2)")
	fs.IntVar(&s.backlog, "backlog", d.Backlog, "accept queue length (0 = net.core.somaxconn)")
	fs.IntVar(&s.readBuffer, "tcp-read-buffer", d.ReadBuffer, "SO_RCVBUF in bytes (0 = kernel autotuning)")
	fs.IntVar(&s.writeBuffer, "tcp-write-buffer", d.WriteBuffer, "SO_SNDBUF in bytes (0 = kernel autotuning)")

	fs.DurationVar(&s.handshakeTimeout, "handshake-timeout", server.DefaultHandshakeTimeout, "bound on the TLS handshake")
	fs.DurationVar(&s.headerTimeout, "header-timeout", server.DefaultHeaderTimeout, "bound on reading a request's headers")
	fs.DurationVar(&s.bodyTimeout, "body-timeout", server.DefaultBodyTimeout, "bound on reading a request's body")
	fs.DurationVar(&s.writeTimeout, "write-timeout", server.DefaultWriteTimeout, "bound on each write of a response (between writes, as nginx's send_timeout)")
	fs.DurationVar(&s.idleTimeout, "idle-timeout", server.DefaultIdleTimeout, "how long a keep-alive connection may wait for its next request")
	fs.DurationVar(&s.idleParkAfter, "idle-park-after", 0, "how long a connection waits for a request on a goroutine of its own before it is parked, holding no goroutine (0: 1s on Linux, off elsewhere; negative: never)")
	fs.DurationVar(&s.drainTimeout, "drain-timeout", server.DefaultDrainTimeout, "bound on the graceful drain at SIGTERM/SIGINT or after a hand-over")
	fs.DurationVar(&s.drainIdleTimeout, "drain-idle-timeout", server.DefaultDrainIdleTimeout, "during a drain, how long an idle keep-alive connection may bring its next request (answered with Connection: close) before it is closed")
	fs.StringVar(&s.handover, "handover", "", "Unix socket path for zero-downtime restarts: a new process started with the same path takes this one's listening sockets, and this one drains and exits (empty = none)")
	fs.IntVar(&s.minRate, "min-rate", server.DefaultMinRate, "minimum request transfer rate in bytes/s: the header and body timeouts grow 1 s per this many bytes received")

	fs.BoolVar(&s.proxyProtocol, "proxy-protocol", false, "read a PROXY protocol v1/v2 header from the load balancer before TLS: its client address is the one logged, limited and shown")
	fs.Var(&s.proxyProtocolFrom, "proxy-protocol-from", "networks of the balancers that must send a PROXY header, as `CIDR[,CIDR...]`; other peers are direct clients (empty = every peer must send one)")
	fs.DurationVar(&s.proxyProtocolTimeout, "proxy-protocol-timeout", server.DefaultProxyProtocolTimeout, "bound on reading the PROXY header")

	fs.IntVar(&s.maxConns, "max-conns", 0, "connections open at once (0 = 7/8 of the file descriptor limit)")
	fs.IntVar(&s.maxConnsPerIP, "max-conns-per-ip", 0, "connections open at once from one client address (0 = no bound)")
	fs.IntVar(&s.maxHeaderBytes, "max-header-bytes", server.DefaultMaxHeaderBytes, "bound on a request's headers (larger gets 431)")
	fs.IntVar(&s.maxBodyBytes, "max-body-bytes", server.DefaultMaxBodyBytes, "bound on a request's body (larger gets 413)")
	fs.IntVar(&s.maxRequestsPerConn, "max-requests-per-conn", 0, "requests served on one connection before it is closed (0 = no bound)")
	fs.BoolVar(&s.reduceMemory, "reduce-memory", true, "release each connection's buffers while it waits for its next request (--reduce-memory=false keeps them)")

	fs.StringVar(&s.root, "root", "", "directory of static files to serve (empty = the built-in page)")
	fs.StringVar(&s.redirectHTTP, "redirect-http", "", "host:port of a plain-HTTP listener that redirects to HTTPS (empty = none)")
	fs.DurationVar(&s.hsts, "hsts", 0, "Strict-Transport-Security max-age, such as 8760h (0 = none)")
	fs.StringVar(&s.accessLog, "access-log", "", "access log file, or - for standard output (empty = none); reopened on SIGHUP")
	fs.StringVar(&s.accessLogFormat, "access-log-format", "combined", "access log format: combined or json")
	fs.StringVar(&s.admin, "admin", "127.0.0.1:9090", "host:port of the admin listener: /metrics, /healthz, /readyz, /debug/conns (empty = none)")
	fs.StringVar(&s.logFormat, "log-format", "text", "log format: text or json")
	fs.StringVar(&s.logLevel, "log-level", "info", "log level: debug, info, warn or error")

	fs.StringArrayVar(&s.proxy, "proxy", nil, "upstream URL(s), comma-separated or repeated, to reverse-proxy every request to (http:// or https://); per-path routes go in the config file's routes:")
	fs.StringVar(&s.proxyHostHeader, "proxy-host-header", "pass", "Host sent upstream: pass (the client's), upstream (the upstream URL's), or a fixed host[:port]")
	fs.DurationVar(&s.proxyConnectTimeout, "proxy-connect-timeout", proxy.DefaultConnectTimeout, "bound on connecting to an upstream, TLS included (past it, 504)")
	fs.DurationVar(&s.proxyTimeout, "proxy-timeout", proxy.DefaultReadTimeout, "bound on each wait for an upstream's bytes: its response head (past it, 504) and between two reads of its body")
	fs.IntVar(&s.proxyMaxConns, "proxy-max-conns", proxy.DefaultMaxConns, "connections open to each upstream at once")
	fs.StringVar(&s.proxyHealthPath, "proxy-health-path", proxy.DefaultHealthPath, "path of the upstreams' health check (GET; 2xx or 3xx = up)")
	fs.DurationVar(&s.proxyHealthInterval, "proxy-health-interval", proxy.DefaultHealthInterval, "time between two health checks of an upstream")
}

// fileRoute is an entry of the config file's routes: list.
type fileRoute struct {
	route proxy.Route
	src   string // config file F:LINE
}

// load fills the settings not given as flags from FASTSERVE_* variables,
// then from the config file: flags win over the environment, which wins
// over the file.
func (s *settings) load(fs *pflag.FlagSet, lookupEnv func(string) (string, bool)) error {
	s.source = map[string]string{}
	fs.Visit(func(f *pflag.Flag) { s.source[f.Name] = "flag --" + f.Name })

	var errs []error
	fs.VisitAll(func(f *pflag.Flag) {
		if f.Changed || f.Name == "config" {
			return
		}
		name := envName(f.Name)
		v, ok := lookupEnv(name)
		if !ok {
			return
		}
		src := "environment " + name
		vals := []string{v}
		if t := f.Value.Type(); t == "stringArray" || t == "stringSlice" {
			vals = strings.Split(v, ",")
		}
		for _, v := range vals {
			if err := f.Value.Set(strings.TrimSpace(v)); err != nil {
				errs = append(errs, badValue(f, v, src, err))
				return
			}
		}
		f.Changed = true
		s.source[f.Name] = src
	})
	if s.configFile == "" {
		s.configFile, _ = lookupEnv(envName("config"))
	}
	if s.configFile != "" {
		errs = append(errs, s.loadFile(fs)...)
	}
	return errors.Join(errs...)
}

func envName(flag string) string {
	return "FASTSERVE_" + strings.ToUpper(strings.ReplaceAll(flag, "-", "_"))
}

// loadFile sets, from the YAML mapping in the config file, the settings
// that neither a flag nor the environment gave.
func (s *settings) loadFile(fs *pflag.FlagSet) []error {
	b, err := os.ReadFile(s.configFile)
	if err != nil {
		return []error{fmt.Errorf("config file: %w", err)}
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(b, &doc); err != nil {
		return []error{fmt.Errorf("config file %s: %w", s.configFile, err)}
	}
	if len(doc.Content) == 0 {
		return nil // an empty file sets nothing
	}
	top := doc.Content[0]
	if top.Kind != yaml.MappingNode {
		return []error{fmt.Errorf("config file %s:%d: want a mapping of setting names to values", s.configFile, top.Line)}
	}
	var errs []error
	seen := map[string]bool{}
	for i := 0; i+1 < len(top.Content); i += 2 {
		k, v := top.Content[i], top.Content[i+1]
		src := fmt.Sprintf("config file %s:%d", s.configFile, k.Line)
		if k.Value == "routes" {
			if seen[k.Value] {
				errs = append(errs, fmt.Errorf("%s: %q is set twice", src, k.Value))
				continue
			}
			seen[k.Value] = true
			errs = append(errs, s.loadRoutes(v)...)
			continue
		}
		f := fs.Lookup(k.Value)
		if f == nil || k.Value == "config" {
			msg := fmt.Sprintf("%s: unknown setting %q", src, k.Value)
			if alt := strings.ReplaceAll(strings.ToLower(k.Value), "_", "-"); alt != k.Value && fs.Lookup(alt) != nil {
				msg += fmt.Sprintf(" (did you mean %q?)", alt)
			}
			errs = append(errs, errors.New(msg+"; settings are named as the flags in 'fastserve serve --help'"))
			continue
		}
		if seen[k.Value] {
			errs = append(errs, fmt.Errorf("%s: %q is set twice", src, k.Value))
			continue
		}
		seen[k.Value] = true
		if f.Changed {
			continue // a flag or the environment wins
		}
		var vals []string
		switch {
		case v.Kind == yaml.ScalarNode:
			vals = []string{v.Value}
		case v.Kind == yaml.SequenceNode && isList(f):
			for _, e := range v.Content {
				vals = append(vals, e.Value)
			}
		default:
			errs = append(errs, fmt.Errorf("%s: %q must be a single value", src, k.Value))
			continue
		}
		for _, val := range vals {
			if err := f.Value.Set(val); err != nil {
				errs = append(errs, badValue(f, val, src, err))
				break
			}
		}
		f.Changed = true
		s.source[f.Name] = src
	}
	return errs
}

// loadRoutes reads the config file's routes: a list of {path, proxy}
// mappings, proxy being one URL or a list of them.
func (s *settings) loadRoutes(v *yaml.Node) []error {
	at := func(n *yaml.Node) string { return fmt.Sprintf("config file %s:%d", s.configFile, n.Line) }
	const want = "want a list of {path: /prefix/, proxy: [http://host:port, ...]}"
	if v.Kind != yaml.SequenceNode {
		return []error{fmt.Errorf("%s: routes: %s", at(v), want)}
	}
	var errs []error
	for i, e := range v.Content {
		if e.Kind != yaml.MappingNode {
			errs = append(errs, fmt.Errorf("%s: routes[%d]: %s", at(e), i, want))
			continue
		}
		r := fileRoute{src: at(e)}
		for j := 0; j+1 < len(e.Content); j += 2 {
			key, val := e.Content[j], e.Content[j+1]
			switch {
			case key.Value == "path" && val.Kind == yaml.ScalarNode:
				r.route.Path = val.Value
			case key.Value == "proxy" && val.Kind == yaml.ScalarNode:
				r.route.Upstreams = append(r.route.Upstreams, splitList(val.Value)...)
			case key.Value == "proxy" && val.Kind == yaml.SequenceNode:
				for _, u := range val.Content {
					r.route.Upstreams = append(r.route.Upstreams, splitList(u.Value)...)
				}
			default:
				errs = append(errs, fmt.Errorf("%s: routes[%d]: unknown key or value %q; %s", at(key), i, key.Value, want))
			}
		}
		s.routes = append(s.routes, r)
	}
	if len(errs) == 0 {
		s.source["routes"] = at(v)
	}
	return errs
}

// splitList splits a comma-separated list, dropping empty items.
func splitList(v string) []string {
	var out []string
	for _, e := range strings.Split(v, ",") {
		if e = strings.TrimSpace(e); e != "" {
			out = append(out, e)
		}
	}
	return out
}

// proxyConfig turns the proxy settings into a proxy.Config: the
// config file's routes, then --proxy as the route for "/". ok is false
// when neither is set.
func (s *settings) proxyConfig() (cfg proxy.Config, ok bool) {
	for _, r := range s.routes {
		cfg.Routes = append(cfg.Routes, r.route)
	}
	var all []string
	for _, v := range s.proxy {
		all = append(all, splitList(v)...)
	}
	if len(s.proxy) > 0 {
		cfg.Routes = append(cfg.Routes, proxy.Route{Path: "/", Upstreams: all})
	}
	cfg.HostHeader = s.proxyHostHeader
	cfg.ConnectTimeout = s.proxyConnectTimeout
	cfg.ReadTimeout = s.proxyTimeout
	cfg.MaxConns = s.proxyMaxConns
	cfg.HealthPath = s.proxyHealthPath
	cfg.HealthInterval = s.proxyHealthInterval
	return cfg, len(cfg.Routes) > 0
}

// proxyFieldFlags maps proxy.Config fields to the settings that
// set them.
var proxyFieldFlags = map[string]string{
	"HostHeader":     "proxy-host-header",
	"ConnectTimeout": "proxy-connect-timeout",
	"ReadTimeout":    "proxy-timeout",
	"MaxConns":       "proxy-max-conns",
	"HealthPath":     "proxy-health-path",
	"HealthInterval": "proxy-health-interval",
}

// explainProxy rewrites the proxy's errors in the settings' names, one
// line each: a route of the config file by its line, the rest by flag.
func (s *settings) explainProxy(err error, fs *pflag.FlagSet) error {
	var lines []error
	for _, e := range unjoin(err) {
		var ce *proxy.ConfigError
		if !errors.As(e, &ce) {
			lines = append(lines, e)
			continue
		}
		var i, j int
		field := ce.Field
		if n, _ := fmt.Sscanf(ce.Field, "Routes[%d].Upstreams[%d]", &i, &j); n == 2 {
			field = "Upstreams[]"
		} else if n, _ := fmt.Sscanf(ce.Field, "Routes[%d].", &i); n == 1 {
			field = ce.Field[strings.Index(ce.Field, "].")+2:]
		}
		switch {
		case strings.HasPrefix(ce.Field, "Routes[") && i < len(s.routes):
			key := map[string]string{"Path": "path", "Upstreams": "proxy", "Upstreams[]": fmt.Sprintf("proxy[%d]", j)}[field]
			lines = append(lines, fmt.Errorf("%s: routes[%d].%s=%v: invalid value: must be %s", s.routes[i].src, i, key, unquote(ce.Value), ce.Allowed))
		case strings.HasPrefix(ce.Field, "Routes["):
			v := fmt.Sprint(unquote(ce.Value))
			if field == "Path" {
				v = strings.Join(s.proxy, ",") // --proxy's route for "/" and a file route for "/"
				lines = append(lines, fmt.Errorf("--proxy=%s%s: invalid value: a route of the config file has the path \"/\" already", v, s.from("proxy")))
				continue
			}
			lines = append(lines, fmt.Errorf("--proxy=%s%s: invalid value: must be %s", v, s.from("proxy"), ce.Allowed))
		case proxyFieldFlags[ce.Field] != "":
			flag := proxyFieldFlags[ce.Field]
			lines = append(lines, fmt.Errorf("--%s=%s%s: invalid value: must be %s", flag, fs.Lookup(flag).Value.String(), s.from(flag), ce.Allowed))
		default:
			lines = append(lines, e)
		}
	}
	return errors.Join(lines...)
}

// unquote undoes the %q of a ConfigError's string value.
func unquote(v any) any {
	if str, ok := v.(string); ok && len(str) >= 2 && str[0] == '"' {
		var u string
		if _, err := fmt.Sscanf(str, "%q", &u); err == nil {
			return u
		}
	}
	return v
}

// badValue is the one-line error for a value a setting cannot take.
func badValue(f *pflag.Flag, v, src string, err error) error {
	return fmt.Errorf("--%s=%s (%s): invalid value: want %s", f.Name, v, src, wantOf(f))
}

func wantOf(f *pflag.Flag) string {
	switch f.Value.Type() {
	case "duration":
		return "a duration such as 60s, 1m30s or 0"
	case "int":
		return "a whole number"
	case "bool":
		return "true or false"
	case "networks":
		return "a CIDR such as 10.0.0.0/8 or an address"
	case "stringSlice":
		return "names separated by commas"
	}
	return "a " + f.Value.Type()
}

// config turns the settings into a server.Config, with the errors that
// are the command's own (pairs of files, version names, the log choices).
func (s *settings) config() (server.Config, error) {
	var errs []error
	bad := func(flag, v, want string) {
		errs = append(errs, fmt.Errorf("--%s=%s%s: invalid value: want %s", flag, v, s.from(flag), want))
	}
	cfg := server.Config{
		Addr:      s.addr,
		Listeners: s.listeners,
		Tune: tune.Options{
			ReusePort:   s.reusePort,
			DeferAccept: s.deferAccept,
			FastOpen:    s.fastOpen,
			Backlog:     s.backlog,
			UserTimeout: s.userTimeout,
			NoDelay:     true,
			ReadBuffer:  s.readBuffer,
			WriteBuffer: s.writeBuffer,
		},
		HandshakeTimeout:   s.handshakeTimeout,
		HeaderTimeout:      s.headerTimeout,
		BodyTimeout:        s.bodyTimeout,
		WriteTimeout:       s.writeTimeout,
		IdleTimeout:        s.idleTimeout,
		IdleParkAfter:      s.idleParkAfter,
		DrainTimeout:       s.drainTimeout,
		DrainIdleTimeout:   s.drainIdleTimeout,
		Handover:           s.handover,
		MinRate:            s.minRate,
		MaxConns:           s.maxConns,
		MaxConnsPerIP:      s.maxConnsPerIP,
		MaxHeaderBytes:     s.maxHeaderBytes,
		MaxBodyBytes:       s.maxBodyBytes,
		MaxRequestsPerConn: s.maxRequestsPerConn,
		KeepIdleBuffers:    !s.reduceMemory,
		HSTS:               s.hsts,
		AccessLogFormat:    s.accessLogFormat,
		AdminAddr:          s.admin,
		RedirectAddr:       s.redirectHTTP,
	}
	if s.proxyProtocol {
		cfg.ProxyProtocol = true
		cfg.ProxyProtocolFrom = s.proxyProtocolFrom
		cfg.ProxyProtocolTimeout = s.proxyProtocolTimeout
	} else {
		for _, f := range []struct{ flag, v string }{
			{"proxy-protocol-from", s.proxyProtocolFrom.String()},
			{"proxy-protocol-timeout", s.proxyProtocolTimeout.String()},
		} {
			if _, set := s.source[f.flag]; set {
				errs = append(errs, fmt.Errorf("--%s=%s%s: takes effect only with --proxy-protocol", f.flag, f.v, s.from(f.flag)))
			}
		}
	}
	if s.keepAlive {
		cfg.Tune.KeepAlive = net.KeepAliveConfig{Enable: true, Idle: s.keepAliveIdle, Interval: s.keepAliveInterval, Count: s.keepAliveCount}
	} else {
		cfg.Tune.DisableKeepAlive = true
	}
	if len(s.certs) != len(s.keys) {
		errs = append(errs, fmt.Errorf("--cert and --key come in pairs, got %d --cert and %d --key", len(s.certs), len(s.keys)))
	} else {
		for i := range s.certs {
			cfg.TLS.Certificates = append(cfg.TLS.Certificates, certs.KeyPair{CertFile: s.certs[i], KeyFile: s.keys[i]})
		}
	}
	cfg.TLS.SessionTicketKeyFiles = s.sessionTicketKeys
	cfg.TLS.StrictSNI = s.strictSNI
	if len(s.acmeDomains) > 0 {
		cfg.ACME = certs.ACMEConfig{
			Email:      s.acmeEmail,
			CA:         s.acmeCA,
			CARootFile: s.acmeCARoot,
			Storage:    s.acmeStorage,
		}
		for _, d := range s.acmeDomains {
			cfg.ACME.Domains = append(cfg.ACME.Domains, strings.TrimSpace(d))
		}
	} else {
		for _, f := range []struct{ flag, v string }{
			{"acme-email", s.acmeEmail}, {"acme-ca", s.acmeCA}, {"acme-ca-root", s.acmeCARoot}, {"acme-storage", s.acmeStorage},
		} {
			if _, set := s.source[f.flag]; set {
				errs = append(errs, fmt.Errorf("--%s=%s%s: needs --acme, the names to obtain certificates for", f.flag, f.v, s.from(f.flag)))
			}
		}
	}
	switch s.tlsMin {
	case "1.2":
		cfg.TLS.MinVersion = tls.VersionTLS12
	case "1.3":
		cfg.TLS.MinVersion = tls.VersionTLS13
	default:
		bad("tls-min-version", s.tlsMin, "1.2 or 1.3")
	}
	if !slices.Contains([]string{"text", "json"}, s.logFormat) {
		bad("log-format", s.logFormat, "text or json")
	}
	if !slices.Contains([]string{"debug", "info", "warn", "error"}, s.logLevel) {
		bad("log-level", s.logLevel, "debug, info, warn or error")
	}
	if s.root != "" {
		if fi, err := os.Stat(s.root); err != nil || !fi.IsDir() {
			bad("root", s.root, "an existing directory")
		}
	}
	return cfg, errors.Join(errs...)
}

// from names where a setting came from, for an error message.
func (s *settings) from(flag string) string {
	if src, ok := s.source[flag]; ok {
		return " (" + src + ")"
	}
	return " (default)"
}

// fieldFlags maps server.Config fields to the settings that set them.
var fieldFlags = map[string]string{
	"Addr":                    "addr",
	"Listeners":               "listeners",
	"Tune.KeepAlive.Idle":     "keepalive-idle",
	"Tune.KeepAlive.Interval": "keepalive-interval",
	"Tune.KeepAlive.Count":    "keepalive-count",
	"Tune.UserTimeout":        "tcp-user-timeout",
	"Tune.ReusePort":          "reuseport",
	"Tune.DeferAccept":        "defer-accept",
	"Tune.FastOpen":           "fastopen",
	"Tune.Backlog":            "backlog",
	"Tune.ReadBuffer":         "tcp-read-buffer",
	"Tune.WriteBuffer":        "tcp-write-buffer",
	"HandshakeTimeout":        "handshake-timeout",
	"HeaderTimeout":           "header-timeout",
	"BodyTimeout":             "body-timeout",
	"WriteTimeout":            "write-timeout",
	"IdleTimeout":             "idle-timeout",
	"IdleParkAfter":           "idle-park-after",
	"DrainTimeout":            "drain-timeout",
	"DrainIdleTimeout":        "drain-idle-timeout",
	"MinRate":                 "min-rate",
	"ProxyProtocolFrom":       "proxy-protocol-from",
	"ProxyProtocolTimeout":    "proxy-protocol-timeout",
	"MaxConns":                "max-conns",
	"MaxConnsPerIP":           "max-conns-per-ip",
	"MaxHeaderBytes":          "max-header-bytes",
	"MaxBodyBytes":            "max-body-bytes",
	"MaxRequestsPerConn":      "max-requests-per-conn",
	"HSTS":                    "hsts",
	"AccessLogFormat":         "access-log-format",
	"AdminAddr":               "admin",
	"RedirectAddr":            "redirect-http",
	"ACME.Email":              "acme-email",
	"ACME.CA":                 "acme-ca",
	"ACME.CARootFile":         "acme-ca-root",
	"ACME.Storage":            "acme-storage",
}

// explain rewrites the server's errors in the settings' names, one line
// each: --keepalive-idle=500ms (flag --keepalive-idle): must be ...
func (s *settings) explain(err error, fs *pflag.FlagSet) error {
	var lines []error
	for _, e := range unjoin(err) {
		var ce *server.ConfigError
		if !errors.As(e, &ce) {
			lines = append(lines, e)
			continue
		}
		flag, ok := fieldFlags[ce.Field]
		v := ""
		switch {
		case strings.HasPrefix(ce.Field, "TLS.Certificates["):
			flag, v = "cert", fmt.Sprint(ce.Value)
		case strings.HasPrefix(ce.Field, "TLS.SessionTicketKeyFiles["):
			flag, v = "session-ticket-keys", fmt.Sprint(ce.Value)
		case ce.Field == "ACME.Domains":
			flag, v = "acme", fmt.Sprint(ce.Value)
		case ok:
			v = fs.Lookup(flag).Value.String()
		default:
			lines = append(lines, e)
			continue
		}
		if ce.Allowed == "" || errors.Is(ce.Err, errors.ErrUnsupported) {
			cause := ce.Err
			if cause == nil || errors.Is(ce.Err, errors.ErrUnsupported) {
				cause = e
			}
			lines = append(lines, fmt.Errorf("--%s=%s%s: %v", flag, v, s.from(flag), cause))
			continue
		}
		lines = append(lines, fmt.Errorf("--%s=%s%s: invalid value: must be %s", flag, v, s.from(flag), ce.Allowed))
	}
	return errors.Join(lines...)
}

// unjoin flattens errors.Join trees into their leaves.
func unjoin(err error) []error {
	j, ok := err.(interface{ Unwrap() []error })
	if !ok {
		return []error{err}
	}
	var errs []error
	for _, e := range j.Unwrap() {
		errs = append(errs, unjoin(e)...)
	}
	return errs
}

// isList reports whether a setting takes several values: a config file may
// give them as a YAML sequence.
func isList(f *pflag.Flag) bool {
	switch f.Value.Type() {
	case "stringArray", "stringSlice", "networks":
		return true
	}
	return false
}

// networks is a list of IP networks, each given as a CIDR or as one
// address, separated by commas or given one per flag.
type networks []netip.Prefix

func (n *networks) String() string {
	parts := make([]string, len(*n))
	for i, p := range *n {
		parts[i] = p.String()
	}
	return strings.Join(parts, ",")
}

// Set adds the networks in v, all or none.
func (n *networks) Set(v string) error {
	var add []netip.Prefix
	for _, part := range strings.Split(v, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		p, err := netip.ParsePrefix(part)
		if err != nil {
			a, aerr := netip.ParseAddr(part)
			if aerr != nil || a.Zone() != "" {
				return err
			}
			p = netip.PrefixFrom(a, a.BitLen())
		}
		add = append(add, p.Masked())
	}
	*n = append(*n, add...)
	return nil
}

func (n *networks) Type() string { return "networks" }
