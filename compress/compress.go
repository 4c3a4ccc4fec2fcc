package compress

import (
	"bytes"
	"sync"

	"github.com/valyala/fasthttp"

	"github.com/fastserve/fastserve/internal/headerlines"
)

// DefaultMinBytes is Config.MinBytes's default.
const DefaultMinBytes = 1024

// Config says which responses are compressed. Its zero value is the
// defaults.
type Config struct {
	// MinBytes is the smallest body compressed, in bytes: a smaller one
	// gains less than compressing it costs. A streamed body whose length
	// is not known is compressed whatever its length. If zero, 1024; a
	// negative value compresses every body.
	MinBytes int
}

// Handler returns a handler that runs next, then compresses its response
// as Response does.
func (cfg Config) Handler(next fasthttp.RequestHandler) fasthttp.RequestHandler {
	return func(ctx *fasthttp.RequestCtx) {
		next(ctx)
		cfg.Response(ctx)
	}
}

// Response compresses ctx's response as it stands, once the handler that
// made it is done, if it is one to compress:
//
//   - not to a HEAD request, and not a 1xx, 204, 206 or 304 answer;
//   - not encoded already (no Content-Encoding), and without
//     Cache-Control: no-transform;
//   - of a textual type (see the list in textual);
//   - with a body of at least MinBytes, or streamed with no length; a
//     stream is compressed only if it can be taken out of the response
//     unclosed (see Detacher): fasthttp closes a body stream replaced.
//
// Such a response gets Vary: Accept-Encoding (added to the Vary it has,
// once), and, if the client accepts br, zstd or gzip (see choose), is
// compressed in the coding it prefers: Content-Encoding is set, a strong
// ETag is made weak (W/"x": the bytes differ, the content does not),
// Accept-Ranges goes (a range of the compressed bytes is not served), and
// a stream is compressed as it streams (see stream), sent chunked.
func (cfg Config) Response(ctx *fasthttp.RequestCtx) {
	resp := &ctx.Response
	h := &resp.Header
	switch st := resp.StatusCode(); {
	case st == fasthttp.StatusNotModified:
		notModified(ctx)
		return
	case st < 200, st == fasthttp.StatusNoContent, st == fasthttp.StatusPartialContent:
		return
	case len(h.ContentEncoding()) > 0, !textual(h.ContentType()):
		return
	}
	// A HEAD gets the fields its GET would have (RFC 9110 section 9.3.2),
	// and no length: the compressed one is not known without the body.
	head := ctx.IsHead() || resp.SkipBody
	var d Detacher
	if head {
		if n := h.ContentLength(); n >= 0 && n < cfg.minBytes() {
			return
		}
	} else if resp.IsBodyStream() {
		var ok bool
		if d, ok = resp.BodyStream().(Detacher); !ok {
			return
		}
		if n := h.ContentLength(); n >= 0 && n < cfg.minBytes() {
			return
		}
	} else if len(resp.Body()) < cfg.minBytes() {
		return
	}
	var f fields
	f.scan(h)
	if f.noTransform {
		return
	}
	sc := scratchPool.Get().(*scratch)
	defer scratchPool.Put(sc)
	// The ETag's value is copied before any line changes: changes move
	// the header's storage.
	weak := len(f.etag) > 0 && f.etag[0] == '"'
	if weak {
		sc.etag = append(append(sc.etag[:0], "W/"...), f.etag...)
	}
	sc.buf = addVary(h, &f, sc.buf)
	c := choose(ctx.Request.Header.PeekAll(fasthttp.HeaderAcceptEncoding))
	if c == identity {
		return
	}
	switch {
	case head:
		h.Del(fasthttp.HeaderContentLength)
	case d != nil:
		resp.SetBodyStream(newStream(d.Detach(), c), -1) // the close of the stream replaced is one the Detacher ignores
	case !sc.compressBody(resp, c):
		return
	}
	h.SetContentEncoding(c.String())
	if weak {
		headerlines.DelResponse(h, namesETag)
		h.SetBytesV(fasthttp.HeaderETag, sc.etag)
	}
	if f.acceptRanges {
		headerlines.DelResponse(h, namesAcceptRanges)
	}
}

func (cfg Config) minBytes() int {
	switch {
	case cfg.MinBytes == 0:
		return DefaultMinBytes
	case cfg.MinBytes < 0:
		return 0
	}
	return cfg.MinBytes
}

// scratch is what one compression of a response needs: pooled.
type scratch struct {
	out  sink   // a body compressed whole
	buf  []byte // a Vary value being built
	etag []byte // the weak ETag
}

var scratchPool = sync.Pool{New: func() any { return &scratch{} }}

// compressBody compresses resp's body whole, in coding c; false if the
// encoder failed (the body is then left as it was). The compressed bytes
// become the body, and the body's buffer is kept for the next one.
func (sc *scratch) compressBody(resp *fasthttp.Response, c coding) bool {
	src := resp.Body()
	sc.out.b = sc.out.b[:0]
	e := acquire(c, whole, &sc.out, len(src))
	_, err := e.Write(src)
	if err == nil {
		err = e.Close()
	}
	release(c, whole, e)
	if err != nil {
		return false
	}
	old := resp.SwapBody(sc.out.b)
	sc.out.b = nil
	if cap(old) <= maxPooledBuffer {
		sc.out.b = old[:0]
	}
	return true
}

// notModified gives a 304 the Vary and ETag of the 200 it stands for
// (RFC 9110 section 15.4.5). Vary: Accept-Encoding, unless its type is
// one never compressed: a 304 has no body to tell whether its 200 would
// have been compressed, and a Vary too many costs a cache little. The
// weak ETag a compressed answer carries, when the client validated it
// (W/"x" in its If-None-Match, for the upstream's "x") and takes a
// coding.
func notModified(ctx *fasthttp.RequestCtx) {
	h := &ctx.Response.Header
	if t := h.ContentType(); len(t) > 0 && !textual(t) {
		return
	}
	var f fields
	f.scan(h)
	sc := scratchPool.Get().(*scratch)
	defer scratchPool.Put(sc)
	// The ETag's value is copied before any line changes: changes move
	// the header's storage.
	weak := len(f.etag) > 0 && f.etag[0] == '"'
	if weak {
		sc.etag = append(append(sc.etag[:0], "W/"...), f.etag...)
		weak = choose(ctx.Request.Header.PeekAll(fasthttp.HeaderAcceptEncoding)) != identity &&
			bytes.Contains(ctx.Request.Header.Peek(fasthttp.HeaderIfNoneMatch), sc.etag)
	}
	sc.buf = addVary(h, &f, sc.buf)
	if weak {
		headerlines.DelResponse(h, namesETag)
		h.SetBytesV(fasthttp.HeaderETag, sc.etag)
	}
}
