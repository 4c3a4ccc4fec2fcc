package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mholt/acmez/v3"
	"github.com/valyala/fasthttp"

	"github.com/fastserve/fastserve/accesslog"
	"github.com/fastserve/fastserve/internal/ratelog"
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
	drained  chan struct{} // closed when the first Shutdown returns
	drainEnd sync.Once

	inh        *inherited        // sockets from the process this one replaces, until serving
	handoverLn *net.UnixListener // where the next process asks for the sockets, or nil
	handedOver chan struct{}     // closed when the next process serves on the sockets
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
	s := &Server{
		fastLog:    &fastLogger{l: cfg.Logger},
		cfg:        cfg,
		log:        cfg.Logger,
		conns:      make(map[*conn]struct{}),
		perIP:      make(map[netip.Addr]int),
		drained:    make(chan struct{}),
		handedOver: make(chan struct{}),
	}
	if s.tls, err = newTLSState(cfg.TLS, cfg.ACME.enabled(), cfg.Logger); err != nil {
		return nil, err
	}
	if cfg.Handover != "" {
		if s.inh, err = requestHandover(cfg.Handover); err != nil {
			return nil, err
		}
	}
	s.fs = &fasthttp.Server{
		Handler:        s.handle(h),
		ErrorHandler:   s.errorResponse,
		HeaderReceived: s.headerReceived,
		ConnState:      s.connState,
		Name:           cfg.Name,
		// admit enforces MaxConns, before TLS. fasthttp's own limit must
		// never refuse (it would write a plaintext 503 on a TLS
		// connection): its workers close a connection (so admit sees the
		// slot free) before they return to the pool, so up to MaxConns
		// workers may be finishing while MaxConns new connections arrive.
		Concurrency:        2 * cfg.MaxConns,
		ReadBufferSize:     cfg.MaxHeaderBytes,
		WriteBufferSize:    cfg.WriteBufferSize,
		ReadTimeout:        cfg.HeaderTimeout,
		IdleTimeout:        cfg.IdleTimeout,
		MaxRequestBodySize: cfg.MaxBodyBytes,
		ReduceMemoryUsage:  !cfg.KeepIdleBuffers,
		StreamRequestBody:  cfg.StreamRequestBody, // handle enforces MaxBodyBytes then
		CloseOnShutdown:    true,
		Logger:             s.fastLog,
	}

	if cfg.IdleParkAfter > 0 && !cfg.KeepIdleBuffers {
		if s.poller, err = newPoller(s); err != nil {
			return nil, err
		}
		// A worker whose connection parked waits in fasthttp's pool
		// (10 s by default) with its stack: let it go sooner, so that
		// the memory parking frees is freed.
		s.fs.MaxIdleWorkerDuration = time.Second
	}
	if err := s.listen(); err != nil {
		s.poller.stop()
		s.closeListeners()
		s.inh.close(false)
		return nil, err
	}
	if cfg.ACME.enabled() {
		if err := s.setUpACME(); err != nil {
			s.poller.stop()
			s.closeListeners()
			s.inh.close(false)
			return nil, err
		}
	}
	if cfg.HSTS > 0 {
		s.hsts = []byte("max-age=" + strconv.Itoa(int(cfg.HSTS/time.Second)))
	}
	if cfg.AccessLog != nil {
		format, _ := accesslog.ParseFormat(cfg.AccessLogFormat) // withDefaults checked it
		s.accessLog = accesslog.New(cfg.AccessLog, format)
	}
	return s, nil
}

