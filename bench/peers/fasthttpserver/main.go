// Command fasthttpserver is the plain-fasthttp peer of bench/peers/run.sh:
// fasthttp's ServeTLS on a net.Listen listener, answering every request
// with the 13-byte body "Hello, World!", as a fasthttp user would write it.
//
// It sets Server.TCPKeepalive and TCPKeepalivePeriod, the keep-alive that
// fasthttp offers. Under ServeTLS fasthttp does not apply them (the
// accepted connection is a *tls.Conn), so its connections carry Go's
// default keep-alive (15 s idle, 15 s interval, 9 probes) instead: that is
// what this peer measures.
package main

import (
	"flag"
	"log"
	"net"
	"time"

	"github.com/valyala/fasthttp"
)

const body = "Hello, World!"

func main() {
	addr := flag.String("addr", "127.0.0.1:8443", "host:port to serve HTTPS on")
	cert := flag.String("cert", "cert.pem", "PEM certificate file")
	key := flag.String("key", "key.pem", "PEM private key file")
	flag.Parse()

	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	srv := &fasthttp.Server{
		Handler: func(ctx *fasthttp.RequestCtx) {
			ctx.SetContentType("text/plain; charset=utf-8")
			ctx.SetBodyString(body)
		},
		TCPKeepalive:       true,
		TCPKeepalivePeriod: 60 * time.Second,
	}
	log.Printf("fasthttp serving HTTPS on %s", ln.Addr())
	log.Fatal(srv.ServeTLS(ln, *cert, *key))
}
