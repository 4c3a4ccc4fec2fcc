package main

// The proxy's tunnels (WebSocket and other upgrades) served by the engine
// in this process, as runServe wires them: the engine's connection under
// fasthttp's hijacked one (its lazy deadlines, its head scanner, its
// limits), under the race detector.

import (
	"bufio"
	"context"
	"crypto/tls"
	be "encoding/binary"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/fastserve/fastserve/certs"
	"github.com/fastserve/fastserve/internal/selfsigned"
	"github.com/fastserve/fastserve/proxy"
	"github.com/fastserve/fastserve/server"
)

// engineProxy is an engine serving a proxy to one upstream on
// 127.0.0.1:0, its tunnels in tunnels, as runServe wires them.
type engineProxy struct {
	srv     *server.Server
	p       *proxy.Proxy
	addr    string
	tunnels *proxy.Tunnels
	stop    func() // ends Serve's context (a drain) and waits for Serve
}

func startEngineProxy(t testing.TB, upstream string, cfg server.Config, pc proxy.Config) *engineProxy {
	t.Helper()
	dir := t.TempDir()
	certPEM, keyPEM, err := selfsigned.PEM(time.Hour, "localhost", "127.0.0.1")
	require.NoError(t, err)
	kp := certs.KeyPair{CertFile: filepath.Join(dir, "c.crt"), KeyFile: filepath.Join(dir, "c.key")}
	require.NoError(t, os.WriteFile(kp.CertFile, certPEM, 0o600))
	require.NoError(t, os.WriteFile(kp.KeyFile, keyPEM, 0o600))
	e := &engineProxy{tunnels: &proxy.Tunnels{}}
	pc.Routes = []proxy.Route{{Path: "/", Upstreams: []string{upstream}}}
	pc.Tunnels = e.tunnels
	pc.HealthInterval = time.Hour
	pc.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	e.p, err = proxy.New(pc)
	require.NoError(t, err)
	t.Cleanup(func() { e.p.Close() })
	cfg.Addr = "127.0.0.1:0"
	cfg.TLS.Certificates = []certs.KeyPair{kp}
	cfg.StreamRequestBody = true
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	cfg.BeforeCut = func() { e.tunnels.GoAway(time.Second) }
	e.srv, err = server.New(cfg, e.p.Handler(nil))
	require.NoError(t, err)
	e.addr = e.srv.Addrs()[0].String()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.srv.Serve(ctx) }()
	var stopped bool
	e.stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		select {
		case err := <-done:
			assert.NoError(t, err)
		case <-time.After(20 * time.Second):
			t.Error("Serve did not return")
		}
	}
	t.Cleanup(e.stop)
	return e
}

func (e *engineProxy) dial(t testing.TB) *tls.Conn {
	t.Helper()
	d := &tls.Dialer{NetDialer: &net.Dialer{Timeout: 5 * time.Second}, Config: &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"http/1.1"}}}
	c, err := d.DialContext(context.Background(), "tcp", e.addr)
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	require.NoError(t, c.SetDeadline(time.Now().Add(15*time.Second)))
	return c.(*tls.Conn)
}

func (e *engineProxy) wsDial(t testing.TB) *websocket.Conn {
	t.Helper()
	d := websocket.Dialer{TLSClientConfig: insecure, HandshakeTimeout: 10 * time.Second}
	c, resp, err := d.Dial("wss://"+e.addr+"/ws", nil)
	require.NoError(t, err)
	require.Equal(t, http.StatusSwitchingProtocols, resp.StatusCode)
	t.Cleanup(func() { c.Close() })
	return c
}

// wsRequest is a WebSocket upgrade request.
const wsRequest = "GET /ws HTTP/1.1\r\nHost: localhost\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n" +
	"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"

// clientFrame is a masked text frame, its mask key zero: the payload goes
// on the wire as it is.
func clientFrame(payload string) []byte {
	b := []byte{0x81}
	switch n := len(payload); {
	case n < 126:
		b = append(b, 0x80|byte(n))
	default:
		b = append(b, 0x80|126)
		b = be.BigEndian.AppendUint16(b, uint16(n))
	}
	b = append(b, 0, 0, 0, 0)
	return append(b, payload...)
}

