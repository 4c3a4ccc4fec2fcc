package server

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"runtime"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/fastserve/fastserve/internal/httpsyntax"
	"github.com/fastserve/fastserve/proxyproto"
	"github.com/fastserve/fastserve/tune"
)

// listener hands fasthttp TLS connections whose TCP options are set, that
// passed the connection limits, and that do their handshake under the
// server's handshake timeout.
type listener struct {
	tl     *tune.Listener
	srv    *Server
	closed atomic.Bool
}

func (l *listener) Accept() (net.Conn, error) {
	for {
		tc, err := l.tl.AcceptTCP()
		if err != nil {
			return nil, err
		}
		if c := l.srv.admit(tc); c != nil {
			return c, nil
		}
	}
}

// Close closes the listening socket; closing it again does nothing, since
// both Shutdown and fasthttp close it.
func (l *listener) Close() error {
	if !l.closed.CompareAndSwap(false, true) {
		return nil
	}
	return l.tl.Close()
}

func (l *listener) Addr() net.Addr { return l.tl.Addr() }

// conn is a client connection: a *tls.Conn whose handshake runs, on the
// first read, under the handshake timeout rather than fasthttp's read
// deadline, and whose writes each get the write timeout. fasthttp serves
// each connection from one goroutine, so the fields it drives need no
// locks; the ones Stats, Conns and Shutdown read from elsewhere are
// atomic.
//
// Each concern keeps its fields in a struct of its own, declared and
// written in its own file: hs (handshake.go), dl (deadline.go), scan
// (scan.go), wait (park.go), body (handler.go). This file owns the rest.
type conn struct {
	*tls.Conn
	tcp   *net.TCPConn
	proxy *proxyproto.Conn // under the *tls.Conn when Config.ProxyProtocol is on, else nil
	srv   *Server
	ip    netip.Addr // counted against MaxConnsPerIP, or invalid
	start time.Time

	state   atomic.Uint32 // a phase
	closing atomic.Uint32 // a closeMode

	hs   handshake
	dl   deadlines
	scan httpsyntax.HeadScan
	wait idleWait
	body bodyLimit

	idleSince atomic.Int64 // when the connection went idle between requests (Unix ns), or 0
	idleStamp time.Time    // the same, for the wait that follows (takeIdleStamp); zero once taken
	requests  atomic.Uint64
	upgraded  atomic.Bool // a handler hijacked it (a tunnel)
	bytesIn   atomic.Uint64
	bytesOut  atomic.Uint64
}

// A phase is where a connection is in its life. It moves forward, but
// for serving and parking, which alternate while the connection lasts.
type phase uint32

const (
	phaseNew     phase = iota // accepted; the handshake has not run
	phaseFailed               // the handshake ran and did not end in a request: it failed, or was a TLS-ALPN-01 validation
	phaseServing              // the handshake is done; fasthttp's goroutine serves it
	phaseParking              // its goroutine gave it up: parked in the poller, or on its way there (park.go)
	phaseClosed
)

func (c *conn) phase() phase { return phase(c.state.Load()) }

// move changes the phase from from to to, and reports whether it did: a
// connection that Close ended (from any goroutine: fasthttp's Shutdown
// closes idle connections from its own) stays closed.
func (c *conn) move(from, to phase) bool { return c.state.CompareAndSwap(uint32(from), uint32(to)) }

// A closeMode is how Close ends the connection; the strongest asked for
// wins.
type closeMode uint32

const (
	closeGraceful closeMode = iota // close_notify, then FIN
	closeLinger                    // an error was answered: drain what the client still sends first (lingerClose)
	closeReset                     // a write timed out or the peer is refused: reset, dropping what the kernel holds
)

// closeWith asks Close to end the connection so, or more strongly.
func (c *conn) closeWith(m closeMode) {
	for {
		old := c.closing.Load()
		if closeMode(old) >= m || c.closing.CompareAndSwap(old, uint32(m)) {
			return
		}
	}
}

// NetConn returns the *tls.Conn, so that tune.Inspect reaches the socket.
func (c *conn) NetConn() net.Conn { return c.Conn }

