package proxy_test

import (
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/require"

	"github.com/fastserve/fastserve/proxy"
)

// TestGoAwayWhileClientsLeave: GoAway runs while clients close their
// WebSockets, as in a drain running out of time: every tunnel ends, and
// nothing panics (a close frame for a tunnel that ended after GoAway
// listed it went to fasthttp's released hijacked connection).
func TestGoAwayWhileClientsLeave(t *testing.T) {
	up := newWSEcho(t)
	var tunnels proxy.Tunnels
	p := newProxy(t, proxy.Config{Routes: []proxy.Route{{Path: "/", Upstreams: []string{up.url}}}, Tunnels: &tunnels})
	ts := startProxy(t, p)
	const rounds, n = 5, 40
	for round := range rounds {
		conns := make([]*websocket.Conn, n)
		for i := range conns {
			conns[i] = wsDial(t, ts, "/")
			echo(t, conns[i], "hi")
		}
		require.Equal(t, n, tunnels.Open(), "round %d", round)
		var wg sync.WaitGroup
		start := make(chan struct{})
		for _, c := range conns {
			wg.Go(func() {
				<-start
				c.Close()
			})
		}
		wg.Go(func() {
			<-start
			tunnels.GoAway(time.Second)
		})
		close(start)
		wg.Wait()
		require.True(t, eventually(5*time.Second, func() bool { return tunnels.Open() == 0 && up.open.Load() == 0 }),
			"round %d: open tunnels %d, upstream connections %d", round, tunnels.Open(), up.open.Load())
	}
}
