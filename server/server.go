package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/fastserve/fastserve/accesslog"
	"github.com/fastserve/fastserve/certs"
	"github.com/fastserve/fastserve/handover"
	"github.com/fastserve/fastserve/internal/httpsyntax"
	"github.com/fastserve/fastserve/internal/ratelog"
	"github.com/fastserve/fastserve/proxyproto"
	"github.com/fastserve/fastserve/tune"
)

// A Server serves HTTPS with fasthttp on tune listeners. Make one with New.
type Server struct {
	cfg Config
	fs  *fasthttp.Server
	lns []*listener
	tls *tlsState
	log *slog.Logger

	stats      counters
	fastLog    *fastLogger
	refusedLog ratelog.Limiter

	hsts      []byte         // the Strict-Transport-Security value, or nil
	accessLog *accesslog.Log // or nil
	plain     []*plainServer // admin and redirect listeners

	poller    *poller        // holds parked connections, or nil: no parking
	unparking sync.WaitGroup // what the poller started: resumed connections, closes

	mu    sync.Mutex
	conns map[*conn]struct{}
	perIP map[netip.Addr]int

	serving  atomic.Bool
	draining atomic.Bool
	drainAt  atomic.Int64  // when the first Shutdown began, in Unix nanoseconds
	drained  chan struct{} // closed when the first Shutdown returns
	drainEnd sync.Once

	proxyPolicy proxyproto.Policy // who must send a PROXY header (Config.ProxyProtocol)

	handover *handover.Registry // the sockets taken from the process this one replaces, and offered to the next; nil without Config.Handover
}

// New validates cfg, reporting every invalid field as a *ConfigError (all
// of them, joined), loads the certificates and binds the listeners, so
// that Addrs is known before Serve. h handles every request.
func New(cfg Config, h fasthttp.RequestHandler) (*Server, error) {
	if h == nil {
		return nil, errors.New("server: nil handler")
	}
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	s := newServer(cfg)
	for _, n := range cfg.Notes() {
		s.log.Warn(n)
	}
	s.fs = s.newFastHTTP(h)
	if s.tls, err = newTLSState(cfg.TLS, cfg.ACME.Enabled(), cfg.Logger); err != nil {
		return nil, err
	}
	if cfg.IdleParkAfter > 0 && !cfg.KeepIdleBuffers {
		if s.poller, err = makePoller(s); err != nil {
			return nil, err
		}
		// A worker whose connection parked waits in fasthttp's pool
		// (10 s by default) with its stack: let it go sooner, so that
		// the memory parking frees is freed.
		s.fs.MaxIdleWorkerDuration = time.Second
	}
	// From here on, what New took is given back if it fails: the poller,
	// the listeners, and the sockets and connection of a hand-over, so
	// that the process offering them serves on, and can offer them again.
	if cfg.Handover != "" {
		if s.handover, err = handover.Open(cfg.Handover, s.log); err != nil {
			s.poller.stop()
			return nil, err
		}
	}
	if err := s.listen(); err != nil {
		s.abandon()
		return nil, err
	}
	if cfg.ACME.Enabled() {
		if err := s.setUpACME(); err != nil {
			s.abandon()
			return nil, err
		}
	}
	return s, nil
}

// plainConns is each plain listener's connection budget: 1/28 of
// MaxConns (MaxConns being 7/8 of the descriptor limit by default, the two
// take 1/16 of it), from 16 to 1024.
func plainConns(maxConns int) int { return min(max(maxConns/28, 16), 1024) }

// makePoller is newPoller, but for the test that makes it fail.
var makePoller = newPoller

// abandon gives back what New took before it failed.
func (s *Server) abandon() {
	s.poller.stop()
	s.closeListeners()
	s.handover.Abandon()
}

// newServer is a Server for cfg (with its defaults) that has bound
// nothing: New's start, and the test harness of the request path.
func newServer(cfg Config) *Server {
	s := &Server{
		fastLog:     &fastLogger{l: cfg.Logger},
		cfg:         cfg,
		log:         cfg.Logger,
		conns:       make(map[*conn]struct{}),
		perIP:       make(map[netip.Addr]int),
		drained:     make(chan struct{}),
		proxyPolicy: proxyproto.Policy{From: cfg.ProxyProtocolFrom},
	}
	if cfg.HSTS > 0 {
		s.hsts = []byte("max-age=" + strconv.Itoa(int(cfg.HSTS/time.Second)))
	}
	if cfg.AccessLog != nil {
		format, _ := accesslog.ParseFormat(cfg.AccessLogFormat) // withDefaults checked it
		s.accessLog = accesslog.New(cfg.AccessLog, format)
	}
	return s
}

