package proxy

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"
)

// Upgrades (RFC 9110 section 7.8; WebSocket, RFC 6455 section 4): a
// request that asks to switch protocols goes upstream with its Upgrade
// and Connection headers, on a connection of its own (never one of the
// pool's, since it will not come back). A 101 answer is relayed, and the
// client's and the upstream's connections become a tunnel whose bytes
// the proxy copies both ways until either side closes, or nothing moves
// either way for UpgradeIdleTimeout. Any other answer is relayed as an
// answer, and its connection closed.

// upgradeAsked returns the protocol a request asks to switch to (its
// Upgrade header, with "upgrade" among its Connection tokens), or nil:
// also for a request with a body, which would have to be sent before the
// switch, and for h2c, HTTP/2 over cleartext, which has no meaning over
// the client's TLS and which HTTP/2 itself no longer defines; and for
// an HTTP/1.0 request, whose Upgrade a server must ignore (RFC 9110
// section 7.8).
func upgradeAsked(h *fasthttp.RequestHeader) []byte {
	up := withoutH2C(h.Peek(fasthttp.HeaderUpgrade))
	if len(up) == 0 || !h.IsHTTP11() {
		return nil
	}
	if n := h.ContentLength(); n > 0 || n == -1 {
		return nil
	}
	for _, v := range h.PeekAll(fasthttp.HeaderConnection) {
		for rest := v; len(rest) > 0; {
			var tok []byte
			tok, rest, _ = bytes.Cut(rest, []byte{','})
			if bytes.EqualFold(bytes.TrimSpace(tok), []byte("upgrade")) {
				return up
			}
		}
	}
	return nil
}

// withoutH2C returns the protocols of an Upgrade value but h2c: up
// itself if it names none.
func withoutH2C(up []byte) []byte {
	h2c := false
	for i := 0; i+3 <= len(up) && !h2c; i++ {
		h2c = up[i]|0x20 == 'h' && up[i+1] == '2' && up[i+2]|0x20 == 'c'
	}
	if !h2c {
		return up
	}
	var out []byte
	for rest := up; len(rest) > 0; {
		var tok []byte
		tok, rest, _ = bytes.Cut(rest, []byte{','})
		if tok = bytes.TrimSpace(tok); len(tok) == 0 || bytes.EqualFold(tok, []byte("h2c")) {
			continue
		}
		if len(out) > 0 {
			out = append(out, ", "...)
		}
		out = append(out, tok...)
	}
	return out
}

// switchedAsAsked reports whether got, a 101's Upgrade, names protocols,
// each of them one of asked, the request's (RFC 9110 section 7.8: a
// server switches only to a protocol the client asked for).
func switchedAsAsked(asked, got []byte) bool {
	if len(bytes.TrimSpace(got)) == 0 {
		return false
	}
	for rest := got; len(rest) > 0; {
		var g []byte
		g, rest, _ = bytes.Cut(rest, []byte{','})
		found := false
		for more := asked; len(more) > 0 && !found; {
			var a []byte
			a, more, _ = bytes.Cut(more, []byte{','})
			found = bytes.EqualFold(bytes.TrimSpace(a), bytes.TrimSpace(g))
		}
		if !found {
			return false
		}
	}
	return true
}

// held is an upstream connection that answered 101: roundTrip leaves it
// open, with its reader, for the tunnel.
type held struct {
	hc        *fasthttp.HostClient
	closeConn func() // the pool's CloseConn of it
	br        *bufio.Reader
	tc        *timedConn
}

// release closes the held connection.
func (h *held) release() {
	h.hc.ReleaseReader(h.br)
	h.closeConn()
}

// hijackWait bounds the wait for the server to hand a 101's client
// connection over: past it, or once the client is gone (awaitHijack),
// the upstream connection is closed.
const hijackWait = 30 * time.Second

// Tunnels are the upgraded connections of one or more proxies: a server
// gives every proxy it makes the same Tunnels (Config.Tunnels), so that
// GoAway reaches them all, those of proxies a reload replaced included.
// The zero value is ready to use.
type Tunnels struct {
	mu     sync.Mutex
	open   map[*tunnel]struct{}
	counts map[tunnelKey]int64 // open, by the labels and upstream they are counted under
}

