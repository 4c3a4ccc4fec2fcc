// Command ceiling is the ceiling peer of bench/peers/run.sh: bench.Ceiling,
// the cheapest keep-alive responder Go's crypto/tls allows (no HTTP parsing,
// prebuilt responses), answering every request with the 13-byte body
// "Hello, World!", on a crypto/tls listener with Go's defaults.
package main

import (
	"crypto/tls"
	"flag"
	"log"

	"github.com/fastserve/fastserve/bench"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8443", "host:port to serve HTTPS on")
	cert := flag.String("cert", "cert.pem", "PEM certificate file")
	key := flag.String("key", "key.pem", "PEM private key file")
	flag.Parse()

	pair, err := tls.LoadX509KeyPair(*cert, *key)
	if err != nil {
		log.Fatal(err)
	}
	ln, err := tls.Listen("tcp", *addr, &tls.Config{Certificates: []tls.Certificate{pair}})
	if err != nil {
		log.Fatal(err)
	}
	log.Printf("ceiling serving HTTPS on %s", ln.Addr())
	log.Fatal(bench.NewCeiling(nil, []byte("Hello, World!")).Serve(ln))
}
