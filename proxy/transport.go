package proxy

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/fastserve/fastserve/tune"
)

// The round trip to an upstream is the proxy's own, on the HostClient's
// pool of connections (AcquireConn, ReleaseConn), rather than
// HostClient.Do: holding the connection, the proxy knows which one its
// request waits on, and gives up on it when the request's client leaves
// (Config.ClientGone), which HostClient.Do, taking no context, cannot.

// clientCheck is how often a request waiting on its upstream looks
// whether its client is gone: a wait shorter than this costs nothing.
const clientCheck = 250 * time.Millisecond

// errClientGone ends a request whose client closed its connection while
// it waited for the upstream: not the upstream's fault.
var errClientGone = errors.New("proxy: the client closed its connection")

// smallBody is the size up to which an answer's body with a
// Content-Length is read whole before it is passed on, so that its
// connection goes back to the pool at once; a larger one, or one without
// a length, streams.
const smallBody = 16 << 10

// readBuffer is the least size of the buffer an answer is read into: a
// head and a body read whole (smallBody) come in one read, where a buffer
// of MaxResponseHeaderBytes (4 KiB) took two for a 4 KiB body.
const readBuffer = smallBody + 4<<10

// errUnasked101 is a 101 Switching Protocols to a request that asked for
// no upgrade: a protocol error (502), and the connection goes.
var errUnasked101 = errors.New("proxy: 101 Switching Protocols to a request that asked for no upgrade")

// errNoUpgrade is a 101 that names no protocol, or one the request did
// not ask for: a protocol error (502), and the connection goes.
var errNoUpgrade = errors.New("proxy: 101 Switching Protocols to no protocol the request asked for")

var (
	errHeadTooLarge     = errors.New("proxy: an upstream's answer has a head past its bound (Config.MaxResponseHeaderBytes, fastserve's --proxy-max-header-bytes)")
	errBadChunk         = errors.New("proxy: a chunked answer whose first chunk size is not hexadecimal")
	errBadStatus        = errors.New("proxy: an answer with a status outside 100-599")
	errLengthAndChunked = errors.New("proxy: an answer with both Content-Length and Transfer-Encoding")
)

// peekHead returns the answer's head, up to its blank line, from br,
// reading as much as it needs, without consuming it; a head longer than
// limit bytes is refused (br is larger: it also takes a small answer's
// body in the read that brings its head).
func peekHead(br *bufio.Reader, limit int) ([]byte, error) {
	from := 0
	for n := max(br.Buffered(), 1); ; n = br.Buffered() + 1 {
		_, err := br.Peek(min(n, br.Size())) // reads until n bytes are buffered
		b, _ := br.Peek(br.Buffered())
		end := -1
		if i := bytes.Index(b[from:], []byte("\r\n\r\n")); i >= 0 {
			end = from + i + 4
		} else if i := bytes.Index(b[from:], []byte("\n\n")); i >= 0 {
			end = from + i + 2 // bare LFs: fasthttp's parser decides
		}
		switch {
		case end > limit || (end < 0 && len(b) >= limit):
			return nil, errHeadTooLarge
		case end >= 0:
			return b[:end], nil
		case err != nil:
			return nil, err
		}
		from = max(len(b)-3, 0)
	}
}

// firstChunkValid reports whether the chunked body in br does not begin
// with a malformed chunk-size line, as far as br holds it: the stream
// would fail at its first read, after the head was sent to the client,
// who would get a closed connection instead of a 502. A line not read yet
// is not waited for (a stream's first chunk may come much later).
func firstChunkValid(br *bufio.Reader) bool {
	b, _ := br.Peek(br.Buffered())
	line, _, ok := bytes.Cut(b, []byte{'\n'})
	if !ok {
		return true
	}
	size, _, _ := bytes.Cut(bytes.TrimSuffix(line, []byte{'\r'}), []byte{';'})
	size = bytes.TrimRight(size, " \t")
	if len(size) == 0 || len(size) > 16 {
		return false
	}
	for _, c := range size {
		if !('0' <= c && c <= '9' || 'a' <= c|0x20 && c|0x20 <= 'f') {
			return false
		}
	}
	return true
}