// tunnelKey is what a tunnel is counted under: its proxy's
// Config.Labels and its upstream's URL, so that a proxy that replaces
// another (a reload) reports the tunnels the other opened.
type tunnelKey struct{ labels, url string }

// count is the number of tunnels open under labels to url.
func (ts *Tunnels) count(labels, url string) int64 {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	return ts.counts[tunnelKey{labels, url}]
}

// Conns describes the upstream connections of the open tunnels, with
// their sockets read back from the kernel, as Proxy.Conns does.
func (ts *Tunnels) Conns() []UpstreamConn {
	ts.mu.Lock()
	open := make([]*timedConn, 0, len(ts.open))
	for t := range ts.open {
		open = append(open, t.up.tc)
	}
	ts.mu.Unlock()
	return describeConns(open)
}

// Abort closes every open tunnel at once, for a shutdown that must not
// wait (see Proxy.Abort).
func (ts *Tunnels) Abort() {
	ts.mu.Lock()
	open := make([]*tunnel, 0, len(ts.open))
	for t := range ts.open {
		open = append(open, t)
	}
	ts.mu.Unlock()
	for _, t := range open {
		t.close()
	}
}

// Open is the number of tunnels open.
func (ts *Tunnels) Open() int {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	return len(ts.open)
}

func (ts *Tunnels) add(t *tunnel) {
	ts.mu.Lock()
	if ts.open == nil {
		ts.open, ts.counts = map[*tunnel]struct{}{}, map[tunnelKey]int64{}
	}
	ts.open[t] = struct{}{}
	ts.counts[t.key]++
	ts.mu.Unlock()
}

func (ts *Tunnels) remove(t *tunnel) {
	ts.mu.Lock()
	if _, ok := ts.open[t]; ok {
		delete(ts.open, t)
		if ts.counts[t.key]--; ts.counts[t.key] <= 0 {
			delete(ts.counts, t.key)
		}
	}
	ts.mu.Unlock()
}

// GoAway ends every open tunnel, for a server whose drain ran out of
// time. A WebSocket tunnel gets a close frame with status 1001 (going
// away) each way, put between two frames, so that its client reconnects
// at once, cleanly, and its application sees the close it would see from
// a browser leaving; the peers then have up to grace to close. Other
// tunnels, and what is still open after grace, are closed.
func (ts *Tunnels) GoAway(grace time.Duration) {
	ts.mu.Lock()
	open := make([]*tunnel, 0, len(ts.open))
	for t := range ts.open {
		open = append(open, t)
	}
	ts.mu.Unlock()
	var wg sync.WaitGroup
	for _, t := range open {
		wg.Go(func() {
			timer := time.AfterFunc(grace, t.close)
			defer timer.Stop()
			if t.websocket {
				t.leaving.Store(true)
				t.toClient.goAway()
				t.toUpstream.goAway()
				<-t.done
			} else {
				t.close()
			}
		})
	}
	wg.Wait()
}

// A tunnel is a client connection and an upstream connection after a
// 101, and the two copies between them.
type tunnel struct {
	u         *upstream
	key       tunnelKey  // what Tunnels counts it under
	slot      clientSlot // its client's share (Config.MaxConnsPerClient): an upstream connection held, or none
	up        held
	client    net.Conn // the server's connection, under fasthttp's hijacked one
	websocket bool
	idle      time.Duration
	halfOpen  time.Duration // the wait for the upstream to end once the client has (ReadTimeout)
	last      atomic.Int64  // when a byte last moved, either way (Unix ns)
	endBy     atomic.Int64  // when a half-closed tunnel ends at the latest (Unix ns), or 0
	state     atomic.Int32  // tunnelWaiting, tunnelRunning or tunnelAbandoned
	waiting   sync.Mutex    // held to look at the client while waiting, and to leave tunnelWaiting

	toClient, toUpstream side
	leaving              atomic.Bool // GoAway ends it
	closeOnce            sync.Once
	done                 chan struct{} // closed once both copies ended
}

