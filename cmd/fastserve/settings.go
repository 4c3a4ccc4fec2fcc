package main

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/spf13/pflag"

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
	fs.StringVar(&s.acmeCA, "acme-ca", server.DefaultACMECA, "ACME directory URL; Let's Encrypt staging, to try things out: "+server.LetsEncryptStagingCA)
	fs.StringVar(&s.acmeCARoot, "acme-ca-root", "", "PEM file of roots to trust for the ACME CA's own HTTPS, in place of the system's (a private CA such as step-ca)")
	fs.StringVar(&s.acmeStorage, "acme-storage", server.DefaultACMEStorage(), "directory of the ACME account, keys, certificates and locks; processes sharing it obtain each certificate once")

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
	fs.DurationVar(&s.proxyConnectTimeout, "proxy-connect-timeout", server.DefaultProxyConnectTimeout, "bound on connecting to an upstream, TLS included (past it, 504)")
	fs.DurationVar(&s.proxyTimeout, "proxy-timeout", server.DefaultProxyReadTimeout, "bound on each wait for an upstream's bytes: its response head (past it, 504) and between two reads of its body")
	fs.IntVar(&s.proxyMaxConns, "proxy-max-conns", server.DefaultProxyMaxConns, "connections open to each upstream at once")
	fs.StringVar(&s.proxyHealthPath, "proxy-health-path", server.DefaultProxyHealthPath, "path of the upstreams' health check (GET; 2xx or 3xx = up)")
	fs.DurationVar(&s.proxyHealthInterval, "proxy-health-interval", server.DefaultProxyHealthInterval, "time between two health checks of an upstream")
}

// proxyConfig turns the proxy settings into a server.ProxyConfig: the
// config file's routes, then --proxy as the route for "/". ok is false
// when neither is set.
func (s *settings) proxyConfig() (cfg server.ProxyConfig, ok bool) {
	for _, r := range s.routes {
		cfg.Routes = append(cfg.Routes, r.route)
	}
	var all []string
	for _, v := range s.proxy {
		all = append(all, splitList(v)...)
	}
	if len(s.proxy) > 0 {
		cfg.Routes = append(cfg.Routes, server.ProxyRoute{Path: "/", Upstreams: all})
	}
	cfg.HostHeader = s.proxyHostHeader
	cfg.ConnectTimeout = s.proxyConnectTimeout
	cfg.ReadTimeout = s.proxyTimeout
	cfg.MaxConns = s.proxyMaxConns
	cfg.HealthPath = s.proxyHealthPath
	cfg.HealthInterval = s.proxyHealthInterval
	return cfg, len(cfg.Routes) > 0
}

// proxyFieldFlags maps server.ProxyConfig fields to the settings that
// set them.
var proxyFieldFlags = map[string]string{
	"HostHeader":     "proxy-host-header",
	"ConnectTimeout": "proxy-connect-timeout",
	"ReadTimeout":    "proxy-timeout",
	"MaxConns":       "proxy-max-conns",
	"HealthPath":     "proxy-health-path",
	"HealthInterval": "proxy-health-interval",
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
			cfg.TLS.Certificates = append(cfg.TLS.Certificates, server.CertFiles{CertFile: s.certs[i], KeyFile: s.keys[i]})
		}
	}
	cfg.TLS.SessionTicketKeyFiles = s.sessionTicketKeys
	cfg.TLS.StrictSNI = s.strictSNI
	if len(s.acmeDomains) > 0 {
		cfg.ACME = server.ACME{
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
