package proxy

import (
	"bytes"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/fastserve/fastserve/internal/headerlines"
	"github.com/fastserve/fastserve/internal/httpsyntax"
	"github.com/fastserve/fastserve/internal/reqinfo"
)

// proxyScratch is what one proxied request needs beyond the request sent
// upstream: pooled, so that a request allocates nothing.
type proxyScratch struct {
	buf    []byte     // the request's header bytes, Connection's tokens, names to delete (stripRequest)
	fwd    []byte     // the forwarding headers' values being built
	body   []byte     // a request body read whole, or its first BufferBodyBytes
	stream clientBody // a request body streamed, or being spooled to file
	file   bodyFile   // a request body past BufferBodyBytes, spooled
}

// clientBody is a request body streamed from the client, which keeps the
// error of a read that failed: the client's fault, not the upstream's.
type clientBody struct {
	r   io.Reader
	err error
}

func (b *clientBody) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	if err != nil && err != io.EOF {
		b.err = err
	}
	return n, err
}

var scratchPool = sync.Pool{New: func() any { return &proxyScratch{} }}

// serve proxies one request to an upstream of r, and retries it once on
// another when that is safe (see retryable).
func (p *Proxy) serve(ctx *fasthttp.RequestCtx, r *proxyRoute) {
	req := fasthttp.AcquireRequest()
	sc := scratchPool.Get().(*proxyScratch)
	defer func() {
		fasthttp.ReleaseRequest(req)
		sc.stream = clientBody{}
		sc.file.close()
		scratchPool.Put(sc)
	}()
	streamed, err := p.prepare(ctx, req, sc)
	if se, ok := errors.AsType[*spoolError](err); ok {
		p.errLog.Log(p.log, slog.LevelError, "request body not buffered", "request body not buffered", "dir", p.cfg.BodyTempDir, "err", se.err)
		ctx.Error("Internal Server Error\n", fasthttp.StatusInternalServerError)
		// The rest of the body is read and dropped (the server bounds it),
		// so that the client reads the answer rather than a reset; the
		// part spooled gives its space back first, not after the drain.
		sc.file.close()
		if _, err := io.Copy(io.Discard, ctx.RequestBodyStream()); err != nil {
			ctx.SetConnectionClose()
		}
		return
	} else if err != nil {
		clientBodyFailed(ctx, err)
		return
	}
	var slot clientSlot
	if p.clients != nil {
		var ok bool
		if slot, ok = p.clients.acquire(ctx); !ok {
			ctx.Error("Service Unavailable: too many requests of this client at once\n", fasthttp.StatusServiceUnavailable)
			ctx.Response.Header.Set(fasthttp.HeaderRetryAfter, "1")
			return
		}
	}
	// The slot goes back when the request is done with its upstream: at
	// once, or when an answer's streamed body ends.
	defer func() { slot.release() }()
	if r.strip || len(r.add) > 0 {
		// The prefix is in the path as sent (Handler checked): the rest
		// goes, as sent too, from its slash, after AddPrefix.
		path := ctx.URI().PathOriginal()
		sc.buf = append(sc.buf[:0], r.add...)
		if r.strip {
			sc.buf = append(sc.buf, '/')
			sc.buf = append(sc.buf, bytes.TrimPrefix(path[len(r.prefix):], []byte{'/'})...)
		} else {
			sc.buf = append(sc.buf, path...)
		}
		uri := req.URI()
		uri.DisablePathNormalizing = true // the path as sent, not cleaned (nginx's proxy_pass without a URI)
		uri.SetPathBytes(sc.buf)
	}
	var hold *held
	proto := upgradeAsked(&ctx.Request.Header)
	if proto != nil {
		req.Header.Set(fasthttp.HeaderConnection, "Upgrade")
		req.Header.SetBytesV(fasthttp.HeaderUpgrade, proto)
		hold = &held{}
	}
	u := r.pick(ctx, nil)
	for attempt := 1; ; attempt++ {
		if attempt > 1 && sc.file.f != nil {
			sc.file.rewind(req)
		}
		p.target(ctx, req, u)
		start := time.Now()
		u.inflight.Add(1)
		err = p.roundTrip(ctx, u, req, &ctx.Response, hold)
		took := time.Since(start) // to the response head: its body streams after
		u.inflight.Add(-1)
		u.stats.requests.Add(1)
		reqinfo.AddUpstream(ctx, u.addr, took) // for the access log
		if err == nil {
			if u.fails.Load() != 0 {
				u.fails.Store(0)
			}
			u.stats.latency.observe(took)
			if ctx.Response.StatusCode() >= 500 {
				u.stats.errors[errStatus5xx].Add(1)
			}
			if hold != nil && hold.tc != nil {
				// The protocol the upstream switched to, before answer
				// drops the header (hop-by-hop).
				proto = append([]byte(nil), ctx.Response.Header.Peek(fasthttp.HeaderUpgrade)...)
			}
			if ub, ok := ctx.Response.BodyStream().(*upstreamBody); ok {
				ub.slot, slot = slot, clientSlot{}
			}
			p.answer(ctx, sc)
			if hold != nil && hold.tc != nil {
				p.upgrade(ctx, u, *hold, proto, slot) // a tunnel holds its upstream connection, and its client's share
				slot = clientSlot{}
			}
			return
		}
		if sc.stream.err != nil {
			clientBodyFailed(ctx, sc.stream.err)
			return
		}
		if err == errClientGone {
			// nginx's 499, for the access log: nobody reads the answer.
			ctx.Response.Reset()
			ctx.SetStatusCode(statusClientClosed)
			ctx.SetConnectionClose()
			return
		}
		kind := classify(err)
		u.stats.errors[kind].Add(1)
		if kind.connect() {
			p.setDown(u, true, err)
		} else if n := p.cfg.MaxFails; kind != errBusy && n > 0 && int(u.fails.Add(1)) >= n {
			p.setDown(u, true, err) // passive health: MaxFails failures in a row
		}
		p.logError(u, kind, attempt, err)
		if attempt == 1 && retryable(kind, &ctx.Request.Header, streamed) {
			if next := r.pick(ctx, u); next != nil {
				u = next
				continue
			}
			if kind == errReset && !u.down.Load() {
				continue // a new connection to the only upstream
			}
		}
		p.fail(ctx, u, kind)
		return
	}
}