// listen binds the HTTPS listeners, or takes them from the process this
// one replaces.
func (s *Server) listen() error {
	cfg := s.cfg
	var tls []*tune.Listener
	files := s.inh.take("https", cfg.Addr)
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
		if n == 1 && len(tls) == 0 {
			var ln net.Listener
			ln, err = tune.Listen("tcp", addr, cfg.Tune)
			lns = []net.Listener{ln}
		} else {
			lns, err = tune.ListenGroup("tcp", addr, n, cfg.Tune)
		}
		if err != nil {
			return fmt.Errorf("server: %w", err)
		}
		for _, ln := range lns {
			s.lns = append(s.lns, &listener{tl: ln.(*tune.Listener), srv: s})
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
	as, err := newACME(s.cfg.ACME, s.lns[0].Addr(), httpAddr, len(s.cfg.TLS.Certificates) == 0, s.log)
	if err != nil {
		return err
	}
	s.tls.acme = as
	s.tls.cfg.NextProtos = append(s.tls.cfg.NextProtos, acmez.ACMETLS1Protocol)
	if redirect != nil {
		redirect.fs.Handler = as.httpChallenge(redirect.fs.Handler)
	}
	return nil
}

// newPlainServers binds the admin and redirect listeners.
func (s *Server) newPlainServers() error {
	if s.cfg.AdminAddr != "" {
		p, err := s.newPlain("admin", s.cfg.AdminAddr, s.AdminHandler())
		if err != nil {
			return err
		}
		s.plain = append(s.plain, p)
	}
	if s.cfg.RedirectAddr != "" {
		port := s.lns[0].Addr().(*net.TCPAddr).Port
		p, err := s.newPlain("redirect", s.cfg.RedirectAddr, redirectHandler(port))
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
// after a clean shutdown (by ctx or by Shutdown), or the error that
// stopped a listener, after shutting the others down. It may be called
// once.
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
		s.log.Info("serving "+p.name, "addr", p.ln.Addr())
	}
	s.log.Info("serving HTTPS", "addrs", s.Addrs(), "listeners", len(s.lns))
	if as := s.tls.acme; as != nil {
		as.start() // once the listeners serve, to answer the challenges
		defer as.stop()
	}
	if s.inh != nil {
		if err := s.inh.close(true); err != nil {
			s.log.Warn("could not tell the previous process to drain; it serves on beside this one", "pid", s.inh.pid, "err", err)
		} else {
			s.log.Info("took the listeners over; the previous process drains", "from_pid", s.inh.pid)
		}
		s.inh = nil
	}
	if s.cfg.Handover != "" {
		if err := s.listenHandover(); err != nil {
			s.log.Error("no hand-over to a next process", "err", err)
		}
	}

	var err error
	pending := len(s.lns) + len(s.plain)
	select {
	case <-ctx.Done():
		err = s.drain()
	case <-s.handedOver:
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

// drain is Shutdown bounded by Config.DrainTimeout.
func (s *Server) drain() error {
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.DrainTimeout)
	defer cancel()
	return s.Shutdown(ctx)
}

// Shutdown stops accepting on every listener, answers requests that
// arrive during the drain with Connection: close, waits for in-flight
// requests to finish, and closes keep-alive connections that stay idle
// for Config.DrainIdleTimeout. If ctx ends first, it closes the
// connections still open and returns ctx's error. Serve then returns nil.
func (s *Server) Shutdown(ctx context.Context) error {
	if s.draining.CompareAndSwap(false, true) {
		s.log.Info("draining", "open", s.stats.open.Load())
	}
	if s.tls.acme != nil {
		s.tls.acme.stop()
	}
	defer s.drainEnd.Do(func() { close(s.drained) })
	s.mu.Lock()
	if s.handoverLn != nil {
		s.handoverLn.Close()
	}
	s.mu.Unlock()
	for _, l := range s.lns {
		l.Close()
	}
	s.closeIdle(ctx)
	err := s.fs.ShutdownWithContext(ctx)
	// Nothing parks from here on; what is still parked is idle.
	s.unpark(s.poller.stop()...)
	if err != nil {
		// Out of time: close the sockets themselves, outside the lock
		// that closing connections take, and without a TLS close_notify,
		// which could wait on a client that reads nothing.
		s.mu.Lock()
		open := make([]*conn, 0, len(s.conns))
		for c := range s.conns {
			open = append(open, c)
		}
		s.mu.Unlock()
		for _, c := range open {
			c.tcp.Close()
		}
		err = fmt.Errorf("server: shutdown: %w", err)
	} else {
		// Every connection is closed: what the poller started is ending.
		s.unparking.Wait()
	}
	// The admin listener stays up through the drain, so /readyz reports
	// it; it goes last.
	for _, p := range s.plain {
		p.ln.Close()
		if perr := p.fs.ShutdownWithContext(ctx); perr != nil && err == nil {
			err = fmt.Errorf("server: shutdown %s: %w", p.name, perr)
		}
	}
	return err
}

// closeIdle waits until every connection is closed, or ctx ends, closing
// each that has been idle for DrainIdleTimeout since it went idle or the
// drain began, whichever is later. fasthttp's own Shutdown would close
// idle connections at once.
func (s *Server) closeIdle(ctx context.Context) {
	start := time.Now().UnixNano()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	var closing []*conn
	for {
		now := time.Now().UnixNano()
		s.mu.Lock()
		for c := range s.conns {
			since := c.idleSince.Load()
			if since == 0 {
				continue
			}
			if time.Duration(now-max(since, start)) >= s.cfg.DrainIdleTimeout {
				closing = append(closing, c)
			}
		}
		open := len(s.conns)
		s.mu.Unlock()
		// Outside the lock: closing a parked connection releases it.
		for _, c := range closing {
			s.closeConn(c)
		}
		closing = closing[:0]
		if open == 0 {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// Drained is closed when the first Shutdown (or Serve's own drain) has
// returned.
func (s *Server) Drained() <-chan struct{} { return s.drained }

// Draining reports whether Shutdown has begun: a readiness check fails
// from then on, so that a balancer stops sending new connections.
func (s *Server) Draining() bool { return s.draining.Load() }

// Reload re-reads the certificate files and swaps them in at once: open
// connections are untouched, new handshakes get the new certificates. If a
// file cannot be read or parsed, the certificates in use stay and the
// error names the file.
func (s *Server) Reload() error {
	if err := s.tls.reload(); err != nil {
		s.log.Error("certificate reload failed; still serving the previous certificates", "err", err)
		return err
	}
	s.log.Info("certificates reloaded", "files", len(s.cfg.TLS.Certificates))
	return nil
}

// admit applies the connection limits and OnConn to a new TCP connection
// and wraps it for TLS, or closes it and returns nil.
func (s *Server) admit(tc *net.TCPConn) *conn {
	s.stats.accepted.Add(1)
	rej := &s.stats.rejected
	if s.stats.open.Add(1) > int64(s.cfg.MaxConns) {
		s.stats.open.Add(-1)
		rej.maxConns.Add(1)
		refuse(tc)
		return nil
	}
	// A trusted balancer's connections are counted by the client address
	// its PROXY header gives, once it is read (conn.readProxyHeader).
	trusted := s.cfg.ProxyProtocol && s.trustsProxy(tc)
	var ip netip.Addr
	if s.cfg.MaxConnsPerIP > 0 && !trusted {
		ip = tc.RemoteAddr().(*net.TCPAddr).AddrPort().Addr().Unmap()
		if !s.countIP(ip) {
			s.stats.open.Add(-1)
			rej.maxConnsPerIP.Add(1)
			refuse(tc)
			return nil
		}
	}
	c := &conn{tcp: tc, srv: s, ip: ip, start: time.Now()}
	if s.cfg.OnConn != nil {
		if err := s.cfg.OnConn(tc); err != nil {
			rej.onConn.Add(1)
			s.release(c)
			refuse(tc)
			return nil
		}
	}
	if s.cfg.ProxyProtocol {
		c.proxy = &proxyConn{TCPConn: tc, trusted: trusted}
		c.Conn = tls.Server(c.proxy, s.tls.cfg)
	} else {
		c.Conn = tls.Server(tc, s.tls.cfg)
	}
	s.mu.Lock()
	s.conns[c] = struct{}{}
	s.mu.Unlock()
	return c
}

// countIP counts a connection from ip against MaxConnsPerIP, or reports
// false if ip is at the limit.
func (s *Server) countIP(ip netip.Addr) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.perIP[ip] >= s.cfg.MaxConnsPerIP {
		return false
	}
	s.perIP[ip]++
	return true
}

// release undoes admit's counting for a connection that is closing.
func (s *Server) release(c *conn) {
	s.stats.open.Add(-1)
	s.stats.closedBytesIn.Add(c.bytesIn.Load())
	s.stats.closedBytesOut.Add(c.bytesOut.Load())
	s.mu.Lock()
	delete(s.conns, c)
	if c.ip.IsValid() {
		if s.perIP[c.ip] <= 1 {
			delete(s.perIP, c.ip)
		} else {
			s.perIP[c.ip]--
		}
	}
	s.mu.Unlock()
}

// refuse closes a connection that is over a limit at once, with a reset,
// so that it holds nothing in the kernel either.
func refuse(tc *net.TCPConn) {
	_ = tc.SetLinger(0)
	_ = tc.Close()
}

// fastLogger passes fasthttp's own log lines to slog through a limiter:
// fasthttp logs some client errors per request (a static file not found).
type fastLogger struct {
	l       *slog.Logger
	limiter ratelog.Limiter
}

func (f *fastLogger) Printf(format string, args ...any) {
	f.limiter.Log(f.l, slog.LevelWarn, "fasthttp", fmt.Sprintf(format, args...), "from", "fasthttp")
}