// newFastHTTP is the one place a fasthttp.Server is configured: the HTTPS
// server that serves h (New, and the test harness of the request path),
// or, with h nil, the base of the plain admin and redirect listeners
// (plain.go), which add their own handler.
func (s *Server) newFastHTTP(h fasthttp.RequestHandler) *fasthttp.Server {
	cfg := s.cfg
	fs := &fasthttp.Server{
		Name:        cfg.Name,
		ReadTimeout: cfg.HeaderTimeout,
		IdleTimeout: cfg.IdleTimeout,
		Logger:      s.fastLog,
	}
	if h == nil {
		// The plain listeners (admin, redirect: port 80 is public) get a
		// budget of their own out of the descriptors MaxConns leaves, so
		// that a flood on them cannot take HTTPS's: fasthttp answers a
		// connection past it 503 and closes it. A connection idles no
		// longer than a header may take.
		fs.Concurrency = plainConns(cfg.MaxConns)
		fs.MaxConnsPerIP = max(fs.Concurrency/4, 1)
		fs.IdleTimeout = cfg.HeaderTimeout
		fs.WriteTimeout = cfg.WriteTimeout
		fs.MaxRequestBodySize = minBuffer
		return fs
	}
	fs.Handler = s.handle(h)
	fs.ErrorHandler = s.errorResponse
	fs.ExpectHandler = s.expect
	fs.HeaderReceived = s.headerReceived
	fs.ConnState = s.connState
	// admit enforces MaxConns, before TLS. fasthttp's own limit must never
	// refuse (it would write a plaintext 503 on a TLS connection): its
	// workers close a connection (so admit sees the slot free) before they
	// return to the pool, and on a busy machine any number of them may be
	// finishing while new connections arrive. Its bound costs nothing.
	fs.Concurrency = math.MaxInt32
	fs.ReadBufferSize = cfg.MaxHeaderBytes
	fs.WriteBufferSize = cfg.WriteBufferSize
	fs.MaxRequestBodySize = cfg.MaxBodyBytes
	fs.ReduceMemoryUsage = !cfg.KeepIdleBuffers
	fs.StreamRequestBody = cfg.StreamRequestBody // handle enforces MaxBodyBytes then
	fs.CloseOnShutdown, fs.KeepHijackedConns = true, true
	return fs
}

// listen binds the HTTPS listeners, or takes them from the process this
// one replaces.
func (s *Server) listen() error {
	cfg := s.cfg
	var tls []*tune.Listener
	files := s.handover.Take("https", cfg.Addr)
	for i, f := range files {
		tl, err := tune.FileListener(f, cfg.Tune)
		f.Close()
		if err != nil {
			for _, l := range tls {
				l.Close()
			}
			for _, f := range files[i+1:] {
				f.Close()
			}
			return fmt.Errorf("server: %w", err)
		}
		tls = append(tls, tl)
	}
	for _, l := range tls {
		s.lns = append(s.lns, &listener{tl: l, srv: s})
		s.handover.Add("https", cfg.Addr, l)
	}
	if n := cfg.Listeners - len(tls); n > 0 {
		addr := cfg.Addr
		if len(tls) > 0 {
			// Join the group of the sockets taken over.
			host, _, _ := net.SplitHostPort(addr)
			addr = net.JoinHostPort(host, strconv.Itoa(tls[0].Addr().(*net.TCPAddr).Port))
		}
		var lns []net.Listener
		var err error
		if len(tls) == 0 && !cfg.SharePort {
			err = tune.Probe("tcp", addr) // before this process binds: its own sockets would be in the way
		}
		switch {
		case err != nil:
		case n == 1 && len(tls) == 0:
			var ln net.Listener
			ln, err = tune.Listen("tcp", addr, cfg.Tune)
			lns = []net.Listener{ln}
		default:
			lns, err = tune.ListenGroup("tcp", addr, n, cfg.Tune)
		}
		if err != nil {
			return &ConfigError{Pkg: "server", Field: "Addr", Value: cfg.Addr, Err: err}
		}
		for _, ln := range lns {
			s.lns = append(s.lns, &listener{tl: ln.(*tune.Listener), srv: s})
			s.handover.Add("https", cfg.Addr, ln.(*tune.Listener))
		}
	}
	return s.newPlainServers()
}

// setUpACME makes the ACME state once the listeners are bound, since the
// challenges are answered on them: TLS-ALPN-01 on the HTTPS port, HTTP-01
// on the redirect listener.
func (s *Server) setUpACME() error {
	var httpAddr net.Addr
	var redirect *plainServer
	for _, p := range s.plain {
		if p.name == "redirect" {
			redirect, httpAddr = p, p.ln.Addr()
		}
	}
	as, err := certs.NewACME(s.cfg.ACME, s.lns[0].Addr(), httpAddr, len(s.cfg.TLS.Certificates) == 0, s.log)
	if err != nil {
		return certsError("ACME", err)
	}
	s.tls.useACME(as)
	if redirect != nil {
		redirect.fs.Handler = as.HTTPChallenge(redirect.fs.Handler)
	}
	return nil
}

// newPlainServers binds the admin and redirect listeners.
func (s *Server) newPlainServers() error {
	if s.cfg.AdminAddr != "" {
		p, err := s.newPlain("admin", "AdminAddr", s.cfg.AdminAddr, s.AdminHandler())
		if err != nil {
			return err
		}
		s.plain = append(s.plain, p)
	}
	if s.cfg.RedirectAddr != "" {
		port := s.lns[0].Addr().(*net.TCPAddr).Port
		p, err := s.newPlain("redirect", "RedirectAddr", s.cfg.RedirectAddr, redirectHandler(port))
		if err != nil {
			return err
		}
		s.plain = append(s.plain, p)
	}
	return nil
}

