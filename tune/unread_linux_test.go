package tune_test

import (
	"io"
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

// TestSocketUnread: a Socket kept for a connection tells what Unread
// tells, and each look allocates nothing.
func TestSocketUnread(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	c, err := net.Dial("tcp", ln.Addr().String())
	require.NoError(t, err)
	defer c.Close()
	s, err := ln.Accept()
	require.NoError(t, err)
	defer s.Close()
	sock, err := tune.SocketOf(c)
	require.NoError(t, err)
	unread := func() bool {
		u, err := sock.Unread()
		require.NoError(t, err)
		return u
	}
	assert.False(t, unread(), "idle")
	assert.Zero(t, testing.AllocsPerRun(100, func() { _, _ = sock.Unread() }), "allocations per look")
	_, err = s.Write([]byte("x"))
	require.NoError(t, err)
	assert.Eventually(t, unread, 2*time.Second, 5*time.Millisecond, "a byte waits")
	s.Close()
	_, _ = io.ReadAll(io.LimitReader(c, 1))
	assert.Eventually(t, unread, 2*time.Second, 5*time.Millisecond, "the peer's FIN")
}
