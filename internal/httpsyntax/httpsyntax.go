// Package httpsyntax holds the HTTP grammar that more than one package
// checks bytes against (RFC 9110).
package httpsyntax

// IsTokenChar reports whether c may appear in a token (RFC 9110 5.6.2):
// a header field name, a method, a transfer coding.
func IsTokenChar(c byte) bool {
	return tokenChars[c]
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
