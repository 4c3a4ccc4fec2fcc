package httpsyntax

import (
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestRedact(t *testing.T) {
	for _, tc := range []struct {
		name, head string
		keep       []string // what stays in the line
	}{
		{"basic", "GET / HTTP/1.1\r\nHost: x\r\nAuthorization: Basic c2VjcmV0\r\nBad Line\r\n\r\n", []string{"Host: x", "Bad Line"}},
		{"cookie and proxy", "GET / HTTP/1.1\r\ncookie:a=c2VjcmV0; b=\"c2VjcmV0\"\r\nProxy-Authorization:  Bearer c2VjcmV0\r\nX: y\r\n", []string{"X: y"}},
		{"bare LF", "GET / HTTP/1.1\nAUTHORIZATION: c2VjcmV0\n\n", []string{"GET / HTTP/1.1"}},
		{"no colon", "Authorization Basic c2VjcmV0", nil},
		{"first line", "GARBAGE\r\nX-Api-Key: c2VjcmV0", []string{"GARBAGE"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			line := fmt.Sprintf("error when reading request headers: %q: buffer size=%d, contents: %q", tc.head, len(tc.head), tc.head)
			got := Redact(line)
			assert.NotContains(t, got, "c2VjcmV0", got)
			assert.Contains(t, got, Redacted)
			for _, k := range tc.keep {
				assert.Contains(t, got, fmt.Sprintf("%q", k)[1:len(k)+1], got)
			}
		})
	}
	t.Run("tail of a long buffer", func(t *testing.T) {
		head := "GET / HTTP/1.1\r\nX-Pad: " + strings.Repeat("p", 190) + "\r\nAuthorization: Basic " + strings.Repeat("c2VjcmV0", 30) + "\r\n\r\n"
		b := []byte(head)
		line := fmt.Sprintf("contents: %q...%q", b[:200], b[len(b)-200:])
		got := Redact(line)
		assert.NotContains(t, got, "c2VjcmV0", got)
	})
	assert.Equal(t, "nothing to hide: \"GET / HTTP/1.1\\r\\nHost: x\\r\\n\"", Redact("nothing to hide: \"GET / HTTP/1.1\\r\\nHost: x\\r\\n\""))
}