// validStatus reports whether head's status line has a status from 100
// to 599: "HTTP/1.x NNN".
func validStatus(head []byte) bool {
	_, rest, ok := bytes.Cut(head, []byte{' '})
	if !ok || len(rest) < 3 || (len(rest) > 3 && rest[3] != ' ' && rest[3] != '\r' && rest[3] != '\n') {
		return false
	}
	for _, c := range rest[:3] {
		if c < '0' || c > '9' {
			return false
		}
	}
	return rest[0] >= '1' && rest[0] <= '5'
}

// hasContentLength reports whether head has a Content-Length line.
func hasContentLength(head []byte) bool {
	const name = "content-length:"
	for rest := head; len(rest) > 0; {
		var line []byte
		line, rest, _ = bytes.Cut(rest, []byte{'\n'})
		if len(line) >= len(name) && (line[0]|0x20) == 'c' && bytes.EqualFold(line[:len(name)], []byte(name)) {
			return true
		}
	}
	return false
}

// maxInterim bounds the 1xx answers read before the final one.
const maxInterim = 8

// peerClosed is ClientGone's default: the kernel's TCP state of the
// client's connection (tune.PeerClosed). A connection closed on this side
// (a server's Shutdown ran out of time) is gone too.
func peerClosed(ctx *fasthttp.RequestCtx) bool {
	gone, err := tune.PeerClosed(ctx.Conn())
	return gone || errors.Is(err, net.ErrClosed)
}

// roundTrip sends req to u, on a connection of u's pool, and reads the
// answer into resp: the head, and the body whole if it is small, else a
// stream of it that gives the connection back once read. While it waits,
// the connection watches ctx's client (watchedRead).
//
// With hold, req asks for an upgrade: it goes on a connection of its own,
// which never returns to the pool; a 101 leaves it open, in hold.
func (p *Proxy) roundTrip(ctx *fasthttp.RequestCtx, u *upstream, req *fasthttp.Request, resp *fasthttp.Response, hold *held) error {
	hc := u.hc
	if hold != nil {
		hc = u.upgrades
	}
	resp.Reset()
	cc, err := hc.AcquireConn(0, req.ConnectionClose())
	for tries := 0; err == nil && tries < maxStale && timedOf(cc.Conn()).stale(); tries++ {
		hc.CloseConn(cc)
		cc, err = hc.AcquireConn(0, req.ConnectionClose())
	}
	if err != nil {
		return err
	}
	conn := cc.Conn()
	tc := timedOf(conn)
	tc.watch(ctx, p.cfg.ClientGone)
	fail := func(err error) error {
		gone := tc.gone
		tc.unwatch()
		hc.CloseConn(cc)
		if gone {
			return errClientGone
		}
		if err == io.EOF {
			return fasthttp.ErrConnectionClosed
		}
		return err
	}

	bw := hc.AcquireWriter(conn)
	err = req.Write(bw)
	if err == nil {
		err = bw.Flush()
	}
	hc.ReleaseWriter(bw)
	if err != nil {
		return fail(err)
	}

	// The upstream has yet to answer: a read now would most often find
	// nothing (a system call for EAGAIN, then a wait in the netpoller).
	// Other goroutines run first; by then the answer has mostly come.
	runtime.Gosched()
	resp.Header.DisableNormalizing()
	resp.Header.SetNoDefaultContentType(true) // an answer without one goes without one
	resp.SkipBody = req.Header.IsHead()
	br := hc.AcquireReader(conn)
	if err := readHead(&resp.Header, br, p.cfg.MaxResponseHeaderBytes, hold != nil); err != nil {
		hc.ReleaseReader(br)
		return fail(err)
	}
	st, size := resp.Header.StatusCode(), resp.Header.ContentLength()
	if st == fasthttp.StatusSwitchingProtocols {
		if !switchedAsAsked(req.Header.Peek(fasthttp.HeaderUpgrade), resp.Header.Peek(fasthttp.HeaderUpgrade)) {
			hc.ReleaseReader(br)
			return fail(errNoUpgrade)
		}
		tc.unwatch()
		*hold = held{hc: hc, closeConn: func() { hc.CloseConn(cc) }, br: br, tc: tc}
		return nil
	}
	// Another answer to an upgrade leaves its connection as any answer
	// does: reused when it ended where its framing said, so that
	// requests that ask for upgrades cost no new connection each.
	closeConn := req.ConnectionClose() || resp.ConnectionClose()
	switch {
	case resp.SkipBody || st < 200 || st == fasthttp.StatusNoContent || st == fasthttp.StatusNotModified || size == 0:
	case size > 0 && size <= smallBody:
		if err := resp.ReadBody(br, 0); err != nil {
			hc.ReleaseReader(br)
			return fail(err)
		}
	case size == -1 && !firstChunkValid(br):
		hc.ReleaseReader(br)
		return fail(errBadChunk)
	default:
		// The body streams from a response of its own, whose stream
		// gives the connection back when closed: resp's own body stream
		// cannot be wrapped once set.
		b := bodyPool.Get().(*upstreamBody)
		b.from.StreamBody = true
		b.from.Header.SetContentLength(size)
		_ = b.from.ReadBody(br, 0) // only sets the stream up
		b.r, b.conn = b.from.BodyStream(), tc
		b.release = func(discard bool) {
			// Bytes past the body's end belong to no answer: the
			// connection is out of step, and goes.
			extra := br.Buffered() > 0
			hc.ReleaseReader(br)
			if discard || closeConn || extra || size == -2 { // -2: the body ends with the connection
				hc.CloseConn(cc)
			} else {
				tc.reused = true
				hc.ReleaseConn(cc)
			}
		}
		resp.SetBodyStream(b, size)
		// The head goes at once, not when the server's write buffer
		// (16 KiB) has filled with a slow upstream's body.
		resp.ImmediateHeaderFlush = true
		return nil
	}
	tc.unwatch()
	closeConn = closeConn || br.Buffered() > 0 // bytes past the answer: out of step
	hc.ReleaseReader(br)
	if closeConn {
		hc.CloseConn(cc)
	} else {
		tc.reused = true
		hc.ReleaseConn(cc)
	}
	return nil
}

