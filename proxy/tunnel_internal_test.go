package proxy

import (
	"io"
	"log/slog"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/valyala/fasthttp"

	"github.com/fastserve/fastserve/internal/tlstest"
)

// echoUpstream is a WebSocket echo server on 127.0.0.1:0.
func echoUpstream(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	up := websocket.Upgrader{}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := up.Upgrade(w, r, nil)
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
	return "http://" + ln.Addr().String()
}

// tunnelProxy serves a proxy to upstream over TLS from a fasthttp server,
// recording its tunnels in ts.
func tunnelProxy(t testing.TB, upstream string, ts *Tunnels) *tlstest.Server {
	t.Helper()
	p, err := New(Config{Routes: []Route{{Path: "/", Upstreams: []string{upstream}}}, Tunnels: ts,
		HealthInterval: time.Hour, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	require.NoError(t, err)
	t.Cleanup(func() { p.Close() })
	return tlstest.Start(t, &fasthttp.Server{Handler: p.Handler(nil), StreamRequestBody: true, Logger: quietLog{}})
}

type quietLog struct{}

func (quietLog) Printf(string, ...any) {}

func dialWS(t testing.TB, srv *tlstest.Server) *websocket.Conn {
	t.Helper()
	d := websocket.Dialer{TLSClientConfig: srv.TLSConfig(), HandshakeTimeout: 10 * time.Second}
	c, _, err := d.Dial("wss://"+srv.Addr+"/", nil)
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	return c
}

func echoWS(t testing.TB, c *websocket.Conn, msg string) {
	t.Helper()
	require.NoError(t, c.NetConn().SetDeadline(time.Now().Add(10*time.Second)))
	require.NoError(t, c.WriteMessage(websocket.TextMessage, []byte(msg)))
	_, got, err := c.ReadMessage()
	require.NoError(t, err)
	require.Equal(t, msg, string(got))
}

func onlyTunnel(t testing.TB, ts *Tunnels) *tunnel {
	t.Helper()
	ts.mu.Lock()
	defer ts.mu.Unlock()
	require.Len(t, ts.open, 1)
	for tun := range ts.open {
		return tun
	}
	return nil
}

// TestGoAwayOnEndedTunnel: GoAway takes its list of tunnels, then puts
// its close frames in each; a tunnel that ended in between (its client
// left) is done with. Its close frame goes nowhere: not into fasthttp's
// pooled hijacked connection, which another tunnel may hold by then (a
// close frame in another client's stream), or which holds no connection
// (a nil dereference on the GoAway goroutine: the process dies).
func TestGoAwayOnEndedTunnel(t *testing.T) {
	var ts Tunnels
	srv := tunnelProxy(t, echoUpstream(t), &ts)

	first := dialWS(t, srv)
	echoWS(t, first, "first")
	ended := onlyTunnel(t, &ts)
	// The interleaving: GoAway listed it; then its client leaves.
	first.Close()
	select {
	case <-ended.done:
	case <-time.After(5 * time.Second):
		t.Fatal("the tunnel did not end")
	}
	require.Eventually(t, func() bool { return ts.Open() == 0 }, 5*time.Second, 10*time.Millisecond)
	time.Sleep(100 * time.Millisecond) // fasthttp's hijack handler returns and pools its connection

	second := dialWS(t, srv)
	echoWS(t, second, "second")

	// Now GoAway reaches the ended tunnel.
	func() {
		defer func() {
			if r := recover(); r != nil {
				t.Errorf("GoAway on a tunnel that ended panicked: %v", r)
			}
		}()
		ended.toClient.goAway()
		ended.toUpstream.goAway()
	}()

	// The other client's stream is its own.
	require.NoError(t, second.NetConn().SetDeadline(time.Now().Add(10*time.Second)))
	require.NoError(t, second.WriteMessage(websocket.TextMessage, []byte("still mine")))
	_, got, err := second.ReadMessage()
	if assert.NoError(t, err, "the second client read another tunnel's close frame") {
		assert.Equal(t, "still mine", string(got))
	}
}
