package proxy_test

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"fmt"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/fastserve/fastserve/proxy"
)

// fooPeer is an upstream that switches to foo/1, sends first (with its
// 101) what first returns, then runs serve on the connection.
func fooPeer(t testing.TB, first []byte, serve func(c net.Conn, br *bufio.Reader)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				_ = c.SetDeadline(time.Now().Add(20 * time.Second))
				br := bufio.NewReader(c)
				if _, err := http.ReadRequest(br); err != nil {
					return
				}
				if _, err := c.Write(append([]byte("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: foo/1\r\n\r\n"), first...)); err != nil {
					return
				}
				serve(c, br)
			}()
		}
	}()
	return "http://" + ln.Addr().String()
}

func pattern(n int, seed byte) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*31) ^ seed
	}
	return b
}

// TestTunnelBytesInOrder: what the upstream sends with its 101 (more than
// the proxy's read buffer) and what the client sends with its request
// (more than fasthttp's), before the 101, arrive whole and in order.
func TestTunnelBytesInOrder(t *testing.T) {
	first := pattern(200<<10, 1)
	early := pattern(300<<10, 2)
	got := make(chan [32]byte, 1)
	up := fooPeer(t, first, func(c net.Conn, br *bufio.Reader) {
		b := make([]byte, len(early))
		if _, err := io.ReadFull(br, b); err != nil {
			got <- [32]byte{}
			return
		}
		got <- sha256.Sum256(b)
		_, _ = c.Write([]byte("done"))
	})
	p := newProxy(t, proxy.Config{Routes: []proxy.Route{{Path: "/", Upstreams: []string{up}}}})
	ts := startProxy(t, p)
	c := ts.Dial(t)
	require.NoError(t, c.SetDeadline(time.Now().Add(15*time.Second)))
	go func() {
		_, _ = c.Write(append([]byte("GET / HTTP/1.1\r\nHost: a.test\r\nConnection: Upgrade\r\nUpgrade: foo/1\r\n\r\n"), early...))
	}()
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	require.NoError(t, err)
	require.Equal(t, http.StatusSwitchingProtocols, resp.StatusCode)
	b := make([]byte, len(first)+4)
	_, err = io.ReadFull(br, b)
	require.NoError(t, err)
	assert.True(t, bytes.Equal(first, b[:len(first)]), "the upstream's first bytes, reordered or lost")
	assert.Equal(t, "done", string(b[len(first):]))
	assert.Equal(t, sha256.Sum256(early), <-got, "the client's early bytes, reordered or lost")
}

// TestTunnelHalfClose: a client that shuts its side down (TLS
// close_notify) after its last bytes still reads what the upstream sends
// after reading them, as through nginx, which passes a half-close on
// (shutdown(SHUT_WR)) and closes once both ways are done.
func TestTunnelHalfClose(t *testing.T) {
	up := fooPeer(t, nil, func(c net.Conn, br *bufio.Reader) {
		n, _ := io.Copy(io.Discard, br) // until the client's end comes through
		time.Sleep(100 * time.Millisecond)
		fmt.Fprintf(c, "read %d bytes", n)
	})
	p := newProxy(t, proxy.Config{Routes: []proxy.Route{{Path: "/", Upstreams: []string{up}}}})
	ts := startProxy(t, p)
	c := ts.Dial(t)
	require.NoError(t, c.SetDeadline(time.Now().Add(10*time.Second)))
	_, err := io.WriteString(c, "GET / HTTP/1.1\r\nHost: a.test\r\nConnection: Upgrade\r\nUpgrade: foo/1\r\n\r\n")
	require.NoError(t, err)
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	require.NoError(t, err)
	require.Equal(t, http.StatusSwitchingProtocols, resp.StatusCode)
	_, err = c.Write(pattern(5000, 3))
	require.NoError(t, err)
	require.NoError(t, c.CloseWrite())
	rest, err := io.ReadAll(br)
	assert.NoError(t, err)
	assert.Equal(t, "read 5000 bytes", string(rest))
}

// TestTunnelPermessageDeflate: WebSockets with permessage-deflate on both
// ends (the extension is negotiated through the proxy) echo, and GoAway's
// close frame arrives in a compressed stream as a valid 1001.
func TestTunnelPermessageDeflate(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	upg := websocket.Upgrader{EnableCompression: true}
	ext := make(chan string, 1)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ext <- r.Header.Get("Sec-WebSocket-Extensions")
		c, err := upg.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer c.Close()
		for {
			mt, msg, err := c.ReadMessage()
			if err != nil || c.WriteMessage(mt, msg) != nil {
				return
			}
		}
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	var tunnels proxy.Tunnels
	p := newProxy(t, proxy.Config{Routes: []proxy.Route{{Path: "/", Upstreams: []string{"http://" + ln.Addr().String()}}}, Tunnels: &tunnels})
	ts := startProxy(t, p)
	d := websocket.Dialer{TLSClientConfig: ts.TLSConfig(), HandshakeTimeout: 10 * time.Second, EnableCompression: true}
	c, resp, err := d.Dial("wss://"+ts.Addr+"/", nil)
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	assert.Contains(t, <-ext, "permessage-deflate")
	assert.Contains(t, resp.Header.Get("Sec-WebSocket-Extensions"), "permessage-deflate")
	msg := bytes.Repeat([]byte("compress me "), 50000)
	for range 5 {
		echo(t, c, string(msg))
	}
	go tunnels.GoAway(2 * time.Second)
	require.NoError(t, c.SetReadDeadline(time.Now().Add(5*time.Second)))
	_, _, err = c.ReadMessage()
	var ce *websocket.CloseError
	require.ErrorAs(t, err, &ce)
	assert.Equal(t, websocket.CloseGoingAway, ce.Code)
}

// TestTunnelHalfCloseBounded: a client that ends its side (or leaves)
// while its upstream neither sends nor closes holds its tunnel for
// ReadTimeout, not for UpgradeIdleTimeout.
func TestTunnelHalfCloseBounded(t *testing.T) {
	up := fooPeer(t, nil, func(c net.Conn, br *bufio.Reader) {
		_, _ = io.Copy(io.Discard, br)
		time.Sleep(10 * time.Second) // deaf and mute, and open
	})
	var tunnels proxy.Tunnels
	p := newProxy(t, proxy.Config{Routes: []proxy.Route{{Path: "/", Upstreams: []string{up}}}, Tunnels: &tunnels,
		ReadTimeout: time.Second, UpgradeIdleTimeout: time.Hour})
	ts := startProxy(t, p)
	c := ts.Dial(t)
	require.NoError(t, c.SetDeadline(time.Now().Add(10*time.Second)))
	_, err := io.WriteString(c, "GET / HTTP/1.1\r\nHost: a.test\r\nConnection: Upgrade\r\nUpgrade: foo/1\r\n\r\n")
	require.NoError(t, err)
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	require.NoError(t, err)
	require.Equal(t, http.StatusSwitchingProtocols, resp.StatusCode)
	require.NoError(t, c.CloseWrite())
	start := time.Now()
	_, err = io.ReadAll(br)
	assert.NoError(t, err)
	took := time.Since(start)
	assert.Less(t, took, 5*time.Second)
	assert.GreaterOrEqual(t, took, 900*time.Millisecond, "the upstream was not given ReadTimeout to end")
	assert.True(t, eventually(5*time.Second, func() bool { return tunnels.Open() == 0 }))
}
