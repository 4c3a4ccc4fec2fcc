package bench_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/fastserve/fastserve/accesslog"
	"github.com/fastserve/fastserve/bench"
	"github.com/fastserve/fastserve/certs"
	"github.com/fastserve/fastserve/internal/selfsigned"
	"github.com/fastserve/fastserve/server"
)

// The response bodies the suite serves, by path.
var bodies = []struct {
	name string
	body []byte
}{
	{"13B", []byte("Hello, World!")},
	{"4KiB", bytes.Repeat([]byte("x"), 4<<10)},
	{"64KiB", bytes.Repeat([]byte("x"), 64<<10)},
}

func bodyFor(path []byte) []byte {
	for _, b := range bodies {
		if string(path[1:]) == b.name {
			return b.body
		}
	}
	return bodies[0].body
}

// cert is the one ECDSA P-256 certificate every server uses.
type cert struct {
	certPEM, keyPEM []byte
	tls             tls.Certificate
}

func newCert(tb testing.TB) cert {
	tb.Helper()
	c, k, err := selfsigned.PEM(time.Hour, "localhost", "127.0.0.1")
	if err != nil {
		tb.Fatal(err)
	}
	pair, err := tls.X509KeyPair(c, k)
	if err != nil {
		tb.Fatal(err)
	}
	return cert{c, k, pair}
}

func (c cert) clientTLS() *tls.Config {
	return &tls.Config{RootCAs: selfsigned.Pool(c.tls), ServerName: "localhost", NextProtos: []string{"http/1.1"}}
}

// A peer is a server under comparison: start serves bodies by path until
// the returned stop is called.
type peer struct {
	name  string
	start func(tb testing.TB, c cert) (addr string, stop func())
}

var peers = []peer{
	{"fastserve", startFastserve},
	{"fastserve-accesslog", startFastserveLogging},
	{"fasthttp", startFasthttp},
	{"nethttp", startNetHTTP},
	{"ceiling", startCeiling},
}

func fasthttpHandler(ctx *fasthttp.RequestCtx) {
	ctx.SetContentType("text/plain")
	ctx.SetBody(bodyFor(ctx.Path()))
}

// startFastserve runs fastserve's server with its defaults.
func startFastserve(tb testing.TB, c cert) (string, func()) {
	return runFastserve(tb, c, server.Config{})
}

// startFastserveLogging adds a combined-format access log to a file: what
// the log costs.
func startFastserveLogging(tb testing.TB, c cert) (string, func()) {
	f, err := accesslog.OpenFile(filepath.Join(tb.TempDir(), "access.log"))
	if err != nil {
		tb.Fatal(err)
	}
	addr, stop := runFastserve(tb, c, server.Config{AccessLog: f})
	return addr, func() {
		stop()
		f.Close()
	}
}

func runFastserve(tb testing.TB, c cert, cfg server.Config) (string, func()) {
	dir := tb.TempDir()
	cf := certs.KeyPair{CertFile: filepath.Join(dir, "c.pem"), KeyFile: filepath.Join(dir, "k.pem")}
	if err := os.WriteFile(cf.CertFile, c.certPEM, 0o600); err != nil {
		tb.Fatal(err)
	}
	if err := os.WriteFile(cf.KeyFile, c.keyPEM, 0o600); err != nil {
		tb.Fatal(err)
	}
	cfg.Addr = "127.0.0.1:0"
	cfg.TLS.Certificates = []certs.KeyPair{cf}
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	srv, err := server.New(cfg, fasthttpHandler)
	if err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx) }()
	return srv.Addrs()[0].String(), func() {
		cancel()
		<-done
	}
}

// startFasthttp runs plain fasthttp ServeTLS, as its documentation shows.
func startFasthttp(tb testing.TB, c cert) (string, func()) {
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	s := &fasthttp.Server{Handler: fasthttpHandler, TCPKeepalive: true, TCPKeepalivePeriod: time.Minute}
	done := make(chan error, 1)
	go func() { done <- s.ServeTLSEmbed(ln, c.certPEM, c.keyPEM) }()
	return ln.Addr().String(), func() {
		s.Shutdown()
		<-done
	}
}

// startNetHTTP runs net/http with keep-alive set through
// net.ListenConfig, the standard library's way.
func startNetHTTP(tb testing.TB, c cert) (string, func()) {
	lc := net.ListenConfig{KeepAlive: time.Minute}
	ln, err := lc.Listen(context.Background(), "tcp4", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	s := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/plain")
			w.Write(bodyFor([]byte(r.URL.Path)))
		}),
		TLSConfig:    &tls.Config{Certificates: []tls.Certificate{c.tls}},
		TLSNextProto: map[string]func(*http.Server, *tls.Conn, http.Handler){}, // HTTP/1.1 only, as the others
		ErrorLog:     nil,
	}
	done := make(chan error, 1)
	go func() { done <- s.ServeTLS(ln, "", "") }()
	return ln.Addr().String(), func() {
		s.Close()
		<-done
	}
}

// startCeiling runs bench.Ceiling: what Go's TLS allows, for the others
// to be measured against.
func startCeiling(tb testing.TB, c cert) (string, func()) {
	ln, err := tls.Listen("tcp4", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{c.tls}})
	if err != nil {
		tb.Fatal(err)
	}
	named := map[string][]byte{}
	for _, b := range bodies {
		named[b.name] = b.body
	}
	ceil := bench.NewCeiling(named, bodies[0].body)
	done := make(chan struct{})
	go func() {
		defer close(done)
		ceil.Serve(ln)
	}()
	return ln.Addr().String(), func() {
		ln.Close()
		<-done
		ceil.CloseConns()
	}
}
