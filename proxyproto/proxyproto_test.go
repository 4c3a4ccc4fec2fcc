package proxyproto_test

import (
	"errors"
	"io"
	"net"
	"net/netip"
	"testing"
	"time"

	pp "github.com/pires/go-proxyproto"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/fastserve/fastserve/proxyproto"
)

// pair returns both ends of a loopback TCP connection: the server's, as
// accepted, and the peer's.
func pair(t *testing.T) (server *net.TCPConn, peer net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	peer, err = net.Dial("tcp", ln.Addr().String())
	require.NoError(t, err)
	c, err := ln.Accept()
	require.NoError(t, err)
	t.Cleanup(func() { c.Close(); peer.Close() })
	return c.(*net.TCPConn), peer
}

func header(t *testing.T, version byte, client string) []byte {
	t.Helper()
	src := net.TCPAddrFromAddrPort(netip.MustParseAddrPort(client))
	dst := &net.TCPAddr{IP: net.IPv4(198, 51, 100, 1), Port: 443}
	b, err := pp.HeaderProxyFromAddrs(version, src, dst).Format()
	require.NoError(t, err)
	return b
}

// TestReadHeader: a trusted peer's header gives the client's address, and
// the bytes after it reach the next reader whole, however they arrive.
func TestReadHeader(t *testing.T) {
	for _, version := range []byte{1, 2} {
		s, peer := pair(t)
		c := proxyproto.NewConn(s, true)
		_, err := peer.Write(append(header(t, version, "203.0.113.7:41000"), "hello"...))
		require.NoError(t, err)
		require.NoError(t, c.ReadHeader(time.Second))
		assert.Equal(t, "203.0.113.7:41000", c.RemoteAddr().String(), "v%d", version)
		assert.Equal(t, "203.0.113.7:41000", c.Client().String())
		_, err = peer.Write([]byte(" world"))
		require.NoError(t, err)
		peer.Close()
		rest, err := io.ReadAll(c)
		require.NoError(t, err)
		assert.Equal(t, "hello world", string(rest))
	}
}

// TestReadHeaderRefusals: each way a trusted peer fails is its own typed
// error; a peer that closes before its first byte is no refusal.
func TestReadHeaderRefusals(t *testing.T) {
	for _, tc := range []struct {
		name  string
		send  string
		close bool
		want  error
	}{
		{"missing", "\x16\x03\x01\x02\x00 a ClientHello", false, proxyproto.ErrMissing},
		{"invalid", "PROXY TCP4 1.2.3.4 nonsense\r\n", false, proxyproto.ErrInvalid},
		{"cut short", "PROXY TCP4 1.2.3.4", true, proxyproto.ErrInvalid},
		{"late", "PROXY TCP4 1.2", false, proxyproto.ErrTimeout},
		{"silent", "", false, proxyproto.ErrTimeout},
		{"closed at once", "", true, io.EOF},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, peer := pair(t)
			c := proxyproto.NewConn(s, true)
			if tc.send != "" {
				_, err := io.WriteString(peer, tc.send)
				require.NoError(t, err)
			}
			if tc.close {
				peer.Close()
			}
			err := c.ReadHeader(200 * time.Millisecond)
			assert.ErrorIs(t, err, tc.want)
			for _, other := range []error{proxyproto.ErrMissing, proxyproto.ErrInvalid, proxyproto.ErrTimeout, proxyproto.ErrUntrusted} {
				if !errors.Is(tc.want, other) {
					assert.NotErrorIs(t, err, other)
				}
			}
		})
	}
}

// TestRefuseUntrusted: a peer the policy does not trust is refused if it
// sends a header, and served as it is if it sends anything else, with
// nothing it sent lost.
func TestRefuseUntrusted(t *testing.T) {
	s, peer := pair(t)
	c := proxyproto.NewConn(s, false)
	_, err := peer.Write(header(t, 2, "203.0.113.7:41000"))
	require.NoError(t, err)
	assert.ErrorIs(t, c.RefuseUntrusted(), proxyproto.ErrUntrusted)

	s, peer = pair(t)
	c = proxyproto.NewConn(s, false)
	_, err = io.WriteString(peer, "\x16\x03\x01 hello")
	require.NoError(t, err)
	require.NoError(t, c.RefuseUntrusted())
	peer.Close()
	got, err := io.ReadAll(c)
	require.NoError(t, err)
	assert.Equal(t, "\x16\x03\x01 hello", string(got))
	assert.Equal(t, s.RemoteAddr(), c.RemoteAddr(), "a direct client keeps its own address")
}

func TestPolicy(t *testing.T) {
	all := proxyproto.Policy{}
	assert.True(t, all.Trusts(netip.MustParseAddr("192.0.2.1")), "no networks: every peer")
	p := proxyproto.Policy{From: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("2001:db8::/32")}}
	assert.True(t, p.Trusts(netip.MustParseAddr("10.1.2.3")))
	assert.True(t, p.Trusts(netip.MustParseAddr("::ffff:10.1.2.3")), "an IPv4-mapped address is its IPv4 one")
	assert.True(t, p.Trusts(netip.MustParseAddr("2001:db8::7")))
	assert.False(t, p.Trusts(netip.MustParseAddr("192.0.2.1")))
}
