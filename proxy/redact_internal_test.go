package proxy

import (
	"errors"
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestRedacted(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"connection refused", "connection refused"},
		{`malformed mime header: missing colon: "Authorization secret"`, "malformed mime header: missing colon: [redacted]"},
		{`invalid response status code "x": response "HTTP/1.1 x \"quoted\" secret"`, "invalid response status code [redacted]: response [redacted]"},
		{`unterminated "secret \" still`, "unterminated [redacted]"},
		{"buffer size=12, contents: Set-Cookie: secret", "buffer size=12, contents: [redacted]"},
	} {
		err := redacted{fmt.Errorf("wrapped: %w", errors.New(tc.in))}
		assert.Equal(t, "wrapped: "+tc.want, err.Error())
	}
	assert.Equal(t, "<nil>", redacted{}.Error())
}
