package main

import (
	"fmt"
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestMalformedRequestLogRedacted: a request the server cannot read is
// logged with its raw bytes, but without the credentials in them (before:
// the Authorization and Cookie values were in the log line).
func TestMalformedRequestLogRedacted(t *testing.T) {
	t.Parallel()
	in := serve(t, childEnv(t), "serve")
	defer func() { in.signal(15); in.wait(exitTimeout) }()
	c := dial(t, in.https, insecure)
	mark := in.mark()
	_, err := fmt.Fprint(c, "GET / HTTP/1.1\r\nHost: localhost\r\nAuthorization: Basic c2VjcmV0\r\nCookie: session=c2VjcmV0\r\nBad Header Line\r\n\r\n")
	require.NoError(t, err)
	resp, _, err := c.readResponse(http.MethodGet)
	require.NoError(t, err)
	assert.Equal(t, http.StatusBadRequest, resp.StatusCode)
	line := in.waitLog(`.*error when reading request headers.*`, mark)[0]
	assert.Contains(t, line, "Bad Header Line", "the raw request is still logged")
	assert.Contains(t, line, "Authorization: [redacted]")
	assert.NotContains(t, in.log(), "c2VjcmV0")

	// A value fasthttp finds invalid (a NUL in it) is quoted on its own,
	// without its name, in the error: redacted too.
	for _, value := range []string{"Basic c2VjcmV0\x00", "Basic c2Vj\rcmV0"} {
		c := dial(t, in.https, insecure)
		mark := in.mark()
		_, err := fmt.Fprint(c, "GET / HTTP/1.1\r\nHost: localhost\r\nAuthorization: "+value+"\r\n\r\n")
		require.NoError(t, err)
		resp, _, err := c.readResponse(http.MethodGet)
		require.NoError(t, err)
		assert.Equal(t, http.StatusBadRequest, resp.StatusCode)
		in.waitLog(`.*error when reading request headers.*`, mark)
		assert.NotContains(t, in.log(), "c2Vj", "%q", value)
		assert.NotContains(t, in.log(), "cmV0", "%q", value)
	}
}
