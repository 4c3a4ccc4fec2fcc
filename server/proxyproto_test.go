package server_test

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pires/go-proxyproto"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/valyala/fasthttp"

	"github.com/fastserve/fastserve/server"
	"github.com/fastserve/fastserve/tune"
)

// anyPeer trusts every peer to send a PROXY header.
var anyPeer = []netip.Prefix{netip.MustParsePrefix("0.0.0.0/0"), netip.MustParsePrefix("::/0")}

// remoteAddr answers with ctx.RemoteAddr, the address the server took for
// the client.
func remoteAddr(ctx *fasthttp.RequestCtx) { ctx.WriteString(ctx.RemoteAddr().String()) }

// proxyHeader formats a PROXY protocol header (version 1 or 2) that says
// the connection comes from client to dst.
func proxyHeader(t testing.TB, version byte, client, dst string) []byte {
	t.Helper()
	src := net.TCPAddrFromAddrPort(netip.MustParseAddrPort(client))
	to := net.TCPAddrFromAddrPort(netip.MustParseAddrPort(dst))
	h := proxyproto.HeaderProxyFromAddrs(version, src, to)
	require.Equal(t, proxyproto.PROXY, h.Command, "a PROXY header for %s -> %s", client, dst)
	b, err := h.Format()
	require.NoError(t, err)
	return b
}

// localHeader is v1 UNKNOWN or v2 LOCAL, as a balancer's health check
// sends: without an address, or with one the receiver must ignore.
func localHeader(t testing.TB, version byte, withAddress bool) []byte {
	t.Helper()
	h := &proxyproto.Header{Version: version, Command: proxyproto.LOCAL, TransportProtocol: proxyproto.UNSPEC}
	if withAddress {
		h.TransportProtocol = proxyproto.TCPv4
		h.SourceAddr = &net.TCPAddr{IP: net.IPv4(203, 0, 113, 12), Port: 7000}
		h.DestinationAddr = &net.TCPAddr{IP: net.IPv4(198, 51, 100, 1), Port: 443}
	}
	b, err := h.Format()
	require.NoError(t, err)
	return b
}

// dialRaw opens a TCP connection to the server from the local address
// from ("" for any), closed at cleanup.
func dialRaw(t testing.TB, ts *testServer, from string) *net.TCPConn {
	t.Helper()
	d := &net.Dialer{Timeout: 5 * time.Second}
	if from != "" {
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(from)}
	}
	c, err := d.Dial("tcp", ts.Addr)
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	return c.(*net.TCPConn)
}

// prefixed writes pre in the same write as the first bytes written on it,
// so that a PROXY header and the ClientHello leave in one segment.
type prefixed struct {
	net.Conn
	pre []byte
}

func (p *prefixed) Write(b []byte) (int, error) {
	if p.pre == nil {
		return p.Conn.Write(b)
	}
	buf := append(p.pre, b...)
	p.pre = nil
	n, err := p.Conn.Write(buf)
	return max(n-(len(buf)-len(b)), 0), err
}

// tlsOver runs a TLS handshake over raw, within 5 s.
func tlsOver(ts *testServer, raw net.Conn) (*tls.Conn, error) {
	c := tls.Client(raw, ts.TLSConfig())
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return c, c.HandshakeContext(ctx)
}

