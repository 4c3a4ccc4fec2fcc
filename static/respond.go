package static

import (
	"bytes"
	"io"
	"strconv"
	"strings"

	"github.com/valyala/fasthttp"
)

// encodings are the compressed variants, in the server's order of
// preference, with their fast-but-good levels (each variant is made once
// per version of a file).
var encodings = [...]struct {
	name   string
	suffix string // added to the ETag: another representation
	append func(dst, src []byte) []byte
}{
	{"br", "-br", func(dst, src []byte) []byte { return fasthttp.AppendBrotliBytesLevel(dst, src, 6) }},
	{"zstd", "-zst", func(dst, src []byte) []byte {
		return fasthttp.AppendZstdBytesLevel(dst, src, fasthttp.CompressZstdDefault)
	}},
	{"gzip", "-gz", func(dst, src []byte) []byte {
		return fasthttp.AppendGzipBytesLevel(dst, src, fasthttp.CompressDefaultCompression)
	}},
}

// minCompressBytes: smaller files gain less than a compressed answer's
// headers cost.
const minCompressBytes = 512

// compressible reports whether a content type is textual: worth
// compressing.
func compressible(ctype string) bool {
	if strings.HasPrefix(ctype, "text/") {
		return true
	}
	for _, t := range []string{"json", "javascript", "xml", "svg", "wasm", "font/ttf", "font/otf", "vnd.ms-fontobject", "icon"} {
		if strings.Contains(ctype, t) {
			return true
		}
	}
	return false
}

// respond answers a GET or HEAD for an opened file: conditional
// requests (RFC 9110 section 13), a single byte range, and the best
// compressed variant the client accepts.
func (sf *Files) respond(ctx *fasthttp.RequestCtx, o opened) {
	e := o.e
	h := &ctx.Response.Header
	req := &ctx.Request.Header

	// Which representation: a range is served from the original bytes.
	body, etag, enc := e.content, e.etag, ""
	rangeHdr := req.Peek(fasthttp.HeaderRange)
	if len(rangeHdr) < 6 || !bytes.EqualFold(rangeHdr[:6], []byte("bytes=")) || bytes.IndexByte(rangeHdr, ',') >= 0 {
		rangeHdr = nil // another unit, or several ranges: the whole file (RFC 9110 14.2 allows it)
	}
	if e.zip {
		h.Set(fasthttp.HeaderVary, "Accept-Encoding")
		if len(rangeHdr) == 0 {
			for i := range encodings {
				if !req.HasAcceptEncoding(encodings[i].name) {
					continue
				}
				if v := e.variant(sf, i); v.body != nil {
					body, etag, enc = v.body, v.etag, encodings[i].name
				}
				break
			}
		}
	}
	h.SetBytesV(fasthttp.HeaderETag, etag)
	h.SetBytesV(fasthttp.HeaderLastModified, e.modified)
	h.SetContentTypeBytes(e.ctype)
	h.Set(fasthttp.HeaderAcceptRanges, "bytes")

	if status := preconditions(ctx, e, etag); status != 0 {
		if o.s != nil {
			o.s.Close()
		}
		if status == fasthttp.StatusPreconditionFailed {
			ctx.Error("Precondition Failed\n", status)
			return
		}
		ctx.SetStatusCode(status)
		return
	}
	if enc != "" {
		h.Set(fasthttp.HeaderContentEncoding, enc)
	}

	size := e.ver.size
	start, end := int64(0), size-1
	if len(rangeHdr) > 0 && enc == "" && rangeApplies(ctx, e) {
		s, t, ok := parseRange(rangeHdr, size)
		if !ok {
			if o.s != nil {
				o.s.Close()
			}
			h.Del(fasthttp.HeaderContentType)
			ctx.SetStatusCode(fasthttp.StatusRequestedRangeNotSatisfiable)
			h.Set(fasthttp.HeaderContentRange, "bytes */"+strconv.FormatInt(size, 10))
			return
		}
		start, end = s, t
		ctx.SetStatusCode(fasthttp.StatusPartialContent)
		h.SetContentRange(int(s), int(t), int(size))
	}

	if o.s == nil {
		if enc != "" {
			start, end = 0, int64(len(body))-1
		}
		ctx.Response.SetBodyRaw(body[start : end+1])
		return
	}
	if ctx.IsHead() {
		o.s.Close()
		h.SetContentLength(int(end - start + 1))
		ctx.Response.SkipBody = true
		return
	}
	if start > 0 {
		if _, err := o.s.f.Seek(start, io.SeekStart); err != nil {
			o.s.Close()
			ctx.Error("Service Unavailable\n", fasthttp.StatusServiceUnavailable)
			return
		}
	}
	o.s.left = end - start + 1
	ctx.SetBodyStream(o.s, int(o.s.left))
}