// prepare builds the request to send upstream from the client's: the
// headers but the hop-by-hop ones, the forwarding headers, and the body,
// read whole (bufferBody) or, with StreamRequestBodies, streamed. It
// reports whether the body streams (then the request cannot be sent
// twice).
func (p *Proxy) prepare(ctx *fasthttp.RequestCtx, req *fasthttp.Request, sc *proxyScratch) (streamed bool, err error) {
	ctx.Request.Header.CopyTo(&req.Header)
	h := &req.Header
	// The hop-by-hop lines go before the version changes: headerlines
	// reads the header anew to keep the order of the lines left, and
	// fasthttp refuses to read an HTTP/1.1 head without Host (an HTTP/1.0
	// client may send none), falling back to a Del that swaps lines.
	has, buf, raw := stripRequest(h, sc.buf[:0])
	sc.buf = buf
	h.SetProtocol("HTTP/1.1")       // keep-alive to the upstream, whatever the client speaks
	h.ResetConnectionClose()        // an HTTP/1.0 head read anew closes by default
	h.SetNoDefaultContentType(true) // a request without one goes without one
	p.forwarded(ctx, h, has, raw, sc)

	switch size := ctx.Request.Header.ContentLength(); {
	case !ctx.Request.IsBodyStream():
		req.SetBodyRaw(ctx.Request.Body())
	case size >= 0 && size <= p.cfg.BufferBodyBytes:
		if cap(sc.body) < size {
			sc.body = make([]byte, size)
		}
		if _, err := io.ReadFull(ctx.RequestBodyStream(), sc.body[:size]); err != nil {
			return false, err
		}
		req.SetBodyRaw(sc.body[:size])
	case !p.cfg.StreamRequestBodies:
		if err := p.bufferBody(ctx.RequestBodyStream(), req, sc, size); err != nil {
			return false, err
		}
	default:
		sc.stream = clientBody{r: ctx.RequestBodyStream()}
		req.SetBodyStream(&sc.stream, h.ContentLength())
		streamed = true
	}
	req.UseHostHeader = true
	// The request line goes as the client sent it (its path not
	// cleaned), unparsed, when it is what routing matched: origin form.
	// Otherwise it goes as fasthttp makes it from the URI routing saw:
	// an absolute-form target, one with a fragment, and one starting
	// with "//", which fasthttp reads as a host and a path ("//admin/x"
	// is routed as /x, and must not reach the upstream as //admin/x).
	if t := h.RequestURI(); len(t) == 0 || t[0] != '/' || (len(t) > 1 && t[1] == '/') || bytes.IndexByte(t, '#') >= 0 {
		req.URI().DisablePathNormalizing = true
	}
	return streamed, nil
}

