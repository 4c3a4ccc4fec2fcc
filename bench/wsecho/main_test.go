package main

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/fastserve/fastserve/bench/internal/wsframe"
)

// listen serves wsecho's connections on 127.0.0.1:0.
func listen(t *testing.T, maxFrame int64) string {
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
			go serve(c, maxFrame)
		}
	}()
	return ln.Addr().String()
}

func dial(t *testing.T, addr string) *websocket.Conn {
	t.Helper()
	ws, resp, err := websocket.DefaultDialer.Dial("ws://"+addr+"/", nil)
	require.NoError(t, err)
	resp.Body.Close()
	t.Cleanup(func() { ws.Close() })
	require.NoError(t, ws.SetReadDeadline(time.Now().Add(5*time.Second)))
	return ws
}

// TestEcho: gorilla/websocket's client gets every message back, text and
// binary, small and large, and a pong for its ping.
func TestEcho(t *testing.T) {
	ws := dial(t, listen(t, 1<<20))
	for _, tc := range []struct {
		kind int
		msg  string
	}{
		{websocket.BinaryMessage, strings.Repeat("b", 64)},
		{websocket.TextMessage, "hello"},
		{websocket.BinaryMessage, ""},
		{websocket.BinaryMessage, strings.Repeat("0123456789", 7000)},
	} {
		require.NoError(t, ws.WriteMessage(tc.kind, []byte(tc.msg)))
		kind, got, err := ws.ReadMessage()
		require.NoError(t, err)
		assert.Equal(t, tc.kind, kind)
		assert.Equal(t, tc.msg, string(got))
	}

	pong := make(chan string, 1)
	ws.SetPongHandler(func(data string) error { pong <- data; return nil })
	require.NoError(t, ws.WriteControl(websocket.PingMessage, []byte("are you there"), time.Now().Add(time.Second)))
	require.NoError(t, ws.WriteMessage(websocket.TextMessage, []byte("after the ping")))
	_, got, err := ws.ReadMessage() // handles the pong on the way
	require.NoError(t, err)
	assert.Equal(t, "after the ping", string(got))
	assert.Equal(t, "are you there", <-pong)
}

// TestFragmented: a message in three frames comes back in the same three
// frames, and gorilla/websocket reads it whole.
func TestFragmented(t *testing.T) {
	addr := listen(t, 1<<20)
	c, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	defer c.Close()
	require.NoError(t, c.SetDeadline(time.Now().Add(5*time.Second)))
	r := bufio.NewReader(c)
	require.NoError(t, wsframe.Handshake(c, r, addr, "/"))
	parts := []wsframe.Header{
		{Op: wsframe.OpText, Length: 4},
		{Op: wsframe.OpContinuation, Length: 4},
		{Op: wsframe.OpContinuation, Fin: true, Length: 5},
	}
	var frames []byte
	for i, h := range parts {
		h.Masked, h.Mask = true, [4]byte{1, 2, 3, byte(i)}
		p := []byte([]string{"one ", "two ", "three"}[i])
		wsframe.MaskBytes(h.Mask, 0, p)
		frames = append(wsframe.AppendHeader(frames, h), p...)
	}
	_, err = c.Write(frames)
	require.NoError(t, err)
	var got []byte
	for _, want := range parts {
		h, err := wsframe.ReadHeader(r, 1<<20)
		require.NoError(t, err)
		assert.Equal(t, want, h)
		p := make([]byte, h.Length)
		_, err = io.ReadFull(r, p)
		require.NoError(t, err)
		got = append(got, p...)
	}
	assert.Equal(t, "one two three", string(got))

	ws := dial(t, addr)
	w, err := ws.NextWriter(websocket.TextMessage)
	require.NoError(t, err)
	_, err = w.Write([]byte(strings.Repeat("x", 10000))) // over gorilla's 4 KiB buffer: several frames
	require.NoError(t, err)
	require.NoError(t, w.Close())
	_, msg, err := ws.ReadMessage()
	require.NoError(t, err)
	assert.Equal(t, strings.Repeat("x", 10000), string(msg))
}

// TestCloses: a close gets a close with the same code; a frame over
// -max-frame gets 1009.
func TestCloses(t *testing.T) {
	addr := listen(t, 1000)
	ws := dial(t, addr)
	require.NoError(t, ws.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseGoingAway, "bye")))
	_, _, err := ws.ReadMessage()
	assert.True(t, websocket.IsCloseError(err, websocket.CloseGoingAway), "%v", err)

	ws = dial(t, addr)
	require.NoError(t, ws.WriteMessage(websocket.BinaryMessage, make([]byte, 1001)))
	_, _, err = ws.ReadMessage()
	assert.True(t, websocket.IsCloseError(err, websocket.CloseMessageTooBig), "%v", err)
}

// TestHealthCheck: plain GETs, as the proxies' health checks send, get 200
// on a connection kept open.
func TestHealthCheck(t *testing.T) {
	c, err := net.Dial("tcp", listen(t, 1<<20))
	require.NoError(t, err)
	defer c.Close()
	require.NoError(t, c.SetDeadline(time.Now().Add(5*time.Second)))
	r := bufio.NewReader(c)
	for range 2 {
		_, err := c.Write([]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"))
		require.NoError(t, err)
		resp, err := http.ReadResponse(r, nil)
		require.NoError(t, err)
		assert.Equal(t, http.StatusOK, resp.StatusCode)
		assert.False(t, resp.Close)
		resp.Body.Close()
	}
}