// getRemote sends a GET on c and returns the remote address the handler
// saw.
func getRemote(t testing.TB, c net.Conn) string {
	t.Helper()
	resp := roundTrip(t, c, bufio.NewReader(c), "GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
	require.Equal(t, fasthttp.StatusOK, resp.StatusCode())
	return string(resp.Body())
}

// serverConns is the server's /debug/conns.
func serverConns(t testing.TB, ts *testServer) []server.ConnInfo {
	t.Helper()
	var doc struct{ Conns []server.ConnInfo }
	require.NoError(t, json.Unmarshal(adminGet(t, ts, "/debug/conns").Body(), &doc))
	return doc.Conns
}

// assertReset reads c until the server ends it and checks that it was
// reset with nothing written, within 3 s.
func assertReset(t testing.TB, c net.Conn) {
	t.Helper()
	cl := readUntilClosed(c, time.Now(), 3*time.Second)
	assert.Empty(t, cl.data, "nothing written")
	assert.Truef(t, errors.Is(cl.err, syscall.ECONNRESET), "reset, got %v after %v", cl.err, cl.after)
}

// TestProxyProtocolClientAddress: behind a balancer that sends a v1 or
// v2 header, the handler, the access log and /debug/conns see the
// header's client address, and /debug/conns the balancer's beside it.
func TestProxyProtocolClientAddress(t *testing.T) {
	for _, tc := range []struct {
		name    string
		version byte
		client  string
		logged  string // as the access log writes it
	}{
		{"v1 TCP4", 1, "203.0.113.7:41000", "203.0.113.7"},
		{"v1 TCP6", 1, "[2001:db8::7]:41001", "2001:db8::7"},
		{"v2 TCP4", 2, "203.0.113.8:41002", "203.0.113.8"},
		{"v2 TCP6", 2, "[2001:db8::8]:41003", "2001:db8::8"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			log := &logBuffer{}
			ts := start(t, server.Config{ProxyProtocol: true, ProxyProtocolFrom: anyPeer, AccessLog: log, AdminAddr: "127.0.0.1:0"}, remoteAddr)
			dst := "198.51.100.1:443"
			if strings.HasPrefix(tc.client, "[") {
				dst = "[2001:db8::1]:443"
			}
			raw := dialRaw(t, ts, "")
			_, err := raw.Write(proxyHeader(t, tc.version, tc.client, dst))
			require.NoError(t, err)
			c, err := tlsOver(ts, raw)
			require.NoError(t, err)

			assert.Equal(t, tc.client, getRemote(t, c), "ctx.RemoteAddr")
			require.Eventually(t, func() bool { return strings.Count(log.String(), "\n") == 1 },
				2*time.Second, 10*time.Millisecond, "one access log line: %q", log.String())
			assert.True(t, strings.HasPrefix(log.String(), tc.logged+" - - ["), "access log line %q starts with %s", log.String(), tc.logged)

			conns := serverConns(t, ts)
			require.Len(t, conns, 1)
			assert.Equal(t, tc.client, conns[0].Remote, "/debug/conns remote: the client")
			assert.Equal(t, raw.LocalAddr().String(), conns[0].Peer, "/debug/conns peer: the balancer")
			if assert.NotNil(t, conns[0].Socket, "tune.Inspect reaches the socket: %s", conns[0].SocketError) {
				assert.Equal(t, "ESTABLISHED", conns[0].Socket.State)
			}
			assert.Equal(t, uint64(1), ts.Stats().Handshakes)
		})
	}
}

// TestProxyProtocolLocal: a v2 LOCAL or v1 UNKNOWN header (a balancer's
// health check) is accepted and keeps the socket's address.
func TestProxyProtocolLocal(t *testing.T) {
	for _, tc := range []struct {
		name        string
		version     byte
		withAddress bool
	}{
		{"v1 UNKNOWN", 1, false},
		{"v2 LOCAL", 2, false},
		{"v2 LOCAL with an address", 2, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ts := start(t, server.Config{ProxyProtocol: true, ProxyProtocolFrom: anyPeer, AdminAddr: "127.0.0.1:0"}, remoteAddr)
			raw := dialRaw(t, ts, "")
			_, err := raw.Write(localHeader(t, tc.version, tc.withAddress))
			require.NoError(t, err)
			c, err := tlsOver(ts, raw)
			require.NoError(t, err)
			assert.Equal(t, raw.LocalAddr().String(), getRemote(t, c))
			conns := serverConns(t, ts)
			require.Len(t, conns, 1)
			assert.Equal(t, raw.LocalAddr().String(), conns[0].Remote)
			assert.Empty(t, conns[0].Peer, "no header address: no separate peer")
		})
	}
}

