package server

import (
	"errors"
	"io"
	"log/slog"
	"time"

	"github.com/valyala/fasthttp"
)

// handle wraps the user's handler: it counts each request and its
// response, and turns a panic into a 500 for that request alone.
func (s *Server) handle(h fasthttp.RequestHandler) fasthttp.RequestHandler {
	return func(ctx *fasthttp.RequestCtx) {
		defer func() {
			if r := recover(); r != nil {
				s.stats.panics.Add(1)
				s.log.Error("handler panicked", "panic", r, "uri", string(ctx.RequestURI()), "remote", ctx.RemoteAddr().String())
				ctx.ResetBody()
				ctx.Error("Internal Server Error\n", fasthttp.StatusInternalServerError)
				ctx.SetConnectionClose()
			}
			s.finish(ctx)
		}()
		c, _ := ctx.Conn().(*conn) // nil in the fuzz harness
		if c != nil && c.bareLFPending() {
			s.refuse(ctx, refuseBareLF) // found while following a pipeline
			return
		}
		if r := check(&ctx.Request.Header); r != nil {
			s.refuse(ctx, r)
			return
		}
		if s.cfg.StreamRequestBody && !s.limitBodyStream(ctx) {
			s.refuse(ctx, refuseBodyTooLarge)
			return
		}
		h(ctx)
		if s.cfg.DiscardBodies && ctx.Request.Header.ConnectionClose() {
			lingerAfter(ctx) // a body may follow, unread
		}
		if c != nil && c.body.left < 0 {
			s.refuse(ctx, refuseBodyTooLarge) // whatever the handler answered
		}
	}
}

// limitBodyStream applies MaxBodyBytes to a streamed request body, which
// fasthttp does not: it reports false for a Content-Length over the
// bound, and makes the reads of a chunked body fail past it.
func (s *Server) limitBodyStream(ctx *fasthttp.RequestCtx) bool {
	n := ctx.Request.Header.ContentLength()
	if n > s.cfg.MaxBodyBytes {
		return false
	}
	c, ok := ctx.Conn().(*conn)
	if !ok {
		return true
	}
	c.body = bodyLimit{}
	if n == -1 && ctx.Request.IsBodyStream() {
		c.body = bodyLimit{r: ctx.RequestBodyStream(), left: int64(s.cfg.MaxBodyBytes)}
		ctx.Request.SetBodyStream(&c.body, -1)
	}
	return true
}

// bodyLimit reads a chunked request body up to MaxBodyBytes; past it, its
// reads fail, and the request gets 413 whatever the handler answers. Each
// connection has one (conn.body), reused by each of its requests.
type bodyLimit struct {
	r    io.Reader
	left int64
}

func (b *bodyLimit) Read(p []byte) (int, error) {
	if b.left < 0 {
		return 0, fasthttp.ErrBodyTooLarge
	}
	if int64(len(p)) > b.left+1 {
		p = p[:b.left+1] // one byte past the bound tells it is crossed
	}
	n, err := b.r.Read(p)
	b.left -= int64(n)
	if b.left < 0 {
		return n + int(b.left), fasthttp.ErrBodyTooLarge
	}
	return n, err
}

// expect decides whether a request with "Expect: 100-continue" gets its
// 100: only one that will be read does. fasthttp then answers with the
// status returned and closes, without calling the handler.
func (s *Server) expect(ctx *fasthttp.RequestCtx) int {
	r := check(&ctx.Request.Header)
	if r == nil && ctx.Request.Header.ContentLength() > s.cfg.MaxBodyBytes {
		r = refuseBodyTooLarge
	}
	if r == nil {
		return fasthttp.StatusContinue
	}
	s.refuse(ctx, r)
	s.finish(ctx)
	return r.status
}

// refuse answers a request check refused, counts it, and logs it (at most
// a few lines a second).
func (s *Server) refuse(ctx *fasthttp.RequestCtx, r *refusal) {
	ctx.Error(r.text, r.status)
	ctx.SetConnectionClose()
	lingerAfter(ctx)
	s.stats.reject(r.reason)
	s.logRefusal("request refused", "status", r.status, "reason", r.reason.String(), "remote", ctx.RemoteAddr().String())
}

