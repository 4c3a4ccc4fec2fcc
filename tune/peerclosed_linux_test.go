package tune_test

import (
	"crypto/tls"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/fastserve/fastserve/tune"
)

// TestPeerClosed: the server's end of a connection reports its peer
// closed once the client sends a FIN or a reset, and not before, through
// a *tls.Conn too; and a connection closed on this side is an error.
func TestPeerClosed(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { ln.Close() })
	pair := func(t *testing.T) (client *net.TCPConn, server net.Conn) {
		t.Helper()
		c, err := net.Dial("tcp", ln.Addr().String())
		require.NoError(t, err)
		s, err := ln.Accept()
		require.NoError(t, err)
		t.Cleanup(func() { c.Close(); s.Close() })
		return c.(*net.TCPConn), s
	}
	peerClosed := func(c net.Conn) bool {
		closed, err := tune.PeerClosed(c)
		require.NoError(t, err)
		return closed
	}
	within := func(c net.Conn) bool {
		deadline := time.Now().Add(2 * time.Second)
		for !peerClosed(c) {
			if time.Now().After(deadline) {
				return false
			}
			time.Sleep(5 * time.Millisecond)
		}
		return true
	}

	t.Run("FIN", func(t *testing.T) {
		c, s := pair(t)
		assert.False(t, peerClosed(s), "open")
		_, err := c.Write([]byte("unread bytes"))
		require.NoError(t, err)
		assert.False(t, peerClosed(s), "bytes waiting are not a close")
		require.NoError(t, c.Close())
		assert.True(t, within(s), "the FIN is seen")
	})
	t.Run("reset", func(t *testing.T) {
		c, s := pair(t)
		require.NoError(t, c.SetLinger(0))
		require.NoError(t, c.Close())
		assert.True(t, within(s), "the reset is seen")
	})
	t.Run("through TLS", func(t *testing.T) {
		c, s := pair(t)
		ts := tls.Server(s, &tls.Config{})
		assert.False(t, peerClosed(ts))
		require.NoError(t, c.Close())
		assert.True(t, within(ts))
	})
	t.Run("closed here", func(t *testing.T) {
		_, s := pair(t)
		require.NoError(t, s.Close())
		_, err := tune.PeerClosed(s)
		assert.ErrorIs(t, err, net.ErrClosed)
	})
}
