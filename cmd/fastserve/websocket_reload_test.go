package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestWebSocketReloadKeepsThemVisible: tunnels a reload keeps (their
// route's proxy replaced) stay in /debug/upstreams and in /metrics'
// fastserve_upstream_tunnels, as they stay open; a second signal ends
// them at once.
func TestWebSocketReloadKeepsThemVisible(t *testing.T) {
	t.Parallel()
	up := newWSUpstream(t)
	cfg := writeFile(t, t.TempDir(), "fastserve.yaml", "routes:\n  - path: /ws/\n    proxy: ["+up.url+"]\n")
	in := serve(t, childEnv(t), "--config", cfg, "--drain-timeout", "20s")
	const n = 3
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
	tunnels := func() int {
		_, body := adminGet(t, in, "/debug/upstreams")
		var ups struct {
			Conns []struct {
				Tunnel bool `json:"tunnel"`
			} `json:"conns"`
		}
		require.NoError(t, json.Unmarshal([]byte(body), &ups), body)
		k := 0
		for _, c := range ups.Conns {
			if c.Tunnel {
				k++
			}
		}
		return k
	}
	gauge := fmt.Sprintf("fastserve_upstream_tunnels{upstream=%q} %d", up.url, n)
	require.Equal(t, n, tunnels())
	_, m := adminGet(t, in, "/metrics")
	require.Contains(t, m, gauge)

	// A reload that adds a route: the /ws/ route's proxy is a new one.
	require.NoError(t, os.WriteFile(cfg, []byte("routes:\n  - path: /ws/\n    proxy: ["+up.url+"]\n  - path: /other/\n    proxy: ["+up.url+"]\n"), 0o644))
	from := in.mark()
	in.signal(syscall.SIGHUP)
	in.waitLog(`msg="configuration reloaded"`, from)
	time.Sleep(300 * time.Millisecond) // the old proxy retires: no request in flight
	for i, c := range conns {
		wsEcho(t, c, fmt.Sprint("after reload ", i))
	}
	assert.Equal(t, n, tunnels(), "/debug/upstreams after the reload")
	_, m = adminGet(t, in, "/metrics")
	assert.True(t, strings.Contains(m, gauge), "/metrics after the reload has no %q", gauge)

	// Two signals: every connection ends at once.
	in.signal(syscall.SIGTERM)
	time.Sleep(200 * time.Millisecond)
	begin := time.Now()
	in.signal(syscall.SIGTERM)
	assert.Equal(t, 0, in.wait(10*time.Second), in.log())
	assert.Less(t, time.Since(begin), 3*time.Second, "the second signal waited")
	assert.True(t, eventually(5*time.Second, func() bool { return up.open.Load() == 0 }), "upstream WebSockets open: %d", up.open.Load())
}
