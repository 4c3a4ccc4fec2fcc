package server

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/netip"
	"sync/atomic"
	"time"

	"github.com/mholt/acmez/v3"
	"github.com/valyala/fasthttp"

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
// locks; the ones Stats and Shutdown read from elsewhere are atomic.
type conn struct {
	*tls.Conn
	tcp   *net.TCPConn
	proxy *proxyConn // under the *tls.Conn when Config.ProxyProtocol is on, else nil
	srv   *Server
	ip    netip.Addr
	start time.Time

	handshaken   bool
	handshakeErr error
	readDeadline time.Time // what fasthttp asked for before the handshake

	// Deadlines are set on the socket lazily (see setRead and Write):
	// what was asked for, and what the socket holds.
	wantRead, appliedRead time.Time
	// The socket's write deadline (Unix ns, 0 for none): atomic, since a
	// handler streaming its body (SetBodyStreamWriter) may set one from
	// its own goroutine while this one writes.
	appliedWrite atomic.Int64

	// The minimum transfer rate: the read deadline fasthttp last set, the
	// bytes read since, and how far the deadline has been pushed for them.
	rateBase     time.Time
	rateBytes    int64
	rateExtended time.Duration

	// The scan of a request head for bare LF, across reads.
	scanning bool
	scanPrev byte
	scanLine int
	offered  uint16 // the highest TLS version the client offered

	unknownName bool      // StrictSNI found no certificate for the server name
	bodyLimit   bodyLimit // a streamed chunked body's bound (Config.StreamRequestBody)

	// The wait for the next request (or the first), across parks: whether
	// one is under way, and its deadline (zero for none).
	waiting bool
	waitEnd time.Time
	fd      int32 // the socket, while parked

	// idleStamp is when fasthttp last called the connection idle, for the
	// wait that follows (waitRead) to take as its start instead of reading
	// the clock again; zero once taken.
	idleStamp time.Time

	parking atomic.Bool // its goroutine gave it up: parked, or about to be

	ready     atomic.Bool  // the handshake is done
	idleSince atomic.Int64 // when the connection went idle between requests (Unix ns), or 0
	closed    atomic.Bool
	linger    atomic.Bool // an error was answered: drain what the client still sends before closing
	reset     atomic.Bool // a write timed out: close with a reset, dropping what the kernel still holds
	requests  atomic.Uint64
	bytesIn   atomic.Uint64
	bytesOut  atomic.Uint64
}

type connKey struct{}

// NetConn returns the *tls.Conn, so that tune.Inspect reaches the socket.
func (c *conn) NetConn() net.Conn { return c.Conn }

// Handshake runs the TLS handshake once, under the handshake timeout.
// fasthttp calls it before the first read; it hides the *tls.Conn's own.
func (c *conn) Handshake() error {
	if !c.handshaken {
		c.handshaken = true
		c.handshakeErr = c.handshake()
	}
	return c.handshakeErr
}

// HandshakeContext is Handshake: the handshake timeout bounds it.
func (c *conn) HandshakeContext(context.Context) error { return c.Handshake() }

func (c *conn) Read(b []byte) (int, error) {
	if err := c.Handshake(); err != nil {
		// Counted by handshake: fasthttp takes io.EOF as a client that
		// went away, and writes and logs nothing.
		return 0, io.EOF
	}
	// The read that brings a new request (the first on the connection, or
	// one while it waits between requests) starts with the request head.
	between := c.bytesIn.Load() == 0 || c.idleSince.Load() != 0
	if between {
		c.scanning, c.scanPrev, c.scanLine = true, 0, 0
	}
	var n int
	var err error
	if between && c.srv.poller != nil {
		// fasthttp's wait for the next request's first byte: a 1-byte
		// read with its buffers released (acquireByteReader), or, with
		// StreamRequestBody, where fasthttp keeps its read buffer, a
		// read into that empty buffer. Parking ends the wait either way:
		// fasthttp returns and lets the buffer go.
		if n, err = c.waitRead(b); err == errParked {
			c.parking.Store(true)
			return 0, io.EOF
		}
	} else {
		n, err = c.read(b)
	}
	if n > 0 && c.scanning && c.scanHead(b[:n]) {
		c.refuseBareLF()
		return 0, io.EOF
	}
	c.bytesIn.Add(uint64(n))
	if n > 0 && !c.rateBase.IsZero() {
		c.extendDeadline(n)
	}
	return n, err
}

// read reads under the read deadline asked for. The socket may hold an
// earlier one (setRead leaves it when a later one is asked for): when that
// fires first, the one asked for is set and the read goes on. A deadline
// that expires does not break a *tls.Conn (crypto/tls keeps only errors
// that are not Temporary, and a deadline's is), and what it read of a
// record stays in its buffer.
func (c *conn) read(b []byte) (int, error) {
	for {
		n, err := c.Conn.Read(b)
		if n > 0 || !isTimeout(err) || c.appliedRead.Equal(c.wantRead) ||
			(!c.wantRead.IsZero() && !time.Now().Before(c.wantRead)) {
			return n, err
		}
		if err := c.applyRead(c.wantRead); err != nil {
			return 0, err
		}
	}
}

