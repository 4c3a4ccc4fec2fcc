package proxy_test

import (
	"bufio"
	"crypto/sha1"
	"encoding/base64"
	"errors"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/fastserve/fastserve/proxy"
)

// wsStreamer is a WebSocket upstream that, once switched, sends binary
// messages of 100 bytes without pause until its connection fails, each
// write ending one byte into the next frame (as a server that buffers its
// writes does): no read of its stream ends between two frames.
func wsStreamer(t testing.TB) string {
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
				req, err := http.ReadRequest(bufio.NewReader(c))
				if err != nil {
					return
				}
				sum := sha1.Sum([]byte(req.Header.Get("Sec-WebSocket-Key") + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
				head := "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: " +
					base64.StdEncoding.EncodeToString(sum[:]) + "\r\n\r\n"
				frame := append([]byte{0x82, 100}, make([]byte, 100)...)
				// The head, then the first byte of the first frame; then
				// each write is the rest of a frame and the first byte of
				// the next.
				if _, err := c.Write(append([]byte(head), frame[0])); err != nil {
					return
				}
				w := append(append([]byte(nil), frame[1:]...), frame[0])
				for range 200000 {
					if _, err := c.Write(w); err != nil {
						return
					}
					time.Sleep(50 * time.Microsecond)
				}
			}()
		}
	}()
	return "http://" + ln.Addr().String()
}

// TestGoAwayBusyTunnel: GoAway on a tunnel whose upstream streams without
// pause puts its close frame after a whole frame: the client reads whole
// messages, then a close frame 1001 (not a connection cut, 1006, after
// the grace).
func TestGoAwayBusyTunnel(t *testing.T) {
	var tunnels proxy.Tunnels
	p := newProxy(t, proxy.Config{Routes: []proxy.Route{{Path: "/", Upstreams: []string{wsStreamer(t)}}}, Tunnels: &tunnels})
	ts := startProxy(t, p)
	c := wsDial(t, ts, "/")
	require.NoError(t, c.SetReadDeadline(time.Now().Add(10*time.Second)))
	for range 100 {
		_, msg, err := c.ReadMessage()
		require.NoError(t, err)
		require.Len(t, msg, 100)
	}
	done := make(chan struct{})
	go func() {
		tunnels.GoAway(time.Second)
		close(done)
	}()
	var err error
	for n := 0; n < 1_000_000 && err == nil; n++ {
		var msg []byte
		if _, msg, err = c.ReadMessage(); err == nil && len(msg) != 100 {
			t.Fatalf("message %d: %d bytes: the stream is corrupted", n, len(msg))
		}
	}
	var ce *websocket.CloseError
	if assert.True(t, errors.As(err, &ce), "the tunnel ended without a close frame: %v", err) {
		assert.Equal(t, websocket.CloseGoingAway, ce.Code)
	}
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("GoAway did not return")
	}
}

// TestGoAwayLargeMessages: GoAway while 1 MiB messages cross both ways
// (the client's fragmented, the echo's in one frame each): the client
// reads only whole messages, as sent, then a close frame 1001; the
// upstream reads a close frame 1001 too.
func TestGoAwayLargeMessages(t *testing.T) {
	up := newWSEcho(t)
	var tunnels proxy.Tunnels
	p := newProxy(t, proxy.Config{Routes: []proxy.Route{{Path: "/", Upstreams: []string{up.url}}}, Tunnels: &tunnels})
	ts := startProxy(t, p)
	c := wsDial(t, ts, "/")
	msg := make([]byte, 1<<20)
	for i := range msg {
		msg[i] = byte(i * 7)
	}
	stop := make(chan struct{})
	sent := make(chan int, 1)
	go func() {
		n := 0
		defer func() { sent <- n }()
		_ = c.SetWriteDeadline(time.Now().Add(20 * time.Second))
		for n < 200 {
			select {
			case <-stop:
				return
			default:
			}
			if c.WriteMessage(websocket.BinaryMessage, msg) != nil {
				return
			}
			n++
		}
	}()
	require.NoError(t, c.SetReadDeadline(time.Now().Add(20*time.Second)))
	var err error
	got := 0
	for ; got < 200; got++ {
		if got == 3 {
			go tunnels.GoAway(2 * time.Second)
		}
		var b []byte
		if _, b, err = c.ReadMessage(); err != nil {
			break
		}
		require.Equal(t, msg, b, "message %d", got)
	}
	close(stop)
	var ce *websocket.CloseError
	if assert.True(t, errors.As(err, &ce), "after %d messages: %v", got, err) {
		assert.Equal(t, websocket.CloseGoingAway, ce.Code)
	}
	require.True(t, eventually(5*time.Second, func() bool { return len(up.closeCodes()) == 1 }))
	assert.Equal(t, []int{websocket.CloseGoingAway}, up.closeCodes())
	t.Logf("read %d whole messages, sent %d", got, <-sent)
}