const (
	tunnelWaiting = iota
	tunnelRunning
	tunnelAbandoned
)

// side is one direction of a tunnel: where its bytes go, and, for
// WebSocket, where its frames begin (so that GoAway can put a close frame
// between two).
type side struct {
	mu     sync.Mutex
	dst    net.Conn
	frames frames
	bye    []byte      // the close frame GoAway sends this way
	away   atomic.Bool // GoAway asked for the close frame
	sent   bool        // it went, or the tunnel ended: nothing more goes this way
	said   atomic.Bool // it went
}

// upgrade relays the upstream's 101, already in ctx.Response, and hands
// the client's connection to a tunnel once the server has let it go.
func (p *Proxy) upgrade(ctx *fasthttp.RequestCtx, u *upstream, h held, proto []byte, slot clientSlot) {
	t := &tunnel{u: u, key: tunnelKey{p.cfg.Labels, u.url}, up: h, slot: slot, idle: p.cfg.UpgradeIdleTimeout, halfOpen: p.cfg.ReadTimeout, done: make(chan struct{})}
	t.websocket = bytes.EqualFold(bytes.TrimSpace(proto), []byte("websocket"))
	rh := &ctx.Response.Header
	rh.Set(fasthttp.HeaderConnection, "Upgrade")
	rh.SetBytesV(fasthttp.HeaderUpgrade, proto)
	// The answer goes from the hijack, so that it goes whatever the
	// server would do with a connection after an answer (close it, in a
	// drain): the tunnel owns the connection from the 101 on.
	ctx.HijackSetNoResponse(true)
	keeps := p.cfg.KeepsHijacked
	ctx.Hijack(func(c net.Conn) {
		t.waiting.Lock()
		ok := t.state.CompareAndSwap(tunnelWaiting, tunnelRunning)
		t.waiting.Unlock()
		if ok {
			t.run(ctx, c, keeps)
		} else if keeps {
			c.Close() // the server keeps it: nobody else will
		}
	})
	go t.awaitHijack(ctx, p.cfg.ClientGone)
}

// awaitHijack closes the upstream connection if the server does not
// hand the client's connection over: fasthttp gives the hijack up when
// the connection fails before it (flushing an answer held back for a
// pipelined request, to a client that reset it), and the upstream's
// connection, switched, would wait for nothing, past the server's limits
// on the client's. It looks at the client every clientCheck, as a request
// waiting on its upstream does (gone), for up to hijackWait. ctx stays
// valid while the tunnel waits: fasthttp releases it after the hijack
// handler, which waits for a look in progress.
func (t *tunnel) awaitHijack(ctx *fasthttp.RequestCtx, gone func(*fasthttp.RequestCtx) bool) {
	tick := time.NewTicker(clientCheck)
	defer tick.Stop()
	end := time.Now().Add(hijackWait)
	for range tick.C {
		t.waiting.Lock()
		abandon := t.state.Load() == tunnelWaiting &&
			(!time.Now().Before(end) || (gone != nil && gone(ctx)))
		if abandon {
			t.state.Store(tunnelAbandoned)
		}
		waiting := t.state.Load() == tunnelWaiting
		t.waiting.Unlock()
		if abandon {
			t.up.release()
			t.slot.release()
		}
		if !waiting {
			return
		}
	}
}