// readHead reads a response head.
func readHead(t testing.TB, br *bufio.Reader) string {
	t.Helper()
	var h strings.Builder
	for {
		line, err := br.ReadString('\n')
		require.NoError(t, err, "head so far: %q", h.String())
		h.WriteString(line)
		if line == "\r\n" {
			return h.String()
		}
	}
}

// readFrame reads a server's (unmasked) frame's payload.
func readFrame(t testing.TB, br *bufio.Reader) (byte, string) {
	t.Helper()
	var h [2]byte
	_, err := io.ReadFull(br, h[:])
	require.NoError(t, err)
	n := int(h[1] & 0x7f)
	switch n {
	case 126:
		var l [2]byte
		_, err = io.ReadFull(br, l[:])
		require.NoError(t, err)
		n = int(be.BigEndian.Uint16(l[:]))
	case 127:
		t.Fatal("a frame too large")
	}
	p := make([]byte, n)
	_, err = io.ReadFull(br, p)
	require.NoError(t, err)
	return h[0] & 0x0f, string(p)
}

// wsEchoUpstream is a WebSocket echo application; open counts its
// connections open.
func wsEchoUpstream(t testing.TB) (string, *atomic.Int64) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	var open atomic.Int64
	up := websocket.Upgrader{}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			time.Sleep(100 * time.Millisecond) // shorter than the proxy's look at its client (250 ms)
		}
		c, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		open.Add(1)
		defer open.Add(-1)
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
	return "http://" + ln.Addr().String(), &open
}

// TestEngineTunnelBytesLikeBadHeads: WebSocket payload bytes that look
// like request heads with bare LFs, sent with the upgrade request (before
// the 101: they wait in fasthttp's reader) and after it, go through the
// tunnel as they are: the engine's head scanner refuses none of them.
func TestEngineTunnelBytesLikeBadHeads(t *testing.T) {
	up, _ := wsEchoUpstream(t)
	e := startEngineProxy(t, up, server.Config{}, proxy.Config{})
	early := "GET /a HTTP/1.1\nHost: x\n\n"
	late := "POST /b HTTP/1.1\nContent-Length: 3\n\nabc\n\nGET / HTTP/1.1\n\n"
	for _, tc := range []struct{ name, first, then string }{
		{"with the request", early, late},
		{"bare LF alone with the request", "\n\n", "\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := e.dial(t)
			_, err := c.Write(append([]byte(wsRequest), clientFrame(tc.first)...))
			require.NoError(t, err)
			br := bufio.NewReader(c)
			head := readHead(t, br)
			require.True(t, strings.HasPrefix(head, "HTTP/1.1 101 "), head)
			op, got := readFrame(t, br)
			assert.Equal(t, byte(1), op)
			assert.Equal(t, tc.first, got)
			_, err = c.Write(clientFrame(tc.then))
			require.NoError(t, err)
			op, got = readFrame(t, br)
			assert.Equal(t, byte(1), op)
			assert.Equal(t, tc.then, got)
		})
	}
}

// tunnelGoroutines counts the goroutines of tunnels.
func tunnelGoroutines() int {
	buf := make([]byte, 1<<20)
	n := 0
	for _, g := range strings.Split(string(buf[:runtimeStack(buf)]), "\n\n") {
		if strings.Contains(g, "proxy.(*tunnel)") {
			n++
		}
	}
	return n
}

// settled reports whether every tunnel, client connection and upstream
// connection is gone.
func (e *engineProxy) settled(upOpen *atomic.Int64) func() bool {
	return func() bool {
		return e.tunnels.Open() == 0 && upOpen.Load() == 0 && len(e.p.Conns()) == 0 &&
			e.srv.Stats().Open == 0 && tunnelGoroutines() == 0
	}
}

func (e *engineProxy) state(upOpen *atomic.Int64) string {
	return strings.Join([]string{
		"tunnels " + itoa(e.tunnels.Open()), "upstream open " + itoa(int(upOpen.Load())),
		"upstream conns " + itoa(len(e.p.Conns())), "client conns " + itoa(int(e.srv.Stats().Open)),
		"tunnel goroutines " + itoa(tunnelGoroutines()),
	}, ", ")
}

