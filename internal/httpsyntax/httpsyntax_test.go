package httpsyntax_test

import (
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/fastserve/fastserve/internal/httpsyntax"
)

func TestIsTokenChar(t *testing.T) {
	for _, c := range []byte("azAZ09!#$%&'*+-.^_`|~") {
		assert.True(t, httpsyntax.IsTokenChar(c), "%q", c)
	}
	for _, c := range []byte(" \t\r\n\x00\x7f\x80\xff\"(),/:;<=>?@[\\]{}") {
		assert.False(t, httpsyntax.IsTokenChar(c), "%q", c)
	}
}

func TestEqualFoldASCII(t *testing.T) {
	for _, tc := range []struct {
		b, s string
		want bool
	}{
		{"X-Request-ID", "x-request-id", true},
		{"x-powered-by", "X-Powered-By", true},
		{"X-A", "X-B", false},
		{"X-A", "X-AB", false},
		{"", "", true},
		{"\xc0", "\xe0", false}, // not ASCII letters: no folding
	} {
		if got := httpsyntax.EqualFoldASCII([]byte(tc.b), tc.s); got != tc.want {
			t.Errorf("EqualFoldASCII(%q, %q) = %v", tc.b, tc.s, got)
		}
	}
}