// run writes the 101 to the client, sends on what came with it either
// way, and copies bytes both ways until either side closes or the tunnel
// idles out. With keeps (Config.KeepsHijacked) the copies go on in
// goroutines of their own, and run returns once the 101 is sent: the
// server then lets the request's context and its read buffer go while
// the tunnel lasts. Else run returns when the tunnel ends, and fasthttp
// closes c and pools it: nothing is written to c (GoAway's close frames
// included) once run has returned; writes go to the connection itself.
func (t *tunnel) run(ctx *fasthttp.RequestCtx, c net.Conn, keeps bool) {
	t.client = c
	if uc, ok := c.(interface{ UnsafeConn() net.Conn }); ok {
		t.client = uc.UnsafeConn() // closing fasthttp's hijacked connection may do nothing
	}
	t.toClient.dst, t.toUpstream.dst = t.client, t.up.tc
	if t.websocket {
		t.toClient.bye = []byte{0x88, 0x02, 0x03, 0xe9} // close, 1001, unmasked: a server's
		t.toUpstream.bye = maskedGoingAway()
	}
	t.up.tc.tunnel.Store(true)
	t.touch()
	// The 101 and what the upstream sent after it go before anything
	// else this way, a close frame of GoAway's included.
	t.toClient.mu.Lock()
	t.u.tunnels.add(t)
	t.u.stats.tunnelsTotal.Add(1)
	// fasthttp marked the answer close if the request said so: the
	// connection goes on, as a tunnel.
	ctx.Response.Header.ResetConnectionClose()
	ok := t.toClient.writeLocked(ctx.Response.Header.Header())
	if ok {
		if n := t.up.br.Buffered(); n > 0 {
			b, _ := t.up.br.Peek(n)
			ok = t.toClient.writeFramesLocked(t, b)
		}
	}
	t.toClient.mu.Unlock()
	t.up.hc.ReleaseReader(t.up.br)
	t.up.br = nil
	if !ok || !t.early(c) {
		t.finish()
		return
	}
	if keeps {
		go t.relay()
		return
	}
	t.relay()
}

// early sends the upstream what the client sent after its request,
// before the 101 (a client that did not wait for it): fasthttp's reader
// holds it, under c. It reads c until a read would wait, so that the
// copies read the connection itself; false if the client is gone.
func (t *tunnel) early(c net.Conn) bool {
	if t.client == c {
		return true
	}
	if t.client.SetReadDeadline(time.Now()) != nil {
		return false
	}
	var b [smallRead]byte
	for {
		n, err := c.Read(b[:])
		if n > 0 && !t.toUpstream.write(t, b[:n]) {
			return false
		}
		if err != nil {
			return isTimeout(err)
		}
	}
}

// relay copies both ways until the tunnel ends, then finishes it.
func (t *tunnel) relay() {
	defer t.finish()
	upDone := make(chan struct{})
	go func() {
		t.copy(&t.toClient, t.up.tc.Conn, t.up.tc.Conn)
		if t.leaving.Load() {
			// GoAway's close frames went, or go: the upstream is done.
			// The client gets to read its close frame, answer and
			// close (below), or GoAway's grace ends it: closing it now,
			// its bytes unread, would reset the connection, and the
			// reset can take the close frame with it.
			t.toUpstream.end()
			t.up.tc.cut()
		} else {
			t.close()
		}
		close(upDone)
	}()
	switch ended := t.copy(&t.toUpstream, t.client, t.client); {
	case t.leaving.Load():
		// The client is done (it closed, or answered GoAway's close
		// frame); the upstream gets to do the same, as above.
		t.toClient.end()
		t.client.Close()
	case ended:
		// The client is done sending: the upstream is told so (a
		// half-close, as nginx passes it on), and what it still sends
		// goes to the client until it ends too, for up to halfOpen (a
		// client gone whose upstream does not close would hold its
		// connection's place for the idle timeout).
		end := time.Now().Add(t.halfOpen)
		t.endBy.Store(end.UnixNano())
		t.toUpstream.closeWrite(t.up.tc.Conn)
		_ = t.up.tc.Conn.SetReadDeadline(end)
	default:
		t.close()
	}
	<-upDone
}

// finish ends the tunnel: both connections close, GoAway writes nothing
// more to either, and the tunnel is no longer counted.
func (t *tunnel) finish() {
	t.close()
	t.toClient.end()
	t.toUpstream.end()
	t.up.closeConn()
	t.slot.release()
	t.u.tunnels.remove(t)
	close(t.done) // last: GoAway returns once its tunnels are gone
}

// close closes both connections: the copies end.
func (t *tunnel) close() {
	t.closeOnce.Do(func() {
		if t.client != nil {
			t.client.Close()
		}
		t.up.tc.cut()
	})
}

func (t *tunnel) touch() { t.last.Store(time.Now().UnixNano()) }