// maxStale bounds the pooled connections a request closes as out of step
// before it takes whatever AcquireConn gives.
const maxStale = 4

// stale reports whether a connection back from the pool has bytes or an
// EOF waiting: sent after the answer it carried last (a body to a HEAD,
// 204 or 304, bytes past a Content-Length), they would be read as the
// next request's answer, another client's, as nginx guards against by
// closing a pooled connection that turns readable. A connection never
// used is not looked at: a TLS 1.3 upstream's session tickets wait there
// until the first answer is read.
func (c *timedConn) stale() bool {
	if !c.reused {
		return false
	}
	if c.sock == nil {
		s, err := tune.SocketOf(c.Conn)
		if err != nil {
			return true
		}
		c.sock = s
	}
	unread, err := c.sock.Unread()
	return unread || (err != nil && !errors.Is(err, errors.ErrUnsupported))
}

// readHead reads an answer's head, of at most limit bytes, into h, past
// any 1xx interim answers but 101, which ends the head of an answer to an
// upgrade.
//
// It refuses what fasthttp would take but nginx refuses, as a front proxy
// must not pass on an answer its upstream may have framed otherwise: a
// status outside 100-599 (fasthttp reads "000" as 200), and
// Content-Length with Transfer-Encoding (fasthttp takes the chunks,
// silently; RFC 9112 section 6.1 lets a proxy do so only if it closes
// the connection, and nginx 1.23 and later refuse).
func readHead(h *fasthttp.ResponseHeader, br *bufio.Reader, limit int, upgrade bool) error {
	for range maxInterim {
		head, err := peekHead(br, limit)
		if err != nil {
			return err
		}
		if !validStatus(head) {
			return errBadStatus
		}
		if err := h.Read(br); err != nil {
			return err
		}
		// A chunked head whose Content-Length fasthttp dropped: the bytes
		// h.Read took are still those head looks at (nothing was read
		// into br since).
		if h.ContentLength() == -1 && hasContentLength(head) {
			return errLengthAndChunked
		}
		if st := h.StatusCode(); st == fasthttp.StatusSwitchingProtocols {
			if upgrade {
				return nil
			}
			// Upgrade is hop-by-hop: a 101 relayed to a request that did
			// not ask would make a front proxy tunnel what follows.
			return errUnasked101
		} else if st >= 200 {
			return nil
		}
	}
	return errors.New("proxy: too many 1xx answers")
}

