// Command fastservehandler is the embedded-library peer of
// bench/peers/run.sh: fastserve's server package with its production
// defaults (keep-alive tuning, limits, timeouts, counters, idle parking)
// and its admin listener on, serving an in-process handler that answers
// every request with the 13-byte body "Hello, World!", as a Go program
// embedding fastserve would.
package main

import (
	"context"
	"flag"
	"log"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/valyala/fasthttp"

	"github.com/fastserve/fastserve/certs"
	"github.com/fastserve/fastserve/server"
)

const body = "Hello, World!"

func main() {
	addr := flag.String("addr", "127.0.0.1:8443", "host:port to serve HTTPS on")
	admin := flag.String("admin", "127.0.0.1:9090", "host:port of the admin listener (empty = none)")
	cert := flag.String("cert", "cert.pem", "PEM certificate file")
	key := flag.String("key", "key.pem", "PEM private key file")
	flag.Parse()

	cfg := server.Config{
		Addr:      *addr,
		AdminAddr: *admin,
		TLS:       server.TLS{Certificates: []certs.KeyPair{{CertFile: *cert, KeyFile: *key}}},
		Logger:    slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
	}
	srv, err := server.New(cfg, func(ctx *fasthttp.RequestCtx) {
		ctx.SetContentType("text/plain; charset=utf-8")
		ctx.SetBodyString(body)
	})
	if err != nil {
		log.Fatal(err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	log.Printf("fastserve (in-process handler) serving HTTPS on %s", *addr)
	if err := srv.Serve(ctx); err != nil {
		log.Fatal(err)
	}
}