// hopByHop are the headers that concern one connection only (RFC 9110,
// section 7.6.1), with Proxy-Connection and Proxy-Authenticate, which
// clients still send; never forwarded, either way. Connection is first:
// stripRequest and stripResponse read its values.
var hopByHop = []string{
	fasthttp.HeaderConnection, "Keep-Alive", fasthttp.HeaderTE, fasthttp.HeaderTrailer,
	fasthttp.HeaderTransferEncoding, fasthttp.HeaderUpgrade, "Proxy-Connection",
	fasthttp.HeaderProxyAuthenticate, fasthttp.HeaderProxyAuthorization,
}

// forwarding are the headers forwarded replaces, and Expect, which the
// server answered already: after hopByHop in a headerSet's bits.
var forwarding = []string{
	fasthttp.HeaderXForwardedFor, fasthttp.HeaderForwarded, fasthttp.HeaderXForwardedProto, fasthttp.HeaderXForwardedHost,
	fasthttp.HeaderExpect,
}

// The bits of forwarding's headers in a headerSet.
const (
	hasXForwardedFor headerSet = 1 << (9 + iota)
	hasForwarded
	hasXForwardedProto
	hasXForwardedHost
	hasExpect

	hopByHopBits = hasXForwardedFor - 1
)

// headerSet is which of hopByHop and forwarding a header has: bit i for
// the i-th of them, in that order.
type headerSet uint32

// stripRequest and stripResponse delete the hop-by-hop headers, and the
// headers that Connection names, in any case of their names, using buf as
// scratch; stripRequest also deletes the forwarding headers (forwarded
// sets them anew), reports which of hopByHop and forwarding the header
// had, and returns its bytes as they were (in buf). One walk over the
// header finds them; headerlines deletes them, keeping the order of the
// lines left (fasthttp's Del can swap two lines of one name).
//
// A request's walk is over its header's bytes (AppendBytes), not
// RequestHeader.All, which parses the cookies, which Request.Write then
// sends re-serialised, not as the client sent them (quotes dropped, lines
// merged); a response's is over ResponseHeader.All, on the concrete type
// (through an interface, its closures allocate).
func stripRequest(h *fasthttp.RequestHeader, buf []byte) (_ headerSet, _, raw []byte) {
	raw = h.AppendBytes(buf[:0])
	s := hopScan{buf: raw, from: len(raw)}
	for k, v, rest, ok := headerlines.Next(headerlines.Of(raw)); ok; k, v, rest, ok = headerlines.Next(rest) {
		s.see(k, v)
	}
	if s.has != 0 {
		headerlines.DelRequest(h, raw, s.names(watchedNames))
	}
	return s.has, s.buf, raw
}

func stripResponse(h *fasthttp.ResponseHeader, buf []byte) []byte {
	s := hopScan{buf: buf}
	for k, v := range h.All() {
		s.see(k, v)
	}
	if s.has&hopByHopBits != 0 {
		headerlines.DelResponse(h, s.names(hopByHopNames))
	}
	return s.buf
}

// hopScan is stripRequest's and stripResponse's state: buf holds, from
// from, Connection's values, each followed by a comma, up to tokens, then
// the names to delete (names).
type hopScan struct {
	has          headerSet
	buf          []byte
	from, tokens int
}

// see looks at a header line.
func (s *hopScan) see(k, v []byte) {
	if i := watchedNames.Index(k); i >= 0 {
		s.has |= 1 << i
		if i == 0 { // Connection
			s.buf = append(append(s.buf, v...), ',')
		}
	}
}