// upstreamBody is an answer's body streaming from its upstream
// connection to the client; closing it gives the connection back to the
// pool if the body was read to its end, and closes it otherwise. The
// server reads and closes it from one goroutine; Abort may close the
// socket under a Read from another.
type upstreamBody struct {
	from      fasthttp.Response // whose body stream r is
	r         io.Reader
	conn      *timedConn
	release   func(discard bool)
	slot      clientSlot // the client's share it holds (clientSlots), or none
	fullyRead bool
	mu        sync.Mutex
	closed    atomic.Bool
}

var bodyPool = sync.Pool{New: func() any { return &upstreamBody{} }}

func (b *upstreamBody) Read(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed.Load() {
		return 0, io.ErrClosedPipe
	}
	n, err := b.r.Read(p)
	if err == io.EOF {
		b.fullyRead = true
	}
	return n, err
}

// CloseWithError is how fasthttp closes a response's body stream, with
// the error that stopped the write to the client, if any.
func (b *upstreamBody) CloseWithError(err error) error {
	if b.closed.Swap(true) {
		return nil
	}
	locked := b.mu.TryLock()
	discard := err != nil || !locked || !b.fullyRead
	if discard {
		b.conn.cut() // also ends a Read in progress
	}
	if !locked {
		b.mu.Lock()
	}
	b.conn.unwatch()
	_ = b.from.CloseBodyStream()
	b.release(discard)
	b.slot.release()
	b.from.Reset()
	b.r, b.conn, b.release, b.fullyRead = nil, nil, nil, false
	b.mu.Unlock()
	b.closed.Store(false)
	bodyPool.Put(b)
	return nil
}

// timedOf is the timedConn under a connection the upstream's dial made.
func timedOf(c net.Conn) *timedConn {
	if t, ok := c.(*timedTLSConn); ok {
		return &t.timedConn
	}
	return c.(*timedConn)
}

// watch makes the connection's reads look for ctx's client gone, with
// gone, until unwatch; a nil gone watches nothing.
func (c *timedConn) watch(ctx *fasthttp.RequestCtx, gone func(*fasthttp.RequestCtx) bool) {
	if gone != nil {
		c.client, c.clientGone = ctx, gone
	}
}

func (c *timedConn) unwatch() {
	c.client, c.clientGone, c.gone = nil, nil, false
}

// watchedRead is Read while a request's client is watched: the socket's
// deadline is never more than clientCheck ahead, and each time it passes
// with nothing read, the client is looked at. A client gone cuts the
// connection (the upstream sees the request cancelled) and fails the
// read; nothing read for ReadTimeout fails it as Read does.
func (c *timedConn) watchedRead(b []byte) (int, error) {
	end := time.Now().Add(c.read)
	for {
		now := time.Now()
		d := now.Add(clientCheck)
		if d.After(end) {
			d = end
		}
		if c.readAt.Before(now) || c.readAt.After(d) {
			if err := c.Conn.SetReadDeadline(d); err != nil {
				return 0, err
			}
			c.readAt = d
		}
		n, err := c.Conn.Read(b)
		if n > 0 || !errors.Is(err, os.ErrDeadlineExceeded) || !time.Now().Before(end) {
			return n, err
		}
		if c.clientGone(c.client) {
			c.gone = true
			c.cut()
			return 0, errClientGone
		}
	}
}