// TestProxyProtocolRefused: a malformed, incomplete or missing header is
// reset with nothing written, counted by reason, and logged.
func TestProxyProtocolRefused(t *testing.T) {
	v2 := proxyHeader(t, 2, "203.0.113.9:1000", "198.51.100.1:443")
	badCommand := append([]byte{}, v2...)
	badCommand[12] = 0x2F // version 2, command 15
	shortLength := append([]byte{}, v2...)
	shortLength[15] = 4 // TCP4 needs 12 address bytes
	for _, tc := range []struct {
		name   string
		send   []byte
		close  bool   // half-close after sending: the header is cut short
		reason string // the label in /metrics
		get    func(server.Rejections) uint64
	}{
		{"v1 missing fields", []byte("PROXY TCP4 203.0.113.9 198.51.100.1\r\n"), false, "proxy_header_invalid", invalid},
		{"v1 bad address", []byte("PROXY TCP4 203.0.113.999 198.51.100.1 1000 443\r\n"), false, "proxy_header_invalid", invalid},
		{"v1 without CR", []byte("PROXY TCP4 203.0.113.9 198.51.100.1 1000 443\n"), false, "proxy_header_invalid", invalid},
		{"v1 too long", []byte("PROXY TCP4 " + strings.Repeat("1", 120) + "\r\n"), false, "proxy_header_invalid", invalid},
		{"v1 cut short", []byte("PROXY TCP4 203.0.113.9 "), true, "proxy_header_invalid", invalid},
		{"v2 bad command", badCommand, false, "proxy_header_invalid", invalid},
		{"v2 short length", shortLength, false, "proxy_header_invalid", invalid},
		{"v2 cut short", v2[:20], true, "proxy_header_invalid", invalid},
		{"a TLS record", []byte("\x16\x03\x01\x00\x05hello"), false, "proxy_header_missing", missing},
		{"plain HTTP", []byte("GET / HTTP/1.1\r\nHost: localhost\r\n\r\n"), false, "proxy_header_missing", missing},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ts := start(t, server.Config{ProxyProtocol: true, ProxyProtocolFrom: anyPeer}, remoteAddr)
			raw := dialRaw(t, ts, "")
			_, err := raw.Write(tc.send)
			require.NoError(t, err)
			if tc.close {
				require.NoError(t, raw.CloseWrite())
			}
			assertReset(t, raw)
			assertStat(t, ts, tc.reason, func(st server.Stats) uint64 { return tc.get(st.Rejected) }, 1)
			st := ts.Stats()
			assert.Zero(t, st.Handshakes)
			assert.Zero(t, st.HandshakeFailures, "counted as a refusal, not as a failed handshake")
			var b strings.Builder
			ts.WritePrometheus(&b)
			assert.Contains(t, strings.Split(b.String(), "\n"), `fastserve_rejected_total{limit="`+tc.reason+`"} 1`)
			assert.Contains(t, ts.Logs.String(), `msg="connection refused" reason=`+tc.reason+" peer="+raw.LocalAddr().String())
			assertOpen(t, ts, 0)
		})
	}

	// A TLS client that sends no header fails its handshake.
	ts := start(t, server.Config{ProxyProtocol: true, ProxyProtocolFrom: anyPeer}, remoteAddr)
	_, err := tlsOver(ts, dialRaw(t, ts, ""))
	assert.Error(t, err)
	assertStat(t, ts, "ProxyHeaderMissing", func(st server.Stats) uint64 { return st.Rejected[server.RejectProxyHeaderMissing] }, 1)
}

func invalid(r server.Rejections) uint64 { return r[server.RejectProxyHeaderInvalid] }
func missing(r server.Rejections) uint64 { return r[server.RejectProxyHeaderMissing] }

