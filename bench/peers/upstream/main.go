// Command upstream is the application server behind the proxies of
// bench/peers/proxy.sh: plain HTTP/1.1 with keep-alive, fasthttp's
// defaults, answering from memory, so that it costs little next to the
// proxy in front of it.
//
//	GET /index.html   the 13-byte body "Hello, World!" (text/plain), as run.sh serves
//	GET /4k.json      a 4,096-byte JSON document (application/json)
//	GET /_accepted    the connections accepted since start (a decimal number);
//	                  proxy.sh reads it before and after a run to see how many
//	                  connections a proxy opened to its upstream
//
// Anything else is 404. It reports each path it answers on standard error
// once, so that the script can tell a proxy passed the request through.
package main

import (
	"bytes"
	"flag"
	"log"
	"net"
	"strconv"
	"strings"
	"sync/atomic"

	"github.com/valyala/fasthttp"
)

const small = "Hello, World!"

// countingListener counts the connections it accepts.
type countingListener struct {
	net.Listener
	accepted atomic.Int64
}

func (l *countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.accepted.Add(1)
	}
	return c, err
}

// jsonBody returns a JSON document of exactly n bytes: an array of small
// objects, padded in its last string.
func jsonBody(n int) []byte {
	var b bytes.Buffer
	b.WriteString(`{"items":[`)
	for i := 0; b.Len() < n-128; i++ {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(`{"id":` + strconv.Itoa(i) + `,"name":"item-` + strconv.Itoa(i) + `","price":12.5,"tags":["a","b"]}`)
	}
	b.WriteString(`],"pad":"`)
	b.WriteString(strings.Repeat("x", n-b.Len()-2))
	b.WriteString(`"}`)
	return b.Bytes()
}

func main() {
	addr := flag.String("addr", "127.0.0.1:19410", "host:port to serve plain HTTP on")
	flag.Parse()

	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	cl := &countingListener{Listener: ln}
	large := jsonBody(4096)
	if len(large) != 4096 {
		log.Fatalf("upstream: the JSON body is %d bytes, want 4096", len(large))
	}
	var seenSmall, seenLarge atomic.Bool
	srv := &fasthttp.Server{
		Handler: func(ctx *fasthttp.RequestCtx) {
			switch string(ctx.Path()) {
			case "/index.html", "/":
				if !seenSmall.Swap(true) {
					log.Printf("answered %s", ctx.Path())
				}
				ctx.SetContentType("text/plain; charset=utf-8")
				ctx.SetBodyString(small)
			case "/4k.json":
				if !seenLarge.Swap(true) {
					log.Printf("answered %s", ctx.Path())
				}
				ctx.SetContentType("application/json")
				ctx.SetBody(large)
			case "/_accepted":
				ctx.SetContentType("text/plain")
				ctx.SetBodyString(strconv.FormatInt(cl.accepted.Load(), 10))
			default:
				ctx.NotFound()
			}
		},
	}
	log.Printf("upstream serving plain HTTP on %s", ln.Addr())
	log.Fatal(srv.Serve(cl))
}
