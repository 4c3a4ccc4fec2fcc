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

	// fasthttp quotes an invalid header's value (or key) on its own, without
	// its name, before the buffer (found by an outside test: the value of
	// an Authorization with a NUL, DEL or CR in it was logged in clear).
	for _, bad := range []string{"Basic c2VjcmV0\x00", "Basic c2VjcmV0\x7f", "Basic c2Vj\rcmV0", "session=c2VjcmV0\x01"} {
		head := "GET / HTTP/1.1\r\nHost: localhost\r\nAuthorization: " + bad + "\r\n\r\n"
		line := fmt.Sprintf("error when reading request headers: invalid header value %q: buffer size=%d, contents: %q", bad, len(head), head)
		got := Redact(line)
		assert.NotContains(t, got, "c2Vj", got)
		assert.NotContains(t, got, "cmV0", got)
		assert.Contains(t, got, "invalid header value "+Redacted)
		assert.Contains(t, got, "Host: localhost", "the rest stays")
	}
	got := Redact(fmt.Sprintf("invalid header key %q", "Auth(orization): Basic c2VjcmV0"))
	assert.NotContains(t, got, "c2VjcmV0", got)
}
