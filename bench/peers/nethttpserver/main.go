// Command nethttpserver is the net/http peer of bench/peers/run.sh: an
// http.Server with ServeTLS on a net.ListenConfig listener with KeepAlive
// set, answering every request with the 13-byte body "Hello, World!".
//
// net.ListenConfig.KeepAlive sets only the idle time before the first
// probe; the interval and count stay at Go's defaults (15 s, 9).
package main

import (
	"context"
	"flag"
	"log"
	"net"
	"net/http"
	"strconv"
	"time"
)

const body = "Hello, World!"

func main() {
	addr := flag.String("addr", "127.0.0.1:8443", "host:port to serve HTTPS on")
	cert := flag.String("cert", "cert.pem", "PEM certificate file")
	key := flag.String("key", "key.pem", "PEM private key file")
	keepAlive := flag.Duration("keepalive", 60*time.Second, "TCP keep-alive idle time of accepted connections")
	idle := flag.Duration("idle-timeout", 620*time.Second, "how long a keep-alive connection may wait for its next request")
	flag.Parse()

	lc := net.ListenConfig{KeepAlive: *keepAlive}
	ln, err := lc.Listen(context.Background(), "tcp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	length := strconv.Itoa(len(body))
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			h := w.Header()
			h.Set("Content-Type", "text/plain; charset=utf-8")
			h.Set("Content-Length", length)
			_, _ = w.Write([]byte(body))
		}),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       *idle,
	}
	log.Printf("net/http serving HTTPS on %s", ln.Addr())
	log.Fatal(srv.ServeTLS(ln, *cert, *key))
}
