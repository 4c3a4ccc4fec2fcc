package server_test

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/valyala/fasthttp"

	"github.com/fastserve/fastserve/server"
)

// TestRefusedUploadGetsItsAnswer sends a body the server refuses with 413
// as soon as Content-Length announces it, and keeps writing it, as an
// uploading client does: the whole upload is written without a reset, and
// the client reads the 413. Without a lingering close, the kernel resets
// the connection on unread data and the client's write fails.
func TestRefusedUploadGetsItsAnswer(t *testing.T) {
	ts := start(t, server.Config{MaxBodyBytes: 1024}, hello)
	body := bytes.Repeat([]byte("x"), 192<<10)
	for i := range 20 {
		c := ts.Dial(t, nil)
		require.NoError(t, c.SetDeadline(time.Now().Add(5*time.Second)))
		_, err := fmt.Fprintf(c, "POST / HTTP/1.1\r\nHost: localhost\r\nContent-Length: %d\r\n\r\n", len(body))
		require.NoError(t, err)
		_, err = c.Write(body)
		assert.NoError(t, err, "upload %d: the write went through", i)
		resp := &fasthttp.Response{}
		require.NoError(t, resp.Read(bufio.NewReader(c)), "upload %d: the answer arrived", i)
		assert.Equal(t, fasthttp.StatusRequestEntityTooLarge, resp.StatusCode())
		assert.True(t, resp.ConnectionClose())
		_, err = io.ReadAll(c)
		assert.NoError(t, err, "upload %d: closed with close_notify, not reset", i)
		c.Close()
	}
	assert.Equal(t, uint64(20), ts.Stats().Rejected[server.RejectBodyTooLarge])
}
