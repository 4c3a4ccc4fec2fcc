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