// TestEngineTunnelLeaks: however a client ends an upgrade, early or
// oddly, nothing stays: no tunnel, no client or upstream connection, no
// tunnel goroutine.
func TestEngineTunnelLeaks(t *testing.T) {
	up, upOpen := wsEchoUpstream(t)
	e := startEngineProxy(t, up, server.Config{}, proxy.Config{})
	withKey := "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
	for _, tc := range []struct {
		name, req string
		read      bool // read the answer before closing
	}{
		{"close at once", wsRequest, false},
		{"close after the 101", wsRequest, true},
		{"Connection: close, Upgrade", "GET /ws HTTP/1.1\r\nHost: localhost\r\nConnection: close, Upgrade\r\nUpgrade: websocket\r\n" + withKey + "\r\n", true},
		{"pipelined request after it", wsRequest + "GET /next HTTP/1.1\r\nHost: localhost\r\n\r\n", true},
		{"pipelined request, close at once", wsRequest + "GET /next HTTP/1.1\r\nHost: localhost\r\n\r\n", false},
		{"HTTP/1.0", "GET /ws HTTP/1.0\r\nHost: localhost\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n" + withKey + "\r\n", true},
		{"with a body", "POST /ws HTTP/1.1\r\nHost: localhost\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nContent-Length: 2\r\n" + withKey + "\r\nhi", true},
		{"get then upgrade", "GET /first HTTP/1.1\r\nHost: localhost\r\n\r\n" + wsRequest, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for range 5 {
				c := e.dial(t)
				_, err := io.WriteString(c, tc.req)
				require.NoError(t, err)
				if tc.read {
					b := make([]byte, 1)
					_, _ = c.Read(b)
				}
				c.Close()
			}
			if !eventually(10*time.Second, e.settled(upOpen)) {
				t.Errorf("left: %s", e.state(upOpen))
			}
		})
	}
}

// fooUpstream switches to "foo/1" and then reads and drops what comes;
// with push, it sends a byte every push; with flood, it writes without
// pause. open counts its connections open.
func fooUpstream(t testing.TB, push time.Duration, flood bool) (string, *atomic.Int64) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { ln.Close() })
	var open atomic.Int64
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			open.Add(1)
			go func() {
				defer open.Add(-1)
				defer c.Close()
				_ = c.SetDeadline(time.Now().Add(30 * time.Second))
				br := bufio.NewReader(c)
				if _, err := http.ReadRequest(br); err != nil {
					return
				}
				if _, err := io.WriteString(c, "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: foo/1\r\n\r\n"); err != nil {
					return
				}
				stop := make(chan struct{})
				defer close(stop)
				switch {
				case flood:
					go func() {
						b := make([]byte, 32<<10)
						for range 100000 {
							if _, err := c.Write(b); err != nil {
								c.Close()
								return
							}
						}
					}()
				case push > 0:
					go func() {
						for range 1000 {
							select {
							case <-stop:
								return
							case <-time.After(push):
							}
							if _, err := c.Write([]byte{'p'}); err != nil {
								return
							}
						}
					}()
				}
				_, _ = io.Copy(io.Discard, br)
			}()
		}
	}()
	return "http://" + ln.Addr().String(), &open
}

const fooRequest = "GET /foo HTTP/1.1\r\nHost: localhost\r\nConnection: Upgrade\r\nUpgrade: foo/1\r\n\r\n"

// openFoo opens a foo/1 tunnel and returns the client's connection past
// the 101.
func (e *engineProxy) openFoo(t testing.TB) (*tls.Conn, *bufio.Reader) {
	t.Helper()
	c := e.dial(t)
	_, err := io.WriteString(c, fooRequest)
	require.NoError(t, err)
	br := bufio.NewReader(c)
	head := readHead(t, br)
	require.True(t, strings.HasPrefix(head, "HTTP/1.1 101 "), head)
	return c, br
}

