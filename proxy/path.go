package proxy

import (
	"bytes"
	"sync"

	"github.com/valyala/fasthttp"
)

// ambiguous reports whether a request's path, as the client sent it
// (before the query), could be resolved by an upstream to another path
// than the normalized one the proxy chose its route on. The request URI
// goes upstream as sent, so such a path could reach, through one route's
// upstream, what another route guards: it holds an encoded slash,
// backslash or NUL (%2F, %5C, %00), a backslash, or a dot segment, plain
// ("/../", "/./"), percent-encoded ("%2e%2e") or followed by path
// parameters ("..;", which Tomcat resolves as ".."). Allocation-free.
func ambiguous(path []byte) bool {
	if bytes.IndexByte(path, '\\') >= 0 {
		return true
	}
	for i := bytes.IndexByte(path, '%'); i >= 0 && i+2 < len(path); {
		if a, b := path[i+1], path[i+2]|0x20; a == '2' && b == 'f' || a == '5' && b == 'c' || a == '0' && b == '0' {
			return true
		}
		j := bytes.IndexByte(path[i+1:], '%')
		if j < 0 {
			break
		}
		i += 1 + j
	}
	for len(path) > 0 {
		seg := path
		if i := bytes.IndexByte(path, '/'); i >= 0 {
			seg, path = path[:i], path[i+1:]
		} else {
			path = nil
		}
		if i := bytes.IndexByte(seg, ';'); i >= 0 {
			seg = seg[:i]
		}
		if dots := dotCount(seg); dots == 1 || dots == 2 {
			return true
		}
	}
	return false
}

// dotCount is the number of dots seg is made of, plain or as %2E, or -1
// if it holds anything else.
func dotCount(seg []byte) int {
	n := 0
	for i := 0; i < len(seg); i++ {
		switch {
		case seg[i] == '.':
			n++
		case seg[i] == '%' && i+2 < len(seg) && seg[i+1] == '2' && seg[i+2]|0x20 == 'e':
			n++
			i += 2
		default:
			return -1
		}
	}
	return n
}

// loose reports whether a raw path holds what some upstream servers read
// loosely: path parameters (";", which Tomcat and Spring strip), upper
// case (IIS matches paths without case), dots or spaces that Windows
// servers drop at a segment's end, or escapes of any of them.
func loose(raw []byte) bool {
	for _, c := range raw {
		if c == ';' || c == '.' || c == '%' || c == ' ' || c >= 'A' && c <= 'Z' {
			return true
		}
	}
	return false
}

var looseBufs = sync.Pool{New: func() any { b := make([]byte, 0, 256); return &b }}

// looseRoute is the route the path would take if it were read loosely:
// path parameters stripped, escapes decoded, slashes and dot segments
// resolved, in lower case, without dots and spaces at a segment's end.
// A request whose loose route is not its route could reach, through an
// open route's upstream, what another route guards (/admin;x=1/y through
// "/" to a Tomcat that serves /admin/y): it is refused.
func (p *Proxy) looseRoute(raw []byte) *proxyRoute {
	bp := looseBufs.Get().(*[]byte)
	defer looseBufs.Put(bp)
	u := fasthttp.AcquireURI()
	defer fasthttp.ReleaseURI(u)
	b := (*bp)[:0]
	// Twice: parameters escaped as %3B show once decoded.
	for range 2 {
		b = stripParams(b[:0], raw)
		u.SetPathBytes(b) // decodes, and resolves "//" and dot segments
		raw = u.Path()
	}
	b = b[:0]
	for { // each segment, in lower case, without trailing dots and spaces
		i := bytes.IndexByte(raw, '/')
		seg := raw
		if i >= 0 {
			seg = raw[:i]
		}
		for _, c := range bytes.TrimRight(seg, ". ") {
			if c >= 'A' && c <= 'Z' {
				c += 'a' - 'A'
			}
			b = append(b, c)
		}
		if i < 0 {
			break
		}
		b = append(b, '/')
		raw = raw[i+1:]
	}
	if len(b) == 0 {
		b = append(b, '/')
	}
	*bp = b
	return p.route(b)
}

// stripParams appends path to b without the parameters (";...") of its
// segments.
func stripParams(b, path []byte) []byte {
	for len(path) > 0 {
		seg := path
		if i := bytes.IndexByte(path, '/'); i >= 0 {
			seg, path = path[:i], path[i+1:]
		} else {
			path = nil
		}
		if i := bytes.IndexByte(seg, ';'); i >= 0 {
			seg = seg[:i]
		}
		b = append(append(b, '/'), seg...)
	}
	return b
}