func (s *Server) closeListeners() {
	for _, l := range s.lns {
		l.Close()
	}
	for _, p := range s.plain {
		p.ln.Close()
	}
}

// addrStrings is addrs as text, as a log line shows them in any format
// (slog's JSON handler would print a *net.TCPAddr as a struct).
func addrStrings(addrs []net.Addr) []string {
	out := make([]string, len(addrs))
	for i, a := range addrs {
		out[i] = a.String()
	}
	return out
}

// Addrs returns the addresses the listeners are bound to.
func (s *Server) Addrs() []net.Addr {
	addrs := make([]net.Addr, len(s.lns))
	for i, l := range s.lns {
		addrs[i] = l.Addr()
	}
	return addrs
}

// Serve accepts and serves connections on every listener until ctx ends,
// then drains as Shutdown does, for at most Config.DrainTimeout. After a
// Shutdown it returns once that Shutdown has returned. It returns nil
// after a shutdown by ctx or by Shutdown, also when the drain ran out of
// DrainTimeout and cut the connections still open (the log says how many
// and when), or the error that stopped a listener, after shutting the
// others down. It may be called once.
func (s *Server) Serve(ctx context.Context) error {
	if !s.serving.CompareAndSwap(false, true) {
		return errors.New("server: Serve called twice")
	}
	if s.draining.Load() {
		return nil
	}
	rctx, stopRotation := context.WithCancel(context.Background())
	defer stopRotation()
	if !s.cfg.TLS.DisableSessionTickets && len(s.cfg.TLS.SessionTicketKeyFiles) == 0 {
		go s.tls.rotate(rctx, s.cfg.TLS.SessionTicketRotation)
	}

	if s.accessLog != nil {
		go s.accessLog.Run()
		defer s.accessLog.Close()
	}
	s.poller.start()
	errc := make(chan error, len(s.lns)+len(s.plain))
	for _, l := range s.lns {
		go func() { errc <- s.fs.Serve(l) }()
	}
	for _, p := range s.plain {
		go func() { errc <- p.fs.Serve(p.ln) }()
		s.log.Info("serving "+p.name, "addr", p.ln.Addr().String())
	}
	s.log.Info("serving HTTPS", "addrs", addrStrings(s.Addrs()), "listeners", len(s.lns))
	if as := s.tls.acme; as != nil {
		as.Start() // once the listeners serve, to answer the challenges
		defer as.Stop()
	}
	if s.handover != nil {
		switch prev, err := s.handover.Serving(); {
		case err != nil:
			s.log.Warn("could not tell the previous process to drain; it serves on beside this one", "pid", prev, "err", err)
		case prev != 0:
			s.log.Info("took the listeners over; the previous process drains", "from_pid", prev)
		}
		if err := s.handover.Listen(); err != nil {
			s.log.Error("no hand-over to a next process", "err", err)
		}
	}

	var err error
	pending := len(s.lns) + len(s.plain)
	select {
	case <-ctx.Done():
		err = s.drain()
	case <-s.handover.HandedOver():
		err = s.drain()
	case err = <-errc:
		pending--
		if err != nil {
			err = fmt.Errorf("server: %w", err)
			s.log.Error("listener failed; shutting down", "err", err)
			err = errors.Join(err, s.drain())
		}
	}
	for ; pending > 0; pending-- {
		if e := <-errc; e != nil && err == nil {
			err = fmt.Errorf("server: %w", e)
		}
	}
	// The listeners return as soon as a Shutdown closes them: wait for its
	// drain, so that a caller may exit when Serve returns.
	<-s.drained
	return err
}

// Reload re-reads the certificate and session ticket key files and swaps
// them in at once: open connections are untouched, new handshakes get the
// new ones. Each part on its own: if its files cannot be read or parsed,
// it keeps what it had, and the error names the file.
func (s *Server) Reload() error {
	certErr, keyErr := s.tls.reload()
	if certErr != nil {
		s.log.Error("certificate reload failed; still serving the previous certificates", "err", certErr)
	} else {
		s.log.Info("certificates reloaded", "files", len(s.cfg.TLS.Certificates))
	}
	if keyErr != nil {
		s.log.Error("session ticket key reload failed; the previous keys stay", "err", keyErr)
	}
	return errors.Join(certErr, keyErr)
}

// fastLogger passes fasthttp's own log lines to slog through a limiter:
// a request fasthttp could not read is logged with its raw bytes, and
// credentials in them are redacted.
type fastLogger struct {
	l       *slog.Logger
	limiter ratelog.Limiter
}

func (f *fastLogger) Printf(format string, args ...any) {
	f.limiter.Log(f.l, slog.LevelWarn, "fasthttp", httpsyntax.Redact(fmt.Sprintf(format, args...)), "from", "fasthttp")
}
