package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/fastserve/fastserve/certs"
	"github.com/fastserve/fastserve/proxyproto"
)

// handshake is what a connection knows of its TLS handshake, and of the
// PROXY protocol header before it.
type handshake struct {
	err         error  // the handshake's outcome, once it ran
	offered     uint16 // the highest TLS version the client offered
	unknownName bool   // StrictSNI found no certificate for the server name
	certSent    bool   // a certificate was given for the handshake
	serverName  string // the server name (SNI) the client asked for
}

// connKey finds the conn of a handshake in its context, for the
// callbacks of crypto/tls below.
type connKey struct{}

// Handshake runs the TLS handshake once, under the handshake timeout.
// fasthttp calls it before the first read; it hides the *tls.Conn's own.
func (c *conn) Handshake() error {
	switch c.phase() {
	case phaseNew:
		c.hs.err = c.handshake()
		to := phaseServing
		if c.hs.err != nil {
			to = phaseFailed
		}
		if !c.move(phaseNew, to) && c.hs.err == nil {
			c.hs.err = net.ErrClosed // closed during the handshake
		}
	case phaseClosed:
		if c.hs.err == nil {
			return net.ErrClosed // closed before its handshake ran
		}
	}
	return c.hs.err
}

// HandshakeContext is Handshake: the handshake timeout bounds it.
func (c *conn) HandshakeContext(context.Context) error { return c.Handshake() }

func (c *conn) handshake() error {
	s := c.srv
	if c.proxy != nil && c.proxy.Trusted() {
		if err := c.readProxyHeader(); err != nil {
			return err
		}
	}
	if err := c.Conn.SetDeadline(time.Now().Add(s.cfg.HandshakeTimeout)); err != nil {
		return err
	}
	if c.proxy != nil && !c.proxy.Trusted() {
		if err := c.proxy.RefuseUntrusted(); err != nil {
			return c.refuseProxy(err)
		}
	}
	ctx := context.WithValue(context.Background(), connKey{}, c)
	if err := c.Conn.HandshakeContext(ctx); err != nil {
		s.handshakeFailed(c, err)
		return err
	}
	s.stats.handshakes.Add(1)
	if c.Conn.ConnectionState().NegotiatedProtocol == certs.ACMETLSProtocol {
		return io.EOF // a TLS-ALPN-01 validation ends with its handshake
	}
	return c.afterHandshake()
}

// readProxyHeader reads a trusted peer's PROXY header under
// ProxyProtocolTimeout and counts the client's address it gives against
// MaxConnsPerIP. A refused header resets the connection.
func (c *conn) readProxyHeader() error {
	s := c.srv
	if err := c.proxy.ReadHeader(s.cfg.ProxyProtocolTimeout); err != nil {
		if _, refused := proxyReason(err); refused {
			return c.refuseProxy(err)
		}
		// Closed before its first byte, as a balancer's plain TCP health
		// check does: not a refusal.
		s.handshakeFailed(c, err)
		return err
	}
	if s.cfg.MaxConnsPerIP > 0 {
		ip, ok := s.countIP(c.proxy.RemoteAddr().(*net.TCPAddr).AddrPort().Addr().Unmap())
		if !ok {
			s.stats.reject(RejectMaxConnsPerIP)
			c.closeWith(closeReset)
			return errors.New("server: MaxConnsPerIP reached")
		}
		c.ip = ip
	}
	return nil
}

// proxyReason maps a refusal of package proxyproto to its Reason.
func proxyReason(err error) (Reason, bool) {
	switch {
	case errors.Is(err, proxyproto.ErrMissing):
		return RejectProxyHeaderMissing, true
	case errors.Is(err, proxyproto.ErrInvalid):
		return RejectProxyHeaderInvalid, true
	case errors.Is(err, proxyproto.ErrUntrusted):
		return RejectProxyHeaderUntrusted, true
	case errors.Is(err, proxyproto.ErrTimeout):
		return RejectProxyHeaderTimeout, true
	}
	return 0, false
}

// refuseProxy counts a connection refused for its PROXY header, logs it
// (at most a few lines a second) and has it reset when it closes.
func (c *conn) refuseProxy(err error) error {
	r, _ := proxyReason(err)
	c.srv.stats.reject(r)
	c.closeWith(closeReset)
	c.srv.logRefusal("connection refused", "reason", r.String(), "peer", c.tcp.RemoteAddr().String(), "err", err)
	return fmt.Errorf("server: %s: %w", r, err)
}

// ServerName is the client's SNI, kept from its handshake: no copy made.
func (c *conn) ServerName() string { return c.hs.serverName }

// watchHello records the highest TLS version the client offered, so that
// a failed handshake can be counted by reason. It is the tls.Config's
// GetConfigForClient, and changes nothing.
func watchHello(hello *tls.ClientHelloInfo) (*tls.Config, error) {
	if c, ok := hello.Context().Value(connKey{}).(*conn); ok {
		c.hs.offered, c.hs.serverName = maxVersion(hello.SupportedVersions), hello.ServerName
	}
	return nil, nil
}

func maxVersion(vs []uint16) uint16 {
	var m uint16
	for _, v := range vs {
		if v > m && v < 0x0400 { // ignore GREASE values
			m = v
		}
	}
	return m
}

// noteCertificate records whether a certificate answers the handshake's
// server name (if none does, crypto/tls sends the unrecognized_name
// alert), so that a failure can be counted by reason.
func noteCertificate(hello *tls.ClientHelloInfo, sent bool) {
	if c, ok := hello.Context().Value(connKey{}).(*conn); ok {
		c.hs.certSent, c.hs.unknownName = sent, !sent
	}
}

// handshakeFailed counts a failed handshake by its reason, and answers a
// plain-HTTP request with a 400 that says to use HTTPS.
func (s *Server) handshakeFailed(c *conn, err error) {
	var te interface{ Timeout() bool } // net.Error, or fasthttp's ErrTimeout
	var op *net.OpError
	f := FailOther
	switch {
	case plaintextHTTP(err):
		f = FailPlaintext
	case errors.As(err, &te) && te.Timeout():
		f = FailTimeout
	case c.hs.unknownName:
		f = FailUnknownName
	case c.hs.offered != 0 && c.hs.offered < s.cfg.TLS.MinVersion:
		f = FailVersion
	case errors.As(err, &op) && (op.Op == "remote error" || op.Op == "local error" && c.hs.certSent):
		// The client sent an alert: it refused our certificate or our
		// parameters. A TLS 1.3 client built on OpenSSL (curl) sends its
		// alert in a record crypto/tls cannot read, once it has the
		// certificate: a local error (bad record MAC) then.
		f = FailPeerRejected
	case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, net.ErrClosed):
		f = FailClosed
	}
	s.stats.handshakeFailures[f].Add(1)
	if f == FailPlaintext {
		answerPlaintext(c.tcp)
	}
}

// plaintextHTTP reports whether a failed handshake began like an HTTP/1
// request, as net/http tells it.
func plaintextHTTP(err error) bool {
	var re tls.RecordHeaderError
	if !errors.As(err, &re) || re.Conn == nil {
		return false
	}
	switch string(re.RecordHeader[:]) {
	case "GET /", "HEAD ", "POST ", "PUT /", "OPTIO", "DELET", "PATCH", "CONNE", "TRACE":
		return true
	}
	return false
}

const plaintextResponse = "HTTP/1.1 400 Bad Request\r\n" +
	"Content-Type: text/plain; charset=utf-8\r\n" +
	"Connection: close\r\n" +
	"Content-Length: 48\r\n" +
	"\r\n" +
	"Client sent an HTTP request to an HTTPS server.\n"

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