// Reads use small buffers while a tunnel idles, and large ones while its
// bytes flow: a read that fills its buffer is followed by one into a
// pooled large buffer, which goes back after the first read it does not
// fill. An idle tunnel holds two small buffers; a busy one moves data in
// large writes (a TLS record each, 16 KiB).
const (
	smallRead = 1 << 10
	largeRead = 16 << 10
)

var largeReads = sync.Pool{New: func() any { b := make([]byte, largeRead); return &b }}

// copy copies from r (whose connection is src) to s.dst until r ends,
// fails, or neither way moved a byte for the idle timeout. It reports
// whether r ended (io.EOF: its peer is done sending).
func (t *tunnel) copy(s *side, r interface{ Read([]byte) (int, error) }, src net.Conn) (ended bool) {
	var small [smallRead]byte
	var large *[]byte
	defer func() {
		if large != nil {
			largeReads.Put(large)
		}
	}()
	buf := small[:]
	deadline := time.Now().Add(t.idle)
	if src.SetReadDeadline(deadline) != nil {
		return
	}
	for {
		n, err := r.Read(buf)
		if n > 0 {
			t.touch()
			if !s.write(t, buf[:n]) {
				return
			}
			switch {
			case n == len(buf) && large == nil:
				large = largeReads.Get().(*[]byte)
				buf = *large
			case n < len(buf) && large != nil:
				largeReads.Put(large)
				large, buf = nil, small[:]
			}
		}
		if err == nil {
			continue
		}
		if !isTimeout(err) {
			return errors.Is(err, io.EOF)
		}
		// Past the deadline: the tunnel is idle if the other way was
		// too; else the deadline moves to idle after its last byte (or
		// to the end of a half-close's wait, if sooner).
		if !t.moveDeadline(src) {
			return false
		}
	}
}

// moveDeadline sets src's read deadline to idle after the last byte
// either way, or to the end of a half-close's wait if that is sooner, and
// reports false if that is already past.
func (t *tunnel) moveDeadline(src net.Conn) bool {
	for {
		next := time.Unix(0, t.last.Load()).Add(t.idle)
		end := t.endBy.Load()
		if end != 0 && end < next.UnixNano() {
			next = time.Unix(0, end)
		}
		if !time.Now().Before(next) || src.SetReadDeadline(next) != nil {
			return false
		}
		if t.endBy.Load() == end {
			return true
		}
	}
}

// write sends b this way, unless GoAway's close frame went; for
// WebSocket, it follows the frames, and sends a close frame GoAway asked
// for as soon as a frame ends. It reports whether the copy goes on.
func (s *side) write(t *tunnel, b []byte) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.writeFramesLocked(t, b)
}

func (s *side) writeFramesLocked(t *tunnel, b []byte) bool {
	if s.sent {
		// Dropped: the peer was told the connection goes.
		if t.websocket {
			s.frames.advance(b)
		}
		return !s.answered(t)
	}
	if t.websocket && s.away.Load() {
		// The close frame goes as soon as a frame ends, in b if one
		// does: a peer that streams may never pause between two.
		if k := s.frames.through(b); k >= 0 {
			if k > 0 && !s.writeLocked(b[:k]) {
				return false
			}
			s.sendBye()
			s.frames.advance(b[k:]) // dropped, but followed
			return !s.answered(t)
		}
		return s.writeLocked(b)
	}
	if !s.writeLocked(b) {
		return false
	}
	if t.websocket {
		s.frames.advance(b)
	}
	return !s.answered(t)
}

// answered reports whether s, the client's way, carried the client's
// close frame after GoAway's reached it: the client sends nothing more,
// and its connection can close without a reset.
func (s *side) answered(t *tunnel) bool {
	return s == &t.toUpstream && s.frames.closed && t.toClient.told()
}

func (s *side) writeLocked(b []byte) bool {
	_, err := s.dst.Write(b)
	return err == nil
}

// end marks the side done with: GoAway, which may come to a tunnel that
// ended after it listed it, writes nothing more.
func (s *side) end() {
	s.mu.Lock()
	s.sent = true
	s.mu.Unlock()
}