// variant is e's content in encoding i, made on first use.
func (e *entry) variant(sf *Files, i int) *variant {
	v := &e.variants[i]
	v.once.Do(func() {
		b := encodings[i].append(nil, e.content)
		if len(b) >= len(e.content)*9/10 {
			return // not worth it: the original is sent
		}
		v.etag = append(append(append([]byte(nil), e.etag[:len(e.etag)-1]...), encodings[i].suffix...), '"')
		v.body = b
		sf.counted(e, len(b))
	})
	return v
}

// preconditions evaluates the conditional headers in the order of RFC
// 9110 section 13.2.2, against the representation's ETag: 412, 304, or
// 0 to go on.
func preconditions(ctx *fasthttp.RequestCtx, e *entry, etag []byte) int {
	req := &ctx.Request.Header
	if im := req.Peek(fasthttp.HeaderIfMatch); len(im) > 0 {
		if !etagMatch(im, etag, false) {
			return fasthttp.StatusPreconditionFailed
		}
	} else if ius := req.Peek(fasthttp.HeaderIfUnmodifiedSince); len(ius) > 0 {
		if t, err := fasthttp.ParseHTTPDate(ius); err == nil && e.modTime.After(t) {
			return fasthttp.StatusPreconditionFailed
		}
	}
	if inm := req.Peek(fasthttp.HeaderIfNoneMatch); len(inm) > 0 {
		if etagMatch(inm, etag, true) {
			return fasthttp.StatusNotModified
		}
		return 0
	}
	if ims := req.Peek(fasthttp.HeaderIfModifiedSince); len(ims) > 0 {
		if t, err := fasthttp.ParseHTTPDate(ims); err == nil && !e.modTime.After(t) {
			return fasthttp.StatusNotModified
		}
	}
	return 0
}

// rangeApplies evaluates If-Range: a range is served only if the
// validator it names is current (a strong ETag, or the exact date).
func rangeApplies(ctx *fasthttp.RequestCtx, e *entry) bool {
	ir := ctx.Request.Header.Peek(fasthttp.HeaderIfRange)
	if len(ir) == 0 {
		return true
	}
	if ir[0] == '"' {
		return bytes.Equal(ir, e.etag)
	}
	t, err := fasthttp.ParseHTTPDate(ir)
	return err == nil && t.Equal(e.modTime)
}

// etagMatch reports whether a list of entity tags (If-Match,
// If-None-Match) names etag, or is "*"; weak comparison for
// If-None-Match, strong for If-Match.
func etagMatch(list, etag []byte, weak bool) bool {
	if bytes.Equal(bytes.TrimSpace(list), []byte("*")) {
		return true
	}
	for len(list) > 0 {
		var tag []byte
		tag, list, _ = bytes.Cut(list, []byte{','})
		tag = bytes.TrimSpace(tag)
		if bytes.HasPrefix(tag, []byte("W/")) {
			if !weak {
				continue
			}
			tag = tag[2:]
		}
		if bytes.Equal(tag, etag) {
			return true
		}
	}
	return false
}

// parseRange reads a single byte range, "bytes=" already checked (RFC
// 9110 section 14.1.2): first-last, first-, or -suffix, spaces allowed
// around the numbers; a last position past the end means the end. It
// reports false for a range that is malformed or starts past the end
// (416).
func parseRange(h []byte, size int64) (start, end int64, ok bool) {
	spec := bytes.TrimSpace(h[6:])
	first, last, found := bytes.Cut(spec, []byte{'-'})
	if !found {
		return 0, 0, false
	}
	first, last = bytes.TrimSpace(first), bytes.TrimSpace(last)
	num := func(b []byte) (int64, bool) {
		if len(b) == 0 || len(b) > 18 {
			if len(b) > 18 && len(bytes.Trim(b, "0123456789")) == 0 {
				return 1 << 62, true // past any file
			}
			return 0, false
		}
		n, err := strconv.ParseInt(string(b), 10, 64)
		return n, err == nil
	}
	if len(first) == 0 { // the last N bytes
		n, ok := num(last)
		if !ok || n == 0 || size == 0 {
			return 0, 0, false
		}
		return max(size-n, 0), size - 1, true
	}
	start, ok = num(first)
	if !ok || start >= size {
		return 0, 0, false
	}
	end = size - 1
	if len(last) > 0 {
		if end, ok = num(last); !ok || end < start {
			return 0, 0, false
		}
		end = min(end, size-1)
	}
	return start, end, true
}
