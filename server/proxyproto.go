package server

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pires/go-proxyproto"
)

// PROXY protocol (Config.ProxyProtocol): a load balancer that ends TCP,
// not TLS, writes a header with the client's address before the client's
// first byte. The header is read at the start of the connection's
// handshake, on fasthttp's worker goroutine and under
// ProxyProtocolTimeout, never in the accept loop, so that a slow peer
// stalls only its own connection. go-proxyproto parses it; its Conn type
// is not used: it would add a second wrapper with its own deadlines and
// buffer under the *tls.Conn, where proxyConn keeps the socket reachable
// for tune.Inspect and lends a pooled buffer only while the header is read.

// headerBufferSize is the buffer a header is read into: a whole v1 line
// (107 bytes at most) fits, and a v2 header of any length is read through
// it. Bytes that arrive with the header (the start of the ClientHello) wait
// in it for TLS's first read; then it goes back to the pool, so that an
// established connection holds none.
const headerBufferSize = 256

var headerReaders = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, headerBufferSize) }}

// v1MaxLine is the longest v1 header line, CRLF included.
const v1MaxLine = 107

// proxyConn is the TCP connection under TLS when PROXY protocol is on: it
// hands TLS the bytes buffered after the header before reading the
// socket again, and reports the header's client address as RemoteAddr.
type proxyConn struct {
	*net.TCPConn
	trusted bool                        // the peer is in ProxyProtocolFrom: it must send a header
	br      *bufio.Reader               // from the header's read until TLS has what was buffered after it
	client  atomic.Pointer[net.TCPAddr] // from the header; nil keeps the socket's
}

func (p *proxyConn) Read(b []byte) (int, error) {
	if p.br == nil {
		return p.TCPConn.Read(b)
	}
	if p.br.Buffered() == 0 {
		p.release()
		return p.TCPConn.Read(b)
	}
	n, _ := p.br.Read(b) // only what is buffered: no error
	if p.br.Buffered() == 0 {
		p.release()
	}
	return n, nil
}

// RemoteAddr is the client's address from the PROXY header, or the
// socket's peer without one.
func (p *proxyConn) RemoteAddr() net.Addr {
	if a := p.client.Load(); a != nil {
		return a
	}
	return p.TCPConn.RemoteAddr()
}

// NetConn returns the socket, so that tune.Inspect reaches it.
func (p *proxyConn) NetConn() net.Conn { return p.TCPConn }

// release puts the header buffer back in the pool.
func (p *proxyConn) release() {
	if p.br != nil {
		p.br.Reset(nil)
		headerReaders.Put(p.br)
		p.br = nil
	}
}

// buffer lends the connection a header buffer over its socket.
func (p *proxyConn) buffer() *bufio.Reader {
	p.br = headerReaders.Get().(*bufio.Reader)
	p.br.Reset(p.TCPConn)
	return p.br
}

