package proxyproto

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

	pp "github.com/pires/go-proxyproto"
)

// Why a header was refused. A refusal from Conn.ReadHeader or
// Conn.RefuseUntrusted wraps one of these, with the parser's error.
var (
	// ErrMissing: a peer that Policy trusts sent something else first.
	ErrMissing = errors.New("proxyproto: no PROXY protocol header")
	// ErrInvalid: a malformed header, or one cut short by the peer's close.
	ErrInvalid = errors.New("proxyproto: malformed PROXY protocol header")
	// ErrUntrusted: a header from a peer that Policy does not trust.
	ErrUntrusted = errors.New("proxyproto: PROXY protocol header from an untrusted peer")
	// ErrTimeout: the header was not whole within the time given.
	ErrTimeout = errors.New("proxyproto: PROXY protocol header not received in time")
)

// Policy says which peers are load balancers that must send a header.
type Policy struct {
	// From are the balancers' networks. If empty, every peer must send a
	// header.
	From []netip.Prefix
}

// Trusts reports whether a peer at ip must send a header.
func (p Policy) Trusts(ip netip.Addr) bool {
	if len(p.From) == 0 {
		return true
	}
	ip = ip.Unmap()
	for _, n := range p.From {
		if n.Contains(ip) {
			return true
		}
	}
	return false
}

// headerBufferSize is the buffer a header is read into: a whole v1 line
// (107 bytes at most) fits, and a v2 header of any length is read through
// it. Bytes that arrive with the header (the start of the ClientHello)
// wait in it for TLS's first read; then it goes back to the pool, so that
// an established connection holds none.
const headerBufferSize = 256

var headerReaders = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, headerBufferSize) }}

// v1MaxLine is the longest v1 header line, CRLF included.
const v1MaxLine = 107

// Conn is a TCP connection that may begin with a PROXY protocol header,
// meant to go under TLS: once ReadHeader has read the header, Read hands
// on the bytes buffered after it before reading the socket again, and
// RemoteAddr is the client's address from the header.
type Conn struct {
	*net.TCPConn
	trusted bool                        // the peer must send a header
	br      *bufio.Reader               // from the header's read until what was buffered after it is read
	client  atomic.Pointer[net.TCPAddr] // from the header; nil keeps the socket's
}

// NewConn wraps an accepted connection; trusted is the Policy's verdict
// on its peer.
func NewConn(tc *net.TCPConn, trusted bool) *Conn {
	return &Conn{TCPConn: tc, trusted: trusted}
}

// Trusted reports whether the peer must send a header.
func (c *Conn) Trusted() bool { return c.trusted }

func (c *Conn) Read(b []byte) (int, error) {
	if c.br == nil {
		return c.TCPConn.Read(b)
	}
	if c.br.Buffered() == 0 {
		c.Release()
		return c.TCPConn.Read(b)
	}
	n, _ := c.br.Read(b) // only what is buffered: no error
	if c.br.Buffered() == 0 {
		c.Release()
	}
	return n, nil
}

// RemoteAddr is the client's address from the header, or the socket's
// peer without one.
func (c *Conn) RemoteAddr() net.Addr {
	if a := c.client.Load(); a != nil {
		return a
	}
	return c.TCPConn.RemoteAddr()
}

// Client is the client's address from the header, or nil when there was
// none, or it named no TCP client (LOCAL, UNKNOWN).
func (c *Conn) Client() *net.TCPAddr { return c.client.Load() }

// NetConn returns the socket, so that tune.Inspect reaches it.
func (c *Conn) NetConn() net.Conn { return c.TCPConn }

// Release puts the header buffer back in the pool; call it when the
// connection ends before its buffered bytes were read.
func (c *Conn) Release() {
	if c.br != nil {
		c.br.Reset(nil)
		headerReaders.Put(c.br)
		c.br = nil
	}
}

// buffer lends the connection a header buffer over its socket.
func (c *Conn) buffer() *bufio.Reader {
	if c.br == nil {
		c.br = headerReaders.Get().(*bufio.Reader)
		c.br.Reset(c.TCPConn)
	}
	return c.br
}

// ReadHeader reads a trusted peer's header within timeout and takes the
// client's address from it (LOCAL and UNKNOWN headers, a balancer's own
// checks, keep the socket's). A refusal wraps ErrMissing, ErrInvalid or
// ErrTimeout. A peer that closes before its first byte, as a balancer's
// plain TCP check does, is no refusal: the error is io.EOF (or the
// socket's), for the caller to count as a closed connection.
func (c *Conn) ReadHeader(timeout time.Duration) error {
	if err := c.TCPConn.SetReadDeadline(time.Now().Add(timeout)); err != nil {
		return err
	}
	br := c.buffer()
	if _, err := br.Peek(1); err != nil {
		if isTimeout(err) {
			return c.refused(ErrTimeout, err)
		}
		c.Release()
		return err
	}
	h, err := readHeader(br)
	switch {
	case err == nil:
	case errors.Is(err, pp.ErrNoProxyProtocol):
		return c.refused(ErrMissing, err)
	case isTimeout(err):
		return c.refused(ErrTimeout, err)
	default:
		return c.refused(ErrInvalid, err)
	}
	if src, _, ok := h.TCPAddrs(); ok && h.Command.IsProxy() {
		if ap := src.AddrPort(); ap.Addr().IsValid() {
			c.client.Store(net.TCPAddrFromAddrPort(netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())))
		}
	}
	if br.Buffered() == 0 {
		c.Release()
	}
	return nil
}

// RefuseUntrusted reports, for a peer that Policy does not trust, an
// error wrapping ErrUntrusted if it begins with a PROXY signature: such a
// client would choose the address it is logged and limited by. It reads
// under the deadline the socket has; an error of its own (a timeout, a
// close) is left for the next read to meet, and reported as nil here.
func (c *Conn) RefuseUntrusted() error {
	br := c.buffer()
	b, err := br.Peek(1)
	if err != nil {
		return nil
	}
	var sig []byte
	switch b[0] {
	case pp.SIGV1[0]:
		sig = pp.SIGV1
	case pp.SIGV2[0]:
		sig = pp.SIGV2
	default:
		return nil
	}
	if b, err = br.Peek(len(sig)); err == nil && bytes.Equal(b, sig) {
		return c.refused(ErrUntrusted, errors.New("the peer is not in the trusted networks"))
	}
	return nil
}

func (c *Conn) refused(kind, cause error) error {
	c.Release()
	return fmt.Errorf("%w: %w", kind, cause)
}

// readHeader reads a PROXY header from br, leaving the bytes after it
// there.
func readHeader(br *bufio.Reader) (*pp.Header, error) {
	b, err := br.Peek(1)
	if err != nil {
		return nil, err
	}
	if b[0] == pp.SIGV1[0] {
		if err := fillV1Line(br); err != nil {
			return nil, err
		}
	}
	return pp.Read(br)
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

// isTimeout reports whether err is a deadline's.
func isTimeout(err error) bool {
	var te interface{ Timeout() bool }
	return errors.As(err, &te) && te.Timeout()
}