func (c *conn) Read(b []byte) (int, error) {
	if err := c.Handshake(); err != nil {
		return 0, io.EOF // counted by handshake; fasthttp takes io.EOF as a client gone: it writes and logs nothing
	}
	if c.bareLFPending() {
		// A pipelined head with a bare LF, whose end fasthttp waits for.
		c.refuseBareLF()
		return 0, errAnswered
	}
	// The read that brings a new request (the first on the connection, or
	// one while it waits between requests) starts with the request head.
	between := c.bytesIn.Load() == 0 || c.idleSince.Load() != 0
	if between {
		c.scan.Start(c.reading())
		// The client is reading the answer: a read now would find nothing (a
		// system call for EAGAIN, then a wait in the netpoller). Others run first.
		runtime.Gosched()
	}
	var n int
	var err error
	if between && c.srv.poller != nil {
		// fasthttp's wait for the next request's first byte (a 1-byte read, or, with
		// StreamRequestBody, into its kept, empty buffer): parking ends it either way.
		if n, err = c.waitRead(b); err == errParked {
			if !c.move(phaseServing, phaseParking) {
				return 0, net.ErrClosed // closed meanwhile: it stays so
			}
			return 0, io.EOF
		}
	} else {
		n, err = c.read(b)
	}
	if n > 0 && c.scanRead(b[:n]) {
		c.refuseBareLF()
		return 0, errAnswered
	}
	c.bytesIn.Add(uint64(n))
	if n > 0 {
		c.creditRate(n)
	}
	return n, err
}

func (c *conn) Write(b []byte) (int, error) {
	if err := c.Handshake(); err != nil {
		return 0, err
	}
	if err := c.moveWriteDeadline(); err != nil {
		return 0, err
	}
	n, err := c.Conn.Write(b)
	c.bytesOut.Add(uint64(n))
	if err != nil && isTimeout(err) {
		c.closeWith(closeReset)
	}
	return n, err
}

// errAnswered ends fasthttp's read of a request that the connection
// refused and answered itself (refuseBareLF): fasthttp writes no answer
// of its own, counts nothing and logs nothing for a closed connection.
var errAnswered = fmt.Errorf("server: request refused and answered: %w", net.ErrClosed)

// isTimeout reports whether err is a timeout: a net.Error or fasthttp's
// ErrTimeout, which has Timeout but not Temporary.
func isTimeout(err error) bool {
	var te interface{ Timeout() bool }
	return errors.As(err, &te) && te.Timeout()
}

func (c *conn) Close() error {
	var was phase
	for {
		was = c.phase()
		if was == phaseParking {
			// fasthttp's goroutine let go of a parked connection;
			// connState hands it to the poller.
			return nil
		}
		if was == phaseClosed {
			return nil
		}
		if c.state.CompareAndSwap(uint32(was), uint32(phaseClosed)) {
			break
		}
	}
	c.srv.release(c)
	if c.proxy != nil {
		c.proxy.Release()
	}
	switch closeMode(c.closing.Load()) {
	case closeReset:
		// A client that stopped reading (a slow-read attack): a graceful
		// close would leave the unsent response queued in the kernel,
		// trickling out to it for as long as it reads, as nginx's
		// reset_timedout_connection avoids.
		_ = c.tcp.SetLinger(0)
		return c.tcp.Close()
	case closeLinger:
		if was == phaseServing {
			c.lingerClose()
		}
	}
	return c.Conn.Close()
}

// Lingering close, as nginx's lingering_close: after an error answer the
// client may still be sending (the rest of an upload refused with 413).
// Closing with unread data makes the kernel reset the connection, and the
// client may lose the answer or see its write fail. So fastserve says it
// is done (close_notify, then FIN) and reads and drops what arrives for up
// to lingerTime or lingerBytes.
const (
	lingerTime  = time.Second
	lingerBytes = 256 << 10
)

func (c *conn) lingerClose() {
	_ = c.Conn.SetWriteDeadline(time.Now().Add(lingerTime))
	_ = c.Conn.CloseWrite()
	_ = c.tcp.CloseWrite()
	_ = c.tcp.SetReadDeadline(time.Now().Add(lingerTime))
	_, _ = io.CopyN(io.Discard, c.tcp, lingerBytes)
}

// connState keeps the idle gauge and each connection's idle time, and
// hands a connection that gave its goroutine up to the poller.
func (s *Server) connState(nc net.Conn, st fasthttp.ConnState) {
	c, ok := nc.(*conn)
	if !ok {
		return
	}
	switch st {
	case fasthttp.StateIdle:
		c.idleStamp = time.Now()
		if c.idleSince.Swap(c.idleStamp.UnixNano()) == 0 {
			s.stats.idle.Add(1)
		}
	case fasthttp.StateClosed:
		if c.phase() == phaseParking {
			// Still open, and still idle.
			s.parkConn(c)
			return
		}
		c.endIdle()
	case fasthttp.StateActive, fasthttp.StateHijacked:
		c.endIdle()
	}
}

// endIdle ends the connection's idle time, if it was idle.
func (c *conn) endIdle() {
	if c.idleSince.Swap(0) != 0 {
		c.srv.stats.idle.Add(-1)
	}
}

// takeIdleStamp returns when fasthttp last called the connection idle,
// once: zero after that, so that the wait that follows reads the clock
// only if fasthttp did not just now.
func (c *conn) takeIdleStamp() time.Time {
	t := c.idleStamp
	c.idleStamp = time.Time{}
	return t
}
