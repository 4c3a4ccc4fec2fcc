package server_test

import (
	"bytes"
	"errors"
	"io"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/valyala/fasthttp"

	"github.com/fastserve/fastserve/server"
)

// TestSlowReaderIsReset: a client that asks for 16 MiB and stops reading
// stalls the server's writes; after the write timeout the server resets
// the connection, so the response still queued in the kernel is dropped
// instead of trickling out to the client (nginx's
// reset_timedout_connection). The client, reading again, meets the reset
// before it has the whole body.
func TestSlowReaderIsReset(t *testing.T) {
	big := bytes.Repeat([]byte("x"), 16<<20)
	ts := start(t, server.Config{WriteTimeout: 300 * time.Millisecond}, func(ctx *fasthttp.RequestCtx) {
		ctx.SetBody(big)
	})
	c := ts.Dial(t, nil)
	_, err := io.WriteString(c, "GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
	require.NoError(t, err)
	time.Sleep(1500 * time.Millisecond) // stop reading: the server's write times out
	require.NoError(t, c.SetReadDeadline(time.Now().Add(10*time.Second)))
	n, err := io.Copy(io.Discard, c)
	assert.Less(t, n, int64(len(big)), "the rest of the response was dropped")
	assert.True(t, errors.Is(err, syscall.ECONNRESET), "the connection was reset: %v", err)
}