// logRefusal logs a refused request or connection at info, at most
// logBurst lines a second, saying how many were dropped.
func (s *Server) logRefusal(msg string, args ...any) {
	s.refusedLog.Log(s.log, slog.LevelInfo, "refused-request", msg, args...)
}

// finish adds the server's headers to a response, counts it, and logs it.
func (s *Server) finish(ctx *fasthttp.RequestCtx) {
	if s.draining.Load() && !ctx.Hijacked() {
		ctx.SetConnectionClose()
	}
	if s.hsts != nil {
		ctx.Response.Header.SetBytesV("Strict-Transport-Security", s.hsts)
	}
	if s.accessLog != nil {
		s.accessLog.Add(ctx, time.Now())
	}
	s.stats.requests.Add(1)
	if class := ctx.Response.StatusCode() / 100; class >= 1 && class <= 5 {
		s.stats.responses[class].Add(1)
	}
	if c, ok := ctx.Conn().(*conn); ok {
		// MaxRequestsPerConn, counted here rather than by fasthttp, whose
		// count restarts each time a parked connection is served again.
		n := c.requests.Add(1)
		if ctx.Hijacked() {
			// What follows is another protocol's: no request heads.
			c.scan.Stop()
			c.upgraded.Store(true)
		} else if m := s.cfg.MaxRequestsPerConn; m > 0 && n >= uint64(m) {
			ctx.SetConnectionClose()
		}
	}
}

// headerReceived gives a request with a body the body timeout, counted
// from the end of its headers.
//
// A request with a body that the gate refuses is refused as soon as its
// header block is read, before any of its body is awaited: it is told to
// have none (Content-Length 0, its raw header lines unchanged), so that
// fasthttp goes straight to handle, whose gate refuses it and closes the
// connection, body unread. A request without a body waits for nothing, so
// handle's gate suffices, and the gate runs once per request on the
// common path.
func (s *Server) headerReceived(h *fasthttp.RequestHeader) fasthttp.RequestConfig {
	// A body: a Content-Length above 0, or chunked (-1). fasthttp gives a
	// request with neither -2, and reads no body for it.
	if n := h.ContentLength(); n > 0 || n == -1 {
		if check(h) != nil {
			h.SetContentLength(0)
			return fasthttp.RequestConfig{}
		}
		if s.cfg.DiscardBodies {
			// The same, for a handler that takes no body; the request
			// closes its connection (handle lingers), the body unread,
			// and its answer (a 405) comes at once, not after a 100.
			h.SetContentLength(0)
			h.SetConnectionClose()
			h.Del(fasthttp.HeaderExpect)
			return fasthttp.RequestConfig{}
		}
		return fasthttp.RequestConfig{ReadTimeout: s.cfg.BodyTimeout}
	}
	return fasthttp.RequestConfig{}
}

// errorResponse answers a request fasthttp could not read. fasthttp then
// closes the connection.
func (s *Server) errorResponse(ctx *fasthttp.RequestCtx, err error) {
	var small *fasthttp.ErrSmallBuffer
	switch {
	case errors.As(err, &small):
		s.stats.reject(RejectHeaderTooLarge)
		ctx.Error("Request Header Fields Too Large\n", fasthttp.StatusRequestHeaderFieldsTooLarge)
	case errors.Is(err, fasthttp.ErrBodyTooLarge):
		s.stats.reject(RejectBodyTooLarge)
		ctx.Error("Request Entity Too Large\n", fasthttp.StatusRequestEntityTooLarge)
	case isTimeout(err):
		s.stats.reject(RejectTimeout)
		ctx.Error("Request Timeout\n", fasthttp.StatusRequestTimeout)
	default:
		s.stats.reject(RejectBadRequest)
		ctx.Error("Bad Request\n", fasthttp.StatusBadRequest)
	}
	lingerAfter(ctx)
	s.finish(ctx)
}

// lingerAfter makes the connection drain what the client still sends
// before it closes (see conn.lingerClose).
func lingerAfter(ctx *fasthttp.RequestCtx) {
	if c, ok := ctx.Conn().(*conn); ok {
		c.closeWith(closeLinger)
	}
}
