package server

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"runtime"
	"strings"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/fastserve/fastserve/accesslog"
	"github.com/fastserve/fastserve/certs"
	"github.com/fastserve/fastserve/handover"
	"github.com/fastserve/fastserve/internal/field"
	"github.com/fastserve/fastserve/tune"
)

// Config is a server's configuration. The zero value of every field means
// its documented production default, so Config{Addr: "127.0.0.1:0"} is a
// complete, safe configuration.
type Config struct {
	// Addr is the host:port to listen on. If empty, ":8443": every address,
	// IPv4 and IPv6.
	Addr string

	// Listeners is how many SO_REUSEPORT listeners, each with its own
	// accept loop, share Addr. If zero, GOMAXPROCS, or 1 when Tune does
	// not set ReusePort (more than 1 then is an error).
	Listeners int

	// SharePort lets the listeners join the ones another process has on
	// Addr and RedirectAddr (SO_REUSEPORT; the kernel then spreads the
	// connections over both), for deliberate multi-process serving. By
	// default New refuses an address a socket listens on already: a second
	// instance that joined would take a share of the connections unseen.
	// To replace a running server, use Handover. AdminAddr never shares.
	SharePort bool

	// Tune sets the listening sockets and the TCP options of every
	// accepted connection, before TLS. If it is the zero value,
	// tune.Default() is used.
	Tune tune.Options

	// OnConn, if set, runs on each accepted TCP connection, after Tune's
	// options and the connection limits, before TLS (and before a PROXY
	// protocol header is read: it sees the balancer's socket), to set
	// anything else on the socket. A non-nil error closes the connection
	// (counted as rejected by "on_conn").
	OnConn func(*net.TCPConn) error

	// ProxyProtocol makes the server take each client's address from a
	// PROXY protocol header (v1 or v2, as HAProxy's send-proxy and
	// send-proxy-v2 write it, and as AWS NLB, GCP and others send it) that
	// a load balancer sends before TLS. That address is then the
	// connection's RemoteAddr (so the handler's ctx.RemoteAddr and the
	// access log), the one MaxConnsPerIP counts, and the one
	// /debug/conns shows beside the balancer's. A peer in
	// ProxyProtocolFrom must send a header, as behind HAProxy's
	// accept-proxy; a PROXY UNKNOWN or v2 LOCAL header (a balancer's
	// health check) keeps the socket's address. A connection whose header
	// is missing, malformed, late, or from a peer outside
	// ProxyProtocolFrom is reset, with nothing written, and counted in
	// Stats.Rejected by reason. Off, it costs nothing per connection.
	ProxyProtocol bool

	// ProxyProtocolFrom are the networks of the load balancers trusted to
	// send a PROXY protocol header. A peer outside them that sends one is
	// refused; one that sends none is served as a direct client, with its
	// own address. It must be set with ProxyProtocol, as nginx's
	// set_real_ip_from is, and empty without: 0.0.0.0/0 and ::/0 make every
	// peer a balancer, so that any client that reaches the port chooses
	// the address it is logged and limited by (New logs a warning).
	ProxyProtocolFrom []netip.Prefix

	// ProxyProtocolTimeout bounds reading the PROXY protocol header,
	// counted from the first read of a new connection; the TLS handshake
	// then gets HandshakeTimeout. A balancer sends its header at once, so
	// it is short, as HAProxy's and nginx's header timeouts are. If zero,
	// 3 s. It must be zero unless ProxyProtocol is set.
	ProxyProtocolTimeout time.Duration

	// TLS configures certificates, versions and session resumption.
	TLS TLS

	// ACME, if ACME.Domains is set, obtains and renews certificates for
	// those names from an ACME CA (Let's Encrypt by default), beside
	// TLS.Certificates.
	ACME certs.ACMEConfig

	// HandshakeTimeout bounds the TLS handshake, counted from the first
	// read of a new connection. If zero, 10 s.
	HandshakeTimeout time.Duration

	// HeaderTimeout bounds reading a request's line and headers, counted
	// from the end of the handshake for a connection's first request and
	// from the first byte for the next ones. If zero, 10 s.
	HeaderTimeout time.Duration

	// BodyTimeout bounds reading a request's body, counted from the end
	// of its headers, and grows with the bytes received (MinRate); and it
	// bounds a stall: an upload that stops is cut BodyTimeout after it
	// stopped, whatever it sent before (nginx's client_body_timeout). If
	// zero, 60 s.
	BodyTimeout time.Duration

	// MinRate is the minimum transfer rate of a request, in bytes per
	// second: HeaderTimeout and BodyTimeout (and IdleTimeout) each grow by
	// 1 s for every MinRate bytes received while they run, so an upload at
	// or above the rate on average is never cut, whatever its size, and a
	// client below it is (the idea of Apache's mod_reqtimeout MinRate); the
	// credit never outlasts a stall longer than BodyTimeout. If zero, 500
	// bytes per second, Apache's default.
	MinRate int

	// WriteTimeout bounds each write of a response to the client, as
	// nginx's send_timeout does: a response may take longer in all, but
	// not stall longer than this between two writes. The deadline is
	// moved in steps of an eighth of it, so a stalled write is cut
	// between 7/8 of WriteTimeout and WriteTimeout. If zero, 60 s.
	WriteTimeout time.Duration

	// IdleTimeout is how long a keep-alive connection may wait for its
	// next request. If zero, 620 s: longer than the idle timeouts of
	// common load balancers (AWS ALB 60 s, NLB 350 s; Google Cloud's load
	// balancers keep idle backend connections 600 s and ask backends for
	// more), so that the balancer, not the server, closes idle
	// connections, while TCP keep-alive finds dead peers underneath.
	IdleTimeout time.Duration

	// IdleParkAfter is how long a connection waits for its next request
	// (or, after the handshake, its first) on a goroutine of its own.
	// Past it the connection is parked: its goroutine ends, and a poller
	// (one goroutine, epoll) holds the socket and serves it again when the
	// client sends, its TLS state intact; the wait stays bounded by
	// IdleTimeout (HeaderTimeout for a first request). That frees the
	// goroutine's stack, most of what an idle connection costs (the
	// figures are in docs/performance.md). A busy keep-alive connection,
	// whose next request comes sooner, never parks. If zero, 1 s; if
	// negative, connections never park. Linux only (elsewhere leave it
	// zero: it is off), and not with KeepIdleBuffers, whose buffers cost
	// more than the goroutine.
	IdleParkAfter time.Duration

	// DrainTimeout bounds the graceful shutdown that Serve starts when its
	// context ends. If zero, 30 s.
	DrainTimeout time.Duration

	// BeforeCut, if set, is called when a drain runs out of DrainTimeout, before
	// what is still open is cut: a handler's hijacked connections end cleanly.
	BeforeCut func()

	// DrainIdleTimeout is how long a graceful shutdown waits for a
	// keep-alive connection that is idle to bring its next request (which
	// is answered with Connection: close) before closing it, as HAProxy's
	// idle-close-on-response does. Closing an idle connection races with a
	// request its client may be sending; after this wait only a client
	// that sat idle through all of it can lose that race. DrainTimeout
	// bounds it. If zero, 5 s.
	DrainIdleTimeout time.Duration

	// Handover, if set, is the path of a Unix socket through which
	// fastserve processes hand their listening sockets on. New asks the
	// process listening there, if any, for its sockets and serves on them
	// (binding only what it did not get); once serving, it tells that
	// process, which drains as Shutdown does and makes Serve return nil.
	// Then it listens on the path itself, for the process that will
	// replace it. The sockets are never closed in between, so no
	// connection queued on them is reset. Unix only; keep the path in a
	// directory only the server's user can write.
	Handover string

	// MaxConns bounds the connections open at once; past it, a new
	// connection is closed at once, before TLS. If zero, 7/8 of the
	// process's file descriptor limit (RLIMIT_NOFILE), leaving the rest for
	// files and upstreams so that accept never runs out.
	MaxConns int

	// MaxConnsPerIP bounds the connections open at once from one client
	// address (an IPv6 one by its /64); past it, a new connection is closed
	// at once, before TLS. If zero, there is no bound: behind a balancer or
	// NAT many clients share one address.
	MaxConnsPerIP int

	// MaxHeaderBytes bounds a request's line and headers; a larger one
	// gets 431. It is also the size of each connection's read buffer. If
	// zero, 16 KiB.
	MaxHeaderBytes int

	// MaxBodyBytes bounds a request's body; a larger one gets 413. If
	// zero, 4 MiB.
	MaxBodyBytes int

	// StreamRequestBody hands the handler a request body as a stream
	// (fasthttp.RequestCtx.RequestBodyStream) read from the connection as
	// the handler reads it, beyond the first 8 KiB, instead of reading it
	// whole before the handler runs: a Proxy then sends a large upload to
	// its upstream as it arrives. MaxBodyBytes still holds (413 when
	// Content-Length exceeds it; a chunked body's reads fail with
	// fasthttp.ErrBodyTooLarge past it) and BodyTimeout, grown by MinRate,
	// bounds the reads. The costs: a handler that calls PostBody reads the
	// stream into memory, and fasthttp logs a warning each time (at most
	// 10 lines a second); and each connection keeps its read buffer
	// (MaxHeaderBytes) between requests, whatever KeepIdleBuffers says,
	// until it is parked (IdleParkAfter).
	StreamRequestBody bool

	// DiscardBodies says the handler takes no request body, as static
	// files and the built-in page take none: a request that sends one is
	// handed over with an empty body, its body is never read into memory
	// (nor waited for), and its connection closes after the answer, with a
	// lingering close that drops what the client still sends. It must be
	// false with StreamRequestBody.
	DiscardBodies bool

	// MaxRequestsPerConn closes a connection after it has served this
	// many requests (the last response says Connection: close). If zero,
	// there is no bound.
	MaxRequestsPerConn int

	// WriteBufferSize is the size of a busy connection's response buffer. If zero, 16 KiB, a TLS
	// record's largest payload (nginx's ssl_buffer_size): an answer that fits goes in one write.
	WriteBufferSize int

	// KeepIdleBuffers keeps each connection's read and write buffers
	// while it waits for its next request. By default they are released
	// (fasthttp's ReduceMemoryUsage), which costs less memory per idle
	// connection and, at many connections, is faster too
	// (docs/performance.md has the side-by-side figures).
	KeepIdleBuffers bool

	// Name is sent in the Server header. If empty, "fastserve".
	Name string

	// HSTS, if positive, adds "Strict-Transport-Security: max-age=N" (N in
	// seconds) to every HTTPS response: browsers then use HTTPS for the
	// host for that long. Zero sends none.
	HSTS time.Duration

	// AccessLog, if set, receives a line per request, in AccessLogFormat,
	// written off the request path: lines are buffered and a background
	// writer flushes them every 200 ms; if the writer falls behind by more
	// than 1 MiB, lines are dropped and counted.
	AccessLog io.Writer

	// AccessLogFormat is "combined" (the Apache/nginx format), "json", or
	// a format string of $variables in the manner of nginx's log_format
	// (see accesslog.Compile), compiled once. If empty, "combined".
	AccessLogFormat string

	// AdminAddr, if set, serves AdminHandler (/metrics, /healthz, /readyz,
	// /debug/conns) over plain HTTP on this address. Keep it private: a
	// loopback or internal address.
	AdminAddr string

	// AdminProfiles serves Go's profiles (/debug/pprof/) on the admin
	// listener. Off by default: a profile shows the program's memory and
	// can take seconds of CPU, and admin listeners do end up on networks
	// wider than meant (a pod network, say).
	AdminProfiles bool

	// RedirectAddr, if set, serves plain HTTP on this address, answering
	// every request with a 301 to the same host and URI over HTTPS on
	// Addr's port. With ACME, it also answers the CA's HTTP-01 challenges.
	RedirectAddr string

	// Metrics, if set, is called by WritePrometheus after the server's own
	// metrics, to add others to /metrics in the same text format, such as
	// a Proxy's WritePrometheus.
	Metrics func(w io.Writer)

	// Admin adds endpoints to the admin listener, by path (as /reload).
	Admin map[string]fasthttp.RequestHandler

	// Logger receives the server's logs. If nil, slog.Default().
	Logger *slog.Logger
}