// goAway sends the close frame this way now if no frame is half sent,
// else once the frame ends (write).
func (s *side) goAway() {
	s.away.Store(true)
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.sent && s.frames.between() {
		s.sendBye()
	}
}

// closeWrite shuts c, this way's connection, down for writing (TCP FIN,
// or TLS close_notify): nothing more goes this way.
func (s *side) closeWrite(c net.Conn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sent = true
	if cw, ok := c.(interface{ CloseWrite() error }); ok {
		_ = cw.CloseWrite()
	}
}

// told reports whether GoAway's close frame went this way.
func (s *side) told() bool { return s.said.Load() }

func (s *side) sendBye() {
	s.sent = true
	s.said.Store(true)
	if s.bye != nil {
		_, _ = s.dst.Write(s.bye)
	}
}

// maskedGoingAway is a close frame with status 1001 as a client sends it:
// masked, with a key of its own (RFC 6455 section 5.3).
func maskedGoingAway() []byte {
	f := []byte{0x88, 0x82, 0, 0, 0, 0, 0x03, 0xe9}
	_, _ = rand.Read(f[2:6])
	f[6] ^= f[2]
	f[7] ^= f[3]
	return f
}

// frames follows the WebSocket frames (RFC 6455 section 5.2) in the bytes
// sent one way, so that a frame of the proxy's can go between two.
type frames struct {
	step uint8  // one of the steps below
	n    int    // bytes of the extended length or mask key still to come
	mask bool   // the frame is masked
	left uint64 // its length, then the payload bytes still to come
	op   byte   // its opcode

	closed bool // a close frame went by
}

const (
	stepBetween  = iota // before a frame's first byte
	stepLength          // before its second byte (mask bit, length)
	stepExtended        // in its extended length
	stepMask            // in its mask key
	stepPayload         // in its payload
)

func (f *frames) between() bool { return f.step == stepBetween }

// end ends a frame.
func (f *frames) end() {
	f.step = stepBetween
	if f.op == opClose {
		f.closed = true
	}
}

const opClose = 0x8

// advance follows b, the next bytes sent.
func (f *frames) advance(b []byte) {
	for len(b) > 0 {
		b = b[f.step1(b):]
	}
}

// through follows b up to the end of the first frame that ends in it,
// and returns how many bytes of b that is (0 between two frames); or, if
// no frame ends in b, it follows all of b and returns -1.
func (f *frames) through(b []byte) int {
	if f.between() {
		return 0
	}
	for n := 0; n < len(b); {
		n += f.step1(b[n:])
		if f.between() {
			return n
		}
	}
	return -1
}

// step1 follows the start of b, len(b) > 0, as far as one step goes, and
// returns how many bytes that took.
func (f *frames) step1(b []byte) int {
	switch f.step {
	case stepBetween:
		f.step, f.op = stepLength, b[0]&0x0f
		return 1
	case stepLength:
		f.mask, f.left = b[0]&0x80 != 0, uint64(b[0]&0x7f)
		switch f.left {
		case 126:
			f.step, f.n, f.left = stepExtended, 2, 0
		case 127:
			f.step, f.n, f.left = stepExtended, 8, 0
		default:
			f.lengthDone()
		}
		return 1
	case stepExtended:
		f.left, f.n = f.left<<8|uint64(b[0]), f.n-1
		if f.n == 0 {
			f.lengthDone()
		}
		return 1
	case stepMask:
		k := min(f.n, len(b))
		f.n -= k
		if f.n == 0 {
			f.payload()
		}
		return k
	default: // stepPayload
		k := min(uint64(len(b)), f.left)
		f.left -= k
		if f.left == 0 {
			f.end()
		}
		return int(k)
	}
}

func (f *frames) lengthDone() {
	if f.mask {
		f.step, f.n = stepMask, 4
		return
	}
	f.payload()
}

func (f *frames) payload() {
	if f.left == 0 {
		f.end()
	} else {
		f.step = stepPayload
	}
}

// isTimeout reports whether err is a deadline's.
func isTimeout(err error) bool {
	var te interface{ Timeout() bool }
	return errors.As(err, &te) && te.Timeout()
}
