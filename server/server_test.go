package server_test

import (
	"bufio"
	"crypto/tls"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/valyala/fasthttp"

	"github.com/fastserve/fastserve/server"
	"github.com/fastserve/fastserve/tune"
)

// inspect answers with the kernel's keep-alive settings for the socket
// under the request's TLS connection, and the client's port.
func inspect(ctx *fasthttp.RequestCtx) {
	st, err := tune.Inspect(ctx.Conn())
	if err != nil {
		ctx.Error(err.Error(), fasthttp.StatusInternalServerError)
		return
	}
	json.NewEncoder(ctx).Encode(inspected{
		Idle: st.KeepAliveIdle, Interval: st.KeepAliveInterval, Count: st.KeepAliveCount,
		UserTimeout: st.UserTimeout, Port: ctx.RemoteAddr().(*net.TCPAddr).Port,
	})
}

type inspected struct {
	Idle, Interval time.Duration
	Count          int
	UserTimeout    time.Duration
	Port           int
}

func TestKeepAliveConnections(t *testing.T) {
	o := tune.Default()
	o.KeepAlive = net.KeepAliveConfig{Enable: true, Idle: 33 * time.Second, Interval: 4 * time.Second, Count: 6}
	o.UserTimeout = 57 * time.Second
	ts := start(t, server.Config{Tune: o, Listeners: 2}, inspect)
	want := inspected{Idle: 33 * time.Second, Interval: 4 * time.Second, Count: 6, UserTimeout: 57 * time.Second}

	t.Run("net/http", func(t *testing.T) {
		client := ts.HTTPClient(t)
		ports := map[int]bool{}
		for range 20 {
			resp, err := client.Get("https://" + ts.Addr + "/")
			require.NoError(t, err)
			var got inspected
			require.NoError(t, json.NewDecoder(resp.Body).Decode(&got))
			resp.Body.Close()
			assert.Equal(t, http.StatusOK, resp.StatusCode)
			assert.Equal(t, "http/1.1", resp.TLS.NegotiatedProtocol)
			assert.Equal(t, uint16(tls.VersionTLS13), resp.TLS.Version)
			ports[got.Port] = true
			got.Port = 0
			assert.Equal(t, want, got)
		}
		assert.Len(t, ports, 1, "20 requests on one keep-alive connection")
	})
	t.Run("fasthttp", func(t *testing.T) {
		client := &fasthttp.HostClient{Addr: ts.Addr, IsTLS: true, TLSConfig: ts.TLSConfig(), MaxConns: 1}
		defer client.CloseIdleConnections()
		ports := map[int]bool{}
		for range 20 {
			req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
			req.SetRequestURI("https://localhost/")
			require.NoError(t, client.DoTimeout(req, resp, 5*time.Second))
			var got inspected
			require.NoError(t, json.Unmarshal(resp.Body(), &got))
			assert.Equal(t, fasthttp.StatusOK, resp.StatusCode())
			ports[got.Port] = true
			got.Port = 0
			assert.Equal(t, want, got)
			fasthttp.ReleaseRequest(req)
			fasthttp.ReleaseResponse(resp)
		}
		assert.Len(t, ports, 1, "20 requests on one keep-alive connection")
	})

	st := ts.Stats()
	assert.Equal(t, uint64(40), st.Requests)
	assert.Equal(t, uint64(40), st.Responses[2])
	assert.Equal(t, uint64(2), st.Handshakes)
	assert.Equal(t, uint64(2), st.Tune.Accepted)
}

func TestDevelopmentCertificate(t *testing.T) {
	logs := &logBuffer{}
	srv, err := server.New(server.Config{Addr: "127.0.0.1:0", Logger: slogTo(logs)}, hello)
	require.NoError(t, err)
	ts := runServer(t, srv)
	assert.Contains(t, logs.String(), "SELF-SIGNED")

	for _, name := range []string{"localhost", "127.0.0.1"} {
		c, err := tls.Dial("tcp", ts, &tls.Config{InsecureSkipVerify: true, ServerName: name})
		require.NoError(t, err)
		leaf := c.ConnectionState().PeerCertificates[0]
		assert.NoError(t, leaf.VerifyHostname(name))
		assert.Equal(t, "ECDSA", leaf.PublicKeyAlgorithm.String())
		c.Close()
	}
}

func TestPlaintextOnTLSPort(t *testing.T) {
	ts := start(t, server.Config{}, hello)
	c, err := net.Dial("tcp", ts.Addr)
	require.NoError(t, err)
	defer c.Close()
	require.NoError(t, c.SetDeadline(time.Now().Add(5*time.Second)))
	_, err = io.WriteString(c, "GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
	require.NoError(t, err)
	resp := &fasthttp.Response{}
	require.NoError(t, resp.Read(bufio.NewReader(c)))
	assert.Equal(t, fasthttp.StatusBadRequest, resp.StatusCode())
	assert.Equal(t, "Client sent an HTTP request to an HTTPS server.\n", string(resp.Body()))
	assert.True(t, resp.ConnectionClose())
	_, err = c.Read(make([]byte, 1))
	assert.ErrorIs(t, err, io.EOF, "closed after the answer")
	assert.Equal(t, uint64(1), ts.Stats().HandshakeFailures[server.FailPlaintext])
}

func TestPanicAnswers500(t *testing.T) {
	ts := start(t, server.Config{}, func(ctx *fasthttp.RequestCtx) {
		if strings.HasPrefix(string(ctx.Path()), "/panic") {
			panic("boom")
		}
		hello(ctx)
	})
	client := ts.HTTPClient(t)
	resp, err := client.Get("https://" + ts.Addr + "/panic")
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusInternalServerError, resp.StatusCode)
	resp, err = client.Get("https://" + ts.Addr + "/")
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	assert.Equal(t, "hello", string(body))
	assert.Equal(t, uint64(1), ts.Stats().Panics)
	assert.Contains(t, ts.Logs.String(), "handler panicked")
}