// TLS configures the server's TLS. The defaults follow Mozilla's
// "intermediate" profile: TLS 1.2 and 1.3, AEAD cipher suites with
// forward secrecy only, the key exchanges X25519MLKEM768, X25519, P-256
// and P-384, and ALPN "http/1.1" (fasthttp speaks HTTP/1.1 only).
type TLS struct {
	// Certificates are PEM certificate chains with their keys. A client's
	// server name (SNI) picks among them; the first serves clients whose
	// name matches none. If empty and ACME is off, the server makes an
	// in-memory self-signed ECDSA P-256 certificate for localhost,
	// 127.0.0.1 and ::1, for development only, and logs a warning saying
	// so; if empty with ACME, clients whose name is not an ACME domain get
	// the first domain's certificate.
	Certificates []certs.KeyPair

	// MinVersion is tls.VersionTLS12 or tls.VersionTLS13. If zero,
	// tls.VersionTLS12.
	MinVersion uint16

	// SessionTicketRotation is how often a new session ticket key is
	// made. Tickets are encrypted with the newest key and accepted under
	// the last four, so a ticket resumes a session for up to four
	// rotations. Every listener shares the keys. If zero, 12 h (Caddy's
	// default).
	SessionTicketRotation time.Duration

	// DisableSessionTickets turns session resumption off.
	DisableSessionTickets bool

	// SessionTicketKeyFiles, if set, are files of session ticket keys
	// shared by every process that serves the same clients (instances
	// behind one balancer; the old and new process of a hand-over), as
	// nginx's ssl_session_ticket_key: each holds one key of 48 or 80
	// random bytes (openssl rand 80 > file). The first file's key
	// encrypts new tickets; the others' only decrypt, so a key can be
	// retired in steps. Reload re-reads them. With files the server does
	// not rotate keys itself: rotate the files (daily, say) and reload.
	SessionTicketKeyFiles []string

	// StrictSNI refuses a handshake whose server name (SNI) matches no
	// certificate, or that has none, with the unrecognized_name alert and
	// no certificate sent, as nginx's ssl_reject_handshake does. By
	// default such a handshake gets the first certificate.
	StrictSNI bool
}

