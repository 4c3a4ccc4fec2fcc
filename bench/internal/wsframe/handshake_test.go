package wsframe_test

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/fastserve/fastserve/bench/internal/wsframe"
)

// TestClientAgainstGorilla: Handshake and client frames against
// gorilla/websocket's echo server.
func TestClientAgainstGorilla(t *testing.T) {
	up := websocket.Upgrader{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer c.Close()
		for {
			mt, msg, err := c.ReadMessage()
			if err != nil {
				return
			}
			if c.WriteMessage(mt, msg) != nil {
				return
			}
		}
	}))
	t.Cleanup(srv.Close)
	c, err := net.Dial("tcp", srv.Listener.Addr().String())
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	require.NoError(t, c.SetDeadline(time.Now().Add(5*time.Second)))
	r := bufio.NewReader(c)
	require.NoError(t, wsframe.Handshake(c, r, srv.Listener.Addr().String(), "/echo"))

	for _, size := range []int{0, 64, 300, 70000} {
		payload := bytes.Repeat([]byte("0123456789"), size/10+1)[:size]
		h := wsframe.Header{Fin: true, Op: wsframe.OpBinary, Length: int64(size), Masked: true, Mask: [4]byte{7, 1, 9, 3}}
		masked := bytes.Clone(payload)
		wsframe.MaskBytes(h.Mask, 0, masked)
		_, err := c.Write(append(wsframe.AppendHeader(nil, h), masked...))
		require.NoError(t, err)
		got, err := wsframe.ReadHeader(r, 1<<20)
		require.NoError(t, err, "size %d", size)
		assert.Equal(t, wsframe.Header{Fin: true, Op: wsframe.OpBinary, Length: int64(size)}, got)
		echo := make([]byte, got.Length)
		_, err = io.ReadFull(r, echo)
		require.NoError(t, err)
		assert.Equal(t, payload, echo, "size %d", size)
	}
}

// TestAcceptAgainstGorilla: Accept and server frames against
// gorilla/websocket's client.
func TestAcceptAgainstGorilla(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { ln.Close() })
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		r := bufio.NewReader(c)
		req, err := http.ReadRequest(r)
		if err != nil || !wsframe.IsUpgrade(req) || wsframe.Accept(c, req) != nil {
			return
		}
		h, err := wsframe.ReadHeader(r, 1<<20)
		if err != nil || !h.Masked {
			return
		}
		p := make([]byte, h.Length)
		if _, err := io.ReadFull(r, p); err != nil {
			return
		}
		wsframe.MaskBytes(h.Mask, 0, p)
		h.Masked = false
		_, _ = c.Write(append(wsframe.AppendHeader(nil, h), p...))
	}()
	ws, resp, err := websocket.DefaultDialer.Dial("ws://"+ln.Addr().String()+"/", nil)
	require.NoError(t, err)
	resp.Body.Close()
	t.Cleanup(func() { ws.Close() })
	require.NoError(t, ws.SetReadDeadline(time.Now().Add(5*time.Second)))
	msg := []byte(strings.Repeat("x", 200))
	require.NoError(t, ws.WriteMessage(websocket.TextMessage, msg))
	mt, got, err := ws.ReadMessage()
	require.NoError(t, err)
	assert.Equal(t, websocket.TextMessage, mt)
	assert.Equal(t, msg, got)
}

// TestHandshakeRefusals: an answer other than a proper 101 is an error,
// and so is a request that is not a proper handshake.
func TestHandshakeRefusals(t *testing.T) {
	for _, tc := range []struct{ name, answer, want string }{
		{"404", "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n", "status 404"},
		{"wrong accept", "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: x\r\n\r\n", "Sec-WebSocket-Accept"},
		{"no upgrade", "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\n\r\n", "Upgrade"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var sent bytes.Buffer
			err := wsframe.Handshake(&sent, bufio.NewReader(strings.NewReader(tc.answer)), "h", "/")
			require.ErrorIs(t, err, wsframe.ErrHandshake)
			assert.Contains(t, err.Error(), tc.want)
			assert.True(t, strings.HasPrefix(sent.String(), "GET / HTTP/1.1\r\nHost: h\r\n"), "%q", sent.String())
		})
	}
	for _, tc := range []struct{ name, req, want string }{
		{"version 8", "GET / HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 8\r\n\r\n", "Version"},
		{"short key", "GET / HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: abcd\r\nSec-WebSocket-Version: 13\r\n\r\n", "Key"},
		{"post", "POST / HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n", "method"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, err := http.ReadRequest(bufio.NewReader(strings.NewReader(tc.req)))
			require.NoError(t, err)
			assert.True(t, wsframe.IsUpgrade(req))
			var answer bytes.Buffer
			err = wsframe.Accept(&answer, req)
			require.ErrorIs(t, err, wsframe.ErrHandshake)
			assert.Contains(t, err.Error(), tc.want)
			assert.True(t, strings.HasPrefix(answer.String(), "HTTP/1.1 400 "), "%q", answer.String())
		})
	}
}

// TestAcceptKey: RFC 6455 section 1.3's example.
func TestAcceptKey(t *testing.T) {
	assert.Equal(t, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=", wsframe.AcceptKey("dGhlIHNhbXBsZSBub25jZQ=="))
}
