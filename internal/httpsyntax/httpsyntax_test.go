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
