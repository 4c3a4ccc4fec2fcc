// Package httpsyntax holds the HTTP/1 syntax that fastserve checks
// untrusted bytes against, apart from the code that decides what a
// violation costs: the token characters of RFC 9110 (the request gate and
// the reverse proxy), and the scan of request heads for bare LF line
// endings along a pipeline (the engine's connections; HeadScan).
package httpsyntax

// IsTokenChar reports whether c may appear in a token (RFC 9110 5.6.2):
// a header field name, a method, a transfer coding.
func IsTokenChar(c byte) bool {
	return tokenChars[c]
}

// EqualFoldASCII reports whether b and s are the same but for the case
// of ASCII letters, as header field names compare (RFC 9110 5.1), with
// neither converted to the other's type.
func EqualFoldASCII(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := range len(b) {
		x, y := b[i], s[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}

var tokenChars = func() (t [256]bool) {
	for c := 'a'; c <= 'z'; c++ {
		t[c] = true
	}
	for c := 'A'; c <= 'Z'; c++ {
		t[c] = true
	}
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for _, c := range []byte("!#$%&'*+-.^_`|~") {
		t[c] = true
	}
	return t
}()
