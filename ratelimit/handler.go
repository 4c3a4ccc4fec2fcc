package ratelimit

import (
	"net/netip"
	"strconv"
	"time"

	"github.com/valyala/fasthttp"
)

// Key is the client of ctx's request: the value of Config.Header if it
// is set and the request has it, else the client's address (which the
// server sets from a PROXY protocol header behind a balancer). It
// allocates nothing.
func (l *Limiter) Key(ctx *fasthttp.RequestCtx) Key {
	if l.header != "" {
		if v := ctx.Request.Header.Peek(l.header); len(v) > 0 {
			return l.HeaderKey(v)
		}
	}
	a, _ := netip.AddrFromSlice(ctx.RemoteIP())
	return l.AddrKey(a)
}

// Handler limits the requests to next: past its client's rate and burst,
// a request is answered 429 Too Many Requests with Retry-After (Reject).
// With Config.DryRun, every request goes to next.
func (l *Limiter) Handler(next fasthttp.RequestHandler) fasthttp.RequestHandler {
	return func(ctx *fasthttp.RequestCtx) {
		now := ctx.Time() // the request's arrival, read once for it by the server
		if now.IsZero() {
			now = time.Now()
		}
		if r, wait := l.Allow(l.Key(ctx), now); r == Limited {
			Reject(ctx, wait)
			return
		}
		next(ctx)
	}
}

// Reject answers ctx with 429 Too Many Requests and a Retry-After of
// wait (RetryAfter's whole seconds).
func Reject(ctx *fasthttp.RequestCtx, wait time.Duration) {
	ctx.Error("Too Many Requests\n", fasthttp.StatusTooManyRequests)
	var buf [20]byte
	ctx.Response.Header.SetBytesV(fasthttp.HeaderRetryAfter, strconv.AppendInt(buf[:0], RetryAfter(wait), 10))
}

// RetryAfter is wait in whole seconds, rounded up, and at least 1: a
// client that waits that long has a request's budget again.
func RetryAfter(wait time.Duration) int64 {
	return max(int64((wait+time.Second-1)/time.Second), 1)
}