// Defaults.
const (
	DefaultAddr                  = ":8443"
	DefaultHandshakeTimeout      = 10 * time.Second
	DefaultProxyProtocolTimeout  = 3 * time.Second
	DefaultHeaderTimeout         = 10 * time.Second
	DefaultBodyTimeout           = 60 * time.Second
	DefaultWriteTimeout          = 60 * time.Second
	DefaultIdleTimeout           = 620 * time.Second
	DefaultDrainTimeout          = 30 * time.Second
	DefaultDrainIdleTimeout      = 5 * time.Second
	DefaultIdleParkAfter         = time.Second
	DefaultMaxHeaderBytes        = 16 << 10
	DefaultMaxBodyBytes          = 4 << 20
	DefaultMinRate               = 500
	DefaultWriteBufferSize       = 16 << 10
	DefaultName                  = "fastserve"
	DefaultSessionTicketRotation = 12 * time.Hour
	minBuffer                    = 1 << 10
)

// A ConfigError reports an invalid Config field: its name (as in
// "IdleTimeout" or "Tune.KeepAlive.Idle"), the value given and what the
// field accepts. Every fastserve package reports its fields with this
// type.
type ConfigError = field.Error

// withDefaults returns cfg with every zero field set to its default, and
// every invalid field reported.
func (cfg Config) withDefaults() (Config, error) {
	es := field.Errors{Pkg: "server"}
	bad := es.Bad
	if cfg.Addr == "" {
		cfg.Addr = DefaultAddr
	}
	if _, ok := tune.Port(cfg.Addr); !ok {
		bad("Addr", fmt.Sprintf("%q", cfg.Addr), `host:port with a port from 0 to 65535, such as ":8443" or "127.0.0.1:0"`)
	}
	switch {
	case cfg.Listeners < 0 || cfg.Listeners > 1024:
		bad("Listeners", cfg.Listeners, "from 1 to 1024, or 0 for GOMAXPROCS")
	case cfg.Listeners == 0 && !cfg.Tune.ReusePort && cfg.Tune != (tune.Options{}):
		cfg.Listeners = 1 // several listeners share an address by SO_REUSEPORT
	case cfg.Listeners == 0:
		cfg.Listeners = runtime.GOMAXPROCS(0)
	case cfg.Listeners > 1 && !cfg.Tune.ReusePort && cfg.Tune != (tune.Options{}):
		bad("Listeners", cfg.Listeners, "1 or 0 without Tune.ReusePort (several listeners share one address by SO_REUSEPORT)")
	}
	if cfg.Tune == (tune.Options{}) {
		cfg.Tune = tune.Default()
	}
	if err := cfg.Tune.Validate(); err != nil {
		for _, e := range field.Leaves(err) {
			var oe *tune.OptionError
			if errors.As(e, &oe) {
				es.Add(&ConfigError{Pkg: "server", Field: "Tune." + oe.Field, Value: oe.Value, Allowed: oe.Allowed, Err: oe.Err})
			} else {
				es.Add(e)
			}
		}
	}

	es.Duration("HandshakeTimeout", &cfg.HandshakeTimeout, DefaultHandshakeTimeout)
	es.Duration("HeaderTimeout", &cfg.HeaderTimeout, DefaultHeaderTimeout)
	es.Duration("BodyTimeout", &cfg.BodyTimeout, DefaultBodyTimeout)
	es.Duration("WriteTimeout", &cfg.WriteTimeout, DefaultWriteTimeout)
	es.Duration("IdleTimeout", &cfg.IdleTimeout, DefaultIdleTimeout)
	es.Duration("DrainTimeout", &cfg.DrainTimeout, DefaultDrainTimeout)
	es.Duration("DrainIdleTimeout", &cfg.DrainIdleTimeout, DefaultDrainIdleTimeout)
	es.Duration("TLS.SessionTicketRotation", &cfg.TLS.SessionTicketRotation, DefaultSessionTicketRotation)

	switch {
	case cfg.IdleParkAfter > 0 && cfg.IdleParkAfter < time.Millisecond:
		bad("IdleParkAfter", cfg.IdleParkAfter, "1ms or more, 0 for 1s, or negative for never")
	case cfg.IdleParkAfter > 0 && !parkingSupported:
		bad("IdleParkAfter", cfg.IdleParkAfter, "0 or negative: parking idle connections needs Linux")
	case cfg.IdleParkAfter > 0 && cfg.KeepIdleBuffers:
		bad("IdleParkAfter", cfg.IdleParkAfter, "0 or negative with KeepIdleBuffers")
	case cfg.IdleParkAfter == 0 && parkingSupported && !cfg.KeepIdleBuffers:
		cfg.IdleParkAfter = DefaultIdleParkAfter
	}

	if cfg.TLS.DisableSessionTickets && len(cfg.TLS.SessionTicketKeyFiles) > 0 {
		bad("TLS.SessionTicketKeyFiles", cfg.TLS.SessionTicketKeyFiles, "none when TLS.DisableSessionTickets is set")
	}
	if cfg.DiscardBodies && cfg.StreamRequestBody {
		bad("DiscardBodies", true, "false with StreamRequestBody (a handler that streams bodies takes them)")
	}
	if !cfg.ProxyProtocol {
		if len(cfg.ProxyProtocolFrom) > 0 {
			bad("ProxyProtocolFrom", cfg.ProxyProtocolFrom, "empty unless ProxyProtocol is set")
		}
		if cfg.ProxyProtocolTimeout != 0 {
			bad("ProxyProtocolTimeout", cfg.ProxyProtocolTimeout, "0 unless ProxyProtocol is set")
		}
	} else {
		if len(cfg.ProxyProtocolFrom) == 0 {
			bad("ProxyProtocolFrom", "[]", "the load balancers' networks, or 0.0.0.0/0 and ::/0 to trust every peer")
		}
		for i, p := range cfg.ProxyProtocolFrom {
			if !p.IsValid() {
				bad(fmt.Sprintf("ProxyProtocolFrom[%d]", i), p, "a network such as 10.0.0.0/8 (netip.MustParsePrefix)")
			}
		}
		es.Duration("ProxyProtocolTimeout", &cfg.ProxyProtocolTimeout, DefaultProxyProtocolTimeout)
	}

	if cfg.Handover != "" {
		if err := handover.CheckPath(cfg.Handover); err != nil {
			bad("Handover", fmt.Sprintf("%q", cfg.Handover), err.Error())
		}
	}
	if cfg.MaxConns < 0 {
		bad("MaxConns", cfg.MaxConns, "1 or more, or 0 for 7/8 of the file descriptor limit")
	} else if cfg.MaxConns == 0 {
		cfg.MaxConns = defaultMaxConns()
	}
	es.Int("MinRate", &cfg.MinRate, 1, 0, DefaultMinRate, " bytes per second")
	if cfg.MaxConnsPerIP < 0 {
		bad("MaxConnsPerIP", cfg.MaxConnsPerIP, "1 or more, or 0 for no bound")
	}
	if cfg.MaxRequestsPerConn < 0 {
		bad("MaxRequestsPerConn", cfg.MaxRequestsPerConn, "1 or more, or 0 for no bound")
	}
	es.Int("MaxHeaderBytes", &cfg.MaxHeaderBytes, minBuffer, 1<<30, DefaultMaxHeaderBytes, " bytes")
	es.Int("MaxBodyBytes", &cfg.MaxBodyBytes, minBuffer, 1<<30, DefaultMaxBodyBytes, " bytes")
	es.Int("WriteBufferSize", &cfg.WriteBufferSize, minBuffer, 1<<30, DefaultWriteBufferSize, " bytes")

	switch cfg.TLS.MinVersion {
	case 0:
		cfg.TLS.MinVersion = tls.VersionTLS12
	case tls.VersionTLS12, tls.VersionTLS13:
	default:
		bad("TLS.MinVersion", fmt.Sprintf("%#x", cfg.TLS.MinVersion), "tls.VersionTLS12 (0x303) or tls.VersionTLS13 (0x304)")
	}
	for i, cf := range cfg.TLS.Certificates {
		if cf.CertFile == "" || cf.KeyFile == "" {
			bad(fmt.Sprintf("TLS.Certificates[%d]", i), fmt.Sprintf("%+v", cf), "a certificate file and a key file")
		}
	}
	var acmeErr error
	if cfg.ACME, acmeErr = cfg.ACME.WithDefaults(); acmeErr != nil {
		for _, e := range field.Leaves(acmeErr) {
			es.Add(certsError("ACME", e))
		}
	}
	if cfg.Name == "" {
		cfg.Name = DefaultName
	}
	if cfg.HSTS < 0 || (cfg.HSTS > 0 && cfg.HSTS%time.Second != 0) {
		bad("HSTS", cfg.HSTS, "a whole number of seconds, or 0 for none")
	}
	switch _, err := accesslog.ParseFormat(cfg.AccessLogFormat); {
	case err == nil:
		if cfg.AccessLogFormat == "" {
			cfg.AccessLogFormat = "combined"
		}
	case strings.Contains(cfg.AccessLogFormat, "$"): // a format string: the error names its fault
		es.Add(&ConfigError{Pkg: "server", Field: "AccessLogFormat", Value: fmt.Sprintf("%q", cfg.AccessLogFormat), Err: err})
	default:
		bad("AccessLogFormat", fmt.Sprintf("%q", cfg.AccessLogFormat), `"combined", "json", or a format string of $variables`)
	}
	addrs := []struct{ name, addr string }{{"Addr", cfg.Addr}, {"AdminAddr", cfg.AdminAddr}, {"RedirectAddr", cfg.RedirectAddr}}
	for i, a := range addrs {
		if a.addr == "" || i == 0 {
			continue
		}
		if _, ok := tune.Port(a.addr); !ok {
			bad(a.name, fmt.Sprintf("%q", a.addr), `host:port with a port from 0 to 65535, such as "127.0.0.1:9090", or empty for none`)
			continue
		}
		// Listeners share nothing: SO_REUSEPORT would let two of this
		// process's listeners split one address's connections.
		for _, b := range addrs[:i] {
			if b.addr != "" && tune.SameAddr(a.addr, b.addr) {
				bad(a.name, fmt.Sprintf("%q", a.addr), fmt.Sprintf("an address %s does not listen on too (%s is %q)", b.name, b.name, b.addr))
			}
		}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return cfg, es.Err()
}

// Effective is cfg with every zero field set to the value New uses (the
// derived ones too: Listeners, MaxConns, IdleParkAfter), or the errors
// Validate reports about its fields.
func (cfg Config) Effective() (Config, error) { return cfg.withDefaults() }

// Notes are what cfg asks for that is valid but may surprise: for each, a
// sentence saying what will happen. New logs them as warnings, and
// fastserve check prints them.
func (cfg Config) Notes() []string {
	if full, err := cfg.withDefaults(); err == nil {
		cfg = full
	}
	var notes []string
	if n := cfg.Tune.KeepAliveNote(); n != "" {
		notes = append(notes, n)
	}
	if cfg.MaxConnsPerIP > cfg.MaxConns {
		notes = append(notes, fmt.Sprintf("a client address may open %d connections, more than the %d the server admits in all: the per-address bound bounds nothing", cfg.MaxConnsPerIP, cfg.MaxConns))
	}
	if cfg.DrainIdleTimeout > cfg.DrainTimeout {
		notes = append(notes, fmt.Sprintf("the drain gives an idle connection %v for its next request, longer than the %v the whole drain may take: none waits past the drain", cfg.DrainIdleTimeout, cfg.DrainTimeout))
	}
	if cfg.Listeners > 256 {
		notes = append(notes, fmt.Sprintf("%d listeners, each with its own socket and accept loop: more than the %d CPUs adds memory, not speed", cfg.Listeners, runtime.NumCPU()))
	}
	for _, p := range cfg.ProxyProtocolFrom {
		if p.Bits() == 0 && cfg.ProxyProtocol {
			notes = append(notes, "every peer may send a PROXY header ("+p.String()+"): a client that reaches the port directly chooses the address it is logged and limited by")
			break
		}
	}
	return notes
}

// defaultMaxConns is 7/8 of the file descriptor limit, or 10,000 where
// there is none.
func defaultMaxConns() int {
	n, ok := fileLimit()
	if !ok || n == 0 || n > 1<<30 {
		return 10000
	}
	return max(int(n/8*7), 1)
}

// Validate reports every invalid field of cfg, as New does, and reads the
// files New would read (the certificates, the session ticket keys, the
// ACME CA root file), without binding anything: what Validate accepts,
// New runs, but for what only binding can tell (an address in use).
func (cfg Config) Validate() error {
	full, err := cfg.withDefaults()
	if err != nil {
		return err
	}
	if len(full.TLS.Certificates) > 0 {
		if _, err := certs.LoadFiles(full.TLS.Certificates, full.TLS.StrictSNI); err != nil {
			return certsError("TLS.Certificates", err)
		}
	}
	if len(full.TLS.SessionTicketKeyFiles) > 0 {
		if _, err := certs.ReadTicketKeys(full.TLS.SessionTicketKeyFiles); err != nil {
			return certsError("TLS.SessionTicketKeyFiles", err)
		}
	}
	if full.ACME.Enabled() {
		if _, err := full.ACME.LoadRoots(); err != nil {
			return certsError("ACME", err)
		}
	}
	return nil
}