// setRead asks for a read deadline. Deadlines move on every request
// (idle, header, body, rate credit), and each change of a socket's
// deadline takes the runtime's timer lock: so the socket's deadline is
// changed only if it would fire later than t. One that would fire
// earlier stays, and read sets t when it fires.
func (c *conn) setRead(t time.Time) error {
	c.wantRead = t
	if t.IsZero() || (!c.appliedRead.IsZero() && !c.appliedRead.After(t)) {
		return nil
	}
	return c.applyRead(t)
}

func (c *conn) applyRead(t time.Time) error {
	c.appliedRead = t
	return c.Conn.SetReadDeadline(t)
}

// extendDeadline applies the minimum transfer rate (Config.MinRate): each
// read deadline fasthttp sets (header, body, idle) moves 1 s later for
// every MinRate bytes received since, as Apache's mod_reqtimeout MinRate
// does. A client sending at or above the rate is never cut, whatever the
// size of its upload; one below it reaches the deadline. The deadline is
// moved at most once per second of credit, so a small request moves it
// not at all.
func (c *conn) extendDeadline(n int) {
	rate := int64(c.srv.cfg.MinRate)
	c.rateBytes += int64(n)
	ext := time.Duration(c.rateBytes/rate) * time.Second
	if ext > c.rateExtended {
		c.rateExtended = ext
		_ = c.setRead(c.rateBase.Add(ext))
	}
}

// scanHead reads the next bytes of a request head, as they arrive, up to
// its blank line, and reports whether a line ends in LF alone. fasthttp
// needs CRLFCRLF to end a head, so such a request would wait for the
// header timeout; nginx accepts it, RFC 9112 allows either, fastserve
// refuses it at once. A head already buffered behind a pipelined request
// is not read here (checkRawHeaders still sees its header lines).
func (c *conn) scanHead(b []byte) bool {
	for _, ch := range b {
		if ch == '\n' {
			if c.scanPrev != '\r' {
				return true
			}
			if c.scanLine == 1 { // "\r\n" alone: the head is over
				c.scanning = false
				return false
			}
			c.scanLine = 0
		} else {
			c.scanLine++
		}
		c.scanPrev = ch
	}
	return false
}

const bareLFResponse = "HTTP/1.1 400 Bad Request\r\n" +
	"Content-Type: text/plain; charset=utf-8\r\n" +
	"Connection: close\r\n" +
	"Content-Length: 38\r\n" +
	"\r\n" +
	"Bad Request: line ends in LF, not CRLF"

// refuseBareLF answers a bare-LF request head with a 400 (fasthttp is
// then told the client went away) and counts it.
func (c *conn) refuseBareLF() {
	s := c.srv
	s.stats.rejected.headerSyntax.Add(1)
	s.stats.requests.Add(1)
	s.stats.responses[4].Add(1)
	_ = c.Conn.SetWriteDeadline(time.Now().Add(s.cfg.WriteTimeout))
	_, _ = io.WriteString(c.Conn, bareLFResponse)
	c.linger.Store(true)
	s.logRefusal("request refused", "status", 400, "reason", "header_syntax", "detail", "bare LF", "remote", c.RemoteAddr())
}

func (c *conn) Write(b []byte) (int, error) {
	if err := c.Handshake(); err != nil {
		return 0, err
	}
	// The write deadline is moved only once it is an eighth of the write
	// timeout behind, not on every write: a stalled write is cut between
	// 7/8 of WriteTimeout and WriteTimeout after it began.
	wt := c.srv.cfg.WriteTimeout
	if want := time.Now().Add(wt); c.appliedWrite.Load() < want.Add(-wt/8).UnixNano() {
		if err := c.setWrite(want); err != nil {
			return 0, err
		}
	}
	n, err := c.Conn.Write(b)
	c.bytesOut.Add(uint64(n))
	if err != nil && isTimeout(err) {
		c.reset.Store(true)
	}
	return n, err
}

// isTimeout reports whether err is a timeout: a net.Error or fasthttp's
// ErrTimeout, which has Timeout but not Temporary.
func isTimeout(err error) bool {
	var te interface{ Timeout() bool }
	return errors.As(err, &te) && te.Timeout()
}

func (c *conn) setWrite(t time.Time) error {
	if t.IsZero() {
		c.appliedWrite.Store(0)
	} else {
		c.appliedWrite.Store(t.UnixNano())
	}
	return c.Conn.SetWriteDeadline(t)
}

