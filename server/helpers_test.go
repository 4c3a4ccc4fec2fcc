package server_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/valyala/fasthttp"
	"go.uber.org/goleak"

	"github.com/fastserve/fastserve/certs"
	"github.com/fastserve/fastserve/internal/selfsigned"
	"github.com/fastserve/fastserve/server"
)

// TestMain fails the package if any test leaves a goroutine running, but
// for fasthttp's own: its once-a-second date updater and dialer cache
// (process-wide, forever), its client's pool cleaner, and the worker pool
// cleaner that sleeps up to 10 s after its pool stops, and its
// process-wide pool of compression workers; and certmagic's process-wide
// ACME rate limiters and the lock-file refreshers that end within 5 s of
// their lock's release.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		goleak.IgnoreAnyFunction("github.com/valyala/fasthttp/stackless.funcWorker"),
		goleak.IgnoreAnyFunction("github.com/valyala/fasthttp.updateServerDate.func1"),
		goleak.IgnoreAnyFunction("github.com/valyala/fasthttp.(*TCPDialer).tcpAddrsClean"),
		goleak.IgnoreAnyFunction("github.com/valyala/fasthttp.(*HostClient).connsCleaner"),
		goleak.IgnoreAnyFunction("github.com/valyala/fasthttp.(*workerPool).Start.func2"),
		goleak.IgnoreAnyFunction("github.com/caddyserver/certmagic.(*RingBufferRateLimiter).permit"),
		goleak.IgnoreAnyFunction("github.com/caddyserver/certmagic.keepLockfileFresh"),
	)
}

// certPair writes a self-signed certificate for hosts into dir and returns
// its files and a pool that trusts it.
func certPair(t testing.TB, dir, name string, hosts ...string) (certs.KeyPair, *x509.CertPool) {
	t.Helper()
	certPEM, keyPEM, err := selfsigned.PEM(time.Hour, hosts...)
	require.NoError(t, err)
	cf := certs.KeyPair{CertFile: filepath.Join(dir, name+".crt"), KeyFile: filepath.Join(dir, name+".key")}
	require.NoError(t, os.WriteFile(cf.CertFile, certPEM, 0o600))
	require.NoError(t, os.WriteFile(cf.KeyFile, keyPEM, 0o600))
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	require.NoError(t, err)
	return cf, selfsigned.Pool(cert)
}

// testServer is a running server with a certificate for localhost and
// 127.0.0.1 that its clients trust.
type testServer struct {
	*server.Server
	Addr string
	Pool *x509.CertPool
	Logs *logBuffer

	cancel context.CancelFunc
	done   chan error
}

// start runs a server on 127.0.0.1:0 with cfg (Addr, certificates and
// Logger filled in when empty) and stops it at cleanup, failing the test
// if Serve does not return nil within 10 s.
func start(t testing.TB, cfg server.Config, h fasthttp.RequestHandler) *testServer {
	t.Helper()
	ts := &testServer{Logs: &logBuffer{}}
	if cfg.Addr == "" {
		cfg.Addr = "127.0.0.1:0"
	}
	if len(cfg.TLS.Certificates) == 0 {
		var cf certs.KeyPair
		cf, ts.Pool = certPair(t, t.TempDir(), "localhost", "localhost", "127.0.0.1")
		cfg.TLS.Certificates = []certs.KeyPair{cf}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(ts.Logs, nil))
	}
	srv, err := server.New(cfg, h)
	require.NoError(t, err)
	ts.Server = srv
	ts.Addr = srv.Addrs()[0].String()
	ctx, cancel := context.WithCancel(context.Background())
	ts.cancel = cancel
	ts.done = make(chan error, 1)
	go func() { ts.done <- srv.Serve(ctx) }()
	t.Cleanup(func() { ts.Stop(t) })
	return ts
}

// Stop ends Serve's context and waits for Serve to return nil.
func (ts *testServer) Stop(t testing.TB) {
	t.Helper()
	ts.cancel()
	select {
	case err, ok := <-ts.done:
		if ok {
			require.NoError(t, err, "Serve")
			close(ts.done)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return within 10s of its context ending")
	}
}

// TLSConfig is a client configuration that trusts the server's
// certificate.
func (ts *testServer) TLSConfig() *tls.Config {
	return &tls.Config{RootCAs: ts.Pool, ServerName: "localhost", NextProtos: []string{"http/1.1"}}
}

// HTTPClient is a net/http client for the server, closed at cleanup.
func (ts *testServer) HTTPClient(t testing.TB) *http.Client {
	tr := &http.Transport{TLSClientConfig: ts.TLSConfig(), ForceAttemptHTTP2: false}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 10 * time.Second}
}

// Dial opens a TLS connection to the server and completes the handshake.
func (ts *testServer) Dial(t testing.TB, cfg *tls.Config) *tls.Conn {
	t.Helper()
	if cfg == nil {
		cfg = ts.TLSConfig()
	}
	d := &tls.Dialer{NetDialer: &net.Dialer{Timeout: 5 * time.Second}, Config: cfg}
	c, err := d.DialContext(context.Background(), "tcp", ts.Addr)
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	return c.(*tls.Conn)
}

// roundTrip writes a raw request on c and reads one response.
func roundTrip(t testing.TB, c net.Conn, br *bufio.Reader, req string) *fasthttp.Response {
	t.Helper()
	require.NoError(t, c.SetDeadline(time.Now().Add(5*time.Second)))
	_, err := io.WriteString(c, req)
	require.NoError(t, err)
	resp := &fasthttp.Response{}
	require.NoError(t, resp.Read(br))
	return resp
}

// logBuffer collects a server's log lines.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// hello answers "hello".
func hello(ctx *fasthttp.RequestCtx) { ctx.WriteString("hello") }

func slogTo(w io.Writer) *slog.Logger { return slog.New(slog.NewTextHandler(w, nil)) }

// runServer serves srv until cleanup and returns its first address.
func runServer(t testing.TB, srv *server.Server) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			require.NoError(t, err)
		case <-time.After(10 * time.Second):
			t.Fatal("Serve did not return")
		}
	})
	return srv.Addrs()[0].String()
}
