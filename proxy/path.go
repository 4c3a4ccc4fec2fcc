package proxy

import "bytes"

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
