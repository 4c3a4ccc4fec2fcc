package proxy_test

import (
	"bufio"
	"io"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/fastserve/fastserve/proxy"
)

// TestGoAwayStuckClient: GoAway returns within its grace even for a
// tunnel whose client reads nothing while its upstream floods (the write
// to the client blocks, GoAway's close frame waits behind it), and the
// tunnel is gone.
func TestGoAwayStuckClient(t *testing.T) {
	var tunnels proxy.Tunnels
	p := newProxy(t, proxy.Config{Routes: []proxy.Route{{Path: "/", Upstreams: []string{wsStreamer(t)}}}, Tunnels: &tunnels})
	ts := startProxy(t, p)
	c := ts.Dial(t)
	_, err := io.WriteString(c, "GET / HTTP/1.1\r\nHost: a.test\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"+
		"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n")
	require.NoError(t, err)
	require.NoError(t, c.SetReadDeadline(time.Now().Add(5*time.Second)))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	require.NoError(t, err)
	require.Equal(t, http.StatusSwitchingProtocols, resp.StatusCode)
	time.Sleep(500 * time.Millisecond) // the client's buffers fill: the proxy's write to it blocks
	start := time.Now()
	tunnels.GoAway(500 * time.Millisecond)
	took := time.Since(start)
	assert.Less(t, took, 2*time.Second)
	assert.GreaterOrEqual(t, took, 400*time.Millisecond, "GoAway's close frame went to a client that reads nothing")
	assert.True(t, eventually(5*time.Second, func() bool { return tunnels.Open() == 0 }))
}

// TestGoAwayTwice: two GoAways at once (a drain out of time and a second
// signal's) send one close frame each way, and both return.
func TestGoAwayTwice(t *testing.T) {
	up := newWSEcho(t)
	var tunnels proxy.Tunnels
	p := newProxy(t, proxy.Config{Routes: []proxy.Route{{Path: "/", Upstreams: []string{up.url}}}, Tunnels: &tunnels})
	ts := startProxy(t, p)
	const n = 20
	conns := make([]*websocket.Conn, n)
	for i := range conns {
		conns[i] = wsDial(t, ts, "/")
		echo(t, conns[i], "hi")
	}
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() { tunnels.GoAway(2 * time.Second) })
	}
	for i, c := range conns {
		require.NoError(t, c.SetReadDeadline(time.Now().Add(5*time.Second)))
		_, _, err := c.ReadMessage()
		var ce *websocket.CloseError
		if assert.ErrorAs(t, err, &ce, "client %d", i) {
			assert.Equal(t, websocket.CloseGoingAway, ce.Code)
		}
	}
	wg.Wait()
	require.True(t, eventually(5*time.Second, func() bool { return len(up.closeCodes()) == n }))
	for _, code := range up.closeCodes() {
		assert.Equal(t, websocket.CloseGoingAway, code)
	}
	assert.Equal(t, 0, tunnels.Open())
}

// TestAbortEndsTunnels: Abort (a second signal) ends every tunnel at once,
// both connections.
func TestAbortEndsTunnels(t *testing.T) {
	up := newWSEcho(t)
	var tunnels proxy.Tunnels
	p := newProxy(t, proxy.Config{Routes: []proxy.Route{{Path: "/", Upstreams: []string{up.url}}}, Tunnels: &tunnels})
	ts := startProxy(t, p)
	const n = 10
	conns := make([]*websocket.Conn, n)
	for i := range conns {
		conns[i] = wsDial(t, ts, "/")
		echo(t, conns[i], "hi")
	}
	start := time.Now()
	p.Abort()
	for _, c := range conns {
		require.NoError(t, c.SetReadDeadline(time.Now().Add(5*time.Second)))
		_, _, err := c.ReadMessage()
		assert.Error(t, err)
	}
	assert.Less(t, time.Since(start), 2*time.Second)
	assert.True(t, eventually(5*time.Second, func() bool { return tunnels.Open() == 0 && up.open.Load() == 0 && len(p.Conns()) == 0 }),
		"tunnels %d, upstream %d, conns %d", tunnels.Open(), up.open.Load(), len(p.Conns()))
}
