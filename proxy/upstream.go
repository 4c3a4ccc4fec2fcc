package proxy

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"math"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/fastserve/fastserve/tune"
)

// upstream is one upstream server: a pool of keep-alive connections to
// it (a fasthttp.HostClient), whether it is up, and its counters.
type upstream struct {
	upstreamURL
	hc       *fasthttp.HostClient
	upgrades *fasthttp.HostClient // connections for upgrades: each its own, never pooled
	health   *fasthttp.HostClient // its own client, one connection per check
	tunnels  *Tunnels
	tune     tune.Options
	hashID   uint64       // its identity for Route.Balance "hash": its URL's hash
	fails    atomic.Int32 // requests failed in a row (Config.MaxFails)
	tls      *tls.Config  // or nil for http://

	down     atomic.Bool
	inflight atomic.Int64
	stats    upstreamCounters

	conns *connSet // the proxy's: every connection open to an upstream
}

func (p *Proxy) newUpstream(uu upstreamURL) *upstream {
	u := &upstream{upstreamURL: uu, conns: &p.conns, tunnels: p.cfg.Tunnels, tune: p.cfg.Tune}
	u.hashID = hash64([]byte(uu.url))
	if uu.tls {
		if p.cfg.TLS != nil {
			u.tls = p.cfg.TLS.Clone()
		} else {
			u.tls = &tls.Config{}
		}
		if u.tls.ServerName == "" {
			u.tls.ServerName = uu.name
		}
		u.tls.NextProtos = []string{"http/1.1"}
	}
	cfg := &p.cfg
	pool := func(maxConns int) *fasthttp.HostClient {
		return &fasthttp.HostClient{
			Addr:     uu.addr,
			IsTLS:    uu.tls,
			MaxConns: maxConns,
			Dial: func(addr string) (net.Conn, error) {
				return u.dial(addr, cfg.ConnectTimeout, cfg.ReadTimeout, cfg.WriteTimeout)
			},
			MaxIdleConnDuration: cfg.IdleTimeout,
			ReadBufferSize:      max(cfg.MaxResponseHeaderBytes, readBuffer),
			// Errors about an answer that is not HTTP do not quote its bytes,
			// which may hold cookies or credentials: they go to the log.
			SecureErrorLogMessage: true,
			// The balancer retries on another upstream; a HostClient of its
			// own would retry on the same one.
			MaxIdemponentCallAttempts: 1,
			// Every answer streams: a large one is never held in memory whole.
			StreamResponseBody: true,
			// Wait a while for one of MaxConns busy connections, as a
			// connect would.
			MaxConnWaitTimeout:            cfg.ConnectTimeout,
			NoDefaultUserAgentHeader:      true,
			DisableHeaderNamesNormalizing: true,
			DisablePathNormalizing:        true,
			// The connection used last is taken first: busy ones stay
			// warm, and surplus ones idle out (MaxIdleConnDuration).
			ConnPoolStrategy: fasthttp.LIFO,
		}
	}
	u.hc = pool(cfg.MaxConns)
	// A tunnel holds a client connection: the server's limits on those
	// (per client address, and in all) bound them, not MaxConns.
	u.upgrades = pool(math.MaxInt32)
	u.health = &fasthttp.HostClient{
		Addr:  uu.addr,
		IsTLS: uu.tls,
		Dial: func(addr string) (net.Conn, error) {
			d := min(cfg.ConnectTimeout, cfg.HealthTimeout)
			return u.dial(addr, d, cfg.HealthTimeout, cfg.HealthTimeout)
		},
		MaxConns:                  1,
		MaxIdemponentCallAttempts: 1,
		NoDefaultUserAgentHeader:  true,
		MaxResponseBodySize:       64 << 10,
		ReadBufferSize:            cfg.MaxResponseHeaderBytes,
		SecureErrorLogMessage:     true,
	}
	return u
}

// dialError is a failure to connect to an upstream: the request did not
// reach it.
type dialError struct {
	err       error
	handshake bool // TCP connected; TLS failed
}

func (e *dialError) Error() string { return e.err.Error() }
func (e *dialError) Unwrap() error { return e.err }

// dial connects to the upstream under connect, TLS handshake included,
// and returns a connection whose each read and write is bounded.
func (u *upstream) dial(addr string, connect, read, write time.Duration) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(context.Background(), connect)
	defer cancel()
	// Keep-alive as Tune says, not the dialer's default.
	d := net.Dialer{KeepAlive: -1}
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, &dialError{err: err}
	}
	if err := tune.Apply(c.(*net.TCPConn), u.tune); err != nil {
		c.Close()
		return nil, &dialError{err: err}
	}
	if u.tls == nil {
		t := &timedConn{Conn: c, read: read, write: write, set: u.conns, url: u.url}
		if err := u.conns.add(t); err != nil {
			return nil, err
		}
		return t, nil
	}
	tc := tls.Client(c, u.tls)
	if err := tc.HandshakeContext(ctx); err != nil {
		c.Close()
		return nil, &dialError{err: err, handshake: true}
	}
	t := &timedTLSConn{timedConn{Conn: tc, read: read, write: write, set: u.conns, url: u.url}}
	if err := u.conns.add(&t.timedConn); err != nil {
		return nil, err
	}
	return t, nil
}