// names is always, then the headers Connection names but those that
// frame the message or route it (framing), the first maxConnectionTokens
// of them: looking a header's lines up in them costs their product, and
// a client's Connection names a handful (nginx and HAProxy delete none).
func (s *hopScan) names(always headerlines.Names) headerlines.Names {
	s.tokens = len(s.buf)
	s.buf = append(s.buf, always...)
	names, n := headerlines.Names(s.buf[s.tokens:]), 0
	for rest := s.buf[s.from:s.tokens]; len(rest) > 0 && n < maxConnectionTokens; {
		var tok []byte
		tok, rest, _ = bytes.Cut(rest, []byte{','})
		if tok = bytes.TrimSpace(tok); len(tok) > 0 && !framing(tok) {
			names = names.Add(tok)
			n++
		}
	}
	s.buf = append(s.buf[:s.tokens], names...) // names grew in place, or moved
	return s.buf[s.tokens:]
}

// maxConnectionTokens bounds the headers a message's Connection names
// that are deleted.
const maxConnectionTokens = 16

// hopByHopNames and watchedNames are hopByHop, and hopByHop then
// forwarding, as headerlines.Names: a name's place in watchedNames is its
// bit in a headerSet.
var hopByHopNames, watchedNames = func() (hop, all headerlines.Names) {
	for _, name := range hopByHop {
		hop = hop.Add([]byte(name))
	}
	all = append(all, hop...)
	for _, name := range forwarding {
		all = all.Add([]byte(name))
	}
	return hop, all
}()

// framing reports whether a header named in Connection is one that frames
// the message or routes it (Content-Length, Host): a peer cannot make the
// proxy drop those, and with them the body (RFC 9110 7.6.1 lists the
// headers Connection may name as hop-by-hop options; these are not).
func framing(name []byte) bool {
	return httpsyntax.EqualFoldASCII(name, fasthttp.HeaderContentLength) ||
		httpsyntax.EqualFoldASCII(name, fasthttp.HeaderHost)
}

// forwarded sets X-Forwarded-For (appended to), X-Forwarded-Proto,
// X-Forwarded-Host and Forwarded (RFC 7239, appended to), the client's
// own lines of them gone (stripRequest, which also deleted Expect); has
// says which of them the client sent.
func (p *Proxy) forwarded(ctx *fasthttp.RequestCtx, h *fasthttp.RequestHeader, has headerSet, raw []byte, sc *proxyScratch) {
	ip, _ := netip.AddrFromSlice(ctx.RemoteIP())
	ip = ip.Unmap()
	host := ctx.Request.Header.Host()

	// A client may send each of these on several lines: the upstream
	// gets one line of each, so that it cannot read a value the client
	// placed after fastserve's (or, for Proto and Host, instead of it).
	// They are read from the header's bytes as the client sent them (raw):
	// fasthttp's deletes move lines, and two lines of one name could
	// change places.
	b := sc.fwd[:0]
	if has&hasXForwardedFor != 0 {
		b = appendAll(b, raw, keyXForwardedFor)
	}
	b = ip.AppendTo(b)
	fwd := len(b)
	if has&hasForwarded != 0 {
		b = appendAll(b, raw, keyForwarded)
	}
	h.SetCanonical(keyXForwardedFor, b[:fwd])
	h.SetCanonical(keyXForwardedProto, strHTTPS)
	if len(host) > 0 {
		h.SetCanonical(keyXForwardedHost, host)
	}

	b = append(b, "for="...)
	if ip.Is6() {
		b = append(b, `"[`...)
		b = ip.AppendTo(b)
		b = append(b, `]"`...)
	} else {
		b = ip.AppendTo(b)
	}
	b = append(b, ";proto=https"...)
	if len(host) > 0 {
		b = append(b, ";host="...)
		b = appendForwardedValue(b, host)
	}
	h.SetCanonical(keyForwarded, b[fwd:])
	sc.fwd = b
}