// TestEngineTunnelIdleTimeout: a tunnel stays open while bytes move one
// way only, either way, past the engine's header and body timeouts (the
// deadlines the request left on the connection, and those the minimum
// rate moves), and closes once nothing moves for UpgradeIdleTimeout.
func TestEngineTunnelIdleTimeout(t *testing.T) {
	const idle = 1500 * time.Millisecond
	cfg := server.Config{HeaderTimeout: 300 * time.Millisecond, BodyTimeout: 400 * time.Millisecond, MinRate: 1}
	t.Run("client sends", func(t *testing.T) {
		up, open := fooUpstream(t, 0, false)
		e := startEngineProxy(t, up, cfg, proxy.Config{UpgradeIdleTimeout: idle})
		c, _ := e.openFoo(t)
		var stopped time.Time
		for start := time.Now(); time.Since(start) < 3*idle; time.Sleep(200 * time.Millisecond) {
			_, err := c.Write([]byte("ping"))
			require.NoError(t, err, "the tunnel closed while the client sent")
			stopped = time.Now()
		}
		require.Equal(t, 1, e.tunnels.Open())
		require.True(t, eventually(3*idle, func() bool { return e.tunnels.Open() == 0 }), "the idle tunnel stayed open")
		took := time.Since(stopped)
		assert.GreaterOrEqual(t, took, idle*7/8, "closed before the idle timeout")
		assert.True(t, eventually(5*time.Second, func() bool { return open.Load() == 0 }))
	})
	t.Run("upstream sends", func(t *testing.T) {
		up, open := fooUpstream(t, 200*time.Millisecond, false)
		e := startEngineProxy(t, up, cfg, proxy.Config{UpgradeIdleTimeout: idle})
		c, br := e.openFoo(t)
		require.NoError(t, c.SetReadDeadline(time.Now().Add(3*idle+5*time.Second)))
		for start := time.Now(); time.Since(start) < 3*idle; {
			_, err := br.ReadByte()
			require.NoError(t, err, "the tunnel closed while the upstream sent")
		}
		require.Equal(t, 1, e.tunnels.Open())
		c.Close()
		assert.True(t, eventually(5*time.Second, func() bool { return e.tunnels.Open() == 0 && open.Load() == 0 }))
	})
	t.Run("nothing moves", func(t *testing.T) {
		up, open := fooUpstream(t, 0, false)
		e := startEngineProxy(t, up, cfg, proxy.Config{UpgradeIdleTimeout: idle})
		c, br := e.openFoo(t)
		start := time.Now()
		require.NoError(t, c.SetReadDeadline(time.Now().Add(3*idle+5*time.Second)))
		_, err := br.ReadByte()
		took := time.Since(start)
		assert.ErrorIs(t, err, io.EOF)
		assert.GreaterOrEqual(t, took, idle*7/8, "closed before the idle timeout")
		assert.Less(t, took, 3*idle, "closed long after the idle timeout")
		assert.True(t, eventually(5*time.Second, func() bool { return e.tunnels.Open() == 0 && open.Load() == 0 }))
	})
}

// TestEngineTunnelClientNeverReads: a client that reads nothing while its
// upstream floods is cut by the engine's WriteTimeout, and the upstream's
// connection with it: nothing waits for the idle timeout.
func TestEngineTunnelClientNeverReads(t *testing.T) {
	up, open := fooUpstream(t, 0, true)
	e := startEngineProxy(t, up, server.Config{WriteTimeout: time.Second}, proxy.Config{})
	e.openFoo(t)
	start := time.Now()
	ok := eventually(10*time.Second, func() bool { return e.tunnels.Open() == 0 && open.Load() == 0 && e.srv.Stats().Open == 0 })
	assert.True(t, ok, "left after %v: %s", time.Since(start), e.state(open))
	t.Logf("cut after %v", time.Since(start))
}

// TestEngineTunnelsPerIP: tunnels hold client connections, which
// MaxConnsPerIP bounds; so are the connections to the upstream.
func TestEngineTunnelsPerIP(t *testing.T) {
	up, open := wsEchoUpstream(t)
	e := startEngineProxy(t, up, server.Config{MaxConnsPerIP: 3}, proxy.Config{})
	for range 3 {
		c := e.wsDial(t)
		require.NoError(t, c.WriteMessage(websocket.TextMessage, []byte("x")))
	}
	require.True(t, eventually(5*time.Second, func() bool { return open.Load() == 3 }))
	for range 5 {
		d := websocket.Dialer{TLSClientConfig: insecure, HandshakeTimeout: 5 * time.Second}
		if c, _, err := d.Dial("wss://"+e.addr+"/ws", nil); err == nil {
			c.Close()
			t.Error("a tunnel past MaxConnsPerIP")
		}
	}
	assert.Equal(t, int64(3), open.Load())
	assert.Equal(t, 3, e.tunnels.Open())
}