// errAborted fails a connection made after Abort.
var errAborted = errors.New("proxy: aborted: no new connections to upstreams")

// connSet is every connection open to the upstreams, so that Abort can
// close them, those in use included.
type connSet struct {
	mu      sync.Mutex
	conns   map[*timedConn]struct{}
	aborted bool
}

// add records c, or, after Abort, closes it and fails as a connect does.
func (s *connSet) add(c *timedConn) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.aborted {
		c.cut()
		return &dialError{err: errAborted}
	}
	if s.conns == nil {
		s.conns = map[*timedConn]struct{}{}
	}
	s.conns[c] = struct{}{}
	return nil
}

func (s *connSet) remove(c *timedConn) {
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
}

// abort closes every connection, and every one made from now on.
func (s *connSet) abort() {
	s.mu.Lock()
	s.aborted = true
	conns := s.conns
	s.conns = nil
	s.mu.Unlock()
	for c := range conns {
		c.cut()
	}
}

// timedConn gives each read and each write its own deadline, as nginx's
// proxy_read_timeout and proxy_send_timeout do: a slow upstream answer is
// cut when it stalls, not when it takes long in all. As on client
// connections (conn.Write), a deadline is moved only once it is an eighth
// of its timeout behind, not on every call (each move takes the runtime's
// timer lock): a stall is cut between 7/8 of the timeout and the timeout.
// Reads and writes keep their own fields, so a reader and a writer on two
// goroutines do not share one.
type timedConn struct {
	net.Conn
	read, write     time.Duration
	readAt, writeAt time.Time // the deadlines on the socket
	set             *connSet  // where the connection is recorded while open
	url             string    // its upstream's
	tunnel          atomic.Bool
	reused          bool         // back in the pool after a whole answer (stale looks)
	sock            *tune.Socket // reached once, for stale

	// While a request waits on the connection: its client, and how to
	// tell it is gone (watch, watchedRead); gone once it is.
	client     *fasthttp.RequestCtx
	clientGone func(*fasthttp.RequestCtx) bool
	gone       bool
}

func (c *timedConn) Close() error {
	c.set.remove(c)
	return c.Conn.Close()
}

// cut closes the socket under c at once: no TLS close_notify, which could
// wait on an upstream that reads nothing. A read or write in progress
// fails.
func (c *timedConn) cut() {
	if tc, ok := c.Conn.(*tls.Conn); ok {
		tc.NetConn().Close()
		return
	}
	c.Conn.Close()
}

func (c *timedConn) Read(b []byte) (int, error) {
	if c.client != nil {
		return c.watchedRead(b)
	}
	if d := time.Now().Add(c.read); c.readAt.Before(d.Add(-c.read / 8)) {
		if err := c.Conn.SetReadDeadline(d); err != nil {
			return 0, err
		}
		c.readAt = d
	}
	return c.Conn.Read(b)
}

func (c *timedConn) Write(b []byte) (int, error) {
	if d := time.Now().Add(c.write); c.writeAt.Before(d.Add(-c.write / 8)) {
		if err := c.Conn.SetWriteDeadline(d); err != nil {
			return 0, err
		}
		c.writeAt = d
	}
	return c.Conn.Write(b)
}

// timedTLSConn is a timedConn over TLS whose handshake is done: fasthttp
// takes a connection with a Handshake method as TLS already.
type timedTLSConn struct{ timedConn }

func (c *timedTLSConn) Handshake() error { return c.Conn.(*tls.Conn).Handshake() }

// watch runs the upstream's health checks until Close.
func (p *Proxy) watch(u *upstream) {
	defer p.wg.Done()
	t := time.NewTicker(p.cfg.HealthInterval)
	defer t.Stop()
	for {
		select {
		case <-p.stop:
			return
		case <-t.C:
		}
		err := p.check(u)
		p.setDown(u, err != nil, err)
	}
}

// check does one health check: nil if the upstream answered 2xx or 3xx
// in time.
func (p *Proxy) check(u *upstream) error {
	req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	req.SetRequestURI(p.cfg.HealthPath)
	if u.upstreamURL.tls {
		req.URI().SetScheme("https")
	}
	req.UseHostHeader = true
	req.Header.SetHost(u.host)
	req.Header.Set(fasthttp.HeaderUserAgent, "fastserve-health-check")
	req.SetConnectionClose()
	u.stats.healthChecks.Add(1)
	if err := u.health.DoTimeout(req, resp, p.cfg.HealthTimeout); err != nil {
		u.stats.healthFailures.Add(1)
		return err
	}
	if st := resp.StatusCode(); st < 200 || st > 399 {
		u.stats.healthFailures.Add(1)
		return fmt.Errorf("GET %s answered %d", p.cfg.HealthPath, st)
	}
	return nil
}

// setDown marks u down or up, and logs a change.
func (p *Proxy) setDown(u *upstream, down bool, why error) {
	if !down {
		u.fails.Store(0)
	}
	if u.down.Swap(down) == down {
		return
	}
	if down {
		p.log.Warn("upstream down", "upstream", u.url, "err", redacted{why})
	} else {
		p.log.Info("upstream up", "upstream", u.url, "path", p.cfg.HealthPath)
	}
}
