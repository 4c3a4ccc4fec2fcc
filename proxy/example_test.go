package proxy_test

import (
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"

	"github.com/valyala/fasthttp"

	"github.com/fastserve/fastserve/proxy"
)

// Send /api/ to an upstream and everything else to another handler.
func ExampleNew() {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	upstream := &fasthttp.Server{Handler: func(ctx *fasthttp.RequestCtx) {
		fmt.Fprintf(ctx, "upstream saw %s for %s", ctx.RequestURI(), ctx.Request.Header.Peek("X-Forwarded-For"))
	}}
	go upstream.Serve(ln)
	defer upstream.Shutdown()

	p, err := proxy.New(proxy.Config{
		Routes: []proxy.Route{{Path: "/api/", Upstreams: []string{"http://" + ln.Addr().String()}}},
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		log.Fatal(err)
	}
	defer p.Close()
	h := p.Handler(func(ctx *fasthttp.RequestCtx) { ctx.WriteString("not proxied") })

	for _, uri := range []string{"/api/v1/items?id=7", "/index.html"} {
		var ctx fasthttp.RequestCtx
		ctx.Init2(&fakeConn{}, nil, false)
		ctx.Request.SetRequestURI(uri)
		ctx.Request.Header.SetHost("example.com")
		h(&ctx)
		fmt.Println(ctx.Response.StatusCode(), string(ctx.Response.Body()))
	}
	// Output:
	// 200 upstream saw /api/v1/items?id=7 for 192.0.2.7
	// 200 not proxied
}

// fakeConn gives a request its client's address.
type fakeConn struct{ net.Conn }

var exampleClient = &net.TCPAddr{IP: net.IPv4(192, 0, 2, 7), Port: 4000}

func (fakeConn) RemoteAddr() net.Addr { return exampleClient }
func (fakeConn) LocalAddr() net.Addr  { return exampleClient }
