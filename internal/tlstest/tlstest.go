// Package tlstest runs a fasthttp server over real TLS on a loopback
// socket, for the tests of the packages that give the engine a handler
// (the reverse proxy, static files): they test their handler as a client
// meets it, without importing the engine.
package tlstest

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/valyala/fasthttp"

	"github.com/fastserve/fastserve/internal/selfsigned"
)

// Server is a running fasthttp server with a certificate for localhost
// and 127.0.0.1 that its clients trust.
type Server struct {
	Addr string
	Pool *x509.CertPool
}

// Start serves fs over TLS on 127.0.0.1:0 until the test ends.
func Start(t testing.TB, fs *fasthttp.Server) *Server {
	t.Helper()
	return StartOn(t, "127.0.0.1:0", fs)
}

// StartOn serves fs over TLS on addr until the test ends.
func StartOn(t testing.TB, addr string, fs *fasthttp.Server) *Server {
	t.Helper()
	cert, err := selfsigned.New(time.Hour, "localhost", "127.0.0.1", "::1")
	require.NoError(t, err)
	ln, err := net.Listen("tcp", addr)
	require.NoError(t, err)
	tln := tls.NewListener(ln, &tls.Config{Certificates: []tls.Certificate{cert}, NextProtos: []string{"http/1.1"}})
	done := make(chan error, 1)
	go func() { done <- fs.Serve(tln) }()
	t.Cleanup(func() {
		require.NoError(t, fs.Shutdown())
		require.NoError(t, <-done)
	})
	return &Server{Addr: ln.Addr().String(), Pool: selfsigned.Pool(cert)}
}

// Handler serves h over TLS, as Start does, with fasthttp's defaults but
// for a quiet logger.
func Handler(t testing.TB, h fasthttp.RequestHandler) *Server {
	return Start(t, &fasthttp.Server{Handler: h, Logger: quiet{}})
}

type quiet struct{}

func (quiet) Printf(string, ...any) {}

// TLSConfig is a client configuration that trusts the server.
func (s *Server) TLSConfig() *tls.Config {
	return &tls.Config{RootCAs: s.Pool, ServerName: "localhost", NextProtos: []string{"http/1.1"}}
}

// Dial opens a TLS connection to the server, closed at cleanup.
func (s *Server) Dial(t testing.TB) *tls.Conn {
	t.Helper()
	d := &tls.Dialer{NetDialer: &net.Dialer{Timeout: 5 * time.Second}, Config: s.TLSConfig()}
	c, err := d.DialContext(context.Background(), "tcp", s.Addr)
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	return c.(*tls.Conn)
}

// HTTPClient is a net/http client for the server, closed at cleanup.
func (s *Server) HTTPClient(t testing.TB) *http.Client {
	tr := &http.Transport{TLSClientConfig: s.TLSConfig()}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 10 * time.Second}
}

// RoundTrip writes a raw request on c and reads one response.
func RoundTrip(t testing.TB, c net.Conn, br *bufio.Reader, req string) *fasthttp.Response {
	t.Helper()
	require.NoError(t, c.SetDeadline(time.Now().Add(5*time.Second)))
	_, err := io.WriteString(c, req)
	require.NoError(t, err)
	resp := &fasthttp.Response{}
	require.NoError(t, resp.Read(br))
	return resp
}