// TestProxyProtocolTrust: a peer in ProxyProtocolFrom must send a header;
// one outside it is served as a direct client without one, and refused
// with one.
func TestProxyProtocolTrust(t *testing.T) {
	cfg := server.Config{
		ProxyProtocol:     true,
		ProxyProtocolFrom: []netip.Prefix{netip.MustParsePrefix("127.0.0.2/32"), netip.MustParsePrefix("10.0.0.0/8")},
	}
	ts := start(t, cfg, remoteAddr)
	header := proxyHeader(t, 2, "203.0.113.10:5000", "198.51.100.1:443")

	t.Run("trusted with header", func(t *testing.T) {
		raw := dialRaw(t, ts, "127.0.0.2")
		_, err := raw.Write(header)
		require.NoError(t, err)
		c, err := tlsOver(ts, raw)
		require.NoError(t, err)
		assert.Equal(t, "203.0.113.10:5000", getRemote(t, c))
	})
	t.Run("trusted without header", func(t *testing.T) {
		raw := dialRaw(t, ts, "127.0.0.2")
		_, err := tlsOver(ts, raw)
		assert.Error(t, err)
		assertStat(t, ts, "ProxyHeaderMissing", func(st server.Stats) uint64 { return st.Rejected[server.RejectProxyHeaderMissing] }, 1)
	})
	t.Run("untrusted without header", func(t *testing.T) {
		raw := dialRaw(t, ts, "127.0.0.1")
		c, err := tlsOver(ts, raw)
		require.NoError(t, err)
		assert.Equal(t, raw.LocalAddr().String(), getRemote(t, c), "served as a direct client")
	})
	for _, version := range []byte{1, 2} {
		t.Run(fmt.Sprintf("untrusted with header v%d", version), func(t *testing.T) {
			before := ts.Stats().Rejected[server.RejectProxyHeaderUntrusted]
			raw := dialRaw(t, ts, "127.0.0.1")
			_, err := raw.Write(proxyHeader(t, version, "203.0.113.10:5000", "198.51.100.1:443"))
			require.NoError(t, err)
			assertReset(t, raw)
			assertStat(t, ts, "ProxyHeaderUntrusted", func(st server.Stats) uint64 { return st.Rejected[server.RejectProxyHeaderUntrusted] }, before+1)
		})
	}
	assert.Contains(t, ts.Logs.String(), `msg="connection refused" reason=proxy_header_untrusted peer=127.0.0.1:`)
	assert.Equal(t, uint64(2), ts.Stats().Handshakes)
}

// TestProxyProtocolTimeout: a trusted peer that sends nothing, or part of
// a header, is reset once ProxyProtocolTimeout has passed (not the far
// longer HandshakeTimeout), and counted.
func TestProxyProtocolTimeout(t *testing.T) {
	const timeout = 300 * time.Millisecond
	for _, tc := range []struct {
		name string
		tune tune.Options
		send []byte
	}{
		// With TCP_DEFER_ACCEPT (the default) the kernel hands over a
		// connection only once bytes arrive; without it, at once.
		{"nothing, no deferred accept", noDeferAccept(), nil},
		{"part of a v1 header", tune.Options{}, []byte("PROXY TCP4 203.0.113.9 ")},
		{"part of a v2 header", tune.Options{}, proxyHeader(t, 2, "203.0.113.9:1000", "198.51.100.1:443")[:14]},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ts := start(t, server.Config{
				ProxyProtocol: true, ProxyProtocolFrom: anyPeer, ProxyProtocolTimeout: timeout, HandshakeTimeout: 10 * time.Second, Tune: tc.tune,
			}, remoteAddr)
			raw := dialRaw(t, ts, "")
			if tc.send != nil {
				_, err := raw.Write(tc.send)
				require.NoError(t, err)
			}
			cl := readUntilClosed(raw, time.Now(), timeout+closeMargin+time.Second)
			assertClosedWithin(t, cl, timeout*9/10, timeout+closeMargin)
			assert.Truef(t, errors.Is(cl.err, syscall.ECONNRESET), "reset, got %v", cl.err)
			assert.Empty(t, cl.data, "nothing written")
			t.Logf("reset after %v (ProxyProtocolTimeout %v)", cl.after, timeout)
			assertStat(t, ts, "ProxyHeaderTimeout", func(st server.Stats) uint64 { return st.Rejected[server.RejectProxyHeaderTimeout] }, 1)
			assert.Zero(t, ts.Stats().HandshakeFailures)
		})
	}
}