var (
	keyXForwardedFor   = []byte(fasthttp.HeaderXForwardedFor)
	keyXForwardedProto = []byte(fasthttp.HeaderXForwardedProto)
	keyXForwardedHost  = []byte(fasthttp.HeaderXForwardedHost)
	keyForwarded       = []byte(fasthttp.HeaderForwarded)
	strHTTPS           = []byte("https")
)

// appendAll appends the values of every line of header key in raw (a
// header's bytes), each followed by ", ".
func appendAll(b, raw, key []byte) []byte {
	for k, v, rest, ok := headerlines.Next(headerlines.Of(raw)); ok; k, v, rest, ok = headerlines.Next(rest) {
		if len(v) > 0 && len(k) == len(key) && bytes.EqualFold(k, key) {
			b = append(append(b, v...), ", "...)
		}
	}
	return b
}

// appendForwardedValue appends v as an RFC 7239 value: a token as it
// is, anything else (a host with a port) quoted.
func appendForwardedValue(b, v []byte) []byte {
	token := true
	for _, c := range v {
		if !httpsyntax.IsTokenChar(c) {
			token = false
			break
		}
	}
	if token {
		return append(b, v...)
	}
	b = append(b, '"')
	for _, c := range v {
		if c == '"' || c == '\\' {
			b = append(b, '\\')
		}
		b = append(b, c)
	}
	return append(b, '"')
}

// target points req at u: the Host HostHeader asks for.
func (p *Proxy) target(ctx *fasthttp.RequestCtx, req *fasthttp.Request, u *upstream) {
	h := &req.Header
	switch {
	case p.hostMode == hostUpstream:
		h.SetHost(u.host)
	case p.hostMode == hostFixed:
		h.SetHostBytes(p.fixedHost)
	case len(ctx.Request.Header.Host()) == 0: // an HTTP/1.0 client sent none
		h.SetHost(u.host)
	}
	// The client's Host, otherwise, copied with its header (prepare).
	// The scheme is the pool's (HostClient.IsTLS): the request line
	// carries none.
}

// upstreamAnswered keys the user value that marks a response as an
// upstream's (FromUpstream).
type upstreamAnswered struct{}

// FromUpstream reports whether ctx's response is an upstream's answer,
// as opposed to one the proxy made (502, 503, 504, 400) or another
// handler's: a site's error pages replace the latter, never an API's own
// error bodies.
func FromUpstream(ctx *fasthttp.RequestCtx) bool {
	v, _ := ctx.UserValue(upstreamAnswered{}).(bool)
	return v
}

// answer turns the upstream's response, already in ctx.Response with its
// body streaming, into the client's: hop-by-hop headers and the
// upstream's Server go.
func (p *Proxy) answer(ctx *fasthttp.RequestCtx, sc *proxyScratch) {
	ctx.SetUserValue(upstreamAnswered{}, true)
	h := &ctx.Response.Header
	sc.buf = stripResponse(h, sc.buf[:0])
	h.ResetConnectionClose() // the upstream's connection, not the client's
	h.SetProtocol(http11)    // the proxy's version, not an HTTP/1.0 upstream's
	if !p.cfg.PassServerHeader {
		h.Del(fasthttp.HeaderServer)
	}
}

var http11 = []byte("HTTP/1.1")

// statusClientClosed is nginx's 499 Client Closed Request: the status a
// request whose client left before the answer is logged with.
const statusClientClosed = 499

// errKind is why a request to an upstream failed, a label of
// fastserve_upstream_errors_total.
type errKind int

const (
	errRefused        errKind = iota // connection refused
	errConnectTimeout                // no connection within ConnectTimeout
	errTLS                           // the TLS handshake failed
	errConnect                       // another failure to connect
	errBusy                          // MaxConns busy for ConnectTimeout
	errTimeout                       // no answer within ReadTimeout, or a write stalled
	errReset                         // the connection closed or was reset before the answer
	errProtocol                      // an answer that is not HTTP, or a request body that failed
	errStatus5xx                     // an answer with a 5xx status (not a failure of the proxy)
	errKinds
)

var errKindNames = [errKinds]string{"refused", "connect_timeout", "tls", "connect", "busy", "timeout", "reset", "protocol", "status5xx"}

func (k errKind) String() string { return errKindNames[k] }

