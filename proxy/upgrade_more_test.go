package proxy_test

import (
	"crypto/tls"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/fastserve/fastserve/proxy"
)

// TestUpgradeTLSUpstream: a WebSocket to an https:// upstream echoes
// large messages, then GoAway says 1001 both ways.
func TestUpgradeTLSUpstream(t *testing.T) {
	closes := make(chan int, 1)
	upg := websocket.Upgrader{}
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := upg.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer c.Close()
		for {
			mt, msg, err := c.ReadMessage()
			if err != nil {
				code := -1
				if ce, ok := err.(*websocket.CloseError); ok {
					code = ce.Code
				}
				closes <- code
				return
			}
			if c.WriteMessage(mt, msg) != nil {
				return
			}
		}
	}))
	t.Cleanup(srv.Close)
	var tunnels proxy.Tunnels
	p := newProxy(t, proxy.Config{Routes: []proxy.Route{{Path: "/", Upstreams: []string{srv.URL}}}, Tunnels: &tunnels,
		TLS: &tls.Config{RootCAs: srv.Client().Transport.(*http.Transport).TLSClientConfig.RootCAs}})
	ts := startProxy(t, p)
	c := wsDial(t, ts, "/")
	for i := range 5 {
		echo(t, c, strings.Repeat(string(rune('a'+i)), 200<<10))
	}
	go tunnels.GoAway(2 * time.Second)
	require.NoError(t, c.SetReadDeadline(time.Now().Add(5*time.Second)))
	_, _, err := c.ReadMessage()
	var ce *websocket.CloseError
	require.ErrorAs(t, err, &ce)
	assert.Equal(t, websocket.CloseGoingAway, ce.Code)
	select {
	case code := <-closes:
		assert.Equal(t, websocket.CloseGoingAway, code)
	case <-time.After(5 * time.Second):
		t.Fatal("the upstream saw no close")
	}
}

// TestUpgradeUpstreamNeverAnswers: an upgrade whose upstream never
// answers is 504 after ReadTimeout, and its upstream connection closed;
// one whose client leaves meanwhile closes it within moments.
func TestUpgradeUpstreamNeverAnswers(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { ln.Close() })
	closed := make(chan time.Time, 4)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				_ = c.SetDeadline(time.Now().Add(20 * time.Second))
				b := make([]byte, 4096)
				for {
					if _, err := c.Read(b); err != nil {
						closed <- time.Now()
						return
					}
				}
			}()
		}
	}()
	p := newProxy(t, proxy.Config{Routes: []proxy.Route{{Path: "/", Upstreams: []string{"http://" + ln.Addr().String()}}},
		ReadTimeout: time.Second})
	ts := startProxy(t, p)
	start := time.Now()
	_, resp, _ := proxyExchange(t, ts, "GET / HTTP/1.1\r\nHost: a.test\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n")
	assert.Equal(t, http.StatusGatewayTimeout, resp.StatusCode)
	assert.Less(t, time.Since(start), 3*time.Second)
	select {
	case <-closed:
	case <-time.After(3 * time.Second):
		t.Fatal("the upstream connection stayed open")
	}

	c := ts.Dial(t)
	_, err = c.Write([]byte("GET / HTTP/1.1\r\nHost: a.test\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n"))
	require.NoError(t, err)
	time.Sleep(100 * time.Millisecond)
	left := time.Now()
	c.Close()
	select {
	case at := <-closed:
		assert.Less(t, at.Sub(left), 800*time.Millisecond, "the upstream connection outlived its client")
	case <-time.After(3 * time.Second):
		t.Fatal("the upstream connection stayed open")
	}
}

// TestUpgradeNoH2C: h2c goes upstream in no Upgrade list, as the README
// says ("h2c is never forwarded"): not alone, and not beside websocket.
func TestUpgradeNoH2C(t *testing.T) {
	up := newRawUpstream(t, func(s seen) string { return "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok" })
	p := newProxy(t, proxy.Config{Routes: []proxy.Route{{Path: "/", Upstreams: []string{up.URL()}}}})
	ts := startProxy(t, p)
	for _, v := range []string{"h2c", "h2c, websocket", "websocket, H2C"} {
		proxyExchange(t, ts, "GET / HTTP/1.1\r\nHost: a.test\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: "+v+"\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n")
	}
	for _, s := range up.Seen() {
		for _, u := range s.header("Upgrade") {
			assert.NotContains(t, strings.ToLower(u), "h2c", "forwarded: %q", s.Head)
		}
	}
}
