package tune_test

import (
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/fastserve/fastserve/tune"
)

// TestUnread: bytes waiting, or the peer's FIN, are unread; an idle
// connection has none, and looking consumes nothing.
func TestUnread(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	c, err := net.Dial("tcp", ln.Addr().String())
	require.NoError(t, err)
	defer c.Close()
	s, err := ln.Accept()
	require.NoError(t, err)
	defer s.Close()
	unread := func() bool {
		u, err := tune.Unread(c)
		require.NoError(t, err)
		return u
	}
	assert.False(t, unread(), "idle")
	_, err = s.Write([]byte("x"))
	require.NoError(t, err)
	assert.Eventually(t, unread, 2*time.Second, 5*time.Millisecond, "a byte waits")
	b := make([]byte, 2)
	n, err := c.Read(b)
	require.NoError(t, err)
	assert.Equal(t, "x", string(b[:n]), "looking consumed nothing")
	assert.False(t, unread(), "read")
	s.Close()
	assert.Eventually(t, unread, 2*time.Second, 5*time.Millisecond, "the peer's FIN")
}
