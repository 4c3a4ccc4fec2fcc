package accesslog_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/valyala/fasthttp"

	"github.com/fastserve/fastserve/accesslog"
)

// Log a request as JSON: one object a line, written by Run in the
// background.
func ExampleNew() {
	out := &buffer{}
	l := accesslog.New(out, accesslog.JSON)
	done := make(chan struct{})
	go func() { l.Run(); close(done) }()

	var ctx fasthttp.RequestCtx // as the server hands it over, answered
	ctx.Init2(&fakeAddrConn{}, nil, false)
	_ = ctx.Request.Read(bufio.NewReader(strings.NewReader("GET /hello HTTP/1.1\r\nHost: example.com\r\nUser-Agent: curl/8\r\n\r\n")))
	ctx.SetStatusCode(fasthttp.StatusNoContent)
	l.Add(&ctx, ctx.Time())

	l.Close() // writes what is buffered
	<-done
	var line map[string]any
	_ = json.Unmarshal([]byte(out.String()), &line)
	fmt.Println(line["remote"], line["method"], line["uri"], line["status"], line["user_agent"])
	// Output: 192.0.2.7 GET /hello 204 curl/8
}

// Log in a format string: nginx's variables, compiled once.
func ExampleCompile() {
	f, err := accesslog.Compile(`$request_method $request_uri $status $body_bytes_sent "$http_user_agent" $host $ssl_protocol`)
	if err != nil {
		fmt.Println(err)
		return
	}
	out := &buffer{}
	l := accesslog.New(out, f)
	done := make(chan struct{})
	go func() { l.Run(); close(done) }()

	var ctx fasthttp.RequestCtx // as the server hands it over, answered
	ctx.Init2(&fakeAddrConn{}, nil, false)
	_ = ctx.Request.Read(bufio.NewReader(strings.NewReader("GET /hello HTTP/1.1\r\nHost: Example.com:443\r\nUser-Agent: curl/8\r\n\r\n")))
	ctx.SetBodyString("hi")
	l.Add(&ctx, ctx.Time())

	l.Close()
	<-done
	fmt.Print(out.String())

	_, err = accesslog.Compile("$status $bytes_out")
	fmt.Println(err != nil)
	// Output:
	// GET /hello 200 2 "curl/8" example.com -
	// true
}