// SetReadDeadline keeps fasthttp's first deadline until the handshake is
// done: the handshake has its own.
func (c *conn) SetReadDeadline(t time.Time) error {
	if !c.handshaken {
		c.readDeadline = t
		return nil
	}
	c.rateBase, c.rateBytes, c.rateExtended = t, 0, 0
	return c.setRead(t)
}

// SetWriteDeadline is a handler's (fasthttp's RequestCtx.SetWriteDeadline).
func (c *conn) SetWriteDeadline(t time.Time) error { return c.setWrite(t) }

func (c *conn) SetDeadline(t time.Time) error {
	if !c.handshaken {
		c.readDeadline = t
		return nil
	}
	c.rateBase, c.rateBytes, c.rateExtended = t, 0, 0
	if err := c.setRead(t); err != nil {
		return err
	}
	return c.setWrite(t)
}

func (c *conn) handshake() error {
	s := c.srv
	if c.proxy != nil && c.proxy.trusted {
		if err := c.readProxyHeader(); err != nil {
			return err
		}
	}
	if err := c.Conn.SetDeadline(time.Now().Add(s.cfg.HandshakeTimeout)); err != nil {
		return err
	}
	if c.proxy != nil && !c.proxy.trusted && c.proxy.sentHeader() {
		return c.refuseProxy(&s.stats.rejected.proxyUntrusted, "proxy_header_untrusted", errors.New("peer not in ProxyProtocolFrom"))
	}
	ctx := context.WithValue(context.Background(), connKey{}, c)
	if err := c.Conn.HandshakeContext(ctx); err != nil {
		s.handshakeFailed(c, err)
		return err
	}
	s.stats.handshakes.Add(1)
	if c.Conn.ConnectionState().NegotiatedProtocol == acmez.ACMETLS1Protocol {
		return io.EOF // a TLS-ALPN-01 validation ends with its handshake
	}
	c.ready.Store(true)
	rd := time.Time{}
	if !c.readDeadline.IsZero() {
		rd = time.Now().Add(s.cfg.HeaderTimeout)
	}
	c.rateBase = rd
	if err := c.applyRead(rd); err != nil {
		return err
	}
	c.wantRead = rd
	return c.setWrite(time.Time{})
}

func (c *conn) Close() error {
	if c.parking.Load() {
		// fasthttp's goroutine let go of a parked connection; connState
		// hands it to the poller.
		return nil
	}
	if !c.closed.CompareAndSwap(false, true) {
		return nil
	}
	c.srv.release(c)
	if c.reset.Load() {
		// A client that stopped reading (a slow-read attack): a graceful
		// close would leave the unsent response queued in the kernel,
		// trickling out to it for as long as it reads, as nginx's
		// reset_timedout_connection avoids.
		_ = c.tcp.SetLinger(0)
		return c.tcp.Close()
	}
	if c.linger.Load() && c.ready.Load() {
		c.lingerClose()
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

// handshakeFailed counts a failed handshake by its reason, and answers a
// plain-HTTP request with a 400 that says to use HTTPS.
func (s *Server) handshakeFailed(c *conn, err error) {
	hs := &s.stats.handshakeFailures
	var te interface{ Timeout() bool } // net.Error, or fasthttp's ErrTimeout
	var op *net.OpError
	switch {
	case plaintextHTTP(err):
		hs.plaintext.Add(1)
		answerPlaintext(c.tcp)
	case errors.As(err, &te) && te.Timeout():
		hs.timeout.Add(1)
	case c.unknownName:
		hs.unknownName.Add(1)
	case c.offered != 0 && c.offered < s.cfg.TLS.MinVersion:
		hs.version.Add(1)
	case errors.As(err, &op) && op.Op == "remote error":
		// The client sent an alert: it refused our certificate or our
		// parameters.
		hs.peerRejected.Add(1)
	case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, net.ErrClosed):
		hs.closed.Add(1)
	default:
		hs.other.Add(1)
	}
}

// answerPlaintext writes the 400, then reads and drops what the client
// sent for up to a second before the connection is closed, so that the
// close does not reset the connection before the client has read the
// answer.
func answerPlaintext(tc *net.TCPConn) {
	_ = tc.SetDeadline(time.Now().Add(time.Second))
	if _, err := io.WriteString(tc, plaintextResponse); err != nil {
		return
	}
	_ = tc.CloseWrite()
	_, _ = io.CopyN(io.Discard, tc, 64<<10)
}

// connState keeps the idle gauge and each connection's idle time.
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
		if c.parking.Load() {
			// Still open, and still idle.
			s.parkConn(c)
			return
		}
		if c.idleSince.Swap(0) != 0 {
			s.stats.idle.Add(-1)
		}
	case fasthttp.StateActive, fasthttp.StateHijacked:
		if c.idleSince.Swap(0) != 0 {
			s.stats.idle.Add(-1)
		}
	}
}