// TestProxyProtocolMaxConnsPerIP: MaxConnsPerIP counts the header's
// address, not the balancer's: two clients behind one balancer socket
// address are counted apart, and one client over its limit is refused.
func TestProxyProtocolMaxConnsPerIP(t *testing.T) {
	ts := start(t, server.Config{ProxyProtocol: true, ProxyProtocolFrom: anyPeer, MaxConnsPerIP: 1}, remoteAddr)
	open := func(client string) (*tls.Conn, error) {
		raw := dialRaw(t, ts, "127.0.0.1")
		_, err := raw.Write(proxyHeader(t, 2, client, "198.51.100.1:443"))
		require.NoError(t, err)
		return tlsOver(ts, raw)
	}
	a, err := open("198.51.100.20:1000")
	require.NoError(t, err)
	b, err := open("198.51.100.21:1000")
	require.NoError(t, err, "another client behind the same balancer address")
	assert.Equal(t, "198.51.100.20:1000", getRemote(t, a))
	assert.Equal(t, "198.51.100.21:1000", getRemote(t, b))

	// A second connection from 198.51.100.20 is reset once its header is
	// read.
	raw := dialRaw(t, ts, "127.0.0.1")
	_, err = raw.Write(proxyHeader(t, 2, "198.51.100.20:1001", "198.51.100.1:443"))
	require.NoError(t, err)
	assertReset(t, raw)
	assertStat(t, ts, "MaxConnsPerIP", func(st server.Stats) uint64 { return st.Rejected[server.RejectMaxConnsPerIP] }, 1)
	assertOpen(t, ts, 2)

	// Closing the first frees its client's slot.
	require.NoError(t, a.Close())
	assertOpen(t, ts, 1)
	c, err := open("198.51.100.20:1002")
	require.NoError(t, err)
	assert.Equal(t, "198.51.100.20:1002", getRemote(t, c))
	assert.Equal(t, uint64(1), ts.Stats().Rejected[server.RejectMaxConnsPerIP])
}

// TestProxyProtocolSegments: a header split across TCP segments is put
// together, and TLS bytes that arrive in the header's segment reach the
// handshake.
func TestProxyProtocolSegments(t *testing.T) {
	ts := start(t, server.Config{ProxyProtocol: true, ProxyProtocolFrom: anyPeer}, remoteAddr)
	for _, version := range []byte{1, 2} {
		header := proxyHeader(t, version, "203.0.113.11:6000", "198.51.100.1:443")
		t.Run(fmt.Sprintf("split v%d", version), func(t *testing.T) {
			raw := dialRaw(t, ts, "")
			require.NoError(t, raw.SetNoDelay(true))
			// Three pieces, 50 ms apart: three segments, each read alone.
			for _, piece := range [][]byte{header[:3], header[3:9], header[9:]} {
				_, err := raw.Write(piece)
				require.NoError(t, err)
				time.Sleep(50 * time.Millisecond)
			}
			c, err := tlsOver(ts, raw)
			require.NoError(t, err)
			assert.Equal(t, "203.0.113.11:6000", getRemote(t, c))
		})
		t.Run(fmt.Sprintf("in the ClientHello's segment v%d", version), func(t *testing.T) {
			raw := dialRaw(t, ts, "")
			c, err := tlsOver(ts, &prefixed{Conn: raw, pre: header})
			require.NoError(t, err)
			assert.Equal(t, "203.0.113.11:6000", getRemote(t, c))
		})
	}
	assert.Zero(t, ts.Stats().Rejected)
}

// TestProxyProtocolSilentPeersDoNotStallOthers: the header is read on the
// connection's own goroutine, not in the accept loop: while silent peers
// wait out a long ProxyProtocolTimeout on the one listener, a balancer's
// connection with its header is served at once.
func TestProxyProtocolSilentPeersDoNotStallOthers(t *testing.T) {
	ts := start(t, server.Config{
		ProxyProtocol: true, ProxyProtocolFrom: anyPeer, ProxyProtocolTimeout: 5 * time.Second, Listeners: 1, Tune: noDeferAccept(),
	}, remoteAddr)
	for range 3 {
		dialRaw(t, ts, "")
	}
	assertOpen(t, ts, 3)
	t0 := time.Now()
	raw := dialRaw(t, ts, "")
	_, err := raw.Write(proxyHeader(t, 2, "203.0.113.13:8000", "198.51.100.1:443"))
	require.NoError(t, err)
	c, err := tlsOver(ts, raw)
	require.NoError(t, err)
	assert.Equal(t, "203.0.113.13:8000", getRemote(t, c))
	took := time.Since(t0)
	t.Logf("served in %v beside 3 silent peers", took)
	assert.Less(t, took, time.Second, "served before the silent peers' timeout")
}