// connect reports whether the request never reached the upstream because
// connecting failed: the upstream is then marked down.
func (k errKind) connect() bool { return k <= errConnect }

func classify(err error) errKind {
	var de *dialError
	var te interface{ Timeout() bool }
	switch {
	case errors.As(err, &de):
		switch {
		case de.handshake:
			return errTLS
		case errors.Is(err, syscall.ECONNREFUSED):
			return errRefused
		case errors.As(err, &te) && te.Timeout():
			return errConnectTimeout
		}
		return errConnect
	case errors.Is(err, fasthttp.ErrNoFreeConns):
		return errBusy
	case errors.Is(err, os.ErrDeadlineExceeded), errors.As(err, &te) && te.Timeout():
		return errTimeout
	case errors.Is(err, fasthttp.ErrConnectionClosed), errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF),
		errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE), errors.Is(err, net.ErrClosed):
		return errReset
	}
	return errProtocol
}

// retryable reports whether a request that failed so may go to another
// upstream: one that never reached the first (connecting failed, or no
// connection was free), or an idempotent one whose connection broke
// before the answer began; never one whose streamed body has been read.
func retryable(k errKind, h *fasthttp.RequestHeader, streamed bool) bool {
	switch {
	case k.connect() || k == errBusy:
		return true
	case k != errReset || streamed:
		return false
	}
	return h.IsGet() || h.IsHead() || h.IsOptions() || h.IsPut() || h.IsDelete()
}

// fail answers a request no upstream answered: 502, 503 or 504, with its
// status line, and with what happened and where if Config.ErrorDetails
// (logError has logged it either way).
func (p *Proxy) fail(ctx *fasthttp.RequestCtx, u *upstream, k errKind) {
	ctx.Response.Reset()
	var status int
	var what string
	switch k {
	case errRefused:
		status, what = fasthttp.StatusBadGateway, "refused the connection"
	case errConnectTimeout:
		status, what = fasthttp.StatusGatewayTimeout, "did not accept the connection within "+p.cfg.ConnectTimeout.String()
	case errTLS:
		status, what = fasthttp.StatusBadGateway, "failed the TLS handshake"
	case errConnect:
		status, what = fasthttp.StatusBadGateway, "could not be reached"
	case errBusy:
		status, what = fasthttp.StatusServiceUnavailable, "has all its connections busy"
	case errTimeout:
		status, what = fasthttp.StatusGatewayTimeout, "did not answer within "+p.cfg.ReadTimeout.String()
	case errReset:
		status, what = fasthttp.StatusBadGateway, "closed the connection before answering"
	default:
		status, what = fasthttp.StatusBadGateway, "sent an invalid answer, or the request body failed"
	}
	line := strconv.Itoa(status) + " " + fasthttp.StatusMessage(status)
	if p.cfg.ErrorDetails {
		line += ": upstream " + u.addr + " " + what
	}
	ctx.Error(line+"\n", status)
}

// clientBodyFailed answers a request whose body the client did not send
// whole: 413 past MaxBodyBytes, 408 when it stalled, 400 otherwise. The
// connection closes: it is somewhere in the body.
func clientBodyFailed(ctx *fasthttp.RequestCtx, err error) {
	var te interface{ Timeout() bool }
	switch {
	case errors.Is(err, fasthttp.ErrBodyTooLarge):
		ctx.Error("Request Entity Too Large\n", fasthttp.StatusRequestEntityTooLarge)
	case errors.As(err, &te) && te.Timeout():
		ctx.Error("Request Timeout\n", fasthttp.StatusRequestTimeout)
	default:
		ctx.Error("Bad Request: the request body could not be read\n", fasthttp.StatusBadRequest)
	}
	ctx.SetConnectionClose()
}

// logError logs a failed attempt, at most logBurst lines a second. An
// answer that is not HTTP is logged without its bytes (redacted).
func (p *Proxy) logError(u *upstream, k errKind, attempt int, err error) {
	if k == errProtocol {
		err = redacted{err}
	}
	p.errLog.Log(p.log, slog.LevelWarn, "upstream error", "upstream error", "upstream", u.url, "kind", k.String(), "attempt", attempt, "err", err)
}
