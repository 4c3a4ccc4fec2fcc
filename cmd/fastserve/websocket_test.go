package main

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// wsUpstream is a WebSocket echo application (gorilla/websocket over
// net/http) on 127.0.0.1:0 that records the close codes its connections
// end with.
type wsUpstream struct {
	url    string
	mu     sync.Mutex
	closes []int
	open   atomic.Int64
}

func newWSUpstream(t testing.TB) *wsUpstream {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	u := &wsUpstream{url: "http://" + ln.Addr().String()}
	up := websocket.Upgrader{}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		u.open.Add(1)
		defer u.open.Add(-1)
		defer c.Close()
		for {
			mt, msg, err := c.ReadMessage()
			if err != nil {
				code := -1
				if ce, ok := err.(*websocket.CloseError); ok {
					code = ce.Code
				}
				u.mu.Lock()
				u.closes = append(u.closes, code)
				u.mu.Unlock()
				return
			}
			if c.WriteMessage(mt, msg) != nil {
				return
			}
		}
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return u
}

func (u *wsUpstream) closeCodes() []int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]int(nil), u.closes...)
}

func wsEcho(t testing.TB, c *websocket.Conn, msg string) {
	t.Helper()
	require.NoError(t, c.SetWriteDeadline(time.Now().Add(10*time.Second)))
	require.NoError(t, c.SetReadDeadline(time.Now().Add(10*time.Second)))
	require.NoError(t, c.WriteMessage(websocket.TextMessage, []byte(msg)))
	_, got, err := c.ReadMessage()
	require.NoError(t, err)
	require.Equal(t, msg, string(got))
}

// TestWebSocketThroughBinary: WebSockets through the built binary's
// proxy echo under 50 connections held idle past --idle-park-after and
// --idle-timeout and used again; show in /debug/conns and /metrics; are
// kept by a reload; and, when a drain runs out of time, get a close
// frame 1001 each way before the process exits 0.
func TestWebSocketThroughBinary(t *testing.T) {
	t.Parallel()
	up := newWSUpstream(t)
	cfg := writeFile(t, t.TempDir(), "fastserve.yaml", "routes:\n  - path: /ws/\n    proxy: ["+up.url+"]\n")
	in := serve(t, childEnv(t), "--config", cfg, "--idle-timeout", "1s", "--idle-park-after", "200ms",
		"--header-timeout", "1s", "--drain-timeout", "2s", "--keepalive-idle", "45s")

	const n = 50
	d := websocket.Dialer{TLSClientConfig: insecure, HandshakeTimeout: 10 * time.Second}
	conns := make([]*websocket.Conn, n)
	for i := range conns {
		c, resp, err := d.Dial("wss://"+in.https+"/ws/echo", nil)
		require.NoError(t, err)
		require.Equal(t, http.StatusSwitchingProtocols, resp.StatusCode)
		t.Cleanup(func() { c.Close() })
		conns[i] = c
		wsEcho(t, c, fmt.Sprint("hello ", i))
	}
	time.Sleep(1500 * time.Millisecond) // idle past --idle-park-after and --idle-timeout
	for i, c := range conns {
		wsEcho(t, c, fmt.Sprint("again ", i))
	}

	ci := debugConn(t, in, conns[0].LocalAddr())
	assert.True(t, ci.Upgraded, "/debug/conns: upgraded")
	assert.Greater(t, ci.BytesIn, uint64(0))
	assert.Greater(t, ci.BytesOut, uint64(0))
	_, m := adminGet(t, in, "/metrics")
	assert.Contains(t, m, fmt.Sprintf("fastserve_upstream_tunnels{upstream=%q} %d", up.url, n))

	// Connections to upstreams have the client connections' TCP options.
	resp, body := adminGet(t, in, "/debug/upstreams")
	require.Equal(t, http.StatusOK, resp.StatusCode)
	var ups struct {
		Conns []struct {
			Upstream string `json:"upstream"`
			Tunnel   bool   `json:"tunnel"`
			Socket   struct {
				KeepAlive     bool    `json:"keepalive"`
				KeepAliveIdle float64 `json:"keepalive_idle_seconds"`
			} `json:"socket"`
		} `json:"conns"`
	}
	require.NoError(t, json.Unmarshal([]byte(body), &ups), body)
	require.Len(t, ups.Conns, n, body)
	for _, c := range ups.Conns {
		assert.Equal(t, up.url, c.Upstream)
		assert.True(t, c.Tunnel)
		assert.True(t, c.Socket.KeepAlive)
		assert.Equal(t, 45.0, c.Socket.KeepAliveIdle)
	}

	// A reload that changes the routes keeps the tunnels.
	require.NoError(t, os.WriteFile(cfg, []byte("routes:\n  - path: /ws/\n    proxy: ["+up.url+"]\n  - path: /other/\n    proxy: ["+up.url+"]\n"), 0o644))
	from := in.mark()
	in.signal(syscall.SIGHUP)
	in.waitLog(`msg="configuration reloaded"`, from)
	for i, c := range conns {
		wsEcho(t, c, fmt.Sprint("after reload ", i))
	}

	// The drain waits for them (2 s), then says 1001 both ways.
	begin := time.Now()
	in.signal(syscall.SIGTERM)
	var wg sync.WaitGroup
	codes := make([]int, n)
	for i, c := range conns {
		wg.Go(func() {
			_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
			_, _, err := c.ReadMessage()
			if ce, ok := err.(*websocket.CloseError); ok {
				codes[i] = ce.Code
			} else {
				codes[i] = -1
				t.Logf("connection %d: %v", i, err)
			}
		})
	}
	wg.Wait()
	took := time.Since(begin)
	assert.Equal(t, 0, in.wait(10*time.Second), in.log())
	for i, code := range codes {
		assert.Equal(t, websocket.CloseGoingAway, code, "client %d", i)
	}
	assert.GreaterOrEqual(t, took, 1500*time.Millisecond, "the tunnels were closed before --drain-timeout")
	require.True(t, eventually(5*time.Second, func() bool { return len(up.closeCodes()) == n }), "upstream closes: %v", up.closeCodes())
	assert.Equal(t, strings.Repeat("1001 ", n), strings.Repeat("1001 ", len(up.closeCodes())))
	for _, code := range up.closeCodes() {
		assert.Equal(t, websocket.CloseGoingAway, code)
	}
}
