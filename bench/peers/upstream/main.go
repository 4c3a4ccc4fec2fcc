// Command upstream is the application server behind the proxies of
// bench/peers/proxy.sh: plain HTTP/1.1 with keep-alive, fasthttp's
// defaults, answering from memory, so that it costs little next to the
// proxy in front of it.
//
//	GET /index.html   the 13-byte body "Hello, World!" (text/plain), as run.sh serves
//	GET /4k.json      a 4,096-byte JSON document (application/json)
//	GET /64k.json     a 65,536-byte one: past the 16 KiB up to which
//	                  fastserve's proxy reads an answer whole, it streams
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

// answer is what the upstream sends for a path; seen once it has.
type answer struct {
	contentType string
	body        []byte
	seen        atomic.Bool
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
	smallAnswer := &answer{"text/plain; charset=utf-8", []byte(small), atomic.Bool{}}
	answers := map[string]*answer{
		"/":           smallAnswer,
		"/index.html": smallAnswer,
		"/4k.json":    {"application/json", jsonBody(4 << 10), atomic.Bool{}},
		"/64k.json":   {"application/json", jsonBody(64 << 10), atomic.Bool{}},
	}
	srv := &fasthttp.Server{
		Handler: func(ctx *fasthttp.RequestCtx) {
			if string(ctx.Path()) == "/_accepted" {
				ctx.SetContentType("text/plain")
				ctx.SetBodyString(strconv.FormatInt(cl.accepted.Load(), 10))
				return
			}
			a := answers[string(ctx.Path())]
			if a == nil {
				ctx.NotFound()
				return
			}
			if !a.seen.Swap(true) {
				log.Printf("answered %s", ctx.Path())
			}
			ctx.SetContentType(a.contentType)
			ctx.SetBody(a.body)
		},
	}
	log.Printf("upstream serving plain HTTP on %s", ln.Addr())
	log.Fatal(srv.Serve(cl))
}