// trustsProxy reports whether tc's peer is a balancer that must send a
// PROXY header: one in ProxyProtocolFrom, or any when it is empty.
func (s *Server) trustsProxy(tc *net.TCPConn) bool {
	if len(s.cfg.ProxyProtocolFrom) == 0 {
		return true
	}
	ip := tc.RemoteAddr().(*net.TCPAddr).AddrPort().Addr().Unmap()
	for _, p := range s.cfg.ProxyProtocolFrom {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// readProxyHeader reads a trusted peer's PROXY header under
// ProxyProtocolTimeout, takes the client's address from it and counts
// that address against MaxConnsPerIP. It refuses the connection (a reset,
// nothing written) if the header is missing, malformed or late.
func (c *conn) readProxyHeader() error {
	s, p := c.srv, c.proxy
	rej := &s.stats.rejected
	if err := p.SetReadDeadline(time.Now().Add(s.cfg.ProxyProtocolTimeout)); err != nil {
		return err
	}
	br := p.buffer()
	if _, err := br.Peek(1); err != nil {
		if isTimeout(err) {
			return c.refuseProxy(&rej.proxyTimeout, "proxy_header_timeout", err)
		}
		// Closed before its first byte, as a balancer's plain TCP health
		// check does: not a refusal.
		p.release()
		s.handshakeFailed(c, err)
		return err
	}
	h, err := readHeader(br)
	switch {
	case err == nil:
	case errors.Is(err, proxyproto.ErrNoProxyProtocol):
		return c.refuseProxy(&rej.proxyMissing, "proxy_header_missing", err)
	case isTimeout(err):
		return c.refuseProxy(&rej.proxyTimeout, "proxy_header_timeout", err)
	default:
		return c.refuseProxy(&rej.proxyInvalid, "proxy_header_invalid", err)
	}

	// LOCAL (v2) and UNKNOWN (v1) are the balancer's own connections,
	// such as health checks: they keep the socket's address, as do
	// addresses that are not TCP.
	client := p.TCPConn.RemoteAddr().(*net.TCPAddr)
	if src, _, ok := h.TCPAddrs(); ok && h.Command.IsProxy() {
		if ap := src.AddrPort(); ap.Addr().IsValid() {
			client = net.TCPAddrFromAddrPort(netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()))
			p.client.Store(client)
		}
	}
	if s.cfg.MaxConnsPerIP > 0 {
		ip := client.AddrPort().Addr().Unmap()
		if !s.countIP(ip) {
			p.release()
			rej.maxConnsPerIP.Add(1)
			c.reset.Store(true)
			return errors.New("server: MaxConnsPerIP reached")
		}
		c.ip = ip
	}
	if br.Buffered() == 0 {
		p.release()
	}
	return nil
}

// readHeader reads a PROXY header from br, leaving the bytes after it
// there.
func readHeader(br *bufio.Reader) (*proxyproto.Header, error) {
	b, err := br.Peek(1)
	if err != nil {
		return nil, err
	}
	if b[0] == proxyproto.SIGV1[0] {
		if err := fillV1Line(br); err != nil {
			return nil, err
		}
	}
	return proxyproto.Read(br)
}

// fillV1Line reads until the buffer holds a v1 header's whole line, up to
// its LF or v1MaxLine bytes, however many segments it came in.
// go-proxyproto's parser refuses a v1 line that is not whole in its buffer
// (its guard against a peer that dribbles its header); here the header
// timeout is the guard, and a header split across TCP segments is served,
// as the protocol's specification recommends.
func fillV1Line(br *bufio.Reader) error {
	for n := 1; n <= v1MaxLine; n++ {
		b, err := br.Peek(n) // reads only when fewer than n bytes are buffered
		if err != nil {
			return err
		}
		if b[n-1] == '\n' {
			return nil
		}
	}
	return nil // too long: the parser says so
}

// sentHeader reports whether the peer, which is not trusted, begins with a
// PROXY signature. It reads under the handshake's deadline, as the
// handshake would; an error is left for the handshake to meet.
func (p *proxyConn) sentHeader() bool {
	br := p.buffer()
	b, err := br.Peek(1)
	if err != nil {
		return false
	}
	var sig []byte
	switch b[0] {
	case proxyproto.SIGV1[0]:
		sig = proxyproto.SIGV1
	case proxyproto.SIGV2[0]:
		sig = proxyproto.SIGV2
	default:
		return false
	}
	b, err = br.Peek(len(sig))
	return err == nil && bytes.Equal(b, sig)
}

// refuseProxy counts a connection refused for its PROXY header in n, logs
// it (at most a few lines a second) and has it reset when it closes.
func (c *conn) refuseProxy(n *atomic.Uint64, reason string, err error) error {
	c.proxy.release()
	n.Add(1)
	c.reset.Store(true)
	c.srv.logRefusal("connection refused", "reason", reason, "peer", c.tcp.RemoteAddr(), "err", err)
	return fmt.Errorf("server: PROXY protocol header: %s: %w", reason, err)
}
