package compress

import (
	"bytes"

	"github.com/valyala/fasthttp"

	"github.com/fastserve/fastserve/internal/headerlines"
)

// textual reports whether a Content-Type is one worth compressing: text/*
// (HTML, CSS, CSV, plain, event streams), JSON (application/json, *+json,
// NDJSON), JavaScript (application/javascript, application/ecmascript,
// application/x-javascript, text/javascript), XML (application/xml, *+xml:
// SVG, Atom, RSS, XHTML) and YAML. Parameters (charset) are ignored, case
// too. Images, audio, video, fonts, archives and anything else already
// compressed or binary are not: they gain little or nothing.
func textual(ctype []byte) bool {
	mt, _, _ := bytes.Cut(ctype, []byte{';'})
	typ, sub, ok := bytes.Cut(bytes.TrimSpace(mt), []byte{'/'})
	switch {
	case !ok:
		return false
	case bytes.EqualFold(typ, []byte("text")):
		return true
	case hasSuffixFold(sub, "+json"), hasSuffixFold(sub, "+xml"):
		return true
	case !bytes.EqualFold(typ, []byte("application")):
		return false
	}
	for _, s := range textualApplication {
		if bytes.EqualFold(sub, []byte(s)) {
			return true
		}
	}
	return false
}

// textualApplication are the application/ subtypes that are text.
var textualApplication = [...]string{
	"json", "x-ndjson", "ndjson", "javascript", "ecmascript", "x-javascript",
	"xml", "yaml", "x-yaml",
}

func hasSuffixFold(s []byte, suffix string) bool {
	return len(s) > len(suffix) && bytes.EqualFold(s[len(s)-len(suffix):], []byte(suffix))
}

// fields are the response header fields that compression reads or
// changes, found whatever their case: a proxied answer's header names
// are kept as its upstream wrote them.
type fields struct {
	noTransform  bool   // Cache-Control: no-transform
	varies       bool   // Vary names Accept-Encoding, or is "*"
	vary         int    // Vary lines
	etag         []byte // the (first) ETag's value
	acceptRanges bool
}

// scan reads h's fields into f.
func (f *fields) scan(h *fasthttp.ResponseHeader) {
	for k, v := range h.All() {
		switch {
		case bytes.EqualFold(k, []byte(fasthttp.HeaderCacheControl)):
			f.noTransform = f.noTransform || hasToken(v, "no-transform")
		case bytes.EqualFold(k, []byte(fasthttp.HeaderVary)):
			f.vary++
			f.varies = f.varies || hasToken(v, "accept-encoding") || hasToken(v, "*")
		case bytes.EqualFold(k, []byte(fasthttp.HeaderETag)):
			if f.etag == nil {
				f.etag = v
			}
		case bytes.EqualFold(k, []byte(fasthttp.HeaderAcceptRanges)):
			f.acceptRanges = true
		}
	}
}

// hasToken reports whether the comma-separated list v has token, in any
// case; a token's parameters (max-age=0) are not looked at.
func hasToken(v []byte, token string) bool {
	for len(v) > 0 {
		var t []byte
		t, v, _ = bytes.Cut(v, []byte{','})
		t, _, _ = bytes.Cut(t, []byte{'='})
		if bytes.EqualFold(bytes.TrimSpace(t), []byte(token)) {
			return true
		}
	}
	return false
}

// addVary adds Accept-Encoding to h's Vary, unless it names it already:
// one Vary line, which holds the values of those there were before (buf is
// scratch, returned grown).
func addVary(h *fasthttp.ResponseHeader, f *fields, buf []byte) []byte {
	if f.varies {
		return buf
	}
	if f.vary == 0 {
		h.Set(fasthttp.HeaderVary, "Accept-Encoding")
		return buf
	}
	buf = buf[:0]
	for k, v := range h.All() {
		if bytes.EqualFold(k, []byte(fasthttp.HeaderVary)) {
			if v = bytes.TrimSpace(v); len(v) > 0 {
				buf = append(append(buf, v...), ", "...)
			}
		}
	}
	buf = append(buf, "Accept-Encoding"...)
	headerlines.DelResponse(h, namesVary)
	h.SetBytesV(fasthttp.HeaderVary, buf)
	return buf
}

// The names compressing deletes, to set anew or not at all, keeping the
// order of the lines left (headerlines: fasthttp's Del fills its hole
// with the header's last line, which swapped an answer's Link lines).
var (
	namesVary         = headerlines.Names(nil).Add([]byte(fasthttp.HeaderVary))
	namesETag         = headerlines.Names(nil).Add([]byte(fasthttp.HeaderETag))
	namesAcceptRanges = headerlines.Names(nil).Add([]byte(fasthttp.HeaderAcceptRanges))
)