// TestEngineUpgradeClientResets: a client that pipelines a request and an
// upgrade, then resets its connection, leaves no upgraded connection
// upstream once its own is gone: the 101's hijack fails to flush the first
// answer and never runs, and the upstream's connection (switched, its
// application holding a WebSocket) waited 30 s (hijackWait) for it. A
// client looping so held upstream WebSockets without bound, past
// MaxConnsPerIP.
func TestEngineUpgradeClientResets(t *testing.T) {
	up, open := wsEchoUpstream(t)
	// KeepIdleBuffers: fasthttp holds the first answer back for the next
	// pipelined one, and flushes it at the hijack.
	e := startEngineProxy(t, up, server.Config{MaxConnsPerIP: 2, KeepIdleBuffers: true}, proxy.Config{})
	const n = 30
	for range n {
		c := e.dial(t)
		_, err := io.WriteString(c, "GET /first HTTP/1.1\r\nHost: localhost\r\n\r\n"+strings.Replace(wsRequest, "/ws", "/slow", 1))
		require.NoError(t, err)
		time.Sleep(10 * time.Millisecond) // the upgrade waits on its upstream
		tc := c.NetConn().(*net.TCPConn)
		require.NoError(t, tc.SetLinger(0))
		tc.Close()
		require.True(t, eventually(5*time.Second, func() bool { return e.srv.Stats().Open == 0 }))
	}
	most := open.Load()
	ok := eventually(5*time.Second, func() bool { return open.Load() == 0 && len(e.p.Conns()) == 0 })
	t.Logf("upstream WebSockets open once the clients left: %d (MaxConnsPerIP 2)", most)
	assert.True(t, ok, "5 s after %d clients left: %s", n, e.state(open))
}

// TestEngineTunnelsUnderOperators: WebSockets echo while an operator
// reads /debug/conns, /debug/upstreams and /metrics, then the drain runs
// out of time: every client reads 1001, and nothing races.
func TestEngineTunnelsUnderOperators(t *testing.T) {
	up, open := wsEchoUpstream(t)
	e := startEngineProxy(t, up, server.Config{DrainTimeout: time.Second}, proxy.Config{})
	const n = 10
	conns := make([]*websocket.Conn, n)
	for i := range conns {
		conns[i] = e.wsDial(t)
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for range 1000 {
			select {
			case <-stop:
				return
			default:
			}
			_ = e.srv.Conns(0)
			_ = e.p.Conns()
			e.p.WritePrometheus(io.Discard)
			_ = e.srv.Stats()
			time.Sleep(time.Millisecond)
		}
	})
	codes := make([]int, n)
	for i, c := range conns {
		wg.Go(func() {
			_ = c.SetReadDeadline(time.Now().Add(15 * time.Second))
			_ = c.SetWriteDeadline(time.Now().Add(15 * time.Second))
			for j := 0; j < 100000; j++ {
				msg := strings.Repeat("m", 1+j%3000)
				if err := c.WriteMessage(websocket.TextMessage, []byte(msg)); err != nil {
					codes[i] = -2
					return
				}
				_, got, err := c.ReadMessage()
				if err != nil {
					codes[i] = -1
					if ce, ok := err.(*websocket.CloseError); ok {
						codes[i] = ce.Code
					}
					return
				}
				if string(got) != msg {
					t.Errorf("client %d: message %d corrupted", i, j)
					return
				}
			}
		})
	}
	time.Sleep(500 * time.Millisecond)
	e.stop() // the drain waits 1 s for the tunnels, then GoAway
	close(stop)
	wg.Wait()
	for i, code := range codes {
		assert.Equal(t, websocket.CloseGoingAway, code, "client %d", i)
	}
	assert.True(t, eventually(5*time.Second, func() bool { return open.Load() == 0 && e.tunnels.Open() == 0 }), e.state(open))
}
