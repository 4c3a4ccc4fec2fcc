package tune_test

import (
	"crypto/tls"
	"fmt"
	"log"
	"net"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/fastserve/fastserve/internal/selfsigned"
	"github.com/fastserve/fastserve/tune"
)

// Serve HTTPS with fasthttp on a tuned listener: every TLS connection
// carries the TCP keep-alive and user timeout below, which the handler
// reads back from the kernel.
func ExampleListen() {
	o := tune.Default()
	o.KeepAlive = net.KeepAliveConfig{Enable: true, Idle: 30 * time.Second, Interval: 5 * time.Second, Count: 4}
	o.UserTimeout = 50 * time.Second
	ln, err := tune.Listen("tcp", "127.0.0.1:0", o)
	if err != nil {
		log.Fatal(err)
	}
	cert, err := selfsigned.New(time.Hour, "localhost")
	if err != nil {
		log.Fatal(err)
	}
	srv := &fasthttp.Server{Handler: func(ctx *fasthttp.RequestCtx) {
		st, err := tune.Inspect(ctx.Conn()) // ctx.Conn() is a *tls.Conn
		if err != nil {
			ctx.Error(err.Error(), fasthttp.StatusInternalServerError)
			return
		}
		fmt.Fprintf(ctx, "keep-alive %v/%v/%d, user timeout %v",
			st.KeepAliveIdle, st.KeepAliveInterval, st.KeepAliveCount, st.UserTimeout)
	}}
	go srv.Serve(tls.NewListener(ln, &tls.Config{Certificates: []tls.Certificate{cert}}))
	defer srv.Shutdown()

	client := &fasthttp.Client{TLSConfig: &tls.Config{RootCAs: selfsigned.Pool(cert), ServerName: "localhost"}}
	status, body, err := client.Get(nil, "https://"+ln.Addr().String()+"/")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(status, string(body))
	// Output: 200 keep-alive 30s/5s/4, user timeout 50s
}
